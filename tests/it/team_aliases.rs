//! Issue 15 item 5: LiteLLM's team `model_aliases` and `team_member_permissions`, through HTTP
//! against the real binary (both engines): aliases resolve for the team's keys and are
//! access-checked on their target; who may set them; a plain member with and without a
//! listed route on the team's keys; a denied call writes nothing.

use crate::common::*;
use litegate::auth::hash_key;
use serde_json::json;

/// A team (models A and B, no organization) with a team admin `ta` and plain members `u` and
/// `v`, each with a personal key (role `internal_user`). Returns (team, ta's key, u's, v's).
fn team_with_members(s: &Server) -> (String, String, String, String) {
    let team = s.admin_id("/team/new", json!({"models": ["A", "B"]}), "team_id");
    let ta = seed_user(s, "ta", "internal_user");
    let u = seed_user(s, "u", "internal_user");
    let v = seed_user(s, "v", "internal_user");
    seed_team_member(s, &team, "ta", "admin");
    seed_team_member(s, &team, "u", "user");
    seed_team_member(s, &team, "v", "user");
    (team, ta, u, v)
}

#[test]
fn issue_15_team_model_aliases_resolve_and_are_checked_on_the_target() {
    let s = Server::start();
    let team = s.admin_id(
        "/team/new",
        json!({
            "models": ["A", "B"],
            "model_aliases": {"fast": "A", "sneaky": "C", "chain": "x"},
        }),
        "team_id",
    );
    // /team/info and /team/list show them.
    let info = s.get(&format!("/team/info?team_id={team}"), MASTER).json();
    assert_eq!(
        info["team_info"]["model_aliases"],
        json!({"fast": "A", "sneaky": "C", "chain": "x"}),
        "{info}"
    );
    let list = s.get("/team/list", MASTER).json();
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["team_id"] == team);
    assert_eq!(listed.unwrap()["model_aliases"]["fast"], "A", "{list}");

    let key = key_for(&s, json!({"team_id": team}));
    let r = chat(&s, &key, "fast");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "A");
    // The check is on the target: C is outside the team's models.
    let v = assert_error(&chat(&s, &key, "sneaky"), 403);
    assert_eq!(v["error"]["type"], "team_model_access_denied", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("Tried to access C"),
        "{v}"
    );

    // LiteLLM's order: the team's alias first, then the key's own on its result; the team's
    // wins over a key alias of the same name.
    let own = key_for(
        &s,
        json!({"team_id": team, "aliases": {"x": "B", "fast": "B"}}),
    );
    let r = chat(&s, &own, "chain");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "B");
    assert_eq!(chat(&s, &own, "fast").json()["model"], "A");

    // Another team's key does not see these aliases.
    let other = s.admin_id("/team/new", json!({"models": ["A"]}), "team_id");
    let stranger = key_for(&s, json!({"team_id": other}));
    assert_error_says(&chat(&s, &stranger, "fast"), 403, "Tried to access fast");

    // A change holds on the next request (THE key check reads it each time).
    s.admin(
        "/team/update",
        json!({"team_id": team, "model_aliases": {"fast": "B"}}),
    );
    assert_eq!(chat(&s, &key, "fast").json()["model"], "B");
    // The old alias is gone: `chain` is asked for as itself.
    assert_error_says(&chat(&s, &key, "chain"), 403, "Tried to access chain");
}

