//! Organization endpoints (API.md §6 Organizations; roles §5; decisions §8): new, update,
//! delete, list, info (GET and the deprecated POST), member_add, member_update, member_delete.
//! Owns the JSON shape of an organization and of an organization membership. Budget fields are
//! parsed by `budgets::BudgetPatch`; model-list rules are `auth`'s (`exceeding`).
//!
//! Visibility (§8): an organization the caller may not read answers like a missing one (404);
//! one the caller may read but not change answers 403. Every write runs in one IMMEDIATE
//! transaction, authorization included, so a refused or failed request changes nothing.

use super::budgets::{max_budget_row, opt_id, BudgetPatch};
use super::{users, Body, Ctx, Reply, Req};
use crate::access::grant::{self, Holder};
use crate::access::{authority, policy};
use crate::auth::Caller;
use crate::db::{self, orgs::MemberRow, orgs::OrgRow, teams::TeamRow, users::UserRow};
use crate::error::{Error, Result};
use crate::user_defaults::UserDefaults;
use crate::util;
use rusqlite::Connection;
use serde_json::{json, Map, Value};

/// Roles a member may hold inside an organization.
const ORG_ROLES: [&str; 3] = ["org_admin", "internal_user", "internal_user_viewer"];
/// LiteLLM's default role for an added member.
const DEFAULT_MEMBER_ROLE: &str = "internal_user";

// ---------------------------------------------------------------------------------------------
// Shapes

fn budget_json(c: &Connection, id: Option<&str>) -> Result<Value> {
    Ok(match id {
        Some(id) => db::budgets::get(c, id)?
            .map(|b| b.to_json())
            .unwrap_or(Value::Null),
        None => Value::Null,
    })
}

fn member_json(c: &Connection, m: &MemberRow) -> Result<Value> {
    Ok(json!({
        "user_id": m.user_id,
        "user_email": m.user_email,
        "organization_id": m.organization_id,
        "user_role": m.user_role,
        "spend": m.spend,
        "budget_id": m.budget_id,
        "litellm_budget_table": budget_json(c, m.budget_id.as_deref())?,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    }))
}

