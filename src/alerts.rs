//! Budget alerts (issue 16 item 2, README "Budgets that never overshoot"): a Slack-compatible
//! `{"text": …}` POST to `general_settings.alerting_webhook_url` when a budget holder's recorded
//! spend crosses its `soft_budget` or a fraction of its `max_budget`
//! (`general_settings.budget_alert_thresholds`, default LiteLLM's 85 %, 95 %, 100 %).
//!
//! - Never in a call's way: settlement hands the holders it touched to `Alerts::touched`, a
//!   `try_send` on a bounded queue (full: dropped; the next call on the holder sees the same
//!   state, crossings are decided from the spend, not from the call).
//! - Once per crossing per budget period, across restarts and instances: the checker thread
//!   reads each holder's spend and budgets (`db::budget_state::state_of`) and remembers every
//!   crossed mark in `budget_alerts` (INSERT … ON CONFLICT DO NOTHING); only the writer of the
//!   row alerts. The period is the holder's `budget_reset_at`, so a reset budget alerts anew.
//! - Delivery by a sender thread of its own (bounded queue): a timeout per attempt, retries
//!   with backoff on a 5xx, 429 or a transport fault; a crossing never delivered is forgotten
//!   again, so a later call may alert it.
//! - The URL is a secret (a Slack webhook's path is its credential): only its scheme and host
//!   are ever logged (`config::WebhookUrl::safe`), transport faults by kind only.

use crate::config::{Alerting, WebhookUrl};
use crate::db::budget_state::{self, State};
use crate::db::Pool;
use crate::hierarchy::Level;
use std::collections::BTreeSet;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Settled calls waiting for the checker (past this, touches are dropped).
const CHECK_QUEUE: usize = 1024;
/// Alerts waiting for delivery.
const SEND_QUEUE: usize = 256;
/// Attempts per alert, and the first backoff (doubled after each failure).
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// One attempt's deadline (connect, send, answer).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// A holder whose spend a settled call changed: its level, its id in `budget_alerts`
/// (`team/user`, `org/user` for memberships), the ids its row is found by, and how an alert
/// names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Holder {
    pub level: Level,
    pub id: String,
    pub a: String,
    pub b: String,
    pub label: String,
}

/// The alerting of this process; `None` in `Calls` when no webhook is configured.
pub struct Alerts {
    queue: SyncSender<Vec<Holder>>,
}

/// One alert for the sender: its text, and the marks to forget if it is never delivered.
struct Post {
    text: String,
    scope: &'static str,
    holder: String,
    period: String,
    marks: Vec<String>,
}

impl Alerts {
    /// Starts the checker and sender threads; `None` without a webhook (or without threads,
    /// logged: calls go on without alerts).
    pub fn start(pool: Arc<Pool>, cfg: &Alerting) -> Option<Alerts> {
        let url = cfg.webhook.clone()?;
        let thresholds = cfg.thresholds.clone();
        let (queue, touched) = sync_channel::<Vec<Holder>>(CHECK_QUEUE);
        let (out, posts) = sync_channel::<Post>(SEND_QUEUE);
        let host = url.safe();
        let sender_pool = Arc::clone(&pool);
        let started = std::thread::Builder::new()
            .name("alert-send".into())
            .stack_size(256 * 1024)
            .spawn(move || send_all(&sender_pool, &url, posts))
            .and_then(|_| {
                std::thread::Builder::new()
                    .name("alert-check".into())
                    .stack_size(256 * 1024)
                    .spawn(move || check_all(&pool, &thresholds, touched, out))
            });
        match started {
            Ok(_) => {
                log::info!(
                    "budget alerts go to {host} (thresholds {:?})",
                    cfg.thresholds
                );
                Some(Alerts { queue })
            }
            Err(e) => {
                log::error!("cannot start the budget alert threads: {e}; no alerts are sent");
                None
            }
        }
    }

