//! Google's providers' pieces that need no network (issue 13): a `vertex_ai` deployment's
//! service-account credentials (`ServiceAccount`: read once at config load from
//! `vertex_credentials` — a path or the JSON itself — or `GOOGLE_APPLICATION_CREDENTIALS`;
//! the RS256-signed JWT assertion it trades for an OAuth access token; the cache of that
//! token, `token::TokenCache`), and the Vertex AI URLs (`vertex_route`: the host of a location,
//! Gemini models through the OpenAI-compatible `endpoints/openapi`, Claude models through
//! `publishers/anthropic/models/{model}:rawPredict`). Fetching the token is `upstream::google`.
//!
//! Names and defaults follow LiteLLM (`litellm/llms/vertex_ai/vertex_llm_base.py`,
//! `common_utils.py`: `get_vertex_base_url`, `validate_vertex_location`).

use super::token::TokenCache;
use super::{Route, Wire};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The OAuth scope asked for (LiteLLM's).
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// The token endpoint when the credentials name none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The JWT-bearer grant type (RFC 7523).
pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// LiteLLM's default `vertex_location`.
pub const DEFAULT_LOCATION: &str = "us-central1";
/// The `anthropic_version` a Claude-on-Vertex body carries (no `anthropic-version` header).
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";
/// A credentials file is read up to this size (real ones are ~2.4 KB).
const MAX_CREDENTIALS_BYTES: u64 = 64 * 1024;
/// An assertion's lifetime (Google's maximum).
const ASSERTION_SECS: u64 = 3600;

/// A service account's credentials: who signs, with which key, and where tokens come from.
pub struct ServiceAccount {
    pub client_email: String,
    pub project_id: Option<String>,
    pub token_uri: String,
    key_id: Option<String>,
    key: jsonwebtoken::EncodingKey,
    /// What tells two credentials apart (email, token URI, a digest of the key).
    identity: String,
    /// The access token minted from these credentials, shared by every deployment using them.
    pub tokens: TokenCache,
}

/// Neither the key nor a token is ever printed.
impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl PartialEq for ServiceAccount {
    fn eq(&self, other: &Self) -> bool {
        self.identity == other.identity
    }
}

/// The credentials file as Google writes it (only what is used).
#[derive(Deserialize)]
struct File {
    #[serde(rename = "type")]
    kind: Option<String>,
    project_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    client_email: Option<String>,
    token_uri: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

impl ServiceAccount {
    /// Reads credentials given as the JSON itself (starting with `{`) or as a file path.
    /// `Err` says what is wrong without any of the key.
    pub fn load(value: &str) -> Result<ServiceAccount, String> {
        let v = value.trim();
        if v.starts_with('{') {
            return Self::parse(v);
        }
        // What is echoed of a value that is not JSON: a path, never what might be a key.
        let shown = if v.len() <= 512 && !v.contains("PRIVATE") && !v.contains(['{', '\n']) {
            v
        } else {
            "(value not shown)"
        };
        let mut text = String::new();
        let read = std::fs::File::open(v).and_then(|f| {
            use std::io::Read;
            f.take(MAX_CREDENTIALS_BYTES + 1).read_to_string(&mut text)
        });
        match read {
            Err(e) => Err(format!("cannot read the credentials file '{shown}': {e}")),
            Ok(n) if n as u64 > MAX_CREDENTIALS_BYTES => Err(format!(
                "the credentials file '{shown}' is larger than {MAX_CREDENTIALS_BYTES} bytes"
            )),
            Ok(_) => Self::parse(&text).map_err(|e| format!("'{shown}': {e}")),
        }
    }

    /// Parses a service account's JSON and checks that its key signs.
    pub fn parse(json: &str) -> Result<ServiceAccount, String> {
        let f: File = serde_json::from_str(json)
            .map_err(|e| format!("not valid credentials JSON (line {})", e.line()))?;
        match f.kind.as_deref() {
            Some("service_account") | None => {}
            Some(other) => {
                return Err(format!(
                    "credentials of type '{other}' are not supported; use a service account key"
                ))
            }
        }
        let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let client_email =
            nonempty(f.client_email).ok_or("the credentials have no client_email")?;
        let pem = nonempty(f.private_key).ok_or("the credentials have no private_key")?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|_| "the credentials' private_key is not an RSA private key in PEM")?;
        let token_uri = nonempty(f.token_uri).unwrap_or_else(|| DEFAULT_TOKEN_URI.into());
        check_token_uri(&token_uri)?;
        let identity = {
            use sha2::Digest;
            let d = sha2::Sha256::digest(pem.as_bytes());
            format!("{client_email}\n{token_uri}\n{d:x}")
        };
        let sa = ServiceAccount {
            client_email,
            project_id: nonempty(f.project_id),
            token_uri,
            key_id: nonempty(f.private_key_id),
            key,
            identity,
            tokens: TokenCache::default(),
        };
        // ring parses the key when signing: a key it refuses stops the start, not a call.
        sa.assertion(0)
            .map_err(|_| "the credentials' private_key cannot sign (RS256)".to_string())?;
        Ok(sa)
    }

    /// Whether two credentials are the same account and key (their tokens are shared).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The signed JWT traded for an access token: iss = the account, scope cloud-platform,
    /// aud = the token URI, valid from `now` (Unix seconds) for an hour.
    pub fn assertion(&self, now: u64) -> Result<String, String> {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = self.key_id.clone();
        let claims = Claims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.token_uri,
            iat: now,
            exp: now + ASSERTION_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|_| "signing the credentials' assertion failed".to_string())
    }
}

