//! Roles: a user's global role (`Role`, LiteLLM's four `user_role`s) and the names of the
//! membership roles that carry authority (`ORG_ADMIN`, `TEAM_ADMIN`). Says what a role *is*;
//! what it may do to which resource is `access::policy`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    ProxyAdmin,
    ProxyAdminViewer,
    InternalUser,
    InternalUserViewer,
}

/// The organization membership role that administers the org (`organization_members.user_role`).
pub const ORG_ADMIN: &str = "org_admin";
/// The team membership role that administers the team (`team_members.role`).
pub const TEAM_ADMIN: &str = "admin";

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "proxy_admin" => Some(Role::ProxyAdmin),
            "proxy_admin_viewer" => Some(Role::ProxyAdminViewer),
            "internal_user" => Some(Role::InternalUser),
            "internal_user_viewer" => Some(Role::InternalUserViewer),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ProxyAdmin => "proxy_admin",
            Role::ProxyAdminViewer => "proxy_admin_viewer",
            Role::InternalUser => "internal_user",
            Role::InternalUserViewer => "internal_user_viewer",
        }
    }
    /// Proxy admins and proxy admin viewers read everything.
    pub fn reads_all(self) -> bool {
        matches!(self, Role::ProxyAdmin | Role::ProxyAdminViewer)
    }
    pub fn is_viewer(self) -> bool {
        matches!(self, Role::ProxyAdminViewer | Role::InternalUserViewer)
    }
    /// The role with its proxy-wide part taken away: what a key issued by someone else may
    /// act with.
    pub fn below_proxy(self) -> Role {
        match self {
            Role::ProxyAdmin | Role::InternalUser => Role::InternalUser,
            Role::ProxyAdminViewer | Role::InternalUserViewer => Role::InternalUserViewer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_clamp() {
        for r in [
            Role::ProxyAdmin,
            Role::ProxyAdminViewer,
            Role::InternalUser,
            Role::InternalUserViewer,
        ] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert!(!r.below_proxy().reads_all());
            assert_eq!(r.below_proxy().is_viewer(), r.is_viewer());
        }
        assert_eq!(Role::parse("admin"), None);
        assert!(Role::ProxyAdminViewer.reads_all() && Role::ProxyAdminViewer.is_viewer());
    }
}
