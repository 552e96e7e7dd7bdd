//! The PostgreSQL store (issue 14): the bounded connection pool (the URL and its TLS are in
//! `pg_url.rs`), the per-connection statement cache (`?N` texts rewritten to `$N` once,
//! `sql::pg_text`), transactions and the store's health flag. The migrations of `schema/pg/`
//! (one transaction under an advisory lock, so that N instances starting at once migrate
//! exactly once) are in `pg_migrate.rs`.
//!
//! What an instance holds open: at most `database_connection_pool_limit` (default 8)
//! connections, opened when first needed and kept; one is opened at start (migrations). A
//! connection found closed (the server restarted, the network dropped it) is replaced on its
//! next checkout; a checkout that cannot connect is a 503.
//!
//! Outages (issue 14 item 5): every wait for the server — a whole connect, each statement —
//! is bounded by `database_connection_timeout` (default 3 s; the vendored client's
//! `Config::io_timeout`, vendor/postgres/PATCHES.md), so a stopped, unreachable or hung server
//! costs a caller at most that long. A failed connect, a refused or reset connection, or a
//! statement timeout while the server answered no other connection either (`pg_health.rs`: a
//! single stuck statement on a server that answers the others costs only its own call) puts
//! the store down: the idle connections are dropped (after a restart they are all dead),
//! callers waiting for a connection get their 503 at once, and while down only one caller at a
//! time tries a new connection (the probe) while the others are refused at once. The first
//! connection that works puts the store up again: no restart of litegate.

use super::sql::{pg_text, Arg, Exec};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a request waits for a free connection before it gets a 503 (as on SQLite).
const POOL_WAIT: Duration = Duration::from_secs(10);
/// The bound on the migrations' statements at start (an index on a big table may take long).
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(600);
/// Statements kept prepared per connection; past it the cache starts again (dynamic texts such
/// as `/spend/logs` filters are at most a few hundred).
const STATEMENT_CACHE: usize = 512;
pub use super::pg_health::unreachable;
use super::pg_health::{timed_out, Health};
pub use super::pg_migrate::{latest, migrate, MIGRATIONS};
pub use super::pg_url::is_pg_url;
use super::pg_url::{target, tls};

/// One connection outside any pool (the `copy-db` tool): the URL's TLS and connect bound as
/// the pool uses them; a statement may then take up to `MIGRATION_TIMEOUT` (a copy counts and
/// writes whole tables, and its lock waits for a serving instance's writers). The error never
/// repeats the URL.
pub fn connect(url: &str) -> std::result::Result<postgres::Client, String> {
    let t = target(url)?;
    let mut c = t
        .config
        .connect(tls(t.root_cert.as_deref())?)
        .map_err(|e| {
            // The cause (refused, timed out, TLS, authentication), never the URL.
            let cause = match (e.as_db_error(), std::error::Error::source(&e)) {
                (None, Some(s)) => format!(": {s}"),
                _ => String::new(),
            };
            format!("cannot connect to PostgreSQL: {}{cause}", describe(&e))
        })?;
    c.set_io_timeout(Some(MIGRATION_TIMEOUT));
    Ok(c)
}

/// One pooled connection and its prepared statements.
pub struct PgConn {
    client: postgres::Client,
    cache: HashMap<Box<str>, postgres::Statement>,
}

/// A statement runner on a connection or inside a transaction, with the connection's cache.
pub struct Q<'a, C: postgres::GenericClient> {
    c: &'a mut C,
    cache: &'a mut HashMap<Box<str>, postgres::Statement>,
}

impl<C: postgres::GenericClient> Q<'_, C> {
    fn statement(
        &mut self,
        sql: &str,
    ) -> std::result::Result<postgres::Statement, postgres::Error> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.c.prepare(&pg_text(sql))?;
        if self.cache.len() >= STATEMENT_CACHE {
            self.cache.clear();
        }
        self.cache.insert(sql.into(), s.clone());
        Ok(s)
    }

    /// The first row of `sql` mapped by `f`, or `None`.
    pub fn one<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&postgres::Row) -> std::result::Result<T, postgres::Error>,
    ) -> std::result::Result<Option<T>, postgres::Error> {
        let st = self.statement(sql)?;
        let p: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        match self.c.query_opt(&st, &p)? {
            Some(r) => f(&r).map(Some),
            None => Ok(None),
        }
    }

    /// The rows of `sql` with parameters of any PostgreSQL type (arrays: `db::leases`).
    pub fn typed(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> std::result::Result<Vec<postgres::Row>, postgres::Error> {
        let st = self.statement(sql)?;
        self.c.query(&st, params)
    }

    /// Every row of `sql` mapped by `f`.
    pub fn all<T>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnMut(&postgres::Row) -> std::result::Result<T, postgres::Error>,
    ) -> std::result::Result<Vec<T>, postgres::Error> {
        let st = self.statement(sql)?;
        let p: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        self.c.query(&st, &p)?.iter().map(f).collect()
    }
}

