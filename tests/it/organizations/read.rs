//! /organization/info and /organization/list: shape, visibility and errors.

use super::*;

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
    let path = format!("/organization/info?organization_id={}", w.id("X"));
    for (who, key) in [
        ("master", MASTER),
        ("proxy_admin", &w["pa"]),
        ("proxy_admin_viewer", &w["pav"]),
        ("org_admin of X", &w["oax"]),
        ("internal_user member of X", &w["iux"]),
        ("viewer member of X", &w["iuvx"]),
    ] {
        let r = w.get(&path, key);
        assert_eq!(r.status, 200, "{who}: {}", r.text());
        assert_eq!(r.json()["organization_id"], w.id("X"));
    }
    // Invisible looks missing: 404, not 403.
    for (who, key) in [("org_admin of Y", &w["oay"]), ("non-member", &w["iu"])] {
        let r = w.get(&path, key);
        assert_eq!(r.status, 404, "{who}: {}", r.text());
        assert_error(&r, 404);
    }
    assert_error(&w.anon("GET", &path), 401);
    assert_error(
        &w.get("/organization/info?organization_id=nope", MASTER),
        404,
    );
    assert_param(&w.get("/organization/info", MASTER), 400, "organization_id");
    assert_param(
        &w.get("/organization/info?organization_id=", MASTER),
        400,
        "organization_id",
    );
}

#[test]
fn info_deprecated_post_form() {
    let w = world();
    let r = w.post(
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
        &w.post(
            "/organization/info",
            MASTER,
            json!({"organizations": [w.id("X"), "nope"]}),
        ),
        404,
    );
    // A member of X only: X alone is fine, X and Y is 404 (Y is invisible to them).
    w.call(
        "iux",
        "POST",
        "/organization/info",
        json!({"organizations": [w.id("X")]}),
        200,
    );
    assert_error(
        &w.post(
            "/organization/info",
            &w["iux"],
            json!({"organizations": [w.id("X"), w.id("Y")]}),
        ),
        404,
    );
    assert_param(
        &w.post("/organization/info", MASTER, json!({"organizations": []})),
        400,
        "organizations",
    );
    assert_param(
        &w.post("/organization/info", MASTER, json!({"organizations": "x"})),
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
        sorted_field(&r.json(), "organization_id")
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
    assert_error(&s.anon("GET", "/organization/list"), 401);
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
