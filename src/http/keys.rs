//! Key endpoints (API.md §2, §6): generate, update, delete, info, list, block/unblock,
//! regenerate. Raw keys are returned once (generate/regenerate) and never again; every other
//! response carries only the token. Model lists are checked against the chain above the key
//! by the write-time rules of `access::grant`. The request fields are read in `key_fields`.

use super::key_fields::{check_custom_key, key_fields, reject_forbidden_fields};
use super::{shapes, Ctx, Reply, Req};
use crate::access::grant::{self, Holder};
use crate::access::{authority, policy};
use crate::audit::{Actor, Entry};
use crate::auth::{self, Caller, Role};
use crate::db::handle::Handle;
use crate::db::rows::unique_or;
use crate::db::{self, keys::KeyRec, keys::NewKey};
use crate::error::{Error, Result};
use serde_json::{json, Value};

/// The models a key's chain resolves to, by THE key-check statement and the one resolver.
fn effective_models<C: Handle + ?Sized>(ctx: &Ctx, c: &C, token: &str) -> Result<Vec<String>> {
    Ok(match db::key_check::load_key_any(c, token)? {
        Some(k) => {
            let models = ctx.models.current();
            let chain = k.chain();
            chain.effective(chain.catalog(&models))
        }
        None => Vec::new(),
    })
}

/// A caller below the rank that set the key's limits may only tighten them (`access::authority`).
fn check_tightening(
    ctx: &Ctx,
    parent: &grant::Parent,
    rank: authority::Rank,
    stored_rank: i64,
    before: &NewKey,
    after: &NewKey,
) -> Result<()> {
    if rank.n() >= stored_rank {
        return Ok(());
    }
    match authority::loosened_key(
        ctx.models.current().global(),
        &parent.chain(),
        before,
        after,
    ) {
        Some(field) => Err(authority::loosen_denied(field, "this key", stored_rank)),
        None => Ok(()),
    }
}

/// Finds a key named by raw value or token (404 when missing or invisible).
fn find<C: Handle + ?Sized>(c: &C, who: &Caller, key: &str) -> Result<KeyRec> {
    let rec = db::keys::by_token(c, &auth::token_of(key))?;
    match rec {
        Some(r) if policy::can_see_key(c, who, &r.k)? => Ok(r),
        _ => Err(Error::NotFound("Key not found".into())),
    }
}

/// Finds a key for a change by `route`, judged first by its team's `team_member_permissions`
/// (`authority::member_permission`): `true` = a plain member the team lets use `route` on any
/// of its keys; a member it does not gets 403 here, even for their own key.
fn find_for<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    key: &str,
    route: &str,
) -> Result<(KeyRec, bool)> {
    let not_found = || Error::NotFound("Key not found".into());
    let r = db::keys::by_token(c, &auth::token_of(key))?.ok_or_else(not_found)?;
    // A caller judged here is a member of the key's team, who sees its keys in `/team/info`:
    // a 403 tells them nothing new.
    let granted = authority::member_permission(c, who, r.k.team_id.as_deref(), route)?;
    if granted || policy::can_see_key(c, who, &r.k)? {
        Ok((r, granted))
    } else {
        Err(not_found())
    }
}

/// May the caller change this key by `route`: listed for them by the key's team, or as before.
fn may_manage<C: Handle + ?Sized>(c: &C, who: &Caller, k: &NewKey, granted: bool) -> Result<bool> {
    Ok(granted || policy::can_manage_key(c, who, k)?)
}

const BLOCK_DENIED: &str = "only proxy admins and team admins may block or unblock keys";

/// A generate/regenerate answer: the key's fields, the raw key (this once) and `token_id`, the
/// token under LiteLLM's response name (API.md §9; its clients read `token_id`).
fn with_raw_key(rec: &KeyRec, raw: &str) -> Value {
    let mut v = shapes::key(rec);
    v["key"] = json!(raw);
    v["token_id"] = json!(rec.k.token);
    v
}

fn insert_mapped<C: Handle + ?Sized>(c: &C, k: &NewKey) -> Result<KeyRec> {
    match db::keys::insert(c, k) {
        Ok(_) => {}
        Err(e) if e.is_unique() => {
            let msg = match &k.key_alias {
                Some(a) if db::keys::by_alias(c, a)?.is_some() => {
                    format!("Key with alias '{a}' already exists")
                }
                _ => "This key already exists".to_string(),
            };
            return Err(Error::Conflict(msg));
        }
        Err(e) => return Err(e.into()),
    }
    db::keys::by_token(c, &k.token)?.ok_or_else(|| Error::internal("inserted key not found"))
}

