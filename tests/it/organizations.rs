//! The organization API (API.md §6 Organizations, roles §5, decisions §8): every endpoint,
//! success and failure, the role matrix, the delete cascade and bad input. Each test asserts the
//! status, the body and the database effect; a refused call must leave the database unchanged.

use crate::common::*;
use serde_json::{json, Value};

fn new_org(s: &Server, alias: &str) -> String {
    let v = s.admin("/organization/new", json!({"organization_alias": alias}));
    v["organization_id"].as_str().unwrap().to_string()
}

/// Test setup only: a key with the given team/org/user; returns the raw key.
fn seed_key(
    s: &Server,
    tag: &str,
    team_id: Option<&str>,
    org_id: Option<&str>,
    user_id: Option<&str>,
) -> String {
    let key = format!("sk-seeded-{tag}-{}", "y".repeat(16));
    s.db()
        .execute(
            "INSERT INTO api_keys (token, key_name, team_id, organization_id, user_id,
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, '2026-01-01T00:00:00.000Z',
             '2026-01-01T00:00:00.000Z')",
            rusqlite::params![
                litegate::auth::hash_key(&key),
                litegate::auth::key_name(&key),
                team_id,
                org_id,
                user_id
            ],
        )
        .unwrap();
    key
}

fn assert_param(r: &Resp, status: u16, param: &str) {
    let v = assert_error(r, status);
    assert_eq!(v["error"]["param"], param, "{v}");
}

/// Two organizations and a caller for every row of the role matrix: `X` [A, B] with
/// max_budget 10 and `Y`, made through the API (`w.id("X")`); `pa` a global proxy_admin (a
/// user's key, not the master key), `pav` a proxy_admin_viewer; `oax`/`oay` org_admin of X / of
/// Y (global internal_user); `iux` a member of X with org role internal_user; `iu` an
/// internal_user with no membership; `iuvx` a global internal_user_viewer holding org_admin in
/// X: a viewer never writes.
fn world() -> World {
    let s = Server::start();
    let x = s.admin(
        "/organization/new",
        json!({"organization_alias": "X", "models": ["A", "B"], "max_budget": 10}),
    )["organization_id"]
        .as_str()
        .unwrap()
        .to_string();
    let y = new_org(&s, "Y");
    let mut w = World::on(s)
        .users(&[
            ("pa", "proxy_admin"),
            ("pav", "proxy_admin_viewer"),
            ("oax", "internal_user"),
        ])
        .org_members(&[(&x, "oax", "org_admin")])
        .users(&[("oay", "internal_user")])
        .org_members(&[(&y, "oay", "org_admin")])
        .users(&[("iux", "internal_user")])
        .org_members(&[(&x, "iux", "internal_user")])
        .users(&[("iu", "internal_user"), ("iuvx", "internal_user_viewer")])
        .org_members(&[(&x, "iuvx", "org_admin")]);
    w.name_id("X", &x);
    w.name_id("Y", &y);
    w
}

// ---------------------------------------------------------------------------------------------
// /organization/new

#[test]
fn new_litellm_doc_example_with_budget_fields() {
    let s = Server::start();
    let v = s.admin(
        "/organization/new",
        json!({"organization_alias": "my-secret-org", "models": ["model1", "model2"],
               "max_budget": 100}),
    );
    let id = v["organization_id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "uuid expected: {v}");
    assert_eq!(v["organization_alias"], "my-secret-org");
    assert_eq!(v["models"], json!(["model1", "model2"]));
    assert_eq!(v["spend"], 0.0);
    assert_eq!(v["members"], json!([]));
    assert_eq!(v["teams"], json!([]));
    assert_eq!(v["metadata"], json!({}));
    assert_eq!(v["created_by"], "default_user_id");
    assert_eq!(v["updated_by"], "default_user_id");
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    let bid = v["budget_id"].as_str().unwrap();
    assert_eq!(v["litellm_budget_table"]["budget_id"], bid);
    assert_eq!(v["litellm_budget_table"]["max_budget"], 100.0);
    assert!(v["litellm_budget_table"]["tpm_limit"].is_null());
    // Database: one org pointing at one budget row with max_budget 100.
    let (alias, models, b): (String, String, String) = s
        .db()
        .query_row(
            "SELECT alias, models, budget_id FROM organizations WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((alias.as_str(), b.as_str()), ("my-secret-org", bid));
    assert_eq!(
        serde_json::from_str::<Value>(&models).unwrap(),
        json!(["model1", "model2"])
    );
    let mb: f64 = s
        .db()
        .query_row("SELECT max_budget FROM budgets WHERE id = ?1", [bid], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(mb, 100.0);
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 1);
}

#[test]
fn new_litellm_doc_example_with_budget_id() {
    let s = Server::start();
    let b = s.admin("/budget/new", json!({"max_budget": 50, "rpm_limit": 7}));
    let bid = b["budget_id"].as_str().unwrap().to_string();
    let v = s.admin(
        "/organization/new",
        json!({"organization_alias": "my-secret-org", "budget_id": bid}),
    );
    assert_eq!(v["budget_id"], bid.as_str());
    assert_eq!(v["litellm_budget_table"]["max_budget"], 50.0);
    assert_eq!(v["litellm_budget_table"]["rpm_limit"], 7);
    // The existing budget is used: no second budget row.
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 1);
    let id = v["organization_id"].as_str().unwrap();
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM organizations WHERE id = ?1 AND budget_id = ?2",
            &[id, &bid]
        ),
        1
    );
}

