//! Web UI session queries (`ui_sessions`, schema 0002). One fn per query. Only the SHA-256 of a
//! session cookie is stored; expiry is compared as ISO-8601 text (it sorts as time). On the
//! engine-neutral `handle::Handle` (issue 14).

use super::handle::{DbResult, Handle};

/// A live session as the request path needs it: who, and with which role *now*.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub is_master: bool,
    /// The master-key hash the session was opened with (master sessions only).
    pub master_hash: Option<String>,
    pub user_id: Option<String>,
    /// The user's current `user_role` (None for master sessions).
    pub user_role: Option<String>,
    /// The user's current models (None for master sessions or a deleted user).
    pub user_models: Option<Vec<String>>,
    pub expires_at: String,
}

const INSERT: &str = "INSERT INTO ui_sessions
    (token_hash, user_id, is_master, master_hash, role, created_at, expires_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

#[allow(clippy::too_many_arguments)]
pub fn insert<C: Handle + ?Sized>(
    c: &C,
    token_hash: &str,
    user_id: Option<&str>,
    master_hash: Option<&str>,
    role: &str,
    created_at: &str,
    expires_at: &str,
) -> DbResult<()> {
    c.exec(
        INSERT,
        &[
            token_hash.into(),
            user_id.into(),
            master_hash.is_some().into(),
            master_hash.into(),
            role.into(),
            created_at.into(),
            expires_at.into(),
        ],
    )?;
    Ok(())
}

/// The session, if it exists and has not expired at `now` (ISO-8601). A user session whose
/// user is gone cannot exist (ON DELETE CASCADE); the join takes the user's current role.
const LIVE: &str = "SELECT s.is_master, s.master_hash, s.user_id, u.user_role, s.expires_at,
    u.models FROM ui_sessions s LEFT JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = ?1 AND s.expires_at > ?2";

pub fn live<C: Handle + ?Sized>(
    c: &C,
    token_hash: &str,
    now: &str,
) -> DbResult<Option<SessionRow>> {
    c.one(LIVE, &[token_hash.into(), now.into()], |r| {
        Ok(SessionRow {
            is_master: r.get(0)?,
            master_hash: r.get(1)?,
            user_id: r.get(2)?,
            user_role: r.get(3)?,
            expires_at: r.get(4)?,
            user_models: r.get::<Option<String>>(5)?.map(|m| super::json_list(&m)),
        })
    })
}

const DELETE: &str = "DELETE FROM ui_sessions WHERE token_hash = ?1";

pub fn delete<C: Handle + ?Sized>(c: &C, token_hash: &str) -> DbResult<usize> {
    c.exec(DELETE, &[token_hash.into()])
}

const DELETE_FOR_USER: &str = "DELETE FROM ui_sessions WHERE user_id = ?1";

/// Ends every session of a user (their password changed).
pub fn delete_for_user<C: Handle + ?Sized>(c: &C, user_id: &str) -> DbResult<usize> {
    c.exec(DELETE_FOR_USER, &[user_id.into()])
}

const DELETE_EXPIRED: &str = "DELETE FROM ui_sessions WHERE expires_at <= ?1";

/// Removes sessions that expired before `now` (run at each login; lookups ignore them anyway).
pub fn delete_expired<C: Handle + ?Sized>(c: &C, now: &str) -> DbResult<usize> {
    c.exec(DELETE_EXPIRED, &[now.into()])
}

const USER_BY_EMAIL: &str = "SELECT id, user_role, password_hash FROM users
    WHERE lower(email) = lower(?1)";

/// (user_id, user_role, password_hash) of every user with this email (the unique index allows
/// one; an imported database may hold more, and the caller then refuses the login).
pub fn login_candidates<C: Handle + ?Sized>(
    c: &C,
    email: &str,
) -> DbResult<Vec<(String, String, Option<String>)>> {
    c.all(USER_BY_EMAIL, &[email.into()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    #[test]
    fn live_ignores_expired_and_follows_the_user() {
        let mut c = Connection::open_in_memory().expect("mem");
        c.pragma_update(None, "foreign_keys", "ON").expect("fk");
        crate::db::migrate::migrate(&mut c).expect("migrate");
        c.execute(
            "INSERT INTO users (id, email, user_role, created_at, updated_at)
             VALUES ('u1', 'u1@x', 'internal_user', 't', 't')",
            [],
        )
        .expect("user");
        insert(
            &c,
            "h1",
            Some("u1"),
            None,
            "internal_user",
            "2026-01-01T00:00:00.000Z",
            "2026-01-02T00:00:00.000Z",
        )
        .expect("ins");
        insert(
            &c,
            "h2",
            None,
            Some("mh"),
            "proxy_admin",
            "2026-01-01T00:00:00.000Z",
            "2026-01-02T00:00:00.000Z",
        )
        .expect("ins");
        let s = live(&c, "h1", "2026-01-01T12:00:00.000Z")
            .expect("q")
            .expect("some");
        assert_eq!(s.user_role.as_deref(), Some("internal_user"));
        assert!(!s.is_master);
        let m = live(&c, "h2", "2026-01-01T12:00:00.000Z")
            .expect("q")
            .expect("some");
        assert!(m.is_master);
        assert_eq!(m.master_hash.as_deref(), Some("mh"));
        assert!(live(&c, "h1", "2026-01-02T00:00:00.000Z")
            .expect("q")
            .is_none());
        c.execute(
            "UPDATE users SET user_role = 'proxy_admin_viewer' WHERE id = 'u1'",
            [],
        )
        .expect("role");
        let s = live(&c, "h1", "2026-01-01T12:00:00.000Z")
            .expect("q")
            .expect("some");
        assert_eq!(s.user_role.as_deref(), Some("proxy_admin_viewer"));
        c.execute("DELETE FROM users WHERE id = 'u1'", [])
            .expect("del");
        assert!(live(&c, "h1", "2026-01-01T12:00:00.000Z")
            .expect("q")
            .is_none());
        assert_eq!(
            delete_expired(&c, "2026-01-03T00:00:00.000Z").expect("gc"),
            1
        );
        // A session must name a user or be a master session.
        assert!(insert(&c, "h3", None, None, "x", "a", "b").is_err());
    }
}
