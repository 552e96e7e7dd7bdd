//! The spend log's key index on PostgreSQL (issue 17, round 4: `schema/pg/0008`, an index on
//! the first 8 characters of the key's hash): a database of schema 7 with rows, upgraded,
//! answers every `/spend/logs` filter as the statements of schema 7 did, and the readers by
//! key (one key, a user's keys) run on `spend_logs_key`.

use crate::common::pg::{admin_url, PgDb};
use litegate::db::spend::{self, LogFilter};

/// Rows of 300 keys (pairs sharing their first 8 characters, short keys, no key) in a
/// schema-7 database; the old statements' answers; the upgrade; the same answers through
/// `spend::logs`; the plans of the key readers after `ANALYZE`.
#[test]
fn spend_log_key_prefix_index_upgrade_and_plans_on_postgres() {
    let db = PgDb::create(&admin_url());
    {
        let mut c = db.client();
        c.batch_execute(
            "CREATE TABLE litegate_schema (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .expect("schema table");
        for (n, sql) in litegate::db::pg::MIGRATIONS.iter().filter(|(n, _)| *n <= 7) {
            c.batch_execute(sql).expect("old schema");
            c.execute(
                "INSERT INTO litegate_schema (version, applied_at) VALUES ($1, 'then')",
                &[n],
            )
            .expect("version");
        }
        // Key i: a 64-hex hash; keys 2k and 2k+1 share their first 8 characters; every 50th
        // key is short; user u{i % 3} owns key i, u9 the last two; every 7th row has no key.
        c.batch_execute(
            "INSERT INTO users (id, user_role, created_at, updated_at)
                 SELECT 'u' || g, 'internal_user', 'now', 'now' FROM generate_series(0, 2) g;
             CREATE TEMP TABLE k AS SELECT g AS i,
                 CASE WHEN g % 50 = 0 THEN substr(md5(g::text), 1, 5)
                      ELSE substr(md5((g / 2)::text), 1, 8) || substr(md5(g::text) || md5('x' || g), 1, 56)
                 END AS token
                 FROM generate_series(0, 299) g;
             INSERT INTO api_keys (token, key_name, user_id, created_at, updated_at)
                 SELECT token, 'sk-...', 'u' || (i % 3), 'now', 'now' FROM k;
             INSERT INTO spend_logs (request_id, api_key, team_id, model, call_type, start_time,
                     end_time, status)
                 SELECT 'r' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE
                     (SELECT token FROM k WHERE i = (g * 7919) % 300) END,
                     't' || (g % 2), 'm', 'acompletion',
                     '2026-01-01T00:' || lpad(((g * 31) % 60)::text, 2, '0') || ':00.000Z',
                     '2026-01-01T01:00:00.000Z', 'success'
                 FROM generate_series(1, 20000) g;
             INSERT INTO users (id, user_role, created_at, updated_at)
                 VALUES ('u9', 'internal_user', 'now', 'now');
             UPDATE api_keys SET user_id = 'u9'
                 WHERE token IN (SELECT token FROM api_keys ORDER BY token DESC LIMIT 2);",
        )
        .expect("rows");
    }
    // In token order: the keys sharing their first 8 characters side by side.
    let keys: Vec<String> = db
        .client()
        .query("SELECT token FROM api_keys ORDER BY token", &[])
        .expect("keys")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let s = |v: &str| Some(v.to_string());
    let mut filters = vec![LogFilter::default()];
    for k in keys.iter().step_by(23).chain(keys.iter().take(2)) {
        filters.push(LogFilter {
            api_key: s(k),
            ..LogFilter::default()
        });
        filters.push(LogFilter {
            api_key: s(k),
            team_id: s("t1"),
            start: s("2026-01-01T00:20"),
            ..LogFilter::default()
        });
        filters.push(LogFilter {
            api_key: s(&k[..k.len().min(8)]),
            ..LogFilter::default()
        });
    }
    for u in ["u0", "u1", "u9", "nobody"] {
        filters.push(LogFilter {
            owner: s(u),
            ..LogFilter::default()
        });
        filters.push(LogFilter {
            owner: s(u),
            api_key: s(&keys[4]),
            ..LogFilter::default()
        });
    }
    // The statements of schema 7: `api_key = ?` and the owner's `api_key IN (...)`.
    let old = |f: &LogFilter, limit: i64| -> Vec<String> {
        let mut conds: Vec<String> = Vec::new();
        let mut args: Vec<&(dyn postgres::types::ToSql + Sync)> = Vec::new();
        for (v, head, tail) in [
            (&f.api_key, "api_key = ", ""),
            (&f.team_id, "team_id = ", ""),
            (&f.start, "start_time >= ", ""),
            (
                &f.owner,
                "api_key IN (SELECT token FROM api_keys WHERE user_id = ",
                ")",
            ),
        ] {
            if let Some(v) = v {
                args.push(v);
                conds.push(format!("{head}${}{tail}", args.len()));
            }
        }
        let mut sql = String::from("SELECT request_id FROM spend_logs");
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(&format!(
            " ORDER BY start_time DESC, id DESC LIMIT ${}",
            args.len() + 1
        ));
        args.push(&limit);
        db.client()
            .query(&sql, &args)
            .expect("old statement")
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let before: Vec<Vec<String>> = filters.iter().map(|f| old(f, 100_000)).collect();

    // A patient pool: the unfiltered listing reads all 20,000 rows, on a loaded test machine.
    let pool = litegate::db::Pool::open_pg_with(&db.url, 2, std::time::Duration::from_secs(60))
        .expect("upgrade to the latest schema");
    let new = |f: &LogFilter, limit: i64| -> Vec<String> {
        pool.read_db(|c| Ok(spend::logs(c, f, limit)?))
            .expect("logs")
            .iter()
            .map(|v| v["request_id"].as_str().expect("id").to_string())
            .collect()
    };
    let mut nonempty = 0;
    for (f, want) in filters.iter().zip(&before) {
        assert_eq!(&new(f, 100_000), want, "{f:?}");
        assert_eq!(new(f, 50), want[..want.len().min(50)], "{f:?}");
        nonempty += usize::from(!want.is_empty());
    }
    assert!(nonempty > 20, "the filters find rows ({nonempty})");

    // The readers by key run on the index (default settings, after ANALYZE).
    let mut c = db.client();
    c.batch_execute("ANALYZE").expect("analyze");
    for f in [
        LogFilter {
            api_key: s(&keys[10]),
            ..LogFilter::default()
        },
        LogFilter {
            api_key: s(&keys[10]),
            start: s("2026-01-01T00:20"),
            ..LogFilter::default()
        },
        // A user with 2 of the 300 keys (one with a third of them is served as well by the
        // time index, newest first).
        LogFilter {
            owner: s("u9"),
            ..LogFilter::default()
        },
    ] {
        let sql = litegate::db::sql::pg_text(&spend::logs_sql(&f));
        let mut args: Vec<String> = Vec::new();
        for (v, n) in [(&f.api_key, 2), (&f.start, 1), (&f.owner, 2)] {
            if let Some(v) = v {
                args.extend(std::iter::repeat_n(format!("'{v}'"), n));
            }
        }
        args.push("50".into());
        let types = vec!["text"; args.len() - 1].join(", ") + ", bigint";
        c.batch_execute(&format!("DEALLOCATE ALL; PREPARE q({types}) AS {sql}"))
            .expect("prepare");
        let plan: String = c
            .query(&format!("EXPLAIN EXECUTE q({})", args.join(", ")), &[])
            .expect("explain")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(plan.contains("spend_logs_key"), "{sql}\n{plan}");
        assert!(!plan.contains("Seq Scan on spend_logs"), "{sql}\n{plan}");
    }
}
