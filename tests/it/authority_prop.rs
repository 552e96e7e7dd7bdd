//! Issue 11, item 2: the authority invariant, tested as a property against the real server.
//!
//! *No sequence of API calls lets a caller obtain a credential, or make a change, with more
//! authority than the caller itself has.*
//!
//! A proxy admin (the master key) sets up two organizations, five teams, limits and blocks.
//! Then random sequences of management calls are made by the non-admin actors — an org admin
//! (`oa`), a team admin (`ta`), a member (`mu`) and a viewer (`vw`) — each through any raw key
//! it holds (its own, or any key a call handed it). The checker then asks:
//! - of every key an actor holds that still authenticates: can it do a proxy-admin thing, an
//!   org-admin or team-admin thing the actor cannot do now, or call a model the actor cannot
//!   reach now (its own personal models, its teams', its orgs' as org admin)?
//! - could an actor log in (web UI) as another user with a password it chose?
//! - did any limit the proxy admin set (org models and budgets, team models, budgets, rate
//!   limits, a team block, a member budget, a key's budget, expiry and block) get looser, any
//!   global role change, any membership appear where no actor had authority?
//!
//! `checker_reports_planted_escalations` shows the checker is not vacuous: the escalations
//! issue 11 names, done with the master key instead of by an actor, are each reported.

use crate::common::*;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ACTORS: [&str; 4] = ["oa", "ta", "mu", "vw"];
/// Users an operation may name: the actors, admins and an outsider (targets), a sentinel
/// member (`s1`, used by the probes and never named by operations), and users that do not
/// exist yet.
const USERS: [&str; 9] = ["oa", "ta", "mu", "vw", "pa", "pv", "out", "new1", "new2"];
const TEAMS: [&str; 5] = ["T1", "T2", "T3", "TB", "TN"];
const ORGS: [&str; 2] = ["O1", "O2"];
const MODELS: [&str; 4] = ["A", "B", "C", "D"];

// ---------------------------------------------------------------------------------------------
// Operations

#[derive(Debug, Clone)]
enum Op {
    KeyGenerate {
        team: Option<usize>,
        user: Option<usize>,
        models: Option<Vec<String>>,
        max_budget: Option<f64>,
        /// A personal key's own organization.
        org: Option<usize>,
    },
    KeyRegenerate(usize),
    KeyUpdate {
        key: usize,
        models: Option<Vec<String>>,
        max_budget: Option<f64>,
        limits: bool,
        team: Option<usize>,
        user: Option<usize>,
    },
    KeyDelete(usize),
    KeyBlock(usize, bool),
    MemberAdd {
        team: usize,
        user: usize,
        admin: bool,
        budget: Option<f64>,
    },
    MemberDelete {
        team: usize,
        user: usize,
    },
    MemberUpdate {
        team: usize,
        user: usize,
        admin: bool,
        budget: Option<f64>,
    },
    TeamUpdate {
        team: usize,
        models: Option<Vec<String>>,
        max_budget: Option<f64>,
        limits: bool,
        org: Option<usize>,
    },
    TeamBlock(usize, bool),
    TeamNew {
        org: Option<usize>,
        models: Vec<String>,
        member: Option<usize>,
    },
    TeamDelete(usize),
    OrgMemberAdd {
        org: usize,
        user: usize,
        role: usize,
    },
    OrgMemberUpdate {
        org: usize,
        user: usize,
        role: usize,
    },
    OrgMemberDelete {
        org: usize,
        user: usize,
    },
    OrgUpdate {
        org: usize,
        models: Option<Vec<String>>,
        max_budget: Option<f64>,
    },
    UserUpdate {
        user: usize,
        role: Option<usize>,
        models: Option<Vec<String>>,
        max_budget: Option<f64>,
        password: bool,
        /// Claim another address (only a proxy admin changes emails).
        email: bool,
    },
    UserNew {
        user: usize,
        role: usize,
    },
}

const GLOBAL_ROLES: [&str; 4] = [
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
];
const ORG_ROLES: [&str; 3] = ["org_admin", "internal_user", "internal_user_viewer"];

fn models() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(
        vec!["A", "B", "C", "D", "all-team-models", "all-proxy-models"],
        0..3,
    )
    .prop_map(|v| v.into_iter().map(String::from).collect())
}

