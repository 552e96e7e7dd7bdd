//! `general_settings.budget_enforcement: strict` (issue 16 item 2, README "Budgets that never
//! overshoot"): a call is admitted only if its worst case (the body's bytes as prompt tokens at
//! the dearest prompt price + `max_tokens` × `n` at the output price) fits every budget after
//! what calls in flight reserved; settlement bills at most that worst case. On SQLite here (and
//! on PostgreSQL under `LITEGATE_TEST_PG`); several PostgreSQL instances: `multi_instance.rs`.

use crate::common::cluster::try_post;
use crate::common::*;
use crate::upstream::{self, Fake, CALL_COST, IN_COST, OUT_COST};
use serde_json::{json, Value};

/// The fake upstream's deployments, `limited` (the `json` mode with a known output limit of
/// 50), strict enforcement.
fn strict_config(fake: &Fake) -> String {
    let limited = format!(
        "  - model_name: limited\n    litellm_params: {{ model: openai/json, api_base: \"{}\", \
         api_key: k, input_cost_per_token: {IN_COST}, output_cost_per_token: {OUT_COST} }}\n    \
         model_info: {{ max_output_tokens: 50 }}\n",
        fake.api_base()
    );
    upstream::config(fake, &limited) + "  budget_enforcement: strict\n"
}

fn token(raw: &str) -> String {
    litegate::auth::hash_key(raw)
}

fn key_spend(s: &Server, raw: &str) -> f64 {
    s.value(
        "SELECT spend FROM api_keys WHERE token = ?1",
        [token(raw).as_str()],
    )
}

fn log_rows(s: &Server, raw: &str) -> i64 {
    count_p(
        s,
        "SELECT count(*) FROM spend_logs WHERE api_key = ?1",
        &[&token(raw)],
    )
}

/// The worst case of `body`: its bytes at the input price + `max_tokens` at the output price.
fn worst(body: &Value, max_tokens: u64) -> f64 {
    serde_json::to_vec(body).unwrap().len() as f64 * IN_COST + max_tokens as f64 * OUT_COST
}

