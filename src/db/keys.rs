//! Key queries (api_keys). One fn per query. THE key-check statement lives in `auth.rs`.

use rusqlite::{params, Connection};

/// A key to insert. `token` is the SHA-256 hex of the raw key; the raw key is never stored.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub token: String,
    pub key_name: String,
    pub key_alias: Option<String>,
    pub models: Vec<String>,
    pub aliases: serde_json::Value,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub organization_id: Option<String>,
    pub expires: Option<String>,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub metadata: serde_json::Value,
    pub blocked: bool,
    pub created_by: Option<String>,
}

const INSERT: &str = "INSERT INTO api_keys (token, key_name, key_alias, models, aliases, team_id,
    user_id, organization_id, expires, max_budget, soft_budget, budget_duration, budget_reset_at,
    tpm_limit, rpm_limit, max_parallel_requests, metadata, blocked, created_at, updated_at,
    created_by, updated_by)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
    ?19, ?20, ?20)";

/// Inserts a key; returns its row id. A UNIQUE violation (token or alias) is the caller's 409.
pub fn insert(c: &Connection, k: &NewKey) -> rusqlite::Result<i64> {
    let aliases = if k.aliases.is_object() {
        k.aliases.to_string()
    } else {
        "{}".to_string()
    };
    let metadata = if k.metadata.is_object() {
        k.metadata.to_string()
    } else {
        "{}".to_string()
    };
    c.prepare_cached(INSERT)?.execute(params![
        k.token,
        k.key_name,
        k.key_alias,
        super::to_json(&k.models),
        aliases,
        k.team_id,
        k.user_id,
        k.organization_id,
        k.expires,
        k.max_budget,
        k.soft_budget,
        k.budget_duration,
        k.budget_reset_at,
        k.tpm_limit,
        k.rpm_limit,
        k.max_parallel_requests,
        metadata,
        k.blocked as i64,
        crate::util::now_iso(),
        k.created_by,
    ])?;
    Ok(c.last_insert_rowid())
}

// ---------------------------------------------------------------------------------------------
// Key summaries for /team/info and /user/info (never the raw key: it is not stored).

/// What team and user info show of a key.
#[derive(Debug, Clone)]
pub struct KeySummary {
    pub token: String,
    pub key_name: String,
    pub key_alias: Option<String>,
    pub models: Vec<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub expires: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub blocked: bool,
    pub created_at: String,
}

fn key_summary(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeySummary> {
    Ok(KeySummary {
        token: r.get(0)?,
        key_name: r.get(1)?,
        key_alias: r.get(2)?,
        models: super::json_list(&r.get::<_, String>(3)?),
        spend: r.get(4)?,
        max_budget: r.get(5)?,
        expires: r.get(6)?,
        user_id: r.get(7)?,
        team_id: r.get(8)?,
        organization_id: r.get(9)?,
        blocked: r.get::<_, i64>(10)? != 0,
        created_at: r.get(11)?,
    })
}

const SUMMARIES_BY_TEAM: &str = "SELECT token, key_name, key_alias, models, spend, max_budget,
    expires, user_id, team_id, organization_id, blocked, created_at
    FROM api_keys WHERE team_id = ?1 ORDER BY id";

pub fn summaries_by_team(c: &Connection, team_id: &str) -> rusqlite::Result<Vec<KeySummary>> {
    let mut st = c.prepare_cached(SUMMARIES_BY_TEAM)?;
    let rows = st.query_map([team_id], key_summary)?;
    rows.collect()
}

const SUMMARIES_BY_USER: &str = "SELECT token, key_name, key_alias, models, spend, max_budget,
    expires, user_id, team_id, organization_id, blocked, created_at
    FROM api_keys WHERE user_id = ?1 ORDER BY id";

pub fn summaries_by_user(c: &Connection, user_id: &str) -> rusqlite::Result<Vec<KeySummary>> {
    let mut st = c.prepare_cached(SUMMARIES_BY_USER)?;
    let rows = st.query_map([user_id], key_summary)?;
    rows.collect()
}