/// A PostgreSQL statement runner whatever it runs on (connection or transaction): what
/// `handle::Db` holds.
pub trait PgRun {
    fn row(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> std::result::Result<Option<postgres::Row>, postgres::Error>;
    fn rows(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> std::result::Result<Vec<postgres::Row>, postgres::Error>;
    fn run(&mut self, sql: &str, args: &[Arg<'_>]) -> std::result::Result<usize, postgres::Error>;
}

/// Whether a runner is inside a transaction (`run` then guards each statement).
pub trait InTx {
    const IN_TX: bool;
}

impl InTx for postgres::Client {
    const IN_TX: bool = false;
}

impl InTx for postgres::Transaction<'_> {
    const IN_TX: bool = true;
}

impl<C: postgres::GenericClient + InTx> PgRun for Q<'_, C> {
    fn row(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> std::result::Result<Option<postgres::Row>, postgres::Error> {
        let st = self.statement(sql)?;
        let p: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        self.c.query_opt(&st, &p)
    }
    fn rows(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
    ) -> std::result::Result<Vec<postgres::Row>, postgres::Error> {
        let st = self.statement(sql)?;
        let p: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        self.c.query(&st, &p)
    }
    /// Inside a transaction each statement runs under a savepoint: a failed one (a UNIQUE
    /// violation the handler maps to 409 and then reads on) is rolled back alone, as on
    /// SQLite, instead of aborting the whole transaction. Management writes only; the spend
    /// commit does not come through here.
    fn run(&mut self, sql: &str, args: &[Arg<'_>]) -> std::result::Result<usize, postgres::Error> {
        if !C::IN_TX {
            return self.exec(sql, args);
        }
        self.c.batch_execute("SAVEPOINT litegate_stmt")?;
        match self.exec(sql, args) {
            Ok(n) => {
                self.c.batch_execute("RELEASE SAVEPOINT litegate_stmt")?;
                Ok(n)
            }
            Err(e) => {
                self.c
                    .batch_execute("ROLLBACK TO SAVEPOINT litegate_stmt")?;
                Err(e)
            }
        }
    }
}

impl<C: postgres::GenericClient> Exec for Q<'_, C> {
    type E = postgres::Error;
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> std::result::Result<usize, postgres::Error> {
        let st = self.statement(sql)?;
        let p: Vec<&(dyn postgres::types::ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        Ok(self.c.execute(&st, &p)? as usize)
    }
}

/// The bounded pool.
pub struct PgPool {
    config: postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    size: usize,
    idle: Mutex<Vec<PgConn>>,
    /// Connections open now (idle or on loan); never above `size`.
    open: Mutex<usize>,
    freed: Condvar,
    /// Up or down (readiness, model calls; while down, checkouts fail fast), the probe, and
    /// when the server last answered.
    health: Health,
}

/// A connection on loan; back to the pool on drop unless it was found broken.
pub struct Loan<'a> {
    pool: &'a PgPool,
    conn: Option<PgConn>,
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        let mut open = self.pool.open.lock().unwrap_or_else(|p| p.into_inner());
        match self.conn.take() {
            Some(c) if !c.client.is_closed() => {
                self.pool.health.answered();
                self.pool
                    .idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(c);
            }
            _ => *open = open.saturating_sub(1),
        }
        self.pool.freed.notify_one();
    }
}

impl Loan<'_> {
    fn conn(&mut self) -> Result<&mut PgConn> {
        self.conn
            .as_mut()
            .ok_or_else(|| Error::internal("connection taken before drop"))
    }
}

impl PgPool {
    /// Connects once (failing the start when the database cannot be reached), applies the
    /// migrations under the advisory lock and keeps that connection in the pool; every wait for
    /// the server is bounded by the default `database_connection_timeout`.
    pub fn open(url: &str, size: usize) -> std::result::Result<PgPool, String> {
        Self::open_with(url, size, crate::config::DB_TIMEOUT)
    }

