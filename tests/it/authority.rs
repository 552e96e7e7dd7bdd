//! Issue 11, item 2 (first half): credentials and limits never exceed the grantor. A key issued
//! for someone else carries no more than its issuer could grant; a lower rank cannot lift a
//! block or a limit a higher rank set; a removed member loses what the membership gave. Every
//! refusal leaves every table as it was (`snapshot`).

use crate::common::*;
use serde_json::json;

/// org1 [A, B] with team t1 [A, B] (and t2 [A] where nobody below is a member);
/// org2 [A, B, C] with team u1.
/// `padmin`: a proxy admin user, added to t1 by its team admin. `oadmin`: org admin of org1.
/// `tadmin`: admin of t1. `m`: a plain member of t1 who is also org admin of org2.
fn world() -> World {
    World::new()
        .orgs(&[("org1", &["A", "B"]), ("org2", &["A", "B", "C"])])
        .teams(&[
            ("t1", Some("org1"), &["A", "B"]),
            ("t2", Some("org1"), &["A"]),
            ("u1", Some("org2"), &["A"]),
        ])
        .users(&[("padmin", "proxy_admin")])
        .internal_users(&["oadmin", "tadmin", "m"])
        .org_members(&[("org1", "oadmin", "org_admin"), ("org2", "m", "org_admin")])
        .team_members(&[("t1", "tadmin", "admin"), ("t1", "m", "user")])
}

/// The master key demotes `oadmin` to a plain member of org1.
fn demote_oadmin(w: &World) {
    let body = json!({"organization_id": "org1", "user_id": "oadmin", "role": "internal_user"});
    w.call(AS_MASTER, "PATCH", "/organization/member_update", body, 200);
}

/// A key may act with proxy-admin authority: it can create an organization. The probe is
/// rolled back by deleting what it made, so later snapshots stay comparable.
fn acts_as_proxy_admin(s: &Server, key: &str) -> bool {
    let r = s.post(
        "/organization/new",
        key,
        json!({"organization_alias": "probe", "organization_id": "probe-org"}),
    );
    if r.status == 200 {
        s.admin(
            "/organization/delete",
            json!({"organization_ids": ["probe-org"]}),
        );
        return true;
    }
    assert_error(&r, 403);
    false
}

// ---------------------------------------------------------------------------------------------
// The escalation of issue 11: a team or org admin holding a proxy admin's key

#[test]
fn issue_11_team_admin_cannot_mint_a_key_for_a_proxy_admin_member() {
    let w = world();
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // The team admin adds a proxy admin user to their team (allowed: team membership only).
        Case::post("tadmin", "/team/member_add", json!({"team_id": "t1", "member": {"user_id": "padmin", "role": "user"}}), 200),
        Case::post("tadmin", "/key/generate", json!({"team_id": "t1", "user_id": "padmin"}), 403),
    ]);
    let message = v[1]["error"]["message"].as_str().unwrap();
    assert!(message.contains("proxy admin"), "{}", v[1]);
}

#[test]
fn issue_11_org_admin_cannot_mint_a_key_for_a_proxy_admin_member() {
    let w = world();
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("oadmin", "/team/member_add", json!({"team_id": "t2", "member": {"user_id": "padmin", "role": "user"}}), 200),
        Case::post("oadmin", "/key/generate", json!({"team_id": "t2", "user_id": "padmin"}), 403),
    ]);
    // A proxy admin viewer is a global admin role too.
    seed_user(&w, "pview", "proxy_admin_viewer");
    seed_team_member(&w, "t2", "pview", "user");
    w.expect(
        "oadmin",
        "/key/generate",
        json!({"team_id": "t2", "user_id": "pview"}),
        403,
    );
}

#[test]
fn issue_11_team_and_org_admins_cannot_regenerate_a_proxy_admins_key() {
    let w = world();
    seed_team_member(&w, "t1", "padmin", "user");
    let k = w.admin(
        "/key/generate",
        json!({"team_id": "t1", "user_id": "padmin"}),
    );
    let token = k["token"].as_str().unwrap().to_string();
    for admin in [&w["tadmin"], &w["oadmin"]] {
        #[rustfmt::skip]
        run_cases(&w, &[
            Case::post_key(admin, "/key/regenerate", json!({"key": token}), 403),
            Case::post_key(admin, &format!("/key/{token}/regenerate"), json!({}), 403),
        ]);
    }
    // The proxy admin's own key still acts as its owner.
    assert!(acts_as_proxy_admin(&w, k["key"].as_str().unwrap()));
}

