//! Admission shared by every litegate instance on one PostgreSQL database (issue 14 item 3):
//! budgets' reservations, rpm/tpm windows and parallel slots live in the database, so N
//! instances admit together what one would. Same decisions, words and `retry-after` as the
//! in-memory pair (`budget::Reservations`, `limits::Limiter`): which budgets and limits apply
//! comes from `budget::budgets_of_call` and `limits::Limit::of_call`, the refusals from
//! `budget::exceeded` and `limits::refused`. The statements are `db::leases`'.
//!
//! - One round trip per admission (`litegate_admit`), none for a key without budget or limit.
//! - A `Lease` is what an admitted call holds: its rows' id, deleted when it drops (one more
//!   round trip, only when rows were written: a reservation with a cost, or a parallel slot);
//!   its tokens go to the tpm windows when known (a round trip, only with a tpm limit).
//! - Leases expire `ttl` after their instance last renewed them: a heartbeat thread renews the
//!   leases of the calls still running here every `ttl / 4`, so the slots and reservations of
//!   a crashed instance come back by themselves within `ttl` (default `DEFAULT_TTL`,
//!   `LITEGATE_LEASE_SECS`). A release that fails (database down) leaves its rows to expire:
//!   they are no longer renewed.
//! - Errors while admitting are 503s: never an admission without the check.

use super::budget::{self, budgets_of_call};
use super::end_user::EndUser;
use super::limits::{self, Limit};
use crate::db::key_check::KeyRow;
use crate::db::leases::{self, BudgetArg, Decision, LimitArg};
use crate::db::pg::PgPool;
use crate::db::Pool;
use crate::error::{Error, Result};
use crate::hierarchy::Level;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How long a lease outlives its instance's last heartbeat when `LITEGATE_LEASE_SECS` is unset.
pub const DEFAULT_TTL: Duration = Duration::from_secs(20);
/// A dropped lease waits at most this long for a connection to release its rows; past it the
/// rows are left to expire (a drop never holds its request up for long).
const RELEASE_WAIT: Duration = Duration::from_secs(2);
/// How often an instance deletes expired leases and old rate buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The shared admission of one instance.
pub struct Shared {
    pool: Arc<Pool>,
    /// This process among the instances (in its lease rows; for an operator reading them).
    instance: String,
    ttl: Duration,
    /// The ids of the leases of calls running here: what the heartbeat renews.
    live: Mutex<HashSet<i64>>,
}

/// An admitted call's hold on the shared budgets and limits; released on drop.
pub struct Lease {
    shared: Arc<Shared>,
    /// The id of its rows, if any were written.
    id: Option<i64>,
    /// The levels whose tpm windows get its tokens.
    tpm: Vec<(Level, String)>,
}

impl Shared {
    /// The shared admission on `pool` (PostgreSQL), with its heartbeat thread (which ends when
    /// the returned value and every lease are gone).
    pub fn start(pool: Arc<Pool>, ttl: Option<Duration>) -> Arc<Shared> {
        let shared = Arc::new(Shared {
            pool,
            instance: format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
            ttl: ttl.unwrap_or(DEFAULT_TTL),
            live: Mutex::default(),
        });
        let weak = Arc::downgrade(&shared);
        let every = (shared.ttl / 4).max(Duration::from_millis(50));
        let spawned = std::thread::Builder::new()
            .name("lease-heartbeat".into())
            .stack_size(256 * 1024)
            .spawn(move || heartbeat(weak, every));
        if let Err(e) = spawned {
            // Calls still work; their leases expire `ttl` after admission instead.
            log::error!("cannot start the lease heartbeat thread: {e}");
        }
        log::info!(
            "budgets and rate limits shared through PostgreSQL (instance {}, leases expire {:?} \
             after the last heartbeat)",
            shared.instance,
            shared.ttl
        );
        shared
    }

