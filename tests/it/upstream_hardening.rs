//! Issue 11, item 3: upstreams cannot hurt us. The real server against the misbehaving modes
//! of the fake upstream (`upstream.rs`): an endless stream, a line without end, a huge answer,
//! redirects, lying usage, URL-echoing errors, refused connections and bodies that must never
//! reach an upstream. Each test asserts what the client gets (status, envelope), that the
//! server stays healthy, that its memory stays bounded (VmRSS / VmHWM of the child from
//! /proc) and that the spend recorded is sane.

use crate::common::*;
use crate::forwarding::{stream_body, Stream};
use crate::upstream::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

fn setup() -> (Fake, Server) {
    let f = Fake::start();
    let s = Server::start_with(&config(&f, ""), &[]);
    (f, s)
}

fn key(s: &Server) -> String {
    key_for(s, json!({}))
}

/// The server's process id: the process whose command line names this server's database.
fn pid(s: &Server) -> u32 {
    let db = s.db_path().to_string_lossy().into_owned();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if cmd.split(|b| *b == 0).any(|a| a == db.as_bytes()) {
            return pid;
        }
    }
    panic!("no process for {db}");
}

/// A `/proc/PID/status` figure in bytes (`VmRSS`, `VmHWM`).
fn vm(pid: u32, field: &str) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    st.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("{field} missing"))
}

/// The server's peak memory (VmHWM) against its resident size when the measure started.
struct Peak {
    pid: u32,
    before: u64,
}

impl Peak {
    fn start(s: &Server) -> Peak {
        let pid = pid(s);
        Peak {
            pid,
            before: vm(pid, "VmRSS"),
        }
    }

    /// Asserts the peak grew by less than `limit` bytes since `start`.
    fn assert_grew_less_than(&self, limit: u64) {
        let grown = vm(self.pid, "VmHWM").saturating_sub(self.before);
        eprintln!("peak memory grew by {} KiB", grown / 1024);
        assert!(grown < limit, "peak memory grew by {} MiB", grown / MIB);
    }
}

fn healthy(s: &Server, k: &str) {
    assert_eq!(s.get("/health/liveliness", "").status, 200);
    let r = s.post("/v1/chat/completions", k, chat_body("json"));
    assert_eq!(
        r.status,
        200,
        "after the misbehaving upstream: {}",
        r.text()
    );
}

/// The spend-log rows of a model: (prompt, completion, spend, status).
fn rows(s: &Server, model: &str) -> Vec<(i64, i64, f64, String)> {
    s.rows(
        "SELECT prompt_tokens, completion_tokens, spend, status FROM spend_logs \
         WHERE model = ?1 ORDER BY id",
        [model],
    )
}

/// The one spend row of `model`, waited for (a stream is settled as it ends).
fn row(s: &Server, model: &str) -> (i64, i64, f64, String) {
    until(&format!("the spend row of {model}"), 10, || {
        rows(s, model).len() == 1
    });
    let r = rows(s, model).remove(0);
    assert!(
        r.0 >= 0 && r.1 >= 0 && r.2.is_finite() && r.2 >= 0.0,
        "{r:?}"
    );
    r
}

/// Every event of a stream; asserts that it ends within `secs`.
fn drain(st: &mut Stream, secs: u64) -> (usize, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut n = 0;
    let mut last = Vec::new();
    while let Some(d) = st.next_data() {
        assert!(
            Instant::now() < deadline,
            "the stream did not end in {secs} s"
        );
        n += 1;
        last.push(d);
        if last.len() > 3 {
            last.remove(0);
        }
    }
    (n, last)
}

fn assert_error_event(ev: &str, needle: &str) {
    let v: Value = serde_json::from_str(ev).unwrap_or_else(|_| panic!("not JSON: {ev}"));
    assert_eq!(v["error"]["type"], "upstream_error", "{v}");
    let m = v["error"]["message"].as_str().unwrap_or("");
    assert!(m.contains(needle), "{v}");
}

// ---------------------------------------------------------------------------------------------
// Bounded memory and time

