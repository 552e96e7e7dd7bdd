//! The PostgreSQL store (issue 14), whatever `LITEGATE_TEST_PG` says: these tests take the
//! switch's server or start the throwaway one (`scripts/pg.sh`, `common::pg::admin_url`).
//! Migrations by N instances at once, THE key check's plan on PostgreSQL, and the first calls
//! that run end to end on it (key check, spend commit, readiness, backup refusal).

use crate::common::pg::{admin_url, PgDb};
use crate::common::*;
use serde_json::json;

/// A server on a fresh PostgreSQL database of its own.
fn pg_server() -> Server {
    let db = PgDb::create(&admin_url());
    let mut s = Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", &db.url)]);
    s.pg = Some(db);
    s
}

/// N instances starting at once on one empty database: every one starts, the schema is applied
/// exactly once (one version row, one instance logs it), and all of them serve.
#[test]
fn three_instances_starting_at_once_migrate_exactly_once() {
    let db = PgDb::create(&admin_url());
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || {
                Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", &url)])
            })
        })
        .collect();
    let servers: Vec<Server> = starts
        .into_iter()
        .map(|h| h.join().expect("start"))
        .collect();
    let mut c = db.client();
    let versions: Vec<i64> = c
        .query("SELECT version FROM litegate_schema ORDER BY version", &[])
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let all: Vec<i64> = litegate::db::pg::MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(versions, all);
    assert!(all.starts_with(&[1, 2, 3]), "{all:?}");
    let applied = servers
        .iter()
        .filter(|s| {
            let log = s.log();
            all.iter()
                .all(|n| log.contains(&format!("applied PostgreSQL schema migration {n}\n")))
        })
        .count();
    assert_eq!(applied, 1, "exactly one instance migrates");
    for s in &servers {
        let r = s.anon("GET", "/health/readiness");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["db_engine"], "postgresql");
    }
    // A restart finds nothing to do.
    drop(servers);
    let again = Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", &db.url)]);
    assert!(!again.log().contains("applied PostgreSQL schema migration"));
}

