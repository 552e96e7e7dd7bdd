//! What a key request may carry: the settable fields of `/key/generate`, `/key/update` and
//! `/key/regenerate` read by the one update rule (`KeyFields`), the fields no caller may set,
//! and a caller-chosen raw key. Parsing and validation only; who may change which field of
//! which key is `keys`' and `grant`'s.

use super::{patch, Body};
use crate::auth::{Caller, Role};
use crate::db::keys::NewKey;
use crate::error::{Error, Result};
use crate::hierarchy::{AllowancePatch, Patch};
use crate::util;
use serde_json::Value;

/// Fields a caller may never set on a key, because they widen reach beyond the key's owner.
const FORBIDDEN_FIELDS: &[&str] = &[
    "token",
    "user_role",
    "allowed_routes",
    "permissions",
    "allowed_cache_controls",
    "spend",
];

pub fn reject_forbidden_fields(body: &Body, who: &Caller) -> Result<()> {
    for f in FORBIDDEN_FIELDS {
        if body.given(f) {
            if *f == "token" {
                return Err(Error::bad_param(
                    "token",
                    "`token` cannot be set; use `key` for a custom key (admins only)",
                ));
            }
            if who.role != Role::ProxyAdmin || *f != "spend" {
                return Err(Error::Forbidden(format!(
                    "`{f}` cannot be set on a key by this caller"
                )));
            }
        }
    }
    Ok(())
}

/// A raw key the caller chose (`key`, `new_key`): proxy admins only, `sk-` and 16 characters
/// at least.
pub fn check_custom_key(who: &Caller, field: &str, k: &str) -> Result<()> {
    if who.role != Role::ProxyAdmin {
        return Err(Error::Forbidden(
            "only proxy admins may set a custom key".into(),
        ));
    }
    if !k.starts_with("sk-") || k.len() < 16 {
        return Err(Error::bad_param(
            field,
            "a custom key must start with 'sk-' and be at least 16 characters",
        ));
    }
    Ok(())
}

/// The last instant our ISO-8601 text can hold (9999-12-31T23:59:59.999Z). A later one is
/// written with a 5-digit year that the key check cannot read back, i.e. a key expired at birth.
const MAX_ISO_MS: i64 = 253_402_300_799_999;

/// `secs` from now as stored ISO-8601 text; 400 naming `field` past year 9999 or on overflow.
fn from_now(field: &str, secs: i64) -> Result<String> {
    secs.checked_mul(1000)
        .and_then(|ms| util::now_ms().checked_add(ms))
        .filter(|ms| *ms <= MAX_ISO_MS)
        .map(util::iso_from_ms)
        .ok_or_else(|| Error::bad_param(field, format!("`{field}` reaches past the year 9999")))
}

/// The settable fields of a key, each by the one update rule (`Patch`: absent keeps, `null`
/// clears, a value sets); on generate, a patch over an empty key. `models`, `aliases`,
/// `metadata` and `blocked` cannot be empty, so for them `null` is the same as absent.
pub struct KeyFields {
    pub alias: Patch<String>,
    pub models: Option<Vec<String>>,
    pub aliases: Option<Value>,
    pub metadata: Option<Value>,
    /// The expiry time `duration` gives.
    pub expires: Patch<String>,
    pub allowance: AllowancePatch,
    pub blocked: Option<bool>,
}

pub fn key_fields(b: &Body) -> Result<KeyFields> {
    let expires = patch::field(b, "duration", Body::opt_duration)?;
    Ok(KeyFields {
        alias: patch::text(b, "key_alias")?,
        models: b.opt_list("models")?,
        aliases: b.opt_obj("aliases")?.map(Value::Object),
        metadata: b.opt_obj("metadata")?.map(Value::Object),
        expires: match expires {
            Patch::Value((_, secs)) => Patch::Value(from_now("duration", secs)?),
            Patch::Null => Patch::Null,
            Patch::Absent => Patch::Absent,
        },
        allowance: patch::allowance(b)?,
        blocked: b.opt_bool("blocked")?,
    })
}

impl KeyFields {
    /// `blocked` given and different from the key's: the same decision as `/key/block`, so
    /// `/key/update` and `/key/regenerate` are no side door around it.
    pub fn changes_blocked(&self, k: &NewKey) -> bool {
        self.blocked.is_some_and(|b| b != k.blocked)
    }

    pub fn widens_budget(&self) -> bool {
        self.allowance.first_present().is_some()
    }

    pub fn apply(self, k: &mut NewKey) {
        self.alias.apply(&mut k.key_alias);
        if let Some(m) = self.models {
            k.models = m;
        }
        if let Some(a) = self.aliases {
            k.aliases = a;
        }
        if let Some(m) = self.metadata {
            k.metadata = m;
        }
        self.expires.apply(&mut k.expires);
        self.allowance.apply(&mut k.allowance, util::now_ms());
        if let Some(b) = self.blocked {
            k.blocked = b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_iso_ms_is_the_last_readable_instant() {
        assert_eq!(util::iso_from_ms(MAX_ISO_MS), "9999-12-31T23:59:59.999Z");
        assert_eq!(
            util::ms_from_iso(&util::iso_from_ms(MAX_ISO_MS)),
            Some(MAX_ISO_MS)
        );
        assert_eq!(util::ms_from_iso(&util::iso_from_ms(MAX_ISO_MS + 1)), None);
        assert!(from_now("duration", 3600).is_ok());
        assert!(from_now("duration", i64::MAX / 1000).is_err());
        assert!(from_now("duration", i64::MAX).is_err());
    }
}
