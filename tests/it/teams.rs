//! Team endpoints (API.md §4 write-time checks, §5 roles, §6 Teams, §8 moving teams).

use crate::common::*;
use serde_json::{json, Value};

/// Two orgs, two teams and one caller per role:
/// org1 [A, B] with team t1 [A]; org2 [A, B, C] with team t2 [A].
fn world() -> World {
    World::new()
        .orgs(&[("org1", &["A", "B"]), ("org2", &["A", "B", "C"])])
        .teams(&[("t1", Some("org1"), &["A"]), ("t2", Some("org2"), &["A"])])
        .users(&[
            ("pview", "proxy_admin_viewer"),
            ("oadmin", "internal_user"),
            ("oadmin2", "internal_user"),
            ("omember", "internal_user"),
            ("tadmin", "internal_user"),
            ("tuser", "internal_user"),
            ("outsider", "internal_user"),
            ("iviewer", "internal_user_viewer"),
        ])
        .org_members(&[
            ("org1", "oadmin", "org_admin"),
            ("org2", "oadmin2", "org_admin"),
            ("org1", "omember", "internal_user"),
        ])
        .team_members(&[
            ("t1", "tadmin", "admin"),
            ("t1", "tuser", "user"),
            ("t1", "iviewer", "user"),
        ])
}

fn team_models(s: &Server, team: &str) -> Vec<String> {
    let m: String = s
        .db()
        .query_row("SELECT models FROM teams WHERE id = ?1", [team], |r| {
            r.get(0)
        })
        .unwrap();
    serde_json::from_str(&m).unwrap()
}

fn team_org(s: &Server, team: &str) -> Option<String> {
    s.db()
        .query_row(
            "SELECT organization_id FROM teams WHERE id = ?1",
            [team],
            |r| r.get(0),
        )
        .unwrap()
}

