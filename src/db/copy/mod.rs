//! `litegate copy-db` (issue 14, "moving up"): the whole store from one database into another,
//! SQLite or PostgreSQL on either side, in ONE transaction on the target, verified before it
//! commits. Owns the list of tables that are copied (`TABLES`) and of those that are not
//! (`SKIPPED`, with why), the value conversion between the engines and the verification.
//! The engines' own code (`engines.rs` beside this file) reads and writes rows; the schemas
//! are each engine's migrators' (`migrate.rs`, `pg.rs`).
//!
//! - The source is read in one read transaction (one consistent snapshot; a litegate serving
//!   on it keeps serving: a SQLite WAL reader blocks nobody, PostgreSQL reads in REPEATABLE
//!   READ). It is never written (SQLite is opened read-only).
//! - The target is migrated to the current schema first, then everything happens in one
//!   transaction: refuse a target that holds data (unless `force`: replace everything), copy
//!   every table in foreign-key order (all columns, found by introspection, with the same
//!   names and kinds on both sides), then read it all back and compare it with the source:
//!   rows per table, spend totals, and a digest of every value. Any failure rolls back.
//! - Keys keep their token hashes (the raw keys are never stored), so every raw key works on
//!   the copy; a generated master key's hash (`settings`) moves too.

mod engines;

use crate::config::DbLocation;
use sha2::{Digest, Sha256};

/// A copied table and the key it is read in (the same order on both engines: text keys are
/// `COLLATE "C"` on PostgreSQL, byte order as SQLite's BINARY).
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub key: &'static str,
}

const fn t(name: &'static str, key: &'static str) -> Table {
    Table { name, key }
}

/// Every table copied, parents before children (foreign keys hold after each insert).
pub const TABLES: &[Table] = &[
    t("budgets", "id"),
    t("organizations", "id"),
    t("users", "id"),
    t("teams", "id"),
    t("organization_members", "organization_id, user_id"),
    t("team_members", "team_id, user_id"),
    t("api_keys", "token"),
    t("end_users", "id"),
    t("proxy_models", "model_id"),
    t("spend_logs", "id"),
    t("settings", "name"),
    t("budget_alerts", "scope, holder, period, mark"),
    t("audit_log", "id"),
];

/// Tables of either engine's schema that are not copied, and why. A table in neither list
/// fails `tests/it/copy_db.rs::every_table_is_copied_or_skipped_on_purpose`.
pub const SKIPPED: &[(&str, &str)] = &[
    (
        "ui_sessions",
        "web UI logins: tied to the instance the browser logged in to; after the move users \
         log in again (a target's own sessions go with --force)",
    ),
    (
        "model_generation",
        "the models' change counter: the target's triggers count the copied models anew, and \
         every instance reloads on any difference",
    ),
    (
        "litegate_schema",
        "PostgreSQL's migration record: each engine's migrator keeps its own",
    ),
    // PostgreSQL only (schema/pg/0002, issue 14 item 3; SQLite keeps these in memory).
    (
        "litegate_leases",
        "budget reservations and parallel slots of calls in flight, seconds long: the calls \
         running on the source end there",
    ),
    (
        "litegate_rates",
        "the last minute's rpm/tpm buckets: windows start afresh on the target",
    ),
];

/// The table whose rows do not make a target "hold data": what a litegate writes for itself
/// at its first start (a generated master key's hash). The source's replace the target's.
const OWN_SETTINGS: &str = "settings";

/// What failed, and how `litegate copy-db` exits.
#[derive(Debug)]
pub enum CopyError {
    /// Nothing was tried (the target holds data, a side is not a litegate store of this
    /// version, both sides are one database): exit 2.
    Refused(String),
    /// The copy failed or did not verify; the target is unchanged: exit 1.
    Failed(String),
}

impl CopyError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CopyError::Refused(_) => 2,
            CopyError::Failed(_) => 1,
        }
    }
}

impl std::fmt::Display for CopyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyError::Refused(m) | CopyError::Failed(m) => f.write_str(m),
        }
    }
}

type R<T> = std::result::Result<T, CopyError>;

fn failed(e: impl std::fmt::Display) -> CopyError {
    CopyError::Failed(e.to_string())
}

/// A column's storage class: SQLite INTEGER / REAL / TEXT, PostgreSQL BIGINT / DOUBLE
/// PRECISION / TEXT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
}

