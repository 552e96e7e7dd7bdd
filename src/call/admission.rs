//! Where budgets' reservations and rate-limit windows live, chosen once at start from the
//! store's engine: in this process's memory on SQLite (`budget::Reservations` +
//! `limits::Limiter`: one process owns the file; the hot path as it always was), in the
//! database on PostgreSQL (`shared::Shared`: every instance on the database admits together).
//! Owns that choice and what an admitted call holds (`Ticket`); the decisions are the
//! implementations'.

use super::budget::{Reservation, Reservations};
use super::end_user::EndUser;
use super::limits::{Limit, Limiter, Permit, Usage};
use super::shared::{Lease, Shared};
use crate::db::key_check::KeyRow;
use crate::db::Pool;
use crate::error::Result;
use crate::hierarchy::Level;
use std::sync::Arc;
use std::time::Duration;

/// The admission of this process.
pub enum Admission {
    /// SQLite: in memory.
    Local {
        budgets: Arc<Reservations>,
        limiter: Arc<Limiter>,
        /// Strict enforcement reads the spend recorded now from here.
        pool: Arc<Pool>,
    },
    /// PostgreSQL: in the database, shared by every instance.
    Shared(Arc<Shared>),
}

/// What an admitted call holds until it ends (stream included); given back on drop.
pub enum Ticket {
    Local {
        permit: Permit,
        _reservation: Reservation,
    },
    Shared(Lease),
}

impl Admission {
    /// The admission for `pool`'s engine; `lease_ttl` is PostgreSQL's lease expiry
    /// (`LITEGATE_LEASE_SECS`, `shared::DEFAULT_TTL` when `None`).
    pub fn for_pool(pool: &Arc<Pool>, lease_ttl: Option<Duration>) -> Admission {
        match &**pool {
            Pool::Sqlite(_) => Admission::Local {
                budgets: Arc::default(),
                limiter: Arc::new(Limiter::new()),
                pool: Arc::clone(pool),
            },
            Pool::Postgres(_) => Admission::Shared(Shared::start(Arc::clone(pool), lease_ttl)),
        }
    }

    /// Budgets (reserving `estimate` on each), then rate limits (API.md §7's order); a refusal
    /// consumes nothing. They are the key's (`k`; none for the master key) and the end user's
    /// (`e`, when the call names one): the end user is one more holder, admitted with the
    /// others at once. `strict`: `estimate` is the call's worst case, which must fit what
    /// remains of every budget (README "Budgets that never overshoot").
    pub fn admit(
        &self,
        k: Option<&KeyRow>,
        e: Option<&EndUser>,
        estimate: f64,
        strict: bool,
    ) -> Result<Ticket> {
        match self {
            Admission::Local {
                budgets,
                limiter,
                pool,
            } => {
                let reservation = if strict {
                    budgets.reserve_strict(k, e, estimate, |ids| {
                        pool.read_now(|c, pending| {
                            ids.iter()
                                .map(|(level, a, b)| {
                                    Ok(crate::db::budget_state::spend_of(c, *level, a, b)?
                                        .map(|s| s + pending(*level, a, b)))
                                })
                                .collect()
                        })
                    })?
                } else {
                    budgets.reserve(k, e, estimate)?
                };
                let permit = limiter.admit(&Limit::of_call(k, e))?;
                Ok(Ticket::Local {
                    permit,
                    _reservation: reservation,
                })
            }
            Admission::Shared(s) => s.admit(k, e, estimate, strict).map(Ticket::Shared),
        }
    }
}

/// What `/access/explain` reads of the admission, changing nothing: what calls in flight
/// reserved on each budget, and what each limit has used now.
pub struct Peek {
    pub reserved: Vec<f64>,
    pub usage: Vec<Usage>,
}

impl Admission {
    /// The reservations on `budgets` (level, holder id) and the usage of `limits`, read where
    /// this process's admission keeps them (memory or PostgreSQL), consuming nothing.
    pub fn peek(&self, budgets: &[(Level, &str)], limits: &[Limit]) -> Result<Peek> {
        match self {
            Admission::Local {
                budgets: r,
                limiter,
                ..
            } => Ok(Peek {
                reserved: budgets
                    .iter()
                    .map(|(l, id)| r.reserved_on(*l, id))
                    .collect(),
                usage: limiter.usage(limits),
            }),
            Admission::Shared(s) => s.peek(budgets, limits),
        }
    }
}

impl Ticket {
    /// Adds the call's tokens to its tpm windows (once, when usage is known).
    pub fn add_tokens(&self, tokens: u64) {
        match self {
            Ticket::Local { permit, .. } => permit.add_tokens(tokens),
            Ticket::Shared(l) => l.add_tokens(tokens),
        }
    }
}
