//! The nouns of the hierarchy (org → team → user → key) that every layer shares: the `Level`
//! a budget, limit or model list is set at, the *allowance* a level carries (budget, budget period, rate limits) with its column list, and
//! the one tri-state update rule `Patch<T>`. Holds no SQL statements, no HTTP parsing (that is
//! `http::patch`) and no authorization: who may change an allowance is `grant`'s business.

use serde_json::{json, Map, Value};

/// The allowance columns in the order `db::handle::allowance` and `allowance_args` use. Every
/// table with an allowance (api_keys, teams, users, budgets) names them alike.
#[macro_export]
macro_rules! allowance_columns {
    () => {
        "max_budget, soft_budget, budget_duration, budget_reset_at, tpm_limit, rpm_limit, \
         max_parallel_requests"
    };
}

/// `SET` list of an UPDATE writing the allowance from parameters `?1`..`?7`
/// (`db::handle::allowance_args` first, the statement's own parameters from `?8`).
#[macro_export]
macro_rules! allowance_set {
    () => {
        "max_budget = ?1, soft_budget = ?2, budget_duration = ?3, budget_reset_at = ?4, \
         tpm_limit = ?5, rpm_limit = ?6, max_parallel_requests = ?7"
    };
}

/// `VALUES` part of an INSERT for the allowance columns: parameters `?1`..`?7`.
#[macro_export]
macro_rules! allowance_values {
    () => {
        "?1, ?2, ?3, ?4, ?5, ?6, ?7"
    };
}

/// How many columns `allowance_columns!` names.
pub const ALLOWANCE_COLUMNS: usize = 7;

/// What one level may spend and how fast it may call: LiteLLM's budget and limit fields, as
/// they stand on a key, team, user or budget row. `None` = no limit at this level.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allowance {
    pub max_budget: Option<f64>,
    /// Alerts only; never refuses a call.
    pub soft_budget: Option<f64>,
    /// The period after which spend resets ("30d"), with the next reset time.
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
}

impl Allowance {
    /// The fields as LiteLLM names them in JSON (one object, merged into a resource's shape).
    pub fn json(&self) -> Map<String, Value> {
        let v = json!({
            "max_budget": self.max_budget,
            "soft_budget": self.soft_budget,
            "budget_duration": self.budget_duration,
            "budget_reset_at": self.budget_reset_at,
            "tpm_limit": self.tpm_limit,
            "rpm_limit": self.rpm_limit,
            "max_parallel_requests": self.max_parallel_requests,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// Does it limit anything? `soft_budget` only alerts, so it does not count.
    pub fn limits_anything(&self) -> bool {
        self.max_budget.is_some()
            || self.budget_duration.is_some()
            || self.tpm_limit.is_some()
            || self.rpm_limit.is_some()
            || self.max_parallel_requests.is_some()
    }

    /// Did any limit change between `self` and `new` (`soft_budget` aside)?
    pub fn limits_differ(&self, new: &Allowance) -> bool {
        self.max_budget != new.max_budget
            || self.budget_duration != new.budget_duration
            || self.tpm_limit != new.tpm_limit
            || self.rpm_limit != new.rpm_limit
            || self.max_parallel_requests != new.max_parallel_requests
    }

    /// The first limit `new` loosens compared with `self`, if any. A changed budget period
    /// always counts: a period (or another one) makes the budget reset, so no order is safe.
    pub fn loosened_by(&self, new: &Allowance) -> Option<&'static str> {
        if looser(self.max_budget, new.max_budget) {
            return Some("max_budget");
        }
        if self.budget_duration != new.budget_duration {
            return Some("budget_duration");
        }
        if looser(self.tpm_limit, new.tpm_limit) {
            return Some("tpm_limit");
        }
        if looser(self.rpm_limit, new.rpm_limit) {
            return Some("rpm_limit");
        }
        if looser(self.max_parallel_requests, new.max_parallel_requests) {
            return Some("max_parallel_requests");
        }
        None
    }
}

/// A level of the hierarchy: where a model list, budget or rate limit is set. Memberships carry
/// a budget of their own (`max_budget_in_team`, `max_budget_in_organization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Key,
    Team,
    Org,
    User,
    TeamMember,
    OrgMember,
    /// The end user a model call's `user` field names (LiteLLM's customer): a budget and rate
    /// limits of its own, whatever key the call came with.
    EndUser,
}

impl Level {
    /// How many levels there are (`index` is below it).
    pub const COUNT: usize = 7;

    /// The level's name in messages, as LiteLLM spells it (API.md §7): "Key", "Organization".
    pub fn name(self) -> &'static str {
        match self {
            Level::Key => "Key",
            Level::Team => "Team",
            Level::Org => "Organization",
            Level::User => "User",
            Level::TeamMember => "Team member",
            Level::OrgMember => "Organization member",
            Level::EndUser => "End User",
        }
    }

    /// The name in lower case, inside a sentence: "key", "organization".
    pub fn noun(self) -> &'static str {
        match self {
            Level::Key => "key",
            Level::Team => "team",
            Level::Org => "organization",
            Level::User => "user",
            Level::TeamMember => "team member",
            Level::OrgMember => "organization member",
            Level::EndUser => "end user",
        }
    }

    /// A dense index, for per-level tables.
    pub fn index(self) -> usize {
        match self {
            Level::Key => 0,
            Level::Team => 1,
            Level::Org => 2,
            Level::User => 3,
            Level::TeamMember => 4,
            Level::OrgMember => 5,
            Level::EndUser => 6,
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `new` looser than `old`, where `None` means no limit.
pub fn looser<T: PartialOrd>(old: Option<T>, new: Option<T>) -> bool {
    match (old, new) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(o), Some(n)) => n > o,
    }
}

