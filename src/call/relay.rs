//! Forwarding a call to its deployment, and relaying the answer: a JSON answer is read whole
//! (its `usage` comes last and spend is recorded before the client gets it), a stream is
//! relayed event by event, batched when several arrived together, with the upstream's usage
//! chunk stripped when the caller did not ask for it and the call settled before our `[DONE]`.
//! An upstream's errors are scrubbed of its URL and key. Leaves the HTTP exchange with the
//! upstream to `upstream`, and admission and settlement to `call`.

use super::body::CallBody;
use super::{completion_id, Answer, Call, Stream};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::upstream::sse::{self, Line};
use crate::upstream::{self, usage, Upstream};
use serde_json::Value;
use std::io::Read;

/// After an upstream stream's `[DONE]`, at most this much more is read to reuse its connection.
pub(super) const MAX_STREAM_DRAIN: u64 = 64 * 1024;
/// An upstream error body is read up to this much (the message is in its first bytes).
pub(super) const MAX_UPSTREAM_ERROR_BODY: u64 = 1024 * 1024;
/// Events read but not yet sent are sent once they reach this much, even if more is buffered.
/// A stream's memory is one line ([`sse::MAX_LINE`]), a read buffer and at most this.
pub(super) const MAX_STREAM_BATCH: usize = 64 * 1024;

/// Forwards an admitted call to its deployment and settles it (a stream: once relayed).
pub(super) fn forward(
    mut call: Call,
    upstream: &Upstream,
    cfg: &Config,
    model: &str,
    parsed: CallBody,
    bytes: &[u8],
) -> Result<Answer> {
    if call.dep.route.wire.is_anthropic() {
        return super::anthropic::forward(call, upstream, cfg, model, parsed);
    }
    if call.dep.route.wire == crate::provider::Wire::Bedrock {
        return super::bedrock::forward(call, upstream, cfg, model, parsed);
    }
    let stream = parsed.stream;
    let caller_wants_usage = parsed.include_usage;
    let mut body = parsed.fields;
    // The caller's bytes go upstream as they came when nothing in them changes (issue 6: a
    // long conversation was parsed and written out again on every call); otherwise the
    // parsed body, changed, is written out.
    let as_sent = (!stream || caller_wants_usage)
        && !parsed.duplicate_keys
        && !parsed.rewritten
        && Upstream::body_unchanged(&call.dep, model, &body);
    if stream && !caller_wants_usage {
        // Ask the upstream for usage; the extra chunk is stripped before the caller sees it.
        let mut opts = body
            .get("stream_options")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        opts.insert("include_usage".into(), Value::Bool(true));
        body.insert("stream_options".into(), Value::Object(opts));
    }
    let payload: std::borrow::Cow<'_, [u8]> = if as_sent {
        std::borrow::Cow::Borrowed(bytes)
    } else {
        std::borrow::Cow::Owned(Upstream::body(&call.dep, model, body))
    };
    // A stream is any 2xx, an answer only 200; a redirect (never followed) is a fault too.
    let accepted = |status: u16| (200..300).contains(&status) && (stream || status == 200);
    let resp = match send(
        &call,
        upstream,
        call.kind.endpoint(),
        &payload,
        stream,
        accepted,
    ) {
        Ok(r) => r,
        Err(e) => return Err(failed(e, call)),
    };
    if stream {
        return Ok(Answer::Stream(Box::new(Stream::Upstream(UpstreamStream {
            call,
            body: resp.into_body(),
            caller_wants_usage,
            translate: Translate::None,
        }))));
    }
    let mut bytes = match read_answer(&call, resp, cfg.max_upstream_body_bytes) {
        Ok(b) => b,
        Err(e) => return Err(failed(e, call)),
    };
    // Only `usage` is read (the rest is checked for syntax and skipped, no tree is built),
    // in the same pass that finds the `id` to stamp (`completion_id::scan_answer`); an
    // answer that pass does not take is read as before. The completion text is counted, in
    // a second pass, only when its figure is needed.
    let scanned = completion_id::scan_answer(&bytes);
    let reported = match &scanned {
        Some(s) => s.usage,
        None => match serde_json::from_slice::<usage::UsageOnly>(&bytes) {
            Ok(u) => u.usage.map(|r| r.0),
            Err(_) => {
                let e = invalid_json(&call);
                return Err(failed(e, call));
            }
        },
    };
    let (p, c) = call.billable(reported, || {
        let chars = serde_json::from_slice::<usage::ChoicesOnly>(&bytes)
            .ok()
            .and_then(|c| c.choices)
            .map_or(0, |c| c.0);
        usage::tokens_of_chars(chars)
    });
    call.settle(p, c, "success")?;
    // The upstream's answer as it came (its `model` field names the upstream model), but for
    // its `id`: the request id (`completion_id`).
    let id = &call.record.request_id;
    Ok(Answer::Raw(match scanned {
        Some(s) => {
            s.stamp(&mut bytes, id);
            bytes
        }
        None => completion_id::stamp_bytes(&bytes, id).unwrap_or(bytes),
    }))
}

