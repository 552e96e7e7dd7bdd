//! Schema migrations. Owns `schema/*.sql` (embedded with `include_str!`), applying each in one
//! transaction and recording the version in `PRAGMA user_version`. Refuses a database written by
//! a newer litegate.

use rusqlite::{Connection, TransactionBehavior};

pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../schema/0001_init.sql")),
    (2, include_str!("../../schema/0002_ui_sessions.sql")),
    (
        3,
        include_str!("../../schema/0003_budget_reset_indexes.sql"),
    ),
    (4, include_str!("../../schema/0004_spend_log_indexes.sql")),
    (5, include_str!("../../schema/0005_authority.sql")),
    (
        6,
        include_str!("../../schema/0006_team_aliases_permissions.sql"),
    ),
    (7, include_str!("../../schema/0007_end_users.sql")),
    (8, include_str!("../../schema/0008_proxy_models.sql")),
    (9, include_str!("../../schema/0009_budget_alerts.sql")),
    (10, include_str!("../../schema/0010_audit_log.sql")),
    (
        11,
        include_str!("../../schema/0011_spend_log_key_prefix.sql"),
    ),
];

pub fn latest() -> i64 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}

pub fn version(c: &Connection) -> rusqlite::Result<i64> {
    c.query_row("PRAGMA user_version", [], |r| r.get(0))
}

pub fn migrate(c: &mut Connection) -> Result<(), String> {
    let v = version(c).map_err(|e| format!("cannot read schema version: {e}"))?;
    if v > latest() {
        return Err(format!(
            "the database has schema version {v}, newer than this litegate supports ({}); \
             run a newer litegate or restore a backup",
            latest()
        ));
    }
    for (n, sql) in MIGRATIONS.iter().filter(|(n, _)| *n > v) {
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| format!("migration {n}: {e}"))?;
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {n}: {e}"))?;
        tx.pragma_update(None, "user_version", n)
            .map_err(|e| format!("migration {n}: {e}"))?;
        tx.commit().map_err(|e| format!("migration {n}: {e}"))?;
        log::info!("applied schema migration {n}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_and_refuses_newer() {
        let mut c = Connection::open_in_memory().expect("mem");
        migrate(&mut c).expect("migrate");
        assert_eq!(version(&c).expect("v"), latest());
        // Idempotent.
        migrate(&mut c).expect("again");
        c.pragma_update(None, "user_version", latest() + 1)
            .expect("bump");
        let e = migrate(&mut c).expect_err("newer");
        assert!(e.contains("newer"), "{e}");
    }

    #[test]
    fn budget_resets_use_indexes() {
        let mut c = Connection::open_in_memory().expect("mem");
        migrate(&mut c).expect("migrate");
        for t in ["api_keys", "teams", "users", "budgets"] {
            let plan: Vec<String> = c
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT * FROM {t} WHERE budget_reset_at <= ?1"
                ))
                .expect("prepare")
                .query_map(["2026-01-01"], |r| r.get::<_, String>(3))
                .expect("plan")
                .collect::<rusqlite::Result<_>>()
                .expect("rows");
            assert!(plan.iter().all(|d| !d.starts_with("SCAN")), "{t}: {plan:?}");
        }
    }

    #[test]
    fn foreign_keys_are_declared() {
        let mut c = Connection::open_in_memory().expect("mem");
        migrate(&mut c).expect("migrate");
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM pragma_foreign_key_list('api_keys')",
                [],
                |r| r.get(0),
            )
            .expect("fk");
        // team_id, user_id, organization_id, and issued_by (schema 0005).
        assert_eq!(n, 4);
    }
}
