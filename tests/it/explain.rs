//! Issue 16 item 1: `POST /access/explain` end to end (both engines): a key explains itself,
//! admins of its team, org or the proxy explain it by raw key, token or alias, anyone else gets
//! the same 403 whether the key exists or not; aliases, budgets and rate limits with their
//! figures; every refusal worded as the real call's; and explaining changes nothing.

use crate::common::*;
use litegate::auth::hash_key;
use serde_json::{json, Value};

fn explain(s: &Server, caller: &str, body: Value) -> Value {
    let r = s.post("/access/explain", caller, body.clone());
    assert_eq!(r.status, 200, "{body} -> {}", r.text());
    r.json()
}

fn level<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["levels"]
        .as_array()
        .and_then(|l| l.iter().find(|x| x["level"] == name))
        .unwrap_or_else(|| panic!("no level {name}: {v}"))
}

/// An org (A, B, C) with a team (A, B, aliases fast → A) and its members: `ta` team admin,
/// `oa` org admin, `u` and `v` plain members. Returns (org, team).
fn world(s: &Server) -> (String, String) {
    let org = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "acme", "models": ["A", "B", "C"]}),
        "organization_id",
    );
    let team = s.admin_id(
        "/team/new",
        json!({"organization_id": org, "models": ["A", "B"],
               "model_aliases": {"fast": "A", "far": "C"}}),
        "team_id",
    );
    for (u, team_role, org_role) in [
        ("ta", "admin", "internal_user"),
        ("oa", "user", "org_admin"),
        ("u", "user", "internal_user"),
        ("v", "user", "internal_user"),
    ] {
        seed_user(s, u, "internal_user");
        seed_org_member(s, &org, u, org_role);
        seed_team_member(s, &team, u, team_role);
    }
    (org, team)
}

#[test]
fn a_key_explains_itself_and_the_answer_is_what_the_call_gets() {
    let s = Server::start();
    let (org, team) = world(&s);
    let key = key_for(
        &s,
        json!({"team_id": team, "user_id": "u", "models": ["all-team-models"],
               "aliases": {"quick": "B"}}),
    );
    // Allowed: every level listed, the effective sets narrowing down.
    let v = explain(&s, &key, json!({"model": "A"}));
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["refused_by"], Value::Null, "{v}");
    assert_eq!(v["model"], json!({"requested": "A", "resolved": "A"}));
    assert_eq!(level(&v, "proxy")["effective"], json!(["A", "B", "C", "D"]));
    assert_eq!(level(&v, "organization")["models"], json!(["A", "B", "C"]));
    assert_eq!(level(&v, "team")["effective"], json!(["A", "B"]));
    assert_eq!(level(&v, "key")["models"], json!(["all-team-models"]));
    assert_eq!(level(&v, "key")["effective"], json!(["A", "B"]));
    assert_eq!(level(&v, "user")["applies"], false, "a team key: {v}");
    assert_eq!(v["key"]["team_id"], json!(team));
    assert_eq!(v["key"]["organization_id"], json!(org));
    assert!(!v.to_string().contains(&key), "never the raw key: {v}");
    assert_eq!(chat(&s, &key, "A").status, 200);

    // Aliases: the team's `fast` → A, the key's `quick` → B; the call answers as that model.
    for (asked, resolved) in [("fast", "A"), ("quick", "B")] {
        let v = explain(&s, &key, json!({"model": asked}));
        assert_eq!(
            v["model"],
            json!({"requested": asked, "resolved": resolved})
        );
        assert_eq!(v["allowed"], true, "{v}");
        assert_eq!(chat(&s, &key, asked).json()["model"], resolved);
    }

    // Refused at the team: C is the org's, not the team's; the reason is the call's error.
    for (asked, refused_by, allows) in [("C", "team", "team"), ("far", "team", "team")] {
        let v = explain(&s, &key, json!({"model": asked}));
        assert_eq!(v["allowed"], false, "{v}");
        assert_eq!(v["refused_by"], refused_by, "{v}");
        assert_eq!(level(&v, allows)["allows"], false, "{v}");
        assert_eq!(level(&v, "organization")["allows"], true, "{v}");
        let call = chat(&s, &key, asked);
        assert_eq!(v["status"], call.status, "{v}");
        assert_eq!(v["reason"], call.json()["error"]["message"], "{v}");
    }
    // Unknown everywhere: the key's list names only all-team-models, so the team refuses.
    let v = explain(&s, &key, json!({"model": "nope"}));
    assert_eq!(v["allowed"], false, "{v}");
    assert_eq!(level(&v, "proxy")["allows"], false, "{v}");
    assert_eq!(
        v["reason"],
        chat(&s, &key, "nope").json()["error"]["message"]
    );

    // The master key explains itself: the proxy alone decides.
    let v = explain(&s, MASTER, json!({"model": "D"}));
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["key"], Value::Null);
    let v = explain(&s, MASTER, json!({"model": "nope"}));
    assert_eq!(
        (v["allowed"].clone(), v["refused_by"].clone()),
        (json!(false), json!("proxy"))
    );

    // Bad input: 400 in LiteLLM's envelope, naming the field.
    for body in [json!({}), json!({"model": ""}), json!({"model": 3})] {
        let e = assert_error(&s.post("/access/explain", &key, body), 400);
        assert_eq!(e["error"]["param"], "model", "{e}");
    }
}

