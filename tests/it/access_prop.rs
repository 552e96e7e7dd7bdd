//! Property tests of model access (API.md §4): random org/team/key/user model lists with
//! special names, stored in a real database, resolved by THE key-check statement and the one
//! resolver, compared with a small independent model of the rules written from API.md.

use crate::common::*;
use litegate::db::sql::Arg;
use proptest::prelude::*;
use std::collections::BTreeSet;

const MODELS: [&str; 4] = ["A", "B", "C", "D"];

type Set = BTreeSet<&'static str>;

fn all() -> Set {
    MODELS.iter().copied().collect()
}

/// The in-memory model. Deliberately independent of `auth.rs`.
mod model {
    use super::*;

    fn unrestricted(l: &[String]) -> bool {
        l.is_empty() || l.iter().any(|e| e == "all-proxy-models" || e == "*")
    }

    fn plain(e: &str) -> Set {
        match e {
            "A" | "B" | "C" | "D" => MODELS.iter().copied().filter(|m| *m == e).collect(),
            "grp-ab" => ["A", "B"].into_iter().collect(),
            "grp" => ["D"].into_iter().collect(),
            _ => Set::new(),
        }
    }

    pub fn org_set(org: Option<&[String]>) -> Option<Set> {
        org.map(|l| {
            if unrestricted(l) {
                all()
            } else {
                l.iter().flat_map(|e| plain(e)).collect()
            }
        })
    }

    pub fn team_set(team: &[String], org: Option<&[String]>) -> Set {
        let os = org_set(org);
        let own: Set = if unrestricted(team) {
            all()
        } else {
            team.iter()
                .flat_map(|e| match e.as_str() {
                    "all-org-models" => os.clone().unwrap_or_default(),
                    x => plain(x),
                })
                .collect()
        };
        own.intersection(&os.unwrap_or_else(all)).copied().collect()
    }

    pub fn user_set(user: Option<&[String]>) -> Set {
        match user {
            None => all(),
            Some(l) if unrestricted(l) => all(),
            Some(l) => l.iter().flat_map(|e| plain(e)).collect(),
        }
    }

    /// What a key may call.
    pub fn key_set(
        key: &[String],
        team: Option<&[String]>,
        org: Option<&[String]>,
        user: Option<&[String]>,
    ) -> Set {
        let os = org_set(org);
        let ts = team.map(|t| team_set(t, org));
        let parent: Set = match &ts {
            Some(t) => t.clone(),
            None => user_set(user)
                .intersection(&os.clone().unwrap_or_else(all))
                .copied()
                .collect(),
        };
        let own: Set = if unrestricted(key) {
            all()
        } else {
            key.iter()
                .flat_map(|e| match e.as_str() {
                    "all-team-models" => ts.clone().unwrap_or_default(),
                    "all-org-models" => os.clone().unwrap_or_default(),
                    x => plain(x),
                })
                .collect()
        };
        own.intersection(&parent).copied().collect()
    }
}

fn list(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(proptest::sample::select(pool), 0..4).prop_map(|v| {
        let mut out: Vec<String> = Vec::new();
        for x in v {
            if !out.iter().any(|o| o == x) {
                out.push(x.to_string());
            }
        }
        out
    })
}

const ORG_POOL: &[&str] = &["A", "B", "C", "D", "grp-ab", "all-proxy-models", "Z"];
const TEAM_POOL: &[&str] = &[
    "A",
    "B",
    "C",
    "D",
    "grp-ab",
    "grp",
    "all-org-models",
    "all-proxy-models",
];
const KEY_POOL: &[&str] = &[
    "A",
    "B",
    "C",
    "D",
    "grp-ab",
    "all-team-models",
    "all-org-models",
    "all-proxy-models",
];
const USER_POOL: &[&str] = &["A", "B", "C", "grp", "all-proxy-models"];

#[derive(Debug, Clone)]
struct Case {
    org: Option<Vec<String>>,
    team: Option<Vec<String>>,
    key: Vec<String>,
    user: Option<Vec<String>>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::option::of(list(ORG_POOL)),
        proptest::option::of(list(TEAM_POOL)),
        list(KEY_POOL),
        proptest::option::of(list(USER_POOL)),
    )
        .prop_map(|(org, team, key, user)| Case {
            org,
            team,
            key,
            user,
        })
}