/// POSTs `payload` to the call's deployment (timed in the metrics) and returns the response
/// when `accepted` takes its status; otherwise the error for that status, with at most
/// `MAX_UPSTREAM_ERROR_BODY` of its body read (none for a redirect, which is never followed).
pub(super) fn send(
    call: &Call,
    upstream: &Upstream,
    endpoint: &str,
    payload: &[u8],
    stream: bool,
    accepted: impl Fn(u16) -> bool,
) -> Result<upstream::answer::Response> {
    let sent = std::time::Instant::now();
    let resp = upstream.post(
        &call.dep,
        endpoint,
        payload,
        stream,
        call.anthropic_beta.as_deref(),
    );
    crate::metrics::METRICS.upstream(&call.dep.model_name, sent.elapsed());
    let resp = resp?;
    let status = resp.status();
    if accepted(status) {
        return Ok(resp);
    }
    let bytes = if (300..400).contains(&status) {
        Vec::new()
    } else {
        resp.into_body()
            .read_capped(MAX_UPSTREAM_ERROR_BODY)
            .unwrap_or_default()
    };
    Err(Upstream::status_error(&call.dep, status, &bytes))
}

/// Reads a whole (non-stream) answer, at most `cap` bytes: more is a 502. The answer is held
/// because its `usage` comes last and spend is recorded before the client gets it, so `cap`
/// times `--workers` bounds the memory of such answers.
pub(super) fn read_answer(
    call: &Call,
    resp: upstream::answer::Response,
    cap: u64,
) -> Result<Vec<u8>> {
    match resp.into_body().read_capped(cap) {
        Ok(b) => Ok(b),
        Err(ureq::Error::BodyExceedsLimit(_)) => Err(Error::Upstream {
            status: 502,
            message: format!(
                "upstream {} answered with more than {cap} bytes",
                call.dep.model_name
            ),
        }),
        Err(e) => Err(upstream::map_fault(&call.dep, &e)),
    }
}

/// Settles a call the upstream failed (nothing billed) and returns the error for the client.
pub(super) fn failed(e: Error, mut call: Call) -> Error {
    let _ = call.settle(0, 0, "failure");
    e
}

/// The 502 for an answer that is not JSON.
pub(super) fn invalid_json(call: &Call) -> Error {
    Error::Upstream {
        status: 502,
        message: format!(
            "upstream {} answered with invalid JSON",
            call.dep.model_name
        ),
    }
}

