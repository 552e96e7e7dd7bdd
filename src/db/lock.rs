//! The single-owner lock on a database: one litegate process per database file.
//!
//! Two processes on one file would each keep their own in-memory state (rate-limit windows,
//! budget reservations, the group commit) and so let callers spend twice their limits; a
//! second one started by mistake (a stale unit, a container restarted beside the old one)
//! must fail at start instead. The lock is an exclusive `flock` on `<db>.lock` beside the
//! database, held for the life of the process (the kernel drops it when the process dies,
//! `kill -9` included, so a crash never leaves a stale lock).
//!
//! Why a file of its own and not the database: SQLite locks the database (and its `-shm`)
//! with POSIX byte-range locks, and tools must keep opening it while litegate runs
//! (`litegate backup`, `sqlite3` for inspection); a lock on a separate file stops only
//! another litegate. It is the foundation for SQLite's `locking_mode=EXCLUSIVE` (issue 17):
//! once one process owns the file, the store may take SQLite's own locks for good.
//! The lock file holds the owner's pid, for the error message only (never trusted).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Holds the lock until dropped (i.e. until the process ends).
#[derive(Debug)]
pub struct DbLock {
    _file: File,
    pub path: PathBuf,
}

/// `<db>.lock` for `<db>`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push(".lock");
    PathBuf::from(s)
}

/// Takes the lock, or explains who holds it.
pub fn acquire(db: &Path) -> Result<DbLock, String> {
    let path = lock_path(db);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("{}: cannot open the lock file: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is passed.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut pid = String::new();
            let _ = f.read_to_string(&mut pid);
            let pid = pid.trim();
            let who = if pid.chars().all(|c| c.is_ascii_digit()) && !pid.is_empty() {
                format!("pid {pid}")
            } else {
                "pid unknown".to_string()
            };
            return Err(format!(
                "another litegate ({who}) holds {} (lock {}); stop it first, or give this one \
                 another database with --db",
                db.display(),
                path.display()
            ));
        }
        return Err(format!("{}: cannot lock: {err}", path.display()));
    }
    // Ours now: record our pid for the next one's message.
    let _ = f
        .set_len(0)
        .and_then(|_| f.rewind())
        .and_then(|_| writeln!(f, "{}", std::process::id()))
        .and_then(|_| f.flush());
    Ok(DbLock { _file: f, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_is_refused_and_names_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = acquire(&db).unwrap();
        // flock locks belong to the open file description: a second open in the same process
        // conflicts just as another process would.
        let e = acquire(&db).unwrap_err();
        assert!(e.contains("another litegate"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        assert!(
            acquire(&db).is_ok(),
            "the lock is free once its holder is gone"
        );
    }
}
