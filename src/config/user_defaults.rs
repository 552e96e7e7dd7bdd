//! `litellm_settings.default_internal_user_params` as read from the config: the validated
//! fields (a mapping; unknown fields warned about; an admin role stops the start). What a new
//! user gets from them is `crate::user_defaults`.

use crate::input::Body;
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
            // The two non-admin roles (`auth::Role`'s names; config does not depend on auth).
            Some(r) => match r.as_str() {
                "internal_user" | "internal_user_viewer" => Some(r),
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
}
