//! The audit log (issue 16 item 3, README "Audit log"): every management write route appends
//! its entry (a walk over `ROUTES`: a write route without a case here fails), a denied write
//! leaves none, no secret ever reaches the table, `/audit/list`'s filters, paging and org
//! admin scope, retention, and the master key's rotation. Both engines.

use crate::common::*;
use litegate::http::routes::{Handler, ROUTES};
use serde_json::{json, Value};

const UI: (&str, &str) = ("X-Litegate-UI", "1");

/// POST routes that read: they must write no entry.
const READS: &[(&str, &str)] = &[
    ("POST", "/organization/info"),
    ("POST", "/budget/info"),
    ("POST", "/key/health"),
    ("POST", "/access/explain"),
];

fn entries(s: &Server, action: &str, table: &str) -> i64 {
    count_p(
        s,
        "SELECT COUNT(*) FROM audit_log WHERE action = ?1 AND table_name = ?2",
        &[action, table],
    )
}

fn all_audit_text(s: &Server) -> String {
    s.text_rows("SELECT * FROM audit_log")
        .into_iter()
        .flatten()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n")
}

/// One write: the request and the entry it must append.
struct Case {
    method: &'static str,
    path: String,
    body: Value,
    action: &'static str,
    table: &'static str,
}

fn case(
    method: &'static str,
    path: &str,
    body: Value,
    action: &'static str,
    table: &'static str,
) -> Case {
    Case {
        method,
        path: path.to_string(),
        body,
        action,
        table,
    }
}

/// Sends `c` as the master key, asserts 200 and one more `(action, table)` entry; the answer.
fn run(s: &Server, c: &Case) -> Value {
    let before = entries(s, c.action, c.table);
    let r = s.send(c.method, &c.path, MASTER, c.body.clone());
    assert_eq!(
        r.status,
        200,
        "{} {} {} -> {}",
        c.method,
        c.path,
        c.body,
        r.text()
    );
    let after = entries(s, c.action, c.table);
    assert!(
        after > before,
        "{} {}: no new ({}, {}) audit entry",
        c.method,
        c.path,
        c.action,
        c.table
    );
    r.json()
}

