//! What a model call's `user` field does (issue 15 item 4): it names an end user whose block,
//! budget (its own `max_budget`, else `litellm_settings.max_end_user_budget`) and rate limits
//! apply on top of the key's, whose spend is recorded (an unknown end user is created with its
//! first call) and who appears in the spend log. A refused call writes nothing.

use crate::common::*;
use serde_json::{json, Value};

fn call_as(user: &str, model: &str) -> Value {
    let mut b = chat_body(model);
    b["user"] = json!(user);
    b
}

fn ask(s: &Server, key: &str, user: &str, model: &str) -> Resp {
    s.post("/v1/chat/completions", key, call_as(user, model))
}

fn end_user_spend(s: &Server, id: &str) -> f64 {
    s.value("SELECT spend FROM end_users WHERE id = ?1", [id])
}

#[test]
fn a_blocked_end_user_is_refused_in_litellms_words_and_unblocking_lets_them_in() {
    let w = World::new();
    let key = key_for(&w, json!({}));
    w.expect(
        AS_MASTER,
        "/end_user/block",
        json!({"user_ids": ["bad-cust"]}),
        200,
    );
    let out = run_cases(
        &w,
        &[
            Case::post_key(&key, "/v1/chat/completions", call_as("bad-cust", "A"), 400),
            // The master key too (LiteLLM checks end users before keys).
            Case::post(
                AS_MASTER,
                "/v1/chat/completions",
                call_as("bad-cust", "A"),
                400,
            ),
            Case::post_key(
                &key,
                "/v1/completions",
                json!({"model": "A", "prompt": "hi", "user": "bad-cust"}),
                400,
            ),
        ],
    );
    assert_eq!(
        out[0]["error"]["message"],
        "User blocked from making LLM API Calls. User=bad-cust"
    );
    assert_eq!(out[0]["error"]["type"], "invalid_request_error");
    // Another end user, and no end user at all, are not affected.
    assert_eq!(ask(&w, &key, "good-cust", "A").status, 200);
    assert_eq!(chat(&w, &key, "A").status, 200);
    w.expect(
        AS_MASTER,
        "/end_user/unblock",
        json!({"user_ids": ["bad-cust"]}),
        200,
    );
    assert_eq!(ask(&w, &key, "bad-cust", "A").status, 200);
}

#[test]
fn an_end_users_budget_refuses_once_spent_and_spend_is_recorded_and_logged() {
    let s = Server::start();
    let key = key_for(&s, json!({}));
    s.admin(
        "/end_user/new",
        json!({"user_id": "cust", "max_budget": 0.0001}),
    );
    let r = ask(&s, &key, "cust", "A");
    assert_eq!(r.status, 200, "{}", r.text());
    // The spend is the end user's, and the spend log names them.
    let log = spend_log_of(&s, &r);
    assert_eq!(log["end_user"], "cust");
    assert_eq!(log["metadata"]["user_api_key_end_user_id"], "cust");
    let spent = log["spend"].as_f64().unwrap();
    assert!(
        spent > 0.0001,
        "one call of A costs more than the budget: {spent}"
    );
    assert!((end_user_spend(&s, "cust") - spent).abs() < 1e-12);
    // Spent: refused, in LiteLLM's words, from any key, and nothing is written.
    let w = World::on(s);
    let other = key_for(&w, json!({}));
    let out = run_cases(
        &w,
        &[
            Case::post_key(&key, "/v1/chat/completions", call_as("cust", "A"), 422),
            Case::post_key(&other, "/v1/chat/completions", call_as("cust", "B"), 422),
            Case::post(AS_MASTER, "/v1/chat/completions", call_as("cust", "A"), 422),
        ],
    );
    let msg = out[0]["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "ExceededBudget: End User=cust over budget. Spend={spent}"
        )),
        "{msg}"
    );
    assert!(msg.ends_with("Budget=0.0001"), "{msg}");
    assert_eq!(out[0]["error"]["type"], "budget_exceeded");
    // The key itself still works for other end users.
    assert_eq!(ask(&w, &key, "someone-else", "A").status, 200);
    // A raised budget lets them in again.
    w.expect(
        AS_MASTER,
        "/end_user/update",
        json!({"user_id": "cust", "max_budget": 10}),
        200,
    );
    assert_eq!(ask(&w, &key, "cust", "A").status, 200);
}

