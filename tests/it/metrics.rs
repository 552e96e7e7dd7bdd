//! `/metrics`: Prometheus text that a real parser (Python's `prometheus_client`) accepts, with
//! the families issue 5 asks for, no secrets and no per-key labels.

use crate::common::*;
use serde_json::json;
use std::process::Command;

const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    out[fam.name] = {"type": fam.type, "samples": [[s.name, s.labels, s.value] for s in fam.samples]}
print(json.dumps(out))
"#;

#[test]
fn metrics_parse_with_prometheus_client_and_carry_the_families() {
    let s = Server::start();
    let v = s.admin("/key/generate", json!({"key_alias": "metrics-key"}));
    let key = v["key"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let r = s.post(
            "/v1/chat/completions",
            &key,
            json!({"model": "A", "messages": [{"role": "user", "content": "hello world"}]}),
        );
        assert_eq!(r.status, 200);
    }
    assert_eq!(s.get("/v1/models", "sk-bad-key-000000000000").status, 401);
    let r = s.anon("GET", "/metrics");
    assert_eq!(r.status, 200, "no key needed by default");
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    for secret in [
        key.as_str(),
        MASTER,
        v["token"].as_str().unwrap(),
        "metrics-key",
        "sk-upstream-secret",
    ] {
        assert!(!text.contains(secret), "secret or per-key label in metrics");
    }
    let path = python_path_with("prometheus_client.parser", "prometheus-client");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(p) = path {
        cmd.env("PYTHONPATH", p);
    }
    let mut child = cmd.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "parser rejected the output: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fams: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (name, kind) in [
        ("litegate_requests", "counter"),
        ("litegate_tokens", "counter"),
        ("litegate_spend", "counter"),
        ("litegate_key_check_seconds", "histogram"),
        ("litegate_upstream_latency_seconds", "histogram"),
        ("litegate_db_pool_wait_seconds", "histogram"),
        ("litegate_db_pool_waits", "counter"),
        ("litegate_active_streams", "gauge"),
        ("litegate_open_connections", "gauge"),
    ] {
        assert_eq!(fams[name]["type"], kind, "{name} in {fams}");
    }
    let sample = |fam: &str, pred: &dyn Fn(&serde_json::Value) -> bool| -> f64 {
        fams[fam]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| pred(&s[1]))
            .map(|s| s[2].as_f64().unwrap())
            .unwrap_or(0.0)
    };
    let chats = sample("litegate_requests", &|l| {
        l["route"] == "/v1/chat/completions" && l["status"] == "200"
    });
    assert_eq!(chats, 3.0);
    let denied = sample("litegate_requests", &|l| {
        l["route"] == "/v1/models" && l["status"] == "401"
    });
    assert_eq!(denied, 1.0);
    let prompt = sample("litegate_tokens", &|l| {
        l["model"] == "A" && l["type"] == "prompt"
    });
    assert!(prompt >= 3.0, "{prompt} {}", fams["litegate_tokens"]);
    let spend = sample("litegate_spend", &|l| l["model"] == "A");
    assert!(spend > 0.0, "model A is priced in TEST_CONFIG");
    // Key checks were timed (at least the 3 calls, the 401 and the generate).
    let checks = fams["litegate_key_check_seconds"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s[0] == "litegate_key_check_seconds_count")
        .map(|s| s[2].as_f64().unwrap())
        .unwrap();
    assert!(checks >= 5.0, "{checks}");
}

#[test]
fn metrics_can_require_a_key() {
    let cfg = TEST_CONFIG.replace(
        "general_settings:",
        "general_settings:\n  metrics_require_auth: true",
    );
    let s = Server::start_with(&cfg, &[]);
    assert_error(&s.anon("GET", "/metrics"), 401);
    let user = seed_user(&s, "u", "internal_user");
    assert_error(&s.get("/metrics", &user), 403);
    assert_eq!(s.get("/metrics", MASTER).status, 200);
}
