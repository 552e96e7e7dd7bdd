//! Key checks and model access. Owns the key format and hashing, password hashing, THE
//! key-check query (one statement: key JOIN team JOIN org JOIN user and memberships, on
//! indexes), and the model-access resolver that every caller uses: authentication,
//! `/v1/models`, the `/model/info` family, `/key/info` and the write-time ⊆ checks (API.md §4).
//! Nothing here caches: an org's model change applies on the next request.

use crate::config::Deployment;
use crate::error::{Error, Result};
use crate::util;
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, Row};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};

pub const ALL_PROXY_MODELS: &str = "all-proxy-models";
pub const ALL_TEAM_MODELS: &str = "all-team-models";
pub const ALL_ORG_MODELS: &str = "all-org-models";
pub const STAR: &str = "*";
/// On a user's own list: no personal model access (LiteLLM's name); grants nothing anywhere.
pub const NO_DEFAULT_MODELS: &str = "no-default-models";
/// The `user_id` the master key acts as (LiteLLM's name).
pub const MASTER_USER_ID: &str = "default_user_id";

pub fn is_special(name: &str) -> bool {
    matches!(
        name,
        ALL_PROXY_MODELS | ALL_TEAM_MODELS | ALL_ORG_MODELS | STAR | NO_DEFAULT_MODELS
    )
}

// ---------------------------------------------------------------------------------------------
// Key format

/// A new virtual key: `sk-` + 192 random bits, url-safe base64 (32 chars).
pub fn new_raw_key() -> String {
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    format!("sk-{}", base64url(&b))
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        let chars = c.len() + 1;
        for i in 0..chars {
            s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s
}

/// `token`: lowercase hex SHA-256 of the whole raw key (LiteLLM's stored format).
pub fn hash_key(raw: &str) -> String {
    util::hex(&Sha256::digest(raw.as_bytes()))
}

/// A caller may name a key by its raw value or by its token (API.md §8).
pub fn token_of(key_or_token: &str) -> String {
    let s = key_or_token.trim();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) && !s.starts_with("sk-") {
        s.to_ascii_lowercase()
    } else {
        hash_key(s)
    }
}

/// `sk-...` + the last 4 characters: the only form of a key that is ever shown again or logged.
pub fn key_name(raw: &str) -> String {
    let tail: String = raw
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

// ---------------------------------------------------------------------------------------------
// Passwords (argon2id, for UI login)

/// An argon2id hash (PHC string) of `pw`, computed in a `kdf` slot (503 when all are busy).
pub fn hash_password(pw: &str) -> Result<String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    crate::kdf::with_slot(|| {
        argon2::Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("argon2: {e}")))
    })?
}

/// Whether `pw` matches the stored hash `phc`; false also when every `kdf` slot stays busy
/// (never a match that was not checked). `try_verify_password` tells busy apart.
pub fn verify_password(pw: &str, phc: &str) -> bool {
    try_verify_password(pw, phc).unwrap_or(false)
}

/// Whether `pw` matches the stored hash `phc`, computed in a `kdf` slot (503 when all are
/// busy). A hash asking for more memory than `kdf::MAX_M_COST_KIB` never matches (the slots'
/// memory bound holds whatever is stored).
pub fn try_verify_password(pw: &str, phc: &str) -> Result<bool> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let Ok(h) = PasswordHash::new(phc) else {
        return Ok(false);
    };
    let m_cost = argon2::Params::try_from(&h).map(|p| p.m_cost());
    if !m_cost.is_ok_and(|m| m <= crate::kdf::MAX_M_COST_KIB) {
        return Ok(false);
    }
    crate::kdf::with_slot(|| {
        argon2::Argon2::default()
            .verify_password(pw.as_bytes(), &h)
            .is_ok()
    })
}

