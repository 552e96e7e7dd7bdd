//! `litegate copy-db` (issue 14 item 4), whatever `LITEGATE_TEST_PG` says: a store made
//! through the HTTP API on SQLite, copied to PostgreSQL and back, each copy served by the real
//! binary (every raw key works, blocked and expired ones are still refused, spend identical);
//! every value equal at the three stages; a target holding data refused without --force; a
//! failure mid-copy leaving the target unchanged; every table of both schemas copied or
//! skipped on purpose.

use crate::common::pg::{admin_url, PgDb};
use crate::common::*;
use litegate::db::copy::{SKIPPED, TABLES};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

/// A server on SQLite whatever the switch says (an empty DATABASE_URL is unset).
fn sqlite_server() -> Server {
    Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", "")])
}

fn pg_server(url: &str) -> Server {
    Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", url)])
}

fn copy_db(from: &str, to: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_litegate"))
        .args(["copy-db", "--from", from, "--to", to])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .expect("run litegate copy-db")
}

fn text(o: &Output) -> String {
    output_text(o)
}

fn copy_ok(from: &str, to: &str, extra: &[&str]) -> String {
    let o = copy_db(from, to, extra);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn skipped(table: &str) -> bool {
    SKIPPED.iter().any(|(s, _)| *s == table)
}

/// Every row of every table of the store that copy-db does not skip, each value with its
/// storage class and exact bits (`i`nteger, `r`eal as its bits, `t`ext, `N`ull), columns by
/// name: the same text on both engines when the stores hold the same values.
type Snap = BTreeMap<String, Vec<String>>;

fn row_text(mut cells: Vec<(String, String)>) -> String {
    cells.sort();
    let v: Vec<String> = cells.into_iter().map(|(c, v)| format!("{c}={v}")).collect();
    v.join("|")
}

fn snap_sqlite(file: &Path) -> Snap {
    let c = rusqlite::Connection::open(file).expect("open sqlite");
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = Snap::new();
    for t in tables.into_iter().filter(|t| !skipped(t)) {
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let names: Vec<String> = st.column_names().map(|s| s.to_string()).collect();
        let mut rows: Vec<String> = st
            .query_map([], |r| {
                use rusqlite::types::ValueRef as V;
                let mut cells = Vec::new();
                for (i, n) in names.iter().enumerate() {
                    let v = match r.get_ref(i)? {
                        V::Null => "N".to_string(),
                        V::Integer(i) => format!("i{i}"),
                        V::Real(f) => format!("r{:x}", f.to_bits()),
                        V::Text(b) => format!("t{:?}", String::from_utf8_lossy(b)),
                        V::Blob(b) => format!("b{b:?}"),
                    };
                    cells.push((n.clone(), v));
                }
                Ok(row_text(cells))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        out.insert(t, rows);
    }
    out
}

fn snap_pg(url: &str) -> Snap {
    let mut c = pg::client(url);
    let tables: Vec<String> = c
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Snap::new();
    for t in tables.into_iter().filter(|t| !skipped(t)) {
        let cols: Vec<(String, String)> = c
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name = $1",
                &[&t],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let list: Vec<String> = cols.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let mut rows: Vec<String> = c
            .query(&format!("SELECT {} FROM \"{t}\"", list.join(", ")), &[])
            .unwrap()
            .iter()
            .map(|r| {
                let cells = cols
                    .iter()
                    .enumerate()
                    .map(|(i, (n, ty))| {
                        let v = match ty.as_str() {
                            "bigint" => r.get::<_, Option<i64>>(i).map(|v| format!("i{v}")),
                            "double precision" => r
                                .get::<_, Option<f64>>(i)
                                .map(|f| format!("r{:x}", f.to_bits())),
                            "text" => r.get::<_, Option<String>>(i).map(|s| format!("t{s:?}")),
                            other => panic!("{t}.{n}: type {other} not in the snapshot"),
                        };
                        (n.clone(), v.unwrap_or_else(|| "N".into()))
                    })
                    .collect();
                row_text(cells)
            })
            .collect();
        rows.sort();
        out.insert(t, rows);
    }
    out
}

fn rows_of(s: &Snap, table: &str) -> usize {
    s.get(table).map_or(0, Vec::len)
}

/// A realistic store, made through the API: an org with a budget, a team in it with limits,
/// users with org and team memberships (one with a member budget), keys with budgets, limits,
/// aliases, metadata and a key alias, spend from model calls (spend logs), a blocked key, an
/// expired key, and a web UI login.
struct Store {
    good: Vec<String>,
    blocked: String,
    expired: String,
    org: String,
    team: String,
    users: Vec<String>,
}

fn build_store(s: &Server) -> Store {
    let org = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "acme", "models": ["A", "B", "C"], "max_budget": 100,
               "metadata": {"tier": "gold", "n": 1.25}}),
        "organization_id",
    );
    let ana = s.admin_id(
        "/user/new",
        json!({"user_id": "ana", "user_email": "ana@example.com", "user_role": "internal_user",
               "max_budget": 20}),
        "user_id",
    );
    let bob = s.admin_id(
        "/user/new",
        json!({"user_id": "bob", "user_email": "Bob@Example.com", "user_role": "internal_user"}),
        "user_id",
    );
    s.admin(
        "/organization/member_add",
        json!({"organization_id": org, "member": [{"user_id": ana, "role": "org_admin"},
               {"user_id": bob, "role": "internal_user"}], "max_budget_in_organization": 7.5}),
    );
    let team = s.admin_id(
        "/team/new",
        json!({"team_alias": "research", "organization_id": org, "models": ["A", "B"],
               "max_budget": 50, "rpm_limit": 1000, "tpm_limit": 1000000,
               "metadata": {"cost_center": "r&d \"quoted\"\nline"}}),
        "team_id",
    );
    s.admin(
        "/team/member_add",
        json!({"team_id": team, "member": {"role": "admin", "user_id": ana}}),
    );
    s.admin(
        "/team/member_add",
        json!({"team_id": team, "member": {"role": "user", "user_id": bob},
               "max_budget_in_team": 2.5}),
    );
    let gen = |body: Value| s.admin_id("/key/generate", body, "key");
    let k1 = gen(
        json!({"team_id": team, "user_id": ana, "models": ["A", "B"],
        "max_budget": 10, "soft_budget": 5, "rpm_limit": 500, "tpm_limit": 90000,
        "max_parallel_requests": 8, "budget_duration": "30d", "key_alias": "ana-main",
        "aliases": {"fast": "A"}, "metadata": {"env": "prod", "ünïcode": "✓"}}),
    );
    let k2 = gen(json!({"team_id": team, "user_id": bob}));
    let k3 = gen(json!({"user_id": ana, "models": ["C"], "key_alias": "ana-personal"}));
    let blocked = gen(json!({"team_id": team, "user_id": bob, "key_alias": "to-block"}));
    s.admin("/key/block", json!({"key": blocked}));
    let expired = gen(json!({"team_id": team, "user_id": ana, "duration": "1s"}));
    for (k, m, n) in [
        (&k1, "A", 3),
        (&k1, "fast", 1),
        (&k2, "A", 2),
        (&k2, "B", 1),
        (&k3, "C", 1),
    ] {
        for _ in 0..n {
            let r = chat(s, k, m);
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
    let b = json!({"master_key": MASTER}).to_string();
    let r = s.request(
        "POST",
        "/ui/login",
        None,
        Some(b.as_bytes()),
        &[("X-Litegate-UI", "1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    until("the short key expires", 10, || {
        chat(s, &expired, "A").status == 401
    });
    Store {
        good: vec![k1, k2, k3],
        blocked,
        expired,
        org,
        team,
        users: vec![ana, bob],
    }
}

/// What the API says of the store's spend: every key's, the team's, the org's, the users'
/// info, and every spend log.
fn figures(s: &Server, st: &Store) -> Value {
    let mut keys = Vec::new();
    for k in st.good.iter().chain([&st.blocked, &st.expired]) {
        let r = s.get(&format!("/key/info?key={k}"), MASTER);
        assert_eq!(r.status, 200, "{}", r.text());
        keys.push(r.json());
    }
    let get = |p: String| {
        let r = s.get(&p, MASTER);
        assert_eq!(r.status, 200, "{p}: {}", r.text());
        r.json()
    };
    let users: Vec<Value> = st
        .users
        .iter()
        .map(|u| get(format!("/user/info?user_id={u}")))
        .collect();
    json!({
        "keys": keys,
        "team": get(format!("/team/info?team_id={}", st.team)),
        "org": get(format!("/organization/info?organization_id={}", st.org)),
        "users": users,
        "logs": get("/spend/logs".into()),
    })
}

/// Every good key answers a model call; the blocked and the expired key are refused (401).
fn keys_behave(s: &Server, st: &Store) {
    for (k, m) in st.good.iter().zip(["A", "B", "C"]) {
        let r = chat(s, k, m);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = chat(s, &st.good[0], "fast");
    assert_eq!(r.status, 200, "alias: {}", r.text());
    assert_error(&chat(s, &st.blocked, "A"), 401);
    let v = assert_error(&chat(s, &st.expired, "A"), 401);
    assert_eq!(v["error"]["type"], "expired_key", "{v}");
}

#[test]
fn round_trip_sqlite_postgres_sqlite_keeps_every_key_and_spend() {
    let a = sqlite_server();
    let st = build_store(&a);
    let before = figures(&a, &st);
    // `a.db()` first: the server applies its spend journal (issue 17) before the file is read.
    drop(a.db());
    let snap_a = snap_sqlite(&a.db_path());
    assert!(rows_of(&snap_a, "spend_logs") >= 8, "{snap_a:?}");
    assert_eq!(a.count("SELECT count(*) FROM ui_sessions"), 1);

    // SQLite -> PostgreSQL while the source keeps serving.
    let db = PgDb::create(&admin_url());
    let out = copy_ok(path(&a.db_path()), &db.url, &[]);
    assert!(out.contains("spend total"), "{out}");
    assert!(
        !out.contains(":litegate@"),
        "the password is never printed: {out}"
    );
    assert_eq!(a.anon("GET", "/health/readiness").status, 200);
    let snap_pg1 = snap_pg(&db.url);
    assert_eq!(
        snap_pg1, snap_a,
        "PostgreSQL holds exactly the SQLite store"
    );
    let n: i64 = db
        .client()
        .query_one("SELECT count(*) FROM ui_sessions", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "UI sessions are not copied");

    let p = pg_server(&db.url);
    assert_eq!(figures(&p, &st), before, "spend identical on PostgreSQL");
    keys_behave(&p, &st);
    let after_pg = figures(&p, &st);
    assert_ne!(after_pg, before, "the calls on PostgreSQL were recorded");
    drop(p);

    // PostgreSQL -> a new SQLite store.
    let mut b = sqlite_server();
    b.stop();
    copy_ok(&db.url, path(&b.db_path()), &[]);
    assert_eq!(
        snap_sqlite(&b.db_path()),
        snap_pg(&db.url),
        "SQLite holds the PostgreSQL store"
    );
    b.start_again();
    assert_eq!(figures(&b, &st), after_pg, "spend identical back on SQLite");
    keys_behave(&b, &st);
}

/// Values whose exact bits or bytes an engine could change: floats that are not short
/// decimals, the extremes of 64-bit integers, empty text beside NULL, quotes, newlines, NUL-free
/// unicode, JSON with its own spacing, timestamps as text. Equal at the three stages.
#[test]
fn values_round_trip_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.db");
    let mut c = litegate::db::open(&a).unwrap();
    litegate::db::migrate::migrate(&mut c).unwrap();
    let reals = [
        0.1 + 0.2,
        1e-300,
        f64::MAX,
        f64::MIN_POSITIVE,
        1.0 / 3.0,
        123456789.12345679,
    ];
    for (i, r) in reals.iter().enumerate() {
        c.execute(
            "INSERT INTO budgets (id, max_budget, soft_budget, tpm_limit, rpm_limit,
               model_max_budget, created_at, updated_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, '2026-12-02T10:00:00.123Z', '2026-12-02T10:00:00Z', ?7)",
            rusqlite::params![
                format!("b{i}"),
                r,
                -r,
                [i64::MAX, i64::MIN, 0, -1, 1, 42][i],
                if i % 2 == 0 { None } else { Some(i as i64) },
                ["{}", "{ \"A\" : 1.50 }", "", "[\"x\",\n\"y\"]", "'single' \"double\"", "ü✓😀"][i],
                (i != 0).then(String::new),
            ],
        )
        .unwrap();
    }
    c.execute(
        "INSERT INTO spend_logs (id, request_id, model, call_type, prompt_tokens, spend,
           start_time, end_time, status, metadata)
         VALUES (9007199254740993, 'r1', 'A', 'completion', 9223372036854775807, 0.30000000000000004,
           '2026-12-02T10:00:00.000Z', '2026-12-02T10:00:01.000Z', 'success', '{\"k\": [1, 2.0]}')",
        [],
    )
    .unwrap();
    drop(c);
    let snap_a = snap_sqlite(&a);
    let db = PgDb::create(&admin_url());
    copy_ok(path(&a), &db.url, &[]);
    assert_eq!(snap_pg(&db.url), snap_a);
    // Read natively on PostgreSQL too: the float's bits and the id past 2^53.
    let r = db
        .client()
        .query_one(
            "SELECT max_budget, tpm_limit FROM budgets WHERE id = 'b0'",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, f64>(0).to_bits(), (0.1f64 + 0.2).to_bits());
    assert_eq!(r.get::<_, i64>(1), i64::MAX);
    let b = dir.path().join("b.db");
    copy_ok(&db.url, path(&b), &[]);
    assert_eq!(snap_sqlite(&b), snap_a);
}

#[test]
fn a_target_holding_data_is_refused_without_force_and_replaced_with_it() {
    let a = sqlite_server();
    let k = a.admin_id("/key/generate", json!({"key_alias": "first"}), "key");
    assert_eq!(chat(&a, &k, "A").status, 200);
    let db = PgDb::create(&admin_url());
    copy_ok(path(&a.db_path()), &db.url, &[]);
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.db");
    copy_ok(path(&a.db_path()), path(&b), &[]);

    // The source moves on; both targets now hold other data than it.
    let k2 = a.admin_id("/key/generate", json!({"key_alias": "second"}), "key");
    assert_eq!(chat(&a, &k2, "B").status, 200);
    // `a.db()` first: the server applies its spend journal (issue 17) before the file is read.
    drop(a.db());
    let snap_a = snap_sqlite(&a.db_path());
    for to in [db.url.clone(), path(&b).to_string()] {
        let snap = |to: &str| {
            if to.starts_with("postgresql") {
                snap_pg(to)
            } else {
                snap_sqlite(Path::new(to))
            }
        };
        let old = snap(&to);
        assert_ne!(old, snap_a);
        let o = copy_db(path(&a.db_path()), &to, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("already holds data") && err.contains("--force"),
            "{err}"
        );
        assert!(err.contains("api_keys: 1"), "names what it holds: {err}");
        assert!(!err.contains(":litegate@"), "{err}");
        assert_eq!(snap(&to), old, "refused: nothing changed");
        copy_ok(path(&a.db_path()), &to, &["--force"]);
        assert_eq!(snap(&to), snap_a, "--force replaces everything");
    }
    // A source that is missing or not a litegate store: refused before the target is made.
    let empty = dir.path().join("empty.db");
    rusqlite::Connection::open(&empty)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let fresh = dir.path().join("fresh.db");
    for (from, says) in [
        (dir.path().join("missing.db"), "no database there"),
        (empty, "holds no litegate store"),
    ] {
        let o = copy_db(path(&from), path(&fresh), &[]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(says),
            "{}",
            text(&o)
        );
        assert!(!fresh.exists(), "no target made");
    }
    // Onto itself: refused whatever --force says.
    let o = copy_db(path(&a.db_path()), path(&a.db_path()), &["--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(snap_sqlite(&a.db_path()), snap_a);
    // A target that another litegate serves on is refused (its owner lock).
    let o = copy_db(&db.url, path(&a.db_path()), &["--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("another litegate"),
        "{}",
        text(&o)
    );
}

/// A value the copy cannot take, met mid-copy: in the spend logs (text in an INTEGER column,
/// which SQLite keeps as text), and after them in the settings (a blob), when the spend logs'
/// id sequence has already been moved on PostgreSQL (sequences ignore ROLLBACK). The copy
/// fails naming the column, and each target — holding other data, with --force — is exactly
/// as it was and still serves: its spend-log ids continue after its own rows.
#[test]
fn a_failure_mid_copy_leaves_the_target_unchanged() {
    let a = sqlite_server();
    let k = a.admin_id("/key/generate", json!({}), "key");
    assert_eq!(chat(&a, &k, "A").status, 200);
    let db = PgDb::create(&admin_url());
    copy_ok(path(&a.db_path()), &db.url, &[]);
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.db");
    copy_ok(path(&a.db_path()), path(&b), &[]);
    // The PostgreSQL target records more calls than the source holds.
    let p = pg_server(&db.url);
    for _ in 0..3 {
        assert_eq!(chat(&p, &k, "A").status, 200);
    }
    drop(p);
    let old_pg = snap_pg(&db.url);
    let old_b = snap_sqlite(&b);
    let bad = [
        (
            "INSERT INTO settings (name, value) VALUES ('bad', X'00')",
            "settings.value",
        ),
        (
            "UPDATE spend_logs SET prompt_tokens = 'many' WHERE id = (SELECT max(id) FROM spend_logs)",
            "spend_logs.prompt_tokens",
        ),
    ];
    for (sql, column) in bad {
        a.exec("DELETE FROM settings WHERE name = 'bad'");
        a.exec(sql);
        for to in [db.url.as_str(), path(&b)] {
            let o = copy_db(path(&a.db_path()), to, &["--force"]);
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains(column), "{err}");
        }
        assert_eq!(snap_pg(&db.url), old_pg, "PostgreSQL target unchanged");
        assert_eq!(snap_sqlite(&b), old_b, "SQLite target unchanged");
        // A SQLite target the failed copy created is gone again, with its side files.
        let fresh = dir.path().join("fresh.db");
        let o = copy_db(path(&a.db_path()), path(&fresh), &[]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("fresh"))
            .collect();
        assert!(left.is_empty(), "a failed copy left {left:?}");
    }
    let p = pg_server(&db.url);
    for _ in 0..3 {
        let r = chat(&p, &k, "A");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let n: i64 = db
        .client()
        .query_one("SELECT count(*) FROM spend_logs", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 7);
}

/// The table list is honest: every table of either engine's schema is copied or skipped on
/// purpose, every copied table has the same columns of the same kinds on both, and parents
/// come before children.
#[test]
fn every_table_is_copied_or_skipped_on_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let mut lite = litegate::db::open(&dir.path().join("x.db")).unwrap();
    litegate::db::migrate::migrate(&mut lite).unwrap();
    let db = PgDb::create(&admin_url());
    let mut pgc = db.client();
    litegate::db::pg::migrate(&mut pgc).unwrap();

    // The kinds copy-db copies; a skipped table's columns may be of any type.
    let kind = |t: &str, ty: &str| match ty {
        _ if skipped(t) => "skipped",
        "INTEGER" | "bigint" => "int",
        "REAL" | "double precision" => "real",
        "TEXT" | "text" => "text",
        other => panic!("{t}: a column type copy-db does not know: {other}"),
    };
    let mut lite_cols: BTreeMap<String, Vec<(String, &str)>> = BTreeMap::new();
    let mut st = lite
        .prepare(
            "SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    for r in st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, String>(2)?))
        })
        .unwrap()
    {
        let (t, c, ty) = r.unwrap();
        let k = kind(&t, &ty);
        lite_cols.entry(t).or_default().push((c, k));
    }
    let mut pg_cols: BTreeMap<String, Vec<(String, &str)>> = BTreeMap::new();
    for r in pgc
        .query(
            "SELECT table_name::text, column_name::text, data_type::text
             FROM information_schema.columns WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
    {
        let (t, ty): (String, String) = (r.get(0), r.get(2));
        let k = kind(&t, &ty);
        pg_cols.entry(t).or_default().push((r.get(1), k));
    }
    for t in lite_cols.keys().chain(pg_cols.keys()) {
        assert!(
            TABLES.iter().any(|c| c.name == t) || skipped(t),
            "table {t} is neither copied (db::copy::TABLES) nor skipped on purpose \
             (db::copy::SKIPPED, with why)"
        );
    }
    for t in TABLES {
        let mut l = lite_cols.get(t.name).cloned().unwrap_or_default();
        let mut p = pg_cols.get(t.name).cloned().unwrap_or_default();
        l.sort();
        p.sort();
        assert!(!l.is_empty(), "{} missing on SQLite", t.name);
        assert_eq!(l, p, "{}: the engines' columns differ", t.name);
    }
    // Foreign keys: each parent is copied before its children.
    let pos = |n: &str| TABLES.iter().position(|t| t.name == n);
    for t in TABLES {
        let parents: Vec<String> = lite
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list(?1)")
            .unwrap()
            .query_map([t.name], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for p in parents {
            assert!(
                pos(&p) < pos(t.name),
                "{} is copied before its parent {p}",
                t.name
            );
        }
    }
}

/// Model calls on `s` with `key` from 4 threads until the returned flag is set; the handle
/// gives the number answered.
fn load(
    s: &Server,
    key: &str,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Vec<std::thread::JoinHandle<u64>>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads = (0..4)
        .map(|_| {
            let (addr, key, stop) = (s.addr.clone(), key.to_string(), stop.clone());
            std::thread::spawn(move || {
                let body = chat_body("A").to_string();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = raw_request(
                        &addr,
                        "POST",
                        "/v1/chat/completions",
                        Some(&key),
                        Some(body.as_bytes()),
                        &[],
                    );
                    assert_eq!(r.status, 200, "{}", r.text());
                    n += 1;
                }
                n
            })
        })
        .collect();
    (stop, threads)
}

/// Bulk keys, so that reading `api_keys` takes a while before `spend_logs` is read.
const BULK_KEYS: &str = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
    INSERT INTO api_keys (token, key_name, created_at, updated_at)
    SELECT 'bulk' || i, 'sk-...bulk', '2026-12-02T10:00:00.000Z', '2026-12-02T10:00:00.000Z' FROM n";

/// The copy of a store answering calls meanwhile is one snapshot of it: the key's spend in the
/// copy is exactly the sum of its spend logs in the copy (each call commits both together;
/// tables read at different moments would disagree), in both directions.
#[test]
fn a_copy_under_load_is_one_consistent_snapshot() {
    let check = |key_spend: f64, logs_spend: f64, logs: i64| {
        assert!(logs > 0);
        assert!(
            (key_spend - logs_spend).abs() < 1e-9,
            "key spend {key_spend} vs its {logs} spend logs' {logs_spend}"
        );
    };
    const KEY_SQL: &str = "SELECT spend FROM api_keys WHERE token = $1";
    const LOGS_SQL: &str =
        "SELECT COALESCE(SUM(spend), 0), count(*) FROM spend_logs WHERE api_key = $1";

    // SQLite serving -> PostgreSQL.
    let a = sqlite_server();
    let k = a.admin_id("/key/generate", json!({}), "key");
    let token: String = a.value("SELECT token FROM api_keys", []);
    a.exec(BULK_KEYS);
    let (stop, threads) = load(&a, &k);
    until("calls flow", 10, || {
        a.count("SELECT count(*) FROM spend_logs") >= 20
    });
    let db = PgDb::create(&admin_url());
    copy_ok(path(&a.db_path()), &db.url, &[]);
    let answered_during = a.count("SELECT count(*) FROM spend_logs");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(answered > 20, "{answered}");
    let mut c = db.client();
    let ks: f64 = c.query_one(KEY_SQL, &[&token]).unwrap().get(0);
    let l = c.query_one(LOGS_SQL, &[&token]).unwrap();
    check(ks, l.get(0), l.get(1));
    assert!(l.get::<_, i64>(1) <= answered_during);

    // PostgreSQL serving -> SQLite.
    let p = pg_server(&db.url);
    let (stop, threads) = load(&p, &k);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.db");
    copy_ok(&db.url, path(&b), &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answered: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(answered > 0);
    let lite = rusqlite::Connection::open(&b).unwrap();
    let ks: f64 = lite
        .query_row(&KEY_SQL.replace('$', "?"), [&token], |r| r.get(0))
        .unwrap();
    let (ls, n): (f64, i64) = lite
        .query_row(&LOGS_SQL.replace('$', "?"), [&token], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    check(ks, ls, n);
}