/// The class, not just the example: a key someone else minted never acts with its owner's
/// global role or other memberships — also when the owner is promoted after minting.
#[test]
fn issue_11_key_minted_by_team_admin_never_acts_beyond_model_calls() {
    let w = world();
    let (minted, token) = w.gen_key_token("tadmin", json!({"team_id": "t1", "user_id": "m"}));
    assert_eq!(chat(&w, &minted, "A").status, 200);
    assert_eq!(
        chat(&w, &minted, "C").status,
        403,
        "outside the team's models"
    );
    // The owner is org admin of org2: the minted key must not act there.
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post_key(&minted, "/team/new", json!({"organization_id": "org2", "team_alias": "x"}), 403),
        Case::post_key(&minted, "/organization/member_add", json!({"organization_id": "org2", "member": {"user_id": "tadmin", "role": "org_admin"}}), 403),
        // No management as the owner either: no new credential, no change to the owner.
        Case::post_key(&minted, "/key/generate", json!({"team_id": "t1"}), 403),
        Case::post_key(&minted, "/key/regenerate", json!({"key": token}), 403),
        Case::post_key(&minted, "/user/update", json!({"user_id": "m", "user_email": "evil@example.com"}), 403),
    ]);
    // Promoted later: the minted key still carries nothing of the new role.
    w.admin(
        "/user/update",
        json!({"user_id": "m", "user_role": "proxy_admin"}),
    );
    assert!(!acts_as_proxy_admin(&w, &minted));
    expect(&w, &minted, "/key/generate", json!({}), 403);
    assert_error(&w.get("/user/list", &minted), 403);
    assert_error(&w.get("/key/list", &minted), 403);
    assert_error(&w.get("/spend/logs", &minted), 403);
    assert_eq!(
        chat(&w, &minted, "A").status,
        200,
        "model calls keep working"
    );
    // It reads itself, and nothing else of its owner.
    let me = w.get("/key/info", &minted);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["key"], token);
    let own = w.admin("/key/generate", json!({"user_id": "m"}));
    let r = w.get(
        &format!("/key/info?key={}", own["token"].as_str().unwrap()),
        &minted,
    );
    assert_error(&r, 404);
    assert_eq!(w.get("/v1/models", &minted).status, 200);
}

#[test]
fn issue_11_key_minted_by_org_admin_never_acts_as_its_owner() {
    let w = world();
    seed_team_member(&w, "t2", "m", "user");
    let k = w.expect(
        "oadmin",
        "/key/generate",
        json!({"team_id": "t2", "user_id": "m"}),
        200,
    );
    let minted = k["key"].as_str().unwrap().to_string();
    assert_eq!(chat(&w, &minted, "A").status, 200);
    expect(
        &w,
        &minted,
        "/team/new",
        json!({"organization_id": "org2", "team_alias": "x"}),
        403,
    );
    w.admin(
        "/user/update",
        json!({"user_id": "m", "user_role": "proxy_admin"}),
    );
    assert!(!acts_as_proxy_admin(&w, &minted));
}

/// Regenerating a member's own key hands the team admin a new raw key: it is limited the same
/// way. Regenerated by its owner, the key acts as its owner again.
#[test]
fn issue_11_regenerate_by_someone_else_lowers_the_key_to_model_calls() {
    let w = world();
    let own = w.call("m", "POST", "/key/generate", json!({"team_id": "t1"}), 200);
    let own_key = own["key"].as_str().unwrap().to_string();
    assert_eq!(w.get("/key/list", &own_key).status, 200, "the owner's key");
    let r = w.expect(
        "tadmin",
        "/key/regenerate",
        json!({"key": own["token"]}),
        200,
    );
    let taken = r["key"].as_str().unwrap().to_string();
    assert_error(
        &w.post("/key/generate", &taken, json!({"team_id": "t1"})),
        403,
    );
    assert_error(&w.get("/key/list", &taken), 403);
    assert_eq!(chat(&w, &taken, "A").status, 200);
    // The owner regenerates it with their personal key: theirs again.
    let r = w.expect("m", "/key/regenerate", json!({"key": r["token"]}), 200);
    let back = r["key"].as_str().unwrap().to_string();
    assert_eq!(w.get("/key/list", &back).status, 200);
}

