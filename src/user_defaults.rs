//! Defaults for new users: LiteLLM's `litellm_settings.default_internal_user_params`
//! (API.md §9 "Users created implicitly"). Owns what a user gets when nobody said otherwise:
//! `/user/new` fills the fields its body leaves out; users created implicitly (a `member_add`
//! or `members_with_roles` naming an unknown user) get these fields, and when the settings name
//! no `models`, `no-default-models`, so a team admin who adds a stranger cannot hand them
//! personal model access (a personal key would escape the team's models and budgets).
//! The settings are read and validated by `config::UserDefaults`; this file adds what they do.

use crate::access::NO_DEFAULT_MODELS;
use crate::auth::Role;
use crate::db::users::UserFields;
use crate::util;
use serde_json::{Map, Value};

pub use crate::config::UserDefaults;

impl UserDefaults {
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
