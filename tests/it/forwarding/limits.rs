//! Rate limits and upstream faults.

use super::*;

// ---------------------------------------------------------------------------------------------
// Rate limits

fn assert_429(r: &Resp, level: &str) {
    let v = assert_error(r, 429);
    assert_eq!(v["error"]["type"], "rate_limit_error");
    let ra: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("retry-after is seconds");
    assert!((1..=60).contains(&ra), "{ra}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains(&format!("for {level}:")), "{m}");
}

#[test]
fn rpm_limit_refuses_the_third_call_with_retry_after() {
    let (f, s) = setup();
    let k = key(&s, json!({"rpm_limit": 2}));
    assert_eq!(chat(&s, &k, "json").status, 200);
    assert_eq!(chat(&s, &k, "json").status, 200);
    assert_429(&chat(&s, &k, "json"), "Key");
    assert_eq!(f.count(), 2);
    assert_eq!(s.count("SELECT count(*) FROM spend_logs"), 2);
}

#[test]
fn parallel_slot_is_released_on_every_exit_path() {
    let (f, s) = setup();
    let k = key(&s, json!({"max_parallel_requests": 1}));

    // A stream in progress holds the slot.
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("gated"));
    assert_eq!(st.status, 200);
    st.next_data().expect("first chunk");
    assert_429(&chat(&s, &k, "json"), "Key");
    f.open_gate();
    assert_eq!(st.rest().last().unwrap(), "[DONE]");
    // After success.
    assert_eq!(chat(&s, &k, "json").status, 200);
    // After an upstream error.
    assert_error(&chat(&s, &k, "fail500"), 500);
    assert_eq!(chat(&s, &k, "json").status, 200);
    // After a timeout.
    assert_error(&chat(&s, &k, "slow"), 504);
    assert_eq!(chat(&s, &k, "json").status, 200);
    // After a client disconnect mid-stream.
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("endless"));
    st.next_data().expect("first chunk");
    assert_429(&chat(&s, &k, "json"), "Key");
    drop(st);
    until("the slot is released after the client left", 10, || {
        chat(&s, &k, "json").status == 200
    });
}

#[test]
fn a_refusal_by_one_limit_consumes_no_other_quota() {
    let (f, s) = setup();
    let team = s.admin_id("/team/new", json!({"max_parallel_requests": 1}), "team_id");
    let k = key(&s, json!({"team_id": team, "rpm_limit": 3}));
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("gated"));
    st.next_data().expect("first chunk");
    for _ in 0..3 {
        assert_429(&chat(&s, &k, "json"), "Team");
    }
    f.open_gate();
    st.rest();
    // One of three requests used: the refusals took nothing from the key's rpm.
    assert_eq!(chat(&s, &k, "json").status, 200);
    assert_eq!(chat(&s, &k, "json").status, 200);
    assert_429(&chat(&s, &k, "json"), "Key");
}

#[test]
fn team_org_and_user_limits() {
    let (_f, s) = setup();
    let org = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "o", "rpm_limit": 1}),
        "organization_id",
    );
    let t_org = s.admin_id("/team/new", json!({"organization_id": org}), "team_id");
    let (a, b) = (
        key(&s, json!({"team_id": t_org})),
        key(&s, json!({"team_id": t_org})),
    );
    assert_eq!(chat(&s, &a, "json").status, 200);
    assert_429(&chat(&s, &b, "json"), "Organization");

    let team = s.admin_id("/team/new", json!({"rpm_limit": 1}), "team_id");
    let (a, b) = (
        key(&s, json!({"team_id": team})),
        key(&s, json!({"team_id": team})),
    );
    assert_eq!(chat(&s, &a, "json").status, 200);
    assert_429(&chat(&s, &b, "json"), "Team");

    let a = seed_user(&s, "carol", "internal_user");
    s.exec("UPDATE users SET tpm_limit = 30 WHERE id = 'carol'");
    let b = key(&s, json!({"user_id": "carol"}));
    // tpm: the first call's 30 tokens use the minute's allowance.
    assert_eq!(chat(&s, &a, "json").status, 200);
    assert_429(&chat(&s, &b, "json"), "User");
}

// ---------------------------------------------------------------------------------------------
// Upstream faults

fn assert_no_secret(r: &Resp) {
    let t = r.text();
    assert!(!t.contains(UPSTREAM_KEY), "upstream key leaked: {t}");
    assert!(!t.contains("127.0.0.1"), "upstream URL leaked: {t}");
}