/// One value as both engines store it; copied unchanged (the float's bits, the text's bytes).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    fn arg(&self) -> super::sql::Arg<'_> {
        use super::sql::Arg;
        match self {
            Value::Null => Arg::Null,
            Value::Int(i) => Arg::Int(*i),
            Value::Real(f) => Arg::Real(*f),
            Value::Text(s) => Arg::Text(s),
        }
    }

    fn digest(&self, h: &mut Sha256) {
        match self {
            Value::Null => h.update([0u8]),
            Value::Int(i) => {
                h.update([1u8]);
                h.update(i.to_le_bytes());
            }
            Value::Real(f) => {
                h.update([2u8]);
                h.update(f.to_bits().to_le_bytes());
            }
            Value::Text(s) => {
                h.update([3u8]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        }
    }
}

/// What one table holds, as read: its rows, its spend values and a digest of every value
/// (independent of row order: the sum of the rows' SHA-256, so equal tallies mean equal
/// multisets of rows).
#[derive(Debug, Default)]
struct Tally {
    rows: u64,
    spends: Vec<f64>,
    digest: u128,
}

impl Tally {
    fn add(&mut self, row: &[Value], spend: Option<usize>) {
        self.rows += 1;
        if let Some(Value::Real(f)) = spend.and_then(|i| row.get(i)) {
            self.spends.push(*f);
        }
        let mut h = Sha256::new();
        for v in row {
            v.digest(&mut h);
        }
        let d = h.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&d[..16]);
        self.digest = self.digest.wrapping_add(u128::from_le_bytes(first));
    }

    /// The spend total, summed in one order whatever the order read.
    fn spend(&self) -> f64 {
        let mut v = self.spends.clone();
        v.sort_by(f64::total_cmp);
        // From +0.0 (`Sum` starts at -0.0, printed "-0" for an empty table).
        v.iter().fold(0.0, |a, b| a + b)
    }
}

/// One copied table in the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct TableReport {
    pub name: &'static str,
    pub rows: u64,
    /// The sum of its `spend` column, for the tables that have one.
    pub spend: Option<f64>,
}

/// What was copied and verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub from: String,
    pub to: String,
    pub tables: Vec<TableReport>,
}

impl Summary {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }

    /// The spend of every call recorded (the spend logs' total).
    pub fn spend_logs_total(&self) -> f64 {
        self.tables
            .iter()
            .find(|t| t.name == "spend_logs")
            .and_then(|t| t.spend)
            .unwrap_or(0.0)
    }

    /// The lines `litegate copy-db` prints.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!(
            "copied {} -> {} in one transaction",
            self.from, self.to
        )];
        for t in &self.tables {
            let spend = t.spend.map(|s| format!("  spend {s}")).unwrap_or_default();
            out.push(format!("  {:<22}{:>10} rows{spend}", t.name, t.rows));
        }
        let skipped: Vec<&str> = SKIPPED.iter().map(|s| s.0).collect();
        out.push(format!(
            "{} tables, {} rows, spend total {} (spend logs); verified: row counts, spend \
             totals and every value equal the source's. Not copied: {} (docs/POSTGRES.md)",
            self.tables.len(),
            self.rows(),
            self.spend_logs_total(),
            skipped.join(", ")
        ));
        out
    }
}

/// What the copy needs of a database on either engine (`engines.rs`).
trait Side {
    /// The path or the URL without secrets, for messages.
    fn name(&self) -> String;
    /// The table's columns in their order; empty when the table does not exist.
    fn columns(&mut self, table: &str) -> R<Vec<Column>>;
    /// The schema version, and the one this litegate's migrator writes.
    fn version(&mut self) -> R<(i64, i64)>;
    /// A read transaction (source) or a write transaction (target).
    fn begin(&mut self, write: bool) -> R<()>;
    fn commit(&mut self) -> R<()>;
    fn rollback(&mut self);
    fn count(&mut self, table: &str) -> R<i64>;
    fn clear(&mut self, table: &str) -> R<()>;
    /// Every row of `t` (the columns `cols`, ordered by its key) to `f`.
    fn scan(&mut self, t: &Table, cols: &[Column], f: &mut dyn FnMut(Vec<Value>) -> R<()>)
        -> R<()>;
    /// How many rows `insert` takes at once.
    fn batch(&self, cols: usize) -> usize;
    fn insert(&mut self, table: &str, cols: &[Column], rows: &[Vec<Value>]) -> R<()>;
    /// After a table's rows: generated keys continue after the copied ones.
    fn finish(&mut self, table: &str) -> R<()>;
}

