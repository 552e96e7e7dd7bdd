//! The one error type. Owns the mapping from an error to its HTTP status and the LiteLLM error
//! envelope of API.md §3: `{"error": {"message", "type", "param", "code"}}`. Handlers return
//! `Err(Error::...)`; only the dispatcher renders it. Also owns the wording of identity
//! refusals: `auth::authenticate` answers with a typed `Refusal` and `From<Refusal>` turns it
//! into its status and LiteLLM sentence here. (`Refusal` is defined here, not in `auth`, so
//! this module stays a leaf: `auth` depends on `db`, and `db` on this.)

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// 400 `invalid_request_error`; `param` names the offending field when known.
    BadRequest {
        message: String,
        param: Option<String>,
    },
    /// 401 `auth_error`.
    Unauthorized(String),
    /// 401 `expired_key`.
    Expired(String),
    /// 403 `permission_error`.
    Forbidden(String),
    /// 403 with a model-access type (`key_model_access_denied`, ...), `param: "model"`.
    ModelDenied { kind: &'static str, message: String },
    /// 404 `not_found_error`.
    NotFound(String),
    /// 405: the path exists with another method.
    MethodNotAllowed,
    /// 408: the client was too slow to send its request.
    Timeout,
    /// 414, 417, 431 or 505 `invalid_request_error`: a request head the HTTP layer refused
    /// before any handler ran (`server::refusal_error`).
    HeadRefused { status: u16, message: String },
    /// 409 `conflict_error`.
    Conflict(String),
    /// 413 `request_too_large`.
    TooLarge(usize),
    /// 422 `budget_exceeded`.
    BudgetExceeded(String),
    /// 429 `rate_limit_error`; the number is the `retry-after` in seconds.
    RateLimited { message: String, retry_after: u64 },
    /// 502 / other upstream status with a cleaned message.
    Upstream { status: u16, message: String },
    /// 504.
    UpstreamTimeout(String),
    /// 503: shutting down or the database pool is exhausted.
    Unavailable(String),
    /// 501 `not_implemented`: not available on this deployment (e.g. on the PostgreSQL store,
    /// an endpoint not ported yet or `/admin/backup`, where pg_dump is the way).
    NotImplemented(String),
    /// 500; the detail goes to the log only.
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn bad(message: impl Into<String>) -> Self {
        Error::BadRequest {
            message: message.into(),
            param: None,
        }
    }

    pub fn bad_param(param: &str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            message: message.into(),
            param: Some(param.to_string()),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Error::Internal(detail.to_string())
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest { .. } => 400,
            Error::Unauthorized(_) | Error::Expired(_) => 401,
            Error::Forbidden(_) | Error::ModelDenied { .. } => 403,
            Error::NotFound(_) => 404,
            Error::MethodNotAllowed => 405,
            Error::Timeout => 408,
            Error::HeadRefused { status, .. } => *status,
            Error::Conflict(_) => 409,
            Error::TooLarge(_) => 413,
            Error::BudgetExceeded(_) => 422,
            Error::RateLimited { .. } => 429,
            Error::Upstream { status, .. } => *status,
            Error::UpstreamTimeout(_) => 504,
            Error::Unavailable(_) => 503,
            Error::NotImplemented(_) => 501,
            Error::Internal(_) => 500,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Error::BadRequest { .. } => "invalid_request_error",
            Error::Unauthorized(_) => "auth_error",
            Error::Expired(_) => "expired_key",
            Error::Forbidden(_) => "permission_error",
            Error::ModelDenied { kind, .. } => kind,
            Error::NotFound(_) => "not_found_error",
            Error::MethodNotAllowed => "invalid_request_error",
            Error::Timeout => "timeout_error",
            Error::HeadRefused { .. } => "invalid_request_error",
            Error::Conflict(_) => "conflict_error",
            Error::TooLarge(_) => "request_too_large",
            Error::BudgetExceeded(_) => "budget_exceeded",
            Error::RateLimited { .. } => "rate_limit_error",
            Error::Upstream { .. } => "upstream_error",
            Error::UpstreamTimeout(_) => "timeout_error",
            Error::Unavailable(_) => "service_unavailable",
            Error::NotImplemented(_) => "not_implemented",
            Error::Internal(_) => "internal_server_error",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Error::BadRequest { message, .. }
            | Error::Unauthorized(message)
            | Error::Expired(message)
            | Error::Forbidden(message)
            | Error::ModelDenied { message, .. }
            | Error::NotFound(message)
            | Error::HeadRefused { message, .. }
            | Error::Conflict(message)
            | Error::BudgetExceeded(message)
            | Error::RateLimited { message, .. }
            | Error::Upstream { message, .. }
            | Error::UpstreamTimeout(message)
            | Error::Unavailable(message)
            | Error::NotImplemented(message) => message.clone(),
            Error::MethodNotAllowed => "Method not allowed for this path".into(),
            Error::Timeout => "Request timed out while reading the request".into(),
            Error::TooLarge(limit) => format!("Request body exceeds the limit of {limit} bytes"),
            // The detail is logged by the dispatcher, never sent.
            Error::Internal(_) => "Internal server error".into(),
        }
    }

    fn param(&self) -> Option<String> {
        match self {
            Error::BadRequest { param, .. } => param.clone(),
            Error::ModelDenied { .. } => Some("model".into()),
            _ => None,
        }
    }

    /// The LiteLLM envelope (API.md §3).
    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message(),
            "type": self.kind(),
            "param": self.param(),
            "code": self.status().to_string(),
        }})
    }

    /// Anthropic's envelope, for the Messages routes (`/v1/messages`, its `count_tokens`), as
    /// LiteLLM answers there and the `anthropic` SDK and Claude Code read it:
    /// `{"type": "error", "error": {"type", "message"}}`, the type from the status; our own
    /// type rides along as `litellm_error_type` when it says more (LiteLLM's field).
    pub fn anthropic_body(&self) -> Value {
        let kind = anthropic_type(self.status());
        let mut error = json!({"type": kind, "message": self.message()});
        if self.kind() != kind {
            error["litellm_error_type"] = json!(self.kind());
        }
        json!({"type": "error", "error": error})
    }
}

