//! litegate: a single-binary LLM gateway. `run` opens the store, settles the master key,
//! binds the listener and serves. See docs/ARCHITECTURE.md for the map.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod access;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod call;
pub mod config;
pub mod crypt;
pub mod db;
pub mod error;
pub mod hierarchy;
pub mod http;
pub mod input;
pub mod kdf;
pub mod lifecycle;
pub mod log_batch;
pub mod metrics;
pub mod prices;
pub mod provider;
pub mod server;
pub mod state;
pub mod upstream;
pub mod user_defaults;
pub mod util;

use config::Config;
use std::io::Write;

const MASTER_HASH_SETTING: &str = "master_key_hash";

/// Settles the master key (API.md §1): the configured one, else the hash of the one generated
/// on first start. A generated key is printed once to stdout and only its hash is stored.
fn master_hash(cfg: &Config, pool: &db::Pool) -> Result<String, String> {
    if let Some(k) = &cfg.master_key {
        if k.len() < 32 {
            log::warn!(
                "the master key is shorter than 32 characters; use a long random key in production"
            );
        }
        return Ok(auth::hash_key(k));
    }
    let stored = pool
        .setting(MASTER_HASH_SETTING)
        .map_err(|e| format!("cannot read settings: {e}"))?;
    if let Some(h) = stored {
        log::info!("using the master key generated on first start (only its hash is stored)");
        return Ok(h);
    }
    let key = auth::new_raw_key();
    let h = auth::hash_key(&key);
    pool.put_setting(MASTER_HASH_SETTING, &h)
        .map_err(|e| format!("cannot store the master key hash: {e}"))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "litegate: no master key configured; generated one. It is shown only now, store it:\n\
         litegate: master key: {key}"
    );
    let _ = out.flush();
    Ok(h)
}

/// The access log's target: one line per request (`server::handle`), written in batches
/// (`log_batch`).
pub const ACCESS_LOG: &str = "litegate::access";

/// A client socket that sends nothing for this long is closed (headers, body, keep-alive idle).
pub const CLIENT_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Open client connections beyond this many get a 503 (LITEGATE_MAX_CONNECTIONS overrides).
pub const MAX_CONNECTIONS: usize = 4096;
/// A client that stops reading (e.g. mid-stream) is dropped after this long.
pub const CLIENT_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Binds the listener, and says the per-connection limits of our tiny_http patch
/// (`vendor/tiny_http/src/limits.rs`): read/write timeouts on every accepted socket, a cap on
/// open connections and the request deadlines.
fn bind(
    listen: &str,
    cfg: &Config,
) -> Result<(std::net::TcpListener, tiny_http::limits::Limits), String> {
    // LITEGATE_CLIENT_TIMEOUT_SECS overrides the read timeout (tests use a short one).
    let read_timeout = cfg.env.client_read_timeout.unwrap_or(CLIENT_READ_TIMEOUT);
    let max_conns = cfg.env.max_connections.unwrap_or(MAX_CONNECTIONS);
    let limits = tiny_http::limits::Limits {
        read_timeout: Some(read_timeout),
        write_timeout: Some(CLIENT_WRITE_TIMEOUT),
        max_connections: max_conns,
        head_timeout: cfg.header_timeout,
        request_timeout: cfg.request_timeout,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        format!("cannot listen on {listen}: {e} (is the port in use? set --port or --listen)")
    })?;
    Ok((listener, limits))
}

/// Runs the server until the process ends.
pub fn run(cfg: Config) -> Result<(), String> {
    // A write past the file-size limit (`ulimit -f`) must fail as a write error (the store's
    // health flag goes down, calls are refused) instead of killing the process with SIGXFSZ.
    // SAFETY: installs the "ignore" disposition; no handler code runs.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    kdf::init(cfg.env.argon2_concurrency);
    http::throttle::init(&cfg.env.login);
    let pool = std::sync::Arc::new(match &cfg.database_url {
        Some(url) => db::Pool::open_pg_with(url.expose(), cfg.db_pool, cfg.db_timeout)?,
        None => db::Pool::open(&cfg.db_path, cfg.db_pool, cfg.env.synchronous)?,
    });
    let master_hash = master_hash(&cfg, &pool)?;
    audit::master_key_check(&pool, &master_hash)
        .map_err(|e| format!("cannot record the master key in the audit log: {e:?}"))?;
    let (listener, limits) = bind(&cfg.listen, &cfg)?;
    // Config models plus the database's (issue 15 item 3); a stored model that cannot be
    // decrypted or read is logged and refused at call time, the start goes on.
    let models = access::registry::load(&pool, &cfg)
        .map_err(|e| format!("cannot load the models stored in the database: {e:?}"))?;
    let database = match &cfg.database_url {
        Some(url) => url.safe(),
        None => cfg.db_path.display().to_string(),
    };
    log::info!(
        "config: {}; {} model deployment(s) ({} from the database); database {database}",
        cfg.source,
        models.view(access::Scope::Admin).deployments.len(),
        models.view(access::Scope::Admin).deployments.len() - cfg.deployments.len(),
    );
    let calls = call::Calls::new(pool.clone(), cfg.env.lease_ttl, &cfg.alerting);
    let ctx = std::sync::Arc::new(http::Ctx {
        cfg,
        calls,
        pool,
        models: access::registry::Registry::new(models),
        master_hash,
        lifecycle: std::sync::Arc::new(lifecycle::Lifecycle::new()),
    });
    start_budget_resets(
        ctx.pool.clone(),
        ctx.cfg.env.budget_reset_every,
        ctx.cfg.end_users.budget_id.clone(),
        ctx.cfg.audit_retention_days,
    );
    let signals = catch_signals()?;
    let server = server::serve(ctx.clone(), listener, limits)?;
    let addr = match server.server_addr() {
        tiny_http::ListenAddr::IP(a) => a.to_string(),
        #[allow(unreachable_patterns)]
        _ => ctx.cfg.listen.clone(),
    };
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "litegate listening on http://{addr}");
        let _ = out.flush();
    }
    wait_for_signal(signals)?;
    shutdown(&ctx, server);
    Ok(())
}

