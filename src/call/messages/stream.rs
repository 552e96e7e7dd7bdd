//! A Messages call's stream of Anthropic events, settled before its last event
//! (`message_stop`, or the `error` event of a stream that failed):
//!
//! - `Passthrough`: an Anthropic deployment's events relayed as they come, read through
//!   `relay::SseLines` (line cap, deadlines) and batched like the chat relay; the usage of
//!   `message_start` and `message_delta` is what is billed. Upstream `error` events end the
//!   stream with our own (scrubbed) `error` event.
//! - `Translated`: a chat stream (the OpenAI relay's or the mock provider's, which settle
//!   themselves before their `[DONE]`) whose chunks become events
//!   (`upstream::messages::ChatToEvents`); its `[DONE]` becomes `message_delta` and
//!   `message_stop`, its error event an Anthropic `error` event.

use super::super::relay::{End, SseLines, MAX_STREAM_BATCH};
use super::super::{Call, Stream};
use crate::upstream::{self, messages, usage};
use serde::Deserialize;
use serde_json::Value;

/// A Messages call's stream.
pub enum MessagesStream {
    Passthrough(Box<Passthrough>),
    Translated(Box<Stream>, Box<messages::ChatToEvents>),
}

/// An Anthropic deployment's stream, relayed.
pub struct Passthrough {
    call: Call,
    body: crate::upstream::answer::Body,
}

impl MessagesStream {
    pub(in crate::call) fn passthrough(
        call: Call,
        body: crate::upstream::answer::Body,
    ) -> MessagesStream {
        MessagesStream::Passthrough(Box::new(Passthrough { call, body }))
    }

    /// `inner` (a chat stream) translated; `message_start` shows `input_estimate` as its
    /// input tokens until the real figure comes with `message_delta`.
    pub(in crate::call) fn translated(inner: Stream, input_estimate: u64) -> MessagesStream {
        MessagesStream::Translated(
            Box::new(inner),
            Box::new(messages::ChatToEvents::new(input_estimate)),
        )
    }

    pub(in crate::call) fn pump(self, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
        match self {
            MessagesStream::Passthrough(p) => p.pump(emit),
            MessagesStream::Translated(inner, mut state) => {
                let mut out = Vec::new();
                inner.pump(&mut |bytes: &[u8]| {
                    out.clear();
                    let stop = translate(bytes, &mut state, &mut out);
                    if !out.is_empty() {
                        emit(&out)?;
                    }
                    if stop {
                        // The translation cannot go on: the chat stream is stopped (settled as
                        // a client gone), the client has its error event.
                        return Err(std::io::ErrorKind::InvalidData.into());
                    }
                    Ok(())
                });
            }
        }
    }
}

/// Translates the chat relay's frames (`data: …\n\n`, whole frames in each write) into
/// Anthropic events; true when the stream must stop.
fn translate(bytes: &[u8], state: &mut messages::ChatToEvents, out: &mut Vec<u8>) -> bool {
    let text = String::from_utf8_lossy(bytes);
    for frame in text.split("\n\n") {
        if state.ended() {
            break;
        }
        let Some(data) = frame.trim().strip_prefix("data:").map(str::trim) else {
            continue;
        };
        if data == "[DONE]" {
            state.finish(out);
            continue;
        }
        // Not JSON: an upstream's plain-text line (already scrubbed), nothing to translate.
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if let Some(e) = v.get("error") {
            let m = e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the upstream stream failed");
            state.fail(m, out);
        } else if let Err(m) = state.feed(&v, out) {
            state.fail(&m, out);
            return true;
        }
    }
    false
}

