//! Identity: the one answer to "who is this?". `authenticate` takes the request's
//! `Credentials` (a key in one of the four headers of API.md §2, or the web UI's session
//! cookie) and answers with a `Caller` — the master key, a virtual key with its loaded
//! hierarchy, or a UI session's user — or a typed `Refusal` (worded in `error.rs`: no HTTP
//! here). THE key check itself is `db::key_check`. Holds the key format (`key`), passwords
//! (`password`), roles (`role`) and sessions (`session`).
//!
//! Not here: what a caller may do. Model access (the resolver) and who may read or change
//! which resource are `access`; `Caller::chain` is defined there.

pub mod key;
pub mod password;
pub mod role;
pub mod session;

pub use crate::error::Refusal;
pub use key::{hash_key, key_name, new_raw_key, presented_key, token_of};
pub use password::{hash_password, try_verify_password, verify_password};
pub use role::{Role, ORG_ADMIN, TEAM_ADMIN};

use crate::db::key_check::{self, KeyRow, KeyState};
use crate::db::Pool;
use crate::util;
use rusqlite::Connection;
use std::time::Instant;
use tiny_http::HeaderFields;

/// The `user_id` the master key acts as (LiteLLM's name).
pub const MASTER_USER_ID: &str = "default_user_id";

/// Who is calling: the master key, a virtual key with its loaded hierarchy, or a UI session's
/// user.
#[derive(Debug, Clone)]
pub struct Caller {
    pub role: Role,
    /// The acting user (`default_user_id` for the master key).
    pub user_id: Option<String>,
    pub key: Option<Box<KeyRow>>,
    /// For a caller without a key that is not the master key (a web UI session): the user's
    /// own models, which bound what it may see. `None` for the master key and for keys.
    pub user_models: Option<Vec<String>>,
}

impl Caller {
    pub fn master() -> Caller {
        Caller {
            role: Role::ProxyAdmin,
            user_id: Some(MASTER_USER_ID.to_string()),
            key: None,
            user_models: None,
        }
    }
    /// The master key itself (or a UI session opened with it) — not a proxy admin user, whose
    /// UI session also has no key.
    pub fn is_master(&self) -> bool {
        self.key.is_none()
            && self.role == Role::ProxyAdmin
            && self.user_id.as_deref() == Some(MASTER_USER_ID)
    }
    pub fn is_proxy_admin(&self) -> bool {
        self.role == Role::ProxyAdmin
    }
    pub fn key_name(&self) -> Option<&str> {
        self.key.as_ref().map(|k| k.key_name.as_str())
    }
    /// A key issued for its owner by someone else (`KeyRow::calls_only`).
    pub fn is_calls_only(&self) -> bool {
        self.key.as_ref().is_some_and(|k| k.calls_only)
    }
}

/// What a request presents, read once from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A key (the master key or a virtual key).
    Key(String),
    /// The web UI's session cookie, and whether the UI's CSRF header came with it.
    Session {
        token: String,
        ui_header: bool,
    },
    None,
}

impl Credentials {
    /// For management routes: the key if one is given, else the session cookie.
    pub fn of(headers: &HeaderFields) -> Credentials {
        if let Some(k) = presented_key(headers) {
            return Credentials::Key(k);
        }
        match session::session_cookie(headers) {
            Some(token) => Credentials::Session {
                token,
                ui_header: session::has_ui_header(headers),
            },
            None => Credentials::None,
        }
    }

    /// For model calls: a key only, so a browser session never spends.
    pub fn key_only(headers: &HeaderFields) -> Credentials {
        presented_key(headers).map_or(Credentials::None, Credentials::Key)
    }

    /// How the access log names the caller (never the raw key or cookie): the key's public
    /// name, `master_key`, `ui:<user>`, or what failed; nothing when nothing was presented.
    pub fn log_label(&self, outcome: &Result<Caller, Refusal>) -> Option<String> {
        Some(match (self, outcome) {
            (Credentials::None, _) => return None,
            (Credentials::Session { .. }, Ok(c)) => {
                format!("ui:{}", c.user_id.as_deref().unwrap_or("-"))
            }
            (Credentials::Session { .. }, Err(_)) => "invalid-session".into(),
            (Credentials::Key(_), Ok(c)) => c.key_name().unwrap_or("master_key").to_string(),
            (Credentials::Key(_), Err(_)) => "invalid".into(),
        })
    }
}

