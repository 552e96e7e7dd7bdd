//! The store. Owns the SQLite connection pool, the per-connection pragmas and the write
//! transaction helper. Queries live in the submodules, one fn per query with its SQL beside it.
//! No connection is ever held across an upstream call or any other wait.

pub mod audit;
pub mod authority;
mod backup;
pub mod budget_state;
pub mod budgets;
pub mod copy;
pub mod end_users;
pub mod handle;
pub mod health;
mod hot;
pub mod journal;
mod journal_apply;
mod journal_codec;
pub mod journal_overlay;
pub mod key_check;
pub mod keys;
pub mod leases;
pub mod litellm;
pub mod lock;
pub mod members;
pub mod migrate;
pub mod models;
pub mod orgs;
pub mod pg;
mod pg_health;
mod pg_migrate;
mod pg_url;
pub mod rows;
pub mod sessions;
pub mod spend;
mod spend_order;
mod spend_writer;
pub mod sql;
pub mod state;
mod store;
pub mod teams;
pub mod users;

pub use crate::config::Synchronous;
use crate::error::{Error, Result};
pub use backup::backup;
pub use hot::Hot;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
pub use store::Pool;

/// How long a request waits for a free connection before it gets a 503.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How often the pool's checkpointer thread moves WAL frames into the database file. Small
/// checkpoints often disturb requests less than large ones seldom (A/B at c=1, 3 rounds each:
/// p99 1.33–1.71 ms at 200 ms, 0.94–1.08 ms at 50 ms, 1.6–55 ms at 1 s; c=64 unchanged).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// WAL frames (of 4 KiB pages) past which the checkpointer restarts the WAL (~64 MiB).
const WAL_RESTART_FRAMES: i64 = 16_384;

/// Per-connection settings, in one place.
///
/// `synchronous=NORMAL` in WAL mode: a commit is in the WAL (the OS's page cache) before the
/// call returns, so a crash or `kill -9` of litegate loses no acknowledged write; only a power
/// loss or kernel crash can lose the last few commits (never corrupt the file). `FULL` would
/// add an fsync to every spend write. Set `LITEGATE_SYNCHRONOUS=FULL` where power loss matters
/// (read by `config::env`, passed down as `sync`).
pub fn configure(c: &mut Connection, sync: Synchronous) -> rusqlite::Result<()> {
    c.busy_handler(Some(busy_wait))?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    c.pragma_update(None, "synchronous", sync)?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    // 16 MiB page cache per connection (negative = KiB). The hot connection reads the file
    // through its memory map, so its cache holds only pages read from the WAL and pages it
    // writes (the spend log's newest pages); at 64 MiB that cache alone grew litegate's RSS
    // from 72 to 98 MB in 30 s of load.
    c.pragma_update(None, "cache_size", -16384)?;
    c.pragma_update(None, "temp_store", "MEMORY")?;
    // No memory map on the pool's connections: a connection that sees another one's commit at
    // the start of its next read drops its whole map (`munmap` of the database, with TLB
    // shoot-downs on every core) as well as its page cache; under model-call load (a spend
    // commit per call) that was ~5 % of CPU. The hot connection (`Pool::hot`) maps the file.
    c.pragma_update(None, "mmap_size", 0)?;
    // Without the query-planner stability guarantee a cached statement with a bound parameter is
    // re-planned per binding (STYLE.md: 43 µs -> 11 µs per key check).
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    c.set_prepared_statement_cache_capacity(64);
    // The file grows in 32 MiB steps instead of page by page: every growth makes each other
    // connection re-map the file at its next read (`munmap` was ~4 % of CPU under load).
    c.file_control(
        Some(rusqlite::MAIN_DB),
        rusqlite::FileControl::ChunkSize(&mut (32 << 20)),
    )?;
    Ok(())
}

/// The busy handler: how a connection waits for a lock another one holds (the write lock
/// mostly). SQLite's own `busy_timeout` sleeps 1, 2, 5, 10 ... 100 ms between tries, so a lock
/// held for 2 ms costs the waiter 8 ms (the p99 of a lone caller was 137 ms); this one tries
/// again after 50 µs at first, backs off to 1 ms, and gives up (SQLITE_BUSY) after ~5 s.
fn busy_wait(tries: i32) -> bool {
    let us = match tries {
        0..=19 => 50,
        20..=59 => 200,
        60..=5059 => 1000,
        _ => return false,
    };
    std::thread::sleep(Duration::from_micros(us));
    true
}

/// A connection with the default `synchronous=NORMAL` (tools and tests; the server's pool
/// uses `open_with` and its configured setting).
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    open_with(path, Synchronous::Normal)
}

