//! Issue 16 item 1's property: for random org/team/user/key hierarchies built through the HTTP
//! API — random model lists with the special names, blocked keys and teams, budgets already
//! spent (a `max_budget` of 0), an rpm limit of 0 — `POST /access/explain`'s `allowed` is
//! exactly whether a real `/v1/chat/completions` then succeeds, and a refusal's `status` and
//! `reason` are the call's. Asked by the proxy admin (by token or alias) and by the key itself.
//! Both engines (a server per case; few cases, so it stays well under a minute).

use crate::common::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const ORG_POOL: &[&str] = &["A", "B", "C", "grp-ab", "all-proxy-models", "Z"];
const TEAM_POOL: &[&str] = &[
    "A",
    "B",
    "D",
    "grp-ab",
    "all-org-models",
    "all-proxy-models",
];
const KEY_POOL: &[&str] = &[
    "A",
    "B",
    "C",
    "grp-ab",
    "all-team-models",
    "all-org-models",
    "all-proxy-models",
];
const USER_POOL: &[&str] = &["A", "C", "grp", "all-proxy-models"];
/// What the calls ask for: every model, an access group's name and an unknown one.
const ASKED: &[&str] = &["A", "B", "C", "D", "grp-ab", "nope"];

fn list(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(proptest::sample::select(pool), 0..3).prop_map(|v| {
        let mut out: Vec<String> = Vec::new();
        for x in v {
            if !out.iter().any(|o| o == x) {
                out.push(x.to_string());
            }
        }
        out
    })
}

/// A budget: none, already spent (0), or ample.
fn budget() -> impl Strategy<Value = Option<f64>> {
    proptest::sample::select(vec![None, None, Some(0.0), Some(100.0)])
}

#[derive(Debug, Clone)]
struct Case {
    org: Option<(Vec<String>, Option<f64>)>,
    team: Option<(Vec<String>, Option<f64>, bool)>,
    user: Vec<String>,
    key: Vec<String>,
    key_budget: Option<f64>,
    key_rpm_zero: bool,
    key_blocked: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::option::of((list(ORG_POOL), budget())),
        proptest::option::of((list(TEAM_POOL), budget(), proptest::bool::weighted(0.15))),
        list(USER_POOL),
        list(KEY_POOL),
        budget(),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.15),
    )
        .prop_map(
            |(org, team, user, key, key_budget, key_rpm_zero, key_blocked)| Case {
                org,
                team,
                user,
                key,
                key_budget,
                key_rpm_zero,
                key_blocked,
            },
        )
}

/// POST as the master key; on a refusal (a list the write-time rules refuse), the same without
/// `drop`'s fields. Returns the answer.
fn create(s: &Server, path: &str, mut body: Value, drop: &[&str]) -> Value {
    let r = s.post(path, MASTER, body.clone());
    if r.status == 200 {
        return r.json();
    }
    for f in drop {
        body.as_object_mut().map(|o| o.remove(*f));
    }
    s.admin(path, body)
}

