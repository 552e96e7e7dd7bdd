//! The command line. Owns the subcommands, the flags and their checks (each flag's range is
//! checked here, so a bad flag is an error before anything is read). Does not merge: flags
//! override the file and the environment in `config::load`.

use super::ConfigError;
use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Serve,
    Version,
    Help,
    CheckConfig(PathBuf),
    /// `litegate backup DEST`: a consistent copy of the live database.
    Backup(PathBuf),
    /// `litegate copy-db --from A --to B [--force]`: the whole store from one database into
    /// another (`db::copy`).
    /// `import-litellm --from postgresql://... [--dry-run] [--with-spend-logs]` (issue 15):
    /// into the store the config / `--db` / `DATABASE_URL` select.
    ImportLitellm {
        from: super::DatabaseUrl,
        dry_run: bool,
        with_spend_logs: bool,
    },
    CopyDb {
        from: DbLocation,
        to: DbLocation,
        force: bool,
    },
    /// `litegate export`: the store's state as YAML on stdout (`state::cli`).
    Export,
    /// `litegate apply FILE [--dry-run] [--prune]`: a state file applied to the store.
    Apply {
        file: PathBuf,
        dry_run: bool,
        prune: bool,
    },
}

/// One side of `copy-db`: a SQLite file, or a PostgreSQL URL (`Debug` and `safe` never show
/// its user or password).
#[derive(Debug, Clone, PartialEq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    Postgres(super::DatabaseUrl),
}

impl DbLocation {
    /// A `postgresql://` / `postgres://` URL, else a SQLite file path.
    pub fn parse(s: &str, flag: &str) -> Result<DbLocation, ConfigError> {
        if s.trim().is_empty() {
            return Err(ConfigError(format!(
                "{flag} needs a SQLite path or a postgresql:// URL"
            )));
        }
        if s.starts_with("postgresql://") || s.starts_with("postgres://") {
            return super::DatabaseUrl::parse(s.to_string(), flag).map(DbLocation::Postgres);
        }
        Ok(DbLocation::Sqlite(PathBuf::from(s)))
    }

    /// For messages: the path, or the URL without user, password and options.
    pub fn safe(&self) -> String {
        match self {
            DbLocation::Sqlite(p) => p.display().to_string(),
            DbLocation::Postgres(u) => u.safe(),
        }
    }
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

pub const USAGE: &str = "usage: litegate [serve] [--config FILE] [--host HOST] [--port PORT] \
[--listen ADDR:PORT] [--db PATH] [--workers N] [--shutdown-grace SECS] [--allow-weak-master-key]
       [--header-timeout SECS (10)] [--request-timeout SECS (30)]
       litegate backup DEST [--db PATH | --config FILE]
       litegate copy-db --from SQLITE_PATH|postgresql://... --to SQLITE_PATH|postgresql://... [--force]
       litegate export [--db PATH | --config FILE] > state.yaml
       litegate apply FILE [--dry-run] [--prune] [--db PATH | --config FILE]
       litegate import-litellm --from postgresql://... [--dry-run] [--with-spend-logs] [--config FILE | --db PATH]
       litegate check-config FILE
       litegate --version";

pub fn parse_args(argv: &[String]) -> Result<(Command, Args), ConfigError> {
    let mut args = Args::default();
    let mut cmd = Command::Serve;
    // copy-db's own flags, checked after the loop.
    let mut copy_db = false;
    let (mut from, mut to, mut force) = (None, None, false);
    // apply's own flags.
    let (mut apply, mut dry_run, mut prune) = (None, false, false);
    // import-litellm's own flags.
    let mut import = false;
    let mut with_spend_logs = false;
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
            "copy-db" if i == 0 => copy_db = true,
            "export" if i == 0 => cmd = Command::Export,
            "apply" if i == 0 => {
                let f = need(i, "apply")?;
                i += 1;
                apply = Some(PathBuf::from(f));
            }
            "--dry-run" if apply.is_some() || import => dry_run = true,
            "--prune" if apply.is_some() => prune = true,
            "import-litellm" if i == 0 => import = true,
            "--from" if import => from = Some(DbLocation::parse(&value(&mut i)?, "--from")?),
            "--with-spend-logs" if import => with_spend_logs = true,
            "--from" if copy_db => from = Some(DbLocation::parse(&value(&mut i)?, "--from")?),
            "--to" if copy_db => to = Some(DbLocation::parse(&value(&mut i)?, "--to")?),
            "--force" if copy_db => force = true,
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
    if import {
        match from.take() {
            Some(DbLocation::Postgres(from)) => {
                cmd = Command::ImportLitellm {
                    from,
                    dry_run,
                    with_spend_logs,
                }
            }
            _ => {
                return Err(ConfigError(format!(
                    "import-litellm needs --from postgresql://... (LiteLLM's database)\n{USAGE}"
                )))
            }
        }
    }
    if copy_db {
        match (from, to) {
            (Some(from), Some(to)) => cmd = Command::CopyDb { from, to, force },
            _ => {
                return Err(ConfigError(format!(
                    "copy-db needs --from and --to\n{USAGE}"
                )))
            }
        }
    }
    if let Some(file) = apply {
        cmd = Command::Apply {
            file,
            dry_run,
            prune,
        };
    }
    Ok((cmd, args))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn copy_db_args_parse_and_never_show_the_password() {
        let argv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (cmd, _) = parse_args(&argv(&[
            "copy-db",
            "--from",
            "litegate.db",
            "--to=postgresql://u:secretpw@db:5432/lg",
            "--force",
        ]))
        .expect("ok");
        let Command::CopyDb { from, to, force } = cmd else {
            panic!("not copy-db: {cmd:?}");
        };
        assert_eq!(from, DbLocation::Sqlite(PathBuf::from("litegate.db")));
        assert!(matches!(to, DbLocation::Postgres(_)));
        assert!(force);
        assert_eq!(to.safe(), "postgresql://db:5432/lg");
        assert!(!format!("{to:?}").contains("secretpw"));
        // Both sides are needed; --force means nothing outside copy-db.
        assert!(parse_args(&argv(&["copy-db", "--from", "a.db"])).is_err());
        assert!(parse_args(&argv(&["--force"])).is_err());
        assert!(parse_args(&argv(&["copy-db", "--from", "", "--to", "b.db"])).is_err());
    }
}
