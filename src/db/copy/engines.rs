//! The engines' side of `copy-db`: opening each side (a SQLite source read-only and without
//! its owner lock, so a litegate serving on it keeps serving; a SQLite target under the
//! owner lock, so no litegate writes into it meanwhile; PostgreSQL through `pg::connect`),
//! migrating the target, transactions, column introspection, reading rows as `Value`s and
//! writing them. Values are never converted: a value whose storage class is not its column's
//! kind (an INTEGER column holding text on SQLite) fails the copy, naming the column.

use super::{failed, Column, CopyError, Kind, Side, Table, Value, R, TABLES};
use crate::config::DbLocation;
use crate::db::{lock, migrate, pg};
use postgres::fallible_iterator::FallibleIterator;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Whether both sides name one database (copying onto itself would empty it with --force).
pub fn same_place(a: &DbLocation, b: &DbLocation) -> bool {
    match (a, b) {
        (DbLocation::Sqlite(a), DbLocation::Sqlite(b)) => absolute(a) == absolute(b),
        (DbLocation::Postgres(a), DbLocation::Postgres(b)) => a.safe() == b.safe(),
        _ => false,
    }
}

/// `p` made absolute with symlinks resolved as far as it exists (a target may not yet).
fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.map_or_else(|| Path::new(".").canonicalize(), Path::canonicalize);
    match (dir, p.file_name()) {
        (Ok(d), Some(f)) => d.join(f),
        _ => p.to_path_buf(),
    }
}

pub fn open_source(loc: &DbLocation) -> R<Box<dyn Side>> {
    match loc {
        DbLocation::Sqlite(p) => {
            if !p.is_file() {
                return Err(CopyError::Refused(format!(
                    "{}: no database there",
                    p.display()
                )));
            }
            // Spend journaled but not yet applied is part of the source.
            crate::db::journal::replay_path(p).map_err(failed)?;
            let c = rusqlite::Connection::open_with_flags(
                p,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .and_then(|c| c.busy_timeout(Duration::from_secs(30)).map(|_| c))
            .map_err(|e| failed(format!("{}: cannot open: {e}", p.display())))?;
            Ok(Box::new(Lite {
                c,
                name: p.display().to_string(),
                _lock: None,
            }))
        }
        DbLocation::Postgres(u) => Ok(Box::new(Pg {
            c: pg::connect(u.expose()).map_err(failed)?,
            name: u.safe(),
            insert: None,
        })),
    }
}

/// The target, its schema brought to this litegate's version by the engine's migrator.
pub fn open_target(loc: &DbLocation) -> R<Box<dyn Side>> {
    match loc {
        DbLocation::Sqlite(p) => {
            let lock = lock::acquire(p).map_err(CopyError::Refused)?;
            let mut c = crate::db::open(p)
                .map_err(|e| failed(format!("{}: cannot open: {e}", p.display())))?;
            migrate::migrate(&mut c)
                .map_err(|e| CopyError::Refused(format!("{}: {e}", p.display())))?;
            // The target's own journal is applied, then removed: the copy brings the source's
            // journal position, which the target's file would not match.
            crate::db::journal::replay(&mut c, p).map_err(failed)?;
            match std::fs::remove_file(crate::db::journal::path_of(p)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(failed(format!("{}: {e}", p.display())))
                }
                _ => {}
            }
            Ok(Box::new(Lite {
                c,
                name: p.display().to_string(),
                _lock: Some(lock),
            }))
        }
        DbLocation::Postgres(u) => {
            let mut c = pg::connect(u.expose()).map_err(failed)?;
            pg::migrate(&mut c).map_err(|e| CopyError::Refused(format!("{}: {e}", u.safe())))?;
            Ok(Box::new(Pg {
                c,
                name: u.safe(),
                insert: None,
            }))
        }
    }
}

fn select(t: &Table, cols: &[Column]) -> String {
    format!(
        "SELECT {} FROM \"{}\" ORDER BY {}",
        quoted(cols),
        t.name,
        t.key
    )
}

fn quoted(cols: &[Column]) -> String {
    let v: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
    v.join(", ")
}

fn unsupported(table: &str, col: &str, ty: &str) -> CopyError {
    failed(format!(
        "{table}.{col} has type {ty}, which copy-db does not know"
    ))
}

fn mismatch(table: &str, col: &str, what: &str, kind: Kind) -> CopyError {
    failed(format!(
        "{table}.{col} holds a {what} value in a {kind:?} column; fix that row in the source \
         (nothing was written to the target)"
    ))
}

/// A SQLite database.
struct Lite {
    c: rusqlite::Connection,
    name: String,
    _lock: Option<lock::DbLock>,
}

impl Lite {
    fn err(&self, e: rusqlite::Error) -> CopyError {
        failed(format!("{}: {e}", self.name))
    }
}

