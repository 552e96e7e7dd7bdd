//! Anthropic's Messages API, translated both ways from/to OpenAI chat (issue 13): the request
//! body (`request`), the whole answer (`answer`), and a stream's events (`StreamState`, one
//! Anthropic event in, OpenAI `chat.completion.chunk`s out). Pure JSON work: it sends nothing
//! (`upstream::Upstream::post` does, with `x-api-key` and `anthropic-version`, or Vertex's
//! Bearer token; `target` fits the URL and body to native Anthropic or Vertex) and bills
//! nothing (`call::anthropic` settles from the usage translated here). Field names follow
//! LiteLLM's `llms/anthropic/chat/transformation.py`; cache read/creation tokens are counted in
//! `prompt_tokens` and shown as LiteLLM shows them.

use crate::error::Error;
use serde_json::{json, Map, Value};

mod params;
pub use params::{wants_json, JSON_TOOL};

/// `max_tokens` is required by Anthropic; used when neither the caller nor the deployment's
/// `model_info` (`max_output_tokens`, `max_tokens`) gives one. (LiteLLM takes the model's
/// output limit from its price list, else 128000. litegate's price table fills
/// `model_info.max_output_tokens` at config load, so this is only for models it does not know;
/// a smaller default keeps an unbounded call from reserving a huge completion.)
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The `max_tokens` sent when the caller gives none: the deployment's `model_info`
/// `max_output_tokens` or `max_tokens`, else [`DEFAULT_MAX_TOKENS`].
pub fn default_max_tokens(model_info: &Map<String, Value>) -> u64 {
    ["max_output_tokens", "max_tokens"]
        .iter()
        .find_map(|f| model_info.get(*f).and_then(Value::as_u64))
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_TOKENS)
}

/// Where a Messages request `body` for a deployment with `route` goes, with the body fitted to
/// it: THE one place that tells native Anthropic (endpoint `messages`, `model` in the body;
/// `Upstream::post` adds `x-api-key` and `anthropic-version`) from Anthropic on Vertex AI
/// (`rawPredict` / `streamRawPredict`, no `model`, `"anthropic_version": "vertex-2023-10-16"`
/// in the body; `Upstream::post` adds the minted Bearer token). Returns the endpoint for
/// `Upstream::post`.
pub fn target(
    route: &crate::provider::Route,
    model: &str,
    stream: bool,
    body: &mut Map<String, Value>,
) -> &'static str {
    use crate::provider::{google::VERTEX_ANTHROPIC_VERSION, Wire};
    if route.wire == Wire::VertexAnthropic {
        body.remove("model");
        body.insert("anthropic_version".into(), VERTEX_ANTHROPIC_VERSION.into());
        if stream {
            "streamRawPredict"
        } else {
            "rawPredict"
        }
    } else {
        body.insert("model".into(), model.into());
        "messages"
    }
}

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

/// An OpenAI `image_url` as an Anthropic image source: `data:` URLs → base64, others → url.
fn image_source(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((meta, data)) = rest.split_once(',') {
            let media = meta.split(';').next().unwrap_or("image/png");
            return json!({"type": "base64", "media_type": media, "data": data});
        }
    }
    json!({"type": "url", "url": url})
}