/// The token URI gets the signed assertion: https, or http to this machine only (tests).
fn check_token_uri(uri: &str) -> Result<(), String> {
    let bad = || format!("token_uri '{uri}' must be an https URL");
    let u: ureq::http::Uri = uri.parse().map_err(|_| bad())?;
    let host = u.host().unwrap_or("");
    match u.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if matches!(host, "127.0.0.1" | "localhost" | "[::1]") => Ok(()),
        _ => Err(bad()),
    }
}

/// A location as LiteLLM accepts it: `global`, or lowercase letters, digits and `-`.
fn valid_location(l: &str) -> bool {
    l.starts_with(|c: char| c.is_ascii_lowercase())
        && l.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A project id or number: letters, digits, `-`, and `:`/`.` of domain-scoped projects.
fn valid_project(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 100
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '_'))
}

/// The Vertex AI host of a location: `global` → `aiplatform.googleapis.com`, a multi-region
/// (`us`, `eu`) → `aiplatform.{geo}.rep.googleapis.com`, a region → `{region}-aiplatform…`.
pub fn vertex_host(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".into()
    } else if !location.contains('-') {
        format!("https://aiplatform.{location}.rep.googleapis.com")
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

/// Whether a `vertex_ai/` model is Anthropic's (served by `:rawPredict`).
pub fn is_claude(name: &str) -> bool {
    name.starts_with("claude")
}

/// The route of a `vertex_ai/{name}` deployment: `api_base` (else the location's host), then
/// `/v1/projects/{project}/locations/{location}/`, then `endpoints/openapi/{endpoint}` for
/// Gemini (the body's model becomes `google/{name}` unless it names a publisher) or
/// `publishers/anthropic/models/{name}:{rawPredict|streamRawPredict}` for Claude. The auth
/// header is a token minted from `account` at call time. `Err` names the field at fault.
pub fn vertex_route(
    name: &str,
    api_base: Option<&str>,
    project: &str,
    location: &str,
    account: Arc<ServiceAccount>,
) -> Result<Route, (&'static str, String)> {
    if !valid_location(location) {
        return Err((
            "vertex_location",
            format!("'{location}' is not a Vertex AI location"),
        ));
    }
    if !valid_project(project) {
        return Err((
            "vertex_project",
            format!("'{project}' is not a Google Cloud project id"),
        ));
    }
    if name.is_empty() || name.contains(['*', '?', '#', ' ']) {
        return Err((
            "model",
            "a vertex_ai deployment names one model; wildcards are not supported".into(),
        ));
    }
    let (wire, model_prefix) = if is_claude(name) {
        (Wire::VertexAnthropic, "")
    } else {
        // A `publisher/model` name (`meta/llama-…`) is sent as it is.
        (
            Wire::OpenAi,
            if name.contains('/') { "" } else { "google/" },
        )
    };
    let tail = match wire {
        Wire::VertexAnthropic => format!("publishers/anthropic/models/{name}"),
        _ => "endpoints/openapi".to_string(),
    };
    let path = format!("projects/{project}/locations/{location}/{tail}");
    // `api_base` as LiteLLM takes it (`_check_custom_proxy`): a bare host replaces Google's,
    // a host with `/v1` (or `/v1beta1`) gets the path after it, anything longer is the
    // whole URL up to the method (`{api_base}:rawPredict`, `{api_base}/chat/completions`).
    let base = match api_base.map(str::trim).filter(|b| !b.is_empty()) {
        None => format!("{}/v1/{path}", vertex_host(location)),
        Some(b) => {
            let b = b.trim_end_matches('/');
            let uri_path = b
                .parse::<ureq::http::Uri>()
                .map(|u| u.path().trim_end_matches('/').to_string())
                .unwrap_or_default();
            match uri_path.as_str() {
                "" => format!("{b}/v1/{path}"),
                "/v1" | "/v1beta1" => format!("{b}/{path}"),
                _ => b.to_string(),
            }
        }
    };
    Ok(Route {
        base,
        query: String::new(),
        auth: None,
        wire,
        aws: None,
        google: Some(account),
        model_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2048-bit key made by `openssl genpkey` for these unit tests only.
    pub(crate) fn test_key() -> String {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .expect("openssl");
        String::from_utf8(out.stdout).expect("pem")
    }

    fn creds(key: &str, extra: serde_json::Value) -> String {
        let mut v = serde_json::json!({"type": "service_account", "project_id": "proj-1",
            "private_key_id": "kid1", "private_key": key,
            "client_email": "sa@proj-1.iam.gserviceaccount.com"});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v.to_string()
    }

    #[test]
    fn credentials_are_checked_and_never_printed() {
        let key = test_key();
        let sa = ServiceAccount::parse(&creds(&key, serde_json::json!({}))).expect("parse");
        assert_eq!(sa.token_uri, DEFAULT_TOKEN_URI);
        assert_eq!(sa.project_id.as_deref(), Some("proj-1"));
        let jwt = sa.assertion(1000).expect("jwt");
        assert_eq!(jwt.split('.').count(), 3);
        let h = jsonwebtoken::decode_header(&jwt).expect("header");
        assert_eq!(h.alg, jsonwebtoken::Algorithm::RS256);
        assert_eq!(h.kid.as_deref(), Some("kid1"));
        assert!(!format!("{sa:?}").contains("PRIVATE"));
        let bad = |extra: serde_json::Value, k: &str, needle: &str| {
            let e = ServiceAccount::parse(&creds(k, extra)).expect_err("refused");
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains("MII"), "{e}");
        };
        bad(serde_json::json!({}), "not a key", "not an RSA private key");
        bad(
            serde_json::json!({"private_key": ""}),
            &key,
            "no private_key",
        );
        bad(
            serde_json::json!({"client_email": null}),
            &key,
            "no client_email",
        );
        bad(
            serde_json::json!({"type": "authorized_user"}),
            &key,
            "not supported",
        );
        bad(
            serde_json::json!({"token_uri": "http://evil.example/token"}),
            &key,
            "https",
        );
        assert!(ServiceAccount::parse("{nope").is_err());
        assert!(ServiceAccount::load("/nonexistent/creds.json")
            .expect_err("missing")
            .contains("cannot read the credentials file '/nonexistent/creds.json'"));
        // Something that is not JSON but may hold the key is never echoed.
        let odd = format!("x{}", creds(&key, serde_json::json!({})));
        let e = ServiceAccount::load(&odd).expect_err("not a path");
        assert!(
            e.contains("(value not shown)") && !e.contains("PRIVATE"),
            "{e}"
        );
    }

    #[test]
    fn vertex_urls() {
        let key = test_key();
        let sa = Arc::new(ServiceAccount::parse(&creds(&key, serde_json::json!({}))).expect("p"));
        let r = vertex_route("gemini-2.5-flash", None, "p1", "us-central1", sa.clone()).expect("r");
        assert_eq!(
            r.url("chat/completions"),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1/endpoints/openapi/chat/completions"
        );
        assert_eq!((r.wire, r.model_prefix), (Wire::OpenAi, "google/"));
        let r = vertex_route("gemini-2.5-pro", None, "p1", "global", sa.clone()).expect("r");
        assert!(r
            .url("chat/completions")
            .starts_with("https://aiplatform.googleapis.com/v1/projects/p1/locations/global/"));
        let r = vertex_route(
            "claude-sonnet-4@20250514",
            None,
            "p1",
            "us-east5",
            sa.clone(),
        )
        .expect("r");
        assert_eq!(
            r.url("streamRawPredict"),
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict"
        );
        assert_eq!(r.wire, Wire::VertexAnthropic);
        let r = vertex_route("m", Some("http://127.0.0.1:9/"), "p1", "eu", sa.clone()).expect("r");
        assert_eq!(
            r.url("chat/completions"),
            "http://127.0.0.1:9/v1/projects/p1/locations/eu/endpoints/openapi/chat/completions"
        );
        assert_eq!(
            vertex_host("eu"),
            "https://aiplatform.eu.rep.googleapis.com"
        );
        // api_base with /v1: the path after it; with more: the whole URL up to the method.
        let r = vertex_route(
            "claude-x",
            Some("https://gw.example/v1/"),
            "p1",
            "us-east5",
            sa.clone(),
        )
        .expect("r");
        assert_eq!(
            r.url("rawPredict"),
            "https://gw.example/v1/projects/p1/locations/us-east5/publishers/anthropic/models/claude-x:rawPredict"
        );
        let r = vertex_route(
            "claude-x",
            Some("https://gw.example/vertex/claude"),
            "p1",
            "us-east5",
            sa.clone(),
        )
        .expect("r");
        assert_eq!(
            r.url("rawPredict"),
            "https://gw.example/vertex/claude:rawPredict"
        );
        for (loc, proj, field) in [
            ("evil.com#", "p1", "vertex_location"),
            ("us-central1", "p/../x", "vertex_project"),
        ] {
            let e = vertex_route("m", None, proj, loc, sa.clone()).expect_err("bad");
            assert_eq!(e.0, field);
        }
        assert!(vertex_route("*", None, "p", "us-central1", sa).is_err());
    }
}
