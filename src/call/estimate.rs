//! What a call will cost, guessed before it runs (for the budget reservation) and counted
//! after it ran when an upstream reports no usage: tokens from characters, cost from the
//! deployment's prices (API.md §7). Leaves what to bill when an upstream does report usage to
//! `upstream::usage::billable`.

use super::body::CallBody;
use super::CallType;
use crate::config::Deployment;
use crate::upstream::usage;
use serde_json::Value;

/// Completion tokens assumed for the budget reservation when the caller sets no `max_tokens`.
const DEFAULT_COMPLETION_ESTIMATE: u64 = 256;

/// Rough token count for the mock provider and for upstreams that report no usage: one token
/// per 4 characters, at least 1 for non-empty text.
pub fn count_tokens(s: &str) -> u64 {
    usage::tokens_of_chars(s.chars().count() as u64)
}

/// The text of a call's input (or of one embedding input): strings joined by spaces, the
/// `content`/`text` of message objects.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(text_of).collect::<Vec<_>>().join(" "),
        Value::Object(o) => o
            .get("content")
            .or_else(|| o.get("text"))
            .map(text_of)
            .unwrap_or_default(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Spend = prompt tokens × input price + completion tokens × output price (0 when unpriced).
pub fn cost(dep: &Deployment, prompt: u64, completion: u64) -> f64 {
    prompt as f64 * dep.input_cost_per_token + completion as f64 * dep.output_cost_per_token
}

/// Before the call: (prompt tokens, cost to reserve). The completion is assumed to use all of
/// `max_tokens` (or a default); an embedding has none.
pub fn before_call(dep: &Deployment, kind: CallType, body: &CallBody) -> (u64, f64) {
    let prompt = if kind == CallType::Messages {
        messages_prompt(&body.fields)
    } else {
        count_tokens(&text_of(body.input(kind)))
    };
    let completion = if kind == CallType::Embedding {
        0
    } else {
        body.max_tokens.unwrap_or(DEFAULT_COMPLETION_ESTIMATE)
    };
    (prompt, cost(dep, prompt, completion))
}

/// The prompt tokens of an Anthropic Messages body: its messages, `system` and `tools` (their
/// JSON counted as text: a coding agent sends tens of tool schemas with every call).
pub fn messages_prompt(fields: &serde_json::Map<String, Value>) -> u64 {
    let null = Value::Null;
    let tools = fields
        .get("tools")
        .filter(|t| !t.is_null())
        .map_or(0, |t| usage::tokens_of_chars(t.to_string().len() as u64));
    count_tokens(&text_of(fields.get("messages").unwrap_or(&null)))
        .saturating_add(count_tokens(&text_of(
            fields.get("system").unwrap_or(&null),
        )))
        .saturating_add(tools)
}
