//! Health endpoints (API.md §6): no key needed, no secrets shown.

use super::{Ctx, Reply, Req};
use crate::error::Result;
use serde_json::json;

pub fn liveliness(_ctx: &Ctx, _req: &Req) -> Result<Reply> {
    Ok(Reply::Json(200, json!("I'm alive!")))
}

/// Ready when the database answers and can still record; `db_engine` names the store
/// (`sqlite` or `postgresql`) (`db::health`: the file at the path
/// is the one opened, writable, and no write or checkpoint is failing): a 503 with the reason
/// otherwise, so a load balancer stops sending calls that could not be billed.
pub fn readiness(ctx: &Ctx, _req: &Req) -> Result<Reply> {
    let engine = ctx.pool.engine();
    let unhealthy = |reason: String| {
        Reply::Json(
            503,
            json!({"status": "unhealthy", "db": "disconnected", "db_engine": engine,
                   "reason": reason}),
        )
    };
    // PostgreSQL: `writable` probes a connection while the store is down (at most
    // `database_connection_timeout`), so readiness itself brings the flag back up.
    if let Err(e) = ctx.pool.writable() {
        return Ok(unhealthy(e.message()));
    }
    Ok(match ctx.pool.ping() {
        Ok(()) => Reply::Json(
            200,
            json!({"status": "healthy", "db": "connected", "db_engine": engine,
                   "litellm_version": env!("CARGO_PKG_VERSION")}),
        ),
        Err(_) => unhealthy("the database does not answer".into()),
    })
}

/// `POST /key/health` (LiteLLM): the calling key's logging health. litegate sends no logging
/// callbacks of a key anywhere, so every key that gets here (authenticated) is healthy.
pub fn key_health(_ctx: &Ctx, _who: &crate::auth::Caller, _req: &Req) -> Result<Reply> {
    Ok(Reply::Json(
        200,
        json!({"key": "healthy", "logging_callbacks": null}),
    ))
}

pub fn root(_ctx: &Ctx, _req: &Req) -> Result<Reply> {
    Ok(Reply::Json(
        200,
        json!({"name": "litegate", "version": env!("CARGO_PKG_VERSION")}),
    ))
}

/// Prometheus metrics (API.md §8): no key needed unless `general_settings.metrics_require_auth`,
/// then a proxy admin or viewer key. No secrets and no per-key labels.
pub fn metrics(ctx: &Ctx, req: &Req) -> Result<Reply> {
    if ctx.cfg.metrics_require_auth {
        let who = ctx.caller(req)?;
        if !who.role.reads_all() {
            return Err(crate::error::Error::Forbidden(
                "metrics are for proxy admins and viewers".into(),
            ));
        }
    }
    let life = &ctx.lifecycle;
    let body = crate::metrics::METRICS.render(&[
        (
            "litegate_open_connections",
            "Client connections open now.",
            life.connections().open_connections() as f64,
        ),
        (
            "litegate_refused_connections",
            "Client connections refused for being over the cap, since start.",
            life.connections().refused_connections() as f64,
        ),
        (
            "litegate_refused_requests",
            "Requests refused by the HTTP layer before any handler (malformed or oversized head, \
             ambiguous framing, a read deadline), since start.",
            life.connections().refused_requests() as f64,
        ),
        (
            "litegate_in_flight_requests",
            "Requests being handled now.",
            life.in_flight() as f64,
        ),
    ]);
    Ok(Reply::Text(200, "text/plain; version=0.0.4", body))
}