/// An upstream that never stops streaming (as fast as it can) is cut at its deployment's
/// `stream_timeout` (2 s): the client gets an error event and `[DONE]`, the upstream
/// connection is closed, what was streamed is billed, memory does not grow with the stream.
#[test]
fn an_endless_stream_ends_at_its_deadline_and_is_billed() {
    let (f, s) = setup();
    let k = key(&s);
    let peak = Peak::start(&s);
    let started = Instant::now();
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("flood"));
    let (n, last) = drain(&mut st, 20);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "ended before its deadline: {took:?}"
    );
    assert!(n > 10, "only {n} events");
    assert_eq!(last.last().map(String::as_str), Some("[DONE]"), "{last:?}");
    assert_error_event(&last[last.len() - 2], "timed out");
    until("the upstream connection closed", 10, || f.client_gone());
    let (p, c, spend, status) = row(&s, "flood");
    assert_eq!(status, "failure");
    assert_eq!(p, 1, "the prompt estimate");
    assert!(c > 10, "the streamed text was not counted: {c}");
    assert!((spend - (p as f64 * IN_COST + c as f64 * OUT_COST)).abs() < 1e-6);
    peak.assert_grew_less_than(16 * MIB);
    healthy(&s, &k);
}

/// The same with 16 KiB of text in every chunk: the text is counted as it passes, never kept,
/// so memory does not grow with what was streamed (tens of MiB here).
#[test]
fn an_endless_stream_of_big_chunks_keeps_no_text() {
    let (f, s) = setup();
    let k = key(&s);
    let peak = Peak::start(&s);
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("flood_big"));
    let (n, last) = drain(&mut st, 20);
    assert_error_event(&last[last.len() - 2], "timed out");
    until("the upstream connection closed", 10, || f.client_gone());
    let (_, c, _, status) = row(&s, "flood_big");
    assert_eq!(status, "failure");
    // Counted, up to the 10M-token cap of one figure.
    assert!(c > 1_000_000 && c <= 10_000_000, "{c}");
    let streamed = n * 16 / 1024;
    eprintln!("{n} chunks, {streamed} MiB of text");
    assert!(streamed >= 16, "only {streamed} MiB streamed: a weak test");
    peak.assert_grew_less_than(16 * MIB);
    healthy(&s, &k);
}

/// Without a timeout of its own, a deployment's deadline is `litellm_settings.request_timeout`
/// (LiteLLM's setting; here 3 s): a stream that would go on for a minute is cut there.
#[test]
fn request_timeout_from_litellm_settings_bounds_a_stream() {
    let f = Fake::start();
    let yaml = format!(
        "{}litellm_settings:\n  request_timeout: 3\n",
        config(&f, "")
    );
    let s = Server::start_with(&yaml, &[]);
    let k = key(&s);
    let started = Instant::now();
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("endless"));
    let (n, last) = drain(&mut st, 20);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "ended before its deadline: {took:?}"
    );
    assert!(n > 10, "only {n} events");
    assert_error_event(&last[last.len() - 2], "timed out");
    until("the upstream connection closed", 10, || f.client_gone());
    let (_, c, _, status) = row(&s, "endless");
    assert_eq!(status, "failure");
    assert!(c > 10, "the streamed text was not counted: {c}");
    healthy(&s, &k);
}

/// A `data:` line that never ends: the stream ends with an error event once the line passes
/// 4 MiB, the call is settled, and memory stays near the cap.
#[test]
fn a_line_without_end_ends_the_stream_with_an_error() {
    let (f, s) = setup();
    let k = key(&s);
    let peak = Peak::start(&s);
    let mut st = Stream::open(&s, &k, "/v1/chat/completions", stream_body("endless_line"));
    let (_, last) = drain(&mut st, 30);
    assert_eq!(last.last().map(String::as_str), Some("[DONE]"), "{last:?}");
    assert_error_event(&last[last.len() - 2], "longer than");
    until("the upstream connection closed", 10, || f.client_gone());
    let (_, _, _, status) = row(&s, "endless_line");
    assert_eq!(status, "failure");
    peak.assert_grew_less_than(16 * MIB);
    healthy(&s, &k);
}

/// A non-stream answer that declares 1 GB and keeps sending: a 502 once 64 MiB arrived, no
/// spend, and memory bounded by the cap (not by the declared length).
#[test]
fn a_huge_answer_is_a_502() {
    let (f, s) = setup();
    let k = key(&s);
    let peak = Peak::start(&s);
    let r = s.post("/v1/chat/completions", &k, chat_body("huge_json"));
    let v = assert_error(&r, 502);
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("more than 67108864 bytes"), "{v}");
    until("the upstream connection closed", 10, || f.client_gone());
    assert_eq!(row(&s, "huge_json"), (0, 0, 0.0, "failure".into()));
    peak.assert_grew_less_than(100 * MIB);
    healthy(&s, &k);
}