/// Copies the store at `from` into `to` (see the module doc). `force` replaces what `to`
/// holds; without it a target holding data is refused.
pub fn run(from: &DbLocation, to: &DbLocation, force: bool) -> R<Summary> {
    if engines::same_place(from, to) {
        return Err(CopyError::Refused(format!(
            "--from and --to are the same database ({})",
            to.safe()
        )));
    }
    let mut src = engines::open_source(from)?;
    src.begin(false)?;
    let (v, latest) = src.version()?;
    if v == 0 {
        src.rollback();
        return Err(CopyError::Refused(format!(
            "{} holds no litegate store",
            src.name()
        )));
    }
    if v != latest {
        src.rollback();
        return Err(CopyError::Refused(format!(
            "{} has schema version {v}, this litegate's is {latest}: {}",
            src.name(),
            if v < latest {
                "start this litegate on it once (it migrates at start), then copy"
            } else {
                "use the newer litegate that wrote it"
            }
        )));
    }
    // The target is opened (created, migrated) only once the source is known to be good. A
    // SQLite target that did not exist before is removed again when the copy fails, so a
    // failed copy leaves no empty store behind (an existing one is left as it was).
    let fresh = match to {
        DbLocation::Sqlite(p) => !p.exists(),
        DbLocation::Postgres(_) => false,
    };
    let out = into_target(src.as_mut(), to, force);
    src.rollback();
    if let (Err(_), true, DbLocation::Sqlite(p)) = (&out, fresh, to) {
        remove_sqlite_files(p);
    }
    out
}

fn into_target(src: &mut dyn Side, to: &DbLocation, force: bool) -> R<Summary> {
    let mut dst = engines::open_target(to)?;
    dst.begin(true)?;
    let out = copy_all(src, dst.as_mut(), force);
    let out = out.and_then(|s| dst.commit().map(|_| s));
    if out.is_err() {
        dst.rollback();
    }
    out
}

/// Removes a SQLite store this copy created (the file, its WAL and shared-memory files and
/// the owner lock), after its connection and lock were dropped.
pub fn remove_sqlite_files(p: &std::path::Path) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let mut f = p.as_os_str().to_owned();
        f.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(f));
    }
}

fn copy_all(src: &mut dyn Side, dst: &mut dyn Side, force: bool) -> R<Summary> {
    let mut plan = Vec::with_capacity(TABLES.len());
    for t in TABLES {
        plan.push((t, same_columns(t.name, src, dst)?));
    }
    let mut held = Vec::new();
    for name in TABLES.iter().map(|t| t.name).chain(["ui_sessions"]) {
        // The audit log is history, not data: a target litegate started once holds its own
        // master-key entry; it is replaced by the source's log like every table.
        if name == OWN_SETTINGS || name == "audit_log" || dst.columns(name)?.is_empty() {
            continue;
        }
        let n = dst.count(name)?;
        if n > 0 {
            held.push(format!("{name}: {n}"));
        }
    }
    if !held.is_empty() && !force {
        return Err(CopyError::Refused(format!(
            "{} already holds data ({}); copy-db never merges: give it an empty database, or \
             --force to replace everything in it",
            dst.name(),
            held.join(", ")
        )));
    }
    if !dst.columns("ui_sessions")?.is_empty() {
        dst.clear("ui_sessions")?;
    }
    for t in TABLES.iter().rev() {
        dst.clear(t.name)?;
    }
    let mut tallies = Vec::with_capacity(plan.len());
    for (t, cols) in &plan {
        let spend = spend_column(cols);
        let batch = dst.batch(cols.len());
        let mut tally = Tally::default();
        let mut rows = Vec::with_capacity(batch);
        src.scan(t, cols, &mut |row| {
            tally.add(&row, spend);
            rows.push(row);
            if rows.len() >= batch {
                dst.insert(t.name, cols, &rows)?;
                rows.clear();
            }
            Ok(())
        })?;
        if !rows.is_empty() {
            dst.insert(t.name, cols, &rows)?;
        }
        dst.finish(t.name)?;
        tallies.push(tally);
    }
    let mut tables = Vec::with_capacity(plan.len());
    for ((t, cols), want) in plan.iter().zip(&tallies) {
        let spend = spend_column(cols);
        let mut got = Tally::default();
        rows_check(dst.count(t.name)?, want.rows, t.name, "rows")?;
        dst.scan(t, cols, &mut |row| {
            got.add(&row, spend);
            Ok(())
        })?;
        verify(t.name, want, &got)?;
        tables.push(TableReport {
            name: t.name,
            rows: want.rows,
            spend: spend.map(|_| want.spend()),
        });
    }
    Ok(Summary {
        from: src.name(),
        to: dst.name(),
        tables,
    })
}

