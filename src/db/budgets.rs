//! Budget queries (the `budgets` table, LiteLLM's `LiteLLM_BudgetTable`), shared by
//! organizations and memberships. One fn per query. Who may change a budget is the handlers'
//! business; this module only reads and writes rows. On the engine-neutral `handle::Handle`
//! (SQLite and PostgreSQL, issue 14).

use super::handle::{allowance, allowance_args, DbResult, Handle, Row};
use super::sql::Arg;
use crate::hierarchy::Allowance;
use crate::{allowance_columns, allowance_set, allowance_values};

/// A budget row. `model_max_budget` is stored as JSON text (an object or NULL).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetRow {
    pub id: String,
    pub allowance: Allowance,
    pub model_max_budget: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

impl BudgetRow {
    /// The row as LiteLLM shows it (`litellm_budget_table`, `/budget/info`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = self.allowance.json();
        let own = serde_json::json!({
            "budget_id": self.id,
            "model_max_budget": self.model_max_budget,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
            "updated_by": self.updated_by,
        });
        if let serde_json::Value::Object(o) = own {
            m.extend(o);
        }
        serde_json::Value::Object(m)
    }
}

macro_rules! budget_columns {
    () => {
        concat!(
            "id, model_max_budget, created_at, updated_at, created_by, updated_by, ",
            allowance_columns!()
        )
    };
}

fn budget_row(r: &Row<'_, '_>) -> DbResult<BudgetRow> {
    Ok(BudgetRow {
        id: r.get(0)?,
        model_max_budget: r
            .get::<Option<String>>(1)?
            .and_then(|s| serde_json::from_str(&s).ok()),
        created_at: r.get(2)?,
        updated_at: r.get(3)?,
        created_by: r.get(4)?,
        updated_by: r.get(5)?,
        allowance: allowance(r, 6)?,
    })
}

const GET: &str = concat!("SELECT ", budget_columns!(), " FROM budgets WHERE id = ?1");

pub fn get<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<Option<BudgetRow>> {
    c.one(GET, &[id.into()], budget_row)
}

const LIST: &str = concat!(
    "SELECT ",
    budget_columns!(),
    " FROM budgets ORDER BY created_at, id"
);

pub fn list<C: Handle + ?Sized>(c: &C) -> DbResult<Vec<BudgetRow>> {
    c.all(LIST, &[], budget_row)
}

const INSERT: &str = concat!(
    "INSERT INTO budgets (",
    allowance_columns!(),
    ", id, model_max_budget, updated_at, updated_by, created_at, created_by) VALUES (",
    allowance_values!(),
    ", ?8, ?9, ?10, ?11, ?12, ?13)"
);

/// Inserts a budget row. A duplicate id is a PRIMARY KEY violation: the caller's 409.
pub fn insert<C: Handle + ?Sized>(c: &C, b: &BudgetRow) -> DbResult<()> {
    write(c, INSERT, 13, b).map(|_| ())
}

const UPDATE: &str = concat!(
    "UPDATE budgets SET ",
    allowance_set!(),
    ", model_max_budget = ?9, updated_at = ?10, updated_by = ?11 WHERE id = ?8"
);

/// Writes every changeable column of a row read and patched by the caller. Returns rows changed.
pub fn update<C: Handle + ?Sized>(c: &C, b: &BudgetRow) -> DbResult<usize> {
    write(c, UPDATE, 11, b)
}

/// Runs INSERT or UPDATE: `?1`..`?7` the allowance, then id, model_max_budget, the update
/// stamp, and (INSERT only) the creation stamp.
fn write<C: Handle + ?Sized>(c: &C, sql: &str, n: usize, b: &BudgetRow) -> DbResult<usize> {
    let mmb = b.model_max_budget.as_ref().map(|m| m.to_string());
    let a = allowance_args(&b.allowance);
    let args: [Arg<'_>; 13] = [
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
        a[5],
        a[6],
        (&b.id).into(),
        (&mmb).into(),
        (&b.updated_at).into(),
        (&b.updated_by).into(),
        (&b.created_at).into(),
        (&b.created_by).into(),
    ];
    c.exec(sql, &args[..n])
}

/// A new row with only `max_budget` set: a membership's budget (`max_budget_in_team`,
/// `max_budget_in_organization`), written by `by`.
pub fn new_max_budget_row(max_budget: f64, by: Option<&str>) -> BudgetRow {
    let now = crate::util::now_iso();
    BudgetRow {
        id: crate::util::uuid4(),
        allowance: Allowance {
            max_budget: Some(max_budget),
            ..Allowance::default()
        },
        created_at: now.clone(),
        updated_at: now,
        created_by: by.map(str::to_string),
        updated_by: by.map(str::to_string),
        ..BudgetRow::default()
    }
}

const DELETE: &str = "DELETE FROM budgets WHERE id = ?1";

/// Deletes a budget; rows that reference it get NULL (ON DELETE SET NULL). Returns rows deleted.
pub fn delete<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<usize> {
    c.exec(DELETE, &[id.into()])
}

const DELETE_IF_UNUSED: &str = "DELETE FROM budgets WHERE id = ?1
    AND NOT EXISTS (SELECT 1 FROM organizations WHERE budget_id = ?1)
    AND NOT EXISTS (SELECT 1 FROM organization_members WHERE budget_id = ?1)
    AND NOT EXISTS (SELECT 1 FROM team_members WHERE budget_id = ?1)
    AND NOT EXISTS (SELECT 1 FROM end_users WHERE budget_id = ?1)";

/// Deletes a budget only when no organization, membership or end user still refers to it (used when the
/// org or membership that owned it goes). Returns rows deleted.
pub fn delete_if_unused<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<usize> {
    c.exec(DELETE_IF_UNUSED, &[id.into()])
}
