//! User endpoints (API.md §2 keys, §5 roles, §6 Users).

use crate::common::*;
use serde_json::{json, Value};

fn role_of(s: &Server, user: &str) -> String {
    s.value("SELECT user_role FROM users WHERE id = ?1", [user])
}

#[test]
fn user_new_returns_a_working_key_stored_only_as_its_hash() {
    let s = Server::start();
    seed_team(&s, "t1", None, &[]);
    let v = s.admin(
        "/user/new",
        json!({
            "user_id": "carol", "user_email": "carol@example.com", "user_role": "internal_user",
            "models": ["A", "B"], "max_budget": 12, "soft_budget": 3, "budget_duration": "7d",
            "tpm_limit": 100, "rpm_limit": 5, "max_parallel_requests": 1,
            "metadata": {"team": "x"}, "password": "correct horse battery", "teams": ["t1"]
        }),
    );
    assert_eq!(v["user_id"], "carol");
    assert_eq!(v["user_email"], "carol@example.com");
    assert_eq!(v["user_role"], "internal_user");
    assert_eq!(v["models"], json!(["A", "B"]));
    assert_eq!(v["max_budget"], 12.0);
    assert_eq!(v["soft_budget"], 3.0);
    assert_eq!(v["spend"], 0.0);
    assert_eq!(v["budget_duration"], "7d");
    assert!(v["budget_reset_at"].is_string());
    assert_eq!(v["tpm_limit"], 100);
    assert_eq!(v["rpm_limit"], 5);
    assert_eq!(v["max_parallel_requests"], 1);
    assert_eq!(v["metadata"], json!({"team": "x"}));
    assert_eq!(v["teams"], json!(["t1"]));
    let key = v["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-") && key.len() >= 35, "{key}");
    assert_eq!(v["key_name"], litegate::auth::key_name(&key));
    let text = v.to_string();
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "{text}"
    );
    assert!(!text.contains("correct horse"), "{text}");

    // Stored: the token (sha256 hex), the argon2id hash, the membership.
    let token = litegate::auth::hash_key(&key);
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM api_keys WHERE token = '{token}' AND user_id = 'carol' AND team_id IS NULL AND models = '[]'"
        )),
        1
    );
    let hash: String = s.value("SELECT password_hash FROM users WHERE id = 'carol'", []);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(litegate::auth::verify_password(
        "correct horse battery",
        &hash
    ));
    assert_eq!(
        s.count("SELECT count(*) FROM team_members WHERE team_id = 't1' AND user_id = 'carol' AND role = 'user'"),
        1
    );

    // The key works: /user/info without user_id answers for its owner.
    let r = s.get("/user/info", &key);
    assert_eq!(r.status, 200, "{}", r.text());
    let info = r.json();
    assert_eq!(info["user_id"], "carol");
    assert_eq!(info["user_info"]["user_email"], "carol@example.com");
    assert_eq!(info["keys"][0]["token"], token);
    assert_eq!(info["teams"][0]["team_id"], "t1");
    assert!(!r.text().contains(&key));
    assert!(!r.text().contains("argon2"));

    // Neither the raw key nor the password is anywhere in the database files.
    let bytes = db_bytes(&s);
    assert!(
        contains(&bytes, &token),
        "token not found: wrong files read"
    );
    assert!(!contains(&bytes, &key), "raw key stored");
    assert!(
        !contains(&bytes, "correct horse battery"),
        "password stored"
    );
}

#[test]
fn user_new_defaults_and_no_auto_key() {
    let s = Server::start();
    let v = s.admin("/user/new", json!({}));
    let id = v["user_id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(v["user_role"], "internal_user");
    assert_eq!(v["user_email"], Value::Null);
    assert!(v["key"].is_string());
    assert_eq!(
        s.count(&format!(
            "SELECT count(*) FROM api_keys WHERE user_id = '{id}'"
        )),
        1
    );
    let v = s.admin(
        "/user/new",
        json!({"user_id": "nokey", "auto_create_key": false}),
    );
    assert!(v.get("key").is_none(), "{v}");
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys WHERE user_id = 'nokey'"),
        0
    );
}