/// A translated wire's whole answer (Anthropic, Bedrock): read under the cap, parsed,
/// `translate`d to OpenAI's shape, and the call settled from the translated usage (or the
/// answer's text when the upstream reported none) before it is returned.
pub(super) fn settle_translated(
    mut call: Call,
    resp: upstream::answer::Response,
    cfg: &Config,
    translate: impl FnOnce(&Value) -> Value,
) -> Result<Answer> {
    let bytes = match read_answer(&call, resp, cfg.max_upstream_body_bytes) {
        Ok(b) => b,
        Err(e) => return Err(failed(e, call)),
    };
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        let e = invalid_json(&call);
        return Err(failed(e, call));
    };
    let mut out = translate(&v);
    completion_id::stamp_value(&mut out, &call.record.request_id);
    let reported = v
        .get("usage")
        .map(|_| usage::Reported::of_value(&out["usage"]));
    let (p, c) = call.billable(reported, || {
        usage::tokens_of_chars(usage::completion_chars(&out))
    });
    call.settle(p, c, "success")?;
    Ok(Answer::Json(out))
}

/// An upstream's stream, relayed event by event.
pub struct UpstreamStream {
    call: Call,
    body: upstream::answer::Body,
    caller_wants_usage: bool,
    translate: Translate,
}

/// How an upstream's stream is read and translated.
pub(super) enum Translate {
    /// OpenAI's SSE, relayed as it comes.
    None,
    /// Anthropic's SSE events, translated (`call::anthropic`).
    Anthropic(Box<crate::upstream::anthropic::StreamState>),
    /// Bedrock's binary event stream, translated (`call::bedrock`).
    Bedrock(Box<crate::upstream::bedrock::stream::StreamState>),
}

/// How reading an upstream's stream ended.
pub(super) enum End {
    /// The upstream sent `[DONE]`.
    Done,
    /// The upstream closed the stream without `[DONE]`.
    Closed,
    /// The stream cannot go on (the message for the caller's error event).
    Broken(String),
    /// The client went away.
    ClientGone,
}

/// The lines of an upstream's stream, each at most [`sse::MAX_LINE`] bytes.
pub(super) struct SseLines {
    reader: std::io::BufReader<upstream::answer::BodyReader>,
    /// The last line read (its buffer is reused for the next).
    line: Vec<u8>,
}

impl SseLines {
    /// The lines of an upstream's streamed body.
    pub(super) fn of_body(body: upstream::answer::Body) -> SseLines {
        SseLines::new(std::io::BufReader::new(body.into_reader()))
    }

    fn new(reader: std::io::BufReader<upstream::answer::BodyReader>) -> SseLines {
        SseLines {
            reader,
            line: Vec::new(),
        }
    }

    /// The reader, to drain what follows a finished stream (its connection is then reused).
    pub(super) fn into_reader(self) -> impl Read {
        self.reader
    }

    /// Whether more of the stream has arrived than was read (the next line needs no wait).
    pub(super) fn buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }

    /// Reads one line: the data of an event (`Some`), a line without data (`None`: a blank
    /// line, a comment, another field), or how the stream ended (`call` names it in warnings).
    /// One line per call, so the relay can flush what it holds before a read that may wait.
    pub(super) fn next(&mut self, call: &Call) -> std::result::Result<Option<&str>, End> {
        let dep = &call.dep;
        match sse::read_line_capped(&mut self.reader, &mut self.line, sse::MAX_LINE) {
            Ok(Line::Eof) => return Err(End::Closed),
            Ok(Line::Got) => {}
            Ok(Line::TooLong) => {
                log::warn!(
                    "request {}: upstream {} sent an event line over {} bytes",
                    call.record.request_id,
                    dep.model_name,
                    sse::MAX_LINE
                );
                return Err(End::Broken(format!(
                    "the upstream sent an event longer than {} bytes",
                    sse::MAX_LINE
                )));
            }
            Err(e) => {
                let timed_out = matches!(
                    e.kind(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                ) || e.to_string().contains("timeout");
                log::warn!(
                    "request {}: upstream {} stream: {}",
                    call.record.request_id,
                    dep.model_name,
                    upstream::scrub(dep, &e.to_string())
                );
                return Err(End::Broken(if timed_out {
                    "the upstream stream timed out".into()
                } else {
                    "the upstream stream broke".into()
                }));
            }
        }
        let Ok(text) = std::str::from_utf8(&self.line) else {
            return Err(End::Broken("the upstream stream is not UTF-8".into()));
        };
        let Some(data) = text.trim_end().strip_prefix("data:") else {
            return Ok(None);
        };
        match data.trim_start() {
            "[DONE]" => Err(End::Done),
            data => Ok(Some(data)),
        }
    }
}

