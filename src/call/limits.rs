//! Rate limits (API.md §7, issue 4 §6). Owns `rpm_limit`, `tpm_limit` and
//! `max_parallel_requests` at key, team, organization, user and end-user level: the counters, the
//! admission decision and the 429 `Error::RateLimited` with its `retry-after`. State is in
//! memory and per process (SQLite: one process owns the file): a restart forgets the windows.
//! On PostgreSQL `call::shared` keeps them in the database for every instance instead, with the
//! same decisions and words (`refused`). `Limit::of_key` says which limits apply to a key. Leaves to others: budgets and
//! spend (`call::budget`, the database) and persistence.
//!
//! Window: an exact ring of 60 one-second buckets per counter, with a running total. A check is
//! O(1) amortised (advancing clears at most 60 buckets, and only once per elapsed second), the
//! ring never grows, and `retry_after` is exact to the second. A two-bucket approximation is
//! cheaper in memory but is off by up to a bucket's worth either way (it over-admits around a
//! bucket edge and refuses past 60 s after a burst), so its `retry-after` cannot be honest; 60
//! buckets (480 bytes per counter, allocated only for the kinds of limit that are set) can.
//! Granularity is one second: a request made at 0.9 s leaves the window at 60.0 s.
//!
//! Parallel: every live `Permit` counts once on each (scope, id) it was admitted against, and
//! gives it back on drop. A permit owns an `Arc` of its limiter, so it may outlive the handler
//! that took it (a stream's relay holds it until the last event). Tokens are added by the permit when usage is known.
//!
//! Reclamation: a sweep drops entries with empty windows and no live permit. It runs every
//! `max(1024, entries)` admits (O(1) amortised) and at least once a window under any traffic,
//! so an idle id is gone at most two windows after its last use: memory follows the ids active
//! in the last two minutes, not every id ever seen.
//!
//! Concurrency: one `Mutex` over all state. Critical sections are a few hash lookups and
//! additions, far shorter than the HTTP work around them, so one lock serves 256 workers; a
//! sharded map is the next step if profiles ever show contention. A poisoned lock is recovered
//! (the counters are plain integers that no panic can leave half-written in a harmful way) so a
//! `Permit` drop never panics.

use crate::db::key_check::KeyRow;
use crate::error::Error;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Length of the sliding window, in one-second buckets.
const WINDOW_SECS: u64 = 60;
/// A sweep runs after at least this many admits (or once the map has been admitted against as
/// many times as it has entries, whichever is more, so sweeping stays O(1) amortised)...
const SWEEP_MIN_ADMITS: u64 = 1024;
/// ...or when a whole window has passed since the last sweep, so idle entries go even under
/// light traffic.
const SWEEP_MAX_AGE_SECS: u64 = WINDOW_SECS;

/// The level a limit is set at (only key, team, org and user carry limits).
pub use crate::hierarchy::Level as Scope;

/// The limits of one key, team, org or user. `None` is "no limit"; a limit of 0 refuses every
/// request. Negative values (refused by the API, `Body::opt_limit`) are treated as 0: fail closed.
#[derive(Debug, Clone)]
pub struct Limit {
    pub scope: Scope,
    pub id: String,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub parallel: Option<i64>,
}

impl Limit {
    fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.parallel.is_none()
    }

    /// The rate limits a call answers to: its key's (`of_key`; none for the master key), then
    /// its end user's.
    pub fn of_call(k: Option<&KeyRow>, e: Option<&super::end_user::EndUser>) -> Vec<Limit> {
        let mut v = k.map(Limit::of_key).unwrap_or_default();
        v.extend(e.and_then(super::end_user::EndUser::limit));
        v
    }

    /// The rate limits that apply to a key (API.md §7): its own, its team's, its
    /// organization's and its user's, where any is set.
    pub fn of_key(k: &KeyRow) -> Vec<Limit> {
        // Allocated by the first limit found (room for four): a key with no limit, the
        // common case, allocates nothing (issue 17).
        let mut v = Vec::new();
        let mut add =
            |scope, id: &str, rpm: Option<i64>, tpm: Option<i64>, parallel: Option<i64>| {
                if rpm.is_some() || tpm.is_some() || parallel.is_some() {
                    v.push(Limit {
                        scope,
                        id: id.to_string(),
                        rpm,
                        tpm,
                        parallel,
                    });
                }
            };
        add(
            Scope::Key,
            &k.token,
            k.rpm_limit,
            k.tpm_limit,
            k.max_parallel_requests,
        );
        if let Some(t) = &k.team {
            add(
                Scope::Team,
                &t.id,
                t.rpm_limit,
                t.tpm_limit,
                t.max_parallel_requests,
            );
        }
        if let Some(o) = &k.org {
            add(
                Scope::Org,
                &o.id,
                o.rpm_limit,
                o.tpm_limit,
                o.max_parallel_requests,
            );
        }
        if let Some(u) = &k.user {
            add(
                Scope::User,
                &u.id,
                u.rpm_limit,
                u.tpm_limit,
                u.max_parallel_requests,
            );
        }
        v
    }
}

