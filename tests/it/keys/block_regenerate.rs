//! /key/block, /key/unblock, /key/regenerate (body and path forms) and expiry.

use super::*;
use litegate::db::sql::Arg;

// ---------------------------------------------------------------------------------------------
// /key/block, /key/unblock

#[test]
fn blocked_key_is_401_everywhere_until_unblocked() {
    let w = world();
    let (raw, _) = gen(&w, &w["alice"], json!({"team_id": "t1"}));
    assert_eq!(chat(&w, &raw, "A").status, 200);
    let v = w.expect(AS_MASTER, "/key/block", json!({"key": raw}), 200);
    assert_eq!(v["blocked"], true);
    assert_eq!(v["token"], hash_key(&raw));
    assert_eq!(col(&w, &raw, "blocked"), 1);
    assert_error(&w.get("/v1/models", &raw), 401);
    assert_error(&chat(&w, &raw, "A"), 401);
    let v = w.expect(
        AS_MASTER,
        "/key/unblock",
        json!({"key": hash_key(&raw)}),
        200,
    );
    assert_eq!(v["blocked"], false);
    assert_eq!(col(&w, &raw, "blocked"), 0);
    assert_eq!(w.get("/v1/models", &raw).status, 200);
    assert_eq!(chat(&w, &raw, "A").status, 200);
}

#[test]
fn block_is_for_proxy_and_team_admins() {
    let w = world();
    let (raw, _) = gen(&w, &w["alice"], json!({"team_id": "t1"}));
    let (personal, _) = gen(&w, &w["alice"], json!({}));
    for path in ["/key/block", "/key/unblock"] {
        let c = |who, key: &str, status| Case::post(who, path, json!({"key": key}), status);
        // The owner may not block or unblock their own key; others do not see it.
        #[rustfmt::skip]
        let v = run_cases(&w, &[
            c("alice", &raw, 403), c("alice", &personal, 403), c("pview", &raw, 403),
            c("outsider", &raw, 404), c("oadmin2", &raw, 404), c("tadmin", &personal, 404),
            c(AS_MASTER, "sk-not-a-key-at-all", 404),
        ]);
        assert_eq!(v[0]["error"]["type"], "permission_error");
    }
    // The team admin and the org admin above the team may.
    w.expect("tadmin", "/key/block", json!({"key": raw}), 200);
    assert_eq!(col(&w, &raw, "blocked"), 1);
    w.expect("oadmin", "/key/unblock", json!({"key": raw}), 200);
    assert_eq!(col(&w, &raw, "blocked"), 0);
    w.expect("padmin", "/key/block", json!({"key": personal}), 200);
    assert_eq!(col(&w, &personal, "blocked"), 1);
}

// ---------------------------------------------------------------------------------------------
// /key/regenerate and /key/{key}/regenerate

