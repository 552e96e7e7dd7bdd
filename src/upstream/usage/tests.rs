//! Tests of the usage sanity rule: honest figures, lies, cache figures, the tree-less parser.

use super::*;
use serde_json::json;

fn bounds(cap: Option<u64>) -> Bounds {
    Bounds {
        prompt_estimate: 7,
        completion_cap: cap,
        embedding: false,
    }
}

fn pc(b: Billed) -> (u64, u64) {
    (b.prompt, b.completion)
}

fn bill(u: Value, cap: Option<u64>) -> (u64, u64) {
    pc(bill_all(u, cap))
}

fn bill_all(u: Value, cap: Option<u64>) -> Billed {
    billable(Some(Reported::of_value(&u)), &bounds(cap), || 5, &"t")
}

fn bill_bytes(body: &str, cap: Option<u64>) -> (u64, u64) {
    pc(bill_bytes_all(body, cap))
}

fn bill_bytes_all(body: &str, cap: Option<u64>) -> Billed {
    let u = serde_json::from_str::<UsageOnly>(body)
        .expect("parse")
        .usage
        .map(|r| r.0);
    billable(u, &bounds(cap), || 5, &"t")
}

fn billed(prompt: u64, completion: u64, cache_read: u64, cache_write: u64) -> Billed {
    Billed {
        prompt,
        completion,
        cache_read,
        cache_write,
    }
}

#[test]
fn cache_figures_are_read_as_litellm_reads_them_both_ways() {
    let cases = [
        // OpenAI: cached tokens in the details.
        (
            json!({"prompt_tokens": 100, "completion_tokens": 5,
                   "prompt_tokens_details": {"cached_tokens": 60}}),
            billed(100, 5, 60, 0),
        ),
        // LiteLLM's Anthropic shape: details and top-level figures.
        (
            json!({"prompt_tokens": 100, "completion_tokens": 5,
                   "prompt_tokens_details": {"cached_tokens": 30, "cache_creation_tokens": 20},
                   "cache_read_input_tokens": 30, "cache_creation_input_tokens": 20}),
            billed(100, 5, 30, 20),
        ),
        // `cache_write_tokens` wins over `cache_creation_tokens`.
        (
            json!({"prompt_tokens": 100, "completion_tokens": 5,
                   "prompt_tokens_details": {"cache_write_tokens": 7,
                                             "cache_creation_tokens": 9}}),
            billed(100, 5, 0, 7),
        ),
        // Top-level figures only.
        (
            json!({"prompt_tokens": 100, "completion_tokens": 5,
                   "cache_read_input_tokens": 10, "cache_creation_input_tokens": 4}),
            billed(100, 5, 10, 4),
        ),
        // Null details, null figures: none.
        (
            json!({"prompt_tokens": 100, "completion_tokens": 5,
                   "prompt_tokens_details": null, "cache_read_input_tokens": null}),
            billed(100, 5, 0, 0),
        ),
    ];
    for (u, want) in cases {
        assert_eq!(bill_all(u.clone(), None), want, "{u}");
        assert_eq!(
            bill_bytes_all(&json!({"usage": u}).to_string(), None),
            want,
            "bytes {u}"
        );
        assert_eq!(
            want.uncached_prompt(),
            want.prompt - want.cache_read - want.cache_write
        );
    }
}

#[test]
fn lying_cache_figures_are_bounded_by_the_prompt() {
    let cases = [
        // More cache reads than prompt: reads clamped to the prompt, no writes left.
        (
            json!({"prompt_tokens": 10, "completion_tokens": 1,
                   "prompt_tokens_details": {"cached_tokens": 500, "cache_creation_tokens": 9}}),
            billed(10, 1, 10, 0),
        ),
        // Writes clamped to what the reads left.
        (
            json!({"prompt_tokens": 10, "completion_tokens": 1,
                   "cache_read_input_tokens": 6, "cache_creation_input_tokens": 9}),
            billed(10, 1, 6, 4),
        ),
        // Invalid figures count 0.
        (
            json!({"prompt_tokens": 10, "completion_tokens": 1,
                   "prompt_tokens_details": {"cached_tokens": -3, "cache_creation_tokens": "x"}}),
            billed(10, 1, 0, 0),
        ),
        (
            json!({"prompt_tokens": 10, "completion_tokens": 1,
                   "prompt_tokens_details": {"cached_tokens": 1e300}}),
            billed(10, 1, 0, 0),
        ),
        // An invalid prompt is estimated (7): the cache figures are bounded by that.
        (
            json!({"prompt_tokens": -1, "completion_tokens": 1,
                   "prompt_tokens_details": {"cached_tokens": 9_000_000}}),
            billed(7, 1, 7, 0),
        ),
        // Details that are not an object have no figures.
        (
            json!({"prompt_tokens": 10, "completion_tokens": 1,
                   "prompt_tokens_details": [1, 2]}),
            billed(10, 1, 0, 0),
        ),
    ];
    for (u, want) in cases {
        assert_eq!(bill_all(u.clone(), None), want, "{u}");
        assert_eq!(
            bill_bytes_all(&json!({"usage": u}).to_string(), None),
            want,
            "bytes {u}"
        );
    }
}

