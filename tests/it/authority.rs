//! Issue 11, item 2 (first half): credentials and limits never exceed the grantor. A key issued
//! for someone else carries no more than its issuer could grant; a lower rank cannot lift a
//! block or a limit a higher rank set; a removed member loses what the membership gave. Every
//! refusal leaves every table as it was (`snapshot`).

use crate::common::*;
use serde_json::{json, Value};

/// org1 [A, B] with team t1 [A, B] (and t2 [A] where nobody below is a member);
/// org2 [A, B, C] with team u1.
/// `padmin`: a proxy admin user, added to t1 by its team admin. `oadmin`: org admin of org1.
/// `tadmin`: admin of t1. `m`: a plain member of t1 who is also org admin of org2.
struct World {
    s: Server,
    oadmin: String,
    tadmin: String,
    m: String,
}

fn world() -> World {
    let s = Server::start();
    seed_org(&s, "org1", &["A", "B"]);
    seed_org(&s, "org2", &["A", "B", "C"]);
    seed_team(&s, "t1", Some("org1"), &["A", "B"]);
    seed_team(&s, "t2", Some("org1"), &["A"]);
    seed_team(&s, "u1", Some("org2"), &["A"]);
    seed_user(&s, "padmin", "proxy_admin");
    let oadmin = seed_user(&s, "oadmin", "internal_user");
    let tadmin = seed_user(&s, "tadmin", "internal_user");
    let m = seed_user(&s, "m", "internal_user");
    seed_org_member(&s, "org1", "oadmin", "org_admin");
    seed_org_member(&s, "org2", "m", "org_admin");
    seed_team_member(&s, "t1", "tadmin", "admin");
    seed_team_member(&s, "t1", "m", "user");
    World {
        s,
        oadmin,
        tadmin,
        m,
    }
}

/// Sends and asserts the status; a refused call must leave every table as it was.
fn expect(s: &Server, key: &str, path: &str, body: Value, status: u16) -> Value {
    let before = snapshot(s);
    let r = s.post(path, key, body.clone());
    if status == 200 {
        assert_eq!(r.status, 200, "{path} {body} -> {}", r.text());
        r.json()
    } else {
        let v = assert_error(&r, status);
        assert_eq!(
            snapshot(s),
            before,
            "refused {path} {body} changed the database"
        );
        v
    }
}

fn chat(s: &Server, key: &str, model: &str) -> u16 {
    s.post(
        "/v1/chat/completions",
        key,
        json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .status
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
    let s = &w.s;
    // The team admin adds a proxy admin user to their team (allowed: team membership only).
    expect(
        s,
        &w.tadmin,
        "/team/member_add",
        json!({"team_id": "t1", "member": {"user_id": "padmin", "role": "user"}}),
        200,
    );
    let v = expect(
        s,
        &w.tadmin,
        "/key/generate",
        json!({"team_id": "t1", "user_id": "padmin"}),
        403,
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("proxy admin"),
        "{v}"
    );
}

#[test]
fn issue_11_org_admin_cannot_mint_a_key_for_a_proxy_admin_member() {
    let w = world();
    let s = &w.s;
    expect(
        s,
        &w.oadmin,
        "/team/member_add",
        json!({"team_id": "t2", "member": {"user_id": "padmin", "role": "user"}}),
        200,
    );
    expect(
        s,
        &w.oadmin,
        "/key/generate",
        json!({"team_id": "t2", "user_id": "padmin"}),
        403,
    );
    // A proxy admin viewer is a global admin role too.
    seed_user(s, "pview", "proxy_admin_viewer");
    seed_team_member(s, "t2", "pview", "user");
    expect(
        s,
        &w.oadmin,
        "/key/generate",
        json!({"team_id": "t2", "user_id": "pview"}),
        403,
    );
}

#[test]
fn issue_11_team_and_org_admins_cannot_regenerate_a_proxy_admins_key() {
    let w = world();
    let s = &w.s;
    seed_team_member(s, "t1", "padmin", "user");
    let k = s.admin(
        "/key/generate",
        json!({"team_id": "t1", "user_id": "padmin"}),
    );
    let token = k["token"].as_str().unwrap().to_string();
    for admin in [&w.tadmin, &w.oadmin] {
        expect(s, admin, "/key/regenerate", json!({"key": token}), 403);
        expect(
            s,
            admin,
            &format!("/key/{token}/regenerate"),
            json!({}),
            403,
        );
    }
    // The proxy admin's own key still acts as its owner.
    assert!(acts_as_proxy_admin(s, k["key"].as_str().unwrap()));
}

/// The class, not just the example: a key someone else minted never acts with its owner's
/// global role or other memberships — also when the owner is promoted after minting.
#[test]
fn issue_11_key_minted_by_team_admin_never_acts_beyond_model_calls() {
    let w = world();
    let s = &w.s;
    let k = expect(
        s,
        &w.tadmin,
        "/key/generate",
        json!({"team_id": "t1", "user_id": "m"}),
        200,
    );
    let minted = k["key"].as_str().unwrap().to_string();
    let token = k["token"].as_str().unwrap().to_string();
    assert_eq!(chat(s, &minted, "A"), 200);
    assert_eq!(chat(s, &minted, "C"), 403, "outside the team's models");
    // The owner is org admin of org2: the minted key must not act there.
    expect(
        s,
        &minted,
        "/team/new",
        json!({"organization_id": "org2", "team_alias": "x"}),
        403,
    );
    expect(
        s,
        &minted,
        "/organization/member_add",
        json!({"organization_id": "org2", "member": {"user_id": "tadmin", "role": "org_admin"}}),
        403,
    );
    // No management as the owner either: no new credential, no change to the owner.
    expect(s, &minted, "/key/generate", json!({"team_id": "t1"}), 403);
    expect(s, &minted, "/key/regenerate", json!({"key": token}), 403);
    expect(
        s,
        &minted,
        "/user/update",
        json!({"user_id": "m", "user_email": "evil@example.com"}),
        403,
    );
    // Promoted later: the minted key still carries nothing of the new role.
    s.admin(
        "/user/update",
        json!({"user_id": "m", "user_role": "proxy_admin"}),
    );
    assert!(!acts_as_proxy_admin(s, &minted));
    expect(s, &minted, "/key/generate", json!({}), 403);
    assert_error(&s.get("/user/list", &minted), 403);
    assert_error(&s.get("/key/list", &minted), 403);
    assert_error(&s.get("/spend/logs", &minted), 403);
    assert_eq!(chat(s, &minted, "A"), 200, "model calls keep working");
    // It reads itself, and nothing else of its owner.
    let me = s.get("/key/info", &minted);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["key"], token);
    let own = s.admin("/key/generate", json!({"user_id": "m"}));
    let r = s.get(
        &format!("/key/info?key={}", own["token"].as_str().unwrap()),
        &minted,
    );
    assert_error(&r, 404);
    assert_eq!(s.get("/v1/models", &minted).status, 200);
}

