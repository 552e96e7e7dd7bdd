//! Budgets at request time (API.md §7). Owns the check order (key, team, organization, user,
//! member) against the spend loaded by THE key check, and the in-memory reservations that keep
//! concurrent calls from overshooting a budget: each admitted call reserves its estimated cost
//! until its real spend is recorded, and a `Reservation` (which owns an `Arc` of its ledger)
//! gives it back on drop (SQLite; on PostgreSQL `call::shared` keeps reservations in the
//! database for every instance, on the same `budgets_of`). Persisting spend is `db::spend`'s
//! (through `call::Ledger`); resetting it when `budget_reset_at` passes is
//! `db::spend::reset_due`'s.

use super::end_user::EndUser;
use crate::db::key_check::KeyRow;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::hierarchy::Level;

/// Estimated cost of calls admitted but not yet recorded, per budget holder.
#[derive(Default)]
pub struct Reservations {
    inflight: Mutex<HashMap<(Level, String), f64>>,
}

/// An admitted call's reservation; released on drop (every exit path).
/// It owns an `Arc` of the ledger, so it may outlive the handler (a stream holds it until it
/// is settled).
pub struct Reservation {
    owner: Arc<Reservations>,
    held: Vec<((Level, String), f64)>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let mut m = self
            .owner
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (k, amount) in self.held.drain(..) {
            if let Some(v) = m.get_mut(&k) {
                *v -= amount;
                if *v <= 1e-12 {
                    m.remove(&k);
                }
            }
        }
    }
}

/// (level, holder id, spend so far, max budget) for every budget that applies to this key.
/// The one place that says which budgets apply (in memory here, shared on PostgreSQL:
/// `call::shared`).
pub(super) fn budgets_of(k: &KeyRow) -> Vec<(Level, String, f64, f64)> {
    let mut v = Vec::new();
    if let Some(max) = k.max_budget {
        v.push((Level::Key, k.token.clone(), k.spend, max));
    }
    if let Some(t) = &k.team {
        if let Some(max) = t.max_budget {
            v.push((Level::Team, t.id.clone(), t.spend, max));
        }
    }
    if let Some(o) = &k.org {
        if let Some(max) = o.max_budget {
            v.push((Level::Org, o.id.clone(), o.spend, max));
        }
    }
    // User budgets apply to personal keys only (API.md §8).
    if k.team_id.is_none() {
        if let Some(u) = &k.user {
            if let Some(max) = u.max_budget {
                v.push((Level::User, u.id.clone(), u.spend, max));
            }
        }
    }
    if let (Some(m), Some(t), Some(u)) = (&k.team_member, &k.team_id, &k.user_id) {
        if let Some(max) = m.max_budget {
            v.push((Level::TeamMember, format!("{t}/{u}"), m.spend, max));
        }
    }
    if let (Some(m), Some(o), Some(u)) = (&k.org_member, &k.org, &k.user_id) {
        if let Some(max) = m.max_budget {
            v.push((Level::OrgMember, format!("{}/{u}", o.id), m.spend, max));
        }
    }
    v
}

/// Every budget a call answers to: its key's (`budgets_of`), then its end user's.
pub(super) fn budgets_of_call(
    k: Option<&KeyRow>,
    e: Option<&EndUser>,
) -> Vec<(Level, String, f64, f64)> {
    let mut v = k.map(budgets_of).unwrap_or_default();
    v.extend(e.and_then(EndUser::budget));
    v
}

/// The 422 of a spent budget (API.md §7), in LiteLLM's words (an end user's: LiteLLM's
/// `_check_end_user_budget`).
pub(super) fn exceeded(level: Level, id: &str, spend: f64, max: f64) -> Error {
    if level == Level::EndUser {
        return Error::BudgetExceeded(format!(
            "ExceededBudget: End User={id} over budget. Spend={spend}, Budget={max}"
        ));
    }
    Error::BudgetExceeded(format!(
        "Budget has been exceeded! {}={id} Current cost: {spend}, Max budget: {max}",
        level.name()
    ))
}

