//! The route table: one line per route, with its method, its path (a `{name}` segment captures
//! one path segment, read by the handler with `Req::param`) and its handler, whose kind is the
//! route's guard: `Public` (no key), `Managed` (a key or UI session, then the per-route grant
//! of `grant.rs`) or `ModelCall` (a key only). Matching the table, authentication and the
//! error boundary are `dispatch.rs`'s; the handlers live in one module per resource.

use super::{
    admin, budgets, end_users, explain, health, keys, model_admin, models, organizations, proxy,
    spend,
};
use super::{state, team_permissions, teams, ui, users};
use super::{Ctx, Reply, Req};
use crate::auth::Caller;
use crate::error::Result;

/// A route that needs no key (health, metrics, the UI's files and login).
pub type PublicFn = fn(&Ctx, &Req) -> Result<Reply>;
/// A route for a known caller: a management route (key or UI session, granted the route) or
/// a model call (key only). Both have this one signature.
pub type ManagedFn = fn(&Ctx, &Caller, &Req) -> Result<Reply>;

/// A route's handler, and by its kind the guard in front of it.
#[derive(Clone, Copy)]
pub enum Handler {
    Public(PublicFn),
    Managed(ManagedFn),
    ModelCall(ManagedFn),
}

use Handler::{Managed, ModelCall, Public};

