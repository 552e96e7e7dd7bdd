//! The end-user API: new, info, update, delete, list, block, unblock (and their `/customer/*`
//! names); writes for proxy admins, reads for proxy admins and viewers; every refusal (role,
//! bad input, unknown id) writes nothing.

use crate::common::*;
use serde_json::json;

fn world() -> World {
    World::new().teams(&[("t1", None, &[])]).users(&[
        ("admin", "proxy_admin"),
        ("viewer", "proxy_admin_viewer"),
        ("alice", "internal_user"),
        ("ivy", "internal_user_viewer"),
    ])
}

#[test]
fn end_user_lifecycle() {
    let w = world();
    // New, with budget fields: a budget row of its own is made and linked.
    let v = w.expect(
        "admin",
        "/end_user/new",
        json!({"user_id": "cust-1", "alias": "Customer One", "max_budget": 2.5,
               "rpm_limit": 3, "budget_duration": "1d", "allowed_model_region": "eu",
               "default_model": "A"}),
        200,
    );
    assert_eq!(v["user_id"], "cust-1");
    assert_eq!(v["alias"], "Customer One");
    assert_eq!(v["spend"], 0.0);
    assert_eq!(v["blocked"], false);
    assert_eq!(v["allowed_model_region"], "eu");
    assert_eq!(v["default_model"], "A");
    let budget = v["budget_id"].as_str().unwrap().to_string();
    assert_eq!(v["litellm_budget_table"]["budget_id"], budget.as_str());
    assert_eq!(v["litellm_budget_table"]["max_budget"], 2.5);
    assert_eq!(v["litellm_budget_table"]["rpm_limit"], 3);
    assert!(v["litellm_budget_table"]["budget_reset_at"].is_string());
    assert_eq!(
        count_p(
            &w,
            "SELECT count(*) FROM end_users e JOIN budgets b ON b.id = e.budget_id
             WHERE e.id = ?1 AND b.max_budget = 2.5 AND b.rpm_limit = 3",
            &["cust-1"]
        ),
        1
    );
    // The `/customer/*` names are the same endpoints; a taken id is a 409 in LiteLLM's words.
    let r = w.post("/customer/new", &w["admin"], json!({"user_id": "cust-1"}));
    let e = assert_error_says(&r, 409, "Customer already exists, passed user_id=cust-1");
    assert_eq!(e["error"]["type"], "conflict_error");
    w.expect(
        "admin",
        "/customer/new",
        json!({"user_id": "cust-2", "blocked": true}),
        200,
    );

    // Info, for admins and viewers.
    for who in ["admin", "viewer"] {
        let r = w.get("/end_user/info?end_user_id=cust-1", &w[who]);
        assert_eq!(r.status, 200, "{who}: {}", r.text());
        assert_eq!(r.json()["litellm_budget_table"]["max_budget"], 2.5);
    }
    let r = w.get("/customer/info?end_user_id=nobody", &w["admin"]);
    assert_error_says(&r, 404, "End User Id=nobody does not exist in db");

    // Update: absent keeps, null clears, a value sets; budget fields change its own row.
    let u = w.expect(
        "admin",
        "/end_user/update",
        json!({"user_id": "cust-1", "alias": null, "max_budget": 5, "default_model": null}),
        200,
    );
    assert!(u["alias"].is_null());
    assert!(u["default_model"].is_null());
    assert_eq!(u["allowed_model_region"], "eu");
    assert_eq!(
        u["budget_id"],
        budget.as_str(),
        "its own row, changed in place"
    );
    assert_eq!(u["litellm_budget_table"]["max_budget"], 5.0);
    assert_eq!(u["litellm_budget_table"]["rpm_limit"], 3);

    // List: every end user, by id.
    let r = w.get("/end_user/list", &w["viewer"]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fields_of(&r.json(), "user_id"), vec!["cust-1", "cust-2"]);
    let r = w.get("/customer/list?page=2&page_size=1", &w["admin"]);
    assert_eq!(fields_of(&r.json(), "user_id"), vec!["cust-2"]);

    // Delete: LiteLLM's answer; the budget row stays.
    let d = w.expect(
        "admin",
        "/end_user/delete",
        json!({"user_ids": ["cust-1", "cust-2"]}),
        200,
    );
    assert_eq!(d["deleted_customers"], 2);
    assert_eq!(
        d["message"],
        "Successfully deleted customers with ids: ['cust-1', 'cust-2']"
    );
    assert_eq!(w.count("SELECT count(*) FROM end_users"), 0);
    assert_eq!(
        count_p(&w, "SELECT count(*) FROM budgets WHERE id = ?1", &[&budget]),
        1
    );
}

