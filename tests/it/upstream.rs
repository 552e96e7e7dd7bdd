//! A fake OpenAI-compatible upstream for the forwarding tests: a raw `TcpListener` on
//! 127.0.0.1:0, one thread per connection (keep-alive, so the gateway's connection reuse is
//! exercised), no HTTP library (tiny_http buffers streams, which would hide whether litegate
//! passes chunks through). It records every request and answers by the upstream model name in
//! the body (the deployment's `openai/<mode>` minus `openai/`):
//!
//! - `json`: a chat/completion/embedding answer with `usage` (10 prompt, 20 completion tokens;
//!   embeddings 10 prompt tokens only); `lag` is the same after 100 ms; the `PRICED` names
//!   (models the embedded price table knows) are the same as `json`, and streamed as `sse`
//! - `nousage`: the same without `usage` (with `stream: true`, SSE without a usage chunk)
//! - `sse`: chunked SSE: three content chunks, a `finish_reason: "stop"` chunk, a usage-only
//!   chunk `{"choices": [], "usage": ...}` only when the request asked
//!   `stream_options.include_usage`, then `data: [DONE]`
//! - `gated`: like `sse`, but after the first chunk it waits for `Fake::open_gate`
//! - `slow`: sleeps `SLOW_SECS` (longer than its deployment's `timeout: 1`), then answers JSON
//! - `fail500` / `fail401`: an error JSON whose message carries the api_key it was sent and
//!   the URL it was called on (litegate must scrub both)
//! - `drop`: two SSE chunks, then closes the socket without the terminating chunk
//! - `endless`: SSE chunks every 50 ms until a write fails; then `client_gone` is set
//!
//! Misbehaving modes (issue 11, `upstream_hardening.rs`):
//! - `flood`: SSE chunks as fast as the socket takes them, for up to 60 s (its deployment has
//!   `stream_timeout: 2`); `client_gone` is set when a write fails
//! - `flood_big`: the same with 16 KiB of text in each chunk
//! - `endless_line`: SSE whose first `data:` line never ends (64 KiB pieces, no newline)
//! - `huge_json`: a 200 JSON answer declaring 1 GB, sent in 1 MiB pieces until a write fails
//! - `redirect301` / `redirect302` / `redirect307`: that status with `Location:` the URL set by
//!   `Fake::redirect_to`, and a body that names it too
//! - `lie_negative`, `lie_huge`, `lie_strings`, `lie_total`, `lie_over`, `lie_cache`, and the
//!   honest `cache_ok` (cached prompt tokens; its deployment has a cache read price): a normal
//!   answer (or stream, with a usage chunk always) whose `usage` is `lying_usage(mode)`
//! - `tools`: a chat answer with text and two tool calls (`finish_reason: "tool_calls"`);
//!   streamed: a text chunk, then the tool calls (id and name first, arguments in pieces),
//!   the finish chunk, the usage chunk when asked, `[DONE]`
//! - `echo_url`: a 400 whose message echoes the URL, the `Host` header and the key; streamed:
//!   one chunk, then an error event and a plain-text `data:` line echoing the same, then the end

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The provider key in the generated config; it must never reach a client or the log.
pub const UPSTREAM_KEY: &str = "sk-upstream-secret-XYZ";
/// Every deployment's prices.
pub const IN_COST: f64 = 0.001;
pub const OUT_COST: f64 = 0.002;
/// Cost of one `json` call: 10 × 0.001 + 20 × 0.002.
pub const CALL_COST: f64 = 0.05;
/// How long `slow` sleeps; its deployment's timeout is 1 s.
pub const SLOW_SECS: u64 = 3;
/// The modes that get a deployment in `config`.
pub const MODES: &[&str] = &[
    "json",
    "lag",
    "nousage",
    "sse",
    "gated",
    "slow",
    "fail500",
    "fail401",
    "drop",
    "endless",
    "flood",
    "flood_big",
    "endless_line",
    "huge_json",
    "redirect301",
    "redirect302",
    "redirect307",
    "lie_negative",
    "lie_huge",
    "lie_strings",
    "lie_total",
    "lie_over",
    "lie_cache",
    "cache_ok",
    "echo_url",
    "tools",
];

/// Real model names (priced by the embedded table, one per OpenAI-wire provider of
/// `every_provider.rs`): answered as `json`, or as `sse` when streamed.
pub const PRICED: &[&str] = &["gpt-4o-mini", "openai/gpt-oss-20b", "mistral-nemo"];