fn roles(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v["members_with_roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_string(),
                m["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// /team/new

#[test]
fn create_team_stores_every_field_and_members() {
    let s = Server::start();
    seed_org(&s, "org1", &["A", "B"]);
    seed_user(&s, "bob", "internal_user");
    let v = s.admin(
        "/team/new",
        json!({
            "team_id": "t-new", "team_alias": "New", "organization_id": "org1",
            "models": ["A"], "max_budget": 10.5, "soft_budget": 5, "budget_duration": "30d",
            "tpm_limit": 1000, "rpm_limit": 10, "max_parallel_requests": 2,
            "metadata": {"cost_center": "x"},
            "members_with_roles": [
                {"role": "admin", "user_id": "bob"},
                {"role": "user", "user_email": "New.Person@example.com"}
            ]
        }),
    );
    assert_eq!(v["team_id"], "t-new");
    assert_eq!(v["team_alias"], "New");
    assert_eq!(v["organization_id"], "org1");
    assert_eq!(v["models"], json!(["A"]));
    assert_eq!(v["max_budget"], 10.5);
    assert_eq!(v["soft_budget"], 5.0);
    assert_eq!(v["spend"], 0.0);
    assert_eq!(v["budget_duration"], "30d");
    assert!(v["budget_reset_at"].as_str().unwrap() > v["created_at"].as_str().unwrap());
    assert_eq!(v["tpm_limit"], 1000);
    assert_eq!(v["rpm_limit"], 10);
    assert_eq!(v["max_parallel_requests"], 2);
    assert_eq!(v["blocked"], false);
    assert_eq!(v["metadata"], json!({"cost_center": "x"}));
    let members = v["members_with_roles"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert!(members
        .iter()
        .any(|m| m["user_id"] == "bob" && m["role"] == "admin"));
    assert!(members
        .iter()
        .any(|m| m["user_email"] == "New.Person@example.com" && m["role"] == "user"));
    // The member added by email was created as an internal_user; the master key is not added.
    assert_eq!(
        s.count("SELECT count(*) FROM users WHERE email = 'New.Person@example.com' AND user_role = 'internal_user'"),
        1
    );
    assert_eq!(
        s.count("SELECT count(*) FROM team_members WHERE team_id = 't-new'"),
        2
    );
    assert_eq!(
        s.count("SELECT count(*) FROM teams WHERE id = 't-new' AND organization_id = 'org1' AND max_budget = 10.5 AND rpm_limit = 10"),
        1
    );
}

#[test]
fn create_team_generates_an_id_and_duplicate_id_is_409() {
    let s = Server::start();
    let v = s.admin("/team/new", json!({}));
    let id = v["team_id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(v["organization_id"], Value::Null);
    assert_eq!(v["models"], json!([]));
    expect(&s, MASTER, "/team/new", json!({"team_id": id}), 409);
    assert_eq!(s.count("SELECT count(*) FROM teams"), 1);
}

#[test]
fn team_models_must_fit_the_org() {
    let s = Server::start();
    seed_org(&s, "ab", &["A", "B"]);
    seed_org(&s, "a", &["A"]);
    seed_org(&s, "open", &[]);
    let e = expect(
        &s,
        MASTER,
        "/team/new",
        json!({"organization_id": "ab", "models": ["A", "C"]}),
        400,
    );
    assert_eq!(e["error"]["param"], "models");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Team models [\"C\"]"), "{msg}");
    // An empty list inherits the org's set; it never exceeds it.
    s.admin("/team/new", json!({"organization_id": "a", "models": []}));
    // An access group is checked by what it expands to: grp-ab = A, B.
    let e = expect(
        &s,
        MASTER,
        "/team/new",
        json!({"organization_id": "a", "models": ["grp-ab"]}),
        400,
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("grp-ab"));
    s.admin(
        "/team/new",
        json!({"organization_id": "ab", "models": ["grp-ab"]}),
    );
    // all-org-models needs an org; all-team-models is never a team's.
    let e = expect(
        &s,
        MASTER,
        "/team/new",
        json!({"models": ["all-org-models"]}),
        400,
    );
    assert_eq!(e["error"]["param"], "models");
    expect(
        &s,
        MASTER,
        "/team/new",
        json!({"organization_id": "ab", "models": ["all-team-models"]}),
        400,
    );
    s.admin(
        "/team/new",
        json!({"organization_id": "a", "models": ["all-org-models"]}),
    );
    // all-proxy-models would exceed a restricted org, not an open one.
    expect(
        &s,
        MASTER,
        "/team/new",
        json!({"organization_id": "a", "models": ["all-proxy-models"]}),
        400,
    );
    s.admin(
        "/team/new",
        json!({"organization_id": "open", "models": ["all-proxy-models", "C", "D"]}),
    );
    // Without an org only the proxy bounds the team.
    s.admin("/team/new", json!({"models": ["C", "D", "openai/*"]}));
    assert_eq!(s.count("SELECT count(*) FROM teams"), 5);
}

#[test]
fn create_team_role_matrix() {
    let w = world();
    let body = |org: &str| json!({"organization_id": org, "models": ["A"]});
    let new = |who, body, status| Case::post(who, "/team/new", body, status);
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // Allowed: the org admin of org1, who becomes the team's admin.
        new("oadmin", body("org1"), 200),
        // The org admin listed among the members keeps the listed role (no second row).
        new("oadmin", json!({"organization_id": "org1",
            "members_with_roles": [{"role": "user", "user_id": "oadmin"}]}), 200),
        // Denied: another org's admin, plain org members, team admins, outsiders, viewers.
        new("oadmin2", body("org1"), 403), new("omember", body("org1"), 403),
        new("tadmin", body("org1"), 403), new("outsider", body("org1"), 403),
        new("iviewer", body("org1"), 403), new("pview", body("org1"), 403),
        // A team outside any org: proxy admins only.
        new("oadmin", json!({}), 403), new("outsider", json!({}), 403),
        // A missing org: 400 for the proxy admin, and no hint for anyone else.
        new(AS_MASTER, body("nope"), 400).param("organization_id"),
        new("outsider", body("nope"), 403),
        // The org admin is still bound by the org's models.
        new("oadmin", json!({"organization_id": "org1", "models": ["C"]}), 400).param("models"),
        // No key.
        new(ANON, json!({}), 401),
    ]);
    assert_eq!(
        roles(&v[0]),
        vec![("oadmin".to_string(), "admin".to_string())]
    );
    assert_eq!(v[0]["organization_id"], "org1");
    assert_eq!(
        roles(&v[1]),
        vec![("oadmin".to_string(), "user".to_string())]
    );
}

#[test]
fn create_team_bad_input_is_400_naming_the_field() {
    let s = Server::start();
    let before = snapshot(&s);
    let r = s.request(
        "POST",
        "/team/new",
        Some(MASTER),
        Some(b"{\"team_id\": "),
        &[],
    );
    assert_error(&r, 400);
    let r = s.request("POST", "/team/new", Some(MASTER), Some(b"[1]"), &[]);
    assert_error(&r, 400);
    for (body, param) in [
        (json!({"models": "A"}), "models"),
        (json!({"models": [1]}), "models"),
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"max_budget": "10"}), "max_budget"),
        (json!({"tpm_limit": -5}), "tpm_limit"),
        (json!({"rpm_limit": 1.5}), "rpm_limit"),
        (json!({"budget_duration": "soon"}), "budget_duration"),
        (json!({"metadata": []}), "metadata"),
        (json!({"blocked": "yes"}), "blocked"),
        (json!({"team_alias": 7}), "team_alias"),
        (json!({"team_id": ""}), "team_id"),
        (
            json!({"members_with_roles": [{"role": "owner", "user_id": "x"}]}),
            "members_with_roles",
        ),
        (
            json!({"members_with_roles": [{"role": "user"}]}),
            "members_with_roles",
        ),
        (json!({"members_with_roles": "x"}), "members_with_roles"),
    ] {
        let e = expect(&s, MASTER, "/team/new", body.clone(), 400);
        assert_eq!(e["error"]["param"], param, "{body}");
    }
    assert_eq!(snapshot(&s), before);
}

