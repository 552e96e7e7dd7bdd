//! The hot connection (`Lite::hot`: every key check, the spend applier's batches) together with
//! THE key-check statement prepared on it once. `prepare_cached` looks a statement up by its
//! whole text: it trims, hashes and compares the ~2 KiB key-check text and copies it into a new
//! `Arc<str>` when the statement goes back to the cache, ~6k instructions per key check
//! (issue 17, round 3). Here the prepared statement lives beside its connection, reached by a
//! field. The statement is the same text, re-bound and re-run at every check (nothing cached
//! but the compiled statement: every row is read live).
//!
//! The statement borrows the connection, so the connection lives at a fixed address (boxed,
//! leaked, freed in `Drop` after the statement is finalized) and is reached only by shared
//! reference: no `&mut Connection` is ever made while the statement exists (transactions on it
//! use `Transaction::new_unchecked`, which takes `&Connection`).

use rusqlite::{Connection, Statement};
use std::ops::Deref;

/// The hot connection and its key-check statement (prepared on first use).
pub struct Hot {
    /// Declared (and dropped) before the connection: it is finalized while the connection
    /// is still open.
    key_check: Option<Statement<'static>>,
    /// Owned: created by `Box::leak` in `new`, freed in `Drop`, never handed out for longer
    /// than a borrow of `self`.
    conn: &'static Connection,
}

// SAFETY: `Hot` owns its connection (a `Connection` is `Send`) and the one statement prepared
// on it; both move between threads together, and neither the connection reference nor the
// statement is ever given out for longer than a borrow of the `Hot`. `Hot` is not `Sync`
// (the `Mutex` around it gives exclusive use), so no two threads use them at once.
unsafe impl Send for Hot {}

impl Hot {
    pub fn new(conn: Connection) -> Hot {
        Hot {
            key_check: None,
            conn: Box::leak(Box::new(conn)),
        }
    }

    /// THE key-check statement (`key_check::KEY_CHECK`), prepared on the first call.
    pub fn key_check(&mut self) -> rusqlite::Result<&mut Statement<'static>> {
        if self.key_check.is_none() {
            self.key_check = Some(self.conn.prepare(super::key_check::KEY_CHECK)?);
        }
        match self.key_check.as_mut() {
            Some(s) => Ok(s),
            None => Err(rusqlite::Error::InvalidQuery),
        }
    }
}

impl Deref for Hot {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Hot {
    fn drop(&mut self) {
        // The statement first: finalizing it uses the connection.
        self.key_check = None;
        let conn: *const Connection = self.conn;
        // SAFETY: `conn` came from `Box::leak` in `new`, this is the only place it is freed,
        // the statement borrowing it is gone (above), and `self.conn` is not used after this.
        drop(unsafe { Box::from_raw(conn.cast_mut()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prepared statement runs again and again on the same connection, sees every change
    /// made on that connection or another one (nothing but the compiled statement is kept),
    /// and survives a transaction and a schema change on the connection.
    #[test]
    fn key_check_statement_reads_live() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("h.db");
        let mut c = super::super::open(&path).expect("open");
        super::super::migrate::migrate(&mut c).expect("migrate");
        c.execute(
            "INSERT INTO api_keys (token, key_name, models, created_at, updated_at)
             VALUES ('t1', 'sk-...0001', '[]', 'x', 'x')",
            [],
        )
        .expect("insert");
        let mut hot = Hot::new(super::super::open_hot(&path).expect("hot"));
        let blocked = |hot: &mut Hot| {
            let s = hot.key_check().expect("prepare");
            s.query_row(["t1"], |r| {
                r.get::<_, i64>(super::super::key_check::col::K_BLOCKED)
            })
            .expect("row")
        };
        assert_eq!(blocked(&mut hot), 0);
        c.execute("UPDATE api_keys SET blocked = 1 WHERE token = 't1'", [])
            .expect("block");
        assert_eq!(blocked(&mut hot), 1, "another connection's change is seen");
        {
            let tx = rusqlite::Transaction::new_unchecked(
                &hot,
                rusqlite::TransactionBehavior::Immediate,
            )
            .expect("begin");
            tx.execute("UPDATE api_keys SET blocked = 0 WHERE token = 't1'", [])
                .expect("unblock");
            tx.commit().expect("commit");
        }
        assert_eq!(blocked(&mut hot), 0, "its own connection's change is seen");
        c.execute_batch("CREATE TABLE unrelated (x INTEGER)")
            .expect("schema change");
        assert_eq!(blocked(&mut hot), 0, "re-prepared after a schema change");
        let missing = hot
            .key_check()
            .expect("prepare")
            .query_row(["nope"], |_| Ok(()));
        assert!(matches!(missing, Err(rusqlite::Error::QueryReturnedNoRows)));
    }

    /// `Hot` crosses threads inside the pool's mutex.
    #[test]
    fn moves_between_threads() {
        let mut hot = Hot::new(Connection::open_in_memory().expect("mem"));
        let _ = hot.key_check(); // no schema: an error, and no statement kept
        let h = std::thread::spawn(move || hot.query_row("SELECT 2", [], |r| r.get::<_, i64>(0)));
        assert_eq!(h.join().expect("join").expect("row"), 2);
    }
}
