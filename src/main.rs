//! The `litegate` command: parses the command line, loads the config, runs the server.
//! Exit codes: 0 ok, 1 runtime error, 2 bad command line or configuration.

use litegate::config::{self, Command};

fn main() {
    init_log();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, args) = match config::parse_args(&argv) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("litegate: {e}");
            std::process::exit(2);
        }
    };
    match cmd {
        Command::Version => println!("litegate {}", env!("CARGO_PKG_VERSION")),
        Command::Help => println!("{}", config::USAGE),
        Command::CheckConfig(path) => match config::check_file(&path) {
            Ok(cfg) => println!(
                "{}: ok ({} model deployment(s))",
                path.display(),
                cfg.deployments.len()
            ),
            Err(e) => {
                eprintln!("litegate: {e}");
                std::process::exit(2);
            }
        },
        Command::Backup(dest) => {
            let cfg = match config::load(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("litegate: {e}");
                    std::process::exit(2);
                }
            };
            if let Some(url) = &cfg.database_url {
                eprintln!(
                    "litegate: the store is PostgreSQL ({}); back it up with pg_dump \
                     (docs/POSTGRES.md)",
                    url.safe()
                );
                std::process::exit(2);
            }
            match litegate::db::backup(&cfg.db_path, &dest) {
                Ok(bytes) => println!(
                    "litegate: backed up {} to {} ({bytes} bytes)",
                    cfg.db_path.display(),
                    dest.display()
                ),
                Err(e) => {
                    eprintln!("litegate: {e}");
                    std::process::exit(1);
                }
            }
        }
        Command::CopyDb { from, to, force } => match litegate::db::copy::run(&from, &to, force) {
            Ok(summary) => {
                for line in summary.lines() {
                    println!("litegate: {line}");
                }
            }
            Err(e) => {
                eprintln!("litegate: copy-db: {e}");
                std::process::exit(e.exit_code());
            }
        },
        Command::Export => {
            let cfg = load_or_exit(&args);
            match litegate::state::cli::export(&cfg) {
                Ok(yaml) => {
                    use std::io::Write;
                    // A closed pipe (`| head`) ends the output quietly.
                    let _ = std::io::stdout().lock().write_all(yaml.as_bytes());
                }
                Err(e) => {
                    eprintln!("litegate: export: {}", e.message);
                    std::process::exit(e.code);
                }
            }
        }
        Command::Apply {
            file,
            dry_run,
            prune,
        } => {
            let cfg = load_or_exit(&args);
            match litegate::state::cli::apply(&cfg, &file, dry_run, prune) {
                Ok((json, summary)) => {
                    use std::io::Write;
                    let _ = writeln!(std::io::stdout().lock(), "{json}");
                    eprintln!("litegate: {summary}");
                }
                Err(e) => {
                    eprintln!("litegate: apply: {}", e.message);
                    std::process::exit(e.code);
                }
            }
        }
        Command::ImportLitellm {
            from,
            dry_run,
            with_spend_logs,
        } => import_litellm(&args, &from, dry_run, with_spend_logs),
        Command::Serve => {
            let cfg = match config::load(&args) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("litegate: {e}");
                    std::process::exit(2);
                }
            };
            let r = litegate::run(cfg);
            // The access-log lines still in their batch, before the process ends.
            log::logger().flush();
            if let Err(e) = r {
                eprintln!("litegate: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// `litegate import-litellm`: into the store the config, `--db` or `DATABASE_URL` select
/// (opened as the server opens it: migrated, and a SQLite file under its owner lock, so a
/// litegate serving on it refuses the import instead of racing it).
fn import_litellm(
    args: &config::Args,
    from: &config::DatabaseUrl,
    dry_run: bool,
    with_spend_logs: bool,
) {
    let cfg = load_or_exit(args);
    let open: Option<litegate::db::litellm::OpenTarget<'_>> = if dry_run {
        None
    } else {
        Some(Box::new(|| match &cfg.database_url {
            Some(url) => litegate::db::Pool::open_pg_with(url.expose(), 2, cfg.db_timeout),
            None => litegate::db::Pool::open(&cfg.db_path, 2, cfg.env.synchronous),
        }))
    };
    let mut known: Vec<String> = Vec::new();
    for d in &cfg.deployments {
        known.push(d.model_name.clone());
        known.extend(d.access_groups.iter().cloned());
    }
    let opts = litegate::db::litellm::Options {
        dry_run,
        with_spend_logs,
        master_hash: cfg.master_key.as_deref().map(litegate::auth::hash_key),
        known_models: Some(known),
        config: Some(cfg.clone()),
    };
    // A SQLite store this import creates is removed again when it fails (as copy-db does).
    let fresh = !dry_run && cfg.database_url.is_none() && !cfg.db_path.exists();
    match litegate::db::litellm::run(from, open, &opts) {
        Ok(lines) => {
            use std::io::Write;
            // A closed pipe (`| head`) ends the listing, not the process with a panic.
            let mut out = std::io::stdout().lock();
            for line in lines {
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
        }
        Err(e) => {
            if fresh {
                litegate::db::copy::remove_sqlite_files(&cfg.db_path);
            }
            eprintln!("litegate: import-litellm: {e}");
            std::process::exit(e.exit_code());
        }
    }
}

/// The config, or exit 2 saying what is wrong with it.
fn load_or_exit(args: &config::Args) -> config::Config {
    match config::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("litegate: {e}");
            std::process::exit(2);
        }
    }
}

