//! Reading the one update rule from a request body: each field as a `Patch` (absent / `null` /
//! value, README "Updates: absent, null, value"), and the allowance fields every resource
//! shares as one `AllowancePatch`. Validation of each value is `Body`'s (400 naming the
//! field); what an update may change, and who may change it, is the handlers' and `grant`'s.

use super::Body;
use crate::error::Result;
use crate::hierarchy::{AllowancePatch, Patch};

/// Field `f` as a patch: absent, `null`, or the value `get` reads (and validates).
pub fn field<T>(
    b: &Body,
    f: &str,
    get: impl Fn(&Body, &str) -> Result<Option<T>>,
) -> Result<Patch<T>> {
    if !b.has(f) {
        return Ok(Patch::Absent);
    }
    Ok(match get(b, f)? {
        Some(v) => Patch::Value(v),
        None => Patch::Null,
    })
}

/// A nullable text field where `""` means none as well (`key_alias`, `team_alias`).
pub fn text(b: &Body, f: &str) -> Result<Patch<String>> {
    Ok(match field(b, f, Body::opt_str)? {
        Patch::Value(s) if s.is_empty() => Patch::Null,
        p => p,
    })
}

/// The allowance fields of a body: `max_budget`, `soft_budget` (finite numbers ≥ 0),
/// `tpm_limit`, `rpm_limit`, `max_parallel_requests` (integers ≥ 0), `budget_duration` (a
/// duration such as `30d`).
pub fn allowance(b: &Body) -> Result<AllowancePatch> {
    Ok(AllowancePatch {
        max_budget: field(b, "max_budget", Body::opt_budget)?,
        soft_budget: field(b, "soft_budget", Body::opt_budget)?,
        budget_duration: field(b, "budget_duration", Body::opt_duration)?,
        tpm_limit: field(b, "tpm_limit", Body::opt_limit)?,
        rpm_limit: field(b, "rpm_limit", Body::opt_limit)?,
        max_parallel_requests: field(b, "max_parallel_requests", Body::opt_limit)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: serde_json::Value) -> Body {
        match v {
            serde_json::Value::Object(m) => Body(m),
            _ => Body(Default::default()),
        }
    }

    #[test]
    fn absent_null_and_value() {
        let b = body(json!({"max_budget": null, "tpm_limit": 5, "team_alias": ""}));
        let p = allowance(&b).unwrap_or_default();
        assert_eq!(p.max_budget, Patch::Null);
        assert_eq!(p.tpm_limit, Patch::Value(5));
        assert_eq!(p.rpm_limit, Patch::Absent);
        assert_eq!(p.first_present(), Some("max_budget"));
        assert!(matches!(text(&b, "team_alias"), Ok(Patch::Null)));
        assert!(matches!(text(&b, "key_alias"), Ok(Patch::Absent)));
    }

    #[test]
    fn a_bad_value_is_a_400() {
        let b = body(json!({"max_budget": -1}));
        assert!(allowance(&b).is_err());
    }
}