#[test]
fn a_shared_budget_tier_is_copied_not_changed_by_one_customers_update() {
    let w = world();
    w.expect(
        "admin",
        "/budget/new",
        json!({"budget_id": "free", "max_budget": 1, "rpm_limit": 9}),
        200,
    );
    for id in ["a", "b"] {
        let v = w.expect(
            "admin",
            "/end_user/new",
            json!({"user_id": id, "budget_id": "free"}),
            200,
        );
        assert_eq!(v["litellm_budget_table"]["max_budget"], 1.0);
    }
    let u = w.expect(
        "admin",
        "/end_user/update",
        json!({"user_id": "a", "max_budget": 3}),
        200,
    );
    let own = u["budget_id"].as_str().unwrap();
    assert_ne!(own, "free");
    assert_eq!(u["litellm_budget_table"]["max_budget"], 3.0);
    assert_eq!(
        u["litellm_budget_table"]["rpm_limit"], 9,
        "the tier's other values kept"
    );
    assert_eq!(
        count_p(
            &w,
            "SELECT count(*) FROM budgets WHERE id = 'free' AND max_budget = 1",
            &[]
        ),
        1
    );
    let b = w.get("/end_user/info?end_user_id=b", &w["admin"]).json();
    assert_eq!(b["budget_id"], "free");
    // Linking to a tier, and unlinking.
    let u = w.expect(
        "admin",
        "/end_user/update",
        json!({"user_id": "a", "budget_id": "free"}),
        200,
    );
    assert_eq!(u["budget_id"], "free");
    let u = w.expect(
        "admin",
        "/end_user/update",
        json!({"user_id": "b", "budget_id": null}),
        200,
    );
    assert!(u["budget_id"].is_null());
    assert!(u["litellm_budget_table"].is_null());
    // A budget row an end user uses is not deleted with another holder that goes.
    let org = w.admin_id(
        "/organization/new",
        json!({"organization_alias": "o", "budget_id": "free"}),
        "organization_id",
    );
    w.expect(
        "admin",
        "/organization/delete",
        json!({"organization_ids": [org]}),
        200,
    );
    assert_eq!(
        count_p(
            &w,
            "SELECT count(*) FROM end_users e JOIN budgets b ON b.id = e.budget_id
                     WHERE b.id = 'free'",
            &[]
        ),
        1
    );
}