#[test]
fn admins_explain_a_key_by_raw_token_or_alias_and_nobody_else_learns_anything() {
    let s = Server::start();
    let (_org, team) = world(&s);
    let target = key_for(
        &s,
        json!({"team_id": team, "user_id": "v", "key_alias": "v-key", "models": ["A"]}),
    );
    let keys: Vec<(&str, String)> = ["ta", "oa", "u", "v"]
        .into_iter()
        .map(|u| (u, key_for(&s, json!({"user_id": u}))))
        .collect();
    let token = hash_key(&target);
    let before = snapshot(&s);
    for given in [target.as_str(), token.as_str(), "v-key"] {
        for (who, caller) in keys
            .iter()
            .map(|(u, k)| (*u, k.as_str()))
            .chain([("master", MASTER)])
        {
            let r = s.post(
                "/access/explain",
                caller,
                json!({"key": given, "model": "B"}),
            );
            match who {
                "u" => {
                    let e = assert_error(&r, 403);
                    // Same answer for a key that does not exist.
                    let none = s.post(
                        "/access/explain",
                        caller,
                        json!({"key": "no-such-alias", "model": "B"}),
                    );
                    assert_eq!(none.status, 403);
                    assert_eq!(none.json(), e, "nothing learnt");
                }
                _ => {
                    assert_eq!(r.status, 200, "{who} {given}: {}", r.text());
                    let v = r.json();
                    assert_eq!(v["allowed"], false, "{v}");
                    assert_eq!(v["refused_by"], "key", "{v}");
                    assert_eq!(v["key"]["key_alias"], "v-key");
                    assert!(!v.to_string().contains(&target), "{v}");
                }
            }
        }
    }
    // The proxy admin learns that a key does not exist.
    assert_error(
        &s.post(
            "/access/explain",
            MASTER,
            json!({"key": "no-such-alias", "model": "B"}),
        ),
        404,
    );
    assert_eq!(snapshot(&s), before, "explaining wrote nothing");
    // A key the team admin issued for `u` is calls-only: it explains itself, nothing else.
    let r = s.post(
        "/key/generate",
        &keys[0].1,
        json!({"team_id": team, "user_id": "u", "models": ["A"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let calls_only = r.json()["key"].as_str().unwrap().to_string();
    let v = explain(&s, &calls_only, json!({"model": "A"}));
    assert_eq!(v["allowed"], true, "{v}");
    let own = explain(&s, &calls_only, json!({"key": calls_only, "model": "A"}));
    assert_eq!(own["allowed"], true, "{own}");
    assert_error(
        &s.post(
            "/access/explain",
            &calls_only,
            json!({"key": "v-key", "model": "A"}),
        ),
        403,
    );
    // The key refused B by its own list: the call gets that same refusal.
    let v = explain(&s, MASTER, json!({"key": "v-key", "model": "B"}));
    let call = chat(&s, &target, "B");
    assert_eq!(v["reason"], call.json()["error"]["message"]);

    // Blocked, then its team blocked: refused where the key check refuses, in its words.
    s.admin("/key/block", json!({"key": target}));
    let v = explain(&s, MASTER, json!({"key": "v-key", "model": "A"}));
    assert_eq!(
        (v["refused_by"].clone(), v["status"].clone()),
        (json!("key"), json!(401))
    );
    assert_eq!(
        v["reason"],
        chat(&s, &target, "A").json()["error"]["message"]
    );
    s.admin("/key/unblock", json!({"key": target}));
    s.admin("/team/block", json!({"team_id": team}));
    let v = explain(&s, &keys[0].1, json!({"key": "v-key", "model": "A"}));
    assert_eq!(v["refused_by"], "team", "{v}");
    assert_eq!(
        v["reason"],
        chat(&s, &target, "A").json()["error"]["message"]
    );
    s.admin("/team/unblock", json!({"team_id": team}));
    // Expired.
    run_sql(
        &s,
        "UPDATE api_keys SET expires = '2020-01-01T00:00:00.000Z' WHERE token = ?1",
        &[Some(token.as_str()).into()],
    );
    let v = explain(&s, MASTER, json!({"key": token, "model": "A"}));
    assert_eq!(v["refused_by"], "key", "{v}");
    assert_eq!(
        v["reason"],
        chat(&s, &target, "A").json()["error"]["message"]
    );
}

#[test]
fn budgets_and_limits_with_their_figures_and_explaining_consumes_nothing() {
    let s = Server::start();
    let (_org, team) = world(&s);
    s.admin(
        "/team/update",
        json!({"team_id": team, "max_budget": 50.0, "tpm_limit": 100000}),
    );
    let key = key_for(
        &s,
        json!({"team_id": team, "user_id": "u", "max_budget": 10.0, "rpm_limit": 3,
               "max_parallel_requests": 5}),
    );
    assert_eq!(chat(&s, &key, "A").status, 200);
    let spend: f64 = s.value(
        "SELECT spend FROM api_keys WHERE token = ?1",
        [hash_key(&key)],
    );
    assert!(spend > 0.0);
    let before = snapshot(&s);
    let v = explain(&s, &key, json!({"model": "A"}));
    assert_eq!(v["allowed"], true, "{v}");
    let budgets = v["budgets"].as_array().unwrap();
    assert_eq!(fields_of(&v["budgets"], "level"), ["key", "team"]);
    let kb = &budgets[0];
    assert_eq!(kb["spend"].as_f64(), Some(spend), "{v}");
    assert_eq!(kb["max_budget"], 10.0);
    assert_eq!(kb["reserved"], 0.0);
    assert!((kb["remaining"].as_f64().unwrap() - (10.0 - spend)).abs() < 1e-9);
    assert_eq!(v["binding_budget"]["level"], "key", "{v}");
    let rl = |v: &Value, kind: &str| -> Value {
        v["rate_limits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind}: {v}"))
    };
    assert_eq!(
        rl(&v, "rpm"),
        json!({"level": "key", "kind": "rpm", "limit": 3, "used": 1, "remaining": 2})
    );
    assert_eq!(rl(&v, "parallel")["used"], 0);
    let tpm = rl(&v, "tpm");
    assert_eq!(tpm["level"], "team");
    assert!(tpm["used"].as_i64().unwrap() > 0, "{v}");
    // Asked again: the same figures (nothing reserved, no request counted), the store unchanged.
    let again = explain(&s, &key, json!({"model": "A"}));
    assert_eq!(again["rate_limits"], v["rate_limits"]);
    assert_eq!(again["budgets"], v["budgets"]);
    assert_eq!(snapshot(&s), before, "explain changed the store");

    // Two more calls use up the rpm: explained as the call's 429.
    assert_eq!(chat(&s, &key, "B").status, 200);
    assert_eq!(chat(&s, &key, "B").status, 200);
    let v = explain(&s, &key, json!({"model": "B"}));
    assert_eq!(v["allowed"], false, "{v}");
    assert_eq!(
        (v["refused_by"].clone(), v["status"].clone()),
        (json!("key"), json!(429))
    );
    assert_eq!(rl(&v, "rpm")["remaining"], 0);
    let call = chat(&s, &key, "B");
    assert_eq!(call.status, 429);
    let head = |m: &Value| {
        m.as_str()
            .unwrap()
            .split(" Retry")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(head(&v["reason"]), head(&call.json()["error"]["message"]));

    // A spent team budget refuses before the limits, as admission does.
    run_sql(
        &s,
        "UPDATE teams SET spend = 50 WHERE id = ?1",
        &[Some(team.as_str()).into()],
    );
    let v = explain(&s, &key, json!({"model": "A"}));
    assert_eq!(v["refused_by"], "team", "{v}");
    assert_eq!(v["binding_budget"]["level"], "team", "{v}");
    assert_eq!(v["budgets"][1]["remaining"], 0.0);
    let call = chat(&s, &key, "A");
    assert_eq!(call.status, 422);
    assert_eq!(v["reason"], call.json()["error"]["message"]);
}
