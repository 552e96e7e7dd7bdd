//! Issue 13's "Done when": ONE server whose config has one deployment of every provider
//! (openai, groq for the OpenAI-compatible family, azure, azure_ai, anthropic, gemini, Gemini
//! and Claude on vertex_ai, bedrock), each at its own fake upstream (`upstream.rs`,
//! `anthropic.rs`, `google_fake.rs`, `bedrock_fake.rs`), each callable through both doors,
//! `/v1/chat/completions` and `/v1/messages`, as an answer and as a stream: the answer's text,
//! one spend-log row per call with the fake's tokens, spend = tokens × the embedded price
//! table's prices (cache tokens at its cache prices; as `/model/info` shows them), and each
//! fake seeing only its own deployment's
//! credentials. `check-config` accepts the same config. One table, a case per provider.

use crate::common::*;
use crate::google_fake::{self as gf, TokenEndpoint, CLIENT_EMAIL, GEMINI_KEY};
use crate::{anthropic, bedrock_fake, upstream};
use serde_json::{json, Value};

/// One request as a fake saw it, whatever the fake.
struct Got {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Everything it carried but the header `skip`.
    fn text_without(&self, skip: &str) -> String {
        let mut t = format!("{}\n", self.path);
        for (k, v) in self
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(skip))
        {
            t.push_str(&format!("{k}: {v}\n"));
        }
        t.push_str(&self.body);
        t
    }
}

fn got(path: &str, headers: &[(String, String)], body: String) -> Got {
    Got {
        path: path.to_string(),
        headers: headers.to_vec(),
        body,
    }
}

/// A fake's requests so far.
type Seen<'a> = Box<dyn Fn() -> Vec<Got> + 'a>;

fn openai_seen(f: &upstream::Fake) -> Seen<'_> {
    Box::new(move || {
        f.requests()
            .iter()
            .map(|r| got(&r.path, &r.headers, String::from_utf8_lossy(&r.raw).into()))
            .collect()
    })
}

fn google_seen(f: &gf::Fake) -> Seen<'_> {
    Box::new(move || {
        f.requests()
            .iter()
            .map(|r| got(&r.path, &r.headers, String::from_utf8_lossy(&r.body).into()))
            .collect()
    })
}

struct Case<'a> {
    /// Its `model_name`.
    name: &'static str,
    /// Its `litellm_params.model`: priced by the embedded table.
    model: &'static str,
    /// The rest of its `litellm_params`: where it goes and its credentials.
    params: String,
    /// The fake's text: (an answer, a stream).
    text: (&'static str, &'static str),
    /// The fake's usage: (prompt, completion, cache-read, cache-write) tokens; the prompt
    /// includes the cache tokens.
    tokens: (u64, u64, u64, u64),
    /// The upstream path: (an answer, a stream), either door.
    paths: (String, String),
    /// The header its credential goes in, and how that header's value starts.
    auth: (&'static str, String),
    /// What identifies its credential: no other fake may see it.
    secret: String,
    seen: Seen<'a>,
}

const OPENAI_KEY: &str = "sk-openai-every-1111";
const GROQ_KEY: &str = "gsk-groq-every-2222";
const AZURE_KEY: &str = "azure-every-key-3333";
const AZURE_AI_KEY: &str = "azure-ai-every-key-4444";
const ANTHROPIC_KEY: &str = "sk-ant-every-5555";
const AWS_KEY_ID: &str = "AKIAEVERYPROVIDER001";
const AWS_SECRET: &str = "every/provider+secret/0001";
const VERTEX: &str = "/v1/projects/proj-test/locations/europe-west4";
const CLAUDE_ON_VERTEX: &str = "publishers/anthropic/models/claude-sonnet-4-5@20250929";

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-15 + 1e-9 * b.abs()
}

/// The `data:` payloads of an OpenAI stream (`[DONE]` excluded).
fn chunks(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

/// The (event name, data) pairs of an Anthropic stream.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let name = f.lines().find_map(|l| l.strip_prefix("event: "));
            let data = f.lines().find_map(|l| l.strip_prefix("data: "));
            let data: Value = serde_json::from_str(data.unwrap_or("null")).expect("json data");
            (name.unwrap_or("").to_string(), data)
        })
        .collect()
}