    /// A settled call changed these holders' spend. Never blocks.
    pub fn touched(&self, holders: Vec<Holder>) {
        match self.queue.try_send(holders) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                log::debug!("budget alert queue full; the next call on these holders checks them")
            }
            Err(TrySendError::Disconnected(_)) => log::warn!("budget alert checker is gone"),
        }
    }
}

/// A crossed mark: `soft`, or `max:<fraction>`.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Soft(f64),
    Max { fraction: f64, max: f64 },
}

impl Mark {
    /// Its name in `budget_alerts.mark`.
    pub fn key(&self) -> String {
        match self {
            Mark::Soft(_) => "soft".into(),
            Mark::Max { fraction, .. } => format!("max:{fraction}"),
        }
    }
}

/// The marks `state`'s spend has reached (soft budget first, then thresholds ascending).
pub fn crossed(state: &State, thresholds: &[f64]) -> Vec<Mark> {
    let mut out = Vec::new();
    if let Some(soft) = state.soft_budget.filter(|s| *s > 0.0 && state.spend >= *s) {
        out.push(Mark::Soft(soft));
    }
    if let Some(max) = state.max_budget.filter(|m| *m > 0.0) {
        for &t in thresholds {
            if state.spend >= t * max {
                out.push(Mark::Max { fraction: t, max });
            }
        }
    }
    out
}

/// The alert's words for `mark`, newly crossed by `who`.
fn text(who: &Holder, state: &State, mark: &Mark) -> String {
    let what = format!("{} {}", who.level.noun(), who.label);
    match mark {
        Mark::Soft(soft) => format!(
            "Budget alert: soft budget crossed. {what}: spend ${:.4} of soft budget ${soft}",
            state.spend
        ),
        Mark::Max { fraction, max } if *fraction >= 1.0 => format!(
            "Budget alert: budget crossed. {what}: spend ${:.4} of max budget ${max}",
            state.spend
        ),
        Mark::Max { fraction, max } => format!(
            "Budget alert: {}% of budget crossed. {what}: spend ${:.4} of max budget ${max}",
            (fraction * 100.0).round(),
            state.spend
        ),
    }
}

/// The checker: drains what settled calls touched (each holder once), decides and remembers
/// crossings, queues their alerts. Ends when the server's `Alerts` is gone.
fn check_all(
    pool: &Pool,
    thresholds: &[f64],
    touched: Receiver<Vec<Holder>>,
    out: SyncSender<Post>,
) {
    while let Ok(first) = touched.recv() {
        let mut holders: BTreeSet<Holder> = first.into_iter().collect();
        while let Ok(more) = touched.try_recv() {
            holders.extend(more);
        }
        for h in &holders {
            if let Err(e) = check(pool, thresholds, h, &out) {
                log::warn!("budget alert check of a {} failed: {e}", h.level.noun());
            }
        }
    }
}

fn check(
    pool: &Pool,
    thresholds: &[f64],
    h: &Holder,
    out: &SyncSender<Post>,
) -> crate::error::Result<()> {
    let state = pool.read_db(|c| Ok(budget_state::state_of(c, h.level, &h.a, &h.b)?))?;
    let Some(state) = state else {
        return Ok(());
    };
    let marks = crossed(&state, thresholds);
    if marks.is_empty() {
        return Ok(());
    }
    let scope = crate::db::leases::code(h.level);
    // Each mark remembered by whoever writes it first: that one alerts.
    let new: Vec<Mark> = pool.write_db(|c| {
        let mut new = Vec::new();
        for m in marks {
            if budget_state::remember_crossing(c, scope, &h.id, &state.period, &m.key())? {
                new.push(m);
            }
        }
        Ok(new)
    })?;
    // One alert per kind: the soft budget, and the highest threshold newly crossed.
    let soft: Vec<&Mark> = new.iter().filter(|m| matches!(m, Mark::Soft(_))).collect();
    let max: Vec<&Mark> = new
        .iter()
        .filter(|m| matches!(m, Mark::Max { .. }))
        .collect();
    for group in [soft, max] {
        let Some(top) = group.last() else { continue };
        let post = Post {
            text: text(h, &state, top),
            scope,
            holder: h.id.clone(),
            period: state.period.clone(),
            marks: group.iter().map(|m| m.key()).collect(),
        };
        if let Err(e) = out.try_send(post) {
            let p = match e {
                TrySendError::Full(p) | TrySendError::Disconnected(p) => p,
            };
            log::warn!("budget alert queue full; the alert is dropped and may come again");
            forget(pool, &p);
        }
    }
    Ok(())
}