#[test]
fn new_with_all_budget_fields_metadata_and_explicit_id() {
    let s = Server::start();
    let v = s.admin(
        "/organization/new",
        json!({"organization_alias": "full", "organization_id": "org-full",
               "soft_budget": 5.5, "max_budget": 9, "tpm_limit": 1000, "rpm_limit": 10,
               "max_parallel_requests": 3, "budget_duration": "30d",
               "model_max_budget": {"A": 1.5}, "metadata": {"team": "x", "n": 1},
               "models": ["A", "grp-ab", "openai/*", "all-proxy-models"]}),
    );
    assert_eq!(v["organization_id"], "org-full");
    assert_eq!(v["metadata"], json!({"team": "x", "n": 1}));
    let bt = &v["litellm_budget_table"];
    assert_eq!(bt["soft_budget"], 5.5);
    assert_eq!(bt["tpm_limit"], 1000);
    assert_eq!(bt["rpm_limit"], 10);
    assert_eq!(bt["max_parallel_requests"], 3);
    assert_eq!(bt["budget_duration"], "30d");
    assert_eq!(bt["model_max_budget"], json!({"A": 1.5}));
    let reset = litegate::util::ms_from_iso(bt["budget_reset_at"].as_str().unwrap()).unwrap();
    let want = litegate::util::now_ms() + 30 * 86_400_000;
    assert!((reset - want).abs() < 120_000, "reset {reset} want {want}");
    // Duplicate id: 409, and the second budget row is rolled back with it.
    let before = snapshot(&s);
    let r = s.post(
        "/organization/new",
        MASTER,
        json!({"organization_alias": "again", "organization_id": "org-full", "max_budget": 1}),
    );
    assert_error(&r, 409);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn new_bad_input_is_400_naming_the_field_and_changes_nothing() {
    let s = Server::start();
    let before = snapshot(&s);
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "organization_alias"),
        (json!({"organization_alias": ""}), "organization_alias"),
        (json!({"organization_alias": 5}), "organization_alias"),
        (json!({"organization_alias": "o", "models": "A"}), "models"),
        (json!({"organization_alias": "o", "models": [1]}), "models"),
        (
            json!({"organization_alias": "o", "models": ["all-team-models"]}),
            "models",
        ),
        (
            json!({"organization_alias": "o", "models": ["A", "all-org-models"]}),
            "models",
        ),
        (
            json!({"organization_alias": "o", "max_budget": -1}),
            "max_budget",
        ),
        (
            json!({"organization_alias": "o", "max_budget": "100"}),
            "max_budget",
        ),
        (
            json!({"organization_alias": "o", "soft_budget": -0.5}),
            "soft_budget",
        ),
        (
            json!({"organization_alias": "o", "tpm_limit": -5}),
            "tpm_limit",
        ),
        (
            json!({"organization_alias": "o", "rpm_limit": 1.5}),
            "rpm_limit",
        ),
        (
            json!({"organization_alias": "o", "max_parallel_requests": "3"}),
            "max_parallel_requests",
        ),
        (
            json!({"organization_alias": "o", "budget_duration": "forever"}),
            "budget_duration",
        ),
        (
            json!({"organization_alias": "o", "model_max_budget": {"A": -1}}),
            "model_max_budget",
        ),
        (
            json!({"organization_alias": "o", "model_max_budget": [1]}),
            "model_max_budget",
        ),
        (
            json!({"organization_alias": "o", "metadata": "x"}),
            "metadata",
        ),
        (
            json!({"organization_alias": "o", "budget_id": "no-such-budget"}),
            "budget_id",
        ),
        (
            json!({"organization_alias": "o", "budget_id": 5}),
            "budget_id",
        ),
        (
            json!({"organization_alias": "o", "organization_id": ""}),
            "organization_id",
        ),
    ];
    for (body, param) in cases {
        let r = s.post("/organization/new", MASTER, body.clone());
        let v = assert_error(&r, 400);
        assert_eq!(v["error"]["param"], param, "{body} -> {v}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    // budget_id together with budget fields is ambiguous: 400 naming the budget field.
    let b = s.admin("/budget/new", json!({}));
    let with_budget = snapshot(&s);
    let r = s.post(
        "/organization/new",
        MASTER,
        json!({"organization_alias": "o", "budget_id": b["budget_id"], "max_budget": 3}),
    );
    assert_param(&r, 400, "max_budget");
    assert_eq!(snapshot(&s), with_budget);
    s.db().execute("DELETE FROM budgets", []).unwrap();
    // Numbers JSON cannot hold as f64 (1e400) and non-JSON: 400 either way.
    for raw in [
        &br#"{"organization_alias": "o", "max_budget": 1e400}"#[..],
        &br#"{"organization_alias": "o", "max_budget": NaN}"#[..],
        &br#"{"organization_alias": "o", "max_budget": -Infinity}"#[..],
        &b"{\"organization_alias\": "[..],
        &b"not json"[..],
    ] {
        let r = s.request("POST", "/organization/new", Some(MASTER), Some(raw), &[]);
        assert_error(&r, 400);
    }
    assert_eq!(snapshot(&s), before);
}

#[test]
fn new_models_must_fit_the_callers_models() {
    let s = Server::start();
    // A proxy admin whose own key may only call A: orgs they create may only hold A.
    let pa = seed_user(&s, "pa", "proxy_admin");
    s.db()
        .execute(
            "UPDATE api_keys SET models = '[\"A\"]' WHERE user_id = 'pa'",
            [],
        )
        .unwrap();
    let r = s.post(
        "/organization/new",
        &pa,
        json!({"organization_alias": "ok", "models": ["A"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let before = snapshot(&s);
    for models in [
        json!(["B"]),
        json!(["A", "grp-ab"]),
        json!(["all-proxy-models"]),
    ] {
        let r = s.post(
            "/organization/new",
            &pa,
            json!({"organization_alias": "wide", "models": models}),
        );
        let v = assert_error(&r, 400);
        assert_eq!(v["error"]["param"], "models");
        assert!(v["error"]["message"].as_str().unwrap().contains('"'), "{v}");
    }
    assert_eq!(snapshot(&s), before);
    assert_eq!(s.count("SELECT count(*) FROM organizations"), 1);
}

#[test]
fn new_role_matrix() {
    let w = world();
    let body = json!({"organization_alias": "Z", "max_budget": 1});
    let new = |who, status| Case::post(who, "/organization/new", body.clone(), status);
    // pav: proxy_admin_viewer; oax/oay: org_admin of X/Y; iux: internal_user member; iu:
    // internal_user; iuvx: internal_user_viewer.
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        new("pav", 403), new("oax", 403), new("oay", 403), new("iux", 403), new("iu", 403),
        new("iuvx", 403),
        new(ANON, 401),
        new("pa", 200),
    ]);
    assert_eq!(v[7]["created_by"], "pa");
    assert_eq!(w.count("SELECT count(*) FROM organizations"), 3);
}

// ---------------------------------------------------------------------------------------------
// /organization/info and /organization/list

#[test]
fn info_shows_members_teams_and_budget() {
    let s = Server::start();
    let x = new_org(&s, "X");
    seed_team(&s, "team-x", Some(&x), &["A"]);
    seed_user(&s, "alice", "internal_user");
    seed_org_member(&s, &x, "alice", "org_admin");
    let r = s.get(&format!("/organization/info?organization_id={x}"), MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["organization_id"], x.as_str());
    assert_eq!(v["organization_alias"], "X");
    assert_eq!(v["teams"][0]["team_id"], "team-x");
    assert_eq!(v["teams"][0]["team_alias"], "team-x");
    assert_eq!(v["teams"][0]["models"], json!(["A"]));
    assert_eq!(v["members"][0]["user_id"], "alice");
    assert_eq!(v["members"][0]["user_role"], "org_admin");
    assert_eq!(v["members"][0]["organization_id"], x.as_str());
    assert!(v["litellm_budget_table"].is_object());
    for f in [
        "organization_id",
        "organization_alias",
        "models",
        "spend",
        "budget_id",
        "litellm_budget_table",
        "metadata",
        "members",
        "teams",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
    ] {
        assert!(v.get(f).is_some(), "missing {f}: {v}");
    }
}

#[test]
fn info_visibility_and_errors() {
    let w = world();
    let s = &w.s;
    let path = format!("/organization/info?organization_id={}", w.id("X"));
    for (who, key) in [
        ("master", MASTER),
        ("proxy_admin", &w["pa"]),
        ("proxy_admin_viewer", &w["pav"]),
        ("org_admin of X", &w["oax"]),
        ("internal_user member of X", &w["iux"]),
        ("viewer member of X", &w["iuvx"]),
    ] {
        let r = s.get(&path, key);
        assert_eq!(r.status, 200, "{who}: {}", r.text());
        assert_eq!(r.json()["organization_id"], w.id("X"));
    }
    // Invisible looks missing: 404, not 403.
    for (who, key) in [("org_admin of Y", &w["oay"]), ("non-member", &w["iu"])] {
        let r = s.get(&path, key);
        assert_eq!(r.status, 404, "{who}: {}", r.text());
        assert_error(&r, 404);
    }
    assert_error(&s.request("GET", &path, None, None, &[]), 401);
    assert_error(
        &s.get("/organization/info?organization_id=nope", MASTER),
        404,
    );
    assert_param(&s.get("/organization/info", MASTER), 400, "organization_id");
    assert_param(
        &s.get("/organization/info?organization_id=", MASTER),
        400,
        "organization_id",
    );
}

#[test]
fn info_deprecated_post_form() {
    let w = world();
    let s = &w.s;
    let r = s.post(
        "/organization/info",
        MASTER,
        json!({"organizations": [w.id("X"), w.id("Y")]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["organization_id"], w.id("X"));
    assert_eq!(v[1]["organization_id"], w.id("Y"));
    assert_error(
        &s.post(
            "/organization/info",
            MASTER,
            json!({"organizations": [w.id("X"), "nope"]}),
        ),
        404,
    );
    // A member of X only: X alone is fine, X and Y is 404 (Y is invisible to them).
    let r = s.post(
        "/organization/info",
        &w["iux"],
        json!({"organizations": [w.id("X")]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_error(
        &s.post(
            "/organization/info",
            &w["iux"],
            json!({"organizations": [w.id("X"), w.id("Y")]}),
        ),
        404,
    );
    assert_param(
        &s.post("/organization/info", MASTER, json!({"organizations": []})),
        400,
        "organizations",
    );
    assert_param(
        &s.post("/organization/info", MASTER, json!({"organizations": "x"})),
        400,
        "organizations",
    );
}

#[test]
fn list_admins_see_all_others_their_memberships() {
    let w = world();
    let s = &w.s;
    let ids = |key: &str| -> Vec<String> {
        let r = s.get("/organization/list", key);
        assert_eq!(r.status, 200, "{}", r.text());
        let mut v: Vec<String> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["organization_id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let mut both = vec![w.id("X").to_string(), w.id("Y").to_string()];
    both.sort();
    assert_eq!(ids(MASTER), both);
    assert_eq!(ids(&w["pa"]), both);
    assert_eq!(ids(&w["pav"]), both);
    assert_eq!(ids(&w["oax"]), vec![w.id("X").to_string()]);
    assert_eq!(ids(&w["oay"]), vec![w.id("Y").to_string()]);
    assert_eq!(ids(&w["iux"]), vec![w.id("X").to_string()]);
    assert_eq!(ids(&w["iuvx"]), vec![w.id("X").to_string()]);
    assert!(ids(&w["iu"]).is_empty());
    // A user in both orgs sees both.
    seed_org_member(s, w.id("Y"), "iux", "internal_user_viewer");
    assert_eq!(ids(&w["iux"]), both);
    assert_error(
        &s.request("GET", "/organization/list", None, None, &[]),
        401,
    );
    // List entries have the full org shape.
    let r = s.get("/organization/list", MASTER).json();
    let x = r
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["organization_id"] == w.id("X"))
        .unwrap()
        .clone();
    assert_eq!(x["models"], json!(["A", "B"]));
    assert_eq!(x["litellm_budget_table"]["max_budget"], 10.0);
    assert_eq!(x["members"].as_array().unwrap().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// /organization/update

#[test]
fn update_by_proxy_admin_changes_everything() {
    let s = Server::start();
    let v = s.admin(
        "/organization/new",
        json!({"organization_alias": "X", "models": ["A"], "max_budget": 10}),
    );
    let x = v["organization_id"].as_str().unwrap().to_string();
    let bid = v["budget_id"].as_str().unwrap().to_string();
    let pa = seed_user(&s, "pa", "proxy_admin");
    let r = s.send(
        "PATCH",
        "/organization/update",
        &pa,
        json!({"organization_id": x, "organization_alias": "X2", "models": ["A", "B"],
               "max_budget": 20, "budget_duration": "7d", "metadata": {"k": "v"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["organization_alias"], "X2");
    assert_eq!(v["models"], json!(["A", "B"]));
    assert_eq!(v["metadata"], json!({"k": "v"}));
    assert_eq!(v["updated_by"], "pa");
    assert_eq!(v["created_by"], "default_user_id");
    // The org's own budget row is updated in place.
    assert_eq!(v["budget_id"], bid.as_str());
    assert_eq!(v["litellm_budget_table"]["max_budget"], 20.0);
    assert_eq!(v["litellm_budget_table"]["budget_duration"], "7d");
    assert!(v["litellm_budget_table"]["budget_reset_at"].is_string());
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 1);
    let (alias, models, meta, by): (String, String, String, String) = s
        .db()
        .query_row(
            "SELECT alias, models, metadata, updated_by FROM organizations WHERE id = ?1",
            [&x],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((alias.as_str(), by.as_str()), ("X2", "pa"));
    assert_eq!(
        serde_json::from_str::<Value>(&models).unwrap(),
        json!(["A", "B"])
    );
    assert_eq!(
        serde_json::from_str::<Value>(&meta).unwrap(),
        json!({"k": "v"})
    );
    // POST works too; shrinking models is allowed; a field not sent stays.
    let r = s.post(
        "/organization/update",
        MASTER,
        json!({"organization_id": x, "models": ["B"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["models"], json!(["B"]));
    assert_eq!(r.json()["organization_alias"], "X2");
    assert_eq!(r.json()["litellm_budget_table"]["max_budget"], 20.0);
    // Explicit null clears a budget field.
    let r = s.post(
        "/organization/update",
        MASTER,
        json!({"organization_id": x, "max_budget": null}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["litellm_budget_table"]["max_budget"].is_null());
}

#[test]
fn update_bad_input_and_unknown_org() {
    let s = Server::start();
    let x = new_org(&s, "X");
    let before = snapshot(&s);
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"organization_alias": "n"}), 400, "organization_id"),
        (json!({"organization_id": 7}), 400, "organization_id"),
        (
            json!({"organization_id": x, "organization_alias": ""}),
            400,
            "organization_alias",
        ),
        (
            json!({"organization_id": x, "models": ["all-org-models"]}),
            400,
            "models",
        ),
        (json!({"organization_id": x, "models": "A"}), 400, "models"),
        (
            json!({"organization_id": x, "max_budget": -1}),
            400,
            "max_budget",
        ),
        (
            json!({"organization_id": x, "max_budget": "1"}),
            400,
            "max_budget",
        ),
        (
            json!({"organization_id": x, "budget_duration": "1y"}),
            400,
            "budget_duration",
        ),
        (
            json!({"organization_id": x, "metadata": [1]}),
            400,
            "metadata",
        ),
        (
            json!({"organization_id": x, "budget_id": "nope"}),
            400,
            "budget_id",
        ),
    ];
    for (body, status, param) in cases {
        let r = s.send("PATCH", "/organization/update", MASTER, body.clone());
        let v = assert_error(&r, status);
        assert_eq!(v["error"]["param"], param, "{body} -> {v}");
    }
    let r = s.send(
        "PATCH",
        "/organization/update",
        MASTER,
        json!({"organization_id": "nope", "organization_alias": "n"}),
    );
    assert_error(&r, 404);
    let r = s.request(
        "PATCH",
        "/organization/update",
        Some(MASTER),
        Some(br#"{"organization_id": "x", "max_budget": 1e400}"#),
        &[],
    );
    assert_error(&r, 400);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn update_role_matrix() {
    let w = world();
    let s = &w.s;
    let up = |who, body: Value, status| {
        let mut b = body;
        b["organization_id"] = json!(w.id("X"));
        Case::new(who, "PATCH", "/organization/update", b, status)
    };
    let alias = json!({"organization_alias": "n"});
    // Denied callers: nothing changes. An org admin may not touch models or budget (API.md §8);
    // a viewer (pav, or iuvx holding org_admin) never writes; oay and iu do not see X.
    #[rustfmt::skip]
    run_cases(&w, &[
        up("oax", json!({"models": ["A"]}), 403),
        up("oax", json!({"max_budget": 1000}), 403),
        up("oax", json!({"max_budget": null}), 403),
        up("oax", json!({"organization_alias": "n", "tpm_limit": 5}), 403),
        up("oax", json!({"budget_id": "b"}), 403),
        up("oay", alias.clone(), 404),
        up("iux", alias.clone(), 403),
        up("iu", alias.clone(), 404),
        up("pav", alias.clone(), 403),
        up("iuvx", alias.clone(), 403),
        up(ANON, alias.clone(), 401),
    ]);
    // The org admin may change alias and metadata; a proxy admin (user key) may change models.
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        up("oax", json!({"organization_alias": "renamed", "metadata": {"a": 1}}), 200),
        up("pa", json!({"models": ["A"]}), 200),
    ]);
    assert_eq!(v[0]["organization_alias"], "renamed");
    assert_eq!(v[0]["updated_by"], "oax");
    assert_eq!(v[0]["models"], json!(["A", "B"]));
    assert_eq!(v[1]["models"], json!(["A"]));
    assert_eq!(
        count_p(
            s,
            "SELECT count(*) FROM organizations WHERE id = ?1 AND alias = 'renamed'
             AND metadata = '{\"a\":1}'",
            &[w.id("X")]
        ),
        1
    );
}

#[test]
fn update_budget_creates_a_row_when_the_org_has_none() {
    let s = Server::start();
    let b = s.admin("/budget/new", json!({"max_budget": 5}));
    let bid = b["budget_id"].as_str().unwrap().to_string();
    let v = s.admin(
        "/organization/new",
        json!({"organization_alias": "X", "budget_id": bid}),
    );
    let x = v["organization_id"].as_str().unwrap().to_string();
    // Deleting the budget leaves the org without one (ON DELETE SET NULL).
    s.admin("/budget/delete", json!({"id": bid}));
    let v = s
        .get(&format!("/organization/info?organization_id={x}"), MASTER)
        .json();
    assert!(v["budget_id"].is_null(), "{v}");
    assert!(v["litellm_budget_table"].is_null(), "{v}");
    let v = s.admin(
        "/organization/update",
        json!({"organization_id": x, "rpm_limit": 9}),
    );
    let nb = v["budget_id"].as_str().unwrap();
    assert_ne!(nb, bid);
    assert_eq!(v["litellm_budget_table"]["rpm_limit"], 9);
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM budgets WHERE id = ?1 AND rpm_limit = 9",
            &[nb]
        ),
        1
    );
    // Pointing the org at another existing budget.
    let b2 = s.admin("/budget/new", json!({"max_budget": 77}));
    let v = s.admin(
        "/organization/update",
        json!({"organization_id": x, "budget_id": b2["budget_id"]}),
    );
    assert_eq!(v["litellm_budget_table"]["max_budget"], 77.0);
}

// ---------------------------------------------------------------------------------------------
// /organization/delete

#[test]
fn delete_removes_the_org_and_everything_under_it() {
    let s = Server::start();
    let x = new_org(&s, "X");
    let y = new_org(&s, "Y");
    // X: two teams with members and keys, a key whose own organization is X, memberships with
    // budgets. Y: a team, a key, a member — all of which must survive.
    seed_team(&s, "tx1", Some(&x), &["A"]);
    seed_team(&s, "tx2", Some(&x), &["A"]);
    seed_team(&s, "ty", Some(&y), &["A"]);
    let alice = seed_user(&s, "alice", "internal_user");
    seed_user(&s, "bob", "internal_user");
    seed_team_member(&s, "tx1", "alice", "admin");
    seed_team_member(&s, "ty", "bob", "user");
    s.admin(
        "/organization/member_add",
        json!({"organization_id": x, "member": [{"user_id": "alice"}, {"user_id": "bob"}],
               "max_budget_in_organization": 3}),
    );
    s.admin(
        "/organization/member_add",
        json!({"organization_id": y, "member": {"user_id": "bob"},
               "max_budget_in_organization": 4}),
    );
    let k_tx1 = seed_key(&s, "tx1", Some("tx1"), None, Some("alice"));
    seed_key(&s, "tx2", Some("tx2"), None, None);
    let k_orgx = seed_key(&s, "orgx", None, Some(&x), Some("bob"));
    let k_ty = seed_key(&s, "ty", Some("ty"), None, Some("bob"));
    // Team keys and the org key work before the delete.
    assert_eq!(s.get("/organization/list", &k_tx1).status, 200);
    assert_eq!(s.get("/organization/list", &k_orgx).status, 200);
    let x_budget: String = s
        .db()
        .query_row(
            "SELECT budget_id FROM organizations WHERE id = ?1",
            [&x],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 2 + 3);

    let r = s.send(
        "DELETE",
        "/organization/delete",
        MASTER,
        json!({"organization_ids": [x]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["organization_id"], x.as_str());
    assert_eq!(v[0]["teams"].as_array().unwrap().len(), 2);
    assert_eq!(v[0]["members"].as_array().unwrap().len(), 2);

    let p = &[x.as_str()];
    assert_eq!(
        count_p(&s, "SELECT count(*) FROM organizations WHERE id = ?1", p),
        0
    );
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM teams WHERE organization_id = ?1",
            p
        ),
        0
    );
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM organization_members WHERE organization_id = ?1",
            p
        ),
        0
    );
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM api_keys WHERE organization_id = ?1",
            p
        ),
        0
    );
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys WHERE team_id IN ('tx1', 'tx2')"),
        0
    );
    assert_eq!(
        s.count("SELECT count(*) FROM team_members WHERE team_id IN ('tx1', 'tx2')"),
        0
    );
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM budgets WHERE id = ?1",
            &[&x_budget]
        ),
        0
    );
    // Left: Y's budget and bob's membership budget in Y.
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 2);
    assert_eq!(
        s.count(
            "SELECT count(*) FROM budgets b WHERE EXISTS (SELECT 1 FROM organizations o
                 WHERE o.budget_id = b.id) OR EXISTS (SELECT 1 FROM organization_members m
                 WHERE m.budget_id = b.id)"
        ),
        2
    );
    // Y and everything under it survive; users survive (with their personal keys).
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM organizations WHERE id = ?1",
            &[&y]
        ),
        1
    );
    assert_eq!(s.count("SELECT count(*) FROM teams WHERE id = 'ty'"), 1);
    assert_eq!(
        s.count("SELECT count(*) FROM team_members WHERE team_id = 'ty'"),
        1
    );
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM organization_members WHERE organization_id = ?1",
            &[&y]
        ),
        1
    );
    assert_eq!(
        s.count("SELECT count(*) FROM users WHERE id IN ('alice','bob')"),
        2
    );
    assert_eq!(s.get("/organization/list", &alice).status, 200);
    assert_eq!(s.get("/organization/list", &k_ty).status, 200);
    // The deleted org's keys no longer authenticate.
    assert_error(&s.get("/organization/list", &k_tx1), 401);
    assert_error(&s.get("/organization/list", &k_orgx), 401);
    assert_error(
        &s.get(&format!("/organization/info?organization_id={x}"), MASTER),
        404,
    );
}

