//! The shape of an Anthropic Messages body (`/v1/messages`, `/v1/messages/count_tokens`),
//! checked once before anything goes upstream, as `call::body` does for OpenAI's: a field of
//! the wrong type or out of Anthropic's range is a 400 naming it. Only fields Anthropic
//! defines are checked; others pass (Anthropic refuses what it does not know, and the
//! translation to chat drops them). `null` is "not given" for the optional ones.

use crate::error::{Error, Result};
use serde_json::{Map, Value};

fn bad(field: &str, want: &str) -> Error {
    Error::bad_param(field, format!("`{field}` must be {want}"))
}

fn number_in(f: &str, v: &Value, lo: f64, hi: f64) -> Result<()> {
    match v.as_f64() {
        Some(x) if (lo..=hi).contains(&x) => Ok(()),
        _ => Err(bad(f, &format!("a number from {lo} to {hi}"))),
    }
}

/// A content block: an object with a string `type`; a `text` block's `text` is a string.
fn block(field: &str, b: &Value) -> Result<()> {
    let t = b.get("type").and_then(Value::as_str);
    match t {
        Some("text") if !b.get("text").is_some_and(Value::is_string) => Err(Error::bad_param(
            field,
            format!("`{field}`: a text block needs a string `text`"),
        )),
        Some(_) => Ok(()),
        None => Err(Error::bad_param(
            field,
            format!("`{field}`: each content block must be an object with a string `type`"),
        )),
    }
}

/// `messages`: a non-empty array of `{role: user|assistant, content: string | [blocks]}`.
fn messages(v: Option<&Value>) -> Result<()> {
    const F: &str = "messages";
    let msgs = match v {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => return Err(Error::bad_param(F, "`messages` must not be empty")),
        None | Some(Value::Null) => return Err(Error::bad_param(F, "`messages` is required")),
        Some(_) => return Err(bad(F, "an array of message objects")),
    };
    for (i, m) in msgs.iter().enumerate() {
        match m.get("role").and_then(Value::as_str) {
            // Claude Code (2.1) sends `system` turns between the others.
            Some("user" | "assistant" | "system") => {}
            _ => {
                return Err(Error::bad_param(
                    F,
                    format!("`messages[{i}].role` must be \"user\", \"assistant\" or \"system\""),
                ))
            }
        }
        match m.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for b in blocks {
                    block(&format!("messages[{i}].content"), b)
                        .map_err(|e| Error::bad_param(F, e.message()))?;
                }
            }
            _ => {
                return Err(Error::bad_param(
                    F,
                    format!("`messages[{i}].content` must be a string or an array of blocks"),
                ))
            }
        }
    }
    Ok(())
}