fn team_json(t: &TeamRow) -> Value {
    json!({
        "team_id": t.id,
        "team_alias": t.alias,
        "organization_id": t.organization_id,
        "models": t.models,
        "spend": t.spend,
        "max_budget": t.max_budget,
        "soft_budget": t.soft_budget,
        "budget_duration": t.budget_duration,
        "budget_reset_at": t.budget_reset_at,
        "tpm_limit": t.tpm_limit,
        "rpm_limit": t.rpm_limit,
        "max_parallel_requests": t.max_parallel_requests,
        "blocked": t.blocked,
        "metadata": t.metadata,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}

/// A user as LiteLLM's `/organization/member_add` shows it (never the password hash).
fn user_json(u: &UserRow) -> Value {
    json!({
        "user_id": u.id,
        "user_email": u.email,
        "user_role": u.user_role,
        "models": u.models,
        "spend": u.spend,
        "max_budget": u.max_budget,
        "soft_budget": u.soft_budget,
        "budget_duration": u.budget_duration,
        "budget_reset_at": u.budget_reset_at,
        "tpm_limit": u.tpm_limit,
        "rpm_limit": u.rpm_limit,
        "max_parallel_requests": u.max_parallel_requests,
        "metadata": u.metadata,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
    })
}

/// The one shape of an organization (new, update, delete, list, info).
fn org_json(c: &Connection, o: &OrgRow) -> Result<Value> {
    let members = db::orgs::members(c, &o.id)?
        .iter()
        .map(|m| member_json(c, m))
        .collect::<Result<Vec<_>>>()?;
    let teams: Vec<Value> = db::orgs::teams(c, &o.id)?.iter().map(team_json).collect();
    Ok(json!({
        "organization_id": o.id,
        "organization_alias": o.alias,
        "models": o.models,
        "spend": o.spend,
        "budget_id": o.budget_id,
        "litellm_budget_table": budget_json(c, o.budget_id.as_deref())?,
        "metadata": o.metadata,
        "members": members,
        "teams": teams,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
        "created_by": o.created_by,
        "updated_by": o.updated_by,
    }))
}

// ---------------------------------------------------------------------------------------------
// Checks

fn org_not_found(id: &str) -> Error {
    Error::NotFound(format!("Organization not found: {id}"))
}

/// The organization, if it exists and the caller may read it; otherwise 404 (§8: an invisible
/// organization looks missing).
fn visible_org(c: &Connection, who: &Caller, id: &str) -> Result<OrgRow> {
    let org = db::orgs::get(c, id)?.ok_or_else(|| org_not_found(id))?;
    if !policy::can_read_org(c, who, id)? {
        return Err(org_not_found(id));
    }
    Ok(org)
}

/// The organization, if the caller may change it: 404 when missing or invisible, 403 when
/// visible but the caller is not a proxy admin or an org_admin of it.
fn changeable_org(c: &Connection, who: &Caller, id: &str) -> Result<OrgRow> {
    let org = visible_org(c, who, id)?;
    if !policy::is_org_admin(c, who, id)? {
        return Err(Error::Forbidden(format!(
            "Only a proxy admin or an org_admin of organization {id} can do this"
        )));
    }
    Ok(org)
}

/// `budget_id` and budget fields are alternatives; both at once is ambiguous (400).
fn budget_source(b: &Body) -> Result<Option<String>> {
    let budget_id = opt_id(b, "budget_id")?;
    if budget_id.is_some() {
        if let Some(f) = BudgetPatch::first_present(b) {
            return Err(Error::bad_param(
                f,
                format!("give either `budget_id` or budget fields such as `{f}`, not both"),
            ));
        }
    }
    Ok(budget_id)
}

fn existing_budget(c: &Connection, id: &str) -> Result<()> {
    match db::budgets::get(c, id)? {
        Some(_) => Ok(()),
        None => Err(Error::bad_param(
            "budget_id",
            format!("budget_id {id} does not exist; create it with /budget/new"),
        )),
    }
}

fn parse_metadata(b: &Body) -> Result<Option<Value>> {
    Ok(b.opt_obj("metadata")?.map(Value::Object))
}

// ---------------------------------------------------------------------------------------------
// Organizations

/// `POST /organization/new` (proxy admin).
pub fn create(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let b = req.json()?;
    let alias = b.req_str("organization_alias")?;
    let models = b.opt_list("models")?.unwrap_or_default();
    grant::check_models(
        &ctx.catalog,
        &Holder::Org {
            granter: who.chain(),
        },
        &models,
    )?;
    let budget_id = budget_source(&b)?;
    let patch = BudgetPatch::parse(&b)?;
    let metadata = parse_metadata(&b)?.unwrap_or_else(|| json!({}));
    let id = opt_id(&b, "organization_id")?.unwrap_or_else(util::uuid4);
    let out = ctx.pool.write(|tx| {
        let budget_id = match budget_id {
            Some(bid) => {
                existing_budget(tx, &bid)?;
                bid
            }
            // As LiteLLM: without a budget_id the org gets its own budget row, even an empty one.
            None => {
                let row = patch.new_row(util::uuid4(), who);
                db::budgets::insert(tx, &row)?;
                row.id
            }
        };
        let now = util::now_iso();
        let org = OrgRow {
            id: id.clone(),
            alias,
            models,
            spend: 0.0,
            budget_id: Some(budget_id),
            blocked: false,
            metadata,
            created_at: now.clone(),
            updated_at: now,
            created_by: who.user_id.clone(),
            updated_by: who.user_id.clone(),
        };
        db::orgs::insert(tx, &org).map_err(|e| {
            if db::is_unique_violation(&e) {
                Error::Conflict(format!("Organization id already exists: {id}"))
            } else {
                e.into()
            }
        })?;
        org_json(tx, &org)
    })?;
    Reply::ok(out)
}

/// `PATCH /organization/update`: the proxy admin changes anything; an org_admin of the org only
/// `organization_alias` and `metadata` (API.md §8).
pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let id = b.req_str("organization_id")?;
    let alias = b.opt_str("organization_alias")?;
    if alias.as_ref().is_some_and(|a| a.trim().is_empty()) {
        return Err(Error::bad_param(
            "organization_alias",
            "`organization_alias` must not be empty",
        ));
    }
    let models = b.opt_list("models")?;
    let budget_id = budget_source(&b)?;
    let budget_field = BudgetPatch::first_present(&b);
    let patch = BudgetPatch::parse(&b)?;
    let metadata = parse_metadata(&b)?;
    let out = ctx.pool.write(|tx| {
        let mut org = changeable_org(tx, who, &id)?;
        if !who.is_proxy_admin() {
            let admin_only = if models.is_some() {
                Some("models")
            } else if budget_id.is_some() {
                Some("budget_id")
            } else {
                budget_field
            };
            if let Some(f) = admin_only {
                return Err(Error::Forbidden(format!(
                    "Only a proxy admin can change an organization's models or budget (`{f}`)"
                )));
            }
        }
        if let Some(m) = models {
            grant::check_models(
                &ctx.catalog,
                &Holder::Org {
                    granter: who.chain(),
                },
                &m,
            )?;
            org.models = m;
        }
        if let Some(bid) = budget_id {
            existing_budget(tx, &bid)?;
            org.budget_id = Some(bid);
        } else if budget_field.is_some() {
            let existing = match &org.budget_id {
                Some(bid) => db::budgets::get(tx, bid)?,
                None => None,
            };
            match existing {
                Some(mut row) => {
                    let now_ms = util::now_ms();
                    patch.apply(&mut row, now_ms);
                    row.updated_at = util::iso_from_ms(now_ms);
                    row.updated_by = who.user_id.clone();
                    db::budgets::update(tx, &row)?;
                }
                None => {
                    let row = patch.new_row(util::uuid4(), who);
                    db::budgets::insert(tx, &row)?;
                    org.budget_id = Some(row.id);
                }
            }
        }
        if let Some(a) = alias {
            org.alias = a;
        }
        if let Some(m) = metadata {
            org.metadata = m;
        }
        org.updated_at = util::now_iso();
        org.updated_by = who.user_id.clone();
        db::orgs::update(tx, &org)?;
        org_json(tx, &org)
    })?;
    Reply::ok(out)
}

/// `DELETE /organization/delete` (proxy admin): `organization_ids`. In one transaction: every id
/// must exist (else 404, nothing deleted); the orgs go with their teams, those teams' keys and
/// memberships, keys whose own organization is the org, the org's memberships (schema
/// cascades), and the budget rows they owned that nothing else uses (API.md §8 "Org delete").
pub fn delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let b = req.json()?;
    let mut ids = b.opt_list("organization_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_param(
            "organization_ids",
            "`organization_ids` is required: a non-empty list of organization ids",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    let out = ctx.pool.write(|tx| {
        let mut shaped = Vec::with_capacity(ids.len());
        for id in &ids {
            let org = db::orgs::get(tx, id)?.ok_or_else(|| org_not_found(id))?;
            shaped.push(org_json(tx, &org)?);
        }
        for id in &ids {
            let budgets = db::orgs::budget_ids_owned(tx, id)?;
            db::orgs::delete(tx, id)?;
            for bid in budgets {
                db::budgets::delete_if_unused(tx, &bid)?;
            }
        }
        Ok(shaped)
    })?;
    Reply::ok(Value::Array(out))
}

/// `GET /organization/list`: proxy admins and viewers see all; others the orgs they belong to.
pub fn list(ctx: &Ctx, who: &Caller, _req: &Req) -> Result<Reply> {
    let out = ctx.pool.read(|c| {
        let rows = if who.role.reads_all() {
            db::orgs::list_all(c)?
        } else {
            match &who.user_id {
                Some(u) => db::orgs::list_for_user(c, u)?,
                None => Vec::new(),
            }
        };
        rows.iter()
            .map(|o| org_json(c, o))
            .collect::<Result<Vec<_>>>()
    })?;
    Reply::ok(Value::Array(out))
}

/// `GET /organization/info?organization_id=`: proxy admins/viewers and members of the org.
pub fn info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let id = req
        .query("organization_id")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            Error::bad_param(
                "organization_id",
                "query parameter `organization_id` is required",
            )
        })?;
    let out = ctx.pool.read(|c| org_json(c, &visible_org(c, who, id)?))?;
    Reply::ok(out)
}

