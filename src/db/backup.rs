//! `litegate backup` and `POST /admin/backup`: a consistent copy of the live SQLite database,
//! the spend journal applied first.

use super::journal;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// Writes a consistent, self-contained copy of the database at `src` to `dest` while other
/// connections keep reading and writing (`VACUUM INTO` runs in one read transaction; the copy
/// has no WAL of its own). Refuses an existing `dest`. Returns the copy's size in bytes.
pub fn backup(src: &Path, dest: &Path) -> std::result::Result<u64, String> {
    if dest.exists() {
        return Err(format!(
            "{}: already exists; choose a new file",
            dest.display()
        ));
    }
    if !src.exists() {
        return Err(format!("{}: no database there", src.display()));
    }
    // Spend journaled but not yet applied belongs in the copy.
    journal::replay_path(src)?;
    let c = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("{}: cannot open: {e}", src.display()))?;
    c.busy_timeout(Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let dest_s = dest
        .to_str()
        .ok_or_else(|| format!("{}: path is not UTF-8", dest.display()))?;
    c.execute("VACUUM INTO ?1", [dest_s])
        .map_err(|e| format!("backup to {}: {e}", dest.display()))?;
    let ok: String = Connection::open(dest)
        .and_then(|b| b.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
        .map_err(|e| format!("backup check: {e}"))?;
    if ok != "ok" {
        return Err(format!(
            "backup at {} failed its integrity check: {ok}",
            dest.display()
        ));
    }
    std::fs::metadata(dest)
        .map(|m| m.len())
        .map_err(|e| e.to_string())
}
