//! Configuration. Owns `Config`, the one value every part of litegate is configured by, and
//! how it is built at start: the command line (`cli.rs`), LiteLLM's `config.yaml` read into
//! typed sections (`settings.rs`, `model_list.rs`, on the pieces in `yaml.rs`; values may be
//! `os.environ/NAME`) and the environment (`env.rs`, the only reader of it), merged once in
//! `load` (API.md §1). A bad config is an error naming the file, the field and what is wrong;
//! `main` exits 2 on it. Unknown keys are warnings, logged by `load`.

mod bedrock;
mod cli;
mod env;
mod model_list;
#[cfg(test)]
mod price_tests;
mod settings;
mod stored_model;
#[cfg(test)]
mod tests;
mod user_defaults;
mod yaml;

pub use cli::{parse_args, Args, Command, DbLocation, USAGE};
pub use env::{Env, EnvSettings, LoginSettings, Synchronous};
pub use model_list::Deployment;
pub use stored_model::{read_stored, Access, ModelEnv, StoredError};
pub use user_defaults::UserDefaults;

use std::path::{Path, PathBuf};

/// The configuration used when no `--config` is given: mock models only, so a fresh install
/// can be tried end to end with no network and no provider key.
pub const EMBEDDED_DEFAULT: &str = include_str!("../default_config.yaml");

/// `Config::db_timeout` by default: a PostgreSQL statement of litegate's takes milliseconds; a
/// server that has not answered in 3 s is treated as down (503), well inside a client's patience.
pub const DB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Publicly known example master keys (API.md §8): refused unless explicitly allowed.
pub const WEAK_MASTER_KEYS: &[&str] = &["sk-1234", "sk-12345", "sk-123456789", "sk-master"];

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub db_path: PathBuf,
    /// A PostgreSQL URL (`general_settings.database_url`, else `DATABASE_URL`): the store is
    /// PostgreSQL (issue 14); `None`: SQLite at `db_path`.
    pub database_url: Option<DatabaseUrl>,
    pub workers: usize,
    pub db_pool: usize,
    /// PostgreSQL: the bound on each wait for the server, a connect or a statement
    /// (`general_settings.database_connection_timeout`, LiteLLM's name; issue 14 item 5).
    pub db_timeout: std::time::Duration,
    pub max_body_bytes: usize,
    /// A non-stream upstream answer larger than this is a 502 (issue 11; it is held whole, so
    /// this times `workers` bounds that memory). `general_settings.max_upstream_response_size_mb`.
    pub max_upstream_body_bytes: u64,
    pub master_key: Option<String>,
    pub allow_weak_master_key: bool,
    pub deployments: Vec<Deployment>,
    /// Where the config came from, for messages ("embedded default" when none).
    pub source: String,
    /// How long in-flight calls may run after SIGTERM/SIGINT before the process exits.
    pub shutdown_grace: std::time::Duration,
    /// A request's head (request line and headers) must arrive within this long of its first
    /// byte (`--header-timeout`), and the whole request, body included, within
    /// `request_timeout` (`--request-timeout`); enforced by the tiny_http patch.
    pub header_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
    /// Where `POST /admin/backup` writes (default: `backups/` beside the database).
    pub backup_dir: Option<PathBuf>,
    /// `/metrics` needs a key when true (API.md §8; default false).
    pub metrics_require_auth: bool,
    /// Config-level model aliases (alias -> model_name), applied after a key's own aliases.
    pub aliases: std::collections::HashMap<String, String>,
    /// `litellm_settings.default_internal_user_params`: what new users get by default.
    pub user_defaults: UserDefaults,
    /// What applies to an end user (a model call's `user`) without a budget of its own.
    pub end_users: EndUserDefaults,
    /// The `LITEGATE_*` tuning variables, read once at start (`env.rs`).
    pub env: EnvSettings,
    /// What models stored in the database are encrypted with (issue 15 item 3):
    /// `LITELLM_SALT_KEY`, else the configured master key; `None` when neither is set (a
    /// generated master key is not kept), and then no model can be stored.
    pub salt_key: Option<crate::crypt::SaltKey>,
    /// The environment at start, for stored models added by proxy admins (`stored_model.rs`).
    pub model_env: ModelEnv,
    /// The file's default `timeout` / `stream_timeout` (`router_settings`, else
    /// `litellm_settings.request_timeout`), for stored models.
    pub model_timeouts: (Option<f64>, Option<f64>),
    /// `general_settings.budget_enforcement: strict`: a call is admitted only if its worst-case
    /// cost fits every budget it touches (README "Budgets that never overshoot").
    pub strict_budgets: bool,
    /// `general_settings.audit_log_retention_days`: audit entries older than this many days
    /// are pruned (default 365; 0 keeps them for ever).
    pub audit_retention_days: i64,
    /// Budget alerts: where to post them and at which fractions of `max_budget`.
    pub alerting: Alerting,
}

