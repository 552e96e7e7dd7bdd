//! Team queries: teams and team_members. One fn per query.

use rusqlite::{Connection, OptionalExtension};

#[derive(Debug, Clone)]
pub struct TeamRow {
    pub id: String,
    pub alias: Option<String>,
    pub organization_id: Option<String>,
    pub models: Vec<String>,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub blocked: bool,
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

pub const COLUMNS: &str = "id, alias, organization_id, models, spend, max_budget, soft_budget,
    budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests, blocked,
    metadata, created_at, updated_at, created_by, updated_by";

pub fn team_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TeamRow> {
    Ok(TeamRow {
        id: r.get(0)?,
        alias: r.get(1)?,
        organization_id: r.get(2)?,
        models: super::json_list(&r.get::<_, String>(3)?),
        spend: r.get(4)?,
        max_budget: r.get(5)?,
        soft_budget: r.get(6)?,
        budget_duration: r.get(7)?,
        budget_reset_at: r.get(8)?,
        tpm_limit: r.get(9)?,
        rpm_limit: r.get(10)?,
        max_parallel_requests: r.get(11)?,
        blocked: r.get::<_, i64>(12)? != 0,
        metadata: super::json_obj(&r.get::<_, String>(13)?),
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
        created_by: r.get(16)?,
        updated_by: r.get(17)?,
    })
}

const GET: &str = "SELECT id, alias, organization_id, models, spend, max_budget, soft_budget,
    budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests, blocked,
    metadata, created_at, updated_at, created_by, updated_by FROM teams WHERE id = ?1";

pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<TeamRow>> {
    c.prepare_cached(GET)?.query_row([id], team_row).optional()
}

const MEMBER_ROLE: &str = "SELECT role FROM team_members WHERE team_id = ?1 AND user_id = ?2";

/// The user's role in the team (`admin` | `user`), if a member.
pub fn member_role(
    c: &Connection,
    team_id: &str,
    user_id: &str,
) -> rusqlite::Result<Option<String>> {
    c.prepare_cached(MEMBER_ROLE)?
        .query_row([team_id, user_id], |r| r.get(0))
        .optional()
}

// ---------------------------------------------------------------------------------------------
// Writes

/// Columns a team write sets (everything but id, spend and the creation stamps).
#[derive(Debug, Clone, Default)]
pub struct TeamFields {
    pub alias: Option<String>,
    pub organization_id: Option<String>,
    pub models: Vec<String>,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<String>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
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
            max_budget: t.max_budget,
            soft_budget: t.soft_budget,
            budget_duration: t.budget_duration.clone(),
            budget_reset_at: t.budget_reset_at.clone(),
            tpm_limit: t.tpm_limit,
            rpm_limit: t.rpm_limit,
            max_parallel_requests: t.max_parallel_requests,
            blocked: t.blocked,
            metadata: t.metadata.clone(),
        }
    }
}

const INSERT: &str = "INSERT INTO teams (id, alias, organization_id, models, max_budget,
    soft_budget, budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests,
    blocked, metadata, created_at, updated_at, created_by, updated_by)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15, ?15)";

/// Inserts a team. A duplicate id is a UNIQUE violation: the caller's 409.
pub fn insert(c: &Connection, id: &str, f: &TeamFields, by: Option<&str>) -> rusqlite::Result<()> {
    c.prepare_cached(INSERT)?.execute(rusqlite::params![
        id,
        f.alias,
        f.organization_id,
        super::to_json(&f.models),
        f.max_budget,
        f.soft_budget,
        f.budget_duration,
        f.budget_reset_at,
        f.tpm_limit,
        f.rpm_limit,
        f.max_parallel_requests,
        f.blocked as i64,
        super::obj_text(&f.metadata),
        crate::util::now_iso(),
        by,
    ])?;
    Ok(())
}

const UPDATE: &str = "UPDATE teams SET alias = ?2, organization_id = ?3, models = ?4,
    max_budget = ?5, soft_budget = ?6, budget_duration = ?7, budget_reset_at = ?8,
    tpm_limit = ?9, rpm_limit = ?10, max_parallel_requests = ?11, blocked = ?12, metadata = ?13,
    updated_at = ?14, updated_by = ?15 WHERE id = ?1";

