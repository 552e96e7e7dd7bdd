//! Defaults for new users: LiteLLM's `litellm_settings.default_internal_user_params`
//! (API.md §9 "Users created implicitly"). Owns what a user gets when nobody said otherwise:
//! `/user/new` fills the fields its body leaves out; users created implicitly (a `member_add`
//! or `members_with_roles` naming an unknown user) get these fields, and when the settings name
//! no `models`, `no-default-models`, so a team admin who adds a stranger cannot hand them
//! personal model access (a personal key would escape the team's models and budgets).

use crate::access::NO_DEFAULT_MODELS;
use crate::auth::Role;
use crate::db::users::UserFields;
use crate::http::Body;
use crate::util;
use serde_json::{Map, Value};

/// The fields `default_internal_user_params` may set (others are ignored with a warning).
const KNOWN: &[&str] = &[
    "models",
    "user_role",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
];

/// Validated defaults; every field `None` when the config sets none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserDefaults {
    pub models: Option<Vec<String>>,
    /// Never an admin role: refused at start (an implicitly created admin would let a team
    /// admin mint a key with proxy authority).
    pub user_role: Option<String>,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<(String, i64)>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
}

impl UserDefaults {
    /// Parses the settings mapping; the error names the field (the config loader adds the file).
    pub fn parse(v: &Value) -> Result<UserDefaults, String> {
        let field = "litellm_settings.default_internal_user_params";
        let map: Map<String, Value> = match v {
            Value::Null => return Ok(UserDefaults::default()),
            Value::Object(m) => m.clone(),
            _ => return Err(format!("{field}: expected a mapping")),
        };
        for k in map.keys() {
            if !KNOWN.contains(&k.as_str()) && k != "available_teams" {
                log::warn!("{field}.{k} is not used by litegate; ignored");
            }
        }
        let b = Body(map);
        let e = |x: crate::error::Error| format!("{field}: {x}");
        let user_role = match b.opt_str("user_role").map_err(e)? {
            None => None,
            Some(r) => match Role::parse(&r) {
                Some(Role::InternalUser | Role::InternalUserViewer) => Some(r),
                _ => {
                    return Err(format!(
                        "{field}.user_role: must be internal_user or internal_user_viewer \
                         (new users never get an admin role by default); got '{r}'"
                    ))
                }
            },
        };
        Ok(UserDefaults {
            models: b.opt_list("models").map_err(e)?,
            user_role,
            max_budget: b.opt_budget("max_budget").map_err(e)?,
            soft_budget: b.opt_budget("soft_budget").map_err(e)?,
            budget_duration: b.opt_duration("budget_duration").map_err(e)?,
            tpm_limit: b.opt_limit("tpm_limit").map_err(e)?,
            rpm_limit: b.opt_limit("rpm_limit").map_err(e)?,
            max_parallel_requests: b.opt_limit("max_parallel_requests").map_err(e)?,
        })
    }

    /// The role of a new user whose creator named none.
    pub fn role(&self) -> &str {
        self.user_role
            .as_deref()
            .unwrap_or(Role::InternalUser.as_str())
    }

    /// Fills what `/user/new` left out (LiteLLM applies the defaults to absent fields only).
    pub fn fill(&self, f: &mut UserFields, models_given: bool) {
        if !models_given {
            if let Some(m) = &self.models {
                f.models = m.clone();
            }
        }
        let a = &mut f.allowance;
        a.max_budget = a.max_budget.or(self.max_budget);
        a.soft_budget = a.soft_budget.or(self.soft_budget);
        if a.budget_duration.is_none() {
            if let Some((d, secs)) = &self.budget_duration {
                a.budget_duration = Some(d.clone());
                a.budget_reset_at = Some(util::iso_in_secs(*secs));
            }
        }
        a.tpm_limit = a.tpm_limit.or(self.tpm_limit);
        a.rpm_limit = a.rpm_limit.or(self.rpm_limit);
        a.max_parallel_requests = a.max_parallel_requests.or(self.max_parallel_requests);
    }

    /// A user created because a membership named them: the defaults, and no personal model
    /// access unless the settings grant some. `role` is the global role the creating endpoint
    /// chose (None: the settings' role, else `internal_user`).
    pub fn implicit(&self, email: Option<&str>, role: Option<&str>) -> UserFields {
        let mut f = UserFields {
            email: email.map(str::to_string),
            user_role: role.unwrap_or(self.role()).to_string(),
            models: vec![NO_DEFAULT_MODELS.to_string()],
            metadata: Value::Object(Map::new()),
            ..UserFields::default()
        };
        self.fill(&mut f, false);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn implicit_users_get_no_models_unless_configured() {
        let none = UserDefaults::default();
        let f = none.implicit(Some("a@x"), None);
        assert_eq!(f.models, vec![NO_DEFAULT_MODELS.to_string()]);
        assert_eq!(f.user_role, "internal_user");
        assert_eq!(f.allowance.max_budget, None);

        let d = UserDefaults::parse(&json!({
            "models": ["A"], "max_budget": 2.5, "budget_duration": "1d",
            "user_role": "internal_user_viewer", "available_teams": ["t"]
        }))
        .unwrap();
        let f = d.implicit(None, None);
        assert_eq!(f.models, vec!["A".to_string()]);
        assert_eq!(f.user_role, "internal_user_viewer");
        assert_eq!(f.allowance.max_budget, Some(2.5));
        assert_eq!(f.allowance.budget_duration.as_deref(), Some("1d"));
        assert!(f.allowance.budget_reset_at.is_some());
        // An explicit empty list is the admin's choice: every proxy model.
        let open = UserDefaults::parse(&json!({"models": []})).unwrap();
        assert!(open.implicit(None, None).models.is_empty());
    }

    #[test]
    fn fill_keeps_what_the_caller_gave() {
        let d = UserDefaults::parse(&json!({"models": ["A"], "max_budget": 1.0})).unwrap();
        let mut f = UserFields::default();
        f.allowance.max_budget = Some(9.0);
        d.fill(&mut f, true);
        assert!(f.models.is_empty());
        assert_eq!(f.allowance.max_budget, Some(9.0));
        d.fill(&mut f, false);
        assert_eq!(f.models, vec!["A".to_string()]);
    }

    #[test]
    fn no_default_models_grants_nothing_even_when_configured_as_a_name() {
        use crate::access::{Catalog, Chain};
        let dep = crate::access::catalog::tests::dep;
        // A deployment and an access group that happen to carry the reserved name.
        let cat = Catalog::new(vec![
            dep("A", &[NO_DEFAULT_MODELS]),
            dep(NO_DEFAULT_MODELS, &[]),
        ]);
        let user = vec![NO_DEFAULT_MODELS.to_string()];
        let personal = Chain {
            user: Some(&user),
            ..Chain::default()
        };
        assert!(personal.effective(&cat).is_empty());
        assert!(!personal.allows(&cat, "A"));
        assert!(!personal.allows(&cat, NO_DEFAULT_MODELS));
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            json!({"user_role": "proxy_admin"}),
            json!({"user_role": "proxy_admin_viewer"}),
            json!({"user_role": "nobody"}),
            json!({"models": "A"}),
            json!({"max_budget": -1}),
            json!({"budget_duration": "soon"}),
            json!(["models"]),
        ] {
            assert!(UserDefaults::parse(&bad).is_err(), "{bad}");
        }
    }
}