#[test]
fn issue_11_key_minted_for_self_or_by_proxy_admin_acts_as_owner() {
    let w = world();
    let k = w.expect("tadmin", "/key/generate", json!({"team_id": "t1"}), 200);
    assert_eq!(
        w.get("/key/list", k["key"].as_str().unwrap()).status,
        200,
        "a key of one's own manages as its owner"
    );
    let k = w.admin("/key/generate", json!({"team_id": "t1", "user_id": "m"}));
    assert_eq!(w.get("/key/list", k["key"].as_str().unwrap()).status, 200);
}

#[test]
fn issue_11_key_update_cannot_move_a_key_to_gain_authority() {
    let w = world();
    let k = w.expect("tadmin", "/key/generate", json!({"team_id": "t1"}), 200);
    for body in [
        json!({"key": k["token"], "user_id": "padmin"}),
        json!({"key": k["token"], "team_id": "u1"}),
        json!({"key": k["token"], "team_id": null}),
    ] {
        w.expect("tadmin", "/key/update", body, 403);
    }
    // A team admin mints only for members of the team.
    w.expect(
        "tadmin",
        "/key/generate",
        json!({"team_id": "t1", "user_id": "oadmin"}),
        403,
    );
    // Moved by a proxy admin to another user, the raw key (held by the old owner) must not
    // act as the new owner.
    w.admin(
        "/key/update",
        json!({"key": k["token"], "user_id": "padmin"}),
    );
    assert!(!acts_as_proxy_admin(&w, k["key"].as_str().unwrap()));
}

// ---------------------------------------------------------------------------------------------
// A lower rank cannot lift what a higher rank set

#[test]
fn issue_11_team_blocked_by_org_admin_stays_blocked_for_team_admin() {
    let w = world();
    let k = w.expect("m", "/key/generate", json!({"team_id": "t1"}), 200);
    let key = k["key"].as_str().unwrap().to_string();
    w.expect("oadmin", "/team/block", json!({"team_id": "t1"}), 200);
    assert_eq!(
        chat(&w, &key, "A").status / 100,
        4,
        "a blocked team's key is refused"
    );
    let v = w.expect("tadmin", "/team/unblock", json!({"team_id": "t1"}), 403);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("org admin"),
        "{v}"
    );
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("tadmin", "/team/update", json!({"team_id": "t1", "blocked": false}), 403),
        // Blocking again does not lower who blocked it.
        Case::post("tadmin", "/team/block", json!({"team_id": "t1"}), 200),
        Case::post("tadmin", "/team/unblock", json!({"team_id": "t1"}), 403),
        // Blocked by the proxy admin: the org admin cannot lift it either.
        Case::post(AS_MASTER, "/team/block", json!({"team_id": "t2"}), 200),
        Case::post("oadmin", "/team/unblock", json!({"team_id": "t2"}), 403),
        // The same rank or above can.
        Case::post("oadmin", "/team/unblock", json!({"team_id": "t1"}), 200),
    ]);
    assert_eq!(w.get("/v1/models", &key).status, 200);
    // A block by the team admin is the team admin's to lift.
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("tadmin", "/team/block", json!({"team_id": "t1"}), 200),
        Case::post("tadmin", "/team/unblock", json!({"team_id": "t1"}), 200),
    ]);
}

#[test]
fn issue_11_key_blocked_or_limited_by_a_higher_rank_is_not_loosened_below_it() {
    let w = world();
    let k = w.expect("m", "/key/generate", json!({"team_id": "t1"}), 200);
    let token = k["token"].as_str().unwrap().to_string();
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("oadmin", "/key/block", json!({"key": token}), 200),
        Case::post("tadmin", "/key/unblock", json!({"key": token}), 403),
        Case::post("tadmin", "/key/update", json!({"key": token, "blocked": false}), 403),
        Case::post("tadmin", "/key/regenerate", json!({"key": token, "blocked": false}), 403),
        Case::post("oadmin", "/key/unblock", json!({"key": token}), 200),
        // Limits set by the org admin: the team admin only tightens them.
        Case::post("oadmin", "/key/update", json!({"key": token, "max_budget": 5.0, "rpm_limit": 10, "tpm_limit": 1000, "max_parallel_requests": 2, "duration": "1h", "models": ["A"], "budget_duration": "30d"}), 200),
    ]);
    for loosen in [
        json!({"max_budget": 50.0}),
        json!({"max_budget": null}),
        json!({"rpm_limit": 11}),
        json!({"tpm_limit": null}),
        json!({"max_parallel_requests": 3}),
        json!({"duration": "2h"}),
        json!({"duration": null}),
        json!({"models": ["A", "B"]}),
        json!({"models": []}),
        json!({"models": ["all-team-models"]}),
        json!({"budget_duration": "1d"}),
    ] {
        let mut body = loosen.clone();
        body["key"] = json!(token);
        #[rustfmt::skip]
        run_cases(&w, &[
            Case::post("tadmin", "/key/update", body.clone(), 403),
            Case::post("tadmin", "/key/regenerate", body, 403),
        ]);
    }
    // Tightening is fine, and does not hand the limits to the lower rank.
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("tadmin", "/key/update", json!({"key": token, "max_budget": 4.0, "rpm_limit": 5, "duration": "30m"}), 200),
        Case::post("tadmin", "/key/update", json!({"key": token, "max_budget": 4.5}), 403),
        // The owner (below the team admin too) cannot loosen them either.
        Case::post("m", "/key/update", json!({"key": token, "models": ["A", "B"]}), 403),
        // The org admin still can.
        Case::post("oadmin", "/key/update", json!({"key": token, "max_budget": 50.0, "models": ["A", "B"]}), 200),
    ]);
}