fn budget() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of(prop_oneof![Just(0.5), Just(1000.0)])
}

/// Teams weighted toward those the actors have authority in (T1, T2: O1), so that more calls
/// get past the 404s and exercise the rules.
fn team_ix() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![3 => Just(0), 2 => Just(1), 1 => Just(2), 1 => Just(3), 1 => Just(4)]
}

fn op() -> impl Strategy<Value = Op> {
    let team = team_ix();
    let user = 0..USERS.len();
    let org = prop_oneof![3 => Just(0), 1 => Just(1)];
    prop_oneof![
        3 => (
            proptest::option::of(team.clone()),
            proptest::option::of(user.clone()),
            proptest::option::of(models()),
            budget(),
            proptest::option::weighted(0.2, org.clone())
        )
            .prop_map(|(team, user, models, max_budget, org)| Op::KeyGenerate {
                team,
                user,
                models,
                max_budget,
                org
            }),
        3 => any::<usize>().prop_map(Op::KeyRegenerate),
        3 => (
            any::<usize>(),
            proptest::option::of(models()),
            budget(),
            any::<bool>(),
            // Moving a key is for proxy admins: tried, but seldom.
            proptest::option::weighted(0.15, team.clone()),
            proptest::option::weighted(0.15, user.clone())
        )
            .prop_map(
                |(key, models, max_budget, limits, team, user)| Op::KeyUpdate {
                    key,
                    models,
                    max_budget,
                    limits,
                    team,
                    user
                }
            ),
        2 => any::<usize>().prop_map(Op::KeyDelete),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(k, b)| Op::KeyBlock(k, b)),
        3 => (team.clone(), user.clone(), any::<bool>(), budget()).prop_map(
            |(team, user, admin, budget)| Op::MemberAdd {
                team,
                user,
                admin,
                budget
            }
        ),
        2 => (team.clone(), user.clone()).prop_map(|(team, user)| Op::MemberDelete { team, user }),
        3 => (team.clone(), user.clone(), any::<bool>(), budget()).prop_map(
            |(team, user, admin, budget)| Op::MemberUpdate {
                team,
                user,
                admin,
                budget
            }
        ),
        2 => (
            team.clone(),
            proptest::option::of(models()),
            budget(),
            any::<bool>(),
            proptest::option::of(org.clone())
        )
            .prop_map(|(team, models, max_budget, limits, org)| Op::TeamUpdate {
                team,
                models,
                max_budget,
                limits,
                org
            }),
        2 => (team.clone(), any::<bool>()).prop_map(|(t, b)| Op::TeamBlock(t, b)),
        2 => (
            proptest::option::of(org.clone()),
            models(),
            proptest::option::of(user.clone())
        )
            .prop_map(|(org, models, member)| Op::TeamNew {
                org,
                models,
                member
            }),
        1 => team.clone().prop_map(Op::TeamDelete),
        2 => (org.clone(), user.clone(), 0..ORG_ROLES.len())
            .prop_map(|(org, user, role)| Op::OrgMemberAdd { org, user, role }),
        2 => (org.clone(), user.clone(), 0..ORG_ROLES.len())
            .prop_map(|(org, user, role)| Op::OrgMemberUpdate { org, user, role }),
        2 => (org.clone(), user.clone()).prop_map(|(org, user)| Op::OrgMemberDelete { org, user }),
        1 => (org.clone(), proptest::option::of(models()), budget()).prop_map(
            |(org, models, max_budget)| Op::OrgUpdate {
                org,
                models,
                max_budget
            }
        ),
        1 => (
            user.clone(),
            proptest::option::of(0..GLOBAL_ROLES.len()),
            proptest::option::of(models()),
            budget(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(user, role, models, max_budget, password, email)| Op::UserUpdate {
                    user,
                    role,
                    models,
                    max_budget,
                    password,
                    email
                }
            ),
        1 => (user, 0..GLOBAL_ROLES.len()).prop_map(|(user, role)| Op::UserNew { user, role }),
    ]
}

/// One step: which actor, through which of the keys it holds, does what.
#[derive(Debug, Clone)]
struct Step {
    actor: usize,
    via: usize,
    op: Op,
}

