//! Key endpoints (API.md §2 key format, §3 errors, §4 write-time checks, §5 roles, §6 Keys,
//! §8 keys in URLs and echoes): generate, update, delete, info, list, block/unblock,
//! regenerate, and expiry.

use crate::access::{chat, models_of};
use crate::common::*;
use litegate::auth::hash_key;
use serde_json::{json, Value};

/// Two orgs, two teams and one caller per role:
/// org1 [A, B] with team t1 [A]; org2 [A, B, C] with team t2 [A, B].
/// alice and iviewer are `user` members of t1, tadmin its admin; oadmin administers org1,
/// oadmin2 org2; bob and outsider belong to nothing.
fn world() -> World {
    World::new()
        .orgs(&[("org1", &["A", "B"]), ("org2", &["A", "B", "C"])])
        .teams(&[
            ("t1", Some("org1"), &["A"]),
            ("t2", Some("org2"), &["A", "B"]),
        ])
        .users(&[
            ("padmin", "proxy_admin"),
            ("pview", "proxy_admin_viewer"),
            ("alice", "internal_user"),
            ("bob", "internal_user"),
            ("tadmin", "internal_user"),
            ("oadmin", "internal_user"),
            ("oadmin2", "internal_user"),
            ("outsider", "internal_user"),
            ("iviewer", "internal_user_viewer"),
        ])
        .team_members(&[
            ("t1", "alice", "user"),
            ("t1", "iviewer", "user"),
            ("t1", "tadmin", "admin"),
        ])
        .org_members(&[
            ("org1", "oadmin", "org_admin"),
            ("org2", "oadmin2", "org_admin"),
        ])
}

/// `/key/generate` as `key`, asserting 200; returns (raw key, response).
fn gen(s: &Server, key: &str, body: Value) -> (String, Value) {
    let v = expect(s, key, "/key/generate", body, 200);
    (v["key"].as_str().unwrap().to_string(), v)
}

