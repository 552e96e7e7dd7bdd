//! The OpenAI chat parameters beside the messages, as Anthropic's Messages API takes them
//! (LiteLLM's `AnthropicConfig.map_openai_params`): `max_tokens`, `tools`, `tool_choice`,
//! `parallel_tool_calls` (→ `disable_parallel_tool_use`), `response_format` (JSON through a
//! forced `json_tool_call` tool), `user` (→ `metadata.user_id`), `thinking` /
//! `reasoning_effort` (→ `thinking`), and the refusal of parameters the Messages API cannot
//! honour (a 400 naming the field: sending the call without them would silently change what the
//! caller asked for). Parameters that change nothing when dropped (`seed`, `store`,
//! `metadata`, a default penalty, …) are dropped. Owned by `upstream::anthropic::request`.

use crate::error::Error;
use serde_json::{json, Map, Value};

/// The tool a JSON `response_format` is asked through (LiteLLM's `RESPONSE_FORMAT_TOOL_NAME`);
/// its input comes back as the message's content.
pub const JSON_TOOL: &str = "json_tool_call";

/// Added to a thinking budget for `max_tokens` when neither the caller nor the model gives
/// room for it (LiteLLM's `DEFAULT_MAX_TOKENS`).
const THINKING_ANSWER_ROOM: u64 = 4096;

/// Whether the request asks for a JSON answer (`response_format` `json_object` or
/// `json_schema`): the answer's `json_tool_call` is then its content.
pub fn wants_json(body: &Map<String, Value>) -> bool {
    matches!(
        body.get("response_format")
            .and_then(|r| r.get("type"))
            .and_then(Value::as_str),
        Some("json_object" | "json_schema")
    )
}

/// Refuses the parameters the Messages API has no equivalent for, when set to anything but
/// their default (a default value changes nothing and is dropped).
fn refuse_unsupported(body: &Map<String, Value>) -> Result<(), Error> {
    let not_default = |f: &str, v: &Value| match f {
        "logprobs" => v.as_bool() == Some(true),
        "presence_penalty" | "frequency_penalty" => v.as_f64().is_some_and(|x| x != 0.0),
        "logit_bias" => v.as_object().is_some_and(|o| !o.is_empty()),
        "modalities" => v
            .as_array()
            .is_some_and(|a| a.iter().any(|m| m.as_str() != Some("text"))),
        _ => !v.is_null(),
    };
    for f in [
        "logprobs",
        "top_logprobs",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "modalities",
        "audio",
        "prediction",
        "functions",
        "function_call",
        "web_search_options",
    ] {
        if body.get(f).is_some_and(|v| not_default(f, v)) {
            return Err(Error::bad_param(
                f,
                format!("`{f}` is not supported for Anthropic models"),
            ));
        }
    }
    Ok(())
}

/// Anthropic's `thinking` for the request: the caller's `thinking` as given (it wins), else
/// `reasoning_effort` mapped as LiteLLM maps it (`none`: no thinking).
fn thinking(body: &Map<String, Value>) -> Result<Option<Value>, Error> {
    if let Some(t) = body.get("thinking").filter(|v| !v.is_null()) {
        if !t.get("type").is_some_and(Value::is_string) {
            return Err(Error::bad_param(
                "thinking",
                "`thinking` must be an object with a `type`",
            ));
        }
        return Ok(Some(t.clone()));
    }
    let Some(effort) = body.get("reasoning_effort").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    // LiteLLM also takes `{"effort": "low", ...}`.
    let effort = effort.get("effort").unwrap_or(effort);
    let budget =
        match effort.as_str() {
            Some("none") => return Ok(None),
            Some("minimal") | Some("low") => 1024,
            Some("medium") => 2048,
            Some("high") => 4096,
            Some("xhigh") => 8192,
            Some("max") => 16384,
            _ => return Err(Error::bad_param(
                "reasoning_effort",
                "`reasoning_effort` must be one of minimal, low, medium, high, xhigh, max, none",
            )),
        };
    Ok(Some(json!({"type": "enabled", "budget_tokens": budget})))
}

/// LiteLLM sends `user` as `metadata.user_id` unless it looks like an email address or a phone
/// number (Anthropic refuses those); such a `user` is dropped.
fn user_id(body: &Map<String, Value>) -> Option<&str> {
    let u = body.get("user")?.as_str().filter(|u| !u.is_empty())?;
    let email = u.split_once('@').is_some_and(|(a, d)| {
        !a.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
    });
    let phone = u.len() >= 7
        && u.chars().all(|c| c.is_ascii_digit() || " ()-+".contains(c))
        && u.chars().filter(char::is_ascii_digit).count() >= 7;
    (!email && !phone).then_some(u)
}

/// The caller's `tools` as Anthropic tools.
fn tools(body: &Map<String, Value>) -> Option<Vec<Value>> {
    let tools = body.get("tools")?.as_array()?;
    Some(
        tools
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
                o.insert("input_schema".into(), schema);
                Value::Object(o)
            })
            .collect(),
    )
}

