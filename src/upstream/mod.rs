//! Upstream calls. Owns the blocking HTTP client (plain `http://` without a proxy: `fast`;
//! anything else: ureq, one agent per deadline over shared idle connections), the
//! request body sent to an OpenAI-compatible deployment (its URL and auth header are its
//! `provider::Route`, built at config load), and the mapping of upstream
//! faults to our errors (API.md §8): refused/unreachable → 502, timeout → 504, upstream
//! 4xx/5xx → the same status in our envelope, with the upstream key and URL removed.
//! The provider key comes only from the config, never from the caller. Redirects are never
//! followed (a 3xx is a 502 whose `Location` nobody sees), and no message a key holder can
//! read carries the deployment's URL, host or key: transport faults are named by kind only
//! (the detail goes to the operator's log), upstream error bodies are scrubbed.

pub mod answer;
pub mod anthropic;
pub mod bedrock;
pub mod fast;
pub mod google;
pub mod messages;
pub mod pool;
pub mod sse;
pub mod transport;
pub mod usage;

use crate::config::Deployment;
use crate::error::Error;
use serde_json::Value;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use ureq::typestate::WithBody;

/// An upstream's error message is echoed up to this many characters.
const MAX_ECHOED_CHARS: usize = 2000;

pub struct Upstream {
    agent: ureq::Agent,
    /// The agents of the calls' deadlines (issue 17): one per distinct deadline, over the
    /// same idle connections, so that no call builds a request-level config (a copy of the
    /// whole config, kept in the request's extensions, per call).
    timed: RwLock<Vec<(Duration, ureq::Agent)>>,
    idle: Arc<pool::IdlePool>,
    /// The fast path for plain `http://` (`fast`); `None` when a proxy is configured.
    fast: Option<fast::Fast>,
}

/// The `user-agent` sent upstream.
pub(crate) const USER_AGENT: &str = concat!("litegate/", env!("CARGO_PKG_VERSION"));

/// Deadlines given an agent of their own; others get a request-level config.
const MAX_TIMED_AGENTS: usize = 32;

/// Fields of a request body that are for the gateway, never for the upstream: caller-supplied
/// `api_base`/`base_url`/`api_key` would send our provider key to a stranger.
const GATEWAY_ONLY: &[&str] = &[
    "mock_response",
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "metadata",
    "litellm_metadata",
    "caching",
    "fallbacks",
    "num_retries",
];

/// The agents' config, but for the deadline (each call's, `Upstream::post_with`).
fn config() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        // Idle connections are kept by the connector, per host (`pool`).
        // ureq's defaults are 128 KiB each per connection, live or idle in the pool: 256 MB
        // for 1,000 streams. 32 KiB holds any upstream's response head (nginx's default
        // limit is 4 × 8 KiB); bodies stream through in pieces of this size either way.
        .input_buffer_size(32 * 1024)
        .output_buffer_size(16 * 1024)
        .timeout_connect(Some(Duration::from_secs(10)))
        // A redirect would send the caller's prompt (and, to the same host, our provider
        // key) wherever the upstream points; a 3xx is answered as a fault instead. With 0,
        // ureq returns the 3xx response as it is.
        .max_redirects(0)
        .user_agent(USER_AGENT)
}

impl Default for Upstream {
    fn default() -> Self {
        Self::new()
    }
}

/// The environment switch that sends every call through ureq (`LITEGATE_UPSTREAM_FAST=off`):
/// the operators' fallback should the fast path misread an upstream, and A/B runs.
pub const FAST_SWITCH: &str = "LITEGATE_UPSTREAM_FAST";

impl Upstream {
    /// The upstream client; the fast path (`fast`) is on unless `LITEGATE_UPSTREAM_FAST=off`
    /// (read here, once: the server builds one `Upstream` at start).
    pub fn new() -> Upstream {
        let off = std::env::var(FAST_SWITCH).is_ok_and(|v| v.trim().eq_ignore_ascii_case("off"));
        Self::with_fast(!off)
    }