/// One column of the key stored under the token of `raw`, as JSON.
fn col(s: &Server, raw: &str, column: &str) -> Value {
    s.db()
        .query_row(
            &format!("SELECT {column} FROM api_keys WHERE token = ?1"),
            [hash_key(raw)],
            |r| {
                Ok(match r.get_ref(0)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(i) => json!(i),
                    rusqlite::types::ValueRef::Real(x) => json!(x),
                    rusqlite::types::ValueRef::Text(t) => {
                        json!(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(_) => panic!("blob in {column}"),
                })
            },
        )
        .unwrap_or_else(|e| panic!("no key row for {column}: {e}"))
}

fn exists(s: &Server, raw: &str) -> bool {
    s.db()
        .query_row(
            "SELECT count(*) FROM api_keys WHERE token = ?1",
            [hash_key(raw)],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

fn key_count(s: &Server) -> i64 {
    s.count("SELECT count(*) FROM api_keys")
}

/// Every byte of the database files (main file and WAL).
fn db_bytes(s: &Server) -> Vec<u8> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(s.dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("litegate.db")
        {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    all
}

/// The raw key appears in no text column of api_keys and nowhere in the database files.
fn assert_raw_key_not_stored(s: &Server, raw: &str) {
    let db = s.db();
    let mut st = db.prepare("SELECT * FROM api_keys").unwrap();
    let n = st.column_count();
    let mut rows = st.query([]).unwrap();
    let mut seen = 0;
    while let Some(r) = rows.next().unwrap() {
        seen += 1;
        for i in 0..n {
            if let rusqlite::types::ValueRef::Text(t) = r.get_ref(i).unwrap() {
                assert!(
                    !String::from_utf8_lossy(t).contains(raw),
                    "raw key stored in api_keys column {i}"
                );
            }
        }
    }
    assert!(seen > 0);
    let bytes = db_bytes(s);
    assert!(
        !bytes.windows(raw.len()).any(|w| w == raw.as_bytes()),
        "raw key found in the database files"
    );
}

fn tokens(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn sorted_tokens(raws: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = raws.iter().map(|r| hash_key(r)).collect();
    out.sort();
    out
}

fn list(s: &Server, key: &str, query: &str) -> Value {
    let r = s.get(&format!("/key/list{query}"), key);
    assert_eq!(r.status, 200, "/key/list{query} -> {}", r.text());
    r.json()
}

fn info(s: &Server, caller: &str, key: &str) -> Resp {
    s.get(&format!("/key/info?key={key}"), caller)
}

// ---------------------------------------------------------------------------------------------
// /key/generate: format, storage, uniqueness, custom keys, bad input

#[test]
fn generate_returns_the_raw_key_once_and_stores_only_its_sha256() {
    let s = Server::start();
    let (raw, v) = gen(&s, MASTER, json!({}));
    assert!(raw.starts_with("sk-") && raw.len() >= 35, "{raw}");
    assert_eq!(v["token"], hash_key(&raw));
    assert_eq!(v["key_name"], format!("sk-...{}", &raw[raw.len() - 4..]));
    assert!(v["expires"].is_null(), "{v}");
    assert_eq!(v["blocked"], false);
    assert_eq!(v["spend"], 0.0);
    assert!(exists(&s, &raw));
    assert_eq!(col(&s, &raw, "key_name"), v["key_name"]);
    assert_raw_key_not_stored(&s, &raw);

    let (raw2, v2) = gen(&s, MASTER, json!({}));
    assert_ne!(raw2, raw);
    assert_ne!(v2["token"], v["token"]);
    assert_eq!(key_count(&s), 2);
    assert_raw_key_not_stored(&s, &raw2);

    // The key authenticates; its info shows the token and never the raw key.
    let r = s.get("/key/info", &raw);
    assert_eq!(r.status, 200, "{}", r.text());
    let i = r.json();
    assert_eq!(i["key"], hash_key(&raw));
    assert_eq!(i["info"]["token"], hash_key(&raw));
    assert!(!r.text().contains(&raw), "{}", r.text());
}

#[test]
fn generate_with_duration_sets_expires() {
    let s = Server::start();
    let before = litegate::util::now_ms();
    let (raw, v) = gen(&s, MASTER, json!({"duration": "1h"}));
    let after = litegate::util::now_ms();
    let exp = litegate::util::ms_from_iso(v["expires"].as_str().unwrap()).unwrap();
    assert!(exp >= before + 3_600_000 && exp <= after + 3_600_000, "{v}");
    assert_eq!(col(&s, &raw, "expires"), v["expires"]);
    // Not yet expired: it works.
    assert_eq!(s.get("/v1/models", &raw).status, 200);
}

#[test]
fn generate_refuses_durations_past_year_9999() {
    // A far-future expiry must not overflow into a 500, nor be written in a form the key check
    // cannot read back (which made the new key expired at birth).
    let s = Server::start();
    for d in ["3000000d", "9223372036854775s", "106751991167300d"] {
        let v = expect(&s, MASTER, "/key/generate", json!({"duration": d}), 400);
        assert_eq!(v["error"]["param"], "duration", "{d}: {v}");
        let v = expect(
            &s,
            MASTER,
            "/key/generate",
            json!({"budget_duration": d}),
            400,
        );
        assert_eq!(v["error"]["param"], "budget_duration", "{d}: {v}");
    }
    // Up to 100 years is accepted (util::parse_duration caps there).
    let (raw, _) = gen(&s, MASTER, json!({"duration": "36500d"}));
    assert_eq!(s.get("/v1/models", &raw).status, 200);
}

#[test]
fn generate_with_a_taken_key_alias_is_409_and_writes_nothing() {
    let s = Server::start();
    gen(&s, MASTER, json!({"key_alias": "ci"}));
    let v = expect(
        &s,
        MASTER,
        "/key/generate",
        json!({"key_alias": "ci", "models": ["A"]}),
        409,
    );
    assert_eq!(v["error"]["type"], "conflict_error");
    assert_eq!(key_count(&s), 1);
}

#[test]
fn custom_key_is_for_proxy_admins_only_and_must_look_like_a_key() {
    let s = Server::start();
    let alice = seed_user(&s, "alice", "internal_user");
    let custom = "sk-my-custom-key-0001";
    let (raw, v) = gen(&s, MASTER, json!({"key": custom}));
    assert_eq!(raw, custom);
    assert_eq!(v["token"], hash_key(custom));
    assert_eq!(v["key_name"], "sk-...0001");
    assert_raw_key_not_stored(&s, custom);
    assert_eq!(s.get("/v1/models", custom).status, 200);

    // An internal user may not choose their key.
    let v = expect(
        &s,
        &alice,
        "/key/generate",
        json!({"key": "sk-alice-chooses-this-key"}),
        403,
    );
    assert_eq!(v["error"]["type"], "permission_error");
    // Must start with sk- and be at least 16 characters.
    for bad in [
        "my-custom-key-without-prefix",
        "sk-short",
        "sk-0123456789ab",
    ] {
        let v = expect(&s, MASTER, "/key/generate", json!({"key": bad}), 400);
        assert_eq!(v["error"]["param"], "key", "{bad}: {v}");
    }
    // 16 characters is enough.
    gen(&s, MASTER, json!({"key": "sk-0123456789abc"}));
    // A duplicate custom key is a conflict (API.md §2 Fix), also against a seeded key.
    let v = expect(&s, MASTER, "/key/generate", json!({"key": custom}), 409);
    assert_eq!(v["error"]["type"], "conflict_error");
    expect(&s, MASTER, "/key/generate", json!({"key": alice}), 409);
}

#[test]
fn token_in_the_body_is_400() {
    let s = Server::start();
    let alice = seed_user(&s, "alice", "internal_user");
    for caller in [MASTER, alice.as_str()] {
        let v = expect(
            &s,
            caller,
            "/key/generate",
            json!({"token": hash_key("sk-anything-at-all-here")}),
            400,
        );
        assert_eq!(v["error"]["param"], "token", "{v}");
    }
}

#[test]
fn bad_generate_input_is_400_and_changes_nothing() {
    let s = Server::start();
    seed_team(&s, "t1", None, &[]);
    let before = snapshot(&s);
    let r = s.request(
        "POST",
        "/key/generate",
        Some(MASTER),
        Some(b"{\"models\": ["),
        &[],
    );
    let v = assert_error(&r, 400);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(snapshot(&s), before);
    for (body, param) in [
        (json!({"models": "A"}), "models"),
        (json!({"models": [1]}), "models"),
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"max_budget": "10"}), "max_budget"),
        (json!({"duration": "5y"}), "duration"),
        (json!({"duration": "abc"}), "duration"),
        (json!({"duration": "0s"}), "duration"),
        (json!({"tpm_limit": -5}), "tpm_limit"),
        (json!({"metadata": ["x"]}), "metadata"),
        (json!({"team_id": "no-such-team"}), "team_id"),
        (json!({"user_id": "no-such-user"}), "user_id"),
        (json!({"organization_id": "no-such-org"}), "organization_id"),
        (
            json!({"team_id": "t1", "models": ["A"], "user_id": "nobody"}),
            "user_id",
        ),
    ] {
        let v = expect(&s, MASTER, "/key/generate", body.clone(), 400);
        assert_eq!(v["error"]["type"], "invalid_request_error", "{body}: {v}");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
    }
    assert_eq!(key_count(&s), 0);
}

// ---------------------------------------------------------------------------------------------
// /key/generate: who may create which key (API.md §5, §8)

#[test]
fn proxy_admins_create_any_key_and_viewers_none() {
    let w = world();
    let g = |who, body, status| Case::post(who, "/key/generate", body, status);
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        g(AS_MASTER, json!({"user_id": "bob", "team_id": "t2", "models": ["B"]}), 200),
        g("padmin", json!({"user_id": "alice", "team_id": "t2"}), 200),
        // A proxy admin's own key without user_id belongs to them.
        g("padmin", json!({}), 200),
        g("pview", json!({}), 403), g("pview", json!({"team_id": "t1"}), 403),
        g("iviewer", json!({}), 403), g("iviewer", json!({"team_id": "t1"}), 403),
        g(ANON, json!({}), 401),
    ]);
    assert_eq!(v[0]["user_id"], "bob");
    assert_eq!(v[0]["team_id"], "t2");
    assert_eq!(v[0]["organization_id"], "org2");
    assert_eq!(v[1]["user_id"], "alice");
    assert_eq!(v[1]["created_by"], "padmin");
    assert_eq!(v[2]["user_id"], "padmin");
    for refusal in &v[3..7] {
        assert_eq!(refusal["error"]["type"], "permission_error", "{refusal}");
    }
}

