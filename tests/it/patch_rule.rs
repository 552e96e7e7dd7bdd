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

/// A resource under test: made with `create` (its fixed fields plus the test's), updated with a
/// body naming it by `id_field`, read back as the object (`read.3`, a JSON pointer) holding the
/// allowance fields.
struct Resource {
    name: &'static str,
    /// Path, fixed fields (JSON), the reply field with the id.
    create: (&'static str, &'static str, &'static str),
    /// Method, path.
    update: (&'static str, &'static str),
    id_field: &'static str,
    /// Method, path (`{id}` replaced), body (`{id}` replaced; empty: none), pointer.
    read: (&'static str, &'static str, &'static str, &'static str),
}

impl Resource {
    fn create(&self, s: &Server, f: Value) -> String {
        let (path, fixed, id) = self.create;
        let v = s.admin(path, merged(serde_json::from_str(fixed).unwrap(), f));
        v[id].as_str().unwrap().to_string()
    }

    fn update(&self, s: &Server, id: &str, b: Value) -> Resp {
        let (method, path) = self.update;
        s.send(
            method,
            path,
            MASTER,
            merged(json!({ self.id_field: id }), b),
        )
    }

    fn read(&self, s: &Server, id: &str) -> Value {
        let (method, path, body, pointer) = self.read;
        let path = path.replace("{id}", id);
        let r = match body {
            "" => s.get(&path, MASTER),
            b => s.post(
                &path,
                MASTER,
                serde_json::from_str(&b.replace("{id}", id)).unwrap(),
            ),
        };
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text());
        r.json().pointer(pointer).cloned().unwrap_or(Value::Null)
    }
}