// ---------------------------------------------------------------------------------------------
// /team/update

#[test]
fn update_team_alias_and_metadata_role_matrix() {
    let w = world();
    let body = |a: &str| json!({"team_id": "t1", "team_alias": a, "metadata": {"k": a}});
    for who in [AS_MASTER, "oadmin", "tadmin"] {
        let v = w.expect(who, "/team/update", body(who), 200);
        assert_eq!(v["team_alias"], who);
        assert_eq!(v["metadata"], json!({"k": who}));
        let sql = format!("SELECT count(*) FROM teams WHERE id = 't1' AND alias = '{who}'");
        assert_eq!(w.count(&sql), 1);
    }
    let up = |who, body, status| Case::post(who, "/team/update", body, status);
    #[rustfmt::skip]
    run_cases(&w, &[
        // Visible but not changeable: 403.
        up("tuser", body("no"), 403), up("pview", body("no"), 403), up("iviewer", body("no"), 403),
        // Invisible: 404, like a missing team.
        up("oadmin2", body("no"), 404), up("outsider", body("no"), 404),
        up("omember", body("no"), 404),
        up(AS_MASTER, json!({"team_id": "nope"}), 404),
        up(AS_MASTER, json!({"team_alias": "x"}), 400).param("team_id"),
    ]);
}

#[test]
fn update_team_models_and_budgets_need_the_org_admin() {
    let w = world();
    let s = &w.s;
    let up = |who, body, status| Case::post(who, "/team/update", body, status);
    // A team admin never widens the team's models or budgets.
    #[rustfmt::skip]
    run_cases(&w, &[
        up("tadmin", json!({"team_id": "t1", "models": ["A", "B"]}), 403),
        up("tadmin", json!({"team_id": "t1", "models": ["A"]}), 403),
        up("tadmin", json!({"team_id": "t1", "max_budget": 1000}), 403),
        up("tadmin", json!({"team_id": "t1", "tpm_limit": 1000}), 403),
        up("tadmin", json!({"team_id": "t1", "rpm_limit": 1000}), 403),
        up("tadmin", json!({"team_id": "t1", "max_parallel_requests": 9}), 403),
        up("tadmin", json!({"team_id": "t1", "budget_duration": "1d"}), 403),
        up("tadmin", json!({"team_id": "t1", "team_alias": "x", "soft_budget": 1}), 403),
        up("tuser", json!({"team_id": "t1", "max_budget": 1}), 403),
    ]);
    // The org admin may, within the org's models.
    let v = w.expect(
        "oadmin",
        "/team/update",
        json!({"team_id": "t1", "models": ["A", "B"], "max_budget": 7, "rpm_limit": 3,
               "budget_duration": "1h"}),
        200,
    );
    assert_eq!(v["models"], json!(["A", "B"]));
    assert_eq!(v["max_budget"], 7.0);
    assert_eq!(v["rpm_limit"], 3);
    assert_eq!(v["budget_duration"], "1h");
    assert!(v["budget_reset_at"].is_string());
    assert_eq!(team_models(s, "t1"), vec!["A", "B"]);
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        up("oadmin", json!({"team_id": "t1", "models": ["A", "C"]}), 400),
        up(AS_MASTER, json!({"team_id": "t1", "models": ["grp"]}), 400),
        up(AS_MASTER, json!({"team_id": "t1", "max_budget": -3}), 400),
        // Another org's admin cannot touch this team at all.
        up("oadmin2", json!({"team_id": "t1", "models": ["A"]}), 404),
    ]);
    assert!(v[0]["error"]["message"].as_str().unwrap().contains("\"C\""));
    assert_eq!(team_models(s, "t1"), vec!["A", "B"]);
}

