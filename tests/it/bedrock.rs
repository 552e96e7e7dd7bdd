//! The `bedrock` provider (issue 13) against the fake Bedrock runtime (`bedrock_fake.rs`, which
//! recomputes every SigV4 signature): Converse and ConverseStream on the wire, answers and
//! binary event streams translated to OpenAI's format, tool calls (also streamed), spend from
//! the embedded price table, Bedrock's errors mapped (scrubbed of the access key id), broken
//! streams (bad CRC, oversized message, exception event) ending as upstream errors, each
//! deployment's credentials reaching only its own host, and bad configs refused at start.

use crate::bedrock_fake::{self, Log};
use crate::common::*;
use crate::upstream::{IN_COST, OUT_COST};
use serde_json::{json, Value};

const KEY_ID: &str = "AKIATESTBEDROCK0001";
const SECRET: &str = "test/secret+bedrock/key0001";
const TOKEN: &str = "FwoGZXIvYXdzEXAMPLEsessiontoken0001";
/// The haiku rows of the price table (input, output, cache read, cache write per token).
const HAIKU_IN: f64 = 8e-7;
const HAIKU_OUT: f64 = 4e-6;
const HAIKU_CACHE_READ: f64 = 8e-8;
const HAIKU_CACHE_WRITE: f64 = 1e-6;

/// The spend of one haiku answer: 10 uncached input tokens at the input price, the cache read
/// and write tokens at the table's cache prices (as LiteLLM charges them), 20 output tokens.
fn haiku_spend() -> f64 {
    10.0 * HAIKU_IN
        + 4.0 * HAIKU_CACHE_READ
        + 2.0 * HAIKU_CACHE_WRITE
        + COMPLETION as f64 * HAIKU_OUT
}

fn setup() -> (Server, String, Log, u16) {
    let (port, seen) = bedrock_fake::start(SECRET);
    let creds = format!(
        "aws_access_key_id: {KEY_ID}, aws_secret_access_key: \"{SECRET}\", \
         aws_region_name: us-east-1"
    );
    let mut y = format!(
        "model_list:\n\
         - model_name: haiku\n  litellm_params: {{ model: \"bedrock/anthropic.claude-3-5-haiku-20241022-v1:0\", \
           api_base: \"http://127.0.0.1:{port}\", {creds} }}\n\
         - model_name: haiku-us\n  litellm_params: {{ model: \"bedrock/converse/us.anthropic.claude-3-5-haiku-20241022-v1:0\", \
           aws_bedrock_runtime_endpoint: \"http://127.0.0.1:{port}\", aws_access_key_id: {KEY_ID}, \
           aws_secret_access_key: \"{SECRET}\", aws_session_token: {TOKEN}, aws_region_name: eu-west-1 }}\n\
         - model_name: bad-secret\n  litellm_params: {{ model: bedrock/x.model, \
           api_base: \"http://127.0.0.1:{port}\", aws_access_key_id: {KEY_ID}, \
           aws_secret_access_key: wrong, aws_region_name: us-east-1 }}\n"
    );
    for m in ["tool", "err", "throttle", "corrupt", "huge", "exc"] {
        y.push_str(&format!(
            "- model_name: {m}\n  litellm_params: {{ model: bedrock/{m}.model, \
             api_base: \"http://127.0.0.1:{port}\", {creds}, \
             input_cost_per_token: {IN_COST}, output_cost_per_token: {OUT_COST} }}\n"
        ));
    }
    y.push_str("general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n");
    let s = Server::start_with(&y, &[]);
    let k = key_for(&s, json!({}));
    (s, k, seen, port)
}

fn hi(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// The `data:` chunks of a stream (without `[DONE]`).
fn chunks(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("json chunk"))
        .collect()
}

fn credential_of(auth: &str) -> Vec<String> {
    auth.split("Credential=")
        .nth(1)
        .and_then(|c| c.split(',').next())
        .map(|c| c.split('/').map(str::to_string).collect())
        .unwrap_or_default()
}

/// 10 input + 4 cache-read + 2 cache-write prompt tokens, 20 output tokens.
const PROMPT: u64 = 16;
const COMPLETION: u64 = 20;

