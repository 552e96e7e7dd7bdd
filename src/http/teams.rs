//! Team endpoints (API.md §6 Teams, §4 write-time model checks, §5 roles, §8 moving teams).
//! Owns team create/update/delete/info/list, memberships, block and the team model list. The
//! queries live in `db::teams`; authorization in `access::policy`; model rules in `access::grant`.
//! Every write runs in one IMMEDIATE transaction that also re-reads the target and authorizes
//! on it, so a denied or failed call changes nothing.

use super::{users, Body, Ctx, Reply, Req};
use crate::access::grant::{self, Holder};
use crate::access::{authority, policy};
use crate::auth::Caller;
use crate::db::{self, keys::KeySummary, teams::MemberRow, teams::TeamFields, teams::TeamRow};
use crate::error::{Error, Result};
use crate::user_defaults::UserDefaults;
use crate::util;
use rusqlite::Connection;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Shapes

pub fn member_json(m: &MemberRow) -> Value {
    json!({"user_id": m.user_id, "user_email": m.user_email, "role": m.role})
}

/// LiteLLM's `LiteLLM_TeamMembership` shape.
pub fn membership_json(m: &MemberRow) -> Value {
    json!({
        "team_id": m.team_id,
        "user_id": m.user_id,
        "role": m.role,
        "spend": m.spend,
        "budget_id": m.budget_id,
        "litellm_budget_table": m.budget_id.as_ref().map(|id| json!({
            "budget_id": id,
            "max_budget": m.max_budget,
        })),
    })
}

/// A team object (API.md §6 team fields) with its members.
pub fn team_json(t: &TeamRow, members: &[MemberRow]) -> Value {
    json!({
        "team_id": t.id,
        "team_alias": t.alias,
        "organization_id": t.organization_id,
        "models": t.models,
        "members_with_roles": members.iter().map(member_json).collect::<Vec<_>>(),
        "max_budget": t.max_budget,
        "soft_budget": t.soft_budget,
        "spend": t.spend,
        "budget_duration": t.budget_duration,
        "budget_reset_at": t.budget_reset_at,
        "tpm_limit": t.tpm_limit,
        "rpm_limit": t.rpm_limit,
        "max_parallel_requests": t.max_parallel_requests,
        "blocked": t.blocked,
        "metadata": t.metadata,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "created_by": t.created_by,
        "updated_by": t.updated_by,
    })
}

/// A key as team and user info show it: the token (its SHA-256), never the raw key.
pub fn key_json(k: &KeySummary) -> Value {
    json!({
        "token": k.token,
        "key_name": k.key_name,
        "key_alias": k.key_alias,
        "models": k.models,
        "spend": k.spend,
        "max_budget": k.max_budget,
        "expires": k.expires,
        "user_id": k.user_id,
        "team_id": k.team_id,
        "organization_id": k.organization_id,
        "blocked": k.blocked,
        "created_at": k.created_at,
    })
}

/// The team as stored now, with its members.
fn team_reply(c: &Connection, team_id: &str) -> Result<Value> {
    let t = db::teams::get(c, team_id)?
        .ok_or_else(|| Error::Internal(format!("team {team_id} vanished in its own tx")))?;
    let members = db::teams::members(c, team_id)?;
    Ok(team_json(&t, &members))
}

// ---------------------------------------------------------------------------------------------
// Shared checks

fn not_found(team_id: &str) -> Error {
    Error::NotFound(format!("Team not found, passed team_id={team_id}"))
}

/// The target team, or 404 when it is missing or the caller may not see it (API.md §8).
fn visible_team(c: &Connection, who: &Caller, team_id: &str) -> Result<TeamRow> {
    match db::teams::get(c, team_id)? {
        Some(t) if policy::can_read_team(c, who, &t)? => Ok(t),
        _ => Err(not_found(team_id)),
    }
}

fn team_id_param(body: &Body) -> Result<String> {
    body.req_str("team_id")
}

