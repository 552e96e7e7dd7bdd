//! /key/generate: format, storage, uniqueness, custom keys, bad input, and who may create which key (API.md §5, §8).

use super::*;

// ---------------------------------------------------------------------------------------------
// /key/generate: format, storage, uniqueness, custom keys, bad input

#[test]
fn generate_returns_the_raw_key_once_and_stores_only_its_sha256() {
    let s = Server::start();
    let (raw, v) = gen(&s, MASTER, json!({}));
    assert!(raw.starts_with("sk-") && raw.len() >= 35, "{raw}");
    assert_eq!(v["token"], hash_key(&raw));
    assert_eq!(v["key_name"], format!("sk-...{}", &raw[raw.len() - 4..]));
    assert!(v["expires"].is_null(), "{v}");
    assert_eq!(v["blocked"], false);
    assert_eq!(v["spend"], 0.0);
    assert!(exists(&s, &raw));
    assert_eq!(col(&s, &raw, "key_name"), v["key_name"]);
    assert_raw_key_not_stored(&s, &raw);

    let (raw2, v2) = gen(&s, MASTER, json!({}));
    assert_ne!(raw2, raw);
    assert_ne!(v2["token"], v["token"]);
    assert_eq!(key_count(&s), 2);
    assert_raw_key_not_stored(&s, &raw2);

    // The key authenticates; its info shows the token and never the raw key.
    let r = s.get("/key/info", &raw);
    assert_eq!(r.status, 200, "{}", r.text());
    let i = r.json();
    assert_eq!(i["key"], hash_key(&raw));
    assert_eq!(i["info"]["token"], hash_key(&raw));
    assert!(!r.text().contains(&raw), "{}", r.text());
}

#[test]
fn generate_with_duration_sets_expires() {
    let s = Server::start();
    let before = litegate::util::now_ms();
    let (raw, v) = gen(&s, MASTER, json!({"duration": "1h"}));
    let after = litegate::util::now_ms();
    let exp = litegate::util::ms_from_iso(v["expires"].as_str().unwrap()).unwrap();
    assert!(exp >= before + 3_600_000 && exp <= after + 3_600_000, "{v}");
    assert_eq!(col(&s, &raw, "expires"), v["expires"]);
    // Not yet expired: it works.
    assert_eq!(s.get("/v1/models", &raw).status, 200);
}

#[test]
fn generate_refuses_durations_past_year_9999() {
    // A far-future expiry must not overflow into a 500, nor be written in a form the key check
    // cannot read back (which made the new key expired at birth).
    let w = World::new();
    for d in ["3000000d", "9223372036854775s", "106751991167300d"] {
        let v = w.expect(AS_MASTER, "/key/generate", json!({"duration": d}), 400);
        assert_eq!(v["error"]["param"], "duration", "{d}: {v}");
        let v = w.expect(
            AS_MASTER,
            "/key/generate",
            json!({"budget_duration": d}),
            400,
        );
        assert_eq!(v["error"]["param"], "budget_duration", "{d}: {v}");
    }
    // Up to 100 years is accepted (util::parse_duration caps there).
    let (raw, _) = gen(&w, MASTER, json!({"duration": "36500d"}));
    assert_eq!(w.get("/v1/models", &raw).status, 200);
}

#[test]
fn generate_with_a_taken_key_alias_is_409_and_writes_nothing() {
    let w = World::new();
    gen(&w, MASTER, json!({"key_alias": "ci"}));
    let v = w.expect(
        AS_MASTER,
        "/key/generate",
        json!({"key_alias": "ci", "models": ["A"]}),
        409,
    );
    assert_eq!(v["error"]["type"], "conflict_error");
    assert_eq!(key_count(&w), 1);
}

