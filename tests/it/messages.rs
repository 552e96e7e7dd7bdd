//! Anthropic's Messages API door, `/v1/messages` and `/v1/messages/count_tokens` (issue 13
//! item 2): passed through to an Anthropic deployment (the fake Anthropic server of
//! `anthropic.rs` checks the wire), translated for an OpenAI-compatible deployment (the fake
//! OpenAI upstream of `upstream.rs`) and for the mock provider; spend recorded once per call
//! as `anthropic_messages`; keys by `x-api-key` and by Bearer; refusals in Anthropic's error
//! envelope that write nothing; count_tokens both ways; the `anthropic` Python SDK; a
//! Claude-Code-like request.

use crate::anthropic::{fake as fake_anthropic, Seen};
use crate::common::*;
use crate::upstream::{Fake, CALL_COST, IN_COST, OUT_COST, UPSTREAM_KEY};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

struct World {
    s: Server,
    key: String,
    anthropic: Arc<Mutex<Vec<Seen>>>,
    openai: Fake,
}

/// `sonnet` (and `claude-tool`, `claude-err`) on the fake Anthropic, `gpt` (`json`), `gpt-sse`
/// (`sse`) and `gpt-tools` (`tools`) on the fake OpenAI upstream, mock model `A`.
fn world() -> World {
    let (port, anthropic) = fake_anthropic();
    let openai = Fake::start();
    let mut y = String::from("model_list:\n");
    let prices = format!("input_cost_per_token: {IN_COST}, output_cost_per_token: {OUT_COST}");
    for (name, model) in [
        ("sonnet", "claude-ok"),
        ("claude-tool", "claude-tool"),
        ("claude-err", "claude-err"),
    ] {
        y.push_str(&format!(
            "  - model_name: {name}\n    litellm_params: {{ model: anthropic/{model}, \
             api_base: \"http://127.0.0.1:{port}\", api_key: {UPSTREAM_KEY}, {prices} }}\n"
        ));
    }
    for (name, mode) in [("gpt", "json"), ("gpt-sse", "sse"), ("gpt-tools", "tools")] {
        y.push_str(&format!(
            "  - model_name: {name}\n    litellm_params: {{ model: openai/{mode}, \
             api_base: \"{}\", api_key: {UPSTREAM_KEY}, {prices} }}\n",
            openai.api_base()
        ));
    }
    y.push_str(
        "  - model_name: A\n    litellm_params: { model: mock/a, input_cost_per_token: 0.001, \
         output_cost_per_token: 0.002 }\n",
    );
    y.push_str("general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n");
    let s = Server::start_with(&y, &[]);
    let key = key_for(&s, json!({}));
    World {
        s,
        key,
        anthropic,
        openai,
    }
}

fn body(model: &str) -> Value {
    json!({"model": model, "max_tokens": 100,
           "messages": [{"role": "user", "content": "hi"}]})
}

/// POST `body` to `path` with the key in `x-api-key` (as the anthropic SDK sends it).
fn post_x(s: &Server, path: &str, key: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    let mut h = vec![("x-api-key", key), ("anthropic-version", "2023-06-01")];
    h.extend_from_slice(extra);
    s.post_anon(path, body, &h)
}

/// An Anthropic event stream as (event name, data) pairs; the name must match `data.type`.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let mut name = "";
            let mut data = Value::Null;
            for line in f.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n;
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}"));
                }
            }
            assert_eq!(data["type"], name, "{f}");
            (name.to_string(), data)
        })
        .collect()
}

fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}

/// The text of the `text_delta`s and the `partial_json` of the `input_json_delta`s.
fn said(evs: &[(String, Value)], kind: &str, field: &str) -> String {
    evs.iter()
        .filter(|(_, d)| d["delta"]["type"] == kind)
        .filter_map(|(_, d)| d["delta"][field].as_str())
        .collect()
}

