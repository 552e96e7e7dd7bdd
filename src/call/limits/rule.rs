//! THE rule of rate limits, apart from where the counters live: what a level has used
//! (`Usage`), whether a use leaves no room (`exhausted`) and which limit refuses a call
//! (`decide`). Admission (`Limiter::admit`) and `/access/explain` (`call::explain`, through
//! `Limiter::usage` or the shared windows' read) both decide by it.

use super::{as_cap, Entry, Limit, Window, WINDOW_SECS};

/// What one level's limits have used now: requests and tokens in the window, calls in flight,
/// and for a window at or over its cap, the whole seconds until it drops below. Read by
/// admission (`State::check`) and by `/access/explain` (`Limiter::usage`, `call::explain`),
/// and decided on by the one rule, `decide`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub requests: u64,
    pub tokens: u64,
    pub in_flight: u64,
    pub rpm_retry_after: u64,
    pub tpm_retry_after: u64,
}

impl Usage {
    /// The usage of `l` in `entry` (windows already advanced to now; none: nothing used).
    pub(super) fn of(entry: Option<&Entry>, l: &Limit) -> Usage {
        let window = |w: Option<&Window>, cap: Option<i64>| {
            let total = w.map_or(0, |w| w.total);
            let retry = match (w, cap.map(as_cap)) {
                (Some(w), Some(cap)) if total >= cap => w.retry_after(cap),
                (None, Some(0)) => WINDOW_SECS,
                _ => 0,
            };
            (total, retry)
        };
        let (requests, rpm_retry_after) = window(entry.and_then(|e| e.requests.as_deref()), l.rpm);
        let (tokens, tpm_retry_after) = window(entry.and_then(|e| e.tokens.as_deref()), l.tpm);
        Usage {
            requests,
            tokens,
            in_flight: entry.map_or(0, |e| e.in_flight),
            rpm_retry_after,
            tpm_retry_after,
        }
    }
}

/// THE rule of rate limits: does `used` leave no room under `cap`? (rpm: requests in the
/// window; tpm: tokens already used in it, since a call's own are known only afterwards;
/// parallel: calls in flight.) A cap of 0 refuses everything.
pub fn exhausted(used: u64, cap: i64) -> bool {
    used >= as_cap(cap)
}

/// The limit that refuses a call with these usages (`usage[i]` of `limits[i]`), if any: of
/// those that refuse, the one with the longest wait (the first on a tie). Its kind ("rpm",
/// "tpm", "parallel"), the index of its limit and the wait, as `refused` words them.
pub fn decide<'a>(
    limits: impl IntoIterator<Item = (&'a Limit, &'a Usage)>,
) -> Option<(usize, &'static str, u64)> {
    let mut refusal: Option<(usize, &'static str, u64)> = None;
    for (i, (l, u)) in limits.into_iter().enumerate() {
        let mut refuse = |what: &'static str, retry_after: u64| {
            if refusal.is_none_or(|(_, _, r)| retry_after > r) {
                refusal = Some((i, what, retry_after));
            }
        };
        if l.rpm.is_some_and(|cap| exhausted(u.requests, cap)) {
            refuse("rpm", u.rpm_retry_after);
        }
        if l.tpm.is_some_and(|cap| exhausted(u.tokens, cap)) {
            refuse("tpm", u.tpm_retry_after);
        }
        if l.parallel.is_some_and(|cap| exhausted(u.in_flight, cap)) {
            // Slots free when requests end, which the window cannot predict.
            refuse("parallel", 1);
        }
    }
    refusal
}
