//! `TokenCache`: one OAuth access token per set of credentials (issue 13, `vertex_ai`), reused
//! until shortly before it expires (5 minutes early, or half its life for short-lived ones),
//! then refreshed by ONE caller at a time: the others keep using the still-valid token, or,
//! when there is none, wait for the refresh (bounded) instead of each asking the token
//! endpoint. Holds no network code: the caller passes the fetch (`upstream::google`).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A token is refreshed this long before it expires (at most; half its life when shorter).
pub const REFRESH_EARLY: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct TokenCache {
    state: Mutex<State>,
    refreshed: Condvar,
}

#[derive(Default)]
struct State {
    token: Option<Token>,
    /// A caller is fetching a new token now.
    refreshing: bool,
}

struct Token {
    value: String,
    /// Refreshed from here on.
    stale_at: Instant,
    /// Never used from here on.
    expires_at: Instant,
}

/// Why no token could be had.
#[derive(Debug, PartialEq)]
pub enum TokenFailure {
    /// The fetch failed (its message, secret-free).
    Fetch(String),
    /// Another caller's refresh did not finish within the wait.
    Busy,
}

impl TokenCache {
    /// A valid token: the cached one, or one fetched by `fetch` (→ the token and its lifetime)
    /// when it is stale and nobody else is fetching. Waits at most `wait` for another
    /// caller's refresh when no valid token is left.
    pub fn get(
        &self,
        wait: Duration,
        fetch: impl FnOnce() -> Result<(String, Duration), String>,
    ) -> Result<String, TokenFailure> {
        self.get_at(Instant::now, wait, fetch)
    }

