//! Anthropic's Messages API as a door into the same model call (issue 13 item 2):
//! `/v1/messages` runs `call::run` like chat (key, model access, budgets, limits, one spend
//! record with LiteLLM's `call_type` `anthropic_messages`); here is what differs after
//! admission:
//!
//! - an Anthropic deployment gets the body as it came (the deployment's model in place, the
//!   caller's `anthropic-beta` forwarded by `upstream::Upstream::post`), and its answer or
//!   stream is relayed as it is, usage read from it (`stream::MessagesStream::Passthrough`);
//! - every other deployment (the OpenAI-compatible family, azure, the mock provider) gets the
//!   call translated to chat (`upstream::messages::to_chat`), run through the chat path
//!   (`relay::forward` or `mock::answer`, unchanged), and its answer translated back
//!   (`from_chat`; a stream's chunks by `stream::MessagesStream::Translated`).
//!
//! `count_tokens` answers `/v1/messages/count_tokens`: the same key check and model access,
//! no budget, no rate limit, no spend (it costs nothing; LiteLLM does the same). The body's
//! shape is `check`'s.

mod check;
mod stream;

pub use check::check;
pub use stream::MessagesStream;

use super::body::CallBody;
use super::relay::{self, failed, read_answer, send, MAX_UPSTREAM_ERROR_BODY};
use super::{estimate, mock, Answer, Call, CallType, Calls, Stream};
use crate::access::ModelViews;
use crate::auth::{Caller, Role};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::provider::Wire;
use crate::upstream::{self, anthropic, messages, usage, Upstream};
use serde::Deserialize;
use serde_json::{json, Value};
use std::borrow::Cow;

/// A count_tokens answer is read up to this much (it is `{"input_tokens": n}`).
const MAX_COUNT_ANSWER: u64 = 64 * 1024;

/// Answers an admitted Messages call (see the module doc) and settles it.
pub(super) fn answer(
    call: Call,
    upstream: &Upstream,
    cfg: &Config,
    model: &str,
    body: CallBody,
    bytes: &[u8],
) -> Result<Answer> {
    let mock = body.mock_response.is_some() || call.dep.provider() == "mock";
    if !mock && call.dep.route.wire.is_anthropic() {
        return passthrough(call, upstream, cfg, model, body, bytes);
    }
    translated(call, upstream, cfg, model, body, mock)
}

/// Only `usage` of an Anthropic answer is read to settle it (no tree of the rest).
#[derive(Deserialize)]
struct UsageOnly {
    usage: Option<Value>,
}

/// The usage to bill of an Anthropic `usage` object (input + cache reads and writes as
/// prompt, as the chat translation counts them).
pub(super) fn reported(u: &Value) -> usage::Reported {
    let output = u.get("output_tokens").and_then(Value::as_u64).unwrap_or(0);
    usage::Reported::of_value(&anthropic::usage(u, output))
}

/// An Anthropic deployment: the body and the answer pass through.
fn passthrough(
    mut call: Call,
    upstream: &Upstream,
    cfg: &Config,
    model: &str,
    body: CallBody,
    bytes: &[u8],
) -> Result<Answer> {
    let stream = body.stream;
    let (endpoint, payload) = if !body.duplicate_keys
        && !body.rewritten
        && messages::passthrough_unchanged(&call.dep, model, &body.fields)
    {
        ("messages", Cow::Borrowed(bytes))
    } else {
        let (endpoint, b) = messages::passthrough_body(&call.dep, model, body.fields, stream);
        (endpoint, Cow::Owned(b))
    };
    let resp = match send(&call, upstream, endpoint, &payload, stream, |s| s == 200) {
        Ok(r) => r,
        Err(e) => return Err(failed(e, call)),
    };
    if stream {
        return Ok(Answer::Stream(Box::new(Stream::Messages(
            MessagesStream::passthrough(call, resp.into_body()),
        ))));
    }
    let bytes = match read_answer(&call, resp, cfg.max_upstream_body_bytes) {
        Ok(b) => b,
        Err(e) => return Err(failed(e, call)),
    };
    let Ok(u) = serde_json::from_slice::<UsageOnly>(&bytes) else {
        let e = super::relay::invalid_json(&call);
        return Err(failed(e, call));
    };
    let (p, c) = call.billable(u.usage.as_ref().map(reported), || {
        let chars = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("content").cloned())
            .map_or(0, |c| estimate::text_of(&c).chars().count() as u64);
        usage::tokens_of_chars(chars)
    });
    call.settle(p, c, "success")?;
    Ok(Answer::Raw(bytes))
}