#[test]
fn user_new_refusals_change_nothing() {
    let w = World::new()
        .teams(&[("t1", None, &[])])
        .internal_users(&["bob", "ins"])
        .users(&[("iv", "internal_user_viewer"), ("pv", "proxy_admin_viewer")]);
    let new = |who, body, status| Case::post(who, "/user/new", body, status);
    let bad = |body, param| new(AS_MASTER, body, 400).param(param);
    let evil = json!({"user_id": "evil", "user_role": "proxy_admin"});
    #[rustfmt::skip]
    run_cases(&w, &[
        // An existing user_id is updated (an upsert, API.md §9), but not onto another's email.
        new(AS_MASTER, json!({"user_id": "ins", "user_email": "bob@example.com"}), 409),
        // Emails are unique case-insensitively.
        new(AS_MASTER, json!({"user_id": "bob2", "user_email": "BOB@example.com"}), 409),
        bad(json!({"user_role": "god"}), "user_role"),
        bad(json!({"user_role": "org_admin"}), "user_role"),
        bad(json!({"teams": ["t1", "ghost"]}), "teams"),
        bad(json!({"teams": "t1"}), "teams"),
        bad(json!({"max_budget": -1}), "max_budget"),
        bad(json!({"models": [1]}), "models"),
        bad(json!({"models": ["all-team-models"]}), "models"),
        bad(json!({"tpm_limit": "x"}), "tpm_limit"),
        bad(json!({"budget_duration": "1x"}), "budget_duration"),
        bad(json!({"auto_create_key": "no"}), "auto_create_key"),
        bad(json!({"user_id": ""}), "user_id"),
        // Only proxy admins create users; nobody creates an admin for themselves.
        new("ins", evil.clone(), 403), new("iv", evil.clone(), 403), new("pv", evil.clone(), 403),
        new(ANON, json!({}), 401),
    ]);
    let before = snapshot(&w);
    for raw in [
        &b"{nope"[..],
        b"{\"max_budget\": NaN}",
        b"{\"max_budget\": 1e999}",
        b"[]",
    ] {
        let r = w.request("POST", "/user/new", Some(MASTER), Some(raw), &[]);
        assert_error(&r, 400);
    }
    assert_eq!(snapshot(&w), before);
    assert_eq!(w.count("SELECT count(*) FROM users WHERE id = 'evil'"), 0);
}

#[test]
fn user_info_visibility() {
    let w = World::new()
        .internal_users(&["bob", "eve"])
        .users(&[("pv", "proxy_admin_viewer"), ("iv", "internal_user_viewer")])
        .teams(&[("t1", None, &["A"])])
        .team_members(&[("t1", "bob", "admin")])
        .team_keys(&[("team_key", "t1", "bob")]);
    let info = |who, path: &str, status| Case::get(who, path, status);
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        info(AS_MASTER, "/user/info?user_id=bob", 200),
        info("bob", "/user/info?user_id=bob", 200),
        info("pv", "/user/info?user_id=bob", 200),
        info("eve", "/user/info?user_id=bob", 404),
        info("iv", "/user/info?user_id=bob", 404),
        info("iv", "/user/info", 200),
        info(AS_MASTER, "/user/info?user_id=ghost", 404),
        info(ANON, "/user/info", 401),
    ]);
    for v in &v[..3] {
        assert_eq!(v["user_id"], "bob");
        assert_eq!(v["user_info"]["user_role"], "internal_user");
        assert_eq!(v["user_info"]["teams"], json!(["t1"]));
        assert_eq!(v["keys"].as_array().unwrap().len(), 2);
        assert_eq!(v["teams"][0]["team_id"], "t1");
        assert_eq!(v["teams"][0]["models"], json!(["A"]));
        let text = v.to_string();
        assert!(!text.contains(&w["bob"]) && !text.contains(&w["team_key"]));
        assert!(v["user_info"].get("password_hash").is_none());
    }
    assert_eq!(v[5]["user_id"], "iv");
}

