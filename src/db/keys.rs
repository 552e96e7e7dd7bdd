//! Key queries (api_keys). One fn per query. THE key-check statement lives in `key_check.rs`.

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

/// Inserts a key. A UNIQUE violation (token or alias) is the caller's 409.
pub fn insert(c: &Connection, k: &NewKey) -> rusqlite::Result<()> {
    c.prepare_cached(INSERT)?.execute(params![
        k.token,
        k.key_name,
        k.key_alias,
        super::to_json(&k.models),
        super::obj_text(&k.aliases),
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
        super::obj_text(&k.metadata),
        k.blocked as i64,
        crate::util::now_iso(),
        k.created_by,
    ])?;
    Ok(())
}

/// A stored key as the management endpoints show it (never the raw key).
#[derive(Debug, Clone, Default)]
pub struct KeyRec {
    pub k: NewKey,
    pub spend: f64,
    pub created_at: String,
    pub updated_at: String,
    pub updated_by: Option<String>,
}

pub const COLUMNS: &str = "token, key_name, key_alias, models, aliases, team_id, user_id,
    organization_id, expires, max_budget, soft_budget, budget_duration, budget_reset_at,
    tpm_limit, rpm_limit, max_parallel_requests, metadata, blocked, spend, created_at, updated_at,
    created_by, updated_by";

pub fn key_rec(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRec> {
    Ok(KeyRec {
        k: NewKey {
            token: r.get(0)?,
            key_name: r.get(1)?,
            key_alias: r.get(2)?,
            models: super::json_list(&r.get::<_, String>(3)?),
            aliases: super::json_obj(&r.get::<_, String>(4)?),
            team_id: r.get(5)?,
            user_id: r.get(6)?,
            organization_id: r.get(7)?,
            expires: r.get(8)?,
            max_budget: r.get(9)?,
            soft_budget: r.get(10)?,
            budget_duration: r.get(11)?,
            budget_reset_at: r.get(12)?,
            tpm_limit: r.get(13)?,
            rpm_limit: r.get(14)?,
            max_parallel_requests: r.get(15)?,
            metadata: super::json_obj(&r.get::<_, String>(16)?),
            blocked: r.get::<_, i64>(17)? != 0,
            created_by: r.get(21)?,
        },
        spend: r.get(18)?,
        created_at: r.get(19)?,
        updated_at: r.get(20)?,
        updated_by: r.get(22)?,
    })
}

const BY_TOKEN: &str = "SELECT token, key_name, key_alias, models, aliases, team_id, user_id,
    organization_id, expires, max_budget, soft_budget, budget_duration, budget_reset_at,
    tpm_limit, rpm_limit, max_parallel_requests, metadata, blocked, spend, created_at, updated_at,
    created_by, updated_by FROM api_keys WHERE token = ?1";

pub fn by_token(c: &Connection, token: &str) -> rusqlite::Result<Option<KeyRec>> {
    use rusqlite::OptionalExtension;
    c.prepare_cached(BY_TOKEN)?
        .query_row([token], key_rec)
        .optional()
}

const BY_ALIAS: &str = "SELECT token, key_name, key_alias, models, aliases, team_id, user_id,
    organization_id, expires, max_budget, soft_budget, budget_duration, budget_reset_at,
    tpm_limit, rpm_limit, max_parallel_requests, metadata, blocked, spend, created_at, updated_at,
    created_by, updated_by FROM api_keys WHERE key_alias = ?1";

pub fn by_alias(c: &Connection, alias: &str) -> rusqlite::Result<Option<KeyRec>> {
    use rusqlite::OptionalExtension;
    c.prepare_cached(BY_ALIAS)?
        .query_row([alias], key_rec)
        .optional()
}

const UPDATE: &str = "UPDATE api_keys SET key_alias = ?2, models = ?3, aliases = ?4, team_id = ?5,
    user_id = ?6, organization_id = ?7, expires = ?8, max_budget = ?9, soft_budget = ?10,
    budget_duration = ?11, budget_reset_at = ?12, tpm_limit = ?13, rpm_limit = ?14,
    max_parallel_requests = ?15, metadata = ?16, blocked = ?17, token = ?18, key_name = ?19,
    updated_at = ?20, updated_by = ?21 WHERE token = ?1";

/// Writes every mutable column of the key stored under `token` back (handlers load, change in
/// Rust, save). `k.token` may differ from `token` (regenerate).
pub fn save(
    c: &Connection,
    token: &str,
    k: &NewKey,
    updated_by: Option<&str>,
) -> rusqlite::Result<usize> {
    c.prepare_cached(UPDATE)?.execute(params![
        token,
        k.key_alias,
        super::to_json(&k.models),
        super::obj_text(&k.aliases),
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
        super::obj_text(&k.metadata),
        k.blocked as i64,
        k.token,
        k.key_name,
        crate::util::now_iso(),
        updated_by,
    ])
}

const DELETE: &str = "DELETE FROM api_keys WHERE token = ?1";

pub fn delete(c: &Connection, token: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE)?.execute([token])
}

