//! State as a file (issue 16 item 4): `GET /state/export`, `POST /state/apply` and the CLI's
//! `litegate export` / `apply`, end to end on the real binary (both engines under
//! `LITEGATE_TEST_PG`): the export's shape (no raw key, no password, no spend, stable), export →
//! apply on a fresh instance → export is a fixed point and the same raw keys (and UI password)
//! work there, applying twice changes nothing, a dry run writes nothing, prune deletes, a bad
//! file is a 400 naming the object and field with nothing written, a non-admin is refused with
//! nothing written, the CLI does the same on a stopped server's store, and a SQLite export
//! applied to PostgreSQL is the same state. Database models: exported with their parameters
//! encrypted (no plaintext secret), applied to a fresh instance with the same key they call the
//! fake upstream with the right provider key; updates and deletes are planned; another salt key
//! is a 400 naming the model with nothing applied; the CLI the same.

use crate::common::*;
use crate::upstream::{Fake, UPSTREAM_KEY};
use serde_json::{json, Value};
use std::process::{Command, Output};

const PASSWORD: &str = "correct horse battery staple";

/// A hierarchy made through the API: an org with a budget, a team in it with aliases and a
/// member budget, a UI user with a password, an org admin, a team key and a personal key.
/// Returns the raw keys (team key, personal key).
fn build(s: &Server) -> (String, String) {
    s.admin(
        "/organization/new",
        json!({"organization_id": "o1", "organization_alias": "Acme", "models": ["A", "B"],
               "max_budget": 100}),
    );
    s.admin(
        "/team/new",
        json!({"team_id": "t1", "team_alias": "Core", "organization_id": "o1",
               "models": ["A"], "max_budget": 5, "budget_duration": "30d",
               "model_aliases": {"fast": "A"}}),
    );
    s.admin(
        "/user/new",
        json!({"user_id": "u1", "user_email": "u1@example.com", "password": PASSWORD,
               "auto_create_key": false}),
    );
    s.admin(
        "/user/new",
        json!({"user_id": "boss", "user_email": "boss@example.com", "auto_create_key": false}),
    );
    s.admin(
        "/team/member_add",
        json!({"team_id": "t1", "member": {"user_id": "u1", "role": "user"},
               "max_budget_in_team": 2}),
    );
    s.admin(
        "/organization/member_add",
        json!({"organization_id": "o1", "member": {"user_id": "boss", "role": "org_admin"}}),
    );
    let team_key = key_for(
        s,
        json!({"team_id": "t1", "user_id": "u1", "key_alias": "team-key", "models": ["A"]}),
    );
    let own_key = key_for(
        s,
        json!({"user_id": "boss", "key_alias": "own", "tpm_limit": 1000}),
    );
    s.admin(
        "/customer/new",
        json!({"user_id": "cust-1", "alias": "Customer", "allowed_model_region": "eu",
               "default_model": "A"}),
    );
    (team_key, own_key)
}

fn export(s: &Server) -> String {
    let r = s.get("/state/export", MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("application/yaml"),
        "{:?}",
        r.headers
    );
    r.text()
}

fn apply(s: &Server, yaml: &str, query: &str) -> (u16, Value) {
    let r = s.request(
        "POST",
        &format!("/state/apply{query}"),
        Some(MASTER),
        Some(yaml.as_bytes()),
        &[],
    );
    (r.status, r.json())
}

