use super::*;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

/// The events of `out` as (name, data).
fn parsed(out: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(out).expect("utf-8");
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (name, data) = f.split_once('\n').expect("two lines");
            let name = name.strip_prefix("event: ").expect("event line");
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").expect("data line"))
                .expect("json");
            assert_eq!(data["type"], name);
            (name.to_string(), data)
        })
        .collect()
}

#[test]
fn a_request_becomes_chat() {
    let body = obj(json!({"model": "alias", "max_tokens": 9, "top_k": 4,
        "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        "thinking": {"type": "enabled", "budget_tokens": 100},
        "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true},
        "tools": [{"name": "f", "input_schema": {"type": "object"}},
                  {"type": "bash_20250124", "name": "bash"}],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm",
                "signature": "s"}, {"type": "tool_use", "id": "t1", "name": "f",
                "input": {"x": 1}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "one"},
                {"type": "image", "source": {"type": "url", "url": "https://i/x.png"}},
                {"type": "document", "source": {"type": "text", "data": "dropped"}}]}]}));
    let chat = Value::Object(to_chat(&body, "gpt-4o", true));
    assert_eq!(
        chat,
        json!({"model": "gpt-4o", "max_tokens": 9, "stream": true,
            "stream_options": {"include_usage": true},
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "parallel_tool_calls": false,
            "tools": [{"type": "function", "function": {"name": "f",
                "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "system", "content": "a\nb"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "t1",
                    "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
                {"role": "tool", "tool_call_id": "t1", "content": "one"},
                {"role": "user", "content": [{"type": "image_url",
                    "image_url": {"url": "https://i/x.png"}}]}]})
    );
    // Without tools a tool_choice is not sent (OpenAI refuses one).
    let b = obj(
        json!({"model": "m", "max_tokens": 1, "tool_choice": {"type": "auto"},
                       "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(to_chat(&b, "m", false).get("tool_choice").is_none());
}

#[test]
fn a_chat_answer_becomes_a_message() {
    let a = json!({"id": "chatcmpl-1", "model": "gpt-4o",
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant",
            "content": "partial", "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "f", "arguments": "not json"}}]}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 7,
                  "prompt_tokens_details": {"cached_tokens": 20}}});
    assert_eq!(
        from_chat(&a),
        json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o",
            "content": [{"type": "text", "text": "partial"},
                        {"type": "tool_use", "id": "c1", "name": "f", "input": {}}],
            "stop_reason": "max_tokens", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 7,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20}})
    );
    for (f, s) in [
        ("stop", "end_turn"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        ("weird", "end_turn"),
    ] {
        assert_eq!(stop_reason(f), s);
    }
    // Nothing usable: an empty message, not a panic.
    assert_eq!(from_chat(&Value::Null)["content"], json!([]));
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "c", "model": "m", "choices": [{"index": 0, "delta": delta,
           "finish_reason": finish}]})
}

#[test]
fn a_chat_stream_becomes_events() {
    let mut st = ChatToEvents::new(5);
    let mut out = Vec::new();
    let feed = |st: &mut ChatToEvents, out: &mut Vec<u8>, c: Value| {
        st.feed(&c, out).expect("feeds");
    };
    feed(
        &mut st,
        &mut out,
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    );
    feed(
        &mut st,
        &mut out,
        chunk(json!({"content": "Hi"}), Value::Null),
    );
    feed(
        &mut st,
        &mut out,
        chunk(json!({"content": "!"}), Value::Null),
    );
    feed(
        &mut st,
        &mut out,
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f",
                  "arguments": "{\"x\""}}]}),
            Value::Null,
        ),
    );
    feed(
        &mut st,
        &mut out,
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
            Value::Null,
        ),
    );
    feed(
        &mut st,
        &mut out,
        chunk(
            json!({"tool_calls": [{"index": 1, "function": {"name": "g"}}]}),
            json!("tool_calls"),
        ),
    );
    feed(
        &mut st,
        &mut out,
        json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3}}),
    );
    st.finish(&mut out);
    assert!(st.ended());
    st.finish(&mut out);
    let evs = parsed(&out);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "one end, once"
    );
    assert_eq!(evs[0].1["message"]["usage"]["input_tokens"], 5);
    assert_eq!(evs[0].1["message"]["id"], "c");
    assert_eq!(
        evs[5].1["content_block"],
        json!({"type": "tool_use", "id": "a", "name": "f", "input": {}})
    );
    assert_eq!(evs[6].1["index"], 1);
    assert_eq!(evs[6].1["delta"]["partial_json"], "{\"x\"");
    assert_eq!(evs[9].1["index"], 2);
    assert_eq!(
        evs[9].1["content_block"]["id"], "toolu_2",
        "an id is made up"
    );
    assert_eq!(evs[11].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(evs[11].1["usage"]["input_tokens"], 12);
    assert_eq!(evs[11].1["usage"]["output_tokens"], 3);
}