/// `tool_choice` and `parallel_tool_calls` as Anthropic's `tool_choice` (LiteLLM's
/// `_map_tool_choice`).
fn tool_choice(body: &Map<String, Value>) -> Result<Option<Value>, Error> {
    let given = body.get("tool_choice").filter(|v| !v.is_null());
    let mut choice = match given {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "required" => Some(json!({"type": "any"})),
            "none" => Some(json!({"type": "none"})),
            _ => {
                return Err(Error::bad_param(
                    "tool_choice",
                    "`tool_choice` must be auto, required, none or a function",
                ))
            }
        },
        Some(Value::Object(o)) => {
            match (o.get("function"), o.get("type").and_then(Value::as_str)) {
                (Some(f), _) => f
                    .get("name")
                    .filter(|n| n.is_string())
                    .map(|n| json!({"type": "tool", "name": n})),
                (None, Some("auto")) => Some(json!({"type": "auto"})),
                (None, Some("required" | "any")) => Some(json!({"type": "any"})),
                (None, Some("none")) => Some(json!({"type": "none"})),
                _ => None,
            }
        }
        Some(_) => {
            return Err(Error::bad_param(
                "tool_choice",
                "`tool_choice` must be a string or an object",
            ))
        }
    };
    let parallel = match body.get("parallel_tool_calls") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(Error::bad_param(
                "parallel_tool_calls",
                "`parallel_tool_calls` must be true or false",
            ))
        }
    };
    if let Some(p) = parallel {
        let none = given.and_then(Value::as_str) == Some("none");
        match &mut choice {
            _ if none => {}
            Some(c) => c["disable_parallel_tool_use"] = json!(!p),
            None => choice = Some(json!({"type": "auto", "disable_parallel_tool_use": !p})),
        }
    }
    Ok(choice)
}

/// The JSON tool for a `response_format` (`None`: no JSON asked for; `text` is the default).
fn json_tool(body: &Map<String, Value>) -> Result<Option<Value>, Error> {
    let Some(rf) = body.get("response_format").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let schema = match rf.get("type").and_then(Value::as_str) {
        Some("text") => return Ok(None),
        // LiteLLM's tool for a JSON answer without a schema: any object.
        Some("json_object") => {
            json!({"type": "object", "additionalProperties": true, "properties": {}})
        }
        Some("json_schema") => match rf.get("json_schema").and_then(|j| j.get("schema")) {
            Some(s) if s.is_object() => s.clone(),
            _ => {
                return Err(Error::bad_param(
                    "response_format",
                    "`response_format.json_schema.schema` must be an object",
                ))
            }
        },
        _ => {
            return Err(Error::bad_param(
                "response_format",
                "`response_format.type` must be text, json_object or json_schema",
            ))
        }
    };
    Ok(Some(json!({"name": JSON_TOOL, "input_schema": schema})))
}

/// Puts the parameters into the Messages request `out`; `default_max` is the `max_tokens` sent
/// when the caller gives none.
pub(super) fn apply(
    body: &Map<String, Value>,
    out: &mut Map<String, Value>,
    default_max: u64,
) -> Result<(), Error> {
    refuse_unsupported(body)?;
    let thinking = thinking(body)?;
    let caller_max = body
        .get("max_tokens")
        .or_else(|| body.get("max_completion_tokens"))
        .and_then(Value::as_u64);
    let budget = thinking
        .as_ref()
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64);
    // Anthropic wants `max_tokens` above the thinking budget.
    let max = match (caller_max, budget) {
        (Some(m), _) => m,
        (None, Some(b)) if default_max <= b => b.saturating_add(THINKING_ANSWER_ROOM),
        (None, _) => default_max,
    };
    out.insert("max_tokens".into(), json!(max));
    let mut tools = tools(body);
    let mut choice = tool_choice(body)?;
    if let Some(t) = json_tool(body)? {
        // The JSON answer is forced through its tool: that cannot be combined with the caller's
        // own tools (their choice would be overridden) or with thinking (Anthropic forces no
        // tool while thinking).
        if tools.as_ref().is_some_and(|t| !t.is_empty()) {
            return Err(Error::bad_param(
                "response_format",
                "a JSON `response_format` with `tools` is not supported for Anthropic models",
            ));
        }
        if thinking.is_some() {
            return Err(Error::bad_param(
                "response_format",
                "a JSON `response_format` with thinking is not supported for Anthropic models",
            ));
        }
        tools = Some(vec![t]);
        choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
    }
    if let Some(t) = tools {
        out.insert("tools".into(), Value::Array(t));
    }
    if let Some(c) = choice {
        out.insert("tool_choice".into(), c);
    }
    if let Some(u) = user_id(body) {
        out.insert("metadata".into(), json!({"user_id": u}));
    }
    if let Some(t) = thinking {
        out.insert("thinking".into(), t);
    }
    Ok(())
}
