//! The config file as a whole: its top-level sections, typed, and how each one sets `Config`.
//! Owns `general_settings`, `litellm_settings`, `router_settings` (aliases and default
//! timeouts) and the top level's unknown-key warnings; `model_list` is in `model_list.rs`,
//! the value types and messages in `yaml.rs`. `environment_variables` is accepted and not
//! used (litegate reads the environment it is started with).
//!
//! Which keys warn: an unknown top-level key, `general_settings` key, `model_list` entry key or
//! `litellm_params` key is named in a warning. `litellm_settings` and `router_settings` hold
//! dozens of LiteLLM knobs (callbacks, retries, ...); their other keys are accepted silently.

use super::model_list::{self, Deployment, ModelList};
use super::yaml::{
    to_json, Count, Field, FromYaml, Mapping, NonNegative, Positive, Reader, Shaped, Yaml,
};
use super::UserDefaults;
use super::{Config, ConfigError};
use serde::Deserialize;
use std::path::PathBuf;

/// The file's top level.
#[derive(Deserialize, Default)]
#[serde(default)]
struct ConfigFile {
    model_list: ModelList,
    general_settings: Shaped<General>,
    litellm_settings: Shaped<Litellm>,
    router_settings: Shaped<Router>,
    /// Accepted, not used: litegate reads the environment it is started with.
    #[serde(rename = "environment_variables")]
    _environment_variables: Field<Yaml>,
    #[serde(flatten)]
    unknown: Mapping,
}

/// `general_settings`: every value may be `os.environ/NAME`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct General {
    master_key: Field<String>,
    database_path: Field<String>,
    /// A PostgreSQL URL (issue 14); `os.environ/DATABASE_URL` as in LiteLLM's examples.
    database_url: Field<String>,
    allow_weak_master_key: Field<bool>,
    metrics_require_auth: Field<bool>,
    backup_dir: Field<String>,
    max_request_size_mb: Field<Positive>,
    /// The limit on a non-stream upstream answer (`Config::max_upstream_body_bytes`).
    max_upstream_response_size_mb: Field<Positive>,
    database_connection_pool_limit: Field<Count>,
    /// Seconds; PostgreSQL only (`Config::db_timeout`).
    database_connection_timeout: Field<Positive>,
    /// `strict` or `default` (README "Budgets that never overshoot").
    budget_enforcement: Field<String>,
    /// Where budget alerts are posted (Slack-compatible JSON; `alerts`).
    alerting_webhook_url: Field<String>,
    /// Fractions of `max_budget` whose crossing is alerted (default LiteLLM's 0.85, 0.95, 1).
    budget_alert_thresholds: Field<Yaml>,
    /// Days audit entries are kept (0: for ever; README "Audit log").
    audit_log_retention_days: Field<Count>,
    #[serde(flatten)]
    unknown: Mapping,
}

/// `litellm_settings`: the keys litegate uses.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Litellm {
    /// The call timeout when neither the deployment nor `router_settings` sets one.
    request_timeout: Field<Positive>,
    /// What new users get by default (`user_defaults::UserDefaults`).
    default_internal_user_params: Field<Yaml>,
    /// The budget of an end user (a call's `user`) without a `max_budget` of its own.
    max_end_user_budget: Field<NonNegative>,
    /// The budget row that applies to an end user without a budget row of its own.
    max_end_user_budget_id: Field<String>,
    /// The other keys are accepted and not used (see the module doc).
    #[serde(flatten)]
    aliases: Aliases,
}

/// `router_settings`: the keys litegate uses.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Router {
    timeout: Field<Positive>,
    stream_timeout: Field<Positive>,
    #[serde(flatten)]
    aliases: Aliases,
}

/// Config-level model aliases (alias -> model_name). LiteLLM names them `model_group_alias`
/// (router) and `model_alias_map` (litellm); either name is read in either section.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Aliases {
    model_alias_map: Field<AliasMap>,
    model_group_alias: Field<AliasMap>,
}

/// Reads the file's text into `cfg` (the fields the file sets); warnings go to `r`.
pub(super) fn apply(cfg: &mut Config, text: &str, r: &mut Reader) -> Result<(), ConfigError> {
    let doc: Yaml = serde_yaml_ng::from_str(text)
        .map_err(|e| ConfigError(format!("{}: not valid YAML: {e}", r.file)))?;
    super::yaml::reject_tags(&doc, "", r)?;
    let file = match serde_yaml_ng::from_value::<Shaped<ConfigFile>>(doc) {
        Ok(Shaped::Missing) => return Ok(()),
        Ok(Shaped::Given(f)) => f,
        Ok(Shaped::BadKey) => return Err(r.error("top level key", "expected a string")),
        Ok(Shaped::Wrong) | Err(_) => {
            return Err(ConfigError(format!(
                "{}: the top level must be a mapping",
                r.file
            )))
        }
    };
    for k in file.unknown.keys().filter_map(|k| k.as_str()) {
        r.unknown("(top level)", k);
    }
    cfg.deployments = model_list::read(file.model_list, r)?;
    if let Some(g) = file.general_settings.get(
        r,
        "general_settings key",
        Some(("general_settings", "expected a mapping")),
    )? {
        g.apply(cfg, r)?;
    }
    // Not a mapping: accepted and ignored, like their unknown keys.
    let request_timeout = match file.litellm_settings.get(r, "litellm_settings", None)? {
        Some(l) => l.apply(cfg, r)?,
        None => None,
    };
    let (timeout, stream) = match file.router_settings.get(r, "router_settings", None)? {
        Some(rs) => rs.apply(cfg, r)?,
        None => (None, None),
    };
    apply_timeout_defaults(&mut cfg.deployments, timeout.or(request_timeout), stream);
    cfg.model_timeouts = (timeout.or(request_timeout), stream);
    Ok(())
}

