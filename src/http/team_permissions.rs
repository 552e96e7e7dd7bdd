//! LiteLLM's team `model_aliases` and `team_member_permissions` (issue 15 item 5; README
//! "LiteLLM compatibility"): reading them from `/team/new` and `/team/update` bodies, and the
//! `/team/permissions_list` and `/team/permissions_update` endpoints. What the aliases do at a
//! call is `call::resolve`'s; what the permissions allow is `access::authority::member_permission`'s.

use super::{shapes, Body, Ctx, Reply, Req};
use crate::access::{authority, policy};
use crate::audit::{Actor, Entry};
use crate::auth::Caller;
use crate::db;
use crate::db::teams::TeamFields;
use crate::error::{Error, Result};
use serde_json::{json, Value};

/// `model_aliases` as given: a JSON object of alias → model name (`null`/absent: `None`).
pub fn model_aliases(body: &Body) -> Result<Option<Value>> {
    let Some(m) = body.opt_obj("model_aliases")? else {
        return Ok(None);
    };
    if let Some((alias, _)) = m.iter().find(|(_, v)| !v.is_string()) {
        return Err(Error::bad_param(
            "model_aliases",
            format!("model_aliases[{alias:?}] must be a model name (a string)"),
        ));
    }
    Ok(Some(Value::Object(m)))
}

/// `team_member_permissions` as given, checked (`null`/absent: `None`).
pub fn member_permissions(body: &Body) -> Result<Option<Vec<String>>> {
    body.opt_list("team_member_permissions")?
        .map(authority::check_member_permissions)
        .transpose()
}

/// `GET /team/permissions_list?team_id=`: the team's list (`null` when never set: litegate's
/// rules before the list hold) and every route a list may name. Read by proxy admins and
/// viewers and the team's admins (LiteLLM's rule); other members get 403, others 404.
pub fn list(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let team_id = match req.query("team_id") {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        _ => return Err(Error::bad_param("team_id", "`team_id` is required")),
    };
    let out = ctx.pool.read_db(|c| {
        let t = team_for(c, who, &team_id)?;
        if !(who.role.reads_all() || policy::is_team_admin(c, who, &t)?) {
            return Err(Error::Forbidden(format!(
                "Only proxy admins or admins of team {team_id} can read its member permissions"
            )));
        }
        Ok(json!({
            "team_id": t.id,
            "team_member_permissions": t.member_permissions,
            "all_available_permissions": authority::MEMBER_PERMISSION_ROUTES,
        }))
    })?;
    Reply::ok(out)
}

/// `POST /team/permissions_update` (`team_id`, `team_member_permissions`): team admins and
/// above; answers the team (LiteLLM's `LiteLLM_TeamTable`).
pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let team_id = body.req_str("team_id")?;
    let perms = member_permissions(&body)?.ok_or_else(|| {
        Error::bad_param(
            "team_member_permissions",
            "`team_member_permissions` (a list of routes) is required",
        )
    })?;
    policy::require_writer(who)?;
    let by = who.user_id.clone();
    let out = ctx.pool.write_db(|tx| {
        let t = team_for(tx, who, &team_id)?;
        if !policy::is_team_admin(tx, who, &t)? {
            return Err(Error::Forbidden(format!(
                "Only proxy admins or admins of team {team_id} can update its member permissions"
            )));
        }
        let mut f = TeamFields::of(&t);
        f.member_permissions = Some(perms.clone());
        db::teams::update(tx, &team_id, &f, by.as_deref())?;
        let after = db::teams::get(tx, &team_id)?
            .ok_or_else(|| Error::Internal(format!("team {team_id} vanished in its own tx")))?;
        let out = shapes::team(&after);
        Entry::new("permissions_update", "team", &team_id)
            .org(t.organization_id.as_deref())
            .before(shapes::team(&t))
            .after(out.clone())
            .record(tx, &Actor::of(who))?;
        Ok(out)
    })?;
    Reply::ok(out)
}

/// The team, or 404 when it is missing or the caller may not read it.
fn team_for<C: db::handle::Handle + ?Sized>(
    c: &C,
    who: &Caller,
    team_id: &str,
) -> Result<db::teams::TeamRow> {
    match db::teams::get(c, team_id)? {
        Some(t) if policy::can_read_team(c, who, &t)? => Ok(t),
        _ => Err(Error::NotFound(format!(
            "Team not found, passed team_id={team_id}"
        ))),
    }
}
