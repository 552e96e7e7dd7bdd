//! The process environment, read in one place. Owns the one snapshot of the environment
//! (`Env`, taken once at start: `os.environ/NAME` values of the config file and the master key
//! variables are looked up in it) and `EnvSettings`, the `LITEGATE_*` tuning variables parsed
//! into types. No other module reads the environment; each consumer gets its setting passed
//! down in `Config::env` and keeps its own default for an unset variable (documented beside
//! the consumer: `lib.rs`, `db/mod.rs`, `kdf.rs`, `http/throttle.rs`).
//!
//! (`RUST_LOG` and `LITEGATE_ACCESS_LOG_BATCH` are the exceptions: the logger is set up in
//! `main` before the config, so that the config's own warnings are logged.)
//!
//! A malformed value is ignored, as if unset (the variables are operators' tuning knobs, and
//! the tests set them; none is a security setting that must fail closed).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// A snapshot of the environment. Variables whose name or value is not UTF-8 are left out
/// (as `std::env::var` reports them unset).
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process's environment, now. Called once, by `config::load`.
    pub fn from_process() -> Env {
        Env::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// An environment of the given variables only (tests).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    fn parsed<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.get(name)?.parse().ok()
    }

    fn trimmed<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.get(name)?.trim().parse().ok()
    }

    /// A positive number of seconds (fractions allowed).
    fn seconds(&self, name: &str) -> Option<Duration> {
        self.parsed::<f64>(name)
            .filter(|s| *s > 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }
}

/// Values are secrets (provider keys, the master key): never printed.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Env({} variables)", self.vars.len())
    }
}

/// How SQLite commits (`LITEGATE_SYNCHRONOUS`); see `db::configure` for the trade-off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    #[default]
    Normal,
    Full,
}

/// The `LITEGATE_*` tuning variables. `None`: unset (or malformed), the consumer's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvSettings {
    /// `LITEGATE_CLIENT_TIMEOUT_SECS`: a client socket idle this long is closed (`lib::bind`).
    pub client_read_timeout: Option<Duration>,
    /// `LITEGATE_MAX_CONNECTIONS`: open client connections beyond this get a 503.
    pub max_connections: Option<usize>,
    /// `LITEGATE_BUDGET_RESET_SECS`: how often due budgets are reset.
    pub budget_reset_every: Option<Duration>,
    /// `LITEGATE_LEASE_SECS`: on PostgreSQL, how long a call's reservations and parallel slots
    /// outlive the last heartbeat of their instance (`call::shared`).
    pub lease_ttl: Option<Duration>,
    /// `LITEGATE_SYNCHRONOUS`: `FULL` (or `full`); anything else is `NORMAL`.
    pub synchronous: Synchronous,
    /// `LITEGATE_ARGON2_CONCURRENCY`: argon2 runs at once (`kdf`).
    pub argon2_concurrency: Option<usize>,
    /// The login throttle's limits (`http::throttle`).
    pub login: LoginSettings,
}

/// The login throttle's variables (`http/throttle.rs` documents their meaning and defaults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoginSettings {
    /// `LITEGATE_LOGIN_WINDOW_SECS` (whole seconds).
    pub window: Option<Duration>,
    /// `LITEGATE_LOGIN_MAX_FAILURES`.
    pub max_failures: Option<u32>,
    /// `LITEGATE_LOGIN_MAX_FAILURES_PER_ADDR`.
    pub max_failures_per_addr: Option<u32>,
    /// `LITEGATE_TRUSTED_PROXIES`: comma-separated addresses; entries that are not addresses
    /// are skipped.
    pub trusted_proxies: Vec<IpAddr>,
}

impl EnvSettings {
    pub fn from_env(env: &Env) -> EnvSettings {
        EnvSettings {
            client_read_timeout: env.seconds("LITEGATE_CLIENT_TIMEOUT_SECS"),
            max_connections: env
                .parsed::<usize>("LITEGATE_MAX_CONNECTIONS")
                .filter(|n| *n > 0),
            budget_reset_every: env.seconds("LITEGATE_BUDGET_RESET_SECS"),
            lease_ttl: env.seconds("LITEGATE_LEASE_SECS"),
            synchronous: match env.get("LITEGATE_SYNCHRONOUS") {
                Some("FULL") | Some("full") => Synchronous::Full,
                _ => Synchronous::Normal,
            },
            argon2_concurrency: env
                .parsed::<usize>("LITEGATE_ARGON2_CONCURRENCY")
                .filter(|n| *n > 0),
            login: LoginSettings {
                window: env
                    .trimmed::<u64>("LITEGATE_LOGIN_WINDOW_SECS")
                    .map(Duration::from_secs),
                max_failures: env.trimmed("LITEGATE_LOGIN_MAX_FAILURES"),
                max_failures_per_addr: env.trimmed("LITEGATE_LOGIN_MAX_FAILURES_PER_ADDR"),
                trusted_proxies: env
                    .get("LITEGATE_TRUSTED_PROXIES")
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect(),
            },
        }
    }
}