/// Appends a key's audit entry: its id is `audit::key_object_id` of `token` (never the key or
/// its hash, which `audit::scrub` drops from the values too); filed under the key's org.
fn audit_key<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    action: &str,
    token: &str,
    before: Option<&KeyRec>,
    after: Option<&KeyRec>,
) -> Result<()> {
    let org = after.or(before).and_then(|r| r.k.organization_id.clone());
    let mut e = Entry::new(action, "key", &crate::audit::key_object_id(token)).org(org.as_deref());
    if let Some(b) = before {
        e = e.before(shapes::key(b));
    }
    if let Some(a) = after {
        let mut v = shapes::key(a);
        if a.k.token != token {
            v["new_object_id"] = json!(crate::audit::key_object_id(&a.k.token));
        }
        e = e.after(v);
    }
    e.record(c, &Actor::of(who))
}

pub fn generate(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    policy::require_writer(who)?;
    reject_forbidden_fields(&b, who)?;
    let team_id = b.opt_str("team_id")?.filter(|s| !s.is_empty());
    let org_id = b.opt_str("organization_id")?.filter(|s| !s.is_empty());
    let user_id = b.opt_str("user_id")?.filter(|s| !s.is_empty());
    let custom = b.opt_str("key")?;
    let fields = key_fields(&b)?;
    if let Some(k) = &custom {
        check_custom_key(who, "key", k)?;
    }
    let raw = custom.unwrap_or_else(auth::new_raw_key);
    let rec = ctx.pool.write_db(|tx| {
        // Whose key is this? A non-admin creates keys only for themselves, unless they
        // administer the team the key is for (API.md §5, §8).
        let owner = match (&user_id, who.role) {
            (Some(u), _) => Some(u.clone()),
            (None, Role::ProxyAdmin) if who.is_master() => None,
            (None, _) => who.user_id.clone(),
        };
        let parent =
            grant::load_parent(tx, team_id.as_deref(), org_id.as_deref(), owner.as_deref())?;
        if let Some(t) = &parent.team {
            // A plain member of a team with `team_member_permissions` needs `/key/generate`;
            // with it they still create keys for themselves only (`may_create_key`).
            authority::member_permission(tx, who, Some(&t.id), "/key/generate")?;
        }
        policy::may_create_key(tx, who, &parent, owner.as_deref())?;
        if let Some(u) = &owner {
            if parent.user.is_none() {
                return Err(Error::bad_param(
                    "user_id",
                    format!("user_id {u} does not exist"),
                ));
            }
        }
        authority::may_issue_for(tx, who, owner.as_deref())?;
        let rank = authority::team_rank(tx, who, parent.team.as_ref())?;
        let mut k = NewKey {
            token: auth::hash_key(&raw),
            key_name: auth::key_name(&raw),
            team_id: parent.team.as_ref().map(|t| t.id.clone()),
            organization_id: parent.org.as_ref().map(|o| o.id.clone()),
            user_id: owner.clone(),
            aliases: json!({}),
            metadata: json!({}),
            created_by: who.user_id.clone(),
            ..NewKey::default()
        };
        fields.apply(&mut k);
        grant::check_models(
            ctx.models.current().global(),
            &Holder::Key(&parent),
            &k.models,
        )?;
        let rec = insert_mapped(tx, &k)?;
        let limits_rank = if authority::key_has_limits(&k) {
            rank.n()
        } else {
            0
        };
        let calls_only = authority::reach_calls_only(who, owner.as_deref());
        let by = who.user_id.as_deref();
        db::authority::set_key_issue(tx, &k.token, calls_only, limits_rank, by)?;
        audit_key(tx, who, "create", &k.token, None, Some(&rec))?;
        Ok(rec)
    })?;
    Reply::ok(with_raw_key(&rec, &raw))
}

pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let key = b.req_str("key")?;
    reject_forbidden_fields(&b, who)?;
    let fields = key_fields(&b)?;
    let new_team = if b.has("team_id") {
        Some(b.opt_str("team_id")?.filter(|s| !s.is_empty()))
    } else {
        None
    };
    let new_user = if b.has("user_id") {
        Some(b.opt_str("user_id")?.filter(|s| !s.is_empty()))
    } else {
        None
    };
    let rec = ctx.pool.write_db(|tx| {
        let (mut rec, granted) = find_for(tx, who, &key, "/key/update")?;
        let old = rec.clone();
        let rec_token = rec.k.token.clone();
        if !may_manage(tx, who, &rec.k, granted)? {
            return Err(Error::Forbidden("you may not update this key".into()));
        }
        let admin = who.role == Role::ProxyAdmin;
        let team_admin = policy::administers_team_of(tx, who, &rec.k)?;
        if !admin && (new_team.is_some() || new_user.is_some()) {
            return Err(Error::Forbidden(
                "only proxy admins may move a key to another team or user".into(),
            ));
        }
        if !admin && !team_admin && fields.widens_budget() {
            return Err(Error::Forbidden(
                "only an admin may change this key's budget or limits".into(),
            ));
        }
        if !admin && !team_admin && fields.changes_blocked(&rec.k) {
            return Err(Error::Forbidden(BLOCK_DENIED.into()));
        }
        let (mut calls_only, stored_rank) =
            db::authority::key_ranks(tx, &rec_token)?.unwrap_or((true, 3));
        let rank = authority::key_rank(tx, who, &rec.k)?;
        let before = rec.k.clone();
        if let Some(t) = new_team {
            rec.k.team_id = t;
            rec.k.organization_id = None;
        }
        if let Some(u) = &new_user {
            rec.k.user_id = u.clone();
        }
        let models_changed = fields.models.is_some();
        fields.apply(&mut rec.k);
        let org_for_parent = if rec.k.team_id.is_some() {
            None
        } else {
            rec.k.organization_id.clone()
        };
        let parent = grant::load_parent(
            tx,
            rec.k.team_id.as_deref(),
            org_for_parent.as_deref(),
            rec.k.user_id.as_deref(),
        )?;
        if let (Some(Some(u)), None) = (&new_user, &parent.user) {
            return Err(Error::bad_param(
                "user_id",
                format!("user_id {u} does not exist"),
            ));
        }
        rec.k.organization_id = parent.org.as_ref().map(|o| o.id.clone()).or(rec
            .k
            .organization_id
            .clone()
            .filter(|_| parent.team.is_none()));
        if models_changed || b.has("team_id") {
            grant::check_models(
                ctx.models.current().global(),
                &Holder::Key(&parent),
                &rec.k.models,
            )?;
        }
        check_tightening(ctx, &parent, rank, stored_rank, &before, &rec.k)?;
        if before.user_id != rec.k.user_id {
            // Whoever held the raw key so far must not act as the new owner.
            calls_only = true;
        }
        db::keys::save(tx, &rec_token, &rec.k, who.user_id.as_deref())
            .map_err(|e| unique_or(e, || "a key with this key_alias already exists".into()))?;
        let changed = authority::key_limits_changed(&before, &rec.k);
        let next = authority::next_rank(stored_rank, rank, changed);
        db::authority::set_key_ranks(tx, &rec.k.token, calls_only, next)?;
        let new =
            db::keys::by_token(tx, &rec.k.token)?.ok_or_else(|| Error::internal("key vanished"))?;
        audit_key(tx, who, "update", &rec_token, Some(&old), Some(&new))?;
        Ok(new)
    })?;
    Reply::ok(shapes::key(&rec))
}

pub fn delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    policy::require_writer(who)?;
    let keys = b.opt_list("keys")?.unwrap_or_default();
    let aliases = b.opt_list("key_aliases")?.unwrap_or_default();
    if keys.is_empty() && aliases.is_empty() {
        return Err(Error::bad_param(
            "keys",
            "give `keys` (raw keys or tokens) or `key_aliases`",
        ));
    }
    let deleted = ctx.pool.write_db(|tx| {
        let mut recs = Vec::new();
        for k in &keys {
            recs.push(find_for(tx, who, k, "/key/delete")?);
        }
        for a in &aliases {
            let not_found = || Error::NotFound(format!("Key with alias '{a}' not found"));
            let r = db::keys::by_alias(tx, a)?.ok_or_else(not_found)?;
            let team = r.k.team_id.as_deref();
            let granted = authority::member_permission(tx, who, team, "/key/delete")?;
            if !granted && !policy::can_see_key(tx, who, &r.k)? {
                return Err(not_found());
            }
            recs.push((r, granted));
        }
        for (r, granted) in &recs {
            if !may_manage(tx, who, &r.k, *granted)? {
                return Err(Error::Forbidden(format!(
                    "you may not delete key {}",
                    r.k.key_name
                )));
            }
        }
        let mut out = Vec::new();
        for (r, _) in recs {
            if db::keys::delete(tx, &r.k.token)? > 0 {
                audit_key(tx, who, "delete", &r.k.token, Some(&r), None)?;
                out.push(r.k.token);
            }
        }
        Ok(out)
    })?;
    Reply::ok(json!({ "deleted_keys": deleted }))
}