#[test]
fn custom_key_is_for_proxy_admins_only_and_must_look_like_a_key() {
    let w = World::new();
    let alice = seed_user(&w, "alice", "internal_user");
    let custom = "sk-my-custom-key-0001";
    let (raw, v) = gen(&w, MASTER, json!({"key": custom}));
    assert_eq!(raw, custom);
    assert_eq!(v["token"], hash_key(custom));
    assert_eq!(v["key_name"], "sk-...0001");
    assert_raw_key_not_stored(&w, custom);
    assert_eq!(w.get("/v1/models", custom).status, 200);

    // An internal user may not choose their key.
    let v = expect(
        &w,
        &alice,
        "/key/generate",
        json!({"key": "sk-alice-chooses-this-key"}),
        403,
    );
    assert_eq!(v["error"]["type"], "permission_error");
    // Must start with sk- and be at least 16 characters.
    for bad in [
        "my-custom-key-without-prefix",
        "sk-short",
        "sk-0123456789ab",
    ] {
        let v = w.expect(AS_MASTER, "/key/generate", json!({"key": bad}), 400);
        assert_eq!(v["error"]["param"], "key", "{bad}: {v}");
    }
    // 16 characters is enough.
    gen(&w, MASTER, json!({"key": "sk-0123456789abc"}));
    // A duplicate custom key is a conflict (API.md §2 Fix), also against a seeded key.
    let v = w.expect(AS_MASTER, "/key/generate", json!({"key": custom}), 409);
    assert_eq!(v["error"]["type"], "conflict_error");
    w.expect(AS_MASTER, "/key/generate", json!({"key": alice}), 409);
}

#[test]
fn token_in_the_body_is_400() {
    let s = Server::start();
    let alice = seed_user(&s, "alice", "internal_user");
    for caller in [MASTER, alice.as_str()] {
        let v = expect(
            &s,
            caller,
            "/key/generate",
            json!({"token": hash_key("sk-anything-at-all-here")}),
            400,
        );
        assert_eq!(v["error"]["param"], "token", "{v}");
    }
}

#[test]
fn bad_generate_input_is_400_and_changes_nothing() {
    let w = World::new();
    seed_team(&w, "t1", None, &[]);
    let before = snapshot(&w);
    let r = w.request(
        "POST",
        "/key/generate",
        Some(MASTER),
        Some(b"{\"models\": ["),
        &[],
    );
    let v = assert_error(&r, 400);
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(snapshot(&w), before);
    for (body, param) in [
        (json!({"models": "A"}), "models"),
        (json!({"models": [1]}), "models"),
        (json!({"max_budget": -1}), "max_budget"),
        (json!({"max_budget": "10"}), "max_budget"),
        (json!({"duration": "5y"}), "duration"),
        (json!({"duration": "abc"}), "duration"),
        (json!({"duration": "0s"}), "duration"),
        (json!({"tpm_limit": -5}), "tpm_limit"),
        (json!({"metadata": ["x"]}), "metadata"),
        (json!({"team_id": "no-such-team"}), "team_id"),
        (json!({"user_id": "no-such-user"}), "user_id"),
        (json!({"organization_id": "no-such-org"}), "organization_id"),
        (
            json!({"team_id": "t1", "models": ["A"], "user_id": "nobody"}),
            "user_id",
        ),
    ] {
        let v = w.expect(AS_MASTER, "/key/generate", body.clone(), 400);
        assert_eq!(v["error"]["type"], "invalid_request_error", "{body}: {v}");
        assert_eq!(v["error"]["param"], param, "{body}: {v}");
    }
    assert_eq!(key_count(&w), 0);
}

// ---------------------------------------------------------------------------------------------
// /key/generate: who may create which key (API.md §5, §8)

/// A `/key/generate` case of the matrices below.
fn g(who: &'static str, body: Value, status: u16) -> Case {
    Case::post(who, "/key/generate", body, status)
}

#[test]
fn proxy_admins_create_any_key_and_viewers_none() {
    let w = world();
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        g(AS_MASTER, json!({"user_id": "bob", "team_id": "t2", "models": ["B"]}), 200),
        g("padmin", json!({"user_id": "alice", "team_id": "t2"}), 200),
        // A proxy admin's own key without user_id belongs to them.
        g("padmin", json!({}), 200),
        g("pview", json!({}), 403), g("pview", json!({"team_id": "t1"}), 403),
        g("iviewer", json!({}), 403), g("iviewer", json!({"team_id": "t1"}), 403),
        g(ANON, json!({}), 401),
    ]);
    assert_eq!(v[0]["user_id"], "bob");
    assert_eq!(v[0]["team_id"], "t2");
    assert_eq!(v[0]["organization_id"], "org2");
    assert_eq!(v[1]["user_id"], "alice");
    assert_eq!(v[1]["created_by"], "padmin");
    assert_eq!(v[2]["user_id"], "padmin");
    for refusal in &v[3..7] {
        assert_eq!(refusal["error"]["type"], "permission_error", "{refusal}");
    }
}

