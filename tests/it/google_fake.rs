//! Fakes of Google's endpoints for `google.rs`, each on its own loopback port: a token endpoint
//! that VERIFIES the service account's JWT assertion (RS256 against the test key's public key,
//! iss, scope, aud, iat, exp, the grant type) and issues short-lived tokens; a Google AI Studio
//! OpenAI-compatible server (`/v1beta/openai/…`, Bearer = the API key); and a Vertex AI server
//! (`/v1/projects/{p}/locations/{l}/endpoints/openapi/chat/completions` with a `google/` model,
//! and `…/publishers/anthropic/models/{m}:rawPredict|:streamRawPredict` with Anthropic's body
//! without `model` and with `anthropic_version`), whose Bearer must be a token the token
//! endpoint issued and that has not expired. A request that breaks the documented wire format
//! is answered 400/401 with what is wrong. The test RSA key is made at test time by `openssl`.

use serde_json::{json, Value};
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
pub const CLIENT_EMAIL: &str = "litegate-test@proj-test.iam.gserviceaccount.com";
pub const GEMINI_KEY: &str = "AIza-gemini-test-key-123";

/// An RSA key pair made now: (private PKCS#8 PEM, public SPKI PEM).
pub fn rsa_key() -> (String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("k.pem");
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .expect("openssl");
    assert!(ok.status.success());
    let public = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .expect("openssl");
    let private = std::fs::read_to_string(&key).expect("key");
    (private, String::from_utf8(public.stdout).expect("pem"))
}

/// A service account's credentials JSON for the test key and token endpoint.
pub fn credentials(private_pem: &str, token_uri: &str, email: &str) -> String {
    json!({"type": "service_account", "project_id": "proj-test",
        "private_key_id": "test-kid", "private_key": private_pem, "client_email": email,
        "client_id": "1", "token_uri": token_uri})
    .to_string()
}

/// One request a fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// Everything it carried, for "this secret never came here" checks.
    pub fn all_text(&self) -> String {
        format!(
            "{} {:?} {}",
            self.path,
            self.headers,
            String::from_utf8_lossy(&self.body)
        )
    }
}

type Handler = dyn Fn(&Seen) -> (u16, &'static str, String) + Send + Sync;

/// A loopback HTTP server answering each request with `handler`, recording them all.
pub struct Fake {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn start(handler: Arc<Handler>) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let (s, h) = (s2.clone(), handler.clone());
                std::thread::spawn(move || serve(c, &s, &*h));
            }
        });
        Fake { port, seen }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

fn serve(c: TcpStream, seen: &Mutex<Vec<Seen>>, h: &Handler) {
    let mut r = BufReader::new(c.try_clone().expect("clone"));
    let mut w = c;
    while let Some((_, path, headers, body)) = crate::upstream::read_request(&mut r) {
        let rec = Seen {
            path,
            headers,
            body,
        };
        seen.lock().expect("lock").push(rec.clone());
        let (status, ctype, text) = h(&rec);
        let _ = write!(
            w,
            "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        let _ = w.flush();
    }
}

fn err(status: u16, msg: &str) -> (u16, &'static str, String) {
    (
        status,
        "application/json",
        json!({"error": {"code": status, "message": msg, "status": "INVALID_ARGUMENT"}})
            .to_string(),
    )
}

/// The tokens the token endpoint issued, with when each expires.
#[derive(Default)]
pub struct Issued {
    pub tokens: Vec<(String, Instant)>,
    /// Why an assertion was refused, each time one was.
    pub refusals: Vec<String>,
}

pub struct TokenEndpoint {
    pub fake: Fake,
    pub issued: Arc<Mutex<Issued>>,
}

impl TokenEndpoint {
    /// Issues tokens living `life_secs`, for assertions signed by `public_pem`'s key and
    /// issued by `CLIENT_EMAIL` (any other account gets `invalid_grant`).
    pub fn start(public_pem: &str, life_secs: u64) -> TokenEndpoint {
        let issued = Arc::new(Mutex::new(Issued::default()));
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()).expect("pub");
        let port = Arc::new(Mutex::new(0u16));
        let (i2, p2) = (issued.clone(), port.clone());
        let fake = Fake::start(Arc::new(move |s: &Seen| {
            let aud = format!("http://127.0.0.1:{}/token", p2.lock().expect("lock"));
            match verify(s, &key, &aud) {
                Ok(()) => {
                    let mut i = i2.lock().expect("lock");
                    let tok = format!("ya29.test-token-{}", i.tokens.len() + 1);
                    let until = Instant::now() + Duration::from_secs(life_secs);
                    i.tokens.push((tok.clone(), until));
                    let body = json!({"access_token": tok, "expires_in": life_secs,
                        "token_type": "Bearer"});
                    (200, "application/json", body.to_string())
                }
                Err(why) => {
                    i2.lock().expect("lock").refusals.push(why.clone());
                    let body = json!({"error": "invalid_grant", "error_description": why});
                    (400, "application/json", body.to_string())
                }
            }
        }));
        *port.lock().expect("lock") = fake.port;
        TokenEndpoint { fake, issued }
    }

    pub fn uri(&self) -> String {
        format!("{}/token", self.fake.base())
    }

    pub fn count(&self) -> usize {
        self.issued.lock().expect("lock").tokens.len()
    }

    /// Revokes every token issued so far (Vertex refuses them from now on).
    pub fn revoke_all(&self) {
        let now = Instant::now();
        for t in &mut self.issued.lock().expect("lock").tokens {
            t.1 = now;
        }
    }

    pub fn token(&self, i: usize) -> String {
        self.issued.lock().expect("lock").tokens[i].0.clone()
    }
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    scope: String,
    aud: String,
    iat: u64,
    exp: u64,
}

