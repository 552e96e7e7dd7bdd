//! The shape of a model call's body (issue 11), checked before anything goes upstream: a field
//! of the wrong type or out of range is a 400 naming it (`param`), as OpenAI answers, instead
//! of a call the upstream refuses (or, worse, misreads) after our checks reserved budget and
//! rate. One pass over the already parsed body: type tags and a few numbers, no allocation
//! unless there is an error to report.
//!
//! Only fields the OpenAI API defines are checked; anything else passes through unchanged
//! (providers have their own extensions). `null` is accepted as "not given" for every
//! optional field.

use super::proxy::CallType;
use crate::error::{Error, Result};
use serde_json::{Map, Value};

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

/// The checks of one field: `Ok` if absent or null.
fn opt<'a>(body: &'a Map<String, Value>, f: &str) -> Option<&'a Value> {
    body.get(f).filter(|v| !v.is_null())
}

fn number_in(body: &Map<String, Value>, f: &str, lo: f64, hi: f64) -> Result<()> {
    match opt(body, f) {
        None => Ok(()),
        Some(v) => match v.as_f64() {
            Some(x) if (lo..=hi).contains(&x) => Ok(()),
            _ => Err(bad(f, &format!("a number from {lo} to {hi}"))),
        },
    }
}

fn integer_in(body: &Map<String, Value>, f: &str, lo: u64, hi: u64) -> Result<Option<u64>> {
    match opt(body, f) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(x) if (lo..=hi).contains(&x) => Ok(Some(x)),
            _ => Err(bad(f, &format!("an integer from {lo} to {hi}"))),
        },
    }
}

fn is_str(body: &Map<String, Value>, f: &str) -> Result<()> {
    match opt(body, f) {
        None | Some(Value::String(_)) => Ok(()),
        Some(_) => Err(bad(f, "a string")),
    }
}

fn is_bool(body: &Map<String, Value>, f: &str) -> Result<()> {
    match opt(body, f) {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(_) => Err(bad(f, "true or false")),
    }
}

fn is_object(body: &Map<String, Value>, f: &str) -> Result<()> {
    match opt(body, f) {
        None | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(bad(f, "a JSON object")),
    }
}

/// `max_tokens` and friends: integers; strings of digits are accepted as before (`opt_u64`).
fn token_count(body: &Map<String, Value>, f: &str) -> Result<()> {
    match opt(body, f) {
        None => Ok(()),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(()),
        Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(()),
        Some(_) => Err(bad(f, "a positive integer")),
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
pub fn check(body: &Map<String, Value>, kind: CallType) -> Result<Shape> {
    match kind {
        CallType::Chat => messages(body.get("messages").unwrap_or(&Value::Null))?,
        CallType::Completion => {
            text_or_tokens("prompt", body.get("prompt").unwrap_or(&Value::Null))?
        }
        CallType::Embedding => {
            text_or_tokens("input", body.get("input").unwrap_or(&Value::Null))?;
            integer_in(body, "dimensions", 1, 1 << 20)?;
            is_str(body, "encoding_format")?;
            is_str(body, "user")?;
            return Ok(Shape { n: 1 });
        }
    }
    is_bool(body, "stream")?;
    if let Some(o) = opt(body, "stream_options") {
        let Value::Object(o) = o else {
            return Err(bad("stream_options", "a JSON object"));
        };
        if o.get("include_usage")
            .is_some_and(|b| !b.is_boolean() && !b.is_null())
        {
            return Err(bad("stream_options.include_usage", "true or false"));
        }
    }
    token_count(body, "max_tokens")?;
    token_count(body, "max_completion_tokens")?;
    let n = integer_in(body, "n", 1, MAX_N)?.unwrap_or(1);
    number_in(body, "temperature", 0.0, 2.0)?;
    number_in(body, "top_p", 0.0, 1.0)?;
    number_in(body, "presence_penalty", -2.0, 2.0)?;
    number_in(body, "frequency_penalty", -2.0, 2.0)?;
    if kind == CallType::Chat {
        is_bool(body, "logprobs")?;
        integer_in(body, "top_logprobs", 0, 20)?;
    } else {
        integer_in(body, "logprobs", 0, 5).or_else(|e| match opt(body, "logprobs") {
            Some(Value::Bool(_)) => Ok(None),
            _ => Err(e),
        })?;
        integer_in(body, "best_of", 1, MAX_N)?;
        is_bool(body, "echo")?;
        is_str(body, "suffix")?;
    }
    is_str(body, "user")?;
    is_object(body, "response_format")?;
    is_object(body, "logit_bias")?;
    match opt(body, "seed") {
        None => {}
        Some(v) if v.is_i64() || v.is_u64() => {}
        Some(_) => return Err(bad("seed", "an integer")),
    }
    match opt(body, "stop") {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
        Some(_) => return Err(bad("stop", "a string or an array of strings")),
    }
    match opt(body, "tools") {
        None => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_object) => {}
        Some(_) => return Err(bad("tools", "an array of tool objects")),
    }
    match opt(body, "tool_choice") {
        None | Some(Value::String(_)) | Some(Value::Object(_)) => {}
        Some(_) => return Err(bad("tool_choice", "a string or an object")),
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
}
