//! A budget holder's state as stored now, for the two readers that cannot use the key check's
//! snapshot: strict admission on SQLite (`call::budget`: the spend recorded at this moment,
//! read under the reservations' lock) and budget alerts (`alerts`: spend, `max_budget`,
//! `soft_budget` and the period, then the crossing remembered once). One fn per query, on
//! `handle::Handle` (both engines). Holders are named as `call::budget::spend_ids` names
//! them: the holder's id, or a membership's team or organization and its user.

use super::handle::{DbResult, Handle, Row};
use crate::hierarchy::Level;

/// The spend of a holder now (`None`: the holder is gone).
pub fn spend_of<C: Handle + ?Sized>(
    c: &C,
    level: Level,
    a: &str,
    b: &str,
) -> DbResult<Option<f64>> {
    let sql = match level {
        Level::Key => "SELECT spend FROM api_keys WHERE token = ?1",
        Level::Team => "SELECT spend FROM teams WHERE id = ?1",
        Level::Org => "SELECT spend FROM organizations WHERE id = ?1",
        Level::User => "SELECT spend FROM users WHERE id = ?1",
        Level::TeamMember => "SELECT spend FROM team_members WHERE team_id = ?1 AND user_id = ?2",
        Level::OrgMember => {
            "SELECT spend FROM organization_members WHERE organization_id = ?1 AND user_id = ?2"
        }
    };
    c.one(sql, &args(level, a, b), |r| r.get::<f64>(0))
}

/// The parameters: a membership's two ids, a holder's one.
fn args<'a>(level: Level, a: &'a str, b: &'a str) -> Vec<super::sql::Arg<'a>> {
    match level {
        Level::TeamMember | Level::OrgMember => vec![a.into(), b.into()],
        _ => vec![a.into()],
    }
}

/// What an alert is decided on.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub spend: f64,
    pub max_budget: Option<f64>,
    pub soft_budget: Option<f64>,
    /// The budget period, as its reset time ('' when the budget never resets): a crossing is
    /// alerted once per period.
    pub period: String,
}

fn state(r: &Row<'_, '_>) -> DbResult<State> {
    Ok(State {
        spend: r.get(0)?,
        max_budget: r.get(1)?,
        soft_budget: r.get(2)?,
        period: r.get::<Option<String>>(3)?.unwrap_or_default(),
    })
}

/// A holder's spend and budgets now (`None`: gone). Organizations and memberships keep their
/// budget in `budgets` (LiteLLM's budget table).
pub fn state_of<C: Handle + ?Sized>(
    c: &C,
    level: Level,
    a: &str,
    b: &str,
) -> DbResult<Option<State>> {
    let sql = match level {
        Level::Key => {
            "SELECT spend, max_budget, soft_budget, budget_reset_at FROM api_keys \
                       WHERE token = ?1"
        }
        Level::Team => {
            "SELECT spend, max_budget, soft_budget, budget_reset_at FROM teams \
                        WHERE id = ?1"
        }
        Level::User => {
            "SELECT spend, max_budget, soft_budget, budget_reset_at FROM users \
                        WHERE id = ?1"
        }
        Level::Org => {
            "SELECT o.spend, b.max_budget, b.soft_budget, b.budget_reset_at \
                       FROM organizations o LEFT JOIN budgets b ON b.id = o.budget_id \
                       WHERE o.id = ?1"
        }
        Level::TeamMember => {
            "SELECT m.spend, b.max_budget, b.soft_budget, b.budget_reset_at \
                              FROM team_members m LEFT JOIN budgets b ON b.id = m.budget_id \
                              WHERE m.team_id = ?1 AND m.user_id = ?2"
        }
        Level::OrgMember => {
            "SELECT m.spend, b.max_budget, b.soft_budget, b.budget_reset_at \
                             FROM organization_members m LEFT JOIN budgets b ON b.id = m.budget_id \
                             WHERE m.organization_id = ?1 AND m.user_id = ?2"
        }
    };
    c.one(sql, &args(level, a, b), state)
}

const REMEMBER: &str = "INSERT INTO budget_alerts (scope, holder, period, mark, sent_at) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope, holder, period, mark) DO NOTHING";

/// Remembers that `holder`'s spend crossed `mark` (a threshold like `max:0.8`, or `soft`) in
/// `period`; true only for the first to remember it (on any instance): that one alerts.
pub fn remember_crossing<C: Handle + ?Sized>(
    c: &C,
    scope: &str,
    holder: &str,
    period: &str,
    mark: &str,
) -> DbResult<bool> {
    let now = crate::util::now_iso();
    let n = c.exec(
        REMEMBER,
        &[
            scope.into(),
            holder.into(),
            period.into(),
            mark.into(),
            (&now).into(),
        ],
    )?;
    Ok(n == 1)
}

const FORGET: &str =
    "DELETE FROM budget_alerts WHERE scope = ?1 AND holder = ?2 AND period = ?3 AND mark = ?4";

/// Forgets a crossing whose alert could not be delivered after every retry, so a later call
/// may alert it again.
pub fn forget_crossing<C: Handle + ?Sized>(
    c: &C,
    scope: &str,
    holder: &str,
    period: &str,
    mark: &str,
) -> DbResult<()> {
    c.exec(
        FORGET,
        &[scope.into(), holder.into(), period.into(), mark.into()],
    )
    .map(|_| ())
}
