//! The PostgreSQL store (issue 14): the connection URL and its TLS, the bounded connection pool,
//! the per-connection statement cache (`?N` texts rewritten to `$N` once, `sql::pg_text`),
//! transactions, the store's health flag, and the migrations of `schema/pg/` applied under an
//! advisory lock so that N instances starting at once migrate exactly once.
//!
//! What an instance holds open: at most `database_connection_pool_limit` (default 8)
//! connections, opened when first needed and kept; one is opened at start (migrations). A
//! connection found closed (the server restarted, the network dropped it) is replaced on its
//! next checkout; a checkout that cannot connect is a 503.

use super::sql::{pg_text, Arg, Exec};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a request waits for a free connection before it gets a 503 (as on SQLite).
const POOL_WAIT: Duration = Duration::from_secs(10);
/// Connecting gives up after this long unless the URL says `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Statements kept prepared per connection; past it the cache starts again (dynamic texts such
/// as `/spend/logs` filters are at most a few hundred).
const STATEMENT_CACHE: usize = 512;
/// `pg_advisory_xact_lock` key of the migrations ("litegate" in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x6c69_7465_6761_7465;

/// `schema/pg/NNNN_*.sql`, applied in order; the version is recorded in `litegate_schema`.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../schema/pg/0001_init.sql")),
    (2, include_str!("../../schema/pg/0002_shared_limits.sql")),
    (
        3,
        include_str!("../../schema/pg/0003_team_aliases_permissions.sql"),
    ),
];

/// A PostgreSQL URL as given (`postgresql://` or `postgres://`), prepared for the client:
/// `sslmode=verify-full`/`verify-ca` are read as `require` (the certificate is always verified
/// here, against the Mozilla roots and `sslrootcert`), `sslrootcert=<file>` is taken out and
/// its PEM certificates trusted.
struct Target {
    config: postgres::Config,
    root_cert: Option<String>,
}

/// Whether `url` names a PostgreSQL database.
pub fn is_pg_url(url: &str) -> bool {
    url.starts_with("postgresql://") || url.starts_with("postgres://")
}

fn target(url: &str) -> std::result::Result<Target, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut root_cert = None;
    let mut kept: Vec<String> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match (k, v) {
            ("sslrootcert", v) => root_cert = Some(v.to_string()),
            ("sslmode", "verify-full" | "verify-ca") => kept.push("sslmode=require".into()),
            _ => kept.push(pair.to_string()),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    // The parser's message never repeats the URL (which holds the password).
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL litegate can use: {e}"))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("litegate");
    }
    Ok(Target { config, root_cert })
}

