//! What a call will cost, guessed before it runs (for the budget reservation) and counted
//! after it ran when an upstream reports no usage: tokens from characters, cost from the
//! deployment's prices (API.md §7). Leaves what to bill when an upstream does report usage to
//! `upstream::usage::billable`.

use super::body::CallBody;
use super::CallType;
use crate::config::Deployment;
use crate::upstream::usage;
use serde_json::Value;

/// The characters of `text_of(v)`, counted without building the text (issue 17: the joined
/// copy of every message was made only to be counted).
pub fn chars_of(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(a) => {
            let spaces = a.len().saturating_sub(1) as u64;
            a.iter().map(chars_of).sum::<u64>() + spaces
        }
        Value::Object(o) => o
            .get("content")
            .or_else(|| o.get("text"))
            .map_or(0, chars_of),
        Value::Null => 0,
        other => other.to_string().chars().count() as u64,
    }
}

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

/// Spend of a settled call, as LiteLLM's `generic_cost_per_token` computes it: uncached prompt
/// tokens × input price + cache reads × `cache_read_input_token_cost` + cache writes ×
/// `cache_creation_input_token_cost` + completion × output price. A cache price the deployment's
/// `model_info` does not give (or gives as something other than a non-negative number) is the
/// input price, as in LiteLLM. Without cache tokens this is `cost`.
pub fn cost_of(dep: &Deployment, b: &usage::Billed) -> f64 {
    if b.cache_read == 0 && b.cache_write == 0 {
        return cost(dep, b.prompt, b.completion);
    }
    let price = |k: &str| {
        dep.model_info
            .get(k)
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite() && *p >= 0.0)
            .unwrap_or(dep.input_cost_per_token)
    };
    cost(dep, b.uncached_prompt(), b.completion)
        + b.cache_read as f64 * price("cache_read_input_token_cost")
        + b.cache_write as f64 * price("cache_creation_input_token_cost")
}

/// Before the call: (prompt tokens, cost to reserve). The completion is assumed to use all of
/// `max_tokens` (or a default); an embedding has none.
pub fn before_call(dep: &Deployment, kind: CallType, body: &CallBody) -> (u64, f64) {
    let prompt = if kind == CallType::Messages {
        messages_prompt(&body.fields)
    } else {
        usage::tokens_of_chars(chars_of(body.input(kind)))
    };
    let completion = if kind == CallType::Embedding {
        0
    } else {
        body.max_tokens.unwrap_or(DEFAULT_COMPLETION_ESTIMATE)
    };
    (prompt, cost(dep, prompt, completion))
}

/// A call's worst case under strict enforcement (README "Budgets that never overshoot"): the
/// most tokens it can be billed for and what they cost. Settlement clamps the billed figures to
/// these (`Call::settle`), so a call's recorded spend never passes the `cost` it reserved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorstCase {
    /// The prompt bound: the request body's bytes. Tokenizers in use (byte-level BPE) make at
    /// least one byte of every token, and everything a provider counts as prompt (messages,
    /// system, tools, names, a message's framing) is in the body. Not bounded by this: images
    /// given by URL (their tokens come from their pixels); billed at most this.
    pub prompt: u64,
    /// `max_tokens` × `n` (0 for embeddings).
    pub completion: u64,
    pub cost: f64,
}

/// The worst case of a call whose body is `body_bytes` long and may produce `completion`
/// tokens: every prompt token at the dearest prompt price (input, cache read or cache write),
/// every completion token at the output price.
pub fn worst_case(dep: &Deployment, body_bytes: usize, completion: u64) -> WorstCase {
    let prompt = body_bytes as u64;
    let cache = |k: &str| {
        dep.model_info
            .get(k)
            .and_then(Value::as_f64)
            .filter(|p| p.is_finite() && *p >= 0.0)
            .unwrap_or(0.0)
    };
    let prompt_price = dep
        .input_cost_per_token
        .max(cache("cache_read_input_token_cost"))
        .max(cache("cache_creation_input_token_cost"));
    WorstCase {
        prompt,
        completion,
        cost: prompt as f64 * prompt_price + completion as f64 * dep.output_cost_per_token,
    }
}