#[test]
fn every_write_route_appends_its_entry_and_no_secret_is_stored() {
    let s = Server::start();
    let covered: std::cell::RefCell<Vec<(String, String)>> = Default::default();
    let go = |s: &Server, c: Case| -> Value {
        let pattern = if c.path.starts_with("/key/sk-") {
            "/key/{key}/regenerate".to_string()
        } else if c.path.starts_with("/model/mid1/") {
            "/model/{model_id}/update".to_string()
        } else {
            c.path.clone()
        };
        covered.borrow_mut().push((c.method.to_string(), pattern));
        run(s, &c)
    };
    let org = |id: &str| json!({"organization_id": id, "organization_alias": id});
    go(
        &s,
        case(
            "POST",
            "/organization/new",
            org("o1"),
            "create",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/organization/new",
            org("o2"),
            "create",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/organization/new",
            org("o3"),
            "create",
            "organization",
        ),
    );
    let rename = json!({"organization_id": "o1", "organization_alias": "O-one"});
    go(
        &s,
        case(
            "PATCH",
            "/organization/update",
            rename,
            "update",
            "organization",
        ),
    );
    let rename = json!({"organization_id": "o1", "organization_alias": "O-1"});
    go(
        &s,
        case(
            "POST",
            "/organization/update",
            rename,
            "update",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/budget/new",
            json!({"budget_id": "b1", "max_budget": 10.0}),
            "create",
            "budget",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/budget/update",
            json!({"budget_id": "b1", "max_budget": 20.0}),
            "update",
            "budget",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/user/new",
            json!({"user_id": "u1", "auto_create_key": false}),
            "create",
            "user",
        ),
    );
    let pw = json!({"user_id": "u1", "password": "hunter2-audit-password", "metadata": {"a": 1}});
    go(&s, case("POST", "/user/update", pw, "update", "user"));
    let add =
        |role: &str| json!({"organization_id": "o1", "member": {"user_id": "u1", "role": role}});
    go(
        &s,
        case(
            "POST",
            "/organization/member_add",
            add("internal_user"),
            "member_add",
            "organization",
        ),
    );
    let role = |r: &str| json!({"organization_id": "o1", "user_id": "u1", "role": r});
    go(
        &s,
        case(
            "PATCH",
            "/organization/member_update",
            role("org_admin"),
            "member_update",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/organization/member_update",
            role("internal_user"),
            "member_update",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/team/new",
            json!({"team_id": "t1", "organization_id": "o1"}),
            "create",
            "team",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/team/update",
            json!({"team_id": "t1", "team_alias": "T"}),
            "update",
            "team",
        ),
    );
    let tm = json!({"team_id": "t1", "member": {"user_id": "u1", "role": "user"}});
    go(
        &s,
        case("POST", "/team/member_add", tm, "member_add", "team"),
    );
    let tm = json!({"team_id": "t1", "user_id": "u1", "role": "admin"});
    go(
        &s,
        case("POST", "/team/member_update", tm, "member_update", "team"),
    );
    let tm = json!({"team_id": "t1", "user_id": "u1"});
    go(
        &s,
        case("POST", "/team/member_delete", tm, "member_delete", "team"),
    );
    go(
        &s,
        case(
            "POST",
            "/team/block",
            json!({"team_id": "t1"}),
            "block",
            "team",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/team/unblock",
            json!({"team_id": "t1"}),
            "unblock",
            "team",
        ),
    );
    let models = json!({"team_id": "t1", "models": ["A"]});
    go(
        &s,
        case(
            "POST",
            "/team/model/add",
            models.clone(),
            "model_add",
            "team",
        ),
    );
    go(
        &s,
        case("POST", "/team/model/delete", models, "model_delete", "team"),
    );
    let perms = json!({"team_id": "t1", "team_member_permissions": ["/key/info"]});
    go(
        &s,
        case(
            "POST",
            "/team/permissions_update",
            perms,
            "permissions_update",
            "team",
        ),
    );
    let k1 = go(
        &s,
        case(
            "POST",
            "/key/generate",
            json!({"key_alias": "audit-k1"}),
            "create",
            "key",
        ),
    )["key"]
        .as_str()
        .unwrap()
        .to_string();
    go(
        &s,
        case(
            "POST",
            "/key/update",
            json!({"key": k1, "metadata": {"x": 1}}),
            "update",
            "key",
        ),
    );
    go(
        &s,
        case("POST", "/key/block", json!({"key": k1}), "block", "key"),
    );
    go(
        &s,
        case("POST", "/key/unblock", json!({"key": k1}), "unblock", "key"),
    );
    let k2 = go(
        &s,
        case(
            "POST",
            "/key/regenerate",
            json!({"key": k1}),
            "regenerate",
            "key",
        ),
    )["key"]
        .as_str()
        .unwrap()
        .to_string();
    let k3 = go(
        &s,
        case(
            "POST",
            &format!("/key/{k2}/regenerate"),
            json!({}),
            "regenerate",
            "key",
        ),
    )["key"]
        .as_str()
        .unwrap()
        .to_string();
    go(
        &s,
        case(
            "POST",
            "/key/delete",
            json!({"keys": [k3]}),
            "delete",
            "key",
        ),
    );
    for (base, id) in [("/end_user", "e1"), ("/customer", "e2")] {
        let p = |what: &str| format!("{base}/{what}");
        go(
            &s,
            case(
                "POST",
                &p("new"),
                json!({"user_id": id}),
                "create",
                "end_user",
            ),
        );
        go(
            &s,
            case(
                "POST",
                &p("update"),
                json!({"user_id": id, "alias": "x"}),
                "update",
                "end_user",
            ),
        );
        go(
            &s,
            case(
                "POST",
                &p("block"),
                json!({"user_ids": [id]}),
                "block",
                "end_user",
            ),
        );
        go(
            &s,
            case(
                "POST",
                &p("unblock"),
                json!({"user_ids": [id]}),
                "unblock",
                "end_user",
            ),
        );
        go(
            &s,
            case(
                "POST",
                &p("delete"),
                json!({"user_ids": [id]}),
                "delete",
                "end_user",
            ),
        );
    }
    let m = json!({"model_name": "audited", "model_info": {"id": "mid1"},
                   "litellm_params": {"model": "mock/audited", "api_key": "sk-upstream-audit-secret-1"}});
    go(&s, case("POST", "/model/new", m, "create", "model"));
    let m = json!({"model_info": {"id": "mid1", "note": "n"}});
    go(&s, case("POST", "/model/update", m, "update", "model"));
    go(
        &s,
        case(
            "PATCH",
            "/model/mid1/update",
            json!({"model_info": {"note": "m"}}),
            "update",
            "model",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/model/delete",
            json!({"id": "mid1"}),
            "delete",
            "model",
        ),
    );
    // The state file: one entry per object it writes.
    let yaml = "litegate_state: 1\nusers:\n- user_id: s1\n  user_role: internal_user\n";
    let before = entries(&s, "create", "user");
    let r = s.request(
        "POST",
        "/state/apply",
        Some(MASTER),
        Some(yaml.as_bytes()),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(entries(&s, "create", "user"), before + 1);
    covered
        .borrow_mut()
        .push(("POST".into(), "/state/apply".into()));
    // UI logins: successful and failed ones, and the logout.
    let login = |body: Value| {
        let b = body.to_string();
        s.request("POST", "/ui/login", None, Some(b.as_bytes()), &[UI])
    };
    let before = entries(&s, "login_failed", "session");
    assert_eq!(
        login(json!({"master_key": "sk-wrong-master-key-for-audit-0000"})).status,
        401
    );
    assert_eq!(entries(&s, "login_failed", "session"), before + 1);
    let before = entries(&s, "login", "session");
    let r = login(json!({"master_key": MASTER}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(entries(&s, "login", "session"), before + 1);
    covered
        .borrow_mut()
        .push(("POST".into(), "/ui/login".into()));
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let before = entries(&s, "logout", "session");
    let r = s.request(
        "POST",
        "/ui/logout",
        None,
        Some(b"{}"),
        &[UI, ("Cookie", &cookie)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(entries(&s, "logout", "session"), before + 1);
    covered
        .borrow_mut()
        .push(("POST".into(), "/ui/logout".into()));
    // Backups: SQLite only (PostgreSQL answers 501 and writes nothing).
    let before = entries(&s, "backup", "database");
    let r = s.post("/admin/backup", MASTER, json!({}));
    if s.pg.is_none() {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(entries(&s, "backup", "database"), before + 1);
    } else {
        assert_eq!(r.status, 501, "{}", r.text());
        assert_eq!(entries(&s, "backup", "database"), before);
    }
    covered
        .borrow_mut()
        .push(("POST".into(), "/admin/backup".into()));
    // Deletes last.
    go(
        &s,
        case(
            "POST",
            "/team/delete",
            json!({"team_ids": ["t1"]}),
            "delete",
            "team",
        ),
    );
    let od = json!({"organization_id": "o1", "user_id": "u1"});
    go(
        &s,
        case(
            "POST",
            "/organization/member_delete",
            od.clone(),
            "member_delete",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/organization/member_add",
            add("internal_user"),
            "member_add",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "DELETE",
            "/organization/member_delete",
            od,
            "member_delete",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/user/delete",
            json!({"user_ids": ["u1"]}),
            "delete",
            "user",
        ),
    );
    go(
        &s,
        case(
            "DELETE",
            "/organization/delete",
            json!({"organization_ids": ["o2"]}),
            "delete",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/organization/delete",
            json!({"organization_ids": ["o3"]}),
            "delete",
            "organization",
        ),
    );
    go(
        &s,
        case(
            "POST",
            "/budget/delete",
            json!({"budget_id": "b1"}),
            "delete",
            "budget",
        ),
    );

    // Reads write nothing.
    let n = s.count("SELECT COUNT(*) FROM audit_log");
    for (m, p) in READS {
        let body = match *p {
            "/budget/info" => json!({"budgets": ["nope"]}),
            "/access/explain" => json!({"model": "A"}),
            _ => json!({"organization_id": "nope"}),
        };
        s.send(m, p, MASTER, body);
    }
    assert_eq!(
        s.count("SELECT COUNT(*) FROM audit_log"),
        n,
        "a read wrote an entry"
    );

    // The walk: every write route of the table has a case above.
    let missing: Vec<String> = ROUTES
        .iter()
        .filter(|(m, _, h)| *m != "GET" && !matches!(h, Handler::ModelCall(_)))
        .filter(|(m, p, _)| !READS.contains(&(*m, *p)))
        .filter(|(m, p, _)| !covered.borrow().iter().any(|(cm, cp)| cm == m && cp == p))
        .map(|(m, p, _)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "write routes without an audit case: {missing:?}"
    );

    // No secret anywhere in the table: raw keys, their hashes, the master key and its hash,
    // the password, the upstream key.
    let text = all_audit_text(&s);
    let mut secrets = vec![
        MASTER.to_string(),
        litegate::auth::hash_key(MASTER),
        "hunter2-audit-password".to_string(),
        "sk-upstream-audit-secret-1".to_string(),
        "sk-wrong-master-key-for-audit-0000".to_string(),
    ];
    for k in [&k1, &k2, &k3] {
        secrets.push(k.clone());
        secrets.push(litegate::auth::hash_key(k));
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret in the audit log: {secret}"
        );
    }
    assert!(
        !text.contains("$argon2"),
        "a password hash in the audit log"
    );
    // Entries name who and what, in LiteLLM's field names, only the changed fields.
    let r = s.get("/audit/list?object_type=budget&action=update", MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let e = &v["audit_logs"][0];
    assert_eq!(e["changed_by"], "default_user_id", "{e}");
    assert_eq!(e["changed_by_role"], "proxy_admin", "{e}");
    assert_eq!(e["table_name"], "budget");
    assert_eq!(e["object_id"], "b1");
    assert_eq!(e["before_value"]["max_budget"], 10.0, "{e}");
    assert_eq!(e["updated_values"]["max_budget"], 20.0, "{e}");
    assert!(
        e["updated_values"].get("budget_id").is_none(),
        "unchanged fields left out: {e}"
    );
}

#[test]
fn a_denied_or_failed_write_leaves_no_entry() {
    let s = Server::start();
    let key = seed_user(&s, "plain", "internal_user");
    let before = snapshot(&s);
    let r = s.post("/key/generate", &key, json!({"user_id": "someone-else"}));
    assert!(r.status == 403 || r.status == 400, "{}", r.text());
    let r = s.post("/team/new", &key, json!({"team_id": "tx"}));
    assert_eq!(r.status, 403, "{}", r.text());
    let r = s.post(
        "/organization/new",
        &key,
        json!({"organization_alias": "x"}),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        snapshot(&s),
        before,
        "a denied write changed the store (or the audit log)"
    );
    // A failing write (a duplicate id) rolls its entry back with it.
    s.admin("/budget/new", json!({"budget_id": "dup"}));
    let n = s.count("SELECT COUNT(*) FROM audit_log");
    assert_eq!(
        s.post("/budget/new", MASTER, json!({"budget_id": "dup"}))
            .status,
        409
    );
    assert_eq!(s.count("SELECT COUNT(*) FROM audit_log"), n);
    assert_eq!(entries(&s, "create", "team"), 0);
    // The audit log itself: internal users are refused.
    let r = s.get("/audit/list", &key);
    assert_eq!(r.status, 403, "{}", r.text());
}

#[test]
fn list_filters_pages_and_scopes_org_admins() {
    let s = Server::start();
    for o in ["oa", "ob"] {
        s.admin(
            "/organization/new",
            json!({"organization_id": o, "organization_alias": o}),
        );
        for t in 0..3 {
            s.admin(
                "/team/new",
                json!({"team_id": format!("{o}-t{t}"), "organization_id": o}),
            );
        }
    }
    let boss = seed_user(&s, "boss", "internal_user");
    seed_org_member(&s, "oa", "boss", "org_admin");
    let viewer = seed_user(&s, "viewer", "proxy_admin_viewer");

    let list = |key: &str, q: &str| {
        let r = s.get(&format!("/audit/list{q}"), key);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        r.json()
    };
    // Proxy admins and viewers see all; newest first.
    let all = list(MASTER, "?object_type=team");
    assert_eq!(all["total"], 6, "{all}");
    let v = list(&viewer, "?object_type=team&page_size=2&page=2");
    assert_eq!(v["total"], 6);
    assert_eq!(v["total_pages"], 3);
    assert_eq!(v["audit_logs"].as_array().unwrap().len(), 2);
    let times: Vec<String> = all["audit_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["updated_at"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    // Filters: object id, actor, action, time range.
    let one = list(MASTER, "?object_type=team&object_id=oa-t1");
    assert_eq!(one["total"], 1);
    assert_eq!(one["audit_logs"][0]["organization_id"], "oa");
    assert_eq!(
        list(
            MASTER,
            "?actor=default_user_id&action=create&object_type=organization"
        )["total"],
        2
    );
    assert_eq!(list(MASTER, "?actor=nobody")["total"], 0);
    assert_eq!(
        list(MASTER, "?object_type=team&end_date=2000-01-01")["total"],
        0
    );
    assert_eq!(
        list(MASTER, "?object_type=team&start_date=2000-01-01")["total"],
        6
    );
    // An org admin sees its organization's entries only, whatever it asks.
    let mine = list(&boss, "?object_type=team");
    assert_eq!(mine["total"], 3, "{mine}");
    for e in mine["audit_logs"].as_array().unwrap() {
        assert_eq!(e["organization_id"], "oa", "{e}");
    }
    assert_eq!(list(&boss, "?object_id=ob-t0")["total"], 0);
    // Bad input: 400 naming the parameter.
    for q in [
        "?page_size=0",
        "?page_size=101",
        "?page=x",
        "?start_date=yesterday",
    ] {
        assert_error(&s.get(&format!("/audit/list{q}"), MASTER), 400);
    }
}

#[test]
fn old_entries_are_pruned_by_the_retention_setting() {
    let cfg = TEST_CONFIG.replace(
        "general_settings:\n",
        "general_settings:\n  audit_log_retention_days: 30\n",
    );
    assert_ne!(cfg, TEST_CONFIG, "the test config has general_settings");
    let s = Server::start_with_env(&cfg, &[], &[("LITEGATE_BUDGET_RESET_SECS", "1")]);
    s.admin("/budget/new", json!({"budget_id": "fresh"}));
    s.exec(
        "INSERT INTO audit_log (id, updated_at, changed_by_role, action, table_name, object_id) \
         VALUES ('old', '2001-01-01T00:00:00.000Z', 'proxy_admin', 'create', 'budget', 'x')",
    );
    until("the old entry is pruned", 20, || {
        s.count("SELECT COUNT(*) FROM audit_log WHERE id = 'old'") == 0
    });
    assert_eq!(entries(&s, "create", "budget"), 1, "the recent entry stays");
}

#[test]
fn a_new_master_key_is_recorded_as_a_rotation_without_the_key() {
    let mut s = Server::start();
    assert_eq!(entries(&s, "create", "master_key"), 1);
    s.restart();
    assert_eq!(entries(&s, "rotate", "master_key"), 0, "same key: no entry");
    s.stop();
    let other = "sk-another-master-key-for-rotation-0123456789";
    s.env.push(("TEST_MASTER_KEY".into(), other.into()));
    s.start_again();
    assert_eq!(entries(&s, "rotate", "master_key"), 1);
    let text = all_audit_text(&s);
    assert!(!text.contains(other) && !text.contains(MASTER));
    assert!(!text.contains(&litegate::auth::hash_key(other)));
}