// ---------------------------------------------------------------------------------------------
// Roles

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    ProxyAdmin,
    ProxyAdminViewer,
    InternalUser,
    InternalUserViewer,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "proxy_admin" => Some(Role::ProxyAdmin),
            "proxy_admin_viewer" => Some(Role::ProxyAdminViewer),
            "internal_user" => Some(Role::InternalUser),
            "internal_user_viewer" => Some(Role::InternalUserViewer),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ProxyAdmin => "proxy_admin",
            Role::ProxyAdminViewer => "proxy_admin_viewer",
            Role::InternalUser => "internal_user",
            Role::InternalUserViewer => "internal_user_viewer",
        }
    }
    /// Proxy admins and proxy admin viewers read everything.
    pub fn reads_all(self) -> bool {
        matches!(self, Role::ProxyAdmin | Role::ProxyAdminViewer)
    }
    pub fn is_viewer(self) -> bool {
        matches!(self, Role::ProxyAdminViewer | Role::InternalUserViewer)
    }
    /// The role with its proxy-wide part taken away: what a key issued by someone else may
    /// act with.
    pub fn below_proxy(self) -> Role {
        match self {
            Role::ProxyAdmin | Role::InternalUser => Role::InternalUser,
            Role::ProxyAdminViewer | Role::InternalUserViewer => Role::InternalUserViewer,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The catalog: the configured models (proxy level of the hierarchy)

/// The configured deployments, indexed for the resolver.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Shared (`Arc`): a model call keeps its deployment until the call is settled.
    pub deployments: Vec<std::sync::Arc<Deployment>>,
    /// Distinct `model_name`s in config order (wildcard names included as patterns).
    names: Vec<String>,
    exact: HashMap<String, Vec<usize>>,
    wildcards: Vec<usize>,
}

/// `*` matches any run of characters; everything else literally.
pub fn wildcard_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Catalog {
    pub fn new(deployments: Vec<Deployment>) -> Catalog {
        let mut c = Catalog {
            deployments: deployments.into_iter().map(std::sync::Arc::new).collect(),
            ..Catalog::default()
        };
        for (i, d) in c.deployments.iter().enumerate() {
            if !c.exact.contains_key(&d.model_name) {
                c.names.push(d.model_name.clone());
            }
            c.exact.entry(d.model_name.clone()).or_default().push(i);
            if d.model_name.contains('*') {
                c.wildcards.push(i);
            }
        }
        c
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The deployments a called model name routes to: exact `model_name` first, else the
    /// wildcard deployments whose pattern matches.
    pub fn route(&self, model: &str) -> Vec<&std::sync::Arc<Deployment>> {
        if let Some(ix) = self.exact.get(model) {
            return ix.iter().map(|&i| &self.deployments[i]).collect();
        }
        self.wildcards
            .iter()
            .map(|&i| &self.deployments[i])
            .filter(|d| wildcard_match(&d.model_name, model))
            .collect()
    }

    pub fn is_routable(&self, model: &str) -> bool {
        self.exact.contains_key(model)
            || self
                .wildcards
                .iter()
                .any(|&i| wildcard_match(&self.deployments[i].model_name, model))
    }

    fn in_group(&self, group: &str, model: &str) -> bool {
        self.route(model)
            .iter()
            .any(|d| d.access_groups.iter().any(|g| g == group))
    }

    pub fn is_group(&self, name: &str) -> bool {
        self.deployments
            .iter()
            .any(|d| d.access_groups.iter().any(|g| g == name))
    }

    /// Does one plain entry (a name, a wildcard or an access group) cover `model`?
    pub fn entry_matches(&self, entry: &str, model: &str) -> bool {
        entry == model
            || (entry.contains('*') && wildcard_match(entry, model))
            || self.in_group(entry, model)
    }
}

// ---------------------------------------------------------------------------------------------
// The resolver

/// A level's model list. Empty, `*` or `all-proxy-models` = unrestricted at that level.
pub type Models = Vec<String>;

/// The hierarchy above one key (or one team), as loaded by the key check or by a handler.
/// `team`/`org`/`user` are `Some(list)` when that level exists in the chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chain<'a> {
    pub key: Option<&'a [String]>,
    /// True when the key names a team (even if the team row is missing).
    pub key_has_team: bool,
    pub team: Option<&'a [String]>,
    pub org: Option<&'a [String]>,
    /// The owner's models; only consulted for keys without a team.
    pub user: Option<&'a [String]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Key,
    Team,
    Org,
    User,
}

impl Level {
    pub fn denied_kind(self) -> &'static str {
        match self {
            Level::Key | Level::User => "key_model_access_denied",
            Level::Team => "team_model_access_denied",
            Level::Org => "org_model_access_denied",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Level::Key => "key",
            Level::Team => "team",
            Level::Org => "organization",
            Level::User => "user",
        }
    }
}

