//! Whether the store can still record what litegate does: a flag that readiness reports and
//! that model calls check (one atomic load) before anything goes upstream — a call answered
//! but not billed is a loss, so litegate refuses calls it could not record.
//!
//! The flag goes down when
//! - the database file at the configured path is no longer the file litegate opened (removed,
//!   or replaced by another file): SQLite keeps writing into the open, unlinked file and every
//!   write after that is silently lost at the next start;
//! - the lock file (`lock.rs`) was removed or replaced;
//! - the file or its directory has lost its write permission (the next start would fail;
//!   permission bits, so this holds for root too);
//! - a WAL checkpoint fails (I/O error, disk full);
//! - a write fails with an I/O-class error (I/O error, disk full, read-only, corrupt):
//!   `Pool::write`/`write_hot` report those through `note_write_error`.
//!
//! The checkpointer thread (every 50 ms, `db::start_checkpointer`) re-checks the file and, only
//! while a write failure is outstanding, probes with one small write; the request path pays one
//! atomic load. The flag comes back up by itself once every check passes again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

#[derive(Debug)]
pub struct Health {
    path: PathBuf,
    /// (device, inode) of the file opened at start.
    identity: (u64, u64),
    /// `<db>.lock` (`lock.rs`) and its (device, inode): if it goes, a second litegate could
    /// take a new one.
    lock: Option<(PathBuf, (u64, u64))>,
    ok: AtomicBool,
    /// A write failed with an I/O-class error and no probe has succeeded since.
    write_failed: AtomicBool,
    /// Why the flag is down (empty while up).
    reason: Mutex<String>,
}

impl Health {
    /// Remembers which files `path` and `lock` are now (call after the database is open and
    /// locked).
    pub fn new(path: &Path, lock: Option<&Path>) -> std::result::Result<Health, String> {
        let id = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| (m.dev(), m.ino()))
                .map_err(|e| format!("{}: {e}", p.display()))
        };
        Ok(Health {
            path: path.to_path_buf(),
            identity: id(path)?,
            lock: match lock {
                Some(l) => Some((l.to_path_buf(), id(l)?)),
                None => None,
            },
            ok: AtomicBool::new(true),
            write_failed: AtomicBool::new(false),
            reason: Mutex::new(String::new()),
        })
    }

    /// The hot path's check: one atomic load.
    #[inline]
    pub fn is_ok(&self) -> bool {
        self.ok.load(Ordering::Acquire)
    }

    /// Why the store is not usable (empty when it is).
    pub fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, problem: Option<String>) {
        let mut reason = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        match problem {
            Some(p) => {
                if !self.ok.load(Ordering::Acquire) && *reason == p {
                    return;
                }
                log::error!(
                    "the database {} cannot record: {p}; model calls are refused and \
                     readiness fails until this is fixed",
                    self.path.display()
                );
                *reason = p;
                self.ok.store(false, Ordering::Release);
            }
            None => {
                if !self.ok.load(Ordering::Acquire) {
                    log::warn!("the database records again ({} is fixed)", *reason);
                }
                reason.clear();
                self.ok.store(true, Ordering::Release);
            }
        }
    }

    /// A write failed: when its error is one the store cannot recover from by retrying (not a
    /// constraint or a busy lock), the flag goes down at once.
    pub fn note_write_error(&self, e: &rusqlite::Error) {
        if is_storage_error(e) {
            self.write_failed.store(true, Ordering::Release);
            self.set(Some(format!("a write failed: {e}")));
        }
    }

    /// What is wrong with the file at the path, if anything (metadata only, no SQL). The
    /// text goes to clients (readiness, refused calls): it never names the path; the log does.
    pub fn file_problem(&self) -> Option<String> {
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some("the database file was removed".into())
            }
            Err(e) => Some(format!(
                "the database file cannot be examined: {}",
                e.kind()
            )),
            Ok(m) if (m.dev(), m.ino()) != self.identity => {
                Some("the database file was replaced by another file".into())
            }
            Ok(m) if m.permissions().readonly() => Some("the database file is read-only".into()),
            Ok(_) if self.lock_problem() => Some(
                "the database's lock file was removed or replaced (a second litegate could \
                 start on it)"
                    .into(),
            ),
            // SQLite creates and removes the `-wal` and `-shm` files beside the database: in a
            // read-only directory the next start fails.
            Ok(_) => self
                .path
                .parent()
                .map(|d| {
                    if d.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        d
                    }
                })
                .and_then(|d| std::fs::metadata(d).ok())
                .filter(|m| m.permissions().readonly())
                .map(|_| "the directory of the database file is read-only".into()),
        }
    }

    fn lock_problem(&self) -> bool {
        self.lock
            .as_ref()
            .is_some_and(|(p, id)| std::fs::metadata(p).map_or(true, |m| (m.dev(), m.ino()) != *id))
    }

    /// One round of the checkpointer: `checkpoint` is that round's checkpoint result, `probe`
    /// one small write, run only while a write failure is outstanding.
    pub fn update(
        &self,
        checkpoint: &rusqlite::Result<()>,
        probe: impl FnOnce() -> rusqlite::Result<()>,
    ) {
        if let Some(p) = self.file_problem() {
            return self.set(Some(p));
        }
        if let Err(e) = checkpoint {
            if is_storage_error(e) {
                return self.set(Some(format!("a WAL checkpoint failed: {e}")));
            }
        }
        if self.write_failed.load(Ordering::Acquire) {
            if let Err(e) = probe() {
                return self.set(Some(format!("a write failed: {e}")));
            }
            self.write_failed.store(false, Ordering::Release);
        }
        self.set(None);
    }
}

/// Errors that say the storage itself is failing.
pub fn is_storage_error(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::ErrorCode::*;
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if matches!(f.code,
        SystemIoFailure | DiskFull | ReadOnly | CannotOpen | DatabaseCorrupt | NotADatabase))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_or_replaced_file_puts_the_flag_down_and_it_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"x").unwrap();
        let h = Health::new(&db, None).unwrap();
        h.update(&Ok(()), || Ok(()));
        assert!(h.is_ok());
        std::fs::rename(&db, dir.path().join("moved")).unwrap();
        h.update(&Ok(()), || Ok(()));
        assert!(!h.is_ok());
        assert!(h.reason().contains("removed"), "{}", h.reason());
        std::fs::write(&db, b"y").unwrap();
        h.update(&Ok(()), || Ok(()));
        assert!(h.reason().contains("replaced"), "{}", h.reason());
        std::fs::remove_file(&db).unwrap();
        std::fs::rename(dir.path().join("moved"), &db).unwrap();
        h.update(&Ok(()), || Ok(()));
        assert!(h.is_ok(), "the original file is back: {}", h.reason());
    }

    #[test]
    fn a_storage_write_error_holds_the_flag_down_until_a_probe_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"x").unwrap();
        let h = Health::new(&db, None).unwrap();
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        h.note_write_error(&busy);
        assert!(h.is_ok(), "a busy lock is not a storage failure");
        h.note_write_error(&full);
        assert!(!h.is_ok());
        h.update(&Ok(()), || {
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                None,
            ))
        });
        assert!(!h.is_ok(), "the probe failed too");
        h.update(&Ok(()), || Ok(()));
        assert!(h.is_ok(), "{}", h.reason());
    }
}
