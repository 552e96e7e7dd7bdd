//! Key queries (api_keys). One fn per query. THE key-check statement lives in `key_check.rs`.
//! On the engine-neutral `handle::Handle` (issue 14).

use super::handle::{allowance, allowance_args, DbResult, Handle, Row};
use super::sql::Arg;
use crate::hierarchy::Allowance;
use crate::{allowance_columns, allowance_set, allowance_values};

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
pub fn insert<C: Handle + ?Sized>(c: &C, k: &NewKey) -> DbResult<()> {
    write(c, INSERT, 20, &k.token, k, k.created_by.as_deref()).map(|_| ())
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

pub fn key_rec(r: &Row<'_, '_>) -> DbResult<KeyRec> {
    Ok(KeyRec {
        k: NewKey {
            token: r.get(0)?,
            key_name: r.get(1)?,
            key_alias: r.get(2)?,
            models: super::json_list(&r.get::<String>(3)?),
            aliases: super::json_obj(&r.get::<String>(4)?),
            team_id: r.get(5)?,
            user_id: r.get(6)?,
            organization_id: r.get(7)?,
            expires: r.get(8)?,
            metadata: super::json_obj(&r.get::<String>(9)?),
            blocked: r.get(10)?,
            created_by: r.get(14)?,
            allowance: allowance(r, 16)?,
        },
        spend: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
        updated_by: r.get(15)?,
    })
}

const BY_TOKEN: &str = concat!("SELECT ", key_columns!(), " FROM api_keys WHERE token = ?1");

pub fn by_token<C: Handle + ?Sized>(c: &C, token: &str) -> DbResult<Option<KeyRec>> {
    c.one(BY_TOKEN, &[token.into()], key_rec)
}

const BY_ALIAS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM api_keys WHERE key_alias = ?1"
);

pub fn by_alias<C: Handle + ?Sized>(c: &C, alias: &str) -> DbResult<Option<KeyRec>> {
    c.one(BY_ALIAS, &[alias.into()], key_rec)
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
pub fn save<C: Handle + ?Sized>(
    c: &C,
    token: &str,
    k: &NewKey,
    updated_by: Option<&str>,
) -> DbResult<usize> {
    write(c, UPDATE, 21, token, k, updated_by)
}

/// Runs INSERT or UPDATE: `?1`..`?7` the allowance, `?8`..`?18` the key's columns, `?19` now,
/// `?20` who, `?21` the stored token (UPDATE only; INSERT passes the new one).
/// `n`: the statement's parameter count (INSERT names `?1`..`?20`, UPDATE `?21` too; both
/// engines refuse a parameter the statement does not have).
fn write<C: Handle + ?Sized>(
    c: &C,
    sql: &str,
    n: usize,
    token: &str,
    k: &NewKey,
    by: Option<&str>,
) -> DbResult<usize> {
    let (models, aliases) = (super::to_json(&k.models), super::obj_text(&k.aliases));
    let metadata = super::obj_text(&k.metadata);
    let now = crate::util::now_iso();
    let a = allowance_args(&k.allowance);
    let args: [Arg<'_>; 21] = [
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
        a[5],
        a[6],
        (&k.token).into(),
        (&k.key_name).into(),
        (&k.key_alias).into(),
        (&models).into(),
        (&aliases).into(),
        (&k.team_id).into(),
        (&k.user_id).into(),
        (&k.organization_id).into(),
        (&k.expires).into(),
        (&metadata).into(),
        k.blocked.into(),
        (&now).into(),
        by.into(),
        token.into(),
    ];
    c.exec(sql, &args[..n])
}

const DELETE: &str = "DELETE FROM api_keys WHERE token = ?1";

pub fn delete<C: Handle + ?Sized>(c: &C, token: &str) -> DbResult<usize> {
    c.exec(DELETE, &[token.into()])
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
    AND (CAST(?1 AS TEXT) IS NULL OR k.team_id = ?1)
    AND (CAST(?2 AS TEXT) IS NULL OR k.organization_id = ?2)
    AND (CAST(?3 AS TEXT) IS NULL OR k.user_id = ?3)
    AND (CAST(?6 AS TEXT) IS NULL OR k.key_alias = ?6)";

pub fn list<C: Handle + ?Sized>(
    c: &C,
    f: &ListFilter,
    limit: i64,
    offset: i64,
) -> DbResult<(Vec<KeyRec>, i64)> {
    let count_sql = format!("SELECT count(*) FROM api_keys k WHERE {SCOPE}");
    let list_sql = format!(
        "SELECT {K_COLUMNS} FROM api_keys k WHERE {SCOPE} ORDER BY k.created_at, k.token \
         LIMIT ?7 OFFSET ?8"
    );
    let args: [Arg<'_>; 8] = [
        (&f.team_id).into(),
        (&f.organization_id).into(),
        (&f.user_id).into(),
        f.all.into(),
        (&f.viewer).into(),
        (&f.key_alias).into(),
        limit.into(),
        offset.into(),
    ];
    let total: i64 = c.one(&count_sql, &args[..6], |r| r.get(0))?.unwrap_or(0);
    let rows = c.all(&list_sql, &args, key_rec)?;
    Ok((rows, total))
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

fn key_summary(r: &Row<'_, '_>) -> DbResult<KeySummary> {
    Ok(KeySummary {
        token: r.get(0)?,
        key_name: r.get(1)?,
        key_alias: r.get(2)?,
        models: super::json_list(&r.get::<String>(3)?),
        spend: r.get(4)?,
        max_budget: r.get(5)?,
        expires: r.get(6)?,
        user_id: r.get(7)?,
        team_id: r.get(8)?,
        organization_id: r.get(9)?,
        blocked: r.get(10)?,
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

pub fn summaries_by_team<C: Handle + ?Sized>(c: &C, team_id: &str) -> DbResult<Vec<KeySummary>> {
    c.all(SUMMARIES_BY_TEAM, &[team_id.into()], key_summary)
}

const SUMMARIES_BY_USER: &str = concat!(
    summary_select!(),
    " WHERE user_id = ?1 ORDER BY created_at, token"
);

pub fn summaries_by_user<C: Handle + ?Sized>(c: &C, user_id: &str) -> DbResult<Vec<KeySummary>> {
    c.all(SUMMARIES_BY_USER, &[user_id.into()], key_summary)
}
