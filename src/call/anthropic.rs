//! Calls to an Anthropic deployment (`provider::Wire::Anthropic`, or Claude on Vertex AI,
//! `Wire::VertexAnthropic`): the chat request is translated (`upstream::anthropic`), POSTed to
//! `{base}/v1/messages` (or Vertex's `:rawPredict`, `anthropic::target`), and the answer or the
//! stream translated back to OpenAI's format; spend is settled from the usage Anthropic
//! reports. Only chat calls reach here (`call::run` refuses the others with a 400). The
//! OpenAI-compatible path (`relay`) is not involved; stream reading and its bounds are
//! `relay`'s own (`SseLines`, the line cap, the batch cap).

use super::body::CallBody;
use super::relay::MAX_STREAM_BATCH;
use super::relay::{
    failed, send, settle_translated, End, SseLines, Translate, UpstreamStream, UsageTally,
};
use super::{Answer, Call, Stream};
use crate::config::Config;
use crate::error::Result;
use crate::upstream::anthropic::{self, Step, StreamState};
use crate::upstream::{self, Upstream};
use serde_json::{Map, Value};

/// Forwards an admitted chat call to its Anthropic deployment and settles it.
pub(super) fn forward(
    call: Call,
    upstream: &Upstream,
    cfg: &Config,
    model: &str,
    parsed: CallBody,
) -> Result<Answer> {
    let stream = parsed.stream;
    let json = anthropic::wants_json(&parsed.fields);
    let req = match anthropic::request(
        &Upstream::model_for(&call.dep, model),
        &parsed.fields,
        stream,
        anthropic::default_max_tokens(&call.dep.model_info),
    ) {
        Ok(r) => r,
        Err(e) => return Err(failed(e, call)),
    };
    let mut req = match req {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let endpoint = anthropic::target(
        &call.dep.route,
        &Upstream::model_for(&call.dep, model),
        stream,
        &mut req,
    );
    let payload = serde_json::to_vec(&req).unwrap_or_default();
    // Anthropic's `{"type":"error","error":{"type","message"}}` has the message where
    // OpenAI's has it, so `relay::send` words its errors as it does OpenAI's.
    let resp = match send(&call, upstream, endpoint, &payload, stream, |s| s == 200) {
        Ok(r) => r,
        Err(e) => return Err(failed(e, call)),
    };
    if stream {
        return Ok(Answer::Stream(Box::new(Stream::Upstream(
            UpstreamStream::new(
                call,
                resp.into_body(),
                parsed.include_usage,
                Translate::Anthropic(Box::new(StreamState::new(json))),
            ),
        ))));
    }
    settle_translated(call, resp, cfg, |v| anthropic::answer_as(v, json))
}

/// Relays an Anthropic stream as OpenAI chunks until either side ends (`relay::relay`'s
/// batching: events go out when nothing more is buffered or at `MAX_STREAM_BATCH`).
pub(super) fn relay(
    lines: &mut SseLines,
    tally: &mut UsageTally,
    call: &Call,
    caller_wants_usage: bool,
    state: &mut StreamState,
    emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> End {
    let dep = &call.dep;
    let mut out: Vec<u8> = Vec::new();
    let mut chunks: Vec<Value> = Vec::new();
    let end = loop {
        if !out.is_empty() && (!lines.buffered() || out.len() >= MAX_STREAM_BATCH) {
            if emit(&out).is_err() {
                return End::ClientGone;
            }
            out.clear();
        }
        let data = match lines.next(call) {
            Ok(Some(data)) => data,
            Ok(None) => continue,
            Err(end) => break end,
        };
        let Ok(ev) = serde_json::from_str::<Value>(data) else {
            break End::Broken("the upstream sent an event that is not JSON".into());
        };
        let step = state.feed(&ev, &mut chunks);
        for mut c in chunks.drain(..) {
            super::completion_id::stamp_value(&mut c, &call.record.request_id);
            let usage_only = tally.see(&c);
            if usage_only && !caller_wants_usage {
                continue;
            }
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(c.to_string().as_bytes());
            out.extend_from_slice(b"\n\n");
        }
        match step {
            Step::Continue => {}
            Step::Stop => break End::Done,
            Step::Error(m) => break End::Broken(upstream::scrub(dep, &m)),
        }
    };
    if !out.is_empty() && emit(&out).is_err() {
        return End::ClientGone;
    }
    end
}