#[test]
fn moving_a_team_between_orgs() {
    let w = world();
    let s = &w.s;
    seed_org(s, "org3", &["B"]);
    seed_org_member(s, "org2", "oadmin", "org_admin");
    let key = seed_team_key(s, "t1", "tuser", Some("org1"));
    let token = litegate::auth::hash_key(&key);
    let key_org = || -> Option<String> {
        s.db()
            .query_row(
                "SELECT organization_id FROM api_keys WHERE token = ?1",
                [&token],
                |r| r.get(0),
            )
            .unwrap()
    };
    // Absent or null leaves the org unchanged.
    w.expect(
        AS_MASTER,
        "/team/update",
        json!({"team_id": "t1", "organization_id": null}),
        200,
    );
    assert_eq!(team_org(s, "t1").as_deref(), Some("org1"));
    // A team admin cannot move it; an admin of only the destination cannot either.
    w.expect(
        "tadmin",
        "/team/update",
        json!({"team_id": "t1", "organization_id": "org2"}),
        403,
    );
    w.expect(
        "oadmin2",
        "/team/update",
        json!({"team_id": "t1", "organization_id": "org2"}),
        404,
    );
    // The models must fit the new org (t1 has [A], org3 only [B]).
    let e = w.expect(
        AS_MASTER,
        "/team/update",
        json!({"team_id": "t1", "organization_id": "org3"}),
        400,
    );
    assert_eq!(e["error"]["param"], "organization_id");
    // Admin of both orgs: the team moves, and its keys with it.
    let v = w.expect(
        "oadmin",
        "/team/update",
        json!({"team_id": "t1", "organization_id": "org2"}),
        200,
    );
    assert_eq!(v["organization_id"], "org2");
    assert_eq!(team_org(s, "t1").as_deref(), Some("org2"));
    assert_eq!(key_org().as_deref(), Some("org2"));
    // A destination that does not exist: 400 for a proxy admin, 403 for an org admin.
    let e = w.expect(
        AS_MASTER,
        "/team/update",
        json!({"team_id": "t1", "organization_id": "ghost"}),
        400,
    );
    assert_eq!(e["error"]["param"], "organization_id");
    w.expect(
        "oadmin",
        "/team/update",
        json!({"team_id": "t1", "organization_id": "ghost"}),
        403,
    );
    // "" takes it out of its org: proxy admin only.
    w.expect(
        "oadmin",
        "/team/update",
        json!({"team_id": "t1", "organization_id": ""}),
        403,
    );
    let v = w.expect(
        AS_MASTER,
        "/team/update",
        json!({"team_id": "t1", "organization_id": ""}),
        200,
    );
    assert_eq!(v["organization_id"], Value::Null);
    assert_eq!(team_org(s, "t1"), None);
    assert_eq!(key_org(), None);
}

#[test]
fn a_team_following_its_org_cannot_leave_every_org() {
    let s = Server::start();
    seed_org(&s, "o", &["A"]);
    s.admin(
        "/team/new",
        json!({"team_id": "t", "organization_id": "o", "models": ["all-org-models"]}),
    );
    expect(
        &s,
        MASTER,
        "/team/update",
        json!({"team_id": "t", "organization_id": ""}),
        400,
    );
    assert_eq!(team_org(&s, "t").as_deref(), Some("o"));
}

// ---------------------------------------------------------------------------------------------
// /team/delete