#[test]
fn upstream_refused_is_502_and_timeout_504() {
    let (_f, s) = setup();
    let k = key(&s, json!({}));
    let r = chat(&s, &k, "refused");
    assert_error(&r, 502);
    assert_no_secret(&r);
    let t = Instant::now();
    let r = chat(&s, &k, "slow");
    let took = t.elapsed();
    assert_error(&r, 504);
    assert_no_secret(&r);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    let r = s.post("/v1/chat/completions", &k, stream_body("refused"));
    assert_error(&r, 502);
    assert!(!s.log().contains(UPSTREAM_KEY));
}

#[test]
fn upstream_error_status_passes_through_without_secrets() {
    let (_f, s) = setup();
    let k = key(&s, json!({}));
    for (model, status) in [("fail500", 500), ("fail401", 401)] {
        for body in [chat_body(model), stream_body(model)] {
            let r = s.post("/v1/chat/completions", &k, body);
            assert_error(&r, status);
            assert_no_secret(&r);
            assert!(
                r.text().contains("Incorrect API key provided"),
                "{}",
                r.text()
            );
        }
    }
    assert!(!s.log().contains(UPSTREAM_KEY), "{}", s.log());
}

#[test]
fn a_stream_dropped_midway_ends_with_an_error_event_and_is_billed() {
    let (_f, s) = setup();
    let k = key(&s, json!({}));
    let r = s.post("/v1/chat/completions", &k, stream_body("drop"));
    assert_eq!(r.status, 200);
    let ev = events(&r);
    assert_eq!(ev.len(), 4, "{ev:?}");
    let err: Value = serde_json::from_str(&ev[2]).unwrap();
    assert!(err["error"]["message"].is_string(), "{err}");
    assert_eq!(ev[3], "[DONE]");
    assert!(!ev[2].contains("127.0.0.1") && !ev[2].contains(UPSTREAM_KEY));
    let row = log_row(&s, &call_id(&r));
    assert_ne!(row["status"], "success");
    assert_eq!(row["completion_tokens"], count_tokens("Hello wor"), "{row}");
    assert!(row["spend"].as_f64().unwrap() > 0.0, "{row}");
}

#[test]
fn a_stream_stalling_past_stream_timeout_ends_with_an_error_event() {
    let (_f, s) = setup();
    let k = key(&s, json!({"max_parallel_requests": 1}));
    let t = Instant::now();
    let r = s.post("/v1/chat/completions", &k, stream_body("stalled"));
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    let ev = events(&r);
    assert_eq!(ev.len(), 3, "{ev:?}");
    let err: Value = serde_json::from_str(&ev[1]).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{err}"
    );
    assert_eq!(ev[2], "[DONE]");
    assert_eq!(log_row(&s, &call_id(&r))["status"], "failure");
    // The slot is free again.
    assert_eq!(chat(&s, &k, "json").status, 200);
}

#[test]
fn upstream_connections_are_reused() {
    let (f, s) = setup();
    let k = key(&s, json!({}));
    for _ in 0..5 {
        assert_eq!(chat(&s, &k, "json").status, 200);
    }
    assert_eq!(f.connections(), 1, "JSON calls");
    for _ in 0..5 {
        let r = s.post("/v1/chat/completions", &k, stream_body("sse"));
        assert_eq!(events(&r).last().unwrap(), "[DONE]");
    }
    assert_eq!(f.connections(), 1, "streamed calls");
}

#[test]
fn a_client_leaving_mid_stream_stops_the_upstream_and_is_billed() {
    let (f, s) = setup();
    let k = key(&s, json!({}));
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("endless"));
    let id = st.header("x-litellm-call-id").to_string();
    st.next_data().expect("first chunk");
    st.next_data().expect("second chunk");
    drop(st);
    until("the upstream sees the gateway go away", 5, || {
        f.client_gone()
    });
    until("the call is billed", 5, || {
        s.get(&format!("/spend/logs?request_id={id}"), MASTER)
            .json()
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    let row = log_row(&s, &id);
    assert_eq!(row["status"], "client_disconnected");
    assert!(row["completion_tokens"].as_u64().unwrap() >= 1, "{row}");
    assert!(row["spend"].as_f64().unwrap() > 0.0, "{row}");
}
