//! Model listing (API.md §4, §6): `/v1/models`, `/models`, `/model/info`, `/v1/model/info`,
//! `/v2/model/info`, `/model_group/info`. Every list is the caller's effective set from the one
//! resolver over the view its chain sees (a team's models only to its keys and to admins,
//! issue 15 item 3), computed per request over the models in force (config plus database);
//! upstream secrets are never shown, and an upstream's `api_base` only to proxy admins and
//! viewers (issue 11: a key holder has no use for internal addresses).

use super::{Ctx, Reply, Req};
use crate::access::{Catalog, Chain};
use crate::auth::Caller;
use crate::config::Deployment;
use crate::error::Result;
use serde_json::{json, Value};

/// The chain that decides what the caller may see: proxy admins and viewers see every
/// configured model; keys see their effective set.
fn visible_chain(who: &Caller) -> Chain<'_> {
    if who.role.reads_all() {
        Chain::admin()
    } else {
        who.chain()
    }
}

pub fn list(ctx: &Ctx, who: &Caller, _req: &Req) -> Result<Reply> {
    let models = ctx.models_for(who)?;
    let chain = who.chain();
    let catalog = chain.catalog(&models);
    let data: Vec<Value> = chain
        .effective(catalog)
        .into_iter()
        .map(|id| {
            let owner = catalog
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

/// The deployments the caller may see, each with the name it is called by in its view.
fn visible(ctx: &Ctx, who: &Caller, filter: Option<&str>) -> Result<Vec<Value>> {
    let models = ctx.models_for(who)?;
    let chain = visible_chain(who);
    let catalog: &Catalog = chain.catalog(&models);
    let allowed = chain.effective(catalog);
    Ok(catalog
        .entries()
        .filter(|(name, d)| filter.is_none_or(|m| m == *name || m == d.model_name || m == d.id))
        .filter(|(name, _)| allowed.iter().any(|a| a == name))
        .map(|(_, d)| deployment_json(d, who.role.reads_all()))
        .collect())
}

pub fn info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let data = visible(
        ctx,
        who,
        req.query("litellm_model_id").or(req.query("model")),
    )?;
    Reply::ok(json!({ "data": data }))
}

/// `GET /model_group/info[?model_group=]`: one entry per model name the caller may call
/// (LiteLLM's `ModelGroupInfoProxy` fields that litegate knows).
pub fn group_info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let models = ctx.models_for(who)?;
    let chain = who.chain();
    let catalog = chain.catalog(&models);
    let wanted = req.query("model_group");
    let data: Vec<Value> = chain
        .effective(catalog)
        .into_iter()
        .filter(|g| wanted.is_none_or(|w| w == g))
        .map(|g| {
            let deps = catalog.route(&g);
            let mut providers: Vec<&str> = deps.iter().map(|d| d.provider()).collect();
            providers.dedup();
            let info = |k: &str| deps.iter().find_map(|d| d.model_info.get(k).cloned());
            let sum = |f: fn(&crate::config::Deployment) -> Option<i64>| {
                let v: Vec<i64> = deps.iter().filter_map(|d| f(d)).collect();
                (!v.is_empty()).then(|| v.iter().sum::<i64>())
            };
            json!({
                "model_group": g,
                "providers": providers,
                "max_input_tokens": info("max_input_tokens"),
                "max_output_tokens": info("max_output_tokens"),
                "input_cost_per_token": deps.first().map(|d| d.input_cost_per_token),
                "output_cost_per_token": deps.first().map(|d| d.output_cost_per_token),
                "mode": info("mode"),
                "tpm": sum(|d| d.tpm),
                "rpm": sum(|d| d.rpm),
                "supports_parallel_function_calling": false,
                "supports_vision": false,
                "supports_function_calling": false,
                "is_public_model_group": false,
            })
        })
        .collect();
    Reply::ok(json!({ "data": data }))
}

pub fn info_v2(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let data = visible(ctx, who, req.query("model_id").or(req.query("model")))?;
    let n = data.len();
    Reply::ok(json!({ "data": data, "total_count": n, "current_page": 1, "total_pages": 1 }))
}
