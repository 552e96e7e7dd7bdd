//! User queries. One fn per query.

use rusqlite::{Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: Option<String>,
    pub user_role: String,
    pub password_hash: Option<String>,
    pub models: Vec<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

pub const COLUMNS: &str = "id, email, user_role, password_hash, models, spend, max_budget,
    soft_budget, budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests,
    metadata, created_at, updated_at";

pub fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        email: r.get(1)?,
        user_role: r.get(2)?,
        password_hash: r.get(3)?,
        models: super::json_list(&r.get::<_, String>(4)?),
        spend: r.get(5)?,
        max_budget: r.get(6)?,
        soft_budget: r.get(7)?,
        budget_duration: r.get(8)?,
        budget_reset_at: r.get(9)?,
        tpm_limit: r.get(10)?,
        rpm_limit: r.get(11)?,
        max_parallel_requests: r.get(12)?,
        metadata: super::json_obj(&r.get::<_, String>(13)?),
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
    })
}

const GET: &str = "SELECT id, email, user_role, password_hash, models, spend, max_budget,
    soft_budget, budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests,
    metadata, created_at, updated_at FROM users WHERE id = ?1";

pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<UserRow>> {
    c.prepare_cached(GET)?.query_row([id], user_row).optional()
}

const IDS_BY_EMAIL: &str = "SELECT id FROM users WHERE lower(email) = lower(?1)";

/// Ids of users with this email (case-insensitive). The unique index allows at most one, but
/// imported databases may hold more: callers treat more than one as ambiguous (400).
pub fn ids_by_email(c: &Connection, email: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(IDS_BY_EMAIL)?;
    let rows = st.query_map([email], |r| r.get(0))?;
    rows.collect()
}

// ---------------------------------------------------------------------------------------------
// Writes

/// Columns a user write sets (everything but id, spend and the creation stamp).
#[derive(Debug, Clone, Default)]
pub struct UserFields {
    pub email: Option<String>,
    pub user_role: String,
    pub password_hash: Option<String>,
    pub models: Vec<String>,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub metadata: serde_json::Value,
}

impl UserFields {
    /// The writable part of a stored user (start of an update).
    pub fn of(u: &UserRow) -> UserFields {
        UserFields {
            email: u.email.clone(),
            user_role: u.user_role.clone(),
            password_hash: u.password_hash.clone(),
            models: u.models.clone(),
            max_budget: u.max_budget,
            soft_budget: u.soft_budget,
            budget_duration: u.budget_duration.clone(),
            budget_reset_at: u.budget_reset_at.clone(),
            tpm_limit: u.tpm_limit,
            rpm_limit: u.rpm_limit,
            max_parallel_requests: u.max_parallel_requests,
            metadata: u.metadata.clone(),
        }
    }
}

const INSERT: &str = "INSERT INTO users (id, email, user_role, password_hash, models, max_budget,
    soft_budget, budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests,
    metadata, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)";

/// Inserts a user. A duplicate id or email is a UNIQUE violation: the caller's 409.
pub fn insert(c: &Connection, id: &str, f: &UserFields) -> rusqlite::Result<()> {
    c.prepare_cached(INSERT)?.execute(rusqlite::params![
        id,
        f.email,
        f.user_role,
        f.password_hash,
        super::to_json(&f.models),
        f.max_budget,
        f.soft_budget,
        f.budget_duration,
        f.budget_reset_at,
        f.tpm_limit,
        f.rpm_limit,
        f.max_parallel_requests,
        super::obj_text(&f.metadata),
        crate::util::now_iso(),
    ])?;
    Ok(())
}

const UPDATE: &str = "UPDATE users SET email = ?2, user_role = ?3, password_hash = ?4, models = ?5,
    max_budget = ?6, soft_budget = ?7, budget_duration = ?8, budget_reset_at = ?9,
    tpm_limit = ?10, rpm_limit = ?11, max_parallel_requests = ?12, metadata = ?13,
    updated_at = ?14 WHERE id = ?1";

/// Writes every writable column of a user; returns the rows changed (0 = gone). A taken email
/// is a UNIQUE violation: the caller's 409.
pub fn update(c: &Connection, id: &str, f: &UserFields) -> rusqlite::Result<usize> {
    c.prepare_cached(UPDATE)?.execute(rusqlite::params![
        id,
        f.email,
        f.user_role,
        f.password_hash,
        super::to_json(&f.models),
        f.max_budget,
        f.soft_budget,
        f.budget_duration,
        f.budget_reset_at,
        f.tpm_limit,
        f.rpm_limit,
        f.max_parallel_requests,
        super::obj_text(&f.metadata),
        crate::util::now_iso(),
    ])
}

const DELETE_TEAM_BUDGETS: &str = "DELETE FROM budgets WHERE id IN
    (SELECT budget_id FROM team_members WHERE user_id = ?1 AND budget_id IS NOT NULL)";
const DELETE: &str = "DELETE FROM users WHERE id = ?1";

/// Deletes a user with their team-membership budget rows; keys and memberships go by FK cascade.
pub fn delete(c: &Connection, id: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE_TEAM_BUDGETS)?.execute([id])?;
    c.prepare_cached(DELETE)?.execute([id])
}

// ---------------------------------------------------------------------------------------------
// Listing

/// `ids` is a JSON array of user ids, or NULL for no id filter.
const LIST: &str = "SELECT id, email, user_role, password_hash, models, spend, max_budget,
    soft_budget, budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests,
    metadata, created_at, updated_at FROM users
    WHERE (?1 IS NULL OR user_role = ?1)
      AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2)))
    ORDER BY created_at, id LIMIT ?3 OFFSET ?4";

const COUNT: &str = "SELECT count(*) FROM users
    WHERE (?1 IS NULL OR user_role = ?1)
      AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2)))";

/// One page of users, filtered by role and/or ids; and the total matching.
pub fn list(
    c: &Connection,
    role: Option<&str>,
    ids: Option<&[String]>,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<(Vec<UserRow>, i64)> {
    let ids = ids.map(|v| super::to_json(&v));
    let total: i64 = c
        .prepare_cached(COUNT)?
        .query_row(rusqlite::params![role, ids], |r| r.get(0))?;
    let mut st = c.prepare_cached(LIST)?;
    let rows = st
        .query_map(rusqlite::params![role, ids, limit, offset], user_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((rows, total))
}
