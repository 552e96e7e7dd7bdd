//! The `anthropic` provider (issue 13) against a small fake Anthropic upstream on loopback:
//! the wire format (POST `/v1/messages`, `x-api-key`, `anthropic-version`, no
//! `Authorization`, the Messages body), answers and streams in Anthropic's format translated
//! to OpenAI's, spend recorded from the reported usage (cache tokens included), Anthropic
//! errors mapped to our envelope with the upstream's status, and non-chat calls refused.

use crate::common::*;
use crate::upstream::{IN_COST, OUT_COST, UPSTREAM_KEY};
use serde_json::{json, Value};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request per connection; the answer depends on the body's `model` and `stream`
/// (`/v1/messages/count_tokens` answers 42 input tokens). Also `messages.rs`'s fake.
pub fn fake() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let s = s2.clone();
            std::thread::spawn(move || serve(c, &s));
        }
    });
    (port, seen)
}

/// The body of the request just recorded.
fn body_seen(seen: &Mutex<Vec<Seen>>) -> Value {
    seen.lock()
        .expect("lock")
        .last()
        .map_or(Value::Null, |s| s.body.clone())
}

/// Events as Anthropic streams them: `event: <type>` and `data: <json>`.
fn sse(evs: &[Value]) -> String {
    let mut t = String::new();
    for d in evs {
        t.push_str(&format!(
            "event: {}\ndata: {d}\n\n",
            d["type"].as_str().unwrap_or("")
        ));
    }
    t
}