#[test]
fn issue_15_who_sets_model_aliases_and_member_permissions() {
    let s = Server::start();
    let (team, ta, u, _) = team_with_members(&s);
    let before = snapshot(&s);
    // LiteLLM: a team admin may not change model_aliases (an org admin or proxy admin may).
    let r = s.post(
        "/team/update",
        &ta,
        json!({"team_id": team, "model_aliases": {"fast": "A"}}),
    );
    assert_error_says(&r, 403, "model_aliases");
    // A plain member sets neither, by either route.
    let r = s.post(
        "/team/update",
        &u,
        json!({"team_id": team, "team_member_permissions": ["/key/generate"]}),
    );
    assert_error(&r, 403);
    let r = s.post(
        "/team/permissions_update",
        &u,
        json!({"team_id": team, "team_member_permissions": ["/key/generate"]}),
    );
    assert_error(&r, 403);
    assert_error(
        &s.get(&format!("/team/permissions_list?team_id={team}"), &u),
        403,
    );
    // Malformed values: 400 naming the field.
    let r = s.post(
        "/team/update",
        MASTER,
        json!({"team_id": team, "model_aliases": {"fast": 1}}),
    );
    assert_eq!(assert_error(&r, 400)["error"]["param"], "model_aliases");
    let r = s.post(
        "/team/permissions_update",
        &ta,
        json!({"team_id": team, "team_member_permissions": ["/team/delete"]}),
    );
    assert_eq!(
        assert_error(&r, 400)["error"]["param"],
        "team_member_permissions"
    );
    assert_eq!(snapshot(&s), before, "a refused call writes nothing");

    // Never set: permissions_list says null (litegate's rules before the list hold).
    let l = s.get(&format!("/team/permissions_list?team_id={team}"), &ta);
    assert_eq!(l.status, 200, "{}", l.text());
    let l = l.json();
    assert!(l["team_member_permissions"].is_null(), "{l}");
    assert!(l["all_available_permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("/key/generate")));

    // A team admin sets the list by both routes.
    let r = s.post(
        "/team/update",
        &ta,
        json!({"team_id": team, "team_member_permissions": ["/key/info"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["data"]["team_member_permissions"],
        json!(["/key/info"])
    );
    let r = s.post(
        "/team/permissions_update",
        &ta,
        json!({"team_id": team, "team_member_permissions": ["/key/update", "/key/update"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["team_member_permissions"], json!(["/key/update"]));
    let l = s
        .get(&format!("/team/permissions_list?team_id={team}"), &ta)
        .json();
    assert_eq!(l["team_member_permissions"], json!(["/key/update"]), "{l}");
    // An org-less team's aliases: the proxy admin sets them, /team/new takes both.
    let r = s.post(
        "/team/update",
        MASTER,
        json!({"team_id": team, "model_aliases": {"fast": "A"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let n = s.admin(
        "/team/new",
        json!({"model_aliases": {"a": "A"}, "team_member_permissions": ["/key/generate"]}),
    );
    assert_eq!(n["model_aliases"], json!({"a": "A"}), "{n}");
    assert_eq!(
        n["team_member_permissions"],
        json!(["/key/generate"]),
        "{n}"
    );
}

#[test]
fn issue_15_member_without_a_list_keeps_litegate_rules() {
    let s = Server::start();
    let (team, _, u, _) = team_with_members(&s);
    // No list set: a member creates and manages their own team keys, as before.
    let r = s.post("/key/generate", &u, json!({"team_id": team}));
    assert_eq!(r.status, 200, "{}", r.text());
    let k = r.json()["key"].as_str().unwrap().to_string();
    let r = s.post("/key/update", &u, json!({"key": k, "key_alias": "mine"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post("/key/delete", &u, json!({"keys": [k]}));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn issue_15_member_permissions_gate_the_team_keys() {
    let s = Server::start();
    let (team, ta, u, _) = team_with_members(&s);
    let mine = key_for(&s, json!({"team_id": team, "user_id": "u"}));
    let theirs = key_for(&s, json!({"team_id": team, "user_id": "v"}));
    let set = |perms: serde_json::Value| {
        let r = s.post(
            "/team/permissions_update",
            &ta,
            json!({"team_id": team, "team_member_permissions": perms}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    set(json!(["/key/update"]));

    // Not listed: 403 even on their own key, and nothing is written.
    let before = snapshot(&s);
    let denied = [
        s.post("/key/generate", &u, json!({"team_id": team})),
        s.post("/key/delete", &u, json!({"keys": [mine]})),
        s.post("/key/regenerate", &u, json!({"key": mine})),
        s.post("/key/block", &u, json!({"key": theirs})),
    ];
    for r in &denied {
        assert_error_says(r, 403, "Team member does not have permissions for endpoint");
    }
    assert_eq!(snapshot(&s), before, "a denied call writes nothing");
    let d = s.post("/key/delete", &u, json!({"keys": [mine]}));
    assert!(d.text().contains(&team), "names the team: {}", d.text());

    // Listed: on their own key and, as LiteLLM, on any key of the team.
    let r = s.post("/key/update", &u, json!({"key": mine, "key_alias": "m"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post(
        "/key/update",
        &u,
        json!({"key": hash_key(&theirs), "key_alias": "t"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let alias = s.value::<Option<String>, _>(
        "SELECT key_alias FROM api_keys WHERE token = ?1",
        [hash_key(&theirs)],
    );
    assert_eq!(alias.as_deref(), Some("t"));
    // Still a member's rank: no budget or block changes on the key.
    let before = snapshot(&s);
    let r = s.post(
        "/key/update",
        &u,
        json!({"key": hash_key(&theirs), "max_budget": 100.0}),
    );
    assert_error(&r, 403);
    assert_eq!(snapshot(&s), before, "a denied call writes nothing");

    // Delete granted: the other member's key goes; generate granted: for themselves.
    set(json!(["/key/delete", "/key/generate"]));
    let r = s.post("/key/delete", &u, json!({"keys": [hash_key(&theirs)]}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        count_p(
            &s,
            "SELECT count(*) FROM api_keys WHERE token = ?1",
            &[&hash_key(&theirs)]
        ),
        0
    );
    assert_eq!(chat(&s, &theirs, "A").status, 401);
    let r = s.post("/key/generate", &u, json!({"team_id": team}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user_id"], "u");
    // Update no longer listed.
    let r = s.post("/key/update", &u, json!({"key": mine, "key_alias": "z"}));
    assert_error(&r, 403);

    // A team admin is not judged by the list.
    let r = s.post("/key/regenerate", &ta, json!({"key": mine}));
    assert_eq!(r.status, 200, "{}", r.text());

    // Regenerating another member's key: the new raw key is calls-only (issue 11: whoever
    // holds it is not its owner) and goes when its issuer leaves the team.
    set(json!(["/key/regenerate"]));
    let vkey = key_for(&s, json!({"team_id": team, "user_id": "v"}));
    let r = s.post("/key/regenerate", &u, json!({"key": hash_key(&vkey)}));
    assert_eq!(r.status, 200, "{}", r.text());
    let held = r.json()["key"].as_str().unwrap().to_string();
    assert_eq!(chat(&s, &held, "A").status, 200);
    assert_error(&s.get("/key/list", &held), 403);
    let r = s.post(
        "/team/member_delete",
        &ta,
        json!({"team_id": team, "user_id": "u"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        chat(&s, &held, "A").status,
        401,
        "the issuer's copy is gone"
    );
}
