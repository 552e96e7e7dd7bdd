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
pub fn member_role(c: &Connection, team_id: &str, user_id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached(MEMBER_ROLE)?
        .query_row([team_id, user_id], |r| r.get(0))
        .optional()
}