/// Stores a case under ids with `tag` through `exec` (one statement with its parameters, on
/// whichever store); returns the raw key.
fn store(exec: &dyn Fn(&str, &[Arg<'_>]), tag: &str, k: &Case) -> String {
    let t0 = "2026-01-01T00:00:00.000Z";
    let j = |l: &Vec<String>| serde_json::to_string(l).unwrap();
    let org_id = k.org.as_ref().map(|_| format!("org-{tag}"));
    if let (Some(id), Some(m)) = (&org_id, &k.org) {
        exec(
            "INSERT INTO organizations (id, alias, models, created_at, updated_at)
             VALUES (?1, ?1, ?2, ?3, ?3)",
            &[Some(id).into(), Some(&j(m)).into(), Some(t0).into()],
        );
    }
    let team_id = k.team.as_ref().map(|_| format!("team-{tag}"));
    if let (Some(id), Some(m)) = (&team_id, &k.team) {
        exec(
            "INSERT INTO teams (id, alias, organization_id, models, created_at, updated_at)
             VALUES (?1, ?1, ?2, ?3, ?4, ?4)",
            &[
                Some(id).into(),
                org_id.as_ref().into(),
                Some(&j(m)).into(),
                Some(t0).into(),
            ],
        );
    }
    let user_id = format!("user-{tag}");
    exec(
        "INSERT INTO users (id, user_role, models, created_at, updated_at)
         VALUES (?1, 'internal_user', ?2, ?3, ?3)",
        &[
            Some(&user_id).into(),
            Some(&j(&k.user.clone().unwrap_or_default())).into(),
            Some(t0).into(),
        ],
    );
    let raw = format!("sk-prop-{tag}-0123456789abcdef");
    // A key without a team carries the org itself (its own organization_id).
    let key_org = if team_id.is_none() {
        org_id.clone()
    } else {
        org_id
    };
    exec(
        "INSERT INTO api_keys (token, key_name, models, team_id, user_id, organization_id,
         created_at, updated_at) VALUES (?1, 'sk-...test', ?2, ?3, ?4, ?5, ?6, ?6)",
        &[
            Some(&litegate::auth::hash_key(&raw)).into(),
            Some(&j(&k.key)).into(),
            team_id.as_ref().into(),
            Some(&user_id).into(),
            key_org.as_ref().into(),
            Some(t0).into(),
        ],
    );
    raw
}

fn expected(k: &Case) -> Vec<String> {
    // The user level only counts for keys without a team (API.md §4).
    let user = if k.team.is_none() {
        Some(k.user.clone().unwrap_or_default())
    } else {
        None
    };
    let set = model::key_set(&k.key, k.team.as_deref(), k.org.as_deref(), user.as_deref());
    MODELS
        .iter()
        .filter(|m| set.contains(*m))
        .map(|m| m.to_string())
        .collect()
}

fn catalog() -> (tempfile::TempDir, litegate::access::Catalog) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.yaml");
    std::fs::write(&p, TEST_CONFIG).unwrap();
    let env = litegate::config::Env::from_vars([("TEST_MASTER_KEY", MASTER)]);
    let cfg = litegate::config::load_with_env(
        &litegate::config::Args {
            config: Some(p),
            ..Default::default()
        },
        &env,
    )
    .unwrap();
    (dir, litegate::access::Catalog::new(cfg.deployments))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// SQL-backed resolver == model, and key ⊆ team ⊆ org.
    #[test]
    fn sql_resolver_agrees_with_the_model(cases in proptest::collection::vec(case(), 1..8)) {
        let (_d, cat) = catalog();
        let mut c = rusqlite::Connection::open_in_memory().unwrap();
        litegate::db::migrate::migrate(&mut c).unwrap();
        let exec = |sql: &str, p: &[Arg<'_>]| {
            c.execute(sql, rusqlite::params_from_iter(p.iter())).unwrap();
        };
        for (i, k) in cases.iter().enumerate() {
            let raw = store(&exec, &i.to_string(), k);
            let row = litegate::db::key_check::load_key(&c, &litegate::auth::hash_key(&raw))
                .unwrap()
                .expect("key row");
            let chain = row.chain();
            let got = chain.effective(&cat);
            prop_assert_eq!(&got, &expected(k), "case {:?}", k);
            for m in MODELS {
                prop_assert_eq!(chain.allows(&cat, m), got.iter().any(|g| g == m));
            }
            // key ⊆ team ⊆ org, by the same resolver.
            if let Some(team) = &k.team {
                let team_chain = litegate::access::Chain {
                    key: None,
                    key_has_team: true,
                    team: Some(team),
                    org: k.org.as_deref(),
                    user: None,
                    ..Default::default()
                };
                let team_eff = team_chain.effective(&cat);
                prop_assert!(got.iter().all(|m| team_eff.contains(m)), "key ⊄ team: {:?}", k);
                if let Some(org) = &k.org {
                    let org_eff = litegate::access::Chain {
                        org: Some(org),
                        ..Default::default()
                    }
                    .effective(&cat);
                    prop_assert!(team_eff.iter().all(|m| org_eff.contains(m)), "team ⊄ org: {:?}", k);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Through the real server: `/v1/models` equals exactly what calls are allowed.
    #[test]
    fn v1_models_equals_allowed_calls(cases in proptest::collection::vec(case(), 4..8)) {
        let s = Server::start();
        let exec = |sql: &str, p: &[Arg<'_>]| run_sql(&s, sql, p);
        for (i, k) in cases.iter().enumerate() {
            let raw = store(&exec, &i.to_string(), k);
            let listed: Vec<String> = {
                let r = s.get("/v1/models", &raw);
                prop_assert_eq!(r.status, 200);
                r.json()["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["id"].as_str().unwrap().to_string())
                    .collect()
            };
            prop_assert_eq!(&listed, &expected(k), "case {:?}", k);
            for m in MODELS {
                let st = chat(&s, &raw, m).status;
                let allowed = listed.iter().any(|l| l == m);
                prop_assert_eq!(st == 200, allowed, "model {} status {} case {:?}", m, st, k);
                if !allowed {
                    prop_assert_eq!(st, 403);
                }
            }
        }
    }
}