pub fn open_with(path: &Path, sync: Synchronous) -> rusqlite::Result<Connection> {
    let mut c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    configure(&mut c, sync)?;
    Ok(c)
}

/// A connection that reads through a memory map of the database file (up to 1 GiB): the key
/// check touches ~10 pages, copied from the OS page cache by `read()` otherwise. Only for a
/// connection whose cache stays valid (see `Pool::hot`): mapped or not, a connection that sees
/// another's commit drops its cache, and a mapped one drops its map too.
pub fn open_hot(path: &Path) -> rusqlite::Result<Connection> {
    open_hot_with(path, Synchronous::Normal)
}

pub fn open_hot_with(path: &Path, sync: Synchronous) -> rusqlite::Result<Connection> {
    let c = open_with(path, sync)?;
    c.pragma_update(None, "mmap_size", 1i64 << 30)?;
    Ok(c)
}

/// SQLite before 3.51.3 has a WAL corruption bug; the bundled library must be newer.
pub const MIN_SQLITE: (u32, u32, u32) = (3, 51, 3);

pub fn sqlite_version_ok(v: &str) -> bool {
    let mut it = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
    let got = (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    );
    got >= MIN_SQLITE
}

fn check_sqlite_version(c: &Connection) -> std::result::Result<(), String> {
    let v: String = c
        .query_row("SELECT sqlite_version()", [], |r| r.get(0))
        .map_err(|e| format!("cannot read the SQLite version: {e}"))?;
    if !sqlite_version_ok(&v) {
        return Err(format!(
            "SQLite {v} is too old (a WAL corruption bug is fixed in 3.51.3); rebuild with the \
             bundled SQLite"
        ));
    }
    Ok(())
}

pub struct Lite {
    path: PathBuf,
    /// The connection of the per-call path: every key check and every spend commit. One
    /// connection for both keeps its page cache warm: SQLite drops a connection's cache when
    /// another connection has committed since its last read, and with a spend commit per model
    /// call every key check on a pooled connection started cold (a third of the key check's
    /// cost under load). Admin writes on the pool still reset it, as they must.
    hot: Arc<Mutex<Hot>>,
    /// The spend journal (issue 17: `journal.rs`) and its applier thread (joined on drop).
    journal: Arc<journal::Journal>,
    applier: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// `LITEGATE_SPEND_JOURNAL=off`: spend is committed by the group commit before each answer
    /// instead (as before issue 17; for comparison and as a way back).
    journal_on: bool,
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
    /// Set on drop: the checkpointer thread ends.
    stop: Arc<AtomicBool>,
    /// Whether writes can still be recorded (readiness; model calls check it).
    health: Arc<health::Health>,
    /// One litegate per database file, for the life of the pool.
    _lock: lock::DbLock,
}

impl Drop for Lite {
    fn drop(&mut self) {
        self.close_journal();
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How long a management read or write waits for the spend applier at most.
const BARRIER_WAIT: Duration = Duration::from_secs(10);

/// A connection on loan; it goes back to the pool on drop.
pub struct Conn<'a> {
    pool: &'a Lite,
    conn: Option<Connection>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Present from creation until drop.
        match &self.conn {
            Some(c) => c,
            None => unreachable!("connection taken before drop"),
        }
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        match &mut self.conn {
            Some(c) => c,
            None => unreachable!("connection taken before drop"),
        }
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.push(c);
            self.pool.freed.notify_one();
        }
    }
}

