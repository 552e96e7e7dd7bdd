//! Issue 11, item 2 (second half): what each role sees of other users' keys and tokens, that a
//! password change through a key needs the current password, and that users created
//! implicitly by a membership get no personal model access unless the config grants it.

use crate::common::*;
use serde_json::{json, Value};

/// org1 (A, B) ⊃ t1 (A) and t2 (A, B). `tadmin` admins t1; `m1` is a member of t1 and t2;
/// `m2` of t1; `iv` is an internal_user_viewer with the *admin* member role in t1.
/// Team keys (raw): `m1_t1` m1's in t1, `m1_t2` m1's in t2, `m2_t1` m2's in t1, `t1_nouser`
/// t1's key without a user.
fn world() -> World {
    let mut w = World::new()
        .orgs(&[("org1", &["A", "B"])])
        .teams(&[
            ("t1", Some("org1"), &["A"]),
            ("t2", Some("org1"), &["A", "B"]),
        ])
        .internal_users(&["tadmin", "m1", "m2"])
        .users(&[("iv", "internal_user_viewer")])
        .internal_users(&["oadmin"])
        .users(&[("pview", "proxy_admin_viewer")])
        .org_members(&[("org1", "oadmin", "org_admin")])
        .team_members(&[
            ("t1", "tadmin", "admin"),
            ("t1", "m1", "user"),
            ("t2", "m1", "user"),
            ("t1", "m2", "user"),
            ("t1", "iv", "admin"),
        ])
        .team_keys(&[
            ("m1_t1", "t1", "m1"),
            ("m1_t2", "t2", "m1"),
            ("m2_t1", "t1", "m2"),
        ]);
    let raw = w.admin_id("/key/generate", json!({"team_id": "t1"}), "key");
    w.name_key("t1_nouser", &raw);
    w
}

fn tok(raw: &str) -> String {
    litegate::auth::hash_key(raw)
}

/// token shown per key owner ("" for none) in a /team/info answer (None = listed without
/// its token). The seeded keys share their last characters, so key_name does not tell them apart.
fn team_tokens(s: &Server, key: &str, team: &str) -> Vec<(String, Option<String>)> {
    let r = s.get(&format!("/team/info?team_id={team}"), key);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let mut out: Vec<(String, Option<String>)> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["user_id"].as_str().unwrap_or("").to_string(),
                k["token"].as_str().map(str::to_string),
            )
        })
        .collect();
    out.sort();
    out
}

fn shown(list: &[(String, Option<String>)], raw: &str) -> Option<String> {
    let owner = match raw {
        r if r.contains("-t1-m1-") => "m1",
        r if r.contains("-t1-m2-") => "m2",
        _ => "",
    };
    list.iter()
        .find(|(n, _)| n == owner)
        .unwrap_or_else(|| panic!("{owner} not listed in {list:?}"))
        .1
        .clone()
}

#[test]
fn team_info_shows_tokens_only_to_who_may_read_the_key() {
    let w = world();
    // Admins of the team (and above) and proxy viewers see every token.
    for k in [MASTER, &w["tadmin"], &w["oadmin"], &w["pview"]] {
        let l = team_tokens(&w, k, "t1");
        assert_eq!(l.len(), 3, "{l:?}");
        for raw in [&w["m1_t1"], &w["m2_t1"], &w["t1_nouser"]] {
            assert_eq!(shown(&l, raw), Some(tok(raw)), "as {k}");
        }
    }
    // A member sees its own key's token, not another member's nor the team key's.
    let l = team_tokens(&w, &w["m1"], "t1");
    assert_eq!(shown(&l, &w["m1_t1"]), Some(tok(&w["m1_t1"])));
    assert_eq!(shown(&l, &w["m2_t1"]), None);
    assert_eq!(shown(&l, &w["t1_nouser"]), None);
    let l = team_tokens(&w, &w["m2_t1"], "t1");
    assert_eq!(shown(&l, &w["m1_t1"]), None);
    assert_eq!(shown(&l, &w["m2_t1"]), Some(tok(&w["m2_t1"])));
    // A viewer, even with the admin member role, administers nothing: no tokens of others.
    let l = team_tokens(&w, &w["iv"], "t1");
    assert!(l.iter().all(|(_, t)| t.is_none()), "{l:?}");
    // The team's own key (no user) reads its team (API.md §9), seeing only itself.
    let l = team_tokens(&w, &w["t1_nouser"], "t1");
    assert_eq!(shown(&l, &w["t1_nouser"]), Some(tok(&w["t1_nouser"])));
    assert_eq!(shown(&l, &w["m1_t1"]), None);
    assert_eq!(shown(&l, &w["m2_t1"]), None);
    // ... but not another team.
    assert_error(&w.get("/team/info?team_id=t2", &w["t1_nouser"]), 404);
    // Whatever the reader, no raw key is ever in the answer.
    for k in [MASTER, &w["m1"], &w["tadmin"]] {
        let text = w.get("/team/info?team_id=t1", k).text();
        for raw in [&w["m1_t1"], &w["m2_t1"], &w["t1_nouser"]] {
            assert!(!text.contains(raw), "raw key in /team/info");
        }
    }
}