#[test]
fn delete_team_removes_keys_memberships_and_member_budgets_together() {
    let w = world();
    let s = &w.s;
    seed_team_key(s, "t1", "tuser", Some("org1"));
    seed_team_key(s, "t1", "tadmin", Some("org1"));
    seed_team_key(s, "t2", "oadmin2", Some("org2"));
    s.admin(
        "/team/member_add",
        json!({"team_id": "t1", "member": {"role": "user", "user_id": "outsider"},
               "max_budget_in_team": 5}),
    );
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 1);
    // An unknown id among known ones: 404 and nothing deleted.
    let e = w.expect(
        AS_MASTER,
        "/team/delete",
        json!({"team_ids": ["t1", "nope"]}),
        404,
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("nope"));
    // Denied: team admins, members, viewers, another org's admin (cannot see it).
    for k in [&w["tadmin"], &w["tuser"], &w["pview"], &w["iviewer"]] {
        expect(s, k, "/team/delete", json!({"team_ids": ["t1"]}), 403);
    }
    // (outsider is a member of t1 since the member_add above: visible, so 403.)
    w.expect("outsider", "/team/delete", json!({"team_ids": ["t1"]}), 403);
    for k in [&w["oadmin2"], &w["omember"]] {
        expect(s, k, "/team/delete", json!({"team_ids": ["t1"]}), 404);
    }
    // One of two teams outside the caller's org: nothing deleted.
    w.expect(
        "oadmin2",
        "/team/delete",
        json!({"team_ids": ["t2", "t1"]}),
        404,
    );
    assert_eq!(s.count("SELECT count(*) FROM teams"), 2);
    let v = w.expect("oadmin", "/team/delete", json!({"team_ids": ["t1"]}), 200);
    assert_eq!(v["deleted_teams"], json!(["t1"]));
    assert_eq!(s.count("SELECT count(*) FROM teams WHERE id = 't1'"), 0);
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys WHERE team_id = 't1'"),
        0
    );
    assert_eq!(
        s.count("SELECT count(*) FROM team_members WHERE team_id = 't1'"),
        0
    );
    assert_eq!(s.count("SELECT count(*) FROM budgets"), 0);
    // The rest stays: the other team, its key, the users and their personal keys.
    assert_eq!(s.count("SELECT count(*) FROM teams WHERE id = 't2'"), 1);
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys WHERE team_id = 't2'"),
        1
    );
    assert_eq!(s.count("SELECT count(*) FROM users WHERE id = 'tuser'"), 1);
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys WHERE user_id = 'tuser' AND team_id IS NULL"),
        1
    );
    w.expect(AS_MASTER, "/team/delete", json!({}), 400);
    w.expect(AS_MASTER, "/team/delete", json!({"team_ids": "t2"}), 400);
}

#[test]
fn a_deleted_teams_key_no_longer_authenticates() {
    let w = world();
    let s = &w.s;
    let key = seed_team_key(s, "t1", "tuser", Some("org1"));
    assert_eq!(s.get("/team/info?team_id=t1", &key).status, 200);
    s.admin("/team/delete", json!({"team_ids": ["t1"]}));
    assert_error(&s.get("/team/list", &key), 401);
}

// ---------------------------------------------------------------------------------------------
// /team/info and /team/list