/// The ids a budget's recorded spend is found by in the store, for a budget
/// `budgets_of_call` gave for this call (`holder` its id): the holder's id, or a membership's
/// team or organization and its user.
pub(super) fn spend_ids<'a>(
    level: Level,
    holder: &'a str,
    k: Option<&'a KeyRow>,
) -> (&'a str, &'a str) {
    let Some(k) = k else {
        // Without a key only the end user's budget applies.
        return (holder, "");
    };
    let user = k.user_id.as_deref().unwrap_or_default();
    let team = k.team_id.as_deref().unwrap_or_default();
    let org = k.org.as_ref().map_or("", |o| o.id.as_str());
    match level {
        Level::Key => (&k.token, ""),
        Level::Team => (k.team.as_ref().map_or(team, |t| t.id.as_str()), ""),
        Level::Org => (org, ""),
        Level::User => (k.user.as_ref().map_or(user, |u| u.id.as_str()), ""),
        Level::TeamMember => (team, user),
        Level::OrgMember => (org, user),
        Level::EndUser => (holder, ""),
    }
}

/// The 422 of strict enforcement (README "Budgets that never overshoot"): the call's worst case
/// does not fit in what remains of a budget. Starts as LiteLLM's budget error does.
pub(super) fn would_exceed(
    level: Level,
    id: &str,
    spend: f64,
    reserved: f64,
    max: f64,
    worst: f64,
) -> Error {
    let remaining = (max - spend - reserved).max(0.0);
    Error::BudgetExceeded(format!(
        "Budget would be exceeded! {}={id} Current cost: {spend}, Max budget: {max};          budget_enforcement is strict: this call's worst-case cost {worst:.8} is more than the          {remaining:.8} that remains ({reserved:.8} reserved by calls in flight)",
        level.name()
    ))
}

/// THE rule of a budget at admission (API.md §7): spent once its recorded spend plus what calls
/// in flight reserved has reached `max_budget`. Admission (`Reservations::reserve`, `fits`) and
/// `/access/explain` decide by it (`litegate_admit` says the same in SQL).
pub fn spent(spend: f64, reserved: f64, max: f64) -> bool {
    spend + reserved >= max
}

/// A call's worst case is compared with this much less than what remains: the sums of
/// floating-point costs in the store must not pass `max_budget` by a rounding error.
pub const ROUNDING_MARGIN: f64 = 1e-9;

/// Whether a strict call with worst case `worst` fits a budget (`spend` recorded, `reserved` by
/// calls in flight): the default rule (not yet spent) and the worst case within what remains.
pub(super) fn fits(spend: f64, reserved: f64, max: f64, worst: f64) -> bool {
    !spent(spend, reserved, max) && spend + reserved + worst * (1.0 + ROUNDING_MARGIN) <= max
}

impl Reservations {
    /// Strict enforcement: admits the call only if `worst` fits every budget after the spend
    /// recorded *now* (`spend_now`: each budget's by its `spend_ids`, all read at once under the
    /// lock, in one read of the store: the key check's figure
    /// may predate a call that settled since and whose reservation is gone) and what calls in
    /// flight reserved; then reserves `worst` on each. A call settles (commits its spend)
    /// before its reservation is released, so the two reads never miss a call.
    pub fn reserve_strict(
        self: &Arc<Self>,
        k: Option<&KeyRow>,
        e: Option<&EndUser>,
        worst: f64,
        spend_now: impl FnOnce(&[(Level, &str, &str)]) -> Result<Vec<Option<f64>>>,
    ) -> Result<Reservation> {
        let budgets = budgets_of_call(k, e);
        let worst = if worst.is_finite() && worst > 0.0 {
            worst
        } else {
            0.0
        };
        let mut held = Vec::with_capacity(budgets.len());
        if budgets.is_empty() {
            return Ok(Reservation {
                owner: Arc::clone(self),
                held,
            });
        }
        let ids: Vec<(Level, &str, &str)> = budgets
            .iter()
            .map(|(level, id, ..)| {
                let (a, b) = spend_ids(*level, id, k);
                (*level, a, b)
            })
            .collect();
        let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let now = spend_now(&ids)?;
        for (i, (level, id, key_spend, max)) in budgets.iter().enumerate() {
            let spend = now.get(i).copied().flatten().unwrap_or(*key_spend);
            let reserved = m.get(&(*level, id.clone())).copied().unwrap_or(0.0);
            if !fits(spend, reserved, *max, worst) {
                return Err(if spent(spend, reserved, *max) {
                    exceeded(*level, id, spend, *max)
                } else {
                    would_exceed(*level, id, spend, reserved, *max, worst)
                });
            }
        }
        for (level, id, _, _) in budgets {
            let key = (level, id);
            *m.entry(key.clone()).or_insert(0.0) += worst;
            held.push((key, worst));
        }
        Ok(Reservation {
            owner: Arc::clone(self),
            held,
        })
    }

