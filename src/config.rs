//! Configuration. Owns the command line, LiteLLM's `config.yaml` (with `os.environ/NAME`
//! values) and the environment, merged once at start into one `Config` (API.md §1). A bad
//! config is an error naming the file, the field and what is wrong; `main` exits 2 on it.

use serde_yaml_ng::Value as Yaml;
use std::path::{Path, PathBuf};

/// The configuration used when no `--config` is given: mock models only, so a fresh install
/// can be tried end to end with no network and no provider key.
pub const EMBEDDED_DEFAULT: &str = include_str!("default_config.yaml");

/// Publicly known example master keys (API.md §8): refused unless explicitly allowed.
pub const WEAK_MASTER_KEYS: &[&str] = &["sk-1234", "sk-12345", "sk-123456789", "sk-master"];

#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The public name callers use (may be a wildcard such as `openai/*`).
    pub model_name: String,
    /// `litellm_params.model`, `provider/name`.
    pub model: String,
    pub api_base: Option<String>,
    pub api_key: Option<String>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub input_cost_per_token: f64,
    pub output_cost_per_token: f64,
    pub timeout_secs: f64,
    pub stream_timeout_secs: f64,
    pub id: String,
    pub access_groups: Vec<String>,
    /// The rest of `model_info`, shown by `/model/info`.
    pub model_info: serde_json::Map<String, serde_json::Value>,
}

impl Deployment {
    pub fn provider(&self) -> &str {
        self.model.split('/').next().unwrap_or("")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub db_path: PathBuf,
    pub workers: usize,
    pub db_pool: usize,
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
    pub user_defaults: crate::user_defaults::UserDefaults,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:4000".into(),
            db_path: PathBuf::from("litegate.db"),
            workers: 256,
            db_pool: 8,
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
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Serve,
    Version,
    Help,
    CheckConfig(PathBuf),
    /// `litegate backup DEST`: a consistent copy of the live database.
    Backup(PathBuf),
}

#[derive(Debug, Default, Clone)]
pub struct Args {
    pub config: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub listen: Option<String>,
    pub db: Option<PathBuf>,
    pub workers: Option<usize>,
    pub allow_weak_master_key: bool,
    pub shutdown_grace_secs: Option<f64>,
    pub header_timeout_secs: Option<f64>,
    pub request_timeout_secs: Option<f64>,
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

pub const USAGE: &str = "usage: litegate [serve] [--config FILE] [--host HOST] [--port PORT] \
[--listen ADDR:PORT] [--db PATH] [--workers N] [--shutdown-grace SECS] [--allow-weak-master-key]
       [--header-timeout SECS (10)] [--request-timeout SECS (30)]
       litegate backup DEST [--db PATH | --config FILE]
       litegate check-config FILE
       litegate --version";

pub fn parse_args(argv: &[String]) -> Result<(Command, Args), ConfigError> {
    let mut args = Args::default();
    let mut cmd = Command::Serve;
    let mut i = 0;
    let need = |i: usize, flag: &str| -> Result<String, ConfigError> {
        argv.get(i + 1)
            .cloned()
            .ok_or_else(|| ConfigError(format!("{flag} needs a value\n{USAGE}")))
    };
    while i < argv.len() {
        let a = argv[i].as_str();
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a, None),
        };
        let value = |i: &mut usize| -> Result<String, ConfigError> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => {
                    let v = need(*i, flag)?;
                    *i += 1;
                    Ok(v)
                }
            }
        };
        match flag {
            "serve" if i == 0 => {}
            "check-config" if i == 0 => {
                let f = need(i, "check-config")?;
                i += 1;
                cmd = Command::CheckConfig(PathBuf::from(f));
            }
            "backup" if i == 0 => {
                let f = need(i, "backup")?;
                i += 1;
                cmd = Command::Backup(PathBuf::from(f));
            }
            "--shutdown-grace" => {
                let v = value(&mut i)?;
                let secs: f64 = v.parse().map_err(|_| {
                    ConfigError(format!(
                        "--shutdown-grace: '{v}' is not a number of seconds"
                    ))
                })?;
                if !(0.0..=86_400.0).contains(&secs) {
                    return Err(ConfigError(
                        "--shutdown-grace must be between 0 and 86400 seconds".into(),
                    ));
                }
                args.shutdown_grace_secs = Some(secs);
            }
            "--header-timeout" | "--request-timeout" => {
                let v = value(&mut i)?;
                let secs: f64 = v.parse().map_err(|_| {
                    ConfigError(format!("{flag}: '{v}' is not a number of seconds"))
                })?;
                if !(0.1..=3_600.0).contains(&secs) {
                    return Err(ConfigError(format!(
                        "{flag} must be between 0.1 and 3600 seconds"
                    )));
                }
                if flag == "--header-timeout" {
                    args.header_timeout_secs = Some(secs);
                } else {
                    args.request_timeout_secs = Some(secs);
                }
            }
            "--version" | "-V" | "version" => cmd = Command::Version,
            "--help" | "-h" | "help" => cmd = Command::Help,
            "--config" | "-c" => args.config = Some(PathBuf::from(value(&mut i)?)),
            "--host" => args.host = Some(value(&mut i)?),
            "--port" | "-p" => {
                let v = value(&mut i)?;
                args.port = Some(
                    v.parse()
                        .map_err(|_| ConfigError(format!("--port: '{v}' is not a port number")))?,
                );
            }
            "--listen" => args.listen = Some(value(&mut i)?),
            "--db" => args.db = Some(PathBuf::from(value(&mut i)?)),
            "--workers" => {
                let v = value(&mut i)?;
                let n: usize = v.parse().map_err(|_| {
                    ConfigError(format!("--workers: '{v}' is not a positive number"))
                })?;
                if n == 0 || n > 10_000 {
                    return Err(ConfigError("--workers must be between 1 and 10000".into()));
                }
                args.workers = Some(n);
            }
            "--allow-weak-master-key" => args.allow_weak_master_key = true,
            other => return Err(ConfigError(format!("unknown argument '{other}'\n{USAGE}"))),
        }
        i += 1;
    }
    Ok((cmd, args))
}

