//! Compatibility with the official `openai` Python SDK (the client most teams point at a
//! gateway): models, chat, streaming, completions, embeddings and error classes, against the
//! real server. The SDK is installed into target/py-deps on first use if it is missing.

use crate::common::*;
use serde_json::json;
use std::process::Command;

const SCRIPT: &str = r#"
import os, sys, openai
from openai import OpenAI
base, key, narrow = os.environ["BASE"], os.environ["KEY"], os.environ["NARROW"]
c = OpenAI(base_url=base, api_key=key, max_retries=0)
ids = [m.id for m in c.models.list()]
assert ids == ["A", "B", "C", "D"], ids
r = c.chat.completions.create(model="A", messages=[{"role": "user", "content": "hi"}], extra_body={"mock_response": "pong"})
assert r.choices[0].message.content == "pong", r
assert r.usage.completion_tokens > 0
chunks = list(c.chat.completions.create(model="A", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}))
text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
assert text == "This is a mock response from litegate.", text
assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
t = c.completions.create(model="B", prompt="say")
assert t.choices[0].text
e = c.embeddings.create(model="C", input=["a", "b"])
assert len(e.data) == 2 and len(e.data[0].embedding) > 0
n = OpenAI(base_url=base, api_key=narrow, max_retries=0)
try:
    n.chat.completions.create(model="B", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("narrow key called B")
except openai.PermissionDeniedError as err:
    assert err.status_code == 403
    assert err.body["type"] == "key_model_access_denied", err.body
bad = OpenAI(base_url=base, api_key="sk-not-a-key-000000000000", max_retries=0)
try:
    bad.models.list()
    raise SystemExit("bad key listed models")
except openai.AuthenticationError as err:
    assert err.status_code == 401
try:
    c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    raise SystemExit("unknown model answered")
except openai.BadRequestError as err:
    assert err.status_code == 400
print("sdk ok")
"#;

#[test]
fn the_openai_python_sdk_works_unchanged() {
    let s = Server::start();
    let key = s.admin_id("/key/generate", json!({}), "key");
    let narrow = s.admin_id("/key/generate", json!({"models": ["A"]}), "key");
    let path = python_path_with("openai", "openai");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", SCRIPT])
        .env("BASE", format!("http://{}/v1", s.addr))
        .env("KEY", &key)
        .env("NARROW", &narrow);
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("sdk ok"));
}
