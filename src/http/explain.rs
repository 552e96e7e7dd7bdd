//! `POST /access/explain` (issue 16 item 1; litegate's own, LiteLLM has none): `{"model": …}`
//! explains a call by the caller's own key, `{"key": …, "model": …}` one by another key — given
//! raw (`sk-…`), as its token (hash) or by its `key_alias`. Owns the body, finding the key and
//! who may ask (`policy::can_explain_key`); the answer is `call::explain`'s, on the caller the
//! key would act as (`auth::key_caller`) and THE key check's row (`load_key_any`).
//!
//! Below the proxy's admins and viewers, a key that does not exist and one the caller may not explain get the
//! same 403, so the answer tells nothing about other keys. The answer names the key as
//! `/key/info` does (its `sk-…xxxx` name and alias), never by its raw value.

use super::{Ctx, Reply, Req};
use crate::access::policy;
use crate::auth::{self, Caller};
use crate::db;
use crate::db::handle::Handle;
use crate::error::{Error, Result};
use serde_json::json;

const NOT_YOURS: &str = "you may explain only your own keys, or keys of a team or organization \
    you administer";

/// The key `given` names (raw, token or alias), if the caller may explain it: its row.
fn find<C: Handle + ?Sized>(c: &C, who: &Caller, given: &str) -> Result<db::key_check::KeyRow> {
    let rec = match db::keys::by_token(c, &auth::token_of(given))? {
        Some(r) => Some(r),
        None => db::keys::by_alias(c, given)?,
    };
    let denied = || {
        if who.role.reads_all() {
            Error::NotFound("Key not found".into())
        } else {
            Error::Forbidden(NOT_YOURS.into())
        }
    };
    let Some(rec) = rec else {
        return Err(denied());
    };
    if !policy::can_explain_key(c, who, &rec.k)? {
        return Err(Error::Forbidden(NOT_YOURS.into()));
    }
    db::key_check::load_key_any(c, &rec.k.token)?.ok_or_else(denied)
}

pub fn explain(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let body = req.json()?;
    let model = body.req_str("model")?;
    let given = body.opt_str("key")?.filter(|k| !k.trim().is_empty());
    let (subject, refusal) = match given {
        Some(k) => {
            let row = ctx.pool.read_db(|c| find(c, who, k.trim()))?;
            let refusal = auth::key_refusal(&row, crate::util::now_ms());
            (auth::key_caller(row), refusal)
        }
        None if who.key.is_some() || who.is_master() => (who.clone(), None),
        None => {
            return Err(Error::bad_param(
                "key",
                "`key` is required: this session has no key of its own to explain",
            ))
        }
    };
    let models = ctx.models_for(&subject)?;
    let mut answer =
        crate::call::explain::explain(&ctx.calls, &ctx.cfg, &models, &subject, refusal, &model)?;
    answer["key"] = match subject.key.as_deref() {
        Some(k) => json!({
            "key_name": k.key_name,
            "key_alias": k.key_alias,
            "team_id": k.team_id,
            "organization_id": k.org.as_ref().map(|o| o.id.clone()),
            "user_id": k.user_id,
        }),
        None => json!(null),
    };
    Reply::ok(answer)
}
