//! The provider table's tests: every provider's route, auth header and refusals.

use super::*;

fn route(p: &str, base: Option<&str>, key: Option<&str>) -> Route {
    find(p)
        .expect("known")
        .route("m", base, key, None)
        .expect("route")
}

#[test]
fn each_provider_has_its_own_url_and_auth() {
    let cases = [
        ("openai", "https://api.openai.com/v1/chat/completions"),
        (
            "text-completion-openai",
            "https://api.openai.com/v1/chat/completions",
        ),
        ("groq", "https://api.groq.com/openai/v1/chat/completions"),
        ("mistral", "https://api.mistral.ai/v1/chat/completions"),
        ("deepseek", "https://api.deepseek.com/beta/chat/completions"),
        ("together_ai", "https://api.together.ai/v1/chat/completions"),
        (
            "fireworks_ai",
            "https://api.fireworks.ai/inference/v1/chat/completions",
        ),
        ("xai", "https://api.x.ai/v1/chat/completions"),
        (
            "openrouter",
            "https://openrouter.ai/api/v1/chat/completions",
        ),
        ("perplexity", "https://api.perplexity.ai/chat/completions"),
        ("cerebras", "https://api.cerebras.ai/v1/chat/completions"),
        (
            "deepinfra",
            "https://api.deepinfra.com/v1/openai/chat/completions",
        ),
        ("ollama", "http://localhost:11434/v1/chat/completions"),
        ("ollama_chat", "http://localhost:11434/v1/chat/completions"),
        ("lm_studio", "http://localhost:1234/v1/chat/completions"),
        (
            "gemini",
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
        ),
    ];
    for (p, url) in cases {
        let r = route(p, None, Some("k"));
        assert_eq!(r.url("chat/completions"), url, "{p}");
        assert_eq!(r.auth, Some(("authorization", "Bearer k".into())), "{p}");
        assert!(route(p, None, None).auth.is_none(), "{p}");
        // The deployment's own api_base wins.
        assert_eq!(
            route(p, Some("http://h:1/v1/"), None).url("embeddings"),
            "http://h:1/v1/embeddings"
        );
    }
    // mock, the five needing api_base, anthropic, bedrock and vertex_ai are tested apart.
    assert_eq!(cases.len() + 9, PROVIDERS.len(), "every provider tested");
}

#[test]
fn some_need_api_base() {
    for p in [
        "hosted_vllm",
        "openai_compatible",
        "vllm",
        "azure",
        "azure_ai",
    ] {
        let p = find(p).expect("known");
        assert!(p.route("m", None, Some("k"), None).is_err(), "{}", p.name);
        assert!(
            p.route("m", Some(" "), Some("k"), None).is_err(),
            "{}",
            p.name
        );
        assert!(p.route("m", Some("http://h"), Some("k"), None).is_ok());
    }
    // vertex_ai's routes need its credentials.
    let v = find("vertex_ai").expect("vertex_ai");
    assert!(v.route("m", Some("http://h"), Some("k"), None).is_err());
    assert!(names().starts_with("mock, openai, "));
}

