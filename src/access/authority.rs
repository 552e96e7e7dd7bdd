//! Authority never grows (issue 11; API.md §5, §9). Owns the rules that keep every credential
//! and every change within the authority of the caller who makes it:
//!
//! - **Reach of a key** (`reach_calls_only`, `admit`, `may_issue_for`): a key issued or
//!   regenerated for its owner by the owner or by a proxy admin acts as its owner. One issued
//!   by anyone else (a team or org admin, who sees the raw key) is *calls-only*: THE key check
//!   gives it at most an internal user's role (`Role::below_proxy`), and `admit` lets it reach
//!   model calls, the model lists and `/key/info` of itself — every other route answers 403.
//!   So it never acts with its owner's global role nor with the owner's other memberships,
//!   whatever the owner is now or becomes later. A key for a user who holds a global admin role
//!   is issued by proxy admins only.
//!   Its issuer still holds the raw key, so it goes when the issuer loses the team or org
//!   admin role it was issued under, or is deleted (`revoke_issued_in_team`, schema 0005
//!   `issued_by`).
//! - **Ranks** (`Rank`): member/owner < team admin < org admin < proxy admin, judged on the
//!   target team. Blocks, limits (models, budgets, rate limits, expiry) and membership budgets
//!   record the rank that set them (schema 0005); a lower rank may only tighten them
//!   (`loosened_key`, `loosened_team`, `looser`), never unblock, loosen or remove them.
//!
//! - **Team member permissions** (`member_permission`): a team that set LiteLLM's
//!   `team_member_permissions` decides which key routes its plain members may use on its keys.
//!
//! Handlers in `keys`, `teams` and `organizations` call these; `policy` keeps the plain role
//! and membership questions, `grant` the rules for which model lists may be stored at all.

use super::catalog::{Catalog, ALL_ORG_MODELS, ALL_TEAM_MODELS};
use super::chain::{self, Chain};
use super::policy;
use crate::auth::{Caller, ORG_ADMIN};
use crate::db;
use crate::db::handle::Handle;
use crate::error::{Error, Result};
use crate::util;

/// Who acts on a team's things, lowest first. Stored as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    Member = 0,
    TeamAdmin = 1,
    OrgAdmin = 2,
    ProxyAdmin = 3,
}

impl Rank {
    pub fn n(self) -> i64 {
        self as i64
    }
    pub fn name(n: i64) -> &'static str {
        match n {
            i64::MIN..=0 => "the member",
            1 => "a team admin",
            2 => "an org admin",
            _ => "a proxy admin",
        }
    }
}

/// The caller's rank on a team (`None`: a key or thing without a team, where only proxy admins
/// rank above the owner).
pub fn team_rank<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    team: Option<&db::teams::TeamRow>,
) -> Result<Rank> {
    if who.is_proxy_admin() {
        return Ok(Rank::ProxyAdmin);
    }
    let Some(t) = team else {
        return Ok(Rank::Member);
    };
    if let Some(org) = &t.organization_id {
        if policy::is_org_admin(c, who, org)? {
            return Ok(Rank::OrgAdmin);
        }
    }
    if policy::is_team_admin(c, who, t)? {
        return Ok(Rank::TeamAdmin);
    }
    Ok(Rank::Member)
}

/// The caller's rank over a key: on its team, or (no team) proxy admin above the owner.
pub fn key_rank<C: Handle + ?Sized>(c: &C, who: &Caller, k: &db::keys::NewKey) -> Result<Rank> {
    let team = match &k.team_id {
        Some(t) => db::teams::get(c, t)?,
        None => None,
    };
    team_rank(c, who, team.as_ref())
}

/// The caller's rank in an organization (its memberships and their budgets).
pub fn org_rank<C: Handle + ?Sized>(c: &C, who: &Caller, org_id: &str) -> Result<Rank> {
    if who.is_proxy_admin() {
        return Ok(Rank::ProxyAdmin);
    }
    if policy::is_org_admin(c, who, org_id)? {
        return Ok(Rank::OrgAdmin);
    }
    Ok(Rank::Member)
}

