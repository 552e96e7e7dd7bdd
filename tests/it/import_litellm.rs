//! `litegate import-litellm` (issue 15 item 2), whatever `LITEGATE_TEST_PG` says: the SOURCE is
//! always a real PostgreSQL (the switch's server or `scripts/pg.sh`'s throwaway cluster)
//! holding LiteLLM 1.80.0's tables (tests/fixtures/litellm/schema.sql, generated from
//! LiteLLM's schema.prisma) filled with tests/fixtures/litellm/data.sql; the target is a
//! SQLite file and a PostgreSQL database, each then served by the real binary. Checked: the
//! old raw keys call (blocked, expired, orphaned ones refused), spend carried at every level,
//! memberships and their roles and budgets, a dry run writes nothing, a second run updates
//! instead of duplicating, the report names the fields not carried; LiteLLM's stored models
//! (encrypted by LiteLLM's own code, `proxy_models.py`) copied as they are and calling the
//! upstream with their key, a row under another salt key named in the report.

use crate::common::pg::{admin_url, PgDb};
use crate::common::*;
use litegate::auth::hash_key;
use serde_json::{json, Value};
use std::process::{Command, Output};

const SCHEMA: &str = include_str!("../fixtures/litellm/schema.sql");
const DATA: &str = include_str!("../fixtures/litellm/data.sql");

// The fixture's raw keys (data.sql stores their sha256).
const ALICE: &str = "sk-alice-personal-0000000000000001";
const ENG: &str = "sk-eng2";
const BLOCKED: &str = "sk-blocked-key-0000000000000003";
const EXPIRED: &str = "sk-expired-key-0000000000000004";
const TEAM_GONE: &str = "sk-gone-team-key-000000000000005";
const USER_GONE: &str = "sk-orphan-user-key-0000000000006";
const BUDGET_ROW: &str = "sk-budget-row-key-00000000000007";
const UI_SESSION: &str = "sk-ui-session-00000000000000008";
const TEAM_BLOCKED: &str = "sk-blocked-team-00000000000000010";
const LONG: &str = "sk-Zx9Qm2Lr7Tt4Vb8Nc1Kd6Hf3Gj5Ps0Wy2Ea7Ru4Io9Sd1Fg6Hj3Kl8Zx5Cv0Bn2Mq7Wk";
const UNHASHED: &str = "sk-legacy-unhashed-0000000000012";

/// A LiteLLM database on PostgreSQL, loaded from the fixture.
fn litellm_db() -> PgDb {
    let db = PgDb::create(&admin_url());
    db.client()
        .batch_execute(SCHEMA)
        .expect("load LiteLLM's schema");
    db.client().batch_execute(DATA).expect("load the fixture");
    db
}

/// Runs `litegate import-litellm --from <src>` into `s`'s store (its config; its SQLite file,
/// or its PostgreSQL database through DATABASE_URL).
fn import(s: &Server, src: &PgDb, extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_litegate"));
    c.args(["import-litellm", "--from", &src.url])
        .args(extra)
        .arg("--config")
        .arg(s.config.as_ref().expect("config"))
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env("TEST_MASTER_KEY", MASTER);
    match &s.pg {
        Some(db) => c.env("DATABASE_URL", &db.url),
        None => c.arg("--db").arg(s.db_path()),
    };
    c.output().expect("run litegate import-litellm")
}

fn text(o: &Output) -> String {
    output_text(o)
}