pub fn info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let key = match req.query("key") {
        Some(k) if !k.is_empty() => k.to_string(),
        _ => match &who.key {
            Some(k) => k.token.clone(),
            None => {
                return Err(Error::bad_param(
                    "key",
                    "`key` is required for the master key",
                ))
            }
        },
    };
    let (rec, eff) = ctx.pool.read_db(|c| {
        let rec = find(c, who, &key)?;
        let eff = effective_models(ctx, c, &rec.k.token)?;
        Ok((rec, eff))
    })?;
    let mut info = shapes::key(&rec);
    info["effective_models"] = json!(eff);
    Reply::ok(json!({ "key": rec.k.token, "info": info }))
}

pub fn list(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let num = |name: &str, default: i64, max: i64| -> Result<i64> {
        match req.query(name) {
            None | Some("") => Ok(default),
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n >= 1 && n <= max => Ok(n),
                _ => Err(Error::bad_param(
                    name,
                    format!("`{name}` must be an integer from 1 to {max}"),
                )),
            },
        }
    };
    let page = num("page", 1, i64::MAX / 1000)?;
    let size = num("size", 10, 100)?;
    let full = matches!(req.query("return_full_object"), Some("true") | Some("1"));
    let q = |n: &str| req.query(n).filter(|s| !s.is_empty()).map(str::to_string);
    // An internal_user_viewer sees its own keys only, even as a team's `admin` member: the same
    // keys `/key/info` shows it (`can_see`; viewers administer nothing).
    let own_only = who.role.is_viewer() && !who.role.reads_all();
    let user_id = match q("user_id") {
        Some(u) if own_only && who.user_id.as_deref() != Some(u.as_str()) => {
            return Reply::ok(json!({
                "keys": [], "total_count": 0, "current_page": page, "total_pages": 0,
            }))
        }
        _ if own_only => who.user_id.clone(),
        u => u,
    };
    let filter = db::keys::ListFilter {
        team_id: q("team_id"),
        organization_id: q("organization_id"),
        user_id,
        key_alias: q("key_alias"),
        all: who.role.reads_all(),
        viewer: who.user_id.clone(),
    };
    if !filter.all && filter.viewer.is_none() {
        return Err(Error::Forbidden(
            "this key has no user; it cannot list keys".into(),
        ));
    }
    let (rows, total) = ctx
        .pool
        .read_db(|c| Ok(db::keys::list(c, &filter, size, (page - 1) * size)?))?;
    let keys: Vec<Value> = rows
        .iter()
        .map(|r| {
            if full {
                shapes::key(r)
            } else {
                json!(r.k.token)
            }
        })
        .collect();
    Reply::ok(json!({
        "keys": keys,
        "total_count": total,
        "current_page": page,
        "total_pages": (total + size - 1) / size,
    }))
}

fn set_blocked(ctx: &Ctx, who: &Caller, req: &Req, blocked: bool) -> Result<Reply> {
    let b = req.json()?;
    let key = b.req_str("key")?;
    policy::require_writer(who)?;
    let rec = ctx.pool.write_db(|tx| {
        let route = if blocked {
            "/key/block"
        } else {
            "/key/unblock"
        };
        let (mut rec, granted) = find_for(tx, who, &key, route)?;
        let old = rec.clone();
        let rec_token = rec.k.token.clone();
        let allowed = granted
            || who.role == Role::ProxyAdmin
            || policy::administers_team_of(tx, who, &rec.k)?;
        if !allowed {
            return Err(Error::Forbidden(BLOCK_DENIED.into()));
        }
        let (calls_only, stored_rank) =
            db::authority::key_ranks(tx, &rec_token)?.unwrap_or((true, 3));
        let rank = authority::key_rank(tx, who, &rec.k)?;
        if rec.k.blocked && !blocked && rank.n() < stored_rank {
            return Err(authority::loosen_denied("blocked", "this key", stored_rank));
        }
        let changed = rec.k.blocked != blocked;
        rec.k.blocked = blocked;
        db::keys::save(tx, &rec_token, &rec.k, who.user_id.as_deref())?;
        let next = authority::next_rank(stored_rank, rank, changed);
        db::authority::set_key_ranks(tx, &rec_token, calls_only, next)?;
        let new =
            db::keys::by_token(tx, &rec.k.token)?.ok_or_else(|| Error::internal("key vanished"))?;
        let action = if blocked { "block" } else { "unblock" };
        audit_key(tx, who, action, &rec_token, Some(&old), Some(&new))?;
        Ok(new)
    })?;
    Reply::ok(shapes::key(&rec))
}