/// Filters for `/key/list`. `viewer = None` means the caller sees every key; otherwise only
/// keys the user owns, keys of teams they administer, and keys of teams in orgs they
/// administer.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    pub key_alias: Option<String>,
    pub viewer: Option<String>,
    pub all: bool,
}

const SCOPE: &str = "(?4 = 1 OR k.user_id = ?5
        OR k.team_id IN (SELECT team_id FROM team_members WHERE user_id = ?5 AND role = 'admin')
        OR k.team_id IN (SELECT t.id FROM teams t JOIN organization_members om
                ON om.organization_id = t.organization_id
                WHERE om.user_id = ?5 AND om.user_role = 'org_admin'))
    AND (?1 IS NULL OR k.team_id = ?1)
    AND (?2 IS NULL OR k.organization_id = ?2)
    AND (?3 IS NULL OR k.user_id = ?3)
    AND (?6 IS NULL OR k.key_alias = ?6)";

pub fn list(
    c: &Connection,
    f: &ListFilter,
    limit: i64,
    offset: i64,
) -> rusqlite::Result<(Vec<KeyRec>, i64)> {
    let count_sql = format!("SELECT count(*) FROM api_keys k WHERE {SCOPE}");
    let list_sql = format!(
        "SELECT {} FROM api_keys k WHERE {SCOPE} ORDER BY k.created_at, k.token LIMIT ?7 OFFSET ?8",
        COLUMNS
            .split(',')
            .map(|s| format!("k.{}", s.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let all = f.all as i64;
    let total: i64 = c.prepare_cached(&count_sql)?.query_row(
        params![
            f.team_id,
            f.organization_id,
            f.user_id,
            all,
            f.viewer,
            f.key_alias
        ],
        |r| r.get(0),
    )?;
    let mut st = c.prepare_cached(&list_sql)?;
    let rows = st.query_map(
        params![
            f.team_id,
            f.organization_id,
            f.user_id,
            all,
            f.viewer,
            f.key_alias,
            limit,
            offset
        ],
        key_rec,
    )?;
    Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, total))
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
    FROM api_keys WHERE team_id = ?1 ORDER BY created_at, token";

pub fn summaries_by_team(c: &Connection, team_id: &str) -> rusqlite::Result<Vec<KeySummary>> {
    let mut st = c.prepare_cached(SUMMARIES_BY_TEAM)?;
    let rows = st.query_map([team_id], key_summary)?;
    rows.collect()
}

const SUMMARIES_BY_USER: &str = "SELECT token, key_name, key_alias, models, spend, max_budget,
    expires, user_id, team_id, organization_id, blocked, created_at
    FROM api_keys WHERE user_id = ?1 ORDER BY created_at, token";

pub fn summaries_by_user(c: &Connection, user_id: &str) -> rusqlite::Result<Vec<KeySummary>> {
    let mut st = c.prepare_cached(SUMMARIES_BY_USER)?;
    let rows = st.query_map([user_id], key_summary)?;
    rows.collect()
}