fn lite_value(v: rusqlite::types::ValueRef<'_>, c: &Column, table: &str) -> R<Value> {
    use rusqlite::types::ValueRef as V;
    Ok(match (v, c.kind) {
        (V::Null, _) => Value::Null,
        (V::Integer(i), Kind::Int) => Value::Int(i),
        (V::Real(f), Kind::Real) => Value::Real(f),
        (V::Text(b), Kind::Text) => Value::Text(
            String::from_utf8(b.to_vec())
                .map_err(|_| mismatch(table, &c.name, "non-UTF-8 text", c.kind))?,
        ),
        (V::Integer(_), k) => return Err(mismatch(table, &c.name, "integer", k)),
        (V::Real(_), k) => return Err(mismatch(table, &c.name, "real", k)),
        (V::Text(_), k) => return Err(mismatch(table, &c.name, "text", k)),
        (V::Blob(_), k) => return Err(mismatch(table, &c.name, "blob", k)),
    })
}

impl Side for Lite {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn columns(&mut self, table: &str) -> R<Vec<Column>> {
        let mut st = self
            .c
            .prepare("SELECT name, type FROM pragma_table_info(?1) ORDER BY cid")
            .map_err(|e| self.err(e))?;
        let rows: Vec<(String, String)> = st
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|it| it.collect())
            .map_err(|e| failed(format!("{}: {e}", self.name)))?;
        rows.into_iter()
            .map(|(name, ty)| {
                let up = ty.to_ascii_uppercase();
                let kind = if up.contains("INT") {
                    Kind::Int
                } else if up.contains("REAL") || up.contains("FLOA") || up.contains("DOUB") {
                    Kind::Real
                } else if up.contains("TEXT") || up.contains("CHAR") || up.contains("CLOB") {
                    Kind::Text
                } else {
                    return Err(unsupported(table, &name, &ty));
                };
                Ok(Column { name, kind })
            })
            .collect()
    }

    fn version(&mut self) -> R<(i64, i64)> {
        let v = migrate::version(&self.c).map_err(|e| self.err(e))?;
        Ok((v, migrate::latest()))
    }

    fn begin(&mut self, write: bool) -> R<()> {
        // A read transaction's snapshot starts at its first read: take it now.
        let sql = if write {
            "BEGIN IMMEDIATE"
        } else {
            "BEGIN; SELECT count(*) FROM sqlite_master"
        };
        self.c.execute_batch(sql).map_err(|e| self.err(e))
    }

    fn commit(&mut self) -> R<()> {
        self.c.execute_batch("COMMIT").map_err(|e| self.err(e))
    }

    fn rollback(&mut self) {
        let _ = self.c.execute_batch("ROLLBACK");
    }

    fn count(&mut self, table: &str) -> R<i64> {
        self.c
            .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    fn clear(&mut self, table: &str) -> R<()> {
        self.c
            .execute(&format!("DELETE FROM \"{table}\""), [])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    fn scan(
        &mut self,
        t: &Table,
        cols: &[Column],
        f: &mut dyn FnMut(Vec<Value>) -> R<()>,
    ) -> R<()> {
        let name = self.name.clone();
        let e = |e: rusqlite::Error| failed(format!("{name}: {}: {e}", t.name));
        let mut st = self.c.prepare(&select(t, cols)).map_err(e)?;
        let mut rows = st.query([]).map_err(e)?;
        while let Some(r) = rows.next().map_err(e)? {
            let mut row = Vec::with_capacity(cols.len());
            for (i, c) in cols.iter().enumerate() {
                row.push(lite_value(r.get_ref(i).map_err(e)?, c, t.name)?);
            }
            f(row)?;
        }
        Ok(())
    }

    fn batch(&self, _cols: usize) -> usize {
        256
    }

    fn insert(&mut self, table: &str, cols: &[Column], rows: &[Vec<Value>]) -> R<()> {
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO \"{table}\" ({}) VALUES ({})",
            quoted(cols),
            marks.join(", ")
        );
        let name = self.name.clone();
        let e = |e: rusqlite::Error| failed(format!("{name}: {table}: {e}"));
        let mut st = self.c.prepare_cached(&sql).map_err(e)?;
        for row in rows {
            st.execute(rusqlite::params_from_iter(row.iter().map(Value::arg)))
                .map_err(e)?;
        }
        Ok(())
    }

    fn finish(&mut self, _table: &str) -> R<()> {
        // An INTEGER PRIMARY KEY continues after the largest one by itself.
        Ok(())
    }
}

/// A PostgreSQL database.
struct Pg {
    c: postgres::Client,
    name: String,
    /// The INSERT of a full batch of the table being written, prepared once.
    insert: Option<(String, usize, postgres::Statement)>,
}

impl Pg {
    fn err(&self, table: &str, e: postgres::Error) -> CopyError {
        failed(format!("{}: {table}: {}", self.name, pg::describe(&e)))
    }
}