/// RFC 7523 as Google documents it for service accounts: form body with the JWT-bearer grant
/// type and an RS256 assertion whose iss/scope/aud/iat/exp are right.
fn verify(s: &Seen, key: &jsonwebtoken::DecodingKey, aud: &str) -> Result<(), String> {
    if s.path != "/token" {
        return Err(format!("token request to {}", s.path));
    }
    if s.header("content-type") != Some("application/x-www-form-urlencoded") {
        return Err("not a form body".into());
    }
    if s.header("authorization").is_some() {
        return Err("an Authorization header was sent to the token endpoint".into());
    }
    let form = String::from_utf8_lossy(&s.body).into_owned();
    let field = |k: &str| {
        form.split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .map(|v| v.replace("%3A", ":").replace("%3a", ":"))
    };
    if field("grant_type").as_deref() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return Err("wrong grant_type".into());
    }
    let jwt = field("assertion").ok_or("no assertion")?;
    let header = jsonwebtoken::decode_header(&jwt).map_err(|e| format!("header: {e}"))?;
    if header.alg != jsonwebtoken::Algorithm::RS256 || header.kid.as_deref() != Some("test-kid") {
        return Err(format!("header {header:?}"));
    }
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    v.set_audience(&[aud]);
    v.set_issuer(&[CLIENT_EMAIL]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    let c = jsonwebtoken::decode::<Claims>(&jwt, key, &v)
        .map_err(|e| format!("assertion refused: {e}"))?
        .claims;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    if c.scope != SCOPE || c.aud != aud || c.iss != CLIENT_EMAIL {
        return Err("wrong scope".into());
    }
    if c.iat > now + 60 || c.iat + 300 < now || c.exp <= c.iat || c.exp - c.iat > 3600 {
        return Err(format!("bad iat/exp {} {}", c.iat, c.exp));
    }
    Ok(())
}

fn chat_answer(model: &str, tool: bool) -> Value {
    let message = if tool {
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_g1",
            "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]})
    } else {
        json!({"role": "assistant", "content": "Hello from Gemini"})
    };
    json!({"id": "chatcmpl-g", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": message,
            "finish_reason": if tool { "tool_calls" } else { "stop" }}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}})
}

/// Gemini's OpenAI-compatible stream: the usage rides on the last chunk, with its choice.
fn chat_stream(model: &str) -> String {
    let chunk = |delta: Value, finish: Value, usage: Value| {
        json!({"id": "chatcmpl-g", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": usage})
    };
    let mut t = String::new();
    for c in [
        chunk(
            json!({"role": "assistant", "content": "Hello"}),
            Value::Null,
            Value::Null,
        ),
        chunk(
            json!({"content": " from Gemini"}),
            json!("stop"),
            json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}),
        ),
    ] {
        t.push_str(&format!("data: {c}\n\n"));
    }
    t.push_str("data: [DONE]\n\n");
    t
}

/// Google AI Studio's OpenAI-compatible endpoint: the API key as Bearer.
pub fn ai_studio() -> Fake {
    Fake::start(Arc::new(|s: &Seen| {
        if s.header("authorization") != Some(&format!("Bearer {GEMINI_KEY}")) {
            return err(401, "API key not valid");
        }
        let b = s.json();
        let model = b["model"].as_str().unwrap_or("");
        if model.is_empty() || model.contains('/') {
            return err(400, "model must be a bare Gemini model name");
        }
        match s.path.as_str() {
            "/v1beta/openai/chat/completions" if b["stream"] == true => {
                (200, "text/event-stream", chat_stream(model))
            }
            "/v1beta/openai/chat/completions" => (
                200,
                "application/json",
                chat_answer(model, b.get("tools").is_some()).to_string(),
            ),
            "/v1beta/openai/embeddings" => (
                200,
                "application/json",
                json!({"object": "list", "model": model, "data": [{"object": "embedding",
                    "index": 0, "embedding": [0.1, 0.2]}],
                    "usage": {"prompt_tokens": 10, "total_tokens": 10}})
                .to_string(),
            ),
            p => err(404, &format!("no such path {p}")),
        }
    }))
}