fn tls(
    root_cert: Option<&str>,
) -> std::result::Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = root_cert {
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("sslrootcert {path}: {e}"))?;
        for c in certs {
            let c = c.map_err(|e| format!("sslrootcert {path}: {e}"))?;
            roots
                .add(c)
                .map_err(|e| format!("sslrootcert {path}: {e}"))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
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
    /// False after a connection failed until one succeeds again (readiness, model calls).
    healthy: AtomicBool,
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
    /// migrations under the advisory lock and keeps that connection in the pool.
    pub fn open(url: &str, size: usize) -> std::result::Result<PgPool, String> {
        let t = target(url)?;
        let pool = PgPool {
            tls: tls(t.root_cert.as_deref())?,
            config: t.config,
            size: size.max(1),
            idle: Mutex::new(Vec::new()),
            open: Mutex::new(0),
            freed: Condvar::new(),
            healthy: AtomicBool::new(true),
        };
        let mut first = pool
            .connect()
            .map_err(|e| format!("cannot connect to PostgreSQL: {}", describe(&e)))?;
        migrate(&mut first.client)?;
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

    /// Whether the last connection attempt or statement reached the database.
    pub fn is_ok(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    fn note(&self, e: &postgres::Error) {
        if unreachable(e) {
            self.healthy.store(false, Ordering::Relaxed);
        }
    }

    /// A connection: an idle one (replaced if the server closed it), a new one while fewer
    /// than `size` are open, else the next one freed within `POOL_WAIT` (503 after).
    fn get(&self) -> Result<Loan<'_>> {
        self.get_within(POOL_WAIT)
    }

    /// `get`, waiting at most `wait` for a connection to be freed.
    fn get_within(&self, wait: Duration) -> Result<Loan<'_>> {
        let started = Instant::now();
        let deadline = started + wait;
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
            if *open < self.size {
                *open += 1;
                drop(open);
                return match self.connect() {
                    Ok(c) => {
                        self.healthy.store(true, Ordering::Relaxed);
                        Ok(Loan {
                            pool: self,
                            conn: Some(c),
                        })
                    }
                    Err(e) => {
                        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
                        *open = open.saturating_sub(1);
                        self.note(&e);
                        log::warn!("PostgreSQL: cannot connect: {}", describe(&e));
                        Err(Error::Unavailable(
                            "the database cannot be reached; try again later".into(),
                        ))
                    }
                };
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
        let out = f(&mut q).map_err(|e| self.error(e))?;
        self.healthy.store(true, Ordering::Relaxed);
        Ok(out)
    }

    /// Runs `f` in a transaction: committed when `f` returns Ok, rolled back otherwise.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Q<'_, postgres::Transaction<'_>>) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut loan = self.get()?;
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
        let mut loan = self.get()?;
        let c = loan.conn()?;
        let mut q = Q {
            c: &mut c.client,
            cache: &mut c.cache,
        };
        f(&mut q)
    }

    /// `with_client`, waiting at most `wait` for a free connection (a call's lease release:
    /// it must not hold its request up for long).
    pub fn with_client_within<T>(
        &self,
        wait: Duration,
        f: impl FnOnce(&mut Q<'_, postgres::Client>) -> Result<T>,
    ) -> Result<T> {
        let mut loan = self.get_within(wait)?;
        let c = loan.conn()?;
        let mut q = Q {
            c: &mut c.client,
            cache: &mut c.cache,
        };
        f(&mut q)
    }

    /// Runs `f` in a transaction: committed when `f` returns Ok, rolled back otherwise; `f`'s
    /// errors come back unchanged.
    pub fn with_tx<T>(
        &self,
        f: impl FnOnce(&mut Q<'_, postgres::Transaction<'_>>) -> Result<T>,
    ) -> Result<T> {
        let mut loan = self.get()?;
        let c = loan.conn()?;
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

/// Whether an error says the server cannot be reached (the connection closed, or the socket
/// failed), as opposed to a statement the server or the client refused.
pub fn unreachable(e: &postgres::Error) -> bool {
    e.is_closed()
        || std::error::Error::source(e)
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
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

/// The latest schema version this litegate knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

/// Applies the migrations not yet applied, all in ONE transaction holding
/// `pg_advisory_xact_lock`: of N instances starting at once, the first migrates, the others
/// wait for its commit and find nothing left to do. Refuses a database migrated by a newer
/// litegate.
pub fn migrate(c: &mut postgres::Client) -> std::result::Result<(), String> {
    let fail = |e: postgres::Error| format!("PostgreSQL migration: {}", describe(&e));
    let mut tx = c.transaction().map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS litegate_schema (
            version    BIGINT PRIMARY KEY,
            applied_at TEXT NOT NULL
        )",
    )
    .map_err(fail)?;
    let v: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM litegate_schema", &[])
        .and_then(|r| r.try_get(0))
        .map_err(fail)?;
    if v > latest() {
        return Err(format!(
            "the database has schema version {v}, newer than this litegate supports ({}); \
             run a newer litegate",
            latest()
        ));
    }
    for (n, sql) in MIGRATIONS.iter().filter(|(n, _)| *n > v) {
        tx.batch_execute(sql)
            .map_err(|e| format!("PostgreSQL migration {n}: {}", describe(&e)))?;
        tx.execute(
            "INSERT INTO litegate_schema (version, applied_at) VALUES ($1, $2)",
            &[n, &crate::util::now_iso()],
        )
        .map_err(fail)?;
        log::info!("applied PostgreSQL schema migration {n}");
    }
    tx.commit().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognized_and_prepared_without_echoing_the_password() {
        assert!(is_pg_url("postgresql://u:p@h/db"));
        assert!(is_pg_url("postgres://u:p@h/db"));
        assert!(!is_pg_url("litegate.db"));
        let t = target(
            "postgresql://u:secretpw@db.example:5433/lg?sslmode=verify-full&sslrootcert=/x.pem",
        )
        .expect("parsed");
        assert_eq!(t.root_cert.as_deref(), Some("/x.pem"));
        assert_eq!(t.config.get_ssl_mode(), postgres::config::SslMode::Require);
        assert_eq!(t.config.get_dbname(), Some("lg"));
        assert_eq!(t.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        let e = match target("postgresql://u:secretpw@h/db?sslmode=bogus") {
            Err(e) => e,
            Ok(_) => panic!("a bad sslmode must be refused"),
        };
        assert!(!e.contains("secretpw"), "{e}");
    }
}