pub fn unrestricted(list: &[String]) -> bool {
    list.is_empty() || list.iter().any(|m| m == ALL_PROXY_MODELS || m == STAR)
}

impl Chain<'_> {
    /// Does the list at `level` allow `model`? Special names refer to the parent's current set.
    fn level_allows(&self, cat: &Catalog, level: Level, list: &[String], model: &str) -> bool {
        if list.is_empty() {
            return true;
        }
        list.iter().any(|e| match e.as_str() {
            ALL_PROXY_MODELS | STAR => true,
            // Matches nothing, even a model or group configured under that name.
            NO_DEFAULT_MODELS => false,
            ALL_TEAM_MODELS => {
                level == Level::Key
                    && self
                        .team
                        .is_some_and(|t| self.level_allows(cat, Level::Team, t, model))
            }
            ALL_ORG_MODELS => {
                matches!(level, Level::Key | Level::Team)
                    && self
                        .org
                        .is_some_and(|o| self.level_allows(cat, Level::Org, o, model))
            }
            name => cat.entry_matches(name, model),
        })
    }

    /// The level of the chain that refuses `model`, or None when every level allows it.
    /// The highest refusing level is named (org, then team, then user, then key), so the error
    /// says where a change is needed: a key of `all-org-models` refused a model its org lacks
    /// gets `org_model_access_denied`. Routing is checked separately by `allows`.
    pub fn denying_level(&self, cat: &Catalog, model: &str) -> Option<Level> {
        if let Some(o) = self.org {
            if !self.level_allows(cat, Level::Org, o, model) {
                return Some(Level::Org);
            }
        }
        if self.key.is_some() && self.key_has_team && self.team.is_none() {
            // A key whose team is gone may call nothing (never a wider default).
            return Some(Level::Team);
        }
        if let Some(t) = self.team {
            if !self.level_allows(cat, Level::Team, t, model) {
                return Some(Level::Team);
            }
        }
        if self.team.is_none() && !self.key_has_team {
            if let Some(u) = self.user {
                if !self.level_allows(cat, Level::User, u, model) {
                    return Some(Level::User);
                }
            }
        }
        if let Some(k) = self.key {
            if !self.level_allows(cat, Level::Key, k, model) {
                return Some(Level::Key);
            }
        }
        None
    }

    /// May this chain call `model`? (Configured, and allowed at every level.)
    pub fn allows(&self, cat: &Catalog, model: &str) -> bool {
        cat.is_routable(model) && self.denying_level(cat, model).is_none()
    }

    /// The effective set: every model name this chain may call, in config order, wildcards
    /// listed as their pattern, plus explicit names that route through a wildcard deployment.
    pub fn effective(&self, cat: &Catalog) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut candidates: Vec<&str> = cat.names().iter().map(|s| s.as_str()).collect();
        for l in [self.key, self.team, self.org, self.user]
            .into_iter()
            .flatten()
        {
            for e in l {
                if !e.contains('*') && !is_special(e) && cat.is_routable(e) {
                    candidates.push(e);
                }
            }
        }
        for c in candidates {
            if seen.insert(c) && self.allows(cat, c) {
                out.push(c.to_string());
            }
        }
        out
    }

    /// Model access for a request, with the API.md §3 error on refusal.
    pub fn check(&self, cat: &Catalog, model: &str) -> Result<()> {
        if let Some(level) = self.denying_level(cat, model) {
            return Err(Error::ModelDenied {
                kind: level.denied_kind(),
                message: format!(
                    "{} not allowed to access model. This {} can only access models={:?}. \
                     Tried to access {model}",
                    match level {
                        Level::Key => "Key",
                        Level::Team => "Team",
                        Level::Org => "Organization",
                        Level::User => "User",
                    },
                    level.name(),
                    self.list_at(level),
                ),
            });
        }
        if !cat.is_routable(model) {
            return Err(Error::bad_param(
                "model",
                format!("Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key."),
            ));
        }
        Ok(())
    }

    fn list_at(&self, level: Level) -> Vec<String> {
        let l = match level {
            Level::Key => self.key,
            Level::Team => self.team,
            Level::Org => self.org,
            Level::User => self.user,
        };
        l.map(|x| x.to_vec()).unwrap_or_default()
    }
}