#[test]
fn internal_user_creates_keys_only_for_themselves_in_their_teams() {
    let w = world();
    let s = &w.s;
    let g = |who, body, status| Case::post(who, "/key/generate", body, status);
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // For themselves, no team.
        g("alice", json!({"key_alias": "mine"}), 200),
        // For somebody else.
        g("alice", json!({"user_id": "bob"}), 403),
        g("alice", json!({"user_id": "bob", "team_id": "t1"}), 403),
        // In a team they are not in.
        g("alice", json!({"team_id": "t2"}), 403),
        g("outsider", json!({"team_id": "t1"}), 403),
        // In an org they are not in (a key without a team).
        g("alice", json!({"organization_id": "org2"}), 403),
        // In their team.
        g("alice", json!({"team_id": "t1"}), 200),
        // Beyond the team's models.
        g("alice", json!({"team_id": "t1", "models": ["A", "B"]}), 400).param("models"),
        // `all-team-models` in their team follows the team.
        g("alice", json!({"team_id": "t1", "models": ["all-team-models"]}), 200),
    ]);
    assert_eq!(v[0]["user_id"], "alice");
    assert!(v[0]["team_id"].is_null());
    assert_eq!(v[0]["created_by"], "alice");
    assert_eq!(v[6]["user_id"], "alice");
    assert_eq!(v[6]["team_id"], "t1");
    assert_eq!(v[6]["organization_id"], "org1");
    assert_eq!(col(s, v[6]["key"].as_str().unwrap(), "team_id"), "t1");
    assert!(
        v[7]["error"]["message"].as_str().unwrap().contains('B'),
        "{}",
        v[7]
    );
    assert_eq!(models_of(s, v[8]["key"].as_str().unwrap()), vec!["A"]);
}

#[test]
fn team_and_org_admins_create_keys_for_members_of_their_teams() {
    let w = world();
    let g = |who, body, status| Case::post(who, "/key/generate", body, status);
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // Team admin, for a member of the team.
        g("tadmin", json!({"team_id": "t1", "user_id": "alice"}), 200),
        // Team admin, for a non-member, or for someone else outside the team.
        g("tadmin", json!({"team_id": "t1", "user_id": "bob"}), 403),
        g("tadmin", json!({"user_id": "alice"}), 403),
        // Team admin may not widen the team's models.
        g("tadmin", json!({"team_id": "t1", "user_id": "alice", "models": ["C"]}), 400),
        // Org admin of the team's org: in that team, for a member or for themselves.
        g("oadmin", json!({"team_id": "t1", "user_id": "alice"}), 200),
        g("oadmin", json!({"team_id": "t1"}), 200),
        // Org admin of another org.
        g("oadmin2", json!({"team_id": "t1"}), 403),
        g("oadmin2", json!({"team_id": "t1", "user_id": "alice"}), 403),
    ]);
    assert_eq!(v[0]["user_id"], "alice");
    assert_eq!(v[0]["team_id"], "t1");
    assert_eq!(v[0]["created_by"], "tadmin");
    assert_eq!(col(&w, v[0]["key"].as_str().unwrap(), "user_id"), "alice");
    assert_eq!(v[4]["team_id"], "t1");
    assert_eq!(v[5]["user_id"], "oadmin");
}

