//! The stage the proxy admin sets up, and how one step is sent to the server.

use super::*;

// ---------------------------------------------------------------------------------------------
// The world the proxy admin sets up

pub(super) struct Stage {
    pub(super) s: Server,
    /// Raw keys each actor holds (every `key` any call returned to it).
    pub(super) held: BTreeMap<&'static str, Vec<String>>,
    /// Every key token seen, for operations that name a key.
    pub(super) tokens: Vec<String>,
    /// (actor, user, password) for every password an actor tried to set.
    pub(super) passwords: Vec<(&'static str, String, String)>,
    /// Held keys a call refused with 401 (kept for the checker: they may come back).
    pub(super) dead: BTreeSet<String>,
    /// Every set-up user's personal key (for the planted escalations).
    pub(super) personal: BTreeMap<&'static str, String>,
    /// What the proxy admin set, read back after setup.
    pub(super) limits: Limits,
}

#[derive(Debug, Clone)]
pub(super) struct Limits {
    pub(super) lim_key_expires: String,
}

pub(super) fn master(s: &Server, path: &str, body: Value) -> Value {
    s.admin(path, body)
}

pub(super) fn raw_of(v: &Value) -> Option<String> {
    v["key"]
        .as_str()
        .filter(|k| k.starts_with("sk-"))
        .map(str::to_string)
}

pub(super) fn setup() -> Stage {
    let s = Server::start();
    master(
        &s,
        "/organization/new",
        json!({"organization_id": "O1", "organization_alias": "O1", "models": ["A", "B"],
               "max_budget": 100.0}),
    );
    master(
        &s,
        "/organization/new",
        json!({"organization_id": "O2", "organization_alias": "O2", "models": ["C"]}),
    );
    master(
        &s,
        "/team/new",
        json!({"team_id": "T1", "organization_id": "O1", "models": ["A"], "max_budget": 10.0,
               "tpm_limit": 1000, "rpm_limit": 100}),
    );
    master(
        &s,
        "/team/new",
        json!({"team_id": "T2", "organization_id": "O1", "models": ["A", "B"]}),
    );
    master(
        &s,
        "/team/new",
        json!({"team_id": "T3", "organization_id": "O2", "models": ["C"]}),
    );
    master(
        &s,
        "/team/new",
        json!({"team_id": "TB", "organization_id": "O1", "models": ["B"]}),
    );
    master(&s, "/team/block", json!({"team_id": "TB"}));
    let mut held: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut tokens = Vec::new();
    let mut personal = BTreeMap::new();
    // Personal models: the actors' are narrow, so a key that escapes to another user's
    // personal set (out: every model) shows.
    for (u, role, models) in [
        ("oa", "internal_user", json!(["B"])),
        ("ta", "internal_user", json!(["no-default-models"])),
        ("mu", "internal_user", json!(["A"])),
        ("vw", "internal_user_viewer", json!(["no-default-models"])),
        ("pa", "proxy_admin", json!([])),
        ("pv", "proxy_admin_viewer", json!([])),
        ("out", "internal_user", json!([])),
        ("s1", "internal_user", json!(["no-default-models"])),
    ] {
        let v = master(
            &s,
            "/user/new",
            json!({"user_id": u, "user_email": format!("{u}@example.com"), "user_role": role,
                   "models": models}),
        );
        let raw = raw_of(&v).expect("personal key");
        tokens.push(litegate::auth::hash_key(&raw));
        personal.insert(u, raw.clone());
        if let Some(a) = ACTORS.iter().find(|a| **a == u) {
            held.entry(a).or_default().push(raw);
        }
    }
    master(
        &s,
        "/organization/member_add",
        json!({"organization_id": "O1", "member": [
            {"user_id": "oa", "role": "org_admin"}, {"user_id": "mu", "role": "internal_user"}],
            "max_budget_in_organization": 5.0}),
    );
    // mu's own budget (personal keys answer to it).
    master(
        &s,
        "/user/update",
        json!({"user_id": "mu", "max_budget": 2.0}),
    );
    for (team, members) in [
        (
            "T1",
            json!([{"user_id": "ta", "role": "admin"}, {"user_id": "mu", "role": "user"},
                      {"user_id": "vw", "role": "user"}, {"user_id": "s1", "role": "user"}]),
        ),
        ("T2", json!([{"user_id": "s1", "role": "user"}])),
        (
            "T3",
            json!([{"user_id": "ta", "role": "user"}, {"user_id": "s1", "role": "user"}]),
        ),
        (
            "TB",
            json!([{"user_id": "ta", "role": "admin"}, {"user_id": "s1", "role": "user"}]),
        ),
    ] {
        master(
            &s,
            "/team/member_add",
            json!({"team_id": team, "member": members}),
        );
    }
    master(
        &s,
        "/team/member_add",
        json!({"team_id": "T2", "member": {"user_id": "mu", "role": "user"},
               "max_budget_in_team": 1.0}),
    );
    // Keys the proxy admin limited: mu's (budget, expiry) and ta's (blocked).
    let v = master(
        &s,
        "/key/generate",
        json!({"team_id": "T1", "user_id": "mu", "key_alias": "lim-mu", "max_budget": 1.0,
               "duration": "1h", "tpm_limit": 50}),
    );
    let lim_key_expires = v["expires"].as_str().expect("expires").to_string();
    let raw = raw_of(&v).expect("key");
    tokens.push(litegate::auth::hash_key(&raw));
    held.entry("mu").or_default().push(raw);
    let v = master(
        &s,
        "/key/generate",
        json!({"team_id": "T1", "user_id": "ta", "key_alias": "blk-ta"}),
    );
    let raw = raw_of(&v).expect("key");
    let token = litegate::auth::hash_key(&raw);
    master(&s, "/key/block", json!({"key": token}));
    tokens.push(token);
    held.entry("ta").or_default().push(raw);
    Stage {
        s,
        held,
        tokens,
        passwords: Vec::new(),
        dead: BTreeSet::new(),
        personal,
        limits: Limits { lim_key_expires },
    }
}

pub(super) fn user_name(i: usize) -> &'static str {
    USERS[i % USERS.len()]
}

