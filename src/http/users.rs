//! User endpoints (API.md §6 Users, §5 roles). Owns user create/info/update/delete/list and the
//! personal key `/user/new` makes. Only a proxy admin creates, deletes or lists users or changes
//! anyone's `user_role` or email; a user may change only their own password (proving the
//! current one) and metadata. The password is stored as an argon2id hash and never returned;
//! keys are shown by token only. Owns the defaults of users created implicitly by a membership.

use super::{patch, shapes, Ctx, Reply, Req};
use crate::access::grant::{self, Holder};
use crate::access::policy;
use crate::audit::{Actor, Entry};
use crate::auth::{self, Caller, Role};
use crate::db::handle::Handle;
use crate::db::rows::unique_or;
use crate::db::{self, members::Group, users::UserFields, users::UserRow};
use crate::error::{Error, Result};
use crate::hierarchy::AllowancePatch;
use crate::user_defaults::UserDefaults;
use crate::util;
use serde_json::{json, Value};

/// A user object with the ids of its teams; never the password hash.
pub fn user_json(u: &UserRow, team_ids: &[String]) -> Value {
    shapes::extend(shapes::user(u), json!({ "teams": team_ids }))
}

fn user_reply<C: Handle + ?Sized>(c: &C, id: &str) -> Result<Value> {
    let u = db::users::get(c, id)?
        .ok_or_else(|| Error::Internal(format!("user {id} vanished in its own tx")))?;
    Ok(user_json(&u, &db::teams::ids_of_user(c, id)?))
}

/// Creates a user that a membership names but that does not exist yet (`member_add`,
/// `members_with_roles`): the configured new-user defaults and no personal model access of
/// their own unless those defaults grant some (API.md §9). A UNIQUE violation (the email is
/// taken) is the caller's 409.
pub fn create_implicit<C: Handle + ?Sized>(
    c: &C,
    d: &UserDefaults,
    id: &str,
    email: Option<&str>,
) -> db::handle::DbResult<()> {
    db::users::insert(c, id, &d.implicit(email, None))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("User not found, passed user_id={id}"))
}

fn parse_role(s: &str) -> Result<String> {
    Role::parse(s)
        .map(|r| r.as_str().to_string())
        .ok_or_else(|| {
            Error::bad_param(
                "user_role",
                format!(
                    "`user_role` must be one of proxy_admin, proxy_admin_viewer, internal_user, \
                 internal_user_viewer; got '{s}'"
                ),
            )
        })
}

