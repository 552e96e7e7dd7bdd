//! Engine-neutral reads of a test's store (issue 14): the same assertion runs on the SQLite file
//! or, under `LITEGATE_TEST_PG`, on the test's PostgreSQL database. Owns `Server::rows` (typed
//! tuples), `Server::text_rows` (any columns as text), `db_bytes` (what a secret must never be
//! found in) and the SQLite-pinned constructors for the tests that check SQLite-only behaviour
//! (the file, its WAL and lock, `VACUUM INTO`, `PRAGMA`). Setup writes are `run_sql` /
//! `Server::exec` in `common.rs`.

use super::pg::{self, Args, Both};
use super::Server;

/// A row the harness reads from either engine: a tuple of 1 to 4 columns, each of a type both
/// engines give (`i64`, `f64`, `String`, `Option<_>` of those).
pub trait Row: Sized {
    fn lite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
    fn pg(r: &postgres::Row) -> Result<Self, postgres::Error>;
}

macro_rules! row_tuple {
    ($($t:ident $i:tt),*) => {
        impl<$($t: Both),*> Row for ($($t,)*) {
            fn lite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(r.get::<_, $t>($i)?,)*))
            }
            fn pg(r: &postgres::Row) -> Result<Self, postgres::Error> {
                Ok(($(r.try_get::<_, $t>($i)?,)*))
            }
        }
    };
}
row_tuple!(A 0);
row_tuple!(A 0, B 1);
row_tuple!(A 0, B 1, C 2);
row_tuple!(A 0, B 1, C 2, D 3);

/// The parameters of `texts` as PostgreSQL text parameters.
fn pg_params(texts: &[String]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    texts
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl Server {
    /// Every row `sql` returns with `params`, as tuples `R` (SQLite's dialect with `?N`; on
    /// PostgreSQL rewritten to `$N`, parameters bound as text).
    pub fn rows<R: Row, P: Args>(&self, sql: &str, params: P) -> Vec<R> {
        if let Some(db) = &self.pg {
            let text = litegate::db::sql::pg_text(sql);
            let texts = params.texts();
            return db
                .client()
                .query(&text, &pg_params(&texts))
                .and_then(|rows| rows.iter().map(R::pg).collect())
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        let db = self.db();
        let mut st = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        st.query_map(params, |r| R::lite(r))
            .and_then(|rows| rows.collect())
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The one row `sql` returns (panics on none or several).
    pub fn row<R: Row, P: Args>(&self, sql: &str, params: P) -> R {
        let mut rows = self.rows::<R, P>(sql, params);
        assert_eq!(rows.len(), 1, "{sql}: {} rows", rows.len());
        rows.remove(0)
    }

    /// Every row of `sql` (no parameters), each column as text whatever its type: integers and
    /// reals as Rust prints an `i64` / `f64`, NULL as `None` (the same text on both engines).
    pub fn text_rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        if let Some(db) = &self.pg {
            let rows = db
                .client()
                .query(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            return rows.iter().map(pg_text_row).collect();
        }
        let db = self.db();
        let mut st = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = st.column_count();
        st.query_map([], |r| {
            (0..n)
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i).map(|x| match x {
                        rusqlite::types::Value::Null => None,
                        rusqlite::types::Value::Integer(i) => Some(i.to_string()),
                        rusqlite::types::Value::Real(f) => Some(f.to_string()),
                        rusqlite::types::Value::Text(t) => Some(t),
                        rusqlite::types::Value::Blob(_) => Some("blob".into()),
                    })
                })
                .collect()
        })
        .and_then(|rows| rows.collect())
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The real binary with `config_yaml` and `args` on SQLite whatever `LITEGATE_TEST_PG` says:
    /// for the tests of SQLite-only behaviour (the file, its WAL and lock, backups with
    /// `VACUUM INTO`, `PRAGMA`), which so run and assert in both passes of the suite. The
    /// PostgreSQL counterparts are named in docs/POSTGRES.md "Tests".
    pub fn start_sqlite_with(config_yaml: &str, args: &[&str]) -> Server {
        Server::launch(config_yaml, args, &[], false)
    }

    /// `start_sqlite_with` the TEST_CONFIG and extra environment for the server process.
    pub fn start_sqlite_env(env: &[(&str, &str)]) -> Server {
        Server::launch(super::TEST_CONFIG, &[], env, false)
    }

    /// `start_sqlite_with` the TEST_CONFIG.
    pub fn start_sqlite() -> Server {
        Server::start_sqlite_with(super::TEST_CONFIG, &[])
    }
}

/// One PostgreSQL row, each column as text by its type (see `Server::text_rows`).
fn pg_text_row(r: &postgres::Row) -> Vec<Option<String>> {
    use postgres::types::Type;
    (0..r.len())
        .map(|i| {
            let ty = r.columns()[i].type_().clone();
            let got = if ty == Type::INT8 {
                r.try_get::<_, Option<i64>>(i)
                    .map(|v| v.map(|v| v.to_string()))
            } else if ty == Type::INT4 {
                r.try_get::<_, Option<i32>>(i)
                    .map(|v| v.map(|v| v.to_string()))
            } else if ty == Type::FLOAT8 {
                r.try_get::<_, Option<f64>>(i)
                    .map(|v| v.map(|v| v.to_string()))
            } else if ty == Type::BOOL {
                r.try_get::<_, Option<bool>>(i)
                    .map(|v| v.map(|v| i64::from(v).to_string()))
            } else {
                r.try_get::<_, Option<String>>(i)
            };
            got.unwrap_or_else(|e| panic!("column {i} ({ty}): {e}"))
        })
        .collect()
}

/// What a secret must never be found in: every byte of the SQLite database files (main file
/// and WAL, free pages included), or on PostgreSQL every row as text plus every byte of the
/// test database's table and index files, dead row versions included (`pg::db_bytes`).
pub fn db_bytes(s: &Server) -> Vec<u8> {
    if let Some(db) = &s.pg {
        return pg::db_bytes(db);
    }
    let mut all = Vec::new();
    for e in std::fs::read_dir(s.dir.path()).expect("temp dir") {
        let p = e.expect("dir entry").path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("litegate.db"))
        {
            all.extend(std::fs::read(&p).expect("read db file"));
        }
    }
    all
}
