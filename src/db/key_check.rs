//! THE key check: one statement (key LEFT JOIN team, org, org budget, user and the two
//! memberships with their budgets), every join on a primary key or unique index, and its row
//! mapping into `KeyRow`, read by named column indices (`col`), plus `KeyRow::state`, the
//! validity of a loaded key as data. Does not word refusals (`error.rs`) nor resolve models
//! (`access::chain`); nothing here caches, so an org's change applies on the next request.

use super::sql::Cols;
use rusqlite::{Connection, OptionalExtension};

/// Everything a request needs to know about its key, loaded by one statement.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub token: String,
    pub key_name: String,
    pub key_alias: Option<String>,
    pub models: Vec<String>,
    /// Raw JSON object text; decoded only when a call needs it (`alias_for`). Empty when the
    /// stored object is empty (`{}`): no allocation for the common case.
    pub aliases: String,
    pub team_id: Option<String>,
    pub user_id: Option<String>,
    pub organization_id: Option<String>,
    pub expires: Option<String>,
    pub blocked: bool,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub team: Option<TeamPart>,
    pub org: Option<OrgPart>,
    pub user: Option<UserPart>,
    pub team_member: Option<MemberPart>,
    pub org_member: Option<MemberPart>,
    /// `reach = 'calls'` (schema 0005): issued or regenerated for its owner by someone else
    /// below proxy admin, who saw the raw key. Such a key never acts with its owner's global
    /// role or memberships: model calls within its chain and reading itself only
    /// (`access::authority`).
    pub calls_only: bool,
    /// The models' generation (schema 0008) read with the key: the catalog in memory is
    /// reloaded when it is older (`access::registry`), so a model added through another
    /// instance is callable on the next request.
    pub models_generation: i64,
}

#[derive(Debug, Clone)]
pub struct TeamPart {
    pub id: String,
    pub alias: Option<String>,
    pub organization_id: Option<String>,
    pub models: Vec<String>,
    pub blocked: bool,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    /// The team's `model_aliases` (schema 0006), raw JSON object text decoded only when a call
    /// needs it (`KeyRow::alias_for`); empty when the stored object is `{}`.
    pub model_aliases: String,
}

