//! `GET /state/export` and `POST /state/apply` (issue 16 item 4; README "State as a file"):
//! proxy admins only — the export holds every key's token and UI users' password hashes, and
//! an apply may change anything. The export is YAML (`crate::state::to_yaml`); the apply takes
//! the file as the raw body (YAML, or JSON) with `?dry_run=true` and `?prune=true`, and
//! answers the plan (`crate::state::Outcome::json`). A bad file is a 400 naming the object and
//! field; a refused caller or a bad file writes nothing.

use super::{Ctx, Reply, Req};
use crate::access::policy;
use crate::auth::Caller;
use crate::error::{Error, Result};

pub fn export(ctx: &Ctx, who: &Caller, _req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let yaml = ctx
        .pool
        .read_db(|c| crate::state::to_yaml(&crate::state::load(c)?))?;
    Ok(Reply::Text(200, "application/yaml; charset=utf-8", yaml))
}

/// `?name=` as a flag: absent, `false` or `0` is false; `true` or `1` (or empty) is true.
fn flag(req: &Req, name: &str) -> Result<bool> {
    match req.query(name) {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(_) => Err(Error::bad_param(
            name,
            format!("`{name}` must be true or false"),
        )),
    }
}

pub fn apply(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let dry_run = flag(req, "dry_run")?;
    let prune = flag(req, "prune")?;
    let text = std::str::from_utf8(&req.body)
        .map_err(|_| Error::bad_param("state", "the state file must be UTF-8 text"))?;
    // Model lists are checked against the models in force once the file is applied (config
    // plus the database models the store will hold), as `/key/generate` does.
    let out = crate::state::apply(&ctx.pool, &ctx.cfg, text, dry_run, prune)?;
    if out.applied {
        log::info!("state applied: {}", out.summary());
        // Database models the file changed are in force here at once (elsewhere on the next
        // request: the generation in THE key check).
        ctx.models.reload(&ctx.pool, &ctx.cfg)?;
    }
    Reply::ok(out.json())
}
