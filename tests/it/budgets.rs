//! The budget API (API.md §6 Budgets): new, update, info, list, delete; reads for proxy admins
//! and proxy admin viewers, writes for proxy admins; bad input is a 400 naming the field and
//! changes nothing.

use crate::common::*;
use serde_json::{json, Value};

#[test]
fn budget_lifecycle() {
    let s = Server::start();
    let v = s.admin(
        "/budget/new",
        json!({"budget_id": "b-1", "max_budget": 10.5, "soft_budget": 8, "tpm_limit": 100,
               "rpm_limit": 5, "max_parallel_requests": 2, "budget_duration": "30d",
               "model_max_budget": {"A": 1, "B": {"max_budget": 2.5}}}),
    );
    assert_eq!(v["budget_id"], "b-1");
    assert_eq!(v["max_budget"], 10.5);
    assert_eq!(v["soft_budget"], 8.0);
    assert_eq!(v["tpm_limit"], 100);
    assert_eq!(v["rpm_limit"], 5);
    assert_eq!(v["max_parallel_requests"], 2);
    assert_eq!(v["budget_duration"], "30d");
    assert_eq!(
        v["model_max_budget"],
        json!({"A": 1, "B": {"max_budget": 2.5}})
    );
    assert_eq!(v["created_by"], "default_user_id");
    let reset = litegate::util::ms_from_iso(v["budget_reset_at"].as_str().unwrap()).unwrap();
    let want = litegate::util::now_ms() + 30 * 86_400_000;
    assert!((reset - want).abs() < 120_000, "reset {reset} want {want}");
    assert_eq!(
        s.count(
            "SELECT count(*) FROM budgets WHERE id = 'b-1' AND max_budget = 10.5
             AND tpm_limit = 100 AND budget_duration = '30d' AND budget_reset_at IS NOT NULL"
        ),
        1
    );
    // A generated id when none is given; no duration → no reset time.
    let v2 = s.admin("/budget/new", json!({"max_budget": 1}));
    let b2 = v2["budget_id"].as_str().unwrap().to_string();
    assert_eq!(b2.len(), 36);
    assert!(v2["budget_reset_at"].is_null());

    // Update: changed fields change, others stay, null clears, a new duration resets.
    let u = s.admin(
        "/budget/update",
        json!({"budget_id": "b-1", "max_budget": 20, "tpm_limit": null, "budget_duration": "1h"}),
    );
    assert_eq!(u["max_budget"], 20.0);
    assert!(u["tpm_limit"].is_null());
    assert_eq!(u["rpm_limit"], 5);
    assert_eq!(u["budget_duration"], "1h");
    let reset = litegate::util::ms_from_iso(u["budget_reset_at"].as_str().unwrap()).unwrap();
    assert!((reset - (litegate::util::now_ms() + 3_600_000)).abs() < 120_000);
    assert_eq!(
        s.count(
            "SELECT count(*) FROM budgets WHERE id = 'b-1' AND max_budget = 20
             AND tpm_limit IS NULL AND rpm_limit = 5 AND budget_duration = '1h'"
        ),
        1
    );

    // Info and list.
    let r = s.post("/budget/info", MASTER, json!({"budgets": ["b-1", b2]}));
    assert_eq!(r.status, 200, "{}", r.text());
    let info = r.json();
    assert_eq!(info.as_array().unwrap().len(), 2);
    assert_eq!(info[0]["budget_id"], "b-1");
    assert_eq!(info[1]["budget_id"], b2.as_str());
    let r = s.get("/budget/list", MASTER);
    assert_eq!(r.status, 200);
    let mut ids: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["budget_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut want = vec!["b-1".to_string(), b2.clone()];
    want.sort();
    assert_eq!(ids, want);

    // Delete by `id` (LiteLLM's field) and by `budget_id`.
    let d = s.admin("/budget/delete", json!({"id": "b-1"}));
    assert_eq!(d["budget_id"], "b-1");
    s.admin("/budget/delete", json!({"budget_id": b2}));
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 0);
    assert_error(&s.post("/budget/delete", MASTER, json!({"id": "b-1"})), 404);
}

#[test]
fn duplicate_budget_id_is_409() {
    let s = Server::start();
    s.admin("/budget/new", json!({"budget_id": "same", "max_budget": 1}));
    let before = snapshot(&s);
    let r = s.post(
        "/budget/new",
        MASTER,
        json!({"budget_id": "same", "max_budget": 2}),
    );
    assert_error(&r, 409);
    assert_eq!(r.json()["error"]["type"], "conflict_error");
    assert_eq!(snapshot(&s), before);
}

