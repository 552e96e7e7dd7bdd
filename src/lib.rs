//! litegate: a single-binary LLM gateway. `run` opens the store, settles the master key,
//! binds the listener and serves. See docs/ARCHITECTURE.md for the map.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod util;

use config::Config;
use std::io::Write;
use std::sync::Arc;

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
        .read(|c| Ok(db::settings_get(c, MASTER_HASH_SETTING)?))
        .map_err(|e| format!("cannot read settings: {e}"))?;
    if let Some(h) = stored {
        log::info!("using the master key generated on first start (only its hash is stored)");
        return Ok(h);
    }
    let key = auth::new_raw_key();
    let h = auth::hash_key(&key);
    pool.write(|tx| Ok(db::settings_put(tx, MASTER_HASH_SETTING, &h)?))
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

/// Runs the server until the process ends.
pub fn run(cfg: Config) -> Result<(), String> {
    let pool = db::Pool::open(&cfg.db_path, cfg.db_pool)?;
    let master_hash = master_hash(&cfg, &pool)?;
    let server = tiny_http::Server::http(&cfg.listen).map_err(|e| {
        format!(
            "cannot listen on {}: {e} (is the port in use? set --port or --listen)",
            cfg.listen
        )
    })?;
    let addr = match server.server_addr() {
        tiny_http::ListenAddr::IP(a) => a.to_string(),
        #[allow(unreachable_patterns)]
        _ => cfg.listen.clone(),
    };
    let catalog = auth::Catalog::new(cfg.deployments.clone());
    log::info!(
        "config: {}; {} model deployment(s); database {}",
        cfg.source,
        catalog.deployments.len(),
        cfg.db_path.display()
    );
    let ctx = Arc::new(http::Ctx {
        cfg,
        pool,
        catalog,
        master_hash,
    });
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "litegate listening on http://{addr}");
        let _ = out.flush();
    }
    http::serve(ctx, Arc::new(server)).map_err(|e| format!("server: {e}"))
}
