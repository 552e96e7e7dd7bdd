//! Operator endpoints: `POST /admin/backup` (proxy admins) writes a consistent copy of the live
//! database into the configured backup directory (SQLite; on PostgreSQL a 501 saying to use
//! pg_dump).

use super::{Ctx, Reply, Req};
use crate::access::policy;
use crate::auth::Caller;
use crate::error::{Error, Result};
use serde_json::json;

pub fn backup(ctx: &Ctx, who: &Caller, _req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    if ctx.pool.lite().is_none() {
        return Err(Error::NotImplemented(
            "POST /admin/backup copies a SQLite database; on PostgreSQL back up with pg_dump \
             (docs/POSTGRES.md)"
                .into(),
        ));
    }
    let dir = match &ctx.cfg.backup_dir {
        Some(d) => d.clone(),
        None => ctx
            .cfg
            .db_path
            .parent()
            .map(|p| p.join("backups"))
            .unwrap_or_else(|| "backups".into()),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::internal(format!("backup dir {}: {e}", dir.display())))?;
    let stamp: String = crate::util::now_iso()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let name = format!("litegate-{stamp}-{}.db", &crate::util::uuid4()[..8]);
    let dest = dir.join(name);
    let bytes = crate::db::backup(&ctx.cfg.db_path, &dest).map_err(Error::internal)?;
    log::info!("backup written to {} ({bytes} bytes)", dest.display());
    // Not a change of state, but a copy of every key hash: audited in its own transaction,
    // after the copy is made (README "Audit log").
    ctx.pool.write_db(|tx| {
        crate::audit::Entry::new("backup", "database", "database")
            .after(json!({"path": dest.display().to_string(), "bytes": bytes}))
            .record(tx, &crate::audit::Actor::of(who))
    })?;
    Reply::ok(json!({"status": "ok", "path": dest.display().to_string(), "bytes": bytes}))
}