#[test]
fn bedrock_converse_is_signed_and_translated() {
    let (s, k, seen, port) = setup();
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "haiku", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"}], "max_tokens": 30, "stop": ["END"],
            "temperature": 0.1}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "haiku");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["prompt_tokens"], PROMPT);
    assert_eq!(v["usage"]["completion_tokens"], COMPLETION);
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    assert_eq!(v["usage"]["cache_creation_input_tokens"], 2);
    // Spend from the embedded price table (the config gives no prices for this model).
    let row = spend_log_of(&s, &r);
    assert_eq!(row["prompt_tokens"], PROMPT, "{row}");
    let want = haiku_spend();
    assert!(
        (row["spend"].as_f64().expect("spend") - want).abs() < 1e-12,
        "{row}"
    );
    let seen = seen.lock().expect("lock");
    let rec = seen.last().expect("a request");
    assert_eq!(
        rec.path,
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert!(rec.signature_ok, "signature recomputed by the fake");
    assert_eq!(
        rec.header("host"),
        Some(format!("127.0.0.1:{port}").as_str())
    );
    assert_eq!(rec.header("content-type"), Some("application/json"));
    assert_eq!(rec.header("x-amz-security-token"), None);
    let cred = credential_of(rec.header("authorization").expect("authorization"));
    assert_eq!(cred[0], KEY_ID);
    assert_eq!(&cred[2..], ["us-east-1", "bedrock", "aws4_request"]);
    assert_eq!(
        rec.body,
        json!({"system": [{"text": "be brief"}],
            "messages": [{"role": "user", "content": [{"text": "hi"}]}],
            "inferenceConfig": {"maxTokens": 30, "temperature": 0.1, "stopSequences": ["END"]}})
    );
}

#[test]
fn bedrock_session_token_endpoint_and_cross_region_ids() {
    let (s, k, seen, _) = setup();
    let r = s.post("/v1/chat/completions", &k, hi("haiku-us"));
    assert_eq!(r.status, 200, "{}", r.text());
    // The `us.` profile's own row prices it.
    let row = spend_log_of(&s, &r);
    let want = haiku_spend();
    assert!((row["spend"].as_f64().expect("spend") - want).abs() < 1e-12);
    let seen = seen.lock().expect("lock");
    let rec = seen.last().expect("a request");
    assert_eq!(
        rec.path,
        "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert_eq!(rec.header("x-amz-security-token"), Some(TOKEN));
    assert!(rec.signature_ok);
    let auth = rec.header("authorization").expect("authorization");
    assert!(auth.contains("x-amz-security-token"), "{auth}");
    assert_eq!(credential_of(auth)[2], "eu-west-1");
}

#[test]
fn bedrock_streams_become_openai_chunks() {
    let (s, k, seen, _) = setup();
    for wants_usage in [false, true] {
        let mut body = hi("haiku");
        body["stream"] = json!(true);
        if wants_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        let r = s.post("/v1/chat/completions", &k, body);
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        let cs = chunks(&text);
        assert!(cs.iter().all(|c| c["object"] == "chat.completion.chunk"));
        let said: String = cs
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(said, "Hello world");
        assert!(cs
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop"));
        let usage = cs.iter().find(|c| !c["usage"].is_null());
        assert_eq!(usage.is_some(), wants_usage, "{text}");
        if let Some(u) = usage {
            assert_eq!(u["usage"]["prompt_tokens"], PROMPT);
            assert_eq!(u["usage"]["completion_tokens"], COMPLETION);
        }
        let row = spend_log_of(&s, &r);
        assert_eq!(row["status"], "success", "{row}");
        assert_eq!(row["completion_tokens"], COMPLETION, "{row}");
        let seen = seen.lock().expect("lock");
        let rec = seen.last().expect("a request");
        assert_eq!(
            rec.path,
            "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream"
        );
        assert!(rec.signature_ok);
        assert_eq!(
            rec.header("accept"),
            Some("application/vnd.amazon.eventstream")
        );
        assert!(rec.body.get("stream").is_none() && rec.body.get("stream_options").is_none());
    }
}

#[test]
fn bedrock_tool_calls_plain_and_streamed() {
    let (s, k, seen, _) = setup();
    let tools = json!([{"type": "function", "function": {"name": "weather",
        "description": "weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let ask = json!({"model": "tool", "messages": [{"role": "user", "content": "weather?"}],
        "tools": tools, "tool_choice": {"type": "function", "function": {"name": "weather"}}});
    let r = s.post("/v1/chat/completions", &k, ask.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "tooluse_1");
    assert_eq!(call["function"]["name"], "weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
    {
        let seen = seen.lock().expect("lock");
        let body = &seen.last().expect("a request").body;
        assert_eq!(
            body["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "weather", "description": "weather of a city",
                "inputSchema": {"json": {"type": "object",
                    "properties": {"city": {"type": "string"}}}}}}],
                "toolChoice": {"tool": {"name": "weather"}}})
        );
    }
    // The answer goes back with its result: toolUse and toolResult blocks.
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "tool", "tools": tools, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "tooluse_1", "content": "sunny"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    {
        let seen = seen.lock().expect("lock");
        let m = &seen.last().expect("a request").body["messages"];
        assert_eq!(
            m[1]["content"],
            json!([{"toolUse": {"toolUseId": "tooluse_1", "name": "weather",
                "input": {"city": "Paris"}}}])
        );
        assert_eq!(
            m[2]["content"],
            json!([{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "sunny"}]}}])
        );
    }
    let mut ask = ask;
    ask["stream"] = json!(true);
    let r = s.post("/v1/chat/completions", &k, ask);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let cs = chunks(&text);
    let calls: Vec<&Value> = cs
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["id"], "tooluse_1", "{text}");
    assert_eq!(calls[0]["function"]["name"], "weather");
    let args: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
    assert!(cs
        .iter()
        .any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    assert!(text.ends_with("data: [DONE]\n\n"));
    let row = spend_log_of(&s, &r);
    assert_eq!(row["status"], "success");
    let want = PROMPT as f64 * IN_COST + COMPLETION as f64 * OUT_COST;
    assert!((row["spend"].as_f64().expect("spend") - want).abs() < 1e-9);
}