/// The content blocks of a user or assistant message's `content`.
fn blocks_of(c: &Value) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    match c {
        Value::Null => {}
        Value::String(s) if s.is_empty() => {}
        Value::String(s) => out.push(json!({"type": "text", "text": s})),
        Value::Array(parts) => {
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let t = p.get("text").and_then(Value::as_str).unwrap_or("");
                        out.push(json!({"type": "text", "text": t}));
                    }
                    Some("image_url") => {
                        let url = p
                            .get("image_url")
                            .and_then(|i| i.get("url").or(Some(i)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                Error::bad_param("messages", "an image_url part needs a url")
                            })?;
                        out.push(json!({"type": "image", "source": image_source(url)}));
                    }
                    _ => {
                        return Err(Error::bad_param(
                            "messages",
                            "only text and image_url content parts are supported for \
                             Anthropic models",
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

/// A `thinking` / `redacted_thinking` block given back in an assistant message, with only the
/// fields Anthropic takes.
fn thinking_block(b: &Value) -> Option<Value> {
    match b.get("type").and_then(Value::as_str)? {
        "thinking" => Some(json!({"type": "thinking",
            "thinking": b.get("thinking").and_then(Value::as_str).unwrap_or(""),
            "signature": b.get("signature").and_then(Value::as_str).unwrap_or("")})),
        "redacted_thinking" => Some(json!({"type": "redacted_thinking",
            "data": b.get("data").and_then(Value::as_str).unwrap_or("")})),
        _ => None,
    }
}

/// The Messages request for an OpenAI chat request `body`, to model `model`; `default_max` is
/// the `max_tokens` sent when the caller gives none.
pub fn request(
    model: &str,
    body: &Map<String, Value>,
    stream: bool,
    default_max: u64,
) -> Result<Value, Error> {
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
                    system.push(json!({"type": "text", "text": t}));
                }
                continue;
            }
            Some("user") => ("user", blocks_of(content)?),
            Some("assistant") => {
                // Thinking blocks given back (LiteLLM's `thinking_blocks`) come first, as
                // Anthropic wants them with tool use.
                let mut b: Vec<Value> = m
                    .get("thinking_blocks")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(thinking_block)
                    .collect();
                b.extend(blocks_of(content)?);
                for tc in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let f = tc.get("function").unwrap_or(&Value::Null);
                    let args = f.get("arguments").and_then(Value::as_str).unwrap_or("");
                    let input = serde_json::from_str::<Value>(args)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    b.push(json!({"type": "tool_use", "id": tc.get("id").cloned().unwrap_or(Value::Null),
                        "name": f.get("name").cloned().unwrap_or(Value::Null), "input": input}));
                }
                ("assistant", b)
            }
            Some("tool") | Some("function") => {
                let id = m.get("tool_call_id").cloned().unwrap_or(Value::Null);
                (
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": id,
                                "content": text_of(content)})],
                )
            }
            _ => return Err(Error::bad_param("messages", "unknown message role")),
        };
        match turns.last_mut() {
            // Anthropic requires alternating turns: consecutive same-role turns are merged.
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    match body.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    for f in ["temperature", "top_p", "top_k"] {
        if let Some(v) = body.get(f).filter(|v| !v.is_null()) {
            out.insert(f.into(), v.clone());
        }
    }
    params::apply(body, &mut out, default_max)?;
    if stream {
        out.insert("stream".into(), json!(true));
    }
    Ok(Value::Object(out))
}

/// `stop_reason` → `finish_reason` (LiteLLM's map).
pub fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" | "pause_turn" | "compaction" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop",
    }
}

fn n(u: &Value, f: &str) -> u64 {
    u.get(f).and_then(Value::as_u64).unwrap_or(0)
}

/// Anthropic's `usage` as OpenAI's (cache reads and writes counted in `prompt_tokens`).
pub fn usage(u: &Value, output: u64) -> Value {
    let read = n(u, "cache_read_input_tokens");
    let created = n(u, "cache_creation_input_tokens");
    let prompt = n(u, "input_tokens")
        .saturating_add(read)
        .saturating_add(created);
    json!({"prompt_tokens": prompt, "completion_tokens": output,
           "total_tokens": prompt.saturating_add(output),
           "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": created},
           "cache_read_input_tokens": read, "cache_creation_input_tokens": created})
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A Messages answer as an OpenAI `chat.completion`.
pub fn answer(v: &Value) -> Value {
    answer_as(v, false)
}