    /// `open` with every wait for the server bounded by `io_timeout`.
    pub fn open_with(
        url: &str,
        size: usize,
        io_timeout: Duration,
    ) -> std::result::Result<PgPool, String> {
        let mut t = target(url)?;
        t.config.io_timeout(io_timeout);
        let pool = PgPool {
            tls: tls(t.root_cert.as_deref())?,
            config: t.config,
            size: size.max(1),
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            freed: Condvar::new(),
            health: Health::new(io_timeout),
        };
        let mut first = pool
            .connect()
            .map_err(|e| format!("cannot connect to PostgreSQL: {}", describe(&e)))?;
        first.client.set_io_timeout(Some(MIGRATION_TIMEOUT));
        migrate(&mut first.client)?;
        first.client.set_io_timeout(Some(io_timeout));
        *pool.open.lock().unwrap_or_else(|p| p.into_inner()) = 1;
        pool.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(first);
        Ok(pool)
    }

    fn connect(&self) -> std::result::Result<PgConn, postgres::Error> {
        let client = self.config.connect(self.tls.clone())?;
        Ok(PgConn {
            client,
            cache: HashMap::new(),
        })
    }

    /// Whether the store is up (not `down`): one atomic load.
    pub fn is_ok(&self) -> bool {
        self.health.is_up()
    }

    fn note(&self, e: &postgres::Error) {
        if timed_out(e) {
            self.lost();
        } else if unreachable(e) {
            self.down();
        }
    }

    /// A call lost its connection (no answer within the timeout, or reset): the store goes
    /// down only when the server answered no other connection lately either (`pg_health.rs`);
    /// else the server is there and only that connection is gone.
    fn lost(&self) {
        if self.health.silent() {
            self.down();
        } else if self.is_ok() {
            log::warn!(
                "PostgreSQL: a connection was lost mid-call (no answer in time, or reset) while \
                 the server answers the others: that call gets a 503, the store stays up"
            );
        }
    }

    /// The server cannot be reached: the store is down until a connection works again. The
    /// idle connections go (after a restart every one of them is dead; on a hung server each
    /// would cost its next caller the whole timeout) and the callers waiting for a connection
    /// are woken to get their 503.
    fn down(&self) {
        let stale = {
            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
            let stale = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
            *open = open.saturating_sub(stale.len());
            stale
        };
        if self.health.set_down() {
            log::error!(
                "PostgreSQL cannot be reached: calls that need the database get 503 until a \
                 connection works again"
            );
        }
        self.freed.notify_all();
        // Closing sends a Terminate and does not wait for an answer (bounded by the timeout).
        drop(stale);
    }

    fn up(&self) {
        if self.health.set_up() {
            log::warn!("PostgreSQL can be reached again");
        }
    }

    /// While the store is down: an `Err` unless the store can be reached again. One caller at a
    /// time tries a connection (at most the timeout); the others are refused at once.
    pub fn probe(&self) -> Result<()> {
        if self.is_ok() {
            return Ok(());
        }
        self.get().map(drop)
    }

    /// A connection: an idle one (replaced if the server closed it), a new one while fewer
    /// than `size` are open, else the next one freed within `POOL_WAIT` (503 after). While the
    /// store is down (`down`): a new connection for one caller at a time, a 503 at once for
    /// the others.
    fn get(&self) -> Result<Loan<'_>> {
        self.get_from(POOL_WAIT, true)
    }

