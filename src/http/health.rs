//! Health endpoints (API.md §6): no key needed, no secrets shown.

use super::{Ctx, Reply, Req};
use crate::error::Result;
use serde_json::json;

pub fn liveliness(_ctx: &Ctx, _req: &Req) -> Result<Reply> {
    Ok(Reply::Json(200, json!("I'm alive!")))
}

pub fn readiness(ctx: &Ctx, _req: &Req) -> Result<Reply> {
    let db = ctx
        .pool
        .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?));
    Ok(match db {
        Ok(_) => Reply::Json(
            200,
            json!({"status": "healthy", "db": "connected",
                   "litellm_version": env!("CARGO_PKG_VERSION")}),
        ),
        Err(_) => Reply::Json(503, json!({"status": "unhealthy", "db": "disconnected"})),
    })
}

pub fn root(_ctx: &Ctx, _req: &Req) -> Result<Reply> {
    Ok(Reply::Json(
        200,
        json!({"name": "litegate", "version": env!("CARGO_PKG_VERSION")}),
    ))
}