fn team_id_query(req: &Req) -> Result<String> {
    match req.query("team_id") {
        Some(t) if !t.trim().is_empty() => Ok(t.to_string()),
        _ => Err(Error::bad_param("team_id", "`team_id` is required")),
    }
}

fn unique_or(e: rusqlite::Error, what: impl FnOnce() -> String) -> Error {
    if db::is_unique_violation(&e) {
        Error::Conflict(what())
    } else {
        e.into()
    }
}

/// One `{role, user_id | user_email}` entry of `member` / `members_with_roles`.
struct MemberSpec {
    role: String,
    user_id: Option<String>,
    user_email: Option<String>,
}

fn member_spec(field: &str, v: &Value) -> Result<MemberSpec> {
    let Some(o) = v.as_object() else {
        return Err(Error::bad_param(
            field,
            format!("`{field}` entries must be objects {{role, user_id | user_email}}"),
        ));
    };
    let text = |k: &str| -> Result<Option<String>> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => {
                super::fields::check(k, s).map(|_| Some(s.clone()))
            }
            Some(_) => Err(Error::bad_param(
                field,
                format!("`{field}.{k}` must be a non-empty string"),
            )),
        }
    };
    let role = text("role")?.unwrap_or_else(|| "user".to_string());
    if role != "admin" && role != "user" {
        return Err(Error::bad_param(
            field,
            format!("`{field}.role` must be 'admin' or 'user', got '{role}'"),
        ));
    }
    let (user_id, user_email) = (text("user_id")?, text("user_email")?);
    if user_id.is_none() && user_email.is_none() {
        return Err(Error::bad_param(
            field,
            format!("`{field}` entries need `user_id` or `user_email`"),
        ));
    }
    Ok(MemberSpec {
        role,
        user_id,
        user_email,
    })
}

/// `member` may be one object or a list of them.
fn member_specs(body: &Body, field: &str, required: bool) -> Result<Vec<MemberSpec>> {
    match body.raw(field) {
        None if required => Err(Error::bad_param(field, format!("`{field}` is required"))),
        None => Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|v| member_spec(field, v)).collect(),
        Some(v @ Value::Object(_)) => Ok(vec![member_spec(field, v)?]),
        Some(_) => Err(Error::bad_param(
            field,
            format!("`{field}` must be an object or a list of objects"),
        )),
    }
}

/// The user a member entry names, created (as `internal_user`) when missing, as LiteLLM does.
fn resolve_or_create(c: &Connection, d: &UserDefaults, m: &MemberSpec) -> Result<String> {
    if let Some(id) = &m.user_id {
        if db::users::get(c, id)?.is_none() {
            users::create_implicit(c, d, id, m.user_email.as_deref()).map_err(|e| {
                unique_or(e, || format!("another user already has the email of {id}"))
            })?;
        }
        return Ok(id.clone());
    }
    let email = m.user_email.as_deref().unwrap_or_default();
    let ids = db::users::ids_by_email(c, email)?;
    match ids.as_slice() {
        [] => {
            let id = util::uuid4();
            users::create_implicit(c, d, &id, Some(email))?;
            Ok(id)
        }
        [one] => Ok(one.clone()),
        _ => Err(Error::bad_param(
            "user_email",
            format!("more than one user has the email {email}; pass user_id"),
        )),
    }
}

/// The user named by `user_id` or `user_email` of a member operation; 404 when no such user.
fn resolve_existing(c: &Connection, body: &Body, team_id: &str) -> Result<String> {
    if let Some(id) = body.opt_str("user_id")? {
        return Ok(id);
    }
    let Some(email) = body.opt_str("user_email")? else {
        return Err(Error::bad_param(
            "user_id",
            "`user_id` or `user_email` is required",
        ));
    };
    let ids = db::users::ids_by_email(c, &email)?;
    match ids.as_slice() {
        [] => Err(Error::NotFound(format!(
            "User {email} is not a member of team {team_id}"
        ))),
        [one] => Ok(one.clone()),
        _ => Err(Error::bad_param(
            "user_email",
            format!("more than one user has the email {email}; pass user_id"),
        )),
    }
}