/// The front door: who is this? A key is checked on the pool's hot connection (released
/// before return); a session through `db::sessions`, with the CSRF rule for `method`.
pub fn authenticate(
    pool: &Pool,
    master_hash: &str,
    credentials: &Credentials,
    method: &str,
) -> Result<Caller, Refusal> {
    match credentials {
        Credentials::None => Err(Refusal::NoKey),
        Credentials::Key(presented) => {
            let t = Instant::now();
            let caller = match pool {
                Pool::Sqlite(lite) => {
                    let mut hot = lite.hot();
                    // The spend journaled but not applied yet counts (read under the hot lock,
                    // as the applier removes it).
                    check_presented(master_hash, presented, |token| {
                        Ok(key_check::load_key_hot(&mut hot, token)?)
                    })
                    .map(|mut who| {
                        if let Some(k) = &mut who.key {
                            lite.journal().overlay.add_to(k);
                        }
                        who
                    })
                }
                Pool::Postgres(pg) => check_presented(master_hash, presented, |token| {
                    key_check::load_key_pg(pg, token).map_err(Refusal::Fault)
                }),
            };
            crate::metrics::METRICS.key_check(t.elapsed());
            caller
        }
        Credentials::Session { token, ui_header } => {
            session::session_caller(pool, master_hash, token, *ui_header, method)
        }
    }
}

/// A presented key: the master key (constant time against its hash), else THE key check
/// (through the connection's statement cache; `authenticate` uses the hot connection's own
/// prepared statement).
pub fn check_key(c: &Connection, master_hash: &str, presented: &str) -> Result<Caller, Refusal> {
    check_presented(master_hash, presented, |token| {
        Ok(key_check::load_key(c, token)?)
    })
}

/// `check_key` with the key check given as `load` (by token), so that both engines share
/// every rule; generic, so the SQLite path compiles to what it was. The token computed here
/// is moved into the loaded row (`KeyRow::token`), not copied.
fn check_presented(
    master_hash: &str,
    presented: &str,
    load: impl FnOnce(&str) -> Result<Option<key_check::KeyRow>, Refusal>,
) -> Result<Caller, Refusal> {
    let token = hash_key(presented);
    if util::ct_eq(token.as_bytes(), master_hash.as_bytes()) {
        return Ok(Caller::master());
    }
    if !presented.starts_with("sk-") {
        return Err(Refusal::MalformedKey);
    }
    let mut k = load(&token)?.ok_or(Refusal::UnknownKey)?;
    k.token = token;
    if let Some(r) = key_refusal(&k, util::now_ms()) {
        return Err(r);
    }
    Ok(key_caller(k))
}

/// Why a loaded key may not be used at `now_ms` (its state, API.md §7's order), if it may not:
/// the refusal the key check answers with (`/access/explain` reports the same).
pub fn key_refusal(k: &KeyRow, now_ms: i64) -> Option<Refusal> {
    match k.state(now_ms) {
        KeyState::Valid => None,
        KeyState::Blocked => Some(Refusal::KeyBlocked),
        KeyState::Expired(exp) => Some(Refusal::KeyExpired(exp)),
        KeyState::TeamGone => Some(Refusal::TeamGone),
        KeyState::TeamBlocked(id) => Some(Refusal::TeamBlocked(id)),
        KeyState::OrgBlocked(id) => Some(Refusal::OrgBlocked(id)),
        KeyState::OrgGone => Some(Refusal::OrgGone),
    }
}

/// The caller a valid loaded key acts as: its owner's role (a calls-only key's at most an
/// internal user's), its user, the key itself.
pub fn key_caller(k: KeyRow) -> Caller {
    let owner_role = k
        .user
        .as_ref()
        .map(|u| Role::parse(&u.user_role).unwrap_or(Role::InternalUserViewer))
        .unwrap_or(Role::InternalUser);
    // A key someone else issued never carries its owner's global role (API.md §9 "Keys for
    // someone else"): at most an internal user's, a viewer's stays a viewer's.
    let role = if k.calls_only {
        owner_role.below_proxy()
    } else {
        owner_role
    };
    Caller {
        role,
        user_id: k.user_id.clone(),
        key: Some(Box::new(k)),
        user_models: None,
    }
}

#[cfg(test)]
mod tests;
