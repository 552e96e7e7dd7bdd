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

fn req_err(v: Value) -> Error {
    request("claude-x", v.as_object().expect("object"), false, 4096).expect_err("refused")
}

fn param_of(e: &Error) -> Option<&str> {
    match e {
        Error::BadRequest { param, .. } => param.as_deref(),
        _ => None,
    }
}

const HI: &str = r#"[{"role": "user", "content": "hi"}]"#;

fn with(extra: Value) -> Value {
    let mut v = json!({"messages": serde_json::from_str::<Value>(HI).expect("json")});
    for (k, x) in extra.as_object().expect("object") {
        v[k] = x.clone();
    }
    v
}

#[test]
fn parallel_tool_calls_user_and_tool_choice_as_litellm_maps_them() {
    let tool = json!([{"type": "function", "function": {"name": "w"}}]);
    let cases = [
        (
            json!({"parallel_tool_calls": false}),
            Some(json!({"type": "auto", "disable_parallel_tool_use": true})),
        ),
        (
            json!({"parallel_tool_calls": true, "tool_choice": "required"}),
            Some(json!({"type": "any", "disable_parallel_tool_use": false})),
        ),
        (
            json!({"parallel_tool_calls": false, "tool_choice": "none"}),
            Some(json!({"type": "none"})),
        ),
        (
            json!({"tool_choice": "none"}),
            Some(json!({"type": "none"})),
        ),
        (
            json!({"tool_choice": {"type": "required"}}),
            Some(json!({"type": "any"})),
        ),
        (
            json!({"tool_choice": {"type": "function", "function": {"name": "w"}},
                "parallel_tool_calls": false}),
            Some(json!({"type": "tool", "name": "w", "disable_parallel_tool_use": true})),
        ),
        (json!({}), None),
    ];
    for (extra, want) in cases {
        let mut e = extra.clone();
        e["tools"] = tool.clone();
        let r = req(with(e), false);
        assert_eq!(r.get("tool_choice").cloned(), want, "{extra}");
    }
    assert_eq!(
        param_of(&req_err(with(json!({"parallel_tool_calls": "no"})))),
        Some("parallel_tool_calls")
    );
    assert_eq!(
        param_of(&req_err(with(json!({"tool_choice": "sometimes"})))),
        Some("tool_choice")
    );
    // `user` → metadata.user_id; an email or a phone number is dropped, as LiteLLM does.
    let r = req(with(json!({"user": "user-42"})), false);
    assert_eq!(r["metadata"], json!({"user_id": "user-42"}));
    for u in ["a@b.com", "+1 (555) 123-4567"] {
        let r = req(with(json!({"user": u})), false);
        assert!(r.get("metadata").is_none(), "{u}: {r}");
    }
}

#[test]
fn thinking_and_reasoning_effort() {
    let r = req(with(json!({"reasoning_effort": "low"})), false);
    assert_eq!(
        r["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(r["max_tokens"], DEFAULT_MAX_TOKENS);
    for (e, b) in [
        ("minimal", 1024),
        ("medium", 2048),
        ("high", 4096),
        ("xhigh", 8192),
        ("max", 16384),
    ] {
        let r = req(with(json!({"reasoning_effort": e})), false);
        assert_eq!(r["thinking"]["budget_tokens"], b, "{e}");
        // `max_tokens` stays above the budget when the caller gives none.
        assert!(r["max_tokens"].as_u64() > Some(b), "{e}: {r}");
    }
    let r = req(
        with(json!({"reasoning_effort": {"effort": "high", "summary": "auto"}})),
        false,
    );
    assert_eq!(r["thinking"]["budget_tokens"], 4096);
    let r = req(with(json!({"reasoning_effort": "none"})), false);
    assert!(r.get("thinking").is_none());
    // The caller's `thinking` wins and goes as it is.
    let t = json!({"type": "enabled", "budget_tokens": 5000});
    let r = req(
        with(json!({"thinking": t, "reasoning_effort": "low", "max_tokens": 9000})),
        false,
    );
    assert_eq!(r["thinking"], t);
    assert_eq!(r["max_tokens"], 9000);
    assert_eq!(
        param_of(&req_err(with(json!({"reasoning_effort": "extreme"})))),
        Some("reasoning_effort")
    );
    assert_eq!(
        param_of(&req_err(with(json!({"thinking": true})))),
        Some("thinking")
    );
    // Thinking blocks given back in an assistant turn come first, with Anthropic's fields.
    let r = req(
        json!({"messages": [{"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "thinking_blocks": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig", "index": 0},
                {"type": "redacted_thinking", "data": "xx"}, {"type": "other"}]},
            {"role": "user", "content": "more"}]}),
        false,
    );
    assert_eq!(
        r["messages"][1]["content"],
        json!([{"type": "thinking", "thinking": "hmm", "signature": "sig"},
               {"type": "redacted_thinking", "data": "xx"}, {"type": "text", "text": "a"}])
    );
}

