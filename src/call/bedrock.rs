//! Calls to a Bedrock deployment (`provider::Wire::Bedrock`): the chat request is translated
//! (`upstream::bedrock`), POSTed (SigV4-signed by `Upstream::post`) to
//! `{endpoint}/model/{modelId}/converse` or `/converse-stream`, and the answer or the binary
//! event stream translated back to OpenAI's format; spend is settled from the usage Bedrock
//! reports. Only chat calls reach here (`call::run` refuses the others with a 400). A refused
//! call's error (`x-amzn-errortype`, `{"message"}`) keeps its status, scrubbed of the
//! deployment's credentials and host. The stream's bounds: one message of at most
//! `stream::MAX_FRAME` held at a time, `relay`'s batch cap, the call's stream timeout.

use super::body::CallBody;
use super::relay::{failed, settle_translated, End, Translate, UpstreamStream, UsageTally};
use super::relay::{MAX_STREAM_BATCH, MAX_UPSTREAM_ERROR_BODY};
use super::{Answer, Call, Stream};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::upstream::anthropic::Step;
use crate::upstream::bedrock::stream::{FrameError, Frames, StreamState, MAX_FRAME};
use crate::upstream::bedrock::{self};
use crate::upstream::{self, Upstream};
use serde_json::Value;

/// An upstream's error message is echoed up to this many characters.
const MAX_ECHOED_CHARS: usize = 2000;

/// Forwards an admitted chat call to its Bedrock deployment and settles it.
pub(super) fn forward(
    call: Call,
    upstream: &Upstream,
    cfg: &Config,
    model: &str,
    parsed: CallBody,
) -> Result<Answer> {
    let stream = parsed.stream;
    let req = match bedrock::request(&parsed.fields) {
        Ok(r) => r,
        Err(e) => return Err(failed(e, call)),
    };
    let payload = serde_json::to_vec(&req).unwrap_or_default();
    let endpoint = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    let resp = match send(&call, upstream, endpoint, &payload, stream) {
        Ok(r) => r,
        Err(e) => return Err(failed(e, call)),
    };
    if stream {
        let state = Box::new(StreamState::new(model));
        return Ok(Answer::Stream(Box::new(Stream::Upstream(
            UpstreamStream::new(
                call,
                resp.into_body(),
                parsed.include_usage,
                Translate::Bedrock(state),
            ),
        ))));
    }
    settle_translated(call, resp, cfg, |v| bedrock::answer(v, model))
}

/// POSTs `payload` (timed in the metrics); a status other than 200 is the error Bedrock
/// words (`x-amzn-errortype` and the body's `message`, at most `MAX_UPSTREAM_ERROR_BODY` of
/// it read; a redirect is never followed and shows nothing of itself).
fn send(
    call: &Call,
    upstream: &Upstream,
    endpoint: &str,
    payload: &[u8],
    stream: bool,
) -> Result<upstream::answer::Response> {
    let dep = &call.dep;
    let sent = std::time::Instant::now();
    let resp = upstream.post(dep, endpoint, payload, stream, None);
    crate::metrics::METRICS.upstream(&dep.model_name, sent.elapsed());
    let resp = resp?;
    let status = resp.status();
    if status == 200 {
        return Ok(resp);
    }
    if (200..400).contains(&status) {
        // Another 2xx is not Converse's answer; a 3xx is a redirect (never followed).
        return Err(Upstream::status_error(dep, status, b""));
    }
    let kind = resp.error_type().map(str::to_string);
    let body = resp
        .into_body()
        .read_capped(MAX_UPSTREAM_ERROR_BODY)
        .unwrap_or_default();
    let msg: String = bedrock::error_message(kind.as_deref(), &body)
        .chars()
        .take(MAX_ECHOED_CHARS)
        .collect();
    Err(Error::Upstream {
        status: if (400..600).contains(&status) {
            status
        } else {
            502
        },
        message: format!(
            "upstream error from {}: {}",
            dep.model_name,
            upstream::scrub(dep, &msg)
        ),
    })
}

/// Relays a Bedrock event stream as OpenAI chunks until either side ends (`relay::relay`'s
/// batching: chunks go out when nothing more is buffered or at `MAX_STREAM_BATCH`).
pub(super) fn relay<R: std::io::Read>(
    frames: &mut Frames<std::io::BufReader<R>>,
    tally: &mut UsageTally,
    call: &Call,
    caller_wants_usage: bool,
    state: &mut StreamState,
    emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> End {
    let dep = &call.dep;
    let id = &call.record.request_id;
    let mut out: Vec<u8> = Vec::new();
    let mut chunks: Vec<Value> = Vec::new();
    let end = loop {
        if !out.is_empty() && (!frames.has_buffered() || out.len() >= MAX_STREAM_BATCH) {
            if emit(&out).is_err() {
                return End::ClientGone;
            }
            out.clear();
        }
        let msg = match frames.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => break End::Closed,
            Err(FrameError::TooLarge(n)) => {
                log::warn!(
                    "request {id}: upstream {} announced an event-stream message of {n} bytes",
                    dep.model_name
                );
                break End::Broken(format!(
                    "the upstream sent an event longer than {MAX_FRAME} bytes"
                ));
            }
            Err(FrameError::Corrupt(e)) => {
                log::warn!(
                    "request {id}: upstream {} sent a malformed event-stream message: {e}",
                    dep.model_name
                );
                break End::Broken("the upstream sent a malformed event-stream message".into());
            }
            Err(FrameError::Io(e)) => {
                let timed_out = matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) || e.to_string().contains("timeout");
                log::warn!(
                    "request {id}: upstream {} stream: {}",
                    dep.model_name,
                    upstream::scrub(dep, &e.to_string())
                );
                break End::Broken(if timed_out {
                    "the upstream stream timed out".into()
                } else {
                    "the upstream stream broke".into()
                });
            }
        };
        let step = state.feed(&msg, &mut chunks);
        for mut c in chunks.drain(..) {
            super::completion_id::stamp_value(&mut c, id);
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