#[test]
fn block_and_unblock() {
    let w = world();
    w.expect("admin", "/end_user/new", json!({"user_id": "known"}), 200);
    // Block creates unknown end users (as LiteLLM's upsert does).
    let v = w.expect(
        "admin",
        "/end_user/block",
        json!({"user_ids": ["known", "fresh", "known"]}),
        200,
    );
    assert_eq!(
        fields_of(&v["blocked_users"], "user_id"),
        vec!["known", "fresh"]
    );
    assert!(v["blocked_users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["blocked"] == true));
    assert_eq!(
        w.count("SELECT count(*) FROM end_users WHERE blocked <> 0"),
        2
    );
    let v = w.expect(
        "admin",
        "/customer/unblock",
        json!({"user_ids": ["fresh"]}),
        200,
    );
    assert_eq!(v["unblocked_users"][0]["user_id"], "fresh");
    assert_eq!(v["unblocked_users"][0]["blocked"], false);
    assert_eq!(
        count_p(
            &w,
            "SELECT count(*) FROM end_users WHERE blocked <> 0 AND id = ?1",
            &["known"]
        ),
        1
    );
    let v = w.expect(
        "admin",
        "/end_user/update",
        json!({"user_id": "known", "blocked": false}),
        200,
    );
    assert_eq!(v["blocked"], false);
}

#[test]
fn roles_and_bad_input_write_nothing() {
    let mut w = world();
    w.expect("admin", "/end_user/new", json!({"user_id": "c1"}), 200);
    w.expect("admin", "/budget/new", json!({"budget_id": "tier"}), 200);
    let team_key = seed_team_key(&w, "t1", "alice", None);
    w.name_key("team-key", &team_key);
    let long = "x".repeat(257);
    let mut cases = Vec::new();
    // Writes: proxy admins only.
    for who in ["viewer", "alice", "ivy", "team-key"] {
        for (path, body) in [
            ("/end_user/new", json!({"user_id": "c9"})),
            ("/end_user/update", json!({"user_id": "c1", "alias": "x"})),
            ("/end_user/delete", json!({"user_ids": ["c1"]})),
            ("/end_user/block", json!({"user_ids": ["c1"]})),
            ("/end_user/unblock", json!({"user_ids": ["c1"]})),
            ("/customer/block", json!({"user_ids": ["c1"]})),
        ] {
            cases.push(Case::post(who, path, body, 403));
        }
    }
    // Reads: proxy admins and viewers.
    for who in ["alice", "ivy", "team-key"] {
        cases.push(Case::get(who, "/end_user/info?end_user_id=c1", 403));
        cases.push(Case::get(who, "/end_user/list", 403));
        cases.push(Case::get(who, "/customer/list", 403));
    }
    cases.push(Case::get(ANON, "/end_user/list", 401));
    cases.push(Case::post(
        ANON,
        "/end_user/new",
        json!({"user_id": "c9"}),
        401,
    ));
    // Bad input: 400 naming the field.
    for (body, param) in [
        (json!({}), "user_id"),
        (json!({"user_id": ""}), "user_id"),
        (json!({"user_id": 5}), "user_id"),
        (json!({"user_id": long}), "user_id"),
        (json!({"user_id": "a\nb"}), "user_id"),
        (json!({"user_id": "c9", "max_budget": -1}), "max_budget"),
        (json!({"user_id": "c9", "rpm_limit": 1.5}), "rpm_limit"),
        (
            json!({"user_id": "c9", "budget_duration": "soon"}),
            "budget_duration",
        ),
        (
            json!({"user_id": "c9", "max_budget": 1, "budget_id": "tier"}),
            "budget_id",
        ),
        (
            json!({"user_id": "c9", "budget_id": "no-such-budget"}),
            "budget_id",
        ),
        (
            json!({"user_id": "c9", "allowed_model_region": "mars"}),
            "allowed_model_region",
        ),
        (
            json!({"user_id": "c9", "default_model": "no-such-model"}),
            "default_model",
        ),
        (json!({"user_id": "c9", "blocked": "yes"}), "blocked"),
        (json!({"user_id": "c9", "spend": -3}), "spend"),
    ] {
        cases.push(Case::post("admin", "/end_user/new", body, 400).param(param));
    }
    for (body, param) in [
        (json!({"user_id": "c1", "max_budget": "lots"}), "max_budget"),
        (
            json!({"user_id": "c1", "budget_id": "no-such-budget"}),
            "budget_id",
        ),
        (
            json!({"user_id": "c1", "tpm_limit": 5, "budget_id": "tier"}),
            "budget_id",
        ),
        (
            json!({"user_id": "c1", "allowed_model_region": "mars"}),
            "allowed_model_region",
        ),
    ] {
        cases.push(Case::post("admin", "/end_user/update", body, 400).param(param));
    }
    let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    for path in ["/end_user/delete", "/end_user/block", "/end_user/unblock"] {
        cases.push(Case::post("admin", path, json!({}), 400).param("user_ids"));
        cases.push(Case::post("admin", path, json!({"user_ids": []}), 400).param("user_ids"));
        cases.push(Case::post("admin", path, json!({"user_ids": [""]}), 400).param("user_ids"));
        cases.push(Case::post("admin", path, json!({"user_ids": "c1"}), 400).param("user_ids"));
        cases.push(Case::post("admin", path, json!({"user_ids": many}), 400).param("user_ids"));
    }
    cases.push(Case::get("admin", "/end_user/info", 400).param("end_user_id"));
    cases.push(Case::get("admin", "/end_user/list?page_size=0", 400).param("page_size"));
    cases.push(Case::get("admin", "/end_user/list?page_size=1001", 400).param("page_size"));
    // Unknown targets: 404, and a list naming one unknown id changes none of the others.
    cases.push(Case::post(
        "admin",
        "/end_user/update",
        json!({"user_id": "nobody"}),
        404,
    ));
    cases.push(Case::post(
        "admin",
        "/end_user/delete",
        json!({"user_ids": ["c1", "nobody"]}),
        404,
    ));
    cases.push(Case::post(
        "admin",
        "/end_user/unblock",
        json!({"user_ids": ["c1", "nobody"]}),
        404,
    ));
    let out = run_cases(&w, &cases);
    assert!(out.iter().any(|v| v["error"]["message"]
        .as_str()
        .is_some_and(|m| m == "End User Id(s)=nobody do not exist in db")));
    assert_eq!(w.count("SELECT count(*) FROM end_users"), 1);
}
