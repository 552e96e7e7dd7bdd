//! Model listing (API.md §4, §6): `/v1/models`, `/models`, `/model/info`, `/v1/model/info`,
//! `/v2/model/info`. Every list is the caller's effective set from the one resolver, computed
//! per request; upstream `api_key`s are never shown, and an upstream's `api_base` only to
//! proxy admins and viewers (issue 11: a key holder has no use for internal addresses).

use super::{Ctx, Reply, Req};
use crate::access::Chain;
use crate::auth::Caller;
use crate::config::Deployment;
use crate::error::Result;
use serde_json::{json, Value};

/// The chain that decides what the caller may see: proxy admins and viewers see every
/// configured model; keys see their effective set.
fn visible_chain(who: &Caller) -> Chain<'_> {
    if who.role.reads_all() {
        Chain::default()
    } else {
        who.chain()
    }
}

pub fn list(ctx: &Ctx, who: &Caller, _req: &Req) -> Result<Reply> {
    let chain = who.chain();
    let data: Vec<Value> = chain
        .effective(&ctx.catalog)
        .into_iter()
        .map(|id| {
            let owner = ctx
                .catalog
                .route(&id)
                .first()
                .map(|d| d.provider().to_string())
                .unwrap_or_else(|| "openai".into());
            json!({"id": id, "object": "model", "created": 1_677_610_602, "owned_by": owner})
        })
        .collect();
    Reply::ok(json!({"object": "list", "data": data}))
}

/// One deployment as `/model/info` shows it: `litellm_params` without `api_key`, and without
/// `api_base` unless `show_base`.
fn deployment_json(d: &Deployment, show_base: bool) -> Value {
    let mut info = serde_json::Map::new();
    for (k, v) in &d.model_info {
        info.insert(k.clone(), v.clone());
    }
    info.insert("id".into(), json!(d.id));
    info.insert("access_groups".into(), json!(d.access_groups));
    info.insert("input_cost_per_token".into(), json!(d.input_cost_per_token));
    info.insert(
        "output_cost_per_token".into(),
        json!(d.output_cost_per_token),
    );
    info.insert("litellm_provider".into(), json!(d.provider()));
    json!({
        "model_name": d.model_name,
        "litellm_params": {
            "model": d.model,
            "api_base": if show_base { d.api_base.as_deref() } else { None },
            "rpm": d.rpm,
            "tpm": d.tpm,
            "input_cost_per_token": d.input_cost_per_token,
            "output_cost_per_token": d.output_cost_per_token,
            "timeout": d.timeout_secs,
            "stream_timeout": d.stream_timeout_secs,
        },
        "model_info": Value::Object(info),
    })
}

fn visible(ctx: &Ctx, who: &Caller, filter: Option<&str>) -> Vec<Value> {
    let chain = visible_chain(who);
    let allowed = chain.effective(&ctx.catalog);
    ctx.catalog
        .deployments
        .iter()
        .filter(|d| filter.is_none_or(|m| m == d.model_name || m == d.id))
        .filter(|d| allowed.contains(&d.model_name))
        .map(|d| deployment_json(d, who.role.reads_all()))
        .collect()
}

pub fn info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let data = visible(
        ctx,
        who,
        req.query("litellm_model_id").or(req.query("model")),
    );
    Reply::ok(json!({ "data": data }))
}

pub fn info_v2(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let data = visible(ctx, who, req.query("model_id").or(req.query("model")));
    let n = data.len();
    Reply::ok(json!({ "data": data, "total_count": n, "current_page": 1, "total_pages": 1 }))
}