fn ids(plan: &Value, part: &str) -> Vec<String> {
    plan[part]
        .as_array()
        .unwrap_or_else(|| panic!("no {part}: {plan}"))
        .iter()
        .map(|c| {
            format!(
                "{}:{}",
                c["kind"].as_str().unwrap(),
                c["id"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn export_holds_the_hierarchy_without_raw_keys_passwords_or_spend_and_is_stable() {
    let s = Server::start();
    let (team_key, own_key) = build(&s);
    let yaml = export(&s);
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    assert_eq!(doc["litegate_state"].as_i64(), Some(1));
    // Sections in their fixed order.
    let sections: Vec<&str> = doc
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert_eq!(
        sections,
        [
            "litegate_state",
            "budgets",
            "organizations",
            "users",
            "teams",
            "organization_members",
            "team_members",
            "keys",
            "end_users",
            "models"
        ]
    );
    // Keys by token, never raw; sorted by token.
    let tokens: Vec<&str> = doc["keys"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|k| k["token"].as_str().unwrap())
        .collect();
    let mut sorted = tokens.clone();
    sorted.sort();
    assert_eq!(tokens, sorted);
    for raw in [&team_key, &own_key] {
        assert!(!yaml.contains(raw.as_str()), "raw key in the export");
        assert!(tokens.contains(&litegate::auth::hash_key(raw).as_str()));
    }
    assert!(!yaml.contains(MASTER), "master key in the export");
    assert!(!yaml.contains(PASSWORD), "password in the export");
    // The UI user's password as its argon2id hash.
    let u1 = doc["users"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|u| u["user_id"].as_str() == Some("u1"))
        .unwrap();
    assert!(u1["password_hash"]
        .as_str()
        .unwrap()
        .starts_with("$argon2id$"));
    // Hierarchy: team in org, member budget, team aliases.
    let t1 = &doc["teams"][0];
    assert_eq!(t1["organization_id"].as_str(), Some("o1"));
    assert_eq!(t1["model_aliases"]["fast"].as_str(), Some("A"));
    let member = &doc["team_members"][0];
    assert_eq!(member["user_id"].as_str(), Some("u1"));
    let budget = member["budget_id"].as_str().unwrap();
    assert!(doc["budgets"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|b| b["budget_id"].as_str() == Some(budget) && b["max_budget"].as_f64() == Some(2.0)));
    // Usage is not state: no spend, no reset time, no updated_at.
    for word in ["spend", "budget_reset_at", "updated_at"] {
        assert!(!yaml.contains(word), "{word} in the export:\n{yaml}");
    }
    // A model call (spend moves) and an unchanged store export the same bytes.
    assert_eq!(chat(&s, &team_key, "A").status, 200);
    assert_eq!(export(&s), yaml);
}

#[test]
fn export_applied_to_a_fresh_instance_is_a_fixed_point_and_the_raw_keys_work_there() {
    let a = Server::start();
    let (team_key, own_key) = build(&a);
    let yaml = export(&a);
    let b = Server::start();
    // A dry run plans every object and writes nothing.
    let before = snapshot(&b);
    let (st, plan) = apply(&b, &yaml, "?dry_run=true");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["applied"], false);
    let created = ids(&plan, "create");
    assert_eq!(created.len(), 2 + 1 + 2 + 1 + 1 + 1 + 2 + 1, "{plan}");
    assert!(created.contains(&"end_user:cust-1".to_string()), "{plan}");
    assert!(created.contains(&"team_member:t1/u1".to_string()), "{plan}");
    assert_eq!(snapshot(&b), before, "a dry run wrote");
    // Applied: the same export, and the same raw keys work.
    let (st, plan) = apply(&b, &yaml, "");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(plan["applied"], true);
    assert_eq!(ids(&plan, "create"), created);
    assert_eq!(
        export(&b),
        yaml,
        "export -> apply -> export is not a fixed point"
    );
    assert_eq!(chat(&b, &team_key, "A").status, 200);
    assert_eq!(chat(&b, &own_key, "B").status, 200);
    // The key's limits came along: the team key may not call B (team models [A]).
    assert_eq!(chat(&b, &team_key, "B").status, 403);
    // The UI user logs in with the same password.
    let r = b.post_anon(
        "/ui/login",
        &json!({"email": "u1@example.com", "password": PASSWORD}),
        &[("X-Litegate-UI", "1")],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Applying the same file again: an empty plan, nothing written.
    let before = snapshot(&b);
    let (st, plan) = apply(&b, &yaml, "");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(plan["applied"], false);
    for part in ["create", "update", "delete"] {
        assert!(ids(&plan, part).is_empty(), "{plan}");
    }
    assert_eq!(snapshot(&b), before, "a second apply wrote");
    // And on the source itself the file changes nothing either.
    let (_, plan) = apply(&a, &yaml, "");
    assert!(
        ids(&plan, "create").is_empty() && ids(&plan, "update").is_empty(),
        "{plan}"
    );
}

#[test]
fn apply_updates_fields_keeps_spend_and_deletes_only_with_prune() {
    let s = Server::start();
    let (team_key, own_key) = build(&s);
    assert_eq!(chat(&s, &team_key, "A").status, 200);
    let spend_before: f64 = s.value("SELECT spend FROM teams WHERE id = ?1", ["t1"]);
    assert!(spend_before > 0.0);
    let yaml = export(&s);
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&yaml).unwrap();
    // Team t1 may now call B too; the personal key leaves the file.
    doc["teams"][0]["models"] = serde_yaml_ng::to_value(["A", "B"]).unwrap();
    let own_token = litegate::auth::hash_key(&own_key);
    let keys = doc["keys"].as_sequence_mut().unwrap();
    keys.retain(|k| k["token"].as_str() != Some(own_token.as_str()));
    let edited = serde_yaml_ng::to_string(&doc).unwrap();

    let (st, plan) = apply(&s, &edited, "");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(ids(&plan, "update"), ["team:t1"]);
    assert_eq!(
        plan["update"][0]["fields"]["models"]["before"],
        json!(["A"])
    );
    assert_eq!(
        plan["update"][0]["fields"]["models"]["after"],
        json!(["A", "B"])
    );
    assert!(
        ids(&plan, "delete").is_empty(),
        "no prune, no delete: {plan}"
    );
    assert_eq!(chat(&s, &own_key, "A").status, 200, "kept without prune");
    // Spend is not configuration: the update kept it.
    let spend_after: f64 = s.value("SELECT spend FROM teams WHERE id = ?1", ["t1"]);
    assert_eq!(spend_after, spend_before);
    // The change took effect: the team key may now be given B... its own list still says A.
    let models: String = s.value("SELECT models FROM teams WHERE id = ?1", ["t1"]);
    assert_eq!(models, r#"["A","B"]"#);

    let (st, plan) = apply(&s, &edited, "?prune=true&dry_run=true");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(ids(&plan, "delete"), [format!("key:{own_token}")]);
    assert_eq!(chat(&s, &own_key, "A").status, 200, "a dry run deleted");
    let (st, plan) = apply(&s, &edited, "?prune=true");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(plan["applied"], true);
    assert_eq!(
        chat(&s, &own_key, "A").status,
        401,
        "pruned key still works"
    );
    assert_eq!(chat(&s, &team_key, "A").status, 200);
    assert_eq!(export(&s), serde_yaml_ng::to_string(&doc).unwrap());
}

#[test]
fn a_bad_file_is_a_400_naming_object_and_field_and_writes_nothing() {
    let s = Server::start();
    let (team_key, _) = build(&s);
    let good = export(&s);
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&good).unwrap();
    let edit = |f: &dyn Fn(&mut serde_yaml_ng::Value)| {
        let mut d = doc.clone();
        f(&mut d);
        serde_yaml_ng::to_string(&d).unwrap()
    };
    let y = |s: &str| serde_yaml_ng::to_value(s).unwrap();
    let cases: Vec<(String, &str, &str)> = vec![
        ("not: [yaml".into(), "state", "not valid YAML"),
        (
            good.replace("litegate_state: 1", "litegate_state: 2"),
            "litegate_state",
            "litegate_state: 1",
        ),
        (
            edit(&|d| d["teams"][0]["organization_id"] = y("nope")),
            "organization_id",
            "team t1",
        ),
        (
            edit(&|d| d["team_members"][0]["role"] = y("owner")),
            "role",
            "team_member t1/u1",
        ),
        (
            edit(&|d| d["teams"][0]["models"] = serde_yaml_ng::to_value(["C"]).unwrap()),
            "models",
            "team t1",
        ),
        (
            edit(&|d| d["keys"][0]["token"] = y(&team_key)),
            "token",
            "never the raw key",
        ),
        (
            edit(&|d| d["users"][1]["password_hash"] = y(PASSWORD)),
            "password_hash",
            "never a password",
        ),
        (
            edit(&|d| d["users"][0]["user_email"] = y("U1@example.com")),
            "user_email",
            "unique",
        ),
        (
            edit(&|d| d["teams"][0]["max_budget"] = y("lots")),
            "max_budget",
            "team t1",
        ),
        (
            edit(&|d| d["teams"][0]["colour"] = y("red")),
            "colour",
            "unknown field",
        ),
        (
            edit(&|d| d["widgets"] = serde_yaml_ng::Value::Sequence(vec![])),
            "widgets",
            "unknown section",
        ),
        (
            edit(&|d| d["end_users"][0]["allowed_model_region"] = y("mars")),
            "allowed_model_region",
            "end_user cust-1",
        ),
        (
            edit(&|d| d["end_users"][0]["default_model"] = y("Z")),
            "default_model",
            "end_user cust-1",
        ),
        (
            edit(&|d| d["end_users"][0]["budget_id"] = y("no-such-budget")),
            "budget_id",
            "end_user cust-1",
        ),
    ];
    let before = snapshot(&s);
    for (text, param, words) in &cases {
        let (st, body) = apply(&s, text, "");
        assert_eq!(st, 400, "{param}: {body}");
        assert_eq!(body["error"]["param"], json!(param), "{body}");
        assert_eq!(body["error"]["code"], "400");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(words), "{param}: {msg}");
        assert!(
            !msg.contains(team_key.as_str()),
            "the raw key echoed: {msg}"
        );
        assert_eq!(snapshot(&s), before, "{param}: a refused file wrote");
    }
    // A dry run checks the same way.
    let (st, _) = apply(&s, &cases[2].0, "?dry_run=true");
    assert_eq!(st, 400);
    let (st, body) = apply(&s, &good, "?dry_run=maybe");
    assert_eq!(st, 400, "{body}");
}

#[test]
fn only_proxy_admins_export_or_apply_and_a_refusal_writes_nothing() {
    let s = Server::start();
    let (team_key, own_key) = build(&s);
    let yaml = export(&s);
    let other = yaml.replace("organization_alias: Acme", "organization_alias: Taken");
    let viewer = seed_user(&s, "viewer", "proxy_admin_viewer");
    let before = snapshot(&s);
    for key in [&team_key, &own_key, &viewer] {
        let r = s.get("/state/export", key);
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.json()["error"]["type"], "permission_error");
        for q in ["", "?dry_run=true", "?prune=true"] {
            let r = s.request(
                "POST",
                &format!("/state/apply{q}"),
                Some(key),
                Some(other.as_bytes()),
                &[],
            );
            assert_eq!(r.status, 403, "{}", r.text());
        }
    }
    let r = s.request("GET", "/state/export", None, None, &[]);
    assert_eq!(r.status, 401);
    assert_eq!(snapshot(&s), before, "a refused caller wrote");
}

fn cli(s: &Server, args: &[&str]) -> Output {
    cli_env(s, args, &[])
}

fn out(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn cli_export_and_apply_work_on_a_stopped_servers_store() {
    let mut a = Server::start();
    let (team_key, _) = build(&a);
    let http_yaml = export(&a);
    a.stop();
    let o = cli(&a, &["export"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let yaml = String::from_utf8(o.stdout).unwrap();
    assert_eq!(yaml, http_yaml, "CLI and HTTP exports differ");

    let mut b = Server::start();
    let file = b.dir.path().join("state.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let bad = b.dir.path().join("bad.yaml");
    std::fs::write(&bad, yaml.replace("role: user", "role: owner")).unwrap();
    b.stop();
    let f = file.to_str().unwrap();
    // Dry run: the plan on stdout, nothing written.
    let o = cli(&b, &["apply", f, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert!(String::from_utf8_lossy(&o.stderr).contains("dry run, nothing written"));
    // A bad file: exit 2, naming the object, nothing written.
    let o = cli(&b, &["apply", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("team_member t1/u1"),
        "{}",
        out(&o)
    );
    // Applied, then again: nothing to change.
    let o = cli(&b, &["apply", f]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["applied"], true);
    let o = cli(&b, &["apply", f]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing to change"),
        "{}",
        out(&o)
    );
    b.start_again();
    assert_eq!(export(&b), yaml);
    assert_eq!(chat(&b, &team_key, "A").status, 200);
    // A SQLite file a litegate serves on is refused, pointing to the HTTP endpoints; a file
    // that is not there is not exported (nor created).
    if b.pg.is_none() {
        let missing = b.dir.path().join("missing.db");
        let o = Command::new(env!("CARGO_BIN_EXE_litegate"))
            .args(["export", "--db", missing.to_str().unwrap()])
            .env_remove("DATABASE_URL")
            .env("TEST_MASTER_KEY", MASTER)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", out(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("no database at"),
            "{}",
            out(&o)
        );
        assert!(!missing.exists(), "export created a database");
        let o = cli(&b, &["export"]);
        assert_eq!(o.status.code(), Some(1), "{}", out(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("GET /state/export"),
            "{}",
            out(&o)
        );
        let o = cli(&b, &["apply", f]);
        assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    }
}

#[test]
fn the_readme_example_applies_and_its_raw_key_works() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find("```yaml\n# A hand-written file")
        .expect("the README's state example");
    let body = &readme[start + "```yaml\n".len()..];
    let yaml = &body[..body.find("```").expect("end of the example")];
    let s = Server::start();
    let (st, plan) = apply(&s, yaml, "");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(ids(&plan, "create").len(), 7, "{plan}");
    let key = "sk-readme-example-0123456789abcdef";
    assert_eq!(chat(&s, key, "A").status, 200);
    assert_eq!(chat(&s, key, "B").status, 403, "the key's models are [A]");
    // Left out of the file: ranks 3 (a proxy admin applied it), created_at now; and a second
    // apply of the same hand-written file changes nothing.
    let rank: i64 = s.value("SELECT limits_rank FROM teams WHERE id = ?1", ["core"]);
    assert_eq!(rank, 3);
    let (_, plan) = apply(&s, yaml, "");
    assert_eq!(plan["applied"], false, "{plan}");
    assert!(ids(&plan, "update").is_empty(), "{plan}");
}

/// Moving between engines by state file: exported from SQLite, applied to a fresh PostgreSQL
/// store (whatever `LITEGATE_TEST_PG` says), the same export and the same raw keys.
#[test]
fn a_sqlite_export_applied_to_postgresql_is_the_same_state() {
    let a = Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", "")]);
    assert!(a.pg.is_none());
    let (team_key, own_key) = build(&a);
    let yaml = export(&a);
    let db = crate::common::pg::PgDb::create(&crate::common::pg::admin_url());
    let b = Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", &db.url)]);
    let (st, plan) = apply(&b, &yaml, "");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(export(&b), yaml);
    assert_eq!(chat(&b, &team_key, "A").status, 200);
    assert_eq!(chat(&b, &own_key, "A").status, 200);
}

/// The team model's own provider key (a team's model reads no environment).
const TEAM_UPSTREAM_KEY: &str = "sk-team-upstream-secret-QRS";

/// Database models through `/model/new`: a global one relayed to `fake` with `UPSTREAM_KEY`,
/// a global one whose key is `os.environ/STATE_FAKE_KEY`, and a model of team `tm` with its
/// own key. Returns a key that may call the global ones and a key of team `tm`.
fn build_models(s: &Server, fake: &Fake) -> (String, String) {
    s.admin(
        "/model/new",
        json!({"model_name": "db-gpt", "model_info": {"id": "m-db", "note": "kept"},
               "litellm_params": {"model": "openai/json", "api_base": fake.api_base(),
                                  "api_key": UPSTREAM_KEY, "rpm": 50}}),
    );
    s.admin(
        "/model/new",
        json!({"model_name": "env-gpt", "model_info": {"id": "m-env"},
               "litellm_params": {"model": "openai/json", "api_base": fake.api_base(),
                                  "api_key": "os.environ/STATE_FAKE_KEY"}}),
    );
    s.admin(
        "/team/new",
        json!({"team_id": "tm", "team_alias": "Models"}),
    );
    s.admin(
        "/model/new",
        json!({"model_name": "team-gpt", "model_info": {"id": "m-team", "team_id": "tm"},
               "litellm_params": {"model": "openai/json", "api_base": fake.api_base(),
                                  "api_key": TEAM_UPSTREAM_KEY}}),
    );
    (key_for(s, json!({})), key_for(s, json!({"team_id": "tm"})))
}

fn start_models(env: &[(&str, &str)]) -> Server {
    let mut all = vec![("STATE_FAKE_KEY", UPSTREAM_KEY)];
    all.extend_from_slice(env);
    Server::start_with_env(TEST_CONFIG, &[], &all)
}

fn models_of(yaml: &str) -> Vec<serde_yaml_ng::Value> {
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(yaml).unwrap();
    doc["models"].as_sequence().unwrap().clone()
}

/// The provider key the fake upstream saw on its last request.
fn upstream_key(fake: &Fake) -> String {
    let auth = fake
        .last()
        .header("authorization")
        .unwrap_or("")
        .to_string();
    auth.trim_start_matches("Bearer ").to_string()
}

#[test]
fn database_models_travel_encrypted_and_call_the_upstream_with_their_key() {
    let fake = Fake::start();
    let a = start_models(&[]);
    let (key, team_key) = build_models(&a, &fake);
    let yaml = export(&a);
    // No plaintext secret, no plaintext environment reference; the ciphertexts are LiteLLM's.
    for secret in [
        UPSTREAM_KEY,
        TEAM_UPSTREAM_KEY,
        "os.environ",
        "STATE_FAKE_KEY",
    ] {
        assert!(!yaml.contains(secret), "{secret} in the export:\n{yaml}");
    }
    let models = models_of(&yaml);
    let model_ids: Vec<&str> = models
        .iter()
        .map(|m| m["model_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        model_ids,
        ["m-db", "m-env", "m-team"],
        "sorted by id:\n{yaml}"
    );
    let db = &models[0];
    assert_eq!(db["model_name"].as_str(), Some("db-gpt"));
    assert_eq!(
        db["litellm_params"]["rpm"].as_i64(),
        Some(50),
        "numbers as they are"
    );
    assert_eq!(db["model_info"]["note"].as_str(), Some("kept"));
    let sealed = db["litellm_params"]["api_key"].as_str().unwrap();
    let salt = litegate::crypt::SaltKey::new(MASTER);
    assert_eq!(
        salt.decrypt(sealed).as_deref(),
        Some(UPSTREAM_KEY),
        "LiteLLM's box"
    );
    assert_eq!(models[2]["team_id"].as_str(), Some("tm"));
    assert_eq!(export(&a), yaml, "stable");

    // A fresh instance with the same master key: planned, applied, the same export, and the
    // calls reach the upstream with each model's own provider key.
    let b = start_models(&[]);
    let (st, plan) = apply(&b, &yaml, "?dry_run=true");
    assert_eq!(st, 200, "{plan}");
    let created = ids(&plan, "create");
    for m in ["model:m-db", "model:m-env", "model:m-team", "team:tm"] {
        assert!(created.contains(&m.to_string()), "{m}: {plan}");
    }
    assert_eq!(
        b.count("SELECT count(*) FROM proxy_models"),
        0,
        "a dry run wrote"
    );
    let (st, plan) = apply(&b, &yaml, "");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(plan["applied"], true);
    assert!(!plan.to_string().contains(UPSTREAM_KEY), "{plan}");
    assert_eq!(export(&b), yaml, "a fixed point");
    for (k, model, want) in [
        (&key, "db-gpt", UPSTREAM_KEY),
        (&key, "env-gpt", UPSTREAM_KEY),
        (&team_key, "team-gpt", TEAM_UPSTREAM_KEY),
    ] {
        let r = chat(&b, k, model);
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(upstream_key(&fake), want, "{model}");
    }
    assert_eq!(
        chat(&b, &key, "team-gpt").status,
        400,
        "only the team's keys see it"
    );

    // Applying twice changes nothing (the generation does not move either).
    let generation = |s: &Server| s.count("SELECT generation FROM model_generation");
    let g = generation(&b);
    let (st, plan) = apply(&b, &yaml, "");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(plan["applied"], false, "{plan}");
    assert!(ids(&plan, "update").is_empty(), "{plan}");
    assert_eq!(generation(&b), g);

    // An update on `a` is one planned update of `b`'s model; a delete needs prune.
    a.admin(
        "/model/update",
        json!({"model_info": {"id": "m-db"}, "litellm_params": {"rpm": 70}}),
    );
    a.admin("/model/delete", json!({"id": "m-env"}));
    let yaml2 = export(&a);
    let (st, plan) = apply(&b, &yaml2, "?dry_run=true");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(ids(&plan, "update"), ["model:m-db"], "{plan}");
    assert!(
        plan["update"][0]["fields"]["litellm_params"]["after"]["rpm"] == 70,
        "{plan}"
    );
    assert!(ids(&plan, "delete").is_empty(), "no prune: {plan}");
    let (st, plan) = apply(&b, &yaml2, "?prune=true");
    assert_eq!(st, 200, "{plan}");
    assert_eq!(ids(&plan, "delete"), ["model:m-env"], "{plan}");
    assert_eq!(export(&b), yaml2);
    assert_eq!(chat(&b, &key, "db-gpt").status, 200, "in force at once");
    assert_eq!(chat(&b, &key, "env-gpt").status, 400, "deleted");
}

#[test]
fn database_models_applied_with_another_salt_key_are_a_400_naming_the_model_and_write_nothing() {
    let fake = Fake::start();
    let a = start_models(&[]);
    build(&a);
    build_models(&a, &fake);
    let yaml = export(&a);
    let b = start_models(&[("LITELLM_SALT_KEY", "another-salt")]);
    let before = snapshot(&b);
    let (st, v) = apply(&b, &yaml, "");
    assert_eq!(st, 400, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("model m-db") && msg.contains("api_key") && msg.contains("LITELLM_SALT_KEY"),
        "{msg}"
    );
    assert!(!msg.contains(UPSTREAM_KEY));
    assert_eq!(snapshot(&b), before, "the other kinds were applied too");
    // The same for a dry run, and for a hand-written model with a plaintext key.
    let (st, _) = apply(&b, &yaml, "?dry_run=true");
    assert_eq!(st, 400);
    let plain = "litegate_state: 1\nmodels:\n- model_id: hand\n  model_name: hand\n  \
                 litellm_params: {model: openai/json, api_key: sk-plain}\n";
    let (st, v) = apply(&b, plain, "");
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model hand"),
        "{v}"
    );
    assert_eq!(snapshot(&b), before);
    // A model with the id of a config model is refused too (config models are not state).
    let (st, v) = apply(
        &b,
        &yaml.replace("model_id: m-db", "model_id: a-1"),
        "?dry_run=true",
    );
    assert_eq!(st, 400, "{v}");
}

#[test]
fn cli_exports_and_applies_database_models() {
    let fake = Fake::start();
    let mut a = start_models(&[]);
    let (key, _) = build_models(&a, &fake);
    let http_yaml = export(&a);
    a.stop();
    let o = cli(&a, &["export"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let yaml = String::from_utf8(o.stdout).unwrap();
    assert_eq!(yaml, http_yaml);
    assert!(!yaml.contains(UPSTREAM_KEY));

    let mut b = start_models(&[]);
    let file = b.dir.path().join("state.yaml");
    std::fs::write(&file, &yaml).unwrap();
    b.stop();
    let f = file.to_str().unwrap();
    // Another salt key: exit 2 naming the model, nothing written.
    let o = cli_env(&b, &["apply", f], &[("LITELLM_SALT_KEY", "another-salt")]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("model m-db"),
        "{}",
        out(&o)
    );
    // The CLI reads `os.environ/NAME` references as the server would: from its environment.
    let env = [("STATE_FAKE_KEY", UPSTREAM_KEY)];
    let o = cli(&b, &["apply", f]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("STATE_FAKE_KEY is not set"),
        "{}",
        out(&o)
    );
    let o = cli_env(&b, &["apply", f], &env);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = cli_env(&b, &["apply", f], &env);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("nothing to change"),
        "{}",
        out(&o)
    );
    b.start_again();
    assert_eq!(export(&b), yaml);
    let r = chat(&b, &key, "db-gpt");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(upstream_key(&fake), UPSTREAM_KEY);
}

fn cli_env(s: &Server, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_litegate"));
    c.args(args)
        .arg("--db")
        .arg(s.db_path())
        .arg("--config")
        .arg(s.config.as_ref().unwrap())
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .env("TEST_MASTER_KEY", MASTER);
    for (k, v) in env {
        c.env(k, v);
    }
    if let Some(db) = &s.pg {
        c.env("DATABASE_URL", &db.url);
    }
    c.output().expect("run litegate")
}