#[test]
fn bad_input_is_400_naming_the_field() {
    let s = Server::start();
    s.admin("/budget/new", json!({"budget_id": "b", "max_budget": 1}));
    let before = snapshot(&s);
    let fields: Vec<(Value, &str)> = vec![
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"max_budget": "100"}), "max_budget"),
        (json!({"soft_budget": -2}), "soft_budget"),
        (json!({"tpm_limit": -1}), "tpm_limit"),
        (json!({"rpm_limit": 2.5}), "rpm_limit"),
        (
            json!({"max_parallel_requests": true}),
            "max_parallel_requests",
        ),
        (json!({"budget_duration": "30x"}), "budget_duration"),
        (json!({"budget_duration": "0d"}), "budget_duration"),
        (json!({"budget_duration": 30}), "budget_duration"),
        (json!({"model_max_budget": "x"}), "model_max_budget"),
        (json!({"model_max_budget": {"A": -1}}), "model_max_budget"),
        (
            json!({"model_max_budget": {"A": {"max_budget": -1}}}),
            "model_max_budget",
        ),
        (
            json!({"model_max_budget": {"A": "lots"}}),
            "model_max_budget",
        ),
    ];
    for (body, param) in &fields {
        let r = s.post("/budget/new", MASTER, body.clone());
        let v = assert_error(&r, 400);
        assert_eq!(v["error"]["param"], *param, "new {body} -> {v}");
        let mut ub = body.clone();
        ub["budget_id"] = json!("b");
        let r = s.post("/budget/update", MASTER, ub.clone());
        let v = assert_error(&r, 400);
        assert_eq!(v["error"]["param"], *param, "update {ub} -> {v}");
    }
    for (path, body, param) in [
        ("/budget/new", json!({"budget_id": 5}), "budget_id"),
        ("/budget/new", json!({"budget_id": ""}), "budget_id"),
        ("/budget/update", json!({"max_budget": 1}), "budget_id"),
        ("/budget/info", json!({}), "budgets"),
        ("/budget/info", json!({"budgets": []}), "budgets"),
        ("/budget/info", json!({"budgets": "b"}), "budgets"),
        ("/budget/delete", json!({}), "id"),
        ("/budget/delete", json!({"id": 3}), "id"),
    ] {
        let r = s.post(path, MASTER, body.clone());
        let v = assert_error(&r, 400);
        assert_eq!(v["error"]["param"], param, "{path} {body} -> {v}");
    }
    for raw in [
        &br#"{"max_budget": 1e400}"#[..],
        &br#"{"max_budget": NaN}"#[..],
        &b"{"[..],
        &b"[]"[..],
    ] {
        assert_error(
            &s.request("POST", "/budget/new", Some(MASTER), Some(raw), &[]),
            400,
        );
    }
    assert_eq!(snapshot(&s), before);
}

#[test]
fn unknown_budgets_are_404() {
    let s = Server::start();
    s.admin("/budget/new", json!({"budget_id": "b"}));
    let before = snapshot(&s);
    assert_error(
        &s.post(
            "/budget/update",
            MASTER,
            json!({"budget_id": "nope", "max_budget": 1}),
        ),
        404,
    );
    assert_error(
        &s.post("/budget/info", MASTER, json!({"budgets": ["b", "nope"]})),
        404,
    );
    assert_error(
        &s.post("/budget/delete", MASTER, json!({"id": "nope"})),
        404,
    );
    assert_eq!(snapshot(&s), before);
}

#[test]
fn deleting_a_used_budget_leaves_its_users_without_one() {
    let s = Server::start();
    s.admin(
        "/budget/new",
        json!({"budget_id": "shared", "max_budget": 3}),
    );
    let id = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "o", "budget_id": "shared"}),
        "organization_id",
    );
    s.admin("/budget/delete", json!({"budget_id": "shared"}));
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 0);
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM organizations WHERE id = ?1 AND budget_id IS NULL",
            &[&id]
        ),
        1
    );
}

#[test]
fn role_matrix() {
    let s = Server::start();
    s.admin("/budget/new", json!({"budget_id": "b", "max_budget": 1}));
    let pa = seed_user(&s, "pa", "proxy_admin");
    let pav = seed_user(&s, "pav", "proxy_admin_viewer");
    let iu = seed_user(&s, "iu", "internal_user");
    let iuv = seed_user(&s, "iuv", "internal_user_viewer");
    let org = s.admin("/organization/new", json!({"organization_alias": "o"}));
    let oa = seed_user(&s, "oa", "internal_user");
    seed_org_member(
        &s,
        org["organization_id"].as_str().unwrap(),
        "oa",
        "org_admin",
    );

    let writes = [
        ("/budget/new", json!({"budget_id": "x", "max_budget": 1})),
        (
            "/budget/update",
            json!({"budget_id": "b", "max_budget": 99}),
        ),
        ("/budget/delete", json!({"id": "b"})),
    ];
    let before = snapshot(&s);
    for key in [&pav, &iu, &iuv, &oa] {
        for (path, body) in &writes {
            let r = s.post(path, key, body.clone());
            assert_error(&r, 403);
        }
    }
    for (path, body) in &writes {
        let r = s.request("POST", path, None, Some(body.to_string().as_bytes()), &[]);
        assert_error(&r, 401);
    }
    assert_eq!(snapshot(&s), before);
    // Reads: proxy admins and viewers only.
    for key in [MASTER, &pa, &pav] {
        assert_eq!(s.get("/budget/list", key).status, 200);
        let r = s.post("/budget/info", key, json!({"budgets": ["b"]}));
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()[0]["max_budget"], 1.0);
    }
    for key in [&iu, &iuv, &oa] {
        assert_error(&s.get("/budget/list", key), 403);
        assert_error(&s.post("/budget/info", key, json!({"budgets": ["b"]})), 403);
    }
    assert_error(&s.anon("GET", "/budget/list"), 401);
    // A proxy admin's user key may write.
    let r = s.post(
        "/budget/update",
        &pa,
        json!({"budget_id": "b", "max_budget": 99}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["updated_by"], "pa");
    assert_eq!(
        s.count("SELECT count(*) FROM budgets WHERE id = 'b' AND max_budget = 99"),
        1
    );
}
