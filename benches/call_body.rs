//! What the model-call body check (issue 11, `call::body::check`) costs on the hot path,
//! next to the JSON parse every call already does; and reading an upstream answer's `usage`
//! through `upstream::usage` (typed, checked) against the `Value` it was before.
//! Run: `cargo bench --bench call_body`.

use litegate::call::body as call_body;
use litegate::call::CallType;
use litegate::upstream::usage;
use serde_json::{json, Map, Value};
use std::hint::black_box;
use std::time::Instant;

fn body(turns: usize) -> Vec<u8> {
    let msgs: Vec<Value> = (0..turns)
        .map(|i| {
            json!({"role": if i % 2 == 0 { "user" } else { "assistant" },
                   "content": "The quick brown fox jumps over the lazy dog. ".repeat(4)})
        })
        .collect();
    json!({"model": "gpt-4o", "messages": msgs, "stream": false, "max_tokens": 256,
           "temperature": 0.7, "stream_options": {"include_usage": true}})
    .to_string()
    .into_bytes()
}

/// Nanoseconds per run of `f`, the best of 5 rounds of `n`.
fn ns(n: u32, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for turns in [1, 10, 100] {
        let bytes = body(turns);
        let parsed: Map<String, Value> = serde_json::from_slice(&bytes)?;
        let n = 200_000 / turns as u32;
        let parse = ns(n, || {
            black_box(serde_json::from_slice::<Map<String, Value>>(black_box(&bytes)).ok());
        });
        let check = ns(n, || {
            black_box(call_body::check(black_box(&parsed), CallType::Chat).ok());
        });
        println!(
            "{turns:>3} messages ({:>6} bytes): parse {parse:>9.0} ns, check {check:>6.0} ns ({:.1} % of the parse)",
            bytes.len(),
            100.0 * check / parse
        );
    }
    let answer = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
        "model": "gpt-4o", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "The quick brown fox. ".repeat(20)}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 100, "total_tokens": 220}})
    .to_string()
    .into_bytes();
    #[derive(serde::Deserialize)]
    struct AsValue {
        usage: Option<Value>,
    }
    let before = ns(200_000, || {
        let u = serde_json::from_slice::<AsValue>(black_box(&answer)).ok();
        let pc = u.and_then(|u| u.usage).map(|u| {
            (
                u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
                u.get("completion_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            )
        });
        black_box(pc);
    });
    let bounds = usage::Bounds {
        prompt_estimate: 100,
        completion_cap: Some(256),
        embedding: false,
    };
    let now = ns(200_000, || {
        let u = serde_json::from_slice::<usage::UsageOnly>(black_box(&answer)).ok();
        let r = u.and_then(|u| u.usage).map(|r| r.0);
        black_box(usage::billable(r, &bounds, || 0, &"bench"));
    });
    println!(
        "usage of a {}-byte answer: as a Value {before:.0} ns, typed and checked {now:.0} ns",
        answer.len()
    );
    Ok(())
}
