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

const INSERT_MIN: &str = "INSERT INTO users (id, email, user_role, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?4)";

/// Creates a user with defaults (used when a member is added by email or id that does not
/// exist yet, as LiteLLM does). The caller maps a UNIQUE violation to 409.
pub fn insert_minimal(
    c: &Connection,
    id: &str,
    email: Option<&str>,
    role: &str,
) -> rusqlite::Result<()> {
    c.prepare_cached(INSERT_MIN)?
        .execute(rusqlite::params![id, email, role, crate::util::now_iso()])?;
    Ok(())
}
