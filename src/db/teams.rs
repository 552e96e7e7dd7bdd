//! Team queries: teams and team_members. One fn per query. The allowance columns come from
//! `allowance_columns!` (`hierarchy`); membership budgets are `db::budgets` rows.

use crate::hierarchy::Allowance;
use crate::{allowance_columns, allowance_set, allowance_values};
use rusqlite::{params_from_iter, types::ToSql, Connection};

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
}

/// The columns `team_row` reads, for `SELECT {COLUMNS} FROM teams`.
#[macro_export]
macro_rules! team_columns {
    () => {
        concat!(
            "id, alias, organization_id, models, spend, blocked, metadata, created_at, \
             updated_at, created_by, updated_by, ",
            $crate::allowance_columns!()
        )
    };
}

pub fn team_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TeamRow> {
    Ok(TeamRow {
        id: r.get(0)?,
        alias: r.get(1)?,
        organization_id: r.get(2)?,
        models: super::json_list(&r.get::<_, String>(3)?),
        spend: r.get(4)?,
        blocked: r.get::<_, i64>(5)? != 0,
        metadata: super::json_obj(&r.get::<_, String>(6)?),
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        created_by: r.get(9)?,
        updated_by: r.get(10)?,
        allowance: Allowance::from_row(r, 11)?,
    })
}

const GET: &str = concat!("SELECT ", team_columns!(), " FROM teams WHERE id = ?1");

pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<TeamRow>> {
    super::rows::one(c, GET, [id], team_row)
}

const MEMBER_ROLE: &str = "SELECT role FROM team_members WHERE team_id = ?1 AND user_id = ?2";

/// The user's role in the team (`admin` | `user`), if a member.
pub fn member_role(
    c: &Connection,
    team_id: &str,
    user_id: &str,
) -> rusqlite::Result<Option<String>> {
    super::rows::text(c, MEMBER_ROLE, [team_id, user_id])
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
        }
    }
}

const INSERT: &str = concat!(
    "INSERT INTO teams (",
    allowance_columns!(),
    ", id, alias, organization_id, models, blocked, metadata, created_at, updated_at,
    created_by, updated_by) VALUES (",
    allowance_values!(),
    ", ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, ?15)"
);

/// Inserts a team. A duplicate id is a UNIQUE violation: the caller's 409.
pub fn insert(c: &Connection, id: &str, f: &TeamFields, by: Option<&str>) -> rusqlite::Result<()> {
    write(c, INSERT, id, f, by).map(|_| ())
}

const UPDATE: &str = concat!(
    "UPDATE teams SET ",
    allowance_set!(),
    ", alias = ?9, organization_id = ?10, models = ?11, blocked = ?12, metadata = ?13,
    updated_at = ?14, updated_by = ?15 WHERE id = ?8"
);

/// Writes every writable column of a team; returns the number of rows changed (0 = gone).
pub fn update(
    c: &Connection,
    id: &str,
    f: &TeamFields,
    by: Option<&str>,
) -> rusqlite::Result<usize> {
    write(c, UPDATE, id, f, by)
}

/// Runs INSERT or UPDATE: `?1`..`?7` the allowance, then id, alias, org, models, blocked,
/// metadata, now, by.
fn write(
    c: &Connection,
    sql: &str,
    id: &str,
    f: &TeamFields,
    by: Option<&str>,
) -> rusqlite::Result<usize> {
    let (models, metadata) = (super::to_json(&f.models), super::obj_text(&f.metadata));
    let (blocked, now) = (f.blocked as i64, crate::util::now_iso());
    let own: [&dyn ToSql; 8] = [
        &id,
        &f.alias,
        &f.organization_id,
        &models,
        &blocked,
        &metadata,
        &now,
        &by,
    ];
    c.prepare_cached(sql)?
        .execute(params_from_iter(f.allowance.params_then(&own)))
}

const MOVE_KEYS: &str = "UPDATE api_keys SET organization_id = ?2, updated_at = ?3
    WHERE team_id = ?1";