/// A database migrated by a newer litegate is refused at start (exit, message names it).
#[test]
fn a_newer_schema_is_refused() {
    let db = PgDb::create(&admin_url());
    let mut c = db.client();
    litegate::db::pg::migrate(&mut c).expect("migrate");
    c.execute(
        "INSERT INTO litegate_schema (version, applied_at) VALUES (999, 'x')",
        &[],
    )
    .expect("bump");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_litegate"))
        .args(["--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &db.url)
        .env("LITELLM_MASTER_KEY", MASTER)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("schema version 999"), "{err}");
    assert!(
        !err.contains("litegate:litegate@"),
        "no password in messages: {err}"
    );
}

/// `sslmode=require` makes the client insist on TLS: the test cluster has none, so the start
/// fails with a clear message (and without the password).
#[test]
fn sslmode_require_insists_on_tls() {
    let db = PgDb::create(&admin_url());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_litegate"))
        .args(["--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", format!("{}?sslmode=require", db.url))
        .env("LITELLM_MASTER_KEY", MASTER)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(
        !err.contains(":litegate@"),
        "no password in messages: {err}"
    );
}

/// THE key check is one statement on PostgreSQL too, and every join can run on an index: with
/// sequential scans, hash and merge joins priced out, no `Seq Scan` is left in its plan (a
/// missing index would leave one), and the key is found through `api_keys_pkey`; with 2,000
/// keys and default settings the key is still looked up through that index.
#[test]
fn key_check_plan_uses_the_indexes() {
    let db = PgDb::create(&admin_url());
    let mut c = db.client();
    litegate::db::pg::migrate(&mut c).expect("migrate");
    let sql = litegate::db::sql::pg_text(litegate::db::key_check::KEY_CHECK);
    assert!(!sql.contains(';'), "one statement");
    c.batch_execute(&format!("PREPARE kc(text) AS {sql}"))
        .expect("prepare");
    let plan = |c: &mut postgres::Client| -> String {
        c.query("EXPLAIN EXECUTE kc('t1')", &[])
            .expect("explain")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    };
    c.batch_execute(
        "SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off",
    )
    .expect("settings");
    let p = plan(&mut c);
    assert!(!p.contains("Seq Scan"), "{p}");
    assert!(
        p.contains("Index Scan using api_keys_pkey on api_keys"),
        "{p}"
    );
    for index in [
        "teams_pkey",
        "organizations_pkey",
        "users_pkey",
        "budgets_pkey",
    ] {
        assert!(p.contains(index), "{index}: {p}");
    }
    c.batch_execute(
        "RESET enable_seqscan; RESET enable_hashjoin; RESET enable_mergejoin;
         INSERT INTO api_keys (token, key_name, created_at, updated_at)
             SELECT 't' || g, 'sk-...' || g, '2026', '2026' FROM generate_series(1, 2000) g;
         ANALYZE",
    )
    .expect("seed");
    let p = plan(&mut c);
    assert!(p.contains("using api_keys_pkey on api_keys"), "{p}");
}

/// Calls on PostgreSQL end to end: readiness names the engine, a key stored in the database
/// passes THE key check, its call's spend is committed at every level with its log row before
/// the answer, a blocked or unknown key is refused, a backup is refused with the pointer to
/// pg_dump, and a key made through `/key/generate` works at once.
#[test]
fn key_check_and_spend_commit_run_on_postgres() {
    let s = pg_server();
    let r = s.anon("GET", "/health/readiness");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["db_engine"], "postgresql");

    let raw = "sk-pg-test-key-0123456789abcdef0123";
    let token = litegate::auth::hash_key(raw);
    let blocked_raw = "sk-pg-blocked-key-0123456789abcdef";
    let mut c = s.pg.as_ref().expect("pg").client();
    c.batch_execute(
        "INSERT INTO organizations (id, alias, created_at, updated_at)
             VALUES ('o1', 'org', '2026', '2026');
         INSERT INTO teams (id, alias, organization_id, models, created_at, updated_at)
             VALUES ('t1', 'team', 'o1', '[\"A\"]', '2026', '2026');
         INSERT INTO users (id, user_role, created_at, updated_at)
             VALUES ('u1', 'internal_user', '2026', '2026');
         INSERT INTO team_members (team_id, user_id, role, created_at, updated_at)
             VALUES ('t1', 'u1', 'user', '2026', '2026');",
    )
    .expect("seed");
    for (tok, blocked) in [
        (token.as_str(), 0i64),
        (&litegate::auth::hash_key(blocked_raw), 1),
    ] {
        c.execute(
            "INSERT INTO api_keys (token, key_name, team_id, user_id, blocked, created_at,
                 updated_at) VALUES ($1, 'sk-...0123', 't1', 'u1', $2, '2026', '2026')",
            &[&tok, &blocked],
        )
        .expect("key");
    }

    let r = chat(&s, raw, "A");
    assert_eq!(r.status, 200, "{}", r.text());
    let spend: f64 = c
        .query_one("SELECT spend FROM api_keys WHERE token = $1", &[&token])
        .expect("spend")
        .get(0);
    assert!(spend > 0.0, "key spend recorded before the answer: {spend}");
    for table in ["teams", "organizations", "users"] {
        let v: f64 = c
            .query_one(&format!("SELECT spend FROM {table}"), &[])
            .expect("spend")
            .get(0);
        assert_eq!(v, spend, "{table}");
    }
    let member: f64 = c
        .query_one("SELECT spend FROM team_members", &[])
        .expect("member")
        .get(0);
    assert_eq!(member, spend);
    let logs: i64 = c
        .query_one(
            "SELECT count(*) FROM spend_logs WHERE api_key = $1 AND team_id = 't1'
                 AND organization_id = 'o1' AND user_id = 'u1' AND model = 'A'",
            &[&token],
        )
        .expect("logs")
        .get(0);
    assert_eq!(logs, 1);

    // A model outside the team's list is refused by the same resolver.
    assert_eq!(chat(&s, raw, "C").status, 403);
    assert_error_says(&chat(&s, blocked_raw, "A"), 401, "blocked");
    assert_error_says(
        &chat(&s, "sk-nobody-0123456789abcdef", "A"),
        401,
        "Unable to find",
    );
    // Many calls at once: the group commit records each exactly once.
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let b = chat_body("A").to_string();
                raw_request(
                    &addr,
                    "POST",
                    "/v1/chat/completions",
                    Some(raw),
                    Some(b.as_bytes()),
                    &[],
                )
                .status
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("call"), 200);
    }
    let logs: i64 = c
        .query_one(
            "SELECT count(*) FROM spend_logs WHERE api_key = $1",
            &[&token],
        )
        .expect("logs")
        .get(0);
    assert_eq!(logs, 17);

    let r = s.post("/admin/backup", MASTER, json!({}));
    assert_error_says(&r, 501, "pg_dump");
    // Management runs on PostgreSQL too: a key made through the API works at once.
    let made = key_for(&s, json!({"team_id": "t1", "user_id": "u1"}));
    assert_eq!(chat(&s, &made, "A").status, 200);
}