/// What the passthrough reads of an event: its type, and the usage and text it carries.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    message: Option<EventMessage>,
    usage: Option<Value>,
    delta: Option<Delta>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct EventMessage {
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct Delta {
    text: Option<String>,
    partial_json: Option<String>,
    thinking: Option<String>,
}

/// The usage and end a passthrough stream has shown.
#[derive(Default)]
struct Tally {
    /// `message_start`'s usage, updated by `message_delta`'s.
    usage: Option<Value>,
    /// Characters of text produced, for a stream without usage.
    chars: u64,
    /// `message_stop` came.
    stopped: bool,
}

impl Tally {
    fn merge(&mut self, u: Value) {
        match (&mut self.usage, u) {
            (Some(Value::Object(have)), Value::Object(new)) => {
                for (k, v) in new {
                    if !v.is_null() {
                        have.insert(k, v);
                    }
                }
            }
            (slot, u) => *slot = Some(u),
        }
    }
}

/// An event type we relay: lowercase words (it is written into the `event:` line).
fn plain(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

impl Passthrough {
    fn pump(self, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
        let mut call = self.call;
        let mut lines = SseLines::of_body(self.body);
        let mut tally = Tally::default();
        let mut out: Vec<u8> = Vec::new();
        let mut end = loop {
            if !out.is_empty() && (!lines.buffered() || out.len() >= MAX_STREAM_BATCH) {
                if emit(&out).is_err() {
                    break End::ClientGone;
                }
                out.clear();
            }
            let data = match lines.next(&call) {
                Ok(Some(data)) => data,
                Ok(None) => continue,
                Err(end) => break end,
            };
            let ev = match serde_json::from_str::<Event>(data) {
                Ok(ev) if plain(&ev.kind) => ev,
                _ => break End::Broken("the upstream sent an event that is not one".into()),
            };
            match ev.kind.as_str() {
                "message_start" => {
                    if let Some(u) = ev.message.and_then(|m| m.usage) {
                        tally.merge(u);
                    }
                }
                "message_delta" => {
                    if let Some(u) = ev.usage {
                        tally.merge(u);
                    }
                }
                "content_block_delta" => {
                    if let Some(d) = ev.delta {
                        let n = [d.text, d.partial_json, d.thinking]
                            .iter()
                            .flatten()
                            .map(|s| s.chars().count() as u64)
                            .sum::<u64>();
                        tally.chars = tally.chars.saturating_add(n);
                    }
                }
                // Sent after the call is settled.
                "message_stop" => {
                    tally.stopped = true;
                    break End::Done;
                }
                "error" => {
                    let m = ev
                        .error
                        .as_ref()
                        .and_then(|e| e.get("message"))
                        .and_then(Value::as_str)
                        .unwrap_or("the upstream stream failed");
                    break End::Broken(upstream::scrub(&call.dep, m));
                }
                _ => {}
            }
            messages::event_raw(&mut out, &ev.kind, data);
        };
        if !matches!(end, End::ClientGone) && !out.is_empty() && emit(&out).is_err() {
            end = End::ClientGone;
        }
        let reported = tally.usage.as_ref().map(super::reported);
        let (p, c) = call.billable(reported, || usage::tokens_of_chars(tally.chars));
        let failure = match end {
            End::ClientGone => {
                let _ = call.settle(p, c, "client_disconnected");
                return;
            }
            _ if tally.stopped => None,
            End::Broken(m) => Some(m),
            End::Done | End::Closed => {
                Some("the upstream closed the stream before it finished".to_string())
            }
        };
        let mut last = Vec::new();
        match failure {
            None => {
                let _ = call.settle(p, c, "success");
                messages::event(&mut last, &serde_json::json!({"type": "message_stop"}));
                let _ = emit(&last);
                super::super::relay::drain(lines.into_reader());
            }
            Some(m) => {
                let _ = call.settle(p, c, "failure");
                messages::event(&mut last, &messages::error_event(&m));
                let _ = emit(&last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_plain_event_types_reach_the_event_line() {
        assert!(plain("message_start") && plain("ping"));
        for bad in ["", "a\nb", "data: x", "Message", &"x".repeat(65)] {
            assert!(!plain(bad), "{bad:?}");
        }
    }

    #[test]
    fn message_delta_usage_updates_message_start_usage() {
        let mut t = Tally::default();
        t.merge(json!({"input_tokens": 10, "cache_read_input_tokens": 2, "output_tokens": 1}));
        t.merge(json!({"output_tokens": 20, "input_tokens": null}));
        let u = t.usage.clone().expect("usage");
        assert_eq!(
            u,
            json!({"input_tokens": 10, "cache_read_input_tokens": 2, "output_tokens": 20})
        );
        let r = super::super::reported(&u);
        assert_eq!(r.prompt, Some(usage::Figure::Count(12)));
        assert_eq!(r.completion, Some(usage::Figure::Count(20)));
    }
}
