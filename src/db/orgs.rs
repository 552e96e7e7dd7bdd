//! Organization queries: organizations and organization_members. One fn per query, each on
//! the engine-neutral `handle::Handle` (SQLite and PostgreSQL, issue 14).

use super::handle::{DbResult, Handle, Row};

/// An organization row (budget fields live in `budgets`).
#[derive(Debug, Clone)]
pub struct OrgRow {
    pub id: String,
    pub alias: String,
    pub models: Vec<String>,
    pub spend: f64,
    pub budget_id: Option<String>,
    pub blocked: bool,
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

/// The columns `org_row` reads.
macro_rules! org_columns {
    () => {
        "id, alias, models, spend, budget_id, blocked, metadata, created_at, updated_at,
        created_by, updated_by"
    };
}

const GET: &str = concat!(
    "SELECT ",
    org_columns!(),
    " FROM organizations WHERE id = ?1"
);

fn org_row(r: &Row<'_, '_>) -> DbResult<OrgRow> {
    Ok(OrgRow {
        id: r.get(0)?,
        alias: r.get(1)?,
        models: super::json_list(&r.get::<String>(2)?),
        spend: r.get(3)?,
        budget_id: r.get(4)?,
        blocked: r.get(5)?,
        metadata: super::json_obj(&r.get::<String>(6)?),
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        created_by: r.get(9)?,
        updated_by: r.get(10)?,
    })
}

pub fn get<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<Option<OrgRow>> {
    c.one(GET, &[id.into()], org_row)
}

const MEMBER_ROLE: &str =
    "SELECT user_role FROM organization_members WHERE organization_id = ?1 AND user_id = ?2";

/// The user's role in the organization (`org_admin`, `internal_user`, ...), if a member.
pub fn member_role<C: Handle + ?Sized>(
    c: &C,
    org_id: &str,
    user_id: &str,
) -> DbResult<Option<String>> {
    c.one(MEMBER_ROLE, &[org_id.into(), user_id.into()], |r| r.get(0))
}

const LIST_ALL: &str = concat!(
    "SELECT ",
    org_columns!(),
    " FROM organizations ORDER BY created_at, id"
);

/// Every organization, oldest first.
pub fn list_all<C: Handle + ?Sized>(c: &C) -> DbResult<Vec<OrgRow>> {
    c.all(LIST_ALL, &[], org_row)
}

const LIST_FOR_USER: &str = concat!(
    "SELECT ",
    org_columns!(),
    " FROM organizations WHERE id IN
    (SELECT organization_id FROM organization_members WHERE user_id = ?1)
    ORDER BY created_at, id"
);

/// The organizations the user is a member of (any role), oldest first.
pub fn list_for_user<C: Handle + ?Sized>(c: &C, user_id: &str) -> DbResult<Vec<OrgRow>> {
    c.all(LIST_FOR_USER, &[user_id.into()], org_row)
}

const INSERT: &str = "INSERT INTO organizations (id, alias, models, budget_id, metadata,
    created_at, updated_at, created_by, updated_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?7)";

/// Inserts an organization (spend 0, not blocked). A duplicate id is the caller's 409.
pub fn insert<C: Handle + ?Sized>(c: &C, o: &OrgRow) -> DbResult<()> {
    write(c, INSERT, o, &o.created_at, o.created_by.as_deref()).map(|_| ())
}

const UPDATE: &str = "UPDATE organizations SET alias = ?2, models = ?3, budget_id = ?4,
    metadata = ?5, updated_at = ?6, updated_by = ?7 WHERE id = ?1";

/// Writes the changeable columns of a row read and patched by the caller. Returns rows changed.
pub fn update<C: Handle + ?Sized>(c: &C, o: &OrgRow) -> DbResult<usize> {
    write(c, UPDATE, o, &o.updated_at, o.updated_by.as_deref())
}

