//! Forwarding to upstream models (issue 4): OpenAI-compatible calls through the real server to
//! the fake upstream in `upstream.rs`, with spend, budgets, rate limits and upstream faults.

use crate::common::*;
use crate::upstream::*;
use litegate::call::estimate::count_tokens;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn setup() -> (Fake, Server) {
    let f = Fake::start();
    let s = Server::start_with(&config(&f, ""), &[]);
    (f, s)
}

fn key(s: &Server, body: Value) -> String {
    crate::access::key_for(s, body)
}

fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn chat(s: &Server, key: &str, model: &str) -> Resp {
    s.post("/v1/chat/completions", key, chat_body(model))
}

pub fn stream_body(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

/// Polls `f` until it holds, failing after `secs`.
fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn num(s: &Server, sql: &str) -> f64 {
    s.db().query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// The `data:` payloads of an SSE body.
fn events(r: &Resp) -> Vec<String> {
    r.text()
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data:").map(|d| d.trim().to_string()))
        .collect()
}

/// The spend-log row of a response (its `x-litellm-call-id`), as the admin sees it.
fn log_row(s: &Server, request_id: &str) -> Value {
    let r = s.get(&format!("/spend/logs?request_id={request_id}"), MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    let rows = r.json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    rows[0].clone()
}

fn call_id(r: &Resp) -> String {
    r.header("x-litellm-call-id").expect("call id").to_string()
}

/// A streaming call read incrementally from the socket.
pub struct Stream {
    r: BufReader<TcpStream>,
    status: u16,
    headers: Vec<(String, String)>,
}

impl Stream {
    pub fn open(s: &Server, key: &str, path: &str, body: Value) -> Stream {
        let mut t = TcpStream::connect(&s.addr).expect("connect");
        t.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let b = body.to_string();
        write!(
            t,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            s.addr,
            b.len()
        )
        .expect("write");
        let mut r = BufReader::new(t);
        let mut line = String::new();
        r.read_line(&mut line).expect("status line");
        let status = line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
        let mut headers = Vec::new();
        loop {
            line.clear();
            r.read_line(&mut line).expect("header");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                headers.push((k.trim().to_lowercase(), v.trim().to_string()));
            }
        }
        Stream { r, status, headers }
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The next `data:` payload, or None at the end of the response.
    pub fn next_data(&mut self) -> Option<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line).expect("read stream") == 0 {
                return None;
            }
            if let Some(d) = line.trim_end().strip_prefix("data: ") {
                return Some(d.to_string());
            }
        }
    }

    pub fn rest(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.next_data()).collect()
    }
}

/// The upstream request carries our key, the upstream model name and no gateway-only fields.
fn assert_clean_upstream_request(rec: &Recorded, caller_key: &str, model: &str) {
    assert_eq!(
        rec.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str()),
        "{rec:?}"
    );
    for (k, v) in &rec.headers {
        assert!(!v.contains(caller_key), "caller key forwarded in {k}");
    }
    assert_eq!(rec.body["model"], model, "{rec:?}");
    for f in ["api_base", "base_url", "api_key", "mock_response"] {
        assert!(rec.body.get(f).is_none(), "{f} forwarded: {}", rec.body);
    }
}

// ---------------------------------------------------------------------------------------------
// Calls