impl Litellm {
    /// Sets what the section sets; returns `request_timeout`.
    fn apply(self, cfg: &mut Config, r: &mut Reader) -> Result<Option<f64>, ConfigError> {
        let f = |k: &str| format!("litellm_settings.{k}");
        let request_timeout = self.request_timeout.resolve(r, &f("request_timeout"))?;
        let defaults = f("default_internal_user_params");
        if let Some(v) = self.default_internal_user_params.read(r, &defaults)? {
            cfg.user_defaults = UserDefaults::parse(&to_json(&v))
                .map_err(|e| ConfigError(format!("{}: {e}", r.file)))?;
        }
        let max = self
            .max_end_user_budget
            .resolve(r, &f("max_end_user_budget"))?;
        cfg.end_users.max_budget = max.map(|m| m.0);
        cfg.end_users.budget_id = self
            .max_end_user_budget_id
            .resolve(r, &f("max_end_user_budget_id"))?
            .filter(|id| !id.is_empty());
        self.aliases.apply(cfg, r, "litellm_settings")?;
        Ok(request_timeout.map(|p| p.0))
    }
}

impl Router {
    /// Sets what the section sets; returns `(timeout, stream_timeout)`.
    fn apply(
        self,
        cfg: &mut Config,
        r: &mut Reader,
    ) -> Result<(Option<f64>, Option<f64>), ConfigError> {
        let timeout = self.timeout.resolve(r, "router_settings.timeout")?;
        let stream = self
            .stream_timeout
            .resolve(r, "router_settings.stream_timeout")?;
        self.aliases.apply(cfg, r, "router_settings")?;
        Ok((timeout.map(|p| p.0), stream.map(|p| p.0)))
    }
}

impl General {
    fn apply(self, cfg: &mut Config, r: &mut Reader) -> Result<(), ConfigError> {
        let f = |k: &str| format!("general_settings.{k}");
        if let Some(k) = self.master_key.resolve(r, &f("master_key"))? {
            cfg.master_key = Some(k);
        }
        if let Some(p) = self.database_path.resolve(r, &f("database_path"))? {
            cfg.db_path = PathBuf::from(p);
        }
        let key = f("database_url");
        if let Some(u) = self.database_url.resolve(r, &key)? {
            cfg.database_url = Some(super::DatabaseUrl::parse(u, &key)?);
        }
        if let Some(b) = self
            .allow_weak_master_key
            .resolve(r, &f("allow_weak_master_key"))?
        {
            cfg.allow_weak_master_key = b;
        }
        if let Some(b) = self
            .metrics_require_auth
            .resolve(r, &f("metrics_require_auth"))?
        {
            cfg.metrics_require_auth = b;
        }
        if let Some(p) = self.backup_dir.resolve(r, &f("backup_dir"))? {
            cfg.backup_dir = Some(PathBuf::from(p));
        }
        if let Some(Positive(mb)) = self
            .max_request_size_mb
            .resolve(r, &f("max_request_size_mb"))?
        {
            cfg.max_body_bytes = (mb * 1024.0 * 1024.0) as usize;
        }
        if let Some(Positive(mb)) = self
            .max_upstream_response_size_mb
            .resolve(r, &f("max_upstream_response_size_mb"))?
        {
            cfg.max_upstream_body_bytes = (mb * 1024.0 * 1024.0) as u64;
        }
        let pool = f("database_connection_pool_limit");
        if let Some(Count(n)) = self.database_connection_pool_limit.resolve(r, &pool)? {
            if !(1..=64).contains(&n) {
                return Err(r.error(&pool, "must be between 1 and 64"));
            }
            cfg.db_pool = n as usize;
        }
        let timeout = f("database_connection_timeout");
        if let Some(Positive(s)) = self.database_connection_timeout.resolve(r, &timeout)? {
            if !(0.1..=600.0).contains(&s) {
                return Err(r.error(&timeout, "must be between 0.1 and 600 (seconds)"));
            }
            cfg.db_timeout = std::time::Duration::from_secs_f64(s);
        }
        let key = f("budget_enforcement");
        match self.budget_enforcement.resolve(r, &key)?.as_deref() {
            None | Some("default") => {}
            Some("strict") => cfg.strict_budgets = true,
            Some(_) => return Err(r.error(&key, "expected 'strict' or 'default'")),
        }
        let key = f("alerting_webhook_url");
        if let Some(u) = self.alerting_webhook_url.resolve(r, &key)? {
            cfg.alerting.webhook = Some(super::WebhookUrl::parse(u, &key, r)?);
        }
        let key = f("budget_alert_thresholds");
        if let Some(v) = self.budget_alert_thresholds.read(r, &key)? {
            cfg.alerting.thresholds = thresholds(&v, r, &key)?;
        }
        let key = f("audit_log_retention_days");
        if let Some(Count(n)) = self.audit_log_retention_days.resolve(r, &key)? {
            if n < 0 {
                return Err(r.error(&key, "must be 0 (keep for ever) or a number of days"));
            }
            cfg.audit_retention_days = n;
        }
        // An unknown key's `os.environ/NAME` must still be set (as when every key was read).
        for (k, v) in &self.unknown {
            let k = k.as_str().unwrap_or_default();
            r.resolve(v, &f(k))?;
            r.unknown("general_settings", k);
        }
        Ok(())
    }
}

