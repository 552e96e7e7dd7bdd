//! The audit log (issue 16 item 3; README "Audit log"): what one entry holds and the one way
//! to append it. A management write calls `Entry::record` with the handle of its own
//! transaction, so a denied or failed write leaves no entry and a committed one always has
//! it. An entry says who (`Actor`: user id, key alias or name, role), what (action, object
//! type and id, the object's organization for org admins' views) and the fields that changed
//! (`before` / `after`, only those that differ) — scrubbed of every secret (`scrub`) before
//! it is stored. Also the master key's fingerprint, compared at start (`master_key_check`).
//!
//! The statements are `db::audit`'s; the listing is `http::audit`'s.

use crate::auth::Caller;
use crate::db::audit::{self as store, AuditRow};
use crate::db::handle::Handle;
use crate::error::Result;
use crate::util;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Who made a change. Never a raw key or its hash: `api_key` is the key's alias, else its
/// abbreviated name (`sk-...abcd`).
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<String>,
    pub api_key: Option<String>,
    pub role: String,
}

impl Actor {
    /// The caller of a management route.
    pub fn of(who: &Caller) -> Actor {
        Actor {
            user_id: who.user_id.clone(),
            api_key: who.key.as_ref().map(|k| {
                k.key_alias
                    .clone()
                    .filter(|a| !a.is_empty())
                    .unwrap_or_else(|| k.key_name.clone())
            }),
            role: who.role.as_str().to_string(),
        }
    }

    /// The server itself (start-up checks, a `litegate state apply` from the command line).
    pub fn system() -> Actor {
        Actor {
            user_id: None,
            api_key: None,
            role: "system".into(),
        }
    }

    /// Someone not yet known (a failed UI login: the name they gave, never the password).
    pub fn anonymous(user_id: Option<String>) -> Actor {
        Actor {
            user_id,
            api_key: None,
            role: "anonymous".into(),
        }
    }
}

/// One entry to append: `Entry::new(action, table, id)`, then `org`, `before`, `after`.
#[derive(Debug, Clone)]
pub struct Entry {
    action: String,
    table: String,
    object_id: String,
    org: Option<String>,
    before: Option<Value>,
    after: Option<Value>,
}

impl Entry {
    pub fn new(action: &str, table: &str, object_id: &str) -> Entry {
        Entry {
            action: action.into(),
            table: table.into(),
            object_id: object_id.into(),
            org: None,
            before: None,
            after: None,
        }
    }

    /// The organization the object belongs to (org admins of it see the entry).
    pub fn org(mut self, org: Option<&str>) -> Entry {
        self.org = org.filter(|o| !o.is_empty()).map(str::to_string);
        self
    }

    pub fn before(mut self, v: Value) -> Entry {
        self.before = Some(v);
        self
    }

    pub fn after(mut self, v: Value) -> Entry {
        self.after = Some(v);
        self
    }

    /// Appends the entry on `c`, the handle of the write's own transaction.
    pub fn record<C: Handle + ?Sized>(self, c: &C, who: &Actor) -> Result<()> {
        let (before, after) = changed(
            self.before.map(|v| scrub(&v)),
            self.after.map(|v| scrub(&v)),
        );
        let row = AuditRow {
            id: util::uuid4(),
            updated_at: util::now_iso(),
            changed_by: who.user_id.clone(),
            changed_by_api_key: who.api_key.clone(),
            changed_by_role: who.role.clone(),
            action: self.action,
            table_name: self.table,
            object_id: scrub_text(&self.object_id),
            organization_id: self.org,
            before_value: before.map(|v| v.to_string()),
            updated_values: after.map(|v| v.to_string()),
        };
        store::insert(c, &row)?;
        Ok(())
    }
}

