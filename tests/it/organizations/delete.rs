//! /organization/delete: the cascade, unknown ids, shared budgets and the role matrix.

use super::*;

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
    let x_budget: String = s.value("SELECT budget_id FROM organizations WHERE id = ?1", [&x]);
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
    assert_error_says(&r, 404, "no-such-org");
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
    let bid = s.admin_id("/budget/new", json!({"max_budget": 1}), "budget_id");
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