fn add_members(
    c: &Connection,
    d: &UserDefaults,
    team_id: &str,
    specs: &[MemberSpec],
    budget: Option<f64>,
    by: Option<&str>,
) -> Result<Vec<String>> {
    let mut added = Vec::new();
    for m in specs {
        let uid = resolve_or_create(c, d, m)?;
        let budget_id = match budget {
            Some(b) => Some(db::teams::insert_budget(c, b, by)?),
            None => None,
        };
        db::teams::add_member(c, team_id, &uid, &m.role, budget_id.as_deref()).map_err(|e| {
            unique_or(e, || {
                format!("User {uid} is already a member of team {team_id}")
            })
        })?;
        added.push(uid);
    }
    Ok(added)
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
    let models = body.opt_list("models")?.unwrap_or_default();
    let duration = body.opt_duration("budget_duration")?;
    let fields = TeamFields {
        alias: body.opt_str("team_alias")?,
        organization_id: org_id.clone(),
        models,
        max_budget: body.opt_budget("max_budget")?,
        soft_budget: body.opt_budget("soft_budget")?,
        budget_reset_at: duration.as_ref().map(|(_, s)| util::iso_in_secs(*s)),
        budget_duration: duration.map(|(d, _)| d),
        tpm_limit: body.opt_limit("tpm_limit")?,
        rpm_limit: body.opt_limit("rpm_limit")?,
        max_parallel_requests: body.opt_limit("max_parallel_requests")?,
        blocked: body.opt_bool("blocked")?.unwrap_or(false),
        metadata: Value::Object(body.opt_obj("metadata")?.unwrap_or_default()),
    };
    let specs = member_specs(&body, "members_with_roles", false)?;
    let by = who.user_id.clone();
    let out = ctx.pool.write(|tx| {
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
            &ctx.catalog,
            &Holder::Team {
                org: org_models.as_deref(),
            },
            &fields.models,
        )?;
        db::teams::insert(tx, &team_id, &fields, by.as_deref())
            .map_err(|e| unique_or(e, || format!("Team {team_id} already exists")))?;
        // What the creator set carries its rank (`access::authority`): proxy admin, else org admin.
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
        let mut added = add_members(
            tx,
            &ctx.cfg.user_defaults,
            &team_id,
            &specs,
            None,
            by.as_deref(),
        )?;
        // LiteLLM makes a non-admin creator the team's admin.
        if !who.is_proxy_admin() {
            if let Some(me) = &who.user_id {
                if !added.contains(me) {
                    db::teams::add_member(tx, &team_id, me, "admin", None)?;
                    added.push(me.clone());
                }
            }
        }
        team_reply(tx, &team_id)
    })?;
    Reply::ok(out)
}

/// Fields of `/team/update` only an org admin (or proxy admin) may send.
const MANAGER_FIELDS: &[&str] = &[
    "models",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
];