/// `general_settings.max_upstream_response_size_mb` sets that cap.
#[test]
fn the_answer_cap_is_a_setting() {
    let f = Fake::start();
    let yaml = format!("{}  max_upstream_response_size_mb: 1\n", config(&f, ""));
    let s = Server::start_with(&yaml, &[]);
    let k = key(&s);
    let peak = Peak::start(&s);
    let r = s.post("/v1/chat/completions", &k, chat_body("huge_json"));
    assert_error_says(&r, 502, "more than 1048576 bytes");
    peak.assert_grew_less_than(8 * MIB);
    healthy(&s, &k);
}

// ---------------------------------------------------------------------------------------------
// Redirects

/// 301, 302 and 307 (stream or not) are never followed: a 502 that names neither the
/// `Location` nor the upstream, and the place it points to is never called.
#[test]
fn redirects_are_never_followed() {
    let (f, s) = setup();
    let trap = Fake::start();
    f.redirect_to(&format!("{}/chat/completions", trap.api_base()));
    let k = key(&s);
    for mode in ["redirect301", "redirect302", "redirect307"] {
        for stream in [false, true] {
            let mut b = chat_body(mode);
            b["stream"] = json!(stream);
            let r = s.post("/v1/chat/completions", &k, b);
            let v = assert_error(&r, 502);
            let text = format!("{}{:?}", r.text(), r.headers);
            assert!(
                v["error"]["message"].as_str().unwrap().contains("redirect"),
                "{v}"
            );
            for secret in [trap.port.to_string(), f.port.to_string()] {
                assert!(!text.contains(&secret), "{mode}: {text}");
            }
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(trap.connections(), 0, "a redirect was followed");
    assert_eq!(trap.count(), 0, "a redirect was followed");
    for mode in ["redirect301", "redirect302", "redirect307"] {
        let r = rows(&s, mode);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r.iter().all(|x| x.3 == "failure" && x.2 == 0.0), "{r:?}");
    }
    healthy(&s, &k);
}

// ---------------------------------------------------------------------------------------------
// Usage figures

/// Usage that lies (negative, astronomically large, strings, a contradictory total, more
/// completion than the request allowed) is never billed as it came: invalid figures are
/// estimated, completion is clamped to `max_tokens` × `n`. Streamed or not.
#[test]
fn lying_usage_is_never_billed_as_it_came() {
    let (_f, s) = setup();
    let k = key(&s);
    // "hi" is 1 token; the fake's text "Hello from the fake upstream" is 28 characters (7
    // tokens), streamed "Hello from the fake" 19 (5).
    type Tokens = (i64, i64);
    let cases: &[(&str, Value, Tokens, Tokens)] = &[
        ("lie_negative", json!({}), (1, 7), (1, 5)),
        ("lie_huge", json!({}), (1, 7), (1, 5)),
        ("lie_strings", json!({}), (1, 7), (1, 5)),
        ("lie_total", json!({}), (10, 20), (10, 20)),
        ("lie_over", json!({"max_tokens": 100}), (10, 100), (10, 100)),
        (
            "lie_over",
            json!({"max_tokens": 30, "n": 2}),
            (10, 60),
            (10, 60),
        ),
    ];
    for (mode, extra, plain, streamed) in cases {
        for stream in [false, true] {
            let before = rows(&s, mode).len();
            let mut b = chat_body(mode);
            b["stream"] = json!(stream);
            for (x, y) in extra.as_object().unwrap() {
                b[x] = y.clone();
            }
            let r = s.post("/v1/chat/completions", &k, b.clone());
            assert_eq!(r.status, 200, "{b}: {}", r.text());
            until("the spend row", 10, || rows(&s, mode).len() == before + 1);
            let (p, c, spend, status) = rows(&s, mode).pop().unwrap();
            let want = if stream { streamed } else { plain };
            assert_eq!((p, c), *want, "{b}");
            assert_eq!(status, "success");
            let cost = p as f64 * IN_COST + c as f64 * OUT_COST;
            assert!((spend - cost).abs() < 1e-9, "{b}: {spend} != {cost}");
        }
    }
    // What every level was charged is the sum of those sane figures.
    let total: f64 = s.value("SELECT SUM(spend) FROM spend_logs", []);
    let key_spend: f64 = s.value("SELECT SUM(spend) FROM api_keys", []);
    assert!(total.is_finite() && total < 10.0, "{total}");
    assert!((key_spend - total).abs() < 1e-6, "{key_spend} vs {total}");
}

/// OpenAI's `prompt_tokens_details.cached_tokens` are charged at the deployment's cache read
/// price (the rest of the prompt at the input price), as LiteLLM charges them, streamed or
/// not; more cached tokens than the prompt are clamped to the prompt.
#[test]
fn cached_prompt_tokens_are_charged_at_the_cache_price() {
    use crate::upstream::CACHE_READ_COST;
    let (_f, s) = setup();
    let k = key(&s);
    for stream in [false, true] {
        for (mode, cost) in [
            // 40 uncached + 60 cached (cache price) + 20 completion.
            (
                "cache_ok",
                40.0 * IN_COST + 60.0 * CACHE_READ_COST + 20.0 * OUT_COST,
            ),
            // All 10 prompt tokens cached (500 claimed), no cache price: the input price.
            ("lie_cache", 10.0 * IN_COST + 20.0 * OUT_COST),
        ] {
            let mut b = chat_body(mode);
            b["stream"] = json!(stream);
            let r = s.post("/v1/chat/completions", &k, b.clone());
            assert_eq!(r.status, 200, "{b}: {}", r.text());
            let row = spend_log_of(&s, &r);
            let spend = row["spend"].as_f64().expect("spend");
            assert!((spend - cost).abs() < 1e-9, "{b}: {spend} != {cost}");
            let cached = &row["metadata"]["additional_usage_values"]["cache_read_input_tokens"];
            let want = if mode == "cache_ok" { 60 } else { 10 };
            assert_eq!(cached, want, "{row}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// No upstream URL for key holders

fn assert_no_upstream(what: &str, text: &str, f: &Fake, dead: Option<u16>) {
    let mut secrets = vec![
        f.port.to_string(),
        "127.0.0.1".to_string(),
        UPSTREAM_KEY.to_string(),
        "no-such-host.invalid".to_string(),
    ];
    secrets.extend(dead.map(|p| p.to_string()));
    for x in secrets {
        assert!(!text.contains(&x), "{what} shows {x}: {text}");
    }
}

/// Errors (refused, DNS, timeout, upstream bodies that echo the URL, host and key — streamed or
/// not), `/v1/models`, `/model/info`, `/v2/model/info` and response headers: a key holder
/// never sees the upstream's address. The admin still sees `api_base`.
#[test]
fn no_upstream_url_reaches_a_key_holder() {
    let f = Fake::start();
    let dead = dead_port();
    let extra = format!(
        "  - model_name: dead\n    litellm_params: {{ model: openai/json, api_base: \
         \"http://127.0.0.1:{dead}/v1\", api_key: {UPSTREAM_KEY} }}\n\
         \x20 - model_name: nxdomain\n    litellm_params: {{ model: openai/json, api_base: \
         \"http://no-such-host.invalid:8000/v1\", api_key: {UPSTREAM_KEY} }}\n\
         \x20 - model_name: tls\n    litellm_params: {{ model: openai/json, api_base: \
         \"https://127.0.0.1:{}/v1\", api_key: {UPSTREAM_KEY} }}\n",
        f.port
    );
    let s = Server::start_with(&config(&f, &extra), &[]);
    let k = key(&s);
    for (model, status) in [
        ("dead", 502),
        ("nxdomain", 502),
        // TLS to a plain-HTTP listener: the handshake fails.
        ("tls", 502),
        ("refused", 502),
        ("echo_url", 400),
        ("fail500", 500),
        ("fail401", 401),
        ("slow", 504),
    ] {
        let r = s.post("/v1/chat/completions", &k, chat_body(model));
        assert_error(&r, status);
        assert_no_upstream(
            model,
            &format!("{} {:?}", r.text(), r.headers),
            &f,
            Some(dead),
        );
    }
    // An error event inside a stream that echoes the URL is scrubbed too.
    let r = s.post("/v1/chat/completions", &k, stream_body("echo_url"));
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("\"cannot serve [upstream]"),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("plain text: cannot serve [upstream]"),
        "{}",
        r.text()
    );
    assert_no_upstream("stream", &r.text(), &f, Some(dead));
    for path in [
        "/v1/models",
        "/model/info",
        "/v1/model/info",
        "/v2/model/info",
    ] {
        let r = s.get(path, &k);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(r.text().contains("echo_url"), "{path}: {}", r.text());
        assert_no_upstream(
            path,
            &format!("{} {:?}", r.text(), r.headers),
            &f,
            Some(dead),
        );
    }
    let admin = s.get("/model/info", MASTER);
    assert!(admin.text().contains(&f.api_base()), "{}", admin.text());
    assert_eq!(s.get("/health/liveliness", "").status, 200);
}

// ---------------------------------------------------------------------------------------------
// Bodies checked before the upstream

/// Malformed model-call bodies are a 400 naming the field, and nothing reaches the upstream
/// or the spend log.
#[test]
fn malformed_call_bodies_never_reach_the_upstream() {
    let (f, s) = setup();
    let k = key(&s);
    let m = |x: Value| {
        let mut b = json!({"model": "json", "messages": [{"role": "user", "content": "hi"}]});
        for (a, v) in x.as_object().unwrap() {
            b[a] = v.clone();
        }
        b
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/v1/chat/completions",
            json!({"model": 5, "messages": []}),
            "model",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "", "messages": []}),
            "model",
        ),
        (
            "/v1/chat/completions",
            m(json!({"messages": "hi"})),
            "messages",
        ),
        (
            "/v1/chat/completions",
            m(json!({"messages": []})),
            "messages",
        ),
        (
            "/v1/chat/completions",
            m(json!({"messages": [1, 2]})),
            "messages",
        ),
        (
            "/v1/chat/completions",
            m(json!({"messages": [{"role": 7, "content": "x"}]})),
            "messages",
        ),
        (
            "/v1/chat/completions",
            m(json!({"messages": [{"role": "user", "content": {"a": 1}}]})),
            "messages",
        ),
        (
            "/v1/chat/completions",
            m(json!({"stream": "true"})),
            "stream",
        ),
        (
            "/v1/chat/completions",
            m(json!({"stream_options": "yes"})),
            "stream_options",
        ),
        (
            "/v1/chat/completions",
            m(json!({"max_tokens": -3})),
            "max_tokens",
        ),
        ("/v1/chat/completions", m(json!({"n": 0})), "n"),
        (
            "/v1/chat/completions",
            m(json!({"temperature": 9})),
            "temperature",
        ),
        (
            "/v1/chat/completions",
            m(json!({"temperature": "warm"})),
            "temperature",
        ),
        ("/v1/chat/completions", m(json!({"tools": "all"})), "tools"),
        ("/chat/completions", m(json!({"stop": [1, 2]})), "stop"),
        (
            "/v1/completions",
            json!({"model": "json", "prompt": {"x": 1}}),
            "prompt",
        ),
        (
            "/v1/completions",
            json!({"model": "json", "prompt": [null]}),
            "prompt",
        ),
        (
            "/v1/embeddings",
            json!({"model": "json", "input": 3.5}),
            "input",
        ),
        (
            "/v1/embeddings",
            json!({"model": "json", "input": []}),
            "input",
        ),
        (
            "/embeddings",
            json!({"model": "json", "input": "x", "dimensions": -1}),
            "dimensions",
        ),
    ];
    for (path, body, field) in &cases {
        let r = s.post(path, &k, body.clone());
        let v = assert_error(&r, 400);
        assert_eq!(v["error"]["param"], *field, "{path} {body}: {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    assert_eq!(f.count(), 0, "a malformed body reached the upstream");
    assert_eq!(s.count("SELECT COUNT(*) FROM spend_logs"), 0);
    // Well-formed ones still go through, including content parts and tool turns.
    let ok = m(json!({"messages": [
        {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
        {"role": "assistant", "content": null, "tool_calls": []},
        {"role": "user", "content": "hi"}], "temperature": 0.5, "n": 1, "max_tokens": "50"}));
    assert_eq!(s.post("/v1/chat/completions", &k, ok).status, 200);
    assert_eq!(f.count(), 1);
}
