//! The official `openai` Python SDK against translated (Anthropic) deployments (issue 13):
//! chat, a stream with `include_usage`, tool calls whole and streamed, thinking as
//! `reasoning_content`, a JSON `response_format`, and errors as the SDK's classes — through the
//! fake Anthropic server of `anthropic.rs`, which checks the Messages wire format. The SDK is
//! installed into target/py-deps on first use (`python_path_with`, as in `sdk.rs`).

use crate::common::*;
use std::process::Command;

const SCRIPT: &str = r#"
import json, os, openai
from openai import OpenAI
c = OpenAI(base_url=os.environ["BASE"], api_key=os.environ["KEY"], max_retries=0)
hi = [{"role": "user", "content": "hi"}]

# Chat.
r = c.chat.completions.create(model="claude-ok", messages=hi)
assert r.object == "chat.completion", r
assert r.choices[0].message.content == "Hello world", r
assert r.choices[0].finish_reason == "length", r
assert r.usage.prompt_tokens == 12 and r.usage.completion_tokens == 20, r.usage
assert r.usage.prompt_tokens_details.cached_tokens == 2, r.usage

# A stream with usage.
chunks = list(c.chat.completions.create(model="claude-ok", messages=hi, stream=True,
                                        stream_options={"include_usage": True}))
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert text == "Hello world", text
assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 32, chunks[-1]
# Without include_usage: no usage chunk.
chunks = list(c.chat.completions.create(model="claude-ok", messages=hi, stream=True))
assert all(ch.usage is None for ch in chunks), chunks[-1]

# Tools: a whole answer, then the result sent back.
tools = [{"type": "function", "function": {"name": "weather", "description": "Weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
ask = [{"role": "user", "content": "weather in Paris?"}]
r = c.chat.completions.create(model="claude-call", messages=ask, tools=tools,
                              tool_choice="auto", parallel_tool_calls=False)
m = r.choices[0].message
assert r.choices[0].finish_reason == "tool_calls", r
assert m.content == "Let me check.", m
call = m.tool_calls[0]
assert call.id == "toolu_9" and call.type == "function", call
assert call.function.name == "weather", call
assert json.loads(call.function.arguments) == {"city": "Paris"}, call
r = c.chat.completions.create(model="claude-call", tools=tools, messages=ask + [
    m.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
assert r.choices[0].message.tool_calls, r

# Tools, streamed: the SDK's accumulation of deltas by index.
calls = {}
said = ""
finish = None
for ch in c.chat.completions.create(model="claude-call", messages=ask, tools=tools, stream=True):
    if not ch.choices:
        continue
    d = ch.choices[0].delta
    said += d.content or ""
    for tc in d.tool_calls or []:
        acc = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
        acc["id"] = tc.id or acc["id"]
        if tc.function:
            acc["name"] = tc.function.name or acc["name"]
            acc["arguments"] += tc.function.arguments or ""
    finish = ch.choices[0].finish_reason or finish
assert said == "Let me check.", said
assert finish == "tool_calls", finish
assert list(calls) == [0], calls
assert calls[0]["id"] == "toolu_9" and calls[0]["name"] == "weather", calls
assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}, calls

# Thinking: reasoning_effort in, reasoning_content out (whole and streamed).
r = c.chat.completions.create(model="claude-think", messages=hi, reasoning_effort="low")
m = r.choices[0].message
assert m.content == "42", m
assert m.model_extra["reasoning_content"] == "Six times seven.", m
assert m.model_extra["thinking_blocks"][0]["signature"] == "sig-1", m
reasoning = ""
text = ""
for ch in c.chat.completions.create(model="claude-think", messages=hi, reasoning_effort="low",
                                    stream=True):
    if ch.choices:
        reasoning += (ch.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        text += ch.choices[0].delta.content or ""
assert reasoning == "Six times seven." and text == "42", (reasoning, text)

# A JSON response_format: the forced tool's input is the content.
schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
rf = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
r = c.chat.completions.create(model="claude-ok", messages=hi, response_format=rf)
assert json.loads(r.choices[0].message.content) == {"answer": 42}, r
assert r.choices[0].finish_reason == "stop" and not r.choices[0].message.tool_calls, r
text = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
    model="claude-ok", messages=hi, response_format={"type": "json_object"}, stream=True)
    if ch.choices)
assert json.loads(text) == {"answer": 42}, text

# Errors: the upstream's status as the SDK's class; a parameter Anthropic cannot honour.
try:
    c.chat.completions.create(model="claude-err", messages=hi)
    raise SystemExit("claude-err answered")
except openai.RateLimitError as err:
    assert err.status_code == 429 and "rate limit" in str(err), err
try:
    c.chat.completions.create(model="claude-ok", messages=hi, logprobs=True)
    raise SystemExit("logprobs accepted")
except openai.BadRequestError as err:
    assert err.body["param"] == "logprobs", err.body
print("sdk anthropic ok")
"#;

#[test]
fn the_openai_python_sdk_works_against_anthropic_deployments() {
    let (s, key, seen) = crate::anthropic::setup();
    let path = python_path_with("openai", "openai");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", SCRIPT])
        .env("BASE", format!("http://{}/v1", s.addr))
        .env("KEY", &key);
    if let Some(p) = path {
        cmd.env("PYTHONPATH", p);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("sdk anthropic ok"));
    // What the SDK's requests became on the wire.
    let seen = seen.lock().expect("lock");
    let bodies: Vec<&serde_json::Value> = seen.iter().map(|r| &r.body).collect();
    let first_call = bodies
        .iter()
        .find(|b| b["model"] == "claude-call")
        .expect("a claude-call request");
    assert_eq!(
        first_call["tool_choice"],
        serde_json::json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert_eq!(first_call["tools"][0]["name"], "weather");
    let think = bodies
        .iter()
        .find(|b| b["model"] == "claude-think")
        .expect("a claude-think request");
    assert_eq!(
        think["thinking"],
        serde_json::json!({"type": "enabled", "budget_tokens": 1024})
    );
    // The tool result went back as a tool_result block after the assistant's tool_use.
    let back = bodies
        .iter()
        .find(|b| b["messages"].as_array().is_some_and(|m| m.len() == 3))
        .expect("the turn with the tool result");
    assert_eq!(back["messages"][1]["content"][1]["type"], "tool_use");
    assert_eq!(back["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(back["messages"][2]["content"][0]["tool_use_id"], "toolu_9");
    assert!(
        bodies.iter().all(|b| b.get("logprobs").is_none()),
        "the refused call was not sent"
    );
}