fn step() -> impl Strategy<Value = Step> {
    // The admins act more often: they have the authority that could be abused.
    let actor = prop_oneof![3 => Just(0), 3 => Just(1), 2 => Just(2), 1 => Just(3)];
    (actor, any::<usize>(), op()).prop_map(|(actor, via, op)| Step { actor, via, op })
}

// ---------------------------------------------------------------------------------------------
// The world the proxy admin sets up

struct World {
    s: Server,
    /// Raw keys each actor holds (every `key` any call returned to it).
    held: BTreeMap<&'static str, Vec<String>>,
    /// Every key token seen, for operations that name a key.
    tokens: Vec<String>,
    /// (actor, user, password) for every password an actor tried to set.
    passwords: Vec<(&'static str, String, String)>,
    /// Held keys a call refused with 401 (kept for the checker: they may come back).
    dead: BTreeSet<String>,
    /// Every set-up user's personal key (for the planted escalations).
    personal: BTreeMap<&'static str, String>,
    /// What the proxy admin set, read back after setup.
    limits: Limits,
}

#[derive(Debug, Clone)]
struct Limits {
    lim_key_expires: String,
}

fn master(s: &Server, path: &str, body: Value) -> Value {
    s.admin(path, body)
}

fn raw_of(v: &Value) -> Option<String> {
    v["key"]
        .as_str()
        .filter(|k| k.starts_with("sk-"))
        .map(str::to_string)
}

fn setup() -> World {
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
    World {
        s,
        held,
        tokens,
        passwords: Vec::new(),
        dead: BTreeSet::new(),
        personal,
        limits: Limits { lim_key_expires },
    }
}

fn user_name(i: usize) -> &'static str {
    USERS[i % USERS.len()]
}

fn opt_models(m: &Option<Vec<String>>) -> Value {
    m.as_ref().map(|v| json!(v)).unwrap_or(Value::Null)
}

