//! Bedrock's Converse API, translated both ways from/to OpenAI chat (issue 13): the request
//! body (`request`), the whole answer (`answer`), usage (cache read/write tokens included),
//! `stopReason` → `finish_reason`, and the error of a refused call (`error_message`). The
//! stream (AWS's binary event stream) is `stream.rs`, the SigV4 signature `sign.rs`. Pure
//! work: it sends nothing (`upstream::Upstream::post` does) and bills nothing
//! (`call::bedrock` settles from the usage translated here). Field names follow AWS's Converse
//! API reference and LiteLLM's `llms/bedrock/chat/converse_transformation.py`.

pub mod sign;
pub mod stream;

use crate::error::Error;
use serde_json::{json, Map, Value};

/// The text of an OpenAI `content` (a string or text parts), parts joined without separator.
fn text_of(c: &Value) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// An OpenAI `image_url` as a Converse image block. Only `data:` URLs: the bytes go as the
/// JSON wire carries blobs (base64, as they came). A web URL would have litegate fetch
/// whatever a caller names (LiteLLM does); it is refused instead.
fn image_block(url: &str) -> Result<Value, Error> {
    let bad = || {
        Error::bad_param(
            "messages",
            "images for Bedrock models must be data URLs (data:image/png;base64,…)",
        )
    };
    let rest = url.strip_prefix("data:").ok_or_else(bad)?;
    let (meta, data) = rest.split_once(',').ok_or_else(bad)?;
    let mut meta = meta.split(';');
    let media = meta.next().unwrap_or("");
    if !meta.any(|m| m == "base64") {
        return Err(bad());
    }
    let format = match media {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => {
            return Err(Error::bad_param(
                "messages",
                "Bedrock images must be png, jpeg, gif or webp",
            ))
        }
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

/// The content blocks of a user or assistant message's `content`.
fn blocks_of(c: &Value) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    match c {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => out.push(json!({"text": s})),
        Value::Array(parts) => {
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = p.get("text").and_then(Value::as_str).unwrap_or("");
                        if !t.is_empty() {
                            out.push(json!({"text": t}));
                        }
                    }
                    Some("image_url") => {
                        let url = p
                            .get("image_url")
                            .and_then(|i| i.get("url").or(Some(i)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                Error::bad_param("messages", "an image_url part needs a url")
                            })?;
                        out.push(image_block(url)?);
                    }
                    _ => {
                        return Err(Error::bad_param(
                            "messages",
                            "only text and image_url content parts are supported for \
                             Bedrock models",
                        ))
                    }
                }
            }
        }
        _ => {
            return Err(Error::bad_param(
                "messages",
                "content must be text or parts",
            ))
        }
    }
    Ok(out)
}

/// The `toolUse` blocks of an assistant message's `tool_calls`.
fn tool_uses(m: &Value) -> Vec<Value> {
    m.get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|tc| {
            let f = tc.get("function").unwrap_or(&Value::Null);
            let args = f.get("arguments").and_then(Value::as_str).unwrap_or("");
            let input = serde_json::from_str::<Value>(args)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            json!({"toolUse": {"toolUseId": tc.get("id").cloned().unwrap_or(Value::Null),
                "name": f.get("name").cloned().unwrap_or(Value::Null), "input": input}})
        })
        .collect()
}

