//! Models managed at runtime (issue 15 item 3, LiteLLM's `store_model_in_db`): `POST
//! /model/new`, `/model/update`, `PATCH /model/{model_id}/update`, `/model/delete`. Who may:
//! proxy admins; a team's admins for a model of their team (`model_info.team_id`, LiteLLM's
//! rule without its enterprise gate). A model is read exactly as a config entry
//! (`config::read_stored`: an unknown provider is a 400 naming the field; a team's model reads
//! no environment), its `litellm_params` string values are stored encrypted (`crypt`), and no
//! answer carries a secret (`redacted`). After a write this instance reloads at once; the
//! others on their next request (the generation in THE key check, `access::registry`).

use super::{Ctx, Reply, Req};
use crate::access::policy;
use crate::access::registry::{self, decrypt_params, encrypt_params};
use crate::auth::Caller;
use crate::config;
use crate::db::models::ModelRow;
use crate::db::{self, handle::Handle};
use crate::error::{Error, Result};
use crate::util;
use serde_json::{json, Map, Value};

use db::models::{MAX_KEYS, MAX_MODELS, MAX_VALUE_BYTES};

/// `litellm_params` keys never shown (LiteLLM's `remove_sensitive_info_from_deployment` and its
/// masker's words): anything naming a key, secret, token, password or credentials.
fn is_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["key", "secret", "token", "password", "credential", "auth"]
        .iter()
        .any(|w| n.contains(w))
}

