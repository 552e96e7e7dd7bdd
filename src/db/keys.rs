//! Key queries (api_keys). One fn per query. THE key-check statement lives in `key_check.rs`.

use crate::hierarchy::Allowance;
use crate::{allowance_columns, allowance_set, allowance_values};
use rusqlite::{params, params_from_iter, types::ToSql, Connection};

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
    pub allowance: Allowance,
    pub metadata: serde_json::Value,
    pub blocked: bool,
    pub created_by: Option<String>,
}

const INSERT: &str = concat!(
    "INSERT INTO api_keys (",
    allowance_columns!(),
    ", token, key_name, key_alias, models, aliases, team_id, user_id, organization_id, expires,
    metadata, blocked, created_at, updated_at, created_by, updated_by) VALUES (",
    allowance_values!(),
    ", ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?19, ?20, ?20)"
);

/// Inserts a key. A UNIQUE violation (token or alias) is the caller's 409.
pub fn insert(c: &Connection, k: &NewKey) -> rusqlite::Result<()> {
    write(c, INSERT, &k.token, k, k.created_by.as_deref()).map(|_| ())
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

/// The columns `key_rec` reads, for `SELECT {..} FROM api_keys`.
macro_rules! key_columns {
    () => {
        concat!(
            "token, key_name, key_alias, models, aliases, team_id, user_id, organization_id, \
             expires, metadata, blocked, spend, created_at, updated_at, created_by, updated_by, ",
            allowance_columns!()
        )
    };
}

/// The same columns of `api_keys k` (for statements that join).
const K_COLUMNS: &str = "k.token, k.key_name, k.key_alias, k.models, k.aliases, k.team_id,
    k.user_id, k.organization_id, k.expires, k.metadata, k.blocked, k.spend, k.created_at,
    k.updated_at, k.created_by, k.updated_by, k.max_budget, k.soft_budget, k.budget_duration,
    k.budget_reset_at, k.tpm_limit, k.rpm_limit, k.max_parallel_requests";

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
            metadata: super::json_obj(&r.get::<_, String>(9)?),
            blocked: r.get::<_, i64>(10)? != 0,
            created_by: r.get(14)?,
            allowance: Allowance::from_row(r, 16)?,
        },
        spend: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        updated_by: r.get(15)?,
    })
}

const BY_TOKEN: &str = concat!("SELECT ", key_columns!(), " FROM api_keys WHERE token = ?1");

pub fn by_token(c: &Connection, token: &str) -> rusqlite::Result<Option<KeyRec>> {
    super::rows::one(c, BY_TOKEN, [token], key_rec)
}

const BY_ALIAS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE key_alias = ?1"
);

pub fn by_alias(c: &Connection, alias: &str) -> rusqlite::Result<Option<KeyRec>> {
    super::rows::one(c, BY_ALIAS, [alias], key_rec)
}

const UPDATE: &str = concat!(
    "UPDATE api_keys SET ",
    allowance_set!(),
    ", token = ?8, key_name = ?9, key_alias = ?10, models = ?11, aliases = ?12, team_id = ?13,
    user_id = ?14, organization_id = ?15, expires = ?16, metadata = ?17, blocked = ?18,
    updated_at = ?19, updated_by = ?20 WHERE token = ?21"
);

/// Writes every mutable column of the key stored under `token` back (handlers load, change in
/// Rust, save). `k.token` may differ from `token` (regenerate).
pub fn save(
    c: &Connection,
    token: &str,
    k: &NewKey,
    updated_by: Option<&str>,
) -> rusqlite::Result<usize> {
    write(c, UPDATE, token, k, updated_by)
}

/// Runs INSERT or UPDATE: `?1`..`?7` the allowance, `?8`..`?18` the key's columns, `?19` now,
/// `?20` who, `?21` the stored token (UPDATE only; INSERT passes the new one).
fn write(
    c: &Connection,
    sql: &str,
    token: &str,
    k: &NewKey,
    by: Option<&str>,
) -> rusqlite::Result<usize> {
    let (models, aliases) = (super::to_json(&k.models), super::obj_text(&k.aliases));
    let (metadata, blocked) = (super::obj_text(&k.metadata), k.blocked as i64);
    let now = crate::util::now_iso();
    let own: [&dyn ToSql; 14] = [
        &k.token,
        &k.key_name,
        &k.key_alias,
        &models,
        &aliases,
        &k.team_id,
        &k.user_id,
        &k.organization_id,
        &k.expires,
        &metadata,
        &blocked,
        &now,
        &by,
        &token,
    ];
    let params = k.allowance.params_then(&own);
    // INSERT names ?1..?20 only; SQLite refuses a parameter the statement does not have.
    let mut st = c.prepare_cached(sql)?;
    let n = st.parameter_count();
    st.execute(params_from_iter(params.into_iter().take(n)))
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
        "SELECT {K_COLUMNS} FROM api_keys k WHERE {SCOPE} ORDER BY k.created_at, k.token \
         LIMIT ?7 OFFSET ?8"
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

/// The columns `key_summary` reads.
macro_rules! summary_select {
    () => {
        "SELECT token, key_name, key_alias, models, spend, max_budget, expires, user_id, team_id,
        organization_id, blocked, created_at FROM api_keys"
    };
}

const SUMMARIES_BY_TEAM: &str = concat!(
    summary_select!(),
    " WHERE team_id = ?1 ORDER BY created_at, token"
);

pub fn summaries_by_team(c: &Connection, team_id: &str) -> rusqlite::Result<Vec<KeySummary>> {
    super::rows::all(c, SUMMARIES_BY_TEAM, [team_id], key_summary)
}

const SUMMARIES_BY_USER: &str = concat!(
    summary_select!(),
    " WHERE user_id = ?1 ORDER BY created_at, token"
);

pub fn summaries_by_user(c: &Connection, user_id: &str) -> rusqlite::Result<Vec<KeySummary>> {
    super::rows::all(c, SUMMARIES_BY_USER, [user_id], key_summary)
}
