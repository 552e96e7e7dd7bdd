//! /organization/member_add, member_update, member_delete.

use super::*;

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
    expect(
        &s,
        MASTER,
        "/organization/member_add",
        json!({"organization_id": x, "member": [{"user_id": "u2"}, {"user_id": "u2"}]}),
        409,
    );
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
    s.exec("DROP INDEX users_email");
    for (id, email) in [("d1", "dup@example.com"), ("d2", "DUP@example.com")] {
        run_sql(
            &s,
            "INSERT INTO users (id, email, user_role, created_at, updated_at)
             VALUES (?1, ?2, 'internal_user', '2026-01-01T00:00:00.000Z',
             '2026-01-01T00:00:00.000Z')",
            &[id.into(), email.into()],
        );
    }
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
    // By user_id, PATCH, as the org admin of X: role changes, global role does not.
    let r = w.send(
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
            &w,
            "SELECT count(*) FROM organization_members WHERE organization_id = ?1
             AND user_id = 'iux' AND user_role = 'org_admin'",
            &[w.id("X")]
        ),
        1
    );
    assert_eq!(
        w.count("SELECT count(*) FROM users WHERE id = 'iux' AND user_role = 'internal_user'"),
        1
    );
    // By user_email, POST: a budget is created, then updated in place.
    let budgets = w.count("SELECT count(*) FROM budgets");
    let v = w.admin(
        "/organization/member_update",
        json!({"organization_id": w.id("X"), "user_email": "IUX@example.com",
               "max_budget_in_organization": 12.5}),
    );
    assert_eq!(v["user_role"], "org_admin");
    assert_eq!(v["litellm_budget_table"]["max_budget"], 12.5);
    let bid = v["budget_id"].as_str().unwrap().to_string();
    assert_eq!(w.count("SELECT count(*) FROM budgets"), budgets + 1);
    let v = w.admin(
        "/organization/member_update",
        json!({"organization_id": w.id("X"), "user_id": "iux", "max_budget_in_organization": 20,
               "role": "internal_user_viewer"}),
    );
    assert_eq!(v["budget_id"], bid.as_str());
    assert_eq!(v["user_role"], "internal_user_viewer");
    assert_eq!(
        count_p(
            &w,
            "SELECT count(*) FROM budgets WHERE id = ?1 AND max_budget = 20",
            &[&bid]
        ),
        1
    );
    assert_eq!(w.count("SELECT count(*) FROM budgets"), budgets + 1);

    let before = snapshot(&w);
    let upd = |key: &str, body: Value| w.send("PATCH", "/organization/member_update", key, body);
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
    assert_eq!(snapshot(&w), before);
}

#[test]
fn member_delete_removes_membership_and_its_budget() {
    let w = world();
    let v = w.admin(
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
    let before = snapshot(&w);
    let del = |key: &str, body: Value| w.send("DELETE", "/organization/member_delete", key, body);
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
    let r = w.request(
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
    assert_eq!(snapshot(&w), before);

    // The budgets were set by a proxy admin: the org admin may not remove the member (adding
    // them again would drop the budget; authority.rs). A proxy admin removes m1 by id and m2
    // by email (POST form).
    assert_error(&del(&w["oax"], body.clone()), 403);
    assert_eq!(snapshot(&w), before);
    let r = del(&w["pa"], body.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user_id"], "m1");
    assert_eq!(r.json()["organization_id"], w.id("X"));
    w.call(
        "pa",
        "POST",
        "/organization/member_delete",
        json!({"organization_id": w.id("X"), "user_email": "M2@example.com"}),
        200,
    );
    assert_eq!(
        count_p(
            &w,
            "SELECT count(*) FROM organization_members WHERE organization_id = ?1
             AND user_id = 'm1'",
            &[w.id("X")]
        ),
        0
    );
    assert_eq!(
        count_p(
            &w,
            "SELECT count(*) FROM budgets WHERE id IN (?1, ?2)",
            &[&b1, &b2]
        ),
        0
    );
    // The users themselves stay.
    assert_eq!(w.count("SELECT count(*) FROM users WHERE id = 'm1'"), 1);
    assert_eq!(
        w.count("SELECT count(*) FROM users WHERE email = 'm2@example.com'"),
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