/// Forgets an undelivered alert's marks (a later call may alert them again).
fn forget(pool: &Pool, p: &Post) {
    let r = pool.write_db(|c| {
        for m in &p.marks {
            budget_state::forget_crossing(c, p.scope, &p.holder, &p.period, m)?;
        }
        Ok(())
    });
    if let Err(e) = r {
        log::warn!("an undelivered budget alert stays remembered: {e}");
    }
}

/// The sender: delivers each alert with retries; forgets what it could not deliver.
fn send_all(pool: &Pool, url: &WebhookUrl, posts: Receiver<Post>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(ATTEMPT_TIMEOUT))
        .user_agent(concat!("litegate/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    while let Ok(p) = posts.recv() {
        let body = serde_json::json!({ "text": p.text }).to_string();
        if !deliver(&agent, url, &body) {
            log::warn!(
                "budget alert not delivered to {} after {ATTEMPTS} attempts",
                url.safe()
            );
            forget(pool, &p);
        }
    }
}

/// Up to `ATTEMPTS` POSTs; true once one is answered 2xx. A 4xx other than 429 is final.
fn deliver(agent: &ureq::Agent, url: &WebhookUrl, body: &str) -> bool {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let r = agent
            .post(url.secret())
            .header("content-type", "application/json")
            .send(body);
        match r {
            Ok(resp) if resp.status().is_success() => return true,
            Ok(resp) => {
                let status = resp.status().as_u16();
                log::warn!(
                    "budget alert to {}: answered {status} (attempt {attempt})",
                    url.safe()
                );
                if (400..500).contains(&status) && status != 429 {
                    return false;
                }
            }
            Err(e) => log::warn!(
                "budget alert to {}: {} (attempt {attempt})",
                url.safe(),
                crate::upstream::fault_kind(&e)
            ),
        }
        if attempt < ATTEMPTS {
            std::thread::sleep(backoff);
            backoff *= 2;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(spend: f64, max: Option<f64>, soft: Option<f64>) -> State {
        State {
            spend,
            max_budget: max,
            soft_budget: soft,
            period: String::new(),
        }
    }

    #[test]
    fn crossings_are_decided_from_the_spend() {
        let t = [0.5, 0.8, 1.0];
        let keys = |s: &State| crossed(s, &t).iter().map(Mark::key).collect::<Vec<_>>();
        assert!(keys(&state(0.2, Some(1.0), Some(0.3))).is_empty());
        assert_eq!(keys(&state(0.3, Some(1.0), Some(0.3))), ["soft"]);
        assert_eq!(
            keys(&state(0.85, Some(1.0), Some(0.3))),
            ["soft", "max:0.5", "max:0.8"]
        );
        assert_eq!(
            keys(&state(1.2, Some(1.0), None)),
            ["max:0.5", "max:0.8", "max:1"]
        );
        // No budget, or a zero one: nothing to cross.
        assert!(keys(&state(5.0, None, None)).is_empty());
        assert!(keys(&state(5.0, Some(0.0), Some(0.0))).is_empty());
    }

    #[test]
    fn the_text_names_the_holder_and_the_mark() {
        let h = Holder {
            level: Level::Team,
            id: "t1".into(),
            a: "t1".into(),
            b: String::new(),
            label: "research".into(),
        };
        let s = state(0.81, Some(1.0), None);
        let m = Mark::Max {
            fraction: 0.8,
            max: 1.0,
        };
        assert_eq!(
            text(&h, &s, &m),
            "Budget alert: 80% of budget crossed. team research: spend $0.8100 of max budget $1"
        );
    }
}