/// Deprecated `POST /organization/info` with `{"organizations": [ids]}`: a list; any unknown or
/// invisible id → 404.
pub fn info_deprecated(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let ids = b.opt_list("organizations")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_param(
            "organizations",
            "`organizations` is required: a non-empty list of organization ids",
        ));
    }
    let out = ctx.pool.read(|c| {
        ids.iter()
            .map(|id| org_json(c, &visible_org(c, who, id)?))
            .collect::<Result<Vec<_>>>()
    })?;
    Reply::ok(Value::Array(out))
}

// ---------------------------------------------------------------------------------------------
// Members

/// One entry of `member`: a role and who.
struct NewMember {
    role: String,
    user_id: Option<String>,
    user_email: Option<String>,
}

fn role_field(m: &Body, required: bool) -> Result<Option<String>> {
    match m.opt_str("role")? {
        None if required => Ok(Some(DEFAULT_MEMBER_ROLE.to_string())),
        None => Ok(None),
        Some(r) if ORG_ROLES.contains(&r.as_str()) => Ok(Some(r)),
        Some(r) => Err(Error::bad_param(
            "role",
            format!("role '{r}' is not one of {ORG_ROLES:?}"),
        )),
    }
}

/// `member`: one object or a non-empty list of objects `{role, user_id | user_email}`.
fn parse_members(b: &Body) -> Result<Vec<NewMember>> {
    let shape_err = || {
        Error::bad_param(
            "member",
            "`member` must be an object or a non-empty list of objects \
             {\"role\", \"user_id\" or \"user_email\"}",
        )
    };
    let items: Vec<Map<String, Value>> = match b.raw("member") {
        Some(Value::Object(m)) => vec![m.clone()],
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| v.as_object().cloned().ok_or_else(shape_err))
            .collect::<Result<_>>()?,
        _ => return Err(shape_err()),
    };
    items
        .into_iter()
        .map(|m| {
            let m = Body(m);
            let user_id = opt_id(&m, "user_id")?;
            let user_email = opt_id(&m, "user_email")?;
            if user_id.is_none() && user_email.is_none() {
                return Err(Error::bad_param(
                    "member",
                    "each member needs a `user_id` or a `user_email`",
                ));
            }
            Ok(NewMember {
                role: role_field(&m, true)?.unwrap_or_default(),
                user_id,
                user_email,
            })
        })
        .collect()
}