/// Builds the request of a step; `None` when it names nothing that exists.
fn request(
    w: &World,
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
fn run(w: &mut World, n: usize, st: &Step) {
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

// ---------------------------------------------------------------------------------------------
// The checker

/// What the database says now, read with plain SQL (the server's rules are what is tested).
struct State {
    roles: BTreeMap<String, String>,
    user_models: BTreeMap<String, Vec<String>>,
    emails: BTreeMap<String, String>,
    /// team -> (org, models)
    teams: BTreeMap<String, (Option<String>, Vec<String>)>,
    orgs: BTreeMap<String, Vec<String>>,
    /// (team, user) -> role
    team_members: BTreeMap<(String, String), String>,
    /// (org, user) -> role
    org_members: BTreeMap<(String, String), String>,
}

fn list(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

fn state(s: &Server) -> State {
    let db = s.db();
    let pairs = |sql: &str| -> Vec<(String, String, Option<String>)> {
        let mut st = db.prepare(sql).unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|x| x.unwrap())
            .collect()
    };
    let mut roles = BTreeMap::new();
    let mut user_models = BTreeMap::new();
    let mut emails = BTreeMap::new();
    for (id, role, models) in pairs("SELECT id, user_role, models FROM users") {
        roles.insert(id.clone(), role);
        user_models.insert(id.clone(), list(&models.unwrap_or_default()));
    }
    for (id, email, _) in pairs("SELECT id, coalesce(email, ''), NULL FROM users") {
        emails.insert(id, email);
    }
    let teams = pairs("SELECT id, models, organization_id FROM teams")
        .into_iter()
        .map(|(id, m, org)| (id, (org, list(&m))))
        .collect();
    let orgs = pairs("SELECT id, models, NULL FROM organizations")
        .into_iter()
        .map(|(id, m, _)| (id, list(&m)))
        .collect();
    let team_members = pairs("SELECT team_id, user_id, role FROM team_members")
        .into_iter()
        .map(|(t, u, r)| ((t, u), r.unwrap_or_default()))
        .collect();
    let org_members = pairs("SELECT organization_id, user_id, user_role FROM organization_members")
        .into_iter()
        .map(|(o, u, r)| ((o, u), r.unwrap_or_default()))
        .collect();
    State {
        roles,
        user_models,
        emails,
        teams,
        orgs,
        team_members,
        org_members,
    }
}

/// The configured models a stored list allows (only plain names and the special names the
/// operations use can appear; an empty list is unrestricted).
fn allows(list: &[String]) -> BTreeSet<String> {
    let all: BTreeSet<String> = MODELS.iter().map(|m| m.to_string()).collect();
    if list.is_empty() || list.iter().any(|m| m == "all-proxy-models" || m == "*") {
        return all;
    }
    list.iter().filter(|m| all.contains(*m)).cloned().collect()
}

impl State {
    fn is_viewer(&self, u: &str) -> bool {
        self.roles
            .get(u)
            .is_some_and(|r| r.ends_with("_viewer") || r == "proxy_admin_viewer")
    }
    fn org_admin(&self, u: &str, org: &str) -> bool {
        !self.is_viewer(u)
            && self
                .org_members
                .get(&(org.to_string(), u.to_string()))
                .map(String::as_str)
                == Some("org_admin")
    }
    fn team_admin(&self, u: &str, team: &str) -> bool {
        if self.is_viewer(u) {
            return false;
        }
        let member_admin = self
            .team_members
            .get(&(team.to_string(), u.to_string()))
            .map(String::as_str)
            == Some("admin");
        let above = self
            .teams
            .get(team)
            .and_then(|(org, _)| org.as_deref())
            .is_some_and(|o| self.org_admin(u, o));
        member_admin || above
    }
    /// What a team may call: its list within its org's.
    fn team_models(&self, team: &str) -> BTreeSet<String> {
        let Some((org, models)) = self.teams.get(team) else {
            return BTreeSet::new();
        };
        let mut set = allows(models);
        if let Some(o) = org {
            let org_set = self.orgs.get(o).map(|m| allows(m)).unwrap_or_default();
            set.retain(|m| org_set.contains(m));
        }
        set
    }
    /// Every model the user can reach by its own rights now: personally, through its teams,
    /// and through the orgs it administers (it may make teams there and join them).
    fn reach(&self, u: &str) -> BTreeSet<String> {
        let personal = self.user_models.get(u).cloned().unwrap_or_default();
        let mut set = if personal.iter().any(|m| m == "no-default-models") {
            BTreeSet::new()
        } else {
            allows(&personal)
        };
        for (t, m) in self.team_members.keys() {
            if m == u {
                set.extend(self.team_models(t));
            }
        }
        for o in self.orgs.keys() {
            if self.org_admin(u, o) {
                set.extend(allows(&self.orgs[o]));
            }
        }
        set
    }
}

/// May `actor` read the key with this token (`/key/info`): its own, or one of a team it
/// administers now. (Viewers administer nothing: `State::team_admin`.)
fn sees_key(
    st: &State,
    keys: &BTreeMap<String, (Option<String>, Option<String>)>,
    actor: &str,
    token: &str,
) -> bool {
    match keys.get(token) {
        Some((user, team)) => {
            user.as_deref() == Some(actor)
                || team.as_deref().is_some_and(|t| st.team_admin(actor, t))
        }
        None => false,
    }
}

fn cookie_request(s: &Server, method: &str, path: &str, cookie: &str, body: Value) -> Resp {
    let b = body.to_string();
    s.request(
        method,
        path,
        None,
        Some(b.as_bytes()),
        &[("Cookie", cookie), ("X-Litegate-UI", "1")],
    )
}

/// Everything that violates the invariant now; empty when it holds.
fn violations(w: &World) -> Vec<String> {
    let s = &w.s;
    let st = state(s);
    let mut bad = Vec::new();
    let mut v = |msg: String| bad.push(msg);

    // 1. Global roles: unchanged for the users set up; nobody new is an admin.
    for (u, role) in [
        ("oa", "internal_user"),
        ("ta", "internal_user"),
        ("mu", "internal_user"),
        ("vw", "internal_user_viewer"),
        ("pa", "proxy_admin"),
        ("pv", "proxy_admin_viewer"),
        ("out", "internal_user"),
        ("s1", "internal_user"),
    ] {
        if st.roles.get(u).map(String::as_str) != Some(role) {
            v(format!("global role of {u} is now {:?}", st.roles.get(u)));
        }
        let email = st.emails.get(u).map(|e| e.to_lowercase());
        if email.as_deref() != Some(format!("{u}@example.com").as_str()) {
            v(format!("email of {u} is now {email:?}"));
        }
    }
    for (u, role) in &st.roles {
        if role.starts_with("proxy_admin") && u != "pa" && u != "pv" && u != "default_user_id" {
            v(format!("new user {u} has role {role}"));
        }
    }
    // 2. Where no actor has authority, nothing changed: O2's org admins, T3's members.
    for ((o, u), r) in &st.org_members {
        if o == "O2" {
            v(format!("{u} became {r} of O2"));
        }
    }
    for (t, u) in st.team_members.keys() {
        if t == "T3" && u != "ta" && u != "s1" {
            v(format!("{u} joined T3"));
        }
        if t == "T3" && st.team_members[&(t.clone(), u.clone())] == "admin" {
            v(format!("{u} became admin of T3"));
        }
    }
    for (t, (org, _)) in &st.teams {
        let want = match t.as_str() {
            "T3" => Some("O2"),
            _ => Some("O1"),
        };
        if org.as_deref() != want {
            v(format!("team {t} is now in {org:?}"));
        }
    }
    // 3. Limits the proxy admin set were not loosened.
    let db = s.db();
    let one = |sql: &str| -> Option<Vec<Option<String>>> {
        let mut stmt = db.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_row([], |r| {
            (0..n)
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i).map(|x| match x {
                        rusqlite::types::Value::Null => None,
                        rusqlite::types::Value::Integer(i) => Some(i.to_string()),
                        rusqlite::types::Value::Real(f) => Some(f.to_string()),
                        rusqlite::types::Value::Text(t) => Some(t),
                        rusqlite::types::Value::Blob(_) => Some("blob".into()),
                    })
                })
                .collect()
        })
        .ok()
    };
    let num = |x: &Option<String>| x.as_deref().and_then(|s| s.parse::<f64>().ok());
    let at_most = |x: &Option<String>, max: f64| num(x).is_some_and(|n| n <= max);
    for (o, models) in [("O1", vec!["A", "B"]), ("O2", vec!["C"])] {
        let want: Vec<String> = models.iter().map(|m| m.to_string()).collect();
        if st.orgs.get(o).map(|m| allows(m)) != Some(allows(&want)) {
            v(format!("models of {o} changed: {:?}", st.orgs.get(o)));
        }
    }
    if let Some(r) = one(
        "SELECT b.max_budget FROM organizations o JOIN budgets b ON b.id = o.budget_id
         WHERE o.id = 'O1'",
    ) {
        if !at_most(&r[0], 100.0) {
            v(format!("O1's budget is now {:?}", r[0]));
        }
    } else {
        v("O1 lost its budget".into());
    }
    for (t, models) in [
        ("T1", vec!["A"]),
        ("T2", vec!["A", "B"]),
        ("T3", vec!["C"]),
        ("TB", vec!["B"]),
    ] {
        let want = allows(&models.iter().map(|m| m.to_string()).collect::<Vec<_>>());
        if st.teams.contains_key(t) && !st.team_models(t).is_subset(&want) {
            v(format!("{t} may now call {:?}", st.team_models(t)));
        }
    }
    if let Some(r) = one("SELECT max_budget, tpm_limit, rpm_limit FROM teams WHERE id = 'T1'") {
        if !(at_most(&r[0], 10.0) && at_most(&r[1], 1000.0) && at_most(&r[2], 100.0)) {
            v(format!("T1's limits loosened: {r:?}"));
        }
    }
    if let Some(r) = one("SELECT blocked FROM teams WHERE id = 'TB'") {
        if r[0].as_deref() != Some("1") {
            v("TB was unblocked".into());
        }
    }
    if let Some(r) = one(
        "SELECT b.max_budget FROM team_members m LEFT JOIN budgets b ON b.id = m.budget_id
         WHERE m.team_id = 'T2' AND m.user_id = 'mu'",
    ) {
        if !at_most(&r[0], 1.0) {
            v(format!("mu's budget in T2 is now {:?}", r[0]));
        }
    }
    for u in ["oa", "mu"] {
        let sql = format!(
            "SELECT b.max_budget FROM organization_members m LEFT JOIN budgets b
             ON b.id = m.budget_id WHERE m.organization_id = 'O1' AND m.user_id = '{u}'"
        );
        if let Some(r) = one(&sql) {
            if !at_most(&r[0], 5.0) {
                v(format!("{u}'s budget in O1 is now {:?}", r[0]));
            }
        }
    }
    if let Some(r) = one("SELECT max_budget FROM users WHERE id = 'mu'") {
        if !at_most(&r[0], 2.0) {
            v(format!("mu's own budget is now {:?}", r[0]));
        }
    }
    if let Some(r) =
        one("SELECT max_budget, expires, tpm_limit FROM api_keys WHERE key_alias = 'lim-mu'")
    {
        let expires_ok = r[1]
            .as_deref()
            .is_some_and(|e| e <= w.limits.lim_key_expires.as_str());
        if !(at_most(&r[0], 1.0) && expires_ok && at_most(&r[2], 50.0)) {
            v(format!("lim-mu's limits loosened: {r:?}"));
        }
    }
    if let Some(r) = one("SELECT blocked FROM api_keys WHERE key_alias = 'blk-ta'") {
        if r[0].as_deref() != Some("1") {
            v("blk-ta was unblocked".into());
        }
    }

    // 4. Every credential an actor holds acts within the actor's own authority now.
    let keys_now: BTreeMap<String, (Option<String>, Option<String>)> = {
        let mut stmt = db
            .prepare("SELECT token, user_id, team_id FROM api_keys")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
            .unwrap()
            .map(|x| x.unwrap())
            .collect()
    };
    let mut probe = 0;
    for (actor, keys) in &w.held {
        let reach = st.reach(actor);
        for raw in keys {
            let who = format!("{actor}'s key {}", litegate::auth::key_name(raw));
            let info = s.get("/key/info", raw);
            if info.status == 401 {
                continue; // no longer a credential (deleted, blocked, expired, regenerated)
            }
            if s.get("/user/list", raw).status == 200 {
                v(format!("{who} lists users (proxy reader)"));
            }
            for (path, body) in [
                ("/organization/new", json!({"organization_alias": "probe"})),
                (
                    "/user/new",
                    json!({"user_id": "probe-user", "auto_create_key": false}),
                ),
                ("/team/new", json!({"team_alias": "probe-no-org"})),
            ] {
                if s.post(path, raw, body).status == 200 {
                    v(format!("{who} did {path} (proxy admin)"));
                }
            }
            for o in ORGS {
                probe += 1;
                let r = s.send(
                    "PATCH",
                    "/organization/update",
                    raw,
                    json!({"organization_id": o, "metadata": {"probe": probe}}),
                );
                if r.status == 200 && !st.org_admin(actor, o) {
                    v(format!("{who} acts as org admin of {o}"));
                }
            }
            for t in st.teams.keys() {
                let r = s.post(
                    "/team/member_update",
                    raw,
                    json!({"team_id": t, "user_id": "s1", "role": "user"}),
                );
                if r.status == 200 && !st.team_admin(actor, t) {
                    v(format!("{who} acts as admin of team {t}"));
                }
            }
            let r = s.get("/v1/models", raw);
            if r.status == 200 {
                for m in r.json()["data"].as_array().unwrap() {
                    let id = m["id"].as_str().unwrap_or_default();
                    if !reach.contains(id) {
                        v(format!(
                            "{who} reaches model {id}; {actor} reaches {reach:?}"
                        ));
                    }
                }
            }
            // What it reads: key tokens only of keys the actor may read (its own, its
            // teams' as admin, the key itself); no other user's record.
            let own = litegate::auth::hash_key(raw);
            let readable = |t: &str| t == own || sees_key(&st, &keys_now, actor, t);
            let r = s.get("/key/list?size=100", raw);
            if r.status == 200 {
                for t in r.json()["keys"].as_array().unwrap() {
                    let t = t.as_str().unwrap_or_default();
                    if !readable(t) {
                        v(format!("{who} lists key {t}"));
                    }
                }
            }
            for t in st.teams.keys() {
                let r = s.get(&format!("/team/info?team_id={t}"), raw);
                if r.status == 200 {
                    for k in r.json()["keys"].as_array().unwrap() {
                        if let Some(tok) = k["token"].as_str() {
                            if !readable(tok) {
                                v(format!("{who} reads token {tok} in /team/info of {t}"));
                            }
                        }
                    }
                }
            }
            for u in ["pa", "out", "s1"] {
                if s.get(&format!("/user/info?user_id={u}"), raw).status == 200 {
                    v(format!("{who} reads user {u}"));
                }
            }
        }
    }
    // 5. No actor can log in as someone else with a password it chose.
    for (actor, user, pw) in &w.passwords {
        if user == actor {
            continue;
        }
        let Some(email) = st.emails.get(user.as_str()) else {
            continue;
        };
        let b = json!({"email": email, "password": pw}).to_string();
        let r = s.request(
            "POST",
            "/ui/login",
            None,
            Some(b.as_bytes()),
            &[("X-Litegate-UI", "1")],
        );
        if r.status == 200 {
            let cookie = r
                .header("set-cookie")
                .and_then(|c| c.split(';').next())
                .unwrap_or_default()
                .to_string();
            let me = cookie_request(s, "GET", "/ui/me", &cookie, Value::Null);
            v(format!("{actor} logs in as {user}: {}", me.text()));
        }
    }
    bad
}

