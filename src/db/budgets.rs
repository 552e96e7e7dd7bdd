//! Budget queries (the `budgets` table, LiteLLM's `LiteLLM_BudgetTable`), shared by
//! organizations and memberships. One fn per query. Who may change a budget is the handlers'
//! business; this module only reads and writes rows.

use rusqlite::{params, Connection, OptionalExtension};

/// A budget row. `model_max_budget` is stored as JSON text (an object or NULL).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetRow {
    pub id: String,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<String>,
    pub model_max_budget: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

impl BudgetRow {
    /// The row as LiteLLM shows it (`litellm_budget_table`, `/budget/info`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "budget_id": self.id,
            "max_budget": self.max_budget,
            "soft_budget": self.soft_budget,
            "tpm_limit": self.tpm_limit,
            "rpm_limit": self.rpm_limit,
            "max_parallel_requests": self.max_parallel_requests,
            "budget_duration": self.budget_duration,
            "budget_reset_at": self.budget_reset_at,
            "model_max_budget": self.model_max_budget,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
            "updated_by": self.updated_by,
        })
    }
}

fn budget_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BudgetRow> {
    Ok(BudgetRow {
        id: r.get(0)?,
        max_budget: r.get(1)?,
        soft_budget: r.get(2)?,
        tpm_limit: r.get(3)?,
        rpm_limit: r.get(4)?,
        max_parallel_requests: r.get(5)?,
        budget_duration: r.get(6)?,
        budget_reset_at: r.get(7)?,
        model_max_budget: r
            .get::<_, Option<String>>(8)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
        created_by: r.get(11)?,
        updated_by: r.get(12)?,
    })
}

const GET: &str = "SELECT id, max_budget, soft_budget, tpm_limit, rpm_limit,
    max_parallel_requests, budget_duration, budget_reset_at, model_max_budget, created_at,
    updated_at, created_by, updated_by FROM budgets WHERE id = ?1";

pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<BudgetRow>> {
    c.prepare_cached(GET)?
        .query_row([id], budget_row)
        .optional()
}

const LIST: &str = "SELECT id, max_budget, soft_budget, tpm_limit, rpm_limit,
    max_parallel_requests, budget_duration, budget_reset_at, model_max_budget, created_at,
    updated_at, created_by, updated_by FROM budgets ORDER BY created_at, id";

pub fn list(c: &Connection) -> rusqlite::Result<Vec<BudgetRow>> {
    let mut st = c.prepare_cached(LIST)?;
    let rows = st.query_map([], budget_row)?;
    rows.collect()
}

const INSERT: &str = "INSERT INTO budgets (id, max_budget, soft_budget, tpm_limit, rpm_limit,
    max_parallel_requests, budget_duration, budget_reset_at, model_max_budget, created_at,
    updated_at, created_by, updated_by)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

fn mmb_text(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(|m| m.to_string())
}

/// Inserts a budget row. A duplicate id is a PRIMARY KEY violation: the caller's 409.
pub fn insert(c: &Connection, b: &BudgetRow) -> rusqlite::Result<()> {
    c.prepare_cached(INSERT)?.execute(params![
        b.id,
        b.max_budget,
        b.soft_budget,
        b.tpm_limit,
        b.rpm_limit,
        b.max_parallel_requests,
        b.budget_duration,
        b.budget_reset_at,
        mmb_text(&b.model_max_budget),
        b.created_at,
        b.updated_at,
        b.created_by,
        b.updated_by,
    ])?;
    Ok(())
}

const UPDATE: &str = "UPDATE budgets SET max_budget = ?2, soft_budget = ?3, tpm_limit = ?4,
    rpm_limit = ?5, max_parallel_requests = ?6, budget_duration = ?7, budget_reset_at = ?8,
    model_max_budget = ?9, updated_at = ?10, updated_by = ?11 WHERE id = ?1";

/// Writes every changeable column of a row read and patched by the caller. Returns rows changed.
pub fn update(c: &Connection, b: &BudgetRow) -> rusqlite::Result<usize> {
    c.prepare_cached(UPDATE)?.execute(params![
        b.id,
        b.max_budget,
        b.soft_budget,
        b.tpm_limit,
        b.rpm_limit,
        b.max_parallel_requests,
        b.budget_duration,
        b.budget_reset_at,
        mmb_text(&b.model_max_budget),
        b.updated_at,
        b.updated_by,
    ])
}

const DELETE: &str = "DELETE FROM budgets WHERE id = ?1";

/// Deletes a budget; rows that reference it get NULL (ON DELETE SET NULL). Returns rows deleted.
pub fn delete(c: &Connection, id: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE)?.execute([id])
}

const DELETE_IF_UNUSED: &str = "DELETE FROM budgets WHERE id = ?1
    AND NOT EXISTS (SELECT 1 FROM organizations WHERE budget_id = ?1)
    AND NOT EXISTS (SELECT 1 FROM organization_members WHERE budget_id = ?1)
    AND NOT EXISTS (SELECT 1 FROM team_members WHERE budget_id = ?1)";

/// Deletes a budget only when no organization or membership still refers to it (used when the
/// org or membership that owned it goes). Returns rows deleted.
pub fn delete_if_unused(c: &Connection, id: &str) -> rusqlite::Result<usize> {
    c.prepare_cached(DELETE_IF_UNUSED)?.execute([id])
}