/// `POST /user/new` (proxy admin). With `auto_create_key` (default true) a personal key is made
/// in the same transaction and its raw value returned once as `key`. An existing `user_id` is
/// updated instead (API.md §9: an upsert): only the fields the body gives change, no defaults
/// are applied, and a new key is still issued. `team_id` (and each of `teams`) makes the user
/// a `user` member of that team (kept as is when already a member), and the key then belongs
/// to `team_id`'s team.
pub fn create(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    policy::require_proxy_admin(who)?;
    let user_id = match body.opt_str("user_id")? {
        Some(id) if id.trim().is_empty() => {
            return Err(Error::bad_param("user_id", "`user_id` must not be empty"))
        }
        Some(id) => id,
        None => util::uuid4(),
    };
    let defaults = &ctx.cfg.user_defaults;
    let user_role = parse_role(
        &body
            .opt_str("user_role")?
            .unwrap_or_else(|| defaults.role().to_string()),
    )?;
    let models_given = body.given("models");
    let models = body.opt_list("models")?.unwrap_or_default();
    grant::check_models(ctx.models.current().global(), &Holder::User, &models)?;
    let password = body.opt_str("password")?;
    let team_id = body.opt_str("team_id")?.filter(|t| !t.is_empty());
    let mut team_ids = body.opt_list("teams")?.unwrap_or_default();
    if let Some(t) = &team_id {
        if !team_ids.contains(t) {
            team_ids.insert(0, t.clone());
        }
    }
    let auto_key = body.opt_bool("auto_create_key")?.unwrap_or(true);
    let allowance = patch::allowance(&body)?;
    let metadata = body.opt_obj("metadata")?;
    let mut fields = UserFields {
        email: body.opt_str("user_email")?.filter(|e| !e.is_empty()),
        user_role,
        password_hash: match &password {
            Some(p) if !p.is_empty() => Some(auth::hash_password(p)?),
            Some(_) => return Err(Error::bad_param("password", "`password` must not be empty")),
            None => None,
        },
        models,
        allowance: allowance.to_new(),
        metadata: Value::Object(metadata.clone().unwrap_or_default()),
    };
    let by = who.user_id.clone();
    let raw = auto_key.then(auth::new_raw_key);
    let mut out = ctx.pool.write_db(|tx| {
        let before = match db::users::get(tx, &user_id)? {
            Some(_) => Some(user_reply(tx, &user_id)?),
            None => None,
        };
        match db::users::get(tx, &user_id)? {
            Some(u) => {
                // The upsert: what the body gives, over what is stored.
                let mut f = UserFields::of(&u);
                if fields.email.is_some() {
                    f.email = fields.email.clone();
                }
                if body.given("user_role") {
                    f.user_role = fields.user_role.clone();
                }
                if models_given {
                    f.models = fields.models.clone();
                }
                if let Some(h) = &fields.password_hash {
                    f.password_hash = Some(h.clone());
                    db::sessions::delete_for_user(tx, &u.id)?;
                }
                if metadata.is_some() {
                    f.metadata = fields.metadata.clone();
                }
                allowance.apply(&mut f.allowance, util::now_ms());
                db::users::update(tx, &user_id, &f).map_err(|e| {
                    unique_or(e, || "Another user already has this user_email".into())
                })?;
            }
            None => {
                // `default_internal_user_params` fills only what the body left out, as LiteLLM.
                defaults.fill(&mut fields, models_given);
                db::users::insert(tx, &user_id, &fields).map_err(|e| {
                    unique_or(e, || {
                        format!("A user with user_id {user_id} or this user_email already exists")
                    })
                })?;
            }
        }
        let mut key_team = None;
        for (i, t) in team_ids.iter().enumerate() {
            let Some(team) = db::teams::get(tx, t)? else {
                let param = if team_id.as_ref() == Some(t) {
                    "team_id"
                } else {
                    "teams"
                };
                return Err(Error::bad_param(param, format!("Team {t} does not exist")));
            };
            if team_ids[..i].contains(t) {
                return Err(Error::Conflict(format!("Team {t} is listed twice")));
            }
            if db::teams::member_role(tx, t, &user_id)?.is_none() {
                db::members::add(tx, Group::Team, t, &user_id, "user", None)?;
            }
            if team_id.as_ref() == Some(t) {
                key_team = Some(team);
            }
        }
        if let Some(raw) = &raw {
            let k = db::keys::NewKey {
                token: auth::hash_key(raw),
                key_name: auth::key_name(raw),
                user_id: Some(user_id.clone()),
                team_id: key_team.as_ref().map(|t| t.id.clone()),
                organization_id: key_team.as_ref().and_then(|t| t.organization_id.clone()),
                created_by: by.clone(),
                ..Default::default()
            };
            db::keys::insert(tx, &k)?;
            Entry::new("create", "key", &crate::audit::key_object_id(&k.token))
                .org(k.organization_id.as_deref())
                .after(json!({"key_name": k.key_name, "user_id": k.user_id, "team_id": k.team_id}))
                .record(tx, &Actor::of(who))?;
        }
        let out = user_reply(tx, &user_id)?;
        let mut after = out.clone();
        if fields.password_hash.is_some() {
            after["sign_in_changed"] = json!(true);
        }
        match before {
            Some(b) => Entry::new("update", "user", &user_id).before(b),
            None => Entry::new("create", "user", &user_id),
        }
        .after(after)
        .record(tx, &Actor::of(who))?;
        Ok(out)
    })?;
    if let (Some(raw), Some(o)) = (raw, out.as_object_mut()) {
        o.insert("key_name".into(), Value::String(auth::key_name(&raw)));
        o.insert("key".into(), Value::String(raw));
        o.insert("expires".into(), Value::Null);
        o.insert("team_id".into(), json!(team_id));
    }
    Reply::ok(out)
}