/// Write-time check (API.md §4): may `child` (a new model list for a team or key) be stored
/// under `parent`, the chain above it? Returns the offending entries (empty = fits).
///
/// A plain entry fits when the parent lists it literally, or when it names configured models
/// and every one of them is in the parent's effective set. Names the parent does not list and
/// that grant nothing here are refused too: storing them would promise what the parent lacks.
/// An empty child list fits (it inherits, never exceeds).
pub fn exceeding(cat: &Catalog, parent: &Chain<'_>, child: &[String]) -> Vec<String> {
    let parent_open = parent.is_open();
    let mut bad = Vec::new();
    for e in child {
        let ok = match e.as_str() {
            // Checked by the caller, which knows whether a team or an org is in the chain.
            ALL_TEAM_MODELS | ALL_ORG_MODELS => true,
            ALL_PROXY_MODELS | STAR => parent_open,
            _ if parent_open => true,
            name => {
                let covered = expand(cat, name);
                if covered.is_empty() {
                    // Not configured: it must be listed (or matched) at every level above.
                    parent.denying_level(cat, name).is_none()
                } else {
                    covered
                        .iter()
                        .all(|m| parent.denying_level(cat, m).is_none())
                }
            }
        };
        if !ok {
            bad.push(e.clone());
        }
    }
    bad
}

/// The configured model names a plain entry stands for (a name, a wildcard or a group).
pub fn expand(cat: &Catalog, entry: &str) -> Vec<String> {
    let mut v: Vec<String> = cat
        .names()
        .iter()
        .filter(|n| cat.entry_matches(entry, n))
        .cloned()
        .collect();
    if v.is_empty() && cat.is_routable(entry) && !entry.contains('*') {
        v.push(entry.to_string());
    }
    v
}

impl Chain<'_> {
    /// True when no level of the chain restricts anything (every list unrestricted).
    pub fn is_open(&self) -> bool {
        let open = |l: Option<&[String]>| l.is_none_or(unrestricted);
        // Special names in a list restrict to the referenced level, so they are not open.
        open(self.key)
            && open(self.team)
            && open(self.org)
            && (self.team.is_some() || self.key_has_team || open(self.user))
            && !(self.key_has_team && self.team.is_none())
    }
}

// ---------------------------------------------------------------------------------------------
// THE key check

/// Everything a request needs to know about its key, loaded by one statement.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub token: String,
    pub key_name: String,
    pub key_alias: Option<String>,
    pub models: Models,
    /// Raw JSON object text; decoded only when a call needs it (`alias_for`).
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
    /// Raw JSON object text, decoded on demand.
    pub metadata: String,
    pub team: Option<TeamPart>,
    pub org: Option<OrgPart>,
    pub user: Option<UserPart>,
    pub team_member: Option<MemberPart>,
    pub org_member: Option<MemberPart>,
    /// `reach = 'calls'` (schema 0005): issued or regenerated for its owner by someone else
    /// below proxy admin, who saw the raw key. Such a key never acts with its owner's global
    /// role or memberships: model calls within its chain and reading itself only
    /// (`http::grant`).
    pub calls_only: bool,
}