/// The completion limit sent upstream when a strict call gives no `max_tokens`: the
/// deployment's `model_info.max_output_tokens` (from the price table, or the config), else
/// its `max_tokens`. `None`: no limit is known.
pub fn output_limit(dep: &Deployment) -> Option<u64> {
    ["max_output_tokens", "max_tokens"]
        .iter()
        .find_map(|f| dep.model_info.get(*f).and_then(Value::as_u64))
        .filter(|n| *n > 0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::usage::Billed;
    use proptest::prelude::*;
    use serde_json::json;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (-1e6f64..1e6).prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(
                    (
                        prop_oneof![Just("content"), Just("text"), Just("role"), Just("x")],
                        inner
                    ),
                    0..4
                )
                .prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        /// Counting without building the text gives the characters of the text.
        #[test]
        fn chars_of_counts_the_text(v in value()) {
            prop_assert_eq!(chars_of(&v), text_of(&v).chars().count() as u64);
        }
    }

    fn dep(info: Value) -> Deployment {
        let mut d = crate::access::catalog::tests::dep("m", &[]);
        d.input_cost_per_token = 3e-6;
        d.output_cost_per_token = 15e-6;
        d.model_info = info.as_object().cloned().unwrap_or_default();
        d
    }

    fn b(prompt: u64, completion: u64, cache_read: u64, cache_write: u64) -> Billed {
        Billed {
            prompt,
            completion,
            cache_read,
            cache_write,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn cache_tokens_are_charged_at_cache_prices_as_litellm_does() {
        let d = dep(json!({"cache_read_input_token_cost": 3e-7,
                           "cache_creation_input_token_cost": 3.75e-6}));
        // 1000 prompt = 600 uncached + 300 read + 100 written; 50 completion.
        let want = 600.0 * 3e-6 + 300.0 * 3e-7 + 100.0 * 3.75e-6 + 50.0 * 15e-6;
        assert!(close(cost_of(&d, &b(1000, 50, 300, 100)), want));
        // No cache tokens: the plain formula.
        assert!(close(cost_of(&d, &b(1000, 50, 0, 0)), cost(&d, 1000, 50)));
    }

    #[test]
    fn the_worst_case_bounds_what_settlement_can_charge() {
        let d = dep(json!({"cache_read_input_token_cost": 3e-7,
                           "cache_creation_input_token_cost": 3.75e-6}));
        let w = worst_case(&d, 1000, 50);
        assert_eq!((w.prompt, w.completion), (1000, 50));
        assert!(close(w.cost, 1000.0 * 3.75e-6 + 50.0 * 15e-6));
        // However the prompt splits into cached and uncached tokens, the cost is within.
        for (r, wr) in [(0, 0), (1000, 0), (0, 1000), (300, 700), (500, 100)] {
            assert!(cost_of(&d, &b(1000, 50, r, wr)) <= w.cost + 1e-15);
        }
        assert_eq!(
            output_limit(&dep(json!({"max_output_tokens": 8192}))),
            Some(8192)
        );
        assert_eq!(output_limit(&dep(json!({"max_tokens": 0}))), None);
        assert_eq!(output_limit(&dep(json!({}))), None);
    }

    #[test]
    fn an_unknown_cache_price_is_the_input_price() {
        let d = dep(json!({"cache_read_input_token_cost": "cheap",
                           "cache_creation_input_token_cost": -1.0}));
        assert!(close(
            cost_of(&d, &b(1000, 50, 300, 100)),
            cost(&d, 1000, 50)
        ));
        let d = dep(json!({"cache_read_input_token_cost": 0.0}));
        // An explicit 0 is a price: the reads are free, the write is at the input price.
        let want = 700.0 * 3e-6 + 50.0 * 15e-6;
        assert!(close(cost_of(&d, &b(1000, 50, 300, 0)), want));
    }
}