// ---------------------------------------------------------------------------------------------
// The property

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random management calls by non-admin actors never give any of them authority beyond
    /// its own, and never loosen what the proxy admin set.
    #[test]
    fn authority_never_grows(steps in proptest::collection::vec(step(), 8..32)) {
        let mut w = setup();
        for (n, st) in steps.iter().enumerate() {
            run(&mut w, n, st);
        }
        let bad = violations(&w);
        prop_assert!(bad.is_empty(), "violations: {:#?}", bad);
    }
}

/// The checker finds nothing in the world as set up, and reports each escalation issue 11
/// names when it is planted with the master key (a rule "broken" on purpose, without a
/// backdoor in the binary).
#[test]
fn checker_reports_planted_escalations() {
    let w = setup();
    assert_eq!(violations(&w), Vec::<String>::new());
    type Plant = fn(&mut World);
    let plants: [(&str, Plant, &str); 10] = [
        (
            "a key for a proxy admin, held by a team admin",
            |w| {
                w.s.admin(
                    "/team/member_add",
                    json!({"team_id": "T1", "member": {"user_id": "pa", "role": "user"}}),
                );
                let v =
                    w.s.admin("/key/generate", json!({"team_id": "T1", "user_id": "pa"}));
                w.held.get_mut("ta").unwrap().push(raw_of(&v).unwrap());
            },
            "lists users",
        ),
        (
            "a personal key of an unrestricted user, held by a member",
            |w| {
                let v = w.s.admin("/key/generate", json!({"user_id": "out"}));
                w.held.get_mut("mu").unwrap().push(raw_of(&v).unwrap());
            },
            "reaches model",
        ),
        (
            "a team budget raised",
            |w| {
                w.s.admin("/team/update", json!({"team_id": "T1", "max_budget": 1e6}));
            },
            "T1's limits",
        ),
        (
            "an org member budget lifted",
            |w| {
                w.s.send(
                    "PATCH",
                    "/organization/member_update",
                    MASTER,
                    json!({"organization_id": "O1", "user_id": "oa",
                           "max_budget_in_organization": 1e6}),
                );
            },
            "oa's budget in O1",
        ),
        (
            "a blocked team unblocked",
            |w| {
                w.s.admin("/team/unblock", json!({"team_id": "TB"}));
            },
            "TB was unblocked",
        ),
        (
            "a member made admin of a team in an org it does not administer",
            |w| {
                w.s.admin(
                    "/team/member_update",
                    json!({"team_id": "T3", "user_id": "ta", "role": "admin"}),
                );
            },
            "admin of T3",
        ),
        (
            "a password chosen by a team admin for a member",
            |w| {
                w.s.admin(
                    "/user/update",
                    json!({"user_id": "mu", "password": "by-ta-123"}),
                );
                w.passwords
                    .push(("ta", "mu".to_string(), "by-ta-123".to_string()));
            },
            "logs in as mu",
        ),
        (
            "a proxy viewer's key held by a member (lists keys)",
            |w| {
                let k = w.personal["pv"].clone();
                w.held.get_mut("mu").unwrap().push(k);
            },
            "lists key",
        ),
        (
            "a proxy viewer's key held by a member (reads tokens in /team/info)",
            |w| {
                let k = w.personal["pv"].clone();
                w.held.get_mut("mu").unwrap().push(k);
            },
            "reads token",
        ),
        (
            "a proxy viewer's key held by a member (reads users)",
            |w| {
                let k = w.personal["pv"].clone();
                w.held.get_mut("mu").unwrap().push(k);
            },
            "reads user",
        ),
    ];
    for (what, plant, expect) in plants {
        let mut w = setup();
        plant(&mut w);
        let bad = violations(&w);
        assert!(
            bad.iter().any(|b| b.contains(expect)),
            "{what}: expected a violation containing {expect:?}, got {bad:#?}"
        );
    }
}