impl Lite {
    /// Takes the database's single-owner lock, opens it, applies the migrations and fills the
    /// pool.
    pub fn open(path: &Path, size: usize, sync: Synchronous) -> std::result::Result<Lite, String> {
        let lock = lock::acquire(path)?;
        let open = |path: &Path| open_with(path, sync);
        let mut first = open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
        check_sqlite_version(&first)?;
        migrate::migrate(&mut first).map_err(|e| format!("{}: {e}", path.display()))?;
        journal::replay(&mut first, path)?;
        let journal = Arc::new(journal::Journal::create(&first, path, sync)?);
        let mut conns = vec![first];
        for _ in 1..size.max(1) {
            conns.push(open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?);
        }
        let hot = open_hot_with(path, sync)
            .map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let health = Arc::new(health::Health::new(path, Some(&lock.path))?);
        if start_checkpointer(path, sync, stop.clone(), health.clone()) {
            for c in conns.iter().chain(std::iter::once(&hot)) {
                c.pragma_update(None, "wal_autocheckpoint", 0)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        let hot = Arc::new(Mutex::new(Hot::new(hot)));
        let applier = journal_apply::Applier {
            journal: journal.clone(),
            hot: hot.clone(),
            health: health.clone(),
        }
        .start()
        .map_err(|e| format!("cannot start the spend applier thread: {e}"))?;
        Ok(Lite {
            path: path.to_path_buf(),
            hot,
            journal,
            applier: Mutex::new(Some(applier)),
            journal_on: std::env::var("LITEGATE_SPEND_JOURNAL").map_or(true, |v| v != "off"),
            idle: Mutex::new(conns),
            freed: Condvar::new(),
            stop,
            health,
            _lock: lock,
        })
    }

    /// Whether the store can record: `Err(Unavailable)` with the reason when it cannot. One
    /// atomic load while it can (model calls check it before going upstream).
    pub fn writable(&self) -> Result<()> {
        if self.health.is_ok() {
            Ok(())
        } else {
            Err(Error::Unavailable(format!(
                "the database cannot record spend right now ({}); try again later",
                self.health.reason()
            )))
        }
    }

    /// The spend journal (model calls append to it; the key check adds its overlay).
    pub fn journal(&self) -> &journal::Journal {
        &self.journal
    }

    /// Whether model calls journal their spend (else: the group commit).
    pub fn journal_on(&self) -> bool {
        self.journal_on
    }

    /// Waits until every spend journaled so far is applied (management reads and writes).
    /// Not while the store cannot write: the applier cannot catch up then.
    pub fn barrier(&self) {
        if self.health.is_ok() {
            self.journal.barrier(BARRIER_WAIT);
        }
    }

    /// Records an answered call's spend: journaled (one write; issue 17), or, once the journal
    /// is closed (a call still running at shutdown), committed on the hot connection.
    pub fn record_spend(&self, rec: spend::SpendRecord) -> Result<()> {
        match self.journal.append(rec) {
            Ok(done) => done,
            Err(rec) => self.write_hot(|tx| Ok(spend::record(&mut &**tx, &rec)?)),
        }
    }

    /// Clean shutdown: the applier applies everything journaled and ends; the file, all of it
    /// applied, is removed (idempotent).
    pub fn close_journal(&self) {
        let h = self
            .applier
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = h {
            journal_apply::Applier::drain(&self.journal, h);
            self.journal.remove_if_applied(&self.path);
        }
    }

    pub fn health(&self) -> &health::Health {
        &self.health
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn get(&self) -> Result<Conn<'_>> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let started = std::time::Instant::now();
        let deadline = started + POOL_WAIT;
        let mut waited = false;
        loop {
            if let Some(c) = idle.pop() {
                if waited {
                    crate::metrics::METRICS.pool_wait(started.elapsed());
                }
                return Ok(Conn {
                    pool: self,
                    conn: Some(c),
                });
            }
            waited = true;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(Error::Unavailable("the database is busy; try again".into()));
            }
            idle = self
                .freed
                .wait_timeout(idle, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Runs `f` in an IMMEDIATE transaction (takes the write lock at BEGIN, so it never has to
    /// upgrade a read lock: the WAL busy trap). Commits when `f` returns Ok; an `Err` or a panic
    /// rolls back on drop.
    ///
    /// Refused (503) while the store cannot record (`health.rs`): a change written into a
    /// removed or replaced file would be acknowledged and then lost.
    pub fn write<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        self.writable()?;
        self.barrier();
        immediate(&*self.get()?, &self.health, f)
    }

    /// The hot connection (key checks and spend commits), exclusively while the guard lives.
    pub fn hot(&self) -> std::sync::MutexGuard<'_, Hot> {
        self.hot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `write` on the hot connection.
    pub fn write_hot<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        immediate(&self.hot(), &self.health, f)
    }

    /// Runs `f` with a connection for reads.
    /// Sees every answered call's spend (waits for the spend applier first).
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.barrier();
        let c = self.get()?;
        f(&c)
    }
}

/// Runs `f` in an IMMEDIATE transaction on `c`: commits when `f` returns Ok; an `Err` or a
/// panic rolls back on drop. A storage failure at BEGIN or COMMIT (where WAL writes happen)
/// puts the health flag down.
fn immediate<T>(
    c: &Connection,
    health: &health::Health,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>,
) -> Result<T> {
    // `new_unchecked` takes `&Connection`: the hot connection is never borrowed mutably (its
    // key-check statement borrows it; `hot.rs`). No transaction is open on `c` here: every
    // one on these connections is begun here or by the applier and ends before they return.
    let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)
        .inspect_err(|e| health.note_write_error(e))?;
    let out = f(&tx)?;
    tx.commit().inspect_err(|e| health.note_write_error(e))?;
    Ok(out)
}

/// Checkpoints the WAL on a thread of its own, so that no request pays for it: SQLite's
/// auto-checkpoint runs inside whichever commit crosses 1,000 WAL pages, with an fsync of the
/// WAL and the database file (15 % of litegate's CPU under load, and that request's latency).
/// PASSIVE never waits for readers or writers, but under continuous load some reader always
/// holds an old snapshot, so the WAL is never rewound and grows without bound (1.9 GB in 24 s
/// of streaming at c=8). Past `WAL_RESTART_FRAMES` a RESTART checkpoint waits (busy timeout)
/// for those readers, holding off writers meanwhile, so the next commit rewinds the WAL.
/// Durability is unchanged: a commit is in the WAL before it returns, as before. Returns false
/// when the thread cannot start: the pool then keeps SQLite's auto-checkpoint.
///
/// Each round also updates the store's health flag (`health.rs`): the file at the path is
/// still the one opened, the checkpoint worked, and, only after a failed write, a probe write.
fn start_checkpointer(
    path: &Path,
    sync: Synchronous,
    stop: Arc<AtomicBool>,
    health: Arc<health::Health>,
) -> bool {
    let mut c = match open_with(path, sync) {
        Ok(c) => c,
        Err(e) => {
            log::warn!("checkpointer: cannot open the database ({e}); auto-checkpoint stays on");
            return false;
        }
    };
    let checkpoint = |c: &Connection, mode: &str| -> rusqlite::Result<i64> {
        // (busy, frames in the WAL, frames checkpointed)
        c.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
    };
    let spawned = std::thread::Builder::new()
        .name("wal-checkpoint".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_EVERY);
                let r = checkpoint(&c, "PASSIVE").and_then(|frames| {
                    if frames > WAL_RESTART_FRAMES {
                        checkpoint(&c, "RESTART").map(|_| ())
                    } else {
                        Ok(())
                    }
                });
                if let Err(e) = &r {
                    log::warn!("WAL checkpoint failed: {e}");
                }
                health.update(&r, || probe_write(&mut c));
            }
        });
    match spawned {
        Ok(_) => true,
        Err(e) => {
            log::warn!("cannot start the checkpointer thread ({e}); auto-checkpoint stays on");
            false
        }
    }
}