/// Writes every writable column of a team; returns the number of rows changed (0 = gone).
pub fn update(
    c: &Connection,
    id: &str,
    f: &TeamFields,
    by: Option<&str>,
) -> rusqlite::Result<usize> {
    c.prepare_cached(UPDATE)?.execute(rusqlite::params![
        id,
        f.alias,
        f.organization_id,
        super::to_json(&f.models),
        f.max_budget,
        f.soft_budget,
        f.budget_duration,
        f.budget_reset_at,
        f.tpm_limit,
        f.rpm_limit,
        f.max_parallel_requests,
        f.blocked as i64,
        super::obj_text(&f.metadata),
        crate::util::now_iso(),
        by,
    ])
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

const LIST: &str = "SELECT id, alias, organization_id, models, spend, max_budget, soft_budget,
    budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests, blocked,
    metadata, created_at, updated_at, created_by, updated_by FROM teams
    WHERE (?1 IS NULL OR organization_id = ?1)
      AND (?2 IS NULL OR id IN (SELECT team_id FROM team_members WHERE user_id = ?2))
      AND (?3 IS NULL
           OR id IN (SELECT team_id FROM team_members WHERE user_id = ?3)
           OR organization_id IN (SELECT organization_id FROM organization_members
                                  WHERE user_id = ?3 AND user_role = 'org_admin'))
    ORDER BY created_at, id";

/// Teams, optionally only of one org, only those `member` belongs to, and only those visible to
/// `viewer` (a member, or org_admin of the team's org). `None` = no such filter.
pub fn list(
    c: &Connection,
    org: Option<&str>,
    member: Option<&str>,
    viewer: Option<&str>,
) -> rusqlite::Result<Vec<TeamRow>> {
    let mut st = c.prepare_cached(LIST)?;
    let rows = st.query_map(rusqlite::params![org, member, viewer], team_row)?;
    rows.collect()
}

const IDS_OF_USER: &str = "SELECT team_id FROM team_members WHERE user_id = ?1 ORDER BY team_id";

/// Ids of the teams a user belongs to.
pub fn ids_of_user(c: &Connection, user_id: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = c.prepare_cached(IDS_OF_USER)?;
    let rows = st.query_map([user_id], |r| r.get(0))?;
    rows.collect()
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

const MEMBERS: &str = "SELECT m.team_id, m.user_id, u.email, m.role, m.spend, m.budget_id,
    b.max_budget, m.created_at, m.updated_at
    FROM team_members m JOIN users u ON u.id = m.user_id
    LEFT JOIN budgets b ON b.id = m.budget_id
    WHERE m.team_id = ?1 ORDER BY m.created_at, m.user_id";

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
    let mut st = c.prepare_cached(MEMBERS)?;
    let rows = st.query_map([team_id], member_row)?;
    rows.collect()
}

const MEMBER: &str = "SELECT m.team_id, m.user_id, u.email, m.role, m.spend, m.budget_id,
    b.max_budget, m.created_at, m.updated_at
    FROM team_members m JOIN users u ON u.id = m.user_id
    LEFT JOIN budgets b ON b.id = m.budget_id
    WHERE m.team_id = ?1 AND m.user_id = ?2";

pub fn member(c: &Connection, team_id: &str, user_id: &str) -> rusqlite::Result<Option<MemberRow>> {
    c.prepare_cached(MEMBER)?
        .query_row([team_id, user_id], member_row)
        .optional()
}

const MEMBERSHIPS_OF_USER: &str = "SELECT m.team_id, m.user_id, u.email, m.role, m.spend,
    m.budget_id, b.max_budget, m.created_at, m.updated_at
    FROM team_members m JOIN users u ON u.id = m.user_id
    LEFT JOIN budgets b ON b.id = m.budget_id
    WHERE m.user_id = ?1 ORDER BY m.team_id";

/// Every team membership of one user.
pub fn memberships_of_user(c: &Connection, user_id: &str) -> rusqlite::Result<Vec<MemberRow>> {
    let mut st = c.prepare_cached(MEMBERSHIPS_OF_USER)?;
    let rows = st.query_map([user_id], member_row)?;
    rows.collect()
}

const ADD_MEMBER: &str = "INSERT INTO team_members (team_id, user_id, role, budget_id, created_at,
    updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)";

/// Adds a membership. Already a member = PRIMARY KEY violation: the caller's 409.
pub fn add_member(
    c: &Connection,
    team_id: &str,
    user_id: &str,
    role: &str,
    budget_id: Option<&str>,
) -> rusqlite::Result<()> {
    c.prepare_cached(ADD_MEMBER)?.execute(rusqlite::params![
        team_id,
        user_id,
        role,
        budget_id,
        crate::util::now_iso()
    ])?;
    Ok(())
}

const SET_MEMBER: &str = "UPDATE team_members SET role = ?3, budget_id = ?4, updated_at = ?5
    WHERE team_id = ?1 AND user_id = ?2";

pub fn set_member(
    c: &Connection,
    team_id: &str,
    user_id: &str,
    role: &str,
    budget_id: Option<&str>,
) -> rusqlite::Result<usize> {
    c.prepare_cached(SET_MEMBER)?.execute(rusqlite::params![
        team_id,
        user_id,
        role,
        budget_id,
        crate::util::now_iso()
    ])
}

const DELETE_MEMBER: &str = "DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2";
const DELETE_MEMBER_KEYS: &str = "DELETE FROM api_keys WHERE team_id = ?1 AND user_id = ?2";

/// Removes a membership and the member's keys in that team (a removed member keeps no access
/// through the team). The membership's budget row is the caller's (`delete_budget`).
pub fn delete_member(c: &Connection, team_id: &str, user_id: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE_MEMBER_KEYS)?
        .execute([team_id, user_id])?;
    c.prepare_cached(DELETE_MEMBER)?.execute([team_id, user_id])
}

// Membership budgets (`max_budget_in_team`) are rows of `budgets` owned by one membership.

const INSERT_BUDGET: &str = "INSERT INTO budgets (id, max_budget, created_at, updated_at,
    created_by, updated_by) VALUES (?1, ?2, ?3, ?3, ?4, ?4)";

/// Creates a membership budget row; returns its id.
pub fn insert_budget(
    c: &Connection,
    max_budget: f64,
    by: Option<&str>,
) -> rusqlite::Result<String> {
    let id = crate::util::uuid4();
    c.prepare_cached(INSERT_BUDGET)?.execute(rusqlite::params![
        id,
        max_budget,
        crate::util::now_iso(),
        by
    ])?;
    Ok(id)
}

const SET_BUDGET: &str = "UPDATE budgets SET max_budget = ?2, updated_at = ?3, updated_by = ?4
    WHERE id = ?1";

pub fn set_budget(
    c: &Connection,
    budget_id: &str,
    max_budget: f64,
    by: Option<&str>,
) -> rusqlite::Result<usize> {
    c.prepare_cached(SET_BUDGET)?.execute(rusqlite::params![
        budget_id,
        max_budget,
        crate::util::now_iso(),
        by
    ])
}

const DELETE_BUDGET: &str = "DELETE FROM budgets WHERE id = ?1";

pub fn delete_budget(c: &Connection, budget_id: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE_BUDGET)?.execute([budget_id])
}