#[test]
fn user_update_by_admin_and_by_self() {
    let w = World::new()
        .internal_users(&["bob", "eve"])
        .users(&[("pv", "proxy_admin_viewer"), ("iv", "internal_user_viewer")]);
    // The proxy admin changes anything.
    let v = w.expect(
        AS_MASTER,
        "/user/update",
        json!({"user_id": "eve", "user_role": "proxy_admin_viewer", "models": ["A"],
               "max_budget": 3, "rpm_limit": 2, "budget_duration": "1d",
               "metadata": {"a": 1}}),
        200,
    );
    assert_eq!(v["user_role"], "proxy_admin_viewer");
    assert_eq!(v["models"], json!(["A"]));
    assert_eq!(v["max_budget"], 3.0);
    assert_eq!(v["rpm_limit"], 2);
    assert_eq!(role_of(&w, "eve"), "proxy_admin_viewer");
    // Named by email (case-insensitive) when no user_id is given.
    let v = w.expect(
        AS_MASTER,
        "/user/update",
        json!({"user_email": "EVE@example.com", "user_role": "internal_user"}),
        200,
    );
    assert_eq!(v["user_id"], "eve");
    assert_eq!(role_of(&w, "eve"), "internal_user");

    // A user changes their own password and metadata; a password change proves the current
    // one and the email is the proxy admin's to change (issue 11:
    // tests/it/authority_views.rs), so a proxy admin sets the first password and the email.
    w.expect(
        AS_MASTER,
        "/user/update",
        json!({"user_id": "bob", "password": "first-pass", "user_email": "robert@example.com"}),
        200,
    );
    let v = w.expect(
        "bob",
        "/user/update",
        json!({"user_id": "bob", "user_email": "robert@example.com", "metadata": {"x": 1},
               "password": "s3cret-pass", "current_password": "first-pass"}),
        200,
    );
    assert_eq!(v["user_email"], "robert@example.com");
    assert_eq!(v["metadata"], json!({"x": 1}));
    assert!(!v.to_string().contains("s3cret") && !v.to_string().contains("argon2"));
    let hash: String = w.value("SELECT password_hash FROM users WHERE id = 'bob'", []);
    assert!(litegate::auth::verify_password("s3cret-pass", &hash));

    // ... but never their role (not even the same one), models, budgets or limits.
    for body in [
        json!({"user_id": "bob", "user_role": "proxy_admin"}),
        json!({"user_id": "bob", "user_role": "internal_user"}),
        json!({"user_id": "bob", "models": []}),
        json!({"user_id": "bob", "models": ["A", "B", "C"]}),
        json!({"user_id": "bob", "max_budget": 1e9}),
        json!({"user_id": "bob", "tpm_limit": 1}),
        json!({"user_id": "bob", "spend": 0}),
        json!({"user_id": "bob", "metadata": {}, "user_role": "proxy_admin"}),
        json!({"user_email": "robert@example.com", "user_role": "proxy_admin"}),
    ] {
        w.expect("bob", "/user/update", body, 403);
    }
    assert_eq!(role_of(&w, "bob"), "internal_user");
    // Other users are invisible to a user (404); visible but read-only to a viewer (403).
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("bob", "/user/update", json!({"user_id": "eve", "metadata": {}}), 404),
        Case::post("pv", "/user/update", json!({"user_id": "eve", "metadata": {}}), 403),
        Case::post("pv", "/user/update", json!({"user_id": "pv", "user_role": "proxy_admin"}), 403),
        // A viewer never writes, not even to themselves.
        Case::post("iv", "/user/update", json!({"user_id": "iv", "metadata": {"a": 1}}), 403),
    ]);
    assert_eq!(role_of(&w, "pv"), "proxy_admin_viewer");
    // Conflicts and bad input.
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/user/update", json!({"user_id": "eve", "user_email": "ROBERT@example.com"}), 409),
        Case::post(AS_MASTER, "/user/update", json!({"user_id": "eve", "user_role": "root"}), 400).param("user_role"),
        Case::post(AS_MASTER, "/user/update", json!({"user_id": "eve", "max_budget": -2}), 400).param("max_budget"),
        Case::post(AS_MASTER, "/user/update", json!({"metadata": {}}), 400).param("user_id"),
        Case::post(AS_MASTER, "/user/update", json!({"user_id": "ghost", "metadata": {}}), 404),
    ]);
    let r = w.request("POST", "/user/update", None, Some(b"{}"), &[]);
    assert_error(&r, 401);
}