    fn pg(&self) -> Result<&PgPool> {
        match &*self.pool {
            Pool::Postgres(p) => Ok(p),
            Pool::Sqlite(_) => Err(Error::internal("shared admission on SQLite")),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits one call of key `k` (none: the master key) naming end user `e` (if any),
    /// reserving `estimate` on each budget, or refuses it (422 naming the budget, 429 naming the
    /// limit, 503 when the database cannot decide). `strict`: `estimate` is the call's worst
    /// case and must fit what remains of each budget: `litegate_admit` is asked with each max
    /// lowered by it (its "spend + reserved >= max" refuses exactly when the worst case does
    /// not fit), and reserves it.
    pub fn admit(
        self: &Arc<Self>,
        k: Option<&KeyRow>,
        e: Option<&EndUser>,
        estimate: f64,
        strict: bool,
    ) -> Result<Lease> {
        let budgets = budgets_of_call(k, e);
        let limits = Limit::of_call(k, e);
        let mut lease = Lease {
            shared: Arc::clone(self),
            id: None,
            tpm: Vec::new(),
        };
        if budgets.is_empty() && limits.is_empty() {
            return Ok(lease);
        }
        let estimate = if estimate.is_finite() && estimate > 0.0 {
            estimate
        } else {
            0.0
        };
        let b: Vec<BudgetArg<'_>> = budgets
            .iter()
            .map(|(level, id, _, max)| {
                let (a, b) = budget::spend_ids(*level, id, k);
                BudgetArg {
                    scope: *level,
                    holder: id,
                    a,
                    b,
                    max: if strict {
                        *max - estimate * (1.0 + budget::ROUNDING_MARGIN)
                    } else {
                        *max
                    },
                }
            })
            .collect();
        let l: Vec<LimitArg<'_>> = limits
            .iter()
            .map(|l| LimitArg {
                scope: l.scope,
                holder: &l.id,
                rpm: l.rpm,
                tpm: l.tpm,
                parallel: l.parallel,
            })
            .collect();
        match leases::admit(self.pg()?, &self.instance, self.ttl, estimate, &b, &l)? {
            Decision::Admitted(id) => {
                if let Some(id) = id {
                    self.live().insert(id);
                }
                lease.id = id;
                lease.tpm = limits
                    .iter()
                    .filter(|l| l.tpm.is_some())
                    .map(|l| (l.scope, l.id.clone()))
                    .collect();
                Ok(lease)
            }
            Decision::Budget { idx, spend } => Err(match budgets.get(idx) {
                Some((level, id, _, max)) if strict && spend < *max => {
                    // Not spent: the worst case does not fit. What calls in flight hold, for
                    // the message (a read on the refusal's path only).
                    let reserved = leases::reserved(self.pg()?, *level, id).unwrap_or(0.0);
                    budget::would_exceed(*level, id, spend, reserved, *max, estimate)
                }
                Some((level, id, _, max)) => budget::exceeded(*level, id, spend, *max),
                None => Error::internal("admission named no budget"),
            }),
            Decision::Limit {
                idx,
                what,
                retry_after,
            } => {
                let Some(l) = limits.get(idx) else {
                    return Err(Error::internal("admission named no limit"));
                };
                let cap = match what {
                    "rpm" => l.rpm,
                    "tpm" => l.tpm,
                    _ => l.parallel,
                };
                log::debug!("rate limited at {} level: {what} limit", l.scope);
                Err(limits::refused(
                    l.scope,
                    what,
                    cap.unwrap_or(0),
                    retry_after,
                ))
            }
        }
    }
}

impl Shared {
    /// `/access/explain`'s read: reservations and usage as `litegate_admit` would see them now,
    /// writing nothing (`admission::Admission::peek`).
    pub fn peek(
        &self,
        budgets: &[(Level, &str)],
        limits: &[Limit],
    ) -> Result<super::admission::Peek> {
        let pg = self.pg()?;
        let reserved = budgets
            .iter()
            .map(|(l, id)| leases::reserved(pg, *l, id))
            .collect::<Result<Vec<f64>>>()?;
        let usage = limits
            .iter()
            .map(|l| {
                let [requests, tokens, in_flight, rpm_retry_after, tpm_retry_after] =
                    leases::usage(pg, l.scope, &l.id, l.rpm, l.tpm)?;
                Ok(limits::Usage {
                    requests,
                    tokens,
                    in_flight,
                    rpm_retry_after,
                    tpm_retry_after,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(super::admission::Peek { reserved, usage })
    }
}

impl Lease {
    /// Adds the call's tokens to the tpm windows it was admitted against (once, when usage is
    /// known). A failure is logged: the call's answer does not depend on it.
    pub fn add_tokens(&self, tokens: u64) {
        if tokens == 0 || self.tpm.is_empty() {
            return;
        }
        let r = self
            .shared
            .pg()
            .and_then(|pg| leases::add_tokens(pg, &self.tpm, tokens));
        if let Err(e) = r {
            log::warn!("tokens not counted in the shared tpm windows: {e}");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        // No longer renewed from here on: if the release fails, the rows expire.
        self.shared.live().remove(&id);
        let shared = &self.shared;
        let released = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shared
                .pg()
                .and_then(|pg| leases::release(pg, id, RELEASE_WAIT))
        }));
        match released {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("lease {id} left to expire: {e}"),
            Err(_) => log::error!("lease {id} left to expire: its release panicked"),
        }
    }
}

/// Renews the leases of the calls running here every `every`, and sweeps what expired every
/// `SWEEP_EVERY`. Ends when the shared admission is gone.
fn heartbeat(shared: Weak<Shared>, every: Duration) {
    let mut swept = Instant::now();
    loop {
        std::thread::sleep(every);
        let Some(s) = shared.upgrade() else {
            return;
        };
        let Ok(pg) = s.pg() else {
            return;
        };
        let ids: Vec<i64> = s.live().iter().copied().collect();
        if !ids.is_empty() {
            if let Err(e) = leases::renew(pg, &ids, s.ttl) {
                log::warn!("leases not renewed: {e}");
            }
        }
        if swept.elapsed() >= SWEEP_EVERY {
            swept = Instant::now();
            if let Err(e) = leases::sweep(pg) {
                log::warn!("leases not swept: {e}");
            }
        }
    }
}