/// Plain `litellm_params` without their secrets.
fn redacted(plain: &Map<String, Value>) -> Map<String, Value> {
    plain
        .iter()
        .filter(|(k, _)| !is_secret(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A stored row as the endpoints answer it (LiteLLM's `LiteLLM_ProxyModelTable`), secrets left
/// out; values that cannot be decrypted are left out too.
fn row_json(ctx: &Ctx, row: &ModelRow) -> Value {
    let params = decrypt_params(ctx.cfg.salt_key.as_ref(), &row.litellm_params)
        .ok()
        .and_then(|v| v.as_object().map(redacted))
        .unwrap_or_default();
    json!({
        "model_id": row.model_id,
        "model_name": row.model_name,
        "litellm_params": params,
        "model_info": db::json_obj(&row.model_info),
        "created_at": row.created_at,
        "created_by": row.created_by,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    })
}

/// An object field of the body (absent or `null`: empty), bounded.
fn object(b: &super::Body, field: &str) -> Result<Map<String, Value>> {
    let m = b.opt_obj(field)?.unwrap_or_default();
    bounded(field, &m)?;
    Ok(m)
}

fn bounded(field: &str, m: &Map<String, Value>) -> Result<()> {
    if m.len() > MAX_KEYS {
        return Err(Error::bad_param(
            field,
            format!("`{field}` may hold at most {MAX_KEYS} keys"),
        ));
    }
    for (k, v) in m {
        crate::input::check(field, k)?;
        if v.to_string().len() > MAX_VALUE_BYTES {
            return Err(Error::bad_param(
                &format!("{field}.{k}"),
                format!("`{field}.{k}` is longer than {MAX_VALUE_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

/// `model_info.team_id` if given (a non-empty string).
fn team_of(info: &Map<String, Value>) -> Result<Option<String>> {
    match info.get("team_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(t)) if !t.trim().is_empty() => {
            crate::input::check("model_info.team_id", t)?;
            Ok(Some(t.clone()))
        }
        Some(_) => Err(Error::bad_param(
            "model_info.team_id",
            "`model_info.team_id` must be a team id (a string)",
        )),
    }
}

/// May `who` add, change or delete a model of `team` (or a global one, `None`)? A missing team
/// is a 400 (a reference in the body), as LiteLLM says it. With `hide` (a stored team model
/// named by id), a caller who may not read the team gets the 404 of a missing model (API.md
/// §8 "Unknown ids").
fn authorize<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    team: Option<&str>,
    hide: bool,
) -> Result<()> {
    let Some(t) = team else {
        if who.is_proxy_admin() {
            return Ok(());
        }
        return Err(Error::Forbidden(format!(
            "User does not have permission to make this model call. Your role={}. You can only \
             make model calls if you are a PROXY_ADMIN or if you are a team admin, by \
             specifying a team_id in the model_info.",
            who.role.as_str()
        )));
    };
    let Some(row) = db::teams::get(c, t)? else {
        return Err(Error::bad_param(
            "model_info.team_id",
            format!("Team id={t} does not exist in db"),
        ));
    };
    if policy::is_team_admin(c, who, &row)? {
        return Ok(());
    }
    if hide && !policy::can_read_team(c, who, &row)? {
        return Err(Error::NotFound("Model not found on proxy.".into()));
    }
    Err(Error::Forbidden(format!(
        "Team ID={t} does not match the API key's team ID={}, OR you are not the admin for this \
         team. Check `/user/info` to verify your team admin status.",
        who.key
            .as_ref()
            .and_then(|k| k.team_id.as_deref())
            .unwrap_or("None")
    )))
}

/// Checks a model as the config file's reader does (and what a team's may not carry); the
/// 400 names the field.
fn validate(
    ctx: &Ctx,
    name: &str,
    plain: &Map<String, Value>,
    info: &Map<String, Value>,
    team: Option<&str>,
) -> Result<()> {
    if team.is_some() {
        let public = info
            .get("team_public_model_name")
            .and_then(Value::as_str)
            .unwrap_or(name);
        if public.contains('*') {
            return Err(Error::bad_param(
                "model_name",
                "a team's model needs a plain name (no `*`)",
            ));
        }
        for k in ["vertex_credentials", "vertex_ai_credentials"] {
            if let Some(Value::String(s)) = plain.get(k) {
                if !s.trim_start().starts_with('{') {
                    return Err(Error::bad_param(
                        &format!("litellm_params.{k}"),
                        "a team's model carries its credentials' JSON, not a file path",
                    ));
                }
            }
        }
    }
    let entry = json!({"model_name": name, "litellm_params": plain, "model_info": info});
    let access = registry::access_of(team);
    config::read_stored(&ctx.cfg, &entry, access)
        .map(|_| ())
        .map_err(|e| Error::bad_param(&e.field, format!("{}: {}", e.field, e.message)))
}

fn salt(ctx: &Ctx) -> Result<&crate::crypt::SaltKey> {
    ctx.cfg.salt_key.as_ref().ok_or_else(|| {
        Error::bad_param(
            "litellm_params",
            "models cannot be stored: set LITELLM_SALT_KEY (or configure a master key) so \
             their secrets can be encrypted at rest",
        )
    })
}

/// Puts the write in force here now (the others follow on their next request).
fn reloaded(ctx: &Ctx) {
    if let Err(e) = ctx.models.reload(&ctx.pool, &ctx.cfg) {
        // The next request's generation check retries.
        log::warn!("models written but not reloaded yet: {e:?}");
    }
}

/// Is the id a config model's (those are edited in the file)?
fn in_config(ctx: &Ctx, id: &str) -> bool {
    ctx.cfg.deployments.iter().any(|d| d.id == id)
}

/// `POST /model/new` (`model_name`, `litellm_params`, `model_info`): answers the stored row.
pub fn create(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let mut info = object(&b, "model_info")?;
    let team = team_of(&info)?;
    let salt = salt(ctx)?;
    let name = b.req_str("model_name")?;
    crate::input::check("model_name", &name)?;
    if !b.has("litellm_params") {
        return Err(Error::bad_param(
            "litellm_params",
            "`litellm_params` is required (with `model`)",
        ));
    }
    let plain = object(&b, "litellm_params")?;
    let id = match info.get("id") {
        None | Some(Value::Null) => util::uuid4(),
        Some(Value::String(s)) if !s.trim().is_empty() => {
            crate::input::check("model_info.id", s)?;
            s.clone()
        }
        Some(_) => {
            return Err(Error::bad_param(
                "model_info.id",
                "`model_info.id` must be a non-empty string",
            ))
        }
    };
    info.insert("id".into(), json!(id));
    // A team's model (LiteLLM's `_add_team_model_to_db`): stored under a unique name, called
    // by its team under the name given.
    let stored_name = match &team {
        Some(t) => {
            info.insert("team_public_model_name".into(), json!(name));
            format!("model_name_{t}_{}", util::uuid4())
        }
        None => name.clone(),
    };
    let now = util::now_iso();
    let row = ModelRow {
        model_id: id.clone(),
        model_name: stored_name.clone(),
        litellm_params: Value::Object(encrypt_params(salt, &plain)).to_string(),
        model_info: Value::Object(info.clone()).to_string(),
        team_id: team.clone(),
        created_at: now.clone(),
        created_by: who.user_id.clone(),
        updated_at: now,
        updated_by: who.user_id.clone(),
    };
    ctx.pool.write_db(|tx| {
        authorize(tx, who, team.as_deref(), false)?;
        validate(ctx, &stored_name, &plain, &info, team.as_deref())?;
        if in_config(ctx, &id) || db::models::get(tx, &id)?.is_some() {
            return Err(Error::Conflict(format!(
                "a model with id {id} already exists"
            )));
        }
        if db::models::count(tx)? >= MAX_MODELS {
            return Err(Error::bad_param(
                "model_name",
                format!("the database holds {MAX_MODELS} models, the most it may"),
            ));
        }
        db::models::insert(tx, &row).map_err(|e| {
            db::rows::unique_or(e, || format!("a model with id {id} already exists"))
        })?;
        if let Some(t) = &team {
            grant_to_team(tx, t, &name, who)?;
        }
        Ok(())
    })?;
    reloaded(ctx);
    let mut out = row_json(ctx, &row);
    out["litellm_params"] = Value::Object(redacted(&plain));
    Reply::ok(out)
}

/// A team whose model list is restricted gets the public name of its new model on it (as
/// LiteLLM's `team_model_add`), so its keys may call it; an unrestricted list needs nothing.
fn grant_to_team<C: Handle + ?Sized>(c: &C, team: &str, name: &str, who: &Caller) -> Result<()> {
    let Some(t) = db::teams::get(c, team)? else {
        return Ok(());
    };
    if crate::access::unrestricted(&t.models) || t.models.iter().any(|m| m == name) {
        return Ok(());
    }
    let mut f = db::teams::TeamFields::of(&t);
    f.models.push(name.to_string());
    db::teams::update(c, team, &f, who.user_id.as_deref())?;
    Ok(())
}

/// On delete: the public name leaves the team's list unless another of its models has it.
fn revoke_from_team<C: Handle + ?Sized>(c: &C, team: &str, name: &str, who: &Caller) -> Result<()> {
    let still = db::models::all(c)?.iter().any(|m| {
        m.team_id.as_deref() == Some(team)
            && db::json_obj(&m.model_info)["team_public_model_name"].as_str() == Some(name)
    });
    let Some(t) = db::teams::get(c, team)? else {
        return Ok(());
    };
    if still || !t.models.iter().any(|m| m == name) {
        return Ok(());
    }
    let mut f = db::teams::TeamFields::of(&t);
    f.models.retain(|m| m != name);
    db::teams::update(c, team, &f, who.user_id.as_deref())?;
    Ok(())
}

/// `POST /model/update` (LiteLLM's: `model_info.id` names the model).
pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let info = object(&b, "model_info")?;
    let id = match info.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err(Error::bad_param(
                "model_info.id",
                "`model_info.id` (the model to update) is required",
            ))
        }
    };
    change(ctx, who, &id, &b)
}

/// `PATCH /model/{model_id}/update`.
pub fn patch(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let id = req.param("model_id").unwrap_or_default();
    let b = req.json()?;
    change(ctx, who, &id, &b)
}

/// The update rule on a stored model: `model_name` (a team model's public name), each
/// `litellm_params` key (a value sets, `null` removes, absent keeps) and each `model_info` key
/// (same; `id` and `team_id` do not change). The result is read as a new model would be.
fn change(ctx: &Ctx, who: &Caller, id: &str, b: &super::Body) -> Result<Reply> {
    crate::input::check("model_id", id)?;
    let name = b.opt_str("model_name")?;
    if let Some(n) = &name {
        crate::input::check("model_name", n)?;
    }
    let params = object(b, "litellm_params")?;
    let info_patch = object(b, "model_info")?;
    let salt = salt(ctx)?;
    let row = ctx.pool.write_db(|tx| {
        let Some(mut row) = db::models::get(tx, id)? else {
            if in_config(ctx, id) {
                return Err(Error::bad_param(
                    "model_info.id",
                    "Can't edit model. Model in config. Store model in db via `/model/new`. to \
                     edit.",
                ));
            }
            return Err(Error::NotFound(format!("Model {id} not found on proxy.")));
        };
        let team = row.team_id.clone();
        authorize(tx, who, team.as_deref(), true)?;
        if let Some(t) = team_of(&info_patch)? {
            if Some(&t) != team.as_ref() {
                return Err(Error::bad_param(
                    "model_info.team_id",
                    "a model's team cannot change: delete it and add it to the other team",
                ));
            }
        }
        let mut info = match db::json_obj(&row.model_info) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        for (k, v) in info_patch {
            if k == "id" || k == "team_id" {
                continue;
            }
            if v.is_null() {
                info.remove(&k);
            } else {
                info.insert(k, v);
            }
        }
        let old_public = info
            .get("team_public_model_name")
            .and_then(Value::as_str)
            .map(str::to_string);
        match (&name, &team) {
            (Some(n), Some(_)) => {
                info.insert("team_public_model_name".into(), json!(n));
            }
            (Some(n), None) => row.model_name = n.clone(),
            (None, _) => {}
        }
        // The stored values, decrypted, then the patch: a value the salt key cannot open must
        // be given again.
        let stored = match db::json_obj(&row.litellm_params) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut plain = Map::new();
        let mut lost = Vec::new();
        for (k, v) in stored {
            if params.contains_key(&k) {
                continue;
            }
            match v {
                Value::String(s) => match salt.decrypt(&s) {
                    Some(p) => {
                        plain.insert(k, Value::String(p));
                    }
                    None => lost.push(k),
                },
                other => {
                    plain.insert(k, other);
                }
            }
        }
        if !lost.is_empty() {
            return Err(Error::bad_param(
                "litellm_params",
                format!(
                    "litellm_params {} cannot be decrypted with this instance's salt key: give \
                     them again in this update",
                    lost.join(", ")
                ),
            ));
        }
        for (k, v) in &params {
            if !v.is_null() {
                plain.insert(k.clone(), v.clone());
            }
        }
        bounded("litellm_params", &plain)?;
        validate(ctx, &row.model_name, &plain, &info, team.as_deref())?;
        row.litellm_params = Value::Object(encrypt_params(salt, &plain)).to_string();
        row.model_info = Value::Object(info.clone()).to_string();
        row.updated_at = util::now_iso();
        row.updated_by = who.user_id.clone();
        db::models::update(tx, &row)?;
        if let (Some(t), Some(n)) = (&team, &name) {
            grant_to_team(tx, t, n, who)?;
            if let Some(old) = old_public.filter(|o| o != n) {
                revoke_from_team(tx, t, &old, who)?;
            }
        }
        Ok(row)
    })?;
    reloaded(ctx);
    Reply::ok(row_json(ctx, &row))
}

/// `POST /model/delete` (`id`).
pub fn delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let id = b.req_str("id")?;
    crate::input::check("id", &id)?;
    ctx.pool.write_db(|tx| {
        let Some(row) = db::models::get(tx, &id)? else {
            if in_config(ctx, &id) {
                return Err(Error::bad_param(
                    "id",
                    format!("Model with id={id} is defined in the config file; remove it there"),
                ));
            }
            return Err(Error::NotFound(format!(
                "Model with id={id} not found in db"
            )));
        };
        authorize(tx, who, row.team_id.as_deref(), true)?;
        db::models::delete(tx, &id)?;
        if let Some(t) = &row.team_id {
            if let Some(n) = db::json_obj(&row.model_info)["team_public_model_name"].as_str() {
                revoke_from_team(tx, t, n, who)?;
            }
        }
        Ok(())
    })?;
    reloaded(ctx);
    Reply::ok(json!({ "message": format!("Model: {id} deleted successfully") }))
}