#[test]
fn honest_figures_are_billed() {
    assert_eq!(
        bill(json!({"prompt_tokens": 10, "completion_tokens": 20}), None),
        (10, 20)
    );
    assert_eq!(
        bill(
            json!({"prompt_tokens": 10.0, "completion_tokens": 2e1}),
            None
        ),
        (10, 20)
    );
}

#[test]
fn lies_are_estimated_or_clamped_never_negative_or_huge() {
    let cases = [
        json!({"prompt_tokens": -5, "completion_tokens": -1}),
        json!({"prompt_tokens": "NaN", "completion_tokens": "Infinity"}),
        json!({"prompt_tokens": 1.5, "completion_tokens": true}),
        json!({"prompt_tokens": 1e300, "completion_tokens": u64::MAX}),
        json!({"prompt_tokens": null, "completion_tokens": [1]}),
        json!({}),
        json!("lots"),
        json!([1, 2]),
    ];
    for c in cases {
        assert_eq!(bill(c.clone(), None), (7, 5), "{c}");
    }
    // Over what the request allowed: clamped.
    assert_eq!(
        bill(
            json!({"prompt_tokens": 3, "completion_tokens": 9_000_000}),
            Some(100)
        ),
        (3, 100)
    );
    // A contradictory total is logged; the bounded figures are billed.
    assert_eq!(
        bill(
            json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 1}),
            None
        ),
        (3, 4)
    );
    // No usage at all: estimates.
    assert_eq!(pc(billable(None, &bounds(None), || 5, &"t")), (7, 5));
}

#[test]
fn the_streaming_parser_reads_the_same_figures() {
    let body = r#"{"id": "x", "choices": [{"message": {"content": "hi"}}],
        "usage": {"prompt_tokens": -5, "completion_tokens": 20, "total_tokens": 1e400}}"#;
    assert!(
        serde_json::from_str::<UsageOnly>(body).is_err(),
        "1e400 is not JSON"
    );
    let body = r#"{"id": "x", "usage": {"prompt_tokens": -5, "completion_tokens": 20,
        "extra": {"deep": [1, 2]}}, "choices": []}"#;
    assert_eq!(bill_bytes(body, None), (7, 20));
    assert_eq!(bill_bytes(r#"{"usage": "many"}"#, None), (7, 5));
    assert_eq!(bill_bytes(r#"{"usage": null}"#, None), (7, 5));
    assert_eq!(bill_bytes(r#"{"choices": []}"#, None), (7, 5));
}

#[test]
fn choice_text_is_counted_without_a_tree() {
    let body = r#"{"choices": [{"message": {"content": "héllo"}}, {"text": "abc"},
        {"delta": {"content": ["x"]}}, null, {"message": {"content": null}}]}"#;
    let c = serde_json::from_str::<ChoicesOnly>(body).expect("parse");
    assert_eq!(c.choices.map(|c| c.0), Some(8));
    let v: Value = serde_json::from_str(body).expect("json");
    assert_eq!(completion_chars(&v), 8);
    assert_eq!(tokens_of_chars(0), 0);
    assert_eq!(tokens_of_chars(1), 1);
    assert_eq!(tokens_of_chars(8), 2);
}

#[test]
fn embeddings_bill_no_completion() {
    let b = Bounds {
        prompt_estimate: 7,
        completion_cap: None,
        embedding: true,
    };
    let u = Reported::of_value(&json!({"prompt_tokens": 10, "completion_tokens": 99}));
    assert_eq!(pc(billable(Some(u), &b, || 5, &"t")), (10, 0));
}
