//! Web UI sessions as a credential: the cookie's name and where it is read, the CSRF header
//! rule, and resolving a live session to its `Caller` (a master-key session is the master key;
//! a user session is that user with their role and models *now*). Opening and ending sessions
//! (`/ui/login`, `/ui/logout`) are endpoints in `http::ui`; the queries are `db::sessions`.

use super::{hash_key, Caller, Refusal, Role};
use crate::db::{self, Pool};
use crate::util;
use tiny_http::HeaderFields;

pub const SESSION_COOKIE: &str = "litegate_session";
/// The header our JS sends on every request. A cookie-authenticated request that changes
/// anything must carry it: a cross-site form cannot set it, and a cross-site `fetch` that sets
/// it needs a CORS preflight, which litegate never grants. SameSite=Strict is the first line.
pub const UI_HEADER: &str = "x-litegate-ui";

/// The session cookie's value, if the headers carry one.
pub fn session_cookie(headers: &HeaderFields) -> Option<String> {
    headers
        .get_all("cookie")
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, v)| *k == SESSION_COOKIE && !v.is_empty())
        .map(|(_, v)| v.trim().to_string())
}

/// Whether the headers carry the UI's CSRF header (`X-Litegate-UI: 1`).
pub fn has_ui_header(headers: &HeaderFields) -> bool {
    headers.get(UI_HEADER).is_some_and(|v| v.trim() == "1")
}

/// The caller a session cookie stands for, with the CSRF rule: only GET/HEAD may omit
/// the UI header. A rotated master key ends the sessions opened with the old one.
pub(super) fn session_caller(
    pool: &Pool,
    master_hash: &str,
    token: &str,
    ui_header: bool,
    method: &str,
) -> Result<Caller, Refusal> {
    let hash = hash_key(token);
    let now = util::now_iso();
    let s = pool
        .read_db(|c| Ok(db::sessions::live(c, &hash, &now)?))
        .map_err(Refusal::Fault)?
        .ok_or(Refusal::SessionInvalid)?;
    let caller = if s.is_master {
        let same = s
            .master_hash
            .as_deref()
            .is_some_and(|h| util::ct_eq(h.as_bytes(), master_hash.as_bytes()));
        if !same {
            return Err(Refusal::SessionInvalid);
        }
        Caller::master()
    } else {
        let role = s
            .user_role
            .as_deref()
            .and_then(Role::parse)
            .ok_or_else(|| {
                Refusal::Fault(crate::error::Error::internal(
                    "session user has no valid role",
                ))
            })?;
        // The user's own models bound what the session may see (never an open chain).
        let models = match (&s.user_id, s.user_models) {
            (Some(_), Some(m)) => m,
            (Some(_), None) => return Err(Refusal::SessionInvalid),
            (None, _) => Vec::new(),
        };
        Caller {
            role,
            user_id: s.user_id,
            key: None,
            user_models: Some(models),
        }
    };
    if !matches!(method, "GET" | "HEAD") && !ui_header {
        return Err(Refusal::SessionWithoutUiHeader);
    }
    Ok(caller)
}