/// `GET /user/info?user_id=` (default: the caller): `{user_id, user_info, keys, teams}`.
pub fn info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let target = match req.query("user_id").filter(|s| !s.is_empty()) {
        Some(u) => u.to_string(),
        None => who
            .user_id
            .clone()
            .ok_or_else(|| Error::bad_param("user_id", "`user_id` is required"))?,
    };
    let out = ctx.pool.read_db(|c| {
        let u = match db::users::get(c, &target)? {
            Some(u) if policy::can_see_user(who, &u.id) => u,
            _ => return Err(not_found(&target)),
        };
        let memberships = db::teams::memberships_of_user(c, &u.id)?;
        let team_ids: Vec<String> = memberships.iter().map(|m| m.team_id.clone()).collect();
        let mut team_objs = Vec::new();
        for id in &team_ids {
            if let Some(t) = db::teams::get(c, id)? {
                team_objs.push(shapes::team_with_members(&t, &db::teams::members(c, id)?));
            }
        }
        let keys = db::keys::summaries_by_user(c, &u.id)?;
        Ok(json!({
            "user_id": u.id,
            "user_info": user_json(&u, &team_ids),
            "keys": keys.iter().map(shapes::key_summary).collect::<Vec<_>>(),
            "teams": team_objs,
        }))
    })?;
    Reply::ok(out)
}

/// Fields a user may change on themselves (besides naming themselves with `user_id`).
const SELF_FIELDS: &[&str] = &[
    "user_id",
    "user_email",
    "password",
    "current_password",
    "metadata",
];

/// A password change by anyone but a proxy admin must prove the current password. Whoever
/// holds one of the user's keys is not necessarily the user (a team admin mints keys for
/// members), and a password opens a UI session with the user's whole authority; so a key (or
/// a stolen session) alone never sets one. A user without a password gets their first one
/// from a proxy admin. Checked before the write transaction (argon2 is slow); the write then
/// refuses if the stored hash changed in between. Returns the hash that was verified.
fn check_current_password(
    ctx: &Ctx,
    who: &Caller,
    req: &Req,
    body: &super::Body,
    target: &str,
) -> Result<Option<String>> {
    // Only the user themselves (a writer) gets as far as argon2: anyone else is refused by the
    // transaction, and must not learn whether a guess was right.
    if who.is_proxy_admin()
        || !body.given("password")
        || who.role.is_viewer()
        || who.user_id.as_deref() != Some(target)
    {
        return Ok(None);
    }
    let current = body.opt_str("current_password")?.unwrap_or_default();
    if current.is_empty() {
        return Err(Error::bad_param(
            "current_password",
            "`current_password` is required to change your password",
        ));
    }
    // Guesses at the current password (by whoever holds the user's key) are throttled like UI
    // logins: per user and per client address, refused before any lookup or argon2.
    let throttle = super::throttle::global();
    let client = throttle.client(req.peer, req.header("x-forwarded-for"));
    let attempt = throttle.check(Some(&format!("user-id:{target}")), client)?;
    let Some(u) = ctx.pool.read_db(|c| Ok(db::users::get(c, target)?))? else {
        return Ok(None); // the transaction answers 404
    };
    let Some(hash) = u.password_hash else {
        return Err(Error::Forbidden(
            "this user has no password yet; a proxy admin sets the first one".into(),
        ));
    };
    if !auth::try_verify_password(&current, &hash)? {
        throttle.failed(&attempt);
        return Err(Error::Forbidden("`current_password` is not correct".into()));
    }
    throttle.succeeded(&attempt);
    Ok(Some(hash))
}