#[test]
fn chat_completions_embeddings_streaming_and_not() {
    let (f, s) = setup();
    let stranger = Fake::start();
    let k = key(&s, json!({}));
    let sneaky = |mut b: Value| {
        b["api_base"] = json!(stranger.api_base());
        b["base_url"] = json!(stranger.api_base());
        b["api_key"] = json!("sk-caller-chosen-key");
        b
    };

    let r = s.post("/v1/chat/completions", &k, sneaky(chat_body("json")));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the fake upstream"
    );
    assert_eq!(v["usage"]["prompt_tokens"], 10);
    let rec = f.last();
    assert_eq!(rec.path, "/v1/chat/completions");
    assert_clean_upstream_request(&rec, &k, "json");
    assert_eq!(rec.body["messages"][0]["content"], "hi");

    let r = s.post(
        "/completions",
        &k,
        sneaky(json!({"model": "json", "prompt": "say hi"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["text"],
        "Hello from the fake upstream"
    );
    let rec = f.last();
    assert_eq!(rec.path, "/v1/completions");
    assert_clean_upstream_request(&rec, &k, "json");

    for path in ["/v1/embeddings", "/embeddings"] {
        let r = s.post(
            path,
            &k,
            sneaky(json!({"model": "json", "input": "embed me"})),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["data"][0]["embedding"], json!([0.1, 0.2, 0.3]));
        let rec = f.last();
        assert_eq!(rec.path, "/v1/embeddings");
        assert_clean_upstream_request(&rec, &k, "json");
        let row = log_row(&s, &call_id(&r));
        assert_eq!(row["call_type"], "aembedding");
        assert!(
            near(row["spend"].as_f64().unwrap(), 10.0 * IN_COST),
            "{row}"
        );
    }

    for (path, body) in [
        ("/chat/completions", sneaky(stream_body("sse"))),
        (
            "/v1/completions",
            sneaky(json!({"model": "sse", "prompt": "hi", "stream": true})),
        ),
    ] {
        let r = s.post(path, &k, body);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream"));
        let ev = events(&r);
        assert_eq!(ev.last().map(String::as_str), Some("[DONE]"), "{ev:?}");
        let text: String = ev[..ev.len() - 1]
            .iter()
            .map(|e| {
                let v: Value = serde_json::from_str(e).unwrap();
                let c = &v["choices"][0];
                c["delta"]["content"]
                    .as_str()
                    .or(c["text"].as_str())
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(text, "Hello from the fake", "{ev:?}");
        let rec = f.last();
        assert_eq!(rec.path, format!("/v1{}", path.trim_start_matches("/v1")));
        assert_clean_upstream_request(&rec, &k, "sse");
        assert_eq!(rec.body["stream"], true);
    }
    assert_eq!(f.count(), 6);
    assert_eq!(stranger.count(), 0, "the caller's api_base was called");
    assert!(!s.log().contains(UPSTREAM_KEY));
}

#[test]
fn first_chunk_reaches_the_client_before_the_upstream_finishes() {
    let (f, s) = setup();
    let k = key(&s, json!({}));
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("gated"));
    assert_eq!(st.status, 200);
    let first: Value = serde_json::from_str(&st.next_data().expect("first chunk")).unwrap();
    assert_eq!(first["choices"][0]["delta"]["content"], "Hello");
    assert!(
        !f.gate_is_open(),
        "the upstream finished before the client saw a chunk"
    );
    f.open_gate();
    let rest = st.rest();
    assert_eq!(rest.len(), 4, "{rest:?}"); // two chunks, the stop chunk, [DONE]
    assert_eq!(rest.last().unwrap(), "[DONE]");
}

#[test]
fn stream_usage_from_upstream_extra_chunk_stripped_or_kept_or_counted() {
    let (f, s) = setup();
    let k = key(&s, json!({}));
    let has_usage_chunk = |ev: &[String]| {
        ev.iter().any(|e| {
            serde_json::from_str::<Value>(e)
                .map(|v| v["usage"].is_object() && v["choices"] == json!([]))
                .unwrap_or(false)
        })
    };

    // The caller did not ask: litegate asks, bills the upstream's usage, strips the chunk.
    let r = s.post("/v1/chat/completions", &k, stream_body("sse"));
    assert_eq!(r.status, 200);
    let ev = events(&r);
    assert!(!has_usage_chunk(&ev), "{ev:?}");
    assert_eq!(f.last().body["stream_options"]["include_usage"], true);
    let row = log_row(&s, &call_id(&r));
    assert_eq!(row["prompt_tokens"], 10, "{row}");
    assert_eq!(row["completion_tokens"], 20, "{row}");
    assert!(near(row["spend"].as_f64().unwrap(), CALL_COST), "{row}");
    assert_eq!(row["status"], "success");

    // The caller asked: the chunk is theirs.
    let mut b = stream_body("sse");
    b["stream_options"] = json!({"include_usage": true});
    let r = s.post("/v1/chat/completions", &k, b);
    let ev = events(&r);
    assert!(has_usage_chunk(&ev), "{ev:?}");
    assert_eq!(ev.last().unwrap(), "[DONE]");
    assert_eq!(log_row(&s, &call_id(&r))["completion_tokens"], 20);

    // No usage from the upstream: counted.
    let r = chat(&s, &k, "nousage");
    assert_eq!(r.status, 200);
    let row = log_row(&s, &call_id(&r));
    assert_eq!(row["prompt_tokens"], count_tokens("hi"), "{row}");
    assert_eq!(
        row["completion_tokens"],
        count_tokens("Hello from the fake upstream"),
        "{row}"
    );
    assert!(row["spend"].as_f64().unwrap() > 0.0);
    let r = s.post("/v1/chat/completions", &k, stream_body("nousage"));
    assert_eq!(events(&r).last().unwrap(), "[DONE]");
    let row = log_row(&s, &call_id(&r));
    assert_eq!(
        row["completion_tokens"],
        count_tokens("Hello from the fake"),
        "{row}"
    );
}

/// issue 6: a body that needs no change goes upstream byte for byte (no parse-and-rewrite of a
/// long conversation); one that needs a change (an alias, a gateway-only field) is written out
/// with the change, and one that names a key twice is never forwarded as it came: the upstream
/// could read the first `model` where the access check read the last.
#[test]
fn unchanged_bodies_go_upstream_as_they_came() {
    let (f, s) = setup();
    let k = key(
        &s,
        json!({"models": ["json"], "aliases": {"friendly": "json"}}),
    );
    let post = |raw: &str| {
        s.request(
            "POST",
            "/v1/chat/completions",
            Some(&k),
            Some(raw.as_bytes()),
            &[("content-type", "application/json")],
        )
    };
    // Spacing, key order, an escape and `0.50` would not survive a rewrite.
    let raw = "{ \"messages\" : [{\"role\":\"user\",\"content\":\"caf\\u00e9\"}],\n  \"model\":\"json\", \"temperature\": 0.50 }";
    let r = post(raw);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(String::from_utf8_lossy(&f.last().raw), raw);
    // An alias: `model` changes, so the body is written out again.
    let r = post(&raw.replace("\"json\"", "\"friendly\""));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(f.last().body["model"], "json");
    assert_eq!(f.last().body["temperature"], json!(0.5));
    // A gateway-only field is removed.
    let r = post(&raw.replace("\"temperature\"", "\"metadata\": {}, \"temperature\""));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(f.last().body.get("metadata").is_none(), "{}", f.last().body);
    // Duplicate keys: checked and forwarded as the last one (`json`); `sse` never leaves.
    let dup =
        r#"{"model": "sse", "messages": [{"role": "user", "content": "hi"}], "model": "json"}"#;
    let r = post(dup);
    assert_eq!(r.status, 200, "{}", r.text());
    let sent = String::from_utf8_lossy(&f.last().raw).into_owned();
    assert!(
        !sent.contains("sse") && f.last().body["model"] == "json",
        "{sent}"
    );
}

#[test]
fn key_aliases_apply_before_the_access_check() {
    let (f, s) = setup();
    let k = key(
        &s,
        json!({"models": ["json"], "aliases": {"friendly": "json", "sneaky": "sse"}}),
    );
    let r = chat(&s, &k, "friendly");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(f.last().body["model"], "json");
    // The check is on the model actually called.
    let v = assert_error(&chat(&s, &k, "sneaky"), 403);
    assert_eq!(v["error"]["param"], "model");
    assert_error(&chat(&s, &k, "sse"), 403);
    assert_eq!(f.count(), 1);
}

#[test]
fn mock_response_skips_the_upstream_and_is_billed() {
    let (f, s) = setup();
    let k = key(&s, json!({}));
    let mut b = chat_body("json");
    b["mock_response"] = json!("canned answer");
    let r = s.post("/v1/chat/completions", &k, b);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "canned answer"
    );
    assert_eq!(f.count(), 0);
    let want =
        count_tokens("hi") as f64 * IN_COST + count_tokens("canned answer") as f64 * OUT_COST;
    let row = log_row(&s, &call_id(&r));
    assert!(near(row["spend"].as_f64().unwrap(), want), "{row}");
    let token = litegate::auth::hash_key(&k);
    assert!(near(
        num(
            &s,
            &format!("SELECT spend FROM api_keys WHERE token = '{token}'")
        ),
        want
    ));
}

// ---------------------------------------------------------------------------------------------
// Spend

/// An org with a team, user `alice` a member of both, and a team key of alice's.
fn org_team_alice(s: &Server, org: Value, team: Value, keyb: Value) -> (String, String, String) {
    let mut org = org;
    org["organization_alias"] = json!("acme");
    let org_id = s.admin("/organization/new", org)["organization_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut team = team;
    team["organization_id"] = json!(org_id);
    let team_id = s.admin("/team/new", team)["team_id"]
        .as_str()
        .unwrap()
        .to_string();
    seed_user(s, "alice", "internal_user");
    seed_org_member(s, &org_id, "alice", "internal_user");
    seed_team_member(s, &team_id, "alice", "user");
    let mut keyb = keyb;
    keyb["team_id"] = json!(team_id);
    keyb["user_id"] = json!("alice");
    (org_id, team_id, key(s, keyb))
}

#[test]
fn spend_at_every_level_and_in_the_spend_log() {
    let (_f, s) = setup();
    let (org, team, k) = org_team_alice(&s, json!({}), json!({}), json!({}));
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = chat(&s, &k, "json");
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(call_id(&r));
    }
    let token = litegate::auth::hash_key(&k);
    for sql in [
        format!("SELECT spend FROM api_keys WHERE token = '{token}'"),
        format!("SELECT spend FROM teams WHERE id = '{team}'"),
        format!("SELECT spend FROM organizations WHERE id = '{org}'"),
        "SELECT spend FROM users WHERE id = 'alice'".to_string(),
        format!("SELECT spend FROM team_members WHERE team_id = '{team}' AND user_id = 'alice'"),
        format!(
            "SELECT spend FROM organization_members WHERE organization_id = '{org}' \
             AND user_id = 'alice'"
        ),
    ] {
        let got = num(&s, &sql);
        assert!(near(got, 2.0 * CALL_COST), "{sql}: {got}");
    }
    let row = log_row(&s, &ids[0]);
    assert_eq!(row["api_key"], token.as_str());
    assert_eq!(row["team_id"], team.as_str());
    assert_eq!(row["organization_id"], org.as_str());
    assert_eq!(row["user"], "alice");
    assert_eq!(row["model"], "json");
    assert_eq!(row["call_type"], "acompletion");
    assert_eq!(
        (
            &row["prompt_tokens"],
            &row["completion_tokens"],
            &row["total_tokens"]
        ),
        (&json!(10), &json!(20), &json!(30))
    );
    assert_eq!(row["status"], "success");
    assert!(row["startTime"].as_str().unwrap() <= row["endTime"].as_str().unwrap());

    // Bob's call; each non-admin sees only their own keys' rows, the admin sees all.
    let bob = seed_user(&s, "bob", "internal_user");
    let r = chat(&s, &bob, "json");
    assert_eq!(r.status, 200);
    let bob_call = call_id(&r);
    let ids_seen = |caller: &str| -> Vec<String> {
        let r = s.get("/spend/logs", caller);
        assert_eq!(r.status, 200, "{}", r.text());
        let mut v: Vec<String> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["request_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let mut all = vec![ids[0].clone(), ids[1].clone(), bob_call.clone()];
    all.sort();
    assert_eq!(ids_seen(MASTER), all);
    let mut alices = ids.clone();
    alices.sort();
    assert_eq!(ids_seen(&k), alices);
    assert_eq!(ids_seen(&bob), vec![bob_call.clone()]);
    // A filter cannot widen a non-admin's view.
    let r = s.get(&format!("/spend/logs?request_id={bob_call}"), &k);
    assert_eq!(r.json(), json!([]));
}

#[test]
fn spend_survives_kill_9_right_after_the_response() {
    let (_f, mut s) = setup();
    let k = key(&s, json!({}));
    let r = chat(&s, &k, "json");
    assert_eq!(r.status, 200);
    let id = call_id(&r);
    s.stop(); // SIGKILL
    s.restart();
    let token = litegate::auth::hash_key(&k);
    assert!(near(
        num(
            &s,
            &format!("SELECT spend FROM api_keys WHERE token = '{token}'")
        ),
        CALL_COST
    ));
    assert_eq!(log_row(&s, &id)["status"], "success");

    // A stream: billed before the client sees `[DONE]`.
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("sse"));
    let id = st.header("x-litellm-call-id").to_string();
    assert_eq!(st.rest().last().unwrap(), "[DONE]");
    s.stop();
    s.restart();
    assert_eq!(log_row(&s, &id)["completion_tokens"], 20);
    assert!(near(
        num(
            &s,
            &format!("SELECT spend FROM api_keys WHERE token = '{token}'")
        ),
        2.0 * CALL_COST
    ));
}

// ---------------------------------------------------------------------------------------------
// Budgets

/// One call's cost exhausts the budget at `level`: the first call passes, the second is a 422
/// naming the level and changes nothing.
fn budget_case(level: &str) {
    let (f, s) = setup();
    let b = json!({"max_budget": CALL_COST});
    let none = json!({});
    let (org, team, mut k) = org_team_alice(
        &s,
        if level == "Organization" {
            b.clone()
        } else {
            none.clone()
        },
        if level == "Team" {
            b.clone()
        } else {
            none.clone()
        },
        if level == "Key" {
            b.clone()
        } else {
            none.clone()
        },
    );
    match level {
        "User" => {
            // User budgets govern personal keys.
            s.db()
                .execute(
                    "UPDATE users SET max_budget = ?1 WHERE id = 'alice'",
                    [CALL_COST],
                )
                .unwrap();
            k = format!("sk-test-alice-{}", "x".repeat(16));
        }
        "Team member" | "Organization member" => {
            s.admin(
                "/budget/new",
                json!({"budget_id": "member-budget", "max_budget": CALL_COST}),
            );
            let sql = if level == "Team member" {
                format!(
                    "UPDATE team_members SET budget_id = 'member-budget' WHERE team_id = '{team}'"
                )
            } else {
                format!(
                    "UPDATE organization_members SET budget_id = 'member-budget' \
                     WHERE organization_id = '{org}'"
                )
            };
            s.db().execute(&sql, []).unwrap();
        }
        _ => {}
    }
    let r = chat(&s, &k, "json");
    assert_eq!(r.status, 200, "{}", r.text());
    let before = snapshot(&s);
    let v = assert_error(&chat(&s, &k, "json"), 422);
    assert_eq!(v["error"]["type"], "budget_exceeded", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains(&format!("{level}=")), "{level}: {m}");
    assert!(
        m.contains("Current cost") && m.contains("Max budget"),
        "{m}"
    );
    assert_eq!(f.count(), 1);
    assert_eq!(snapshot(&s), before, "a refused call changed the database");
    assert_eq!(s.count("SELECT count(*) FROM spend_logs"), 1);
}

#[test]
fn budget_key() {
    budget_case("Key");
}
#[test]
fn budget_team() {
    budget_case("Team");
}
#[test]
fn budget_org() {
    budget_case("Organization");
}
#[test]
fn budget_user_personal_key() {
    budget_case("User");
}
#[test]
fn budget_team_member() {
    budget_case("Team member");
}
#[test]
fn budget_org_member() {
    budget_case("Organization member");
}

/// `n` parallel chat calls; returns how many succeeded. Anything but 200/422 fails.
fn burst(s: &Server, k: &str, n: usize, body: &Value) -> usize {
    let oks = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|_| sc.spawn(|| s.post("/v1/chat/completions", k, body.clone()).status))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<u16>>()
    });
    assert!(oks.iter().all(|c| *c == 200 || *c == 422), "{oks:?}");
    oks.iter().filter(|c| **c == 200).count()
}