/// Builds the configuration: file (or the embedded default), then environment, then flags.
pub fn load(args: &Args) -> Result<Config, ConfigError> {
    let env = |k: &str| std::env::var(k).ok();
    load_with_env(args, &env)
}

pub fn load_with_env(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let (text, source) = match &args.config {
        Some(p) => (
            std::fs::read_to_string(p)
                .map_err(|e| ConfigError(format!("{}: cannot read: {e}", p.display())))?,
            p.display().to_string(),
        ),
        None => (EMBEDDED_DEFAULT.to_string(), "embedded default".to_string()),
    };
    cfg.source = source.clone();
    apply_yaml(&mut cfg, &text, &source, env)?;
    if cfg.master_key.is_none() {
        cfg.master_key = env("LITELLM_MASTER_KEY").or_else(|| env("LITEGATE_MASTER_KEY"));
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

/// Resolves `os.environ/NAME` values.
fn resolve(
    v: &Yaml,
    file: &str,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Yaml, ConfigError> {
    if let Yaml::String(s) = v {
        if let Some(name) = s.strip_prefix("os.environ/") {
            return env(name).map(Yaml::String).ok_or_else(|| {
                ConfigError(format!(
                    "{file}: {field}: environment variable {name} is not set"
                ))
            });
        }
    }
    Ok(v.clone())
}

fn as_str(v: &Yaml, file: &str, field: &str) -> Result<String, ConfigError> {
    match v {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        _ => Err(ConfigError(format!("{file}: {field}: expected a string"))),
    }
}

fn as_f64(v: &Yaml, file: &str, field: &str) -> Result<f64, ConfigError> {
    let n = match v {
        Yaml::Number(n) => n.as_f64(),
        Yaml::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(ConfigError(format!(
            "{file}: {field}: expected a non-negative number"
        ))),
    }
}

fn as_i64(v: &Yaml, file: &str, field: &str) -> Result<i64, ConfigError> {
    let n = match v {
        Yaml::Number(n) => n.as_i64(),
        Yaml::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(x) if x >= 0 => Ok(x),
        _ => Err(ConfigError(format!(
            "{file}: {field}: expected a non-negative integer"
        ))),
    }
}

fn as_bool(v: &Yaml, file: &str, field: &str) -> Result<bool, ConfigError> {
    match v {
        Yaml::Bool(b) => Ok(*b),
        Yaml::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Yaml::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ConfigError(format!(
            "{file}: {field}: expected true or false"
        ))),
    }
}

fn warn_unknown(file: &str, field: &str, key: &str) {
    log::warn!("{file}: {field}.{key} is not used by litegate; ignored");
}

fn yaml_to_json(v: &Yaml) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn apply_yaml(
    cfg: &mut Config,
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let doc: Yaml = serde_yaml_ng::from_str(text)
        .map_err(|e| ConfigError(format!("{file}: not valid YAML: {e}")))?;
    let top = match &doc {
        Yaml::Null => return Ok(()),
        Yaml::Mapping(m) => m,
        _ => {
            return Err(ConfigError(format!(
                "{file}: the top level must be a mapping"
            )))
        }
    };
    let (mut request_timeout, mut router_timeout, mut router_stream) = (None, None, None);
    for (k, v) in top {
        let key = as_str(k, file, "top level key")?;
        match key.as_str() {
            "model_list" => cfg.deployments = parse_model_list(v, file, env)?,
            "general_settings" => {
                let Yaml::Mapping(gs) = v else {
                    if v.is_null() {
                        continue;
                    }
                    return Err(ConfigError(format!(
                        "{file}: general_settings: expected a mapping"
                    )));
                };
                for (gk, gv) in gs {
                    let gk = as_str(gk, file, "general_settings key")?;
                    let field = format!("general_settings.{gk}");
                    let gv = resolve(gv, file, &field, env)?;
                    match gk.as_str() {
                        "master_key" => cfg.master_key = Some(as_str(&gv, file, &field)?),
                        "database_path" => cfg.db_path = PathBuf::from(as_str(&gv, file, &field)?),
                        "allow_weak_master_key" => {
                            cfg.allow_weak_master_key = as_bool(&gv, file, &field)?
                        }
                        "metrics_require_auth" => {
                            cfg.metrics_require_auth = as_bool(&gv, file, &field)?
                        }
                        "backup_dir" => {
                            cfg.backup_dir = Some(PathBuf::from(as_str(&gv, file, &field)?))
                        }
                        "max_request_size_mb" => {
                            let mb = as_f64(&gv, file, &field)?;
                            if mb <= 0.0 {
                                return Err(ConfigError(format!(
                                    "{file}: {field}: must be positive"
                                )));
                            }
                            cfg.max_body_bytes = (mb * 1024.0 * 1024.0) as usize;
                        }
                        "max_upstream_response_size_mb" => {
                            let mb = positive(as_f64(&gv, file, &field)?, file, &field)?;
                            cfg.max_upstream_body_bytes = (mb * 1024.0 * 1024.0) as u64;
                        }
                        "database_connection_pool_limit" => {
                            let n = as_i64(&gv, file, &field)?;
                            if !(1..=64).contains(&n) {
                                return Err(ConfigError(format!(
                                    "{file}: {field}: must be between 1 and 64"
                                )));
                            }
                            cfg.db_pool = n as usize;
                        }
                        other => warn_unknown(file, "general_settings", other),
                    }
                }
            }
            // Model aliases: `router_settings.model_group_alias` and
            // `litellm_settings.model_alias_map` (alias -> model_name). Other keys of these
            // sections are accepted for compatibility and ignored.
            "litellm_settings" | "router_settings" => {
                if let Yaml::Mapping(m) = v {
                    for (k2, v2) in m {
                        let k2 = as_str(k2, file, &key)?;
                        if key == "litellm_settings" && k2 == "default_internal_user_params" {
                            cfg.user_defaults =
                                crate::user_defaults::UserDefaults::parse(&yaml_to_json(v2))
                                    .map_err(|e| ConfigError(format!("{file}: {e}")))?;
                        }
                        // Default timeouts, as in LiteLLM (`apply_timeout_defaults`).
                        let slot = match (key.as_str(), k2.as_str()) {
                            ("litellm_settings", "request_timeout") => Some(&mut request_timeout),
                            ("router_settings", "timeout") => Some(&mut router_timeout),
                            ("router_settings", "stream_timeout") => Some(&mut router_stream),
                            _ => None,
                        };
                        if let Some(slot) = slot {
                            let field = format!("{key}.{k2}");
                            let v2 = resolve(v2, file, &field, env)?;
                            *slot = Some(positive(as_f64(&v2, file, &field)?, file, &field)?);
                            continue;
                        }
                        if k2 == "model_group_alias" || k2 == "model_alias_map" {
                            let field = format!("{key}.{k2}");
                            let Yaml::Mapping(aliases) = v2 else {
                                return Err(ConfigError(format!(
                                    "{file}: {field}: expected a mapping of alias: model_name"
                                )));
                            };
                            for (a, target) in aliases {
                                let a = as_str(a, file, &field)?;
                                // LiteLLM also allows {model: name, hidden: bool}.
                                let t = match target {
                                    Yaml::Mapping(tm) => tm
                                        .get(Yaml::String("model".into()))
                                        .map(|x| as_str(x, file, &field))
                                        .transpose()?,
                                    other => Some(as_str(other, file, &field)?),
                                };
                                let t = t.ok_or_else(|| {
                                    ConfigError(format!("{file}: {field}.{a}: needs a model"))
                                })?;
                                cfg.aliases.insert(a, t);
                            }
                        }
                    }
                }
            }
            "environment_variables" => {}
            other => warn_unknown(file, "(top level)", other),
        }
    }
    apply_timeout_defaults(
        &mut cfg.deployments,
        router_timeout.or(request_timeout),
        router_stream,
    );
    Ok(())
}

/// The total deadline of an upstream call (issue 11: an upstream that never stops streaming
/// is cut there), in LiteLLM's order: a deployment's own `timeout` / `stream_timeout`, else
/// `router_settings.timeout` / `stream_timeout`, else `litellm_settings.request_timeout`, else
/// 600 s; a stream without any stream timeout gets the call timeout.
fn apply_timeout_defaults(deps: &mut [Deployment], timeout: Option<f64>, stream: Option<f64>) {
    for d in deps {
        if d.timeout_secs <= 0.0 {
            d.timeout_secs = timeout.unwrap_or(600.0);
        }
        if d.stream_timeout_secs <= 0.0 {
            d.stream_timeout_secs = stream.unwrap_or(d.timeout_secs);
        }
    }
}

fn parse_model_list(
    v: &Yaml,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Deployment>, ConfigError> {
    let list = match v {
        Yaml::Null => return Ok(Vec::new()),
        Yaml::Sequence(s) => s,
        _ => return Err(ConfigError(format!("{file}: model_list: expected a list"))),
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("model_list[{i}]");
        let Yaml::Mapping(m) = item else {
            return Err(ConfigError(format!("{file}: {at}: expected a mapping")));
        };
        let mut model_name = None;
        let mut params = None;
        let mut info = None;
        for (k, v) in m {
            let k = as_str(k, file, &at)?;
            match k.as_str() {
                "model_name" => model_name = Some(as_str(v, file, &format!("{at}.model_name"))?),
                "litellm_params" => params = Some(v),
                "model_info" => info = Some(v),
                other => warn_unknown(file, &at, other),
            }
        }
        let model_name = model_name
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ConfigError(format!("{file}: {at}.model_name: required")))?;
        let Some(Yaml::Mapping(p)) = params else {
            return Err(ConfigError(format!(
                "{file}: {at}.litellm_params: required mapping with `model`"
            )));
        };
        let mut d = Deployment {
            model_name,
            model: String::new(),
            api_base: None,
            api_key: None,
            rpm: None,
            tpm: None,
            input_cost_per_token: 0.0,
            output_cost_per_token: 0.0,
            // 0: not set here; `apply_timeout_defaults` fills it in.
            timeout_secs: 0.0,
            stream_timeout_secs: 0.0,
            id: String::new(),
            access_groups: Vec::new(),
            model_info: serde_json::Map::new(),
        };
        for (k, v) in p {
            let k = as_str(k, file, &at)?;
            let field = format!("{at}.litellm_params.{k}");
            let v = resolve(v, file, &field, env)?;
            match k.as_str() {
                "model" => d.model = as_str(&v, file, &field)?,
                "api_base" | "base_url" => d.api_base = Some(as_str(&v, file, &field)?),
                "api_key" => d.api_key = Some(as_str(&v, file, &field)?),
                "rpm" => d.rpm = Some(as_i64(&v, file, &field)?),
                "tpm" => d.tpm = Some(as_i64(&v, file, &field)?),
                "input_cost_per_token" => d.input_cost_per_token = as_f64(&v, file, &field)?,
                "output_cost_per_token" => d.output_cost_per_token = as_f64(&v, file, &field)?,
                "timeout" => d.timeout_secs = positive(as_f64(&v, file, &field)?, file, &field)?,
                "stream_timeout" => {
                    d.stream_timeout_secs = positive(as_f64(&v, file, &field)?, file, &field)?
                }
                other => warn_unknown(file, &format!("{at}.litellm_params"), other),
            }
        }
        if !d.model.contains('/') || d.model.starts_with('/') {
            return Err(ConfigError(format!(
                "{file}: {at}.litellm_params.model: expected 'provider/name', got '{}'",
                d.model
            )));
        }
        match d.provider() {
            "mock" => {}
            "openai" | "hosted_vllm" | "openai_compatible" | "azure" | "ollama" | "vllm" => {}
            other => log::warn!(
                "{file}: {at}.litellm_params.model: provider '{other}' is treated as \
                 OpenAI-compatible"
            ),
        }
        if let Some(Yaml::Mapping(mi)) = info {
            for (k, v) in mi {
                let k = as_str(k, file, &at)?;
                let field = format!("{at}.model_info.{k}");
                match k.as_str() {
                    "id" => d.id = as_str(v, file, &field)?,
                    "access_groups" => {
                        let Yaml::Sequence(gs) = v else {
                            return Err(ConfigError(format!(
                                "{file}: {field}: expected a list of names"
                            )));
                        };
                        for g in gs {
                            d.access_groups.push(as_str(g, file, &field)?);
                        }
                    }
                    _ => {
                        d.model_info.insert(k.clone(), yaml_to_json(v));
                    }
                }
            }
        } else if info.is_some_and(|v| !v.is_null()) {
            return Err(ConfigError(format!(
                "{file}: {at}.model_info: expected a mapping"
            )));
        }
        if d.id.is_empty() {
            d.id = format!("{}-{i}", d.model_name);
        }
        out.push(d);
    }
    let mut ids = std::collections::HashSet::new();
    for d in &out {
        if !ids.insert(d.id.clone()) {
            return Err(ConfigError(format!(
                "{file}: model_list: model_info.id '{}' is used twice",
                d.id
            )));
        }
    }
    Ok(out)
}

fn positive(x: f64, file: &str, field: &str) -> Result<f64, ConfigError> {
    if x > 0.0 {
        Ok(x)
    } else {
        Err(ConfigError(format!("{file}: {field}: must be positive")))
    }
}

/// `litegate check-config FILE`: loads the file as `serve` would.
pub fn check_file(path: &Path) -> Result<Config, ConfigError> {
    load(&Args {
        config: Some(path.to_path_buf()),
        ..Args::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn load_text(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        apply_yaml(&mut cfg, text, "c.yaml", env)?;
        validate_master_key(&cfg)?;
        Ok(cfg)
    }

    #[test]
    fn embedded_default_loads() {
        let cfg = load_with_env(&Args::default(), &no_env).expect("default");
        assert!(!cfg.deployments.is_empty());
        assert!(cfg.deployments.iter().all(|d| d.provider() == "mock"));
        assert_eq!(cfg.listen, "0.0.0.0:4000");
        assert_eq!(cfg.db_path, PathBuf::from("litegate.db"));
    }

    #[test]
    fn env_values_resolve() {
        let env = |k: &str| (k == "K").then(|| "sk-from-env-0123456789".to_string());
        let cfg = load_text(
            "model_list:\n - model_name: a\n   litellm_params:\n     model: openai/gpt\n     api_key: os.environ/K\ngeneral_settings:\n  master_key: os.environ/K\n",
            &env,
        )
        .expect("ok");
        assert_eq!(cfg.master_key.as_deref(), Some("sk-from-env-0123456789"));
        assert_eq!(
            cfg.deployments[0].api_key.as_deref(),
            Some("sk-from-env-0123456789")
        );
    }

    #[test]
    fn errors_name_file_and_field() {
        let e = load_text(
            "model_list:\n - model_name: a\n   litellm_params:\n     model: gpt\n",
            &no_env,
        )
        .expect_err("bad");
        assert!(e.0.contains("c.yaml") && e.0.contains("model_list[0].litellm_params.model"));
        let e = load_text(
            "model_list:\n - model_name: a\n   litellm_params:\n     model: openai/x\n     input_cost_per_token: -1\n",
            &no_env,
        )
        .expect_err("neg");
        assert!(e.0.contains("input_cost_per_token"), "{e}");
        let e = load_text(
            "general_settings:\n  master_key: os.environ/NOPE\n",
            &no_env,
        )
        .expect_err("env");
        assert!(e.0.contains("NOPE"), "{e}");
        let e = load_text("general_settings:\n  master_key: abc\n", &no_env).expect_err("sk");
        assert!(e.0.contains("sk-"), "{e}");
        let e = load_text("general_settings:\n  master_key: sk-1234\n", &no_env).expect_err("weak");
        assert!(e.0.contains("publicly known"), "{e}");
        assert!(load_text(
            "general_settings:\n  master_key: sk-1234\n  allow_weak_master_key: true\n",
            &no_env
        )
        .is_ok());
        let e = load_text("model_list: [1, 2", &no_env).expect_err("yaml");
        assert!(e.0.contains("not valid YAML"), "{e}");
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let cfg = load_text(
            "foo: 1\nlitellm_settings:\n  drop_params: true\nmodel_list:\n - model_name: a\n   litellm_params:\n     model: openai/x\n     weird: 2\n   model_info:\n     access_groups: [g1]\n     mode: chat\n",
            &no_env,
        )
        .expect("ok");
        assert_eq!(cfg.deployments[0].access_groups, vec!["g1".to_string()]);
        assert_eq!(cfg.deployments[0].model_info["mode"], "chat");
    }

    #[test]
    fn timeouts_default_in_litellm_order() {
        let list = "model_list:\n - {model_name: a, litellm_params: {model: openai/x}}\n \
                    - {model_name: b, litellm_params: {model: openai/x, timeout: 5}}\n \
                    - {model_name: c, litellm_params: {model: openai/x, stream_timeout: 7}}\n";
        let t = |extra: &str| {
            let cfg = load_text(&format!("{list}{extra}"), &no_env).expect("ok");
            cfg.deployments
                .iter()
                .map(|d| (d.timeout_secs, d.stream_timeout_secs))
                .collect::<Vec<_>>()
        };
        assert_eq!(t(""), vec![(600.0, 600.0), (5.0, 5.0), (600.0, 7.0)]);
        assert_eq!(
            t("litellm_settings:\n  request_timeout: 30\n"),
            vec![(30.0, 30.0), (5.0, 5.0), (30.0, 7.0)]
        );
        assert_eq!(
            t("litellm_settings: {request_timeout: 30}\nrouter_settings: {timeout: 20, stream_timeout: 9}\n"),
            vec![(20.0, 9.0), (5.0, 9.0), (20.0, 7.0)]
        );
        assert!(load_text("litellm_settings: {request_timeout: -1}\n", &no_env).is_err());
    }

    #[test]
    fn config_aliases() {
        let cfg = load_text(
            "router_settings:\n  model_group_alias: {fast: A, big: {model: B, hidden: true}}\nlitellm_settings:\n  model_alias_map: {old: C}\n",
            &no_env,
        )
        .expect("ok");
        assert_eq!(cfg.aliases.get("fast").map(String::as_str), Some("A"));
        assert_eq!(cfg.aliases.get("big").map(String::as_str), Some("B"));
        assert_eq!(cfg.aliases.get("old").map(String::as_str), Some("C"));
        assert!(load_text("router_settings:\n  model_group_alias: [a]\n", &no_env).is_err());
    }

    #[test]
    fn request_deadline_flags() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (_, a) =
            parse_args(&argv(&["--header-timeout=2.5", "--request-timeout", "20"])).expect("ok");
        assert_eq!(a.header_timeout_secs, Some(2.5));
        assert_eq!(a.request_timeout_secs, Some(20.0));
        let cfg = load_with_env(&a, &no_env).expect("ok");
        assert_eq!(cfg.header_timeout, std::time::Duration::from_millis(2500));
        assert_eq!(cfg.request_timeout, std::time::Duration::from_secs(20));
        let d = load_with_env(&Args::default(), &no_env).expect("default");
        assert_eq!(d.header_timeout, std::time::Duration::from_secs(10));
        assert_eq!(d.request_timeout, std::time::Duration::from_secs(30));
        assert!(parse_args(&argv(&["--header-timeout", "0"])).is_err());
        assert!(parse_args(&argv(&["--request-timeout", "x"])).is_err());
        let (_, a) = parse_args(&argv(&["--header-timeout", "20", "--request-timeout", "5"]))
            .expect("parses");
        assert!(
            load_with_env(&a, &no_env).is_err(),
            "whole request shorter than its head"
        );
    }

    #[test]
    fn args_parse() {
        let argv: Vec<String> = ["--listen", "127.0.0.1:0", "--db=x.db", "--workers", "4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (cmd, a) = parse_args(&argv).expect("ok");
        assert_eq!(cmd, Command::Serve);
        assert_eq!(a.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(a.db, Some(PathBuf::from("x.db")));
        assert_eq!(a.workers, Some(4));
        assert!(parse_args(&["--bogus".to_string()]).is_err());
        assert!(parse_args(&["--port".to_string(), "x".to_string()]).is_err());
    }
}
