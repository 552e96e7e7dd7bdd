//! Organization queries: organizations and organization_members. One fn per query.

use rusqlite::{Connection, OptionalExtension};

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

const GET: &str = "SELECT id, alias, models, spend, budget_id, blocked, metadata, created_at,
    updated_at, created_by, updated_by FROM organizations WHERE id = ?1";

fn org_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OrgRow> {
    Ok(OrgRow {
        id: r.get(0)?,
        alias: r.get(1)?,
        models: super::json_list(&r.get::<_, String>(2)?),
        spend: r.get(3)?,
        budget_id: r.get(4)?,
        blocked: r.get::<_, i64>(5)? != 0,
        metadata: super::json_obj(&r.get::<_, String>(6)?),
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        created_by: r.get(9)?,
        updated_by: r.get(10)?,
    })
}

pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<OrgRow>> {
    c.prepare_cached(GET)?.query_row([id], org_row).optional()
}

const MEMBER_ROLE: &str =
    "SELECT user_role FROM organization_members WHERE organization_id = ?1 AND user_id = ?2";

/// The user's role in the organization (`org_admin`, `internal_user`, ...), if a member.
pub fn member_role(c: &Connection, org_id: &str, user_id: &str) -> rusqlite::Result<Option<String>> {
    c.prepare_cached(MEMBER_ROLE)?
        .query_row([org_id, user_id], |r| r.get(0))
        .optional()
}