// ---------------------------------------------------------------------------------------------
// Reach of keys

/// Routes a calls-only key may use: model calls (`Handler::ModelCall` routes, never gated
/// here), the model lists (they show the key's own chain) and `/key/info` of itself
/// (`policy::can_see_key`).
const CALLS_ONLY_ROUTES: &[&str] = &[
    "/v1/models",
    "/models",
    "/model/info",
    "/v1/model/info",
    "/v2/model/info",
    "/model_group/info",
    "/key/info",
    "/key/health",
    // Explains its own calls (`policy::can_explain_key`: itself only).
    "/access/explain",
];

/// The gate of every management route (`http::dispatch`): a calls-only key gets 403 on any
/// route outside `CALLS_ONLY_ROUTES`. Deny by default, so a route added later is covered.
pub fn admit(who: &Caller, route: &str) -> Result<()> {
    if !who.is_calls_only() || CALLS_ONLY_ROUTES.contains(&route) {
        return Ok(());
    }
    Err(Error::Forbidden(
        "This key was issued for its owner by someone else, so it may only make model calls \
         and read itself (/key/info, /v1/models). Its owner can generate a key of their own \
         for management."
            .into(),
    ))
}

/// Is a key issued (or regenerated) by `who` for `owner` calls-only? It acts as its owner only
/// when the owner issued it or a proxy admin did.
pub fn reach_calls_only(who: &Caller, owner: Option<&str>) -> bool {
    if who.is_calls_only() {
        return true;
    }
    if who.is_proxy_admin() {
        return false;
    }
    !(owner.is_some() && owner == who.user_id.as_deref())
}

