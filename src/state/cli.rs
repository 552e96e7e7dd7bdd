//! `litegate export` and `litegate apply FILE [--dry-run] [--prune]`: the same export and apply
//! as `GET /state/export` / `POST /state/apply`, on the store the config selects (`--db`,
//! `--config`, `DATABASE_URL`). A SQLite file is opened as `serve` opens it, under the
//! single-owner lock: while a litegate serves on it, both commands refuse (exit 1) and say to
//! use the HTTP endpoints instead. Exit codes: 0 done, 1 the store failed, 2 a bad file.

use crate::config::Config;
use crate::db::Pool;
use crate::error::Error;

/// A command's failure: the message and the exit code.
pub struct Failed {
    pub code: i32,
    pub message: String,
}

fn open(cfg: &Config) -> Result<Pool, Failed> {
    let opened = match &cfg.database_url {
        Some(url) => Pool::open_pg_with(url.expose(), 2, cfg.db_timeout),
        None => Pool::open(&cfg.db_path, 2, cfg.env.synchronous),
    };
    opened.map_err(|e| {
        let hint = if e.contains("another litegate") {
            " (while it serves, use GET /state/export and POST /state/apply on it)"
        } else {
            ""
        };
        Failed {
            code: 1,
            message: format!("{e}{hint}"),
        }
    })
}

fn failed(e: Error) -> Failed {
    let code = if matches!(e, Error::BadRequest { .. } | Error::Conflict(_)) {
        2
    } else {
        1
    };
    let message = match e {
        Error::BadRequest { message, .. } | Error::Conflict(message) => message,
        Error::Internal(detail) => detail,
        other => other.to_string(),
    };
    Failed { code, message }
}

/// The store's state as YAML (for stdout).
pub fn export(cfg: &Config) -> Result<String, Failed> {
    // Exporting a SQLite file that is not there would create an empty store: say so instead.
    if cfg.database_url.is_none() && !cfg.db_path.exists() {
        return Err(Failed {
            code: 1,
            message: format!(
                "no database at {} (give --db or --config)",
                cfg.db_path.display()
            ),
        });
    }
    let pool = open(cfg)?;
    pool.read_db(|c| super::to_yaml(&super::load(c)?))
        .map_err(failed)
}

/// The file at `path` applied (or planned, `dry_run`): the outcome as JSON (for stdout) and a
/// summary line (for stderr).
pub fn apply(
    cfg: &Config,
    path: &std::path::Path,
    dry_run: bool,
    prune: bool,
) -> Result<(String, String), Failed> {
    /// A state file larger than this is refused before it is read whole.
    const MAX_FILE: u64 = 256 << 20;
    let bad = |m: String| Failed {
        code: 2,
        message: m,
    };
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    if meta.len() > MAX_FILE {
        return Err(bad(format!(
            "{}: larger than {} MiB",
            path.display(),
            MAX_FILE >> 20
        )));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    // The file is read and checked by type before the store is opened.
    super::parse(&text).map_err(failed)?;
    let pool = open(cfg)?;
    let out = super::apply(&pool, cfg, &text, dry_run, prune).map_err(failed)?;
    let json = serde_json::to_string_pretty(&out.json()).unwrap_or_default();
    let what = if dry_run {
        "dry run, nothing written"
    } else if out.applied {
        "applied in one transaction"
    } else {
        "nothing to change"
    };
    Ok((json, format!("plan: {} ({what})", out.summary())))
}