pub fn block(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    set_blocked(ctx, who, req, true)
}

pub fn unblock(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    set_blocked(ctx, who, req, false)
}

pub fn regenerate(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    policy::require_writer(who)?;
    // The router ignores a trailing slash; so must this test, or `/key/regenerate/` reads
    // `regenerate` as the key.
    let key = match req.param("key") {
        Some(k) if req.path.trim_end_matches('/') != "/key/regenerate" => k,
        _ => b.req_str("key")?,
    };
    let new_key = b.opt_str("new_key")?;
    if let Some(k) = &new_key {
        check_custom_key(who, "new_key", k)?;
    }
    let fields = key_fields(&b)?;
    let raw = new_key.unwrap_or_else(auth::new_raw_key);
    let rec = ctx.pool.write_db(|tx| {
        let (mut rec, granted) = find_for(tx, who, &key, "/key/regenerate")?;
        let old = rec.clone();
        let rec_token = rec.k.token.clone();
        if !may_manage(tx, who, &rec.k, granted)? {
            return Err(Error::Forbidden("you may not regenerate this key".into()));
        }
        let team_admin = policy::administers_team_of(tx, who, &rec.k)?;
        if fields.widens_budget() && who.role != Role::ProxyAdmin && !team_admin {
            return Err(Error::Forbidden(
                "only an admin may change this key's budget or limits".into(),
            ));
        }
        if fields.changes_blocked(&rec.k) && who.role != Role::ProxyAdmin && !team_admin {
            return Err(Error::Forbidden(BLOCK_DENIED.into()));
        }
        // A new raw key is a new credential: the same rules as issuing one (`access::authority`).
        authority::may_issue_for(tx, who, rec.k.user_id.as_deref())?;
        let (_, stored_rank) = db::authority::key_ranks(tx, &rec_token)?.unwrap_or((true, 3));
        let rank = authority::key_rank(tx, who, &rec.k)?;
        let before = rec.k.clone();
        let models_changed = fields.models.is_some();
        fields.apply(&mut rec.k);
        let parent = grant::load_parent(
            tx,
            rec.k.team_id.as_deref(),
            rec.k
                .organization_id
                .as_deref()
                .filter(|_| rec.k.team_id.is_none()),
            rec.k.user_id.as_deref(),
        )?;
        if models_changed {
            grant::check_models(
                ctx.models.current().global(),
                &Holder::Key(&parent),
                &rec.k.models,
            )?;
        }
        check_tightening(ctx, &parent, rank, stored_rank, &before, &rec.k)?;
        rec.k.token = auth::hash_key(&raw);
        rec.k.key_name = auth::key_name(&raw);
        db::keys::save(tx, &rec_token, &rec.k, who.user_id.as_deref())
            .map_err(|e| unique_or(e, || "This key already exists".into()))?;
        let calls_only = authority::reach_calls_only(who, rec.k.user_id.as_deref());
        let changed = authority::key_limits_changed(&before, &rec.k);
        let next = authority::next_rank(stored_rank, rank, changed);
        let by = who.user_id.as_deref();
        db::authority::set_key_issue(tx, &rec.k.token, calls_only, next, by)?;
        let new =
            db::keys::by_token(tx, &rec.k.token)?.ok_or_else(|| Error::internal("key vanished"))?;
        audit_key(tx, who, "regenerate", &rec_token, Some(&old), Some(&new))?;
        Ok(new)
    })?;
    Reply::ok(with_raw_key(&rec, &raw))
}
