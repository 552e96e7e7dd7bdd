//! Budget endpoints (API.md §6 Budgets, §8 "Budgets endpoints"): `/budget/new`, `/update`,
//! `/info`, `/list`, `/delete`. Reads are for proxy admins and proxy admin viewers, writes for
//! proxy admins only. Also owns `BudgetPatch`, the budget fields (allowance and `model_max_budget`) that
//! `/organization/new` and `/organization/update` accept too. Spend checks and resets at request
//! time are not here (they belong to the key check and the spend writer).

use super::{patch, Body, Ctx, Reply, Req};
use crate::access::policy;
use crate::audit::{Actor, Entry};
use crate::auth::Caller;
use crate::db::rows::unique_or;
use crate::db::{self, budgets::BudgetRow};
use crate::error::{Error, Result};
use crate::hierarchy::{AllowancePatch, Patch};
use crate::util;
use serde_json::Value;

/// The budget fields of a body (LiteLLM's `LiteLLM_BudgetTable` columns): the allowance and
/// `model_max_budget`, each by the one update rule (absent keeps, `null` clears, value sets).
#[derive(Debug, Default, Clone)]
pub struct BudgetPatch {
    allowance: AllowancePatch,
    model_max_budget: Patch<Value>,
}

/// `model_max_budget`: an object from model name to a budget (a number ≥ 0) or to a budget
/// object (LiteLLM's `BudgetConfig`) whose numeric fields are ≥ 0.
fn model_max_budget(b: &Body, f: &str) -> Result<Option<Value>> {
    let Some(m) = b.opt_obj(f)? else {
        return Ok(None);
    };
    let bad = |model: &str| {
        Error::bad_param(
            f,
            format!("`{f}` must map model names to budgets ≥ 0; bad entry for '{model}'"),
        )
    };
    let non_negative = |v: &Value| v.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0);
    for (model, v) in &m {
        match v {
            Value::Number(_) if non_negative(v) => {}
            Value::Object(o) => {
                for (k, x) in o {
                    let numeric = matches!(
                        k.as_str(),
                        "max_budget" | "soft_budget" | "tpm_limit" | "rpm_limit"
                    );
                    if numeric && !x.is_null() && !non_negative(x) {
                        return Err(bad(model));
                    }
                }
            }
            _ => return Err(bad(model)),
        }
    }
    Ok(Some(Value::Object(m)))
}

impl BudgetPatch {
    /// Parses and validates the budget fields (400 naming the field on bad input).
    pub fn parse(b: &Body) -> Result<BudgetPatch> {
        Ok(BudgetPatch {
            allowance: patch::allowance(b)?,
            model_max_budget: patch::field(b, "model_max_budget", model_max_budget)?,
        })
    }

    /// The first budget field present in the body (even as `null`), if any.
    pub fn first_present(b: &Body) -> Option<&'static str> {
        AllowancePatch::FIELDS
            .into_iter()
            .chain(["model_max_budget"])
            .find(|f| b.has(f))
    }

    /// Applies the patch to a row; a new or cleared duration restarts or clears the reset time.
    pub fn apply(&self, row: &mut BudgetRow, now_ms: i64) {
        self.allowance.apply(&mut row.allowance, now_ms);
        self.model_max_budget.apply(&mut row.model_max_budget);
    }

    /// A new budget row with these fields.
    pub fn new_row(&self, id: String, who: &Caller) -> BudgetRow {
        let now_ms = util::now_ms();
        let now = util::iso_from_ms(now_ms);
        let mut row = BudgetRow {
            id,
            created_at: now.clone(),
            updated_at: now,
            created_by: who.user_id.clone(),
            updated_by: who.user_id.clone(),
            ..BudgetRow::default()
        };
        self.apply(&mut row, now_ms);
        row
    }
}

/// An optional id field: absent or null is None; present, it must be a non-empty string.
pub fn opt_id(b: &Body, f: &str) -> Result<Option<String>> {
    match b.opt_str(f)? {
        Some(s) if s.trim().is_empty() => Err(Error::bad_param(f, format!("`{f}` is empty"))),
        other => Ok(other),
    }
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("Budget not found: {id}"))
}

/// `POST /budget/new` (proxy admin).
pub fn create(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let b = req.json()?;
    let id = opt_id(&b, "budget_id")?.unwrap_or_else(util::uuid4);
    let row = BudgetPatch::parse(&b)?.new_row(id, who);
    ctx.pool.write_db(|tx| {
        db::budgets::insert(tx, &row)
            .map_err(|e| unique_or(e, || format!("Budget id already exists: {}", row.id)))?;
        Entry::new("create", "budget", &row.id)
            .after(row.to_json())
            .record(tx, &Actor::of(who))
    })?;
    Reply::ok(row.to_json())
}

/// `POST /budget/update` (proxy admin): `budget_id` plus the fields to change.
pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let b = req.json()?;
    let id = b.req_str("budget_id")?;
    let patch = BudgetPatch::parse(&b)?;
    let row = ctx.pool.write_db(|tx| {
        let mut row = db::budgets::get(tx, &id)?.ok_or_else(|| not_found(&id))?;
        let before = row.to_json();
        let now_ms = util::now_ms();
        patch.apply(&mut row, now_ms);
        row.updated_at = util::iso_from_ms(now_ms);
        row.updated_by = who.user_id.clone();
        db::budgets::update(tx, &row)?;
        Entry::new("update", "budget", &id)
            .before(before)
            .after(row.to_json())
            .record(tx, &Actor::of(who))?;
        Ok(row)
    })?;
    Reply::ok(row.to_json())
}

/// `POST /budget/info` (proxy admin, viewer): `{"budgets": [ids]}` → the rows; any unknown → 404.
pub fn info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_budget_reader(who)?;
    let b = req.json()?;
    let ids = b.opt_list("budgets")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_param(
            "budgets",
            "`budgets` is required: a non-empty list of budget ids",
        ));
    }
    let rows = ctx.pool.read_db(|c| {
        ids.iter()
            .map(|id| db::budgets::get(c, id)?.ok_or_else(|| not_found(id)))
            .collect::<Result<Vec<_>>>()
    })?;
    Reply::ok(Value::Array(rows.iter().map(BudgetRow::to_json).collect()))
}

/// `GET /budget/list` (proxy admin, viewer).
pub fn list(ctx: &Ctx, who: &Caller, _req: &Req) -> Result<Reply> {
    policy::require_budget_reader(who)?;
    let rows = ctx.pool.read_db(|c| Ok(db::budgets::list(c)?))?;
    Reply::ok(Value::Array(rows.iter().map(BudgetRow::to_json).collect()))
}

/// `POST /budget/delete` (proxy admin): `id` (LiteLLM's field) or `budget_id`. Rows that used
/// the budget keep existing without one (the schema's ON DELETE SET NULL), as in LiteLLM.
pub fn delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let b = req.json()?;
    let id = match opt_id(&b, "id")? {
        Some(id) => id,
        None => b.req_str("budget_id").map_err(|_| {
            Error::bad_param(
                "id",
                "`id` (or `budget_id`) of the budget to delete is required",
            )
        })?,
    };
    let row = ctx.pool.write_db(|tx| {
        let row = db::budgets::get(tx, &id)?.ok_or_else(|| not_found(&id))?;
        db::budgets::delete(tx, &id)?;
        Entry::new("delete", "budget", &id)
            .before(row.to_json())
            .record(tx, &Actor::of(who))?;
        Ok(row)
    })?;
    Reply::ok(row.to_json())
}