/// A key's object id in the log: 16 hex characters of a digest of its stored hash — stable
/// for the key, and neither the key nor its hash (the entry also names `key_name`).
pub fn key_object_id(token_hash: &str) -> String {
    let d = Sha256::digest(format!("litegate-audit-key:{token_hash}").as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Field names that are never stored (lower case; also any name containing one of
/// `SECRET_PARTS`).
const SECRET_FIELDS: &[&str] = &[
    "token",
    "key",
    "key_hash",
    "token_hash",
    "hash",
    "master_key",
    "master_hash",
    "salt_key",
    "new_key",
    "new_master_key",
    "litellm_credential_name",
];
const SECRET_PARTS: &[&str] = &[
    "password",
    "secret",
    "api_key",
    "credential",
    "private_key",
    "access_key",
    "session_token",
    "authorization",
    "vertex_credentials",
];

/// Is this field name a secret's?
pub fn is_secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_FIELDS.contains(&n.as_str()) || SECRET_PARTS.iter().any(|p| n.contains(p))
}

/// A text that looks like a raw key (`sk-` and long, not an abbreviated `sk-...abcd`).
fn looks_like_raw_key(s: &str) -> bool {
    s.starts_with("sk-") && !s.contains("...") && s.len() > 12
}

fn scrub_text(s: &str) -> String {
    if looks_like_raw_key(s) {
        "[redacted]".into()
    } else {
        s.to_string()
    }
}

/// `v` without secret fields (at any depth) and with raw-key-like texts redacted.
pub fn scrub(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !is_secret_field(k))
                .map(|(k, v)| (k.clone(), scrub(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(scrub).collect()),
        Value::String(s) => Value::String(scrub_text(s)),
        other => other.clone(),
    }
}

/// Fields that identify an object in an entry even when unchanged.
const NAMING: &[&str] = &["key_name", "key_alias"];

/// Of two objects, only the top-level fields that differ (plus `NAMING`); anything else as
/// it is.
pub fn changed(before: Option<Value>, after: Option<Value>) -> (Option<Value>, Option<Value>) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            let keep = |k: &String, mine: &Value, other: &Map<String, Value>| {
                NAMING.contains(&k.as_str()) || other.get(k) != Some(mine)
            };
            let b2: Map<String, Value> = b
                .iter()
                .filter(|(k, v)| keep(k, v, &a))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let a2: Map<String, Value> = a
                .iter()
                .filter(|(k, v)| keep(k, v, &b))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (Some(Value::Object(b2)), Some(Value::Object(a2)))
        }
        other => other,
    }
}

/// The master key's fingerprint: a salted digest, neither the key nor the hash that
/// authenticates it.
pub fn fingerprint(master_hash: &str) -> String {
    let d = Sha256::digest(format!("litegate-audit-master:{master_hash}").as_bytes());
    d.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// At start: when the master key differs from the one the store saw last, one
/// `rotate` entry on `master_key` (the first start records `create`). The fingerprint is
/// kept in `settings`.
pub fn master_key_check(pool: &crate::db::Pool, master_hash: &str) -> Result<()> {
    let now = fingerprint(master_hash);
    pool.write_db(|tx| {
        let stored = store::setting(tx, store::MASTER_FINGERPRINT)?;
        let action = match stored {
            Some(s) if s == now => return Ok(()),
            Some(_) => "rotate",
            None => "create",
        };
        store::put_setting(tx, store::MASTER_FINGERPRINT, &now)?;
        Entry::new(action, "master_key", "master_key").record(tx, &Actor::system())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrub_drops_secret_fields_at_any_depth_and_raw_keys() {
        let v = json!({
            "token": "abc", "key": "sk-1234567890abcdef", "key_name": "sk-...cdef",
            "litellm_params": {"api_key": "x", "aws_secret_access_key": "y", "model": "m",
                               "vertex_credentials": "{}"},
            "password": "p", "note": "sk-abcdefghijklmnop", "models": ["a"]
        });
        let s = scrub(&v);
        assert_eq!(
            s,
            json!({"key_name": "sk-...cdef", "litellm_params": {"model": "m"},
                   "note": "[redacted]", "models": ["a"]})
        );
    }

    #[test]
    fn changed_keeps_only_differing_fields_and_names() {
        let (b, a) = changed(
            Some(json!({"a": 1, "b": 2, "key_name": "sk-...x"})),
            Some(json!({"a": 1, "b": 3, "c": 4, "key_name": "sk-...x"})),
        );
        assert_eq!(b, Some(json!({"b": 2, "key_name": "sk-...x"})));
        assert_eq!(a, Some(json!({"b": 3, "c": 4, "key_name": "sk-...x"})));
        let (b, a) = changed(None, Some(json!({"a": 1})));
        assert_eq!((b, a), (None, Some(json!({"a": 1}))));
    }

    #[test]
    fn fingerprints_are_neither_the_input_nor_equal_across_inputs() {
        let f = fingerprint("h1");
        assert_ne!(f, fingerprint("h2"));
        assert!(!f.contains("h1"));
        assert_eq!(key_object_id("abc").len(), 16);
    }
}
