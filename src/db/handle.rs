//! The engine-neutral handle for management statements (issue 14): what a ported `db::*`
//! function takes instead of a `rusqlite::Connection`, so that one function with one SQL text
//! runs on either engine.
//!
//! - `Handle`: `one` / `all` / `exec` with `&[Arg]` parameters and a row mapper over `Row`.
//!   Implemented for `rusqlite::Connection` and `rusqlite::Transaction` (so SQLite callers and
//!   unit tests pass what they passed before, and the SQLite instance is monomorphized) and for
//!   `Db`, the handle a handler gets from `Pool::read_db` / `Pool::write_db` on either engine.
//! - `Row`: a row of either engine; `get::<T>(i)` for the column types the schema uses
//!   (text, integer, real, their `Option`s, and `bool` from a 0/1 integer).
//! - `DbError`: either engine's error; `is_unique` for the callers' 409s; into `error::Error`.
//!
//! The hot path does not use this layer: the key check and the spend commit have their own
//! generic code (`key_check.rs`, `spend.rs`), compiled per engine.

use super::pg::{PgPool, PgRun};
use super::sql::Arg;
use std::cell::RefCell;

/// Either engine's error.
#[derive(Debug)]
pub enum DbError {
    Lite(rusqlite::Error),
    Pg(postgres::Error),
}

pub type DbResult<T> = std::result::Result<T, DbError>;

impl DbError {
    /// A UNIQUE or PRIMARY KEY violation (the caller's 409).
    pub fn is_unique(&self) -> bool {
        match self {
            DbError::Lite(e) => super::is_unique_violation(e),
            DbError::Pg(e) => super::pg::is_unique_violation(e),
        }
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::Lite(e) => write!(f, "sqlite: {e}"),
            DbError::Pg(e) => write!(f, "postgresql: {}", super::pg::describe(e)),
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Lite(e)
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Pg(e)
    }
}

impl From<DbError> for crate::error::Error {
    /// As for rusqlite's errors: a 500 with the detail in the log only; PostgreSQL
    /// unreachable is a 503.
    fn from(e: DbError) -> Self {
        match e {
            DbError::Lite(e) => e.into(),
            DbError::Pg(e) if super::pg::unreachable(&e) => crate::error::Error::Unavailable(
                "the database cannot be reached; try again later".into(),
            ),
            DbError::Pg(e) => {
                crate::error::Error::Internal(format!("postgresql: {}", super::pg::describe(&e)))
            }
        }
    }
}

/// A row of either engine.
pub enum Row<'r, 's> {
    Lite(&'r rusqlite::Row<'s>),
    Pg(&'r postgres::Row),
}

/// A column type both engines read the same way.
pub trait Val: Sized {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self>;
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, postgres::Error>;
}

macro_rules! same_val {
    ($($t:ty),*) => {$(
        impl Val for $t {
            fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
                r.get(i)
            }
            fn pg(r: &postgres::Row, i: usize) -> Result<Self, postgres::Error> {
                r.try_get(i)
            }
        }
    )*};
}
same_val!(String, Option<String>, i64, Option<i64>, f64, Option<f64>);