fn import_ok(s: &Server, src: &PgDb, extra: &[&str]) -> String {
    let o = import(s, src, extra);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn spend_of_key(s: &Server, raw: &str) -> f64 {
    s.value(
        "SELECT spend FROM api_keys WHERE token = ?1",
        [hash_key(raw)],
    )
}

fn spend(s: &Server, table: &str, id: &str) -> f64 {
    s.value(&format!("SELECT spend FROM {table} WHERE id = ?1"), [id])
}

fn json_of(s: &Server, sql: &str, id: &str) -> Value {
    let t: String = s.value(sql, [id]);
    serde_json::from_str(&t).expect("json column")
}

/// Every table's row count: equal before and after a run that must write nothing.
fn counts(s: &Server) -> Vec<i64> {
    [
        "budgets",
        "organizations",
        "users",
        "teams",
        "organization_members",
        "team_members",
        "api_keys",
        "spend_logs",
        "end_users",
        "proxy_models",
    ]
    .iter()
    .map(|t| s.count(&format!("SELECT count(*) FROM {t}")))
    .collect()
}

/// The whole check on one target; `stop_for_writes`: SQLite, whose file a serving litegate
/// owns (the import is refused while it runs).
fn carry_over(mut s: Server, stop_for_writes: bool) {
    let src = litellm_db();
    let empty = counts(&s);

    // A dry run reads LiteLLM, reports, and writes nothing (it does not open the target).
    if stop_for_writes {
        s.stop();
    }
    let dry = import_ok(&s, &src, &["--dry-run", "--with-spend-logs"]);
    assert!(
        dry.contains("dry run") && dry.contains("would be imported"),
        "{dry}"
    );
    assert_eq!(counts(&s), empty, "a dry run wrote");
    for said in [
        // Fields not carried, by name, with why; a column this importer does not know.
        "LiteLLM_UserTable.password (2 rows set)",
        "LiteLLM_VerificationToken.model_spend",
        "LiteLLM_VerificationToken.key_type",
        "LiteLLM_TeamTable.future_knob (1 rows set): unknown to this importer",
        "LiteLLM_SpendLogs.messages",
        // A model stored under another salt key: named, with the parameters, not imported.
        "model pm-old (old-model): not imported: litellm_params api_key, model cannot be \
         decrypted with this instance's LITELLM_SALT_KEY",
        "proxy_models                 2 would be imported",
        "LiteLLM_AuditLog (1 rows)",
        // Rows left out or changed.
        "key sk-...0005: its team t-gone does not exist",
        "key sk-...0008: a LiteLLM admin-UI session key",
        "key sk-...0006: its user u-ghost does not exist",
        "alias eng-bot is also key sk-...eng2's",
        "user u-dave: e-mail ALICE@acme.io is also user u-alice's",
        "budget_duration 'monthly'",
        "a LiteLLM key row holding the configured master key: not imported",
        "model gpt-4-legacy (in the model list of team t-blocked) is not in this config",
    ] {
        assert!(dry.contains(said), "the report lacks {said:?}:\n{dry}");
    }

    // While a litegate serves the SQLite file, the import is refused and changes nothing.
    if stop_for_writes {
        s.start_again();
        let o = import(&s, &src, &[]);
        assert_ne!(o.status.code(), Some(0), "{}", text(&o));
        assert_eq!(counts(&s), empty);
        s.stop();
    }
    assert!(
        !dry.contains("sk-litellm-"),
        "a provider key in the report:\n{dry}"
    );
    let out = import_ok(&s, &src, &["--with-spend-logs"]);
    assert!(out.contains("in one transaction"), "{out}");
    if stop_for_writes {
        s.start_again();
    }

    // Spend carried at every level.
    assert_eq!(spend_of_key(&s, ALICE), 1.25);
    assert_eq!(spend_of_key(&s, ENG), 2.0);
    assert_eq!(spend(&s, "teams", "t-eng"), 9.75);
    assert_eq!(spend(&s, "organizations", "org-acme"), 12.5);
    assert_eq!(spend(&s, "users", "u-alice"), 3.25);
    let member_spend: f64 = s.value(
        "SELECT spend FROM team_members WHERE team_id = 't-eng' AND user_id = ?1",
        ["u-bob"],
    );
    assert_eq!(member_spend, 2.5);
    let org_member_spend: f64 = s.value(
        "SELECT spend FROM organization_members WHERE organization_id = 'org-acme' AND user_id = ?1",
        ["u-alice"],
    );
    assert_eq!(org_member_spend, 2.0);
    assert_eq!(s.count("SELECT count(*) FROM spend_logs"), 3);
    // End users with their spend, block and budget row (shared, LiteLLM's id: the org member's
    // copy of the same LiteLLM budget is a row of its own).
    assert_eq!(spend(&s, "end_users", "cust-1"), 1.25);
    let eu_budget: f64 = s.value(
        "SELECT b.max_budget FROM end_users e JOIN budgets b ON b.id = e.budget_id \
         WHERE e.id = ?1",
        ["cust-1"],
    );
    assert_eq!(eu_budget, 20.0);
    let eu_budget_id: String = s.value("SELECT budget_id FROM end_users WHERE id = ?1", ["cust-1"]);
    assert_eq!(eu_budget_id, "b-orgmember");
    let blocked: i64 = s.value("SELECT blocked FROM end_users WHERE id = ?1", ["cust-2"]);
    assert_eq!(blocked, 1);
    let logs = s.get("/spend/logs?request_id=req-1", MASTER).json();
    let log = &logs.as_array().expect("a list")[0];
    assert_eq!(log["end_user"], "cust-1", "{log}");
    assert_eq!(log["spend"], 1.25);
    assert_eq!(log["model"], "A");
    assert_eq!(log["api_key"], hash_key(ALICE).as_str());
    assert_eq!(log["startTime"], "2026-11-01T10:00:00.123Z");
    assert!(
        !log.to_string().contains("never copied"),
        "request bodies stay behind"
    );

    // The hierarchy: org budget row, memberships reconciled from their three copies (roles from
    // members_with_roles and admins[], a member named by e-mail only), per-member budgets (a
    // shared LiteLLM budget becomes one row each), permissions default, team aliases.
    let org_budget: f64 = s.value(
        "SELECT b.max_budget FROM organizations o JOIN budgets b ON b.id = o.budget_id \
         WHERE o.id = ?1",
        ["org-acme"],
    );
    assert_eq!(org_budget, 100.0);
    let roles: Vec<String> = s
        .text_rows("SELECT team_id, user_id, role FROM team_members ORDER BY team_id, user_id")
        .into_iter()
        .map(|r| r.into_iter().flatten().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        roles,
        [
            "t-eng u-alice admin",
            "t-eng u-bob user",
            "t-eng u-carol user",
            "t-ops u-admin admin",
            "t-ops u-dave user",
        ],
        "team members"
    );
    let member_budgets = s.count(
        "SELECT count(DISTINCT b.id) FROM team_members m JOIN budgets b ON b.id = m.budget_id \
         WHERE m.team_id = 't-eng' AND b.max_budget = 5.0",
    );
    assert_eq!(member_budgets, 2);
    let org_admin: String = s.value(
        "SELECT user_role FROM organization_members WHERE organization_id = 'org-acme' \
         AND user_id = ?1",
        ["u-alice"],
    );
    assert_eq!(org_admin, "org_admin");
    assert_eq!(
        json_of(
            &s,
            "SELECT member_permissions FROM teams WHERE id = ?1",
            "t-eng"
        ),
        json!(["/key/info", "/key/health"])
    );
    assert_eq!(
        json_of(
            &s,
            "SELECT member_permissions FROM teams WHERE id = ?1",
            "t-ops"
        ),
        json!(["/key/info", "/key/update"])
    );
    assert_eq!(
        json_of(&s, "SELECT models FROM users WHERE id = ?1", "u-bob"),
        json!(["no-default-models"])
    );
    let viewer: String = s.value("SELECT user_role FROM users WHERE id = ?1", ["u-carol"]);
    assert_eq!(viewer, "internal_user_viewer");
    let key_budget: f64 = s.value(
        "SELECT max_budget FROM api_keys WHERE token = ?1",
        [hash_key(BUDGET_ROW)],
    );
    assert_eq!(key_budget, 7.0, "a key's budget row limits it");
    let reset: String = s.value(
        "SELECT budget_reset_at FROM api_keys WHERE token = ?1",
        [hash_key(ALICE)],
    );
    assert_eq!(reset, "2027-01-02T00:00:00.000Z");

    // The old raw keys, of every length LiteLLM made, call as before.
    for (key, model) in [
        (ALICE, "A"),
        (ALICE, "my-a"),
        (ENG, "A"),
        (ENG, "fast"),
        (USER_GONE, "B"),
        (LONG, "C"),
        (UNHASHED, "A"),
        (BUDGET_ROW, "C"),
    ] {
        let r = chat(&s, key, model);
        assert_eq!(r.status, 200, "{key} {model}: {}", r.text());
    }
    assert_eq!(chat(&s, ENG, "B").status, 403, "the key's models carried");
    let as_blocked_customer = s.post(
        "/v1/chat/completions",
        ALICE,
        json!({"model": "A", "user": "cust-2", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(
        as_blocked_customer.status,
        400,
        "{}",
        as_blocked_customer.text()
    );
    assert!(as_blocked_customer.text().contains("User blocked"));
    let as_customer = s.post(
        "/v1/chat/completions",
        ALICE,
        json!({"model": "A", "user": "cust-1", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(as_customer.status, 200, "{}", as_customer.text());
    assert!(
        spend(&s, "end_users", "cust-1") > 1.25,
        "end-user spend continues"
    );
    for key in [BLOCKED, EXPIRED, TEAM_GONE, UI_SESSION, TEAM_BLOCKED] {
        let r = chat(&s, key, "A");
        assert_eq!(r.status, 401, "{key}: {}", r.text());
    }
    assert_eq!(
        chat(&s, EXPIRED, "A").json()["error"]["type"],
        "expired_key"
    );
    assert!(
        spend_of_key(&s, ALICE) > 1.25,
        "calls add to the carried spend"
    );
    models_carried(&s, &src);
    let after_calls = counts(&s);

    // A second run after LiteLLM changed: values updated, nothing duplicated.
    src.client()
        .batch_execute(
            "UPDATE \"LiteLLM_TeamTable\" SET max_budget = 45.0, spend = 10.5 \
             WHERE team_id = 't-eng';
             UPDATE \"LiteLLM_VerificationToken\" SET blocked = true \
             WHERE key_alias = 'alice-laptop';",
        )
        .expect("change LiteLLM");
    if stop_for_writes {
        s.stop();
    }
    let again = import_ok(&s, &src, &["--with-spend-logs"]);
    assert!(
        again.contains("api_keys                     0 new"),
        "{again}"
    );
    if stop_for_writes {
        s.start_again();
    }
    assert_eq!(counts(&s), after_calls, "a second run duplicated rows");
    let max: f64 = s.value("SELECT max_budget FROM teams WHERE id = ?1", ["t-eng"]);
    assert_eq!(max, 45.0);
    assert_eq!(spend(&s, "teams", "t-eng"), 10.5);
    assert_eq!(chat(&s, ALICE, "A").status, 401, "blocked in LiteLLM since");
    assert_eq!(chat(&s, ENG, "A").status, 200);
}

/// LiteLLM's stored models: copied as they are (the same ciphertexts), in force, and calling
/// the upstream with the provider key LiteLLM encrypted.
fn models_carried(s: &Server, src: &PgDb) {
    let ids: Vec<String> = s
        .text_rows("SELECT model_id FROM proxy_models ORDER BY model_id")
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert_eq!(ids, ["pm-1", "pm-team"]);
    for id in ["pm-1", "pm-team"] {
        let theirs: String = src
            .client()
            .query_one(
                "SELECT litellm_params->>'api_key' FROM \"LiteLLM_ProxyModelTable\" \
                 WHERE model_id = $1",
                &[&id],
            )
            .expect("LiteLLM's row")
            .get(0);
        let ours = json_of(
            s,
            "SELECT litellm_params FROM proxy_models WHERE model_id = ?1",
            id,
        );
        assert_eq!(ours["api_key"], theirs.as_str(), "{id}: copied as it is");
    }
    let team: String = s.value(
        "SELECT team_id FROM proxy_models WHERE model_id = ?1",
        ["pm-team"],
    );
    assert_eq!(team, "t-eng");
    // Pointed at a fake upstream (only api_base given again), each calls with its own key.
    let fake = crate::upstream::Fake::start();
    for (id, name, want) in [
        ("pm-1", "db-model", "sk-litellm-upstream-0001"),
        ("pm-team", "model_name_t-eng_6f1c2a", "sk-litellm-team-0002"),
    ] {
        s.admin(
            "/model/update",
            json!({"model_info": {"id": id}, "litellm_params": {"api_base": fake.api_base()}}),
        );
        let r = chat(s, MASTER, name);
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(
            fake.last().header("authorization"),
            Some(&*format!("Bearer {want}")),
            "{name}"
        );
    }
}

#[test]
fn a_litellm_database_moves_into_sqlite() {
    let s = Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", "")]);
    carry_over(s, true);
}

#[test]
fn a_litellm_database_moves_into_postgresql() {
    let db = PgDb::create(&admin_url());
    let mut s = Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", &db.url)]);
    s.pg = Some(db);
    carry_over(s, false);
}

/// `--from` must be LiteLLM's PostgreSQL database; a database without LiteLLM's tables is
/// refused (exit 2) and nothing is written.
#[test]
fn a_database_without_litellm_tables_is_refused() {
    let s = Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", "")]);
    let not_litellm = PgDb::create(&admin_url());
    let o = import(&s, &not_litellm, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not a LiteLLM proxy database"),
        "{}",
        text(&o)
    );
    let o = Command::new(env!("CARGO_BIN_EXE_litegate"))
        .args(["import-litellm", "--from", "litellm.db"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