/// The engine-neutral layer (`db::handle`): the ported organization statements give the same
/// answers on SQLite and on PostgreSQL, through the same functions and SQL texts, including a
/// duplicate id as a UNIQUE violation (the handlers' 409) on both.
#[test]
fn ported_org_statements_agree_on_both_engines() {
    use litegate::db::{handle::Handle, orgs, Pool};
    let dir = tempfile::tempdir().expect("tmp");
    let lite = Pool::open(&dir.path().join("x.db"), 2, Default::default()).expect("sqlite");
    let db = PgDb::create(&admin_url());
    let pg = Pool::open_pg(&db.url, 2).expect("postgresql");
    let run = |pool: &Pool| -> Vec<String> {
        let org = |id: &str, at: &str| orgs::OrgRow {
            id: id.into(),
            alias: format!("alias {id}"),
            models: vec!["A".into(), "B".into()],
            spend: 0.0,
            budget_id: None,
            blocked: false,
            metadata: json!({"k": "v"}),
            created_at: at.into(),
            updated_at: at.into(),
            created_by: Some("admin".into()),
            updated_by: Some("admin".into()),
        };
        let mut seen = Vec::new();
        pool.write_db(|c| {
            orgs::insert(c, &org("o2", "2026-01-02"))?;
            orgs::insert(c, &org("o1", "2026-01-01"))?;
            c.exec(
                "INSERT INTO users (id, email, user_role, created_at, updated_at)
                     VALUES (?1, ?2, 'internal_user', ?3, ?3)",
                &["u1".into(), "u1@example.com".into(), "2026".into()],
            )?;
            c.exec(
                "INSERT INTO organization_members (organization_id, user_id, user_role,
                     created_at, updated_at) VALUES (?1, ?2, 'org_admin', ?3, ?3)",
                &["o1".into(), "u1".into(), "2026".into()],
            )?;
            let mut o = orgs::get(c, "o1")?.expect("o1");
            o.alias = "renamed".into();
            o.updated_at = "2026-02-01".into();
            seen.push(format!("updated {}", orgs::update(c, &o)?));
            Ok(())
        })
        .expect("writes");
        let dup = pool.write_db(|c| Ok(orgs::insert(c, &org("o1", "2026"))?));
        let dup = match dup {
            Err(e) => e,
            Ok(()) => panic!("a duplicate id must fail"),
        };
        seen.push(format!("duplicate: {}", dup.status()));
        let dup2 = pool
            .write_db(|c| {
                orgs::insert(c, &org("o1", "2026"))
                    .map_err(|e| litegate::db::rows::unique_or(e, || "exists".into()))
            })
            .map(|_| 0)
            .unwrap_or_else(|e| e.status());
        seen.push(format!("unique_or: {dup2}"));
        pool.read_db(|c| {
            for o in orgs::list_all(c)? {
                seen.push(format!(
                    "{} {} {:?} {} {} {}",
                    o.id, o.alias, o.models, o.blocked, o.metadata, o.created_at
                ));
            }
            seen.push(format!("{:?}", orgs::member_role(c, "o1", "u1")?));
            seen.push(format!("{:?}", orgs::member_role(c, "o2", "u1")?));
            let ids: Vec<String> = orgs::list_for_user(c, "u1")?
                .into_iter()
                .map(|o| o.id)
                .collect();
            seen.push(format!("{ids:?}"));
            let m = orgs::member_get(c, "o1", "u1")?.expect("member");
            seen.push(format!("{} {} {:?}", m.user_role, m.spend, m.user_email));
            seen.push(format!("{}", orgs::members(c, "o1")?.len()));
            Ok(())
        })
        .expect("reads");
        pool.write_db(|c| {
            seen.push(format!(
                "member_delete {}",
                orgs::member_delete(c, "o1", "u1")?
            ));
            seen.push(format!("budgets {:?}", orgs::budget_ids_owned(c, "o1")?));
            seen.push(format!("delete {}", orgs::delete(c, "o2")?));
            seen.push(format!("left {:?}", orgs::get(c, "o2")?.map(|o| o.id)));
            Ok(())
        })
        .expect("deletes");
        seen
    };
    let on_lite = run(&lite);
    let on_pg = run(&pg);
    assert_eq!(on_lite, on_pg);
    assert!(
        on_lite.contains(&"duplicate: 500".to_string()),
        "{on_lite:?}"
    );
    assert!(
        on_lite.contains(&"unique_or: 409".to_string()),
        "{on_lite:?}"
    );
    assert!(
        on_lite.contains(&"Some(\"org_admin\")".to_string()),
        "{on_lite:?}"
    );
}

