//! PostgreSQL for the integration tests (issue 14). With `LITEGATE_TEST_PG=<admin URL>` every
//! `Server` gets a database of its own (CREATE DATABASE per test, dropped when the `Server`
//! is dropped) and starts with `DATABASE_URL` pointing at it; without it the suite runs on
//! SQLite as before. `admin_url()` is for the tests that need PostgreSQL whatever the switch
//! (tests/it/pg.rs): the switch's URL, else the throwaway cluster of `scripts/pg.sh start`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The switch: the admin URL of a PostgreSQL that tests may create databases in.
pub fn switch() -> Option<String> {
    std::env::var("LITEGATE_TEST_PG")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// A PostgreSQL admin URL: the switch's, else `scripts/pg.sh start` (idempotent; installs
/// and starts a throwaway cluster on first use).
pub fn admin_url() -> String {
    if let Some(u) = switch() {
        return u;
    }
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg("start")
            .output()
            .expect("run scripts/pg.sh");
        assert!(
            out.status.success(),
            "scripts/pg.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
    .clone()
}

/// `url` with its database name replaced by `db`.
pub fn with_db(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

pub fn client(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect to PostgreSQL")
}

/// A database of its own for one test, dropped with this value.
pub struct PgDb {
    admin: String,
    pub name: String,
    pub url: String,
    /// The harness's one connection to it, opened on first use and kept (a connection costs
    /// a SCRAM handshake; the assertions of one test make dozens of reads).
    conn: Mutex<Option<postgres::Client>>,
}

/// The harness's connection to a test database, held while this value lives.
pub struct Conn<'a>(MutexGuard<'a, Option<postgres::Client>>);

impl std::ops::Deref for Conn<'_> {
    type Target = postgres::Client;
    fn deref(&self) -> &postgres::Client {
        self.0.as_ref().expect("connected")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut postgres::Client {
        self.0.as_mut().expect("connected")
    }
}

impl PgDb {
    pub fn create(admin: &str) -> PgDb {
        static N: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "lgt_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        client(admin)
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        PgDb {
            admin: admin.to_string(),
            url: with_db(admin, &name),
            name,
            conn: Mutex::new(None),
        }
    }

    /// The harness's connection to this database (reopened if the server closed it). Held
    /// until the value is dropped: do not call another harness read while holding it.
    pub fn client(&self) -> Conn<'_> {
        let mut g = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if g.as_ref().is_none_or(|c| c.is_closed()) {
            *g = Some(client(&self.url));
        }
        Conn(g)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Close the harness's connection before the database goes.
        drop(
            self.conn
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A column type the harness reads from either engine.
pub trait Both: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a> {}
impl<T: rusqlite::types::FromSql + for<'a> postgres::types::FromSql<'a>> Both for T {}

/// Statement parameters the harness passes to either engine (as text on PostgreSQL).
pub trait Args: rusqlite::Params {
    fn texts(&self) -> Vec<String>;
}

impl Args for [&(dyn rusqlite::ToSql + Send + Sync); 0] {
    fn texts(&self) -> Vec<String> {
        Vec::new()
    }
}

macro_rules! args_n {
    ($($n:literal),*) => {$(
        impl<T: rusqlite::ToSql + std::fmt::Display> Args for [T; $n] {
            fn texts(&self) -> Vec<String> {
                self.iter().map(|v| v.to_string()).collect()
            }
        }
    )*};
}
args_n!(1, 2, 3);

/// The first column of the one row `sql` returns, on the test's PostgreSQL database.
pub fn value<T: Both>(db: &PgDb, sql: &str, params: &[String]) -> T {
    let sql = litegate::db::sql::pg_text(sql);
    let p: Vec<&(dyn postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect();
    db.client()
        .query_one(&sql, &p)
        .and_then(|r| r.try_get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row of every litegate table as text, sorted (the PostgreSQL twin of
/// `common::snapshot`: equal snapshots mean nothing changed).
pub fn snapshot(db: &PgDb) -> String {
    let mut c = db.client();
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = String::new();
    for t in tables {
        let mut rows: Vec<String> = c
            .query(&format!("SELECT t::text FROM \"{t}\" t"), &[])
            .expect("rows")
            .iter()
            .map(|r| r.get(0))
            .collect();
        rows.sort();
        for r in rows {
            out.push_str(&format!("{t}:{r}\n"));
        }
    }
    out
}

/// What a secret must never be found in, on PostgreSQL: every row of every table as text
/// (`snapshot`, values as stored, TOAST decompressed) followed by the raw bytes of every table,
/// TOAST table and index file of the database after a CHECKPOINT (so row versions that an
/// UPDATE or DELETE left dead are read too, as SQLite's free pages are). Reading the files needs
/// a superuser (the throwaway cluster's user is one); without, only the rows are read.
pub fn db_bytes(db: &PgDb) -> Vec<u8> {
    let mut out = snapshot(db).into_bytes();
    let mut c = db.client();
    let files = c.batch_execute("CHECKPOINT").and_then(|_| {
        c.query(
            "SELECT pg_read_binary_file(pg_relation_filepath(c.oid))
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 'i', 't')
               AND pg_relation_filepath(c.oid) IS NOT NULL",
            &[],
        )
    });
    match files {
        Ok(rows) => {
            for r in rows {
                out.extend(r.get::<_, Vec<u8>>(0));
            }
        }
        Err(e) => eprintln!("db_bytes: the relation files are not readable ({e}); rows only"),
    }
    out
}

#[test]
fn urls_get_their_database_replaced() {
    assert_eq!(
        with_db("postgresql://u:p@127.0.0.1:5/postgres", "x"),
        "postgresql://u:p@127.0.0.1:5/x"
    );
    assert_eq!(
        with_db("postgresql://u:p@h:5/postgres?sslmode=disable", "x"),
        "postgresql://u:p@h:5/x?sslmode=disable"
    );
    assert_eq!(
        with_db("postgresql://u:p@h:5", "x"),
        "postgresql://u:p@h:5/x"
    );
}

/// The harness's PostgreSQL `db_bytes` finds a value an UPDATE replaced (a dead row version)
/// and one in an index, as the SQLite byte grep finds free pages.
#[test]
fn db_bytes_reads_dead_row_versions_and_indexes() {
    let db = PgDb::create(&admin_url());
    db.client()
        .batch_execute(
            "CREATE TABLE t (v TEXT); CREATE INDEX t_v ON t (v);
             INSERT INTO t VALUES ('needle-replaced-0123'), ('live-value-4567');
             UPDATE t SET v = 'other' WHERE v = 'needle-replaced-0123';",
        )
        .expect("setup");
    let rows = snapshot(&db);
    assert!(rows.contains("live-value-4567") && !rows.contains("needle-replaced-0123"));
    let all = db_bytes(&db);
    let has = |n: &str| all.windows(n.len()).any(|w| w == n.as_bytes());
    assert!(has("needle-replaced-0123"), "the dead row version is read");
    assert!(has("live-value-4567"));
}