#[test]
fn internal_user_creates_keys_only_for_themselves_in_their_teams() {
    let w = world();
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // For themselves, no team.
        g("alice", json!({"key_alias": "mine"}), 200),
        // For somebody else.
        g("alice", json!({"user_id": "bob"}), 403),
        g("alice", json!({"user_id": "bob", "team_id": "t1"}), 403),
        // In a team they are not in.
        g("alice", json!({"team_id": "t2"}), 403),
        g("outsider", json!({"team_id": "t1"}), 403),
        // In an org they are not in (a key without a team).
        g("alice", json!({"organization_id": "org2"}), 403),
        // In their team.
        g("alice", json!({"team_id": "t1"}), 200),
        // Beyond the team's models.
        g("alice", json!({"team_id": "t1", "models": ["A", "B"]}), 400).param("models"),
        // `all-team-models` in their team follows the team.
        g("alice", json!({"team_id": "t1", "models": ["all-team-models"]}), 200),
    ]);
    assert_eq!(v[0]["user_id"], "alice");
    assert!(v[0]["team_id"].is_null());
    assert_eq!(v[0]["created_by"], "alice");
    assert_eq!(v[6]["user_id"], "alice");
    assert_eq!(v[6]["team_id"], "t1");
    assert_eq!(v[6]["organization_id"], "org1");
    assert_eq!(col(&w, v[6]["key"].as_str().unwrap(), "team_id"), "t1");
    assert!(
        v[7]["error"]["message"].as_str().unwrap().contains('B'),
        "{}",
        v[7]
    );
    assert_eq!(models_of(&w, v[8]["key"].as_str().unwrap()), vec!["A"]);
}

#[test]
fn team_and_org_admins_create_keys_for_members_of_their_teams() {
    let w = world();
    #[rustfmt::skip]
    let v = run_cases(&w, &[
        // Team admin, for a member of the team.
        g("tadmin", json!({"team_id": "t1", "user_id": "alice"}), 200),
        // Team admin, for a non-member, or for someone else outside the team.
        g("tadmin", json!({"team_id": "t1", "user_id": "bob"}), 403),
        g("tadmin", json!({"user_id": "alice"}), 403),
        // Team admin may not widen the team's models.
        g("tadmin", json!({"team_id": "t1", "user_id": "alice", "models": ["C"]}), 400),
        // Org admin of the team's org: in that team, for a member or for themselves.
        g("oadmin", json!({"team_id": "t1", "user_id": "alice"}), 200),
        g("oadmin", json!({"team_id": "t1"}), 200),
        // Org admin of another org.
        g("oadmin2", json!({"team_id": "t1"}), 403),
        g("oadmin2", json!({"team_id": "t1", "user_id": "alice"}), 403),
    ]);
    assert_eq!(v[0]["user_id"], "alice");
    assert_eq!(v[0]["team_id"], "t1");
    assert_eq!(v[0]["created_by"], "tadmin");
    assert_eq!(col(&w, v[0]["key"].as_str().unwrap(), "user_id"), "alice");
    assert_eq!(v[4]["team_id"], "t1");
    assert_eq!(v[5]["user_id"], "oadmin");
}

#[test]
fn no_caller_puts_reach_widening_fields_on_a_key() {
    let w = world();
    let (mine, _) = gen(&w, &w["alice"], json!({"team_id": "t1"}));
    for field in [
        json!({"user_role": "proxy_admin"}),
        json!({"allowed_routes": ["/key/generate", "/user/update"]}),
        json!({"permissions": {"get_spend_routes": true}}),
        json!({"spend": -100.0}),
        json!({"spend": 0}),
    ] {
        for caller in [&w["alice"], &w["tadmin"]] {
            let mut body = field.clone();
            body["team_id"] = json!("t1");
            let v = expect(&w, caller, "/key/generate", body.clone(), 403);
            assert_eq!(v["error"]["type"], "permission_error", "{body}");
            let mut body = field.clone();
            body["key"] = json!(mine);
            expect(&w, caller, "/key/update", body, 403);
        }
    }
}
