//! Membership writes that teams and organizations share: adding a member and setting a
//! member's role and budget. One fn per statement pair (team_members, organization_members);
//! reading memberships stays in `db::teams` / `db::orgs`, whose rows differ. On the
//! engine-neutral `handle::Handle` (issue 14).

use super::handle::{DbResult, Handle};

/// Which membership table: a team's (`team_members`, role `admin`/`user`) or an
/// organization's (`organization_members`, role `org_admin`/`internal_user`/...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Team,
    Org,
}

const ADD_TEAM: &str = "INSERT INTO team_members (team_id, user_id, role, budget_id, created_at,
    updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
const ADD_ORG: &str = "INSERT INTO organization_members (organization_id, user_id, user_role,
    budget_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)";

/// Adds a membership. Already a member = PRIMARY KEY violation: the caller's 409.
pub fn add<C: Handle + ?Sized>(
    c: &C,
    g: Group,
    group_id: &str,
    user_id: &str,
    role: &str,
    budget_id: Option<&str>,
) -> DbResult<()> {
    let sql = match g {
        Group::Team => ADD_TEAM,
        Group::Org => ADD_ORG,
    };
    write(c, sql, [group_id, user_id, role], budget_id).map(|_| ())
}

const SET_TEAM: &str = "UPDATE team_members SET role = ?3, budget_id = ?4, updated_at = ?5
    WHERE team_id = ?1 AND user_id = ?2";
const SET_ORG: &str = "UPDATE organization_members SET user_role = ?3, budget_id = ?4,
    updated_at = ?5 WHERE organization_id = ?1 AND user_id = ?2";

/// Sets a membership's role and budget row. Returns rows changed.
pub fn set<C: Handle + ?Sized>(
    c: &C,
    g: Group,
    group_id: &str,
    user_id: &str,
    role: &str,
    budget_id: Option<&str>,
) -> DbResult<usize> {
    let sql = match g {
        Group::Team => SET_TEAM,
        Group::Org => SET_ORG,
    };
    write(c, sql, [group_id, user_id, role], budget_id)
}

/// `?1` group, `?2` user, `?3` role, `?4` budget row, `?5` now.
fn write<C: Handle + ?Sized>(
    c: &C,
    sql: &str,
    who: [&str; 3],
    budget_id: Option<&str>,
) -> DbResult<usize> {
    let [group_id, user_id, role] = who;
    let now = crate::util::now_iso();
    c.exec(
        sql,
        &[
            group_id.into(),
            user_id.into(),
            role.into(),
            budget_id.into(),
            (&now).into(),
        ],
    )
}