/// Builds one case under ids tagged `i`; returns the raw key and its alias.
fn build(s: &Server, i: usize, c: &Case) -> (String, String) {
    let org = c.org.as_ref().map(|(models, max)| {
        let mut b = json!({"organization_alias": format!("o{i}"), "models": models});
        if let Some(m) = max {
            b["max_budget"] = json!(m);
        }
        create(s, "/organization/new", b, &["models"])["organization_id"]
            .as_str()
            .unwrap()
            .to_string()
    });
    let user = format!("u{i}");
    s.admin("/user/new", json!({"user_id": user, "models": c.user}));
    let team = c.team.as_ref().map(|(models, max, _)| {
        let mut b = json!({"team_alias": format!("t{i}"), "models": models});
        if let Some(o) = &org {
            b["organization_id"] = json!(o);
        }
        if let Some(m) = max {
            b["max_budget"] = json!(m);
        }
        let id = create(s, "/team/new", b, &["models", "max_budget"])["team_id"]
            .as_str()
            .unwrap()
            .to_string();
        seed_team_member(s, &id, &user, "user");
        id
    });
    let alias = format!("k{i}");
    let mut b = json!({"user_id": user, "models": c.key, "key_alias": alias});
    if let Some(t) = &team {
        b["team_id"] = json!(t);
    }
    if let Some(m) = c.key_budget {
        b["max_budget"] = json!(m);
    }
    if c.key_rpm_zero {
        b["rpm_limit"] = json!(0);
    }
    let raw = create(s, "/key/generate", b, &["models"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    if c.key_blocked {
        s.admin("/key/block", json!({"key": raw}));
    }
    if let (Some(t), Some((_, _, true))) = (&team, &c.team) {
        s.admin("/team/block", json!({"team_id": t}));
    }
    (raw, alias)
}

/// The property on one server: explain, then call, for every case and model. Returns each
/// answer's `refused_by` (`None`: allowed).
fn check(cases: &[Case]) -> Result<Vec<Option<String>>, TestCaseError> {
    let mut seen = Vec::new();
    let s = Server::start();
    let built: Vec<(String, String)> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| build(&s, i, c))
        .collect();
    for ((raw, alias), c) in built.iter().zip(cases) {
        for (n, asked) in ASKED.iter().enumerate() {
            // The proxy admin asks by alias or by token, alternately.
            let given = if n % 2 == 0 {
                alias.clone()
            } else {
                litegate::auth::hash_key(raw)
            };
            let r = s.post(
                "/access/explain",
                MASTER,
                json!({"key": given, "model": asked}),
            );
            prop_assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            // The key itself asks: the same answer, or the key check's own refusal.
            let own = s.post("/access/explain", raw, json!({"model": asked}));
            let call = chat(&s, raw, asked);
            let allowed = v["allowed"].as_bool().unwrap();
            seen.push(v["refused_by"].as_str().map(str::to_string));
            prop_assert_eq!(
                allowed,
                call.status == 200,
                "{:?} asked {}: explain {} but the call got {} {}",
                c,
                asked,
                v,
                call.status,
                call.text()
            );
            if !allowed {
                prop_assert_eq!(&v["status"], &json!(call.status), "{:?} {}", c, v);
                prop_assert_eq!(
                    &v["reason"],
                    &call.json()["error"]["message"],
                    "{:?} {}",
                    c,
                    v
                );
            }
            if own.status == 200 {
                prop_assert_eq!(&own.json()["allowed"], &v["allowed"], "{:?}", c);
            } else {
                prop_assert!(!allowed);
                prop_assert_eq!(own.status, call.status, "{:?} {}", c, own.text());
            }
        }
    }
    Ok(seen)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn explain_allowed_is_what_a_real_call_gets(cases in proptest::collection::vec(case(), 1..6)) {
        check(&cases)?;
    }
}

/// The property is not vacuous: a fixed set of cases where some calls pass and each kind of
/// refusal happens (team models, org models, user models, blocked key and team, spent budget,
/// rpm 0).
#[test]
fn explain_prop_fixed_cases_cover_every_refusal() {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let base = Case {
        org: None,
        team: None,
        user: vec![],
        key: vec![],
        key_budget: None,
        key_rpm_zero: false,
        key_blocked: false,
    };
    let cases = vec![
        Case {
            org: Some((v(&["A", "B"]), None)),
            team: Some((v(&["all-org-models"]), None, false)),
            key: v(&["all-team-models"]),
            ..base.clone()
        },
        Case {
            user: v(&["C"]),
            ..base.clone()
        },
        Case {
            team: Some((v(&["A"]), Some(0.0), false)),
            ..base.clone()
        },
        Case {
            team: Some((v(&[]), None, true)),
            ..base.clone()
        },
        Case {
            key_blocked: true,
            ..base.clone()
        },
        Case {
            key_rpm_zero: true,
            ..base.clone()
        },
    ];
    let seen = check(&cases).unwrap();
    for level in [
        None,
        Some("organization"),
        Some("team"),
        Some("user"),
        Some("key"),
    ] {
        assert!(
            seen.iter().any(|r| r.as_deref() == level),
            "no answer refused by {level:?}: {seen:?}"
        );
    }
}
