//! Who may read or change which stored resource (API.md §5, §8): one place for the role and
//! membership questions every handler asks — writers and proxy admins, org and team admins,
//! who may read an organization, a team, a key or a user, and who may manage a key. Judged on
//! the target as stored, never on ids the caller supplies; handlers call these inside their
//! transaction and turn a "no" into 404 (invisible) or 403 (visible, not changeable).
//!
//! Not here: whether a change loosens what a higher rank set (`authority`), which model lists
//! may be stored (`grant`), what a model call may reach (`chain`).

use crate::auth::{Caller, Role, ORG_ADMIN, TEAM_ADMIN};
use crate::db;
use crate::db::handle::Handle;
use crate::error::{Error, Result};

// ---------------------------------------------------------------------------------------------
// Roles

/// Viewers (and keys without a user) never write.
pub fn require_writer(who: &Caller) -> Result<()> {
    if who.role.is_viewer() {
        return Err(Error::Forbidden(format!(
            "user role {} may not make changes",
            who.role.as_str()
        )));
    }
    Ok(())
}

pub fn require_proxy_admin(who: &Caller) -> Result<()> {
    if who.role != Role::ProxyAdmin {
        return Err(Error::Forbidden(
            "Only proxy admins can perform this action".into(),
        ));
    }
    Ok(())
}

/// Budgets (`/budget/*`) are read by proxy admins and proxy admin viewers only.
pub fn require_budget_reader(who: &Caller) -> Result<()> {
    if who.role.reads_all() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "Only proxy admins and proxy admin viewers can read budgets".into(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Organizations and teams

/// The caller's role in an organization, if a member (`org_admin`, `internal_user`, ...).
/// A calls-only key (`authority`) holds none of its owner's memberships.
pub fn org_role<C: Handle + ?Sized>(c: &C, who: &Caller, org_id: &str) -> Result<Option<String>> {
    if who.is_calls_only() {
        return Ok(None);
    }
    match &who.user_id {
        Some(u) => Ok(db::orgs::member_role(c, org_id, u)?),
        None => Ok(None),
    }
}

/// Proxy admin, or org_admin of this organization.
pub fn is_org_admin<C: Handle + ?Sized>(c: &C, who: &Caller, org_id: &str) -> Result<bool> {
    if who.role == Role::ProxyAdmin {
        return Ok(true);
    }
    if who.role.is_viewer() {
        return Ok(false);
    }
    Ok(org_role(c, who, org_id)?.as_deref() == Some(ORG_ADMIN))
}

/// May read the organization: admins and viewers of the proxy, or any member.
pub fn can_read_org<C: Handle + ?Sized>(c: &C, who: &Caller, org_id: &str) -> Result<bool> {
    if who.role.reads_all() {
        return Ok(true);
    }
    Ok(org_role(c, who, org_id)?.is_some())
}

/// The caller's role in a team (`admin` | `user`), if a member. A calls-only key
/// (`authority`) holds none of its owner's memberships.
pub fn team_role<C: Handle + ?Sized>(c: &C, who: &Caller, team_id: &str) -> Result<Option<String>> {
    if who.is_calls_only() {
        return Ok(None);
    }
    match &who.user_id {
        Some(u) => Ok(db::teams::member_role(c, team_id, u)?),
        None => Ok(None),
    }
}

/// Proxy admin, org_admin of the team's organization, or admin of the team.
pub fn is_team_admin<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    team: &db::teams::TeamRow,
) -> Result<bool> {
    if who.role == Role::ProxyAdmin {
        return Ok(true);
    }
    if who.role.is_viewer() {
        return Ok(false);
    }
    if let Some(org) = &team.organization_id {
        if is_org_admin(c, who, org)? {
            return Ok(true);
        }
    }
    Ok(team_role(c, who, &team.id)?.as_deref() == Some(TEAM_ADMIN))
}

/// May read the team: proxy admins/viewers, its members, or any member of its organization
/// who is an org admin.
pub fn can_read_team<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    team: &db::teams::TeamRow,
) -> Result<bool> {
    if who.role.reads_all() {
        return Ok(true);
    }
    if team_role(c, who, &team.id)?.is_some() {
        return Ok(true);
    }
    match &team.organization_id {
        Some(org) => Ok(org_role(c, who, org)?.as_deref() == Some(ORG_ADMIN)),
        None => Ok(false),
    }
}

