//! Team queries: teams and team_members. One fn per query. The allowance columns come from
//! `allowance_columns!` (`hierarchy`); membership budgets are `db::budgets` rows. On the
//! engine-neutral `handle::Handle` (issue 14).

use super::handle::{allowance, allowance_args, DbResult, Handle, Row};
use super::sql::Arg;
use crate::hierarchy::Allowance;
use crate::{allowance_columns, allowance_set, allowance_values};

#[derive(Debug, Clone)]
pub struct TeamRow {
    pub id: String,
    pub alias: Option<String>,
    pub organization_id: Option<String>,
    pub models: Vec<String>,
    pub spend: f64,
    pub allowance: Allowance,
    pub blocked: bool,
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    /// LiteLLM's `model_aliases` (schema 0006): a JSON object alias -> model.
    pub model_aliases: serde_json::Value,
    /// LiteLLM's `team_member_permissions` (schema 0006); `None` = never set.
    pub member_permissions: Option<Vec<String>>,
}

/// The columns `team_row` reads, for `SELECT {COLUMNS} FROM teams`.
#[macro_export]
macro_rules! team_columns {
    () => {
        concat!(
            "id, alias, organization_id, models, spend, blocked, metadata, created_at, \
             updated_at, created_by, updated_by, model_aliases, member_permissions, ",
            $crate::allowance_columns!()
        )
    };
}

pub fn team_row(r: &Row<'_, '_>) -> DbResult<TeamRow> {
    Ok(TeamRow {
        id: r.get(0)?,
        alias: r.get(1)?,
        organization_id: r.get(2)?,
        models: super::json_list(&r.get::<String>(3)?),
        spend: r.get(4)?,
        blocked: r.get(5)?,
        metadata: super::json_obj(&r.get::<String>(6)?),
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        created_by: r.get(9)?,
        updated_by: r.get(10)?,
        model_aliases: super::json_obj(&r.get::<String>(11)?),
        member_permissions: r.get::<Option<String>>(12)?.map(|s| super::json_list(&s)),
        allowance: allowance(r, 13)?,
    })
}

const GET: &str = concat!("SELECT ", team_columns!(), " FROM teams WHERE id = ?1");

pub fn get<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<Option<TeamRow>> {
    c.one(GET, &[id.into()], team_row)
}

const MEMBER_ROLE: &str = "SELECT role FROM team_members WHERE team_id = ?1 AND user_id = ?2";

/// The user's role in the team (`admin` | `user`), if a member.
pub fn member_role<C: Handle + ?Sized>(
    c: &C,
    team_id: &str,
    user_id: &str,
) -> DbResult<Option<String>> {
    c.one(MEMBER_ROLE, &[team_id.into(), user_id.into()], |r| r.get(0))
}

// ---------------------------------------------------------------------------------------------
// Writes

/// Columns a team write sets (everything but id, spend and the creation stamps).
#[derive(Debug, Clone, Default)]
pub struct TeamFields {
    pub alias: Option<String>,
    pub organization_id: Option<String>,
    pub models: Vec<String>,
    pub allowance: Allowance,
    pub blocked: bool,
    pub metadata: serde_json::Value,
    pub model_aliases: serde_json::Value,
    pub member_permissions: Option<Vec<String>>,
}

impl TeamFields {
    /// The writable part of a stored team (start of an update).
    pub fn of(t: &TeamRow) -> TeamFields {
        TeamFields {
            alias: t.alias.clone(),
            organization_id: t.organization_id.clone(),
            models: t.models.clone(),
            allowance: t.allowance.clone(),
            blocked: t.blocked,
            metadata: t.metadata.clone(),
            model_aliases: t.model_aliases.clone(),
            member_permissions: t.member_permissions.clone(),
        }
    }
}

