//! The store as the rest of litegate sees it (issue 14): `Pool`, one of two engines — SQLite
//! (`Lite` in `mod.rs`, the default) or PostgreSQL (`pg.rs`) — chosen at start, and the calls
//! that already run on both (readiness ping, settings; the key check in `key_check.rs` and the
//! spend commit in `spend.rs` dispatch on it themselves). Every other statement runs through
//! `handle.rs` (`Pool::read_db` / `write_db`).

use super::{pg, ping, settings_get, settings_put, Lite, PING, SETTINGS_GET};
use crate::config::Synchronous;
use crate::error::{Error, Result};
use crate::hierarchy::Level;
use rusqlite::Connection;
use std::path::Path;

/// The store: SQLite (the default; `Lite`, the file's pool and its hot connection) or
/// PostgreSQL (`pg::PgPool`, issue 14), chosen at start by `DATABASE_URL`. Every statement runs
/// on both: the hot path through `sql.rs` (compiled per engine), the rest through `handle.rs`
/// (`read_db` / `write_db`). SQLite-only tools (backup, checkpoints) take `lite()`.
// One per process: the size difference of the variants costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Pool {
    Sqlite(Lite),
    Postgres(pg::PgPool),
}

impl Pool {
    /// The SQLite store at `path` (`Lite::open`).
    pub fn open(path: &Path, size: usize, sync: Synchronous) -> std::result::Result<Pool, String> {
        Lite::open(path, size, sync).map(Pool::Sqlite)
    }

    /// The PostgreSQL store at `url`, at most `size` connections (`pg::PgPool::open`), every
    /// wait for the server bounded by the default `database_connection_timeout`.
    pub fn open_pg(url: &str, size: usize) -> std::result::Result<Pool, String> {
        Self::open_pg_with(url, size, crate::config::DB_TIMEOUT)
    }

    /// `open_pg` with every wait for the server bounded by `io_timeout`.
    pub fn open_pg_with(
        url: &str,
        size: usize,
        io_timeout: std::time::Duration,
    ) -> std::result::Result<Pool, String> {
        pg::PgPool::open_with(url, size, io_timeout).map(Pool::Postgres)
    }

    /// `"sqlite"` or `"postgresql"` (readiness, logs).
    pub fn engine(&self) -> &'static str {
        match self {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgresql",
        }
    }

    /// The SQLite store, if that is the engine.
    pub fn lite(&self) -> Option<&Lite> {
        match self {
            Pool::Sqlite(l) => Some(l),
            Pool::Postgres(_) => None,
        }
    }

    /// Whether the store can record (`Lite::writable`; on PostgreSQL: the store is not down,
    /// or a probe connection works again: `PgPool::probe`, so that calls that need no other
    /// statement before this check, such as the master key's, bring it back up too).
    pub fn writable(&self) -> Result<()> {
        match self {
            Pool::Sqlite(l) => l.writable(),
            Pool::Postgres(p) if p.probe().is_ok() => Ok(()),
            Pool::Postgres(_) => Err(Error::Unavailable(
                "the database cannot record spend right now (PostgreSQL unreachable); try again \
                 later"
                    .into(),
            )),
        }
    }

    /// A read of spend figures on the model-call path (issue 17): without the barrier of
    /// `read_db` (it would make the call wait for the spend applier); on SQLite on the hot
    /// connection, with `pending` giving a holder's journaled but unapplied spend (read under
    /// the hot lock, consistent with the store); on PostgreSQL `read_db`, nothing pending.
    pub fn read_now<T>(
        &self,
        f: impl FnOnce(&super::handle::Db<'_>, &dyn Fn(Level, &str, &str) -> f64) -> Result<T>,
    ) -> Result<T> {
        match self {
            Pool::Sqlite(l) => {
                let hot = l.hot();
                let overlay = &l.journal().overlay;
                f(&super::handle::Db::Lite(&hot), &|lv, a, b| {
                    overlay.get(lv, a, b)
                })
            }
            Pool::Postgres(_) => self.read_db(|c| f(c, &|_, _, _| 0.0)),
        }
    }

    /// Readiness: the store answers a trivial statement.
    pub fn ping(&self) -> Result<()> {
        match self {
            Pool::Sqlite(l) => l.read(|c| Ok(ping(c).map(|_| ())?)),
            Pool::Postgres(p) => p.read(|q| q.one(PING, &[], |_| Ok(())).map(|_| ())),
        }
    }

    /// A setting the server keeps for itself, on either engine.
    pub fn setting(&self, name: &str) -> Result<Option<String>> {
        match self {
            Pool::Sqlite(l) => l.read(|c| Ok(settings_get(c, name)?)),
            Pool::Postgres(p) => p.read(|q| q.one(SETTINGS_GET, &[name.into()], |r| r.try_get(0))),
        }
    }

    /// Stores a setting, on either engine.
    pub fn put_setting(&self, name: &str, value: &str) -> Result<()> {
        match self {
            Pool::Sqlite(l) => l.write(|tx| {
                let mut c: &Connection = tx;
                Ok(settings_put(&mut c, name, value)?)
            }),
            Pool::Postgres(p) => p.write(|q| settings_put(q, name, value)),
        }
    }
}