/// May change the team's models, budgets and limits, or delete it: a proxy admin, or an
/// org_admin of the team's organization (a team without an org: proxy admins only).
pub fn manages_team<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    t: &db::teams::TeamRow,
) -> Result<bool> {
    match &t.organization_id {
        Some(org) => is_org_admin(c, who, org),
        None => Ok(who.is_proxy_admin()),
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and users

/// May the caller manage (update/delete/regenerate) this key?
pub fn can_manage_key<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    k: &db::keys::NewKey,
) -> Result<bool> {
    if who.role == Role::ProxyAdmin {
        return Ok(true);
    }
    if who.role.is_viewer() {
        return Ok(false);
    }
    if administers_team_of(c, who, k)? {
        return Ok(true);
    }
    Ok(k.user_id.is_some() && k.user_id == who.user_id)
}

/// Is the caller an admin of the key's team (team admin, org admin above it, or proxy admin)?
/// Viewers never are (`is_team_admin`).
pub fn administers_team_of<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    k: &db::keys::NewKey,
) -> Result<bool> {
    match &k.team_id {
        Some(t) => match db::teams::get(c, t)? {
            Some(team) => is_team_admin(c, who, &team),
            None => Ok(false),
        },
        None => Ok(false),
    }
}

/// May the caller see this key (`/key/info`)?
pub fn can_see_key<C: Handle + ?Sized>(c: &C, who: &Caller, k: &db::keys::NewKey) -> Result<bool> {
    if who.is_calls_only() {
        // Reads itself only (`authority`): not its owner's other keys.
        return Ok(who.key.as_ref().is_some_and(|mine| mine.token == k.token));
    }
    if who.role.reads_all() {
        return Ok(true);
    }
    if k.user_id.is_some() && k.user_id == who.user_id {
        return Ok(true);
    }
    if who.key.as_ref().is_some_and(|mine| mine.token == k.token) {
        return Ok(true);
    }
    // Team admins and org admins above the team (read-only viewers excluded).
    administers_team_of(c, who, k)
}

/// May the caller ask `/access/explain` about this key? Whoever may see it (`can_see_key`:
/// itself, its owner, proxy admins and viewers — explaining shows what `/key/info` and the
/// limits show and changes nothing —, the admins of its team and the org admins above it) and,
/// beyond `/key/info`, the admins of a team-less key's organization. A calls-only key: itself
/// only.
pub fn can_explain_key<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    k: &db::keys::NewKey,
) -> Result<bool> {
    if can_see_key(c, who, k)? {
        return Ok(true);
    }
    match (&k.team_id, &k.organization_id) {
        (None, Some(o)) if !who.is_calls_only() => is_org_admin(c, who, o),
        _ => Ok(false),
    }
}

/// May the caller create a key for `owner` (None: the master key's own) under `parent`? A
/// proxy admin may; anyone else creates keys only for themselves as a member of the key's team
/// (or organization), unless they administer the team, and then only for its members
/// (API.md §5, §8).
pub fn may_create_key<C: Handle + ?Sized>(
    c: &C,
    who: &Caller,
    parent: &crate::access::grant::Parent,
    owner: Option<&str>,
) -> Result<()> {
    if who.role == Role::ProxyAdmin {
        return Ok(());
    }
    let me = who
        .user_id
        .as_deref()
        .ok_or_else(|| Error::Forbidden("this key has no user; it cannot create keys".into()))?;
    let team_admin = match &parent.team {
        Some(t) => is_team_admin(c, who, t)?,
        None => false,
    };
    if owner != Some(me) && !team_admin {
        return Err(Error::Forbidden(
            "you may only create keys for yourself".into(),
        ));
    }
    if let Some(t) = &parent.team {
        if !team_admin && team_role(c, who, &t.id)?.is_none() {
            return Err(Error::Forbidden(format!(
                "you are not a member of team {}",
                t.id
            )));
        }
        if team_admin && owner != Some(me) {
            // The other user must be a member of the team.
            let member = match &owner {
                Some(o) => db::teams::member_role(c, &t.id, o)?.is_some(),
                None => true,
            };
            if !member {
                return Err(Error::Forbidden(
                    "team admins create keys only for members of their team".into(),
                ));
            }
        }
    } else if let Some(o) = &parent.org {
        if org_role(c, who, &o.id)?.is_none() {
            return Err(Error::Forbidden(format!(
                "you are not a member of organization {}",
                o.id
            )));
        }
    }
    Ok(())
}

/// May the caller see this user? Themselves, or proxy admins and viewers.
pub fn can_see_user(who: &Caller, user_id: &str) -> bool {
    who.role.reads_all() || who.user_id.as_deref() == Some(user_id)
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

/// Whose audit entries a caller may list (`/audit/list`, README "Audit log").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditScope {
    /// Proxy admins and viewers: every entry.
    All,
    /// An org admin: the entries about the organizations this user administers.
    OrgAdmin(String),
}

/// Proxy admins and viewers see all; org admins their organizations'; anyone else 403.
pub fn audit_scope<C: Handle + ?Sized>(c: &C, who: &Caller) -> Result<AuditScope> {
    if who.role.reads_all() {
        return Ok(AuditScope::All);
    }
    if !who.is_calls_only() && !who.role.is_viewer() {
        if let Some(u) = &who.user_id {
            if db::audit::admins_an_org(c, u)? {
                return Ok(AuditScope::OrgAdmin(u.clone()));
            }
        }
    }
    Err(Error::Forbidden(
        "Only proxy admins, proxy admin viewers and org admins can read the audit log".into(),
    ))
}