fn spend_is(row: &Value, prompt: u64, completion: u64, spend: f64) {
    assert_eq!(row["call_type"], "anthropic_messages", "{row}");
    assert_eq!(row["prompt_tokens"], prompt, "{row}");
    assert_eq!(row["completion_tokens"], completion, "{row}");
    assert!(
        (row["spend"].as_f64().expect("spend") - spend).abs() < 1e-9,
        "{row}"
    );
}

/// 10 input + 2 cache-read prompt tokens, 20 output tokens (the fake Anthropic's usage).
const ANTHROPIC_SPEND: f64 = 12.0 * IN_COST + 20.0 * OUT_COST;

#[test]
fn messages_pass_through_to_an_anthropic_deployment() {
    let w = world();
    let mut b = body("sonnet");
    b["system"] = json!([{"type": "text", "text": "be brief",
                          "cache_control": {"type": "ephemeral"}}]);
    b["metadata"] = json!({"user_id": "u-1"});
    b["mock_response"] = Value::Null;
    b["api_base"] = json!("http://evil.example");
    let r = post_x(
        &w.s,
        "/v1/messages",
        &w.key,
        &b,
        &[("anthropic-beta", "prompt-caching-2024-07-31")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Hello world");
    assert_eq!(v["stop_reason"], "max_tokens", "relayed as it came");
    assert_eq!(v["usage"]["cache_read_input_tokens"], 2);
    spend_is(&spend_log_of(&w.s, &r), 12, 20, ANTHROPIC_SPEND);
    let seen = w.anthropic.lock().expect("lock");
    let rec = seen.last().expect("a request");
    assert_eq!(rec.path, "/v1/messages");
    assert_eq!(rec.header("x-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(rec.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        rec.header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );
    assert_eq!(rec.header("authorization"), None);
    assert_eq!(
        rec.body,
        json!({"model": "claude-ok", "max_tokens": 100,
               "messages": [{"role": "user", "content": "hi"}],
               "system": [{"type": "text", "text": "be brief",
                           "cache_control": {"type": "ephemeral"}}],
               "metadata": {"user_id": "u-1"}}),
        "the deployment's model, gateway-only fields gone, the rest as sent"
    );
}

#[test]
fn anthropic_streams_are_relayed_event_by_event() {
    let w = world();
    let mut b = body("sonnet");
    b["stream"] = json!(true);
    let r = w.s.post("/v1/messages?beta=true", &w.key, b);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/event-stream")));
    let evs = events(&r.text());
    assert_eq!(
        names(&evs),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(said(&evs, "text_delta", "text"), "Hello world");
    spend_is(&spend_log_of(&w.s, &r), 12, 20, ANTHROPIC_SPEND);
    assert_eq!(spend_log_of(&w.s, &r)["status"], "success");
    assert_eq!(
        w.anthropic.lock().expect("lock").last().expect("sent").body["stream"],
        true
    );

    // An upstream error event ends the stream with ours, scrubbed; the call is a failure.
    let mut b = body("claude-tool");
    b["stream"] = json!(true);
    let r = w.s.post("/v1/messages", &w.key, b);
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(!text.contains(UPSTREAM_KEY), "{text}");
    let evs = events(&text);
    assert_eq!(
        said(&evs, "input_json_delta", "partial_json"),
        "{\"city\":\"Paris\"}"
    );
    let (last, err) = evs.last().expect("events");
    assert_eq!(last, "error");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Overloaded") && m.contains("[redacted]")),
        "{err}"
    );
    assert_eq!(spend_log_of(&w.s, &r)["status"], "failure");
}

#[test]
fn upstream_errors_keep_their_status_in_anthropics_envelope() {
    let w = world();
    let r = post_x(&w.s, "/v1/messages", &w.key, &body("claude-err"), &[]);
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("exceeded your rate limit")));
    assert!(!v.to_string().contains(UPSTREAM_KEY));
    assert_eq!(spend_log_of(&w.s, &r)["status"], "failure");
}

fn tool_conversation(model: &str) -> Value {
    json!({"model": model, "max_tokens": 50, "temperature": 0.5,
        "system": "be brief", "stop_sequences": ["END"], "top_k": 3,
        "metadata": {"user_id": "u-7"},
        "tools": [{"name": "weather", "description": "the weather",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                  {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "any"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "AAAA"}}]},
            {"role": "assistant", "content": [{"type": "text", "text": "checking"},
                {"type": "tool_use", "id": "toolu_1", "name": "weather",
                 "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                "content": [{"type": "text", "text": "sunny"}]}, {"type": "text", "text": "and?"}]}]})
}

#[test]
fn openai_deployments_are_translated_both_ways() {
    let w = world();
    let r = post_x(
        &w.s,
        "/v1/messages",
        &w.key,
        &tool_conversation("gpt-tools"),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Let me check."},
               {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
               {"type": "tool_use", "id": "call_2", "name": "time", "input": {}}])
    );
    assert_eq!(v["usage"]["input_tokens"], 10);
    assert_eq!(v["usage"]["output_tokens"], 20);
    spend_is(&spend_log_of(&w.s, &r), 10, 20, CALL_COST);
    let rec = w.openai.last();
    assert_eq!(rec.path, "/v1/chat/completions");
    assert_eq!(
        rec.header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    assert_eq!(
        rec.body,
        json!({"model": "tools", "max_tokens": 50, "temperature": 0.5, "stop": ["END"],
            "user": "u-7", "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "weather",
                "description": "the weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": "checking", "tool_calls": [{"id": "toolu_1",
                    "type": "function", "function": {"name": "weather",
                    "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
                {"role": "user", "content": "and?"}]}),
        "top_k and the server tool dropped"
    );
    // A plain text answer: end_turn.
    let r = post_x(&w.s, "/v1/messages", &w.key, &body("gpt"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Hello from the fake upstream"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
}

#[test]
fn openai_streams_become_anthropic_events() {
    let w = world();
    let mut b = body("gpt-sse");
    b["stream"] = json!(true);
    let r = w.s.post("/v1/messages", &w.key, b);
    assert_eq!(r.status, 200, "{}", r.text());
    let evs = events(&r.text());
    assert_eq!(
        names(&evs),
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(said(&evs, "text_delta", "text"), "Hello from the fake");
    let delta = &evs[6].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 20);
    assert_eq!(delta["usage"]["input_tokens"], 10);
    assert_eq!(
        w.openai.last().body["stream_options"]["include_usage"],
        true
    );
    spend_is(&spend_log_of(&w.s, &r), 10, 20, CALL_COST);

    // Streamed tool calls: a text block, then one tool_use block per call.
    let mut b = tool_conversation("gpt-tools");
    b["stream"] = json!(true);
    let r = w.s.post("/v1/messages", &w.key, b);
    assert_eq!(r.status, 200, "{}", r.text());
    let evs = events(&r.text());
    let starts: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d)
        .collect();
    assert_eq!(starts.len(), 3, "{evs:?}");
    assert_eq!(starts[0]["content_block"]["type"], "text");
    assert_eq!(
        starts[1]["content_block"],
        json!({"type": "tool_use", "id": "call_1", "name": "weather", "input": {}})
    );
    assert_eq!(starts[2]["content_block"]["name"], "time");
    assert_eq!(starts[2]["index"], 2);
    let args: Vec<String> = [1, 2]
        .iter()
        .map(|i| {
            evs.iter()
                .filter(|(_, d)| d["index"] == *i && d["delta"]["type"] == "input_json_delta")
                .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
                .collect()
        })
        .collect();
    assert_eq!(args, ["{\"city\":\"Paris\"}", "{}"]);
    assert_eq!(
        evs.iter()
            .filter(|(n, _)| n == "content_block_stop")
            .count(),
        3
    );
    let (_, delta) = &evs[evs.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(evs.last().expect("events").0, "message_stop");
    assert_eq!(spend_log_of(&w.s, &r)["status"], "success");
}

#[test]
fn mock_models_answer_messages() {
    let s = Server::start();
    let k = key_for(&s, json!({}));
    let r = post_x(&s, "/v1/messages", &k, &body("A"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "This is a mock response from litegate."}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    let out = v["usage"]["output_tokens"].as_u64().expect("output tokens");
    assert!(out > 0);
    let row = spend_log_of(&s, &r);
    assert_eq!(row["call_type"], "anthropic_messages");
    assert_eq!(row["completion_tokens"], out);
    assert_eq!(s.count("SELECT count(*) FROM spend_logs"), 1);

    let mut b = body("A");
    b["stream"] = json!(true);
    b["mock_response"] = json!("pong pong");
    let r = post_x(&s, "/v1/messages", &k, &b, &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let evs = events(&r.text());
    assert_eq!(names(&evs)[0], "message_start");
    assert_eq!(said(&evs, "text_delta", "text"), "pong pong");
    assert_eq!(evs.last().expect("events").0, "message_stop");
    assert_eq!(spend_log_of(&s, &r)["status"], "success");
    assert_eq!(s.count("SELECT count(*) FROM spend_logs"), 2);
}

#[test]
fn keys_by_x_api_key_and_bearer_and_refusals_in_anthropics_envelope() {
    let s = Server::start();
    let k = key_for(&s, json!({}));
    assert_eq!(post_x(&s, "/v1/messages", &k, &body("A"), &[]).status, 200);
    assert_eq!(s.post("/v1/messages", &k, body("A")).status, 200);
    let before = snapshot(&s);
    let refused = |r: Resp, status: u16, kind: &str| {
        assert_eq!(r.status, status, "{}", r.text());
        let v = r.json();
        assert_eq!(v["type"], "error", "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert!(v["error"]["message"].is_string(), "{v}");
        v
    };
    refused(
        s.post_anon("/v1/messages", &body("A"), &[]),
        401,
        "authentication_error",
    );
    refused(
        post_x(
            &s,
            "/v1/messages",
            "sk-not-a-key-000000000000",
            &body("A"),
            &[],
        ),
        401,
        "authentication_error",
    );
    let narrow = key_for(&s, json!({"models": ["B"]}));
    let before_narrow = snapshot(&s);
    let v = refused(
        post_x(&s, "/v1/messages", &narrow, &body("A"), &[]),
        403,
        "permission_error",
    );
    assert_eq!(v["error"]["litellm_error_type"], "key_model_access_denied");
    let mut no_max = body("A");
    no_max.as_object_mut().expect("object").remove("max_tokens");
    let v = refused(
        post_x(&s, "/v1/messages", &k, &no_max, &[]),
        400,
        "invalid_request_error",
    );
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("max_tokens")));
    let mut bad = body("A");
    bad["messages"] = json!([{"role": "tool", "content": "x"}]);
    refused(
        post_x(&s, "/v1/messages", &k, &bad, &[]),
        400,
        "invalid_request_error",
    );
    refused(
        post_x(&s, "/v1/messages", &k, &body("nope"), &[]),
        400,
        "invalid_request_error",
    );
    refused(
        post_x(&s, "/v1/messages/count_tokens", &narrow, &body("A"), &[]),
        403,
        "permission_error",
    );
    assert_eq!(
        snapshot(&s),
        before_narrow,
        "a refused call wrote something"
    );
    assert_ne!(before, before_narrow, "the narrow key was stored");
    // The chat routes keep LiteLLM's envelope.
    let r = s.post_anon("/v1/chat/completions", &chat_body("A"), &[]);
    assert_eq!(r.status, 401);
    assert!(r.json()["error"]["message"].is_string() && r.json().get("type").is_none());
}

#[test]
fn a_spent_budget_refuses_messages_and_writes_nothing() {
    let s = Server::start();
    let k = key_for(&s, json!({"max_budget": 0.000001}));
    let r = post_x(&s, "/v1/messages", &k, &body("A"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let before = snapshot(&s);
    let r = post_x(&s, "/v1/messages", &k, &body("A"), &[]);
    assert_eq!(r.status, 422, "{}", r.text());
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["litellm_error_type"], "budget_exceeded", "{v}");
    assert_eq!(snapshot(&s), before);
}

#[test]
fn count_tokens_asks_anthropic_or_estimates() {
    let w = world();
    let mut b = body("sonnet");
    b["system"] = json!("be brief");
    let before = w.s.count("SELECT count(*) FROM spend_logs");
    let r = post_x(
        &w.s,
        "/v1/messages/count_tokens?beta=true",
        &w.key,
        &b,
        &[("anthropic-beta", "token-counting-2024-11-01")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"input_tokens": 42}));
    {
        let seen = w.anthropic.lock().expect("lock");
        let rec = seen.last().expect("a request");
        assert_eq!(rec.path, "/v1/messages/count_tokens");
        assert_eq!(rec.header("x-api-key"), Some(UPSTREAM_KEY));
        assert_eq!(
            rec.header("anthropic-beta"),
            Some("token-counting-2024-11-01")
        );
        assert_eq!(
            rec.body,
            json!({"model": "claude-ok", "system": "be brief",
                   "messages": [{"role": "user", "content": "hi"}]}),
            "only the fields count_tokens takes"
        );
    }
    // Not an Anthropic deployment: the local estimate, max_tokens not needed.
    let long = "word ".repeat(400);
    let r = post_x(
        &w.s,
        "/v1/messages/count_tokens",
        &w.key,
        &json!({"model": "gpt", "messages": [{"role": "user", "content": long}]}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let n = r.json()["input_tokens"].as_u64().expect("a count");
    assert!((400..=600).contains(&n), "{n}");
    assert_eq!(w.openai.count(), 0, "nothing sent upstream");
    assert_eq!(
        w.s.count("SELECT count(*) FROM spend_logs"),
        before,
        "count_tokens records no spend"
    );
}

#[test]
fn a_claude_code_like_request_works() {
    let w = world();
    let cc = json!({"model": "sonnet", "max_tokens": 32000, "stream": true,
        "temperature": 1,
        "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI.",
                    "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>x</system-reminder>"},
            {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]},
            // Claude Code 2.1 (seen from the real CLI, 2.1.197) puts `system` turns among the
            // others, and sends adaptive thinking, context_management and output_config.
            {"role": "system", "content": "Available agent types: claude"}],
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "tools": [{"name": "Bash", "description": "run a command",
                   "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                                    "required": ["command"]}}],
        "metadata": {"user_id": "user_abc_account__session_1"},
        "thinking": {"type": "enabled", "budget_tokens": 1024}});
    let beta = "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14";
    let headers = [
        ("authorization", "Bearer PLACEHOLDER"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", beta),
        ("anthropic-dangerous-direct-browser-access", "true"),
        ("x-app", "cli"),
        ("user-agent", "claude-cli/2.0.0 (external, cli)"),
    ];
    let auth = format!("Bearer {}", w.key);
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| {
            (
                *k,
                if *k == "authorization" {
                    auth.as_str()
                } else {
                    *v
                },
            )
        })
        .collect();
    for model in ["sonnet", "gpt-sse"] {
        let mut b = cc.clone();
        b["model"] = json!(model);
        let r = w.s.post_anon("/v1/messages?beta=true", &b, &headers);
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        let evs = events(&r.text());
        assert_eq!(names(&evs)[0], "message_start", "{model}");
        assert_eq!(evs.last().expect("events").0, "message_stop", "{model}");
        assert_eq!(spend_log_of(&w.s, &r)["status"], "success");
    }
    let seen = w.anthropic.lock().expect("lock");
    let rec = seen.last().expect("a request");
    assert_eq!(rec.header("anthropic-beta"), Some(beta));
    assert_eq!(rec.body["thinking"], cc["thinking"]);
    assert_eq!(rec.body["system"], cc["system"]);
    let sent = w.openai.last();
    assert!(sent.body.get("thinking").is_none(), "{}", sent.body);
    assert_eq!(sent.body["tools"][0]["function"]["name"], "Bash");
    let turns = sent.body["messages"].as_array().expect("messages");
    let last = turns.last().expect("a turn");
    assert_eq!(last["role"], "system", "{}", sent.body);
    assert_eq!(last["content"], "Available agent types: claude");
    assert_eq!(rec.body["messages"][1]["role"], "system");
}

const SDK_SCRIPT: &str = r#"
import os, anthropic
base, key, narrow = os.environ["BASE"], os.environ["KEY"], os.environ["NARROW"]
c = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)
m = c.messages.create(model="A", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
assert m.content[0].text == "This is a mock response from litegate.", m
assert m.stop_reason == "end_turn" and m.usage.output_tokens > 0, m
m = c.messages.create(model="sonnet", max_tokens=50, system="be brief",
                      messages=[{"role": "user", "content": "hi"}])
assert m.content[0].text == "Hello world" and m.usage.cache_read_input_tokens == 2, m
with c.messages.stream(model="gpt-sse", max_tokens=50,
                       messages=[{"role": "user", "content": "hi"}]) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
assert text == "Hello from the fake", text
assert final.usage.output_tokens == 20 and final.usage.input_tokens == 10, final.usage
with c.messages.stream(model="sonnet", max_tokens=50,
                       messages=[{"role": "user", "content": "hi"}]) as s:
    assert "".join(s.text_stream) == "Hello world"
tools = [{"name": "weather", "input_schema": {"type": "object"}}]
with c.messages.stream(model="gpt-tools", max_tokens=50, tools=tools,
                       messages=[{"role": "user", "content": "weather?"}]) as s:
    final = s.get_final_message()
uses = [b for b in final.content if b.type == "tool_use"]
assert [u.name for u in uses] == ["weather", "time"], final
assert uses[0].input == {"city": "Paris"}, uses[0]
assert final.stop_reason == "tool_use", final
n = c.messages.count_tokens(model="sonnet", messages=[{"role": "user", "content": "hi"}])
assert n.input_tokens == 42, n
n = c.messages.count_tokens(model="A", messages=[{"role": "user", "content": "hello there"}])
assert n.input_tokens > 0, n
bearer = anthropic.Anthropic(base_url=base, auth_token=key, max_retries=0)
assert bearer.messages.create(model="A", max_tokens=5, messages=[{"role": "user", "content": "x"}]).content
try:
    anthropic.Anthropic(base_url=base, api_key=narrow, max_retries=0).messages.create(
        model="A", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    raise SystemExit("narrow key called A")
except anthropic.PermissionDeniedError as e:
    assert e.status_code == 403 and e.body["error"]["type"] == "permission_error", e.body
try:
    c.messages.create(model="claude-err", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    raise SystemExit("no rate limit error")
except anthropic.RateLimitError as e:
    assert "rate limit" in e.message, e.message
print("anthropic sdk ok")
"#;

#[test]
fn the_anthropic_python_sdk_works() {
    let w = world();
    let narrow = key_for(&w.s, json!({"models": ["gpt"]}));
    let path = python_path_with("anthropic", "anthropic");
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", SDK_SCRIPT])
        .env("BASE", format!("http://{}", w.s.addr))
        .env("KEY", &w.key)
        .env("NARROW", &narrow)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .env_remove("ANTHROPIC_BASE_URL");
    if let Some(p) = path {
        cmd.env("PYTHONPATH", p);
    }
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("anthropic sdk ok"));
}