#[test]
fn azure_routes() {
    let az = find("azure").expect("azure");
    let r = az
        .route(
            "my-gpt",
            Some("https://x.openai.azure.com/"),
            Some("k"),
            Some("2024-06-01"),
        )
        .expect("route");
    assert_eq!(
        r.url("chat/completions"),
        "https://x.openai.azure.com/openai/deployments/my-gpt/chat/completions?api-version=2024-06-01"
    );
    assert_eq!(r.auth, Some(("api-key", "k".into())));
    let r = az.route("d", Some("http://h"), None, None).expect("route");
    assert_eq!(
        r.url("embeddings"),
        format!("http://h/openai/deployments/d/embeddings?api-version={AZURE_DEFAULT_API_VERSION}")
    );
    assert!(r.auth.is_none());
    let ai = find("azure_ai").expect("azure_ai");
    let r = ai
        .route(
            "m",
            Some("https://r.services.ai.azure.com"),
            Some("k"),
            Some("2024-05-01-preview"),
        )
        .expect("route");
    assert_eq!(
        r.url("chat/completions"),
        "https://r.services.ai.azure.com/models/chat/completions?api-version=2024-05-01-preview"
    );
    // LiteLLM: Azure OpenAI v1 hosts take the key as `api-key`, others as Bearer.
    assert_eq!(r.auth, Some(("api-key", "k".into())));
    let r = ai
        .route(
            "m",
            Some("https://r.openai.azure.com/openai/v1"),
            Some("k"),
            None,
        )
        .expect("route");
    assert_eq!(r.auth, Some(("api-key", "k".into())));
    assert_eq!(
        r.url("chat/completions"),
        "https://r.openai.azure.com/openai/v1/chat/completions"
    );
    for base in [
        "https://e.inference.ai.azure.com",
        "https://services.ai.azure.com.evil.example",
        "https://x.openai.azure.com.evil.example/v1",
    ] {
        let r = ai.route("m", Some(base), Some("k"), None).expect("route");
        assert_eq!(r.auth, Some(("authorization", "Bearer k".into())), "{base}");
    }
    let r = ai
        .route("m", Some("https://e.inference.ai.azure.com/"), None, None)
        .expect("r");
    assert_eq!(
        r.url("chat/completions"),
        "https://e.inference.ai.azure.com/chat/completions"
    );
    let an = find("anthropic").expect("anthropic");
    for base in [
        None,
        Some("https://api.anthropic.com/"),
        Some("https://api.anthropic.com/v1"),
        Some("https://api.anthropic.com/v1/messages"),
    ] {
        let r = an.route("claude", base, Some("sk-ant"), None).expect("r");
        assert_eq!(r.url("messages"), "https://api.anthropic.com/v1/messages");
        assert_eq!(r.auth, Some(("x-api-key", "sk-ant".into())));
        assert_eq!(r.wire, Wire::Anthropic);
    }
    // A key is never printed.
    let r = route("openai", None, Some("sk-secret"));
    assert!(!format!("{r:?}").contains("sk-secret"));
}

#[test]
fn bedrock_routes() {
    let b = find("bedrock").expect("bedrock");
    let r = b
        .route(
            "us.anthropic.claude-3-5-haiku-20241022-v1:0",
            Some(&bedrock_endpoint("us-east-1")),
            None,
            None,
        )
        .expect("route");
    assert_eq!(
        r.url("converse"),
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/\
         us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert_eq!(r.auth, None);
    assert_eq!(r.wire, Wire::Bedrock);
    // An ARN is one segment; a Bedrock API key is a Bearer token.
    let r = b
        .route(
            "arn:aws:bedrock:us-east-1:1:inference-profile/x",
            Some("http://h:1/"),
            Some("bk"),
            None,
        )
        .expect("route");
    assert_eq!(
        r.url("converse-stream"),
        "http://h:1/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx/converse-stream"
    );
    assert_eq!(r.auth, Some(("authorization", "Bearer bk".into())));
    assert_eq!(
        bedrock_endpoint("cn-north-1"),
        "https://bedrock-runtime.cn-north-1.amazonaws.com.cn"
    );
    assert!(valid_aws_region("us-gov-west-1"));
    for bad in ["", "US-EAST-1", "evil.com/", "a b", "x.y"] {
        assert!(!valid_aws_region(bad), "{bad}");
    }
    let creds = AwsCredentials {
        access_key_id: "AKIDSECRETID".into(),
        secret_access_key: "shh-secret".into(),
        session_token: Some("tok-secret".into()),
        region: "us-east-1".into(),
    };
    let shown = format!(
        "{:?}",
        Route {
            aws: Some(creds),
            ..Route::default()
        }
    );
    assert!(
        !shown.contains("SECRET") && !shown.contains("secret"),
        "{shown}"
    );
}