/// Budget alerts (`general_settings.alerting_webhook_url`, `budget_alert_thresholds`).
#[derive(Debug, Clone)]
pub struct Alerting {
    /// `None`: no alerts are sent (nor crossings remembered).
    pub webhook: Option<WebhookUrl>,
    /// Fractions of `max_budget`, ascending, each in (0, 1].
    pub thresholds: Vec<f64>,
}

impl Default for Alerting {
    fn default() -> Self {
        // LiteLLM's budget alerts: 15 % left, 5 % left, the budget crossed.
        Alerting {
            webhook: None,
            thresholds: vec![0.85, 0.95, 1.0],
        }
    }
}

/// A webhook URL: Slack's hold their secret in the path, so `Debug` shows the host only.
#[derive(Clone, PartialEq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    fn parse(u: String, key: &str, r: &yaml::Reader) -> Result<WebhookUrl, ConfigError> {
        let ok = (u.starts_with("http://") || u.starts_with("https://"))
            && u.len() <= 2048
            && !u.chars().any(char::is_control);
        if !ok {
            return Err(r.error(key, "expected an http:// or https:// URL"));
        }
        Ok(WebhookUrl(u))
    }
    /// The whole URL, secret included: for sending only, never for a message.
    pub fn secret(&self) -> &str {
        &self.0
    }
    /// `scheme://host[:port]`: what may be logged.
    pub fn safe(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("", &self.0));
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit('@').next().unwrap_or(host);
        format!("{scheme}://{host}")
    }
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookUrl({})", self.safe())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:4000".into(),
            db_path: PathBuf::from("litegate.db"),
            database_url: None,
            workers: 256,
            db_pool: 8,
            db_timeout: DB_TIMEOUT,
            max_body_bytes: 8 * 1024 * 1024,
            max_upstream_body_bytes: 64 * 1024 * 1024,
            master_key: None,
            allow_weak_master_key: false,
            deployments: Vec::new(),
            source: "embedded default".into(),
            shutdown_grace: std::time::Duration::from_secs(30),
            header_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(30),
            backup_dir: None,
            metrics_require_auth: false,
            aliases: Default::default(),
            user_defaults: Default::default(),
            end_users: EndUserDefaults::default(),
            env: EnvSettings::default(),
            salt_key: None,
            model_env: ModelEnv::default(),
            model_timeouts: (None, None),
            strict_budgets: false,
            audit_retention_days: 365,
            alerting: Alerting::default(),
        }
    }
}

/// The defaults of end users (README "End users"): LiteLLM's `litellm_settings`
/// `max_end_user_budget` (a budget for end users whose budget row sets no `max_budget`) and
/// `max_end_user_budget_id` (a budget row for end users without one of their own).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndUserDefaults {
    pub max_budget: Option<f64>,
    pub budget_id: Option<String>,
}

/// The PostgreSQL URL: it holds the password, so `Debug` and `safe` never show it.
#[derive(Clone, PartialEq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// A `postgresql://` or `postgres://` URL from `source` (a variable or config key name);
    /// anything else is refused (SQLite is chosen by leaving it unset).
    pub fn parse(url: String, source: &str) -> Result<DatabaseUrl, ConfigError> {
        if url.starts_with("postgresql://") || url.starts_with("postgres://") {
            Ok(DatabaseUrl(url))
        } else {
            Err(ConfigError(format!(
                "{source} must be a postgresql:// URL (leave it unset for SQLite, whose file is \
                 --db or general_settings.database_path)"
            )))
        }
    }

    /// The URL for the database client (secret: never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Host, port and database for messages: no user, password or query options.
    pub fn safe(&self) -> String {
        let rest = self.0.split_once("://").map_or("", |(_, r)| r);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        format!("postgresql://{rest}")
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.safe())
    }
}

/// A configuration error: exit code 2.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Builds the configuration: file (or the embedded default), then environment, then flags.
/// The environment is read here, once.
pub fn load(args: &Args) -> Result<Config, ConfigError> {
    load_with_env(args, &Env::from_process())
}

