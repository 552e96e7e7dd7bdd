//! A model call's body, parsed once (`CallBody::parse`): the JSON object with the fields the
//! call acts on read out and typed, and whether the object names a key twice (carried here, so
//! forwarding never depends on who parsed first).
//!
//! The shape check (issue 11) runs before anything goes upstream: a field of the wrong type or
//! out of range is a 400 naming it (`param`), as OpenAI answers, instead of a call the upstream
//! refuses (or, worse, misreads) after our checks reserved budget and rate. One pass over the
//! already parsed body: type tags and a few numbers, no allocation unless there is an error to
//! report (`cargo bench --bench call_body`: ~0.1 µs for a short chat, a few per cent of the
//! JSON parse every call already does).
//!
//! Only fields the OpenAI API defines are checked; anything else passes through unchanged
//! (providers have their own extensions). `null` is accepted as "not given" for every
//! optional field. Leaves model access, budgets and limits to `call::admit`.

use super::CallType;
use crate::error::{Error, Result};
use crate::input;
use serde_json::{Map, Value};

/// A model call's body: what the call acts on, typed, and the object as it was parsed.
#[derive(Debug)]
pub struct CallBody {
    /// The model asked for (aliases not yet applied).
    pub model: String,
    /// A streamed answer was asked for (never for embeddings).
    pub stream: bool,
    /// The answer to give instead of calling a provider.
    pub mock_response: Option<String>,
    /// `max_tokens`, else `max_completion_tokens`.
    pub max_tokens: Option<u64>,
    /// The most completion tokens the request allows (`max_tokens` × `n`), if it said.
    pub completion_cap: Option<u64>,
    /// Choices asked for (`n`, default 1).
    pub n: u64,
    /// `stream_options.include_usage`: the caller wants the usage chunk of a stream.
    pub include_usage: bool,
    /// The object names a key twice (the map keeps the last value; another parser may keep
    /// the first), so its bytes are never forwarded as they came.
    pub duplicate_keys: bool,
    /// `fields` was changed after parsing (strict budgets add `max_tokens`): the bytes as
    /// they came are not what goes upstream.
    pub rewritten: bool,
    /// The body's length in bytes as it came (strict budgets' prompt bound).
    pub len: usize,
    /// The whole object as parsed.
    pub fields: Map<String, Value>,
}

impl CallBody {
    /// Parses and checks the body of a `kind` call; a 400 names the first bad field.
    pub fn parse(bytes: &[u8], kind: CallType) -> Result<CallBody> {
        let (fields, duplicate_keys) = input::json_object(bytes)?;
        let model = match opt_str(&fields, "model")? {
            Some(s) if !s.trim().is_empty() => s,
            _ => return Err(Error::bad_param("model", "`model` is required")),
        };
        let field = kind.input_field();
        if fields.get(field).is_none_or(Value::is_null) {
            return Err(Error::bad_param(field, format!("`{field}` is required")));
        }
        let shape = check(&fields, kind)?;
        let stream = opt_bool(&fields, "stream")?.unwrap_or(false) && kind != CallType::Embedding;
        let mock_response = opt_str(&fields, "mock_response")?;
        let max_tokens = opt_u64(&fields, "max_tokens")?;
        let max_completion_tokens = opt_u64(&fields, "max_completion_tokens")?;
        let max_tokens = max_tokens.or(max_completion_tokens);
        let include_usage = fields
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(CallBody {
            model,
            stream,
            mock_response,
            max_tokens,
            completion_cap: max_tokens.map(|m| m.saturating_mul(shape.n)),
            n: shape.n,
            include_usage,
            duplicate_keys,
            rewritten: false,
            len: bytes.len(),
            fields,
        })
    }

    /// The call's input (`messages`, `prompt` or `input`), known to be given.
    pub fn input(&self, kind: CallType) -> &Value {
        self.fields.get(kind.input_field()).unwrap_or(&Value::Null)
    }
}

