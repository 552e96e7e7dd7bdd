//! The end user of a model call (issue 15 item 4; LiteLLM's customer): the body's `user` field
//! names them. Owns reading that name, the one read of the end user (only when a call names one:
//! a call without `user` pays nothing), the blocked refusal in LiteLLM's words, and which budget
//! and rate limits apply to them (their budget row's, else the config's defaults). The budget
//! and limits are admitted with the key's levels (`admission`: one more holder, in memory on
//! SQLite, shared on PostgreSQL); the spend is recorded by `db::spend::record`, which creates an
//! unknown end user with its first spend.

use crate::config::EndUserDefaults;
use crate::db::end_users::{self, EndUserCheck};
use crate::db::Pool;
use crate::error::{Error, Result};
use crate::hierarchy::Level;
use serde_json::{Map, Value};

/// The end user a call answers to, as read at admission.
#[derive(Debug, Clone, PartialEq)]
pub struct EndUser {
    pub id: String,
    pub check: EndUserCheck,
    /// Their budget row's `max_budget`, else `litellm_settings.max_end_user_budget`.
    pub max_budget: Option<f64>,
}

/// The end user a body names: its `user`, a string (the body's shape check refused other
/// types), bounded as every identifier (≤ 256 characters, no control characters: 400 naming
/// `user`). An empty `user` names nobody.
pub fn named(fields: &Map<String, Value>) -> Result<Option<&str>> {
    match fields.get("user").and_then(Value::as_str) {
        Some("") | None => Ok(None),
        Some(u) => crate::input::check("user", u).map(|_| Some(u)),
    }
}

impl EndUser {
    /// Reads end user `id` (one statement) and refuses a blocked one: 400, LiteLLM's words.
    pub fn load(pool: &Pool, defaults: &EndUserDefaults, id: &str) -> Result<EndUser> {
        let check = pool.read_now(|c, pending| {
            let mut check = end_users::load_for_call(c, id, defaults.budget_id.as_deref())?;
            check.spend += pending(Level::EndUser, id, "");
            Ok(check)
        })?;
        if check.blocked {
            return Err(Error::bad(format!(
                "User blocked from making LLM API Calls. User={id}"
            )));
        }
        Ok(EndUser {
            id: id.to_string(),
            max_budget: check.max_budget.or(defaults.max_budget),
            check,
        })
    }

    /// The budget that applies, as `budget::budgets_of` gives the key's: (level, holder, spend,
    /// max).
    pub fn budget(&self) -> Option<(Level, String, f64, f64)> {
        self.max_budget
            .map(|max| (Level::EndUser, self.id.clone(), self.check.spend, max))
    }

    /// The rate limits that apply, if any is set.
    pub fn limit(&self) -> Option<super::limits::Limit> {
        let c = &self.check;
        if c.rpm_limit.is_none() && c.tpm_limit.is_none() && c.max_parallel_requests.is_none() {
            return None;
        }
        Some(super::limits::Limit {
            scope: Level::EndUser,
            id: self.id.clone(),
            rpm: c.rpm_limit,
            tpm: c.tpm_limit,
            parallel: c.max_parallel_requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn the_user_field_names_the_end_user_within_the_identifier_rule() {
        assert_eq!(named(&fields(json!({"user": "c1"}))).ok(), Some(Some("c1")));
        assert_eq!(named(&fields(json!({"user": ""}))).ok(), Some(None));
        assert_eq!(named(&fields(json!({"user": null}))).ok(), Some(None));
        assert_eq!(named(&fields(json!({}))).ok(), Some(None));
        let long = fields(json!({"user": "x".repeat(257)}));
        assert_eq!(named(&long).err().map(|e| e.status()), Some(400));
        let ctl = fields(json!({"user": "a\u{1b}[2J"}));
        assert_eq!(named(&ctl).err().map(|e| e.status()), Some(400));
    }

    #[test]
    fn own_budget_first_then_the_default_and_limits_only_when_set() {
        let mut e = EndUser {
            id: "c".into(),
            check: EndUserCheck::default(),
            max_budget: None,
        };
        assert_eq!(e.budget(), None);
        assert!(e.limit().is_none());
        e.max_budget = Some(2.0);
        e.check.spend = 1.5;
        e.check.rpm_limit = Some(3);
        assert_eq!(e.budget(), Some((Level::EndUser, "c".into(), 1.5, 2.0)));
        let l = e.limit().expect("rpm set");
        assert_eq!((l.scope, l.rpm, l.tpm), (Level::EndUser, Some(3), None));
    }
}