/// `load` with a given environment (tests).
pub fn load_with_env(args: &Args, env: &Env) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let (text, source) = match &args.config {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| ConfigError(format!("{}: cannot read: {e}", p.display())))?,
            p.display().to_string(),
        ),
        None => (EMBEDDED_DEFAULT.to_string(), "embedded default".to_string()),
    };
    let mut r = yaml::Reader::new(&source, env);
    let read = settings::apply(&mut cfg, &text, &mut r);
    for w in &r.warnings {
        log::warn!("{w}");
    }
    for m in &r.unpriced {
        log::warn!(
            "model '{m}' has no input_cost_per_token/output_cost_per_token in {source} and is not \
             in litegate's price table: its calls are recorded at 0 spend"
        );
    }
    read?;
    cfg.source = source;
    if cfg.master_key.is_none() {
        cfg.master_key = env::master_key(env);
    }
    cfg.env = EnvSettings::from_env(env);
    cfg.model_env = ModelEnv(std::sync::Arc::new(env.clone()));
    cfg.salt_key = env::salt_key(env)
        .or_else(|| cfg.master_key.clone())
        .map(crate::crypt::SaltKey::new);
    if cfg.database_url.is_none() {
        if let Some(u) = env::database_url(env) {
            cfg.database_url = Some(DatabaseUrl::parse(u, "DATABASE_URL")?);
        }
    }
    if let Some(db) = &args.db {
        cfg.db_path = db.clone();
    }
    if let Some(w) = args.workers {
        cfg.workers = w;
    }
    if args.allow_weak_master_key {
        cfg.allow_weak_master_key = true;
    }
    if let Some(t) = args.header_timeout_secs {
        cfg.header_timeout = std::time::Duration::from_secs_f64(t);
    }
    if let Some(t) = args.request_timeout_secs {
        cfg.request_timeout = std::time::Duration::from_secs_f64(t);
    }
    if cfg.request_timeout < cfg.header_timeout {
        return Err(ConfigError(
            "--request-timeout must not be shorter than --header-timeout".into(),
        ));
    }
    if let Some(g) = args.shutdown_grace_secs {
        cfg.shutdown_grace = std::time::Duration::from_secs_f64(g);
    }
    cfg.listen = match &args.listen {
        Some(l) => {
            if l.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(ConfigError(format!(
                    "--listen: '{l}' is not ADDR:PORT (e.g. 127.0.0.1:4000)"
                )));
            }
            l.clone()
        }
        None => {
            let host = args.host.clone().unwrap_or_else(|| "0.0.0.0".into());
            let port = args.port.unwrap_or(4000);
            if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        }
    };
    validate_master_key(&cfg)?;
    Ok(cfg)
}

/// The master key must look like one and must not be a published example (API.md §8).
fn validate_master_key(cfg: &Config) -> Result<(), ConfigError> {
    let Some(k) = &cfg.master_key else {
        return Ok(());
    };
    if !k.starts_with("sk-") {
        return Err(ConfigError(format!(
            "{}: general_settings.master_key: the master key must start with 'sk-'",
            cfg.source
        )));
    }
    if WEAK_MASTER_KEYS.contains(&k.as_str()) && !cfg.allow_weak_master_key {
        return Err(ConfigError(format!(
            "{}: general_settings.master_key: '{}' is a publicly known example key; choose a \
             random one (e.g. sk- followed by 32+ random characters) or pass \
             --allow-weak-master-key",
            cfg.source, k
        )));
    }
    Ok(())
}

/// `litegate check-config FILE`: loads the file as `serve` would.
pub fn check_file(path: &Path) -> Result<Config, ConfigError> {
    load(&Args {
        config: Some(path.to_path_buf()),
        ..Args::default()
    })
}

#[cfg(test)]
mod load_tests {
    use super::*;

    fn no_env() -> Env {
        Env::default()
    }

    #[test]
    fn embedded_default_loads() {
        let cfg = load_with_env(&Args::default(), &no_env()).expect("default");
        assert!(!cfg.deployments.is_empty());
        assert!(cfg.deployments.iter().all(|d| d.provider() == "mock"));
        assert_eq!(cfg.listen, "0.0.0.0:4000");
        assert_eq!(cfg.db_path, PathBuf::from("litegate.db"));
    }

    #[test]
    fn request_deadline_flags() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (_, a) =
            parse_args(&argv(&["--header-timeout=2.5", "--request-timeout", "20"])).expect("ok");
        assert_eq!(a.header_timeout_secs, Some(2.5));
        assert_eq!(a.request_timeout_secs, Some(20.0));
        let cfg = load_with_env(&a, &no_env()).expect("ok");
        assert_eq!(cfg.header_timeout, std::time::Duration::from_millis(2500));
        assert_eq!(cfg.request_timeout, std::time::Duration::from_secs(20));
        let d = load_with_env(&Args::default(), &no_env()).expect("default");
        assert_eq!(d.header_timeout, std::time::Duration::from_secs(10));
        assert_eq!(d.request_timeout, std::time::Duration::from_secs(30));
        assert!(parse_args(&argv(&["--header-timeout", "0"])).is_err());
        assert!(parse_args(&argv(&["--request-timeout", "x"])).is_err());
        let (_, a) = parse_args(&argv(&["--header-timeout", "20", "--request-timeout", "5"]))
            .expect("parses");
        assert!(
            load_with_env(&a, &no_env()).is_err(),
            "whole request shorter than its head"
        );
    }
}
