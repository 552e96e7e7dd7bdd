//! The one update rule (README "Updates: absent, null, value"), over every resource with an
//! update endpoint: a field left out keeps the stored value, `null` clears it, a value sets
//! it. Keys, teams, users, budgets, organizations (their budget) and team and organization
//! memberships (their `max_budget_in_*`).

use crate::common::*;
use serde_json::{json, Value};

/// The allowance fields with a first and a second value.
const FIELDS: [(&str, f64, f64); 5] = [
    ("max_budget", 10.0, 20.0),
    ("soft_budget", 3.0, 4.0),
    ("tpm_limit", 100.0, 200.0),
    ("rpm_limit", 7.0, 8.0),
    ("max_parallel_requests", 2.0, 3.0),
];

/// Every allowance field as it is shown.
const ALL: [&str; 7] = [
    "max_budget",
    "soft_budget",
    "tpm_limit",
    "rpm_limit",
    "max_parallel_requests",
    "budget_duration",
    "budget_reset_at",
];

/// `v` as the field wants it: budgets are numbers, limits integers.
fn sent(f: &str, v: f64) -> Value {
    if f.ends_with("budget") {
        json!(v)
    } else {
        json!(v as i64)
    }
}

fn first_values() -> Value {
    let mut m = serde_json::Map::new();
    for (f, v, _) in FIELDS {
        m.insert(f.into(), sent(f, v));
    }
    m.insert("budget_duration".into(), json!("1d"));
    Value::Object(m)
}