#[test]
fn bedrock_errors_are_mapped_and_scrubbed() {
    let (s, k, seen, _) = setup();
    let r = s.post("/v1/chat/completions", &k, hi("err"));
    let v = assert_error_says(
        &r,
        400,
        "ValidationException: The provided model identifier",
    );
    assert!(!v.to_string().contains(KEY_ID), "{v}");
    assert!(v.to_string().contains("[redacted]"), "{v}");
    let r = s.post("/v1/chat/completions", &k, hi("throttle"));
    assert_error_says(&r, 429, "ThrottlingException: Too many requests");
    // A signature the fake cannot reproduce (the deployment's secret is wrong) is refused:
    // the fake's check can fail.
    let r = s.post("/v1/chat/completions", &k, hi("bad-secret"));
    assert_error_says(&r, 403, "InvalidSignatureException");
    assert!(
        !seen
            .lock()
            .expect("lock")
            .last()
            .expect("seen")
            .signature_ok
    );
    assert_eq!(spend_log_of(&s, &r)["status"], "failure");
    // Only chat: nothing is sent for the others.
    let n = seen.lock().expect("lock").len();
    let r = s.post(
        "/v1/embeddings",
        &k,
        json!({"model": "haiku", "input": "hi"}),
    );
    assert_error_says(&r, 400, "only /v1/chat/completions");
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "haiku", "n": 2, "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_error_says(&r, 400, "`n` must be 1");
    assert_eq!(seen.lock().expect("lock").len(), n, "nothing sent upstream");
    assert!(
        !s.log().contains(SECRET) && !s.log().contains(KEY_ID),
        "the log"
    );
}

#[test]
fn broken_bedrock_streams_end_as_upstream_errors() {
    let (s, k, _, _) = setup();
    for (model, says) in [
        ("corrupt", "malformed event-stream message"),
        ("huge", "longer than"),
        ("exc", "throttlingException: slow down"),
    ] {
        let mut body = hi(model);
        body["stream"] = json!(true);
        let r = s.post("/v1/chat/completions", &k, body);
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        assert!(text.ends_with("data: [DONE]\n\n"), "{model}: {text}");
        let cs = chunks(&text);
        let err = cs.last().expect("an error event");
        let m = err["error"]["message"].as_str().unwrap_or_default();
        assert!(m.contains(says), "{model}: {text}");
        assert!(!text.contains(KEY_ID), "{model}: {text}");
        // The good frames before the fault were relayed; what follows a bad one never is.
        assert_eq!(cs[0]["choices"][0]["delta"]["role"], "assistant", "{text}");
        assert!(!text.contains("Hello world"), "{model}: {text}");
        assert_eq!(spend_log_of(&s, &r)["status"], "failure", "{model}");
    }
}