    /// The upstream client, with the fast path for plain `http://` upstreams when `fast`.
    pub fn with_fast(fast: bool) -> Upstream {
        let idle = Arc::new(pool::IdlePool::default());
        let agent = transport::agent_sharing(
            config(),
            transport::IpLiteralResolver::default(),
            idle.clone(),
        );
        let fast = (fast && agent.config().proxy().is_none()).then(|| fast::Fast {
            idle: idle.clone(),
            max_idle_age: agent.config().max_idle_age(),
            config: agent.config().clone(),
        });
        Upstream {
            agent,
            timed: RwLock::new(Vec::new()),
            idle,
            fast,
        }
    }

    /// A request to `url` with the deadline `timeout` (see `timed`).
    fn post_with(&self, url: &str, timeout: Duration) -> ureq::RequestBuilder<WithBody> {
        {
            let timed = self.timed.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((_, a)) = timed.iter().find(|(t, _)| *t == timeout) {
                return a.post(url);
            }
        }
        let mut timed = self.timed.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, a)) = timed.iter().find(|(t, _)| *t == timeout) {
            return a.post(url);
        }
        if timed.len() >= MAX_TIMED_AGENTS {
            drop(timed);
            return self
                .agent
                .post(url)
                .config()
                .timeout_global(Some(timeout))
                .build();
        }
        let a = transport::agent_sharing(
            config().timeout_global(Some(timeout)),
            transport::IpLiteralResolver::default(),
            self.idle.clone(),
        );
        let rb = a.post(url);
        timed.push((timeout, a));
        rb
    }

    /// The URL of an endpoint (`chat/completions`, `completions`, `embeddings`) of a
    /// deployment: its own route, built at config load (`provider::Route`).
    pub fn url(dep: &Deployment, endpoint: &str) -> String {
        dep.route.url(endpoint)
    }

    /// The body sent upstream: the caller's, with the deployment's model name and without
    /// gateway-only fields.
    pub fn body(
        dep: &Deployment,
        called: &str,
        mut body: serde_json::Map<String, Value>,
    ) -> Vec<u8> {
        for f in GATEWAY_ONLY {
            body.remove(*f);
        }
        body.insert("model".into(), Value::String(Self::model_for(dep, called)));
        serde_json::to_vec(&Value::Object(body)).unwrap_or_default()
    }

    /// The model name the upstream gets for a call of `called` on `dep`.
    pub fn model_for(dep: &Deployment, called: &str) -> String {
        let name = Self::model_name(dep, called);
        match dep.route.model_prefix {
            "" => name.to_string(),
            prefix => format!("{prefix}{name}"),
        }
    }

    fn model_name<'a>(dep: &'a Deployment, called: &'a str) -> &'a str {
        match dep.model.split_once('/') {
            // A wildcard deployment (`openai/*` → `openai/*`) passes the called name through.
            Some((_, "*")) => called.split_once('/').map(|(_, m)| m).unwrap_or(called),
            Some((_, m)) => m,
            None => &dep.model,
        }
    }

    /// True when `body` is already what `body()` would send: the upstream model name in
    /// place and no gateway-only field. The caller's bytes can then go out as they came.
    /// (Compared in place: `model_for` without its `String`.)
    pub fn body_unchanged(
        dep: &Deployment,
        called: &str,
        body: &serde_json::Map<String, Value>,
    ) -> bool {
        // The body's few keys are looked up in the list, not the list's ten in the body.
        body.get("model")
            .and_then(Value::as_str)
            .and_then(|m| m.strip_prefix(dep.route.model_prefix))
            == Some(Self::model_name(dep, called))
            && !body.keys().any(|k| GATEWAY_ONLY.contains(&k.as_str()))
    }

    /// POSTs `body` to the deployment; returns the response (any status) or a mapped fault.
    /// `anthropic_beta` is the caller's `anthropic-beta` header, sent to Anthropic deployments
    /// only (`/v1/messages`).
    pub fn post(
        &self,
        dep: &Deployment,
        endpoint: &str,
        body: &[u8],
        stream: bool,
        anthropic_beta: Option<&str>,
    ) -> Result<answer::Response, Error> {
        let url = Self::url(dep, endpoint);
        let secs = if stream {
            dep.stream_timeout_secs
        } else {
            dep.timeout_secs
        };
        let timeout = Duration::from_secs_f64(secs);
        let fast = self
            .fast
            .as_ref()
            .and_then(|f| Some((f, fast::Target::of(&url)?)));
        let mut rb = match fast {
            Some((f, target)) => Out::Fast(f, fast::Request::new(target)),
            None => Out::Ureq(self.post_with(&url, timeout)),
        };
        rb = rb.header("content-type", "application/json").header(
            "accept",
            match (stream, dep.route.wire) {
                (false, _) => "application/json",
                (true, crate::provider::Wire::Bedrock) => "application/vnd.amazon.eventstream",
                (true, _) => "text/event-stream",
            },
        );
        if let Some(creds) = &dep.route.aws {
            // SigV4: the host header is set to exactly what is signed.
            let host = host_header(&url).ok_or_else(|| Error::Upstream {
                status: 502,
                message: format!("upstream {} has an invalid URL", dep.model_name),
            })?;
            let signed = bedrock::sign::headers(
                creds,
                bedrock::sign::SERVICE,
                "POST",
                &url,
                &[("content-type", "application/json"), ("host", &host)],
                body,
                std::time::SystemTime::now(),
            )
            .map_err(|e| {
                log::warn!("upstream {}: {}", dep.model_name, scrub(dep, &e));
                Error::Upstream {
                    status: 502,
                    message: format!(
                        "upstream {}: the request could not be signed",
                        dep.model_name
                    ),
                }
            })?;
            rb = rb.header("host", host.as_str());
            for (name, value) in signed {
                rb = rb.header(name, value.as_str());
            }
        }
        if let Some((name, value)) = &dep.route.auth {
            rb = rb.header(name, value.as_str());
        }
        if let Some(account) = &dep.route.google {
            let token = google::access_token(&self.agent, dep, account)?;
            rb = rb.header("authorization", &format!("Bearer {token}"));
        }
        // Claude on Vertex carries its version in the body (`anthropic::target`).
        if dep.route.wire == crate::provider::Wire::Anthropic {
            rb = rb.header("anthropic-version", crate::provider::ANTHROPIC_VERSION);
        }
        if let (true, Some(beta)) = (dep.route.wire.is_anthropic(), anthropic_beta) {
            rb = rb.header("anthropic-beta", beta);
        }
        let resp = match rb {
            Out::Fast(f, req) => req.send(f, body, timeout),
            Out::Ureq(rb) => rb.send(body).map(answer::Response::of_ureq),
        }
        .map_err(|e| map_fault(dep, &e))?;
        if let (Some(account), 401) = (&dep.route.google, resp.status()) {
            // A revoked or otherwise refused token: the next call mints a new one.
            account.tokens.forget();
        }
        Ok(resp)
    }

    /// Turns an upstream error status and body into our envelope's error, without secrets.
    /// A redirect (3xx) is a 502 that shows neither its body nor its `Location`.
    pub fn status_error(dep: &Deployment, status: u16, body: &[u8]) -> Error {
        if (300..400).contains(&status) {
            return Error::Upstream {
                status: 502,
                message: format!(
                    "upstream {} answered with a redirect ({status}); litegate does not \
                     follow redirects",
                    dep.model_name
                ),
            };
        }
        let msg = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                v.get("error")
                    .and_then(|e| e.get("message").or(Some(e)))
                    .and_then(|m| m.as_str().map(str::to_string))
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned());
        // What is echoed to the caller is bounded (the body may be up to 1 MiB).
        let msg: String = msg.chars().take(MAX_ECHOED_CHARS).collect();
        Error::Upstream {
            status: if (400..600).contains(&status) {
                status
            } else {
                502
            },
            message: format!(
                "upstream error from {}: {}",
                dep.model_name,
                scrub(dep, &msg)
            ),
        }
    }
}