#[test]
fn delete_with_one_unknown_id_deletes_nothing() {
    let s = Server::start();
    let a = new_org(&s, "A");
    let b = new_org(&s, "B");
    seed_team(&s, "ta", Some(&a), &["A"]);
    let before = snapshot(&s);
    let r = s.send(
        "DELETE",
        "/organization/delete",
        MASTER,
        json!({"organization_ids": [a, "no-such-org", b]}),
    );
    let v = assert_error(&r, 404);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-org"),
        "{v}"
    );
    assert_eq!(snapshot(&s), before);
    // POST form, several ids, a duplicate id: all deleted once.
    let r = s.post(
        "/organization/delete",
        MASTER,
        json!({"organization_ids": [a, b, a]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert_eq!(s.count("SELECT count(*) FROM organizations"), 0);
    assert_eq!(s.count("SELECT count(*) FROM teams"), 0);
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 0);
}

#[test]
fn delete_keeps_a_budget_another_org_still_uses() {
    let s = Server::start();
    let b = s.admin("/budget/new", json!({"max_budget": 1}));
    let bid = b["budget_id"].as_str().unwrap().to_string();
    let o1 = s.admin(
        "/organization/new",
        json!({"organization_alias": "1", "budget_id": bid}),
    );
    let o2 = s.admin(
        "/organization/new",
        json!({"organization_alias": "2", "budget_id": bid}),
    );
    s.admin(
        "/organization/delete",
        json!({"organization_ids": [o1["organization_id"]]}),
    );
    assert_eq!(
        count_p(&s, "SELECT count(*) FROM budgets WHERE id = ?1", &[&bid]),
        1
    );
    s.admin(
        "/organization/delete",
        json!({"organization_ids": [o2["organization_id"]]}),
    );
    assert_eq!(
        count_p(&s, "SELECT count(*) FROM budgets WHERE id = ?1", &[&bid]),
        0
    );
}

#[test]
fn delete_role_matrix_and_bad_input() {
    let w = world();
    let del =
        |who, body: Value, status| Case::new(who, "DELETE", "/organization/delete", body, status);
    let body = json!({"organization_ids": [w.id("X")]});
    let bad = |body| del(AS_MASTER, body, 400).param("organization_ids");
    #[rustfmt::skip]
    run_cases(&w, &[
        del("pav", body.clone(), 403), del("oax", body.clone(), 403),
        del("oay", body.clone(), 403), del("iux", body.clone(), 403),
        del("iu", body.clone(), 403), del("iuvx", body.clone(), 403),
        del(ANON, body.clone(), 401),
        bad(json!({})),
        bad(json!({"organization_ids": []})),
        bad(json!({"organization_ids": "x"})),
        bad(json!({"organization_ids": [1]})),
        del("pa", body.clone(), 200),
    ]);
    assert_eq!(w.count("SELECT count(*) FROM organizations"), 1);
}

// ---------------------------------------------------------------------------------------------
// Members

#[test]
fn member_add_litellm_examples() {
    let s = Server::start();
    let x = new_org(&s, "X");
    // LiteLLM's documented example: a list, by user_id (an email-looking id), with a budget.
    let v = s.admin(
        "/organization/member_add",
        json!({"organization_id": x,
               "member": [{"role": "internal_user", "user_id": "krrish247652@berri.ai"}],
               "max_budget_in_organization": 100.0}),
    );
    assert_eq!(v["organization_id"], x.as_str());
    assert_eq!(v["updated_users"][0]["user_id"], "krrish247652@berri.ai");
    assert_eq!(v["updated_users"][0]["user_role"], "internal_user");
    let m = &v["updated_organization_memberships"][0];
    assert_eq!(m["user_id"], "krrish247652@berri.ai");
    assert_eq!(m["organization_id"], x.as_str());
    assert_eq!(m["user_role"], "internal_user");
    assert_eq!(m["spend"], 0.0);
    assert_eq!(m["litellm_budget_table"]["max_budget"], 100.0);
    assert_eq!(m["litellm_budget_table"]["budget_id"], m["budget_id"]);
    assert!(m["created_at"].is_string() && m["updated_at"].is_string());
    // Database: the user was created with global role internal_user, the membership has a
    // budget row with max_budget 100.
    assert_eq!(
        s.count(
            "SELECT count(*) FROM users WHERE id = 'krrish247652@berri.ai'
             AND user_role = 'internal_user'"
        ),
        1
    );
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM organization_members m JOIN budgets b ON b.id = m.budget_id
             WHERE m.organization_id = ?1 AND m.user_id = 'krrish247652@berri.ai'
             AND m.user_role = 'internal_user' AND b.max_budget = 100",
            &[&x]
        ),
        1
    );
    // A single member object by user_email: a new user with a fresh id and that email.
    let v = s.admin(
        "/organization/member_add",
        json!({"organization_id": x,
               "member": {"role": "org_admin", "user_email": "new.person@example.com"}}),
    );
    let uid = v["updated_users"][0]["user_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(uid.len(), 36, "{v}");
    assert_eq!(
        v["updated_users"][0]["user_email"],
        "new.person@example.com"
    );
    assert_eq!(
        v["updated_organization_memberships"][0]["user_role"],
        "org_admin"
    );
    assert!(v["updated_organization_memberships"][0]["budget_id"].is_null());
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM users WHERE id = ?1 AND email = 'new.person@example.com'",
            &[&uid]
        ),
        1
    );
    // By email of an existing user, case-insensitively: no new user; default role.
    seed_user(&s, "alice", "proxy_admin_viewer");
    let users = s.count("SELECT count(*) FROM users");
    let v = s.admin(
        "/organization/member_add",
        json!({"organization_id": x, "member": {"user_email": "ALICE@Example.com"}}),
    );
    assert_eq!(v["updated_users"][0]["user_id"], "alice");
    assert_eq!(
        v["updated_organization_memberships"][0]["user_role"],
        "internal_user"
    );
    assert_eq!(s.count("SELECT count(*) FROM users"), users);
    // The global role is never changed by a membership.
    assert_eq!(
        s.count(
            "SELECT count(*) FROM users WHERE id = 'alice' AND user_role = 'proxy_admin_viewer'"
        ),
        1
    );
    let info = s
        .get(&format!("/organization/info?organization_id={x}"), MASTER)
        .json();
    assert_eq!(info["members"].as_array().unwrap().len(), 3);
}

