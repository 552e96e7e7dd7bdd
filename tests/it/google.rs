//! The `gemini` and `vertex_ai` providers (issue 13) against the fakes in `google_fake.rs`:
//! Gemini (AI Studio key) chat, stream and embeddings through the OpenAI-compatible endpoint;
//! Vertex Gemini (endpoints/openapi, `google/` model) and Vertex Claude (`:rawPredict`,
//! `:streamRawPredict`, tools included) with an OAuth token minted from a service account
//! whose JWT the fake token endpoint verifies; the token refreshed before it expires; spend
//! from the price table; each credential only at its own host; bad credentials refused at
//! start; a refused token a clean 502.

use crate::common::*;
use crate::google_fake::{self as gf, Fake, TokenEndpoint, CLIENT_EMAIL, GEMINI_KEY};
use crate::upstream::UPSTREAM_KEY;
use serde_json::{json, Value};

struct G {
    s: Server,
    k: String,
    tokens: TokenEndpoint,
    studio: Fake,
    vertex: Fake,
    openai: crate::upstream::Fake,
    private_pem: String,
    _dir: tempfile::TempDir,
}

/// Tokens live `life_secs`. `vclaude` takes its credentials as JSON from the environment,
/// `vgem` from a file, its project from the credentials.
fn setup(life_secs: u64) -> G {
    let (private_pem, public_pem) = gf::rsa_key();
    let tokens = TokenEndpoint::start(&public_pem, life_secs);
    let studio = gf::ai_studio();
    let vertex = gf::vertex(&tokens, "proj-test", "europe-west4");
    let openai = crate::upstream::Fake::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let creds = gf::credentials(&private_pem, &tokens.uri(), CLIENT_EMAIL);
    let path = dir.path().join("sa.json");
    std::fs::write(&path, &creds).expect("write");
    // Signed by a key the token endpoint does not know.
    let (other_pem, _) = gf::rsa_key();
    let refused = gf::credentials(&other_pem, &tokens.uri(), CLIENT_EMAIL);

    let y = format!(
        "model_list:
  - model_name: gem
    litellm_params: {{ model: gemini/gemini-2.5-flash, api_base: \"{sb}/v1beta/openai\", api_key: {GEMINI_KEY} }}
  - model_name: gem-embed
    litellm_params: {{ model: gemini/gemini-embedding-001, api_base: \"{sb}/v1beta/openai\", api_key: {GEMINI_KEY} }}
  - model_name: vgem
    litellm_params: {{ model: vertex_ai/gemini-2.5-flash, api_base: \"{vb}\", vertex_credentials: \"{p}\", vertex_location: europe-west4 }}
  - model_name: vclaude
    litellm_params: {{ model: vertex_ai/claude-sonnet-4-5@20250929, api_base: \"{vb}/\", vertex_credentials: os.environ/VERTEX_SA_JSON, vertex_project: proj-test, vertex_location: europe-west4 }}
  - model_name: vrefused
    litellm_params: {{ model: vertex_ai/gemini-2.5-flash, api_base: \"{vb}\", vertex_credentials: os.environ/VERTEX_SA_REFUSED, vertex_location: europe-west4 }}
  - model_name: gpt
    litellm_params: {{ model: openai/json, api_base: \"{ob}\", api_key: {UPSTREAM_KEY} }}
general_settings:
  master_key: os.environ/TEST_MASTER_KEY
",
        sb = studio.base(),
        vb = vertex.base(),
        p = path.display(),
        ob = openai.api_base(),
    );
    let s = Server::start_with_env(
        &y,
        &[],
        &[("VERTEX_SA_JSON", &creds), ("VERTEX_SA_REFUSED", &refused)],
    );
    let k = key_for(&s, json!({}));
    G {
        s,
        k,
        tokens,
        studio,
        vertex,
        openai,
        private_pem,
        _dir: dir,
    }
}

fn msgs() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

/// The `data:` events of a stream, `[DONE]` excluded, and whether it ended with `[DONE]`.
fn events(text: &str) -> (Vec<Value>, bool) {
    let ev = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).expect("json event"))
        .collect();
    (ev, text.ends_with("data: [DONE]\n\n"))
}

fn spend_is(s: &Server, r: &Resp, expected: f64) {
    let row = spend_log_of(s, r);
    assert_eq!(row["status"], "success", "{row}");
    let got = row["spend"].as_f64().expect("spend");
    assert!(
        expected > 0.0 && (got - expected).abs() < 1e-12,
        "{got} != {expected}: {row}"
    );
}

/// gemini-2.5-flash on AI Studio and Vertex: 3e-7 in, 2.5e-6 out; 10 in, 20 out.
const GEMINI_SPEND: f64 = 10.0 * 3e-7 + 20.0 * 2.5e-6;
/// claude-sonnet-4-5 on Vertex: 3e-6 in, 1.5e-5 out.
const CLAUDE_SPEND: f64 = 10.0 * 3e-6 + 20.0 * 1.5e-5;

#[test]
fn gemini_chat_stream_and_embeddings_with_the_studio_key() {
    let g = setup(3600);
    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "gem", "messages": msgs()}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from Gemini"
    );
    spend_is(&g.s, &r, GEMINI_SPEND);
    let rec = g.studio.requests().pop().expect("a request");
    assert_eq!(rec.path, "/v1beta/openai/chat/completions");
    assert_eq!(
        rec.header("authorization"),
        Some(&*format!("Bearer {GEMINI_KEY}"))
    );
    assert_eq!(rec.json()["model"], "gemini-2.5-flash");

    // A stream: Gemini puts the usage on its last chunk; the caller did not ask for it,
    // yet the call is billed from it.
    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "gem", "messages": msgs(), "stream": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (ev, done) = events(&r.text());
    assert!(done);
    let said: String = ev
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(said, "Hello from Gemini");
    spend_is(&g.s, &r, GEMINI_SPEND);
    let rec = g.studio.requests().pop().expect("a request");
    assert_eq!(rec.json()["stream_options"]["include_usage"], true);

    let r = g.s.post(
        "/v1/embeddings",
        &g.k,
        json!({"model": "gem-embed", "input": "hi"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"][0]["embedding"], json!([0.1, 0.2]));
    spend_is(&g.s, &r, 10.0 * 1.5e-7);
    let rec = g.studio.requests().pop().expect("a request");
    assert_eq!(rec.path, "/v1beta/openai/embeddings");
    assert_eq!(rec.json()["model"], "gemini-embedding-001");
}

#[test]
fn vertex_gemini_with_a_minted_token() {
    let g = setup(3600);
    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "vgem", "messages": msgs()}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello from Gemini"
    );
    spend_is(&g.s, &r, GEMINI_SPEND);
    assert_eq!(g.tokens.count(), 1);
    let rec = g.vertex.requests().pop().expect("a request");
    assert_eq!(
        rec.path,
        "/v1/projects/proj-test/locations/europe-west4/endpoints/openapi/chat/completions"
    );
    assert_eq!(
        rec.header("authorization"),
        Some(&*format!("Bearer {}", g.tokens.token(0)))
    );
    assert_eq!(rec.json()["model"], "google/gemini-2.5-flash");

    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "vgem", "messages": msgs(), "stream": true,
            "stream_options": {"include_usage": true}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (ev, done) = events(&r.text());
    assert!(done);
    assert!(ev.iter().any(|c| c["usage"]["completion_tokens"] == 20));
    spend_is(&g.s, &r, GEMINI_SPEND);
    // Tools pass through the OpenAI-compatible endpoint as they are.
    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "vgem", "messages": msgs(), "tools": [{"type": "function",
            "function": {"name": "weather", "parameters": {"type": "object"}}}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let call = &r.json()["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "weather");
    // One token served all three calls, and the Claude deployment with the same credentials.
    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "vclaude", "messages": msgs()}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(g.tokens.count(), 1, "credentials share one cached token");
}

#[test]
fn vertex_claude_chat_stream_and_tools() {
    let g = setup(3600);
    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "vclaude", "messages": [{"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from Claude on Vertex"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    spend_is(&g.s, &r, CLAUDE_SPEND);
    let rec = g.vertex.requests().pop().expect("a request");
    assert_eq!(
        rec.path,
        "/v1/projects/proj-test/locations/europe-west4/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
    );
    assert_eq!(
        rec.header("authorization"),
        Some(&*format!("Bearer {}", g.tokens.token(0)))
    );
    let body = rec.json();
    assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
    assert!(body.get("model").is_none());
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "be brief"}])
    );
    assert!(body["max_tokens"].as_u64().is_some());

    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "vclaude", "messages": msgs(), "stream": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (ev, done) = events(&r.text());
    assert!(done);
    let said: String = ev
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(said, "Hello from Claude");
    spend_is(&g.s, &r, CLAUDE_SPEND);
    assert!(g
        .vertex
        .requests()
        .pop()
        .expect("req")
        .path
        .ends_with(":streamRawPredict"));

    let tools = json!([{"type": "function", "function": {"name": "weather",
        "parameters": {"type": "object"}}}]);
    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "vclaude", "messages": msgs(), "tools": tools}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let m = &r.json()["choices"][0];
    assert_eq!(m["finish_reason"], "tool_calls");
    assert_eq!(m["message"]["tool_calls"][0]["id"], "toolu_v1");
    assert_eq!(
        m["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"city\":\"Oslo\"}"
    );
    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "vclaude", "messages": msgs(), "tools": tools, "stream": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (ev, done) = events(&r.text());
    assert!(done);
    let calls: Vec<&Value> = ev
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(calls[0]["function"]["name"], "weather");
    let args: String = calls
        .iter()
        .filter_map(|c| c["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"city\":\"Oslo\"}");
    let sent = g.vertex.requests().pop().expect("req").json();
    assert_eq!(
        sent["tools"],
        json!([{"name": "weather", "input_schema": {"type": "object"}}])
    );
}

#[test]
fn vertex_claude_through_the_messages_door() {
    let g = setup(3600);
    let body = json!({"model": "vclaude", "max_tokens": 50, "messages": msgs()});
    let r = g.s.post("/v1/messages", &g.k, body.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["content"][0]["text"],
        "Hello from Claude on Vertex"
    );
    spend_is(&g.s, &r, CLAUDE_SPEND);
    let rec = g.vertex.requests().pop().expect("a request");
    assert!(
        rec.path
            .ends_with("/models/claude-sonnet-4-5@20250929:rawPredict"),
        "{}",
        rec.path
    );
    let sent = rec.json();
    assert!(sent.get("model").is_none());
    assert_eq!(sent["anthropic_version"], "vertex-2023-10-16");
    assert_eq!(sent["max_tokens"], 50);
    let mut streamed = body;
    streamed["stream"] = json!(true);
    let r = g.s.post("/v1/messages", &g.k, streamed);
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.contains("event: message_stop"), "{text}");
    assert!(text.contains("Hello from Claude"), "{text}");
    spend_is(&g.s, &r, CLAUDE_SPEND);
    assert!(g
        .vertex
        .requests()
        .pop()
        .expect("req")
        .path
        .ends_with(":streamRawPredict"));
}

#[test]
fn vertex_tokens_are_refreshed_before_they_expire() {
    // Tokens live 2 s: used for the first second, refreshed after.
    let g = setup(2);
    let call = || {
        let r = g.s.post(
            "/v1/chat/completions",
            &g.k,
            json!({"model": "vgem", "messages": msgs()}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        g.vertex
            .requests()
            .pop()
            .expect("req")
            .header("authorization")
            .map(str::to_string)
    };
    let first = call();
    assert_eq!(call(), first, "reused while fresh");
    assert_eq!(g.tokens.count(), 1);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let third = call();
    assert_eq!(g.tokens.count(), 2, "refreshed");
    assert_eq!(third, Some(format!("Bearer {}", g.tokens.token(1))));
    assert_ne!(third, first);
    // Concurrent calls after expiry: one refresh for all.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let n = g.tokens.count();
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..6)
            .map(|_| {
                sc.spawn(|| {
                    g.s.post(
                        "/v1/chat/completions",
                        &g.k,
                        json!({"model": "vgem", "messages": msgs()}),
                    )
                    .status
                })
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().expect("join"), 200);
        }
    });
    assert_eq!(g.tokens.count(), n + 1, "one refresh for concurrent calls");
    assert!(g.tokens.issued.lock().expect("lock").refusals.is_empty());
}

#[test]
fn a_token_vertex_refuses_is_minted_again() {
    let g = setup(3600);
    let call = || {
        g.s.post(
            "/v1/chat/completions",
            &g.k,
            json!({"model": "vgem", "messages": msgs()}),
        )
    };
    assert_eq!(call().status, 200);
    g.tokens.revoke_all();
    // Vertex's 401 reaches the caller, and the refused token is dropped…
    let r = call();
    assert_error_says(&r, 401, "invalid authentication credentials");
    assert_eq!(g.tokens.count(), 1);
    // …so the next call mints a new one instead of reusing it for the rest of the hour.
    assert_eq!(call().status, 200);
    assert_eq!(g.tokens.count(), 2);
}

#[test]
fn each_credential_reaches_only_its_own_host() {
    let g = setup(3600);
    for m in ["gem", "vgem", "vclaude", "gpt"] {
        let r = g.s.post(
            "/v1/chat/completions",
            &g.k,
            json!({"model": m, "messages": msgs()}),
        );
        assert_eq!(r.status, 200, "{m}: {}", r.text());
    }
    let token = g.tokens.token(0);
    let key_body = g
        .private_pem
        .lines()
        .nth(1)
        .expect("a key line")
        .to_string();
    let never = |fake: &str, text: &str, secrets: &[&str]| {
        for s in secrets {
            assert!(!text.contains(s), "{s} reached {fake}");
        }
    };
    for rec in g.studio.requests() {
        never(
            "AI Studio",
            &rec.all_text(),
            &[&token, UPSTREAM_KEY, &key_body, "eyJ"],
        );
    }
    for rec in g.vertex.requests() {
        never(
            "Vertex",
            &rec.all_text(),
            &[GEMINI_KEY, UPSTREAM_KEY, &key_body, "eyJ"],
        );
    }
    for rec in g.tokens.fake.requests() {
        // The signed assertion (a JWT) goes here, and nothing else.
        never(
            "the token endpoint",
            &rec.all_text(),
            &[GEMINI_KEY, UPSTREAM_KEY, &token, &key_body],
        );
        assert!(rec.all_text().contains("assertion=eyJ"));
    }
    for rec in g.openai.requests() {
        let text = format!("{:?}", rec);
        never("OpenAI", &text, &[GEMINI_KEY, &token, &key_body, "eyJ"]);
    }
    assert!(!g.s.log().contains(&token), "the token is never logged");
}

#[test]
fn a_refused_token_is_a_clean_502() {
    let g = setup(3600);
    let r = g.s.post(
        "/v1/chat/completions",
        &g.k,
        json!({"model": "vrefused", "messages": msgs()}),
    );
    let v = assert_error_says(&r, 502, "no Google access token");
    let m = v.to_string();
    assert!(m.contains("invalid_grant"), "{m}");
    assert!(
        !m.contains("eyJ") && !m.contains("PRIVATE") && !m.contains("127.0.0.1"),
        "{m}"
    );
    let refusals = g.tokens.issued.lock().expect("lock").refusals.clone();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert!(refusals[0].contains("InvalidSignature"), "{refusals:?}");
    assert!(
        g.vertex.requests().is_empty(),
        "nothing sent without a token"
    );
    assert_eq!(spend_log_of(&g.s, &r)["status"], "failure");
}

#[test]
fn bad_vertex_credentials_stop_the_start() {
    let (private_pem, _) = gf::rsa_key();
    let dep = |params: &str| {
        format!("model_list:\n  - model_name: v\n    litellm_params: {{ model: vertex_ai/gemini-2.5-flash{params} }}\n")
    };
    let good = gf::credentials(
        &private_pem,
        "https://oauth2.googleapis.com/token",
        CLIENT_EMAIL,
    );
    let mut no_key: Value = serde_json::from_str(&good).expect("json");
    no_key.as_object_mut().expect("obj").remove("private_key");
    let no_key = no_key.to_string();
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (dep(""), vec![], "vertex_credentials: required"),
        (
            dep(", vertex_credentials: os.environ/C"),
            vec![("C", "{not json")],
            "not valid credentials JSON",
        ),
        (
            dep(", vertex_credentials: os.environ/C"),
            vec![("C", &no_key)],
            "no private_key",
        ),
        (
            dep(", vertex_credentials: /nonexistent/sa.json"),
            vec![],
            "cannot read the credentials file",
        ),
        (
            dep(""),
            vec![("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json")],
            "GOOGLE_APPLICATION_CREDENTIALS",
        ),
        (
            dep(", vertex_credentials: os.environ/C, vertex_location: \"evil.com#\""),
            vec![("C", &good)],
            "vertex_location",
        ),
    ];
    for (yaml, env, needle) in cases {
        let (code, _, err) = crate::config_file::check(&yaml, &env);
        assert_eq!(code, Some(2), "{needle}: {err}");
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(!err.contains("MII"), "key material in the message: {err}");
    }
    // Good credentials (from GOOGLE_APPLICATION_CREDENTIALS, project from the file) start.
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("sa.json");
    std::fs::write(&p, &good).expect("write");
    let (code, _, err) = crate::config_file::check(
        &dep(""),
        &[("GOOGLE_APPLICATION_CREDENTIALS", p.to_str().expect("path"))],
    );
    assert_eq!(code, Some(0), "{err}");
    // The credentials written as a mapping in the file (JSON is YAML) start too.
    let (code, _, err) =
        crate::config_file::check(&dep(&format!(", vertex_credentials: {good}")), &[]);
    assert_eq!(code, Some(0), "{err}");
}
