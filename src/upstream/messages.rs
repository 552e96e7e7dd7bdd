//! The Anthropic Messages format on `/v1/messages` (issue 13 item 2), pure JSON work: a
//! Messages request translated to OpenAI chat for deployments that speak chat (`to_chat`), a
//! chat answer translated back (`from_chat`), a chat stream's chunks translated into Anthropic
//! events (`ChatToEvents`), the body passed through to an Anthropic deployment
//! (`passthrough_body`, `count_tokens_body`) and the framing of Anthropic events (`event`).
//! Sends nothing and bills nothing (`call::messages` does both). Field names follow LiteLLM's
//! `llms/anthropic/messages/adapters/transformation.py`; what litegate drops is said where.

use crate::config::Deployment;
use serde_json::{json, Map, Value};

/// Appends one Anthropic SSE event (`event: <type>` and its `data:` line) to `out`.
pub fn event(out: &mut Vec<u8>, v: &Value) {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("message");
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(v.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Appends an event as it came: `kind` (checked by the caller to be a plain word) and its
/// `data` line (one line, as read).
pub fn event_raw(out: &mut Vec<u8>, kind: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// An Anthropic `error` event's JSON (`api_error`: a stream fails after its 200).
pub fn error_event(message: &str) -> Value {
    json!({"type": "error", "error": {"type": "api_error", "message": message}})
}

/// The gateway-only fields (`upstream::GATEWAY_ONLY`: a caller's `api_base`/`api_key` would
/// send our key elsewhere) an Anthropic deployment never gets; Anthropic's own `metadata`
/// (`user_id`) is not one of them here.
fn gateway_only() -> impl Iterator<Item = &'static str> {
    super::GATEWAY_ONLY
        .iter()
        .copied()
        .filter(|f| *f != "metadata")
}

/// True when the caller's body is what `passthrough_body` would send to a native Anthropic
/// deployment (its model already in place, no gateway-only field): its bytes can then go out
/// as they came, to `messages`.
pub fn passthrough_unchanged(dep: &Deployment, called: &str, body: &Map<String, Value>) -> bool {
    dep.route.wire == crate::provider::Wire::Anthropic
        && body.get("model").and_then(Value::as_str)
            == Some(super::Upstream::model_for(dep, called).as_str())
        && !gateway_only().any(|f| body.contains_key(f))
}

/// The endpoint and body of a call to an Anthropic deployment (native or on Vertex): the
/// caller's body without gateway-only fields, fitted by `anthropic::target` (the deployment's
/// model; on Vertex no model and `anthropic_version`).
pub fn passthrough_body(
    dep: &Deployment,
    called: &str,
    mut body: Map<String, Value>,
    stream: bool,
) -> (&'static str, Vec<u8>) {
    for f in gateway_only() {
        body.remove(f);
    }
    let model = super::Upstream::model_for(dep, called);
    let endpoint = super::anthropic::target(&dep.route, &model, stream, &mut body);
    (
        endpoint,
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default(),
    )
}

/// The fields Anthropic's `/v1/messages/count_tokens` accepts (it refuses others, such as
/// `max_tokens` or `stream`).
const COUNT_FIELDS: &[&str] = &[
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
    "context_management",
];

/// The body of a count_tokens call to an Anthropic deployment.
pub fn count_tokens_body(dep: &Deployment, called: &str, body: &Map<String, Value>) -> Vec<u8> {
    let mut out = Map::new();
    out.insert(
        "model".into(),
        Value::String(super::Upstream::model_for(dep, called)),
    );
    for f in COUNT_FIELDS {
        if let Some(v) = body.get(*f).filter(|v| !v.is_null()) {
            out.insert((*f).into(), v.clone());
        }
    }
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}

/// The text of Anthropic `content` (a string, or the `text` of its blocks joined by `sep`).
fn text_of(c: &Value, sep: &str) -> String {
    match c {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(sep),
        _ => String::new(),
    }
}

/// An Anthropic image `source` as an OpenAI `image_url` URL (base64 → `data:` URL).
fn image_url(source: &Value) -> Option<String> {
    match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media = source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("image/png");
            let data = source.get("data").and_then(Value::as_str)?;
            Some(format!("data:{media};base64,{data}"))
        }
        Some("url") => source.get("url").and_then(Value::as_str).map(String::from),
        _ => None,
    }
}