/// A Messages answer as an OpenAI `chat.completion`; `json`: the request asked for a JSON
/// `response_format`, so the `json_tool_call` tool's input is the message's content (as in
/// LiteLLM). Thinking blocks become `reasoning_content` (their text) and `thinking_blocks`.
pub fn answer_as(v: &Value, json: bool) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking = Vec::new();
    let mut calls = Vec::new();
    let mut json_answer = false;
    for b in v
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use")
                if json && b.get("name").and_then(Value::as_str) == Some(JSON_TOOL) =>
            {
                json_answer = true;
                text.push_str(&b.get("input").map_or_else(|| "{}".into(), Value::to_string));
            }
            Some("tool_use") => {
                let args = b.get("input").map_or_else(|| "{}".into(), Value::to_string);
                calls.push(json!({"id": b.get("id"), "type": "function",
                    "function": {"name": b.get("name"), "arguments": args}}));
            }
            Some("thinking") | Some("redacted_thinking") => {
                reasoning.push_str(b.get("thinking").and_then(Value::as_str).unwrap_or(""));
                thinking.extend(thinking_block(b));
            }
            _ => {}
        }
    }
    let mut message = json!({"role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !thinking.is_empty() {
        message["reasoning_content"] = json!(reasoning);
        message["thinking_blocks"] = Value::Array(thinking);
    }
    let stop = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let finish = match finish_reason(stop) {
        // The JSON tool was the answer, not a call to make.
        "tool_calls" if json_answer && message.get("tool_calls").is_none() => "stop",
        f => f,
    };
    let u = v.get("usage").cloned().unwrap_or(Value::Null);
    json!({"id": v.get("id"), "object": "chat.completion", "created": now(),
           "model": v.get("model"),
           "choices": [{"index": 0, "message": message, "finish_reason": finish}],
           "usage": usage(&u, n(&u, "output_tokens"))})
}

/// What one stream event meant.
#[derive(Debug, PartialEq)]
pub enum Step {
    Continue,
    /// `message_stop`: the answer is complete.
    Stop,
    /// An `error` event, with its message (not yet scrubbed).
    Error(String),
}

/// The most tool calls one streamed answer may open: a hostile upstream opening blocks without
/// end would otherwise grow `StreamState::tools` (and the lookup per delta) for the whole
/// stream deadline. More ends the stream as an upstream error.
pub const MAX_STREAM_TOOL_CALLS: usize = 1024;

/// A stream's translation state: the ids and usage seen so far, tool blocks' indexes.
#[derive(Default)]
pub struct StreamState {
    id: Value,
    model: Value,
    created: u64,
    /// `usage` of `message_start` (input and cache tokens).
    start_usage: Value,
    output: u64,
    /// For each content block index, its tool call index (if a tool_use block).
    tools: Vec<(u64, usize)>,
    /// The request asked for JSON: the `json_tool_call` block's input is streamed as content.
    json: bool,
    /// The content block index of the `json_tool_call` block, once opened.
    json_block: Option<u64>,
}

