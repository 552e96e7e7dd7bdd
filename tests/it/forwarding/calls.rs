//! Model calls forwarded to an upstream.

use super::*;

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

/// `LITEGATE_UPSTREAM_FAST=off` sends every call through ureq: the upstream sees ureq's
/// `accept-encoding` (the fast path sends none), for answers and streams alike, and the
/// answers are the same.
#[test]
fn the_fast_path_switch_is_honoured() {
    let f = Fake::start();
    let on = Server::start_with(&config(&f, ""), &[]);
    let off = Server::start_with_env(&config(&f, ""), &[], &[("LITEGATE_UPSTREAM_FAST", "off")]);
    for (s, fast) in [(&on, true), (&off, false)] {
        let k = key(s, json!({}));
        let r = s.post("/v1/chat/completions", &k, chat_body("json"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            r.json()["choices"][0]["message"]["content"],
            "Hello from the fake upstream"
        );
        let rec = f.last();
        assert_eq!(rec.header("accept-encoding").is_none(), fast, "{rec:?}");
        let r = s.post("/v1/chat/completions", &k, stream_body("sse"));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(events(&r).last().map(String::as_str), Some("[DONE]"));
        let rec = f.last();
        assert_eq!(rec.header("accept-encoding").is_none(), fast, "{rec:?}");
    }
}
