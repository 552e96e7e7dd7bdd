//! Team endpoints (API.md §6 Teams, §4 write-time model checks, §5 roles, §8 moving teams).
//! Owns team create/update/delete/info/list, memberships, block and the team model list. The
//! queries live in `db::teams`; authorization in `access::policy`; model rules in `access::grant`.
//! Every write runs in one IMMEDIATE transaction that also re-reads the target and authorizes
//! on it, so a denied or failed call changes nothing.

use super::members::{self, TEAM};
use super::{patch, shapes, team_permissions, Body, Ctx, Reply, Req};
use crate::access::grant::{self, Holder};
use crate::access::{authority, policy};
use crate::audit::{Actor, Entry};
use crate::auth::Caller;
use crate::db::handle::Handle;
use crate::db::rows::unique_or;
use crate::db::{self, keys::KeySummary, members::Group, teams::TeamFields, teams::TeamRow};
use crate::error::{Error, Result};
use crate::util;

use super::team_members::team_admin_of;
pub use super::team_members::{member_add, member_delete, member_update};
use serde_json::{json, Value};

/// The team as stored now, with its members.
pub(super) fn team_reply<C: Handle + ?Sized>(c: &C, team_id: &str) -> Result<Value> {
    let t = db::teams::get(c, team_id)?
        .ok_or_else(|| Error::Internal(format!("team {team_id} vanished in its own tx")))?;
    let members = db::teams::members(c, team_id)?;
    Ok(shapes::team_with_members(&t, &members))
}

// ---------------------------------------------------------------------------------------------
// Shared checks

fn not_found(team_id: &str) -> Error {
    Error::NotFound(format!("Team not found, passed team_id={team_id}"))
}

/// The target team, or 404 when it is missing or the caller may not see it (API.md §8).
pub(super) fn visible_team<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    team_id: &str,
) -> Result<TeamRow> {
    match db::teams::get(c, team_id)? {
        Some(t) if policy::can_read_team(c, who, &t)? => Ok(t),
        _ => Err(not_found(team_id)),
    }
}

pub(super) fn team_id_param(body: &Body) -> Result<String> {
    body.req_str("team_id")
}

