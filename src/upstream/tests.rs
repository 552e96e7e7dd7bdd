//! Tests of `upstream`: URLs, bodies, error mapping and scrubbing.

use super::*;

pub(super) fn dep() -> Deployment {
    Deployment {
        model_name: "gpt".into(),
        model: "openai/gpt-4o".into(),
        api_base: Some("http://10.1.2.3:9/v1/".into()),
        api_key: Some("sk-provider-secret".into()),
        rpm: None,
        tpm: None,
        input_cost_per_token: 0.0,
        output_cost_per_token: 0.0,
        timeout_secs: 1.0,
        stream_timeout_secs: 1.0,
        id: "x".into(),
        access_groups: vec![],
        model_info: Default::default(),
        route: crate::provider::find("openai")
            .expect("openai")
            .route(
                "gpt-4o",
                Some("http://10.1.2.3:9/v1/"),
                Some("sk-provider-secret"),
                None,
            )
            .expect("route"),
    }
}

/// `body_unchanged` compares in place what `model_for` builds: the same verdict for
/// wildcard and fixed deployments, with and without a model prefix.
#[test]
fn body_unchanged_agrees_with_model_for() {
    let mut fixed = dep();
    let mut wild = dep();
    wild.model = "openai/*".into();
    let mut bare = dep();
    bare.model = "plain".into();
    let called = ["gpt", "openai/gpt-4o", "x/y/z", "", "a/", "/b"];
    let sent = [
        "gpt-4o",
        "gpt",
        "y/z",
        "openai/gpt-4o",
        "plain",
        "",
        "b",
        "pre/gpt-4o",
        "pre/y/z",
    ];
    for prefix in ["", "pre/"] {
        for d in [&mut fixed, &mut wild, &mut bare] {
            d.route.model_prefix = prefix;
        }
        for d in [&fixed, &wild, &bare] {
            for c in called {
                for m in sent {
                    let mut body = serde_json::Map::new();
                    body.insert("model".into(), Value::String(m.into()));
                    let old = m == Upstream::model_for(d, c);
                    assert_eq!(Upstream::body_unchanged(d, c, &body), old, "{m} {c}");
                    body.insert("api_base".into(), Value::Null);
                    assert!(!Upstream::body_unchanged(d, c, &body));
                }
            }
        }
    }
}

#[test]
fn url_and_body() {
    let d = dep();
    assert_eq!(
        Upstream::url(&d, "chat/completions"),
        "http://10.1.2.3:9/v1/chat/completions"
    );
    let body = serde_json::json!({"model": "gpt", "messages": [], "api_base": "http://evil",
        "base_url": "http://evil", "api_key": "x", "mock_response": "y", "temperature": 0.5});
    let out: Value = serde_json::from_slice(&Upstream::body(
        &d,
        "gpt",
        body.as_object().cloned().unwrap_or_default(),
    ))
    .expect("json");
    assert_eq!(out["model"], "gpt-4o");
    assert_eq!(out["temperature"], 0.5);
    for f in ["api_base", "base_url", "api_key", "mock_response"] {
        assert!(out.get(f).is_none(), "{f} forwarded");
    }
}

#[test]
fn errors_are_scrubbed() {
    let d = dep();
    let e = Upstream::status_error(
        &d,
        401,
        br#"{"error": {"message": "bad key sk-provider-secret at http://10.1.2.3:9/v1"}}"#,
    );
    assert_eq!(e.status(), 401);
    let m = e.message();
    assert!(
        !m.contains("sk-provider-secret") && !m.contains("10.1.2.3"),
        "{m}"
    );
    // Host and port alone, and the host alone, are scrubbed too.
    let e = Upstream::status_error(&d, 500, b"down: 10.1.2.3:9 (10.1.2.3)");
    assert!(!e.message().contains("10.1.2.3"), "{}", e.message());
    // A deployment without `api_base` goes to its provider's default URL: that URL and
    // its host are scrubbed as well.
    let mut a = dep();
    a.api_base = None;
    a.route = crate::provider::find("anthropic")
        .expect("anthropic")
        .route("claude", None, Some("sk-ant-secret"), None)
        .expect("route");
    a.api_key = Some("sk-ant-secret".into());
    let e = Upstream::status_error(
        &a,
        400,
        br#"{"error": {"message": "POST https://api.anthropic.com/v1/messages failed (api.anthropic.com:443, api.anthropic.com) sk-ant-secret"}}"#,
    );
    let m = e.message();
    assert!(
        !m.contains("anthropic.com") && !m.contains("sk-ant-secret"),
        "{m}"
    );
    assert!(m.contains("[upstream]/messages"), "{m}");
    // A redirect shows nothing of its body.
    let e = Upstream::status_error(&d, 302, b"see http://elsewhere.example/x");
    assert_eq!(e.status(), 502);
    assert!(!e.message().contains("elsewhere"), "{}", e.message());
    // What is echoed is bounded.
    let long = format!(
        "{{\"error\": {{\"message\": \"{}\"}}}}",
        "x".repeat(100_000)
    );
    let e = Upstream::status_error(&d, 400, long.as_bytes());
    assert!(
        e.message().len() < MAX_ECHOED_CHARS + 100,
        "{}",
        e.message().len()
    );
}
