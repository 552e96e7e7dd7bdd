//! The table of kinds: every object `litegate export` writes and `apply` reads, with its YAML
//! section, its table, its fields (YAML name, column, type) in the fixed order of the file, and
//! its references. A new kind is one more entry in `KINDS`, after the kinds it refers to; a kind-specific rule beyond types and references goes in
//! `check.rs`'s `check_kind`.

use crate::auth::role;

/// What a field holds, how it is stored and what a file may give for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Part of the object's id: a non-empty text (≤ 256 characters, no control characters).
    Id,
    /// A key's token: 64 lowercase hex digits (the SHA-256 of the raw key, never the key).
    Token,
    /// A required text.
    Str,
    /// An optional text.
    Text,
    /// An optional text unique among the objects of its kind (`key_alias`).
    Unique,
    /// An optional e-mail, unique case-insensitively among users.
    Email,
    /// One of the listed values (required).
    Role(&'static [&'static str]),
    /// One of the listed values, or null.
    Choice(&'static [&'static str]),
    /// A reference to an object of the section named (optional).
    Ref(&'static str),
    /// An optional budget: a finite number ≥ 0.
    Money,
    /// An optional limit: an integer ≥ 0.
    Limit,
    /// `budget_duration`: `30s`, `15m`, `1h`, `7d`, … (optional); the reset time follows it.
    Duration,
    /// An optional ISO-8601 UTC timestamp (`expires`).
    Time,
    /// A 0/1 flag (`blocked`), default false.
    Flag,
    /// An authority rank 0..=3 (`access::authority`: who set a limit, a lower rank only
    /// tightens). Left out of a file: kept; on a created object 3, since whoever applies a
    /// file is a proxy admin.
    Rank,
    /// A JSON list of strings stored as text, default `[]`.
    List,
    /// A nullable JSON list of strings (`team_member_permissions`: null = never set).
    OptList,
    /// A JSON object stored as text, default `{}`.
    Obj,
    /// A nullable JSON object (`model_max_budget`).
    OptObj,
    /// A UI user's argon2id password hash (never a plaintext); shown as `(secret)` in plans.
    Secret,
    /// A database model's `litellm_params` as stored: a mapping whose string values are
    /// LiteLLM's ciphertexts (`crypt`, keyed by `LITELLM_SALT_KEY` or the master key), never a
    /// plaintext; numbers and flags as they are. Required. `state::models` checks that each
    /// value opens with the applying instance's key.
    Sealed,
    /// `created_at` / `created_by`: data of the object, kept when a file leaves them out (a
    /// created object gets now / nobody). `keeps`.
    Created,
    CreatedBy,
}

impl Ty {
    /// Left out of a file, the field keeps the stored value instead of taking its default.
    pub fn keeps(self) -> bool {
        matches!(self, Ty::Created | Ty::CreatedBy | Ty::Rank)
    }
}

/// One field: its YAML name, its column, its type.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub col: &'static str,
    pub ty: Ty,
}

const fn f(name: &'static str, col: &'static str, ty: Ty) -> Field {
    Field { name, col, ty }
}

/// One kind of object.
#[derive(Debug)]
pub struct Kind {
    /// The YAML section (`teams`).
    pub section: &'static str,
    /// The plan's name for one object (`team`).
    pub noun: &'static str,
    pub table: &'static str,
    /// The first `key` fields are the object's id (two for memberships).
    pub key: usize,
    pub fields: &'static [Field],
    /// The table has `budget_duration` and `budget_reset_at`: the reset time is set from the
    /// duration when the object is created or its duration changes (never exported).
    pub resets: bool,
}

impl Kind {
    pub fn cols(&self) -> Vec<&'static str> {
        self.fields.iter().map(|f| f.col).collect()
    }
}

const BUDGET: Ty = Ty::Ref("budgets");
const ORG: Ty = Ty::Ref("organizations");
const USER: Ty = Ty::Ref("users");
const TEAM: Ty = Ty::Ref("teams");

/// The allowance fields of users, teams and keys (`hierarchy::Allowance` minus the reset time).
macro_rules! allowance {
    () => {
        [
            f("max_budget", "max_budget", Ty::Money),
            f("soft_budget", "soft_budget", Ty::Money),
            f("budget_duration", "budget_duration", Ty::Duration),
            f("tpm_limit", "tpm_limit", Ty::Limit),
            f("rpm_limit", "rpm_limit", Ty::Limit),
            f("max_parallel_requests", "max_parallel_requests", Ty::Limit),
        ]
    };
}

const fn cat<const A: usize, const B: usize, const C: usize, const N: usize>(
    a: [Field; A],
    b: [Field; B],
    c: [Field; C],
) -> [Field; N] {
    let mut out = [f("", "", Ty::Text); N];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < B {
        out[A + j] = b[j];
        j += 1;
    }
    let mut k = 0;
    while k < C {
        out[A + B + k] = c[k];
        k += 1;
    }
    out
}