impl Side for Pg {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn columns(&mut self, table: &str) -> R<Vec<Column>> {
        let rows = self
            .c
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                 ORDER BY ordinal_position",
                &[&table],
            )
            .map_err(|e| self.err(table, e))?;
        rows.iter()
            .map(|r| {
                let (name, ty): (String, String) = (r.get(0), r.get(1));
                let kind = match ty.as_str() {
                    "bigint" => Kind::Int,
                    "double precision" => Kind::Real,
                    "text" => Kind::Text,
                    _ => return Err(unsupported(table, &name, &ty)),
                };
                Ok(Column { name, kind })
            })
            .collect()
    }

    fn version(&mut self) -> R<(i64, i64)> {
        if self.columns("litegate_schema")?.is_empty() {
            return Ok((0, pg::latest()));
        }
        let v: i64 = self
            .c
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::bigint FROM litegate_schema",
                &[],
            )
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.err("litegate_schema", e))?;
        Ok((v, pg::latest()))
    }

    fn begin(&mut self, write: bool) -> R<()> {
        let sql = if write {
            // Writers of a litegate running on the target wait for the commit (readers not).
            let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
            format!("BEGIN; LOCK TABLE {} IN EXCLUSIVE MODE", names.join(", "))
        } else {
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".to_string()
        };
        self.c.batch_execute(&sql).map_err(|e| self.err("BEGIN", e))
    }

    fn commit(&mut self) -> R<()> {
        self.c
            .batch_execute("COMMIT")
            .map_err(|e| self.err("COMMIT", e))
    }

    fn rollback(&mut self) {
        let _ = self.c.batch_execute("ROLLBACK");
    }

    fn count(&mut self, table: &str) -> R<i64> {
        self.c
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .and_then(|r| r.try_get(0))
            .map_err(|e| self.err(table, e))
    }

    fn clear(&mut self, table: &str) -> R<()> {
        self.c
            .execute(&format!("DELETE FROM \"{table}\""), &[])
            .map(|_| ())
            .map_err(|e| self.err(table, e))
    }

    fn scan(
        &mut self,
        t: &Table,
        cols: &[Column],
        f: &mut dyn FnMut(Vec<Value>) -> R<()>,
    ) -> R<()> {
        let name = self.name.clone();
        let e = |e: postgres::Error| failed(format!("{name}: {}: {}", t.name, pg::describe(&e)));
        let none: [&(dyn postgres::types::ToSql + Sync); 0] = [];
        let mut rows = self.c.query_raw(&select(t, cols), none).map_err(e)?;
        while let Some(r) = rows.next().map_err(e)? {
            let mut row = Vec::with_capacity(cols.len());
            for (i, c) in cols.iter().enumerate() {
                row.push(
                    match c.kind {
                        Kind::Int => r.try_get::<_, Option<i64>>(i).map(|v| v.map(Value::Int)),
                        Kind::Real => r.try_get::<_, Option<f64>>(i).map(|v| v.map(Value::Real)),
                        Kind::Text => r
                            .try_get::<_, Option<String>>(i)
                            .map(|v| v.map(Value::Text)),
                    }
                    .map_err(e)?
                    .unwrap_or(Value::Null),
                );
            }
            f(row)?;
        }
        Ok(())
    }

    fn batch(&self, cols: usize) -> usize {
        // At most 65535 parameters per statement; a few hundred rows per round trip.
        (30_000 / cols.max(1)).clamp(1, 500)
    }

    fn insert(&mut self, table: &str, cols: &[Column], rows: &[Vec<Value>]) -> R<()> {
        let n = cols.len();
        let cached = match &self.insert {
            Some((t, len, st)) if t == table && *len == rows.len() => Some(st.clone()),
            _ => None,
        };
        let st = match cached {
            Some(st) => st,
            None => {
                let tuples: Vec<String> = (0..rows.len())
                    .map(|r| {
                        let marks: Vec<String> =
                            (1..=n).map(|i| format!("${}", r * n + i)).collect();
                        format!("({})", marks.join(", "))
                    })
                    .collect();
                let sql = format!(
                    "INSERT INTO \"{table}\" ({}) VALUES {}",
                    quoted(cols),
                    tuples.join(", ")
                );
                let st = self.c.prepare(&sql).map_err(|e| self.err(table, e))?;
                self.insert = Some((table.to_string(), rows.len(), st.clone()));
                st
            }
        };
        let args: Vec<crate::db::sql::Arg<'_>> = rows.iter().flatten().map(Value::arg).collect();
        let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
            args.iter().map(|a| a as _).collect();
        self.c
            .execute(&st, &params)
            .map(|_| ())
            .map_err(|e| self.err(table, e))
    }

    /// An identity column's sequence continues after the largest copied key. Sequences are
    /// not transactional, so it is only ever moved forward (GREATEST with its next value): a
    /// rolled-back copy leaves it where the target's own rows still fit.
    fn finish(&mut self, table: &str) -> R<()> {
        let ids = self
            .c
            .query(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                   AND is_identity = 'YES'",
                &[&table],
            )
            .map_err(|e| self.err(table, e))?;
        for r in ids {
            let col: String = r.get(0);
            let sql = format!(
                "SELECT setval(s::regclass, GREATEST(COALESCE((SELECT MAX(\"{col}\") FROM \
                 \"{table}\"), 0) + 1, nextval(s::regclass)), false) \
                 FROM pg_get_serial_sequence($1, $2) AS s"
            );
            self.c
                .execute(&sql, &[&table, &col])
                .map_err(|e| self.err(table, e))?;
        }
        Ok(())
    }
}