/// SIGTERM and SIGINT, caught from here on (before the first request can be served: a signal
/// that arrived earlier would kill the process without a clean shutdown).
fn catch_signals() -> Result<signal_hook::iterator::Signals, String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot install signal handlers: {e}"))
}

/// Blocks until SIGTERM or SIGINT.
fn wait_for_signal(mut signals: signal_hook::iterator::Signals) -> Result<(), String> {
    use signal_hook::consts::SIGTERM;
    if let Some(sig) = signals.forever().next() {
        log::info!(
            "received {}; shutting down",
            if sig == SIGTERM { "SIGTERM" } else { "SIGINT" }
        );
    }
    Ok(())
}

/// Clean shutdown: take no new requests, let the ones in flight finish (and record their
/// spend) within the grace period, checkpoint the WAL into the database file and close.
fn shutdown(ctx: &http::Ctx, server: tiny_http::Server) {
    let left = ctx.lifecycle.shut_down(ctx.cfg.shutdown_grace);
    if left > 0 {
        log::warn!("{left} request(s) still running after the grace period; closing anyway");
    }
    // Closing the listener: no connection is accepted from here on.
    drop(server);
    // The health thread's own checkpoint or a last read may hold the WAL for a moment: retry
    // for up to two seconds before leaving the WAL to be replayed on the next start.
    let checkpoint = |c: &rusqlite::Connection| {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            match db::checkpoint_truncate(c) {
                Ok((busy, _, _)) if busy != 0 && std::time::Instant::now() < until => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other,
            }
        }
    };
    let Some(lite) = ctx.pool.lite() else {
        log::info!("litegate stopped");
        return;
    };
    // Every journaled spend into the store before the checkpoint.
    lite.close_journal();
    match lite.get().map(|c| checkpoint(&c)) {
        Ok(Ok((0, _, _))) => {
            log::info!("WAL checkpointed; database closed cleanly")
        }
        Ok(Ok(_)) => log::warn!(
            "WAL checkpoint was blocked by a reader; the WAL will be replayed on next start"
        ),
        Ok(Err(e)) => log::error!("WAL checkpoint failed: {e}"),
        Err(e) => log::error!("no connection for the WAL checkpoint: {e}"),
    }
    log::info!("litegate stopped");
}

/// How often spend is reset where `budget_reset_at` has passed (LITEGATE_BUDGET_RESET_SECS
/// overrides).
const BUDGET_RESET_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The background thread that resets budgets (API.md §7 `budget_duration`);
/// `end_user_budget`: `litellm_settings.max_end_user_budget_id`. On the same tick it prunes
/// audit entries older than `audit_days` (0: never; README "Audit log").
fn start_budget_resets(
    pool: std::sync::Arc<db::Pool>,
    every: Option<std::time::Duration>,
    end_user_budget: Option<String>,
    audit_days: i64,
) {
    let every = every.unwrap_or(BUDGET_RESET_EVERY);
    let spawned = std::thread::Builder::new()
        .name("budget-reset".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let now = util::now_ms();
            let iso = util::iso_from_ms(now);
            let default = end_user_budget.as_deref();
            match pool.write_db(|tx| Ok(db::spend::reset_due(tx, &iso, now, default)?)) {
                Ok(0) => {}
                Ok(n) => log::info!("reset the spend of {n} budget holder(s)"),
                Err(e) => log::error!("budget reset failed: {e}"),
            }
            if audit_days > 0 {
                let cutoff = util::iso_from_ms(now - audit_days * 86_400_000);
                match pool.write_db(|tx| Ok(db::audit::prune(tx, &cutoff)?)) {
                    Ok(0) => {}
                    Ok(n) => log::info!("pruned {n} audit entries older than {audit_days} days"),
                    Err(e) => log::error!("audit log prune failed: {e}"),
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the budget reset thread: {e}");
    }
}