fn team_id_query(req: &Req) -> Result<String> {
    match req.query("team_id") {
        Some(t) if !t.trim().is_empty() => Ok(t.to_string()),
        _ => Err(Error::bad_param("team_id", "`team_id` is required")),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// `POST /team/new`: proxy admin, or org_admin of the given organization (who then becomes the
/// team's first admin, as LiteLLM adds a non-admin creator). A team outside any organization is
/// created by proxy admins only.
pub fn create(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    policy::require_writer(who)?;
    let team_id = match body.opt_str("team_id")? {
        Some(id) if id.trim().is_empty() => {
            return Err(Error::bad_param("team_id", "`team_id` must not be empty"))
        }
        Some(id) => id,
        None => util::uuid4(),
    };
    let org_id = body.opt_str("organization_id")?.filter(|o| !o.is_empty());
    let fields = TeamFields {
        alias: body.opt_str("team_alias")?,
        organization_id: org_id.clone(),
        models: body.opt_list("models")?.unwrap_or_default(),
        allowance: patch::allowance(&body)?.to_new(),
        blocked: body.opt_bool("blocked")?.unwrap_or(false),
        metadata: Value::Object(body.opt_obj("metadata")?.unwrap_or_default()),
        model_aliases: team_permissions::model_aliases(&body)?.unwrap_or_else(|| json!({})),
        member_permissions: team_permissions::member_permissions(&body)?,
    };
    let specs = members::specs(&TEAM, &body, "members_with_roles", false)?;
    let by = who.user_id.clone();
    let out = ctx.pool.write_db(|tx| {
        // The one authorization check, on the organization the team would belong to.
        let org_models = match &org_id {
            Some(o) => {
                let org = db::orgs::get(tx, o)?;
                let allowed = org.is_some() && policy::is_org_admin(tx, who, o)?;
                match org {
                    Some(org) if allowed => Some(org.models),
                    // A non-admin learns nothing about which org ids exist.
                    _ if !who.is_proxy_admin() => {
                        return Err(Error::Forbidden(format!(
                            "Only proxy admins or org admins of organization {o} can create \
                             teams in it"
                        )))
                    }
                    _ => {
                        return Err(Error::bad_param(
                            "organization_id",
                            format!("Organization {o} does not exist"),
                        ))
                    }
                }
            }
            None => {
                policy::require_proxy_admin(who)?;
                None
            }
        };
        grant::check_models(
            ctx.models.current().global(),
            &Holder::Team {
                org: org_models.as_deref(),
            },
            &fields.models,
        )?;
        db::teams::insert(tx, &team_id, &fields, by.as_deref())
            .map_err(|e| unique_or(e, || format!("Team {team_id} already exists")))?;
        // What the creator set carries its rank (`grant`): proxy admin, else org admin.
        let rank = if who.is_proxy_admin() {
            authority::Rank::ProxyAdmin
        } else {
            authority::Rank::OrgAdmin
        };
        let stamp = |set: bool| if set { rank.n() } else { 0 };
        db::authority::set_team_ranks(
            tx,
            &team_id,
            stamp(fields.blocked),
            stamp(authority::team_has_limits(&fields)),
        )?;
        let d = &ctx.cfg.user_defaults;
        let mut added = members::add(tx, d, &TEAM, &team_id, &specs, None, by.as_deref())?;
        // LiteLLM makes a non-admin creator the team's admin.
        if !who.is_proxy_admin() {
            if let Some(me) = &who.user_id {
                if !added.contains(me) {
                    db::members::add(tx, Group::Team, &team_id, me, "admin", None)?;
                    added.push(me.clone());
                }
            }
        }
        let out = team_reply(tx, &team_id)?;
        Entry::new("create", "team", &team_id)
            .org(org_id.as_deref())
            .after(out.clone())
            .record(tx, &Actor::of(who))?;
        Ok(out)
    })?;
    Reply::ok(out)
}

/// `POST /team/update`. Team admins may change `team_alias`, `metadata`, `blocked` and
/// `team_member_permissions`; budgets, limits, models and `model_aliases` need an org admin of
/// the team's org (or proxy admin). Another
/// `organization_id` moves the team (org admin of both orgs); `""` takes it out (proxy admin).
pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let alias = patch::text(&body, "team_alias")?;
    let metadata = body.opt_obj("metadata")?;
    let blocked = body.opt_bool("blocked")?;
    let models = body.opt_list("models")?;
    let allowance = patch::allowance(&body)?;
    // LiteLLM: team admins may not change `model_aliases`; `team_member_permissions` they may.
    let model_aliases = team_permissions::model_aliases(&body)?;
    let member_permissions = team_permissions::member_permissions(&body)?;
    // Models, aliases, budgets and limits (a `null` that clears one too) need an org admin.
    let manager_fields =
        models.is_some() || model_aliases.is_some() || allowance.first_present().is_some();
    // Absent or null: unchanged; "": out of its org; an id: move (API.md §8).
    let new_org: Option<Option<String>> =
        body.opt_str("organization_id")?
            .map(|o| if o.is_empty() { None } else { Some(o) });
    let by = who.user_id.clone();
    let out = ctx.pool.write_db(|tx| {
        let t = visible_team(tx, who, &team_id)?;
        let moving = new_org
            .as_ref()
            .filter(|o| o.as_deref() != t.organization_id.as_deref());
        // The one authorization check, on the stored team (and the org it would move to).
        let allowed = match moving {
            Some(None) => who.is_proxy_admin(),
            // A missing destination fails here for all but a proxy admin (400 below).
            Some(Some(dest)) => {
                policy::manages_team(tx, who, &t)? && policy::is_org_admin(tx, who, dest)?
            }
            None if manager_fields => policy::manages_team(tx, who, &t)?,
            None => policy::is_team_admin(tx, who, &t)?,
        };
        if !allowed {
            return Err(Error::Forbidden(match moving {
                Some(None) => "Only proxy admins can take a team out of its organization".into(),
                Some(Some(dest)) => format!(
                    "Moving team {team_id} needs org admin rights in its organization and in \
                     {dest}"
                ),
                None if manager_fields => format!(
                    "Only proxy admins or org admins of the team's organization can change \
                     team {team_id}'s models, model_aliases, budgets or limits"
                ),
                None => format!("Only admins of team {team_id} can update it"),
            }));
        }
        let old = team_reply(tx, &team_id)?;
        let mut f = TeamFields::of(&t);
        if let Some(Some(dest)) = moving {
            if db::orgs::get(tx, dest)?.is_none() {
                // Only a proxy admin gets here with a missing org (is_org_admin is true for them).
                return Err(Error::bad_param(
                    "organization_id",
                    format!("Organization {dest} does not exist"),
                ));
            }
        }
        if let Some(o) = moving {
            f.organization_id = o.clone();
        }
        alias.apply(&mut f.alias);
        if let Some(m) = metadata.clone() {
            f.metadata = Value::Object(m);
        }
        if let Some(b) = blocked {
            f.blocked = b;
        }
        if let Some(m) = models.clone() {
            f.models = m;
        }
        if let Some(a) = model_aliases.clone() {
            f.model_aliases = a;
        }
        if let Some(p) = member_permissions.clone() {
            f.member_permissions = Some(p);
        }
        allowance.apply(&mut f.allowance, util::now_ms());
        let rank = authority::team_rank(tx, who, Some(&t))?;
        let before = TeamFields::of(&t);
        authority::check_team_change(ctx.models.current().global(), tx, rank, &t, &before, &f)?;
        if models.is_some() || moving.is_some() {
            let org_models = match &f.organization_id {
                Some(o) => Some(
                    db::orgs::get(tx, o)?
                        .map(|org| org.models)
                        .ok_or_else(|| Error::Internal(format!("org {o} of team missing")))?,
                ),
                None => None,
            };
            let holder = Holder::Team {
                org: org_models.as_deref(),
            };
            grant::check_models(ctx.models.current().global(), &holder, &f.models).map_err(
                |e| match (&e, moving) {
                    (Error::BadRequest { message, .. }, Some(_)) if models.is_none() => {
                        Error::bad_param(
                            "organization_id",
                            format!("The team's models do not fit the new organization: {message}"),
                        )
                    }
                    _ => e,
                },
            )?;
        }
        db::teams::update(tx, &team_id, &f, by.as_deref())?;
        authority::stamp_team(tx, rank, &t, &before, &f)?;
        if let Some(o) = moving {
            db::teams::move_keys(tx, &team_id, o.as_deref())?;
        }
        let out = team_reply(tx, &team_id)?;
        // Org admins of the org it left and of the one it joined both see the move: the entry
        // is filed under the new one; a second under the old one when it moved.
        Entry::new("update", "team", &team_id)
            .org(f.organization_id.as_deref())
            .before(old.clone())
            .after(out.clone())
            .record(tx, &Actor::of(who))?;
        if moving.is_some() && t.organization_id.is_some() {
            Entry::new("update", "team", &team_id)
                .org(t.organization_id.as_deref())
                .before(old)
                .after(out.clone())
                .record(tx, &Actor::of(who))?;
        }
        Ok(out)
    })?;
    Reply::ok(update_answer(out))
}

/// `/team/update`'s answer: LiteLLM's `{"team_id", "data": {team}}` (API.md §9), with the
/// team's fields also at the top level as litegate answered before, so scripts and the UI that
/// read them keep working (README "LiteLLM compatibility").
fn update_answer(team: Value) -> Value {
    let mut out = team.clone();
    out["data"] = team;
    out
}

/// `POST /team/delete` (`team_ids`): all or nothing, in one transaction. Keys and memberships
/// go with each team (FK cascade), membership budget rows explicitly.
pub fn delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let ids = body.opt_list("team_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_param("team_ids", "`team_ids` is required"));
    }
    ctx.pool.write_db(|tx| {
        let mut teams = Vec::new();
        for id in &ids {
            teams.push(visible_team(tx, who, id)?);
        }
        for t in &teams {
            if !policy::manages_team(tx, who, t)? {
                return Err(Error::Forbidden(format!(
                    "Only proxy admins or org admins of the team's organization can delete \
                     team {}",
                    t.id
                )));
            }
        }
        for t in &teams {
            Entry::new("delete", "team", &t.id)
                .org(t.organization_id.as_deref())
                .before(team_reply(tx, &t.id)?)
                .record(tx, &Actor::of(who))?;
            db::teams::delete(tx, &t.id)?;
        }
        Ok(())
    })?;
    Reply::ok(json!({"deleted_teams": ids}))
}