/// The Converse request for an OpenAI chat request `body` (the model is in the URL).
pub fn request(body: &Map<String, Value>) -> Result<Value, Error> {
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::bad_param("messages", "`messages` must be an array"))?;
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in msgs {
        let content = m.get("content").unwrap_or(&Value::Null);
        let (role, blocks) = match m.get("role").and_then(Value::as_str) {
            Some("system") | Some("developer") => {
                let t = text_of(content);
                if !t.is_empty() {
                    system.push(json!({"text": t}));
                }
                continue;
            }
            Some("user") => ("user", blocks_of(content)?),
            Some("assistant") => {
                let mut b = blocks_of(content)?;
                b.extend(tool_uses(m));
                ("assistant", b)
            }
            Some("tool") | Some("function") => {
                let id = m.get("tool_call_id").cloned().unwrap_or(Value::Null);
                let text = text_of(content);
                (
                    "user",
                    vec![json!({"toolResult": {"toolUseId": id,
                                "content": [{"text": text}]}})],
                )
            }
            _ => return Err(Error::bad_param("messages", "unknown message role")),
        };
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            // Converse requires alternating turns: consecutive same-role turns are merged.
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(max) = body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
        .and_then(Value::as_u64)
    {
        inference.insert("maxTokens".into(), json!(max));
    }
    for (ours, theirs) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(v) = body.get(ours).filter(|v| !v.is_null()) {
            inference.insert(theirs.into(), v.clone());
        }
    }
    match body.get("stop") {
        Some(Value::String(s)) if !s.is_empty() => {
            inference.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            inference.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    // Not in Converse's inferenceConfig: passed to the model as LiteLLM does.
    if let Some(k) = body.get("top_k").filter(|v| !v.is_null()) {
        out.insert(
            "additionalModelRequestFields".into(),
            json!({"top_k": k.clone()}),
        );
    }
    if let Some(tools) = body
        .get("tools")
        .and_then(Value::as_array)
        .filter(|t| !t.is_empty())
    {
        let specs: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                let mut o = Map::new();
                o.insert("name".into(), f.get("name").cloned().unwrap_or(Value::Null));
                if let Some(d) = f.get("description") {
                    o.insert("description".into(), d.clone());
                }
                let schema = f
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                o.insert("inputSchema".into(), json!({"json": schema}));
                json!({"toolSpec": Value::Object(o)})
            })
            .collect();
        let mut config = Map::new();
        config.insert("tools".into(), Value::Array(specs));
        let choice = match body.get("tool_choice") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s == "auto" => Some(json!({"auto": {}})),
            Some(Value::String(s)) if s == "required" => Some(json!({"any": {}})),
            Some(Value::Object(o)) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .map(|n| json!({"tool": {"name": n}})),
            // Converse has no "none" (LiteLLM refuses it too, unless told to drop it).
            Some(_) => {
                return Err(Error::bad_param(
                    "tool_choice",
                    "Bedrock supports tool_choice auto, required or a named function",
                ))
            }
        };
        if let Some(c) = choice {
            config.insert("toolChoice".into(), c);
        }
        out.insert("toolConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(out))
}

/// `stopReason` → `finish_reason` (LiteLLM's map).
pub fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

fn n(u: &Value, f: &str) -> u64 {
    u.get(f).and_then(Value::as_u64).unwrap_or(0)
}

/// Converse's `usage` as OpenAI's: cache reads and writes counted in `prompt_tokens` and shown
/// as LiteLLM shows them.
pub fn usage(u: &Value) -> Value {
    let read = n(u, "cacheReadInputTokens");
    let written = n(u, "cacheWriteInputTokens");
    let output = n(u, "outputTokens");
    let prompt = n(u, "inputTokens")
        .saturating_add(read)
        .saturating_add(written);
    json!({"prompt_tokens": prompt, "completion_tokens": output,
           "total_tokens": prompt.saturating_add(output),
           "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": written},
           "cache_read_input_tokens": read, "cache_creation_input_tokens": written})
}

pub(crate) fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A chat completion id (Converse answers carry none).
pub(crate) fn completion_id() -> String {
    format!("chatcmpl-{}", crate::util::uuid4())
}

/// A Converse answer as an OpenAI `chat.completion` for `model` (the name the caller used).
pub fn answer(v: &Value, model: &str) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    let content = v
        .get("output")
        .and_then(|o| o.get("message"))
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array);
    for b in content.into_iter().flatten() {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(t) = b.get("toolUse") {
            let args = t.get("input").map_or_else(|| "{}".into(), Value::to_string);
            calls.push(json!({"id": t.get("toolUseId"), "type": "function",
                "function": {"name": t.get("name"), "arguments": args}}));
        } else if let Some(t) = b
            .get("reasoningContent")
            .and_then(|r| r.get("reasoningText"))
            .and_then(|r| r.get("text"))
            .and_then(Value::as_str)
        {
            reasoning.push_str(t);
        }
    }
    let mut message = json!({"role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    let stop = v
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let u = v.get("usage").cloned().unwrap_or(Value::Null);
    json!({"id": completion_id(), "object": "chat.completion", "created": now(),
           "model": model,
           "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(stop)}],
           "usage": usage(&u)})
}

/// The message of a Bedrock error answer: its `x-amzn-errortype` (`ValidationException:…`,
/// the part before `:`) and the body's `message` (or `Message`), not yet scrubbed.
pub fn error_message(error_type: Option<&str>, body: &[u8]) -> String {
    let kind = error_type
        .and_then(|t| t.split(':').next())
        .filter(|t| !t.is_empty() && t.len() <= 100);
    let msg = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned());
    match kind {
        Some(k) => format!("{k}: {msg}"),
        None => msg,
    }
}

#[cfg(test)]
mod tests;