pub(super) fn opt_models(m: &Option<Vec<String>>) -> Value {
    m.as_ref().map(|v| json!(v)).unwrap_or(Value::Null)
}

/// Builds the request of a step; `None` when it names nothing that exists.
pub(super) fn request(
    w: &Stage,
    actor: &str,
    n: usize,
    op: &Op,
) -> Option<(&'static str, &'static str, Value)> {
    // A key an operation names: mostly one the actor holds (likely visible to it), else any
    // key seen so far (others', dead ones).
    let own: Vec<String> = w.held[actor]
        .iter()
        .map(|r| litegate::auth::hash_key(r))
        .collect();
    let token = |i: usize| {
        let pool = if i % 10 < 6 { &own } else { &w.tokens };
        pool.get((i / 10) % pool.len().max(1)).cloned()
    };
    let mut body = match op {
        Op::KeyGenerate {
            team,
            user,
            models,
            max_budget,
            org,
        } => (
            "POST",
            "/key/generate",
            json!({"team_id": team.map(|t| TEAMS[t]), "user_id": user.map(user_name),
                   "models": opt_models(models), "max_budget": max_budget,
                   "organization_id": org.map(|o| ORGS[o])}),
        ),
        Op::KeyRegenerate(k) => ("POST", "/key/regenerate", json!({"key": token(*k)?})),
        Op::KeyUpdate {
            key,
            models,
            max_budget,
            limits,
            team,
            user,
        } => (
            "POST",
            "/key/update",
            json!({"key": token(*key)?, "models": opt_models(models), "max_budget": max_budget,
                   "tpm_limit": if *limits { json!(1_000_000) } else { Value::Null },
                   "duration": if *limits { json!("3650d") } else { Value::Null },
                   "team_id": team.map(|t| TEAMS[t]), "user_id": user.map(user_name)}),
        ),
        Op::KeyDelete(k) => ("POST", "/key/delete", json!({"keys": [token(*k)?]})),
        Op::KeyBlock(k, b) => (
            "POST",
            if *b { "/key/block" } else { "/key/unblock" },
            json!({"key": token(*k)?}),
        ),
        Op::MemberAdd {
            team,
            user,
            admin,
            budget,
        } => (
            "POST",
            "/team/member_add",
            json!({"team_id": TEAMS[*team], "max_budget_in_team": budget,
                   "member": {"user_id": user_name(*user),
                              "role": if *admin { "admin" } else { "user" }}}),
        ),
        Op::MemberDelete { team, user } => (
            "POST",
            "/team/member_delete",
            json!({"team_id": TEAMS[*team], "user_id": user_name(*user)}),
        ),
        Op::MemberUpdate {
            team,
            user,
            admin,
            budget,
        } => (
            "POST",
            "/team/member_update",
            json!({"team_id": TEAMS[*team], "user_id": user_name(*user),
                   "role": if *admin { "admin" } else { "user" }, "max_budget_in_team": budget}),
        ),
        Op::TeamUpdate {
            team,
            models,
            max_budget,
            limits,
            org,
        } => (
            "POST",
            "/team/update",
            json!({"team_id": TEAMS[*team], "models": opt_models(models),
                   "max_budget": max_budget,
                   "tpm_limit": if *limits { json!(1_000_000) } else { Value::Null },
                   "rpm_limit": if *limits { json!(1_000_000) } else { Value::Null },
                   "organization_id": org.map(|o| ORGS[o])}),
        ),
        Op::TeamBlock(t, b) => (
            "POST",
            if *b { "/team/block" } else { "/team/unblock" },
            json!({"team_id": TEAMS[*t]}),
        ),
        Op::TeamNew {
            org,
            models,
            member,
        } => (
            "POST",
            "/team/new",
            json!({"team_id": "TN", "organization_id": org.map(|o| ORGS[o]), "models": models,
                   "members_with_roles": member.map(|u| vec![json!({"user_id": user_name(u),
                                                                    "role": "admin"})])}),
        ),
        Op::TeamDelete(t) => ("POST", "/team/delete", json!({"team_ids": [TEAMS[*t]]})),
        Op::OrgMemberAdd { org, user, role } => (
            "POST",
            "/organization/member_add",
            json!({"organization_id": ORGS[*org],
                   "member": {"user_id": user_name(*user), "role": ORG_ROLES[*role]}}),
        ),
        Op::OrgMemberUpdate { org, user, role } => (
            "PATCH",
            "/organization/member_update",
            json!({"organization_id": ORGS[*org], "user_id": user_name(*user),
                   "role": ORG_ROLES[*role]}),
        ),
        Op::OrgMemberDelete { org, user } => (
            "DELETE",
            "/organization/member_delete",
            json!({"organization_id": ORGS[*org], "user_id": user_name(*user)}),
        ),
        Op::OrgUpdate {
            org,
            models,
            max_budget,
        } => (
            "PATCH",
            "/organization/update",
            json!({"organization_id": ORGS[*org], "models": opt_models(models),
                   "max_budget": max_budget}),
        ),
        Op::UserUpdate {
            user,
            role,
            models,
            max_budget,
            password,
            email,
        } => (
            "POST",
            "/user/update",
            json!({"user_id": user_name(*user), "user_role": role.map(|r| GLOBAL_ROLES[r]),
                   "models": opt_models(models), "max_budget": max_budget,
                   "password": if *password { json!(format!("chosen-{n}")) } else { Value::Null },
                   "user_email": if *email { json!(format!("claimed-{n}@example.com")) }
                                 else { Value::Null }}),
        ),
        Op::UserNew { user, role } => (
            "POST",
            "/user/new",
            json!({"user_id": user_name(*user), "user_role": GLOBAL_ROLES[*role]}),
        ),
    };
    // Absent fields, not nulls: some endpoints read a present null as "clear".
    if let Some(o) = body.2.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    Some(body)
}