#[derive(Debug, Clone)]
pub struct OrgPart {
    pub id: String,
    pub models: Vec<String>,
    pub blocked: bool,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct UserPart {
    pub id: String,
    /// The stored `user_role` text; `auth` parses it (an unknown one counts as a viewer).
    pub user_role: String,
    pub models: Vec<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct MemberPart {
    pub role: String,
    pub spend: f64,
    pub max_budget: Option<f64>,
}

/// The key check: one statement, every join on a primary key or unique index.
/// A key with a team takes its team's organization; a key without one, its own.
/// Each column's alias is its name in `col` (lowercase); a test holds the two together.
pub const KEY_CHECK: &str = "SELECT
    k.key_name k_key_name, k.key_alias k_key_alias, k.models k_models,
    k.aliases k_aliases, k.team_id k_team_id, k.user_id k_user_id,
    k.organization_id k_organization_id, k.expires k_expires, k.blocked k_blocked,
    k.spend k_spend, k.max_budget k_max_budget, k.tpm_limit k_tpm_limit,
    k.rpm_limit k_rpm_limit, k.max_parallel_requests k_max_parallel,
    t.id t_id, t.alias t_alias, t.organization_id t_organization_id, t.models t_models,
    t.blocked t_blocked, t.spend t_spend, t.max_budget t_max_budget, t.tpm_limit t_tpm_limit,
    t.rpm_limit t_rpm_limit, t.max_parallel_requests t_max_parallel,
    o.id o_id, o.models o_models, o.blocked o_blocked, o.spend o_spend,
    ob.max_budget o_max_budget, ob.tpm_limit o_tpm_limit, ob.rpm_limit o_rpm_limit,
    ob.max_parallel_requests o_max_parallel,
    u.id u_id, u.user_role u_user_role, u.models u_models, u.spend u_spend,
    u.max_budget u_max_budget, u.tpm_limit u_tpm_limit, u.rpm_limit u_rpm_limit,
    u.max_parallel_requests u_max_parallel,
    tm.role tm_role, tm.spend tm_spend, tmb.max_budget tm_max_budget,
    om.user_role om_role, om.spend om_spend, omb.max_budget om_max_budget,
    k.reach k_reach, t.model_aliases t_model_aliases,
    (SELECT g.generation FROM model_generation g WHERE g.id = 1) m_generation
FROM api_keys k
LEFT JOIN teams t ON t.id = k.team_id
LEFT JOIN organizations o
       ON o.id = CASE WHEN k.team_id IS NULL THEN k.organization_id ELSE t.organization_id END
LEFT JOIN budgets ob ON ob.id = o.budget_id
LEFT JOIN users u ON u.id = k.user_id
LEFT JOIN team_members tm ON tm.team_id = k.team_id AND tm.user_id = k.user_id
LEFT JOIN budgets tmb ON tmb.id = tm.budget_id
LEFT JOIN organization_members om ON om.organization_id = o.id AND om.user_id = k.user_id
LEFT JOIN budgets omb ON omb.id = om.budget_id
WHERE k.token = ?1";

/// The position of each column of `KEY_CHECK`, by its alias. Read by index, not by name: a
/// name lookup scans every name per column on the hottest path.
#[allow(missing_docs)]
pub mod col {
    pub const K_KEY_NAME: usize = 0;
    pub const K_KEY_ALIAS: usize = 1;
    pub const K_MODELS: usize = 2;
    pub const K_ALIASES: usize = 3;
    pub const K_TEAM_ID: usize = 4;
    pub const K_USER_ID: usize = 5;
    pub const K_ORGANIZATION_ID: usize = 6;
    pub const K_EXPIRES: usize = 7;
    pub const K_BLOCKED: usize = 8;
    pub const K_SPEND: usize = 9;
    pub const K_MAX_BUDGET: usize = 10;
    pub const K_TPM_LIMIT: usize = 11;
    pub const K_RPM_LIMIT: usize = 12;
    pub const K_MAX_PARALLEL: usize = 13;
    pub const T_ID: usize = 14;
    pub const T_ALIAS: usize = 15;
    pub const T_ORGANIZATION_ID: usize = 16;
    pub const T_MODELS: usize = 17;
    pub const T_BLOCKED: usize = 18;
    pub const T_SPEND: usize = 19;
    pub const T_MAX_BUDGET: usize = 20;
    pub const T_TPM_LIMIT: usize = 21;
    pub const T_RPM_LIMIT: usize = 22;
    pub const T_MAX_PARALLEL: usize = 23;
    pub const O_ID: usize = 24;
    pub const O_MODELS: usize = 25;
    pub const O_BLOCKED: usize = 26;
    pub const O_SPEND: usize = 27;
    pub const O_MAX_BUDGET: usize = 28;
    pub const O_TPM_LIMIT: usize = 29;
    pub const O_RPM_LIMIT: usize = 30;
    pub const O_MAX_PARALLEL: usize = 31;
    pub const U_ID: usize = 32;
    pub const U_USER_ROLE: usize = 33;
    pub const U_MODELS: usize = 34;
    pub const U_SPEND: usize = 35;
    pub const U_MAX_BUDGET: usize = 36;
    pub const U_TPM_LIMIT: usize = 37;
    pub const U_RPM_LIMIT: usize = 38;
    pub const U_MAX_PARALLEL: usize = 39;
    pub const TM_ROLE: usize = 40;
    pub const TM_SPEND: usize = 41;
    pub const TM_MAX_BUDGET: usize = 42;
    pub const OM_ROLE: usize = 43;
    pub const OM_SPEND: usize = 44;
    pub const OM_MAX_BUDGET: usize = 45;
    pub const K_REACH: usize = 46;
    pub const T_MODEL_ALIASES: usize = 47;
    pub const M_GENERATION: usize = 48;
    /// Every column, by alias, in statement order (the test checks the statement against it).
    pub const ALL: &[(usize, &str)] = &[
        (K_KEY_NAME, "k_key_name"),
        (K_KEY_ALIAS, "k_key_alias"),
        (K_MODELS, "k_models"),
        (K_ALIASES, "k_aliases"),
        (K_TEAM_ID, "k_team_id"),
        (K_USER_ID, "k_user_id"),
        (K_ORGANIZATION_ID, "k_organization_id"),
        (K_EXPIRES, "k_expires"),
        (K_BLOCKED, "k_blocked"),
        (K_SPEND, "k_spend"),
        (K_MAX_BUDGET, "k_max_budget"),
        (K_TPM_LIMIT, "k_tpm_limit"),
        (K_RPM_LIMIT, "k_rpm_limit"),
        (K_MAX_PARALLEL, "k_max_parallel"),
        (T_ID, "t_id"),
        (T_ALIAS, "t_alias"),
        (T_ORGANIZATION_ID, "t_organization_id"),
        (T_MODELS, "t_models"),
        (T_BLOCKED, "t_blocked"),
        (T_SPEND, "t_spend"),
        (T_MAX_BUDGET, "t_max_budget"),
        (T_TPM_LIMIT, "t_tpm_limit"),
        (T_RPM_LIMIT, "t_rpm_limit"),
        (T_MAX_PARALLEL, "t_max_parallel"),
        (O_ID, "o_id"),
        (O_MODELS, "o_models"),
        (O_BLOCKED, "o_blocked"),
        (O_SPEND, "o_spend"),
        (O_MAX_BUDGET, "o_max_budget"),
        (O_TPM_LIMIT, "o_tpm_limit"),
        (O_RPM_LIMIT, "o_rpm_limit"),
        (O_MAX_PARALLEL, "o_max_parallel"),
        (U_ID, "u_id"),
        (U_USER_ROLE, "u_user_role"),
        (U_MODELS, "u_models"),
        (U_SPEND, "u_spend"),
        (U_MAX_BUDGET, "u_max_budget"),
        (U_TPM_LIMIT, "u_tpm_limit"),
        (U_RPM_LIMIT, "u_rpm_limit"),
        (U_MAX_PARALLEL, "u_max_parallel"),
        (TM_ROLE, "tm_role"),
        (TM_SPEND, "tm_spend"),
        (TM_MAX_BUDGET, "tm_max_budget"),
        (OM_ROLE, "om_role"),
        (OM_SPEND, "om_spend"),
        (OM_MAX_BUDGET, "om_max_budget"),
        (K_REACH, "k_reach"),
        (T_MODEL_ALIASES, "t_model_aliases"),
        (M_GENERATION, "m_generation"),
    ];
}

/// Runs THE key-check statement (through the connection's statement cache; the per-request
/// check runs it on the hot connection's own prepared statement: `load_key_hot`).
pub fn load_key(c: &Connection, token: &str) -> rusqlite::Result<Option<KeyRow>> {
    let k = c
        .prepare_cached(KEY_CHECK)?
        .query_row([token], |r| key_row(r))
        .optional()?;
    Ok(k.map(|k| with_token(k, token.to_string())))
}

/// THE key check on the hot connection's prepared statement (`db::Hot`: no lookup of the
/// statement by its text). The row's `token` is left empty: the caller owns the token it
/// found the row by and moves it in (`auth::check_presented`).
pub fn load_key_hot(hot: &mut super::Hot, token: &str) -> rusqlite::Result<Option<KeyRow>> {
    hot.key_check()?
        .query_row([token], |r| key_row(r))
        .optional()
}

/// THE key-check statement through the engine-neutral handle (management reads of a key's
/// whole chain, e.g. `/key/info`; the per-request check uses `load_key_hot` / `load_key_pg`).
pub fn load_key_any<C: super::handle::Handle + ?Sized>(
    c: &C,
    token: &str,
) -> super::handle::DbResult<Option<KeyRow>> {
    use super::handle::{DbError, Row};
    let k = c.one(KEY_CHECK, &[token.into()], |r| match r {
        Row::Lite(r) => key_row(*r).map_err(DbError::Lite),
        Row::Pg(r) => key_row(*r).map_err(DbError::Pg),
    })?;
    Ok(k.map(|k| with_token(k, token.to_string())))
}

/// THE key-check statement on PostgreSQL: the same text, one statement, one round trip. The
/// row's `token` is left empty, as by `load_key_hot`.
pub fn load_key_pg(p: &super::pg::PgPool, token: &str) -> crate::error::Result<Option<KeyRow>> {
    p.read(|q| q.one(KEY_CHECK, &[token.into()], key_row))
}

fn with_token(mut k: KeyRow, token: String) -> KeyRow {
    k.token = token;
    k
}

/// A model list column, parsed from the text borrowed from the row (no copy of the text).
fn list_col<R: Cols>(r: &R, i: usize) -> Result<Vec<String>, R::E> {
    Ok(list_of(r.opt_text(i)?))
}

/// A stored JSON list of strings as `json_list` reads it; `[]` (most users' and many keys')
/// costs no parse, and a list of plain strings (no escapes: every stored model name so far)
/// is read without serde (`plain_list`); anything else goes to `json_list`.
fn list_of(text: Option<&str>) -> Vec<String> {
    match text {
        None | Some("[]") => Vec::new(),
        Some(s) => plain_list(s).unwrap_or_else(|| super::json_list(s)),
    }
}

/// A JSON array of strings without escapes or control characters (JSON whitespace between
/// tokens allowed), as `serde_json` reads it; `None` for any other text, which the caller hands
/// to `json_list` (so escapes, errors and odd shapes keep serde's answer). A property test
/// holds it to `json_list` (`key_check::tests::parse_props`).
fn plain_list(s: &str) -> Option<Vec<String>> {
    let b = s.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    };
    let mut i = skip_ws(0);
    if b.get(i) != Some(&b'[') {
        return None;
    }
    i = skip_ws(i + 1);
    let mut out = Vec::new();
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let start = i + 1;
            let len = b[start..].iter().position(|&c| c == b'"')?;
            let end = start + len;
            if b[start..end].iter().any(|&c| c == b'\\' || c < 0x20) {
                return None;
            }
            // `"` is ASCII: both ends are character boundaries.
            out.push(s.get(start..end)?.to_string());
            i = skip_ws(end + 1);
            match b.get(i) {
                Some(b',') => i = skip_ws(i + 1),
                Some(b']') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(i) == b.len()).then_some(out)
}

/// An alias object column: its text, or empty for `{}` (or NULL), which `alias_in` reads as
/// no alias without an allocation here.
fn aliases_col<R: Cols>(r: &R, i: usize) -> Result<String, R::E> {
    Ok(aliases_of(r.opt_text(i)?))
}

fn aliases_of(text: Option<&str>) -> String {
    match text {
        Some(s) if s.len() > 2 => s.to_string(),
        _ => String::new(),
    }
}

fn flag<R: Cols>(r: &R, i: usize) -> Result<bool, R::E> {
    Ok(r.i64(i)? != 0)
}

/// One row of `KEY_CHECK` as a `KeyRow`, on either engine (generic: the SQLite instance reads
/// exactly as before), with an empty `token`: the caller has the one the row was found by
/// (`WHERE k.token = ?1`, an exact comparison on both engines), so the statement does not read
/// it back.
fn key_row<R: Cols>(r: &R) -> Result<KeyRow, R::E> {
    use col::*;
    let team = match r.opt_string(T_ID)? {
        Some(id) => Some(TeamPart {
            id,
            alias: r.opt_string(T_ALIAS)?,
            organization_id: r.opt_string(T_ORGANIZATION_ID)?,
            models: list_col(r, T_MODELS)?,
            blocked: flag(r, T_BLOCKED)?,
            spend: r.f64(T_SPEND)?,
            max_budget: r.opt_f64(T_MAX_BUDGET)?,
            tpm_limit: r.opt_i64(T_TPM_LIMIT)?,
            rpm_limit: r.opt_i64(T_RPM_LIMIT)?,
            max_parallel_requests: r.opt_i64(T_MAX_PARALLEL)?,
            model_aliases: aliases_col(r, T_MODEL_ALIASES)?,
        }),
        None => None,
    };
    let org = match r.opt_string(O_ID)? {
        Some(id) => Some(OrgPart {
            id,
            models: list_col(r, O_MODELS)?,
            blocked: flag(r, O_BLOCKED)?,
            spend: r.f64(O_SPEND)?,
            max_budget: r.opt_f64(O_MAX_BUDGET)?,
            tpm_limit: r.opt_i64(O_TPM_LIMIT)?,
            rpm_limit: r.opt_i64(O_RPM_LIMIT)?,
            max_parallel_requests: r.opt_i64(O_MAX_PARALLEL)?,
        }),
        None => None,
    };
    let user = match r.opt_string(U_ID)? {
        Some(id) => Some(UserPart {
            id,
            user_role: r.string(U_USER_ROLE)?,
            models: list_col(r, U_MODELS)?,
            spend: r.f64(U_SPEND)?,
            max_budget: r.opt_f64(U_MAX_BUDGET)?,
            tpm_limit: r.opt_i64(U_TPM_LIMIT)?,
            rpm_limit: r.opt_i64(U_RPM_LIMIT)?,
            max_parallel_requests: r.opt_i64(U_MAX_PARALLEL)?,
        }),
        None => None,
    };
    let member = |role: usize, spend: usize, max_budget: usize| {
        Ok::<_, R::E>(match r.opt_string(role)? {
            Some(role) => Some(MemberPart {
                role,
                spend: r.f64(spend)?,
                max_budget: r.opt_f64(max_budget)?,
            }),
            None => None,
        })
    };
    Ok(KeyRow {
        token: String::new(),
        key_name: r.string(K_KEY_NAME)?,
        key_alias: r.opt_string(K_KEY_ALIAS)?,
        models: list_col(r, K_MODELS)?,
        aliases: aliases_col(r, K_ALIASES)?,
        team_id: r.opt_string(K_TEAM_ID)?,
        user_id: r.opt_string(K_USER_ID)?,
        organization_id: r.opt_string(K_ORGANIZATION_ID)?,
        expires: r.opt_string(K_EXPIRES)?,
        blocked: flag(r, K_BLOCKED)?,
        spend: r.f64(K_SPEND)?,
        max_budget: r.opt_f64(K_MAX_BUDGET)?,
        tpm_limit: r.opt_i64(K_TPM_LIMIT)?,
        rpm_limit: r.opt_i64(K_RPM_LIMIT)?,
        max_parallel_requests: r.opt_i64(K_MAX_PARALLEL)?,
        team,
        org,
        user,
        team_member: member(TM_ROLE, TM_SPEND, TM_MAX_BUDGET)?,
        org_member: member(OM_ROLE, OM_SPEND, OM_MAX_BUDGET)?,
        // Borrowed, not a String: no allocation on the hot path.
        calls_only: r.text_is(K_REACH, "calls")?,
        models_generation: r.opt_i64(M_GENERATION)?.unwrap_or(0),
    })
}

/// The validity of a loaded key, in the order of API.md §7 (the first failing check wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Valid,
    Blocked,
    /// Past its expiry (or an expiry that cannot be read); carries the stored text.
    Expired(String),
    /// It names a team that no longer exists.
    TeamGone,
    /// Its team is blocked; carries the team id.
    TeamBlocked(String),
    /// Its organization (its team's, or its own) is blocked; carries the org id.
    OrgBlocked(String),
    /// A key without a team names an organization that no longer exists: deny, never widen.
    OrgGone,
}