/// One caller thread per entry of `addrs`, all released at once, each calling
/// `/v1/chat/completions` with `key` and `body` on each of its addresses in turn. Every answer
/// is a 200 or a 422 saying the budget would be (or has been) exceeded. Returns (status, call
/// id, text) of every call. Shared with `multi_instance.rs`.
pub fn parallel_strict_calls(
    addrs: &[Vec<String>],
    key: &str,
    body: &Value,
) -> Vec<(u16, Option<String>, String)> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(addrs.len()));
    let callers: Vec<_> = addrs
        .iter()
        .map(|mine| {
            let (mine, key, body) = (mine.clone(), key.to_string(), body.clone());
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                mine.iter()
                    .map(|addr| {
                        let r =
                            try_post(addr, "/v1/chat/completions", &key, &body).expect("an answer");
                        let id = r.header("x-litellm-call-id").map(str::to_string);
                        (r.status, id, r.text())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(u16, Option<String>, String)> = callers
        .into_iter()
        .flat_map(|h| h.join().expect("caller"))
        .collect();
    for (status, _, text) in &results {
        assert!(
            *status == 200
                || (*status == 422
                    && (text.contains("would be exceeded") || text.contains("has been exceeded"))),
            "{status} {text}"
        );
    }
    results
}

/// 200 callers at once, each making 5 calls (1000 in all) on a key with a budget of 5.0: each
/// call costs 0.05 (10 + 20 tokens) and reserves its worst case (~0.13). Recorded spend never
/// passes the budget, each answered call is recorded exactly once, and at the end what remains
/// is less than one more call's worst case (the budget was used, not just guarded).
#[test]
fn strict_budget_never_overshoots_under_200_parallel_callers() {
    let fake = Fake::start();
    let s = Server::start_with(&strict_config(&fake), &[]);
    let max = 5.0;
    let key = key_for(&s, json!({"max_budget": max}));
    let body = json!({"model": "lag", "max_tokens": 20,
                      "messages": [{"role": "user", "content": "hi"}]});
    let w = worst(&body, 20);
    let addrs = vec![vec![s.addr.clone(); 5]; 200];
    let results = parallel_strict_calls(&addrs, &key, &body);
    let ok: Vec<&String> = results
        .iter()
        .filter(|(st, _, _)| *st == 200)
        .map(|(_, id, _)| id.as_ref().expect("a 200 has its call id"))
        .collect();
    let n = ok.len();
    let spend = key_spend(&s, &key);
    eprintln!(
        "strict, SQLite or one PostgreSQL instance: 200 callers x 5 calls: {n} answered, {} \
         refused; recorded spend {spend:.6} of max_budget {max} (worst case per call {w:.3})",
        results.len() - n
    );
    assert!(
        spend <= max,
        "recorded spend {spend} passed max_budget {max}"
    );
    assert_eq!(
        log_rows(&s, &key),
        n as i64,
        "one spend log row per answered call"
    );
    for id in &ok {
        assert_eq!(
            count_p(
                &s,
                "SELECT count(*) FROM spend_logs WHERE request_id = ?1",
                &[id]
            ),
            1
        );
    }
    assert!(
        (spend - n as f64 * CALL_COST).abs() < 1e-9,
        "{spend} for {n}"
    );
    // Calls one at a time now: each is admitted while its worst case fits, then refused.
    let mut more = 0;
    loop {
        let r = s.post("/v1/chat/completions", &key, body.clone());
        if r.status == 422 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        more += 1;
        assert!(more < 100);
    }
    let spend = key_spend(&s, &key);
    assert!(spend <= max, "{spend}");
    assert!(
        max - spend < w,
        "the budget is used to within one worst case: {spend}"
    );
}

/// The refusal names the budget, the worst case and what remains, and writes nothing; the
/// budget's default behaviour (LiteLLM's: admit while spend < max) would have admitted it.
#[test]
fn a_call_whose_worst_case_does_not_fit_is_refused_with_the_figures() {
    let fake = Fake::start();
    let s = Server::start_with(&strict_config(&fake), &[]);
    let key = key_for(&s, json!({"max_budget": 0.1}));
    let body = json!({"model": "json", "max_tokens": 20,
                      "messages": [{"role": "user", "content": "hi"}]});
    assert!(worst(&body, 20) > 0.1);
    let before = snapshot(&s);
    let r = s.post("/v1/chat/completions", &key, body);
    let v = assert_error_says(&r, 422, "Budget would be exceeded! Key=");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("Max budget: 0.1"), "{msg}");
    assert!(msg.contains("worst-case cost 0.1"), "{msg}");
    assert!(msg.contains("0.10000000 that remains"), "{msg}");
    assert_eq!(snapshot(&s), before, "a refusal writes nothing");
    assert_eq!(fake.count(), 0, "nothing went upstream");
    // A smaller call fits.
    let small =
        json!({"model": "json", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]});
    assert!(worst(&small, 1) < 0.1);
    let r = s.post("/v1/chat/completions", &key, small.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    // A team's budget, by the same rule, for a key with none of its own.
    let team = s.admin_id("/team/new", json!({"max_budget": 0.1}), "team_id");
    let member = key_for(&s, json!({"team_id": team}));
    let before = snapshot(&s);
    let r = s.post("/v1/chat/completions", &member, body_big());
    assert_error_says(&r, 422, &format!("Budget would be exceeded! Team={team}"));
    assert_eq!(snapshot(&s), before);
    let r = s.post("/v1/chat/completions", &member, small);
    assert_eq!(r.status, 200, "{}", r.text());
}

fn body_big() -> Value {
    json!({"model": "json", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})
}

/// Without `max_tokens` the model's output limit bounds the completion and is sent upstream as
/// `max_tokens` (only then are the bytes changed); a priced model with no known limit needs
/// `max_tokens` (400, nothing written); keys without a budget are not touched.
#[test]
fn the_output_limit_is_sent_as_max_tokens_when_unset() {
    let fake = Fake::start();
    let s = Server::start_with(&strict_config(&fake), &[]);
    let key = key_for(&s, json!({"max_budget": 10}));
    let r = chat(&s, &key, "limited");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fake.last().body["max_tokens"], 50);
    // With max_tokens, the caller's bytes go upstream as they came.
    let raw = br#"{"model":"json","messages":[{"role":"user","content":"hi"}],"max_tokens":7}"#;
    let r = s.request("POST", "/v1/chat/completions", Some(&key), Some(raw), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fake.last().raw, raw.to_vec());
    // No known output limit, priced output: refused before anything is reserved or sent.
    let sent = fake.count();
    let before = snapshot(&s);
    let r = chat(&s, &key, "json");
    let v = assert_error_says(&r, 400, "no known output limit");
    assert_eq!(v["error"]["param"], "max_tokens");
    assert_eq!(snapshot(&s), before);
    assert_eq!(fake.count(), sent);
    // A key without a budget: nothing to bound, the body goes unchanged.
    let free = key_for(&s, json!({}));
    let r = chat(&s, &free, "limited");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(fake.last().body.get("max_tokens").is_none());
}

/// Usage that lies upward is billed at most the worst case reserved: 5000 completion tokens
/// for `max_tokens` 20 are billed 20; 100 prompt tokens for a body of fewer bytes are billed as
/// many tokens as the body has bytes (the prompt bound); streams too.
#[test]
fn billed_usage_is_clamped_to_the_worst_case() {
    let fake = Fake::start();
    let s = Server::start_with(&strict_config(&fake), &[]);
    let key = key_for(&s, json!({"max_budget": 10}));
    for stream in [false, true] {
        let body = json!({"model": "lie_over", "max_tokens": 20, "stream": stream,
                          "messages": [{"role": "user", "content": "hi"}]});
        let r = s.post("/v1/chat/completions", &key, body);
        assert_eq!(r.status, 200, "{}", r.text());
        let id = r.header("x-litellm-call-id").expect("call id").to_string();
        let completion: i64 = s.value(
            "SELECT completion_tokens FROM spend_logs WHERE request_id = ?1",
            [id.as_str()],
        );
        assert_eq!(completion, 20, "stream: {stream}");
    }
    // `cache_ok` reports 100 prompt tokens (60 cached); the body has fewer bytes than that.
    let body = json!({"model": "cache_ok", "max_tokens": 20,
                      "messages": [{"role": "user", "content": "x"}]});
    let bytes = serde_json::to_vec(&body).unwrap().len() as i64;
    assert!(bytes < 100);
    let r = s.post("/v1/chat/completions", &key, body);
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.header("x-litellm-call-id").expect("call id").to_string();
    let prompt: i64 = s.value(
        "SELECT prompt_tokens FROM spend_logs WHERE request_id = ?1",
        [id.as_str()],
    );
    assert_eq!(prompt, bytes);
    assert!(
        s.log().contains("budget_enforcement: strict"),
        "the clamp is logged"
    );
}

/// The default (LiteLLM's behaviour) is unchanged: a call is admitted while spend < max, and
/// nothing is added to the body.
#[test]
fn default_enforcement_is_unchanged() {
    let fake = Fake::start();
    let s = Server::start_with(&upstream::config(&fake, ""), &[]);
    let key = key_for(&s, json!({"max_budget": 0.1}));
    let body = json!({"model": "json", "messages": [{"role": "user", "content": "hi"}]});
    let r = s.post("/v1/chat/completions", &key, body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(fake.last().body.get("max_tokens").is_none());
}