/// Runs one step; collects every raw key the answer hands the actor.
pub(super) fn run(w: &mut Stage, n: usize, st: &Step) {
    let actor = ACTORS[st.actor];
    // Through any key the actor holds, preferring those not yet seen refused as unknown.
    let live: Vec<&String> = w.held[actor]
        .iter()
        .filter(|k| !w.dead.contains(*k))
        .collect();
    let via = if live.is_empty() {
        let keys = &w.held[actor];
        keys[st.via % keys.len()].clone()
    } else {
        live[st.via % live.len()].clone()
    };
    let Some((method, path, body)) = request(w, actor, n, &st.op) else {
        return;
    };
    if let (Op::UserUpdate { user, .. }, Some(pw)) = (&st.op, body["password"].as_str()) {
        w.passwords
            .push((actor, user_name(*user).to_string(), pw.to_string()));
    }
    let r = w.s.send(method, path, &via, body.clone());
    assert!(r.status < 500, "{method} {path} -> {}", r.text());
    // AUTHORITY_TRACE=1 prints every call and its answer (to see what a sequence exercised).
    if std::env::var("AUTHORITY_TRACE").is_ok() {
        eprintln!(
            "TRACE {actor} {path} {} {} {}",
            r.status,
            body,
            r.text().chars().take(160).collect::<String>()
        );
    }
    if r.status == 401 {
        w.dead.insert(via);
    }
    if r.status == 200 {
        let v = r.json();
        if let Some(raw) = raw_of(&v) {
            w.tokens.push(litegate::auth::hash_key(&raw));
            w.held.entry(actor).or_default().push(raw);
        }
    }
}
