//! /organization/new: the LiteLLM examples, every field, bad input, models and the role matrix.

use super::*;

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
    let (alias, models, b): (String, String, String) = s.row(
        "SELECT alias, models, budget_id FROM organizations WHERE id = ?1",
        [id],
    );
    assert_eq!((alias.as_str(), b.as_str()), ("my-secret-org", bid));
    assert_eq!(
        serde_json::from_str::<Value>(&models).unwrap(),
        json!(["model1", "model2"])
    );
    let mb: f64 = s.value("SELECT max_budget FROM budgets WHERE id = ?1", [bid]);
    assert_eq!(mb, 100.0);
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 1);
}

#[test]
fn new_litellm_doc_example_with_budget_id() {
    let s = Server::start();
    let bid = s.admin_id(
        "/budget/new",
        json!({"max_budget": 50, "rpm_limit": 7}),
        "budget_id",
    );
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
    expect(
        &s,
        MASTER,
        "/organization/new",
        json!({"organization_alias": "again", "organization_id": "org-full", "max_budget": 1}),
        409,
    );
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
    s.exec("DELETE FROM budgets");
    // ... and the budget's audit entry, so that the snapshot below compares with `before`.
    s.exec("DELETE FROM audit_log WHERE table_name = 'budget'");
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
    s.exec("UPDATE api_keys SET models = '[\"A\"]' WHERE user_id = 'pa'");
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
        let v = expect(
            &s,
            &pa,
            "/organization/new",
            json!({"organization_alias": "wide", "models": models}),
            400,
        );
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