const USER_ROLES: &[&str] = &[
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
];
const ORG_ROLES: &[&str] = &[role::ORG_ADMIN, "internal_user", "internal_user_viewer"];
const TEAM_ROLES: &[&str] = &[role::TEAM_ADMIN, "user"];
const REACHES: &[&str] = &["owner", "calls"];

const BUDGET_FIELDS: [Field; 10] = [
    f("budget_id", "id", Ty::Id),
    f("max_budget", "max_budget", Ty::Money),
    f("soft_budget", "soft_budget", Ty::Money),
    f("budget_duration", "budget_duration", Ty::Duration),
    f("tpm_limit", "tpm_limit", Ty::Limit),
    f("rpm_limit", "rpm_limit", Ty::Limit),
    f("max_parallel_requests", "max_parallel_requests", Ty::Limit),
    f("model_max_budget", "model_max_budget", Ty::OptObj),
    f("created_at", "created_at", Ty::Created),
    f("created_by", "created_by", Ty::CreatedBy),
];

const ORG_FIELDS: [Field; 8] = [
    f("organization_id", "id", Ty::Id),
    f("organization_alias", "alias", Ty::Str),
    f("models", "models", Ty::List),
    f("budget_id", "budget_id", BUDGET),
    f("blocked", "blocked", Ty::Flag),
    f("metadata", "metadata", Ty::Obj),
    f("created_at", "created_at", Ty::Created),
    f("created_by", "created_by", Ty::CreatedBy),
];

const USER_FIELDS: [Field; 12] = cat(
    [
        f("user_id", "id", Ty::Id),
        f("user_email", "email", Ty::Email),
        f("user_role", "user_role", Ty::Role(USER_ROLES)),
        f("password_hash", "password_hash", Ty::Secret),
        f("models", "models", Ty::List),
    ],
    allowance!(),
    [f("created_at", "created_at", Ty::Created)],
);

const TEAM_FIELDS: [Field; 17] = cat(
    [
        f("team_id", "id", Ty::Id),
        f("team_alias", "alias", Ty::Text),
        f("organization_id", "organization_id", ORG),
        f("models", "models", Ty::List),
    ],
    allowance!(),
    [
        f("blocked", "blocked", Ty::Flag),
        f("metadata", "metadata", Ty::Obj),
        f("model_aliases", "model_aliases", Ty::Obj),
        f("team_member_permissions", "member_permissions", Ty::OptList),
        f("blocked_rank", "blocked_rank", Ty::Rank),
        f("limits_rank", "limits_rank", Ty::Rank),
        f("created_at", "created_at", Ty::Created),
    ],
);

const ORG_MEMBER_FIELDS: [Field; 6] = [
    f("organization_id", "organization_id", ORG),
    f("user_id", "user_id", USER),
    f("user_role", "user_role", Ty::Role(ORG_ROLES)),
    f("budget_id", "budget_id", BUDGET),
    f("budget_rank", "budget_rank", Ty::Rank),
    f("created_at", "created_at", Ty::Created),
];

const TEAM_MEMBER_FIELDS: [Field; 6] = [
    f("team_id", "team_id", TEAM),
    f("user_id", "user_id", USER),
    f("role", "role", Ty::Role(TEAM_ROLES)),
    f("budget_id", "budget_id", BUDGET),
    f("budget_rank", "budget_rank", Ty::Rank),
    f("created_at", "created_at", Ty::Created),
];

const KEY_FIELDS: [Field; 22] = cat(
    [
        f("token", "token", Ty::Token),
        f("key_name", "key_name", Ty::Str),
        f("key_alias", "key_alias", Ty::Unique),
        f("team_id", "team_id", TEAM),
        f("user_id", "user_id", USER),
        f("organization_id", "organization_id", ORG),
        f("models", "models", Ty::List),
        f("aliases", "aliases", Ty::Obj),
        f("expires", "expires", Ty::Time),
        f("blocked", "blocked", Ty::Flag),
    ],
    allowance!(),
    [
        f("metadata", "metadata", Ty::Obj),
        f("reach", "reach", Ty::Role(REACHES)),
        f("issued_by", "issued_by", USER),
        f("limits_rank", "limits_rank", Ty::Rank),
        f("created_at", "created_at", Ty::Created),
        f("created_by", "created_by", Ty::CreatedBy),
    ],
);

const END_USER_FIELDS: [Field; 7] = [
    f("user_id", "id", Ty::Id),
    f("alias", "alias", Ty::Text),
    f(
        "allowed_model_region",
        "allowed_model_region",
        Ty::Choice(&["eu", "us"]),
    ),
    f("default_model", "default_model", Ty::Text),
    f("budget_id", "budget_id", BUDGET),
    f("blocked", "blocked", Ty::Flag),
    f("created_at", "created_at", Ty::Created),
];

