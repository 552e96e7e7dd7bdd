//! The two ways a query is read, written once: at most one row (`one`) or every row (`all`),
//! through the connection's statement cache. The statements themselves stay beside their own
//! functions in each table's module.

use rusqlite::{Connection, OptionalExtension, Params, Row};

/// The first row of `sql` mapped by `f`, or `None`.
pub fn one<T, P: Params>(
    c: &Connection,
    sql: &str,
    p: P,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    c.prepare_cached(sql)?.query_row(p, f).optional()
}

/// Every row of `sql` mapped by `f`.
pub fn all<T, P: Params>(
    c: &Connection,
    sql: &str,
    p: P,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(p, f)?;
    rows.collect()
}

/// The first column of the first row, as text (`SELECT role ...`).
pub fn text<P: Params>(c: &Connection, sql: &str, p: P) -> rusqlite::Result<Option<String>> {
    one(c, sql, p, |r| r.get(0))
}

/// A write's error for the caller: a UNIQUE violation (the caller's 409, worded by `what`),
/// else the database error (500), on either engine.
pub fn unique_or(
    e: impl Into<super::handle::DbError>,
    what: impl FnOnce() -> String,
) -> crate::error::Error {
    let e = e.into();
    if e.is_unique() {
        crate::error::Error::Conflict(what())
    } else {
        e.into()
    }
}