    /// Drops the cached token (the upstream refused it): the next call fetches a new one.
    pub fn forget(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).token = None;
    }

    /// `get` with the clock passed in (tests).
    pub fn get_at(
        &self,
        now: impl Fn() -> Instant,
        wait: Duration,
        fetch: impl FnOnce() -> Result<(String, Duration), String>,
    ) -> Result<String, TokenFailure> {
        let deadline = now() + wait;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let t = now();
            let valid = st.token.as_ref().filter(|k| t < k.expires_at);
            if let Some(k) = valid {
                // Fresh, or stale while someone else refreshes: use it.
                if t < k.stale_at || st.refreshing {
                    return Ok(k.value.clone());
                }
            }
            if !st.refreshing {
                break;
            }
            // No valid token and a refresh under way: wait for it, bounded.
            let left = deadline.saturating_duration_since(t);
            if left.is_zero() {
                return Err(TokenFailure::Busy);
            }
            st = self
                .refreshed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        st.refreshing = true;
        drop(st);
        // A panicking fetch must not leave `refreshing` set for ever.
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(fetch))
            .unwrap_or_else(|_| Err("the token fetch failed".into()));
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.refreshing = false;
        let out = match got {
            Ok((value, life)) => {
                let t = now();
                st.token = Some(Token {
                    value: value.clone(),
                    stale_at: t + life.saturating_sub(REFRESH_EARLY.min(life / 2)),
                    expires_at: t + life,
                });
                Ok(value)
            }
            // A failed refresh of a still-valid token keeps using it.
            Err(e) => match st.token.as_ref().filter(|k| now() < k.expires_at) {
                Some(k) => {
                    log::warn!("refreshing a Google access token failed ({e}); the current one is used until it expires");
                    Ok(k.value.clone())
                }
                None => Err(TokenFailure::Fetch(e)),
            },
        };
        drop(st);
        self.refreshed.notify_all();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const W: Duration = Duration::from_secs(5);

    #[test]
    fn reused_until_stale_then_refreshed() {
        let c = TokenCache::default();
        let t0 = Instant::now();
        let clock = std::cell::Cell::new(t0);
        let n = AtomicUsize::new(0);
        let fetch = || {
            let i = n.fetch_add(1, Ordering::SeqCst);
            Ok((format!("tok{i}"), Duration::from_secs(3600)))
        };
        assert_eq!(c.get_at(|| clock.get(), W, fetch), Ok("tok0".into()));
        // Within its life less 5 minutes: the same token, no fetch.
        clock.set(t0 + Duration::from_secs(3299));
        assert_eq!(c.get_at(|| clock.get(), W, fetch), Ok("tok0".into()));
        assert_eq!(n.load(Ordering::SeqCst), 1);
        // 5 minutes before it expires: refreshed.
        clock.set(t0 + Duration::from_secs(3301));
        assert_eq!(c.get_at(|| clock.get(), W, fetch), Ok("tok1".into()));
        // A short-lived token is refreshed after half its life.
        let c = TokenCache::default();
        let short = || Ok(("s".to_string(), Duration::from_secs(10)));
        clock.set(t0);
        assert!(c.get_at(|| clock.get(), W, short).is_ok());
        clock.set(t0 + Duration::from_secs(4));
        let fetched = std::cell::Cell::new(false);
        let never = || {
            fetched.set(true);
            Ok(("other".to_string(), Duration::from_secs(10)))
        };
        assert_eq!(c.get_at(|| clock.get(), W, never), Ok("s".into()));
        assert!(!fetched.get());
        clock.set(t0 + Duration::from_secs(6));
        let again = || Ok(("s2".to_string(), Duration::from_secs(10)));
        assert_eq!(c.get_at(|| clock.get(), W, again), Ok("s2".into()));
        // A token the upstream refused is forgotten: the next call fetches.
        c.forget();
        let after = || Ok(("s3".to_string(), Duration::from_secs(10)));
        assert_eq!(c.get_at(|| clock.get(), W, after), Ok("s3".into()));
    }

    #[test]
    fn failures_keep_a_valid_token_and_report_otherwise() {
        let c = TokenCache::default();
        let t0 = Instant::now();
        let clock = std::cell::Cell::new(t0);
        let fail = || Err("token endpoint answered 400 (invalid_grant)".to_string());
        assert_eq!(
            c.get_at(|| clock.get(), W, fail),
            Err(TokenFailure::Fetch(
                "token endpoint answered 400 (invalid_grant)".into()
            ))
        );
        let ok = || Ok(("t".to_string(), Duration::from_secs(3600)));
        assert!(c.get_at(|| clock.get(), W, ok).is_ok());
        // Stale but valid: a failed refresh still answers with it.
        clock.set(t0 + Duration::from_secs(3500));
        assert_eq!(c.get_at(|| clock.get(), W, fail), Ok("t".into()));
        // Expired: the failure is reported.
        clock.set(t0 + Duration::from_secs(3601));
        assert!(c.get_at(|| clock.get(), W, fail).is_err());
        // A panicking fetch does not wedge the cache.
        let boom = || -> Result<(String, Duration), String> { panic!("boom") };
        assert!(c.get_at(|| clock.get(), W, boom).is_err());
        assert_eq!(c.get_at(|| clock.get(), W, ok), Ok("t".into()));
    }

    #[test]
    fn concurrent_callers_share_one_refresh() {
        let c = Arc::new(TokenCache::default());
        let n = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (c, n) = (c.clone(), n.clone());
                std::thread::spawn(move || {
                    c.get(W, || {
                        n.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                        Ok(("shared".to_string(), Duration::from_secs(3600)))
                    })
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().expect("join"), Ok("shared".into()));
        }
        assert_eq!(n.load(Ordering::SeqCst), 1, "one fetch for all");
        // The wait is bounded: a refresh that hangs leaves the others with `Busy`.
        let c = Arc::new(TokenCache::default());
        let c2 = c.clone();
        let slow = std::thread::spawn(move || {
            c2.get(W, || {
                std::thread::sleep(Duration::from_millis(800));
                Ok(("late".to_string(), Duration::from_secs(3600)))
            })
        });
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        let r = c.get(Duration::from_millis(200), || Ok(("x".into(), W)));
        assert_eq!(r, Err(TokenFailure::Busy));
        assert!(started.elapsed() < Duration::from_millis(700));
        assert_eq!(slow.join().expect("join"), Ok("late".into()));
    }
}
