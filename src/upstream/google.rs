//! Google OAuth access tokens for `vertex_ai` deployments (issue 13): the signed assertion of
//! the deployment's service account (`provider::google::ServiceAccount`) is POSTed to the
//! credentials' own `token_uri` (JWT-bearer grant, RFC 7523), the answer read under a size cap
//! and a deadline, and the token kept in the account's `TokenCache` (one refresh at a time,
//! refreshed before it expires). Neither the assertion nor the token goes anywhere else: the
//! token only to the deployment's own URL (`Upstream::post`). Failures are a 502 (503 when
//! another call's refresh did not finish in time) whose message names no secret.

use super::fault_kind;
use crate::config::Deployment;
use crate::error::Error;
use crate::provider::google::{ServiceAccount, GRANT_TYPE};
use crate::provider::token::TokenFailure;
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The token endpoint must answer within this.
const TOKEN_DEADLINE: Duration = Duration::from_secs(10);
/// A call waits at most this for another call's refresh when no valid token is left.
const REFRESH_WAIT: Duration = Duration::from_secs(12);
/// A token endpoint's answer is read up to this size (Google's are < 2 KB).
const MAX_TOKEN_ANSWER: u64 = 64 * 1024;
/// Longest access token accepted (Google's are ~200-1,000 characters).
const MAX_TOKEN_CHARS: usize = 8192;
/// A token's lifetime is taken as at most a day.
const MAX_LIFETIME_SECS: u64 = 86_400;

/// A valid access token for `account`, from its cache or freshly minted.
pub fn access_token(
    agent: &ureq::Agent,
    dep: &Deployment,
    account: &ServiceAccount,
) -> Result<String, Error> {
    account
        .tokens
        .get(REFRESH_WAIT, || fetch(agent, account))
        .map_err(|f| {
            let (status, why) = match f {
                TokenFailure::Fetch(m) => (502, m),
                TokenFailure::Busy => (
                    503,
                    "another call's token refresh did not finish in time".to_string(),
                ),
            };
            log::warn!(
                "upstream {}: Google access token for {}: {why}",
                dep.model_name,
                account.client_email
            );
            Error::Upstream {
                status,
                message: format!(
                    "upstream {} is unavailable: no Google access token ({why})",
                    dep.model_name
                ),
            }
        })
}

#[derive(Deserialize)]
struct Granted {
    access_token: Option<String>,
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Refused {
    error: Option<String>,
}

/// One exchange with the token endpoint: the token and its lifetime, or a secret-free reason.
fn fetch(agent: &ureq::Agent, account: &ServiceAccount) -> Result<(String, Duration), String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let assertion = account.assertion(now)?;
    // The grant type's `:` are form-encoded; the JWT is base64url and `.` only.
    let form = format!(
        "grant_type={}&assertion={assertion}",
        GRANT_TYPE.replace(':', "%3A")
    );
    let resp = agent
        .post(&account.token_uri)
        .config()
        .timeout_global(Some(TOKEN_DEADLINE))
        .build()
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .send(form.as_bytes())
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => "the token endpoint did not answer in time".to_string(),
            e => format!(
                "the token endpoint could not be reached ({})",
                fault_kind(&e)
            ),
        })?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .with_config()
        .limit(MAX_TOKEN_ANSWER)
        .read_to_vec()
        .map_err(|_| "the token endpoint's answer could not be read".to_string())?;
    if status != 200 {
        // OAuth's `error` is a short code (`invalid_grant`); anything else is not echoed.
        let code = serde_json::from_slice::<Refused>(&body)
            .ok()
            .and_then(|r| r.error)
            .filter(|c| {
                c.len() <= 64
                    && c.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            });
        return Err(match code {
            Some(c) => format!("the token endpoint answered {status} ({c})"),
            None => format!("the token endpoint answered {status}"),
        });
    }
    let g: Granted = serde_json::from_slice(&body)
        .map_err(|_| "the token endpoint answered with invalid JSON".to_string())?;
    let token = g
        .access_token
        .filter(|t| {
            !t.is_empty() && t.len() <= MAX_TOKEN_CHARS && t.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or("the token endpoint's answer has no usable access_token")?;
    // `expires_in` is a number of seconds (some servers send it as a string).
    let secs = match g.expires_in {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => Some(3600),
    }
    .ok_or("the token endpoint's expires_in is not a number of seconds")?;
    Ok((token, Duration::from_secs(secs.clamp(1, MAX_LIFETIME_SECS))))
}