const KEY: Resource = Resource {
    name: "key",
    create: ("/key/generate", "{}", "key"),
    update: ("POST", "/key/update"),
    id_field: "key",
    read: ("GET", "/key/info?key={id}", "", "/info"),
};
const TEAM: Resource = Resource {
    name: "team",
    create: ("/team/new", r#"{"team_id": "pt"}"#, "team_id"),
    update: ("POST", "/team/update"),
    id_field: "team_id",
    read: ("GET", "/team/info?team_id={id}", "", "/team_info"),
};
const ORG: Resource = Resource {
    name: "organization",
    create: (
        "/organization/new",
        r#"{"organization_alias": "po"}"#,
        "organization_id",
    ),
    update: ("PATCH", "/organization/update"),
    id_field: "organization_id",
    read: (
        "GET",
        "/organization/info?organization_id={id}",
        "",
        "/litellm_budget_table",
    ),
};
const RESOURCES: [Resource; 5] = [
    KEY,
    TEAM,
    Resource {
        name: "user",
        create: (
            "/user/new",
            r#"{"user_id": "pu", "auto_create_key": false}"#,
            "user_id",
        ),
        update: ("POST", "/user/update"),
        id_field: "user_id",
        read: ("GET", "/user/info?user_id={id}", "", "/user_info"),
    },
    Resource {
        name: "budget",
        create: ("/budget/new", r#"{"budget_id": "pb"}"#, "budget_id"),
        update: ("POST", "/budget/update"),
        id_field: "budget_id",
        read: ("POST", "/budget/info", r#"{"budgets": ["{id}"]}"#, "/0"),
    },
    ORG,
];

fn ok(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
}

#[test]
fn absent_keeps_null_clears_value_sets_on_every_resource() {
    for res in &RESOURCES {
        let s = Server::start();
        let id = res.create(&s, first_values());
        let name = res.name;
        let stored = res.read(&s, &id);
        for (f, v, _) in FIELDS {
            assert_eq!(num(&stored[f]), Some(v), "{name}: created {f}: {stored}");
        }
        assert_eq!(stored["budget_duration"], "1d", "{name}: {stored}");
        assert!(stored["budget_reset_at"].is_string(), "{name}: {stored}");

        // Absent: an update naming none of the fields keeps them all.
        let other = json!({"metadata": {"touched": true}});
        ok(&res.update(&s, &id, other), name);
        let now = res.read(&s, &id);
        for f in ALL {
            assert_eq!(now[f], stored[f], "{name}: absent changed {f}");
        }

        // Null: each field cleared on its own; the others stay.
        for (i, (f, _, _)) in FIELDS.iter().enumerate() {
            ok(&res.update(&s, &id, json!({ *f: null })), name);
            let now = res.read(&s, &id);
            assert!(now[f].is_null(), "{name}: null did not clear {f}: {now}");
            for (g, v, _) in &FIELDS[i + 1..] {
                assert_eq!(num(&now[g]), Some(*v), "{name}: clearing {f} touched {g}");
            }
        }
        ok(&res.update(&s, &id, json!({"budget_duration": null})), name);
        let now = res.read(&s, &id);
        assert!(now["budget_duration"].is_null(), "{name}: {now}");
        assert!(now["budget_reset_at"].is_null(), "{name}: {now}");

        // Value: sets each field again.
        let mut second = serde_json::Map::new();
        for (f, _, v) in FIELDS {
            second.insert(f.into(), sent(f, v));
        }
        second.insert("budget_duration".into(), json!("2d"));
        ok(&res.update(&s, &id, Value::Object(second)), name);
        let now = res.read(&s, &id);
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
    let k = KEY.create(&s, json!({"key_alias": "ka"}));
    ok(&KEY.update(&s, &k, json!({"metadata": {}})), "key");
    assert_eq!(KEY.read(&s, &k)["key_alias"], "ka");
    ok(&KEY.update(&s, &k, json!({"key_alias": null})), "key");
    assert!(KEY.read(&s, &k)["key_alias"].is_null());
    ok(&KEY.update(&s, &k, json!({"key_alias": "kb"})), "key");
    assert_eq!(KEY.read(&s, &k)["key_alias"], "kb");
    // Teams: team_alias.
    let t = TEAM.create(&s, json!({"team_alias": "ta"}));
    ok(&TEAM.update(&s, &t, json!({"metadata": {}})), "team");
    assert_eq!(TEAM.read(&s, &t)["team_alias"], "ta");
    ok(&TEAM.update(&s, &t, json!({"team_alias": null})), "team");
    assert!(TEAM.read(&s, &t)["team_alias"].is_null());
    ok(&TEAM.update(&s, &t, json!({"team_alias": "tb"})), "team");
    assert_eq!(TEAM.read(&s, &t)["team_alias"], "tb");
}

#[test]
fn fields_that_cannot_be_empty_keep_their_value_on_null() {
    let s = Server::start();
    let t = TEAM.create(&s, json!({"models": ["A"], "metadata": {"m": 1}}));
    let nulls = json!({"models": null, "metadata": null, "blocked": null});
    ok(&TEAM.update(&s, &t, nulls), "team");
    let now = TEAM.read(&s, &t);
    assert_eq!(now["models"], json!(["A"]));
    assert_eq!(now["metadata"], json!({"m": 1}));
    assert_eq!(now["blocked"], false);
}

/// The stored `max_budget` of `user`'s membership in the `list` of the info at `path` (None:
/// no budget row).
fn member_budget(s: &Server, path: &str, list: &str, user: &str) -> Option<f64> {
    let info = s.get(path, MASTER).json();
    let m = info[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == user)
        .cloned();
    m.unwrap()["litellm_budget_table"]["max_budget"].as_f64()
}

/// A membership budget of 5 by the rule: `keep` (no budget field) keeps it, `null` clears it
/// and deletes the membership's own budget row, a value sets it.
fn member_rule(
    s: &Server,
    field: &str,
    keep: Value,
    update: impl Fn(Value),
    read: impl Fn() -> Option<f64>,
) {
    update(keep);
    assert_eq!(read(), Some(5.0), "{field}: absent");
    let budgets = s.count("SELECT count(*) FROM budgets");
    update(json!({ field: null }));
    assert_eq!(read(), None, "{field}: null");
    assert_eq!(
        s.count("SELECT count(*) FROM budgets"),
        budgets - 1,
        "{field}"
    );
    update(json!({ field: 7 }));
    assert_eq!(read(), Some(7.0), "{field}: value");
}

#[test]
fn membership_budgets_follow_the_rule() {
    let s = Server::start();
    let t = TEAM.create(&s, json!({}));
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
    let path = format!("/team/info?team_id={t}");
    let read = || member_budget(&s, &path, "team_memberships", "m1");
    member_rule(
        &s,
        "max_budget_in_team",
        json!({"role": "user"}),
        update,
        read,
    );

    let o = ORG.create(&s, json!({}));
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
    let path = format!("/organization/info?organization_id={o}");
    let read = || member_budget(&s, &path, "members", "m2");
    let keep = json!({"role": "internal_user"});
    member_rule(&s, "max_budget_in_organization", keep, update, read);
}

/// `key` posting `body` to `path` is refused (403) and changes nothing.
fn refused(s: &Server, key: &str, path: &str, body: Value) {
    let before = snapshot(s);
    assert_error(&s.post(path, key, body), 403);
    assert_eq!(snapshot(s), before, "{path}");
}

#[test]
fn a_null_is_a_change_for_authorization() {
    let s = Server::start();
    // A user may change their own metadata, but clearing their own budget is a budget change.
    let key = seed_user(&s, "self", "internal_user");
    s.exec("UPDATE users SET max_budget = 1 WHERE id = 'self'");
    let body = json!({"user_id": "self", "max_budget": null});
    refused(&s, &key, "/user/update", body);
    // A team admin may rename the team, but clearing its budget needs an org admin.
    seed_org(&s, "o", &[]);
    seed_team(&s, "t", Some("o"), &[]);
    let ta = seed_user(&s, "ta", "internal_user");
    seed_team_member(&s, "t", "ta", "admin");
    s.exec("UPDATE teams SET max_budget = 1 WHERE id = 't'");
    let body = json!({"team_id": "t", "max_budget": null});
    refused(&s, &ta, "/team/update", body);
    // A member budget the proxy admin set: the team admin may lower it, not clear it.
    s.admin(
        "/team/member_add",
        json!({"team_id": "t", "member": {"user_id": "m"}, "max_budget_in_team": 5}),
    );
    let body = json!({"team_id": "t", "user_id": "m", "max_budget_in_team": null});
    refused(&s, &ta, "/team/member_update", body);
    let body = json!({"team_id": "t", "user_id": "m", "max_budget_in_team": 4});
    assert_eq!(s.post("/team/member_update", &ta, body).status, 200);
}
