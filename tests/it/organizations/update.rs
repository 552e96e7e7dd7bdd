//! /organization/update: fields, bad input, the role matrix and budget rows.

use super::*;

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
    let (alias, models, meta, by): (String, String, String, String) = s.row(
        "SELECT alias, models, metadata, updated_by FROM organizations WHERE id = ?1",
        [&x],
    );
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
            &w,
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
    let bid = s.admin_id("/budget/new", json!({"max_budget": 5}), "budget_id");
    let x = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "X", "budget_id": bid}),
        "organization_id",
    );
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