fn listed(s: &Server, key: &str, query: &str) -> Vec<String> {
    let r = s.get(&format!("/key/list?size=100{query}"), key);
    assert_eq!(r.status, 200, "{}", r.text());
    let mut v: Vec<String> = r.json()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn key_list_is_what_each_role_may_read() {
    let w = world();
    // A team admin: its team's keys, not the same member's keys in another team.
    let l = listed(&w, &w["tadmin"], "");
    assert!(l.contains(&tok(&w["m1_t1"])) && l.contains(&tok(&w["m2_t1"])));
    assert!(
        !l.contains(&tok(&w["m1_t2"])),
        "t2 key of m1 visible to t1's admin"
    );
    assert!(listed(&w, &w["tadmin"], "&user_id=m1") == vec![tok(&w["m1_t1"])]);
    // A member: its own keys only (both teams), not a teammate's.
    assert_eq!(
        listed(&w, &w["m1"], ""),
        sorted(vec![tok(&w["m1"]), tok(&w["m1_t1"]), tok(&w["m1_t2"])])
    );
    assert!(listed(&w, &w["m1"], "&user_id=m2").is_empty());
    // An internal_user_viewer with the admin member role: its own key only, as /key/info.
    assert_eq!(listed(&w, &w["iv"], ""), vec![tok(&w["iv"])]);
    assert!(listed(&w, &w["iv"], "&team_id=t1").is_empty());
    assert!(listed(&w, &w["iv"], "&user_id=m1").is_empty());
    assert_error(
        &w.get(&format!("/key/info?key={}", tok(&w["m1_t1"])), &w["iv"]),
        404,
    );
    // A key without a user lists nothing.
    assert_error(&w.get("/key/list", &w["t1_nouser"]), 403);
    // And /key/info agrees with the list for the team admin.
    assert_eq!(
        w.get(&format!("/key/info?key={}", tok(&w["m1_t1"])), &w["tadmin"])
            .status,
        200
    );
    assert_error(
        &w.get(&format!("/key/info?key={}", tok(&w["m1_t2"])), &w["tadmin"]),
        404,
    );
}

#[test]
fn user_info_is_for_oneself_and_proxy_readers() {
    let w = world();
    // Team and org admins do not read members' user records (their keys, other teams).
    for k in [&w["tadmin"], &w["oadmin"], &w["m2"], &w["iv"]] {
        assert_error(&w.get("/user/info?user_id=m1", k), 404);
        assert_error(&w.get("/user/list", k), 403);
    }
    let v = w.get("/user/info?user_id=m1", &w["m1"]).json();
    assert_eq!(v["keys"].as_array().unwrap().len(), 3);
}

#[test]
fn nobody_sees_a_password_hash() {
    let w = world();
    for u in ["m1", "tadmin", "oadmin", "iv"] {
        w.admin(
            "/user/update",
            json!({"user_id": u, "password": format!("pw-of-{u}-123")}),
        );
    }
    let added = w.admin(
        "/team/member_add",
        json!({"team_id": "t2", "member": {"user_id": "tadmin", "role": "user"}}),
    );
    let org_added = w.admin(
        "/organization/member_add",
        json!({"organization_id": "org1", "member": {"user_id": "m1", "role": "internal_user"}}),
    );
    let mut texts = vec![added.to_string(), org_added.to_string()];
    for k in [MASTER, &w["m1"], &w["tadmin"], &w["oadmin"]] {
        for p in [
            "/user/info?user_id=m1",
            "/user/info",
            "/user/list",
            "/team/info?team_id=t1",
            "/team/list",
            "/organization/info?organization_id=org1",
            "/organization/list",
            "/key/list?return_full_object=true",
            "/ui/me",
        ] {
            texts.push(w.get(p, k).text());
        }
    }
    let hashes: Vec<String> = w
        .rows::<(String,), _>(
            "SELECT password_hash FROM users WHERE password_hash IS NOT NULL",
            [],
        )
        .into_iter()
        .map(|(h,)| h)
        .collect();
    assert_eq!(hashes.len(), 4);
    for t in &texts {
        assert!(!t.contains("argon2") && !t.contains("password"), "{t}");
        for h in &hashes {
            assert!(!t.contains(h.as_str()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Passwords

fn login(s: &Server, email: &str, password: &str) -> u16 {
    let b = json!({"email": email, "password": password}).to_string();
    s.request(
        "POST",
        "/ui/login",
        None,
        Some(b.as_bytes()),
        &[("X-Litegate-UI", "1")],
    )
    .status
}

/// The master key sets m1's password to `old-password-1`; returns the stored hash.
fn set_m1_password(w: &World) -> Option<String> {
    w.admin(
        "/user/update",
        json!({"user_id": "m1", "password": "old-password-1"}),
    );
    hash_of(w, "m1")
}

fn hash_of(s: &Server, user: &str) -> Option<String> {
    s.value("SELECT password_hash FROM users WHERE id = ?1", [user])
}

#[test]
fn a_password_change_through_a_key_needs_the_current_password() {
    let w = world();
    let before = set_m1_password(&w);
    let set = |key: &str, body: Value| w.post("/user/update", key, body);
    // Without the current password: 400 naming the field, nothing changed.
    let e = assert_error(
        &set(
            &w["m1"],
            json!({"user_id": "m1", "password": "new-password-1"}),
        ),
        400,
    );
    assert_eq!(e["error"]["param"], "current_password");
    // A wrong one: 403.
    assert_error(
        &set(
            &w["m1"],
            json!({"user_id": "m1", "password": "new-password-1", "current_password": "guess"}),
        ),
        403,
    );
    // Naming oneself by email skips nothing: still refused without proof.
    assert_error(
        &set(
            &w["m1"],
            json!({"user_email": "m1@example.com", "password": "new-password-1"}),
        ),
        403,
    );
    assert_eq!(hash_of(&w, "m1"), before);
    assert_eq!(login(&w, "m1@example.com", "new-password-1"), 401);
    // With it: changed, the new one logs in, the old one no longer does.
    let r = set(
        &w["m1"],
        json!({"user_id": "m1", "password": "new-password-1",
               "current_password": "old-password-1"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(login(&w, "m1@example.com", "new-password-1"), 200);
    assert_eq!(login(&w, "m1@example.com", "old-password-1"), 401);
    // Other self-service fields still need no password.
    let r = set(&w["m1"], json!({"user_id": "m1", "metadata": {"x": 1}}));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_first_password_comes_from_a_proxy_admin_only() {
    let w = world();
    let s = &w.s;
    // m2 has no password: whoever holds m2's key cannot set one (it would open a UI session
    // with m2's whole authority).
    for body in [
        json!({"user_id": "m2", "password": "chosen-by-holder"}),
        json!({"user_id": "m2", "password": "chosen-by-holder", "current_password": "x"}),
    ] {
        let r = s.post("/user/update", &w["m2"], body);
        assert!(r.status == 400 || r.status == 403, "{}", r.text());
    }
    assert_eq!(hash_of(s, "m2"), None);
    // Team and org admins cannot set a member's password either.
    for k in [&w["tadmin"], &w["oadmin"]] {
        let r = s.post(
            "/user/update",
            k,
            json!({"user_id": "m2", "password": "chosen-by-admin"}),
        );
        assert!(r.status == 403 || r.status == 404, "{}", r.text());
    }
    assert_eq!(hash_of(s, "m2"), None);
    // A viewer learns nothing about its own password through a guess (it cannot change it).
    s.admin(
        "/user/update",
        json!({"user_id": "iv", "password": "viewer-pw-1"}),
    );
    let answers: Vec<Value> = ["viewer-pw-1", "wrong"]
        .iter()
        .map(|cur| {
            let r = s.post(
                "/user/update",
                &w["iv"],
                json!({"user_id": "iv", "password": "x-new-pw", "current_password": cur}),
            );
            assert_error(&r, 403)
        })
        .collect();
    assert_eq!(answers[0], answers[1]);
    // A proxy admin sets anyone's password without knowing the current one.
    s.admin(
        "/user/update",
        json!({"user_id": "m2", "password": "set-by-admin-1"}),
    );
    assert_eq!(login(s, "m2@example.com", "set-by-admin-1"), 200);
}

// ---------------------------------------------------------------------------------------------
// Users created implicitly

fn models_of(s: &Server, user: &str) -> Value {
    s.get(&format!("/user/info?user_id={user}"), MASTER).json()["user_info"]["models"].clone()
}

fn personal_key(s: &Server, user: &str) -> String {
    s.admin_id("/key/generate", json!({"user_id": user}), "key")
}

fn model_ids(s: &Server, key: &str) -> Vec<String> {
    s.get("/v1/models", key).json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn implicitly_created_users_get_no_personal_models() {
    let w = world();
    // A team admin adds strangers; an org admin too; a proxy admin's members_with_roles too.
    w.call(
        "tadmin",
        "POST",
        "/team/member_add",
        json!({"team_id": "t1", "member": [{"user_id": "new-t", "role": "user"},
                                           {"user_email": "new-e@example.com", "role": "user"}]}),
        200,
    );
    w.call(
        "oadmin",
        "POST",
        "/organization/member_add",
        json!({"organization_id": "org1", "member": {"user_id": "new-o", "role": "internal_user"}}),
        200,
    );
    w.admin(
        "/team/new",
        json!({"team_id": "t3", "organization_id": "org1", "models": ["B"],
               "members_with_roles": [{"user_id": "new-n", "role": "user"}]}),
    );
    let by_email: String = w.value("SELECT id FROM users WHERE email = 'new-e@example.com'", []);
    for u in ["new-t", by_email.as_str(), "new-o", "new-n"] {
        assert_eq!(models_of(&w, u), json!(["no-default-models"]), "{u}");
        // A personal key (no team) may call nothing: it cannot escape the team's models.
        let k = personal_key(&w, u);
        assert!(model_ids(&w, &k).is_empty(), "{u}");
        for m in ["A", "B", "C", "D"] {
            assert_eq!(chat(&w, &k, m).status, 403, "{u} {m}");
        }
    }
    // Their team keys are unaffected: t1's model answers, others do not.
    let k = w.admin_id(
        "/key/generate",
        json!({"user_id": "new-t", "team_id": "t1"}),
        "key",
    );
    assert_eq!(chat(&w, &k, "A").status, 200);
    assert_eq!(chat(&w, &k, "B").status, 403);
    // A personal key asking for a model is refused at write time (beyond the user's set).
    expect(
        &w,
        MASTER,
        "/key/generate",
        json!({"user_id": "new-t", "models": ["A"]}),
        400,
    );
    // /user/new keeps LiteLLM's meaning: no models = every proxy model (the admin's choice).
    w.admin(
        "/user/new",
        json!({"user_id": "explicit", "auto_create_key": false}),
    );
    assert_eq!(models_of(&w, "explicit"), json!([]));
    // An admin can still grant personal models later.
    w.admin("/user/update", json!({"user_id": "new-o", "models": ["C"]}));
    let k = personal_key(&w, "new-o");
    assert_eq!(model_ids(&w, &k), vec!["C".to_string()]);
}

const DEFAULTS_CONFIG: &str = r#"
model_list:
  - model_name: A
    litellm_params: { model: mock/a }
  - model_name: B
    litellm_params: { model: mock/b }
litellm_settings:
  default_internal_user_params:
    models: [B]
    max_budget: 3.5
    budget_duration: 30d
    user_role: internal_user_viewer
    available_teams: [ignored]
general_settings:
  master_key: os.environ/TEST_MASTER_KEY
"#;

#[test]
fn default_internal_user_params_are_honoured() {
    let s = Server::start_with(DEFAULTS_CONFIG, &[]);
    seed_team(&s, "t1", None, &["A"]);
    s.admin(
        "/team/member_add",
        json!({"team_id": "t1", "member": {"user_id": "imp", "role": "user"}}),
    );
    let u = s.get("/user/info?user_id=imp", MASTER).json()["user_info"].clone();
    assert_eq!(u["models"], json!(["B"]));
    assert_eq!(u["max_budget"], json!(3.5));
    assert_eq!(u["budget_duration"], "30d");
    assert!(u["budget_reset_at"].is_string());
    assert_eq!(u["user_role"], "internal_user_viewer");
    // /user/new: the defaults fill what the body leaves out, never what it gives.
    let v = s.admin(
        "/user/new",
        json!({"user_id": "n1", "auto_create_key": false}),
    );
    assert_eq!(v["models"], json!(["B"]));
    assert_eq!(v["max_budget"], json!(3.5));
    assert_eq!(v["user_role"], "internal_user_viewer");
    let v = s.admin(
        "/user/new",
        json!({"user_id": "n2", "models": [], "max_budget": 9, "user_role": "internal_user",
               "auto_create_key": false}),
    );
    assert_eq!(v["models"], json!([]));
    assert_eq!(v["max_budget"], json!(9.0));
    assert_eq!(v["user_role"], "internal_user");
}

#[test]
fn bad_default_user_params_stop_the_start() {
    for params in [
        "user_role: proxy_admin",
        "user_role: proxy_admin_viewer",
        "models: 7",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("defaults.yaml");
        std::fs::write(
            &cfg,
            format!("litellm_settings:\n  default_internal_user_params:\n    {params}\n"),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_litegate"))
            .arg("check-config")
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{params}: {err}");
        assert!(
            err.contains("default_internal_user_params"),
            "{params}: {err}"
        );
    }
}

#[test]
fn an_org_admin_adding_a_user_does_not_read_their_personal_record() {
    let w = world();
    w.admin(
        "/user/new",
        json!({"user_id": "stranger", "models": ["C"], "max_budget": 7.5,
               "metadata": {"note": "private"}, "auto_create_key": false}),
    );
    let r = w.post(
        "/organization/member_add",
        &w["oadmin"],
        json!({"organization_id": "org1", "member": {"user_id": "stranger", "role": "internal_user"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let u = &r.json()["updated_users"][0];
    assert_eq!(u["user_id"], "stranger");
    assert_eq!(u["user_role"], "internal_user");
    for f in ["models", "max_budget", "metadata", "spend"] {
        assert!(u.get(f).is_none(), "{f} shown to an org admin: {u}");
    }
    assert!(!r.text().contains("private"));
    // A proxy admin gets LiteLLM's full user row.
    let r = w.post(
        "/organization/member_add",
        MASTER,
        json!({"organization_id": "org1", "member": {"user_id": "m2", "role": "internal_user"}}),
    );
    assert_eq!(r.json()["updated_users"][0]["models"], json!([]));
}

#[test]
fn a_user_cannot_claim_another_email() {
    let w = world();
    let before = snapshot(&w);
    // m1 claims an address an admin is about to add by email ...
    for body in [
        json!({"user_id": "m1", "user_email": "newcomer@example.com"}),
        json!({"user_id": "m1", "user_email": ""}),
    ] {
        assert_error(&w.post("/user/update", &w["m1"], body), 403);
    }
    assert_eq!(snapshot(&w), before);
    // ... so the membership meant for the newcomer goes to a new user, not to m1.
    let v = w.admin(
        "/team/member_add",
        json!({"team_id": "t2", "member": {"user_email": "newcomer@example.com", "role": "admin"}}),
    );
    assert_ne!(v["updated_users"][0]["user_id"], "m1");
    // The same address in another case is no change; a proxy admin changes anyone's.
    w.call(
        "m1",
        "POST",
        "/user/update",
        json!({"user_id": "m1", "user_email": "M1@example.com", "metadata": {"k": 1}}),
        200,
    );
    w.admin(
        "/user/update",
        json!({"user_id": "m1", "user_email": "m1-new@example.com"}),
    );
}

/// Guesses at `current_password` by whoever holds a user's key are throttled like UI logins:
/// after the per-account limit (5) even the right password is refused with 429, before argon2.
#[test]
fn current_password_guesses_are_throttled() {
    let w = world();
    let before = set_m1_password(&w);
    let set = |cur: &str| {
        w.post(
            "/user/update",
            &w["m1"],
            json!({"user_id": "m1", "password": "taken-over-1", "current_password": cur}),
        )
    };
    for i in 0..5 {
        let r = set(&format!("guess-{i}"));
        assert_eq!(r.status, 403, "guess {i}: {}", r.text());
    }
    let r = set("old-password-1");
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(hash_of(&w, "m1"), before);
    assert_eq!(login(&w, "m1@example.com", "old-password-1"), 200);
}
