use super::stream::{FrameError, Frames, StreamState, MAX_FRAME};
use super::*;
use crate::upstream::anthropic::Step;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use serde_json::json;

fn body(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn a_chat_request_becomes_a_converse_request() {
    let req = request(&body(json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function",
                "function": {"name": "look", "arguments": "{\"q\":1}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "a cat"},
            {"role": "user", "content": "thanks"}
        ],
        "max_tokens": 50, "temperature": 0.2, "top_p": 0.9, "stop": "END", "top_k": 5,
        "tools": [{"type": "function", "function": {"name": "look", "description": "d",
            "parameters": {"type": "object", "properties": {"q": {"type": "integer"}}}}}],
        "tool_choice": "required"
    })))
    .expect("request");
    assert_eq!(req["system"], json!([{"text": "be brief"}]));
    let m = req["messages"].as_array().expect("messages");
    assert_eq!(m.len(), 3, "{m:?}");
    assert_eq!(m[0]["role"], "user");
    assert_eq!(
        m[0]["content"][1],
        json!({"image": {"format": "jpeg", "source": {"bytes": "QUJD"}}})
    );
    assert_eq!(
        m[1]["content"],
        json!([{"toolUse": {"toolUseId": "t1", "name": "look", "input": {"q": 1}}}])
    );
    // The tool result and the next user message are one user turn.
    assert_eq!(
        m[2]["content"],
        json!([{"toolResult": {"toolUseId": "t1", "content": [{"text": "a cat"}]}},
               {"text": "thanks"}])
    );
    assert_eq!(
        req["inferenceConfig"],
        json!({"maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]})
    );
    assert_eq!(req["additionalModelRequestFields"], json!({"top_k": 5}));
    assert_eq!(
        req["toolConfig"]["tools"][0]["toolSpec"],
        json!({"name": "look", "description": "d", "inputSchema": {"json":
            {"type": "object", "properties": {"q": {"type": "integer"}}}}})
    );
    assert_eq!(req["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert!(req.get("model").is_none());
}

#[test]
fn tool_choice_and_images_that_converse_cannot_take_are_refused() {
    let named = request(&body(
        json!({"messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}}}),
    ))
    .expect("named");
    assert_eq!(
        named["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "f"}})
    );
    let none = request(&body(
        json!({"messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"}),
    ));
    assert_eq!(none.map_err(|e| e.status()).err(), Some(400));
    for url in [
        "https://example.com/cat.png",
        "data:image/bmp;base64,AA",
        "data:image/png,AA",
    ] {
        let r = request(&body(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}]}]})));
        assert!(r.is_err(), "{url}");
    }
}

#[test]
fn a_converse_answer_becomes_a_chat_completion() {
    let v = json!({"output": {"message": {"role": "assistant", "content": [
            {"text": "Let me look."},
            {"toolUse": {"toolUseId": "tu1", "name": "look", "input": {"q": 2}}}]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14,
                  "cacheReadInputTokens": 100, "cacheWriteInputTokens": 20}});
    let out = answer(&v, "my-model");
    assert_eq!(out["model"], "my-model");
    assert_eq!(out["object"], "chat.completion");
    let c = &out["choices"][0];
    assert_eq!(c["finish_reason"], "tool_calls");
    assert_eq!(c["message"]["content"], "Let me look.");
    assert_eq!(c["message"]["tool_calls"][0]["id"], "tu1");
    assert_eq!(
        c["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"q\":2}"
    );
    assert_eq!(out["usage"]["prompt_tokens"], 130);
    assert_eq!(out["usage"]["completion_tokens"], 4);
    assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 100);
    assert_eq!(out["usage"]["cache_creation_input_tokens"], 20);
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ] {
        assert_eq!(finish_reason(stop), finish);
    }
}