/// The cache read price of the `cache_ok` deployment (its `model_info`).
pub const CACHE_READ_COST: f64 = 0.0001;

/// The `usage` each `lie_*` mode reports.
pub fn lying_usage(mode: &str) -> Value {
    match mode {
        "lie_negative" => {
            json!({"prompt_tokens": -5, "completion_tokens": -1000, "total_tokens": -1005})
        }
        "lie_huge" => json!({"prompt_tokens": 1_000_000_000_000_000_000u64,
                             "completion_tokens": 1e300, "total_tokens": 1e300}),
        "lie_strings" => json!({"prompt_tokens": "NaN", "completion_tokens": "Infinity",
                                "total_tokens": "lots"}),
        "lie_total" => json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 1}),
        // More than any request in the tests allows (`max_tokens` ≤ 100).
        "lie_over" => json!({"prompt_tokens": 10, "completion_tokens": 5000, "total_tokens": 5010}),
        // More cached tokens than the prompt.
        "lie_cache" => json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30,
                              "prompt_tokens_details": {"cached_tokens": 500}}),
        // Honest: 60 of the 100 prompt tokens read from OpenAI's prompt cache.
        "cache_ok" => json!({"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120,
                             "prompt_tokens_details": {"cached_tokens": 60, "audio_tokens": 0}}),
        _ => usage(),
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The body's bytes as they arrived.
    pub raw: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The key a recorded request carried as `Authorization: Bearer ...` ("" for none).
fn bearer(rec: &Recorded) -> String {
    rec.header("authorization")
        .unwrap_or("")
        .trim_start_matches("Bearer ")
        .to_string()
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    gate: Mutex<bool>,
    gate_cv: Condvar,
    client_gone: AtomicBool,
    stop: AtomicBool,
    /// Connections accepted so far (the gateway should reuse them).
    accepted: AtomicUsize,
    /// Where the `redirect*` modes point.
    redirect_to: Mutex<String>,
}

pub struct Fake {
    pub port: u16,
    state: Arc<State>,
}

impl Fake {
    pub fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake upstream");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(State::default());
        let st = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                st.accepted.fetch_add(1, Ordering::SeqCst);
                let st = st.clone();
                std::thread::spawn(move || serve(conn, port, &st));
            }
        });
        Fake { port, state }
    }

    /// The `api_base` of this fake.
    pub fn api_base(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    pub fn last(&self) -> Recorded {
        self.requests().pop().expect("the upstream saw no request")
    }

    pub fn open_gate(&self) {
        *self.state.gate.lock().unwrap() = true;
        self.state.gate_cv.notify_all();
    }

    pub fn gate_is_open(&self) -> bool {
        *self.state.gate.lock().unwrap()
    }

    /// How many TCP connections the gateway opened to this fake.
    pub fn connections(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Sets the `Location` of the `redirect*` modes.
    pub fn redirect_to(&self, url: &str) {
        *self.state.redirect_to.lock().unwrap() = url.to_string();
    }

    /// Whether an `endless` stream saw its client (litegate) go away.
    pub fn client_gone(&self) -> bool {
        self.state.client_gone.load(Ordering::SeqCst)
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        self.open_gate();
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A port with nothing listening on it (bound, then released).
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A config whose `model_list` has one deployment per mode (`model_name` = mode) at `fake`,
/// plus `refused` at a port nothing listens on, `stalled` (`gated` with `stream_timeout: 1`),
/// and `extra` appended to `model_list`.
pub fn config(fake: &Fake, extra: &str) -> String {
    let mut y = String::from("model_list:\n");
    for m in MODES {
        let timeout = match *m {
            "slow" => ", timeout: 1",
            "flood" | "flood_big" => ", stream_timeout: 2",
            _ => "",
        };
        y.push_str(&format!(
            "  - model_name: {m}\n    litellm_params: {{ model: openai/{m}, api_base: \"{}\", \
             api_key: {UPSTREAM_KEY}, input_cost_per_token: {IN_COST}, \
             output_cost_per_token: {OUT_COST}{timeout} }}\n",
            fake.api_base()
        ));
        if *m == "cache_ok" {
            y.push_str(&format!(
                "    model_info: {{ cache_read_input_token_cost: {CACHE_READ_COST} }}\n"
            ));
        }
    }
    y.push_str(&format!(
        "  - model_name: refused\n    litellm_params: {{ model: openai/json, api_base: \
         \"http://127.0.0.1:{}/v1\", api_key: {UPSTREAM_KEY} }}\n",
        dead_port()
    ));
    // A stream that stalls after its first chunk, with a short stream timeout.
    y.push_str(&format!(
        "  - model_name: stalled\n    litellm_params: {{ model: openai/gated, api_base: \"{}\", \
         api_key: {UPSTREAM_KEY}, input_cost_per_token: {IN_COST}, \
         output_cost_per_token: {OUT_COST}, stream_timeout: 1 }}\n",
        fake.api_base()
    ));
    y.push_str(extra);
    y.push_str("general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n");
    y
}

// ---------------------------------------------------------------------------------------------

fn serve(conn: TcpStream, port: u16, st: &State) {
    conn.set_nodelay(true).ok();
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(read_half);
    let mut w = conn;
    loop {
        let Some((method, path, headers, body)) = read_request(&mut r) else {
            return;
        };
        let raw = body;
        let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let rec = Recorded {
            method,
            raw,
            path: path.clone(),
            headers,
            body: body.clone(),
        };
        st.requests.lock().unwrap().push(rec.clone());
        if !answer(&mut w, port, st, &rec) {
            return;
        }
    }
}

/// Reads one request (line, headers, a `Content-Length` body) off a fake's connection:
/// (method, path, headers, body), or None when the connection ends first.
#[allow(clippy::type_complexity)]
pub fn read_request(
    r: &mut impl BufRead,
) -> Option<(String, String, Vec<(String, String)>, Vec<u8>)> {
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return None;
    }
    let method = line.split_whitespace().next().unwrap_or("").to_string();
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((method, path, headers, body))
}

fn usage() -> Value {
    json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30})
}