/// `budget_alert_thresholds`: a list of fractions of `max_budget` in (0, 1], at most 10.
fn thresholds(v: &Yaml, r: &Reader, key: &str) -> Result<Vec<f64>, ConfigError> {
    let bad = || {
        r.error(
            key,
            "expected a list of at most 10 numbers in (0, 1], e.g. [0.5, 0.8, 1.0]",
        )
    };
    let Yaml::Sequence(items) = v else {
        return Err(bad());
    };
    if items.len() > 10 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(items.len());
    for x in items {
        let super::yaml::NonNegative(t) =
            super::yaml::NonNegative::from_yaml(&r.resolve(x, key)?, r, key).map_err(|_| bad())?;
        if !(t > 0.0 && t <= 1.0) {
            return Err(bad());
        }
        out.push(t);
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    Ok(out)
}

impl Aliases {
    /// Adds the section's aliases to `cfg.aliases`; a later one replaces an earlier one of the
    /// same name (order: `litellm_settings` before `router_settings`, and in each
    /// `model_alias_map` before `model_group_alias`), with a warning.
    fn apply(&self, cfg: &mut Config, r: &mut Reader, section: &str) -> Result<(), ConfigError> {
        for (name, field) in [
            ("model_alias_map", &self.model_alias_map),
            ("model_group_alias", &self.model_group_alias),
        ] {
            let field_name = format!("{section}.{name}");
            if let Some(AliasMap(aliases)) = field.read(r, &field_name)? {
                for (alias, target) in aliases {
                    let old = cfg.aliases.insert(alias.clone(), target.clone());
                    if old.is_some_and(|o| o != target) {
                        r.warn(format_args!(
                            "{field_name}.{alias}: alias defined twice; using '{target}'"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A mapping of alias: model_name, in the file's order; LiteLLM also allows
/// `alias: {model: name, hidden: bool}`.
struct AliasMap(Vec<(String, String)>);

impl FromYaml for AliasMap {
    fn from_yaml(v: &Yaml, r: &Reader, field: &str) -> Result<Self, ConfigError> {
        let Yaml::Mapping(m) = v else {
            return Err(r.error(field, "expected a mapping of alias: model_name"));
        };
        let mut out = Vec::with_capacity(m.len());
        for (alias, target) in r.entries(m, field)? {
            let t = match target {
                Yaml::Mapping(tm) => tm
                    .get(Yaml::String("model".into()))
                    .map(|x| String::from_yaml(x, r, field))
                    .transpose()?,
                other => Some(String::from_yaml(other, r, field)?),
            };
            let t = t.ok_or_else(|| r.error(&format!("{field}.{alias}"), "needs a model"))?;
            out.push((alias, t));
        }
        Ok(AliasMap(out))
    }
}

/// The total deadline of an upstream call (issue 11: an upstream that never stops streaming
/// is cut there), in LiteLLM's order: a deployment's own `timeout` / `stream_timeout`, else
/// `router_settings.timeout` / `stream_timeout`, else `litellm_settings.request_timeout`, else
/// 600 s; a stream without any stream timeout gets the call timeout.
pub(super) fn apply_timeout_defaults(
    deps: &mut [Deployment],
    timeout: Option<f64>,
    stream: Option<f64>,
) {
    for d in deps {
        if d.timeout_secs <= 0.0 {
            d.timeout_secs = timeout.unwrap_or(600.0);
        }
        if d.stream_timeout_secs <= 0.0 {
            d.stream_timeout_secs = stream.unwrap_or(d.timeout_secs);
        }
    }
}