/// A string field; its text passes the identifier check (`input::check`).
fn opt_str(m: &Map<String, Value>, f: &str) -> Result<Option<String>> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => input::check(f, s).map(|_| Some(s.clone())),
        Some(_) => Err(bad(f, "a string")),
    }
}

fn opt_bool(m: &Map<String, Value>, f: &str) -> Result<Option<bool>> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(f, "true or false")),
    }
}

/// A count: an integer, or a string of digits (accepted as before).
fn opt_u64(m: &Map<String, Value>, f: &str) -> Result<Option<u64>> {
    match m.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(f, "a positive integer")),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| bad(f, "a positive integer")),
        Some(_) => Err(bad(f, "a positive integer")),
    }
}

/// What the checks learned that the call needs.
#[derive(Debug, PartialEq)]
pub struct Shape {
    /// Choices asked for (`n`, default 1).
    pub n: u64,
}

/// The largest `n` (choices per call) OpenAI accepts.
const MAX_N: u64 = 128;

fn bad(field: &str, want: &str) -> Error {
    Error::bad_param(field, format!("`{field}` must be {want}"))
}

fn number_in(f: &str, v: &Value, lo: f64, hi: f64) -> Result<()> {
    match v.as_f64() {
        Some(x) if (lo..=hi).contains(&x) => Ok(()),
        _ => Err(bad(f, &format!("a number from {lo} to {hi}"))),
    }
}

fn integer_in(f: &str, v: &Value, lo: u64, hi: u64) -> Result<u64> {
    match v.as_u64() {
        Some(x) if (lo..=hi).contains(&x) => Ok(x),
        _ => Err(bad(f, &format!("an integer from {lo} to {hi}"))),
    }
}

fn is_str(f: &str, v: &Value) -> Result<()> {
    if v.is_string() {
        Ok(())
    } else {
        Err(bad(f, "a string"))
    }
}

fn is_bool(f: &str, v: &Value) -> Result<()> {
    if v.is_boolean() {
        Ok(())
    } else {
        Err(bad(f, "true or false"))
    }
}

fn is_object(f: &str, v: &Value) -> Result<()> {
    if v.is_object() {
        Ok(())
    } else {
        Err(bad(f, "a JSON object"))
    }
}

/// `max_tokens` and friends: integers; strings of digits are accepted as before (`opt_u64`).
fn token_count(f: &str, v: &Value) -> Result<()> {
    match v {
        Value::Number(n) if n.as_u64().is_some() => Ok(()),
        Value::String(s) if s.parse::<u64>().is_ok() => Ok(()),
        _ => Err(bad(f, "a positive integer")),
    }
}