/// The one user with this email (case-insensitive): None when there is none, 400 when several.
fn user_by_email(c: &Connection, email: &str) -> Result<Option<String>> {
    let mut ids = db::users::ids_by_email(c, email)?;
    if ids.len() > 1 {
        return Err(Error::bad_param(
            "user_email",
            format!(
                "{} users have the email {email}; name the member by user_id",
                ids.len()
            ),
        ));
    }
    Ok(ids.pop())
}

/// The member's user id, creating the user when missing, as LiteLLM does (with the new-user
/// defaults: no personal models unless configured, `users::create_implicit`).
fn resolve_or_create_user(c: &Connection, d: &UserDefaults, m: &NewMember) -> Result<String> {
    let found = match (&m.user_id, &m.user_email) {
        (Some(id), _) => db::users::get(c, id)?.map(|u| u.id),
        (None, Some(email)) => user_by_email(c, email)?,
        (None, None) => None,
    };
    if let Some(id) = found {
        return Ok(id);
    }
    let id = m.user_id.clone().unwrap_or_else(util::uuid4);
    users::create_implicit(c, d, &id, m.user_email.as_deref()).map_err(|e| {
        if db::is_unique_violation(&e) {
            Error::Conflict(format!(
                "user_email {} already belongs to another user",
                m.user_email.as_deref().unwrap_or_default()
            ))
        } else {
            e.into()
        }
    })?;
    Ok(id)
}

/// `POST /organization/member_add` (proxy admin or org_admin of the org).
pub fn member_add(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let org_id = b.req_str("organization_id")?;
    let members = parse_members(&b)?;
    let max_budget = b.opt_budget("max_budget_in_organization")?;
    let out = ctx.pool.write(|tx| {
        changeable_org(tx, who, &org_id)?;
        let mut users = Vec::with_capacity(members.len());
        let mut memberships = Vec::with_capacity(members.len());
        for m in &members {
            let user_id = resolve_or_create_user(tx, &ctx.cfg.user_defaults, m)?;
            let budget_id = match max_budget {
                Some(mb) => {
                    let row = max_budget_row(mb, who);
                    db::budgets::insert(tx, &row)?;
                    Some(row.id)
                }
                None => None,
            };
            db::orgs::member_insert(tx, &org_id, &user_id, &m.role, budget_id.as_deref()).map_err(
                |e| {
                    if db::is_unique_violation(&e) {
                        Error::Conflict(format!(
                            "User {user_id} is already a member of organization {org_id}"
                        ))
                    } else {
                        e.into()
                    }
                },
            )?;
            if budget_id.is_some() {
                let rank = authority::org_rank(tx, who, &org_id)?;
                db::authority::set_org_member_rank(tx, &org_id, &user_id, rank.n())?;
            }
            if let Some(u) = db::users::get(tx, &user_id)? {
                // An org admin may name any existing user: it learns who they are in the org,
                // not their personal models, budgets, spend or metadata (proxy readers do).
                users.push(if who.role.reads_all() {
                    user_json(&u)
                } else {
                    json!({"user_id": u.id, "user_email": u.email, "user_role": u.user_role})
                });
            }
            if let Some(mr) = db::orgs::member_get(tx, &org_id, &user_id)? {
                memberships.push(member_json(tx, &mr)?);
            }
        }
        Ok(json!({
            "organization_id": org_id,
            "updated_users": users,
            "updated_organization_memberships": memberships,
        }))
    })?;
    Reply::ok(out)
}

