//! /team/delete, /team/info and /team/list.

use super::*;

// ---------------------------------------------------------------------------------------------
// /team/delete

#[test]
fn delete_team_removes_keys_memberships_and_member_budgets_together() {
    let w = world();
    seed_team_key(&w, "t1", "tuser", Some("org1"));
    seed_team_key(&w, "t1", "tadmin", Some("org1"));
    seed_team_key(&w, "t2", "oadmin2", Some("org2"));
    w.admin(
        "/team/member_add",
        json!({"team_id": "t1", "member": {"role": "user", "user_id": "outsider"},
               "max_budget_in_team": 5}),
    );
    assert_eq!(w.count("SELECT count(*) FROM budgets"), 1);
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
        expect(&w, k, "/team/delete", json!({"team_ids": ["t1"]}), 403);
    }
    // (outsider is a member of t1 since the member_add above: visible, so 403.)
    w.expect("outsider", "/team/delete", json!({"team_ids": ["t1"]}), 403);
    for k in [&w["oadmin2"], &w["omember"]] {
        expect(&w, k, "/team/delete", json!({"team_ids": ["t1"]}), 404);
    }
    // One of two teams outside the caller's org: nothing deleted.
    w.expect(
        "oadmin2",
        "/team/delete",
        json!({"team_ids": ["t2", "t1"]}),
        404,
    );
    assert_eq!(w.count("SELECT count(*) FROM teams"), 2);
    let v = w.expect("oadmin", "/team/delete", json!({"team_ids": ["t1"]}), 200);
    assert_eq!(v["deleted_teams"], json!(["t1"]));
    assert_eq!(w.count("SELECT count(*) FROM teams WHERE id = 't1'"), 0);
    assert_eq!(
        w.count("SELECT count(*) FROM api_keys WHERE team_id = 't1'"),
        0
    );
    assert_eq!(
        w.count("SELECT count(*) FROM team_members WHERE team_id = 't1'"),
        0
    );
    assert_eq!(w.count("SELECT count(*) FROM budgets"), 0);
    // The rest stays: the other team, its key, the users and their personal keys.
    assert_eq!(w.count("SELECT count(*) FROM teams WHERE id = 't2'"), 1);
    assert_eq!(
        w.count("SELECT count(*) FROM api_keys WHERE team_id = 't2'"),
        1
    );
    assert_eq!(w.count("SELECT count(*) FROM users WHERE id = 'tuser'"), 1);
    assert_eq!(
        w.count("SELECT count(*) FROM api_keys WHERE user_id = 'tuser' AND team_id IS NULL"),
        1
    );
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/team/delete", json!({}), 400),
        Case::post(AS_MASTER, "/team/delete", json!({"team_ids": "t2"}), 400),
    ]);
}

#[test]
fn a_deleted_teams_key_no_longer_authenticates() {
    let w = world();
    let key = seed_team_key(&w, "t1", "tuser", Some("org1"));
    assert_eq!(w.get("/team/info?team_id=t1", &key).status, 200);
    w.admin("/team/delete", json!({"team_ids": ["t1"]}));
    assert_error(&w.get("/team/list", &key), 401);
}

// ---------------------------------------------------------------------------------------------
// /team/info and /team/list

#[test]
fn team_info_shape_and_visibility() {
    let w = world();
    let raw = seed_team_key(&w, "t1", "tuser", Some("org1"));
    for k in [
        MASTER,
        &w["pview"],
        &w["oadmin"],
        &w["tadmin"],
        &w["tuser"],
        &w["iviewer"],
    ] {
        let r = w.get("/team/info?team_id=t1", k);
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
        assert_error(&w.get("/team/info?team_id=t1", k), 404);
    }
    assert_error(&w.get("/team/info?team_id=nope", MASTER), 404);
    let e = assert_error(&w.get("/team/info", MASTER), 400);
    assert_eq!(e["error"]["param"], "team_id");
    assert_error(&w.anon("GET", "/team/info?team_id=t1"), 401);
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