/// A request being built: through ureq, or on the fast path (`fast`). Built once per call
/// on the stack; ureq's builder is the larger.
#[allow(clippy::large_enum_variant)]
enum Out<'a> {
    Ureq(ureq::RequestBuilder<WithBody>),
    Fast(&'a fast::Fast, fast::Request<'a>),
}

impl Out<'_> {
    fn header(self, name: &str, value: &str) -> Self {
        match self {
            Out::Ureq(rb) => Out::Ureq(rb.header(name, value)),
            Out::Fast(f, mut r) => {
                r.header(name, value);
                Out::Fast(f, r)
            }
        }
    }
}

/// The `Host` header of a request to `url`: its host, with its port unless the scheme's
/// default (as ureq writes it).
fn host_header(url: &str) -> Option<String> {
    let uri = url.parse::<ureq::http::Uri>().ok()?;
    let host = uri.host()?;
    let default = match uri.scheme_str()? {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    Some(match uri.port_u16() {
        Some(p) if p != default => format!("{host}:{p}"),
        _ => host.to_string(),
    })
}

/// Removes the deployment's key, the URL its calls go to (its own `api_base`, or its
/// provider's default such as `https://api.anthropic.com/v1`), and that URL's host (with and
/// without the port) from a message: an upstream may echo any of them
/// (`http://10.0.0.5:8000/v1/chat/completions`, `10.0.0.5:8000`, `Host: llm.internal`).
pub fn scrub(dep: &Deployment, s: &str) -> String {
    let mut out = s.to_string();
    if let Some(k) = dep.api_key.as_deref().filter(|k| k.len() >= 4) {
        out = out.replace(k, "[redacted]");
    }
    // Bedrock: the access key id (it names the account's key), the secret and the token.
    if let Some(aws) = &dep.route.aws {
        for k in [
            Some(aws.access_key_id.as_str()),
            Some(aws.secret_access_key.as_str()),
            aws.session_token.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter(|k| k.len() >= 4)
        {
            out = out.replace(k, "[redacted]");
        }
    }
    // The route's base (the URL called, possibly longer than `api_base`) first, then
    // `api_base` as written; then their authorities, then bare hosts.
    let bases: Vec<&str> = [Some(dep.route.base.as_str()), dep.api_base.as_deref()]
        .into_iter()
        .flatten()
        .map(|b| b.trim_end_matches('/'))
        .filter(|b| !b.is_empty())
        .collect();
    for b in &bases {
        out = out.replace(b, "[upstream]");
    }
    let uris: Vec<ureq::http::Uri> = bases.iter().filter_map(|b| b.parse().ok()).collect();
    for uri in &uris {
        if let Some(a) = uri
            .authority()
            .map(|a| a.as_str())
            .filter(|a| !a.is_empty())
        {
            out = out.replace(a, "[upstream]");
        }
    }
    for uri in &uris {
        // A bare host of 4 characters or more (shorter ones would eat ordinary words).
        if let Some(h) = uri.host().filter(|h| h.len() >= 4) {
            out = out.replace(h, "[upstream]");
        }
    }
    out
}

/// What kind of transport fault `e` is, in words that name no host, address or URL: ureq's
/// own messages may carry them (a URI, a resolver error with the name, a TLS error with the
/// certificate's names). The full text goes to the operator's log.
pub(crate) fn fault_kind(e: &ureq::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::Io(io) => match io.kind() {
            K::ConnectionRefused => "connection refused",
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => "connection reset",
            K::UnexpectedEof => "connection closed early",
            K::AddrNotAvailable | K::NetworkUnreachable | K::HostUnreachable => "unreachable",
            K::NotFound => "name not resolved",
            K::InvalidData => "invalid HTTP answer",
            K::InvalidInput => "invalid request header",
            // The resolver's failures come as uncategorised I/O errors.
            _ if io.to_string().contains("lookup") => "name not resolved",
            _ => "network error",
        },
        ureq::Error::HostNotFound => "name not resolved",
        ureq::Error::ConnectionFailed => "connection failed",
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS error",
        ureq::Error::BodyExceedsLimit(_) => "answer too large",
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => "redirect",
        ureq::Error::Protocol(_) => "invalid HTTP answer",
        ureq::Error::LargeResponseHeader(..) => "response header too large",
        _ => "transport error",
    }
}

/// Maps a transport fault: timeouts → 504, everything else (refused, DNS, reset) → 502.
pub fn map_fault(dep: &Deployment, e: &ureq::Error) -> Error {
    let timed_out = match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
        ),
        _ => false,
    };
    log::warn!(
        "upstream {} ({}): {}",
        dep.model_name,
        if timed_out { "timeout" } else { fault_kind(e) },
        scrub(dep, &e.to_string())
    );
    if timed_out {
        Error::UpstreamTimeout(format!(
            "upstream {} did not answer in time",
            dep.model_name
        ))
    } else {
        Error::Upstream {
            status: 502,
            message: format!(
                "upstream {} could not be reached: {}",
                dep.model_name,
                fault_kind(e)
            ),
        }
    }
}

#[cfg(test)]
mod tests;