/// `POST /user/update` (`user_id`, or `user_email` to name the user). A proxy admin changes
/// anything; a user only their own `password` (proving the current one) and `metadata` — a new
/// `user_email` or any other field (`user_role`, `models`, budgets, limits, ...) is 403 and
/// nothing changes.
pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let by_id = body.opt_str("user_id")?.filter(|s| !s.trim().is_empty());
    let email = body.opt_str("user_email")?;
    if by_id.is_none() && email.as_deref().is_none_or(str::is_empty) {
        return Err(Error::bad_param(
            "user_id",
            "`user_id` or `user_email` is required",
        ));
    }
    // With a user_id, user_email is the new email; alone it names the user.
    let new_email = if by_id.is_some() { email.clone() } else { None };
    let role = body
        .opt_str("user_role")?
        .map(|r| parse_role(&r))
        .transpose()?;
    let models = body.opt_list("models")?;
    if let Some(m) = &models {
        grant::check_models(ctx.models.current().global(), &Holder::User, m)?;
    }
    let allowance = patch::allowance(&body)?;
    let metadata = body.opt_obj("metadata")?;
    let password = body.opt_str("password")?;
    if password.as_deref() == Some("") {
        return Err(Error::bad_param("password", "`password` must not be empty"));
    }
    // The proof first (a wrong guess costs one argon2 run, not two). Only a user named by
    // `user_id` is checked here; one named by email is refused in the transaction.
    let verified = match &by_id {
        Some(id) => check_current_password(ctx, who, req, &body, id)?,
        None => None,
    };
    let password_hash = password.map(|p| auth::hash_password(&p)).transpose()?;
    let out = ctx.pool.write_db(|tx| {
        let target = match &by_id {
            Some(id) => db::users::get(tx, id)?,
            None => {
                let e = email.as_deref().unwrap_or_default();
                match db::users::ids_by_email(tx, e)?.as_slice() {
                    [] => None,
                    [one] => db::users::get(tx, one)?,
                    _ => {
                        return Err(Error::bad_param(
                            "user_email",
                            format!("more than one user has the email {e}; pass user_id"),
                        ))
                    }
                }
            }
        };
        let shown = by_id.clone().or(email.clone()).unwrap_or_default();
        let u = match target {
            Some(u) if policy::can_see_user(who, &u.id) => u,
            _ => return Err(not_found(&shown)),
        };
        // The one authorization check, on the stored user.
        policy::require_writer(who)?;
        if !who.is_proxy_admin() {
            let is_self = who.user_id.as_deref() == Some(u.id.as_str());
            let extra: Vec<&String> = body
                .0
                .iter()
                // A `null` clears an allowance field: a change like any other.
                .filter(|(k, v)| {
                    let k = k.as_str();
                    (!v.is_null() || AllowancePatch::FIELDS.contains(&k))
                        && !SELF_FIELDS.contains(&k)
                })
                .map(|(k, _)| k)
                .collect();
            if !is_self || !extra.is_empty() {
                return Err(Error::Forbidden(format!(
                    "Only proxy admins can change {}; users may change their own password and \
                     metadata",
                    if extra.is_empty() {
                        "other users".to_string()
                    } else {
                        format!("{extra:?}")
                    }
                )));
            }
            // The email is the login name and the handle `member_add` finds users by: a user
            // who could claim someone's address would receive the memberships meant for them.
            // (The same address in another case is no change: the unique index is on lower().)
            let current = u.email.as_deref().unwrap_or_default();
            if new_email
                .as_ref()
                .is_some_and(|e| !e.eq_ignore_ascii_case(current))
            {
                return Err(Error::Forbidden(
                    "Only proxy admins can change a user's user_email".into(),
                ));
            }
            if password_hash.is_some() && (verified.is_none() || verified != u.password_hash) {
                // Named by email (not verified above), or the password changed meanwhile.
                return Err(Error::Forbidden(
                    "to change your password name yourself by `user_id` and send the current \
                     one as `current_password`"
                        .into(),
                ));
            }
        }
        let before = user_reply(tx, &u.id)?;
        let mut f = UserFields::of(&u);
        if let Some(e) = &new_email {
            f.email = Some(e.clone()).filter(|e| !e.is_empty());
        }
        if let Some(r) = &role {
            f.user_role = r.clone();
        }
        if let Some(m) = &models {
            f.models = m.clone();
        }
        if let Some(h) = &password_hash {
            f.password_hash = Some(h.clone());
            // A new password ends the user's web UI sessions (a leaked one stops working).
            db::sessions::delete_for_user(tx, &u.id)?;
        }
        if let Some(m) = &metadata {
            f.metadata = Value::Object(m.clone());
        }
        allowance.apply(&mut f.allowance, util::now_ms());
        db::users::update(tx, &u.id, &f)
            .map_err(|e| unique_or(e, || "Another user already has this user_email".into()))?;
        let out = user_reply(tx, &u.id)?;
        let mut after = out.clone();
        if password_hash.is_some() {
            after["sign_in_changed"] = json!(true);
        }
        Entry::new("update", "user", &u.id)
            .before(before)
            .after(after)
            .record(tx, &Actor::of(who))?;
        Ok(out)
    })?;
    Reply::ok(out)
}