/// Anthropic's error `type` for an HTTP status (Anthropic's error docs, as LiteLLM maps them).
pub fn anthropic_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        408 => "api_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Internal(d) => write!(f, "internal: {d}"),
            other => write!(f, "{} {}", other.status(), other.message()),
        }
    }
}

impl std::error::Error for Error {}

/// Why `auth::authenticate` did not answer with a caller. No HTTP in it: the status and
/// LiteLLM's wording of each are `From<Refusal> for Error` below.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A model call (or a management call without a session cookie) named no key.
    NoKey,
    /// The presented key is not the master key and does not start with `sk-`.
    MalformedKey,
    /// No stored key has this token.
    UnknownKey,
    KeyBlocked,
    /// Carries the stored expiry text.
    KeyExpired(String),
    TeamGone,
    /// Carries the team id.
    TeamBlocked(String),
    /// Carries the organization id.
    OrgBlocked(String),
    OrgGone,
    /// The session cookie names no live session (unknown, expired, its user gone, or opened
    /// with a master key that has since changed).
    SessionInvalid,
    /// A session-authenticated request that changes something lacks the UI's CSRF header.
    SessionWithoutUiHeader,
    /// The store could not answer (busy pool, I/O): not a judgment on the caller.
    Fault(Error),
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        let unauthorized = |m: &str| Error::Unauthorized(m.into());
        match r {
            Refusal::NoKey => unauthorized("Authentication Error, No api key passed in."),
            Refusal::MalformedKey => {
                unauthorized("Authentication Error, malformed API key: expected 'sk-...'")
            }
            Refusal::UnknownKey => unauthorized(
                "Authentication Error, Invalid proxy server token passed. Unable to find token \
                 in the database.",
            ),
            // LiteLLM's words for both (API.md §9: 401 `auth_error`).
            Refusal::KeyBlocked => unauthorized(
                "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin.",
            ),
            Refusal::KeyExpired(exp) => Error::Expired(format!(
                "Authentication Error - Expired Key. Key Expiry time {exp}"
            )),
            Refusal::TeamGone => {
                unauthorized("Authentication Error, the key's team no longer exists")
            }
            Refusal::TeamBlocked(id) => Error::Unauthorized(format!(
                "Authentication Error, Team={id} is blocked. Update via `/team/unblock` if \
                 you're an admin."
            )),
            Refusal::OrgBlocked(id) => Error::Forbidden(format!("Organization={id} is blocked.")),
            Refusal::OrgGone => {
                unauthorized("Authentication Error, the key's organization no longer exists")
            }
            Refusal::SessionInvalid => {
                unauthorized("Your UI session has expired or is not valid; log in again.")
            }
            Refusal::SessionWithoutUiHeader => Error::Forbidden(
                "requests authenticated by the UI session cookie that change anything must \
                 carry the header X-Litegate-UI: 1"
                    .into(),
            ),
            Refusal::Fault(e) => e,
        }
    }
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Self {
        Refusal::Fault(e.into())
    }
}