#[test]
fn no_caller_puts_reach_widening_fields_on_a_key() {
    let w = world();
    let s = &w.s;
    let (mine, _) = gen(s, &w["alice"], json!({"team_id": "t1"}));
    for field in [
        json!({"user_role": "proxy_admin"}),
        json!({"allowed_routes": ["/key/generate", "/user/update"]}),
        json!({"permissions": {"get_spend_routes": true}}),
        json!({"spend": -100.0}),
        json!({"spend": 0}),
    ] {
        for caller in [&w["alice"], &w["tadmin"]] {
            let mut body = field.clone();
            body["team_id"] = json!("t1");
            let v = expect(s, caller, "/key/generate", body.clone(), 403);
            assert_eq!(v["error"]["type"], "permission_error", "{body}");
            let mut body = field.clone();
            body["key"] = json!(mine);
            expect(s, caller, "/key/update", body, 403);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// /key/update

#[test]
fn owner_updates_alias_metadata_and_models_within_the_team() {
    let w = world();
    let s = &w.s;
    let (raw, _) = gen(s, &w["alice"], json!({"team_id": "t1", "key_alias": "a1"}));
    let r = s.post(
        "/key/update",
        &w["alice"],
        json!({"key": raw, "key_alias": "a2", "metadata": {"env": "ci"}, "models": ["A"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains(&raw));
    let v = r.json();
    assert_eq!(v["token"], hash_key(&raw));
    assert_eq!(v["key_alias"], "a2");
    assert_eq!(v["models"], json!(["A"]));
    assert_eq!(v["updated_by"], "alice");
    assert_eq!(col(s, &raw, "key_alias"), "a2");
    assert_eq!(col(s, &raw, "metadata"), r#"{"env":"ci"}"#);
    assert_eq!(col(s, &raw, "models"), r#"["A"]"#);
    // Outside the team's models.
    let v = w.expect(
        "alice",
        "/key/update",
        json!({"key": raw, "models": ["B"]}),
        400,
    );
    assert_eq!(v["error"]["param"], "models");
    // By token as well as by raw key.
    let v = w.expect(
        "alice",
        "/key/update",
        json!({"key": hash_key(&raw), "key_alias": "by-token"}),
        200,
    );
    assert_eq!(v["key_alias"], "by-token");
    assert_eq!(col(s, &raw, "key_alias"), "by-token");
}

#[test]
fn only_admins_change_budgets_and_proxy_admins_move_keys() {
    let w = world();
    let s = &w.s;
    let (personal, _) = gen(s, &w["alice"], json!({}));
    let (team_key, _) = gen(s, &w["alice"], json!({"team_id": "t1"}));
    let up = |who, body, status| Case::post(who, "/key/update", body, status);
    let t2 = json!({"key": team_key, "team_id": "t2"});
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // The owner may not raise a budget on a personal key, nor on a team key.
        up("alice", json!({"key": personal, "max_budget": 1000}), 403),
        up("alice", json!({"key": team_key, "max_budget": 1000, "rpm_limit": 100000}), 403),
        // The team admin may change the budgets of keys in their team...
        up("tadmin", json!({"key": team_key, "max_budget": 5, "tpm_limit": 10}), 200),
    ]);
    assert_eq!(v[2]["max_budget"], 5.0);
    assert_eq!(col(s, &team_key, "max_budget"), 5.0);
    assert_eq!(col(s, &team_key, "tpm_limit"), 10);
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // ...but cannot see a personal key of a member.
        up("tadmin", json!({"key": personal, "max_budget": 5}), 404),
        // Moving a key to another team (or user): proxy admins only.
        up("alice", t2.clone(), 403), up("tadmin", t2.clone(), 403), up("oadmin", t2.clone(), 403),
        up("alice", json!({"key": team_key, "user_id": "bob"}), 403),
        up(AS_MASTER, t2.clone(), 200),
    ]);
    assert_eq!(v[5]["team_id"], "t2");
    assert_eq!(col(s, &team_key, "team_id"), "t2");
    assert_eq!(col(s, &team_key, "organization_id"), "org2");
}

#[test]
fn update_of_an_unknown_or_invisible_key_is_404_and_alias_clash_409() {
    let w = world();
    let s = &w.s;
    let (raw, _) = gen(s, &w["alice"], json!({"key_alias": "alice-1"}));
    gen(s, &w["alice"], json!({"key_alias": "alice-2"}));
    let up = |who, body, status| Case::post(who, "/key/update", body, status);
    let stolen = json!({"key": raw, "key_alias": "stolen"});
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        up(AS_MASTER, json!({"key": "sk-this-key-does-not-exist", "key_alias": "x"}), 404),
        up(AS_MASTER, json!({"key": hash_key("sk-nope-nope-nope-nope"), "key_alias": "x"}), 404),
        up("outsider", stolen.clone(), 404), up("tadmin", stolen.clone(), 404),
        up("oadmin", stolen.clone(), 404),
        up("alice", json!({"key": raw, "key_alias": "alice-2"}), 409),
        // A proxy admin viewer sees the key but may not change it.
        up("pview", json!({"key": raw, "key_alias": "viewer"}), 403),
    ]);
    assert_eq!(v[0]["error"]["type"], "not_found_error");
    assert_eq!(v[5]["error"]["type"], "conflict_error");
    assert_eq!(col(s, &raw, "key_alias"), "alice-1");
}

#[test]
fn update_to_an_unknown_user_is_400() {
    let s = Server::start();
    let (raw, _) = gen(&s, MASTER, json!({}));
    let v = expect(
        &s,
        MASTER,
        "/key/update",
        json!({"key": raw, "user_id": "no-such-user"}),
        400,
    );
    assert_eq!(v["error"]["param"], "user_id");
    let v = expect(
        &s,
        MASTER,
        "/key/update",
        json!({"key": raw, "team_id": "no-such-team"}),
        400,
    );
    assert_eq!(v["error"]["param"], "team_id");
}

#[test]
fn the_master_keys_user_id_is_no_user_unless_one_exists() {
    // `default_user_id` is what the master key acts as, not a user row: naming it as a key's
    // owner was a foreign-key failure (500); it is an unknown user (400) until such a user exists.
    let s = Server::start();
    let (raw, _) = gen(&s, MASTER, json!({}));
    let v = expect(
        &s,
        MASTER,
        "/key/generate",
        json!({"user_id": "default_user_id"}),
        400,
    );
    assert_eq!(v["error"]["param"], "user_id");
    let v = expect(
        &s,
        MASTER,
        "/key/update",
        json!({"key": raw, "user_id": "default_user_id"}),
        400,
    );
    assert_eq!(v["error"]["param"], "user_id");
    // An imported LiteLLM database may hold that user; then it is an owner like any other.
    seed_user(&s, "default_user_id", "proxy_admin");
    let (k, v) = gen(&s, MASTER, json!({"user_id": "default_user_id"}));
    assert_eq!(v["user_id"], "default_user_id");
    assert_eq!(col(&s, &k, "user_id"), "default_user_id");
    expect(
        &s,
        MASTER,
        "/key/update",
        json!({"key": raw, "user_id": "default_user_id"}),
        200,
    );
    assert_eq!(col(&s, &raw, "user_id"), "default_user_id");
}

#[test]
fn owner_cannot_unblock_their_key_through_update() {
    // /key/block and /key/unblock are for proxy and team admins; /key/update's `blocked`
    // must not be a side door for the owner.
    let w = world();
    let s = &w.s;
    let (raw, _) = gen(s, &w["alice"], json!({"team_id": "t1"}));
    // Blocked by the team admin (a block by a higher rank is theirs to lift: authority.rs).
    w.expect("tadmin", "/key/block", json!({"key": raw}), 200);
    w.expect(
        "alice",
        "/key/update",
        json!({"key": raw, "blocked": false}),
        403,
    );
    assert_eq!(col(s, &raw, "blocked"), 1);
    assert_error(&s.get("/v1/models", &raw), 401);
    // The same through regenerate.
    w.expect(
        "alice",
        "/key/regenerate",
        json!({"key": raw, "blocked": false}),
        403,
    );
    // The team admin may.
    let v = w.expect(
        "tadmin",
        "/key/update",
        json!({"key": raw, "blocked": false}),
        200,
    );
    assert_eq!(v["blocked"], false);
    assert_eq!(s.get("/v1/models", &raw).status, 200);
    // Restating the current value is not a change.
    w.expect(
        "alice",
        "/key/update",
        json!({"key": raw, "blocked": false, "key_alias": "ok"}),
        200,
    );
}

// ---------------------------------------------------------------------------------------------
// /key/delete

#[test]
fn delete_by_raw_key_token_or_alias() {
    let w = world();
    let s = &w.s;
    let (k1, _) = gen(s, &w["alice"], json!({}));
    let (k2, _) = gen(s, &w["alice"], json!({"team_id": "t1"}));
    let (k3, _) = gen(s, &w["alice"], json!({"key_alias": "third"}));
    let n = key_count(s);
    let v = w.expect("alice", "/key/delete", json!({"keys": [k1]}), 200);
    assert_eq!(v["deleted_keys"], json!([hash_key(&k1)]));
    assert!(!exists(s, &k1));
    let v = w.expect(
        "alice",
        "/key/delete",
        json!({"keys": [hash_key(&k2)]}),
        200,
    );
    assert_eq!(v["deleted_keys"], json!([hash_key(&k2)]));
    let v = w.expect(
        "alice",
        "/key/delete",
        json!({"key_aliases": ["third"]}),
        200,
    );
    assert_eq!(v["deleted_keys"], json!([hash_key(&k3)]));
    assert_eq!(key_count(s), n - 3);
    // A deleted key no longer authenticates.
    assert_error(&s.get("/v1/models", &k1), 401);
}

#[test]
fn delete_with_an_unknown_or_invisible_key_deletes_nothing() {
    let w = world();
    let s = &w.s;
    let (k1, _) = gen(s, &w["alice"], json!({"key_alias": "k1"}));
    let (k2, _) = gen(s, &w["alice"], json!({"team_id": "t1"}));
    let del = |who, body, status| Case::post(who, "/key/delete", body, status);
    #[rustfmt::skip]
    run_cases(&w, &[
        del(AS_MASTER, json!({"keys": [k1, "sk-unknown-unknown-unknown"]}), 404),
        del(AS_MASTER, json!({"keys": [k2], "key_aliases": ["k1", "no-such-alias"]}), 404),
        del("outsider", json!({"keys": [k1]}), 404),
        del("outsider", json!({"key_aliases": ["k1"]}), 404),
        del("oadmin2", json!({"keys": [k1]}), 404),
        del("oadmin2", json!({"key_aliases": ["k1"]}), 404),
        // Viewers never delete, and a team member may not delete another member's key.
        del("pview", json!({"keys": [k1]}), 403),
        del("iviewer", json!({"keys": [k2]}), 403),
        del(AS_MASTER, json!({}), 400),
    ]);
    assert!(exists(s, &k1) && exists(s, &k2));
    // The team admin may delete a key of their team.
    let v = w.expect("tadmin", "/key/delete", json!({"keys": [k2]}), 200);
    assert_eq!(v["deleted_keys"], json!([hash_key(&k2)]));
}

// ---------------------------------------------------------------------------------------------
// /key/info

#[test]
fn info_by_raw_key_or_token_never_shows_the_raw_key() {
    let w = world();
    let s = &w.s;
    let (raw, _) = gen(
        s,
        MASTER,
        json!({"team_id": "t1", "user_id": "alice", "key_alias": "i", "max_budget": 3}),
    );
    for (caller, q) in [
        (MASTER, raw.clone()),
        (MASTER, hash_key(&raw)),
        (&w["alice"], raw.clone()),
        (&w["tadmin"], hash_key(&raw)),
        (&w["oadmin"], raw.clone()),
        (&w["pview"], raw.clone()),
    ] {
        let r = info(s, caller, &q);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(!r.text().contains(&raw), "{}", r.text());
        let v = r.json();
        assert_eq!(v["key"], hash_key(&raw));
        let i = &v["info"];
        assert_eq!(i["token"], hash_key(&raw));
        assert_eq!(i["key_alias"], "i");
        assert_eq!(i["team_id"], "t1");
        assert_eq!(i["user_id"], "alice");
        assert_eq!(i["max_budget"], 3.0);
        assert_eq!(i["effective_models"], json!(["A"]));
    }
    for caller in [&w["outsider"], &w["oadmin2"], &w["iviewer"]] {
        let v = assert_error(&info(s, caller, &raw), 404);
        assert_eq!(v["error"]["type"], "not_found_error");
    }
    assert_error(&info(s, MASTER, "sk-no-such-key-anywhere"), 404);
}

#[test]
fn info_without_key_is_the_callers_own_and_400_for_the_master_key() {
    let w = world();
    let s = &w.s;
    for q in ["/key/info", "/key/info?key="] {
        let r = s.get(q, &w["alice"]);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["info"]["token"], hash_key(&w["alice"]));
        assert_eq!(r.json()["info"]["user_id"], "alice");
        let v = assert_error(&s.get(q, MASTER), 400);
        assert_eq!(v["error"]["param"], "key");
    }
    // A team key without a user sees itself.
    let (svc, _) = gen(s, MASTER, json!({"team_id": "t2"}));
    let r = s.get("/key/info", &svc);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["info"]["token"], hash_key(&svc));
}