/// A 0/1 flag column (BIGINT on PostgreSQL, INTEGER on SQLite).
impl Val for bool {
    fn lite(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Self> {
        Ok(r.get::<_, i64>(i)? != 0)
    }
    fn pg(r: &postgres::Row, i: usize) -> Result<Self, postgres::Error> {
        Ok(r.try_get::<_, i64>(i)? != 0)
    }
}

impl Row<'_, '_> {
    pub fn get<T: Val>(&self, i: usize) -> DbResult<T> {
        match self {
            Row::Lite(r) => Ok(T::lite(r, i)?),
            Row::Pg(r) => Ok(T::pg(r, i)?),
        }
    }
}

/// The allowance columns (`allowance_columns!`) from column `at` on, on either engine.
pub fn allowance(r: &Row<'_, '_>, at: usize) -> DbResult<crate::hierarchy::Allowance> {
    Ok(crate::hierarchy::Allowance {
        max_budget: r.get(at)?,
        soft_budget: r.get(at + 1)?,
        budget_duration: r.get(at + 2)?,
        budget_reset_at: r.get(at + 3)?,
        tpm_limit: r.get(at + 4)?,
        rpm_limit: r.get(at + 5)?,
        max_parallel_requests: r.get(at + 6)?,
    })
}

/// The values of `?1`..`?7` of `allowance_set!` / `allowance_values!`, as `Arg`s.
pub fn allowance_args(a: &crate::hierarchy::Allowance) -> [Arg<'_>; 7] {
    [
        a.max_budget.into(),
        a.soft_budget.into(),
        (&a.budget_duration).into(),
        (&a.budget_reset_at).into(),
        a.tpm_limit.into(),
        a.rpm_limit.into(),
        a.max_parallel_requests.into(),
    ]
}

/// What a ported statement function runs on.
pub trait Handle {
    /// The first row of `sql` mapped by `f`, or `None`.
    fn one<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Option<T>>;
    /// Every row of `sql` mapped by `f`.
    fn all<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnMut(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>>;
    /// A statement without rows; the rows it changed.
    fn exec(&self, sql: &str, args: &[Arg<'_>]) -> DbResult<usize>;
    /// Whether this runs on PostgreSQL: picks a statement's PostgreSQL text where the
    /// dialects differ (`pick`).
    fn is_pg(&self) -> bool {
        false
    }
    /// `lite` on SQLite, `pg` on PostgreSQL: the two texts of a statement whose dialects
    /// differ.
    fn pick<'s>(&self, lite: &'s str, pg: &'s str) -> &'s str {
        if self.is_pg() {
            pg
        } else {
            lite
        }
    }
}

impl Handle for rusqlite::Connection {
    fn one<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Option<T>> {
        let mut st = self.prepare_cached(sql)?;
        let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
        match rows.next()? {
            Some(r) => f(&Row::Lite(r)).map(Some),
            None => Ok(None),
        }
    }

    fn all<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        let mut st = self.prepare_cached(sql)?;
        let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(f(&Row::Lite(r))?);
        }
        Ok(out)
    }

    fn exec(&self, sql: &str, args: &[Arg<'_>]) -> DbResult<usize> {
        Ok(self
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(args.iter()))?)
    }
}

impl Handle for rusqlite::Transaction<'_> {
    fn one<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Option<T>> {
        (**self).one(sql, args, f)
    }
    fn all<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnMut(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        (**self).all(sql, args, f)
    }
    fn exec(&self, sql: &str, args: &[Arg<'_>]) -> DbResult<usize> {
        (**self).exec(sql, args)
    }
}

/// The handle a handler gets (`Pool::read_db` / `write_db`): a SQLite connection (inside its
/// IMMEDIATE transaction for writes) or a PostgreSQL connection or transaction (behind
/// `PgRun`: the PostgreSQL side pays one dynamic call per statement, next to a round trip).
pub enum Db<'a> {
    Lite(&'a rusqlite::Connection),
    Pg(RefCell<&'a mut dyn PgRun>),
}

impl Handle for Db<'_> {
    fn one<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        f: impl FnOnce(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Option<T>> {
        match self {
            Db::Lite(c) => c.one(sql, args, f),
            Db::Pg(q) => {
                let row = q.borrow_mut().row(sql, args)?;
                match row {
                    Some(r) => f(&Row::Pg(&r)).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    fn all<T>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        mut f: impl FnMut(&Row<'_, '_>) -> DbResult<T>,
    ) -> DbResult<Vec<T>> {
        match self {
            Db::Lite(c) => c.all(sql, args, f),
            Db::Pg(q) => {
                let rows = q.borrow_mut().rows(sql, args)?;
                rows.iter().map(|r| f(&Row::Pg(r))).collect()
            }
        }
    }

    fn exec(&self, sql: &str, args: &[Arg<'_>]) -> DbResult<usize> {
        match self {
            Db::Lite(c) => c.exec(sql, args),
            Db::Pg(q) => Ok(q.borrow_mut().run(sql, args)?),
        }
    }

    fn is_pg(&self) -> bool {
        matches!(self, Db::Pg(_))
    }
}

impl super::Pool {
    /// Runs `f` with a handle for reads, on either engine.
    pub fn read_db<T>(
        &self,
        f: impl FnOnce(&Db<'_>) -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        match self {
            super::Pool::Sqlite(l) => l.read(|c| f(&Db::Lite(c))),
            super::Pool::Postgres(p) => pg_read(p, f),
        }
    }

    /// Runs `f` in a write transaction (IMMEDIATE on SQLite), on either engine: committed when
    /// `f` returns Ok, rolled back otherwise.
    pub fn write_db<T>(
        &self,
        f: impl FnOnce(&Db<'_>) -> crate::error::Result<T>,
    ) -> crate::error::Result<T> {
        match self {
            super::Pool::Sqlite(l) => l.write(|tx| f(&Db::Lite(tx))),
            super::Pool::Postgres(p) => pg_write(p, f),
        }
    }
}

/// `f`'s own error comes back as it was (a 404 stays a 404); the pool's errors are mapped by
/// the pool (503 when unreachable).
fn pg_read<T>(
    p: &PgPool,
    f: impl FnOnce(&Db<'_>) -> crate::error::Result<T>,
) -> crate::error::Result<T> {
    p.with_client(|q| f(&Db::Pg(RefCell::new(q))))
}

fn pg_write<T>(
    p: &PgPool,
    f: impl FnOnce(&Db<'_>) -> crate::error::Result<T>,
) -> crate::error::Result<T> {
    p.with_tx(|q| f(&Db::Pg(RefCell::new(q))))
}
