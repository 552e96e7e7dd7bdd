//! End-user queries (the `end_users` table of schema 0007 / pg 0004, LiteLLM's
//! `LiteLLM_EndUserTable`): the management reads and writes of `/end_user/*`, and the one read
//! a model call naming an end user makes (`load_for_call`). One fn per query, on the
//! engine-neutral `handle::Handle`. Who may change an end user is the handlers' business; the
//! spend a call adds is `spend::record`'s (which creates unknown end users, as LiteLLM does).

use super::handle::{DbResult, Handle, Row};
use super::sql::Arg;

/// An end-user row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndUserRow {
    pub id: String,
    pub alias: Option<String>,
    pub spend: f64,
    pub allowed_model_region: Option<String>,
    pub default_model: Option<String>,
    pub budget_id: Option<String>,
    pub blocked: bool,
    pub created_at: String,
    pub updated_at: String,
}

fn row(r: &Row<'_, '_>) -> DbResult<EndUserRow> {
    Ok(EndUserRow {
        id: r.get(0)?,
        alias: r.get(1)?,
        spend: r.get(2)?,
        allowed_model_region: r.get(3)?,
        default_model: r.get(4)?,
        budget_id: r.get(5)?,
        blocked: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
    })
}

const GET: &str = "SELECT id, alias, spend, allowed_model_region, default_model, budget_id, \
                   blocked, created_at, updated_at FROM end_users WHERE id = ?1";

pub fn get<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<Option<EndUserRow>> {
    c.one(GET, &[id.into()], row)
}

const LIST: &str = "SELECT id, alias, spend, allowed_model_region, default_model, budget_id, \
                    blocked, created_at, updated_at FROM end_users ORDER BY id LIMIT ?1 OFFSET ?2";

/// One page of end users, by id.
pub fn list<C: Handle + ?Sized>(c: &C, limit: i64, offset: i64) -> DbResult<Vec<EndUserRow>> {
    c.all(LIST, &[limit.into(), offset.into()], row)
}

const INSERT: &str = "INSERT INTO end_users (id, alias, spend, allowed_model_region, \
                      default_model, budget_id, blocked, created_at, updated_at) \
                      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/// Inserts a row; a duplicate id is a PRIMARY KEY violation (the caller's 409).
pub fn insert<C: Handle + ?Sized>(c: &C, e: &EndUserRow) -> DbResult<()> {
    c.exec(INSERT, &args(e)).map(|_| ())
}

const UPDATE: &str = "UPDATE end_users SET alias = ?2, spend = ?3, allowed_model_region = ?4, \
                      default_model = ?5, budget_id = ?6, blocked = ?7, updated_at = ?8 \
                      WHERE id = ?1";

/// Writes every changeable column of a row read and patched by the caller (not `created_at`).
/// Returns rows changed.
pub fn update<C: Handle + ?Sized>(c: &C, e: &EndUserRow) -> DbResult<usize> {
    let a = args(e);
    c.exec(UPDATE, &[a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[8]])
}

fn args(e: &EndUserRow) -> [Arg<'_>; 9] {
    [
        (&e.id).into(),
        (&e.alias).into(),
        Arg::Real(e.spend),
        (&e.allowed_model_region).into(),
        (&e.default_model).into(),
        (&e.budget_id).into(),
        e.blocked.into(),
        (&e.created_at).into(),
        (&e.updated_at).into(),
    ]
}

const DELETE: &str = "DELETE FROM end_users WHERE id = ?1";

/// Deletes one end user. Returns rows deleted.
pub fn delete<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<usize> {
    c.exec(DELETE, &[id.into()])
}

const BLOCK: &str = "INSERT INTO end_users (id, blocked, created_at, updated_at) \
                     VALUES (?1, 1, ?2, ?2) \
                     ON CONFLICT (id) DO UPDATE SET blocked = 1, updated_at = excluded.updated_at";

/// Blocks an end user, creating it when unknown (LiteLLM's `/customer/block` upserts).
pub fn block<C: Handle + ?Sized>(c: &C, id: &str, now: &str) -> DbResult<usize> {
    c.exec(BLOCK, &[id.into(), now.into()])
}

const UNBLOCK: &str = "UPDATE end_users SET blocked = 0, updated_at = ?2 WHERE id = ?1";

/// Unblocks a known end user. Returns rows changed (0: unknown).
pub fn unblock<C: Handle + ?Sized>(c: &C, id: &str, now: &str) -> DbResult<usize> {
    c.exec(UNBLOCK, &[id.into(), now.into()])
}

const BUDGET_SHARERS: &str = "SELECT
    (SELECT count(*) FROM end_users WHERE budget_id = ?1 AND id <> ?2)
  + (SELECT count(*) FROM organizations WHERE budget_id = ?1)
  + (SELECT count(*) FROM organization_members WHERE budget_id = ?1)
  + (SELECT count(*) FROM team_members WHERE budget_id = ?1)";

/// How many holders other than end user `id` use budget row `budget_id`.
pub fn budget_sharers<C: Handle + ?Sized>(c: &C, budget_id: &str, id: &str) -> DbResult<i64> {
    Ok(
        c.one(BUDGET_SHARERS, &[budget_id.into(), id.into()], |r| r.get(0))?
            .unwrap_or(0),
    )
}

/// What a model call needs to know about the end user its `user` field names: blocked, spend
/// so far, and the budget and limits of its budget row (or of the configured default row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndUserCheck {
    /// The row exists (else the call will create it with its first spend).
    pub known: bool,
    pub blocked: bool,
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub tpm_limit: Option<i64>,
    pub rpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
}

/// The call-time read: ONE statement, on the primary key and the budget's. The default budget
/// row (`max_end_user_budget_id`) applies to an end user without a budget row of its own,
/// known or not.
const FOR_CALL: &str = "SELECT e.id, COALESCE(e.blocked, 0), COALESCE(e.spend, 0), \
    b.max_budget, b.tpm_limit, b.rpm_limit, b.max_parallel_requests \
    FROM (SELECT CAST(?1 AS TEXT) AS id) q \
    LEFT JOIN end_users e ON e.id = q.id \
    LEFT JOIN budgets b ON b.id = COALESCE(e.budget_id, CAST(?2 AS TEXT))";

/// The end user `id` as a model call sees it (`default_budget`: the config's
/// `max_end_user_budget_id`).
pub fn load_for_call<C: Handle + ?Sized>(
    c: &C,
    id: &str,
    default_budget: Option<&str>,
) -> DbResult<EndUserCheck> {
    let found = c.one(FOR_CALL, &[id.into(), default_budget.into()], |r| {
        Ok(EndUserCheck {
            known: r.get::<Option<String>>(0)?.is_some(),
            blocked: r.get(1)?,
            spend: r.get(2)?,
            max_budget: r.get(3)?,
            tpm_limit: r.get(4)?,
            rpm_limit: r.get(5)?,
            max_parallel_requests: r.get(6)?,
        })
    })?;
    Ok(found.unwrap_or_default())
}
