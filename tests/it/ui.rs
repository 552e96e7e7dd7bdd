//! The web UI's server side (issue 7): embedded static files with a CSP, session login by
//! master key or email + password, the session cookie as authentication (with the CSRF header
//! on writes), expiry and logout, and `/ui/key_model_options` against the server's own checks.

use crate::common::*;
use serde_json::{json, Value};

const UI: (&str, &str) = ("X-Litegate-UI", "1");

fn login(s: &Server, body: Value) -> Resp {
    let b = body.to_string();
    s.request("POST", "/ui/login", None, Some(b.as_bytes()), &[UI])
}

/// The `litegate_session=...` pair of a login response.
fn session_of(r: &Resp) -> String {
    let set = r.header("set-cookie").expect("set-cookie");
    set.split(';').next().expect("pair").trim().to_string()
}

fn login_master(s: &Server) -> String {
    let r = login(s, json!({"master_key": MASTER}));
    assert_eq!(r.status, 200, "{}", r.text());
    session_of(&r)
}

/// A request authenticated by the cookie only; `csrf` adds the UI header.
fn with_cookie(
    s: &Server,
    method: &str,
    path: &str,
    cookie: &str,
    body: Option<Value>,
    csrf: bool,
) -> Resp {
    let b = body.map(|v| v.to_string());
    let mut h = vec![("Cookie", cookie)];
    if csrf {
        h.push(UI);
    }
    s.request(method, path, None, b.as_deref().map(str::as_bytes), &h)
}