/// `POST /team/update`. Team admins may change `team_alias`, `metadata` and `blocked`; budgets,
/// limits and models need an org admin of the team's org (or proxy admin). Another
/// `organization_id` moves the team (org admin of both orgs); `""` takes it out (proxy admin).
pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let alias = body.opt_str("team_alias")?;
    let metadata = body.opt_obj("metadata")?;
    let blocked = body.opt_bool("blocked")?;
    let models = body.opt_list("models")?;
    let max_budget = body.opt_budget("max_budget")?;
    let soft_budget = body.opt_budget("soft_budget")?;
    let duration = body.opt_duration("budget_duration")?;
    let tpm = body.opt_limit("tpm_limit")?;
    let rpm = body.opt_limit("rpm_limit")?;
    let par = body.opt_limit("max_parallel_requests")?;
    // Absent or null: unchanged; "": out of its org; an id: move (API.md §8).
    let new_org: Option<Option<String>> =
        body.opt_str("organization_id")?
            .map(|o| if o.is_empty() { None } else { Some(o) });
    let by = who.user_id.clone();
    let out = ctx.pool.write(|tx| {
        let t = visible_team(tx, who, &team_id)?;
        let moving = new_org
            .as_ref()
            .filter(|o| o.as_deref() != t.organization_id.as_deref());
        let manager_fields = MANAGER_FIELDS.iter().any(|f| body.given(f));
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
                     team {team_id}'s models, budgets or limits"
                ),
                None => format!("Only admins of team {team_id} can update it"),
            }));
        }
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
        if let Some(a) = alias.clone() {
            f.alias = Some(a);
        }
        if let Some(m) = metadata.clone() {
            f.metadata = Value::Object(m);
        }
        if let Some(b) = blocked {
            f.blocked = b;
        }
        if let Some(m) = models.clone() {
            f.models = m;
        }
        f.max_budget = max_budget.or(f.max_budget);
        f.soft_budget = soft_budget.or(f.soft_budget);
        f.tpm_limit = tpm.or(f.tpm_limit);
        f.rpm_limit = rpm.or(f.rpm_limit);
        f.max_parallel_requests = par.or(f.max_parallel_requests);
        if let Some((d, secs)) = duration.clone() {
            f.budget_duration = Some(d);
            f.budget_reset_at = Some(util::iso_in_secs(secs));
        }
        let rank = authority::team_rank(tx, who, Some(&t))?;
        let before = TeamFields::of(&t);
        authority::check_team_change(&ctx.catalog, tx, rank, &t, &before, &f)?;
        if models.is_some() || moving.is_some() {
            let org_models = match &f.organization_id {
                Some(o) => Some(
                    db::orgs::get(tx, o)?
                        .map(|org| org.models)
                        .ok_or_else(|| Error::Internal(format!("org {o} of team missing")))?,
                ),
                None => None,
            };
            grant::check_models(
                &ctx.catalog,
                &Holder::Team {
                    org: org_models.as_deref(),
                },
                &f.models,
            )
            .map_err(|e| match (&e, moving) {
                (Error::BadRequest { message, .. }, Some(_)) if models.is_none() => {
                    Error::bad_param(
                        "organization_id",
                        format!("The team's models do not fit the new organization: {message}"),
                    )
                }
                _ => e,
            })?;
        }
        db::teams::update(tx, &team_id, &f, by.as_deref())?;
        authority::stamp_team(tx, rank, &t, &before, &f)?;
        if let Some(o) = moving {
            db::teams::move_keys(tx, &team_id, o.as_deref())?;
        }
        team_reply(tx, &team_id)
    })?;
    Reply::ok(out)
}