/// `POST /user/delete` (`user_ids`; proxy admin): all or nothing in one transaction; the users'
/// keys and memberships go with them (FK cascade).
pub fn delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    policy::require_proxy_admin(who)?;
    let ids = body.opt_list("user_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_param("user_ids", "`user_ids` is required"));
    }
    ctx.pool.write_db(|tx| {
        for id in &ids {
            if db::users::get(tx, id)?.is_none() {
                return Err(not_found(id));
            }
        }
        for id in &ids {
            Entry::new("delete", "user", id)
                .before(user_reply(tx, id)?)
                .record(tx, &Actor::of(who))?;
            db::users::delete(tx, id)?;
        }
        Ok(())
    })?;
    Reply::ok(json!({"deleted_users": ids}))
}

const MAX_PAGE_SIZE: u64 = 100;

fn query_u64(req: &Req, name: &str, default: u64, min: u64, max: u64) -> Result<u64> {
    match req.query(name).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(Error::bad_param(
                name,
                format!("`{name}` must be an integer from {min} to {max}"),
            )),
        },
    }
}

/// `GET /user/list` (proxy admins and viewers): `page`, `page_size` (default 1, 25; at most
/// 100), optional `role` and comma-separated `user_ids`.
pub fn list(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    if !who.role.reads_all() {
        return Err(Error::Forbidden(
            "Only proxy admins and proxy admin viewers can list users".into(),
        ));
    }
    let page = query_u64(req, "page", 1, 1, i64::MAX as u64 / MAX_PAGE_SIZE)?;
    let size = query_u64(req, "page_size", 25, 1, MAX_PAGE_SIZE)?;
    let role =
        match req.query("role").filter(|s| !s.is_empty()) {
            Some(r) => Some(parse_role(r).map_err(|_| {
                Error::bad_param("role", format!("`role` is not a user role: '{r}'"))
            })?),
            None => None,
        };
    let ids: Option<Vec<String>> = req.query("user_ids").filter(|s| !s.is_empty()).map(|s| {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    });
    let (page_i, size_i) = (page as i64, size as i64);
    let out = ctx.pool.read_db(|c| {
        let (rows, total) = db::users::list(
            c,
            role.as_deref(),
            ids.as_deref(),
            size_i,
            (page_i - 1) * size_i,
        )?;
        let users = rows
            .iter()
            .map(|u| Ok(user_json(u, &db::teams::ids_of_user(c, &u.id)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(json!({
            "users": users,
            "total": total,
            "page": page,
            "page_size": size,
            "total_pages": (total + size_i - 1) / size_i,
        }))
    })?;
    Reply::ok(out)
}
