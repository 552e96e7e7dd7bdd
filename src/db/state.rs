//! The statements of `litegate export` / `apply` (issue 16 item 4, `crate::state`): every row of
//! one table as plain cells, and an insert, an update and a delete of one row by its key. The
//! table and column names come from `state`'s table of kinds (static names, never input); every
//! value is a parameter. Both engines: the schemas keep the same storage classes (`sql.rs`), so
//! one text runs on either.

use super::handle::{DbResult, Handle, Row};
use super::sql::Arg;

/// How a column is read: as text, an integer or a real (each nullable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Text,
    Int,
    Real,
}

/// One stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Cell {
    fn arg(&self) -> Arg<'_> {
        match self {
            Cell::Null => Arg::Null,
            Cell::Int(i) => Arg::Int(*i),
            Cell::Real(f) => Arg::Real(*f),
            Cell::Text(s) => Arg::Text(s),
        }
    }
}

fn cell(r: &Row<'_, '_>, i: usize, class: Class) -> DbResult<Cell> {
    Ok(match class {
        Class::Text => r.get::<Option<String>>(i)?.map_or(Cell::Null, Cell::Text),
        Class::Int => r.get::<Option<i64>>(i)?.map_or(Cell::Null, Cell::Int),
        Class::Real => r.get::<Option<f64>>(i)?.map_or(Cell::Null, Cell::Real),
    })
}

/// Every row of `table`, the columns `cols` read as `classes` (in that order).
pub fn rows<C: Handle + ?Sized>(
    c: &C,
    table: &str,
    cols: &[&str],
    classes: &[Class],
) -> DbResult<Vec<Vec<Cell>>> {
    let sql = format!("SELECT {} FROM {table}", cols.join(", "));
    c.all(&sql, &[], |r| {
        classes
            .iter()
            .enumerate()
            .map(|(i, k)| cell(r, i, *k))
            .collect()
    })
}

/// `INSERT INTO table (cols) VALUES (vals)`.
pub fn insert<C: Handle + ?Sized>(
    c: &C,
    table: &str,
    cols: &[&str],
    vals: &[Cell],
) -> DbResult<usize> {
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        cols.join(", "),
        marks.join(", ")
    );
    let args: Vec<Arg<'_>> = vals.iter().map(Cell::arg).collect();
    c.exec(&sql, &args)
}

/// `UPDATE table SET cols = vals WHERE key = key_vals`.
pub fn update<C: Handle + ?Sized>(
    c: &C,
    table: &str,
    cols: &[&str],
    vals: &[Cell],
    key: &[&str],
    key_vals: &[String],
) -> DbResult<usize> {
    let set: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    let sql = format!(
        "UPDATE {table} SET {} WHERE {}",
        set.join(", "),
        key_where(key, cols.len())
    );
    let mut args: Vec<Arg<'_>> = vals.iter().map(Cell::arg).collect();
    args.extend(key_vals.iter().map(|k| Arg::Text(k)));
    c.exec(&sql, &args)
}

/// `DELETE FROM table WHERE key = key_vals`.
pub fn delete<C: Handle + ?Sized>(
    c: &C,
    table: &str,
    key: &[&str],
    key_vals: &[String],
) -> DbResult<usize> {
    let sql = format!("DELETE FROM {table} WHERE {}", key_where(key, 0));
    let args: Vec<Arg<'_>> = key_vals.iter().map(|k| Arg::Text(k)).collect();
    c.exec(&sql, &args)
}

fn key_where(key: &[&str], after: usize) -> String {
    key.iter()
        .enumerate()
        .map(|(i, k)| format!("{k} = ?{}", after + i + 1))
        .collect::<Vec<_>>()
        .join(" AND ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_insert_update_delete_on_sqlite() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a TEXT, b TEXT, n INTEGER, x REAL)")
            .unwrap();
        let cols = ["a", "b", "n", "x"];
        let v = [
            Cell::Text("k".into()),
            Cell::Null,
            Cell::Int(3),
            Cell::Real(0.5),
        ];
        assert_eq!(insert(&c, "t", &cols, &v).unwrap(), 1);
        let classes = [Class::Text, Class::Text, Class::Int, Class::Real];
        assert_eq!(rows(&c, "t", &cols, &classes).unwrap(), vec![v.to_vec()]);
        let n = update(&c, "t", &["n"], &[Cell::Int(4)], &["a"], &["k".into()]).unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            rows(&c, "t", &["n"], &[Class::Int]).unwrap()[0][0],
            Cell::Int(4)
        );
        assert_eq!(delete(&c, "t", &["a"], &["other".into()]).unwrap(), 0);
        assert_eq!(delete(&c, "t", &["a"], &["k".into()]).unwrap(), 1);
        assert!(rows(&c, "t", &cols, &classes).unwrap().is_empty());
    }
}