/// Below proxy admin, nobody issues or regenerates a key for another user who holds a global
/// admin role (API.md §9): even calls-only, it would spend as that user.
pub fn may_issue_for<C: Handle + ?Sized>(c: &C, who: &Caller, owner: Option<&str>) -> Result<()> {
    if who.is_proxy_admin() {
        return Ok(());
    }
    let Some(o) = owner else { return Ok(()) };
    if Some(o) == who.user_id.as_deref() {
        return Ok(());
    }
    match db::users::get(c, o)? {
        Some(u) if matches!(u.user_role.as_str(), "proxy_admin" | "proxy_admin_viewer") => {
            Err(Error::Forbidden(format!(
                "only a proxy admin may issue a key for user {o}, who holds the global role {}",
                u.user_role
            )))
        }
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Team member permissions (LiteLLM's `team_member_permissions`; README "LiteLLM compatibility")

/// Every route LiteLLM accepts in `team_member_permissions` (its
/// `LiteLLMRoutes.key_management_routes`): a team may store any of them (an imported team keeps
/// its list); litegate enforces those of `MEMBER_ENFORCED_ROUTES`.
pub const MEMBER_PERMISSION_ROUTES: &[&str] = &[
    "/key/generate",
    "/key/update",
    "/key/delete",
    "/key/info",
    "/key/regenerate",
    "/key/service-account/generate",
    "/key/{key_id}/regenerate",
    "/key/list",
    "/key/block",
    "/key/unblock",
    "/key/bulk_update",
    "/team/key/bulk_update",
    "/team/daily/activity",
    "/team/daily/activity/aggregated",
    "/team/daily/activity/aggregated/keys",
    "/team/daily/activity/aggregated/search",
    "/team/daily/activity/aggregated/model_top_keys",
    "/team/daily/activity/export",
    "/spend/logs",
    "/spend/logs/v2",
    "/key/{key_id}/reset_spend",
    "/key/aliases",
    "/key/access_group_assignment",
    "/auto_router/manage",
    "/key/health",
];

/// The routes whose use on a team's keys a team's list decides, for its plain members.
pub const MEMBER_ENFORCED_ROUTES: &[&str] = &[
    "/key/generate",
    "/key/update",
    "/key/delete",
    "/key/regenerate",
    "/key/block",
    "/key/unblock",
];

/// What LiteLLM shows for a team that never set a list (`permissions_list`'s default).
pub const MEMBER_DEFAULT_ROUTES: &[&str] = &["/key/info", "/key/health"];

/// The one check of `team_member_permissions`, for a key-management `route` (one of
/// `MEMBER_ENFORCED_ROUTES`) on a key of `team_id`. Only a plain member (role `user`, ranking
/// no higher on the team) of a team that has set a list is judged here, as LiteLLM does:
/// `Ok(true)` = the route is listed, so the member may use it on **any** key of the team (still
/// within a member's rank: never loosening what an admin set); `Err(403)` = not listed, even
/// for their own key. `Ok(false)` = not judged here (no team, no list, an admin, a viewer,
/// a calls-only key, a non-member): the rules of `policy` decide as before.
pub fn member_permission<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    team_id: Option<&str>,
    route: &str,
) -> Result<bool> {
    let Some(team_id) = team_id else {
        return Ok(false);
    };
    if who.is_proxy_admin() || who.role.is_viewer() || who.is_calls_only() {
        return Ok(false);
    }
    let Some(team) = db::teams::get(c, team_id)? else {
        return Ok(false);
    };
    let Some(perms) = &team.member_permissions else {
        return Ok(false);
    };
    if policy::team_role(c, who, team_id)?.is_none()
        || team_rank(c, who, Some(&team))? != Rank::Member
    {
        return Ok(false);
    }
    // LiteLLM lists regeneration under two names (its body and path forms); either grants both.
    let listed = |r: &str| perms.iter().any(|p| p == r);
    let granted =
        listed(route) || (route == "/key/regenerate" && listed("/key/{key_id}/regenerate"));
    if granted {
        return Ok(true);
    }
    Err(Error::Forbidden(format!(
        "Team member does not have permissions for endpoint: {route}. You only have access to \
         the following endpoints: {perms:?} for team {team_id}. Ask a team admin to add it to \
         the team's team_member_permissions."
    )))
}

/// A `team_member_permissions` list as given: every entry one of LiteLLM's routes
/// (`MEMBER_PERMISSION_ROUTES`), duplicates dropped, order kept.
pub fn check_member_permissions(list: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in list {
        if !MEMBER_PERMISSION_ROUTES.contains(&p.as_str()) {
            return Err(Error::bad_param(
                "team_member_permissions",
                format!(
                    "unknown route {p:?} in team_member_permissions; allowed: \
                     {MEMBER_PERMISSION_ROUTES:?}"
                ),
            ));
        }
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Tightening

pub use crate::hierarchy::looser;

/// An expiry (ISO text, `None` = never) moved later.
fn later(old: Option<&str>, new: Option<&str>) -> bool {
    let ms = |s: Option<&str>| s.map(|s| util::ms_from_iso(s).unwrap_or(i64::MIN));
    looser(ms(old), ms(new))
}

/// Does the model list `new` reach beyond `old`? `place` puts a list where it sits in its
/// chain. An open-ended entry (unrestricted list, `all-team-models`, `all-org-models`) follows
/// its parent later, so it is looser unless `old` had it too; otherwise the resolved sets are
/// compared.
pub fn models_looser<'a>(
    cat: &Catalog,
    place: impl Fn(&'a [String]) -> Chain<'a>,
    old: &'a [String],
    new: &'a [String],
) -> bool {
    if chain::unrestricted(new) && !chain::unrestricted(old) {
        return true;
    }
    for special in [ALL_TEAM_MODELS, ALL_ORG_MODELS] {
        let has = |l: &[String]| l.iter().any(|m| m == special);
        if has(new) && !has(old) {
            return true;
        }
    }
    let before = place(old).effective(cat);
    place(new)
        .effective(cat)
        .iter()
        .any(|m| !before.contains(m))
}

/// The first limit of a key that `new` loosens compared with `old` (blocked, expiry, budget,
/// budget period, rate limits, models), if any. `soft_budget` only alerts: not a limit.
pub fn loosened_key(
    cat: &Catalog,
    parent: &Chain<'_>,
    old: &db::keys::NewKey,
    new: &db::keys::NewKey,
) -> Option<&'static str> {
    if old.blocked && !new.blocked {
        return Some("blocked");
    }
    if later(old.expires.as_deref(), new.expires.as_deref()) {
        return Some("duration");
    }
    if let Some(f) = old.allowance.loosened_by(&new.allowance) {
        return Some(f);
    }
    let place = |m| Chain {
        key: Some(m),
        ..*parent
    };
    if models_looser(cat, place, &old.models, &new.models) {
        return Some("models");
    }
    None
}

/// Does the key carry any limit (so its setter's rank matters)?
pub fn key_has_limits(k: &db::keys::NewKey) -> bool {
    k.blocked || k.expires.is_some() || k.allowance.limits_anything() || !k.models.is_empty()
}

/// Did a change touch any limit of the key?
pub fn key_limits_changed(old: &db::keys::NewKey, new: &db::keys::NewKey) -> bool {
    old.blocked != new.blocked
        || old.expires != new.expires
        || old.allowance.limits_differ(&new.allowance)
        || old.models != new.models
}

/// The rank a key's limits carry after a change by `rank` (`stored` before): the setter's
/// rank when it may set them, else the higher one stays (a lower rank only tightened).
pub fn next_rank(stored: i64, rank: Rank, changed: bool) -> i64 {
    if changed {
        stored.max(rank.n())
    } else {
        stored
    }
}

/// 403 for a lower rank loosening `field` that `stored_rank` set.
pub fn loosen_denied(field: &str, what: &str, stored_rank: i64) -> Error {
    Error::Forbidden(format!(
        "`{field}` of {what} was set by {}; a lower rank may only tighten it",
        Rank::name(stored_rank)
    ))
}

/// The first limit of a team that `new` loosens (models, budget, budget period, rate limits).
pub fn loosened_team(
    cat: &Catalog,
    org_models: Option<&[String]>,
    old: &db::teams::TeamFields,
    new: &db::teams::TeamFields,
) -> Option<&'static str> {
    if let Some(f) = old.allowance.loosened_by(&new.allowance) {
        return Some(f);
    }
    let place = |m| Chain {
        key_has_team: true,
        team: Some(m),
        org: org_models,
        ..Chain::default()
    };
    if models_looser(cat, place, &old.models, &new.models) {
        return Some("models");
    }
    None
}

/// Does the team carry any limit?
pub fn team_has_limits(f: &db::teams::TeamFields) -> bool {
    !f.models.is_empty() || f.allowance.limits_anything()
}

/// Did a change touch any limit of the team?
pub fn team_limits_changed(old: &db::teams::TeamFields, new: &db::teams::TeamFields) -> bool {
    old.models != new.models || old.allowance.limits_differ(&new.allowance)
}

/// A caller below the rank that blocked the team may not unblock it; below the rank that set
/// its models, budgets and limits, may only tighten them.
pub fn check_team_change<C: Handle + ?Sized>(
    cat: &Catalog,
    c: &C,
    rank: Rank,
    t: &db::teams::TeamRow,
    before: &db::teams::TeamFields,
    after: &db::teams::TeamFields,
) -> Result<()> {
    let (blocked_rank, limits_rank) = db::authority::team_ranks(c, &t.id)?;
    let what = format!("team {}", t.id);
    if before.blocked && !after.blocked && rank.n() < blocked_rank {
        return Err(Error::Forbidden(format!(
            "Team {} was blocked by {}; only that rank or above can unblock it",
            t.id,
            Rank::name(blocked_rank)
        )));
    }
    if rank.n() < limits_rank && team_limits_changed(before, after) {
        let org_models = match &after.organization_id {
            Some(o) => db::orgs::get(c, o)?.map(|org| org.models),
            None => None,
        };
        if let Some(field) = loosened_team(cat, org_models.as_deref(), before, after) {
            return Err(loosen_denied(field, &what, limits_rank));
        }
    }
    Ok(())
}

/// Records the rank of who blocked the team and who set its limits after a change.
pub fn stamp_team<C: Handle + ?Sized>(
    c: &C,
    rank: Rank,
    t: &db::teams::TeamRow,
    before: &db::teams::TeamFields,
    after: &db::teams::TeamFields,
) -> Result<()> {
    let (blocked_rank, limits_rank) = db::authority::team_ranks(c, &t.id)?;
    let blocked_rank = match (before.blocked, after.blocked) {
        (_, false) => 0,
        (false, true) => rank.n(),
        (true, true) => blocked_rank,
    };
    let changed = team_limits_changed(before, after);
    let limits_rank = next_rank(limits_rank, rank, changed);
    db::authority::set_team_ranks(c, &t.id, blocked_rank, limits_rank)?;
    Ok(())
}

/// A membership budget (`max_budget_in_team`, `max_budget_in_organization`) set by
/// `stored` rank: a lower rank may only lower it.
pub fn check_member_budget(
    rank: Rank,
    stored: i64,
    old: Option<f64>,
    new: Option<f64>,
    field: &str,
    what: &str,
) -> Result<()> {
    if new.is_some() && rank.n() < stored && looser(old, new) {
        return Err(loosen_denied(field, what, stored));
    }
    Ok(())
}

/// Removing a member and adding them again would drop a budget a higher rank set: only that
/// rank or above removes a member with such a budget.
pub fn check_member_removal(rank: Rank, stored: i64, has_budget: bool, what: &str) -> Result<()> {
    if has_budget && rank.n() < stored {
        return Err(Error::Forbidden(format!(
            "The budget of {what} was set by {}; only that rank or above can remove the member",
            Rank::name(stored)
        )));
    }
    Ok(())
}

/// `uid` is no longer an admin of team `t` (removed, or demoted to `user`): the calls-only keys
/// they issued there for others go, since they still hold the raw keys — unless they keep
/// authority over the team as an admin of its organization.
pub fn revoke_issued_in_team<C: Handle + ?Sized>(
    c: &C,
    t: &db::teams::TeamRow,
    uid: &str,
) -> Result<()> {
    if let Some(org) = &t.organization_id {
        if db::orgs::member_role(c, org, uid)?.as_deref() == Some(ORG_ADMIN) {
            return Ok(());
        }
    }
    db::authority::delete_issued_in_team(c, &t.id, uid)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looser_treats_none_as_no_limit() {
        assert!(!looser::<f64>(None, None));
        assert!(!looser(None, Some(5.0)));
        assert!(looser(Some(5.0), None));
        assert!(looser(Some(5.0), Some(6.0)));
        assert!(!looser(Some(5.0), Some(5.0)));
        assert!(!looser(Some(5.0), Some(4.0)));
    }

    #[test]
    fn expiry_later_is_looser() {
        let a = "2030-01-01T00:00:00.000Z";
        let b = "2031-01-01T00:00:00.000Z";
        assert!(later(Some(a), Some(b)));
        assert!(!later(Some(b), Some(a)));
        assert!(later(Some(a), None));
        assert!(!later(None, Some(a)));
    }

    #[test]
    fn rank_order() {
        assert!(Rank::Member < Rank::TeamAdmin);
        assert!(Rank::TeamAdmin < Rank::OrgAdmin);
        assert!(Rank::OrgAdmin < Rank::ProxyAdmin);
        assert_eq!(next_rank(3, Rank::TeamAdmin, true), 3);
        assert_eq!(next_rank(0, Rank::TeamAdmin, true), 1);
        assert_eq!(next_rank(2, Rank::ProxyAdmin, false), 2);
    }
}
