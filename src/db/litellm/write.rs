//! Writing the plan into litegate's store, on either engine (`handle::Handle`), inside the
//! caller's one transaction: each row inserted, or updated where its key exists (a second run
//! updates, never duplicates). The statement text is built from the plan's column names,
//! which are this importer's constants, never a value; values are parameters. A unique
//! e-mail or key alias that litegate already gives another row is dropped with a note.

use super::rows::{Out, V};
use crate::db::handle::{DbResult, Handle};
use std::collections::BTreeMap;

/// Rows written per table: (inserted, updated).
pub type Counts = BTreeMap<&'static str, (u64, u64)>;

fn upsert_sql(o: &Out) -> String {
    upsert_rows_sql(o, 1)
}

/// The upsert of `n` rows shaped as `o` (same table and columns) in one statement.
fn upsert_rows_sql(o: &Out, n: usize) -> String {
    let names: Vec<&str> = o.cols.iter().map(|(c, _)| *c).collect();
    let w = names.len();
    let params: Vec<String> = (0..n)
        .map(|r| {
            let p: Vec<String> = (1..=w).map(|i| format!("?{}", r * w + i)).collect();
            p.join(", ")
        })
        .collect();
    let sets: Vec<String> = names
        .iter()
        .filter(|c| !o.key.contains(c) && !o.insert_only.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        o.table,
        names.join(", "),
        params.join("), ("),
        o.key.join(", "),
        sets.join(", ")
    )
}

fn exists_sql(o: &Out) -> String {
    let cond: Vec<String> = o
        .key
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect();
    format!("SELECT 1 FROM {} WHERE {}", o.table, cond.join(" AND "))
}

fn key_args(o: &Out) -> Vec<V> {
    o.key
        .iter()
        .map(|k| o.get(k).cloned().unwrap_or(V::Null))
        .collect()
}

/// The other row of `table` already holding unique `col` = `value` (compared as litegate's
/// index does), if any.
fn holder<C: Handle + ?Sized>(c: &C, sql: &str, value: &str, me: &str) -> DbResult<Option<String>> {
    c.one(sql, &[value.into(), me.into()], |r| r.get::<String>(0))
}

const EMAIL_HOLDER: &str = "SELECT id FROM users WHERE lower(email) = lower(?1) AND id <> ?2";
const ALIAS_HOLDER: &str = "SELECT key_name FROM api_keys WHERE key_alias = ?1 AND token <> ?2";

/// Drops a unique value litegate already gives another row (a user made in litegate before
/// the import, say), with a note.
fn free_unique<C: Handle + ?Sized>(c: &C, o: &mut Out, notes: &mut Vec<String>) -> DbResult<()> {
    let (col, sql, id_col, what) = match o.table {
        "users" => ("email", EMAIL_HOLDER, "id", "user"),
        "api_keys" => ("key_alias", ALIAS_HOLDER, "token", "key"),
        _ => return Ok(()),
    };
    let (Some(V::Text(v)), Some(V::Text(me))) = (o.get(col).cloned(), o.get(id_col).cloned())
    else {
        return Ok(());
    };
    if let Some(other) = holder(c, sql, &v, &me)? {
        let name = match o.table {
            "api_keys" => o
                .get("key_name")
                .and_then(V::as_text)
                .unwrap_or("")
                .to_string(),
            _ => me,
        };
        notes.push(format!(
            "{what} {name}: {col} {v} is already litegate's {what} {other}'s: imported without it"
        ));
        o.put(col, V::Null);
    }
    Ok(())
}

/// Writes one row; true when it was new.
pub fn put<C: Handle + ?Sized>(
    c: &C,
    mut o: Out,
    counts: &mut Counts,
    notes: &mut Vec<String>,
) -> DbResult<bool> {
    free_unique(c, &mut o, notes)?;
    let keys = key_args(&o);
    let args: Vec<_> = keys.iter().map(V::arg).collect();
    let existed = c.one(&exists_sql(&o), &args, |_| Ok(()))?.is_some();
    let args: Vec<_> = o.cols.iter().map(|(_, v)| v.arg()).collect();
    c.exec(&upsert_sql(&o), &args)?;
    let e = counts.entry(o.table).or_default();
    if existed {
        e.1 += 1;
    } else {
        e.0 += 1;
    }
    Ok(!existed)
}