/// Runs INSERT or UPDATE: id, alias, models, budget, metadata, then when and by whom (`?6`,
/// `?7`: the creation stamp on insert, the update stamp on update).
fn write<C: Handle + ?Sized>(
    c: &C,
    sql: &str,
    o: &OrgRow,
    at: &str,
    by: Option<&str>,
) -> DbResult<usize> {
    let models = super::to_json(&o.models);
    let metadata = o.metadata.to_string();
    c.exec(
        sql,
        &[
            (&o.id).into(),
            (&o.alias).into(),
            (&models).into(),
            (&o.budget_id).into(),
            (&metadata).into(),
            at.into(),
            by.into(),
        ],
    )
}

const DELETE: &str = "DELETE FROM organizations WHERE id = ?1";

/// Deletes an organization. The schema's ON DELETE CASCADE removes its teams (and with them
/// their keys and team memberships), keys whose own `organization_id` is the org, and its
/// memberships. Budget rows are not cascaded: see `budget_ids_owned`.
pub fn delete<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<usize> {
    c.exec(DELETE, &[id.into()])
}

const BUDGET_IDS_OWNED: &str = "SELECT budget_id FROM organizations
        WHERE id = ?1 AND budget_id IS NOT NULL
    UNION SELECT budget_id FROM organization_members
        WHERE organization_id = ?1 AND budget_id IS NOT NULL
    UNION SELECT tm.budget_id FROM team_members tm JOIN teams t ON t.id = tm.team_id
        WHERE t.organization_id = ?1 AND tm.budget_id IS NOT NULL";

/// The budget rows an organization delete leaves behind: the org's own, its memberships', and
/// the team memberships' of its teams. The caller deletes those no other row still uses.
pub fn budget_ids_owned<C: Handle + ?Sized>(c: &C, org_id: &str) -> DbResult<Vec<String>> {
    c.all(BUDGET_IDS_OWNED, &[org_id.into()], |r| r.get(0))
}

const TEAMS: &str = concat!(
    "SELECT ",
    crate::team_columns!(),
    " FROM teams WHERE organization_id = ?1 ORDER BY created_at, id"
);

/// The organization's teams, oldest first.
pub fn teams<C: Handle + ?Sized>(c: &C, org_id: &str) -> DbResult<Vec<super::teams::TeamRow>> {
    c.all(TEAMS, &[org_id.into()], super::teams::team_row)
}

/// A membership row, with the member's email for display.
#[derive(Debug, Clone)]
pub struct MemberRow {
    pub organization_id: String,
    pub user_id: String,
    pub user_role: String,
    pub spend: f64,
    pub budget_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub user_email: Option<String>,
}

fn member_row(r: &Row<'_, '_>) -> DbResult<MemberRow> {
    Ok(MemberRow {
        organization_id: r.get(0)?,
        user_id: r.get(1)?,
        user_role: r.get(2)?,
        spend: r.get(3)?,
        budget_id: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
        user_email: r.get(7)?,
    })
}

/// A membership with its user's email, from `organization_members m`.
macro_rules! member_select {
    () => {
        "SELECT m.organization_id, m.user_id, m.user_role, m.spend, m.budget_id, m.created_at,
        m.updated_at, u.email
        FROM organization_members m LEFT JOIN users u ON u.id = m.user_id"
    };
}

const MEMBERS: &str = concat!(
    member_select!(),
    " WHERE m.organization_id = ?1 ORDER BY m.created_at, m.user_id"
);

/// The organization's memberships, oldest first.
pub fn members<C: Handle + ?Sized>(c: &C, org_id: &str) -> DbResult<Vec<MemberRow>> {
    c.all(MEMBERS, &[org_id.into()], member_row)
}

const MEMBER_GET: &str = concat!(
    member_select!(),
    " WHERE m.organization_id = ?1 AND m.user_id = ?2"
);

pub fn member_get<C: Handle + ?Sized>(
    c: &C,
    org_id: &str,
    user_id: &str,
) -> DbResult<Option<MemberRow>> {
    c.one(MEMBER_GET, &[org_id.into(), user_id.into()], member_row)
}

const MEMBER_DELETE: &str =
    "DELETE FROM organization_members WHERE organization_id = ?1 AND user_id = ?2";

/// Removes a membership. Returns rows deleted.
pub fn member_delete<C: Handle + ?Sized>(c: &C, org_id: &str, user_id: &str) -> DbResult<usize> {
    c.exec(MEMBER_DELETE, &[org_id.into(), user_id.into()])
}