/// `POST /team/delete` (`team_ids`): all or nothing, in one transaction. Keys and memberships
/// go with each team (FK cascade), membership budget rows explicitly.
pub fn delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let ids = body.opt_list("team_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_param("team_ids", "`team_ids` is required"));
    }
    ctx.pool.write(|tx| {
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
    let out = ctx.pool.read(|c| {
        let t = match db::teams::get(c, &team_id)? {
            Some(t) if own_team_key || policy::can_read_team(c, who, &t)? => t,
            _ => return Err(not_found(&team_id)),
        };
        let members = db::teams::members(c, &team_id)?;
        let keys = db::keys::summaries_by_team(c, &team_id)?;
        let all_tokens = who.role.reads_all() || policy::is_team_admin(c, who, &t)?;
        let shown = |k: &KeySummary| {
            let mut v = key_json(k);
            let mine = k.user_id.is_some() && k.user_id == who.user_id;
            let itself = who.key.as_ref().is_some_and(|own| own.token == k.token);
            if !(all_tokens || mine || itself) {
                v["token"] = Value::Null;
            }
            v
        };
        Ok(json!({
            "team_id": t.id,
            "team_info": team_json(&t, &members),
            "keys": keys.iter().map(shown).collect::<Vec<_>>(),
            "team_memberships": members.iter().map(membership_json).collect::<Vec<_>>(),
        }))
    })?;
    Reply::ok(out)
}

/// `GET /team/list`: proxy admins and viewers see every team (filters `organization_id`,
/// `user_id`); others the teams they belong to and those of orgs where they are org_admin.
pub fn list(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let org = req.query("organization_id").filter(|s| !s.is_empty());
    let member = req.query("user_id").filter(|s| !s.is_empty());
    let out = ctx.pool.read(|c| {
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
            .map(|t| Ok(team_json(t, &db::teams::members(c, &t.id)?)))
            .collect::<Result<Vec<_>>>()
    })?;
    Reply::ok(Value::Array(out))
}

/// `POST /team/member_add` (`team_id`, `member`: one or a list, `max_budget_in_team`): team
/// admins and above. Missing users are created; an existing membership is 409 and nothing is
/// written. Members need not belong to the team's organization.
pub fn member_add(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let specs = member_specs(&body, "member", true)?;
    if specs.is_empty() {
        return Err(Error::bad_param("member", "`member` must not be empty"));
    }
    let budget = body.opt_budget("max_budget_in_team")?;
    let by = who.user_id.clone();
    let out = ctx.pool.write(|tx| {
        let t = visible_team(tx, who, &team_id)?;
        if !policy::is_team_admin(tx, who, &t)? {
            return Err(Error::Forbidden(format!(
                "Only admins of team {team_id} can add members"
            )));
        }
        let added = add_members(
            tx,
            &ctx.cfg.user_defaults,
            &team_id,
            &specs,
            budget,
            by.as_deref(),
        )?;
        if budget.is_some() {
            let rank = authority::team_rank(tx, who, Some(&t))?;
            for uid in &added {
                db::authority::set_team_member_rank(tx, &team_id, uid, rank.n())?;
            }
        }
        let mut out = team_reply(tx, &team_id)?;
        let mut users = Vec::new();
        let mut memberships = Vec::new();
        for uid in &added {
            if let Some(u) = db::users::get(tx, uid)? {
                users.push(json!({"user_id": u.id, "user_email": u.email,
                                  "user_role": u.user_role}));
            }
            if let Some(m) = db::teams::member(tx, &team_id, uid)? {
                memberships.push(membership_json(&m));
            }
        }
        if let Some(o) = out.as_object_mut() {
            o.insert("updated_users".into(), Value::Array(users));
            o.insert("updated_team_memberships".into(), Value::Array(memberships));
        }
        Ok(out)
    })?;
    Reply::ok(out)
}

/// `POST /team/member_delete` (`team_id`, `user_id` | `user_email`): team admins and above.
/// The member's keys in this team go too: a removed member keeps no access through the team.
pub fn member_delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let out = ctx.pool.write(|tx| {
        let t = visible_team(tx, who, &team_id)?;
        if !policy::is_team_admin(tx, who, &t)? {
            return Err(Error::Forbidden(format!(
                "Only admins of team {team_id} can remove members"
            )));
        }
        let uid = resolve_existing(tx, &body, &team_id)?;
        let Some(m) = db::teams::member(tx, &team_id, &uid)? else {
            return Err(Error::NotFound(format!(
                "User {uid} is not a member of team {team_id}"
            )));
        };
        // Removing and adding again would drop a budget a higher rank set (`access::authority`).
        let rank = authority::team_rank(tx, who, Some(&t))?;
        let budget_rank = db::authority::team_member_rank(tx, &team_id, &uid)?;
        let what = format!("user {uid} in team {team_id}");
        authority::check_member_removal(rank, budget_rank, m.budget_id.is_some(), &what)?;
        db::teams::delete_member(tx, &team_id, &uid)?;
        if m.role == "admin" {
            authority::revoke_issued_in_team(tx, &t, &uid)?;
        }
        if let Some(b) = &m.budget_id {
            db::teams::delete_budget(tx, b)?;
        }
        team_reply(tx, &team_id)
    })?;
    Reply::ok(out)
}

