//! Model calls over HTTP: `/v1/chat/completions`, `/v1/completions`, `/v1/embeddings`
//! (also Azure OpenAI's `/openai/deployments/{model}/…`, the model from the path),
//! Anthropic's `/v1/messages` and `/v1/messages/count_tokens` (and the paths without `/v1`). HTTP in and out only: the request's bytes go to `call::run`, which
//! does the work (admission in API.md §7's order, the provider, settlement), and its answer
//! becomes a reply. A streamed answer is pumped by the server's SSE writer (`respond_sse`),
//! and settles itself before its final `[DONE]`.

use super::{Ctx, Reply, Req, StreamBody};
use crate::auth::Caller;
use crate::call::{self, Answer, CallType, Input};
use crate::error::{Error, Result};

fn run(ctx: &Ctx, who: &Caller, req: &Req, kind: CallType) -> Result<Reply> {
    run_body(ctx, who, req, kind, &req.body)
}

fn run_body(ctx: &Ctx, who: &Caller, req: &Req, kind: CallType, bytes: &[u8]) -> Result<Reply> {
    let input = Input {
        kind,
        bytes,
        request_id: &req.request_id,
        anthropic_beta: if kind == CallType::Messages {
            anthropic_beta(req)?
        } else {
            None
        },
    };
    let models = ctx.models_for(who)?;
    Ok(
        match call::run(&ctx.calls, &ctx.cfg, &models, who, input)? {
            Answer::Json(v) => Reply::Json(200, v),
            Answer::Raw(bytes) => Reply::Raw(200, "application/json", bytes),
            Answer::Stream(s) => Reply::Sse(s),
        },
    )
}

/// A call's event stream, as the server's SSE writer drives it.
impl StreamBody for call::Stream {
    fn pump(self: Box<Self>, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
        call::Stream::pump(*self, emit)
    }
}

pub fn chat(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    run(ctx, who, req, CallType::Chat)
}

pub fn completions(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    run(ctx, who, req, CallType::Completion)
}

pub fn embeddings(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    run(ctx, who, req, CallType::Embedding)
}

/// Azure OpenAI's inbound paths (`/openai/deployments/{model}/chat/completions`,
/// `/completions`, `/embeddings`), for the Azure SDKs: the model is the path's deployment
/// name, which wins over a `model` in the body (LiteLLM's `resolve_inference_model`); the
/// `api-version` query is ignored; the key comes in `api-key` as Azure's SDKs send it (or
/// any other key header, `auth::key`). A model name holding `/` is written `%2F` in the path.
fn azure(ctx: &Ctx, who: &Caller, req: &Req, kind: CallType) -> Result<Reply> {
    let model = req
        .param("model")
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| Error::bad_param("model", "the path names no deployment"))?;
    let (mut fields, _) = crate::input::json_object(&req.body)?;
    fields.insert("model".into(), serde_json::Value::String(model));
    let bytes = serde_json::to_vec(&fields).map_err(|e| Error::internal(e.to_string()))?;
    run_body(ctx, who, req, kind, &bytes)
}

pub fn azure_chat(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    azure(ctx, who, req, CallType::Chat)
}

pub fn azure_completions(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    azure(ctx, who, req, CallType::Completion)
}

pub fn azure_embeddings(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    azure(ctx, who, req, CallType::Embedding)
}

pub fn messages(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    run(ctx, who, req, CallType::Messages)
}

pub fn count_tokens(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let beta = anthropic_beta(req)?;
    let models = ctx.models_for(who)?;
    let v = call::messages::count_tokens(&ctx.calls, &ctx.cfg, &models, who, &req.body, beta)?;
    Ok(Reply::Json(200, v))
}

/// The caller's `anthropic-beta` header (Claude Code sends its feature flags there), passed
/// to Anthropic deployments: a comma-separated list of plain words, at most 1,024 bytes.
fn anthropic_beta(req: &Req) -> Result<Option<&str>> {
    let Some(v) = req.header("anthropic-beta").map(str::trim) else {
        return Ok(None);
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"-_.,: ".contains(&b);
    if v.len() > 1024 || !v.bytes().all(plain) {
        return Err(Error::bad_param(
            "anthropic-beta",
            "the anthropic-beta header must be a comma-separated list of feature names",
        ));
    }
    Ok(Some(v).filter(|v| !v.is_empty()))
}

/// The routes that answer in Anthropic's format, errors included (`Error::anthropic_body`).
pub fn speaks_anthropic(route: &str) -> bool {
    matches!(
        route,
        "/v1/messages" | "/messages" | "/v1/messages/count_tokens" | "/messages/count_tokens"
    )
}