impl StreamState {
    /// The state for a request that asked (`json`) or did not ask for a JSON answer.
    pub fn new(json: bool) -> StreamState {
        StreamState {
            json,
            ..StreamState::default()
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
               "model": self.model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    }

    /// Translates one event into `out`'s chunks (the last, at `message_stop`, is the usage
    /// chunk without choices).
    pub fn feed(&mut self, ev: &Value, out: &mut Vec<Value>) -> Step {
        match ev.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let m = ev.get("message").unwrap_or(&Value::Null);
                self.id = m.get("id").cloned().unwrap_or(Value::Null);
                self.model = m.get("model").cloned().unwrap_or(Value::Null);
                self.created = now();
                self.start_usage = m.get("usage").cloned().unwrap_or(Value::Null);
                self.output = n(&self.start_usage, "output_tokens");
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            Some("content_block_start") => {
                let b = ev.get("content_block").unwrap_or(&Value::Null);
                let index = n(ev, "index");
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use")
                        if self.json
                            && self.json_block.is_none()
                            && b.get("name").and_then(Value::as_str) == Some(JSON_TOOL) =>
                    {
                        self.json_block = Some(index);
                    }
                    Some("redacted_thinking") => {
                        if let Some(t) = thinking_block(b) {
                            out.push(self.chunk(json!({"thinking_blocks": [t]}), None));
                        }
                    }
                    Some("tool_use") => {
                        let t = self.tools.len();
                        if t >= MAX_STREAM_TOOL_CALLS {
                            return Step::Error(format!(
                                "the answer opened more than {MAX_STREAM_TOOL_CALLS} tool calls"
                            ));
                        }
                        self.tools.push((index, t));
                        out.push(self.chunk(
                            json!({"tool_calls": [{"index": t, "id": b.get("id"),
                                "type": "function",
                                "function": {"name": b.get("name"), "arguments": ""}}]}),
                            None,
                        ));
                    }
                    Some("text") => {
                        if let Some(t) = b
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(self.chunk(json!({"content": t}), None));
                        }
                    }
                    _ => {}
                }
            }
            Some("content_block_delta") => {
                let d = ev.get("delta").unwrap_or(&Value::Null);
                match d.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        out.push(self.chunk(json!({"content": d.get("text")}), None));
                    }
                    Some("thinking_delta") => {
                        if let Some(t) = d.get("thinking").and_then(Value::as_str) {
                            out.push(self.chunk(
                                json!({"reasoning_content": t, "thinking_blocks":
                                    [{"type": "thinking", "thinking": t}]}),
                                None,
                            ));
                        }
                    }
                    Some("signature_delta") => {
                        if let Some(s) = d.get("signature").and_then(Value::as_str) {
                            out.push(self.chunk(
                                json!({"reasoning_content": "", "thinking_blocks":
                                    [{"type": "thinking", "thinking": "", "signature": s}]}),
                                None,
                            ));
                        }
                    }
                    Some("input_json_delta") if self.json_block == Some(n(ev, "index")) => {
                        out.push(self.chunk(json!({"content": d.get("partial_json")}), None));
                    }
                    Some("input_json_delta") => {
                        let index = n(ev, "index");
                        if let Some(&(_, t)) = self.tools.iter().find(|(i, _)| *i == index) {
                            out.push(self.chunk(
                                json!({"tool_calls": [{"index": t,
                                    "function": {"arguments": d.get("partial_json")}}]}),
                                None,
                            ));
                        }
                    }
                    _ => {}
                }
            }
            Some("message_delta") => {
                if let Some(o) = ev.get("usage").and_then(|u| u.get("output_tokens")) {
                    self.output = o.as_u64().unwrap_or(self.output);
                }
                // The final usage may restate the input and cache figures (cumulative, as
                // Anthropic documents): those replace `message_start`'s.
                if let (Some(u), Some(start)) = (
                    ev.get("usage").and_then(Value::as_object),
                    self.start_usage.as_object_mut(),
                ) {
                    for f in [
                        "input_tokens",
                        "cache_read_input_tokens",
                        "cache_creation_input_tokens",
                    ] {
                        if let Some(v) = u.get(f).filter(|v| v.is_u64()) {
                            start.insert(f.into(), v.clone());
                        }
                    }
                }
                if let Some(s) = ev
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str)
                {
                    let finish = match finish_reason(s) {
                        // The JSON tool was the answer, not a call to make.
                        "tool_calls" if self.json_block.is_some() && self.tools.is_empty() => {
                            "stop"
                        }
                        f => f,
                    };
                    out.push(self.chunk(json!({}), Some(finish)));
                }
            }
            Some("message_stop") => {
                out.push(json!({"id": self.id, "object": "chat.completion.chunk",
                    "created": self.created, "model": self.model, "choices": [],
                    "usage": usage(&self.start_usage, self.output)}));
                return Step::Stop;
            }
            Some("error") => {
                let m = ev
                    .get("error")
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("the upstream stream failed");
                return Step::Error(m.to_string());
            }
            _ => {}
        }
        Step::Continue
    }
}

#[cfg(test)]
mod tests;
