//! Providers (issue 13, first slice): Azure's wire format against the fake upstream (URL with
//! the deployment and `api-version`, the `api-key` header and no `Authorization`, the body's
//! model; chat, completions, embeddings, streams; spend recorded), each deployment's key going
//! only to its own host, and unsupported providers or a missing `api_base` refused by
//! `check-config` (exit 2, naming the field).

use crate::common::*;
use crate::config_file::check;
use crate::upstream::*;
use serde_json::{json, Value};

fn azure_config(f: &Fake, version: &str) -> String {
    let mut y = String::from("model_list:\n");
    for m in ["json", "sse"] {
        y.push_str(&format!(
            "  - model_name: az-{m}\n    litellm_params: {{ model: azure/{m}, \
             api_base: \"http://127.0.0.1:{}/\", api_key: {UPSTREAM_KEY}{version}, \
             input_cost_per_token: {IN_COST}, output_cost_per_token: {OUT_COST} }}\n",
            f.port
        ));
    }
    y.push_str(
        "general_settings:
  master_key: os.environ/TEST_MASTER_KEY
",
    );
    y
}

fn spend_of(s: &Server, r: &Resp) -> f64 {
    spend_log_of(s, r)["spend"].as_f64().expect("spend")
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn azure_speaks_its_wire_format() {
    let f = Fake::start();
    let s = Server::start_with(&azure_config(&f, ", api_version: 2024-06-01"), &[]);
    let k = key_for(&s, json!({}));
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let calls = [
        (
            "/v1/chat/completions",
            "chat/completions",
            json!({"model": "az-json", "messages": msgs}),
        ),
        (
            "/v1/completions",
            "completions",
            json!({"model": "az-json", "prompt": "hi"}),
        ),
        (
            "/v1/embeddings",
            "embeddings",
            json!({"model": "az-json", "input": "hi"}),
        ),
    ];
    for (path, endpoint, body) in calls {
        let r = s.post(path, &k, body);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let want = if endpoint == "embeddings" {
            10.0 * IN_COST
        } else {
            CALL_COST
        };
        assert!(near(spend_of(&s, &r), want), "{path}");
        let rec = f.last();
        assert_eq!(rec.method, "POST", "{path}");
        assert_eq!(
            rec.path,
            format!("/openai/deployments/json/{endpoint}?api-version=2024-06-01")
        );
        assert_eq!(rec.header("api-key"), Some(UPSTREAM_KEY), "{path}");
        assert_eq!(rec.header("authorization"), None, "{path}");
        assert_eq!(rec.body["model"], "json", "{path}");
    }
    // A chat answer comes back in OpenAI's format.
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "az-json", "messages": msgs}),
    );
    assert_eq!(r.json()["object"], "chat.completion");

    // Streams: SSE relayed, usage billed.
    let r = s.post(
        "/v1/chat/completions",
        &k,
        json!({"model": "az-sse", "stream": true, "messages": msgs}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("data: [DONE]"), "{}", r.text());
    assert!(near(spend_of(&s, &r), CALL_COST));
    let rec = f.last();
    assert_eq!(
        rec.path,
        "/openai/deployments/sse/chat/completions?api-version=2024-06-01"
    );
    assert_eq!(rec.header("api-key"), Some(UPSTREAM_KEY));
    assert_eq!(rec.header("authorization"), None);
    assert_eq!(f.count(), 5);
}

#[test]
fn azure_api_version_comes_from_the_environment() {
    let f = Fake::start();
    let s = Server::start_with_env(
        &azure_config(&f, ""),
        &[],
        &[("AZURE_API_VERSION", "2023-05-15")],
    );
    let k = key_for(&s, json!({}));
    assert_eq!(chat(&s, &k, "az-json").status, 200);
    assert_eq!(
        f.last().path,
        "/openai/deployments/json/chat/completions?api-version=2023-05-15"
    );
}

#[test]
fn each_deployment_key_reaches_only_its_own_host() {
    let (f1, f2) = (Fake::start(), Fake::start());
    let (k1, k2) = ("sk-first-host-key-111", "sk-second-host-key-222");
    let y = format!(
        "model_list:\n\
         - model_name: one\n  litellm_params: {{model: openai/json, api_base: \"{}\", api_key: {k1}}}\n\
         - model_name: two\n  litellm_params: {{model: groq/sse, api_base: \"{}\"}}\n\
         general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n",
        f1.api_base(),
        f2.api_base()
    );
    // The second deployment's key comes from the provider's variable (LiteLLM's GROQ_API_KEY).
    let s = Server::start_with_env(&y, &[], &[("GROQ_API_KEY", k2)]);
    let k = key_for(&s, json!({}));
    for _ in 0..2 {
        assert_eq!(chat(&s, &k, "one").status, 200);
        let r = s.post(
            "/v1/chat/completions",
            &k,
            json!({"model": "two", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let seen = |f: &Fake| -> Vec<(String, Value)> {
        f.requests()
            .iter()
            .map(|r| (format!("{:?}", r.headers), r.body.clone()))
            .collect()
    };
    let (one, two) = (seen(&f1), seen(&f2));
    assert_eq!((one.len(), two.len()), (2, 2));
    for r in f1.requests() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {k1}").as_str())
        );
        assert_eq!(r.body["model"], "json");
    }
    for r in f2.requests() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {k2}").as_str())
        );
        assert_eq!(r.body["model"], "sse");
    }
    assert!(one
        .iter()
        .all(|(h, b)| !h.contains(k2) && !b.to_string().contains(k2)));
    assert!(two
        .iter()
        .all(|(h, b)| !h.contains(k1) && !b.to_string().contains(k1)));
}

#[test]
fn unsupported_providers_and_missing_api_base_stop_the_start() {
    for p in ["sagemaker/x", "nope/x"] {
        let (code, _, err) = check(
            &format!(
                "model_list:\n  - model_name: ok\n    litellm_params: {{model: mock/a}}\n  \
                 - model_name: a\n    litellm_params: {{model: {p}, api_key: sk-ant-x}}\n"
            ),
            &[],
        );
        assert_eq!(code, Some(2), "{p}: {err}");
        assert!(err.contains("model_list[1].litellm_params.model"), "{err}");
        assert!(err.contains("not supported"), "{err}");
        assert!(
            err.contains("mock, openai, text-completion-openai, groq"),
            "{err}"
        );
        assert!(err.contains("azure_ai"), "{err}");
        assert!(!err.contains("sk-ant-x"), "{err}");
    }
    for p in [
        "hosted_vllm/m",
        "openai_compatible/m",
        "azure/d",
        "azure_ai/m",
    ] {
        let (code, _, err) = check(
            &format!("model_list:\n  - model_name: a\n    litellm_params: {{model: {p}}}\n"),
            &[],
        );
        assert_eq!(code, Some(2), "{p}: {err}");
        assert!(
            err.contains("model_list[0].litellm_params.api_base"),
            "{err}"
        );
        assert!(err.contains("required"), "{err}");
    }
    let (code, _, err) = check(
        "model_list:\n  - model_name: a\n    litellm_params: {model: ollama/llama3}\n  \
         - model_name: b\n    litellm_params: {model: azure/d, api_base: 'https://x.openai.azure.com'}\n",
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
}