#[test]
fn unknown_end_users_are_created_on_their_first_call_and_the_default_budget_applies() {
    let cfg = TEST_CONFIG.replace(
        "general_settings:",
        "litellm_settings:\n  max_end_user_budget: 0.0001\ngeneral_settings:",
    );
    let s = Server::start_with(&cfg, &[]);
    let key = key_for(&s, json!({}));
    // Unpriced: the row is made with no spend.
    assert_eq!(ask(&s, &key, "free-rider", "B").status, 200);
    assert_eq!(
        s.count("SELECT count(*) FROM end_users WHERE id = 'free-rider' AND spend = 0"),
        1
    );
    // Priced: the first call is admitted (nothing spent yet), the next refused by the default.
    assert_eq!(ask(&s, &key, "newcomer", "A").status, 200);
    assert!(end_user_spend(&s, "newcomer") > 0.0001);
    let r = ask(&s, &key, "newcomer", "A");
    assert_error_says(&r, 422, "End User=newcomer over budget");
    assert!(r.text().contains("Budget=0.0001"), "{}", r.text());
    // Its own max_budget wins over the default.
    s.admin(
        "/end_user/new",
        json!({"user_id": "vip", "max_budget": 100}),
    );
    for _ in 0..3 {
        assert_eq!(ask(&s, &key, "vip", "A").status, 200);
    }
    // A call naming nobody has no end-user budget, and makes no row.
    assert_eq!(chat(&s, &key, "A").status, 200);
    assert_eq!(s.count("SELECT count(*) FROM end_users"), 3);
}

#[test]
fn an_end_users_rate_limit_applies_across_keys_and_the_default_budget_row_to_unknown_ones() {
    let cfg = TEST_CONFIG.replace(
        "general_settings:",
        "litellm_settings:\n  max_end_user_budget_id: end-user-tier\ngeneral_settings:",
    );
    let s = Server::start_with(&cfg, &[]);
    s.admin(
        "/budget/new",
        json!({"budget_id": "end-user-tier", "rpm_limit": 2}),
    );
    s.admin("/end_user/new", json!({"user_id": "slow", "rpm_limit": 1}));
    let (k1, k2) = (key_for(&s, json!({})), key_for(&s, json!({})));
    assert_eq!(ask(&s, &k1, "slow", "B").status, 200);
    let r = ask(&s, &k2, "slow", "B");
    let v = assert_error_says(&r, 429, "End User");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rpm limit 1"),
        "{v}"
    );
    assert!(r.header("retry-after").is_some());
    // Unknown end users get the default row's limit: 2 a minute.
    assert_eq!(ask(&s, &k1, "anon-1", "B").status, 200);
    assert_eq!(ask(&s, &k2, "anon-1", "B").status, 200);
    assert_error(&ask(&s, &k1, "anon-1", "B"), 429);
    assert_eq!(ask(&s, &k1, "anon-2", "B").status, 200);
    // The key itself is not limited.
    assert_eq!(chat(&s, &k1, "B").status, 200);
}

#[test]
fn an_end_users_budget_resets_with_its_budget_row() {
    let s = Server::start_with_env(TEST_CONFIG, &[], &[("LITEGATE_BUDGET_RESET_SECS", "0.2")]);
    let key = key_for(&s, json!({}));
    let v = s.admin(
        "/end_user/new",
        json!({"user_id": "monthly", "max_budget": 0.0001, "budget_duration": "30d"}),
    );
    let budget = v["budget_id"].as_str().unwrap().to_string();
    assert_eq!(ask(&s, &key, "monthly", "A").status, 200);
    assert_error(&ask(&s, &key, "monthly", "A"), 422);
    run_sql(
        &s,
        "UPDATE budgets SET budget_reset_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
        &[litegate::db::sql::Arg::from(&budget)],
    );
    until("the end user's spend is reset", 10, || {
        end_user_spend(&s, "monthly") == 0.0
    });
    assert_eq!(ask(&s, &key, "monthly", "A").status, 200);
}

#[test]
fn a_bad_user_field_is_a_400_naming_it_and_writes_nothing() {
    let w = World::new();
    let key = key_for(&w, json!({}));
    let cases: Vec<Case> = [
        json!(7),
        json!("x".repeat(257)),
        json!("a\r\nb"),
        json!(["a"]),
    ]
    .into_iter()
    .map(|user| {
        let mut b = chat_body("A");
        b["user"] = user;
        Case::post_key(&key, "/v1/chat/completions", b, 400).param("user")
    })
    .collect();
    run_cases(&w, &cases);
    assert_eq!(w.count("SELECT count(*) FROM end_users"), 0);
    // 256 characters is an id like any other.
    let long = "y".repeat(256);
    assert_eq!(ask(&w, &key, &long, "B").status, 200);
    assert_eq!(
        count_p(&w, "SELECT count(*) FROM end_users WHERE id = ?1", &[&long]),
        1
    );
}
