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
    key_for(s, body)
}

pub fn stream_body(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn num(s: &Server, sql: &str) -> f64 {
    s.value(sql, [])
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

mod calls;
mod limits;
mod spend;