/// Vertex AI: project/location in the path, a minted token as Bearer.
pub fn vertex(tokens: &TokenEndpoint, project: &str, location: &str) -> Fake {
    let issued = tokens.issued.clone();
    let prefix = format!("/v1/projects/{project}/locations/{location}/");
    Fake::start(Arc::new(move |s: &Seen| {
        let ok_token = s
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|t| {
                let now = Instant::now();
                issued
                    .lock()
                    .expect("lock")
                    .tokens
                    .iter()
                    .any(|(k, until)| k == t && now < *until)
            });
        if !ok_token {
            return err(401, "Request had invalid authentication credentials.");
        }
        let Some(rest) = s.path.strip_prefix(&prefix) else {
            return err(404, &format!("wrong project/location in {}", s.path));
        };
        let b = s.json();
        if rest == "endpoints/openapi/chat/completions" {
            let model = b["model"].as_str().unwrap_or("");
            let Some(m) = model.strip_prefix("google/") else {
                return err(400, "model must be google/{model}");
            };
            return if b["stream"] == true {
                (200, "text/event-stream", chat_stream(m))
            } else {
                (
                    200,
                    "application/json",
                    chat_answer(model, b.get("tools").is_some()).to_string(),
                )
            };
        }
        let Some(rest) = rest.strip_prefix("publishers/anthropic/models/") else {
            return err(404, &format!("no such path {}", s.path));
        };
        let (model, method) = rest.split_once(':').unwrap_or((rest, ""));
        if b.get("model").is_some() || b["anthropic_version"] != "vertex-2023-10-16" {
            return err(400, "body must have anthropic_version and no model");
        }
        if s.header("anthropic-version").is_some() || s.header("x-api-key").is_some() {
            return err(400, "native Anthropic headers sent to Vertex");
        }
        let tool = b.get("tools").is_some();
        match (method, b["stream"] == true) {
            ("rawPredict", false) => (200, "application/json", claude_answer(model, tool)),
            ("streamRawPredict", true) => (200, "text/event-stream", claude_stream(model, tool)),
            _ => err(400, &format!("method {method} does not match stream")),
        }
    }))
}

fn claude_answer(model: &str, tool: bool) -> String {
    let content = if tool {
        json!([{"type": "tool_use", "id": "toolu_v1", "name": "weather",
            "input": {"city": "Oslo"}}])
    } else {
        json!([{"type": "text", "text": "Hello from Claude on Vertex"}])
    };
    json!({"id": "msg_v", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": if tool { "tool_use" } else { "end_turn" },
        "usage": {"input_tokens": 10, "output_tokens": 20}})
    .to_string()
}

fn claude_stream(model: &str, tool: bool) -> String {
    let block = if tool {
        vec![
            json!({"type": "content_block_start", "index": 0, "content_block":
                {"type": "tool_use", "id": "toolu_v1", "name": "weather", "input": {}}}),
            json!({"type": "content_block_delta", "index": 0, "delta":
                {"type": "input_json_delta", "partial_json": "{\"city\":"}}),
            json!({"type": "content_block_delta", "index": 0, "delta":
                {"type": "input_json_delta", "partial_json": "\"Oslo\"}"}}),
        ]
    } else {
        vec![
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": "Hello from Claude"}}),
        ]
    };
    let mut evs = vec![json!({"type": "message_start", "message": {"id": "msg_vs",
        "type": "message", "role": "assistant", "model": model, "content": [],
        "usage": {"input_tokens": 10, "output_tokens": 1}}})];
    evs.extend(block);
    evs.push(json!({"type": "content_block_stop", "index": 0}));
    evs.push(json!({"type": "message_delta", "delta": {"stop_reason":
        if tool { "tool_use" } else { "end_turn" }}, "usage": {"output_tokens": 20}}));
    evs.push(json!({"type": "message_stop"}));
    let mut t = String::new();
    for e in evs {
        t.push_str(&format!(
            "event: {}\ndata: {e}\n\n",
            e["type"].as_str().unwrap_or("")
        ));
    }
    t
}