/// The OpenAI messages of one Anthropic user turn: its tool results first (each a `tool`
/// message, as OpenAI wants them right after the assistant's calls), then its text and images.
fn user_turn(content: &Value, out: &mut Vec<Value>) {
    let blocks = match content {
        Value::Array(b) => b,
        other => {
            out.push(json!({"role": "user", "content": text_of(other, "")}));
            return;
        }
    };
    let mut parts = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = b.get("text").and_then(Value::as_str).unwrap_or("");
                parts.push(json!({"type": "text", "text": t}));
            }
            Some("image") => {
                if let Some(url) = b.get("source").and_then(image_url) {
                    parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                }
            }
            Some("tool_result") => {
                let id = b.get("tool_use_id").cloned().unwrap_or(json!(""));
                let text = text_of(b.get("content").unwrap_or(&Value::Null), "\n");
                out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            // Documents, search results and the like have no chat equivalent here (LiteLLM
            // drops what it cannot translate too).
            _ => {}
        }
    }
    match parts.as_slice() {
        [] => {}
        [one] if one["type"] == "text" => {
            out.push(json!({"role": "user", "content": one["text"]}));
        }
        _ => out.push(json!({"role": "user", "content": parts})),
    }
}

/// The OpenAI message of one Anthropic assistant turn: its text, its `tool_use` blocks as
/// `tool_calls` (thinking blocks are dropped: chat has no place for their signatures).
fn assistant_turn(content: &Value, out: &mut Vec<Value>) {
    let Value::Array(blocks) = content else {
        out.push(json!({"role": "assistant", "content": text_of(content, "")}));
        return;
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => {
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": b.get("id").cloned().unwrap_or(json!("")),
                    "type": "function",
                    "function": {"name": b.get("name").cloned().unwrap_or(json!("")),
                                 "arguments": input.to_string()}}));
            }
            _ => {}
        }
    }
    let mut m = json!({"role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        m["tool_calls"] = Value::Array(calls);
    }
    out.push(m);
}

/// A Messages request (already checked by `call::messages::check`) as an OpenAI chat request
/// to `model`. `stream` asks the upstream for its usage chunk too. Dropped, as chat has no
/// equivalent: `thinking`, `top_k`, server tools (a tool without `input_schema` and with a
/// `type` of its own), and content blocks other than text, images and tool results.
pub fn to_chat(body: &Map<String, Value>, model: &str, stream: bool) -> Map<String, Value> {
    let mut messages = Vec::new();
    if let Some(s @ (Value::String(_) | Value::Array(_))) = body.get("system") {
        let t = text_of(s, "\n");
        if !t.is_empty() {
            messages.push(json!({"role": "system", "content": t}));
        }
    }
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let content = m.get("content").unwrap_or(&Value::Null);
        match m.get("role").and_then(Value::as_str) {
            Some("assistant") => assistant_turn(content, &mut messages),
            // A `system` turn among the others (Claude Code sends them) stays one, in place.
            Some("system") => {
                let t = text_of(content, "\n");
                if !t.is_empty() {
                    messages.push(json!({"role": "system", "content": t}));
                }
            }
            _ => user_turn(content, &mut messages),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(messages));
    for f in ["max_tokens", "temperature", "top_p"] {
        if let Some(v) = body.get(f).filter(|v| !v.is_null()) {
            out.insert(f.into(), v.clone());
        }
    }
    if let Some(s) = body.get("stop_sequences").and_then(Value::as_array) {
        if !s.is_empty() {
            out.insert("stop".into(), Value::Array(s.clone()));
        }
    }
    if let Some(u) = body
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .filter(|u| u.is_string())
    {
        out.insert("user".into(), u.clone());
    }
    let tools: Vec<Value> = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| {
            t.get("input_schema").is_some()
                || t.get("type").is_none_or(|k| k == "custom" || k.is_null())
        })
        .map(|t| {
            let mut f = Map::new();
            f.insert("name".into(), t.get("name").cloned().unwrap_or(json!("")));
            if let Some(d) = t.get("description").filter(|d| d.is_string()) {
                f.insert("description".into(), d.clone());
            }
            let schema = t
                .get("input_schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            f.insert("parameters".into(), schema);
            json!({"type": "function", "function": f})
        })
        .collect();
    let has_tools = !tools.is_empty();
    if has_tools {
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(c) = body.get("tool_choice").filter(|_| has_tools) {
        let choice = match c.get("type").and_then(Value::as_str) {
            Some("any") => Some(json!("required")),
            Some("auto") => Some(json!("auto")),
            Some("none") => Some(json!("none")),
            Some("tool") => Some(json!({"type": "function",
                "function": {"name": c.get("name").cloned().unwrap_or(json!(""))}})),
            _ => None,
        };
        if let Some(choice) = choice {
            out.insert("tool_choice".into(), choice);
        }
        if c.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
            out.insert("parallel_tool_calls".into(), Value::Bool(false));
        }
    }
    if stream {
        out.insert("stream".into(), Value::Bool(true));
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    out
}

/// `finish_reason` → `stop_reason` (LiteLLM's map).
pub fn stop_reason(finish: &str) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" | "refusal" => "refusal",
        _ => "end_turn",
    }
}