/// `DATABASE_URL` (LiteLLM's variable): a PostgreSQL URL selects the PostgreSQL store
/// (`config::DatabaseUrl`); used when the config file sets no `general_settings.database_url`.
pub fn database_url(env: &Env) -> Option<String> {
    env.get("DATABASE_URL")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// `LITELLM_SALT_KEY` (LiteLLM's variable): what stored models' secrets are encrypted with,
/// instead of the master key (so the master key can be rotated).
pub fn salt_key(env: &Env) -> Option<String> {
    env.get("LITELLM_SALT_KEY")
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The master key from the environment (`LITELLM_MASTER_KEY` first, as LiteLLM reads it),
/// used when the config file sets none.
pub fn master_key(env: &Env) -> Option<String> {
    env.get("LITELLM_MASTER_KEY")
        .or_else(|| env.get("LITEGATE_MASTER_KEY"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_means_the_consumers_default() {
        assert_eq!(
            EnvSettings::from_env(&Env::default()),
            EnvSettings::default()
        );
        assert_eq!(master_key(&Env::default()), None);
    }

    #[test]
    fn every_variable_is_parsed_as_before() {
        let env = Env::from_vars([
            ("LITEGATE_CLIENT_TIMEOUT_SECS", "0.5"),
            ("LITEGATE_MAX_CONNECTIONS", "50"),
            ("LITEGATE_BUDGET_RESET_SECS", "0.2"),
            ("LITEGATE_SYNCHRONOUS", "full"),
            ("LITEGATE_ARGON2_CONCURRENCY", "2"),
            ("LITEGATE_LOGIN_WINDOW_SECS", " 60 "),
            ("LITEGATE_LOGIN_MAX_FAILURES", "1000000"),
            ("LITEGATE_LOGIN_MAX_FAILURES_PER_ADDR", "6"),
            ("LITEGATE_TRUSTED_PROXIES", "10.0.0.1, nonsense,::1"),
            ("LITEGATE_MASTER_KEY", "sk-b"),
            ("LITELLM_MASTER_KEY", "sk-a"),
        ]);
        let s = EnvSettings::from_env(&env);
        assert_eq!(s.client_read_timeout, Some(Duration::from_millis(500)));
        assert_eq!(s.max_connections, Some(50));
        assert_eq!(s.budget_reset_every, Some(Duration::from_millis(200)));
        assert_eq!(s.synchronous, Synchronous::Full);
        assert_eq!(s.argon2_concurrency, Some(2));
        assert_eq!(s.login.window, Some(Duration::from_secs(60)));
        assert_eq!(s.login.max_failures, Some(1_000_000));
        assert_eq!(s.login.max_failures_per_addr, Some(6));
        let proxies: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        assert_eq!(s.login.trusted_proxies, proxies);
        assert_eq!(
            master_key(&env).as_deref(),
            Some("sk-a"),
            "LiteLLM's name first"
        );
        let env = Env::from_vars([("LITEGATE_MASTER_KEY", "sk-b")]);
        assert_eq!(master_key(&env).as_deref(), Some("sk-b"));
    }

    #[test]
    fn malformed_values_are_ignored() {
        let env = Env::from_vars([
            ("LITEGATE_CLIENT_TIMEOUT_SECS", "0"),
            ("LITEGATE_MAX_CONNECTIONS", "0"),
            ("LITEGATE_BUDGET_RESET_SECS", "-1"),
            ("LITEGATE_SYNCHRONOUS", "OFF"),
            ("LITEGATE_ARGON2_CONCURRENCY", "many"),
            ("LITEGATE_LOGIN_MAX_FAILURES", "-3"),
        ]);
        assert_eq!(EnvSettings::from_env(&env), EnvSettings::default());
        // Formerly a panic at start (`Duration::from_secs_f64(inf)`).
        let env = Env::from_vars([("LITEGATE_CLIENT_TIMEOUT_SECS", "inf")]);
        assert_eq!(EnvSettings::from_env(&env).client_read_timeout, None);
    }

    #[test]
    fn database_url_is_read_trimmed_and_empty_is_unset() {
        let env = Env::from_vars([("DATABASE_URL", " postgresql://u:p@h/db ")]);
        assert_eq!(database_url(&env).as_deref(), Some("postgresql://u:p@h/db"));
        assert_eq!(database_url(&Env::from_vars([("DATABASE_URL", "")])), None);
        assert_eq!(database_url(&Env::default()), None);
    }

    #[test]
    fn debug_shows_no_values() {
        let env = Env::from_vars([("OPENAI_API_KEY", "sk-secret")]);
        assert!(!format!("{env:?}").contains("secret"));
    }
}