#[test]
fn issue_11_team_admin_cannot_lift_member_budgets_set_above_them() {
    let w = world();
    for uid in ["tadmin", "m"] {
        #[rustfmt::skip]
        run_cases(&w, &[
            Case::post("oadmin", "/team/member_update", json!({"team_id": "t1", "user_id": uid, "max_budget_in_team": 1.0}), 200),
            Case::post("tadmin", "/team/member_update", json!({"team_id": "t1", "user_id": uid, "max_budget_in_team": 100.0}), 403),
        ]);
    }
    // Removing the member and adding them again would drop the budget: refused too.
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("tadmin", "/team/member_delete", json!({"team_id": "t1", "user_id": "m"}), 403),
        // Lowering is fine.
        Case::post("tadmin", "/team/member_update", json!({"team_id": "t1", "user_id": "m", "max_budget_in_team": 0.5}), 200),
    ]);
    // A budget the team admin set is theirs to change.
    seed_user(&w, "n", "internal_user");
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("tadmin", "/team/member_add", json!({"team_id": "t1", "member": {"user_id": "n"}, "max_budget_in_team": 1.0}), 200),
        Case::post("tadmin", "/team/member_update", json!({"team_id": "t1", "user_id": "n", "max_budget_in_team": 3.0}), 200),
        // The org admin's rank holds after the proxy admin lowers theirs too.
        Case::post(AS_MASTER, "/team/member_update", json!({"team_id": "t1", "user_id": "n", "max_budget_in_team": 2.0}), 200),
        Case::post("oadmin", "/team/member_update", json!({"team_id": "t1", "user_id": "n", "max_budget_in_team": 2.5}), 403),
    ]);
}

#[test]
fn issue_11_org_admin_cannot_lift_team_limits_a_proxy_admin_set() {
    let w = world();
    w.expect(
        AS_MASTER,
        "/team/update",
        json!({"team_id": "t1", "max_budget": 10.0, "rpm_limit": 100, "models": ["A"]}),
        200,
    );
    for loosen in [
        json!({"max_budget": 20.0}),
        // A period where there was none makes the budget reset.
        json!({"budget_duration": "1d"}),
        json!({"rpm_limit": 200}),
        json!({"models": ["A", "B"]}),
        json!({"models": []}),
        json!({"models": ["all-org-models"]}),
    ] {
        let mut body = loosen;
        body["team_id"] = json!("t1");
        w.expect("oadmin", "/team/update", body, 403);
    }
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("oadmin", "/team/model/add", json!({"team_id": "t1", "models": ["B"]}), 403),
        // Deleting the only model would leave the list empty: unrestricted.
        Case::post("oadmin", "/team/model/delete", json!({"team_id": "t1", "models": ["A"]}), 403),
        // Tightening is allowed.
        Case::post("oadmin", "/team/update", json!({"team_id": "t1", "max_budget": 5.0, "rpm_limit": 50}), 200),
        // The team admin never changes them (API.md §5), tighter or not.
        Case::post("tadmin", "/team/update", json!({"team_id": "t1", "max_budget": 1.0}), 403),
    ]);
}