fn count(u: &Value, f: &str) -> u64 {
    u.get(f).and_then(Value::as_u64).unwrap_or(0)
}

/// OpenAI's `usage` as Anthropic's: cache reads (`prompt_tokens_details.cached_tokens`) and
/// writes are taken out of `prompt_tokens` into their own fields.
pub fn usage_of_chat(u: &Value) -> Value {
    let details = u.get("prompt_tokens_details").unwrap_or(&Value::Null);
    let read = count(u, "cache_read_input_tokens").max(count(details, "cached_tokens"));
    let created =
        count(u, "cache_creation_input_tokens").max(count(details, "cache_creation_tokens"));
    let input = count(u, "prompt_tokens")
        .saturating_sub(read)
        .saturating_sub(created);
    json!({"input_tokens": input, "output_tokens": count(u, "completion_tokens"),
           "cache_creation_input_tokens": created, "cache_read_input_tokens": read})
}

/// A tool call's `arguments` (a JSON text) as a `tool_use` block's `input` object.
fn input_of(arguments: Option<&Value>) -> Value {
    arguments
        .and_then(Value::as_str)
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

/// An OpenAI `chat.completion` as a Messages answer.
pub fn from_chat(v: &Value) -> Value {
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .unwrap_or(&Value::Null);
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut content = Vec::new();
    let text = match msg.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(parts @ Value::Array(_)) => text_of(parts, ""),
        _ => String::new(),
    };
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for tc in msg
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let f = tc.get("function").unwrap_or(&Value::Null);
        content.push(
            json!({"type": "tool_use", "id": tc.get("id").cloned().unwrap_or(json!("")),
            "name": f.get("name").cloned().unwrap_or(json!("")),
            "input": input_of(f.get("arguments"))}),
        );
    }
    let finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("stop");
    json!({"id": v.get("id").cloned().unwrap_or(json!("msg_litegate")), "type": "message",
           "role": "assistant", "model": v.get("model").cloned().unwrap_or(Value::Null),
           "content": content, "stop_reason": stop_reason(finish), "stop_sequence": null,
           "usage": usage_of_chat(v.get("usage").unwrap_or(&Value::Null))})
}

/// The most tool calls one translated stream may open (each is a content block; a hostile
/// upstream opening them without end would grow nothing here but the events, yet the bound
/// keeps the answer sane). More ends the stream as an upstream error.
pub const MAX_STREAM_TOOL_CALLS: usize = 1024;

/// The content block being streamed.
#[derive(Clone, Copy, PartialEq)]
enum Open {
    Text,
    /// A `tool_use` block, by the OpenAI `tool_calls[].index` it comes from.
    Tool(u64),
}

/// A chat stream's translation into Anthropic events: `message_start` at the first chunk,
/// a content block per text run and per tool call (`content_block_start`, `text_delta` /
/// `input_json_delta`, `content_block_stop`), and at the end (`finish`) `message_delta` with
/// the stop reason and usage, then `message_stop`.
pub struct ChatToEvents {
    started: bool,
    ended: bool,
    /// The `input_tokens` `message_start` shows until the real figure comes at the end.
    input_estimate: u64,
    open: Option<Open>,
    /// The index of the next content block.
    next: u64,
    tool_calls: usize,
    stop: Option<&'static str>,
    /// The chat stream's `usage`, when it came.
    usage: Option<Value>,
}