/// When a team changes organization its keys follow (API.md §8 "Moving teams").
pub fn move_keys(c: &Connection, team_id: &str, org: Option<&str>) -> rusqlite::Result<usize> {
    c.prepare_cached(MOVE_KEYS)?
        .execute(rusqlite::params![team_id, org, crate::util::now_iso()])
}

const DELETE_MEMBER_BUDGETS: &str = "DELETE FROM budgets WHERE id IN
    (SELECT budget_id FROM team_members WHERE team_id = ?1 AND budget_id IS NOT NULL)";
const DELETE: &str = "DELETE FROM teams WHERE id = ?1";

/// Deletes a team with its membership budget rows; keys and memberships go by FK cascade.
pub fn delete(c: &Connection, id: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE_MEMBER_BUDGETS)?.execute([id])?;
    c.prepare_cached(DELETE)?.execute([id])
}

// ---------------------------------------------------------------------------------------------
// Listing

const LIST: &str = concat!(
    "SELECT ",
    team_columns!(),
    " FROM teams
    WHERE (?1 IS NULL OR organization_id = ?1)
      AND (?2 IS NULL OR id IN (SELECT team_id FROM team_members WHERE user_id = ?2))
      AND (?3 IS NULL
           OR id IN (SELECT team_id FROM team_members WHERE user_id = ?3)
           OR organization_id IN (SELECT organization_id FROM organization_members
                                  WHERE user_id = ?3 AND user_role = 'org_admin'))
    ORDER BY created_at, id"
);

/// Teams, optionally only of one org, only those `member` belongs to, and only those visible to
/// `viewer` (a member, or org_admin of the team's org). `None` = no such filter.
pub fn list(
    c: &Connection,
    org: Option<&str>,
    member: Option<&str>,
    viewer: Option<&str>,
) -> rusqlite::Result<Vec<TeamRow>> {
    super::rows::all(c, LIST, rusqlite::params![org, member, viewer], team_row)
}

const IDS_OF_USER: &str = "SELECT team_id FROM team_members WHERE user_id = ?1 ORDER BY team_id";

/// Ids of the teams a user belongs to.
pub fn ids_of_user(c: &Connection, user_id: &str) -> rusqlite::Result<Vec<String>> {
    super::rows::all(c, IDS_OF_USER, [user_id], |r| r.get(0))
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

fn member_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MemberRow> {
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
pub fn members(c: &Connection, team_id: &str) -> rusqlite::Result<Vec<MemberRow>> {
    super::rows::all(c, MEMBERS, [team_id], member_row)
}

const MEMBER: &str = concat!(member_select!(), " WHERE m.team_id = ?1 AND m.user_id = ?2");

pub fn member(c: &Connection, team_id: &str, user_id: &str) -> rusqlite::Result<Option<MemberRow>> {
    super::rows::one(c, MEMBER, [team_id, user_id], member_row)
}

const MEMBERSHIPS_OF_USER: &str =
    concat!(member_select!(), " WHERE m.user_id = ?1 ORDER BY m.team_id");

/// Every team membership of one user.
pub fn memberships_of_user(c: &Connection, user_id: &str) -> rusqlite::Result<Vec<MemberRow>> {
    super::rows::all(c, MEMBERSHIPS_OF_USER, [user_id], member_row)
}

const DELETE_MEMBER: &str = "DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2";
const DELETE_MEMBER_KEYS: &str = "DELETE FROM api_keys WHERE team_id = ?1 AND user_id = ?2";

/// Removes a membership and the member's keys in that team (a removed member keeps no access
/// through the team). The membership's budget row is the caller's (`db::budgets::delete`).
pub fn delete_member(c: &Connection, team_id: &str, user_id: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE_MEMBER_KEYS)?
        .execute([team_id, user_id])?;
    c.prepare_cached(DELETE_MEMBER)?.execute([team_id, user_id])
}