/// The target's columns of `table`, which the source must have with the same names and kinds
/// (both are at the same schema version, so a difference is a schema bug: refused).
fn same_columns(table: &str, src: &mut dyn Side, dst: &mut dyn Side) -> R<Vec<Column>> {
    let want = dst.columns(table)?;
    let mut have = src.columns(table)?;
    let mut sorted = want.clone();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    have.sort_by(|a, b| a.name.cmp(&b.name));
    if want.is_empty() || sorted != have {
        return Err(failed(format!(
            "table {table}: the source's columns {} differ from the target's {}; nothing was \
             written",
            names(&have),
            names(&sorted)
        )));
    }
    Ok(want)
}

fn names(cols: &[Column]) -> String {
    let v: Vec<String> = cols
        .iter()
        .map(|c| format!("{}:{:?}", c.name, c.kind))
        .collect();
    format!("[{}]", v.join(", "))
}

fn spend_column(cols: &[Column]) -> Option<usize> {
    cols.iter()
        .position(|c| c.name == "spend" && c.kind == Kind::Real)
}

fn rows_check(got: i64, want: u64, table: &str, what: &str) -> R<()> {
    if u64::try_from(got).ok() != Some(want) {
        return Err(failed(format!(
            "verification failed for table {table}: the source has {want} {what}, the copy \
             {got}; rolled back, the target is unchanged"
        )));
    }
    Ok(())
}

/// The copy's tally of a table against the source's; the first difference names the table.
fn verify(table: &str, want: &Tally, got: &Tally) -> R<()> {
    let fail = |what: String| {
        Err(failed(format!(
            "verification failed for table {table}: {what}; rolled back, the target is unchanged"
        )))
    };
    if want.rows != got.rows {
        return fail(format!(
            "the source has {} rows, the copy {}",
            want.rows, got.rows
        ));
    }
    if want.spend().to_bits() != got.spend().to_bits() {
        return fail(format!(
            "spend total {} in the source, {} in the copy",
            want.spend(),
            got.spend()
        ));
    }
    if want.digest != got.digest {
        return fail("the rows' values differ from the source's".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(rows: &[Vec<Value>]) -> Tally {
        let mut t = Tally::default();
        for r in rows {
            t.add(r, Some(1));
        }
        t
    }

    #[test]
    fn tallies_ignore_order_and_see_every_value() {
        let a = vec![Value::Text("k1".into()), Value::Real(0.1), Value::Null];
        let b = vec![Value::Text("k2".into()), Value::Real(0.2), Value::Int(3)];
        let one = tally(&[a.clone(), b.clone()]);
        let two = tally(&[b.clone(), a.clone()]);
        assert!(verify("api_keys", &one, &two).is_ok());
        assert_eq!(one.spend().to_bits(), two.spend().to_bits());
        // One bit of one float, a NULL for an empty text, a missing row: each is caught and
        // the message names the table.
        let mut c = b.clone();
        c[1] = Value::Real(0.25);
        let e = verify("api_keys", &one, &tally(&[a.clone(), c.clone()])).expect_err("spend");
        assert!(e.to_string().contains("api_keys") && e.to_string().contains("spend"));
        c[1] = Value::Real(f64::from_bits(0.2f64.to_bits() + 1));
        assert!(verify("api_keys", &one, &tally(&[a.clone(), c])).is_err());
        let mut d = b.clone();
        d[2] = Value::Text(String::new());
        let mut a2 = a.clone();
        a2[2] = Value::Text(String::new());
        assert!(verify("t", &one, &tally(&[a2, b.clone()])).is_err());
        assert!(verify("t", &one, &tally(&[a.clone(), d])).is_err());
        let e = verify("teams", &one, &tally(&[a])).expect_err("rows");
        assert!(e.to_string().contains("teams") && e.to_string().contains("rows"));
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn the_table_lists_do_not_overlap() {
        for (s, why) in SKIPPED {
            assert!(!why.is_empty());
            assert!(TABLES.iter().all(|t| t.name != *s), "{s}");
        }
        assert!(TABLES.iter().any(|t| t.name == OWN_SETTINGS));
    }
}