/// Database models (`/model/new`, LiteLLM's ProxyModelTable; schema 0008): `litellm_params` as
/// stored, encrypted (README "State as a file"); `model_info` as stored (its `id` and, for a
/// team's model, `team_id` and `team_public_model_name`).
const MODEL_FIELDS: [Field; 7] = [
    f("model_id", "model_id", Ty::Id),
    f("model_name", "model_name", Ty::Str),
    f("team_id", "team_id", TEAM),
    f("litellm_params", "litellm_params", Ty::Sealed),
    f("model_info", "model_info", Ty::Obj),
    f("created_at", "created_at", Ty::Created),
    f("created_by", "created_by", Ty::CreatedBy),
];

/// Every kind, parents before children: references point only to earlier kinds, so creates run
/// in this order and deletes in the reverse.
pub const KINDS: &[Kind] = &[
    Kind {
        section: "budgets",
        noun: "budget",
        table: "budgets",
        key: 1,
        fields: &BUDGET_FIELDS,
        resets: true,
    },
    Kind {
        section: "organizations",
        noun: "organization",
        table: "organizations",
        key: 1,
        fields: &ORG_FIELDS,
        resets: false,
    },
    Kind {
        section: "users",
        noun: "user",
        table: "users",
        key: 1,
        fields: &USER_FIELDS,
        resets: true,
    },
    Kind {
        section: "teams",
        noun: "team",
        table: "teams",
        key: 1,
        fields: &TEAM_FIELDS,
        resets: true,
    },
    Kind {
        section: "organization_members",
        noun: "organization_member",
        table: "organization_members",
        key: 2,
        fields: &ORG_MEMBER_FIELDS,
        resets: false,
    },
    Kind {
        section: "team_members",
        noun: "team_member",
        table: "team_members",
        key: 2,
        fields: &TEAM_MEMBER_FIELDS,
        resets: false,
    },
    Kind {
        section: "keys",
        noun: "key",
        table: "api_keys",
        key: 1,
        fields: &KEY_FIELDS,
        resets: true,
    },
    // End users (LiteLLM's customers, `/customer/*`; schema 0007): who a call's `user` names.
    Kind {
        section: "end_users",
        noun: "end_user",
        table: "end_users",
        key: 1,
        fields: &END_USER_FIELDS,
        resets: false,
    },
    // Models managed at runtime (`/model/new`): after teams, which a team's model refers to.
    // Config models are not state.
    Kind {
        section: "models",
        noun: "model",
        table: "proxy_models",
        key: 1,
        fields: &MODEL_FIELDS,
        resets: false,
    },
];

/// Tables of the schema that are not state, and why (a table in neither `KINDS` nor here fails
/// a test: a new table must be decided on).
pub const NOT_STATE: &[(&str, &str)] = &[
    ("spend_logs", "usage, not configuration"),
    (
        "settings",
        "the instance's own (a generated master key's hash): the master key comes from the config",
    ),
    ("ui_sessions", "web UI logins of this instance"),
    (
        "model_generation",
        "a counter every model write bumps, not configuration",
    ),
    (
        "budget_alerts",
        "which budget alerts were sent this period: usage, not configuration",
    ),
];

/// The position of `section` in `KINDS`.
pub fn index_of(section: &str) -> Option<usize> {
    KINDS.iter().position(|k| k.section == section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_state_or_left_out_on_purpose() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrate::migrate(&mut c).unwrap();
        let mut st = c
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap();
        let tables: Vec<String> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for t in &tables {
            let known = KINDS.iter().any(|k| k.table == t) || NOT_STATE.iter().any(|(n, _)| n == t);
            assert!(
                known,
                "table {t}: add a kind to KINDS or a reason to NOT_STATE"
            );
        }
        for k in KINDS {
            assert!(tables.iter().any(|t| t == k.table), "{}", k.table);
        }
    }

    #[test]
    fn references_point_to_earlier_kinds_and_fields_are_distinct() {
        for (i, k) in KINDS.iter().enumerate() {
            assert!(k.key >= 1 && k.key <= k.fields.len(), "{}", k.section);
            for (j, fl) in k.fields.iter().enumerate() {
                assert!(!fl.name.is_empty(), "{}", k.section);
                assert!(
                    k.fields[..j]
                        .iter()
                        .all(|o| o.name != fl.name && o.col != fl.col),
                    "{}.{} twice",
                    k.section,
                    fl.name
                );
                if let Ty::Ref(s) = fl.ty {
                    let at = index_of(s).unwrap();
                    assert!(at < i, "{}.{} refers to a later kind", k.section, fl.name);
                }
            }
            assert_eq!(
                k.resets,
                k.fields.iter().any(|f| f.ty == Ty::Duration),
                "{}",
                k.section
            );
        }
    }
}
