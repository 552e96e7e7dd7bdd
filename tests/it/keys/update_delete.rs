//! /key/update and /key/delete.

use super::*;

// ---------------------------------------------------------------------------------------------
// /key/update

#[test]
fn owner_updates_alias_metadata_and_models_within_the_team() {
    let w = world();
    let (raw, _) = gen(&w, &w["alice"], json!({"team_id": "t1", "key_alias": "a1"}));
    let r = w.post(
        "/key/update",
        &w["alice"],
        json!({"key": raw, "key_alias": "a2", "metadata": {"env": "ci"}, "models": ["A"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains(&raw));
    let v = r.json();
    assert_eq!(v["token"], hash_key(&raw));
    assert_eq!(v["key_alias"], "a2");
    assert_eq!(v["models"], json!(["A"]));
    assert_eq!(v["updated_by"], "alice");
    assert_eq!(col(&w, &raw, "key_alias"), "a2");
    assert_eq!(col(&w, &raw, "metadata"), r#"{"env":"ci"}"#);
    assert_eq!(col(&w, &raw, "models"), r#"["A"]"#);
    // Outside the team's models.
    let v = w.expect(
        "alice",
        "/key/update",
        json!({"key": raw, "models": ["B"]}),
        400,
    );
    assert_eq!(v["error"]["param"], "models");
    // By token as well as by raw key.
    let v = w.expect(
        "alice",
        "/key/update",
        json!({"key": hash_key(&raw), "key_alias": "by-token"}),
        200,
    );
    assert_eq!(v["key_alias"], "by-token");
    assert_eq!(col(&w, &raw, "key_alias"), "by-token");
}

#[test]
fn only_admins_change_budgets_and_proxy_admins_move_keys() {
    let w = world();
    let (personal, _) = gen(&w, &w["alice"], json!({}));
    let (team_key, _) = gen(&w, &w["alice"], json!({"team_id": "t1"}));
    let up = |who, body, status| Case::post(who, "/key/update", body, status);
    let t2 = json!({"key": team_key, "team_id": "t2"});
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // The owner may not raise a budget on a personal key, nor on a team key.
        up("alice", json!({"key": personal, "max_budget": 1000}), 403),
        up("alice", json!({"key": team_key, "max_budget": 1000, "rpm_limit": 100000}), 403),
        // The team admin may change the budgets of keys in their team...
        up("tadmin", json!({"key": team_key, "max_budget": 5, "tpm_limit": 10}), 200),
    ]);
    assert_eq!(v[2]["max_budget"], 5.0);
    assert_eq!(col(&w, &team_key, "max_budget"), 5.0);
    assert_eq!(col(&w, &team_key, "tpm_limit"), 10);
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // ...but cannot see a personal key of a member.
        up("tadmin", json!({"key": personal, "max_budget": 5}), 404),
        // Moving a key to another team (or user): proxy admins only.
        up("alice", t2.clone(), 403), up("tadmin", t2.clone(), 403), up("oadmin", t2.clone(), 403),
        up("alice", json!({"key": team_key, "user_id": "bob"}), 403),
        up(AS_MASTER, t2.clone(), 200),
    ]);
    assert_eq!(v[5]["team_id"], "t2");
    assert_eq!(col(&w, &team_key, "team_id"), "t2");
    assert_eq!(col(&w, &team_key, "organization_id"), "org2");
}

#[test]
fn update_of_an_unknown_or_invisible_key_is_404_and_alias_clash_409() {
    let w = world();
    let (raw, _) = gen(&w, &w["alice"], json!({"key_alias": "alice-1"}));
    gen(&w, &w["alice"], json!({"key_alias": "alice-2"}));
    let up = |who, body, status| Case::post(who, "/key/update", body, status);
    let stolen = json!({"key": raw, "key_alias": "stolen"});
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        up(AS_MASTER, json!({"key": "sk-this-key-does-not-exist", "key_alias": "x"}), 404),
        up(AS_MASTER, json!({"key": hash_key("sk-nope-nope-nope-nope"), "key_alias": "x"}), 404),
        up("outsider", stolen.clone(), 404), up("tadmin", stolen.clone(), 404),
        up("oadmin", stolen.clone(), 404),
        up("alice", json!({"key": raw, "key_alias": "alice-2"}), 409),
        // A proxy admin viewer sees the key but may not change it.
        up("pview", json!({"key": raw, "key_alias": "viewer"}), 403),
    ]);
    assert_eq!(v[0]["error"]["type"], "not_found_error");
    assert_eq!(v[5]["error"]["type"], "conflict_error");
    assert_eq!(col(&w, &raw, "key_alias"), "alice-1");
}

#[test]
fn update_to_an_unknown_user_is_400() {
    let w = World::new();
    let (raw, _) = gen(&w, MASTER, json!({}));
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post(AS_MASTER, "/key/update", json!({"key": raw, "user_id": "no-such-user"}), 400).param("user_id"),
        Case::post(AS_MASTER, "/key/update", json!({"key": raw, "team_id": "no-such-team"}), 400).param("team_id"),
    ]);
}