#[derive(Debug, Clone)]
pub struct TeamPart {
    pub id: String,
    pub alias: Option<String>,
    pub organization_id: Option<String>,
    pub models: Models,
    pub blocked: bool,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct OrgPart {
    pub id: String,
    pub alias: String,
    pub models: Models,
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
    pub role: Role,
    pub models: Models,
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
pub const KEY_CHECK: &str = "SELECT
    k.token, k.key_name, k.key_alias, k.models, k.aliases, k.team_id, k.user_id,
    k.organization_id, k.expires, k.blocked, k.spend, k.max_budget, k.tpm_limit, k.rpm_limit,
    k.max_parallel_requests, k.metadata,
    t.id, t.alias, t.organization_id, t.models, t.blocked, t.spend, t.max_budget, t.tpm_limit,
    t.rpm_limit, t.max_parallel_requests,
    o.id, o.alias, o.models, o.blocked, o.spend, ob.max_budget, ob.tpm_limit, ob.rpm_limit,
    ob.max_parallel_requests,
    u.id, u.user_role, u.models, u.spend, u.max_budget, u.tpm_limit, u.rpm_limit,
    u.max_parallel_requests,
    tm.role, tm.spend, tmb.max_budget,
    om.user_role, om.spend, omb.max_budget,
    k.reach
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

fn list_col(r: &Row<'_>, i: usize) -> rusqlite::Result<Models> {
    Ok(r.get::<_, Option<String>>(i)?
        .map(|s| crate::db::json_list(&s))
        .unwrap_or_default())
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<KeyRow> {
    let team = match r.get::<_, Option<String>>(16)? {
        Some(id) => Some(TeamPart {
            id,
            alias: r.get(17)?,
            organization_id: r.get(18)?,
            models: list_col(r, 19)?,
            blocked: r.get::<_, i64>(20)? != 0,
            spend: r.get(21)?,
            max_budget: r.get(22)?,
            tpm_limit: r.get(23)?,
            rpm_limit: r.get(24)?,
            max_parallel_requests: r.get(25)?,
        }),
        None => None,
    };
    let org = match r.get::<_, Option<String>>(26)? {
        Some(id) => Some(OrgPart {
            id,
            alias: r.get(27)?,
            models: list_col(r, 28)?,
            blocked: r.get::<_, i64>(29)? != 0,
            spend: r.get(30)?,
            max_budget: r.get(31)?,
            tpm_limit: r.get(32)?,
            rpm_limit: r.get(33)?,
            max_parallel_requests: r.get(34)?,
        }),
        None => None,
    };
    let user = match r.get::<_, Option<String>>(35)? {
        Some(id) => Some(UserPart {
            id,
            role: Role::parse(&r.get::<_, String>(36)?).unwrap_or(Role::InternalUserViewer),
            models: list_col(r, 37)?,
            spend: r.get(38)?,
            max_budget: r.get(39)?,
            tpm_limit: r.get(40)?,
            rpm_limit: r.get(41)?,
            max_parallel_requests: r.get(42)?,
        }),
        None => None,
    };
    let team_member = match r.get::<_, Option<String>>(43)? {
        Some(role) => Some(MemberPart {
            role,
            spend: r.get(44)?,
            max_budget: r.get(45)?,
        }),
        None => None,
    };
    let org_member = match r.get::<_, Option<String>>(46)? {
        Some(role) => Some(MemberPart {
            role,
            spend: r.get(47)?,
            max_budget: r.get(48)?,
        }),
        None => None,
    };
    Ok(KeyRow {
        token: r.get(0)?,
        key_name: r.get(1)?,
        key_alias: r.get(2)?,
        models: list_col(r, 3)?,
        aliases: r.get(4)?,
        team_id: r.get(5)?,
        user_id: r.get(6)?,
        organization_id: r.get(7)?,
        expires: r.get(8)?,
        blocked: r.get::<_, i64>(9)? != 0,
        spend: r.get(10)?,
        max_budget: r.get(11)?,
        tpm_limit: r.get(12)?,
        rpm_limit: r.get(13)?,
        max_parallel_requests: r.get(14)?,
        metadata: r.get(15)?,
        team,
        org,
        user,
        team_member,
        org_member,
        // Borrowed, not a String: no allocation on the hot path.
        calls_only: r.get_ref(49)?.as_str()? == "calls",
    })
}

/// Runs THE key-check statement.
pub fn load_key(c: &Connection, token: &str) -> rusqlite::Result<Option<KeyRow>> {
    c.prepare_cached(KEY_CHECK)?
        .query_row([token], key_row)
        .optional()
}

impl KeyRow {
    /// The model a key alias points to (API.md §6 `aliases`), if any.
    pub fn alias_for(&self, model: &str) -> Option<String> {
        if self.aliases.len() <= 2 {
            return None;
        }
        crate::db::json_obj(&self.aliases)
            .get(model)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }

    /// The access chain of this key.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            key: Some(&self.models),
            key_has_team: self.team_id.is_some(),
            team: self.team.as_ref().map(|t| t.models.as_slice()),
            org: self.org.as_ref().map(|o| o.models.as_slice()),
            user: self.user.as_ref().map(|u| u.models.as_slice()),
        }
    }

    /// Validity: exists (the caller found it), not blocked, not expired, its team present and
    /// not blocked, its org not blocked. Order of API.md §7.
    pub fn validate(&self, now_ms: i64) -> Result<()> {
        if self.blocked {
            return Err(Error::Unauthorized(
                "Authentication Error, this key is blocked".into(),
            ));
        }
        if let Some(exp) = &self.expires {
            match util::ms_from_iso(exp) {
                Some(t) if t > now_ms => {}
                _ => {
                    return Err(Error::Expired(format!(
                        "Authentication Error - Expired Key. Key Expiry time {exp}"
                    )))
                }
            }
        }
        if self.team_id.is_some() && self.team.is_none() {
            return Err(Error::Unauthorized(
                "Authentication Error, the key's team no longer exists".into(),
            ));
        }
        if let Some(t) = &self.team {
            if t.blocked {
                return Err(Error::Forbidden(format!(
                    "Team={} is blocked. Update via `/team/unblock` if you're an admin.",
                    t.id
                )));
            }
        }
        if let Some(o) = &self.org {
            if o.blocked {
                return Err(Error::Forbidden(format!(
                    "Organization={} is blocked.",
                    o.id
                )));
            }
        }
        // A key with its own organization that is gone: deny rather than widen.
        if self.team_id.is_none() && self.organization_id.is_some() && self.org.is_none() {
            return Err(Error::Unauthorized(
                "Authentication Error, the key's organization no longer exists".into(),
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Callers

/// Who is calling: the master key, or a virtual key with its loaded hierarchy.
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
    /// The access chain: a key's own; a keyless user (web UI session) is bounded by the user's
    /// models; only the master key is unrestricted.
    pub fn chain(&self) -> Chain<'_> {
        match (&self.key, &self.user_models) {
            (Some(k), _) => k.chain(),
            (None, Some(m)) => Chain {
                user: Some(m),
                ..Chain::default()
            },
            (None, None) => Chain::default(),
        }
    }
    pub fn key_name(&self) -> Option<&str> {
        self.key.as_ref().map(|k| k.key_name.as_str())
    }
    /// A key issued for its owner by someone else (`KeyRow::calls_only`).
    pub fn is_calls_only(&self) -> bool {
        self.key.as_ref().is_some_and(|k| k.calls_only)
    }
}

/// `Bearer x` (any case, or a bare `Bearer`) -> `x`; anything else as is, trimmed.
fn strip_bearer(v: &str) -> &str {
    let t = v.trim();
    if t.len() >= 6 && t[..6].eq_ignore_ascii_case("bearer") {
        let rest = &t[6..];
        if rest.is_empty() || rest.starts_with(' ') {
            return rest.trim();
        }
    }
    t
}

/// Pulls the presented key out of the four header forms of API.md §2.
pub fn presented_key(headers: &[(String, String)]) -> Option<String> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    if let Some(v) = get("authorization") {
        let v = strip_bearer(&v);
        if !v.is_empty() {
            return Some(v.to_string());
        }
    }
    for h in ["x-litellm-api-key", "api-key", "x-api-key"] {
        if let Some(v) = get(h) {
            let v = strip_bearer(&v);
            if !v.is_empty() {
                return Some(v.to_string());
            }
        }
    }
    None
}

/// Authenticates a presented key: the master key (constant time against its hash), else THE
/// key check. Returns the caller; every refusal is a 401 (or 403 for a blocked team/org).
pub fn authenticate(c: &Connection, master_hash: &str, presented: &str) -> Result<Caller> {
    let token = hash_key(presented);
    if util::ct_eq(token.as_bytes(), master_hash.as_bytes()) {
        return Ok(Caller::master());
    }
    if !presented.starts_with("sk-") {
        return Err(Error::Unauthorized(
            "Authentication Error, malformed API key: expected 'sk-...'".into(),
        ));
    }
    let Some(k) = load_key(c, &token)? else {
        return Err(Error::Unauthorized(
            "Authentication Error, Invalid proxy server token passed. Unable to find token in \
             the database."
                .into(),
        ));
    };
    k.validate(util::now_ms())?;
    let owner_role = k
        .user
        .as_ref()
        .map(|u| u.role)
        .unwrap_or(Role::InternalUser);
    // A key someone else issued never carries its owner's global role (API.md §9 "Keys for
    // someone else"): at most an internal user's, a viewer's stays a viewer's.
    let role = if k.calls_only {
        owner_role.below_proxy()
    } else {
        owner_role
    };
    Ok(Caller {
        role,
        user_id: k.user_id.clone(),
        key: Some(Box::new(k)),
        user_models: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, groups: &[&str]) -> Deployment {
        Deployment {
            model_name: name.into(),
            model: format!("mock/{name}"),
            api_base: None,
            api_key: None,
            rpm: None,
            tpm: None,
            input_cost_per_token: 0.0,
            output_cost_per_token: 0.0,
            timeout_secs: 600.0,
            stream_timeout_secs: 600.0,
            id: name.into(),
            access_groups: groups.iter().map(|s| s.to_string()).collect(),
            model_info: Default::default(),
        }
    }

    fn cat() -> Catalog {
        Catalog::new(vec![
            dep("A", &["g1"]),
            dep("B", &["g1"]),
            dep("C", &[]),
            dep("openai/*", &["g2"]),
        ])
    }

    fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn key_format() {
        let k = new_raw_key();
        assert!(k.starts_with("sk-") && k.len() == 35, "{k}");
        assert!(k[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(new_raw_key(), k);
        assert_eq!(hash_key("sk-1234").len(), 64);
        assert_eq!(key_name("sk-abcdefgh"), "sk-...efgh");
        assert_eq!(token_of(&hash_key("sk-x")), hash_key("sk-x"));
        assert_eq!(token_of("sk-x"), hash_key("sk-x"));
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("openai/*", "openai/gpt-4o"));
        assert!(!wildcard_match("openai/*", "anthropic/x"));
        assert!(wildcard_match("*", "x"));
        assert!(wildcard_match("a*c*e", "abcde"));
        assert!(!wildcard_match("a*c*e", "abde"));
        assert!(wildcard_match("gpt-4.1", "gpt-4.1"));
        assert!(!wildcard_match("gpt-4.1", "gpt-4x1"));
    }

    #[test]
    fn intersection_of_levels() {
        let c = cat();
        let (k, t, o) = (v(&[]), v(&["A", "B"]), v(&["A", "C"]));
        let ch = Chain {
            key: Some(&k),
            key_has_team: true,
            team: Some(&t),
            org: Some(&o),
            user: None,
        };
        assert_eq!(ch.effective(&c), v(&["A"]));
        assert_eq!(ch.denying_level(&c, "B"), Some(Level::Org));
        assert_eq!(ch.denying_level(&c, "C"), Some(Level::Team));
    }

    #[test]
    fn all_org_models_follows_org() {
        let c = cat();
        let (k, t, o) = (v(&[ALL_ORG_MODELS]), v(&[]), v(&["A", "B"]));
        let ch = Chain {
            key: Some(&k),
            key_has_team: true,
            team: Some(&t),
            org: Some(&o),
            user: None,
        };
        assert_eq!(ch.effective(&c), v(&["A", "B"]));
        // No org in the chain: nothing, never everything.
        let ch2 = Chain { org: None, ..ch };
        assert!(ch2.effective(&c).is_empty());
    }

    #[test]
    fn empty_team_in_restricted_org() {
        let c = cat();
        let (k, t, o) = (v(&[]), v(&[]), v(&["A"]));
        let ch = Chain {
            key: Some(&k),
            key_has_team: true,
            team: Some(&t),
            org: Some(&o),
            user: None,
        };
        assert!(ch.allows(&c, "A"));
        assert!(!ch.allows(&c, "B"));
    }

    #[test]
    fn groups_and_wildcard_deployments() {
        let c = cat();
        let k = v(&["g1"]);
        let ch = Chain {
            key: Some(&k),
            ..Chain::default()
        };
        assert_eq!(ch.effective(&c), v(&["A", "B"]));
        let k2 = v(&["openai/gpt-4o"]);
        let ch2 = Chain {
            key: Some(&k2),
            ..Chain::default()
        };
        assert!(ch2.allows(&c, "openai/gpt-4o"));
        assert!(!ch2.allows(&c, "openai/gpt-5"));
        assert_eq!(ch2.effective(&c), v(&["openai/gpt-4o"]));
        let k3 = v(&["g2"]);
        let ch3 = Chain {
            key: Some(&k3),
            ..Chain::default()
        };
        assert!(ch3.allows(&c, "openai/anything"));
        assert_eq!(ch3.effective(&c), v(&["openai/*"]));
    }

    #[test]
    fn missing_team_denies_everything() {
        let c = cat();
        let k = v(&[]);
        let ch = Chain {
            key: Some(&k),
            key_has_team: true,
            team: None,
            org: None,
            user: None,
        };
        assert!(ch.effective(&c).is_empty());
    }

    #[test]
    fn personal_key_answers_to_user() {
        let c = cat();
        let (k, u) = (v(&[]), v(&["C"]));
        let ch = Chain {
            key: Some(&k),
            user: Some(&u),
            ..Chain::default()
        };
        assert_eq!(ch.effective(&c), v(&["C"]));
        assert_eq!(ch.denying_level(&c, "A"), Some(Level::User));
    }

    #[test]
    fn write_time_subset() {
        let c = cat();
        let o = v(&["A", "B"]);
        let parent = Chain {
            org: Some(&o),
            ..Chain::default()
        };
        assert!(exceeding(&c, &parent, &v(&["A"])).is_empty());
        assert!(exceeding(&c, &parent, &v(&["g1"])).is_empty());
        assert_eq!(exceeding(&c, &parent, &v(&["C", "A"])), v(&["C"]));
        assert_eq!(
            exceeding(&c, &parent, &v(&[ALL_PROXY_MODELS])),
            v(&[ALL_PROXY_MODELS])
        );
        assert_eq!(exceeding(&c, &parent, &v(&["unknown"])), v(&["unknown"]));
        assert!(exceeding(&c, &parent, &v(&[])).is_empty());
        let open = Chain::default();
        assert!(exceeding(&c, &open, &v(&["anything", ALL_PROXY_MODELS])).is_empty());
    }

    #[test]
    fn key_check_uses_indexes_only() {
        let mut c = Connection::open_in_memory().expect("mem");
        crate::db::migrate::migrate(&mut c).expect("migrate");
        c.execute_batch("ANALYZE").expect("analyze");
        let mut st = c
            .prepare(&format!("EXPLAIN QUERY PLAN {KEY_CHECK}"))
            .expect("prepare");
        let details: Vec<String> = st
            .query_map(["x"], |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert!(details.len() >= 9, "{details:?}");
        for d in &details {
            assert!(
                !d.starts_with("SCAN"),
                "full scan in the key check: {d}\n{details:#?}"
            );
        }
    }

    #[test]
    fn passwords() {
        let h = hash_password("hunter2").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("hunter2", &h));
        assert!(!verify_password("hunter3", &h));
        // A stored hash asking for 4 GiB is never run (the kdf memory bound holds).
        let greedy = h.replace("m=19456", "m=4194304");
        assert_ne!(greedy, h);
        assert!(!try_verify_password("hunter2", &greedy).unwrap());
    }

    #[test]
    fn presented_key_forms() {
        let h = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(
            presented_key(&h("Authorization", "Bearer sk-a")).as_deref(),
            Some("sk-a")
        );
        assert_eq!(
            presented_key(&h("x-litellm-api-key", "sk-b")).as_deref(),
            Some("sk-b")
        );
        assert_eq!(
            presented_key(&h("api-key", "sk-c")).as_deref(),
            Some("sk-c")
        );
        assert_eq!(
            presented_key(&h("X-API-Key", "sk-d")).as_deref(),
            Some("sk-d")
        );
        assert_eq!(presented_key(&h("Authorization", "Bearer ")), None);
    }
}