#[test]
fn team_info_shape_and_visibility() {
    let w = world();
    let s = &w.s;
    let raw = seed_team_key(s, "t1", "tuser", Some("org1"));
    for k in [
        MASTER,
        &w["pview"],
        &w["oadmin"],
        &w["tadmin"],
        &w["tuser"],
        &w["iviewer"],
    ] {
        let r = s.get("/team/info?team_id=t1", k);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["team_id"], "t1");
        assert_eq!(v["team_info"]["team_id"], "t1");
        assert_eq!(v["team_info"]["organization_id"], "org1");
        assert_eq!(v["team_info"]["models"], json!(["A"]));
        assert_eq!(
            v["team_info"]["members_with_roles"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
        let keys = v["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        // The token only for those who may read the key (issue 11): not a viewer member.
        let token = if k == &w["iviewer"] {
            Value::Null
        } else {
            json!(litegate::auth::hash_key(&raw))
        };
        assert_eq!(keys[0]["token"], token);
        assert_eq!(keys[0]["key_name"], litegate::auth::key_name(&raw));
        assert_eq!(keys[0]["user_id"], "tuser");
        assert_eq!(keys[0]["team_id"], "t1");
        assert!(!r.text().contains(&raw), "raw key leaked");
        let ms = v["team_memberships"].as_array().unwrap();
        assert_eq!(ms.len(), 3);
        assert!(ms.iter().all(|m| m["team_id"] == "t1"));
    }
    for k in [&w["oadmin2"], &w["outsider"], &w["omember"]] {
        assert_error(&s.get("/team/info?team_id=t1", k), 404);
    }
    assert_error(&s.get("/team/info?team_id=nope", MASTER), 404);
    let e = assert_error(&s.get("/team/info", MASTER), 400);
    assert_eq!(e["error"]["param"], "team_id");
    assert_error(
        &s.request("GET", "/team/info?team_id=t1", None, None, &[]),
        401,
    );
}

fn ids(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team_id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn team_list_is_scoped_to_the_caller() {
    let w = world();
    let s = &w.s;
    seed_team(s, "t3", None, &[]);
    let list = |k: &str, q: &str| {
        let r = s.get(&format!("/team/list{q}"), k);
        assert_eq!(r.status, 200, "{}", r.text());
        ids(&r.json())
    };
    assert_eq!(list(MASTER, ""), vec!["t1", "t2", "t3"]);
    assert_eq!(list(&w["pview"], ""), vec!["t1", "t2", "t3"]);
    assert_eq!(list(MASTER, "?organization_id=org2"), vec!["t2"]);
    assert_eq!(list(MASTER, "?user_id=tuser"), vec!["t1"]);
    assert_eq!(list(&w["oadmin"], ""), vec!["t1"]);
    assert_eq!(list(&w["oadmin2"], ""), vec!["t2"]);
    assert_eq!(list(&w["tuser"], ""), vec!["t1"]);
    assert_eq!(list(&w["iviewer"], ""), vec!["t1"]);
    // Filters never widen a non-admin's view.
    assert_eq!(
        list(&w["tuser"], "?organization_id=org2"),
        Vec::<String>::new()
    );
    assert!(list(&w["outsider"], "").is_empty());
    assert!(list(&w["omember"], "").is_empty());
    let r = s.get("/team/list", MASTER);
    let t1 = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["team_id"] == "t1")
        .cloned()
        .unwrap();
    assert_eq!(
        roles(&t1),
        vec![
            ("iviewer".to_string(), "user".to_string()),
            ("tadmin".to_string(), "admin".to_string()),
            ("tuser".to_string(), "user".to_string()),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Members

#[test]
fn member_add_update_delete() {
    let w = world();
    let s = &w.s;
    // A team admin adds one member by id and one (new) by email.
    let v = w.expect(
        "tadmin",
        "/team/member_add",
        json!({"team_id": "t1", "member": [
            {"role": "user", "user_id": "outsider"},
            {"role": "admin", "user_email": "fresh@example.com"}
        ], "max_budget_in_team": 2.5}),
        200,
    );
    assert_eq!(v["team_id"], "t1");
    assert_eq!(v["members_with_roles"].as_array().unwrap().len(), 5);
    assert_eq!(v["updated_users"].as_array().unwrap().len(), 2);
    let ms = v["updated_team_memberships"].as_array().unwrap();
    assert!(ms
        .iter()
        .all(|m| m["litellm_budget_table"]["max_budget"] == 2.5));
    assert_eq!(
        s.count("SELECT count(*) FROM budgets WHERE max_budget = 2.5"),
        2
    );
    assert_eq!(
        s.count("SELECT count(*) FROM team_members m JOIN users u ON u.id = m.user_id WHERE m.team_id = 't1' AND u.email = 'fresh@example.com' AND m.role = 'admin'"),
        1
    );
    // A member that is already there: 409, and the new one beside it is not written either.
    let e = w.expect(
        AS_MASTER,
        "/team/member_add",
        json!({"team_id": "t1", "member": [
            {"role": "user", "user_email": "another@example.com"},
            {"role": "user", "user_id": "tuser"}
        ]}),
        409,
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("tuser"));
    assert_eq!(
        s.count("SELECT count(*) FROM users WHERE email = 'another@example.com'"),
        0
    );
    // Who may add: not a plain member, a viewer, another org's admin or an outsider.
    let add = json!({"team_id": "t1", "member": {"role": "user", "user_id": "omember"}});
    for k in [&w["tuser"], &w["iviewer"], &w["pview"]] {
        expect(s, k, "/team/member_add", add.clone(), 403);
    }
    for k in [&w["oadmin2"], &w["omember"]] {
        expect(s, k, "/team/member_add", add.clone(), 404);
    }
    w.expect("oadmin", "/team/member_add", add.clone(), 200);
    // Bad input.
    for body in [
        json!({"team_id": "t1"}),
        json!({"team_id": "t1", "member": []}),
        json!({"team_id": "t1", "member": {"role": "owner", "user_id": "x"}}),
        json!({"team_id": "t1", "member": {"role": "user"}}),
        json!({"team_id": "t1", "member": {"role": "user", "user_id": "x"},
               "max_budget_in_team": -1}),
    ] {
        w.expect(AS_MASTER, "/team/member_add", body, 400);
    }
    w.expect(
        AS_MASTER,
        "/team/member_add",
        json!({"team_id": "nope", "member": {"role": "user", "user_id": "tuser"}}),
        404,
    );

    // member_update: role and budget.
    let v = w.expect(
        "tadmin",
        "/team/member_update",
        json!({"team_id": "t1", "user_id": "tuser", "role": "admin", "max_budget_in_team": 9}),
        200,
    );
    assert_eq!(v["role"], "admin");
    assert_eq!(v["max_budget_in_team"], 9.0);
    assert_eq!(
        s.count("SELECT count(*) FROM team_members m JOIN budgets b ON b.id = m.budget_id WHERE m.team_id = 't1' AND m.user_id = 'tuser' AND m.role = 'admin' AND b.max_budget = 9"),
        1
    );
    // Existing budget row is updated, not duplicated.
    let budgets = s.count("SELECT count(*) FROM budgets");
    let v = w.expect(
        AS_MASTER,
        "/team/member_update",
        json!({"team_id": "t1", "user_email": "TUSER@example.com", "max_budget_in_team": 4}),
        200,
    );
    assert_eq!(v["role"], "admin");
    assert_eq!(v["max_budget_in_team"], 4.0);
    assert_eq!(s.count("SELECT count(*) FROM budgets"), budgets);
    w.expect(
        AS_MASTER,
        "/team/member_update",
        json!({"team_id": "t1", "user_id": "tuser", "role": "owner"}),
        400,
    );
    w.expect(
        AS_MASTER,
        "/team/member_update",
        json!({"team_id": "t1", "user_id": "pview", "role": "user"}),
        404,
    );
    w.expect(
        "iviewer",
        "/team/member_update",
        json!({"team_id": "t1", "user_id": "iviewer", "role": "admin"}),
        403,
    );
    w.expect(
        "outsider",
        "/team/member_update",
        json!({"team_id": "t1", "user_id": "outsider", "role": "admin"}),
        403,
    );

    // member_delete: the membership, its budget and the member's keys in the team go. (tuser
    // is a team admin since the member_update above.)
    seed_team_key(s, "t1", "outsider", Some("org1"));
    w.expect(
        "tuser",
        "/team/member_delete",
        json!({"team_id": "t1", "user_id": "outsider"}),
        200,
    );
    assert_eq!(
        s.count("SELECT count(*) FROM team_members WHERE team_id = 't1' AND user_id = 'outsider'"),
        0
    );
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys WHERE team_id = 't1' AND user_id = 'outsider'"),
        0
    );
    assert_eq!(
        s.count("SELECT count(*) FROM api_keys WHERE team_id IS NULL AND user_id = 'outsider'"),
        1
    );
    assert_eq!(
        s.count("SELECT count(*) FROM users WHERE id = 'outsider'"),
        1
    );
    assert_eq!(
        s.count("SELECT count(*) FROM budgets WHERE max_budget = 2.5"),
        1
    );
    w.expect(
        AS_MASTER,
        "/team/member_delete",
        json!({"team_id": "t1", "user_id": "outsider"}),
        404,
    );
    w.expect(
        AS_MASTER,
        "/team/member_delete",
        json!({"team_id": "t1", "user_email": "nobody@example.com"}),
        404,
    );
    w.expect(
        AS_MASTER,
        "/team/member_delete",
        json!({"team_id": "t1"}),
        400,
    );
    w.expect(
        "iviewer",
        "/team/member_delete",
        json!({"team_id": "t1", "user_id": "tadmin"}),
        403,
    );
    w.expect(
        "oadmin2",
        "/team/member_delete",
        json!({"team_id": "t1", "user_id": "tadmin"}),
        404,
    );
    w.expect(
        "tadmin",
        "/team/member_delete",
        json!({"team_id": "t1", "user_email": "fresh@example.com"}),
        200,
    );
}

// ---------------------------------------------------------------------------------------------
// Block, models

#[test]
fn block_and_unblock() {
    let w = world();
    let s = &w.s;
    let blocked = || s.count("SELECT blocked FROM teams WHERE id = 't1'");
    for k in [MASTER, &w["oadmin"], &w["tadmin"]] {
        let v = expect(s, k, "/team/block", json!({"team_id": "t1"}), 200);
        assert_eq!(v["blocked"], true);
        assert_eq!(blocked(), 1);
        let v = expect(s, k, "/team/unblock", json!({"team_id": "t1"}), 200);
        assert_eq!(v["blocked"], false);
        assert_eq!(blocked(), 0);
    }
    for k in [&w["tuser"], &w["pview"], &w["iviewer"]] {
        expect(s, k, "/team/block", json!({"team_id": "t1"}), 403);
    }
    for k in [&w["oadmin2"], &w["outsider"]] {
        expect(s, k, "/team/block", json!({"team_id": "t1"}), 404);
    }
    s.admin("/team/block", json!({"team_id": "t1"}));
    w.expect("tuser", "/team/unblock", json!({"team_id": "t1"}), 403);
    assert_eq!(blocked(), 1);
    w.expect(AS_MASTER, "/team/block", json!({"team_id": "nope"}), 404);
    w.expect(AS_MASTER, "/team/block", json!({}), 400);
}

#[test]
fn model_add_and_delete() {
    let w = world();
    let s = &w.s;
    let v = w.expect(
        "oadmin",
        "/team/model/add",
        json!({"team_id": "t1", "models": ["B", "A"]}),
        200,
    );
    assert_eq!(v["models"], json!(["A", "B"]));
    let e = w.expect(
        AS_MASTER,
        "/team/model/add",
        json!({"team_id": "t1", "models": ["C"]}),
        400,
    );
    assert_eq!(e["error"]["param"], "models");
    assert!(e["error"]["message"].as_str().unwrap().contains("\"C\""));
    // A team admin can neither add nor remove (an emptied list would be unrestricted).
    w.expect(
        "tadmin",
        "/team/model/add",
        json!({"team_id": "t1", "models": ["B"]}),
        403,
    );
    w.expect(
        "tadmin",
        "/team/model/delete",
        json!({"team_id": "t1", "models": ["A"]}),
        403,
    );
    for k in [&w["tuser"], &w["pview"]] {
        expect(
            s,
            k,
            "/team/model/delete",
            json!({"team_id": "t1", "models": ["A"]}),
            403,
        );
    }
    w.expect(
        "oadmin2",
        "/team/model/add",
        json!({"team_id": "t1", "models": ["A"]}),
        404,
    );
    let v = w.expect(
        "oadmin",
        "/team/model/delete",
        json!({"team_id": "t1", "models": ["A", "Z"]}),
        200,
    );
    assert_eq!(v["models"], json!(["B"]));
    assert_eq!(team_models(s, "t1"), vec!["B"]);
    w.expect(AS_MASTER, "/team/model/add", json!({"team_id": "t1"}), 400);
    w.expect(
        AS_MASTER,
        "/team/model/add",
        json!({"team_id": "t1", "models": "A"}),
        400,
    );
    w.expect(
        AS_MASTER,
        "/team/model/add",
        json!({"team_id": "nope", "models": ["A"]}),
        404,
    );
    // A team without an org: proxy admins only, bounded by the proxy.
    seed_team(s, "free", None, &["A"]);
    seed_team_member(s, "free", "outsider", "admin");
    w.expect(
        "outsider",
        "/team/model/add",
        json!({"team_id": "free", "models": ["C"]}),
        403,
    );
    let v = w.expect(
        AS_MASTER,
        "/team/model/add",
        json!({"team_id": "free", "models": ["C"]}),
        200,
    );
    assert_eq!(v["models"], json!(["A", "C"]));
}
