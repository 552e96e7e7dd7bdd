//! Model calls: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings` (and the paths
//! without `/v1`). Runs every check in API.md §7's order that exists so far (key valid, team
//! and org not blocked, model access by the one resolver), then answers from the built-in
//! `mock/` provider or `mock_response`. Forwarding to real upstreams, spend, budgets and rate
//! limits belong to the forwarding work and are not here yet.

use super::{Ctx, Reply, Req};
use crate::auth::{Caller, Role};
use crate::config::Deployment;
use crate::error::{Error, Result};
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq)]
enum CallType {
    Chat,
    Completion,
    Embedding,
}

const MOCK_TEXT: &str = "This is a mock response from litegate.";

/// Rough token count for the mock provider: one token per 4 characters, at least 1.
pub fn count_tokens(s: &str) -> u64 {
    (s.chars().count() as u64).div_ceil(4).max(1)
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(" "),
        Value::Object(o) => o
            .get("content")
            .or_else(|| o.get("text"))
            .map(text_of)
            .unwrap_or_default(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Authentication, role, body, alias and access checks shared by every call type.
fn prepare<'a>(
    ctx: &'a Ctx,
    who: &Caller,
    req: &Req,
    field: &str,
) -> Result<(super::Body, String, &'a Deployment)> {
    if who.role == Role::ProxyAdminViewer {
        return Err(Error::Forbidden(
            "proxy_admin_viewer may not call models".into(),
        ));
    }
    let b = req.json()?;
    let requested = b.req_str("model")?;
    if !b.given(field) {
        return Err(Error::bad_param(field, format!("`{field}` is required")));
    }
    // Key aliases apply before the access check; the check is on the model actually called.
    let model = who
        .key
        .as_ref()
        .and_then(|k| k.alias_for(&requested))
        .unwrap_or(requested);
    who.chain().check(&ctx.catalog, &model)?;
    let dep = ctx
        .catalog
        .route(&model)
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::bad_param(
                "model",
                format!("Invalid model name passed in model={model}"),
            )
        })?;
    Ok((b, model, dep))
}

fn not_forwarding(dep: &Deployment) -> Error {
    Error::Upstream {
        status: 501,
        message: format!(
            "provider '{}' is configured but forwarding to upstreams is not available in this \
             build yet; use a mock/ model or mock_response",
            dep.provider()
        ),
    }
}

fn call(ctx: &Ctx, who: &Caller, req: &Req, kind: CallType) -> Result<Reply> {
    let field = match kind {
        CallType::Chat => "messages",
        CallType::Completion => "prompt",
        CallType::Embedding => "input",
    };
    let (b, model, dep) = prepare(ctx, who, req, field)?;
    let mock_response = b.opt_str("mock_response")?;
    if dep.provider() != "mock" && mock_response.is_none() {
        return Err(not_forwarding(dep));
    }
    let prompt = text_of(b.raw(field).unwrap_or(&Value::Null));
    let prompt_tokens = count_tokens(&prompt);
    let id = format!("chatcmpl-{}", req.request_id);
    let created = crate::util::now_ms() / 1000;
    if kind == CallType::Embedding {
        let inputs: Vec<Value> = match b.raw("input") {
            Some(Value::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        };
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .map(|(i, inp)| {
                let h = crate::auth::hash_key(&text_of(inp));
                let emb: Vec<f64> = h
                    .as_bytes()
                    .chunks(8)
                    .map(|c| (c.iter().map(|&x| x as u32).sum::<u32>() % 1000) as f64 / 1000.0)
                    .collect();
                json!({"object": "embedding", "index": i, "embedding": emb})
            })
            .collect();
        return Reply::ok(json!({
            "object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }));
    }
    let text = mock_response.unwrap_or_else(|| MOCK_TEXT.to_string());
    let completion_tokens = count_tokens(&text);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    });
    let stream = b.opt_bool("stream")?.unwrap_or(false);
    if stream {
        let include_usage = b
            .raw("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut out = String::new();
        let words: Vec<&str> = text.split_inclusive(' ').collect();
        for w in words {
            let delta = if kind == CallType::Chat {
                json!({"index": 0, "delta": {"content": w}, "finish_reason": null})
            } else {
                json!({"index": 0, "text": w, "finish_reason": null})
            };
            let chunk = json!({"id": id, "object": if kind == CallType::Chat {"chat.completion.chunk"} else {"text_completion"},
                "created": created, "model": model, "choices": [delta]});
            out.push_str(&format!("data: {chunk}\n\n"));
        }
        let end = json!({"id": id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
        out.push_str(&format!("data: {end}\n\n"));
        if include_usage {
            let u = json!({"id": id, "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [], "usage": usage});
            out.push_str(&format!("data: {u}\n\n"));
        }
        out.push_str("data: [DONE]\n\n");
        return Ok(Reply::Stream(
            200,
            "text/event-stream",
            Box::new(std::io::Cursor::new(out.into_bytes())),
        ));
    }
    let choice = if kind == CallType::Chat {
        json!({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
    } else {
        json!({"index": 0, "text": text, "finish_reason": "stop"})
    };
    Reply::ok(json!({
        "id": id,
        "object": if kind == CallType::Chat { "chat.completion" } else { "text_completion" },
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage,
    }))
}

pub fn chat(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    call(ctx, who, req, CallType::Chat)
}

pub fn completions(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    call(ctx, who, req, CallType::Completion)
}

pub fn embeddings(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    call(ctx, who, req, CallType::Embedding)
}