/// Any other deployment: the call runs as a chat call and its answer is translated back.
fn translated(
    mut call: Call,
    upstream: &Upstream,
    cfg: &Config,
    model: &str,
    body: CallBody,
    mock: bool,
) -> Result<Answer> {
    let stream = body.stream;
    let fields = messages::to_chat(&body.fields, &Upstream::model_for(&call.dep, model), stream);
    // The translated body already names the upstream model and has no gateway-only field:
    // `relay::forward` sends these bytes as they are.
    let chat_bytes = serde_json::to_vec(&fields).unwrap_or_default();
    let chat = CallBody {
        model: model.to_string(),
        stream,
        mock_response: body.mock_response,
        max_tokens: body.max_tokens,
        completion_cap: body.completion_cap,
        n: 1,
        // The usage chunk is wanted: `message_delta` carries it.
        include_usage: true,
        duplicate_keys: false,
        rewritten: false,
        len: chat_bytes.len(),
        fields,
    };
    let input_estimate = call.prompt_estimate;
    // The upstream answers a chat call; the spend record keeps `anthropic_messages`.
    call.kind = CallType::Chat;
    let answer = if mock {
        mock::answer(call, model, chat)?
    } else {
        relay::forward(call, upstream, cfg, model, chat, &chat_bytes)?
    };
    Ok(match answer {
        Answer::Json(v) => Answer::Json(messages::from_chat(&v)),
        // Already read as JSON by `relay::forward` (its usage), so this parses.
        Answer::Raw(b) => Answer::Json(messages::from_chat(
            &serde_json::from_slice(&b).unwrap_or(Value::Null),
        )),
        Answer::Stream(s) => Answer::Stream(Box::new(Stream::Messages(
            MessagesStream::translated(*s, input_estimate),
        ))),
    })
}

/// `/v1/messages/count_tokens`: `{"input_tokens": n}` from an Anthropic deployment's own
/// count, else the local estimate (`estimate::messages_prompt`). The key check and model
/// access of a call; no budget, no rate limit, no spend.
pub fn count_tokens(
    calls: &Calls,
    cfg: &Config,
    models: &ModelViews,
    who: &Caller,
    bytes: &[u8],
    anthropic_beta: Option<&str>,
) -> Result<Value> {
    if who.role == Role::ProxyAdminViewer {
        return Err(Error::Forbidden(
            "proxy_admin_viewer may not call models".into(),
        ));
    }
    let (fields, _) = crate::input::json_object(bytes)?;
    let requested = match fields.get("model") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            crate::input::check("model", s)?;
            s.clone()
        }
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(Error::bad_param("model", "`model` is required"))
        }
        Some(_) => return Err(Error::bad_param("model", "`model` must be a string")),
    };
    check(&fields, false)?;
    let (model, dep) = super::resolve(cfg, models, who, requested)?;
    if dep.route.wire != Wire::Anthropic || dep.provider() == "mock" {
        return Ok(json!({"input_tokens": estimate::messages_prompt(&fields)}));
    }
    let payload = messages::count_tokens_body(&dep, &model, &fields);
    let resp = calls.upstream.post(
        &dep,
        "messages/count_tokens",
        &payload,
        false,
        anthropic_beta,
    )?;
    let status = resp.status();
    let cap = if status == 200 {
        MAX_COUNT_ANSWER
    } else {
        MAX_UPSTREAM_ERROR_BODY
    };
    let body = if (300..400).contains(&status) {
        Vec::new()
    } else {
        resp.into_body()
            .read_capped(cap)
            .map_err(|e| upstream::map_fault(&dep, &e))?
    };
    if status != 200 {
        return Err(Upstream::status_error(&dep, status, &body));
    }
    let n = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("input_tokens").and_then(Value::as_u64))
        .filter(|n| *n <= usage::MAX_TOKENS)
        .ok_or_else(|| Error::Upstream {
            status: 502,
            message: format!(
                "upstream {} answered count_tokens without a token count",
                dep.model_name
            ),
        })?;
    Ok(json!({"input_tokens": n}))
}
