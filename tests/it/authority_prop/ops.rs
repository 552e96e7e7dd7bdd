//! Operations: what an actor may do, as proptest strategies.

use super::*;

// ---------------------------------------------------------------------------------------------
// Operations

#[derive(Debug, Clone)]
pub(super) enum Op {
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

pub(super) const GLOBAL_ROLES: [&str; 4] = [
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
];
pub(super) const ORG_ROLES: [&str; 3] = ["org_admin", "internal_user", "internal_user_viewer"];

pub(super) fn models() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(
        vec!["A", "B", "C", "D", "all-team-models", "all-proxy-models"],
        0..3,
    )
    .prop_map(|v| v.into_iter().map(String::from).collect())
}

pub(super) fn budget() -> impl Strategy<Value = Option<f64>> {
    proptest::option::of(prop_oneof![Just(0.5), Just(1000.0)])
}

/// Teams weighted toward those the actors have authority in (T1, T2: O1), so that more calls
/// get past the 404s and exercise the rules.
pub(super) fn team_ix() -> impl Strategy<Value = usize> + Clone {
    prop_oneof![3 => Just(0), 2 => Just(1), 1 => Just(2), 1 => Just(3), 1 => Just(4)]
}

pub(super) fn op() -> impl Strategy<Value = Op> {
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
pub(super) struct Step {
    pub(super) actor: usize,
    pub(super) via: usize,
    pub(super) op: Op,
}

pub(super) fn step() -> impl Strategy<Value = Step> {
    // The admins act more often: they have the authority that could be abused.
    let actor = prop_oneof![3 => Just(0), 3 => Just(1), 2 => Just(2), 1 => Just(3)];
    (actor, any::<usize>(), op()).prop_map(|(actor, via, op)| Step { actor, via, op })
}