/// A sequence the random search rarely hits: a team admin who minted keys (a userless team
/// key, its own, one for a member) and is then removed from the team keeps no reach into the
/// team's models through any of them. (Found by this checker before h11-authz's removal rule
/// took the keys a removed admin issued for others.)
#[test]
fn a_removed_team_admin_keeps_no_reach_through_keys_it_minted() {
    let mut w = setup();
    let ta = w.held["ta"][0].clone();
    for body in [
        json!({"team_id": "T1"}),
        json!({"team_id": "T1", "user_id": "ta"}),
        json!({"team_id": "T1", "user_id": "mu"}),
    ] {
        let r = w.s.post("/key/generate", &ta, body.clone());
        assert_eq!(r.status, 200, "{body} {}", r.text());
        let raw = raw_of(&r.json()).unwrap();
        w.held.get_mut("ta").unwrap().push(raw);
    }
    assert_eq!(violations(&w), Vec::<String>::new());
    let oa = w.held["oa"][0].clone();
    let r = w.s.post(
        "/team/member_delete",
        &oa,
        json!({"team_id": "T1", "user_id": "ta"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(violations(&w), Vec::<String>::new());
}

/// The same for an org admin: a key it minted for a member of one of the org's teams, and a
/// member's key it regenerated (it saw both raw keys), give it no reach once it is demoted.
#[test]
fn a_demoted_org_admin_keeps_no_reach_through_keys_it_issued() {
    let mut w = setup();
    let oa = w.held["oa"][0].clone();
    let r = w.s.post(
        "/key/generate",
        &oa,
        json!({"team_id": "T2", "user_id": "mu"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    w.held
        .get_mut("oa")
        .unwrap()
        .push(raw_of(&r.json()).unwrap());
    let mu_key = litegate::auth::hash_key(&w.held["mu"][1]);
    let r = w.s.post("/key/regenerate", &oa, json!({"key": mu_key}));
    assert_eq!(r.status, 200, "{}", r.text());
    w.held
        .get_mut("oa")
        .unwrap()
        .push(raw_of(&r.json()).unwrap());
    assert_eq!(violations(&w), Vec::<String>::new());
    let r = w.s.send(
        "PATCH",
        "/organization/member_update",
        MASTER,
        json!({"organization_id": "O1", "user_id": "oa", "role": "internal_user"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(violations(&w), Vec::<String>::new());
}

/// Removing a member and adding it back does not shed a budget a higher admin set: the
/// proxy admin's budget on mu in T2 and in O1 survives an org admin's remove-and-re-add.
#[test]
fn remove_and_re_add_does_not_lift_a_member_budget() {
    let w = setup();
    let oa = w.held["oa"][0].clone();
    for (path, method, body) in [
        (
            "/team/member_delete",
            "POST",
            json!({"team_id": "T2", "user_id": "mu"}),
        ),
        (
            "/team/member_add",
            "POST",
            json!({"team_id": "T2", "member": {"user_id": "mu", "role": "user"}}),
        ),
        (
            "/organization/member_delete",
            "DELETE",
            json!({"organization_id": "O1", "user_id": "mu"}),
        ),
        (
            "/organization/member_add",
            "POST",
            json!({"organization_id": "O1", "member": {"user_id": "mu", "role": "internal_user"}}),
        ),
    ] {
        // (Today the removal is refused: the budget was set by a higher rank.)
        let r = w.s.send(method, path, &oa, body);
        assert!(r.status < 500, "{path}: {}", r.text());
    }
    assert_eq!(violations(&w), Vec::<String>::new());
}
