//! The engine-neutral statement layer (issue 14): one SQL text per statement where SQLite and
//! PostgreSQL agree, run on either engine without cost to SQLite.
//!
//! - Statements are written once in SQLite's dialect with numbered parameters (`?1`, `?2`);
//!   `pg_text` rewrites them to PostgreSQL's `$1`, `$2` once, when the PostgreSQL connection
//!   prepares and caches the statement (`db::pg`). Where the dialects differ a statement keeps
//!   two texts side by side (none yet among the ported ones).
//! - Parameters are `Arg`s (null, integer, real, text), built on the stack (`&[Arg]`): on
//!   SQLite they bind through rusqlite's `ToSql` (a match, no allocation); on PostgreSQL they
//!   bind to whatever type the server inferred for the placeholder (BIGINT, INTEGER, DOUBLE
//!   PRECISION, TEXT, BOOLEAN).
//! - Rows are read through `Cols`, implemented for both engines' row types; code reading a row
//!   is generic over it (monomorphized: the SQLite instance is the code it was before).
//! - `Exec` runs a statement that returns no rows on a connection or transaction of either
//!   engine (`spend::record`, `settings_put`).
//!
//! Types: the PostgreSQL schema (`schema/pg/`) keeps SQLite's storage classes (BIGINT for
//! INTEGER and 0/1 flags, DOUBLE PRECISION for REAL, TEXT for text, JSON and timestamps), so
//! the same text reads the same values. Avoid `SUM()` over integers (NUMERIC on PostgreSQL).

/// One statement parameter.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Text(v)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Text(v)
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::Real(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Arg::Int(v as i64)
    }
}

impl<'a, T: Into<Arg<'a>>> From<Option<T>> for Arg<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Arg::Null, Into::into)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Arg::Null, Arg::Text)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match *self {
            Arg::Null => ToSqlOutput::Owned(Value::Null),
            Arg::Int(i) => ToSqlOutput::Owned(Value::Integer(i)),
            Arg::Real(f) => ToSqlOutput::Owned(Value::Real(f)),
            Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl postgres::types::ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match *self {
            Arg::Null => Ok(IsNull::Yes),
            Arg::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                _ => Err(format!("an integer cannot bind to {ty}").into()),
            },
            Arg::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => Err(format!("a real cannot bind to {ty}").into()),
            },
            Arg::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_ty: &postgres::types::Type) -> bool {
        // Checked per value in `to_sql`, which names the mismatch.
        true
    }

    postgres::types::to_sql_checked!();
}

/// `?N` placeholders (SQLite's numbered parameters) as PostgreSQL's `$N`, and a bare `?` as
/// the next number. Quoted text ('...') and quoted names ("...") are copied unchanged.
pub fn pg_text(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0u32;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        match quote {
            Some(q) => {
                out.push(ch);
                if ch == q {
                    quote = None;
                }
            }
            None if ch == '\'' || ch == '"' => {
                quote = Some(ch);
                out.push(ch);
            }
            None if ch == '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    next += 1;
                    out.push_str(&next.to_string());
                } else {
                    next = digits.parse().unwrap_or(next);
                    out.push_str(&digits);
                }
            }
            None => out.push(ch),
        }
    }
    out
}

/// A row of either engine, read by column index.
pub trait Cols {
    type E;
    fn i64(&self, i: usize) -> Result<i64, Self::E>;
    fn opt_i64(&self, i: usize) -> Result<Option<i64>, Self::E>;
    fn f64(&self, i: usize) -> Result<f64, Self::E>;
    fn opt_f64(&self, i: usize) -> Result<Option<f64>, Self::E>;
    fn string(&self, i: usize) -> Result<String, Self::E>;
    fn opt_string(&self, i: usize) -> Result<Option<String>, Self::E>;
    /// A text column (or NULL) borrowed from the row: no allocation.
    fn opt_text(&self, i: usize) -> Result<Option<&str>, Self::E>;
    /// Whether a text column equals `s` (no allocation).
    fn text_is(&self, i: usize, s: &str) -> Result<bool, Self::E>;
}

impl Cols for rusqlite::Row<'_> {
    type E = rusqlite::Error;
    fn i64(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_i64(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn f64(&self, i: usize) -> rusqlite::Result<f64> {
        self.get(i)
    }
    fn opt_f64(&self, i: usize) -> rusqlite::Result<Option<f64>> {
        self.get(i)
    }
    fn string(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_string(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<&str>> {
        self.get_ref(i)?.as_str_or_null().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        })
    }
    fn text_is(&self, i: usize, s: &str) -> rusqlite::Result<bool> {
        Ok(self.get_ref(i)?.as_str()? == s)
    }
}

impl Cols for postgres::Row {
    type E = postgres::Error;
    fn i64(&self, i: usize) -> Result<i64, postgres::Error> {
        match self.try_get::<_, i64>(i) {
            Ok(v) => Ok(v),
            Err(e) => self.try_get::<_, i32>(i).map(i64::from).map_err(|_| e),
        }
    }
    fn opt_i64(&self, i: usize) -> Result<Option<i64>, postgres::Error> {
        match self.try_get::<_, Option<i64>>(i) {
            Ok(v) => Ok(v),
            Err(e) => self
                .try_get::<_, Option<i32>>(i)
                .map(|v| v.map(i64::from))
                .map_err(|_| e),
        }
    }
    fn f64(&self, i: usize) -> Result<f64, postgres::Error> {
        self.try_get(i)
    }
    fn opt_f64(&self, i: usize) -> Result<Option<f64>, postgres::Error> {
        self.try_get(i)
    }
    fn string(&self, i: usize) -> Result<String, postgres::Error> {
        self.try_get(i)
    }
    fn opt_string(&self, i: usize) -> Result<Option<String>, postgres::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<&str>, postgres::Error> {
        self.try_get(i)
    }
    fn text_is(&self, i: usize, s: &str) -> Result<bool, postgres::Error> {
        Ok(self.try_get::<_, &str>(i)? == s)
    }
}

/// Runs a statement that returns no rows, on either engine; returns the rows changed.
pub trait Exec {
    type E;
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<usize, Self::E>;
}

impl Exec for &rusqlite::Connection {
    type E = rusqlite::Error;
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(args.iter()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers_outside_quotes() {
        assert_eq!(
            pg_text("SELECT a FROM t WHERE x = ?1 AND y = ?12 AND z = '?3' AND \"w?\" = ?2"),
            "SELECT a FROM t WHERE x = $1 AND y = $12 AND z = '?3' AND \"w?\" = $2"
        );
        assert_eq!(
            pg_text("SELECT 1 WHERE a = ? AND b = ? LIMIT ?"),
            "SELECT 1 WHERE a = $1 AND b = $2 LIMIT $3"
        );
    }

    #[test]
    fn args_bind_on_sqlite_as_before() {
        let c = rusqlite::Connection::open_in_memory().expect("mem");
        let row: (Option<i64>, i64, f64, String, i64) = c
            .query_row(
                "SELECT ?1, ?2, ?3, ?4, ?5",
                rusqlite::params_from_iter(
                    [
                        Arg::Null,
                        Arg::from(7i64),
                        Arg::from(0.5),
                        Arg::from("x"),
                        Arg::from(true),
                    ]
                    .iter(),
                ),
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .expect("row");
        assert_eq!(row, (None, 7, 0.5, "x".to_string(), 1));
    }
}