fn json_answer(path: &str, model: &str, with_usage: bool) -> Value {
    let mut v = if path.ends_with("/embeddings") {
        json!({"object": "list", "model": model,
               "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
               "usage": {"prompt_tokens": 10, "total_tokens": 10}})
    } else if path.ends_with("/chat/completions") {
        json!({"id": "chatcmpl-fake", "object": "chat.completion", "created": 1, "model": model,
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "Hello from the fake upstream"}}],
               "usage": usage()})
    } else {
        json!({"id": "cmpl-fake", "object": "text_completion", "created": 1, "model": model,
               "choices": [{"index": 0, "finish_reason": "stop", "text": "Hello from the fake upstream"}],
               "usage": usage()})
    };
    if !with_usage {
        if let Some(o) = v.as_object_mut() {
            o.remove("usage");
        }
    }
    v
}

fn chunk(path: &str, model: &str, text: Option<&str>) -> Value {
    let chat = path.ends_with("/chat/completions");
    let choice = match (chat, text) {
        (true, Some(t)) => json!({"index": 0, "delta": {"content": t}, "finish_reason": null}),
        (true, None) => json!({"index": 0, "delta": {}, "finish_reason": "stop"}),
        (false, Some(t)) => json!({"index": 0, "text": t, "finish_reason": null}),
        (false, None) => json!({"index": 0, "text": "", "finish_reason": "stop"}),
    };
    json!({"id": "chatcmpl-fake", "object": if chat { "chat.completion.chunk" } else { "text_completion" },
           "created": 1, "model": model, "choices": [choice]})
}

fn write_json(w: &mut TcpStream, status: u16, v: &Value) -> bool {
    let b = v.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Internal Server Error",
    };
    w.write_all(
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )
        .as_bytes(),
    )
    .and_then(|_| w.flush())
    .is_ok()
}

fn sse_head(w: &mut TcpStream) -> std::io::Result<()> {
    w.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
    )?;
    w.flush()
}

fn sse_event(w: &mut TcpStream, data: &str) -> std::io::Result<()> {
    let ev = format!("data: {data}\n\n");
    w.write_all(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes())?;
    w.flush()
}

