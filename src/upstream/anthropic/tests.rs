//! Translation tests: OpenAI chat → Messages, Messages → OpenAI, stream events → chunks.

use super::*;

fn req(v: Value, stream: bool) -> Value {
    request(
        "claude-x",
        v.as_object().expect("object"),
        stream,
        DEFAULT_MAX_TOKENS,
    )
    .expect("request")
}

#[test]
fn system_turns_parts_and_parameters() {
    let r = req(
        json!({"model": "c", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "more"}],
          "stop": "END", "temperature": 0.2, "top_p": 0.9, "user": "u"}),
        false,
    );
    assert_eq!(r["model"], "claude-x");
    assert_eq!(r["system"], json!([{"type": "text", "text": "be brief"}]));
    assert_eq!(r["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(r["stop_sequences"], json!(["END"]));
    assert_eq!(r["temperature"], 0.2);
    assert_eq!(r["top_p"], 0.9);
    assert!(r.get("stream").is_none() && r.get("user").is_none());
    let m = r["messages"].as_array().expect("messages");
    assert_eq!(m.len(), 3, "consecutive user turns merged: {r}");
    assert_eq!(m[0]["role"], "user");
    assert_eq!(
        m[0]["content"],
        json!([{"type": "text", "text": "hi"}, {"type": "text", "text": "look"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
            {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}])
    );
    assert_eq!(
        m[1],
        json!({"role": "assistant", "content": [{"type": "text", "text": "ok"}]})
    );
    let r = req(
        json!({"messages": [{"role": "user", "content": "x"}], "max_tokens": 7,
               "stop": ["a", "b"]}),
        true,
    );
    assert_eq!(r["max_tokens"], 7);
    assert_eq!(r["stop_sequences"], json!(["a", "b"]));
    assert_eq!(r["stream"], true);
    let bad = json!({"messages": [{"role": "wizard", "content": "x"}]});
    assert!(request("c", bad.as_object().expect("o"), false, 1).is_err());
    let info = json!({"max_output_tokens": 8192});
    assert_eq!(default_max_tokens(info.as_object().expect("o")), 8192);
    assert_eq!(default_max_tokens(&Map::new()), DEFAULT_MAX_TOKENS);
}

#[test]
fn tools_both_ways() {
    let r = req(
        json!({"messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function",
                "function": {"name": "w", "arguments": "{\"city\":\"P\"}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "sunny"}],
          "tools": [{"type": "function", "function": {"name": "w", "description": "d",
              "parameters": {"type": "object"}}}],
          "tool_choice": {"type": "function", "function": {"name": "w"}}}),
        false,
    );
    assert_eq!(
        r["tools"],
        json!([{"name": "w", "description": "d", "input_schema": {"type": "object"}}])
    );
    assert_eq!(r["tool_choice"], json!({"type": "tool", "name": "w"}));
    assert_eq!(
        r["messages"][1]["content"],
        json!([{"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "P"}}])
    );
    assert_eq!(
        r["messages"][2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
            "content": "sunny"}]})
    );
    let a = answer(
        &json!({"id": "msg_1", "model": "claude-x", "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "id": "t2", "name": "w", "input": {"a": 1}}],
        "usage": {"input_tokens": 5, "output_tokens": 3}}),
    );
    assert_eq!(a["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(a["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        a["choices"][0]["message"]["tool_calls"][0],
        json!({"id": "t2", "type": "function", "function": {"name": "w", "arguments": "{\"a\":1}"}})
    );
}

#[test]
fn answers_stop_reasons_and_usage() {
    let a = answer(
        &json!({"id": "msg_1", "type": "message", "model": "claude-x",
        "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 3,
                  "cache_creation_input_tokens": 2}}),
    );
    assert_eq!(a["object"], "chat.completion");
    assert_eq!(a["id"], "msg_1");
    assert_eq!(
        a["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello"})
    );
    assert_eq!(a["choices"][0]["finish_reason"], "stop");
    assert_eq!(a["usage"]["prompt_tokens"], 15);
    assert_eq!(a["usage"]["completion_tokens"], 4);
    assert_eq!(a["usage"]["total_tokens"], 19);
    assert_eq!(a["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
    assert_eq!(a["usage"]["cache_creation_input_tokens"], 2);
    for (s, f) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "length"),
        ("refusal", "content_filter"),
    ] {
        assert_eq!(finish_reason(s), f);
    }
}

#[test]
fn stream_events_become_chunks() {
    let mut st = StreamState::default();
    let mut out = Vec::new();
    let evs = [
        json!({"type": "message_start", "message": {"id": "msg_s", "model": "claude-x",
            "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use",
            "id": "t1", "name": "w", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta",
            "partial_json": "{\"a\":"}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 12}}),
    ];
    for e in &evs {
        assert_eq!(st.feed(e, &mut out), Step::Continue);
    }
    assert_eq!(
        st.feed(&json!({"type": "message_stop"}), &mut out),
        Step::Stop
    );
    assert_eq!(out.len(), 6, "{out:?}");
    assert_eq!(out[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(out[0]["id"], "msg_s");
    assert_eq!(out[1]["choices"][0]["delta"]["content"], "Hi");
    assert_eq!(out[2]["choices"][0]["delta"]["tool_calls"][0]["id"], "t1");
    assert_eq!(out[2]["choices"][0]["delta"]["tool_calls"][0]["index"], 0);
    assert_eq!(
        out[3]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":"
    );
    assert_eq!(out[4]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(out[5]["choices"], json!([]));
    assert_eq!(out[5]["usage"]["prompt_tokens"], 9);
    assert_eq!(out[5]["usage"]["completion_tokens"], 12);
    let e =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    assert_eq!(st.feed(&e, &mut out), Step::Error("Overloaded".into()));
}

#[test]
fn a_stream_opening_tool_calls_without_end_is_cut() {
    let mut st = StreamState::default();
    let mut out = Vec::new();
    let open = |i: usize| {
        json!({"type": "content_block_start", "index": i,
               "content_block": {"type": "tool_use", "id": format!("t{i}"), "name": "f", "input": {}}})
    };
    for i in 0..MAX_STREAM_TOOL_CALLS {
        assert!(
            matches!(st.feed(&open(i), &mut out), Step::Continue),
            "block {i}"
        );
    }
    assert_eq!(out.len(), MAX_STREAM_TOOL_CALLS);
    match st.feed(&open(MAX_STREAM_TOOL_CALLS), &mut out) {
        Step::Error(m) => assert!(m.contains("more than 1024 tool calls"), "{m}"),
        _ => panic!("the block past the cap must end the stream"),
    }
    assert_eq!(out.len(), MAX_STREAM_TOOL_CALLS, "nothing emitted for it");
}