/// `GET /team/info?team_id=` (LiteLLM shape: `team_id`, `team_info`, `keys`,
/// `team_memberships`). Readers: `policy::can_read_team`, and a key of the team itself (API.md
/// §9). Every reader sees the team's keys, but a key's `token` only when the reader could
/// read that key with `/key/info` (proxy admins and viewers, admins of the team, the key's
/// owner, the key itself); other members get `token: null`.
pub fn info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let team_id = team_id_query(req)?;
    let own_team_key = who
        .key
        .as_ref()
        .is_some_and(|k| k.team_id.as_deref() == Some(team_id.as_str()));
    let out = ctx.pool.read_db(|c| {
        let t = match db::teams::get(c, &team_id)? {
            Some(t) if own_team_key || policy::can_read_team(c, who, &t)? => t,
            _ => return Err(not_found(&team_id)),
        };
        let members = db::teams::members(c, &team_id)?;
        let keys = db::keys::summaries_by_team(c, &team_id)?;
        let all_tokens = who.role.reads_all() || policy::is_team_admin(c, who, &t)?;
        let shown = |k: &KeySummary| {
            let mut v = shapes::key_summary(k);
            let mine = k.user_id.is_some() && k.user_id == who.user_id;
            let itself = who.key.as_ref().is_some_and(|own| own.token == k.token);
            if !(all_tokens || mine || itself) {
                v["token"] = Value::Null;
            }
            v
        };
        Ok(json!({
            "team_id": t.id,
            "team_info": shapes::team_with_members(&t, &members),
            "keys": keys.iter().map(shown).collect::<Vec<_>>(),
            "team_memberships": members.iter().map(shapes::team_membership).collect::<Vec<_>>(),
        }))
    })?;
    Reply::ok(out)
}