/// One field of an update request, by the rule every update endpoint follows (README "Updates:
/// absent, null, value"; LiteLLM's `model_dump(exclude_unset=True)`, a JSON merge patch):
/// a field left out keeps the stored value, `null` clears it, a value sets it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<T: Clone> Patch<T> {
    /// Writes the patch into a nullable stored field.
    pub fn apply(&self, slot: &mut Option<T>) {
        match self {
            Patch::Absent => {}
            Patch::Null => *slot = None,
            Patch::Value(v) => *slot = Some(v.clone()),
        }
    }

    /// The value the field has after the patch, given the stored one.
    pub fn over(&self, stored: Option<T>) -> Option<T> {
        let mut slot = stored;
        self.apply(&mut slot);
        slot
    }
}

impl<T> Patch<T> {
    /// Present in the request, as a value or as `null`.
    pub fn present(&self) -> bool {
        !matches!(self, Patch::Absent)
    }

    /// The value, when one was sent.
    pub fn value(&self) -> Option<&T> {
        match self {
            Patch::Value(v) => Some(v),
            _ => None,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Patch<U> {
        match self {
            Patch::Absent => Patch::Absent,
            Patch::Null => Patch::Null,
            Patch::Value(v) => Patch::Value(f(v)),
        }
    }
}

/// The allowance fields of an update (or a create: a patch over nothing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllowancePatch {
    pub max_budget: Patch<f64>,
    pub soft_budget: Patch<f64>,
    /// (text, seconds): a new period restarts the reset clock; `null` clears both.
    pub budget_duration: Patch<(String, i64)>,
    pub tpm_limit: Patch<i64>,
    pub rpm_limit: Patch<i64>,
    pub max_parallel_requests: Patch<i64>,
}

impl AllowancePatch {
    /// The request field names, in the order `first_present` reports them.
    pub const FIELDS: [&'static str; 6] = [
        "max_budget",
        "soft_budget",
        "tpm_limit",
        "rpm_limit",
        "max_parallel_requests",
        "budget_duration",
    ];

    /// Only `max_budget` set (membership budgets).
    pub fn max_budget(max_budget: Patch<f64>) -> AllowancePatch {
        AllowancePatch {
            max_budget,
            ..AllowancePatch::default()
        }
    }

    /// The first field present in the request (even as `null`), if any.
    pub fn first_present(&self) -> Option<&'static str> {
        let present = [
            self.max_budget.present(),
            self.soft_budget.present(),
            self.tpm_limit.present(),
            self.rpm_limit.present(),
            self.max_parallel_requests.present(),
            self.budget_duration.present(),
        ];
        Self::FIELDS
            .into_iter()
            .zip(present)
            .find_map(|(f, p)| p.then_some(f))
    }

    /// Applies the patch at `now_ms`; a new period sets the next reset `secs` from now, a
    /// cleared one clears it.
    pub fn apply(&self, a: &mut Allowance, now_ms: i64) {
        self.max_budget.apply(&mut a.max_budget);
        self.soft_budget.apply(&mut a.soft_budget);
        self.tpm_limit.apply(&mut a.tpm_limit);
        self.rpm_limit.apply(&mut a.rpm_limit);
        self.max_parallel_requests
            .apply(&mut a.max_parallel_requests);
        match &self.budget_duration {
            Patch::Absent => {}
            Patch::Null => {
                a.budget_duration = None;
                a.budget_reset_at = None;
            }
            Patch::Value((text, secs)) => {
                a.budget_duration = Some(text.clone());
                a.budget_reset_at = Some(crate::util::iso_from_ms(
                    now_ms.saturating_add(secs.saturating_mul(1000)),
                ));
            }
        }
    }

    /// A new allowance: the patch over nothing.
    pub fn to_new(&self) -> Allowance {
        let mut a = Allowance::default();
        self.apply(&mut a, crate::util::now_ms());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_keeps_clears_sets() {
        let mut slot = Some(5);
        Patch::Absent.apply(&mut slot);
        assert_eq!(slot, Some(5));
        Patch::Value(7).apply(&mut slot);
        assert_eq!(slot, Some(7));
        Patch::<i32>::Null.apply(&mut slot);
        assert_eq!(slot, None);
    }

    #[test]
    fn allowance_patch_duration_sets_and_clears_the_reset() {
        let mut a = Allowance::default();
        let p = AllowancePatch {
            budget_duration: Patch::Value(("1d".into(), 86_400)),
            ..AllowancePatch::default()
        };
        p.apply(&mut a, 0);
        assert_eq!(a.budget_duration.as_deref(), Some("1d"));
        assert_eq!(
            a.budget_reset_at.as_deref(),
            Some("1970-01-02T00:00:00.000Z")
        );
        let clear = AllowancePatch {
            budget_duration: Patch::Null,
            ..AllowancePatch::default()
        };
        assert_eq!(clear.first_present(), Some("budget_duration"));
        clear.apply(&mut a, 0);
        assert_eq!(a, Allowance::default());
    }

    #[test]
    fn loosening_is_named() {
        let old = Allowance {
            max_budget: Some(5.0),
            ..Allowance::default()
        };
        let mut new = old.clone();
        new.max_budget = Some(4.0);
        assert_eq!(old.loosened_by(&new), None);
        new.max_budget = None;
        assert_eq!(old.loosened_by(&new), Some("max_budget"));
    }
}
