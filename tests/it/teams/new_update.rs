//! /team/new and /team/update: fields, org models, role matrices, moving teams.

use super::*;

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
    let w = World::new();
    let v = w.admin("/team/new", json!({}));
    let id = v["team_id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(v["organization_id"], Value::Null);
    assert_eq!(v["models"], json!([]));
    w.expect(AS_MASTER, "/team/new", json!({"team_id": id}), 409);
    assert_eq!(w.count("SELECT count(*) FROM teams"), 1);
}

#[test]
fn team_models_must_fit_the_org() {
    let w = World::new();
    seed_org(&w, "ab", &["A", "B"]);
    seed_org(&w, "a", &["A"]);
    seed_org(&w, "open", &[]);
    let e = w.expect(
        AS_MASTER,
        "/team/new",
        json!({"organization_id": "ab", "models": ["A", "C"]}),
        400,
    );
    assert_eq!(e["error"]["param"], "models");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("Team models [\"C\"]"), "{msg}");
    // An empty list inherits the org's set; it never exceeds it.
    w.admin("/team/new", json!({"organization_id": "a", "models": []}));
    // An access group is checked by what it expands to: grp-ab = A, B.
    let e = w.expect(
        AS_MASTER,
        "/team/new",
        json!({"organization_id": "a", "models": ["grp-ab"]}),
        400,
    );
    assert!(e["error"]["message"].as_str().unwrap().contains("grp-ab"));
    w.admin(
        "/team/new",
        json!({"organization_id": "ab", "models": ["grp-ab"]}),
    );
    // all-org-models needs an org; all-team-models is never a team's.
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/team/new", json!({"models": ["all-org-models"]}), 400).param("models"),
        Case::post(AS_MASTER, "/team/new", json!({"organization_id": "ab", "models": ["all-team-models"]}), 400),
    ]);
    w.admin(
        "/team/new",
        json!({"organization_id": "a", "models": ["all-org-models"]}),
    );
    // all-proxy-models would exceed a restricted org, not an open one.
    w.expect(
        AS_MASTER,
        "/team/new",
        json!({"organization_id": "a", "models": ["all-proxy-models"]}),
        400,
    );
    w.admin(
        "/team/new",
        json!({"organization_id": "open", "models": ["all-proxy-models", "C", "D"]}),
    );
    // Without an org only the proxy bounds the team.
    w.admin("/team/new", json!({"models": ["C", "D", "openai/*"]}));
    assert_eq!(w.count("SELECT count(*) FROM teams"), 5);
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
    let w = World::new();
    let before = snapshot(&w);
    let r = w.request(
        "POST",
        "/team/new",
        Some(MASTER),
        Some(b"{\"team_id\": "),
        &[],
    );
    assert_error(&r, 400);
    let r = w.request("POST", "/team/new", Some(MASTER), Some(b"[1]"), &[]);
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
        let e = w.expect(AS_MASTER, "/team/new", body.clone(), 400);
        assert_eq!(e["error"]["param"], param, "{body}");
    }
    assert_eq!(snapshot(&w), before);
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
    assert_eq!(team_models(&w, "t1"), vec!["A", "B"]);
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        up("oadmin", json!({"team_id": "t1", "models": ["A", "C"]}), 400),
        up(AS_MASTER, json!({"team_id": "t1", "models": ["grp"]}), 400),
        up(AS_MASTER, json!({"team_id": "t1", "max_budget": -3}), 400),
        // Another org's admin cannot touch this team at all.
        up("oadmin2", json!({"team_id": "t1", "models": ["A"]}), 404),
    ]);
    assert!(v[0]["error"]["message"].as_str().unwrap().contains("\"C\""));
    assert_eq!(team_models(&w, "t1"), vec!["A", "B"]);
}

#[test]
fn moving_a_team_between_orgs() {
    let w = world();
    seed_org(&w, "org3", &["B"]);
    seed_org_member(&w, "org2", "oadmin", "org_admin");
    let key = seed_team_key(&w, "t1", "tuser", Some("org1"));
    let token = litegate::auth::hash_key(&key);
    let key_org = || -> Option<String> {
        w.value(
            "SELECT organization_id FROM api_keys WHERE token = ?1",
            [&token],
        )
    };
    let mv = |who, org: Value, status| {
        let body = json!({"team_id": "t1", "organization_id": org});
        Case::post(who, "/team/update", body, status)
    };
    // Absent or null leaves the org unchanged.
    run_cases(&w, &[mv(AS_MASTER, Value::Null, 200)]);
    assert_eq!(team_org(&w, "t1").as_deref(), Some("org1"));
    #[rustfmt::skip]
    run_cases(&w, &[
        // A team admin cannot move it; an admin of only the destination cannot either.
        mv("tadmin", json!("org2"), 403),
        mv("oadmin2", json!("org2"), 404),
        // The models must fit the new org (t1 has [A], org3 only [B]).
        mv(AS_MASTER, json!("org3"), 400).param("organization_id"),
    ]);
    // Admin of both orgs: the team moves, and its keys with it.
    let v = run_cases(&w, &[mv("oadmin", json!("org2"), 200)]);
    assert_eq!(v[0]["organization_id"], "org2");
    assert_eq!(team_org(&w, "t1").as_deref(), Some("org2"));
    assert_eq!(key_org().as_deref(), Some("org2"));
    #[rustfmt::skip]
    run_cases(&w, &[
        // A destination that does not exist: 400 for a proxy admin, 403 for an org admin.
        mv(AS_MASTER, json!("ghost"), 400).param("organization_id"),
        mv("oadmin", json!("ghost"), 403),
        // "" takes it out of its org: proxy admin only.
        mv("oadmin", json!(""), 403),
    ]);
    let v = run_cases(&w, &[mv(AS_MASTER, json!(""), 200)]);
    assert_eq!(v[0]["organization_id"], Value::Null);
    assert_eq!(team_org(&w, "t1"), None);
    assert_eq!(key_org(), None);
}

#[test]
fn a_team_following_its_org_cannot_leave_every_org() {
    let w = World::new();
    seed_org(&w, "o", &["A"]);
    w.admin(
        "/team/new",
        json!({"team_id": "t", "organization_id": "o", "models": ["all-org-models"]}),
    );
    w.expect(
        AS_MASTER,
        "/team/update",
        json!({"team_id": "t", "organization_id": ""}),
        400,
    );
    assert_eq!(team_org(&w, "t").as_deref(), Some("o"));
}