fn merged(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A resource under test: made with the first values, updated with a body (its id added),
/// read back as the object holding the allowance fields.
struct Resource {
    name: &'static str,
    create: fn(&Server, Value) -> String,
    update: fn(&Server, &str, Value) -> Resp,
    read: fn(&Server, &str) -> Value,
}

fn key_create(s: &Server, f: Value) -> String {
    let v = s.admin("/key/generate", f);
    v["key"].as_str().unwrap().to_string()
}
fn key_update(s: &Server, id: &str, b: Value) -> Resp {
    s.post("/key/update", MASTER, merged(json!({"key": id}), b))
}
fn key_read(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("/key/info?key={id}"), MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["info"].clone()
}

fn team_create(s: &Server, f: Value) -> String {
    s.admin("/team/new", merged(json!({"team_id": "pt"}), f));
    "pt".into()
}
fn team_update(s: &Server, id: &str, b: Value) -> Resp {
    s.post("/team/update", MASTER, merged(json!({"team_id": id}), b))
}
fn team_read(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("/team/info?team_id={id}"), MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["team_info"].clone()
}

fn user_create(s: &Server, f: Value) -> String {
    s.admin(
        "/user/new",
        merged(json!({"user_id": "pu", "auto_create_key": false}), f),
    );
    "pu".into()
}
fn user_update(s: &Server, id: &str, b: Value) -> Resp {
    s.post("/user/update", MASTER, merged(json!({"user_id": id}), b))
}
fn user_read(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("/user/info?user_id={id}"), MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["user_info"].clone()
}

fn budget_create(s: &Server, f: Value) -> String {
    s.admin("/budget/new", merged(json!({"budget_id": "pb"}), f));
    "pb".into()
}
fn budget_update(s: &Server, id: &str, b: Value) -> Resp {
    s.post(
        "/budget/update",
        MASTER,
        merged(json!({"budget_id": id}), b),
    )
}
fn budget_read(s: &Server, id: &str) -> Value {
    s.admin("/budget/info", json!({"budgets": [id]}))[0].clone()
}

fn org_create(s: &Server, f: Value) -> String {
    let v = s.admin(
        "/organization/new",
        merged(json!({"organization_alias": "po"}), f),
    );
    v["organization_id"].as_str().unwrap().to_string()
}
fn org_update(s: &Server, id: &str, b: Value) -> Resp {
    let body = merged(json!({"organization_id": id}), b);
    s.send("PATCH", "/organization/update", MASTER, body)
}
fn org_info(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("/organization/info?organization_id={id}"), MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}
fn org_read(s: &Server, id: &str) -> Value {
    org_info(s, id)["litellm_budget_table"].clone()
}

const RESOURCES: [Resource; 5] = [
    Resource {
        name: "key",
        create: key_create,
        update: key_update,
        read: key_read,
    },
    Resource {
        name: "team",
        create: team_create,
        update: team_update,
        read: team_read,
    },
    Resource {
        name: "user",
        create: user_create,
        update: user_update,
        read: user_read,
    },
    Resource {
        name: "budget",
        create: budget_create,
        update: budget_update,
        read: budget_read,
    },
    Resource {
        name: "organization",
        create: org_create,
        update: org_update,
        read: org_read,
    },
];

fn ok(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
}

#[test]
fn absent_keeps_null_clears_value_sets_on_every_resource() {
    for res in &RESOURCES {
        let s = Server::start();
        let id = (res.create)(&s, first_values());
        let name = res.name;
        let stored = (res.read)(&s, &id);
        for (f, v, _) in FIELDS {
            assert_eq!(num(&stored[f]), Some(v), "{name}: created {f}: {stored}");
        }
        assert_eq!(stored["budget_duration"], "1d", "{name}: {stored}");
        assert!(stored["budget_reset_at"].is_string(), "{name}: {stored}");

        // Absent: an update naming none of the fields keeps them all.
        let other = json!({"metadata": {"touched": true}});
        ok(&(res.update)(&s, &id, other), name);
        let now = (res.read)(&s, &id);
        for f in ALL {
            assert_eq!(now[f], stored[f], "{name}: absent changed {f}");
        }

        // Null: each field cleared on its own; the others stay.
        for (i, (f, _, _)) in FIELDS.iter().enumerate() {
            ok(&(res.update)(&s, &id, json!({ *f: null })), name);
            let now = (res.read)(&s, &id);
            assert!(now[f].is_null(), "{name}: null did not clear {f}: {now}");
            for (g, v, _) in &FIELDS[i + 1..] {
                assert_eq!(num(&now[g]), Some(*v), "{name}: clearing {f} touched {g}");
            }
        }
        ok(
            &(res.update)(&s, &id, json!({"budget_duration": null})),
            name,
        );
        let now = (res.read)(&s, &id);
        assert!(now["budget_duration"].is_null(), "{name}: {now}");
        assert!(now["budget_reset_at"].is_null(), "{name}: {now}");

        // Value: sets each field again.
        let mut second = serde_json::Map::new();
        for (f, _, v) in FIELDS {
            second.insert(f.into(), sent(f, v));
        }
        second.insert("budget_duration".into(), json!("2d"));
        ok(&(res.update)(&s, &id, Value::Object(second)), name);
        let now = (res.read)(&s, &id);
        for (f, _, v) in FIELDS {
            assert_eq!(
                num(&now[f]),
                Some(v),
                "{name}: value did not set {f}: {now}"
            );
        }
        assert_eq!(now["budget_duration"], "2d", "{name}: {now}");
        assert!(now["budget_reset_at"].is_string(), "{name}: {now}");
    }
}

#[test]
fn nullable_aliases_follow_the_rule() {
    let s = Server::start();
    // Keys: key_alias.
    let k = key_create(&s, json!({"key_alias": "ka"}));
    ok(&key_update(&s, &k, json!({"metadata": {}})), "key");
    assert_eq!(key_read(&s, &k)["key_alias"], "ka");
    ok(&key_update(&s, &k, json!({"key_alias": null})), "key");
    assert!(key_read(&s, &k)["key_alias"].is_null());
    ok(&key_update(&s, &k, json!({"key_alias": "kb"})), "key");
    assert_eq!(key_read(&s, &k)["key_alias"], "kb");
    // Teams: team_alias.
    let t = team_create(&s, json!({"team_alias": "ta"}));
    ok(&team_update(&s, &t, json!({"metadata": {}})), "team");
    assert_eq!(team_read(&s, &t)["team_alias"], "ta");
    ok(&team_update(&s, &t, json!({"team_alias": null})), "team");
    assert!(team_read(&s, &t)["team_alias"].is_null());
    ok(&team_update(&s, &t, json!({"team_alias": "tb"})), "team");
    assert_eq!(team_read(&s, &t)["team_alias"], "tb");
}

#[test]
fn fields_that_cannot_be_empty_keep_their_value_on_null() {
    let s = Server::start();
    let t = team_create(&s, json!({"models": ["A"], "metadata": {"m": 1}}));
    ok(
        &team_update(
            &s,
            &t,
            json!({"models": null, "metadata": null, "blocked": null}),
        ),
        "team",
    );
    let now = team_read(&s, &t);
    assert_eq!(now["models"], json!(["A"]));
    assert_eq!(now["metadata"], json!({"m": 1}));
    assert_eq!(now["blocked"], false);
}

/// The stored `max_budget` of a team membership (None: no budget row).
fn team_member_budget(s: &Server, team: &str, user: &str) -> Option<f64> {
    let info = s.get(&format!("/team/info?team_id={team}"), MASTER).json();
    let m = info["team_memberships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user)
        .cloned()
        .unwrap();
    m["litellm_budget_table"]["max_budget"].as_f64()
}

/// The stored `max_budget` of an organization membership (None: no budget row).
fn org_member_budget(s: &Server, org: &str, user: &str) -> Option<f64> {
    let info = org_info(s, org);
    let m = info["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user)
        .cloned()
        .unwrap();
    m["litellm_budget_table"]["max_budget"].as_f64()
}

#[test]
fn membership_budgets_follow_the_rule() {
    let s = Server::start();
    let t = team_create(&s, json!({}));
    s.admin(
        "/team/member_add",
        json!({"team_id": t, "member": {"user_id": "m1"}, "max_budget_in_team": 5}),
    );
    let update = |b: Value| {
        let r = s.post(
            "/team/member_update",
            MASTER,
            merged(json!({"team_id": t, "user_id": "m1"}), b),
        );
        ok(&r, "team member");
    };
    update(json!({"role": "user"}));
    assert_eq!(team_member_budget(&s, &t, "m1"), Some(5.0));
    let budgets = s.count("SELECT count(*) FROM budgets");
    update(json!({"max_budget_in_team": null}));
    assert_eq!(team_member_budget(&s, &t, "m1"), None);
    // The membership's own budget row goes with it.
    assert_eq!(s.count("SELECT count(*) FROM budgets"), budgets - 1);
    update(json!({"max_budget_in_team": 7}));
    assert_eq!(team_member_budget(&s, &t, "m1"), Some(7.0));

    let o = org_create(&s, json!({}));
    s.admin(
        "/organization/member_add",
        json!({"organization_id": o, "member": {"user_id": "m2"}, "max_budget_in_organization": 5}),
    );
    let update = |b: Value| {
        let r = s.send(
            "PATCH",
            "/organization/member_update",
            MASTER,
            merged(json!({"organization_id": o, "user_id": "m2"}), b),
        );
        ok(&r, "org member");
    };
    update(json!({"role": "internal_user"}));
    assert_eq!(org_member_budget(&s, &o, "m2"), Some(5.0));
    let budgets = s.count("SELECT count(*) FROM budgets");
    update(json!({"max_budget_in_organization": null}));
    assert_eq!(org_member_budget(&s, &o, "m2"), None);
    assert_eq!(s.count("SELECT count(*) FROM budgets"), budgets - 1);
    update(json!({"max_budget_in_organization": 7}));
    assert_eq!(org_member_budget(&s, &o, "m2"), Some(7.0));
}

#[test]
fn a_null_is_a_change_for_authorization() {
    let s = Server::start();
    // A user may change their own metadata, but clearing their own budget is a budget change.
    let key = seed_user(&s, "self", "internal_user");
    s.db()
        .execute("UPDATE users SET max_budget = 1 WHERE id = 'self'", [])
        .unwrap();
    let before = snapshot(&s);
    let r = s.post(
        "/user/update",
        &key,
        json!({"user_id": "self", "max_budget": null}),
    );
    assert_error(&r, 403);
    assert_eq!(snapshot(&s), before);
    // A team admin may rename the team, but clearing its budget needs an org admin.
    seed_org(&s, "o", &[]);
    seed_team(&s, "t", Some("o"), &[]);
    seed_user(&s, "ta", "internal_user");
    seed_team_member(&s, "t", "ta", "admin");
    let ta = format!("sk-test-ta-{}", "x".repeat(16));
    s.db()
        .execute("UPDATE teams SET max_budget = 1 WHERE id = 't'", [])
        .unwrap();
    let before = snapshot(&s);
    let r = s.post(
        "/team/update",
        &ta,
        json!({"team_id": "t", "max_budget": null}),
    );
    assert_error(&r, 403);
    assert_eq!(snapshot(&s), before);
    // A member budget the proxy admin set: the team admin may lower it, not clear it.
    s.admin(
        "/team/member_add",
        json!({"team_id": "t", "member": {"user_id": "m"}, "max_budget_in_team": 5}),
    );
    let before = snapshot(&s);
    let body = json!({"team_id": "t", "user_id": "m", "max_budget_in_team": null});
    assert_error(&s.post("/team/member_update", &ta, body), 403);
    assert_eq!(snapshot(&s), before);
    let body = json!({"team_id": "t", "user_id": "m", "max_budget_in_team": 4});
    assert_eq!(s.post("/team/member_update", &ta, body).status, 200);
}