impl From<rusqlite::Error> for Error {
    /// A database error that a handler did not map itself is a 500 (STYLE.md: no blanket
    /// mapping to 404/400; expected UNIQUE violations are mapped at their call site).
    fn from(e: rusqlite::Error) -> Self {
        Error::Internal(format!("sqlite: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anthropics_envelope_types_follow_the_status() {
        let v = Error::RateLimited {
            message: "slow down".into(),
            retry_after: 1,
        }
        .anthropic_body();
        assert_eq!(
            v,
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
        );
        let v = Error::BudgetExceeded("over".into()).anthropic_body();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["litellm_error_type"], "budget_exceeded");
        let v = Error::Internal("secret detail".into()).anthropic_body();
        assert_eq!(v["error"]["type"], "api_error");
        assert!(!v.to_string().contains("secret"), "{v}");
        for (status, kind) in [
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (418, "invalid_request_error"),
            (502, "api_error"),
            (529, "overloaded_error"),
        ] {
            assert_eq!(anthropic_type(status), kind, "{status}");
        }
    }

    #[test]
    fn envelope_code_matches_status() {
        let all = [
            Error::bad_param("models", "x"),
            Error::Unauthorized("x".into()),
            Error::Expired("x".into()),
            Error::Forbidden("x".into()),
            Error::NotFound("x".into()),
            Error::Conflict("x".into()),
            Error::TooLarge(1),
            Error::HeadRefused {
                status: 431,
                message: "x".into(),
            },
            Error::BudgetExceeded("x".into()),
            Error::Internal("secret sql".into()),
            Error::NotImplemented("x".into()),
        ];
        for e in all {
            let b = e.body();
            assert_eq!(b["error"]["code"], e.status().to_string());
            assert!(b["error"]["type"].is_string());
        }
    }

    #[test]
    fn internal_detail_is_not_sent() {
        let b = Error::Internal("SELECT * FROM api_keys /var/lib".into()).body();
        let s = b.to_string();
        assert!(!s.contains("SELECT") && !s.contains("/var/lib"), "{s}");
    }

    /// The exact status, type and sentence of every identity refusal (API.md §2, §7): these
    /// are what LiteLLM clients match on.
    #[test]
    fn refusal_wording() {
        #[rustfmt::skip]
        let cases: &[(Refusal, u16, &str, &str)] = &[
            (Refusal::NoKey, 401, "auth_error", "Authentication Error, No api key passed in."),
            (Refusal::MalformedKey, 401, "auth_error", "Authentication Error, malformed API key: expected 'sk-...'"),
            (Refusal::UnknownKey, 401, "auth_error", "Authentication Error, Invalid proxy server token passed. Unable to find token in the database."),
            (Refusal::KeyBlocked, 401, "auth_error", "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin."),
            (Refusal::KeyExpired("2020-01-01T00:00:00.000Z".into()), 401, "expired_key", "Authentication Error - Expired Key. Key Expiry time 2020-01-01T00:00:00.000Z"),
            (Refusal::TeamGone, 401, "auth_error", "Authentication Error, the key's team no longer exists"),
            (Refusal::TeamBlocked("t1".into()), 401, "auth_error", "Authentication Error, Team=t1 is blocked. Update via `/team/unblock` if you're an admin."),
            (Refusal::OrgBlocked("o1".into()), 403, "permission_error", "Organization=o1 is blocked."),
            (Refusal::OrgGone, 401, "auth_error", "Authentication Error, the key's organization no longer exists"),
            (Refusal::SessionInvalid, 401, "auth_error", "Your UI session has expired or is not valid; log in again."),
            (Refusal::SessionWithoutUiHeader, 403, "permission_error", "requests authenticated by the UI session cookie that change anything must carry the header X-Litegate-UI: 1"),
            (Refusal::Fault(Error::Unavailable("busy".into())), 503, "service_unavailable", "busy"),
        ];
        for (r, status, kind, message) in cases {
            let e = Error::from(r.clone());
            assert_eq!(e.status(), *status, "{r:?}");
            assert_eq!(e.body()["error"]["type"], *kind, "{r:?}");
            assert_eq!(e.message(), *message, "{r:?}");
        }
    }

    #[test]
    fn model_denied_names_param() {
        let e = Error::ModelDenied {
            kind: "team_model_access_denied",
            message: "no".into(),
        };
        assert_eq!(e.status(), 403);
        assert_eq!(e.body()["error"]["param"], "model");
        assert_eq!(e.body()["error"]["type"], "team_model_access_denied");
    }
}
