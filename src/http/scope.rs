//! Authorization helpers shared by the handlers (API.md §5, §8). One check per handler, judged
//! on the target resource as stored, never on ids the caller supplies.

use crate::auth::{Caller, Role};
use crate::db;
use crate::error::{Error, Result};
use rusqlite::Connection;

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

/// The caller's role in an organization, if a member (`org_admin`, `internal_user`, ...).
/// A calls-only key (`grant`) holds none of its owner's memberships.
pub fn org_role(c: &Connection, who: &Caller, org_id: &str) -> Result<Option<String>> {
    if who.is_calls_only() {
        return Ok(None);
    }
    match &who.user_id {
        Some(u) => Ok(db::orgs::member_role(c, org_id, u)?),
        None => Ok(None),
    }
}

/// Proxy admin, or org_admin of this organization.
pub fn is_org_admin(c: &Connection, who: &Caller, org_id: &str) -> Result<bool> {
    if who.role == Role::ProxyAdmin {
        return Ok(true);
    }
    if who.role.is_viewer() {
        return Ok(false);
    }
    Ok(org_role(c, who, org_id)?.as_deref() == Some("org_admin"))
}

/// May read the organization: admins and viewers of the proxy, or any member.
pub fn can_read_org(c: &Connection, who: &Caller, org_id: &str) -> Result<bool> {
    if who.role.reads_all() {
        return Ok(true);
    }
    Ok(org_role(c, who, org_id)?.is_some())
}

/// The caller's role in a team (`admin` | `user`), if a member. A calls-only key (`grant`)
/// holds none of its owner's memberships.
pub fn team_role(c: &Connection, who: &Caller, team_id: &str) -> Result<Option<String>> {
    if who.is_calls_only() {
        return Ok(None);
    }
    match &who.user_id {
        Some(u) => Ok(db::teams::member_role(c, team_id, u)?),
        None => Ok(None),
    }
}

/// Proxy admin, org_admin of the team's organization, or admin of the team.
pub fn is_team_admin(c: &Connection, who: &Caller, team: &db::teams::TeamRow) -> Result<bool> {
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
    Ok(team_role(c, who, &team.id)?.as_deref() == Some("admin"))
}

/// May read the team: proxy admins/viewers, its members, or any member of its organization
/// who is an org admin.
pub fn can_read_team(c: &Connection, who: &Caller, team: &db::teams::TeamRow) -> Result<bool> {
    if who.role.reads_all() {
        return Ok(true);
    }
    if team_role(c, who, &team.id)?.is_some() {
        return Ok(true);
    }
    match &team.organization_id {
        Some(org) => Ok(org_role(c, who, org)?.as_deref() == Some("org_admin")),
        None => Ok(false),
    }
}