#[test]
fn the_master_keys_user_id_is_no_user_unless_one_exists() {
    // `default_user_id` is what the master key acts as, not a user row: naming it as a key's
    // owner was a foreign-key failure (500); it is an unknown user (400) until such a user exists.
    let w = World::new();
    let (raw, _) = gen(&w, MASTER, json!({}));
    let v = w.expect(
        AS_MASTER,
        "/key/generate",
        json!({"user_id": "default_user_id"}),
        400,
    );
    assert_eq!(v["error"]["param"], "user_id");
    let v = w.expect(
        AS_MASTER,
        "/key/update",
        json!({"key": raw, "user_id": "default_user_id"}),
        400,
    );
    assert_eq!(v["error"]["param"], "user_id");
    // An imported LiteLLM database may hold that user; then it is an owner like any other.
    seed_user(&w, "default_user_id", "proxy_admin");
    let (k, v) = gen(&w, MASTER, json!({"user_id": "default_user_id"}));
    assert_eq!(v["user_id"], "default_user_id");
    assert_eq!(col(&w, &k, "user_id"), "default_user_id");
    w.expect(
        AS_MASTER,
        "/key/update",
        json!({"key": raw, "user_id": "default_user_id"}),
        200,
    );
    assert_eq!(col(&w, &raw, "user_id"), "default_user_id");
}

#[test]
fn owner_cannot_unblock_their_key_through_update() {
    // /key/block and /key/unblock are for proxy and team admins; /key/update's `blocked`
    // must not be a side door for the owner.
    let w = world();
    let (raw, _) = gen(&w, &w["alice"], json!({"team_id": "t1"}));
    // Blocked by the team admin (a block by a higher rank is theirs to lift: authority.rs).
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("tadmin", "/key/block", json!({"key": raw}), 200),
        Case::post("alice", "/key/update", json!({"key": raw, "blocked": false}), 403),
    ]);
    assert_eq!(col(&w, &raw, "blocked"), 1);
    assert_error(&w.get("/v1/models", &raw), 401);
    // The same through regenerate.
    w.expect(
        "alice",
        "/key/regenerate",
        json!({"key": raw, "blocked": false}),
        403,
    );
    // The team admin may.
    let v = w.expect(
        "tadmin",
        "/key/update",
        json!({"key": raw, "blocked": false}),
        200,
    );
    assert_eq!(v["blocked"], false);
    assert_eq!(w.get("/v1/models", &raw).status, 200);
    // Restating the current value is not a change.
    w.expect(
        "alice",
        "/key/update",
        json!({"key": raw, "blocked": false, "key_alias": "ok"}),
        200,
    );
}

// ---------------------------------------------------------------------------------------------
// /key/delete

#[test]
fn delete_by_raw_key_token_or_alias() {
    let w = world();
    let (k1, _) = gen(&w, &w["alice"], json!({}));
    let (k2, _) = gen(&w, &w["alice"], json!({"team_id": "t1"}));
    let (k3, _) = gen(&w, &w["alice"], json!({"key_alias": "third"}));
    let n = key_count(&w);
    let v = w.expect("alice", "/key/delete", json!({"keys": [k1]}), 200);
    assert_eq!(v["deleted_keys"], json!([hash_key(&k1)]));
    assert!(!exists(&w, &k1));
    let v = w.expect(
        "alice",
        "/key/delete",
        json!({"keys": [hash_key(&k2)]}),
        200,
    );
    assert_eq!(v["deleted_keys"], json!([hash_key(&k2)]));
    let v = w.expect(
        "alice",
        "/key/delete",
        json!({"key_aliases": ["third"]}),
        200,
    );
    assert_eq!(v["deleted_keys"], json!([hash_key(&k3)]));
    assert_eq!(key_count(&w), n - 3);
    // A deleted key no longer authenticates.
    assert_error(&w.get("/v1/models", &k1), 401);
}

#[test]
fn delete_with_an_unknown_or_invisible_key_deletes_nothing() {
    let w = world();
    let (k1, _) = gen(&w, &w["alice"], json!({"key_alias": "k1"}));
    let (k2, _) = gen(&w, &w["alice"], json!({"team_id": "t1"}));
    let del = |who, body, status| Case::post(who, "/key/delete", body, status);
    #[rustfmt::skip]
    run_cases(&w, &[
        del(AS_MASTER, json!({"keys": [k1, "sk-unknown-unknown-unknown"]}), 404),
        del(AS_MASTER, json!({"keys": [k2], "key_aliases": ["k1", "no-such-alias"]}), 404),
        del("outsider", json!({"keys": [k1]}), 404),
        del("outsider", json!({"key_aliases": ["k1"]}), 404),
        del("oadmin2", json!({"keys": [k1]}), 404),
        del("oadmin2", json!({"key_aliases": ["k1"]}), 404),
        // Viewers never delete, and a team member may not delete another member's key.
        del("pview", json!({"keys": [k1]}), 403),
        del("iviewer", json!({"keys": [k2]}), 403),
        del(AS_MASTER, json!({}), 400),
    ]);
    assert!(exists(&w, &k1) && exists(&w, &k2));
    // The team admin may delete a key of their team.
    let v = w.expect("tadmin", "/key/delete", json!({"keys": [k2]}), 200);
    assert_eq!(v["deleted_keys"], json!([hash_key(&k2)]));
}