/// What a stream's events said about usage and how it ended.
#[derive(Default, Debug, PartialEq)]
pub(super) struct UsageTally {
    reported: Option<usage::Reported>,
    /// Characters of completion text seen, for a stream without usage (a count, not the
    /// text: an endless stream must not grow memory).
    produced_chars: u64,
    /// A choice carried a `finish_reason`.
    finished: bool,
}

impl UsageTally {
    /// Counts one event of an OpenAI stream read without a tree; true when it is a usage
    /// chunk without choices. The same count as [`UsageTally::see`] of its tree.
    pub(super) fn see_event(&mut self, e: &usage::event::Event) -> bool {
        let mut usage_only = false;
        if let Some(u) = e.usage {
            self.reported = Some(u);
            usage_only = !e.has_choices;
        }
        self.produced_chars = self.produced_chars.saturating_add(e.chars);
        self.finished |= e.finished;
        usage_only
    }

    /// Counts one event; true when it is a usage chunk without choices.
    pub(super) fn see(&mut self, v: &Value) -> bool {
        let mut usage_only = false;
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            self.reported = Some(usage::Reported::of_value(u));
            usage_only = v
                .get("choices")
                .and_then(Value::as_array)
                .is_none_or(|c| c.is_empty());
        }
        self.produced_chars = self
            .produced_chars
            .saturating_add(usage::completion_chars(v));
        if v.get("choices")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()))
            })
        {
            self.finished = true;
        }
        usage_only
    }
}

impl UpstreamStream {
    pub(super) fn new(
        call: Call,
        body: upstream::answer::Body,
        caller_wants_usage: bool,
        translate: Translate,
    ) -> UpstreamStream {
        UpstreamStream {
            call,
            body,
            caller_wants_usage,
            translate,
        }
    }

    pub(super) fn pump(self, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
        let reader = std::io::BufReader::new(self.body.into_reader());
        let mut tally = UsageTally::default();
        let (call, wants) = (&self.call, self.caller_wants_usage);
        let (end, reader) = match self.translate {
            Translate::Bedrock(mut state) => {
                let mut frames = crate::upstream::bedrock::stream::Frames::new(reader);
                let end =
                    super::bedrock::relay(&mut frames, &mut tally, call, wants, &mut state, emit);
                (end, frames.into_inner())
            }
            Translate::Anthropic(mut state) => {
                let mut lines = SseLines::new(reader);
                let end =
                    super::anthropic::relay(&mut lines, &mut tally, call, wants, &mut state, emit);
                (end, lines.reader)
            }
            Translate::None => {
                let mut lines = SseLines::new(reader);
                let end = relay(&mut lines, &mut tally, call, wants, emit);
                (end, lines.reader)
            }
        };
        let mut call = self.call;
        // Stop the upstream call now (closes its connection) unless it ended with `[DONE]`:
        // then the rest of its body (the chunked terminator) is read after our `[DONE]`, so
        // ureq returns the connection to its pool instead of closing it.
        let finished_reader = match end {
            End::Done => Some(reader),
            _ => {
                drop(reader);
                None
            }
        };
        let (p, c) = call.billable(tally.reported, || {
            usage::tokens_of_chars(tally.produced_chars)
        });
        let broken = match end {
            End::ClientGone => {
                let _ = call.settle(p, c, "client_disconnected");
                return;
            }
            End::Done => None,
            End::Closed if tally.finished => None,
            End::Closed => Some("the upstream closed the stream before it finished".to_string()),
            End::Broken(msg) => Some(msg),
        };
        match broken {
            None => {
                let _ = call.settle(p, c, "success");
                let _ = emit(b"data: [DONE]\n\n");
                if let Some(r) = finished_reader {
                    drain(r);
                }
            }
            Some(msg) => {
                let _ = call.settle(p, c, "failure");
                let err = Error::Upstream {
                    status: 502,
                    message: msg,
                };
                let _ = emit(format!("data: {}\n\n", err.body()).as_bytes());
                let _ = emit(b"data: [DONE]\n\n");
            }
        }
    }
}