#[test]
fn issue_11_org_admin_cannot_lift_their_own_org_member_budget() {
    let w = world();
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/organization/member_update", json!({"organization_id": "org1", "user_id": "oadmin", "max_budget_in_organization": 1.0}), 200),
        Case::post("oadmin", "/organization/member_update", json!({"organization_id": "org1", "user_id": "oadmin", "max_budget_in_organization": 100.0}), 403),
    ]);
    let before = snapshot(&w);
    let r = w.send(
        "DELETE",
        "/organization/member_delete",
        &w["oadmin"],
        json!({"organization_id": "org1", "user_id": "oadmin"}),
    );
    assert_error(&r, 403);
    assert_eq!(snapshot(&w), before);
    w.expect(
        "oadmin",
        "/organization/member_update",
        json!({"organization_id": "org1", "user_id": "oadmin", "max_budget_in_organization": 0.5}),
        200,
    );
}

// ---------------------------------------------------------------------------------------------
// Removal takes away what the membership gave

#[test]
fn issue_11_org_admin_removed_or_demoted_loses_keys_held_as_admin() {
    let w = world();
    // As org admin of org1, oadmin mints keys for themselves in t2 (not a member there) and
    // a personal key in org1.
    let in_team = w.gen_key("oadmin", json!({"team_id": "t2"}));
    let personal = w.gen_key(
        "oadmin",
        json!({"organization_id": "org1", "models": ["A"]}),
    );
    assert_eq!(chat(&w, &in_team, "A").status, 200);
    assert_eq!(chat(&w, &personal, "A").status, 200);
    // Demoted: the key in a team they do not belong to stops; the personal key stays.
    demote_oadmin(&w);
    assert_error(&w.get("/v1/models", &in_team), 401);
    assert_eq!(chat(&w, &personal, "A").status, 200);
    // Removed: the personal key of the org goes too.
    w.call(
        AS_MASTER,
        "DELETE",
        "/organization/member_delete",
        json!({"organization_id": "org1", "user_id": "oadmin"}),
        200,
    );
    assert_error(&w.get("/v1/models", &personal), 401);
    // Their personal key outside the org is theirs still.
    assert_eq!(w.get("/v1/models", &w["oadmin"]).status, 200);
}

#[test]
fn issue_11_team_member_removed_or_user_deleted_loses_keys() {
    let w = world();
    let own = w.gen_key("m", json!({"team_id": "t1"}));
    let minted = w.gen_key("tadmin", json!({"team_id": "t1", "user_id": "m"}));
    w.expect(
        "tadmin",
        "/team/member_delete",
        json!({"team_id": "t1", "user_id": "m"}),
        200,
    );
    assert_error(&w.get("/v1/models", &own), 401);
    assert_error(&w.get("/v1/models", &minted), 401);
    // A deleted user's keys stop.
    let tkey = w.gen_key("tadmin", json!({"team_id": "t1"}));
    w.admin("/user/delete", json!({"user_ids": ["tadmin"]}));
    assert_error(&w.get("/v1/models", &tkey), 401);
    assert_error(&w.get("/v1/models", &w["tadmin"]), 401);
}