/// One small committed write (after a failed one: can the store record again?).
fn probe_write(c: &mut Connection) -> rusqlite::Result<()> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    settings_put(&mut &*tx, "store_probe", &crate::util::now_iso())?;
    tx.commit()
}

/// Model lists and metadata are stored as JSON text.
pub fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn json_obj(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|_| serde_json::json!({}))
}

/// A JSON object column (metadata, aliases) as stored text: anything not an object is `{}`.
pub fn obj_text(v: &serde_json::Value) -> String {
    if v.is_object() {
        v.to_string()
    } else {
        "{}".to_string()
    }
}

pub fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// True when the error is a UNIQUE or PRIMARY KEY violation (mapped to 409 by the caller).
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
        || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Moves every WAL frame into the database file and empties the WAL (clean shutdown), so the
/// `.db` file alone is complete.
pub fn checkpoint_truncate(c: &Connection) -> rusqlite::Result<(i64, i64, i64)> {
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
}

pub(crate) const PING: &str = "SELECT 1";

/// Readiness: the store answers a trivial statement on a pooled connection.
pub fn ping(c: &Connection) -> rusqlite::Result<i64> {
    c.prepare_cached(PING)?.query_row([], |r| r.get(0))
}

pub(crate) const SETTINGS_GET: &str = "SELECT value FROM settings WHERE name = ?1";
pub fn settings_get(c: &rusqlite::Connection, name: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    c.prepare_cached(SETTINGS_GET)?
        .query_row([name], |r| r.get(0))
        .optional()
}

pub(crate) const SETTINGS_PUT: &str = "INSERT INTO settings(name, value) VALUES (?1, ?2)
    ON CONFLICT(name) DO UPDATE SET value = excluded.value";
pub fn settings_put<C: sql::Exec + ?Sized>(
    c: &mut C,
    name: &str,
    value: &str,
) -> std::result::Result<(), C::E> {
    c.exec(SETTINGS_PUT, &[name.into(), value.into()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_sqlite_is_new_enough() {
        let c = Connection::open_in_memory().expect("mem");
        assert!(check_sqlite_version(&c).is_ok());
        assert!(sqlite_version_ok("3.51.3"));
        assert!(sqlite_version_ok("3.54.1"));
        assert!(!sqlite_version_ok("3.51.2"));
        assert!(!sqlite_version_ok("3.45.0"));
    }

    #[test]
    fn pragmas_are_applied() {
        let dir = tempfile::tempdir().expect("tmp");
        let c = open(&dir.path().join("x.db")).expect("open");
        let mode: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        let fk: i64 = c
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .expect("fk");
        assert_eq!(fk, 1);
        let sync: i64 = c
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("sync");
        assert_eq!(sync, 1, "NORMAL");
    }
}