/// Rows per statement of `put_many` (16 columns × 500 = 8000 parameters: under SQLite's
/// 32766 and PostgreSQL's 65535).
pub const BATCH: usize = 500;

/// Writes rows of one shape (one table, a key of one column, the same columns in the same
/// order: the spend logs), up to `BATCH` of them: one statement counts those that exist, one
/// upserts them all. Rows of mixed shapes are written one by one (`put`).
pub fn put_many<C: Handle + ?Sized>(c: &C, rows: &[Out], counts: &mut Counts) -> DbResult<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let [key] = first.key else {
        return Err(crate::db::handle::DbError::Lite(
            rusqlite::Error::InvalidQuery,
        ));
    };
    let same = |o: &Out| {
        o.table == first.table
            && o.cols.len() == first.cols.len()
            && o.cols.iter().zip(&first.cols).all(|(a, b)| a.0 == b.0)
    };
    if !rows.iter().all(same) {
        return Err(crate::db::handle::DbError::Lite(
            rusqlite::Error::InvalidQuery,
        ));
    }
    let keys: Vec<V> = rows
        .iter()
        .map(|o| o.get(key).cloned().unwrap_or(V::Null))
        .collect();
    let marks: Vec<String> = (1..=keys.len()).map(|i| format!("?{i}")).collect();
    let exists = format!(
        "SELECT count(*) FROM {} WHERE {key} IN ({})",
        first.table,
        marks.join(", ")
    );
    let args: Vec<_> = keys.iter().map(V::arg).collect();
    let existed = c.one(&exists, &args, |r| r.get::<i64>(0))?.unwrap_or(0);
    let args: Vec<_> = rows
        .iter()
        .flat_map(|o| o.cols.iter().map(|(_, v)| v.arg()))
        .collect();
    c.exec(&upsert_rows_sql(first, rows.len()), &args)?;
    let existed = u64::try_from(existed).unwrap_or(0);
    let e = counts.entry(first.table).or_default();
    e.0 += rows.len() as u64 - existed.min(rows.len() as u64);
    e.1 += existed;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_keep_insert_only_columns_and_keys() {
        let o = Out::new("teams", &["id"])
            .set("id", V::Text("t".into()))
            .set("spend", V::Real(1.0))
            .set("created_at", V::Text("x".into()));
        assert_eq!(
            upsert_sql(&o),
            "INSERT INTO teams (id, spend, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO \
             UPDATE SET spend = excluded.spend"
        );
        assert!(upsert_rows_sql(&o, 2).contains("VALUES (?1, ?2, ?3), (?4, ?5, ?6) ON"));
        let m = Out::new("team_members", &["team_id", "user_id"]);
        assert_eq!(
            exists_sql(&m),
            "SELECT 1 FROM team_members WHERE team_id = ?1 AND user_id = ?2"
        );
    }

    #[test]
    fn a_second_write_updates_and_a_taken_email_is_dropped() {
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        crate::db::migrate::migrate(&mut c).unwrap();
        let mut counts = Counts::new();
        let mut notes = Vec::new();
        let now = V::Text(crate::util::now_iso());
        let user = |id: &str, spend: f64| {
            Out::new("users", &["id"])
                .set("id", V::Text(id.into()))
                .set("email", V::Text("A@x.io".into()))
                .set("user_role", V::Text("internal_user".into()))
                .set("spend", V::Real(spend))
                .set("created_at", now.clone())
                .set("updated_at", now.clone())
        };
        assert!(put(&c, user("u1", 1.0), &mut counts, &mut notes).unwrap());
        assert!(!put(&c, user("u1", 2.5), &mut counts, &mut notes).unwrap());
        assert_eq!(counts["users"], (1, 1));
        let spend: f64 = c
            .query_row("SELECT spend FROM users WHERE id = 'u1'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(spend, 2.5);
        assert!(notes.is_empty());
        assert!(put(&c, user("u2", 0.0), &mut counts, &mut notes).unwrap());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("a@x.io") || notes[0].contains("A@x.io"));
        let e: Option<String> = c
            .query_row("SELECT email FROM users WHERE id = 'u2'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(e, None);
    }
}