/// `GET /team/list`: proxy admins and viewers see every team (filters `organization_id`,
/// `user_id`); others the teams they belong to and those of orgs where they are org_admin.
pub fn list(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let org = req.query("organization_id").filter(|s| !s.is_empty());
    let member = req.query("user_id").filter(|s| !s.is_empty());
    let out = ctx.pool.read_db(|c| {
        let viewer = if who.role.reads_all() {
            None
        } else {
            match &who.user_id {
                Some(u) => Some(u.as_str()),
                None => return Ok(Vec::new()),
            }
        };
        let teams = db::teams::list(c, org, member, viewer)?;
        teams
            .iter()
            .map(|t| Ok(shapes::team_with_members(t, &db::teams::members(c, &t.id)?)))
            .collect::<Result<Vec<_>>>()
    })?;
    Reply::ok(Value::Array(out))
}

/// Writes `f` over the stored team `t`, checked by `grant` (below the rank that set a limit,
/// a caller only tightens it); answers the team as stored now.
fn save_checked<C: Handle + ?Sized>(
    ctx: &Ctx,
    c: &C,
    who: &Caller,
    t: &TeamRow,
    f: &TeamFields,
    action: &str,
) -> Result<Value> {
    let old = team_reply(c, &t.id)?;
    let rank = authority::team_rank(c, who, Some(t))?;
    let before = TeamFields::of(t);
    authority::check_team_change(ctx.models.current().global(), c, rank, t, &before, f)?;
    db::teams::update(c, &t.id, f, who.user_id.as_deref())?;
    authority::stamp_team(c, rank, t, &before, f)?;
    let out = team_reply(c, &t.id)?;
    Entry::new(action, "team", &t.id)
        .org(t.organization_id.as_deref())
        .before(old)
        .after(out.clone())
        .record(c, &Actor::of(who))?;
    Ok(out)
}

fn set_blocked(ctx: &Ctx, who: &Caller, req: &Req, blocked: bool) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let out = ctx.pool.write_db(|tx| {
        let t = team_admin_of(tx, who, &team_id, "block or unblock it")?;
        let mut f = TeamFields::of(&t);
        f.blocked = blocked;
        let action = if blocked { "block" } else { "unblock" };
        save_checked(ctx, tx, who, &t, &f, action)
    })?;
    Reply::ok(out)
}

/// `POST /team/block` (`team_id`): proxy admin, org admin of its org, or team admin.
pub fn block(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    set_blocked(ctx, who, req, true)
}

/// `POST /team/unblock` (`team_id`).
pub fn unblock(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    set_blocked(ctx, who, req, false)
}

fn change_models(ctx: &Ctx, who: &Caller, req: &Req, add: bool) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let names = body.opt_list("models")?.unwrap_or_default();
    if names.is_empty() {
        return Err(Error::bad_param("models", "`models` is required"));
    }
    let out = ctx.pool.write_db(|tx| {
        let t = visible_team(tx, who, &team_id)?;
        // Adding widens and removing may widen too (an emptied list is unrestricted): both
        // need the org admin, never just the team admin (API.md §5).
        if !policy::manages_team(tx, who, &t)? {
            return Err(Error::Forbidden(format!(
                "Only proxy admins or org admins of the team's organization can change team \
                 {team_id}'s models"
            )));
        }
        let mut f = TeamFields::of(&t);
        if add {
            for n in &names {
                if !f.models.contains(n) {
                    f.models.push(n.clone());
                }
            }
            let org_models = match &t.organization_id {
                Some(o) => db::orgs::get(tx, o)?.map(|org| org.models),
                None => None,
            };
            if t.organization_id.is_some() && org_models.is_none() {
                return Err(Error::Internal("org of team missing".into()));
            }
            let holder = Holder::Team {
                org: org_models.as_deref(),
            };
            grant::check_models(ctx.models.current().global(), &holder, &f.models)?;
        } else {
            f.models.retain(|m| !names.contains(m));
        }
        let action = if add { "model_add" } else { "model_delete" };
        save_checked(ctx, tx, who, &t, &f, action)
    })?;
    Reply::ok(out)
}

/// `POST /team/model/add` (`team_id`, `models`): the result must fit the org (API.md §4).
pub fn model_add(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    change_models(ctx, who, req, true)
}

/// `POST /team/model/delete` (`team_id`, `models`).
pub fn model_delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    change_models(ctx, who, req, false)
}