/// The answers of the models that answer with blocks (a JSON `response_format`'s forced tool,
/// `claude-call`'s tool call, `claude-think`'s thinking), as JSON or as a stream.
fn scripted(model: &str, body: &Value, stream: bool) -> Option<(u16, &'static str, String)> {
    let usage = json!({"input_tokens": 10, "output_tokens": 15});
    let forced_json = body["tool_choice"] == json!({"type": "tool", "name": "json_tool_call"});
    // (blocks of the JSON answer, stop reason, stream events of the blocks)
    let (blocks, stop, events) = if forced_json {
        (
            json!([{"type": "tool_use", "id": "toolu_j", "name": "json_tool_call",
                "input": {"answer": 42}}]),
            "tool_use",
            vec![
                json!({"type": "content_block_start", "index": 0, "content_block":
                    {"type": "tool_use", "id": "toolu_j", "name": "json_tool_call", "input": {}}}),
                json!({"type": "content_block_delta", "index": 0, "delta":
                    {"type": "input_json_delta", "partial_json": "{\"answer\": "}}),
                json!({"type": "content_block_delta", "index": 0, "delta":
                    {"type": "input_json_delta", "partial_json": "42}"}}),
                json!({"type": "content_block_stop", "index": 0}),
            ],
        )
    } else if model == "claude-call" {
        (
            json!([{"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_9", "name": "weather",
                 "input": {"city": "Paris"}}]),
            "tool_use",
            vec![
                json!({"type": "content_block_start", "index": 0, "content_block":
                    {"type": "text", "text": ""}}),
                json!({"type": "content_block_delta", "index": 0, "delta":
                    {"type": "text_delta", "text": "Let me check."}}),
                json!({"type": "content_block_stop", "index": 0}),
                json!({"type": "content_block_start", "index": 1, "content_block":
                    {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {}}}),
                json!({"type": "content_block_delta", "index": 1, "delta":
                    {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
                json!({"type": "content_block_delta", "index": 1, "delta":
                    {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
                json!({"type": "content_block_stop", "index": 1}),
            ],
        )
    } else if model == "claude-think" {
        (
            json!([{"type": "thinking", "thinking": "Six times seven.", "signature": "sig-1"},
                {"type": "text", "text": "42"}]),
            "end_turn",
            vec![
                json!({"type": "content_block_start", "index": 0, "content_block":
                    {"type": "thinking", "thinking": ""}}),
                json!({"type": "content_block_delta", "index": 0, "delta":
                    {"type": "thinking_delta", "thinking": "Six times"}}),
                json!({"type": "content_block_delta", "index": 0, "delta":
                    {"type": "thinking_delta", "thinking": " seven."}}),
                json!({"type": "content_block_delta", "index": 0, "delta":
                    {"type": "signature_delta", "signature": "sig-1"}}),
                json!({"type": "content_block_stop", "index": 0}),
                json!({"type": "content_block_start", "index": 1, "content_block":
                    {"type": "text", "text": ""}}),
                json!({"type": "content_block_delta", "index": 1, "delta":
                    {"type": "text_delta", "text": "42"}}),
                json!({"type": "content_block_stop", "index": 1}),
            ],
        )
    } else {
        return None;
    };
    if !stream {
        let answer = json!({"id": "msg_b", "type": "message", "role": "assistant",
            "model": model, "content": blocks, "stop_reason": stop, "stop_sequence": null,
            "usage": usage});
        return Some((200, "application/json", answer.to_string()));
    }
    let mut evs = vec![json!({"type": "message_start", "message": {"id": "msg_b",
        "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "usage": {"input_tokens": 10, "output_tokens": 1}}})];
    evs.extend(events);
    evs.push(
        json!({"type": "message_delta", "delta": {"stop_reason": stop},
        "usage": {"output_tokens": 15}}),
    );
    evs.push(json!({"type": "message_stop"}));
    Some((200, "text/event-stream", sse(&evs)))
}

fn serve(c: TcpStream, seen: &Mutex<Vec<Seen>>) {
    let mut r = BufReader::new(c.try_clone().expect("clone"));
    let mut w = c;
    let Some((_, path, headers, b)) = crate::upstream::read_request(&mut r) else {
        return;
    };
    let body: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
    let model = body["model"].as_str().unwrap_or("").to_string();
    let stream = body["stream"] == true;
    let usage = if model == "claude-cache" {
        json!({"input_tokens": 100, "cache_read_input_tokens": 1000,
               "cache_creation_input_tokens": 50, "output_tokens": 20})
    } else {
        json!({"input_tokens": 10, "cache_read_input_tokens": 2, "output_tokens": 20})
    };
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    let path_is_count = path.ends_with("/messages/count_tokens");
    seen.lock().expect("lock").push(Seen {
        path,
        headers,
        body,
    });
    let scripted = scripted(&model, &body_seen(seen), stream);
    let (status, ctype, text) = if path_is_count {
        (
            200,
            "application/json",
            json!({"input_tokens": 42}).to_string(),
        )
    } else if let Some(t) = scripted {
        t
    } else if model == "claude-err" {
        (
            429,
            "application/json",
            json!({"type": "error", "error": {"type": "rate_limit_error",
                "message": "Number of requests has exceeded your rate limit"}})
            .to_string(),
        )
    } else if stream && model == "claude-tool" {
        let t = [
            json!({"type": "message_start", "message": {"id": "msg_t", "model": model,
                "usage": {"input_tokens": 10, "cache_read_input_tokens": 2, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use",
                "id": "toolu_1", "name": "weather", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
                "partial_json": "{\"city\":"}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
                "partial_json": "\"Paris\"}"}}),
            json!({"type": "error", "error": {"type": "overloaded_error",
                "message": format!("Overloaded, key {UPSTREAM_KEY}")}}),
        ];
        let mut text = String::new();
        for d in t {
            text.push_str(&format!(
                "event: {}\ndata: {d}\n\n",
                d["type"].as_str().unwrap_or("")
            ));
        }
        (200, "text/event-stream", text)
    } else if stream {
        let evs = [
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_s",
                "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "usage": start_usage}}),
            ),
            ("ping", json!({"type": "ping"})),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": "Hello"}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": " world"}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 20}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ];
        let mut t = String::new();
        for (e, d) in evs {
            t.push_str(&format!("event: {e}\ndata: {d}\n\n"));
        }
        (200, "text/event-stream", t)
    } else {
        (
            200,
            "application/json",
            json!({"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": "Hello world"}],
                "stop_reason": "max_tokens", "stop_sequence": null,
                "usage": usage})
            .to_string(),
        )
    };
    let _ = write!(
        w,
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = w.flush();
}

/// Cache prices of `claude-cache` (per token; input and output are `IN_COST`, `OUT_COST`).
const CACHE_READ_COST: f64 = 0.0001;
const CACHE_WRITE_COST: f64 = 0.00125;

pub fn setup() -> (Server, String, Arc<Mutex<Vec<Seen>>>) {
    let (port, seen) = fake();
    let mut y = String::from("model_list:\n");
    for m in [
        "claude-ok",
        "claude-err",
        "claude-tool",
        "claude-cache",
        "claude-call",
        "claude-think",
    ] {
        y.push_str(&format!(
            "  - model_name: {m}\n    litellm_params: {{ model: anthropic/{m}, \
             api_base: \"http://127.0.0.1:{port}\", api_key: {UPSTREAM_KEY}, \
             input_cost_per_token: {IN_COST}, output_cost_per_token: {OUT_COST} }}\n"
        ));
        if m == "claude-cache" {
            y.push_str(&format!(
                "    model_info: {{ cache_read_input_token_cost: {CACHE_READ_COST}, \
                 cache_creation_input_token_cost: {CACHE_WRITE_COST} }}\n"
            ));
        }
    }
    y.push_str("general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n");
    let s = Server::start_with(&y, &[]);
    let k = key_for(&s, json!({}));
    (s, k, seen)
}

/// 10 input + 2 cache-read prompt tokens, 20 output tokens.
const SPEND: f64 = 12.0 * IN_COST + 20.0 * OUT_COST;

#[test]
fn anthropic_speaks_the_messages_api() {
    let (s, k, seen) = setup();
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "claude-ok", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "user", "content": "there"}], "stop": "END", "temperature": 0.1}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["prompt_tokens"], 12);
    assert_eq!(v["usage"]["completion_tokens"], 20);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    let row = spend_log_of(&s, &r);
    assert_eq!(row["prompt_tokens"], 12, "{row}");
    assert_eq!(row["completion_tokens"], 20, "{row}");
    assert!(
        (row["spend"].as_f64().expect("spend") - SPEND).abs() < 1e-9,
        "{row}"
    );
    let seen = seen.lock().expect("lock");
    let rec = seen.last().expect("a request");
    assert_eq!(rec.path, "/v1/messages");
    assert_eq!(rec.header("x-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(rec.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(rec.header("authorization"), None);
    assert_eq!(
        rec.body,
        json!({"model": "claude-ok", "max_tokens": 4096,
            "system": [{"type": "text", "text": "be brief"}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                {"type": "text", "text": "there"}]}],
            "stop_sequences": ["END"], "temperature": 0.1})
    );
}

#[test]
fn anthropic_streams_become_openai_chunks() {
    let (s, k, seen) = setup();
    for wants_usage in [false, true] {
        let mut body = json!({"model": "claude-ok", "stream": true,
            "messages": [{"role": "user", "content": "hi"}]});
        if wants_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        let r = s.post("/v1/chat/completions", &k, body);
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        let chunks: Vec<Value> = text
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).expect("json chunk"))
            .collect();
        assert!(chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk"));
        let said: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(said, "Hello world");
        assert!(chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop"));
        let usage = chunks.iter().find(|c| !c["usage"].is_null());
        assert_eq!(usage.is_some(), wants_usage, "{text}");
        if let Some(u) = usage {
            assert_eq!(u["usage"]["prompt_tokens"], 12);
            assert_eq!(u["usage"]["completion_tokens"], 20);
        }
        let row = spend_log_of(&s, &r);
        assert_eq!(row["status"], "success", "{row}");
        assert!(
            (row["spend"].as_f64().expect("spend") - SPEND).abs() < 1e-9,
            "{row}"
        );
        let seen = seen.lock().expect("lock");
        let rec = seen.last().expect("a request");
        assert_eq!(rec.path, "/v1/messages");
        assert_eq!(rec.body["stream"], true);
        assert!(rec.body.get("stream_options").is_none());
        assert_eq!(rec.header("authorization"), None);
    }
}

/// Cache reads and writes are charged at the deployment's cache prices, as LiteLLM charges
/// them: (100 uncached × input + 1000 read × cache read + 50 written × cache write) + 20 ×
/// output, the same for a stream; the spend log shows all 1150 prompt tokens and the cache
/// figures in `metadata.additional_usage_values`.
#[test]
fn anthropic_cache_tokens_are_charged_at_cache_prices() {
    let (s, k, _) = setup();
    let want =
        100.0 * IN_COST + 1000.0 * CACHE_READ_COST + 50.0 * CACHE_WRITE_COST + 20.0 * OUT_COST;
    for stream in [false, true] {
        let r = s.post(
            "/v1/chat/completions",
            &k,
            json!({"model": "claude-cache", "stream": stream,
                "messages": [{"role": "user", "content": "hi"}]}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let row = spend_log_of(&s, &r);
        assert_eq!(row["status"], "success", "{row}");
        assert_eq!(row["prompt_tokens"], 1150, "{row}");
        assert_eq!(row["completion_tokens"], 20, "{row}");
        assert_eq!(row["total_tokens"], 1170, "{row}");
        let spend = row["spend"].as_f64().expect("spend");
        assert!(
            (spend - want).abs() < 1e-9,
            "stream {stream}: {spend} != {want}"
        );
        let extra = &row["metadata"]["additional_usage_values"];
        assert_eq!(extra["cache_read_input_tokens"], 1000, "{row}");
        assert_eq!(extra["cache_creation_input_tokens"], 50, "{row}");
        assert_eq!(
            extra["prompt_tokens_details"]["cached_tokens"], 1000,
            "{row}"
        );
    }
    // The key's spend is the same figure, twice.
    let info = s.get(&format!("/key/info?key={k}"), MASTER).json();
    let key_spend = info["info"]["spend"].as_f64().expect("key spend");
    assert!((key_spend - 2.0 * want).abs() < 1e-9, "{info}");
    // Without cache prices the cache tokens are charged at the input price (claude-ok: 10
    // input + 2 read), and the row's metadata says so.
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "claude-ok", "messages": [{"role": "user", "content": "hi"}]}),
    );
    let row = spend_log_of(&s, &r);
    assert!(
        (row["spend"].as_f64().expect("spend") - SPEND).abs() < 1e-9,
        "{row}"
    );
    assert_eq!(
        row["metadata"]["additional_usage_values"]["cache_read_input_tokens"],
        2
    );
}

#[test]
fn anthropic_errors_and_unsupported_endpoints() {
    let (s, k, seen) = setup();
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "claude-err", "messages": [{"role": "user", "content": "hi"}]}),
    );
    let v = assert_error_says(&r, 429, "exceeded your rate limit");
    assert!(!v.to_string().contains(UPSTREAM_KEY));
    let n = seen.lock().expect("lock").len();
    let r = s.post(
        "/v1/embeddings",
        &k,
        json!({"model": "claude-ok", "input": "hi"}),
    );
    assert_error_says(&r, 400, "only /v1/chat/completions");
    let r = s.post(
        "/v1/completions",
        &k,
        json!({"model": "claude-ok", "prompt": "hi"}),
    );
    assert_error_says(&r, 400, "only /v1/chat/completions");
    // The Messages API answers one choice: n > 1 is refused, not billed as one.
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "claude-ok", "n": 2, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(
        assert_error_says(&r, 400, "`n` must be 1")["error"]["param"],
        "n"
    );
    assert_eq!(seen.lock().expect("lock").len(), n, "nothing sent upstream");
}