    /// `get`, waiting at most `wait` for a connection to be freed; while the store is down,
    /// `probe` says whether this caller may try a connection (else a 503 at once).
    fn get_from(&self, wait: Duration, probe: bool) -> Result<Loan<'_>> {
        let started = Instant::now();
        let deadline = started + wait;
        let unreachable =
            || Error::Unavailable("the database cannot be reached; try again later".into());
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match idle {
                Some(c) if !c.client.is_closed() => {
                    return Ok(Loan {
                        pool: self,
                        conn: Some(c),
                    })
                }
                Some(_) => *open = open.saturating_sub(1),
                None => {}
            }
            let down = !self.is_ok();
            if *open < self.size {
                if down && (!probe || !self.health.start_probe()) {
                    return Err(unreachable());
                }
                *open += 1;
                drop(open);
                let r = self.connect();
                if down {
                    self.health.end_probe();
                }
                return match r {
                    Ok(c) => {
                        self.up();
                        Ok(Loan {
                            pool: self,
                            conn: Some(c),
                        })
                    }
                    Err(e) => {
                        {
                            let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                            *open = open.saturating_sub(1);
                        }
                        self.freed.notify_one();
                        self.note(&e);
                        // Once per outage at warn (`down` logs it too), not once per refused call.
                        if down {
                            log::debug!("PostgreSQL: probe: cannot connect: {}", describe(&e));
                        } else {
                            log::warn!("PostgreSQL: cannot connect: {}", describe(&e));
                        }
                        Err(unreachable())
                    }
                };
            }
            if down {
                return Err(unreachable());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Unavailable("the database is busy; try again".into()));
            }
            open = self
                .freed
                .wait_timeout(open, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Runs `f` on a connection, outside a transaction (single-statement reads).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut Q<'_, postgres::Client>) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut loan = self.get()?;
        let c = loan.conn()?;
        let mut q = Q {
            c: &mut c.client,
            cache: &mut c.cache,
        };
        f(&mut q).map_err(|e| self.error(e))
    }

    /// Runs `f` in a transaction: committed when `f` returns Ok, rolled back otherwise.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Q<'_, postgres::Transaction<'_>>) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        self.write_on(self.get()?, f)
    }

    /// `write`, but while the store is down it is refused at once instead of trying a
    /// connection: for the spend commit, which comes after its call's key check and `writable`
    /// check have probed already (a call must not wait for the timeout twice: once behind the
    /// group commit's hung batch, once more for a probe of its own).
    pub fn write_if_up<T>(
        &self,
        f: impl FnOnce(&mut Q<'_, postgres::Transaction<'_>>) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        self.write_on(self.get_from(POOL_WAIT, false)?, f)
    }

    fn write_on<T>(
        &self,
        mut loan: Loan<'_>,
        f: impl FnOnce(&mut Q<'_, postgres::Transaction<'_>>) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let c = loan.conn()?;
        let mut tx = c.client.transaction().map_err(|e| self.error(e))?;
        let out = {
            let mut q = Q {
                c: &mut tx,
                cache: &mut c.cache,
            };
            f(&mut q).map_err(|e| self.error(e))?
        };
        tx.commit().map_err(|e| self.error(e))?;
        Ok(out)
    }

    /// Runs `f` on a connection outside a transaction; `f`'s errors come back unchanged.
    pub fn with_client<T>(
        &self,
        f: impl FnOnce(&mut Q<'_, postgres::Client>) -> Result<T>,
    ) -> Result<T> {
        self.on_loan(self.get()?, f)
    }

    /// `with_client`, waiting at most `wait` for a free connection and, while the store is
    /// down, refused at once rather than probing (a call's lease release: it must not hold its
    /// request up for long; an unreleased lease expires).
    pub fn with_client_within<T>(
        &self,
        wait: Duration,
        f: impl FnOnce(&mut Q<'_, postgres::Client>) -> Result<T>,
    ) -> Result<T> {
        self.on_loan(self.get_from(wait, false)?, f)
    }

    /// Runs `f` on a borrowed connection; one that closed on the way puts the store down.
    fn on_loan<T>(
        &self,
        mut loan: Loan<'_>,
        f: impl FnOnce(&mut Q<'_, postgres::Client>) -> Result<T>,
    ) -> Result<T> {
        let c = loan.conn()?;
        let mut q = Q {
            c: &mut c.client,
            cache: &mut c.cache,
        };
        let out = f(&mut q);
        self.check_closed(c, &out);
        out
    }

    /// Runs `f` in a transaction: committed when `f` returns Ok, rolled back otherwise; `f`'s
    /// errors come back unchanged.
    pub fn with_tx<T>(
        &self,
        f: impl FnOnce(&mut Q<'_, postgres::Transaction<'_>>) -> Result<T>,
    ) -> Result<T> {
        let mut loan = self.get()?;
        let c = loan.conn()?;
        let out = (|| {
            let mut tx = c.client.transaction().map_err(|e| self.error(e))?;
            let out = {
                let mut q = Q {
                    c: &mut tx,
                    cache: &mut c.cache,
                };
                f(&mut q)?
            };
            tx.commit().map_err(|e| self.error(e))?;
            Ok(out)
        })();
        self.check_closed(c, &out);
        out
    }

    /// After `f`'s own error (its statements' errors are mapped by `handle.rs`, not here): a
    /// connection that closed on the way (reset, or timed out: `Config::io_timeout`) is lost,
    /// as in `note`.
    fn check_closed<T>(&self, c: &PgConn, out: &Result<T>) {
        if out.is_err() && c.client.is_closed() && self.is_ok() {
            self.lost();
        }
    }

    /// A statement's error for the caller: the server unreachable → 503 (health flag down),
    /// anything else → 500 with the detail in the log only.
    pub fn error(&self, e: postgres::Error) -> Error {
        self.note(&e);
        if unreachable(&e) {
            log::warn!("PostgreSQL: {}", describe(&e));
            Error::Unavailable("the database cannot be reached; try again later".into())
        } else {
            Error::Internal(format!("database: {}", describe(&e)))
        }
    }
}

/// An error's text (the server's message and SQLSTATE, or the client's); never the URL.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// True when the error is a UNIQUE or PRIMARY KEY violation (the caller's 409).
pub fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}