impl KeyRow {
    /// Validity at `now_ms`: not blocked, not expired, its team present and not blocked, its
    /// org not blocked (and present, for a key of its own org). Order of API.md §7.
    pub fn state(&self, now_ms: i64) -> KeyState {
        if self.blocked {
            return KeyState::Blocked;
        }
        if let Some(exp) = &self.expires {
            match crate::util::ms_from_iso(exp) {
                Some(t) if t > now_ms => {}
                _ => return KeyState::Expired(exp.clone()),
            }
        }
        if self.team_id.is_some() && self.team.is_none() {
            return KeyState::TeamGone;
        }
        if let Some(t) = self.team.as_ref().filter(|t| t.blocked) {
            return KeyState::TeamBlocked(t.id.clone());
        }
        if let Some(o) = self.org.as_ref().filter(|o| o.blocked) {
            return KeyState::OrgBlocked(o.id.clone());
        }
        if self.team_id.is_none() && self.organization_id.is_some() && self.org.is_none() {
            return KeyState::OrgGone;
        }
        KeyState::Valid
    }

    /// The model a key alias points to (API.md §6 `aliases`), if any.
    pub fn alias_for(&self, model: &str) -> Option<String> {
        alias_in(&self.aliases, model)
    }

    /// The model the key's team's `model_aliases` point `model` to, if any (README "LiteLLM
    /// compatibility": applied before the key's own aliases, as LiteLLM does).
    pub fn team_alias_for(&self, model: &str) -> Option<String> {
        alias_in(&self.team.as_ref()?.model_aliases, model)
    }
}

/// `model`'s target in a JSON object of aliases (`{}` costs no decoding).
fn alias_in(aliases: &str, model: &str) -> Option<String> {
    if aliases.len() <= 2 {
        return None;
    }
    super::json_obj(aliases)
        .get(model)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

#[cfg(test)]
#[path = "key_check_tests.rs"]
mod tests;
