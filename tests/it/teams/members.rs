//! Team members, block/unblock and team models.

use super::*;

// ---------------------------------------------------------------------------------------------
// Members

#[test]
fn member_add_update_delete() {
    let w = world();
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
        w.count("SELECT count(*) FROM budgets WHERE max_budget = 2.5"),
        2
    );
    assert_eq!(
        w.count("SELECT count(*) FROM team_members m JOIN users u ON u.id = m.user_id WHERE m.team_id = 't1' AND u.email = 'fresh@example.com' AND m.role = 'admin'"),
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
        w.count("SELECT count(*) FROM users WHERE email = 'another@example.com'"),
        0
    );
    // Who may add: not a plain member, a viewer, another org's admin or an outsider.
    let add = json!({"team_id": "t1", "member": {"role": "user", "user_id": "omember"}});
    for k in [&w["tuser"], &w["iviewer"], &w["pview"]] {
        expect(&w, k, "/team/member_add", add.clone(), 403);
    }
    for k in [&w["oadmin2"], &w["omember"]] {
        expect(&w, k, "/team/member_add", add.clone(), 404);
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
        w.count("SELECT count(*) FROM team_members m JOIN budgets b ON b.id = m.budget_id WHERE m.team_id = 't1' AND m.user_id = 'tuser' AND m.role = 'admin' AND b.max_budget = 9"),
        1
    );
    // Existing budget row is updated, not duplicated.
    let budgets = w.count("SELECT count(*) FROM budgets");
    let v = w.expect(
        AS_MASTER,
        "/team/member_update",
        json!({"team_id": "t1", "user_email": "TUSER@example.com", "max_budget_in_team": 4}),
        200,
    );
    assert_eq!(v["role"], "admin");
    assert_eq!(v["max_budget_in_team"], 4.0);
    assert_eq!(w.count("SELECT count(*) FROM budgets"), budgets);
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/team/member_update", json!({"team_id": "t1", "user_id": "tuser", "role": "owner"}), 400),
        Case::post(AS_MASTER, "/team/member_update", json!({"team_id": "t1", "user_id": "pview", "role": "user"}), 404),
        Case::post("iviewer", "/team/member_update", json!({"team_id": "t1", "user_id": "iviewer", "role": "admin"}), 403),
        Case::post("outsider", "/team/member_update", json!({"team_id": "t1", "user_id": "outsider", "role": "admin"}), 403),
    ]);

    // member_delete: the membership, its budget and the member's keys in the team go. (tuser
    // is a team admin since the member_update above.)
    seed_team_key(&w, "t1", "outsider", Some("org1"));
    w.expect(
        "tuser",
        "/team/member_delete",
        json!({"team_id": "t1", "user_id": "outsider"}),
        200,
    );
    assert_eq!(
        w.count("SELECT count(*) FROM team_members WHERE team_id = 't1' AND user_id = 'outsider'"),
        0
    );
    assert_eq!(
        w.count("SELECT count(*) FROM api_keys WHERE team_id = 't1' AND user_id = 'outsider'"),
        0
    );
    assert_eq!(
        w.count("SELECT count(*) FROM api_keys WHERE team_id IS NULL AND user_id = 'outsider'"),
        1
    );
    assert_eq!(
        w.count("SELECT count(*) FROM users WHERE id = 'outsider'"),
        1
    );
    assert_eq!(
        w.count("SELECT count(*) FROM budgets WHERE max_budget = 2.5"),
        1
    );
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/team/member_delete", json!({"team_id": "t1", "user_id": "outsider"}), 404),
        Case::post(AS_MASTER, "/team/member_delete", json!({"team_id": "t1", "user_email": "nobody@example.com"}), 404),
        Case::post(AS_MASTER, "/team/member_delete", json!({"team_id": "t1"}), 400),
        Case::post("iviewer", "/team/member_delete", json!({"team_id": "t1", "user_id": "tadmin"}), 403),
        Case::post("oadmin2", "/team/member_delete", json!({"team_id": "t1", "user_id": "tadmin"}), 404),
        Case::post("tadmin", "/team/member_delete", json!({"team_id": "t1", "user_email": "fresh@example.com"}), 200),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Block, models

#[test]
fn block_and_unblock() {
    let w = world();
    let blocked = || w.count("SELECT blocked FROM teams WHERE id = 't1'");
    for k in [MASTER, &w["oadmin"], &w["tadmin"]] {
        let v = expect(&w, k, "/team/block", json!({"team_id": "t1"}), 200);
        assert_eq!(v["blocked"], true);
        assert_eq!(blocked(), 1);
        let v = expect(&w, k, "/team/unblock", json!({"team_id": "t1"}), 200);
        assert_eq!(v["blocked"], false);
        assert_eq!(blocked(), 0);
    }
    for k in [&w["tuser"], &w["pview"], &w["iviewer"]] {
        expect(&w, k, "/team/block", json!({"team_id": "t1"}), 403);
    }
    for k in [&w["oadmin2"], &w["outsider"]] {
        expect(&w, k, "/team/block", json!({"team_id": "t1"}), 404);
    }
    w.admin("/team/block", json!({"team_id": "t1"}));
    w.expect("tuser", "/team/unblock", json!({"team_id": "t1"}), 403);
    assert_eq!(blocked(), 1);
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/team/block", json!({"team_id": "nope"}), 404),
        Case::post(AS_MASTER, "/team/block", json!({}), 400),
    ]);
}

#[test]
fn model_add_and_delete() {
    let w = world();
    let add = |who, team: &str, models: Value, status| {
        let body = json!({"team_id": team, "models": models});
        Case::post(who, "/team/model/add", body, status)
    };
    let del = |who, models: Value, status| {
        let body = json!({"team_id": "t1", "models": models});
        Case::post(who, "/team/model/delete", body, status)
    };
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        add("oadmin", "t1", json!(["B", "A"]), 200),
        add(AS_MASTER, "t1", json!(["C"]), 400).param("models"),
        // A team admin can neither add nor remove (an emptied list would be unrestricted).
        add("tadmin", "t1", json!(["B"]), 403),
        del("tadmin", json!(["A"]), 403),
        del("tuser", json!(["A"]), 403),
        del("pview", json!(["A"]), 403),
        add("oadmin2", "t1", json!(["A"]), 404),
        del("oadmin", json!(["A", "Z"]), 200),
    ]);
    assert_eq!(v[0]["models"], json!(["A", "B"]));
    assert!(v[1]["error"]["message"].as_str().unwrap().contains("\"C\""));
    assert_eq!(v[7]["models"], json!(["B"]));
    assert_eq!(team_models(&w, "t1"), vec!["B"]);
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/team/model/add", json!({"team_id": "t1"}), 400),
        add(AS_MASTER, "t1", json!("A"), 400),
        add(AS_MASTER, "nope", json!(["A"]), 404),
    ]);
    // A team without an org: proxy admins only, bounded by the proxy.
    seed_team(&w, "free", None, &["A"]);
    seed_team_member(&w, "free", "outsider", "admin");
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        add("outsider", "free", json!(["C"]), 403),
        add(AS_MASTER, "free", json!(["C"]), 200),
    ]);
    assert_eq!(v[1]["models"], json!(["A", "C"]));
}