/// Checks a Messages body; `max_tokens` is required for a call (Anthropic requires it), not
/// for `count_tokens`. `model` is checked by the caller.
pub fn check(body: &Map<String, Value>, call: bool) -> Result<()> {
    messages(body.get("messages"))?;
    match body.get("max_tokens") {
        Some(v) if v.as_u64().is_some_and(|n| n >= 1) => {}
        None | Some(Value::Null) if !call => {}
        None | Some(Value::Null) => {
            return Err(Error::bad_param("max_tokens", "`max_tokens` is required"))
        }
        Some(_) => return Err(bad("max_tokens", "a positive integer")),
    }
    for (f, v) in body {
        if v.is_null() {
            continue;
        }
        match f.as_str() {
            "system" => match v {
                Value::String(_) => {}
                Value::Array(blocks) => {
                    for b in blocks {
                        block("system", b)?;
                    }
                }
                _ => return Err(bad(f, "a string or an array of text blocks")),
            },
            "stream" if !v.is_boolean() => return Err(bad(f, "true or false")),
            "temperature" => number_in(f, v, 0.0, 1.0)?,
            "top_p" => number_in(f, v, 0.0, 1.0)?,
            "top_k" if v.as_u64().is_none() => return Err(bad(f, "a non-negative integer")),
            "stop_sequences" => match v {
                Value::Array(a) if a.iter().all(Value::is_string) => {}
                _ => return Err(bad(f, "an array of strings")),
            },
            "tools" => match v {
                Value::Array(a)
                    if a.iter()
                        .all(|t| t.get("name").is_some_and(Value::is_string)) => {}
                _ => {
                    return Err(bad(
                        f,
                        "an array of tool objects, each with a string `name`",
                    ))
                }
            },
            "tool_choice" => match v.get("type").and_then(Value::as_str) {
                Some("auto" | "any" | "none") => {}
                Some("tool") if v.get("name").is_some_and(Value::is_string) => {}
                _ => {
                    return Err(bad(
                        f,
                        "an object whose `type` is auto, any, none, or tool with a `name`",
                    ))
                }
            },
            "metadata" if !v.is_object() => return Err(bad(f, "a JSON object")),
            "thinking" if !v.get("type").is_some_and(Value::is_string) => {
                return Err(bad(f, "an object with a string `type`"))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(v: Value, call: bool) -> Option<String> {
        let Value::Object(m) = v else {
            panic!("not an object")
        };
        match check(&m, call) {
            Ok(()) => None,
            Err(Error::BadRequest { param, .. }) => param,
            Err(other) => panic!("{other}"),
        }
    }

    fn body(extra: Value) -> Value {
        let mut b = json!({"model": "m", "max_tokens": 10,
                           "messages": [{"role": "user", "content": "hi"}]});
        if let (Some(b), Value::Object(e)) = (b.as_object_mut(), extra) {
            b.extend(e);
        }
        b
    }

    #[test]
    fn a_claude_code_like_body_passes() {
        let b = body(json!({
            "system": [{"type": "text", "text": "You are Claude Code",
                        "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "hi",
                                              "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "x",
                    "signature": "s"}, {"type": "tool_use", "id": "t", "name": "Bash",
                    "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                    "content": "ok"}]}],
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto"}, "stream": true, "temperature": 1,
            "metadata": {"user_id": "u"}, "thinking": {"type": "enabled", "budget_tokens": 1024},
            "stop_sequences": ["x"], "top_k": 5, "top_p": 0.9, "vendor_extra": 1}));
        assert_eq!(param(b, true), None);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (json!({"messages": []}), "messages"),
            (json!({"messages": "hi"}), "messages"),
            (
                json!({"messages": [{"role": "tool", "content": "x"}]}),
                "messages",
            ),
            (
                json!({"messages": [{"role": "user", "content": 5}]}),
                "messages",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]}),
                "messages",
            ),
            (json!({"max_tokens": 0}), "max_tokens"),
            (json!({"max_tokens": "10"}), "max_tokens"),
            (json!({"system": 5}), "system"),
            (json!({"system": [{"type": "text"}]}), "system"),
            (json!({"stream": "yes"}), "stream"),
            (json!({"temperature": 1.5}), "temperature"),
            (json!({"top_p": -1}), "top_p"),
            (json!({"top_k": -1}), "top_k"),
            (json!({"stop_sequences": "x"}), "stop_sequences"),
            (json!({"tools": [{"input_schema": {}}]}), "tools"),
            (json!({"tool_choice": "auto"}), "tool_choice"),
            (json!({"tool_choice": {"type": "tool"}}), "tool_choice"),
            (json!({"metadata": "x"}), "metadata"),
            (json!({"thinking": true}), "thinking"),
        ];
        for (extra, field) in cases {
            assert_eq!(
                param(body(extra.clone()), true).as_deref(),
                Some(field),
                "{extra}"
            );
        }
    }

    #[test]
    fn max_tokens_is_required_for_a_call_only() {
        let b = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(param(b.clone(), true).as_deref(), Some("max_tokens"));
        assert_eq!(param(b, false), None);
    }
}