/// The server's worker count (`--workers 16` in the harness): no more calls can be in flight.
const IN_FLIGHT_BOUND: usize = 16;

#[test]
fn concurrent_burst_against_an_exhausted_budget() {
    let (f, s) = setup();
    // One call's cost exhausts the budget; 20 at once.
    let k = key(&s, json!({"max_budget": CALL_COST}));
    let ok = burst(&s, &k, 20, &chat_body("lag"));
    let token = litegate::auth::hash_key(&k);
    let spent = num(
        &s,
        &format!("SELECT spend FROM api_keys WHERE token = '{token}'"),
    );
    eprintln!("burst of 20 against a one-call budget: {ok} admitted, spend {spent}");
    assert!(ok >= 1);
    assert_eq!(f.count(), ok);
    // The reservation of the first admitted call covers the budget: the others wait for it.
    // A call authenticated just before the first one settled may still pass: at most one more.
    assert!(
        ok <= 2,
        "{ok} calls admitted against a budget one call exhausts"
    );
    assert!(near(spent, ok as f64 * CALL_COST));

    // Issue 4: 50 parallel calls against budgets that allow 10, at key, team and org level.
    // `max_tokens` keeps the reservation estimate below the real cost (the worst case).
    let mut body = chat_body("lag");
    body["max_tokens"] = json!(20);
    let ten = 10.0 * CALL_COST;
    let k_key = key(&s, json!({"max_budget": ten}));
    let team = s.admin("/team/new", json!({"max_budget": ten}))["team_id"]
        .as_str()
        .unwrap()
        .to_string();
    let k_team = key(&s, json!({"team_id": team}));
    let org = s.admin(
        "/organization/new",
        json!({"organization_alias": "o", "max_budget": ten}),
    )["organization_id"]
        .as_str()
        .unwrap()
        .to_string();
    let team2 = s.admin("/team/new", json!({"organization_id": org}))["team_id"]
        .as_str()
        .unwrap()
        .to_string();
    let k_org = key(&s, json!({"team_id": team2}));
    for (what, k, sql) in [
        (
            "key",
            &k_key,
            format!(
                "SELECT spend FROM api_keys WHERE token = '{}'",
                litegate::auth::hash_key(&k_key)
            ),
        ),
        (
            "team",
            &k_team,
            format!("SELECT spend FROM teams WHERE id = '{team}'"),
        ),
        (
            "org",
            &k_org,
            format!("SELECT spend FROM organizations WHERE id = '{org}'"),
        ),
    ] {
        let before = f.count();
        let spent_before = num(&s, &sql);
        let ok = burst(&s, k, 50, &body);
        let seen = f.count() - before;
        let spent = num(&s, &sql) - spent_before;
        eprintln!("{what}: 50 parallel calls, budget for 10: {ok} admitted, upstream saw {seen}, spend {spent:.3} of {ten}");
        assert_eq!(seen, ok);
        assert!(ok >= 10, "{what}: {ok}");
        assert!(ok <= 10 + IN_FLIGHT_BOUND, "{what}: {ok}");
        assert!(
            spent <= ten + IN_FLIGHT_BOUND as f64 * CALL_COST + 1e-9,
            "{what}: {spent}"
        );
    }
}