#[test]
fn bedrock_credentials_reach_only_their_own_host() {
    let (port_a, seen_a) = bedrock_fake::start("secret-of-a");
    let (port_b, seen_b) = bedrock_fake::start("secret-of-b");
    // Deployment a takes its credentials from the environment (LiteLLM's variable names).
    let y = format!(
        "model_list:\n\
         - model_name: a\n  litellm_params: {{ model: bedrock/m.a, api_base: \"http://127.0.0.1:{port_a}\" }}\n\
         - model_name: b\n  litellm_params: {{ model: bedrock/m.b, api_base: \"http://127.0.0.1:{port_b}\", \
           aws_access_key_id: AKIABBBBBBBBBBBBBBBB, aws_secret_access_key: secret-of-b, \
           aws_session_token: token-of-b, aws_region_name: us-west-2 }}\n\
         general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n"
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIAAAAAAAAAAAAAAAAA"),
        ("AWS_SECRET_ACCESS_KEY", "secret-of-a"),
        ("AWS_SESSION_TOKEN", ""),
        ("AWS_REGION_NAME", ""),
        ("AWS_REGION", "eu-central-1"),
        ("AWS_BEARER_TOKEN_BEDROCK", ""),
    ];
    let s = Server::start_with_env(&y, &[], &env);
    let k = key_for(&s, json!({}));
    for m in ["a", "b", "a"] {
        let r = s.post("/v1/chat/completions", &k, hi(m));
        assert_eq!(r.status, 200, "{m}: {}", r.text());
    }
    let a = seen_a.lock().expect("lock");
    let b = seen_b.lock().expect("lock");
    assert_eq!((a.len(), b.len()), (2, 1));
    for rec in a.iter() {
        assert!(rec.signature_ok);
        let auth = rec.header("authorization").expect("auth");
        assert_eq!(credential_of(auth)[0], "AKIAAAAAAAAAAAAAAAAA");
        assert_eq!(credential_of(auth)[2], "eu-central-1");
        assert_eq!(rec.header("x-amz-security-token"), None);
        assert!(!format!("{:?}", rec.headers).contains("AKIAB"));
    }
    let rec = &b[0];
    assert!(rec.signature_ok);
    assert_eq!(
        credential_of(rec.header("authorization").expect("auth"))[0],
        "AKIABBBBBBBBBBBBBBBB"
    );
    assert_eq!(rec.header("x-amz-security-token"), Some("token-of-b"));
}

