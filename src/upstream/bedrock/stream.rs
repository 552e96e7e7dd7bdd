//! ConverseStream's answer: AWS's binary event stream (`application/vnd.amazon.eventstream`)
//! read one message at a time (`Frames`: the length checked against a cap before anything is
//! buffered, then the message decoded with its prelude and message CRCs checked by AWS's
//! `aws-smithy-eventstream` crate), and each event translated into OpenAI
//! `chat.completion.chunk`s (`StreamState::feed`). Reads only what it is handed; deadlines are
//! the reader's (the upstream call's timeout), the relay and settlement are `call::bedrock`'s.

use super::{finish_reason, usage};
use crate::upstream::anthropic::Step;
use aws_smithy_types::event_stream::{HeaderValue, Message};
use serde_json::{json, Value};
use std::io::{BufRead, Read};

/// One event-stream message may be at most this long (the relay's line cap: one message is
/// one event, as one SSE line is).
pub const MAX_FRAME: usize = crate::upstream::sse::MAX_LINE;

/// The most tool calls one streamed answer may open (as for Anthropic's streams): more ends
/// the stream as an upstream error instead of growing the state for the whole deadline.
pub const MAX_STREAM_TOOL_CALLS: usize = 1024;

/// Why reading the next message failed.
#[derive(Debug)]
pub enum FrameError {
    /// Reading failed (a timeout, a reset).
    Io(std::io::Error),
    /// A message announced more than [`MAX_FRAME`] bytes (its length).
    TooLarge(u32),
    /// The bytes are not a valid message (bad length, bad CRC, cut short); the decoder's words.
    Corrupt(String),
}

/// The messages of an event stream.
pub struct Frames<R> {
    reader: R,
    /// The last message's bytes (reused; at most [`MAX_FRAME`]).
    buf: Vec<u8>,
}

impl<R: BufRead> Frames<R> {
    pub fn new(reader: R) -> Frames<R> {
        Frames {
            reader,
            buf: Vec::new(),
        }
    }

    /// The reader, for draining what follows the last message.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// The next message, `None` at the end of the stream (between messages).
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        let mut prelude = [0u8; 12];
        let mut got = 0;
        while got < prelude.len() {
            match self.reader.read(&mut prelude[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(FrameError::Corrupt("the stream ended mid-message".into())),
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FrameError::Io(e)),
            }
        }
        let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]);
        if total as usize > MAX_FRAME {
            return Err(FrameError::TooLarge(total));
        }
        // Prelude (12) and message CRC (4) at least; the decoder checks the rest.
        if total < 16 {
            return Err(FrameError::Corrupt(format!("a message of {total} bytes")));
        }
        self.buf.clear();
        self.buf.extend_from_slice(&prelude);
        self.buf.resize(total as usize, 0);
        if let Err(e) = self.reader.read_exact(&mut self.buf[12..]) {
            return Err(match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    FrameError::Corrupt("the stream ended mid-message".into())
                }
                _ => FrameError::Io(e),
            });
        }
        aws_smithy_eventstream::frame::read_message_from(&self.buf[..])
            .map(Some)
            .map_err(|e| FrameError::Corrupt(e.to_string()))
    }
}

impl<R: Read> Frames<std::io::BufReader<R>> {
    /// Whether bytes have arrived that were not read yet (the next read needs no wait).
    pub fn has_buffered(&self) -> bool {
        !self.reader.buffer().is_empty()
    }
}

/// A string header of a message.
fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.headers()
        .iter()
        .find(|h| h.name().as_str() == name)
        .and_then(|h| match h.value() {
            HeaderValue::String(s) => Some(s.as_str()),
            _ => None,
        })
}

/// A stream's translation state.
pub struct StreamState {
    id: String,
    model: String,
    created: u64,
    /// For each content block index, its tool call index (if a toolUse block).
    tools: Vec<(u64, usize)>,
}

impl StreamState {
    /// The state of a stream answering a call of `model` (the name the caller used).
    pub fn new(model: &str) -> StreamState {
        StreamState {
            id: super::completion_id(),
            model: model.to_string(),
            created: super::now(),
            tools: Vec::new(),
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
               "model": self.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    /// Translates one message into `out`'s chunks. `metadata` (the last event, after
    /// `messageStop`) gives the usage chunk without choices and ends the stream.
    pub fn feed(&mut self, m: &Message, out: &mut Vec<Value>) -> Step {
        match header(m, ":message-type") {
            Some("event") => {}
            Some("exception") => {
                let kind = header(m, ":exception-type").unwrap_or("exception");
                let msg = serde_json::from_slice::<Value>(m.payload())
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_else(|| "the upstream stream failed".into());
                return Step::Error(format!("{kind}: {msg}"));
            }
            Some("error") => {
                let code = header(m, ":error-code").unwrap_or("error");
                let msg = header(m, ":error-message").unwrap_or("the upstream stream failed");
                return Step::Error(format!("{code}: {msg}"));
            }
            _ => return Step::Error("the upstream sent a message of no known type".into()),
        }
        let Ok(ev) = serde_json::from_slice::<Value>(m.payload()) else {
            return Step::Error("the upstream sent an event that is not JSON".into());
        };
        let index = ev
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match header(m, ":event-type") {
            Some("messageStart") => {
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            Some("contentBlockStart") => {
                if let Some(t) = ev.get("start").and_then(|s| s.get("toolUse")) {
                    let n = self.tools.len();
                    if n >= MAX_STREAM_TOOL_CALLS {
                        return Step::Error(format!(
                            "the answer opened more than {MAX_STREAM_TOOL_CALLS} tool calls"
                        ));
                    }
                    self.tools.push((index, n));
                    out.push(self.chunk(
                        json!({"tool_calls": [{"index": n, "id": t.get("toolUseId"),
                            "type": "function",
                            "function": {"name": t.get("name"), "arguments": ""}}]}),
                        None,
                    ));
                }
            }
            Some("contentBlockDelta") => {
                let d = ev.get("delta").unwrap_or(&Value::Null);
                if let Some(t) = d.get("text").and_then(Value::as_str) {
                    out.push(self.chunk(json!({"content": t}), None));
                } else if let Some(args) = d.get("toolUse").and_then(|t| t.get("input")) {
                    if let Some(&(_, n)) = self.tools.iter().find(|(i, _)| *i == index) {
                        out.push(self.chunk(
                            json!({"tool_calls": [{"index": n,
                                "function": {"arguments": args}}]}),
                            None,
                        ));
                    }
                } else if let Some(t) = d
                    .get("reasoningContent")
                    .and_then(|r| r.get("text"))
                    .and_then(Value::as_str)
                {
                    out.push(self.chunk(json!({"reasoning_content": t}), None));
                }
            }
            Some("messageStop") => {
                let stop = ev
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                out.push(self.chunk(json!({}), Some(finish_reason(stop))));
            }
            Some("metadata") => {
                let u = ev.get("usage").unwrap_or(&Value::Null);
                out.push(json!({"id": self.id, "object": "chat.completion.chunk",
                    "created": self.created, "model": self.model, "choices": [],
                    "usage": usage(u)}));
                return Step::Stop;
            }
            _ => {}
        }
        Step::Continue
    }
}