#[test]
fn every_provider_through_both_doors_in_one_config() {
    let openai = upstream::Fake::start();
    let groq = upstream::Fake::start();
    let azure = upstream::Fake::start();
    let azure_ai = upstream::Fake::start();
    let (anthropic_port, anthropic_log) = anthropic::fake();
    let studio = gf::ai_studio();
    let (private_pem, public_pem) = gf::rsa_key();
    let tokens = TokenEndpoint::start(&public_pem, 3600);
    let vertex_gemini = gf::vertex(&tokens, "proj-test", "europe-west4");
    let vertex_claude = gf::vertex(&tokens, "proj-test", "europe-west4");
    let (bedrock_port, bedrock_log) = bedrock_fake::start(AWS_SECRET);
    let dir = tempfile::tempdir().expect("tempdir");
    let sa = dir.path().join("sa.json");
    let creds = gf::credentials(&private_pem, &tokens.uri(), CLIENT_EMAIL);
    std::fs::write(&sa, &creds).expect("write credentials");
    let vertex_params = |f: &gf::Fake| {
        format!(
            "api_base: \"{}\", vertex_credentials: \"{}\", vertex_location: europe-west4",
            f.base(),
            sa.display()
        )
    };
    let chat_path = "/v1/chat/completions".to_string();

    let cases = [
        Case {
            name: "openai",
            model: "openai/gpt-4o-mini",
            params: format!("api_base: \"{}\", api_key: {OPENAI_KEY}", openai.api_base()),
            text: ("Hello from the fake upstream", "Hello from the fake"),
            tokens: (10, 20, 0, 0),
            paths: (chat_path.clone(), chat_path.clone()),
            auth: ("authorization", format!("Bearer {OPENAI_KEY}")),
            secret: OPENAI_KEY.into(),
            seen: openai_seen(&openai),
        },
        Case {
            name: "groq",
            model: "groq/openai/gpt-oss-20b",
            params: format!("api_base: \"{}\", api_key: {GROQ_KEY}", groq.api_base()),
            text: ("Hello from the fake upstream", "Hello from the fake"),
            tokens: (10, 20, 0, 0),
            paths: (chat_path.clone(), chat_path.clone()),
            auth: ("authorization", format!("Bearer {GROQ_KEY}")),
            secret: GROQ_KEY.into(),
            seen: openai_seen(&groq),
        },
        Case {
            name: "azure",
            model: "azure/gpt-4o-mini",
            params: format!(
                "api_base: \"http://127.0.0.1:{}\", api_key: {AZURE_KEY}, api_version: 2024-06-01",
                azure.port
            ),
            text: ("Hello from the fake upstream", "Hello from the fake"),
            tokens: (10, 20, 0, 0),
            paths: (
                "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-06-01".into(),
                "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-06-01".into(),
            ),
            auth: ("api-key", AZURE_KEY.into()),
            secret: AZURE_KEY.into(),
            seen: openai_seen(&azure),
        },
        Case {
            name: "azure_ai",
            model: "azure_ai/mistral-nemo",
            params: format!(
                "api_base: \"http://127.0.0.1:{}/models\", api_key: {AZURE_AI_KEY}, \
                 api_version: 2024-05-01-preview",
                azure_ai.port
            ),
            text: ("Hello from the fake upstream", "Hello from the fake"),
            tokens: (10, 20, 0, 0),
            paths: (
                "/models/chat/completions?api-version=2024-05-01-preview".into(),
                "/models/chat/completions?api-version=2024-05-01-preview".into(),
            ),
            auth: ("authorization", format!("Bearer {AZURE_AI_KEY}")),
            secret: AZURE_AI_KEY.into(),
            seen: openai_seen(&azure_ai),
        },
        Case {
            name: "anthropic",
            model: "anthropic/claude-sonnet-4-5",
            params: format!(
                "api_base: \"http://127.0.0.1:{anthropic_port}\", api_key: {ANTHROPIC_KEY}"
            ),
            text: ("Hello world", "Hello world"),
            // 10 input + 2 cache-read.
            tokens: (12, 20, 2, 0),
            paths: ("/v1/messages".into(), "/v1/messages".into()),
            auth: ("x-api-key", ANTHROPIC_KEY.into()),
            secret: ANTHROPIC_KEY.into(),
            seen: Box::new(|| {
                let log = anthropic_log.lock().expect("lock");
                log.iter()
                    .map(|r| got(&r.path, &r.headers, r.body.to_string()))
                    .collect()
            }),
        },
        Case {
            name: "gemini",
            model: "gemini/gemini-2.5-flash",
            params: format!(
                "api_base: \"{}/v1beta/openai\", api_key: {GEMINI_KEY}",
                studio.base()
            ),
            text: ("Hello from Gemini", "Hello from Gemini"),
            tokens: (10, 20, 0, 0),
            paths: (
                "/v1beta/openai/chat/completions".into(),
                "/v1beta/openai/chat/completions".into(),
            ),
            auth: ("authorization", format!("Bearer {GEMINI_KEY}")),
            secret: GEMINI_KEY.into(),
            seen: google_seen(&studio),
        },
        Case {
            name: "vertex-gemini",
            model: "vertex_ai/gemini-2.5-flash",
            params: vertex_params(&vertex_gemini),
            text: ("Hello from Gemini", "Hello from Gemini"),
            tokens: (10, 20, 0, 0),
            paths: (
                format!("{VERTEX}/endpoints/openapi/chat/completions"),
                format!("{VERTEX}/endpoints/openapi/chat/completions"),
            ),
            // Tokens the fake token endpoint minted (the Vertex fake accepts no other).
            auth: ("authorization", "Bearer ya29.test-token-".into()),
            secret: "ya29.test-token-".into(),
            seen: google_seen(&vertex_gemini),
        },
        Case {
            name: "vertex-claude",
            model: "vertex_ai/claude-sonnet-4-5@20250929",
            params: vertex_params(&vertex_claude),
            text: ("Hello from Claude on Vertex", "Hello from Claude"),
            tokens: (10, 20, 0, 0),
            paths: (
                format!("{VERTEX}/{CLAUDE_ON_VERTEX}:rawPredict"),
                format!("{VERTEX}/{CLAUDE_ON_VERTEX}:streamRawPredict"),
            ),
            auth: ("authorization", "Bearer ya29.test-token-".into()),
            secret: "ya29.test-token-".into(),
            seen: google_seen(&vertex_claude),
        },
        Case {
            name: "bedrock",
            model: "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
            params: format!(
                "api_base: \"http://127.0.0.1:{bedrock_port}\", aws_access_key_id: {AWS_KEY_ID}, \
                 aws_secret_access_key: \"{AWS_SECRET}\", aws_region_name: us-east-1"
            ),
            text: ("Hello world", "Hello world"),
            // 10 input + 4 cache-read + 2 cache-write.
            tokens: (16, 20, 4, 2),
            paths: (
                "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse".into(),
                "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream".into(),
            ),
            // The fake recomputes every signature and refuses a wrong one.
            auth: (
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/"),
            ),
            secret: AWS_KEY_ID.into(),
            seen: Box::new(|| {
                let log = bedrock_log.lock().expect("lock");
                log.iter()
                    .map(|r| got(&r.path, &r.headers, r.body.to_string()))
                    .collect()
            }),
        },
    ];

    let mut y = String::from("model_list:\n");
    for c in &cases {
        y.push_str(&format!(
            "  - model_name: {}\n    litellm_params: {{ model: \"{}\", {} }}\n",
            c.name, c.model, c.params
        ));
    }
    y.push_str("general_settings:\n  master_key: os.environ/TEST_MASTER_KEY\n");

    // The config is valid as it is.
    let (code, out, err) = crate::config_file::check(&y, &[("TEST_MASTER_KEY", MASTER)]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(
        out.contains(&format!("{} model deployment", cases.len())),
        "{out}"
    );

    let s = Server::start_with(&y, &[]);
    let key = key_for(&s, json!({}));
    let hi = json!([{"role": "user", "content": "hi"}]);
    for c in &cases {
        let n = c.name;
        // The prices it is billed at: the table's, and `/model/info` shows them.
        let table = litegate::prices::lookup(c.model).unwrap_or_else(|| panic!("{n}: unpriced"));
        let (pin, pout) = (
            table.input_cost_per_token.expect("input price"),
            table.output_cost_per_token.expect("output price"),
        );
        let info = s.get(&format!("/model/info?model={n}"), MASTER).json();
        assert_eq!(
            info["data"].as_array().map(Vec::len),
            Some(1),
            "{n}: {info}"
        );
        let mi = &info["data"][0]["model_info"];
        assert_eq!(mi["input_cost_per_token"].as_f64(), Some(pin), "{n}: {mi}");
        assert_eq!(
            mi["output_cost_per_token"].as_f64(),
            Some(pout),
            "{n}: {mi}"
        );
        // Cache tokens at the table's cache prices (the input price where it has none), as
        // LiteLLM charges them.
        let (prompt, completion, read, write) = c.tokens;
        let cache_price = |p: Option<f64>, field: &str| {
            if let Some(p) = p {
                assert_eq!(mi[field].as_f64(), Some(p), "{n}: {field} {mi}");
            }
            p.unwrap_or(pin)
        };
        let want_spend = (prompt - read - write) as f64 * pin
            + read as f64
                * cache_price(
                    table.cache_read_input_token_cost,
                    "cache_read_input_token_cost",
                )
            + write as f64
                * cache_price(
                    table.cache_creation_input_token_cost,
                    "cache_creation_input_token_cost",
                )
            + completion as f64 * pout;
        let billed = |r: &Resp, call_type: &str| {
            let row = spend_log_of(&s, r);
            assert_eq!(row["status"], "success", "{n}: {row}");
            assert_eq!(row["model"], n, "{n}: {row}");
            assert_eq!(row["call_type"], call_type, "{n}: {row}");
            assert_eq!(row["prompt_tokens"], c.tokens.0, "{n}: {row}");
            assert_eq!(row["completion_tokens"], c.tokens.1, "{n}: {row}");
            let spend = row["spend"].as_f64().expect("spend");
            assert!(
                want_spend > 0.0 && near(spend, want_spend),
                "{n}: {spend} != {want_spend}"
            );
        };

        // /v1/chat/completions, an answer.
        let r = s.post(
            "/v1/chat/completions",
            &key,
            json!({"model": n, "messages": hi}),
        );
        assert_eq!(r.status, 200, "{n}: {}", r.text());
        let v = r.json();
        assert_eq!(v["choices"][0]["message"]["content"], c.text.0, "{n}: {v}");
        assert_eq!(v["usage"]["prompt_tokens"], c.tokens.0, "{n}: {v}");
        assert_eq!(v["usage"]["completion_tokens"], c.tokens.1, "{n}: {v}");
        billed(&r, "acompletion");

        // /v1/chat/completions, a stream.
        let r = s.post(
            "/v1/chat/completions",
            &key,
            json!({"model": n, "messages": hi, "stream": true}),
        );
        assert_eq!(r.status, 200, "{n}: {}", r.text());
        let text = r.text();
        assert!(text.ends_with("data: [DONE]\n\n"), "{n}: {text}");
        let said: String = chunks(&text)
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(said, c.text.1, "{n}: {text}");
        billed(&r, "acompletion");

        // /v1/messages, an answer (the key in `x-api-key`, as Anthropic's SDK sends it).
        let headers = [
            ("x-api-key", key.as_str()),
            ("anthropic-version", "2023-06-01"),
        ];
        let body = json!({"model": n, "max_tokens": 100, "messages": hi});
        let r = s.post_anon("/v1/messages", &body, &headers);
        assert_eq!(r.status, 200, "{n}: {}", r.text());
        let v = r.json();
        assert_eq!(v["type"], "message", "{n}: {v}");
        assert_eq!(v["content"][0]["text"], c.text.0, "{n}: {v}");
        assert_eq!(v["usage"]["output_tokens"], c.tokens.1, "{n}: {v}");
        billed(&r, "anthropic_messages");

        // /v1/messages, a stream.
        let mut body = body;
        body["stream"] = json!(true);
        let r = s.post_anon("/v1/messages", &body, &headers);
        assert_eq!(r.status, 200, "{n}: {}", r.text());
        let evs = events(&r.text());
        assert_eq!(
            evs.last().map(|(e, _)| e.as_str()),
            Some("message_stop"),
            "{n}: {evs:?}"
        );
        assert!(evs.iter().all(|(e, d)| d["type"] == e.as_str()), "{n}");
        let said: String = evs
            .iter()
            .filter(|(_, d)| d["delta"]["type"] == "text_delta")
            .filter_map(|(_, d)| d["delta"]["text"].as_str())
            .collect();
        assert_eq!(said, c.text.1, "{n}: {evs:?}");
        billed(&r, "anthropic_messages");

        // Its fake saw these four calls, at its paths, with its credential.
        let seen = (c.seen)();
        let paths: Vec<&str> = seen.iter().map(|g| g.path.as_str()).collect();
        let (a, st) = (c.paths.0.as_str(), c.paths.1.as_str());
        assert_eq!(paths, [a, st, a, st], "{n}");
        for g in &seen {
            let (h, start) = &c.auth;
            assert!(
                g.header(h).is_some_and(|v| v.starts_with(start.as_str())),
                "{n}: {h} of {:?}",
                g.headers
            );
        }
    }
    assert_eq!(
        s.count("SELECT COUNT(*) FROM spend_logs"),
        4 * cases.len() as i64
    );

    // Each fake saw only its own deployment's credentials (and its own only in its header);
    // no fake saw the gateway's keys, the AWS secret or the service account's private key.
    let pem_middle: String = private_pem.lines().nth(5).expect("a pem line").to_string();
    let never = [MASTER, key.as_str(), AWS_SECRET, pem_middle.as_str()];
    for c in &cases {
        for g in (c.seen)() {
            let text = g.text_without(c.auth.0);
            assert!(!text.contains(&c.secret), "{}: {text}", c.name);
            for other in cases.iter().filter(|o| o.secret != c.secret) {
                assert!(!text.contains(&other.secret), "{}: {text}", c.name);
            }
            for secret in never {
                assert!(!text.contains(secret), "{}: {text}", c.name);
            }
        }
    }
    // The token endpoint saw one signed assertion, nothing else.
    let minted = tokens.fake.requests();
    assert_eq!((minted.len(), tokens.count()), (1, 1));
    for g in minted {
        let text = String::from_utf8_lossy(&g.body).into_owned() + &format!("{:?}", g.headers);
        assert!(text.contains("assertion="), "{text}");
        for secret in cases.iter().map(|c| c.secret.as_str()).chain(never) {
            assert!(!text.contains(secret), "token endpoint: {text}");
        }
    }
}