/// The target of member_update / member_delete: `user_id`, else `user_email`. A user that does
/// not exist is reported as an unknown membership (404).
fn target_membership(c: &Connection, b: &Body, org_id: &str) -> Result<MemberRow> {
    let user_id = match (opt_id(b, "user_id")?, opt_id(b, "user_email")?) {
        (Some(id), _) => Some(id),
        (None, Some(email)) => user_by_email(c, &email)?,
        (None, None) => {
            return Err(Error::bad_param(
                "user_id",
                "`user_id` or `user_email` of the member is required",
            ))
        }
    };
    let missing = || Error::NotFound(format!("Member not found in organization {org_id}"));
    match user_id {
        Some(u) => db::orgs::member_get(c, org_id, &u)?.ok_or_else(missing),
        None => Err(missing()),
    }
}

/// `PATCH /organization/member_update` (proxy admin or org_admin of the org): `role` and/or
/// `max_budget_in_organization`. Never touches the user's global role.
pub fn member_update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let org_id = b.req_str("organization_id")?;
    let role = role_field(&b, false)?;
    let max_budget = b.opt_budget("max_budget_in_organization")?;
    if role.is_none() && max_budget.is_none() {
        return Err(Error::bad_param(
            "role",
            "nothing to change: give `role` and/or `max_budget_in_organization`",
        ));
    }
    let out = ctx.pool.write(|tx| {
        changeable_org(tx, who, &org_id)?;
        let m = target_membership(tx, &b, &org_id)?;
        let rank = authority::org_rank(tx, who, &org_id)?;
        let budget_rank = db::authority::org_member_rank(tx, &org_id, &m.user_id)?;
        let mut budget_id = m.budget_id.clone();
        if let Some(mb) = max_budget {
            let existing = match &m.budget_id {
                Some(bid) => db::budgets::get(tx, bid)?,
                None => None,
            };
            let old = existing.as_ref().and_then(|r| r.max_budget);
            let what = format!("user {} in organization {org_id}", m.user_id);
            authority::check_member_budget(
                rank,
                budget_rank,
                old,
                Some(mb),
                "max_budget_in_organization",
                &what,
            )?;
            if old != Some(mb) {
                let next = authority::next_rank(budget_rank, rank, true);
                db::authority::set_org_member_rank(tx, &org_id, &m.user_id, next)?;
            }
            match existing {
                Some(mut row) => {
                    row.max_budget = Some(mb);
                    row.updated_at = util::now_iso();
                    row.updated_by = who.user_id.clone();
                    db::budgets::update(tx, &row)?;
                }
                None => {
                    let row = max_budget_row(mb, who);
                    db::budgets::insert(tx, &row)?;
                    budget_id = Some(row.id);
                }
            }
        }
        let role = role.unwrap_or_else(|| m.user_role.clone());
        db::orgs::member_update(tx, &org_id, &m.user_id, &role, budget_id.as_deref())?;
        if m.user_role == "org_admin" && role != "org_admin" {
            // No longer its admin: keys held in its teams only as admin go (`access::authority`).
            db::authority::delete_org_keys(tx, &org_id, &m.user_id, false)?;
        }
        let updated = db::orgs::member_get(tx, &org_id, &m.user_id)?
            .ok_or_else(|| Error::internal("membership vanished inside its transaction"))?;
        member_json(tx, &updated)
    })?;
    Reply::ok(out)
}

/// `DELETE /organization/member_delete` (proxy admin or org_admin of the org). The membership's
/// budget row goes too. Answers the removed membership.
pub fn member_delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let org_id = b.req_str("organization_id")?;
    let out = ctx.pool.write(|tx| {
        changeable_org(tx, who, &org_id)?;
        let m = target_membership(tx, &b, &org_id)?;
        // Removing and adding again would drop a budget a higher rank set (`access::authority`).
        let rank = authority::org_rank(tx, who, &org_id)?;
        let budget_rank = db::authority::org_member_rank(tx, &org_id, &m.user_id)?;
        let what = format!("user {} in organization {org_id}", m.user_id);
        authority::check_member_removal(rank, budget_rank, m.budget_id.is_some(), &what)?;
        let shaped = member_json(tx, &m)?;
        db::orgs::member_delete(tx, &org_id, &m.user_id)?;
        // What the membership gave goes with it: its admin's keys in the org's teams they are
        // not members of, and personal keys in the org.
        db::authority::delete_org_keys(tx, &org_id, &m.user_id, true)?;
        if let Some(bid) = &m.budget_id {
            db::budgets::delete_if_unused(tx, bid)?;
        }
        Ok(shaped)
    })?;
    Reply::ok(out)
}