/// Answers one request; false when the connection must close.
fn answer(w: &mut TcpStream, port: u16, st: &State, rec: &Recorded) -> bool {
    let mode = rec.body["model"].as_str().unwrap_or("").to_string();
    // Azure's `?api-version=` is not part of the endpoint.
    let path = rec.path.split('?').next().unwrap_or("");
    let stream = rec.body["stream"].as_bool().unwrap_or(false);
    let wants_usage = rec.body["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    // A real model name (priced from the embedded table) answers as `json` or `sse`.
    let kind = match (PRICED.contains(&mode.as_str()), stream) {
        (true, false) => "json",
        (true, true) => "sse",
        (false, _) => mode.as_str(),
    };
    match kind {
        "json" => write_json(w, 200, &json_answer(path, &mode, true)),
        "lag" => {
            std::thread::sleep(Duration::from_millis(100));
            write_json(w, 200, &json_answer(path, &mode, true))
        }
        "nousage" if !stream => write_json(w, 200, &json_answer(path, &mode, false)),
        "slow" => {
            std::thread::sleep(Duration::from_secs(SLOW_SECS));
            write_json(w, 200, &json_answer(path, &mode, true))
        }
        "fail500" | "fail401" => {
            let status = if mode == "fail500" { 500 } else { 401 };
            let sent = bearer(rec);
            let msg = format!(
                "Incorrect API key provided: {sent} ({UPSTREAM_KEY}) calling \
                 http://127.0.0.1:{port}{path}"
            );
            write_json(
                w,
                status,
                &json!({"error": {"message": msg, "type": "invalid_request_error", "code": status}}),
            )
        }
        "flood" | "flood_big" | "endless_line" | "huge_json" => misbehave(w, st, path, &mode),
        m if m.starts_with("redirect") => {
            let to = st.redirect_to.lock().unwrap().clone();
            let status = &m["redirect".len()..];
            let body = format!("Moved to {to}");
            let _ = w.write_all(
                format!(
                    "HTTP/1.1 {status} Moved\r\nLocation: {to}\r\nContent-Type: text/plain\r\n\
                     Content-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
            true
        }
        m if (m.starts_with("lie_") || m == "cache_ok") && !stream => {
            let mut v = json_answer(path, m, true);
            v["usage"] = lying_usage(m);
            write_json(w, 200, &v)
        }
        "tools" => tools(w, &mode, stream, wants_usage),
        "echo_url" => {
            let host = rec.header("host").unwrap_or("").to_string();
            let sent = bearer(rec);
            let msg = format!(
                "cannot serve http://127.0.0.1:{port}{path} (Host: {host}, upstream at \
                 127.0.0.1:{port}, key {sent})"
            );
            let err = json!({"error": {"message": msg, "type": "invalid_request_error"}});
            if !stream {
                return write_json(w, 400, &err);
            }
            let _ = (|| -> std::io::Result<()> {
                sse_head(w)?;
                sse_event(w, &chunk(path, &mode, Some("Hello")).to_string())?;
                sse_event(w, &err.to_string())?;
                sse_event(w, &format!("plain text: {msg}"))?;
                w.write_all(b"0\r\n\r\n")?;
                w.flush()
            })();
            false
        }
        "sse" | "gated" | "nousage" | "lie_negative" | "lie_huge" | "lie_strings" | "lie_total"
        | "lie_over" | "lie_cache" | "cache_ok" => {
            let r = (|| -> std::io::Result<()> {
                sse_head(w)?;
                for (i, t) in ["Hello", " from", " the fake"].iter().enumerate() {
                    sse_event(w, &chunk(path, &mode, Some(t)).to_string())?;
                    if i == 0 && mode == "gated" {
                        let g = st.gate.lock().unwrap();
                        let _g = st
                            .gate_cv
                            .wait_timeout_while(g, Duration::from_secs(30), |open| !*open)
                            .unwrap();
                    }
                }
                sse_event(w, &chunk(path, &mode, None).to_string())?;
                let lies = mode.starts_with("lie_") || mode == "cache_ok";
                if (wants_usage && mode != "nousage") || lies {
                    sse_event(
                        w,
                        &json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                                "created": 1, "model": mode, "choices": [],
                                "usage": lying_usage(&mode)})
                        .to_string(),
                    )?;
                }
                sse_event(w, "[DONE]")?;
                w.write_all(b"0\r\n\r\n")?;
                w.flush()
            })();
            r.is_ok()
        }
        "drop" => {
            let _ = (|| -> std::io::Result<()> {
                sse_head(w)?;
                sse_event(w, &chunk(path, &mode, Some("Hello")).to_string())?;
                sse_event(w, &chunk(path, &mode, Some(" wor")).to_string())
            })();
            let _ = w.shutdown(std::net::Shutdown::Both);
            false
        }
        "endless" => {
            let started = Instant::now();
            let r = (|| -> std::io::Result<()> {
                sse_head(w)?;
                while started.elapsed() < Duration::from_secs(60) {
                    sse_event(w, &chunk(path, &mode, Some("more ")).to_string())?;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(())
            })();
            if r.is_err() {
                st.client_gone.store(true, Ordering::SeqCst);
            }
            false
        }
        _ => write_json(
            w,
            404,
            &json!({"error": {"message": format!("fake upstream: unknown model {mode}")}}),
        ),
    }
}

/// The `flood`, `endless_line` and `huge_json` modes: they write until a write fails (litegate
/// gave up) or 60 s pass; `client_gone` records the former.
fn misbehave(w: &mut TcpStream, st: &State, path: &str, mode: &str) -> bool {
    let started = Instant::now();
    let long = || started.elapsed() > Duration::from_secs(60);
    let r = (|| -> std::io::Result<()> {
        match mode {
            "flood" | "flood_big" => {
                sse_head(w)?;
                let (text, per_write) = if mode == "flood" {
                    ("more ".to_string(), 64)
                } else {
                    ("0123456789abcdef".repeat(1024), 4)
                };
                let ev = format!("data: {}\n\n", chunk(path, mode, Some(&text)));
                let piece = format!("{:x}\r\n{ev}\r\n", ev.len()).repeat(per_write);
                while !long() {
                    w.write_all(piece.as_bytes())?;
                }
            }
            "endless_line" => {
                sse_head(w)?;
                let first = "data: {\"choices\": [{\"delta\": {\"content\": \"";
                w.write_all(format!("{:x}\r\n{first}\r\n", first.len()).as_bytes())?;
                let piece = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
                while !long() {
                    w.write_all(piece.as_bytes())?;
                }
            }
            _ => {
                w.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                      Content-Length: 1000000000\r\n\r\n{\"usage\": {}, \"pad\": \"",
                )?;
                let piece = "x".repeat(1024 * 1024);
                while !long() {
                    w.write_all(piece.as_bytes())?;
                }
            }
        }
        Ok(())
    })();
    if r.is_err() {
        st.client_gone.store(true, Ordering::SeqCst);
    }
    false
}

/// The `tools` mode: text, then tool calls `weather({"city":"Paris"})` and `time({})`.
fn tools(w: &mut TcpStream, mode: &str, stream: bool, wants_usage: bool) -> bool {
    let calls = json!([
        {"id": "call_1", "type": "function",
         "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
        {"id": "call_2", "type": "function", "function": {"name": "time", "arguments": "{}"}}]);
    if !stream {
        return write_json(
            w,
            200,
            &json!({"id": "chatcmpl-tools", "object": "chat.completion", "created": 1,
                "model": mode, "choices": [{"index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": "Let me check.",
                            "tool_calls": calls}}], "usage": usage()}),
        );
    }
    let delta = |d: Value, finish: Value| {
        json!({"id": "chatcmpl-tools", "object": "chat.completion.chunk", "created": 1,
               "model": mode, "choices": [{"index": 0, "delta": d, "finish_reason": finish}]})
        .to_string()
    };
    let r = (|| -> std::io::Result<()> {
        sse_head(w)?;
        sse_event(
            w,
            &delta(
                json!({"role": "assistant", "content": "Let me check."}),
                Value::Null,
            ),
        )?;
        sse_event(
            w,
            &delta(
                json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "weather", "arguments": ""}}]}),
                Value::Null,
            ),
        )?;
        for piece in ["{\"city\":", "\"Paris\"}"] {
            sse_event(
                w,
                &delta(
                    json!({"tool_calls": [{"index": 0,
                "function": {"arguments": piece}}]}),
                    Value::Null,
                ),
            )?;
        }
        sse_event(
            w,
            &delta(
                json!({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
            "function": {"name": "time", "arguments": "{}"}}]}),
                Value::Null,
            ),
        )?;
        sse_event(w, &delta(json!({}), json!("tool_calls")))?;
        if wants_usage {
            sse_event(
                w,
                &json!({"id": "chatcmpl-tools", "object": "chat.completion.chunk", "created": 1,
                        "model": mode, "choices": [], "usage": usage()})
                .to_string(),
            )?;
        }
        sse_event(w, "[DONE]")?;
        w.write_all(b"0\r\n\r\n")?;
        w.flush()
    })();
    r.is_ok()
}