const INSERT: &str = concat!(
    "INSERT INTO teams (",
    allowance_columns!(),
    ", id, alias, organization_id, models, blocked, metadata, created_at, updated_at,
    created_by, updated_by, model_aliases, member_permissions) VALUES (",
    allowance_values!(),
    ", ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, ?15, ?16, ?17)"
);

/// Inserts a team. A duplicate id is a UNIQUE violation: the caller's 409.
pub fn insert<C: Handle + ?Sized>(
    c: &C,
    id: &str,
    f: &TeamFields,
    by: Option<&str>,
) -> DbResult<()> {
    write(c, INSERT, id, f, by).map(|_| ())
}

const UPDATE: &str = concat!(
    "UPDATE teams SET ",
    allowance_set!(),
    ", alias = ?9, organization_id = ?10, models = ?11, blocked = ?12, metadata = ?13,
    updated_at = ?14, updated_by = ?15, model_aliases = ?16, member_permissions = ?17
    WHERE id = ?8"
);

/// Writes every writable column of a team; returns the number of rows changed (0 = gone).
pub fn update<C: Handle + ?Sized>(
    c: &C,
    id: &str,
    f: &TeamFields,
    by: Option<&str>,
) -> DbResult<usize> {
    write(c, UPDATE, id, f, by)
}

/// Runs INSERT or UPDATE: `?1`..`?7` the allowance, then id, alias, org, models, blocked,
/// metadata, now, by, model_aliases, member_permissions.
fn write<C: Handle + ?Sized>(
    c: &C,
    sql: &str,
    id: &str,
    f: &TeamFields,
    by: Option<&str>,
) -> DbResult<usize> {
    let (models, metadata) = (super::to_json(&f.models), super::obj_text(&f.metadata));
    let now = crate::util::now_iso();
    let a = allowance_args(&f.allowance);
    let aliases = super::obj_text(&f.model_aliases);
    let perms = f.member_permissions.as_ref().map(super::to_json);
    let args: [Arg<'_>; 17] = [
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
        a[5],
        a[6],
        id.into(),
        (&f.alias).into(),
        (&f.organization_id).into(),
        (&models).into(),
        f.blocked.into(),
        (&metadata).into(),
        (&now).into(),
        by.into(),
        (&aliases).into(),
        (&perms).into(),
    ];
    c.exec(sql, &args)
}

const MOVE_KEYS: &str = "UPDATE api_keys SET organization_id = ?2, updated_at = ?3
    WHERE team_id = ?1";

/// When a team changes organization its keys follow (API.md §8 "Moving teams").
pub fn move_keys<C: Handle + ?Sized>(c: &C, team_id: &str, org: Option<&str>) -> DbResult<usize> {
    let now = crate::util::now_iso();
    c.exec(MOVE_KEYS, &[team_id.into(), org.into(), (&now).into()])
}

const DELETE_MEMBER_BUDGETS: &str = "DELETE FROM budgets WHERE id IN
    (SELECT budget_id FROM team_members WHERE team_id = ?1 AND budget_id IS NOT NULL)";
const DELETE: &str = "DELETE FROM teams WHERE id = ?1";

/// Deletes a team with its membership budget rows; keys and memberships go by FK cascade.
pub fn delete<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<usize> {
    c.exec(DELETE_MEMBER_BUDGETS, &[id.into()])?;
    c.exec(DELETE, &[id.into()])
}

// ---------------------------------------------------------------------------------------------
// Listing

const LIST: &str = concat!(
    "SELECT ",
    team_columns!(),
    " FROM teams
    WHERE (CAST(?1 AS TEXT) IS NULL OR organization_id = ?1)
      AND (CAST(?2 AS TEXT) IS NULL
           OR id IN (SELECT team_id FROM team_members WHERE user_id = ?2))
      AND (CAST(?3 AS TEXT) IS NULL
           OR id IN (SELECT team_id FROM team_members WHERE user_id = ?3)
           OR organization_id IN (SELECT organization_id FROM organization_members
                                  WHERE user_id = ?3 AND user_role = 'org_admin'))
    ORDER BY created_at, id"
);

