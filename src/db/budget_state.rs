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
        Level::EndUser => "SELECT spend FROM end_users WHERE id = ?1",
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
        // The config's default end-user budget (`max_end_user_budget`) is not seen here: end
        // users are alerted on the budget row they have.
        Level::EndUser => {
            "SELECT e.spend, b.max_budget, b.soft_budget, b.budget_reset_at \
                           FROM end_users e LEFT JOIN budgets b ON b.id = e.budget_id \
                           WHERE e.id = ?1"
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// A migrated in-memory store with one holder of each level, spend 1..7 and budgets.
    fn store() -> Connection {
        let mut c = Connection::open_in_memory().expect("mem");
        crate::db::migrate::migrate(&mut c).expect("migrate");
        let n = "'2026-01-01T00:00:00.000Z'";
        c.execute_batch(&format!(
            "INSERT INTO budgets (id, max_budget, soft_budget, budget_reset_at, created_at,
                 updated_at) VALUES
                 ('bo', 30, 3, 'P-org', {n}, {n}), ('bt', 50, NULL, NULL, {n}, {n}),
                 ('bm', 60, 6, 'P-om', {n}, {n});
             INSERT INTO organizations (id, alias, spend, budget_id, created_at, updated_at)
                 VALUES ('o', 'o', 3, 'bo', {n}, {n});
             INSERT INTO users (id, user_role, spend, max_budget, soft_budget, created_at,
                 updated_at) VALUES ('u', 'internal_user', 4, 40, 4, {n}, {n});
             INSERT INTO teams (id, organization_id, spend, max_budget, budget_reset_at,
                 created_at, updated_at) VALUES ('t', 'o', 2, 20, 'P-team', {n}, {n});
             INSERT INTO team_members (team_id, user_id, role, spend, budget_id, created_at,
                 updated_at) VALUES ('t', 'u', 'user', 5, 'bt', {n}, {n});
             INSERT INTO organization_members (organization_id, user_id, user_role, spend,
                 budget_id, created_at, updated_at) VALUES ('o', 'u', 'internal_user', 6, 'bm',
                 {n}, {n});
             INSERT INTO end_users (id, spend, budget_id, created_at, updated_at)
                 VALUES ('e', 7, 'bm', {n}, {n});
             INSERT INTO api_keys (token, key_name, team_id, user_id, spend, max_budget,
                 created_at, updated_at) VALUES ('k', 'sk-...k', 't', 'u', 1, 10, {n}, {n});"
        ))
        .expect("seed");
        c
    }

    #[test]
    fn every_level_is_read_by_its_ids() {
        let c = store();
        let cases = [
            (Level::Key, "k", "", 1.0, Some(10.0), None, ""),
            (Level::Team, "t", "", 2.0, Some(20.0), None, "P-team"),
            (Level::Org, "o", "", 3.0, Some(30.0), Some(3.0), "P-org"),
            (Level::User, "u", "", 4.0, Some(40.0), Some(4.0), ""),
            (Level::TeamMember, "t", "u", 5.0, Some(50.0), None, ""),
            (
                Level::OrgMember,
                "o",
                "u",
                6.0,
                Some(60.0),
                Some(6.0),
                "P-om",
            ),
            (Level::EndUser, "e", "", 7.0, Some(60.0), Some(6.0), "P-om"),
        ];
        for (level, a, b, spend, max, soft, period) in cases {
            assert_eq!(
                spend_of(&c, level, a, b).expect("spend"),
                Some(spend),
                "{level:?}"
            );
            let st = state_of(&c, level, a, b).expect("state").expect("found");
            assert_eq!(
                st,
                State {
                    spend,
                    max_budget: max,
                    soft_budget: soft,
                    period: period.into()
                },
                "{level:?}"
            );
            assert_eq!(spend_of(&c, level, "gone", b).expect("spend"), None);
        }
    }

    #[test]
    fn a_crossing_is_remembered_once_until_forgotten() {
        let c = store();
        let first = remember_crossing(&c, "key", "k", "", "max:0.5").expect("remember");
        let again = remember_crossing(&c, "key", "k", "", "max:0.5").expect("remember");
        let next_period = remember_crossing(&c, "key", "k", "P2", "max:0.5").expect("remember");
        assert_eq!((first, again, next_period), (true, false, true));
        forget_crossing(&c, "key", "k", "", "max:0.5").expect("forget");
        assert!(remember_crossing(&c, "key", "k", "", "max:0.5").expect("remember"));
    }
}