/// Deny by default: a key issued by someone else is refused on every management route (403,
/// nothing written), whatever its owner may do with a key of their own.
#[test]
fn issue_11_calls_only_key_is_refused_on_every_management_route() {
    let mut w = world();
    // The owner is a team admin and an org admin elsewhere: rights the minted key must not use.
    seed_team_member(&w, "u1", "m", "admin");
    w.admin(
        "/team/member_update",
        json!({"team_id": "t1", "user_id": "m", "role": "admin"}),
    );
    let (minted, token) = w.gen_key_token("tadmin", json!({"team_id": "t1", "user_id": "m"}));
    w.name_key("minted", &minted);
    let c = |method, path: &str, body| Case::new("minted", method, path, body, 403);
    #[rustfmt::skip]
    run_cases(&w, &[
        c("POST", "/organization/new", json!({"organization_alias": "x"})),
        c("PATCH", "/organization/update", json!({"organization_id": "org2", "organization_alias": "y"})),
        c("DELETE", "/organization/delete", json!({"organization_ids": ["org2"]})),
        c("GET", "/organization/list", json!({})),
        c("GET", "/organization/info?organization_id=org2", json!({})),
        c("POST", "/organization/member_add", json!({"organization_id": "org2", "member": {"user_id": "tadmin"}})),
        c("PATCH", "/organization/member_update", json!({"organization_id": "org2", "user_id": "m", "role": "internal_user"})),
        c("DELETE", "/organization/member_delete", json!({"organization_id": "org2", "user_id": "m"})),
        c("POST", "/budget/new", json!({"max_budget": 1.0})),
        c("GET", "/budget/list", json!({})),
        c("POST", "/team/new", json!({"organization_id": "org2"})),
        c("POST", "/team/update", json!({"team_id": "t1", "team_alias": "z"})),
        c("POST", "/team/delete", json!({"team_ids": ["u1"]})),
        c("GET", "/team/info?team_id=t1", json!({})),
        c("GET", "/team/list", json!({})),
        c("POST", "/team/member_add", json!({"team_id": "t1", "member": {"user_id": "oadmin", "role": "admin"}})),
        c("POST", "/team/member_delete", json!({"team_id": "t1", "user_id": "tadmin"})),
        c("POST", "/team/member_update", json!({"team_id": "t1", "user_id": "tadmin", "role": "user"})),
        c("POST", "/team/block", json!({"team_id": "u1"})),
        c("POST", "/team/unblock", json!({"team_id": "u1"})),
        c("POST", "/team/model/add", json!({"team_id": "u1", "models": ["B"]})),
        c("POST", "/user/new", json!({"user_id": "z"})),
        c("GET", "/user/info?user_id=m", json!({})),
        c("POST", "/user/update", json!({"user_id": "m", "password": "hunter22hunter22"})),
        c("POST", "/user/delete", json!({"user_ids": ["tadmin"]})),
        c("GET", "/user/list", json!({})),
        c("POST", "/key/generate", json!({"team_id": "t1"})),
        c("POST", "/key/update", json!({"key": token, "max_budget": 1000.0})),
        c("POST", "/key/delete", json!({"keys": [token]})),
        c("GET", "/key/list", json!({})),
        c("POST", "/key/block", json!({"key": token})),
        c("POST", "/key/unblock", json!({"key": token})),
        c("POST", "/key/regenerate", json!({"key": token})),
        c("POST", &format!("/key/{token}/regenerate"), json!({})),
        c("GET", "/spend/logs", json!({})),
        c("POST", "/admin/backup", json!({})),
        c("GET", "/ui/me", json!({})),
        c("GET", "/ui/key_model_options?team_id=t1", json!({})),
    ]);
    // What it may do.
    assert_eq!(w.get("/key/info", &minted).status, 200);
    assert_eq!(w.get("/v1/models", &minted).status, 200);
    assert_eq!(w.get("/model/info", &minted).status, 200);
    assert_eq!(chat(&w, &minted, "A").status, 200);
}

/// The raw key of a calls-only key stays with whoever issued it: when they lose the admin role
/// they issued it under (or are deleted), the key goes. Keys the owner made stay.
#[test]
fn issue_11_admin_who_loses_the_role_loses_the_keys_they_issued() {
    let w = world();
    let mint = |by: &str, team: &str| -> String {
        let k = expect(
            &w,
            by,
            "/key/generate",
            json!({"team_id": team, "user_id": "m"}),
            200,
        );
        let key = k["key"].as_str().unwrap().to_string();
        assert_eq!(chat(&w, &key, "A").status, 200);
        key
    };
    let own = w.gen_key("m", json!({"team_id": "t1"}));
    // Demoted from team admin.
    let k1 = mint(&w["tadmin"], "t1");
    w.expect(
        "oadmin",
        "/team/member_update",
        json!({"team_id": "t1", "user_id": "tadmin", "role": "user"}),
        200,
    );
    assert_error(&w.get("/v1/models", &k1), 401);
    // Removed from the team.
    w.expect(
        "oadmin",
        "/team/member_update",
        json!({"team_id": "t1", "user_id": "tadmin", "role": "admin"}),
        200,
    );
    let k2 = mint(&w["tadmin"], "t1");
    w.expect(
        "oadmin",
        "/team/member_delete",
        json!({"team_id": "t1", "user_id": "tadmin"}),
        200,
    );
    assert_error(&w.get("/v1/models", &k2), 401);
    assert_eq!(chat(&w, &own, "A").status, 200, "the owner's own key stays");
    // Demoted from org admin: keys issued in the org's teams go.
    seed_team_member(&w, "t2", "m", "user");
    let k3 = mint(&w["oadmin"], "t2");
    demote_oadmin(&w);
    assert_error(&w.get("/v1/models", &k3), 401);
    // The issuer deleted.
    let ta2 = seed_user(&w, "ta2", "internal_user");
    seed_team_member(&w, "t1", "ta2", "admin");
    let k4 = mint(&ta2, "t1");
    w.admin("/user/delete", json!({"user_ids": ["ta2"]}));
    assert_error(&w.get("/v1/models", &k4), 401);
    assert_eq!(chat(&w, &own, "A").status, 200);
}
