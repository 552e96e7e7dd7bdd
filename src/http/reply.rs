//! What a handler answers: `Reply` (a JSON value, bytes passed through, text, or a stream of
//! server-sent events) and the `StreamBody` a stream is pumped through. Writing a reply onto
//! a connection is the server's (`crate::server::respond`); turning an `Err` into a reply is
//! the dispatcher's (`dispatch::error_reply`).

use crate::error::Result;
use serde_json::Value;

/// A streamed body: `pump` writes it through `emit`, which sends one chunk to the client and
/// flushes, returning an error once the client has gone.
pub trait StreamBody: Send {
    fn pump(self: Box<Self>, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>);
}

/// What a handler answers.
pub enum Reply {
    Json(u16, Value),
    /// Bytes passed through as they are (an upstream's JSON answer).
    Raw(u16, &'static str, Vec<u8>),
    /// Server-sent events, each chunk flushed as it is produced.
    Sse(Box<dyn StreamBody>),
    Text(u16, &'static str, String),
    /// Any reply with extra response headers (e.g. `retry-after`).
    WithHeaders(Box<Reply>, Vec<(String, String)>),
}

impl Reply {
    pub fn ok(v: Value) -> Result<Reply> {
        Ok(Reply::Json(200, v))
    }
}

impl Reply {
    /// The status line's code.
    pub fn status(&self) -> u16 {
        match self {
            Reply::Json(s, _) | Reply::Raw(s, _, _) | Reply::Text(s, _, _) => *s,
            Reply::Sse(_) => 200,
            Reply::WithHeaders(inner, _) => inner.status(),
        }
    }
}
