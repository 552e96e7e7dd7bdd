//! LiteLLM's rows → litegate's rows (`Out`), decided once, without I/O: organizations with
//! their budget rows, users, teams (with LiteLLM_ModelTable's aliases), the memberships
//! reconciled from their three copies, and the keys (`keys.rs`). Every row or value that is
//! not carried leaves a note naming it and why (README "Moving from LiteLLM" has the rules).

use super::rows::{
    get_bool, get_f64, get_i64, get_list, get_obj, get_str, get_ts, json_list, json_obj, Out, V,
};
use super::source::{Rec, Table};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The LiteLLM tables the import reads.
#[derive(Debug, Default)]
pub struct Src {
    pub budgets: Table,
    pub orgs: Table,
    pub org_members: Table,
    pub teams: Table,
    pub model_table: Table,
    pub team_members: Table,
    pub users: Table,
    pub keys: Table,
    pub end_users: Table,
    pub proxy_models: Table,
}

/// What to write, in foreign-key order, and the notes on what was not carried.
#[derive(Debug, Default)]
pub struct Plan {
    pub rows: Vec<Out>,
    pub notes: Vec<String>,
}

impl Plan {
    pub fn count(&self, table: &str) -> usize {
        self.rows.iter().filter(|r| r.table == table).count()
    }
    pub(super) fn note(&mut self, s: String) {
        self.notes.push(s);
    }
}

/// LiteLLM's default for a team whose `team_member_permissions` is NULL or empty
/// (`DEFAULT_TEAM_MEMBER_PERMISSIONS`, litellm/proxy/management_helpers/
/// team_member_permission_checks.py): members may read and health-check the team's keys.
pub const DEFAULT_MEMBER_PERMISSIONS: &[&str] = &["/key/info", "/key/health"];

/// The rank migrated limits get: set by a proxy admin (schema 0005's rule for rows older
/// than the rank columns): only a proxy admin lifts them, anyone may tighten them.
pub const IMPORTED_RANK: i64 = 3;

const GLOBAL_ROLES: &[&str] = &[
    "proxy_admin",
    "proxy_admin_viewer",
    "internal_user",
    "internal_user_viewer",
];
const ORG_ROLES: &[&str] = &["org_admin", "internal_user", "internal_user_viewer"];

pub(super) fn now() -> String {
    crate::util::now_iso()
}

pub(super) fn ts_or_now(r: &Rec, col: &str) -> V {
    V::Text(get_ts(r, col).unwrap_or_else(now))
}

/// A budget period litegate can run (`util::parse_duration`), else a note and none.
pub(super) fn duration(r: &Rec, what: &str, plan: &mut Plan) -> (V, V) {
    match get_str(r, "budget_duration") {
        None => (V::Null, V::Null),
        Some(d) if crate::util::parse_duration(&d).is_some() => {
            (V::Text(d), V::text(get_ts(r, "budget_reset_at")))
        }
        Some(d) => {
            plan.note(format!(
                "{what}: budget_duration '{d}' is not a period litegate runs (30s, 15m, 1h, 7d, \
                 2w, 1mo): not carried, the budget does not reset"
            ));
            (V::Null, V::Null)
        }
    }
}