    /// Refuses the call (422 naming the level) when any budget's recorded spend plus what calls
    /// in flight have reserved has reached its maximum; otherwise reserves `estimate` on each.
    /// The budgets are the key's (none for the master key) and the end user's, if any.
    pub fn reserve(
        self: &Arc<Self>,
        k: Option<&KeyRow>,
        e: Option<&EndUser>,
        estimate: f64,
    ) -> Result<Reservation> {
        let budgets = budgets_of_call(k, e);
        if budgets.is_empty() {
            return Ok(Reservation {
                owner: Arc::clone(self),
                held: Vec::new(),
            });
        }
        let estimate = if estimate.is_finite() && estimate > 0.0 {
            estimate
        } else {
            0.0
        };
        let mut m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        for (level, id, spend, max) in &budgets {
            let reserved = m.get(&(*level, id.clone())).copied().unwrap_or(0.0);
            if spent(*spend, reserved, *max) {
                return Err(exceeded(*level, id, *spend, *max));
            }
        }
        let mut held = Vec::with_capacity(budgets.len());
        for (level, id, _, _) in budgets {
            let key = (level, id);
            *m.entry(key.clone()).or_insert(0.0) += estimate;
            held.push((key, estimate));
        }
        Ok(Reservation {
            owner: Arc::clone(self),
            held,
        })
    }