/// `POST /team/member_update` (`team_id`, `user_id` | `user_email`, `role`,
/// `max_budget_in_team`): team admins and above.
pub fn member_update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let role = body.opt_str("role")?;
    if let Some(r) = &role {
        if r != "admin" && r != "user" {
            return Err(Error::bad_param(
                "role",
                format!("`role` must be 'admin' or 'user', got '{r}'"),
            ));
        }
    }
    let budget = body.opt_budget("max_budget_in_team")?;
    let by = who.user_id.clone();
    let out = ctx.pool.write(|tx| {
        let t = visible_team(tx, who, &team_id)?;
        if !policy::is_team_admin(tx, who, &t)? {
            return Err(Error::Forbidden(format!(
                "Only admins of team {team_id} can update members"
            )));
        }
        let uid = resolve_existing(tx, &body, &team_id)?;
        let Some(m) = db::teams::member(tx, &team_id, &uid)? else {
            return Err(Error::NotFound(format!(
                "User {uid} is not a member of team {team_id}"
            )));
        };
        let rank = authority::team_rank(tx, who, Some(&t))?;
        let budget_rank = db::authority::team_member_rank(tx, &team_id, &uid)?;
        let old_budget = m.budget_id.as_ref().and(m.max_budget);
        let what = format!("user {uid} in team {team_id}");
        authority::check_member_budget(
            rank,
            budget_rank,
            old_budget,
            budget,
            "max_budget_in_team",
            &what,
        )?;
        let mut budget_id = m.budget_id.clone();
        if let Some(b) = budget {
            match &budget_id {
                Some(id) => {
                    db::teams::set_budget(tx, id, b, by.as_deref())?;
                }
                None => budget_id = Some(db::teams::insert_budget(tx, b, by.as_deref())?),
            }
        }
        let role = role.clone().unwrap_or(m.role.clone());
        db::teams::set_member(tx, &team_id, &uid, &role, budget_id.as_deref())?;
        if m.role == "admin" && role != "admin" {
            authority::revoke_issued_in_team(tx, &t, &uid)?;
        }
        if budget.is_some() && budget != old_budget {
            let next = authority::next_rank(budget_rank, rank, true);
            db::authority::set_team_member_rank(tx, &team_id, &uid, next)?;
        }
        let m = db::teams::member(tx, &team_id, &uid)?
            .ok_or_else(|| Error::Internal("membership vanished in its own tx".into()))?;
        Ok(json!({
            "team_id": team_id,
            "user_id": m.user_id,
            "user_email": m.user_email,
            "role": m.role,
            "max_budget_in_team": m.max_budget,
        }))
    })?;
    Reply::ok(out)
}

fn set_blocked(ctx: &Ctx, who: &Caller, req: &Req, blocked: bool) -> Result<Reply> {
    let body = req.json()?;
    let team_id = team_id_param(&body)?;
    let by = who.user_id.clone();
    let out = ctx.pool.write(|tx| {
        let t = visible_team(tx, who, &team_id)?;
        if !policy::is_team_admin(tx, who, &t)? {
            return Err(Error::Forbidden(format!(
                "Only admins of team {team_id} can block or unblock it"
            )));
        }
        let rank = authority::team_rank(tx, who, Some(&t))?;
        let before = TeamFields::of(&t);
        let mut f = before.clone();
        f.blocked = blocked;
        authority::check_team_change(&ctx.catalog, tx, rank, &t, &before, &f)?;
        db::teams::update(tx, &team_id, &f, by.as_deref())?;
        authority::stamp_team(tx, rank, &t, &before, &f)?;
        team_reply(tx, &team_id)
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
    let by = who.user_id.clone();
    let out = ctx.pool.write(|tx| {
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
            grant::check_models(
                &ctx.catalog,
                &Holder::Team {
                    org: org_models.as_deref(),
                },
                &f.models,
            )?;
        } else {
            f.models.retain(|m| !names.contains(m));
        }
        let rank = authority::team_rank(tx, who, Some(&t))?;
        let before = TeamFields::of(&t);
        authority::check_team_change(&ctx.catalog, tx, rank, &t, &before, &f)?;
        db::teams::update(tx, &team_id, &f, by.as_deref())?;
        authority::stamp_team(tx, rank, &t, &before, &f)?;
        team_reply(tx, &team_id)
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