#[test]
fn bedrock_configs_missing_what_they_need_are_refused_at_start() {
    // The machine's own AWS variables must not fill the gaps: set empty (as unset).
    let clean = [
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_SESSION_TOKEN", ""),
        ("AWS_REGION_NAME", ""),
        ("AWS_REGION", ""),
        ("AWS_DEFAULT_REGION", ""),
        ("AWS_BEDROCK_RUNTIME_ENDPOINT", ""),
        ("AWS_BEARER_TOKEN_BEDROCK", ""),
    ];
    let cfg = |params: &str| {
        format!("model_list:\n  - model_name: c\n    litellm_params: {{ {params} }}\n")
    };
    let cases = [
        ("model: bedrock/anthropic.claude-v2", "aws_region_name"),
        (
            "model: bedrock/anthropic.claude-v2, aws_region_name: us-east-1",
            "aws_access_key_id",
        ),
        (
            "model: bedrock/anthropic.claude-v2, aws_region_name: us-east-1, \
             aws_access_key_id: AKIAX",
            "aws_secret_access_key",
        ),
        (
            "model: bedrock/invoke/anthropic.claude-v2, aws_region_name: us-east-1",
            "invoke",
        ),
        (
            "model: bedrock/anthropic.claude-v2, aws_region_name: \"evil.example/x\"",
            "not an AWS region",
        ),
    ];
    for (params, says) in cases {
        let (code, _, err) = crate::config_file::check(&cfg(params), &clean);
        assert_eq!(code, Some(2), "{params}: {err}");
        assert!(err.contains(says), "{params}: {err}");
        assert!(err.contains("model_list[0].litellm_params"), "{err}");
    }
    // Complete: from litellm_params, or a region and keys from the environment, or a Bedrock
    // API key.
    let ok = [
        (
            "model: bedrock/converse/anthropic.claude-v2, aws_region_name: us-east-1, \
             aws_access_key_id: AKIAX, aws_secret_access_key: s",
            vec![],
        ),
        (
            "model: bedrock/anthropic.claude-v2",
            vec![
                ("AWS_DEFAULT_REGION", "us-east-2"),
                ("AWS_ACCESS_KEY_ID", "AKIAX"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ],
        ),
        (
            "model: bedrock/anthropic.claude-v2, api_key: bedrock-api-key, \
             aws_region_name: us-east-1",
            vec![],
        ),
        // An ARN names its region.
        (
            "model: \"bedrock/arn:aws:bedrock:us-west-2:1:inference-profile/x\", \
             aws_access_key_id: AKIAX, aws_secret_access_key: s",
            vec![],
        ),
    ];
    for (params, extra) in ok {
        let mut env = clean.to_vec();
        env.extend(extra);
        let (code, _, err) = crate::config_file::check(&cfg(params), &env);
        assert_eq!(code, Some(0), "{params}: {err}");
    }
}

#[test]
fn a_bedrock_api_key_is_sent_as_a_bearer_token_instead_of_signing() {
    let (port, seen) = bedrock_fake::start(SECRET);
    let y = format!(
        "model_list:\n  - model_name: k\n    litellm_params: {{ model: bedrock/m.k, \
         api_base: \"http://127.0.0.1:{port}\", api_key: bedrock-api-key }}\n\
         general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n"
    );
    let s = Server::start_with(&y, &[]);
    let k = key_for(&s, json!({}));
    let r = s.post("/v1/chat/completions", &k, hi("k"));
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = seen.lock().expect("lock");
    let rec = seen.last().expect("a request");
    assert_eq!(rec.header("authorization"), Some("Bearer bedrock-api-key"));
    assert_eq!(rec.header("x-amz-date"), None);
}

const SDK_SCRIPT: &str = r#"
import os, json, openai
from openai import OpenAI
c = OpenAI(base_url=os.environ["BASE"], api_key=os.environ["KEY"], max_retries=0)
hi = [{"role": "user", "content": "hi"}]
r = c.chat.completions.create(model="haiku", messages=hi)
assert r.choices[0].message.content == "Hello world", r
assert r.choices[0].finish_reason == "length", r
assert r.usage.prompt_tokens == 16 and r.usage.completion_tokens == 20, r.usage
chunks = list(c.chat.completions.create(model="haiku", messages=hi, stream=True,
                                        stream_options={"include_usage": True}))
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert text == "Hello world", text
assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 20
tools = [{"type": "function", "function": {"name": "weather",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
r = c.chat.completions.create(model="tool", messages=hi, tools=tools, tool_choice="required")
call = r.choices[0].message.tool_calls[0]
assert call.function.name == "weather" and json.loads(call.function.arguments) == {"city": "Paris"}
args, names = "", []
for ch in c.chat.completions.create(model="tool", messages=hi, tools=tools, stream=True):
    for tc in (ch.choices[0].delta.tool_calls or []) if ch.choices else []:
        args += tc.function.arguments or ""
        if tc.function.name:
            names.append(tc.function.name)
assert names == ["weather"] and json.loads(args) == {"city": "Paris"}, (names, args)
try:
    c.chat.completions.create(model="throttle", messages=hi)
    raise SystemExit("throttled call answered")
except openai.RateLimitError as err:
    assert err.status_code == 429
print("sdk ok")
"#;

#[test]
fn the_openai_sdk_works_against_bedrock_deployments() {
    let (s, k, _, _) = setup();
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-c", SDK_SCRIPT])
        .env("BASE", format!("http://{}/v1", s.addr))
        .env("KEY", &k);
    if let Some(p) = python_path_with("openai", "openai") {
        cmd.env("PYTHONPATH", p);
    }
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("sdk ok"),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