/// `f` run on a fresh SQLite store and a fresh PostgreSQL store: what it saw, on both.
fn on_both_engines(f: impl Fn(&litegate::db::Pool) -> Vec<String>) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tmp");
    let lite =
        litegate::db::Pool::open(&dir.path().join("x.db"), 2, Default::default()).expect("sqlite");
    let db = PgDb::create(&admin_url());
    let pg = litegate::db::Pool::open_pg(&db.url, 2).expect("postgresql");
    let on_lite = f(&lite);
    let on_pg = f(&pg);
    assert_eq!(on_lite, on_pg, "the engines disagree");
    on_lite
}

/// The ported budget statements (`db/budgets.rs`, with the allowance columns) agree on both
/// engines: insert, update of every allowance field (and back to NULL), list, delete only when
/// unused.
#[test]
fn ported_budget_statements_agree_on_both_engines() {
    use litegate::db::budgets;
    let seen = on_both_engines(|pool| {
        let mut seen = Vec::new();
        pool.write_db(|c| {
            let mut b = budgets::new_max_budget_row(5.5, Some("admin"));
            b.id = "b1".into();
            b.created_at = "2026-01-01".into();
            budgets::insert(c, &b)?;
            let mut b2 = budgets::new_max_budget_row(1.0, None);
            b2.id = "b2".into();
            b2.created_at = "2026-01-02".into();
            b2.updated_at = "2026-01-02".into();
            budgets::insert(c, &b2)?;
            b.allowance.tpm_limit = Some(100);
            b.allowance.rpm_limit = Some(7);
            b.allowance.max_parallel_requests = Some(2);
            b.allowance.soft_budget = Some(1.25);
            b.allowance.budget_duration = Some("30d".into());
            b.allowance.budget_reset_at = Some("2026-02-01T00:00:00.000Z".into());
            b.model_max_budget = Some(json!({"A": 1.0}));
            b.updated_at = "2026-01-03".into();
            seen.push(format!("update {}", budgets::update(c, &b)?));
            c_exec_org_with_budget(c)?;
            Ok(())
        })
        .expect("writes");
        pool.read_db(|c| {
            for b in budgets::list(c)? {
                seen.push(format!("{}", b.to_json()));
            }
            Ok(())
        })
        .expect("reads");
        pool.write_db(|c| {
            seen.push(format!(
                "unused b1? {}",
                budgets::delete_if_unused(c, "b1")?
            ));
            seen.push(format!(
                "unused b2? {}",
                budgets::delete_if_unused(c, "b2")?
            ));
            seen.push(format!("delete b1 {}", budgets::delete(c, "b1")?));
            seen.push(format!("{:?}", budgets::get(c, "b1")?.map(|b| b.id)));
            Ok(())
        })
        .expect("deletes");
        seen
    });
    assert!(
        seen.iter().any(|s| s.contains("\"tpm_limit\":100")),
        "{seen:?}"
    );
    assert!(seen.contains(&"unused b1? 0".to_string()), "{seen:?}");
    assert!(seen.contains(&"unused b2? 1".to_string()), "{seen:?}");
}