/// Relays the upstream's events to the client until either ends. Events read but not yet
/// sent go out when nothing more is buffered, i.e. right before a read that may wait: one
/// `send` for all the events that arrived together (under load several do), and still at
/// once for an event that arrived alone; and at the latest once they reach
/// `MAX_STREAM_BATCH`. The usage chunk asked for on the caller's behalf is not relayed; an
/// event that may name the upstream (its own error, plain text) is scrubbed.
fn relay(
    lines: &mut SseLines,
    tally: &mut UsageTally,
    call: &Call,
    caller_wants_usage: bool,
    emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> End {
    let dep = &call.dep;
    let mut out: Vec<u8> = Vec::new();
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
        match classify(data, tally, caller_wants_usage) {
            // The usage chunk asked for on the caller's behalf: not relayed.
            (Relayed::Dropped, _) => {}
            // Not JSON (an upstream's plain-text complaint) or an upstream's own error event:
            // either may echo its URL or our key.
            (Relayed::Scrubbed, _) => {
                push_event(&mut out, upstream::scrub(dep, data).as_bytes());
            }
            (Relayed::Stamped, ids) => {
                // Its `id` becomes the request id (`completion_id`); the rest as it came,
                // written straight into the batch.
                out.extend_from_slice(b"data: ");
                stamp_event(data, &ids, &call.record.request_id, &mut out);
                out.extend_from_slice(b"\n\n");
            }
        }
    };
    if !out.is_empty() && emit(&out).is_err() {
        return End::ClientGone;
    }
    end
}

/// How one event of an OpenAI stream is relayed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Relayed {
    /// Not at all (the usage chunk asked for on the caller's behalf).
    Dropped,
    /// Scrubbed of the upstream's URL and key (not JSON, or the upstream's error).
    Scrubbed,
    /// As it came, its `id` stamped.
    Stamped,
}

/// Counts one event's data in `tally` and says how it is relayed, with where its top-level
/// `"id"` strings are (found in the same pass). The event is read without a tree
/// (`usage::event::Event`), as a `serde_json::Value` of it was read before.
fn classify(
    data: &str,
    tally: &mut UsageTally,
    caller_wants_usage: bool,
) -> (Relayed, usage::event::IdSpans) {
    let Ok((e, ids)) = usage::event::Event::read_with_ids(data) else {
        return (Relayed::Scrubbed, usage::event::IdSpans::default());
    };
    let relayed = if tally.see_event(&e) && !caller_wants_usage {
        Relayed::Dropped
    } else if e.error {
        Relayed::Scrubbed
    } else {
        Relayed::Stamped
    };
    (relayed, ids)
}

/// Appends a stamped event's data to `out` (its top-level `"id"` strings set to `id`, as
/// `completion_id::stamp_into` sets them): from the spans its read kept, or, where the read
/// did not keep them all (an id with an escape, many ids), by walking it.
fn stamp_event(data: &str, ids: &usage::event::IdSpans, id: &str, out: &mut Vec<u8>) {
    match ids.get() {
        Some(spans) => completion_id::stamp_spans_into(data.as_bytes(), spans, id, out),
        None => completion_id::stamp_into(data.as_bytes(), id, out),
    }
}

/// Reads what follows a finished stream (its chunked terminator), at most
/// [`MAX_STREAM_DRAIN`], so that its connection is reused. A small buffer read to the end:
/// `io::copy` zeroed an 8 KiB buffer per read through our reader (~9k instructions a stream).
pub(super) fn drain(mut r: impl Read) {
    let mut buf = [0u8; 512];
    let mut left = MAX_STREAM_DRAIN;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
        match r.read(&mut buf[..want]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n as u64),
        }
    }
}

/// Appends one event (`data: ...` and its blank line) to a batch.
fn push_event(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests;