fn as_cap(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A sliding window of `WINDOW_SECS` one-second buckets. `head` is the second (since the
/// limiter's origin) of the newest bucket; `total` is the sum of all buckets.
#[derive(Debug)]
struct Window {
    head: u64,
    total: u64,
    buckets: [u64; WINDOW_SECS as usize],
}

impl Window {
    fn new(sec: u64) -> Box<Window> {
        Box::new(Window {
            head: sec,
            total: 0,
            buckets: [0; WINDOW_SECS as usize],
        })
    }

    fn slot(sec: u64) -> usize {
        // `sec % 60` is < 60, so the cast and the index are in range.
        (sec % WINDOW_SECS) as usize
    }

    /// Moves the window to `sec`, dropping buckets that left it. A `sec` older than `head`
    /// (another thread read the clock earlier but took the lock later) counts as `head`.
    fn advance(&mut self, sec: u64) {
        if sec <= self.head {
            return;
        }
        if sec - self.head >= WINDOW_SECS {
            self.buckets = [0; WINDOW_SECS as usize];
            self.total = 0;
        } else {
            for s in self.head + 1..=sec {
                let b = &mut self.buckets[Self::slot(s)];
                self.total = self.total.saturating_sub(*b);
                *b = 0;
            }
        }
        self.head = sec;
    }

    fn add(&mut self, sec: u64, n: u64) {
        self.advance(sec);
        let b = &mut self.buckets[Self::slot(self.head)];
        *b = b.saturating_add(n);
        self.total = self.total.saturating_add(n);
    }

    /// Whole seconds from `head` until the total drops below `cap` (at least 1, at most the
    /// window: with cap 0 nothing ever helps, and a full window always drains in 60 s).
    fn retry_after(&self, cap: u64) -> u64 {
        let mut left = self.total;
        for k in 1..=WINDOW_SECS {
            // At second head+k the bucket of second head+k-60 has left the window; it shares
            // the slot of head+k.
            left = left.saturating_sub(self.buckets[Self::slot(self.head + k)]);
            if left < cap {
                return k;
            }
        }
        WINDOW_SECS
    }
}

/// The state of one (scope, id). Windows exist only once a limit of that kind was applied.
#[derive(Debug, Default)]
struct Entry {
    requests: Option<Box<Window>>,
    tokens: Option<Box<Window>>,
    /// Live permits holding this entry: the parallel count, and what keeps the entry from being
    /// swept while a request may still add tokens.
    in_flight: u64,
}

impl Entry {
    fn idle_at(&mut self, sec: u64) -> bool {
        let empty = |w: &mut Option<Box<Window>>| match w {
            Some(w) => {
                w.advance(sec);
                w.total == 0
            }
            None => true,
        };
        self.in_flight == 0 && empty(&mut self.requests) && empty(&mut self.tokens)
    }
}

#[derive(Debug, Default)]
struct State {
    /// One map per scope, indexed by `Scope::index`, so a lookup borrows the id as `&str`.
    maps: [HashMap<String, Entry>; Scope::COUNT],
    admits_since_sweep: u64,
    last_sweep: u64,
}

impl State {
    fn len(&self) -> usize {
        self.maps.iter().map(HashMap::len).sum()
    }

    fn sweep(&mut self, sec: u64) {
        for m in &mut self.maps {
            m.retain(|_, e| !e.idle_at(sec));
        }
        self.admits_since_sweep = 0;
        self.last_sweep = sec;
    }
}

/// The in-memory rate limiter; one per process, shared by all workers.
#[derive(Debug)]
pub struct Limiter {
    origin: Instant,
    state: Mutex<State>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new()
    }
}

/// Which limit refused, for the message and `retry-after`.
struct Refusal {
    scope: Scope,
    what: &'static str,
    cap: u64,
    retry_after: u64,
}

impl Refusal {
    /// The 429 (API.md §7), in LiteLLM's words.
    fn into_error(self) -> Error {
        Error::RateLimited {
            message: format!(
                "Rate limit exceeded for {}: {} limit {} reached. Retry after {} s.",
                self.scope, self.what, self.cap, self.retry_after
            ),
            retry_after: self.retry_after.max(1),
        }
    }
}

/// The 429 of a limit that refused, as this limiter words it (the shared limiter's too:
/// `call::shared`).
pub(super) fn refused(scope: Scope, what: &'static str, cap: i64, retry_after: u64) -> Error {
    Refusal {
        scope,
        what,
        cap: as_cap(cap),
        retry_after,
    }
    .into_error()
}

impl State {
    /// The usage of each limit now. Advancing a window only drops what has expired, so it
    /// consumes nothing.
    fn usage(&mut self, limits: &[&Limit], sec: u64) -> Vec<Usage> {
        limits
            .iter()
            .map(|l| {
                let entry = self.maps[l.scope.index()].get_mut(l.id.as_str());
                if let Some(e) = entry {
                    if let Some(w) = e.requests.as_mut() {
                        w.advance(sec);
                    }
                    if let Some(w) = e.tokens.as_mut() {
                        w.advance(sec);
                    }
                    Usage::of(Some(e), l)
                } else {
                    Usage::of(None, l)
                }
            })
            .collect()
    }

    /// Checks every limit before touching any counter (`usage`, then `decide`). Fills `held`
    /// with the (scope, id)s a permit will hold, one per entity; returns the refusal with the
    /// longest wait, if any limit refuses.
    fn check(&mut self, limits: &[Limit], sec: u64, held: &mut Vec<Held>) -> Option<Refusal> {
        let limits: Vec<&Limit> = limits.iter().filter(|l| !l.is_empty()).collect();
        let usage = self.usage(&limits, sec);
        for l in &limits {
            // Several limits on one (scope, id) are one entity: count the request once.
            match held.iter_mut().find(|h| h.scope == l.scope && h.id == l.id) {
                Some(h) => {
                    h.rpm |= l.rpm.is_some();
                    h.tpm |= l.tpm.is_some();
                }
                None => held.push(Held {
                    scope: l.scope,
                    id: l.id.clone(),
                    rpm: l.rpm.is_some(),
                    tpm: l.tpm.is_some(),
                }),
            }
        }
        decide(limits.iter().copied().zip(&usage)).and_then(|(i, what, retry_after)| {
            let l = limits.get(i)?;
            let cap = match what {
                "rpm" => l.rpm,
                "tpm" => l.tpm,
                _ => l.parallel,
            };
            Some(Refusal {
                scope: l.scope,
                what,
                cap: as_cap(cap.unwrap_or(0)),
                retry_after,
            })
        })
    }

    /// Counts an admitted request on every entity `check` passed: a parallel slot, one
    /// request in each rpm window, and a tpm window ready for its tokens.
    fn commit(&mut self, held: &[Held], sec: u64) {
        for h in held {
            let e = self.maps[h.scope.index()].entry(h.id.clone()).or_default();
            e.in_flight = e.in_flight.saturating_add(1);
            if h.rpm {
                e.requests
                    .get_or_insert_with(|| Window::new(sec))
                    .add(sec, 1);
            }
            if h.tpm {
                // Created now so `add_tokens` finds it; its tokens come later.
                e.tokens
                    .get_or_insert_with(|| Window::new(sec))
                    .advance(sec);
            }
        }
    }
}

impl Limiter {
    pub fn new() -> Limiter {
        Limiter::starting_at(Instant::now())
    }

    fn starting_at(origin: Instant) -> Limiter {
        Limiter {
            origin,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Recover from poisoning: see the module doc. Panicking here would turn a `Permit`
        // drop during unwinding into an abort.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sec(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs()
    }

    /// Admits one request against every limit in `limits` at once, or refuses it with
    /// `Error::RateLimited` naming the scope and the limit (rpm/tpm/parallel) and a retry_after
    /// in whole seconds ≥ 1. Atomic: a request refused by one limit consumes nothing from any
    /// other (`check` all first, then `commit` all, under one lock). Admission: rpm counts this
    /// request; tpm refuses when the tokens already used in the window are ≥ tpm (tokens are
    /// only known afterwards); parallel takes a slot. The permit holds the limiter (an `Arc`)
    /// for as long as the request lives, stream included.
    pub fn admit(self: &Arc<Self>, limits: &[Limit]) -> Result<Permit, Error> {
        self.admit_at(limits, Instant::now())
    }

    /// Same as `admit` with an explicit clock, for tests.
    pub fn admit_at(self: &Arc<Self>, limits: &[Limit], now: Instant) -> Result<Permit, Error> {
        let mut held: Vec<Held> = Vec::new();
        if limits.iter().all(Limit::is_empty) {
            // No limits: no lock, no state.
            return Ok(Permit {
                limiter: Arc::clone(self),
                held,
            });
        }
        let sec = self.sec(now);
        let mut st = self.lock();
        st.admits_since_sweep = st.admits_since_sweep.saturating_add(1);
        let len = st.len() as u64;
        if st.admits_since_sweep >= SWEEP_MIN_ADMITS.max(len)
            || sec.saturating_sub(st.last_sweep) >= SWEEP_MAX_AGE_SECS
        {
            st.sweep(sec);
        }
        if let Some(r) = st.check(limits, sec, &mut held) {
            drop(st);
            log::debug!(
                "rate limited at {} level: {} limit {}",
                r.scope,
                r.what,
                r.cap
            );
            return Err(r.into_error());
        }
        st.commit(&held, sec);
        drop(st);
        Ok(Permit {
            limiter: Arc::clone(self),
            held,
        })
    }

    /// What each of `limits` has used now, changing nothing (`/access/explain`): the same read
    /// as admission's (`State::usage`; advancing a window to now only drops what expired).
    pub fn usage(&self, limits: &[Limit]) -> Vec<Usage> {
        let sec = self.sec(Instant::now());
        let limits: Vec<&Limit> = limits.iter().collect();
        self.lock().usage(&limits, sec)
    }

    /// Number of (scope, id) entries in memory. For tests and metrics.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// Requests currently holding a slot on (scope, id). For tests and metrics.
    pub fn in_flight(&self, scope: Scope, id: &str) -> u64 {
        self.lock().maps[scope.index()]
            .get(id)
            .map_or(0, |e| e.in_flight)
    }
}

/// One (scope, id) a permit holds a slot on.
#[derive(Debug)]
struct Held {
    scope: Scope,
    id: String,
    rpm: bool,
    tpm: bool,
}

/// An admitted request. Holds the parallel slots and releases them on drop — on every exit path
/// (error, timeout, panic unwinding, client disconnect): keep it alive for the whole request,
/// stream included. `drop` never panics. (Only `std::mem::forget` can skip it; don't.)
#[derive(Debug)]
#[must_use = "dropping the permit ends the request's parallel slot"]
pub struct Permit {
    limiter: Arc<Limiter>,
    held: Vec<Held>,
}

impl Permit {
    /// Adds the request's tokens to each tpm window (call once, when usage is known; may be
    /// called with partial counts during a stream — then it accumulates).
    pub fn add_tokens(&self, tokens: u64) {
        self.add_tokens_at(tokens, Instant::now());
    }

    /// Same as `add_tokens` with an explicit clock, for tests.
    pub fn add_tokens_at(&self, tokens: u64, now: Instant) {
        if tokens == 0 || !self.held.iter().any(|h| h.tpm) {
            return;
        }
        let sec = self.limiter.sec(now);
        let mut st = self.limiter.lock();
        for h in self.held.iter().filter(|h| h.tpm) {
            // The entry cannot have been swept (in_flight > 0); `or_default` is belt and braces.
            let e = st.maps[h.scope.index()].entry(h.id.clone()).or_default();
            e.tokens
                .get_or_insert_with(|| Window::new(sec))
                .add(sec, tokens);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let mut st = self.limiter.lock();
        for h in &self.held {
            if let Some(e) = st.maps[h.scope.index()].get_mut(h.id.as_str()) {
                e.in_flight = e.in_flight.saturating_sub(1);
            }
        }
    }
}

mod rule;
pub use rule::{decide, exhausted, Usage};

#[cfg(test)]
mod tests;