/// An organization that holds budget `b1` (so `b1` is in use).
fn c_exec_org_with_budget(c: &litegate::db::handle::Db<'_>) -> litegate::error::Result<()> {
    use litegate::db::handle::Handle;
    c.exec(
        "INSERT INTO organizations (id, alias, budget_id, created_at, updated_at)
             VALUES ('o1', 'o', 'b1', '2026', '2026')",
        &[],
    )?;
    Ok(())
}

/// One statement stuck on a healthy server — here the spend commit of a key whose row another
/// session holds locked — costs only its own call: a 503 after `database_connection_timeout`,
/// while every other request is served throughout, readiness stays 200 and the store is never
/// marked down (issue 14: one such timeout used to take the whole store down, and the calls
/// that came during the probe got 503s too).
#[test]
fn a_stuck_statement_on_a_healthy_server_costs_only_its_call() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let db = PgDb::create(&admin_url());
    let config = format!("{TEST_CONFIG}  database_connection_timeout: 1\n");
    let mut s = Server::start_with_env(&config, &[], &[("DATABASE_URL", &db.url)]);
    let mut c = crate::common::pg::client(&db.url);
    s.pg = Some(db);
    let s = Arc::new(s);
    let stuck = key_for(&s, json!({}));
    let other = key_for(&s, json!({}));
    assert_eq!(chat(&s, &stuck, "A").status, 200);

    // Requests with the other key all along (key check + models: no spend commit, which the
    // stuck one's group-commit batch could share).
    let done = Arc::new(AtomicBool::new(false));
    let load = {
        let (s, done, other) = (s.clone(), done.clone(), other.clone());
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            while !done.load(Ordering::Relaxed) {
                statuses.push(s.get("/v1/models", &other).status);
            }
            statuses
        })
    };
    let mut tx = c.transaction().expect("tx");
    tx.execute(
        "SELECT 1 FROM api_keys WHERE token = $1 FOR UPDATE",
        &[&litegate::auth::hash_key(&stuck)],
    )
    .expect("lock the key's row");
    let t = Instant::now();
    let r = chat(&s, &stuck, "A");
    let took = t.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "503", "{}", r.text());
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "the stuck call waited its timeout: {took:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let ready = s.anon("GET", "/health/readiness");
    tx.rollback().expect("unlock");
    done.store(true, Ordering::Relaxed);
    let statuses = load.join().expect("load thread");
    assert!(statuses.len() > 5, "{} requests beside it", statuses.len());
    assert!(
        statuses.iter().all(|&st| st == 200),
        "every other request served: {statuses:?}"
    );
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(chat(&s, &other, "A").status, 200);
    assert_eq!(
        chat(&s, &stuck, "A").status,
        200,
        "the key works once unlocked"
    );
    let log = s.log();
    assert!(
        !log.contains("PostgreSQL cannot be reached"),
        "the store was never marked down"
    );
    assert!(
        log.contains("the store stays up"),
        "the lost call is logged"
    );
}