#[test]
fn budget_duration_resets_spend() {
    let f = Fake::start();
    let s = Server::start_with_env(
        &config(&f, ""),
        &[],
        &[("LITEGATE_BUDGET_RESET_SECS", "0.2")],
    );
    let k = key(
        &s,
        json!({"max_budget": CALL_COST, "budget_duration": "1h"}),
    );
    let token = litegate::auth::hash_key(&k);
    assert_eq!(chat(&s, &k, "json").status, 200);
    assert_error(&chat(&s, &k, "json"), 422);
    // Not due yet: nothing resets.
    let spend = format!("SELECT spend FROM api_keys WHERE token = '{token}'");
    assert!(near(num(&s, &spend), CALL_COST));
    s.db()
        .execute(
            "UPDATE api_keys SET budget_reset_at = '2020-01-01T00:00:00.000Z' WHERE token = ?1",
            [&token],
        )
        .unwrap();
    until("the key's spend is reset", 10, || num(&s, &spend) == 0.0);
    let next: String = s
        .db()
        .query_row(
            "SELECT budget_reset_at FROM api_keys WHERE token = ?1",
            [&token],
            |r| r.get(0),
        )
        .unwrap();
    let in_ms = litegate::util::ms_from_iso(&next).unwrap() - litegate::util::now_ms();
    assert!((3_500_000..=3_600_000).contains(&in_ms), "{next}");
    assert_eq!(chat(&s, &k, "json").status, 200);

    // A team's budget the same way.
    let team = s.admin(
        "/team/new",
        json!({"max_budget": CALL_COST, "budget_duration": "1d"}),
    )["team_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tk = key(&s, json!({"team_id": team}));
    assert_eq!(chat(&s, &tk, "json").status, 200);
    let v = assert_error(&chat(&s, &tk, "json"), 422);
    assert!(v["error"]["message"].as_str().unwrap().contains("Team="));
    s.db()
        .execute(
            "UPDATE teams SET budget_reset_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
            [&team],
        )
        .unwrap();
    let tspend = format!("SELECT spend FROM teams WHERE id = '{team}'");
    until("the team's spend is reset", 10, || num(&s, &tspend) == 0.0);
    assert_eq!(chat(&s, &tk, "json").status, 200);

    // An organization's, through its budget row.
    let org = s.admin(
        "/organization/new",
        json!({"organization_alias": "o", "max_budget": CALL_COST, "budget_duration": "1d"}),
    )["organization_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ot = s.admin("/team/new", json!({"organization_id": org}))["team_id"]
        .as_str()
        .unwrap()
        .to_string();
    let ok = key(&s, json!({"team_id": ot}));
    assert_eq!(chat(&s, &ok, "json").status, 200);
    let v = assert_error(&chat(&s, &ok, "json"), 422);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Organization="));
    s.db()
        .execute(
            "UPDATE budgets SET budget_reset_at = '2020-01-01T00:00:00.000Z'
             WHERE id = (SELECT budget_id FROM organizations WHERE id = ?1)",
            [&org],
        )
        .unwrap();
    let ospend = format!("SELECT spend FROM organizations WHERE id = '{org}'");
    until("the org's spend is reset", 10, || num(&s, &ospend) == 0.0);
    assert_eq!(chat(&s, &ok, "json").status, 200);
}

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
    let team = s.admin("/team/new", json!({"max_parallel_requests": 1}))["team_id"]
        .as_str()
        .unwrap()
        .to_string();
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
    let org = s.admin(
        "/organization/new",
        json!({"organization_alias": "o", "rpm_limit": 1}),
    )["organization_id"]
        .as_str()
        .unwrap()
        .to_string();
    let t_org = s.admin("/team/new", json!({"organization_id": org}))["team_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (a, b) = (
        key(&s, json!({"team_id": t_org})),
        key(&s, json!({"team_id": t_org})),
    );
    assert_eq!(chat(&s, &a, "json").status, 200);
    assert_429(&chat(&s, &b, "json"), "Organization");

    let team = s.admin("/team/new", json!({"rpm_limit": 1}))["team_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (a, b) = (
        key(&s, json!({"team_id": team})),
        key(&s, json!({"team_id": team})),
    );
    assert_eq!(chat(&s, &a, "json").status, 200);
    assert_429(&chat(&s, &b, "json"), "Team");

    let a = seed_user(&s, "carol", "internal_user");
    s.db()
        .execute("UPDATE users SET tpm_limit = 30 WHERE id = 'carol'", [])
        .unwrap();
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