/// The routing table: (method, path, handler).
#[rustfmt::skip]
pub const ROUTES: &[(&str, &str, Handler)] = &[
    ("GET",    "/health/liveliness",             Public(health::liveliness)),
    ("GET",    "/health/liveness",               Public(health::liveliness)),
    ("GET",    "/health/readiness",              Public(health::readiness)),
    ("GET",    "/",                              Public(health::root)),
    ("GET",    "/metrics",                       Public(health::metrics)),
    // Organizations (API.md §6).
    ("POST",   "/organization/new",              Managed(organizations::create)),
    ("PATCH",  "/organization/update",           Managed(organizations::update)),
    ("POST",   "/organization/update",           Managed(organizations::update)),
    ("DELETE", "/organization/delete",           Managed(organizations::delete)),
    ("POST",   "/organization/delete",           Managed(organizations::delete)),
    ("GET",    "/organization/list",             Managed(organizations::list)),
    ("GET",    "/organization/info",             Managed(organizations::info)),
    ("POST",   "/organization/info",             Managed(organizations::info_deprecated)),
    ("POST",   "/organization/member_add",       Managed(organizations::member_add)),
    ("PATCH",  "/organization/member_update",    Managed(organizations::member_update)),
    ("POST",   "/organization/member_update",    Managed(organizations::member_update)),
    ("DELETE", "/organization/member_delete",    Managed(organizations::member_delete)),
    ("POST",   "/organization/member_delete",    Managed(organizations::member_delete)),
    // Budgets.
    ("POST",   "/budget/new",                    Managed(budgets::create)),
    ("POST",   "/budget/update",                 Managed(budgets::update)),
    ("POST",   "/budget/info",                   Managed(budgets::info)),
    ("GET",    "/budget/list",                   Managed(budgets::list)),
    ("POST",   "/budget/delete",                 Managed(budgets::delete)),
    // End users, LiteLLM's customers (issue 15 item 4), under both of LiteLLM's names.
    ("POST",   "/end_user/new",                  Managed(end_users::create)),
    ("GET",    "/end_user/info",                 Managed(end_users::info)),
    ("POST",   "/end_user/update",               Managed(end_users::update)),
    ("POST",   "/end_user/delete",               Managed(end_users::delete)),
    ("GET",    "/end_user/list",                 Managed(end_users::list)),
    ("POST",   "/end_user/block",                Managed(end_users::block)),
    ("POST",   "/end_user/unblock",              Managed(end_users::unblock)),
    ("POST",   "/customer/new",                  Managed(end_users::create)),
    ("GET",    "/customer/info",                 Managed(end_users::info)),
    ("POST",   "/customer/update",               Managed(end_users::update)),
    ("POST",   "/customer/delete",               Managed(end_users::delete)),
    ("GET",    "/customer/list",                 Managed(end_users::list)),
    ("POST",   "/customer/block",                Managed(end_users::block)),
    ("POST",   "/customer/unblock",              Managed(end_users::unblock)),
    // Teams.
    ("POST",   "/team/new",                      Managed(teams::create)),
    ("POST",   "/team/update",                   Managed(teams::update)),
    ("POST",   "/team/delete",                   Managed(teams::delete)),
    ("GET",    "/team/info",                     Managed(teams::info)),
    ("GET",    "/team/list",                     Managed(teams::list)),
    ("POST",   "/team/member_add",               Managed(teams::member_add)),
    ("POST",   "/team/member_delete",            Managed(teams::member_delete)),
    ("POST",   "/team/member_update",            Managed(teams::member_update)),
    ("POST",   "/team/block",                    Managed(teams::block)),
    ("POST",   "/team/unblock",                  Managed(teams::unblock)),
    ("POST",   "/team/model/add",                Managed(teams::model_add)),
    ("POST",   "/team/model/delete",             Managed(teams::model_delete)),
    ("GET",    "/team/permissions_list",         Managed(team_permissions::list)),
    ("POST",   "/team/permissions_update",       Managed(team_permissions::update)),
    // Users.
    ("POST",   "/user/new",                      Managed(users::create)),
    ("GET",    "/user/info",                     Managed(users::info)),
    ("POST",   "/user/update",                   Managed(users::update)),
    ("POST",   "/user/delete",                   Managed(users::delete)),
    ("GET",    "/user/list",                     Managed(users::list)),
    // Keys.
    ("POST",   "/key/generate",                  Managed(keys::generate)),
    ("POST",   "/key/update",                    Managed(keys::update)),
    ("POST",   "/key/delete",                    Managed(keys::delete)),
    ("GET",    "/key/info",                      Managed(keys::info)),
    ("GET",    "/key/list",                      Managed(keys::list)),
    ("POST",   "/key/block",                     Managed(keys::block)),
    ("POST",   "/key/unblock",                   Managed(keys::unblock)),
    ("POST",   "/key/regenerate",                Managed(keys::regenerate)),
    ("POST",   "/key/{key}/regenerate",          Managed(keys::regenerate)),
    ("POST",   "/key/health",                    Managed(health::key_health)),
    // Models and calls.
    ("GET",    "/v1/models",                     Managed(models::list)),
    ("GET",    "/models",                        Managed(models::list)),
    ("GET",    "/model/info",                    Managed(models::info)),
    ("GET",    "/v1/model/info",                 Managed(models::info)),
    ("GET",    "/v2/model/info",                 Managed(models::info_v2)),
    ("GET",    "/model_group/info",              Managed(models::group_info)),
    // Models managed at runtime (issue 15 item 3; `model_admin.rs`).
    ("POST",   "/model/new",                     Managed(model_admin::create)),
    ("POST",   "/model/update",                  Managed(model_admin::update)),
    ("PATCH",  "/model/{model_id}/update",       Managed(model_admin::patch)),
    ("POST",   "/model/delete",                  Managed(model_admin::delete)),
    ("POST",   "/v1/chat/completions",           ModelCall(proxy::chat)),
    ("POST",   "/chat/completions",              ModelCall(proxy::chat)),
    ("POST",   "/v1/completions",                ModelCall(proxy::completions)),
    ("POST",   "/completions",                   ModelCall(proxy::completions)),
    ("POST",   "/v1/embeddings",                 ModelCall(proxy::embeddings)),
    ("POST",   "/embeddings",                    ModelCall(proxy::embeddings)),
    // Azure OpenAI's inbound paths (issue 15), for the Azure SDKs: the model from the path.
    ("POST",   "/openai/deployments/{model}/chat/completions", ModelCall(proxy::azure_chat)),
    ("POST",   "/openai/deployments/{model}/completions",      ModelCall(proxy::azure_completions)),
    ("POST",   "/openai/deployments/{model}/embeddings",       ModelCall(proxy::azure_embeddings)),
    // LiteLLM's `/engines/{model}/…` (the OpenAI SDK's old engine paths): the model from the path.
    ("POST",   "/engines/{model}/chat/completions",            ModelCall(proxy::azure_chat)),
    ("POST",   "/engines/{model}/completions",                 ModelCall(proxy::azure_completions)),
    ("POST",   "/engines/{model}/embeddings",                  ModelCall(proxy::azure_embeddings)),
    // Anthropic's Messages API (issue 13): errors in Anthropic's envelope (`dispatch`).
    ("POST",   "/v1/messages",                   ModelCall(proxy::messages)),
    ("POST",   "/messages",                      ModelCall(proxy::messages)),
    ("POST",   "/v1/messages/count_tokens",      ModelCall(proxy::count_tokens)),
    ("POST",   "/messages/count_tokens",         ModelCall(proxy::count_tokens)),
    // Why a call would be admitted or refused (issue 16 item 1; `explain.rs`).
    ("POST",   "/access/explain",                Managed(explain::explain)),
    ("GET",    "/spend/logs",                    Managed(spend::logs)),
    ("POST",   "/admin/backup",                  Managed(admin::backup)),
    // State as a file (issue 16 item 4): proxy admins.
    ("GET",    "/state/export",                  Managed(state::export)),
    ("POST",   "/state/apply",                   Managed(state::apply)),
    // The web UI (issue 7): static files, session login, and the key form's model choices.
    ("GET",    "/ui",                            Public(ui::index)),
    ("POST",   "/ui/login",                      Public(ui::login)),
    ("POST",   "/ui/logout",                     Public(ui::logout)),
    ("GET",    "/ui/me",                         Managed(ui::me)),
    ("GET",    "/ui/key_model_options",          Managed(ui::key_model_options)),
    ("GET",    "/ui/{file}",                     Public(ui::asset)),
];