    /// What calls in flight have reserved on one budget now (`/access/explain`; changes
    /// nothing).
    pub fn reserved_on(&self, level: Level, id: &str) -> f64 {
        let m = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&(level, id.to_string())).copied().unwrap_or(0.0)
    }

    #[cfg(test)]
    fn reserved(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::key_check::{KeyRow, TeamPart};

    fn key(spend: f64, max: Option<f64>) -> KeyRow {
        KeyRow {
            token: "t".into(),
            key_name: "sk-...".into(),
            key_alias: None,
            models: vec![],
            aliases: "{}".into(),
            team_id: Some("team".into()),
            user_id: None,
            organization_id: None,
            expires: None,
            blocked: false,
            spend,
            max_budget: max,
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
            team: Some(TeamPart {
                id: "team".into(),
                alias: None,
                organization_id: None,
                models: vec![],
                blocked: false,
                spend: 0.0,
                max_budget: Some(100.0),
                tpm_limit: None,
                rpm_limit: None,
                max_parallel_requests: None,
                model_aliases: "{}".into(),
            }),
            org: None,
            user: None,
            team_member: None,
            org_member: None,
            calls_only: false,
            models_generation: 0,
        }
    }

    #[test]
    fn under_budget_reserves_and_releases() {
        let r = Arc::new(Reservations::default());
        let k = key(0.5, Some(1.0));
        let a = r.reserve(Some(&k), None, 0.3).expect("first");
        let b = r
            .reserve(Some(&k), None, 0.3)
            .expect("second: 0.5 + 0.3 < 1");
        // 0.5 spent + 0.6 reserved >= 1: the third waits for the others to settle.
        let e = r.reserve(Some(&k), None, 0.3).err().expect("third refused");
        assert_eq!(e.status(), 422);
        assert!(e.message().contains("Key="), "{}", e.message());
        drop(a);
        drop(b);
        assert_eq!(r.reserved(), 0);
        assert!(r.reserve(Some(&k), None, 0.3).is_ok());
    }

    #[test]
    fn strict_admits_only_a_worst_case_that_fits() {
        let r = Arc::new(Reservations::default());
        let k = key(0.0, Some(1.0));
        // The store says 0.5 was spent since the key check read 0.
        let now = |ids: &[(Level, &str, &str)]| Ok(vec![Some(0.5); ids.len()]);
        let a = r
            .reserve_strict(Some(&k), None, 0.3, now)
            .expect("0.5 + 0.3 <= 1");
        let e = r
            .reserve_strict(Some(&k), None, 0.3, now)
            .err()
            .expect("0.5 + 0.3 + 0.3 > 1");
        assert_eq!(e.status(), 422);
        assert!(
            e.message().contains("would be exceeded! Key=t"),
            "{}",
            e.message()
        );
        assert!(
            e.message().contains("worst-case cost 0.3"),
            "{}",
            e.message()
        );
        assert!(
            e.message().contains("0.20000000 that remains"),
            "{}",
            e.message()
        );
        // A smaller call still fits what remains; the budget exactly used up is refused.
        let b = r
            .reserve_strict(Some(&k), None, 0.19, now)
            .expect("0.5 + 0.3 + 0.19 <= 1");
        drop((a, b));
        assert_eq!(r.reserved(), 0);
        let spent = |ids: &[(Level, &str, &str)]| Ok(vec![Some(1.0); ids.len()]);
        let e = r
            .reserve_strict(Some(&k), None, 0.0, spent)
            .err()
            .expect("spent");
        assert!(e.message().contains("has been exceeded"), "{}", e.message());
        assert!(!fits(0.5, 0.0, 1.0, 0.5 + 1e-6));
        assert!(fits(0.5, 0.0, 1.0, 0.4));
    }

    #[test]
    fn spent_budget_names_the_level() {
        let r = Arc::new(Reservations::default());
        let mut k = key(0.0, None);
        if let Some(t) = k.team.as_mut() {
            t.spend = 100.0;
        }
        let e = r.reserve(Some(&k), None, 0.0).err().expect("team spent");
        assert!(e.message().contains("Team=team"), "{}", e.message());
        assert!(e.message().contains("Current cost: 100"), "{}", e.message());
    }

    /// The shared admission finds each budget's spend by these ids (`call::shared`): one per
    /// budget `budgets_of` gives, a membership's by its team or org and its user.
    #[test]
    fn every_budget_has_the_ids_its_spend_is_found_by() {
        use crate::db::key_check::{MemberPart, OrgPart};
        let member = |max| MemberPart {
            role: "user".into(),
            spend: 0.0,
            max_budget: Some(max),
        };
        let mut k = key(0.0, Some(1.0));
        k.user_id = Some("u".into());
        k.team_member = Some(member(2.0));
        k.org_member = Some(member(3.0));
        k.org = Some(OrgPart {
            id: "o".into(),
            models: vec![],
            blocked: false,
            spend: 0.0,
            max_budget: Some(4.0),
            tpm_limit: None,
            rpm_limit: None,
            max_parallel_requests: None,
        });
        let budgets = budgets_of(&k);
        let ids: Vec<(Level, String, (&str, &str))> = budgets
            .iter()
            .map(|(l, id, _, _)| (*l, id.clone(), spend_ids(*l, id, Some(&k))))
            .collect();
        assert_eq!(
            ids,
            vec![
                (Level::Key, "t".into(), ("t", "")),
                (Level::Team, "team".into(), ("team", "")),
                (Level::Org, "o".into(), ("o", "")),
                (Level::TeamMember, "team/u".into(), ("team", "u")),
                (Level::OrgMember, "o/u".into(), ("o", "u")),
            ]
        );
    }

    #[test]
    fn a_reservation_outlives_the_handle_it_came_from() {
        let r = Arc::new(Reservations::default());
        let k = key(0.0, Some(1.0));
        let held = r.reserve(Some(&k), None, 0.5).expect("reserved");
        let watcher = Arc::downgrade(&r);
        drop(r);
        let r = watcher
            .upgrade()
            .expect("the reservation keeps its ledger alive");
        assert_eq!(r.reserved(), 2, "the key's budget and its team's");
        drop(held);
        assert_eq!(r.reserved(), 0);
    }
}