/// `messages`: a non-empty array of objects, each with a string `role` and a `content` that
/// is a string, an array of objects (content parts) or null/absent (an assistant turn with
/// tool calls has none).
fn messages(v: &Value) -> Result<()> {
    const F: &str = "messages";
    let Value::Array(msgs) = v else {
        return Err(bad(F, "an array of message objects"));
    };
    if msgs.is_empty() {
        return Err(Error::bad_param(F, "`messages` must not be empty"));
    }
    for (i, m) in msgs.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(Error::bad_param(
                F,
                format!("`messages[{i}]` must be an object"),
            ));
        };
        match m.get("role") {
            Some(Value::String(r)) if !r.is_empty() => {}
            _ => {
                return Err(Error::bad_param(
                    F,
                    format!("`messages[{i}].role` must be a non-empty string"),
                ))
            }
        }
        match m.get("content") {
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(Value::Array(parts)) if parts.iter().all(Value::is_object) => {}
            Some(_) => {
                return Err(Error::bad_param(
                    F,
                    format!(
                        "`messages[{i}].content` must be a string, an array of content parts \
                         or null"
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// `prompt` (completions) and `input` (embeddings): a string, or a non-empty array of strings,
/// of token ids, or of arrays of token ids.
fn text_or_tokens(f: &str, v: &Value) -> Result<()> {
    let want = "a string, or an array of strings or token arrays";
    let ok_item = |x: &Value| match x {
        Value::String(_) => true,
        Value::Number(n) => n.as_u64().is_some(),
        Value::Array(a) => a.iter().all(|t| t.as_u64().is_some()),
        _ => false,
    };
    match v {
        Value::String(_) => Ok(()),
        Value::Array(a) if a.is_empty() => {
            Err(Error::bad_param(f, format!("`{f}` must not be empty")))
        }
        Value::Array(a) if a.iter().all(ok_item) => Ok(()),
        _ => Err(bad(f, want)),
    }
}

/// Checks the body of a `kind` call (its `model` and input field are known to be given).
/// One pass over the fields present (a handful), not a lookup per field known.
pub fn check(body: &Map<String, Value>, kind: CallType) -> Result<Shape> {
    use CallType::{Chat, Completion, Embedding, Messages};
    let null = Value::Null;
    match kind {
        // Anthropic's shape, checked by its own rules (`max_tokens` is required there).
        Messages => {
            super::messages::check(body, true)?;
            return Ok(Shape { n: 1 });
        }
        Chat => messages(body.get("messages").unwrap_or(&null))?,
        Completion => text_or_tokens("prompt", body.get("prompt").unwrap_or(&null))?,
        Embedding => text_or_tokens("input", body.get("input").unwrap_or(&null))?,
    }
    let mut n = 1;
    for (f, v) in body {
        if v.is_null() {
            continue;
        }
        match (f.as_str(), kind) {
            ("user", _) => is_str(f, v)?,
            ("dimensions", Embedding) => {
                integer_in(f, v, 1, 1 << 20)?;
            }
            ("encoding_format", Embedding) => is_str(f, v)?,
            (_, Embedding) => {}
            ("stream", _) => is_bool(f, v)?,
            ("stream_options", _) => {
                let Value::Object(o) = v else {
                    return Err(bad(f, "a JSON object"));
                };
                if o.get("include_usage")
                    .is_some_and(|b| !b.is_boolean() && !b.is_null())
                {
                    return Err(bad("stream_options.include_usage", "true or false"));
                }
            }
            ("max_tokens" | "max_completion_tokens", _) => token_count(f, v)?,
            ("n", _) => n = integer_in(f, v, 1, MAX_N)?,
            ("temperature", _) => number_in(f, v, 0.0, 2.0)?,
            ("top_p", _) => number_in(f, v, 0.0, 1.0)?,
            ("presence_penalty" | "frequency_penalty", _) => number_in(f, v, -2.0, 2.0)?,
            ("logprobs", Chat) => is_bool(f, v)?,
            ("top_logprobs", Chat) => {
                integer_in(f, v, 0, 20)?;
            }
            // Completions: `logprobs` is a count (0-5); a boolean is let through.
            ("logprobs", Completion) if !v.is_boolean() => {
                integer_in(f, v, 0, 5)?;
            }
            ("best_of", Completion) => {
                integer_in(f, v, 1, MAX_N)?;
            }
            ("echo", Completion) => is_bool(f, v)?,
            ("suffix", Completion) => is_str(f, v)?,
            ("response_format" | "logit_bias", _) => is_object(f, v)?,
            ("seed", _) if !(v.is_i64() || v.is_u64()) => return Err(bad(f, "an integer")),
            ("stop", _) => match v {
                Value::String(_) => {}
                Value::Array(a) if a.iter().all(Value::is_string) => {}
                _ => return Err(bad(f, "a string or an array of strings")),
            },
            ("tools", _) => match v {
                Value::Array(a) if a.iter().all(Value::is_object) => {}
                _ => return Err(bad(f, "an array of tool objects")),
            },
            ("tool_choice", _) if !(v.is_string() || v.is_object()) => {
                return Err(bad(f, "a string or an object"))
            }
            _ => {}
        }
    }
    Ok(Shape { n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chk(kind: CallType, v: Value) -> std::result::Result<Shape, Option<String>> {
        let Value::Object(m) = v else {
            panic!("not an object")
        };
        check(&m, kind).map_err(|e| match e {
            Error::BadRequest { param, .. } => param,
            other => panic!("{other}"),
        })
    }

    fn chat(extra: Value) -> Value {
        let mut b = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(b), Value::Object(e)) = (b.as_object_mut(), extra) {
            b.extend(e);
        }
        b
    }

    #[test]
    fn good_bodies_pass() {
        let ok = [
            json!({}),
            json!({"stream": true, "stream_options": {"include_usage": true}, "max_tokens": 5,
                   "n": 2, "temperature": 0.7, "top_p": 1, "stop": ["x"], "seed": -3,
                   "tools": [{"type": "function"}], "tool_choice": "auto", "user": "u",
                   "response_format": {"type": "json_object"}, "logprobs": true,
                   "top_logprobs": 3, "max_completion_tokens": "10", "vendor_extra": [1]}),
            json!({"messages": [{"role": "assistant", "tool_calls": []},
                                {"role": "user", "content": [{"type": "text", "text": "x"}]},
                                {"role": "tool", "content": null}],
                   "stream": null, "temperature": null}),
        ];
        for b in ok {
            assert_eq!(
                chk(CallType::Chat, chat(b.clone())).map(|s| s.n).ok(),
                Some(if b.get("n").is_some() { 2 } else { 1 }),
                "{b}"
            );
        }
        assert!(chk(CallType::Completion, json!({"prompt": "x", "logprobs": 2})).is_ok());
        assert!(chk(CallType::Completion, json!({"prompt": [[1, 2], "a", 3]})).is_ok());
        assert!(chk(
            CallType::Embedding,
            json!({"input": ["a", "b"], "dimensions": 8})
        )
        .is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: &[(Value, &str)] = &[
            (json!({"messages": "hi"}), "messages"),
            (json!({"messages": []}), "messages"),
            (json!({"messages": ["hi"]}), "messages"),
            (json!({"messages": [{"content": "hi"}]}), "messages"),
            (
                json!({"messages": [{"role": 1, "content": "hi"}]}),
                "messages",
            ),
            (
                json!({"messages": [{"role": "user", "content": 5}]}),
                "messages",
            ),
            (
                json!({"messages": [{"role": "user", "content": ["x"]}]}),
                "messages",
            ),
            (json!({"stream": "yes"}), "stream"),
            (json!({"stream_options": true}), "stream_options"),
            (
                json!({"stream_options": {"include_usage": "y"}}),
                "stream_options.include_usage",
            ),
            (json!({"max_tokens": -1}), "max_tokens"),
            (json!({"max_tokens": 1.5}), "max_tokens"),
            (
                json!({"max_completion_tokens": "lots"}),
                "max_completion_tokens",
            ),
            (json!({"n": 0}), "n"),
            (json!({"n": 1000}), "n"),
            (json!({"temperature": 3}), "temperature"),
            (json!({"temperature": "hot"}), "temperature"),
            (json!({"top_p": -0.1}), "top_p"),
            (json!({"stop": [1]}), "stop"),
            (json!({"tools": {}}), "tools"),
            (json!({"seed": 1.5}), "seed"),
            (json!({"user": 7}), "user"),
        ];
        for (b, field) in cases {
            let body = chat(b.clone());
            assert_eq!(
                chk(CallType::Chat, body).err().flatten().as_deref(),
                Some(*field),
                "{b}"
            );
        }
        let other: &[(CallType, Value, &str)] = &[
            (CallType::Completion, json!({"prompt": 5.5}), "prompt"),
            (
                CallType::Completion,
                json!({"prompt": [{"a": 1}]}),
                "prompt",
            ),
            (CallType::Completion, json!({"prompt": []}), "prompt"),
            (
                CallType::Embedding,
                json!({"input": {"text": "x"}}),
                "input",
            ),
            (CallType::Embedding, json!({"input": [null]}), "input"),
            (
                CallType::Embedding,
                json!({"input": "x", "dimensions": 0}),
                "dimensions",
            ),
        ];
        for (k, b, field) in other {
            assert_eq!(
                chk(*k, b.clone()).err().flatten().as_deref(),
                Some(*field),
                "{b}"
            );
        }
    }

    fn parse(kind: CallType, body: &str) -> Result<CallBody> {
        CallBody::parse(body.as_bytes(), kind)
    }

    fn param(r: Result<CallBody>) -> Option<String> {
        match r {
            Err(Error::BadRequest { param, .. }) => param,
            Err(other) => panic!("{other}"),
            Ok(b) => panic!("parsed: {b:?}"),
        }
    }

    #[test]
    fn the_parsed_body_carries_what_the_call_needs() {
        let b = parse(
            CallType::Chat,
            r#"{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true,
                "stream_options": {"include_usage": true}, "max_completion_tokens": "7", "n": 3,
                "mock_response": "line\nline"}"#,
        )
        .expect("parses");
        assert_eq!(b.model, "m");
        assert!(b.stream && b.include_usage && !b.duplicate_keys);
        assert_eq!((b.max_tokens, b.completion_cap), (Some(7), Some(21)));
        assert_eq!(b.mock_response.as_deref(), Some("line\nline"));
        assert_eq!(b.input(CallType::Chat)[0]["content"], "hi");
        // `max_tokens` wins over `max_completion_tokens`; no cap without either.
        let b = parse(
            CallType::Completion,
            r#"{"model": "m", "prompt": "x", "max_tokens": 2, "max_completion_tokens": 9}"#,
        )
        .expect("parses");
        assert_eq!(
            (b.max_tokens, b.completion_cap, b.stream),
            (Some(2), Some(2), false)
        );
        let b = parse(
            CallType::Embedding,
            r#"{"model": "m", "input": "x", "stream": true}"#,
        )
        .expect("parses");
        assert!(!b.stream, "an embedding never streams");
        assert_eq!(b.completion_cap, None);
    }

    #[test]
    fn a_repeated_key_is_carried_in_the_parsed_body() {
        let b = parse(
            CallType::Chat,
            r#"{"model": "a", "model": "m", "messages": [{"role": "user", "content": "hi"}]}"#,
        )
        .expect("parses");
        assert!(b.duplicate_keys);
        assert_eq!(b.model, "m", "the last value, as serde_json keeps it");
    }

    #[test]
    fn missing_or_bad_fields_are_named_in_order() {
        let cases: &[(CallType, &str, &str)] = &[
            (CallType::Chat, r#"{"messages": []}"#, "model"),
            (CallType::Chat, r#"{"model": " ", "messages": []}"#, "model"),
            (CallType::Chat, r#"{"model": 5}"#, "model"),
            (CallType::Chat, "{\"model\": \"a\\u0000b\"}", "model"),
            (CallType::Chat, r#"{"model": "m"}"#, "messages"),
            (
                CallType::Completion,
                r#"{"model": "m", "prompt": null}"#,
                "prompt",
            ),
            (CallType::Embedding, r#"{"model": "m"}"#, "input"),
            (
                CallType::Chat,
                r#"{"model": "m", "messages": [{"role": "user", "content": "x"}], "mock_response": 1}"#,
                "mock_response",
            ),
            (
                CallType::Embedding,
                r#"{"model": "m", "input": "x", "stream": "yes"}"#,
                "stream",
            ),
            (
                CallType::Embedding,
                r#"{"model": "m", "input": "x", "max_tokens": -1}"#,
                "max_tokens",
            ),
        ];
        for (kind, body, field) in cases {
            assert_eq!(param(parse(*kind, body)).as_deref(), Some(*field), "{body}");
        }
        assert_eq!(param(parse(CallType::Chat, "[1]")), None);
        assert_eq!(param(parse(CallType::Chat, "{")), None);
    }
}