#[test]
fn user_delete_takes_keys_and_memberships_in_one_transaction() {
    let w = World::new()
        .internal_users(&["bob", "eve"])
        .users(&[("pv", "proxy_admin_viewer")]);
    seed_org(&w, "o", &[]);
    seed_team(&w, "t1", Some("o"), &[]);
    seed_team_member(&w, "t1", "eve", "admin");
    seed_org_member(&w, "o", "eve", "internal_user");
    seed_team_key(&w, "t1", "eve", Some("o"));
    // Unknown id among known: 404, nothing deleted.
    let e = w.expect(
        AS_MASTER,
        "/user/delete",
        json!({"user_ids": ["eve", "ghost"]}),
        404,
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("ghost"));
    for k in [&w["bob"], &w["pv"]] {
        expect(&w, k, "/user/delete", json!({"user_ids": ["eve"]}), 403);
    }
    w.expect("bob", "/user/delete", json!({"user_ids": ["bob"]}), 403);
    let v = w.expect(AS_MASTER, "/user/delete", json!({"user_ids": ["eve"]}), 200);
    assert_eq!(v["deleted_users"], json!(["eve"]));
    assert_eq!(w.count("SELECT count(*) FROM users WHERE id = 'eve'"), 0);
    assert_eq!(
        w.count("SELECT count(*) FROM api_keys WHERE user_id = 'eve'"),
        0
    );
    assert_eq!(
        w.count("SELECT count(*) FROM team_members WHERE user_id = 'eve'"),
        0
    );
    assert_eq!(
        w.count("SELECT count(*) FROM organization_members WHERE user_id = 'eve'"),
        0
    );
    assert_eq!(w.count("SELECT count(*) FROM teams WHERE id = 't1'"), 1);
    assert_eq!(w.count("SELECT count(*) FROM users WHERE id = 'bob'"), 1);
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/user/delete", json!({}), 400),
        Case::post(AS_MASTER, "/user/delete", json!({"user_ids": [1]}), 400),
    ]);
}

#[test]
fn user_list_pages_and_filters() {
    let s = Server::start();
    let bob = seed_user(&s, "bob", "internal_user");
    let pv = seed_user(&s, "pv", "proxy_admin_viewer");
    let iv = seed_user(&s, "iv", "internal_user_viewer");
    s.admin(
        "/user/new",
        json!({"user_id": "u0", "password": "pw-0123456", "auto_create_key": false}),
    );
    for i in 1..5 {
        s.admin(
            "/user/new",
            json!({"user_id": format!("u{i}"), "auto_create_key": false}),
        );
    }
    let r = s.get("/user/list?page=1&page_size=3", MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["total"], 8);
    assert_eq!(v["page"], 1);
    assert_eq!(v["page_size"], 3);
    assert_eq!(v["total_pages"], 3);
    assert_eq!(v["users"].as_array().unwrap().len(), 3);
    assert!(!r.text().contains("argon2") && !r.text().contains("password"));
    let v = s.get("/user/list?page=3&page_size=3", &pv).json();
    assert_eq!(v["users"].as_array().unwrap().len(), 2);
    let v = s.get("/user/list", MASTER).json();
    assert_eq!(v["page"], 1);
    assert_eq!(v["page_size"], 25);
    assert_eq!(v["users"].as_array().unwrap().len(), 8);
    let v = s.get("/user/list?role=proxy_admin_viewer", MASTER).json();
    assert_eq!(v["total"], 1);
    assert_eq!(v["users"][0]["user_id"], "pv");
    let v = s.get("/user/list?user_ids=u1,u3,ghost", MASTER).json();
    assert_eq!(v["total"], 2);
    let got = fields_of(&v["users"], "user_id");
    assert_eq!(got, vec!["u1", "u3"]);
    for q in [
        "page=0",
        "page_size=0",
        "page_size=1000",
        "page=x",
        "role=god",
    ] {
        let e = assert_error(&s.get(&format!("/user/list?{q}"), MASTER), 400);
        let param = q.split('=').next().unwrap();
        assert_eq!(e["error"]["param"], param, "{q}");
    }
    for k in [&bob, &iv] {
        assert_error(&s.get("/user/list", k), 403);
    }
    assert_error(&s.anon("GET", "/user/list"), 401);
}