pub fn plan(src: &Src) -> Plan {
    let mut p = Plan::default();
    let budgets: HashMap<String, &Rec> = src
        .budgets
        .rows
        .iter()
        .filter_map(|b| Some((get_str(b, "budget_id")?, b)))
        .collect();
    let mut holders: HashMap<String, usize> = HashMap::new();
    for r in src
        .orgs
        .rows
        .iter()
        .chain(&src.org_members.rows)
        .chain(&src.team_members.rows)
    {
        if let Some(b) = get_str(r, "budget_id") {
            *holders.entry(b).or_default() += 1;
        }
    }
    // End users share a budget row as LiteLLM's do (litegate's end users refer to budget rows
    // by id): together they count as one holder.
    let end_user_budgets: BTreeSet<String> = src
        .end_users
        .rows
        .iter()
        .filter_map(|r| get_str(r, "budget_id"))
        .collect();
    for b in &end_user_budgets {
        *holders.entry(b.clone()).or_default() += 1;
    }
    let mut emitted: BTreeSet<String> = BTreeSet::new();
    // A budget row of an organization or membership belongs to it (deleting the org deletes
    // its budget rows): a LiteLLM budget with several holders becomes one row per holder
    // (`<budget_id>~<holder>`); end users (`holder` None) keep LiteLLM's id, shared.
    let mut budget_for = |p: &mut Plan, bid: Option<String>, holder: Option<String>, what: &str| {
        let bid = bid?;
        let Some(b) = budgets.get(&bid) else {
            p.note(format!(
                "{what}: budget {bid} does not exist in LiteLLM: no budget"
            ));
            return None;
        };
        let id = match holder {
            Some(h) if holders.get(&bid).copied().unwrap_or(0) > 1 => format!("{bid}~{h}"),
            _ => bid.clone(),
        };
        if !emitted.insert(id.clone()) {
            return Some(id);
        }
        let (dur, reset) = duration(b, &format!("budget {bid}"), p);
        let mmb = get_obj(b, "model_max_budget");
        p.rows.push(
            Out::new("budgets", &["id"])
                .set("id", V::Text(id.clone()))
                .set("max_budget", V::real(get_f64(b, "max_budget")))
                .set("soft_budget", V::real(get_f64(b, "soft_budget")))
                .set("tpm_limit", V::int(get_i64(b, "tpm_limit")))
                .set("rpm_limit", V::int(get_i64(b, "rpm_limit")))
                .set(
                    "max_parallel_requests",
                    V::int(get_i64(b, "max_parallel_requests")),
                )
                .set("budget_duration", dur)
                .set("budget_reset_at", reset)
                .set(
                    "model_max_budget",
                    if mmb.is_empty() {
                        V::Null
                    } else {
                        json_obj(mmb)
                    },
                )
                .set("created_at", ts_or_now(b, "created_at"))
                .set("updated_at", ts_or_now(b, "updated_at"))
                .set("created_by", V::text(get_str(b, "created_by")))
                .set("updated_by", V::text(get_str(b, "updated_by"))),
        );
        Some(id)
    };

    // Organizations.
    let mut org_ids = BTreeSet::new();
    for o in &src.orgs.rows {
        let Some(id) = get_str(o, "organization_id") else {
            continue;
        };
        let budget = budget_for(
            &mut p,
            get_str(o, "budget_id"),
            Some(format!("org:{id}")),
            &format!("organization {id}"),
        );
        org_ids.insert(id.clone());
        p.rows.push(
            Out::new("organizations", &["id"])
                .set("id", V::Text(id.clone()))
                .set(
                    "alias",
                    V::Text(get_str(o, "organization_alias").unwrap_or(id)),
                )
                .set("models", json_list(&get_list(o, "models")))
                .set("spend", V::Real(get_f64(o, "spend").unwrap_or(0.0)))
                .set("budget_id", V::text(budget))
                .set("metadata", json_obj(get_obj(o, "metadata")))
                .set("created_at", ts_or_now(o, "created_at"))
                .set("updated_at", ts_or_now(o, "updated_at"))
                .set("created_by", V::text(get_str(o, "created_by")))
                .set("updated_by", V::text(get_str(o, "updated_by"))),
        );
    }

    // Users.
    let mut user_ids = BTreeSet::new();
    let mut emails: BTreeMap<String, String> = BTreeMap::new();
    for u in &src.users.rows {
        let Some(id) = get_str(u, "user_id") else {
            continue;
        };
        user_ids.insert(id.clone());
        let role = match get_str(u, "user_role") {
            Some(r) if GLOBAL_ROLES.contains(&r.as_str()) => r,
            other => {
                p.note(format!(
                    "user {id}: role {} is not a litegate global role: imported as \
                     internal_user_viewer (the least)",
                    other.as_deref().unwrap_or("NULL")
                ));
                "internal_user_viewer".into()
            }
        };
        let email = match get_str(u, "user_email") {
            Some(e) => match emails.get(&e.to_lowercase()) {
                Some(first) => {
                    p.note(format!(
                        "user {id}: e-mail {e} is also user {first}'s (litegate's e-mails are \
                         unique): imported without an e-mail"
                    ));
                    None
                }
                None => {
                    emails.insert(e.to_lowercase(), id.clone());
                    Some(e)
                }
            },
            None => None,
        };
        let mut meta = get_obj(u, "metadata");
        if let Some(a) = get_str(u, "user_alias") {
            meta.insert("user_alias".into(), Value::String(a));
        }
        let (dur, reset) = duration(u, &format!("user {id}"), &mut p);
        let mut out = Out::new("users", &["id"])
            .set("id", V::Text(id.clone()))
            .set("email", V::text(email))
            .set("user_role", V::Text(role))
            .set("models", json_list(&get_list(u, "models")))
            .set("spend", V::Real(get_f64(u, "spend").unwrap_or(0.0)))
            .set("max_budget", V::real(get_f64(u, "max_budget")))
            .set("budget_duration", dur)
            .set("budget_reset_at", reset)
            .set("tpm_limit", V::int(get_i64(u, "tpm_limit")))
            .set("rpm_limit", V::int(get_i64(u, "rpm_limit")))
            .set(
                "max_parallel_requests",
                V::int(get_i64(u, "max_parallel_requests")),
            )
            .set("metadata", json_obj(meta))
            .set("created_at", ts_or_now(u, "created_at"))
            .set("updated_at", ts_or_now(u, "updated_at"));
        out.insert_only = &["created_at"];
        p.rows.push(out);
    }

    // Organization memberships (the only record of org admins).
    for m in &src.org_members.rows {
        let (Some(uid), Some(oid)) = (get_str(m, "user_id"), get_str(m, "organization_id")) else {
            continue;
        };
        if !org_ids.contains(&oid) || !user_ids.contains(&uid) {
            p.note(format!(
                "organization membership {uid} in {oid}: the {} does not exist in LiteLLM: not \
                 imported",
                if org_ids.contains(&oid) {
                    "user"
                } else {
                    "organization"
                }
            ));
            continue;
        }
        let role = match get_str(m, "user_role") {
            Some(r) if ORG_ROLES.contains(&r.as_str()) => r,
            other => {
                p.note(format!(
                    "organization membership {uid} in {oid}: role {} imported as \
                     internal_user_viewer",
                    other.as_deref().unwrap_or("NULL")
                ));
                "internal_user_viewer".into()
            }
        };
        let what = format!("organization membership {uid} in {oid}");
        let budget = budget_for(
            &mut p,
            get_str(m, "budget_id"),
            Some(format!("org:{oid}:{uid}")),
            &what,
        );
        p.rows.push(
            Out::new("organization_members", &["organization_id", "user_id"])
                .set("organization_id", V::Text(oid))
                .set("user_id", V::Text(uid))
                .set("user_role", V::Text(role))
                .set("spend", V::Real(get_f64(m, "spend").unwrap_or(0.0)))
                .set(
                    "budget_rank",
                    V::Int(if budget.is_some() { IMPORTED_RANK } else { 0 }),
                )
                .set("budget_id", V::text(budget))
                .set("created_at", ts_or_now(m, "created_at"))
                .set("updated_at", ts_or_now(m, "updated_at")),
        );
    }

    // Teams.
    let aliases: HashMap<i64, serde_json::Map<String, Value>> = src
        .model_table
        .rows
        .iter()
        .filter_map(|m| Some((get_i64(m, "id")?, get_obj(m, "aliases"))))
        .collect();
    let mut team_ids = BTreeSet::new();
    let mut team_member_rows: Vec<Out> = Vec::new();
    let by_team_user: BTreeMap<(String, String), &Rec> = src
        .team_members
        .rows
        .iter()
        .filter_map(|m| Some(((get_str(m, "team_id")?, get_str(m, "user_id")?), m)))
        .collect();
    for t in &src.teams.rows {
        let Some(id) = get_str(t, "team_id") else {
            continue;
        };
        team_ids.insert(id.clone());
        let org = get_str(t, "organization_id");
        let org = match org {
            Some(o) if !org_ids.contains(&o) => {
                p.note(format!(
                    "team {id}: its organization {o} does not exist in LiteLLM: imported \
                     without an organization"
                ));
                None
            }
            o => o,
        };
        let models = get_list(t, "models");
        let (dur, reset) = duration(t, &format!("team {id}"), &mut p);
        let mut perms = get_list(t, "team_member_permissions");
        if perms.is_empty() {
            perms = DEFAULT_MEMBER_PERMISSIONS
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        let model_aliases = get_i64(t, "model_id")
            .and_then(|m| aliases.get(&m).cloned())
            .unwrap_or_default();
        let blocked = get_bool(t, "blocked");
        let out = Out::new("teams", &["id"])
            .set("id", V::Text(id.clone()))
            .set("alias", V::text(get_str(t, "team_alias")))
            .set("organization_id", V::text(org))
            .set("models", json_list(&models))
            .set("spend", V::Real(get_f64(t, "spend").unwrap_or(0.0)))
            .set("max_budget", V::real(get_f64(t, "max_budget")))
            .set("soft_budget", V::real(get_f64(t, "soft_budget")))
            .set("budget_duration", dur)
            .set("budget_reset_at", reset)
            .set("tpm_limit", V::int(get_i64(t, "tpm_limit")))
            .set("rpm_limit", V::int(get_i64(t, "rpm_limit")))
            .set(
                "max_parallel_requests",
                V::int(get_i64(t, "max_parallel_requests")),
            )
            .set("blocked", V::Int(blocked as i64))
            .set("metadata", json_obj(get_obj(t, "metadata")))
            .set("model_aliases", json_obj(model_aliases))
            .set("member_permissions", json_list(&perms))
            .set(
                "blocked_rank",
                V::Int(if blocked { IMPORTED_RANK } else { 0 }),
            )
            .set("created_at", ts_or_now(t, "created_at"))
            .set("updated_at", ts_or_now(t, "updated_at"));
        let limited = !models.is_empty()
            || [
                "max_budget",
                "budget_duration",
                "tpm_limit",
                "rpm_limit",
                "max_parallel_requests",
            ]
            .iter()
            .any(|c| out.get(c).is_some_and(|v| *v != V::Null));
        let out = out.set(
            "limits_rank",
            V::Int(if limited { IMPORTED_RANK } else { 0 }),
        );
        p.rows.push(out);
        team_member_rows.extend(members_of(
            t,
            &id,
            src,
            &user_ids,
            &emails,
            &by_team_user,
            &mut p,
            &mut budget_for,
        ));
    }
    p.rows.extend(team_member_rows);
    for m in &src.team_members.rows {
        if let (Some(tid), Some(uid)) = (get_str(m, "team_id"), get_str(m, "user_id")) {
            if !team_ids.contains(&tid) {
                p.note(format!(
                    "team membership {uid} in {tid}: the team does not exist in LiteLLM: not \
                     imported"
                ));
            }
        }
    }
    // End users (LiteLLM's customers): the budget row they name, shared.
    for e in &src.end_users.rows {
        let Some(id) = get_str(e, "user_id") else {
            continue;
        };
        let what = format!("end user {id}");
        let budget = budget_for(&mut p, get_str(e, "budget_id"), None, &what);
        let now = V::Text(now());
        p.rows.push(
            Out::new("end_users", &["id"])
                .set("id", V::Text(id))
                .set("alias", V::text(get_str(e, "alias")))
                .set("spend", V::Real(get_f64(e, "spend").unwrap_or(0.0)))
                .set(
                    "allowed_model_region",
                    V::text(get_str(e, "allowed_model_region")),
                )
                .set("default_model", V::text(get_str(e, "default_model")))
                .set("budget_id", V::text(budget))
                .set("blocked", V::Int(get_bool(e, "blocked") as i64))
                .set("created_at", now.clone())
                .set("updated_at", now),
        );
    }
    super::keys::plan_keys(src, &mut p, &team_ids, &user_ids, &org_ids);
    p
}

type BudgetFor<'a> =
    dyn FnMut(&mut Plan, Option<String>, Option<String>, &str) -> Option<String> + 'a;

/// A team's members, reconciled from LiteLLM's copies: `TeamMembership` rows (spend, budget),
/// `members_with_roles` (roles; an entry may name only an e-mail), legacy `admins[]` /
/// `members[]`, and the users' `teams[]`. Admin when any copy says admin.
#[allow(clippy::too_many_arguments)]
fn members_of(
    t: &Rec,
    team: &str,
    src: &Src,
    user_ids: &BTreeSet<String>,
    emails: &BTreeMap<String, String>,
    by_team_user: &BTreeMap<(String, String), &Rec>,
    p: &mut Plan,
    budget_for: &mut BudgetFor<'_>,
) -> Vec<Out> {
    let mut roles: BTreeMap<String, bool> = BTreeMap::new();
    let mut add = |p: &mut Plan, uid: Option<String>, email: Option<String>, admin: bool| {
        let uid = uid.or_else(|| emails.get(&email.as_ref()?.to_lowercase()).cloned());
        match uid {
            Some(u) if user_ids.contains(&u) => {
                let e = roles.entry(u).or_insert(false);
                *e = *e || admin;
            }
            Some(u) => p.note(format!(
                "team {team}: member {u} does not exist in LiteLLM's users: not imported"
            )),
            None => p.note(format!(
                "team {team}: a member with e-mail {} and no user: not imported",
                email.unwrap_or_default()
            )),
        }
    };
    if let Some(Value::Array(list)) = t.get("members_with_roles") {
        for m in list {
            let s = |k: &str| {
                m.get(k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            add(
                p,
                s("user_id"),
                s("user_email"),
                s("role").as_deref() == Some("admin"),
            );
        }
    }
    for a in get_list(t, "admins") {
        add(p, Some(a), None, true);
    }
    for m in get_list(t, "members") {
        add(p, Some(m), None, false);
    }
    for (_, uid) in by_team_user.keys().filter(|(tid, _)| tid == team) {
        add(p, Some(uid.clone()), None, false);
    }
    for u in &src.users.rows {
        if get_list(u, "teams").iter().any(|x| x == team) {
            add(p, get_str(u, "user_id"), None, false);
        }
    }
    let mut out = Vec::new();
    for (uid, admin) in roles {
        let m = by_team_user.get(&(team.to_string(), uid.clone()));
        let what = format!("team membership {uid} in {team}");
        let budget = m.and_then(|m| {
            budget_for(
                p,
                get_str(m, "budget_id"),
                Some(format!("team:{team}:{uid}")),
                &what,
            )
        });
        let now = V::Text(now());
        out.push(
            Out::new("team_members", &["team_id", "user_id"])
                .set("team_id", V::Text(team.to_string()))
                .set("user_id", V::Text(uid))
                .set("role", V::Text(if admin { "admin" } else { "user" }.into()))
                .set(
                    "spend",
                    V::Real(m.and_then(|m| get_f64(m, "spend")).unwrap_or(0.0)),
                )
                .set(
                    "budget_rank",
                    V::Int(if budget.is_some() { IMPORTED_RANK } else { 0 }),
                )
                .set("budget_id", V::text(budget))
                .set("created_at", now.clone())
                .set("updated_at", now),
        );
    }
    out
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;