#[test]
fn anthropic_stream_tool_calls_and_error_events() {
    let (s, k, seen) = setup();
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "claude-tool", "stream": true,
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "weather",
                "parameters": {"type": "object"}}}], "tool_choice": "required"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(!text.contains(UPSTREAM_KEY), "{text}");
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("json event"))
        .collect();
    let calls: Vec<&Value> = events
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["id"], "toolu_1", "{text}");
    assert_eq!(calls[0]["function"]["name"], "weather");
    let args: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
    let err = events.last().expect("an error event");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Overloaded") && m.contains("[redacted]")),
        "{text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert_eq!(spend_log_of(&s, &r)["status"], "failure");
    let seen = seen.lock().expect("lock");
    let body = &seen.last().expect("a request").body;
    assert_eq!(body["tool_choice"], json!({"type": "any"}));
    assert_eq!(
        body["tools"],
        json!([{"name": "weather", "input_schema": {"type": "object"}}])
    );
}

#[test]
fn anthropic_deployments_start_with_the_key_from_the_environment() {
    let (code, _, err) = crate::config_file::check(
        "model_list:\n  - model_name: c\n    litellm_params: {model: anthropic/claude-3-5-sonnet}\n",
        &[("ANTHROPIC_API_KEY", "sk-ant-env")],
    );
    assert_eq!(code, Some(0), "{err}");
    let (port, seen) = fake();
    let y = format!(
        "model_list:\n  - model_name: c\n    litellm_params: {{ model: anthropic/claude-ok, \
         api_base: \"http://127.0.0.1:{port}/v1\" }}\n\
         general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n"
    );
    let s = Server::start_with_env(&y, &[], &[("ANTHROPIC_API_KEY", "sk-ant-env")]);
    let k = key_for(&s, json!({}));
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "c", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = seen.lock().expect("lock");
    let rec = seen.last().expect("a request");
    assert_eq!(rec.path, "/v1/messages");
    assert_eq!(rec.header("x-api-key"), Some("sk-ant-env"));
    assert_eq!(rec.header("authorization"), None);
}