/// Teams, optionally only of one org, only those `member` belongs to, and only those visible to
/// `viewer` (a member, or org_admin of the team's org). `None` = no such filter.
pub fn list<C: Handle + ?Sized>(
    c: &C,
    org: Option<&str>,
    member: Option<&str>,
    viewer: Option<&str>,
) -> DbResult<Vec<TeamRow>> {
    c.all(LIST, &[org.into(), member.into(), viewer.into()], team_row)
}

const IDS_OF_USER: &str = "SELECT team_id FROM team_members WHERE user_id = ?1 ORDER BY team_id";

/// Ids of the teams a user belongs to.
pub fn ids_of_user<C: Handle + ?Sized>(c: &C, user_id: &str) -> DbResult<Vec<String>> {
    c.all(IDS_OF_USER, &[user_id.into()], |r| r.get(0))
}

// ---------------------------------------------------------------------------------------------
// Members

#[derive(Debug, Clone)]
pub struct MemberRow {
    pub team_id: String,
    pub user_id: String,
    pub user_email: Option<String>,
    pub role: String,
    pub spend: f64,
    pub budget_id: Option<String>,
    pub max_budget: Option<f64>,
    pub created_at: String,
    pub updated_at: String,
}

/// A membership with its user's email and budget, from `team_members m`.
macro_rules! member_select {
    () => {
        "SELECT m.team_id, m.user_id, u.email, m.role, m.spend, m.budget_id, b.max_budget,
        m.created_at, m.updated_at
        FROM team_members m JOIN users u ON u.id = m.user_id
        LEFT JOIN budgets b ON b.id = m.budget_id"
    };
}

const MEMBERS: &str = concat!(
    member_select!(),
    " WHERE m.team_id = ?1 ORDER BY m.created_at, m.user_id"
);

fn member_row(r: &Row<'_, '_>) -> DbResult<MemberRow> {
    Ok(MemberRow {
        team_id: r.get(0)?,
        user_id: r.get(1)?,
        user_email: r.get(2)?,
        role: r.get(3)?,
        spend: r.get(4)?,
        budget_id: r.get(5)?,
        max_budget: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

/// The team's members with their email and membership budget.
pub fn members<C: Handle + ?Sized>(c: &C, team_id: &str) -> DbResult<Vec<MemberRow>> {
    c.all(MEMBERS, &[team_id.into()], member_row)
}

const MEMBER: &str = concat!(member_select!(), " WHERE m.team_id = ?1 AND m.user_id = ?2");

pub fn member<C: Handle + ?Sized>(
    c: &C,
    team_id: &str,
    user_id: &str,
) -> DbResult<Option<MemberRow>> {
    c.one(MEMBER, &[team_id.into(), user_id.into()], member_row)
}

const MEMBERSHIPS_OF_USER: &str =
    concat!(member_select!(), " WHERE m.user_id = ?1 ORDER BY m.team_id");

/// Every team membership of one user.
pub fn memberships_of_user<C: Handle + ?Sized>(c: &C, user_id: &str) -> DbResult<Vec<MemberRow>> {
    c.all(MEMBERSHIPS_OF_USER, &[user_id.into()], member_row)
}

const DELETE_MEMBER: &str = "DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2";
const DELETE_MEMBER_KEYS: &str = "DELETE FROM api_keys WHERE team_id = ?1 AND user_id = ?2";

/// Removes a membership and the member's keys in that team (a removed member keeps no access
/// through the team). The membership's budget row is the caller's (`db::budgets::delete`).
pub fn delete_member<C: Handle + ?Sized>(c: &C, team_id: &str, user_id: &str) -> DbResult<usize> {
    c.exec(DELETE_MEMBER_KEYS, &[team_id.into(), user_id.into()])?;
    c.exec(DELETE_MEMBER, &[team_id.into(), user_id.into()])
}