#[test]
fn info_effective_models_equal_v1_models() {
    let w = world();
    let s = &w.s;
    s.db()
        .execute(
            "UPDATE users SET models = '[\"C\", \"D\"]' WHERE id = 'bob'",
            [],
        )
        .unwrap();
    let cases: Vec<(String, Vec<&str>)> = vec![
        (gen(s, MASTER, json!({})).0, vec!["A", "B", "C", "D"]),
        (
            gen(s, MASTER, json!({"models": ["grp-ab"]})).0,
            vec!["A", "B"],
        ),
        (
            gen(
                s,
                MASTER,
                json!({"team_id": "t2", "models": ["all-team-models"]}),
            )
            .0,
            vec!["A", "B"],
        ),
        (gen(s, MASTER, json!({"team_id": "t1"})).0, vec!["A"]),
        (
            gen(
                s,
                MASTER,
                json!({"organization_id": "org1", "models": ["all-org-models"]}),
            )
            .0,
            vec!["A", "B"],
        ),
        (gen(s, MASTER, json!({"user_id": "bob"})).0, vec!["C", "D"]),
        (
            gen(s, MASTER, json!({"user_id": "bob", "models": ["D"]})).0,
            vec!["D"],
        ),
    ];
    for (raw, want) in cases {
        let listed = models_of(s, &raw);
        assert_eq!(listed, want, "{}", col(s, &raw, "models"));
        let r = info(s, MASTER, &raw);
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["info"]["effective_models"], json!(listed));
    }
}