/// `/organization/new` through the session `cookie` (with the UI header), asserting 200.
fn new_org_by_cookie(s: &Server, cookie: &str, alias: &str) -> Value {
    let body = json!({"organization_alias": alias});
    let r = with_cookie(s, "POST", "/organization/new", cookie, Some(body), true);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn user_with_password(s: &Server, id: &str, role: &str, pw: &str) {
    s.admin(
        "/user/new",
        json!({"user_id": id, "user_email": format!("{id}@example.com"), "user_role": role,
               "auto_create_key": false}),
    );
    // Set by an admin through /user/update, as the UI's "Set password" does.
    s.admin("/user/update", json!({"user_id": id, "password": pw}));
}

#[test]
fn static_files_are_served_with_csp_and_types() {
    let s = Server::start();
    for (path, ctype) in [
        ("/ui", "text/html"),
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/favicon.svg", "image/svg+xml"),
    ] {
        let r = s.anon("GET", path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(ctype),
            "{path}: {:?}",
            r.header("content-type")
        );
        let csp = r.header("content-security-policy").expect("csp");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert!(r.header("cache-control").is_some(), "{path}");
    }
    let html = s.anon("GET", "/ui").text();
    assert!(html.contains(r#"<script src="/ui/app.js""#), "{html}");
    assert!(!html.contains("<script>"), "no inline script");
    // Only the embedded files exist; nothing is read from disk.
    assert_error(&s.anon("GET", "/ui/nope.js"), 404);
    assert_error(&s.anon("GET", "/ui/..%2fCargo.toml"), 404);
}

#[test]
fn master_key_login_sets_a_strict_http_only_expiring_cookie() {
    let s = Server::start();
    let r = login(&s, json!({"master_key": MASTER}));
    assert_eq!(r.status, 200, "{}", r.text());
    let set = r.header("set-cookie").unwrap().to_string();
    assert!(set.starts_with("litegate_session="), "{set}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    assert!(!set.contains("Secure"), "plain http: no Secure flag: {set}");
    let v = r.json();
    assert_eq!(v["user_role"], "proxy_admin");
    assert_eq!(v["is_master"], true);
    // The cookie value is never in the body, and only its hash is stored.
    let token = session_of(&r)["litegate_session=".len()..].to_string();
    assert_eq!(token.len(), 64);
    assert!(!r.text().contains(&token));
    assert!(!r.text().contains(MASTER));
    let stored: String = s.value("SELECT token_hash FROM ui_sessions", []);
    assert_eq!(stored, litegate::auth::hash_key(&token));
    // Behind a TLS-terminating proxy the cookie is Secure.
    let r = s.post_anon(
        "/ui/login",
        &json!({"master_key": MASTER}),
        &[UI, ("X-Forwarded-Proto", "https")],
    );
    assert!(r.header("set-cookie").unwrap().contains("; Secure"));
    // The cookie acts as the master key.
    let me = with_cookie(&s, "GET", "/ui/me", &session_of(&r), None, false);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["is_master"], true);
}

#[test]
fn failed_logins_are_401_and_leak_nothing() {
    let s = Server::start();
    user_with_password(&s, "alice", "internal_user", "right-password");
    seed_user(&s, "nopw", "proxy_admin"); // a user without a password cannot log in
    let cases = [
        json!({"master_key": "sk-wrong-master-0123456789abcdef"}),
        json!({"email": "alice@example.com", "password": "wrong-password"}),
        json!({"email": "nobody@example.com", "password": "right-password"}),
        json!({"email": "nopw@example.com", "password": ""}),
        json!({"email": "nopw@example.com", "password": "anything"}),
    ];
    let mut messages = Vec::new();
    for c in cases {
        let r = login(&s, c.clone());
        let v = assert_error(&r, 401);
        assert!(r.header("set-cookie").is_none(), "{c}");
        let t = r.text();
        assert!(
            !t.contains("argon2") && !t.contains("right-password"),
            "{t}"
        );
        messages.push(v["error"]["message"].as_str().unwrap().to_string());
    }
    // One message for every cause: no telling which emails exist.
    assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:?}");
    assert_eq!(s.count("SELECT count(*) FROM ui_sessions"), 0);
    // Neither credentials (400) nor the UI header (403): nothing created either.
    assert_error(&login(&s, json!({})), 400);
    let b = json!({"master_key": MASTER}).to_string();
    assert_error(
        &s.request("POST", "/ui/login", None, Some(b.as_bytes()), &[]),
        403,
    );
    assert_eq!(s.count("SELECT count(*) FROM ui_sessions"), 0);
}

#[test]
fn email_password_login_acts_with_the_users_current_role() {
    let s = Server::start();
    user_with_password(&s, "alice", "internal_user", "alice-password");
    let r = login(
        &s,
        json!({"email": "ALICE@example.com", "password": "alice-password"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user_role"], "internal_user");
    let c = session_of(&r);
    let me = with_cookie(&s, "GET", "/ui/me", &c, None, false).json();
    assert_eq!(me["user_id"], "alice");
    assert_eq!(me["user_email"], "alice@example.com");
    assert_eq!(me["is_master"], false);
    // An internal user may not create organizations, cookie or not.
    let before = snapshot(&s);
    let r = with_cookie(
        &s,
        "POST",
        "/organization/new",
        &c,
        Some(json!({"organization_alias": "x"})),
        true,
    );
    assert_error(&r, 403);
    assert_eq!(snapshot(&s), before);
    // A role change applies to the next request of the same session.
    s.admin(
        "/user/update",
        json!({"user_id": "alice", "user_role": "proxy_admin"}),
    );
    let v = new_org_by_cookie(&s, &c, "x");
    assert_eq!(v["created_by"], "alice");
    // Keys made through a proxy admin's session belong to that user (not ownerless as for
    // the master key).
    let k = with_cookie(&s, "POST", "/key/generate", &c, Some(json!({})), true);
    assert_eq!(k.status, 200, "{}", k.text());
    assert_eq!(k.json()["user_id"], "alice");
    // A new password ends the user's sessions.
    s.admin(
        "/user/update",
        json!({"user_id": "alice", "password": "new-password"}),
    );
    assert_error(&with_cookie(&s, "GET", "/ui/me", &c, None, false), 401);
    assert_error(
        &login(
            &s,
            json!({"email": "alice@example.com", "password": "alice-password"}),
        ),
        401,
    );
    let c = session_of(&login(
        &s,
        json!({"email": "alice@example.com", "password": "new-password"}),
    ));
    assert_eq!(
        with_cookie(&s, "GET", "/ui/me", &c, None, false).status,
        200
    );
    // A deleted user's sessions go with them.
    s.admin("/user/delete", json!({"user_ids": ["alice"]}));
    assert_error(&with_cookie(&s, "GET", "/ui/me", &c, None, false), 401);
    assert_eq!(s.count("SELECT count(*) FROM ui_sessions"), 0);
}

#[test]
fn cookie_writes_need_the_ui_header() {
    let s = Server::start();
    let c = login_master(&s);
    let before = snapshot(&s);
    for (method, path, body) in [
        (
            "POST",
            "/organization/new",
            json!({"organization_alias": "csrf"}),
        ),
        ("POST", "/team/new", json!({"team_alias": "csrf"})),
        ("POST", "/key/generate", json!({})),
        (
            "DELETE",
            "/organization/delete",
            json!({"organization_ids": ["x"]}),
        ),
    ] {
        let r = with_cookie(&s, method, path, &c, Some(body), false);
        assert_error_says(&r, 403, "X-Litegate-UI");
    }
    assert_eq!(snapshot(&s), before, "a refused write changed something");
    // Reads need no header; writes with it pass.
    assert_eq!(
        with_cookie(&s, "GET", "/organization/list", &c, None, false).status,
        200
    );
    new_org_by_cookie(&s, &c, "ok");
    // A key header wins over the cookie and needs no UI header (API clients are unchanged).
    let b = json!({"organization_alias": "by-key"}).to_string();
    let r = s.request(
        "POST",
        "/organization/new",
        Some(MASTER),
        Some(b.as_bytes()),
        &[("Cookie", &c)],
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_session_cannot_make_model_calls() {
    let s = Server::start();
    let c = login_master(&s);
    let r = with_cookie(
        &s,
        "POST",
        "/v1/chat/completions",
        &c,
        Some(json!({"model": "A", "messages": [{"role": "user", "content": "hi"}]})),
        true,
    );
    assert_error(&r, 401);
    assert_eq!(s.count("SELECT count(*) FROM spend_logs"), 0);
}

#[test]
fn sessions_expire_and_logout_ends_them() {
    let s = Server::start();
    let c1 = login_master(&s);
    let c2 = login_master(&s);
    assert_eq!(
        with_cookie(&s, "GET", "/key/list", &c1, None, false).status,
        200
    );
    // Expired (as 12 h later): refused.
    let token_hash = litegate::auth::hash_key(&c1["litegate_session=".len()..]);
    run_sql(
        &s,
        "UPDATE ui_sessions SET expires_at = '2020-01-01T00:00:00.000Z' WHERE token_hash = ?1",
        &[(&token_hash).into()],
    );
    assert_error_says(
        &with_cookie(&s, "GET", "/key/list", &c1, None, false),
        401,
        "log in",
    );
    // Logout deletes the session and clears the cookie.
    let r = with_cookie(&s, "POST", "/ui/logout", &c2, None, true);
    assert_eq!(r.status, 200, "{}", r.text());
    let set = r.header("set-cookie").unwrap();
    assert!(
        set.contains("Max-Age=0") && set.starts_with("litegate_session=;"),
        "{set}"
    );
    assert_error(&with_cookie(&s, "GET", "/key/list", &c2, None, false), 401);
    // The next login sweeps expired rows.
    login_master(&s);
    assert_eq!(s.count("SELECT count(*) FROM ui_sessions"), 1);
    // A garbage cookie is a plain 401.
    assert_error(
        &with_cookie(&s, "GET", "/key/list", "litegate_session=zzz", None, false),
        401,
    );
}

#[test]
fn rotating_the_master_key_ends_master_sessions() {
    let mut s = Server::start();
    let c = login_master(&s);
    s.env.push((
        "TEST_MASTER_KEY".into(),
        "sk-rotated-master-key-0123456789abcdef".into(),
    ));
    s.restart();
    assert_error(&with_cookie(&s, "GET", "/key/list", &c, None, false), 401);
}

fn options(s: &Server, cookie: &str, team: &str) -> Value {
    let r = with_cookie(
        s,
        "GET",
        &format!("/ui/key_model_options?team_id={team}"),
        cookie,
        None,
        false,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn values(v: &Value) -> Vec<String> {
    v["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["value"].as_str().unwrap().to_string())
        .collect()
}

fn gives(v: &Value, value: &str) -> Value {
    v["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["value"] == value)
        .map(|o| o["models"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn key_model_options_follow_the_servers_rules() {
    let s = Server::start();
    let c = login_master(&s);
    seed_org(&s, "org1", &["A", "B"]);
    seed_team(&s, "in-org", Some("org1"), &[]);
    seed_team(&s, "no-org", None, &["A", "B"]);
    seed_team(&s, "narrow", Some("org1"), &["A"]);
    seed_team(&s, "groups", Some("org1"), &["grp-ab"]);

    let v = options(&s, &c, "in-org");
    assert_eq!(
        values(&v),
        ["all-team-models", "all-org-models", "A", "B"],
        "{v}"
    );
    assert_eq!(gives(&v, "all-org-models"), json!(["A", "B"]));
    assert_eq!(gives(&v, "all-team-models"), json!(["A", "B"]));
    assert_eq!(gives(&v, "B"), json!(["B"]));
    assert_eq!(v["team_models"], json!(["A", "B"]));
    assert_eq!(v["organization_id"], "org1");

    // A team without an organization: no "All Org Models".
    let v = options(&s, &c, "no-org");
    assert_eq!(values(&v), ["all-team-models", "A", "B"], "{v}");
    // A team missing one of the org's models: no "All Org Models"; only what it may grant.
    let v = options(&s, &c, "narrow");
    assert_eq!(values(&v), ["all-team-models", "A"], "{v}");
    assert_eq!(gives(&v, "all-team-models"), json!(["A"]));
    // An access group covering the whole org: the team can call every org model.
    let v = options(&s, &c, "groups");
    assert!(values(&v).contains(&"all-org-models".to_string()), "{v}");

    // The endpoint and /key/generate agree: each offered value is accepted, the withheld one
    // refused.
    for team in ["in-org", "no-org", "narrow"] {
        for value in values(&options(&s, &c, team)) {
            let r = s.post(
                "/key/generate",
                MASTER,
                json!({"team_id": team, "models": [value]}),
            );
            assert_eq!(r.status, 200, "{team} {value}: {}", r.text());
            let info = s.get(
                &format!("/key/info?key={}", r.json()["key"].as_str().unwrap()),
                MASTER,
            );
            assert_eq!(
                info.json()["info"]["effective_models"],
                gives(&options(&s, &c, team), &value),
                "{team} {value}"
            );
        }
    }
    for team in ["no-org", "narrow"] {
        expect(
            &s,
            MASTER,
            "/key/generate",
            json!({"team_id": team, "models": ["all-org-models"]}),
            400,
        );
    }

    // Personal keys (no team): the owner's models, no team or org specials.
    let v = with_cookie(&s, "GET", "/ui/key_model_options", &c, None, false).json();
    assert_eq!(values(&v), ["A", "B", "C", "D"], "{v}");
    assert_eq!(v["team_models"], Value::Null);

    // Unknown team → 404.
    assert_error(
        &with_cookie(
            &s,
            "GET",
            "/ui/key_model_options?team_id=nope",
            &c,
            None,
            false,
        ),
        404,
    );
}

#[test]
fn key_model_options_hide_teams_the_caller_cannot_see() {
    let s = Server::start();
    seed_org(&s, "org1", &["A", "B"]);
    seed_team(&s, "mine", Some("org1"), &["A"]);
    seed_team(&s, "theirs", Some("org1"), &[]);
    user_with_password(&s, "bob", "internal_user", "bob-password");
    seed_team_member(&s, "mine", "bob", "user");
    let r = login(
        &s,
        json!({"email": "bob@example.com", "password": "bob-password"}),
    );
    let c = session_of(&r);
    let v = options(&s, &c, "mine");
    assert_eq!(values(&v), ["all-team-models", "A"], "{v}");
    let r = with_cookie(
        &s,
        "GET",
        "/ui/key_model_options?team_id=theirs",
        &c,
        None,
        false,
    );
    assert_error(&r, 404);
    // The same for a key: the endpoint needs authentication.
    assert_error(&s.anon("GET", "/ui/key_model_options?team_id=mine"), 401);
}

#[test]
fn a_user_session_sees_only_the_users_models() {
    let s = Server::start();
    user_with_password(&s, "carol", "internal_user", "correct horse battery");
    s.admin("/user/update", json!({"user_id": "carol", "models": ["C"]}));
    let r = login(
        &s,
        json!({"email": "carol@example.com", "password": "correct horse battery"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = session_of(&r);
    let v = with_cookie(&s, "GET", "/v1/models", &cookie, None, false).json();
    let ids = fields_of(&v["data"], "id");
    assert_eq!(ids, vec!["C"], "{v}");
    let v = with_cookie(&s, "GET", "/model/info", &cookie, None, false).json();
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
}