#[test]
fn regenerate_replaces_the_key_and_keeps_everything_else() {
    let w = world();
    let (old, _) = gen(
        &w,
        MASTER,
        json!({"team_id": "t2", "user_id": "bob", "key_alias": "svc", "models": ["A"],
               "max_budget": 10, "metadata": {"m": 1}}),
    );
    assert_eq!(chat(&w, &old, "A").status, 200);
    // Spend recording is not built yet: give the key some directly.
    run_sql(
        &w,
        "UPDATE api_keys SET spend = 1.25 WHERE token = ?1",
        &[Arg::from(&hash_key(&old))],
    );
    let spend = 1.25;
    let n = key_count(&w);
    let v = w.expect(AS_MASTER, "/key/regenerate", json!({"key": old}), 200);
    let new = v["key"].as_str().unwrap().to_string();
    assert!(new.starts_with("sk-") && new.len() >= 35);
    assert_ne!(new, old);
    assert_eq!(v["token"], hash_key(&new));
    assert_eq!(v["key_name"], format!("sk-...{}", &new[new.len() - 4..]));
    // The old key stops at once; the new one works.
    assert!(!exists(&w, &old));
    assert_error(&w.get("/v1/models", &old), 401);
    assert_error(&chat(&w, &old, "A"), 401);
    assert_eq!(key_count(&w), n);
    assert_raw_key_not_stored(&w, &new);
    // Spend, alias, models, team and budget came along.
    assert_eq!(col(&w, &new, "spend"), spend);
    assert_eq!(col(&w, &new, "key_alias"), "svc");
    assert_eq!(col(&w, &new, "models"), r#"["A"]"#);
    assert_eq!(col(&w, &new, "team_id"), "t2");
    assert_eq!(col(&w, &new, "user_id"), "bob");
    assert_eq!(col(&w, &new, "max_budget"), 10.0);
    assert_eq!(v["spend"], spend);
    assert_eq!(v["key_alias"], "svc");
    assert_eq!(v["team_id"], "t2");
    assert_eq!(v["metadata"], json!({"m": 1}));
    assert_eq!(models_of(&w, &new), vec!["A"]);
    assert_eq!(chat(&w, &new, "A").status, 200);
}

#[test]
fn regenerate_by_path_with_raw_key_or_token() {
    let w = world();
    let (k1, _) = gen(&w, &w["alice"], json!({"team_id": "t1", "key_alias": "p1"}));
    // The owner, by raw key in the path.
    let v = w.expect("alice", &format!("/key/{k1}/regenerate"), json!({}), 200);
    let k2 = v["key"].as_str().unwrap().to_string();
    assert_ne!(k2, k1);
    assert_error(&w.get("/v1/models", &k1), 401);
    assert_eq!(w.get("/v1/models", &k2).status, 200);
    assert_eq!(col(&w, &k2, "key_alias"), "p1");
    // The team admin, by token in the path.
    let v = w.expect(
        "tadmin",
        &format!("/key/{}/regenerate", hash_key(&k2)),
        json!({}),
        200,
    );
    let k3 = v["key"].as_str().unwrap().to_string();
    assert_error(&w.get("/v1/models", &k2), 401);
    assert_eq!(w.get("/v1/models", &k3).status, 200);
    assert_eq!(col(&w, &k3, "user_id"), "alice");
    // Outsiders see nothing, on either form.
    #[rustfmt::skip]
    run_cases(&w, &[
        Case::post("outsider", &format!("/key/{k3}/regenerate"), json!({}), 404),
        Case::post("outsider", "/key/regenerate", json!({"key": k3}), 404),
        Case::post("oadmin2", "/key/regenerate", json!({"key": k3}), 404),
        Case::post(AS_MASTER, "/key/regenerate", json!({"key": "sk-no-such-key-here"}), 404),
        Case::post(AS_MASTER, "/key/sk-no-such-key-here/regenerate", json!({}), 404),
        // A viewer may not, a team member may not regenerate another member's key.
        Case::post("pview", "/key/regenerate", json!({"key": k3}), 403),
        Case::post("iviewer", "/key/regenerate", json!({"key": k3}), 403),
    ]);
    assert_eq!(w.get("/v1/models", &k3).status, 200);
}

#[test]
fn regenerate_accepts_a_trailing_slash_and_needs_a_key() {
    // The router accepts `/key/regenerate/`; the handler must not then read `regenerate`
    // as the key of `/key/{key}/regenerate`.
    let w = World::new();
    let (k1, _) = gen(&w, MASTER, json!({"key_alias": "slash"}));
    let v = w.expect(AS_MASTER, "/key/regenerate/", json!({"key": k1}), 200);
    let k2 = v["key"].as_str().unwrap().to_string();
    assert_error(&w.get("/v1/models", &k1), 401);
    let v = w.expect(AS_MASTER, &format!("/key/{k2}/regenerate/"), json!({}), 200);
    assert_error(&w.get("/v1/models", &k2), 401);
    let k3 = v["key"].as_str().unwrap();
    assert_eq!(col(&w, k3, "key_alias"), "slash");
    for path in ["/key/regenerate", "/key/regenerate/"] {
        let v = w.expect(AS_MASTER, path, json!({}), 400);
        assert_eq!(v["error"]["param"], "key", "{path}");
    }
}

#[test]
fn regenerate_with_a_custom_new_key_is_for_proxy_admins() {
    let w = world();
    let (raw, _) = gen(&w, &w["alice"], json!({"team_id": "t1"}));
    let re = |who, new_key: &str, status| {
        Case::post(
            who,
            "/key/regenerate",
            json!({"key": raw, "new_key": new_key}),
            status,
        )
    };
    let custom = "sk-admin-picked-new-key";
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        re("alice", "sk-alice-picked-this-one", 403),
        re("tadmin", "sk-tadmin-picked-this-one", 403),
        re(AS_MASTER, "sk-short", 400).param("new_key"),
        // Taken by another key.
        re(AS_MASTER, &w["bob"], 409),
        re(AS_MASTER, custom, 200),
    ]);
    assert_eq!(v[4]["key"], custom);
    assert_eq!(v[4]["token"], hash_key(custom));
    assert_error(&w.get("/v1/models", &raw), 401);
    assert_eq!(models_of(&w, custom), vec!["A"]);
}

// ---------------------------------------------------------------------------------------------
// Expiry

#[test]
fn expired_key_is_401_expired_key() {
    let w = World::new();
    let (raw, _) = gen(&w, MASTER, json!({"duration": "1h"}));
    assert_eq!(w.get("/v1/models", &raw).status, 200);
    run_sql(
        &w,
        "UPDATE api_keys SET expires = '2020-01-01T00:00:00.000Z' WHERE token = ?1",
        &[Arg::from(&hash_key(&raw))],
    );
    for r in [
        w.get("/v1/models", &raw),
        chat(&w, &raw, "A"),
        w.get("/key/info", &raw),
    ] {
        let v = assert_error(&r, 401);
        assert_eq!(v["error"]["type"], "expired_key", "{v}");
    }
    // The admin still sees it, and can extend it.
    let r = info(&w, MASTER, &raw);
    assert_eq!(r.status, 200);
    w.expect(
        AS_MASTER,
        "/key/update",
        json!({"key": raw, "duration": "1d"}),
        200,
    );
    assert_eq!(w.get("/v1/models", &raw).status, 200);
}