#[test]
fn issue_11_key_minted_by_org_admin_never_acts_as_its_owner() {
    let w = world();
    let s = &w.s;
    seed_team_member(s, "t2", "m", "user");
    let k = expect(
        s,
        &w.oadmin,
        "/key/generate",
        json!({"team_id": "t2", "user_id": "m"}),
        200,
    );
    let minted = k["key"].as_str().unwrap().to_string();
    assert_eq!(chat(s, &minted, "A"), 200);
    expect(
        s,
        &minted,
        "/team/new",
        json!({"organization_id": "org2", "team_alias": "x"}),
        403,
    );
    s.admin(
        "/user/update",
        json!({"user_id": "m", "user_role": "proxy_admin"}),
    );
    assert!(!acts_as_proxy_admin(s, &minted));
}

/// Regenerating a member's own key hands the team admin a new raw key: it is limited the same
/// way. Regenerated by its owner, the key acts as its owner again.
#[test]
fn issue_11_regenerate_by_someone_else_lowers_the_key_to_model_calls() {
    let w = world();
    let s = &w.s;
    let own = s.post("/key/generate", &w.m, json!({"team_id": "t1"}));
    assert_eq!(own.status, 200, "{}", own.text());
    let own = own.json();
    let own_key = own["key"].as_str().unwrap().to_string();
    assert_eq!(s.get("/key/list", &own_key).status, 200, "the owner's key");
    let r = expect(
        s,
        &w.tadmin,
        "/key/regenerate",
        json!({"key": own["token"]}),
        200,
    );
    let taken = r["key"].as_str().unwrap().to_string();
    assert_error(
        &s.post("/key/generate", &taken, json!({"team_id": "t1"})),
        403,
    );
    assert_error(&s.get("/key/list", &taken), 403);
    assert_eq!(chat(s, &taken, "A"), 200);
    // The owner regenerates it with their personal key: theirs again.
    let r = expect(s, &w.m, "/key/regenerate", json!({"key": r["token"]}), 200);
    let back = r["key"].as_str().unwrap().to_string();
    assert_eq!(s.get("/key/list", &back).status, 200);
}

#[test]
fn issue_11_key_minted_for_self_or_by_proxy_admin_acts_as_owner() {
    let w = world();
    let s = &w.s;
    let k = expect(s, &w.tadmin, "/key/generate", json!({"team_id": "t1"}), 200);
    assert_eq!(
        s.get("/key/list", k["key"].as_str().unwrap()).status,
        200,
        "a key of one's own manages as its owner"
    );
    let k = s.admin("/key/generate", json!({"team_id": "t1", "user_id": "m"}));
    assert_eq!(s.get("/key/list", k["key"].as_str().unwrap()).status, 200);
}

#[test]
fn issue_11_key_update_cannot_move_a_key_to_gain_authority() {
    let w = world();
    let s = &w.s;
    let k = expect(s, &w.tadmin, "/key/generate", json!({"team_id": "t1"}), 200);
    for body in [
        json!({"key": k["token"], "user_id": "padmin"}),
        json!({"key": k["token"], "team_id": "u1"}),
        json!({"key": k["token"], "team_id": null}),
    ] {
        expect(s, &w.tadmin, "/key/update", body, 403);
    }
    // A team admin mints only for members of the team.
    expect(
        s,
        &w.tadmin,
        "/key/generate",
        json!({"team_id": "t1", "user_id": "oadmin"}),
        403,
    );
    // Moved by a proxy admin to another user, the raw key (held by the old owner) must not
    // act as the new owner.
    s.admin(
        "/key/update",
        json!({"key": k["token"], "user_id": "padmin"}),
    );
    assert!(!acts_as_proxy_admin(s, k["key"].as_str().unwrap()));
}
