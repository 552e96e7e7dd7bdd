//! The PostgreSQL schema (issue 14): the migrations of `schema/pg/`, applied at start in one
//! transaction under an advisory lock so that N instances starting at once migrate exactly once,
//! and the refusal of a database migrated by a newer litegate. The pool that runs them on its
//! first connection is `pg.rs`.

use super::pg::describe;

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
    (4, include_str!("../../schema/pg/0004_end_users.sql")),
    (5, include_str!("../../schema/pg/0005_proxy_models.sql")),
    (6, include_str!("../../schema/pg/0006_strict_budgets.sql")),
    (7, include_str!("../../schema/pg/0007_audit_log.sql")),
    (
        8,
        include_str!("../../schema/pg/0008_spend_log_key_prefix.sql"),
    ),
];

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