impl ChatToEvents {
    pub fn new(input_estimate: u64) -> ChatToEvents {
        ChatToEvents {
            started: false,
            ended: false,
            input_estimate,
            open: None,
            next: 0,
            tool_calls: 0,
            stop: None,
            usage: None,
        }
    }

    /// Whether the stream has ended (`finish` or `fail` ran).
    pub fn ended(&self) -> bool {
        self.ended
    }

    fn start(&mut self, id: Option<&Value>, model: Option<&Value>, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = id
            .filter(|i| i.is_string())
            .cloned()
            .unwrap_or(json!("msg_litegate"));
        event(
            out,
            &json!({"type": "message_start", "message": {"id": id, "type": "message",
                "role": "assistant", "model": model.cloned().unwrap_or(Value::Null),
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": self.input_estimate, "output_tokens": 0}}}),
        );
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            event(
                out,
                &json!({"type": "content_block_stop", "index": self.next - 1}),
            );
        }
    }

    fn open(&mut self, what: Open, block: Value, out: &mut Vec<u8>) {
        self.close(out);
        event(
            out,
            &json!({"type": "content_block_start", "index": self.next, "content_block": block}),
        );
        self.open = Some(what);
        self.next += 1;
    }

    fn delta(&self, delta: Value, out: &mut Vec<u8>) {
        event(
            out,
            &json!({"type": "content_block_delta", "index": self.next - 1, "delta": delta}),
        );
    }

    /// Translates one chat chunk into `out`'s events; `Err` when the stream cannot go on.
    pub fn feed(&mut self, chunk: &Value, out: &mut Vec<u8>) -> Result<(), String> {
        if self.ended {
            return Ok(());
        }
        self.start(chunk.get("id"), chunk.get("model"), out);
        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        let Some(choice) = chunk.get("choices").and_then(|c| c.get(0)) else {
            return Ok(());
        };
        let d = choice.get("delta").unwrap_or(&Value::Null);
        if let Some(t) = d
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            if self.open != Some(Open::Text) {
                self.open(Open::Text, json!({"type": "text", "text": ""}), out);
            }
            self.delta(json!({"type": "text_delta", "text": t}), out);
        }
        for tc in d
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
            let f = tc.get("function").unwrap_or(&Value::Null);
            if self.open != Some(Open::Tool(index)) {
                if self.tool_calls >= MAX_STREAM_TOOL_CALLS {
                    return Err(format!(
                        "the answer opened more than {MAX_STREAM_TOOL_CALLS} tool calls"
                    ));
                }
                self.tool_calls += 1;
                let id = tc
                    .get("id")
                    .filter(|i| i.is_string())
                    .cloned()
                    .unwrap_or_else(|| json!(format!("toolu_{}", self.tool_calls)));
                let block = json!({"type": "tool_use", "id": id,
                    "name": f.get("name").cloned().unwrap_or(json!("")), "input": {}});
                self.open(Open::Tool(index), block, out);
            }
            if let Some(a) = f
                .get("arguments")
                .and_then(Value::as_str)
                .filter(|a| !a.is_empty())
            {
                self.delta(json!({"type": "input_json_delta", "partial_json": a}), out);
            }
        }
        if let Some(f) = choice.get("finish_reason").and_then(Value::as_str) {
            self.stop = Some(stop_reason(f));
        }
        Ok(())
    }

    /// The end of a chat stream that finished: the open block closed, `message_delta` (stop
    /// reason, usage) and `message_stop`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.start(None, None, out);
        self.close(out);
        let usage = usage_of_chat(self.usage.as_ref().unwrap_or(&Value::Null));
        event(
            out,
            &json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop.unwrap_or("end_turn"), "stop_sequence": null},
                "usage": usage}),
        );
        event(out, &json!({"type": "message_stop"}));
        self.ended = true;
    }

    /// The end of a chat stream that failed: an `error` event.
    pub fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        event(out, &error_event(message));
        self.ended = true;
    }
}

#[cfg(test)]
mod tests;