// ---------------------------------------------------------------------------------------------
// /key/list

#[test]
fn list_pages_through_every_key() {
    let s = Server::start();
    let mut raws: Vec<String> = (0..7).map(|_| gen(&s, MASTER, json!({})).0).collect();
    raws.push(seed_user(&s, "alice", "internal_user"));
    let all = sorted_tokens(&raws.iter().map(String::as_str).collect::<Vec<_>>());
    let mut seen = Vec::new();
    for page in 1..=3 {
        let v = list(&s, MASTER, &format!("?page={page}&size=3"));
        assert_eq!(v["total_count"], 8);
        assert_eq!(v["total_pages"], 3);
        assert_eq!(v["current_page"], page);
        let t = tokens(&v);
        assert_eq!(t.len(), if page < 3 { 3 } else { 2 }, "{v}");
        seen.extend(t);
    }
    seen.sort();
    assert_eq!(seen, all, "every key once");
    let v = list(&s, MASTER, "?page=4&size=3");
    assert_eq!(v["keys"], json!([]));
    // Defaults.
    let v = list(&s, MASTER, "");
    assert_eq!(v["current_page"], 1);
    assert_eq!(v["total_pages"], 1);
    assert_eq!(tokens(&v), all);
    // Full objects carry tokens, never raw keys.
    let r = s.get("/key/list?return_full_object=true&size=100", MASTER);
    assert_eq!(r.status, 200);
    for raw in &raws {
        assert!(!r.text().contains(raw.as_str()));
    }
    let v = r.json();
    let keys = v["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 8);
    let mut full: Vec<String> = keys
        .iter()
        .map(|k| {
            assert!(k["key_name"].as_str().unwrap().starts_with("sk-..."), "{k}");
            assert!(k.get("key").is_none(), "{k}");
            k["token"].as_str().unwrap().to_string()
        })
        .collect();
    full.sort();
    assert_eq!(full, all);
}

#[test]
fn list_filters_and_scopes_to_the_caller() {
    let w = world();
    let s = &w.s;
    let (a_team, _) = gen(
        s,
        &w["alice"],
        json!({"team_id": "t1", "key_alias": "a-team"}),
    );
    let (a_personal, _) = gen(s, &w["alice"], json!({}));
    let (t_key, _) = gen(s, &w["tadmin"], json!({"team_id": "t1"}));
    let (svc_t1, _) = gen(s, MASTER, json!({"team_id": "t1"}));
    let (bob_t2, _) = gen(s, MASTER, json!({"team_id": "t2", "user_id": "bob"}));
    let q = "?size=100";
    // Filters, as an admin.
    assert_eq!(
        tokens(&list(s, MASTER, "?team_id=t1&size=100")),
        sorted_tokens(&[&a_team, &t_key, &svc_t1])
    );
    assert_eq!(
        tokens(&list(s, MASTER, "?user_id=alice&size=100")),
        sorted_tokens(&[&w["alice"], &a_team, &a_personal])
    );
    assert_eq!(
        tokens(&list(s, MASTER, "?team_id=t1&user_id=alice")),
        sorted_tokens(&[&a_team])
    );
    assert_eq!(
        tokens(&list(s, MASTER, "?organization_id=org2")),
        sorted_tokens(&[&bob_t2])
    );
    assert_eq!(
        tokens(&list(s, MASTER, "?key_alias=a-team")),
        sorted_tokens(&[&a_team])
    );
    // An internal user sees only their own keys...
    let v = list(s, &w["alice"], q);
    assert_eq!(
        tokens(&v),
        sorted_tokens(&[&w["alice"], &a_team, &a_personal])
    );
    assert_eq!(v["total_count"], 3);
    assert_eq!(
        tokens(&list(s, &w["alice"], "?user_id=bob")),
        Vec::<String>::new()
    );
    assert_eq!(
        tokens(&list(s, &w["outsider"], q)),
        sorted_tokens(&[&w["outsider"]])
    );
    // ...plus the keys of teams they administer (not members' personal keys).
    assert_eq!(
        tokens(&list(s, &w["tadmin"], q)),
        sorted_tokens(&[&w["tadmin"], &a_team, &t_key, &svc_t1])
    );
    assert_eq!(
        tokens(&list(s, &w["oadmin"], q)),
        sorted_tokens(&[&w["oadmin"], &a_team, &t_key, &svc_t1])
    );
    // A proxy admin viewer sees all.
    let v = list(s, &w["pview"], q);
    assert_eq!(v["total_count"], key_count(s));
    assert_eq!(tokens(&v).len() as i64, key_count(s));
}

#[test]
fn list_rejects_bad_paging() {
    let s = Server::start();
    for q in [
        "size=0",
        "size=1000",
        "size=x",
        "page=0",
        "page=-1",
        "page=x",
    ] {
        let r = s.get(&format!("/key/list?{q}"), MASTER);
        let v = assert_error(&r, 400);
        assert_eq!(v["error"]["type"], "invalid_request_error", "{q}");
    }
    assert_eq!(list(&s, MASTER, "?size=100")["total_count"], 0);
}

// ---------------------------------------------------------------------------------------------
// /key/block, /key/unblock

#[test]
fn blocked_key_is_401_everywhere_until_unblocked() {
    let w = world();
    let s = &w.s;
    let (raw, _) = gen(s, &w["alice"], json!({"team_id": "t1"}));
    assert_eq!(chat(s, &raw, "A").status, 200);
    let v = w.expect(AS_MASTER, "/key/block", json!({"key": raw}), 200);
    assert_eq!(v["blocked"], true);
    assert_eq!(v["token"], hash_key(&raw));
    assert_eq!(col(s, &raw, "blocked"), 1);
    assert_error(&s.get("/v1/models", &raw), 401);
    assert_error(&chat(s, &raw, "A"), 401);
    let v = w.expect(
        AS_MASTER,
        "/key/unblock",
        json!({"key": hash_key(&raw)}),
        200,
    );
    assert_eq!(v["blocked"], false);
    assert_eq!(col(s, &raw, "blocked"), 0);
    assert_eq!(s.get("/v1/models", &raw).status, 200);
    assert_eq!(chat(s, &raw, "A").status, 200);
}

#[test]
fn block_is_for_proxy_and_team_admins() {
    let w = world();
    let s = &w.s;
    let (raw, _) = gen(s, &w["alice"], json!({"team_id": "t1"}));
    let (personal, _) = gen(s, &w["alice"], json!({}));
    for path in ["/key/block", "/key/unblock"] {
        let c = |who, key: &str, status| Case::post(who, path, json!({"key": key}), status);
        // The owner may not block or unblock their own key; others do not see it.
        #[rustfmt::skip]
        let v = run_cases(&w, &[
            c("alice", &raw, 403), c("alice", &personal, 403), c("pview", &raw, 403),
            c("outsider", &raw, 404), c("oadmin2", &raw, 404), c("tadmin", &personal, 404),
            c(AS_MASTER, "sk-not-a-key-at-all", 404),
        ]);
        assert_eq!(v[0]["error"]["type"], "permission_error");
    }
    // The team admin and the org admin above the team may.
    w.expect("tadmin", "/key/block", json!({"key": raw}), 200);
    assert_eq!(col(s, &raw, "blocked"), 1);
    w.expect("oadmin", "/key/unblock", json!({"key": raw}), 200);
    assert_eq!(col(s, &raw, "blocked"), 0);
    w.expect("padmin", "/key/block", json!({"key": personal}), 200);
    assert_eq!(col(s, &personal, "blocked"), 1);
}

// ---------------------------------------------------------------------------------------------
// /key/regenerate and /key/{key}/regenerate

#[test]
fn regenerate_replaces_the_key_and_keeps_everything_else() {
    let w = world();
    let s = &w.s;
    let (old, _) = gen(
        s,
        MASTER,
        json!({"team_id": "t2", "user_id": "bob", "key_alias": "svc", "models": ["A"],
               "max_budget": 10, "metadata": {"m": 1}}),
    );
    assert_eq!(chat(s, &old, "A").status, 200);
    // Spend recording is not built yet: give the key some directly.
    s.db()
        .execute(
            "UPDATE api_keys SET spend = 1.25 WHERE token = ?1",
            [hash_key(&old)],
        )
        .unwrap();
    let spend = 1.25;
    let n = key_count(s);
    let v = w.expect(AS_MASTER, "/key/regenerate", json!({"key": old}), 200);
    let new = v["key"].as_str().unwrap().to_string();
    assert!(new.starts_with("sk-") && new.len() >= 35);
    assert_ne!(new, old);
    assert_eq!(v["token"], hash_key(&new));
    assert_eq!(v["key_name"], format!("sk-...{}", &new[new.len() - 4..]));
    // The old key stops at once; the new one works.
    assert!(!exists(s, &old));
    assert_error(&s.get("/v1/models", &old), 401);
    assert_error(&chat(s, &old, "A"), 401);
    assert_eq!(key_count(s), n);
    assert_raw_key_not_stored(s, &new);
    // Spend, alias, models, team and budget came along.
    assert_eq!(col(s, &new, "spend"), spend);
    assert_eq!(col(s, &new, "key_alias"), "svc");
    assert_eq!(col(s, &new, "models"), r#"["A"]"#);
    assert_eq!(col(s, &new, "team_id"), "t2");
    assert_eq!(col(s, &new, "user_id"), "bob");
    assert_eq!(col(s, &new, "max_budget"), 10.0);
    assert_eq!(v["spend"], spend);
    assert_eq!(v["key_alias"], "svc");
    assert_eq!(v["team_id"], "t2");
    assert_eq!(v["metadata"], json!({"m": 1}));
    assert_eq!(models_of(s, &new), vec!["A"]);
    assert_eq!(chat(s, &new, "A").status, 200);
}

#[test]
fn regenerate_by_path_with_raw_key_or_token() {
    let w = world();
    let s = &w.s;
    let (k1, _) = gen(s, &w["alice"], json!({"team_id": "t1", "key_alias": "p1"}));
    // The owner, by raw key in the path.
    let v = w.expect("alice", &format!("/key/{k1}/regenerate"), json!({}), 200);
    let k2 = v["key"].as_str().unwrap().to_string();
    assert_ne!(k2, k1);
    assert_error(&s.get("/v1/models", &k1), 401);
    assert_eq!(s.get("/v1/models", &k2).status, 200);
    assert_eq!(col(s, &k2, "key_alias"), "p1");
    // The team admin, by token in the path.
    let v = w.expect(
        "tadmin",
        &format!("/key/{}/regenerate", hash_key(&k2)),
        json!({}),
        200,
    );
    let k3 = v["key"].as_str().unwrap().to_string();
    assert_error(&s.get("/v1/models", &k2), 401);
    assert_eq!(s.get("/v1/models", &k3).status, 200);
    assert_eq!(col(s, &k3, "user_id"), "alice");
    // Outsiders see nothing, on either form.
    w.expect("outsider", &format!("/key/{k3}/regenerate"), json!({}), 404);
    w.expect("outsider", "/key/regenerate", json!({"key": k3}), 404);
    w.expect("oadmin2", "/key/regenerate", json!({"key": k3}), 404);
    w.expect(
        AS_MASTER,
        "/key/regenerate",
        json!({"key": "sk-no-such-key-here"}),
        404,
    );
    w.expect(
        AS_MASTER,
        "/key/sk-no-such-key-here/regenerate",
        json!({}),
        404,
    );
    // A viewer may not, a team member may not regenerate another member's key.
    w.expect("pview", "/key/regenerate", json!({"key": k3}), 403);
    w.expect("iviewer", "/key/regenerate", json!({"key": k3}), 403);
    assert_eq!(s.get("/v1/models", &k3).status, 200);
}

#[test]
fn regenerate_accepts_a_trailing_slash_and_needs_a_key() {
    // The router accepts `/key/regenerate/`; the handler must not then read `regenerate`
    // as the key of `/key/{key}/regenerate`.
    let s = Server::start();
    let (k1, _) = gen(&s, MASTER, json!({"key_alias": "slash"}));
    let v = expect(&s, MASTER, "/key/regenerate/", json!({"key": k1}), 200);
    let k2 = v["key"].as_str().unwrap().to_string();
    assert_error(&s.get("/v1/models", &k1), 401);
    let v = expect(
        &s,
        MASTER,
        &format!("/key/{k2}/regenerate/"),
        json!({}),
        200,
    );
    assert_error(&s.get("/v1/models", &k2), 401);
    let k3 = v["key"].as_str().unwrap();
    assert_eq!(col(&s, k3, "key_alias"), "slash");
    for path in ["/key/regenerate", "/key/regenerate/"] {
        let v = expect(&s, MASTER, path, json!({}), 400);
        assert_eq!(v["error"]["param"], "key", "{path}");
    }
}

#[test]
fn regenerate_with_a_custom_new_key_is_for_proxy_admins() {
    let w = world();
    let s = &w.s;
    let (raw, _) = gen(s, &w["alice"], json!({"team_id": "t1"}));
    let re = |who, new_key: &str, status| {
        Case::post(
            who,
            "/key/regenerate",
            json!({"key": raw, "new_key": new_key}),
            status,
        )
    };
    let custom = "sk-admin-picked-new-key";
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        re("alice", "sk-alice-picked-this-one", 403),
        re("tadmin", "sk-tadmin-picked-this-one", 403),
        re(AS_MASTER, "sk-short", 400).param("new_key"),
        // Taken by another key.
        re(AS_MASTER, &w["bob"], 409),
        re(AS_MASTER, custom, 200),
    ]);
    assert_eq!(v[4]["key"], custom);
    assert_eq!(v[4]["token"], hash_key(custom));
    assert_error(&s.get("/v1/models", &raw), 401);
    assert_eq!(models_of(s, custom), vec!["A"]);
}

// ---------------------------------------------------------------------------------------------
// Expiry

#[test]
fn expired_key_is_401_expired_key() {
    let s = Server::start();
    let (raw, _) = gen(&s, MASTER, json!({"duration": "1h"}));
    assert_eq!(s.get("/v1/models", &raw).status, 200);
    s.db()
        .execute(
            "UPDATE api_keys SET expires = '2020-01-01T00:00:00.000Z' WHERE token = ?1",
            [hash_key(&raw)],
        )
        .unwrap();
    for r in [
        s.get("/v1/models", &raw),
        chat(&s, &raw, "A"),
        s.get("/key/info", &raw),
    ] {
        let v = assert_error(&r, 401);
        assert_eq!(v["error"]["type"], "expired_key", "{v}");
    }
    // The admin still sees it, and can extend it.
    let r = info(&s, MASTER, &raw);
    assert_eq!(r.status, 200);
    expect(
        &s,
        MASTER,
        "/key/update",
        json!({"key": raw, "duration": "1d"}),
        200,
    );
    assert_eq!(s.get("/v1/models", &raw).status, 200);
}