#[test]
fn errors_name_their_type_and_message() {
    assert_eq!(
        error_message(
            Some("ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            br#"{"message":"bad input"}"#
        ),
        "ValidationException: bad input"
    );
    assert_eq!(error_message(None, br#"{"Message":"no"}"#), "no");
    assert_eq!(error_message(None, b"plain"), "plain");
}

fn event(kind: &str, payload: Value) -> Vec<u8> {
    let m = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(kind.to_string().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&m, &mut out).expect("encode");
    out
}

fn feed_all(bytes: &[u8]) -> (Vec<Value>, Step) {
    let mut frames = Frames::new(std::io::BufReader::new(bytes));
    let mut state = StreamState::new("m");
    let mut out = Vec::new();
    loop {
        match frames.next_message() {
            Ok(Some(m)) => match state.feed(&m, &mut out) {
                Step::Continue => {}
                other => return (out, other),
            },
            Ok(None) => return (out, Step::Continue),
            Err(e) => return (out, Step::Error(format!("{e:?}"))),
        }
    }
}

#[test]
fn stream_events_become_chunks() {
    let mut b = Vec::new();
    b.extend(event("messageStart", json!({"role": "assistant"})));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}, "p": "abc"}),
    ));
    b.extend(event(
        "contentBlockStart",
        json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "t9", "name": "f"}}}),
    ));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"a\":"}}}),
    ));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "1}"}}}),
    ));
    b.extend(event("contentBlockStop", json!({"contentBlockIndex": 1})));
    b.extend(event("messageStop", json!({"stopReason": "tool_use"})));
    b.extend(event(
        "metadata",
        json!({"usage": {"inputTokens": 7, "outputTokens": 3, "totalTokens": 10},
               "metrics": {"latencyMs": 5}}),
    ));
    let (chunks, step) = feed_all(&b);
    assert_eq!(step, Step::Stop);
    let d = |i: usize| &chunks[i]["choices"][0]["delta"];
    assert_eq!(d(0)["role"], "assistant");
    assert_eq!(d(1)["content"], "Hi");
    assert_eq!(d(2)["tool_calls"][0]["id"], "t9");
    assert_eq!(d(2)["tool_calls"][0]["function"]["name"], "f");
    assert_eq!(d(3)["tool_calls"][0]["function"]["arguments"], "{\"a\":");
    assert_eq!(d(4)["tool_calls"][0]["index"], 0);
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(chunks[6]["usage"]["prompt_tokens"], 7);
    assert_eq!(chunks.len(), 7);
}

#[test]
fn exceptions_corruption_and_oversized_messages_end_the_stream() {
    let m = Message::new(br#"{"message":"slow down"}"#.to_vec())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("exception".into()),
        ))
        .add_header(Header::new(
            ":exception-type",
            HeaderValue::String("throttlingException".into()),
        ));
    let mut b = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&m, &mut b).expect("encode");
    assert_eq!(
        feed_all(&b).1,
        Step::Error("throttlingException: slow down".into())
    );
    // One flipped payload byte: the message CRC no longer matches.
    let mut bad = event("contentBlockDelta", json!({"delta": {"text": "hello"}}));
    let at = bad.len() - 8;
    bad[at] ^= 1;
    let mut frames = Frames::new(std::io::BufReader::new(&bad[..]));
    assert!(matches!(frames.next_message(), Err(FrameError::Corrupt(_))));
    // A length over the cap is refused before anything is read or held.
    let mut huge = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
    huge.extend_from_slice(&[0; 8]);
    let mut frames = Frames::new(std::io::BufReader::new(&huge[..]));
    assert!(matches!(
        frames.next_message(),
        Err(FrameError::TooLarge(_))
    ));
    // Cut short.
    let whole = event("messageStart", json!({}));
    let mut frames = Frames::new(std::io::BufReader::new(&whole[..whole.len() - 3]));
    assert!(matches!(frames.next_message(), Err(FrameError::Corrupt(_))));
    // Too many tool calls.
    let mut state = StreamState::new("m");
    let mut out = Vec::new();
    let mut step = Step::Continue;
    for i in 0..=stream::MAX_STREAM_TOOL_CALLS {
        let e = event(
            "contentBlockStart",
            json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": "t", "name": "f"}}}),
        );
        let mut f = Frames::new(std::io::BufReader::new(&e[..]));
        let m = f.next_message().expect("frame").expect("message");
        step = state.feed(&m, &mut out);
        out.clear();
    }
    assert!(matches!(step, Step::Error(_)));
}