#[test]
fn member_add_duplicate_is_409_and_writes_nothing() {
    let s = Server::start();
    let x = new_org(&s, "X");
    seed_user(&s, "alice", "internal_user");
    s.admin(
        "/organization/member_add",
        json!({"organization_id": x, "member": {"user_id": "alice", "role": "internal_user"}}),
    );
    let before = snapshot(&s);
    // A new user first, then the duplicate: the whole request is rolled back.
    let r = s.post(
        "/organization/member_add",
        MASTER,
        json!({"organization_id": x,
               "member": [{"user_id": "brand-new"}, {"user_id": "alice", "role": "org_admin"}],
               "max_budget_in_organization": 5}),
    );
    assert_error(&r, 409);
    assert_eq!(r.json()["error"]["type"], "conflict_error");
    assert_eq!(snapshot(&s), before);
    // The same user twice in one request is a duplicate too.
    let r = s.post(
        "/organization/member_add",
        MASTER,
        json!({"organization_id": x, "member": [{"user_id": "u2"}, {"user_id": "u2"}]}),
    );
    assert_error(&r, 409);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn member_add_bad_input_changes_nothing() {
    let s = Server::start();
    let x = new_org(&s, "X");
    let before = snapshot(&s);
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (
            json!({"member": {"user_id": "u"}}),
            400,
            Some("organization_id"),
        ),
        (json!({"organization_id": x}), 400, Some("member")),
        (
            json!({"organization_id": x, "member": "u"}),
            400,
            Some("member"),
        ),
        (
            json!({"organization_id": x, "member": []}),
            400,
            Some("member"),
        ),
        (
            json!({"organization_id": x, "member": [1]}),
            400,
            Some("member"),
        ),
        (
            json!({"organization_id": x, "member": {"role": "internal_user"}}),
            400,
            Some("member"),
        ),
        (
            json!({"organization_id": x, "member": {"role": "owner", "user_id": "u"}}),
            400,
            Some("role"),
        ),
        (
            json!({"organization_id": x, "member": {"role": "proxy_admin", "user_id": "u"}}),
            400,
            Some("role"),
        ),
        (
            json!({"organization_id": x, "member": {"user_id": 5}}),
            400,
            Some("user_id"),
        ),
        (
            json!({"organization_id": x, "member": {"user_email": ""}}),
            400,
            Some("user_email"),
        ),
        (
            json!({"organization_id": x, "member": {"user_id": "u"}, "max_budget_in_organization": -1}),
            400,
            Some("max_budget_in_organization"),
        ),
        (
            json!({"organization_id": x, "member": {"user_id": "u"}, "max_budget_in_organization": "5"}),
            400,
            Some("max_budget_in_organization"),
        ),
        (
            json!({"organization_id": "nope", "member": {"user_id": "u"}}),
            404,
            None,
        ),
    ];
    for (body, status, param) in cases {
        let r = s.post("/organization/member_add", MASTER, body.clone());
        let v = assert_error(&r, status);
        if let Some(p) = param {
            assert_eq!(v["error"]["param"], p, "{body} -> {v}");
        }
    }
    let r = s.request(
        "POST",
        "/organization/member_add",
        Some(MASTER),
        Some(br#"{"organization_id": "x", "member": {"user_id": "u"}, "max_budget_in_organization": 1e400}"#),
        &[],
    );
    assert_error(&r, 400);
    assert_eq!(snapshot(&s), before);
}

#[test]
fn member_add_email_matching_two_users_is_400() {
    let s = Server::start();
    let x = new_org(&s, "X");
    // The unique index on lower(email) makes two users with one email impossible through the
    // API, but a database imported from LiteLLM may hold them. Drop the index in the test
    // database to set that up.
    let db = s.db();
    db.execute("DROP INDEX users_email", []).unwrap();
    for (id, email) in [("d1", "dup@example.com"), ("d2", "DUP@example.com")] {
        db.execute(
            "INSERT INTO users (id, email, user_role, created_at, updated_at)
             VALUES (?1, ?2, 'internal_user', '2026-01-01T00:00:00.000Z',
             '2026-01-01T00:00:00.000Z')",
            [id, email],
        )
        .unwrap();
    }
    drop(db);
    let before = snapshot(&s);
    let r = s.post(
        "/organization/member_add",
        MASTER,
        json!({"organization_id": x, "member": {"user_email": "dup@example.com"}}),
    );
    assert_param(&r, 400, "user_email");
    assert_eq!(snapshot(&s), before);
    // member_update / member_delete by that email: same 400.
    seed_org_member(&s, &x, "d1", "internal_user");
    let before = snapshot(&s);
    let r = s.post(
        "/organization/member_update",
        MASTER,
        json!({"organization_id": x, "user_email": "dup@example.com", "role": "org_admin"}),
    );
    assert_param(&r, 400, "user_email");
    let r = s.post(
        "/organization/member_delete",
        MASTER,
        json!({"organization_id": x, "user_email": "dup@example.com"}),
    );
    assert_param(&r, 400, "user_email");
    assert_eq!(snapshot(&s), before);
}

#[test]
fn member_add_role_matrix() {
    let w = world();
    let add = |who, user: &str, status| {
        let body = json!({"organization_id": w.id("X"),
            "member": {"user_id": user, "role": "org_admin"}, "max_budget_in_organization": 1});
        Case::post(who, "/organization/member_add", body, status)
    };
    // oay: org_admin of Y; iu: non-member; iux: internal_user member; pav: proxy_admin_viewer;
    // iuvx: viewer holding org_admin. Then the org admin of X and a proxy admin may add members.
    #[rustfmt::skip]
    run_cases(&w, &[
        add("oay", "newbie", 404), add("iu", "newbie", 404),
        add("iux", "newbie", 403), add("pav", "newbie", 403), add("iuvx", "newbie", 403),
        Case::post(ANON, "/organization/member_add",
            json!({"organization_id": w.id("X"), "member": {"user_id": "newbie"}}), 401),
        add("oax", "newbie", 200),
        add("pa", "newbie2", 200),
    ]);
    assert_eq!(
        count_p(
            &w,
            "SELECT count(*) FROM organization_members WHERE organization_id = ?1
             AND user_id IN ('newbie', 'newbie2') AND user_role = 'org_admin'",
            &[w.id("X")]
        ),
        2
    );
}

#[test]
fn member_update_role_and_budget() {
    let w = world();
    let s = &w.s;
    // By user_id, PATCH, as the org admin of X: role changes, global role does not.
    let r = s.send(
        "PATCH",
        "/organization/member_update",
        &w["oax"],
        json!({"organization_id": w.id("X"), "user_id": "iux", "role": "org_admin"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["user_id"], "iux");
    assert_eq!(v["user_role"], "org_admin");
    assert!(v["budget_id"].is_null());
    assert_eq!(
        count_p(
            s,
            "SELECT count(*) FROM organization_members WHERE organization_id = ?1
             AND user_id = 'iux' AND user_role = 'org_admin'",
            &[w.id("X")]
        ),
        1
    );
    assert_eq!(
        s.count("SELECT count(*) FROM users WHERE id = 'iux' AND user_role = 'internal_user'"),
        1
    );
    // By user_email, POST: a budget is created, then updated in place.
    let budgets = s.count("SELECT count(*) FROM budgets");
    let v = s.admin(
        "/organization/member_update",
        json!({"organization_id": w.id("X"), "user_email": "IUX@example.com",
               "max_budget_in_organization": 12.5}),
    );
    assert_eq!(v["user_role"], "org_admin");
    assert_eq!(v["litellm_budget_table"]["max_budget"], 12.5);
    let bid = v["budget_id"].as_str().unwrap().to_string();
    assert_eq!(s.count("SELECT count(*) FROM budgets"), budgets + 1);
    let v = s.admin(
        "/organization/member_update",
        json!({"organization_id": w.id("X"), "user_id": "iux", "max_budget_in_organization": 20,
               "role": "internal_user_viewer"}),
    );
    assert_eq!(v["budget_id"], bid.as_str());
    assert_eq!(v["user_role"], "internal_user_viewer");
    assert_eq!(
        count_p(
            s,
            "SELECT count(*) FROM budgets WHERE id = ?1 AND max_budget = 20",
            &[&bid]
        ),
        1
    );
    assert_eq!(s.count("SELECT count(*) FROM budgets"), budgets + 1);

    let before = snapshot(s);
    let upd = |key: &str, body: Value| s.send("PATCH", "/organization/member_update", key, body);
    let body = json!({"organization_id": w.id("X"), "user_id": "iux", "role": "org_admin"});
    for (who, key, status) in [
        ("org_admin of Y", &w["oay"], 404),
        ("non-member", &w["iu"], 404),
        ("proxy_admin_viewer", &w["pav"], 403),
        ("viewer holding org_admin", &w["iuvx"], 403),
    ] {
        let r = upd(key, body.clone());
        assert_eq!(r.status, status, "{who}: {}", r.text());
        assert_error(&r, status);
    }
    // iux is now an internal_user_viewer member of X: may read X, may not manage it.
    let r = upd(
        &w["iux"],
        json!({"organization_id": w.id("X"), "user_id": "oax", "role": "internal_user"}),
    );
    assert_error(&r, 403);
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (
            json!({"organization_id": w.id("X"), "user_id": "iux"}),
            400,
            Some("role"),
        ),
        (
            json!({"organization_id": w.id("X"), "user_id": "iux", "role": "boss"}),
            400,
            Some("role"),
        ),
        (
            json!({"organization_id": w.id("X"), "role": "org_admin"}),
            400,
            Some("user_id"),
        ),
        (
            json!({"organization_id": w.id("X"), "user_id": "iux", "max_budget_in_organization": -3}),
            400,
            Some("max_budget_in_organization"),
        ),
        (
            json!({"user_id": "iux", "role": "org_admin"}),
            400,
            Some("organization_id"),
        ),
        (
            json!({"organization_id": w.id("X"), "user_id": "iu", "role": "org_admin"}),
            404,
            None,
        ),
        (
            json!({"organization_id": w.id("X"), "user_id": "ghost", "role": "org_admin"}),
            404,
            None,
        ),
        (
            json!({"organization_id": w.id("X"), "user_email": "ghost@x.y", "role": "org_admin"}),
            404,
            None,
        ),
        (
            json!({"organization_id": "nope", "user_id": "iux", "role": "org_admin"}),
            404,
            None,
        ),
    ];
    for (b, status, param) in cases {
        let r = upd(MASTER, b.clone());
        let v = assert_error(&r, status);
        if let Some(p) = param {
            assert_eq!(v["error"]["param"], p, "{b} -> {v}");
        }
    }
    assert_eq!(snapshot(s), before);
}

#[test]
fn member_delete_removes_membership_and_its_budget() {
    let w = world();
    let s = &w.s;
    let v = s.admin(
        "/organization/member_add",
        json!({"organization_id": w.id("X"), "member": [{"user_id": "m1"}, {"user_email": "m2@example.com"}],
               "max_budget_in_organization": 2}),
    );
    let b1 = v["updated_organization_memberships"][0]["budget_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b2 = v["updated_organization_memberships"][1]["budget_id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = snapshot(s);
    let del = |key: &str, body: Value| s.send("DELETE", "/organization/member_delete", key, body);
    let body = json!({"organization_id": w.id("X"), "user_id": "m1"});
    for (who, key, status) in [
        ("org_admin of Y", &w["oay"], 404),
        ("non-member", &w["iu"], 404),
        ("internal_user member", &w["iux"], 403),
        ("proxy_admin_viewer", &w["pav"], 403),
        ("viewer holding org_admin", &w["iuvx"], 403),
    ] {
        let r = del(key, body.clone());
        assert_eq!(r.status, status, "{who}: {}", r.text());
        assert_error(&r, status);
    }
    let r = s.request(
        "DELETE",
        "/organization/member_delete",
        None,
        Some(body.to_string().as_bytes()),
        &[],
    );
    assert_error(&r, 401);
    for (b, status) in [
        (json!({"organization_id": w.id("X")}), 400),
        (json!({"user_id": "m1"}), 400),
        (json!({"organization_id": w.id("X"), "user_id": "iu"}), 404),
        (json!({"organization_id": "nope", "user_id": "m1"}), 404),
    ] {
        assert_error(&del(MASTER, b), status);
    }
    assert_eq!(snapshot(s), before);

    // The budgets were set by a proxy admin: the org admin may not remove the member (adding
    // them again would drop the budget; authority.rs). A proxy admin removes m1 by id and m2
    // by email (POST form).
    assert_error(&del(&w["oax"], body.clone()), 403);
    assert_eq!(snapshot(s), before);
    let r = del(&w["pa"], body.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user_id"], "m1");
    assert_eq!(r.json()["organization_id"], w.id("X"));
    let r = s.post(
        "/organization/member_delete",
        &w["pa"],
        json!({"organization_id": w.id("X"), "user_email": "M2@example.com"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        count_p(
            s,
            "SELECT count(*) FROM organization_members WHERE organization_id = ?1
             AND user_id = 'm1'",
            &[w.id("X")]
        ),
        0
    );
    assert_eq!(
        count_p(
            s,
            "SELECT count(*) FROM budgets WHERE id IN (?1, ?2)",
            &[&b1, &b2]
        ),
        0
    );
    // The users themselves stay.
    assert_eq!(s.count("SELECT count(*) FROM users WHERE id = 'm1'"), 1);
    assert_eq!(
        s.count("SELECT count(*) FROM users WHERE email = 'm2@example.com'"),
        1
    );
    // Deleting again: 404.
    assert_error(&del(MASTER, body), 404);
    // An org admin may remove themselves.
    let r = del(
        &w["oax"],
        json!({"organization_id": w.id("X"), "user_id": "oax"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}