#[test]
fn a_failed_or_empty_chat_stream_still_ends_well_formed() {
    let mut st = ChatToEvents::new(0);
    let mut out = Vec::new();
    st.finish(&mut out);
    let names: Vec<String> = parsed(&out).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);

    let mut st = ChatToEvents::new(0);
    let mut out = Vec::new();
    st.feed(&chunk(json!({"content": "a"}), Value::Null), &mut out)
        .expect("feeds");
    st.fail("boom", &mut out);
    st.finish(&mut out);
    let evs = parsed(&out);
    assert_eq!(evs.last().map(|(n, _)| n.as_str()), Some("error"));
    assert_eq!(
        evs.last().map(|(_, d)| &d["error"]["message"]),
        Some(&json!("boom"))
    );
    assert!(!evs.iter().any(|(n, _)| n == "message_stop"));
}

#[test]
fn tool_calls_in_a_stream_are_bounded() {
    let mut st = ChatToEvents::new(0);
    let mut out = Vec::new();
    for i in 0..MAX_STREAM_TOOL_CALLS as u64 {
        st.feed(
            &chunk(
                json!({"tool_calls": [{"index": i, "function": {"name": "f"}}]}),
                Value::Null,
            ),
            &mut out,
        )
        .expect("within the bound");
    }
    let more = chunk(
        json!({"tool_calls": [{"index": 5000, "function": {"name": "f"}}]}),
        Value::Null,
    );
    assert!(st.feed(&more, &mut out).is_err());
}

#[test]
fn passthrough_bodies_keep_anthropic_fields_and_drop_the_gateways() {
    let dep = crate::config::Deployment {
        model_name: "sonnet".into(),
        model: "anthropic/claude-x".into(),
        api_base: None,
        api_key: Some("sk-ant".into()),
        rpm: None,
        tpm: None,
        input_cost_per_token: 0.0,
        output_cost_per_token: 0.0,
        timeout_secs: 1.0,
        stream_timeout_secs: 1.0,
        id: "x".into(),
        access_groups: vec![],
        model_info: Default::default(),
        route: crate::provider::find("anthropic")
            .expect("anthropic")
            .route("claude-x", None, Some("sk-ant"), None)
            .expect("route"),
    };
    let body = obj(
        json!({"model": "sonnet", "max_tokens": 1, "metadata": {"user_id": "u"},
        "api_key": "steal", "api_base": "http://evil", "mock_response": "x",
        "messages": [{"role": "user", "content": "hi"}], "stream": true}),
    );
    assert!(!passthrough_unchanged(&dep, "sonnet", &body));
    let (endpoint, sent) = passthrough_body(&dep, "sonnet", body.clone(), true);
    assert_eq!(endpoint, "messages");
    let sent: Value = serde_json::from_slice(&sent).expect("json");
    assert_eq!(
        sent,
        json!({"model": "claude-x", "max_tokens": 1, "metadata": {"user_id": "u"},
               "messages": [{"role": "user", "content": "hi"}], "stream": true})
    );
    let same = obj(json!({"model": "claude-x", "max_tokens": 1, "metadata": {},
                          "messages": []}));
    assert!(passthrough_unchanged(&dep, "sonnet", &same));
    let counted: Value =
        serde_json::from_slice(&count_tokens_body(&dep, "sonnet", &body)).expect("json");
    assert_eq!(
        counted,
        json!({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]})
    );
}