/// `RUST_LOG` (default `info`) through env_logger, except that `tokio_postgres` never logs
/// above `info` whatever `RUST_LOG` asks: at debug it prints every statement's parameters
/// (raw keys, emails, password hashes a caller sent). Issue 14; SECURITY.md §6.
/// When stderr is not a terminal (a service's journal, a file), records go through
/// `log_batch`: access-log lines are written in batches (issue 17), every other line at once;
/// `LITEGATE_ACCESS_LOG_BATCH=0` writes each line with its own `write` (as on a terminal).
fn init_log() {
    use std::io::IsTerminal;
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    let batch = std::env::var("LITEGATE_ACCESS_LOG_BATCH").map_or(true, |v| v != "0");
    if batch && !std::io::stderr().is_terminal() {
        b.target(env_logger::Target::Pipe(Box::new(
            litegate::log_batch::install(Box::new(std::io::stderr())),
        )));
        // A pipe gets no colours unless RUST_LOG_STYLE=always asks for them: then env_logger
        // formats every line; else access lines take the direct way (`log_batch::access_line`).
        let coloured = std::env::var("RUST_LOG_STYLE").is_ok_and(|v| v == "always");
        DIRECT_ACCESS_LINES.store(!coloured, std::sync::atomic::Ordering::Relaxed);
    }
    let inner = b.build();
    let max = inner.filter();
    if log::set_boxed_logger(Box::new(NoStatementParams(inner))).is_ok() {
        log::set_max_level(max);
    }
}

/// The process's logger: env_logger without the PostgreSQL client's debug and trace records.
struct NoStatementParams(env_logger::Logger);

/// Access-log lines go straight into the batch in env_logger's own format (`init_log`).
static DIRECT_ACCESS_LINES: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

impl NoStatementParams {
    fn allowed(m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info || !m.target().starts_with("tokio_postgres")
    }
}

impl log::Log for NoStatementParams {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        Self::allowed(m) && self.0.enabled(m)
    }
    fn log(&self, r: &log::Record<'_>) {
        if Self::allowed(r.metadata()) {
            let direct = r.target() == litegate::ACCESS_LOG
                && DIRECT_ACCESS_LINES.load(std::sync::atomic::Ordering::Relaxed)
                && self.0.matches(r)
                && litegate::log_batch::access_line(r);
            if !direct {
                self.0.log(r);
            }
            // Only access-log lines wait for their batch; anything else goes out now (with
            // the access lines before it, in order).
            if r.target() != litegate::ACCESS_LOG || litegate::log_batch::unbatched() {
                litegate::log_batch::flush();
            }
        }
    }
    fn flush(&self) {
        self.0.flush();
        litegate::log_batch::flush();
    }
}