#[test]
fn response_format_goes_through_the_json_tool() {
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    let r = req(
        with(json!({"response_format": {"type": "json_schema",
            "json_schema": {"name": "x", "schema": schema}}})),
        false,
    );
    assert_eq!(
        r["tools"],
        json!([{"name": JSON_TOOL, "input_schema": schema}])
    );
    assert_eq!(r["tool_choice"], json!({"type": "tool", "name": JSON_TOOL}));
    let r = req(
        with(json!({"response_format": {"type": "json_object"}})),
        false,
    );
    assert_eq!(r["tools"][0]["input_schema"]["additionalProperties"], true);
    let r = req(with(json!({"response_format": {"type": "text"}})), false);
    assert!(r.get("tools").is_none());
    for bad in [
        json!({"response_format": {"type": "yaml"}}),
        json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
        json!({"response_format": {"type": "json_object"}, "reasoning_effort": "low"}),
        json!({"response_format": {"type": "json_object"},
               "tools": [{"type": "function", "function": {"name": "w"}}]}),
    ] {
        assert_eq!(
            param_of(&req_err(with(bad.clone()))),
            Some("response_format"),
            "{bad}"
        );
    }
    let a = answer_as(
        &json!({"id": "m", "model": "c", "stop_reason": "tool_use",
            "content": [{"type": "tool_use", "id": "t", "name": JSON_TOOL, "input": {"n": 1}}],
            "usage": {"input_tokens": 1, "output_tokens": 1}}),
        true,
    );
    assert_eq!(
        a["choices"][0]["message"],
        json!({"role": "assistant", "content": "{\"n\":1}"})
    );
    assert_eq!(a["choices"][0]["finish_reason"], "stop");
    // Streamed: the tool's input is the content.
    let mut st = StreamState::new(true);
    let mut out = Vec::new();
    for e in [
        json!({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use",
            "id": "t", "name": JSON_TOOL, "input": {}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
            "partial_json": "{\"n\":"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta",
            "partial_json": "1}"}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
    ] {
        st.feed(&e, &mut out);
    }
    let said: String = out
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(said, "{\"n\":1}");
    assert!(out
        .iter()
        .all(|c| c["choices"][0]["delta"].get("tool_calls").is_none()));
    assert_eq!(
        out.last().expect("chunk")["choices"][0]["finish_reason"],
        "stop"
    );
}

#[test]
fn unsupported_parameters_are_refused_defaults_dropped() {
    for f in [
        json!({"logprobs": true}),
        json!({"top_logprobs": 2}),
        json!({"presence_penalty": 0.5}),
        json!({"frequency_penalty": -1}),
        json!({"logit_bias": {"50256": -100}}),
        json!({"modalities": ["text", "audio"]}),
        json!({"audio": {"voice": "x"}}),
        json!({"prediction": {"type": "content", "content": "x"}}),
        json!({"functions": [{"name": "f"}]}),
        json!({"function_call": "auto"}),
        json!({"web_search_options": {}}),
    ] {
        let name = f
            .as_object()
            .and_then(|o| o.keys().next())
            .cloned()
            .unwrap_or_default();
        let e = req_err(with(f.clone()));
        assert_eq!(param_of(&e), Some(name.as_str()), "{f}");
    }
    let r = req(
        with(
            json!({"logprobs": false, "presence_penalty": 0, "frequency_penalty": 0.0,
            "logit_bias": {}, "modalities": ["text"], "seed": 7, "store": true,
            "metadata": {"a": "b"}, "top_logprobs": null}),
        ),
        false,
    );
    for f in [
        "logprobs",
        "seed",
        "store",
        "presence_penalty",
        "logit_bias",
        "metadata",
    ] {
        assert!(r.get(f).is_none(), "{f}: {r}");
    }
}

#[test]
fn thinking_blocks_become_reasoning_content() {
    let a = answer(
        &json!({"id": "m", "model": "c", "stop_reason": "end_turn", "content": [
            {"type": "thinking", "thinking": "Let me think", "signature": "sig1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "42"}],
            "usage": {"input_tokens": 1, "output_tokens": 1}}),
    );
    let m = &a["choices"][0]["message"];
    assert_eq!(m["content"], "42");
    assert_eq!(m["reasoning_content"], "Let me think");
    assert_eq!(
        m["thinking_blocks"],
        json!([{"type": "thinking", "thinking": "Let me think", "signature": "sig1"},
               {"type": "redacted_thinking", "data": "opaque"}])
    );
    let mut st = StreamState::default();
    let mut out = Vec::new();
    for e in [
        json!({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {}}}),
        json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Let me"}}),
        json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": " think"}}),
        json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": "sig1"}}),
        json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "text_delta", "text": "42"}}),
    ] {
        st.feed(&e, &mut out);
    }
    let reasoning: String = out
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(reasoning, "Let me think");
    assert!(out
        .iter()
        .any(|c| c["choices"][0]["delta"]["thinking_blocks"][0]["signature"] == "sig1"));
    let said: String = out
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(said, "42");
}

#[test]
fn a_final_usage_restating_input_and_cache_figures_wins() {
    let mut st = StreamState::default();
    let mut out = Vec::new();
    for e in [
        json!({"type": "message_start", "message": {"id": "m", "model": "c",
            "usage": {"input_tokens": 5, "cache_read_input_tokens": 1, "output_tokens": 1}}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"input_tokens": 9, "cache_creation_input_tokens": 4, "output_tokens": 7}}),
    ] {
        st.feed(&e, &mut out);
    }
    assert_eq!(
        st.feed(&json!({"type": "message_stop"}), &mut out),
        Step::Stop
    );
    let u = &out.last().expect("usage chunk")["usage"];
    assert_eq!(u["prompt_tokens"], 9 + 1 + 4, "{u}");
    assert_eq!(u["completion_tokens"], 7);
    assert_eq!(u["prompt_tokens_details"]["cache_creation_tokens"], 4);
}
