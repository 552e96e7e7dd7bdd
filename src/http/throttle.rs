//! Login throttling (`POST /ui/login`). Owns the failure counts per account and per client
//! address: past the limit, attempts get a 429 with `Retry-After` and no argon2 runs (nor any
//! database lookup), whether or not the password is right.
//!
//! - Per account (the email as given, case-folded; whether or not such a user exists, so the
//!   answer tells nothing about which accounts exist): `LITEGATE_LOGIN_MAX_FAILURES` (5)
//!   failures per window. A success clears the account's count.
//! - Per client address: `LITEGATE_LOGIN_MAX_FAILURES_PER_ADDR` (20) failures per window,
//!   whatever the account, master-key attempts included. The master key is throttled per
//!   address only: it is a random secret (a per-account lockout there would only give anyone
//!   who can reach the port a way to lock the operator out of the UI).
//! - The window is `LITEGATE_LOGIN_WINDOW_SECS` (300 s), fixed from an entry's first failure.
//!
//! The client address is the TCP peer. `X-Forwarded-For` is anyone's to write, so it counts
//! only when the peer is listed in `LITEGATE_TRUSTED_PROXIES` (comma-separated addresses):
//! then the client is the rightmost address in it that is not itself a trusted proxy. An IPv6
//! client counts by its /64.
//!
//! Memory: at most `MAX_ENTRIES` entries per table (an account name is ≤ 256 characters,
//! `http::fields`); when full, expired entries are dropped first, and if none has expired a
//! new name is not tracked (the address table and the argon2 slots, `kdf`, still bound it).

use crate::config::LoginSettings;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Entries per table at most (~100 bytes + the name each).
pub const MAX_ENTRIES: usize = 16_384;

struct Entry {
    failures: u32,
    since: Instant,
}

struct Table {
    max_failures: u32,
    entries: Mutex<HashMap<String, Entry>>,
}

pub struct Throttle {
    window: Duration,
    accounts: Table,
    addrs: Table,
    trusted: Vec<IpAddr>,
}

/// Defaults of the `LITEGATE_LOGIN_*` variables (see the module doc).
const WINDOW: Duration = Duration::from_secs(300);
const MAX_FAILURES: u32 = 5;
const MAX_FAILURES_PER_ADDR: u32 = 20;

static GLOBAL: OnceLock<Throttle> = OnceLock::new();

/// Sets the process's throttle from its settings (`config::env`, read once at start).
pub fn init(s: &LoginSettings) {
    if GLOBAL.set(Throttle::from_settings(s)).is_err() {
        log::warn!("throttle::init called twice; the first settings stay");
    }
}

/// The process's throttle: as set by `init`, or the defaults where nothing called it.
pub fn global() -> &'static Throttle {
    GLOBAL.get_or_init(|| Throttle::from_settings(&LoginSettings::default()))
}

impl Table {
    fn new(max_failures: u32) -> Table {
        Table {
            max_failures,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until `name` may try again, if it is throttled now.
    fn blocked(&self, name: &str, window: Duration, now: Instant) -> Option<u64> {
        let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let e = map.get(name)?;
        let ends = e.since + window;
        (e.failures >= self.max_failures && ends > now)
            .then(|| ends.duration_since(now).as_secs().max(1))
    }

    fn fail(&self, name: &str, window: Duration, now: Instant) {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(name) && map.len() >= MAX_ENTRIES {
            map.retain(|_, e| e.since + window > now);
            if map.len() >= MAX_ENTRIES {
                return;
            }
        }
        let e = map.entry(name.to_string()).or_insert(Entry {
            failures: 0,
            since: now,
        });
        if e.since + window <= now {
            *e = Entry {
                failures: 0,
                since: now,
            };
        }
        e.failures = e.failures.saturating_add(1);
    }

    fn clear(&self, name: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

/// The table name of an address: IPv4 as is; IPv6 by its /64 (one subscriber's prefix: a
/// client holding a /64 must not get 2^64 separate allowances).
fn addr_key(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Who is trying: the account (None for the master key) and the client address.
pub struct Attempt {
    account: Option<String>,
    addr: String,
}

impl Throttle {
    pub fn from_settings(s: &LoginSettings) -> Self {
        Throttle::new(
            s.window.unwrap_or(WINDOW),
            s.max_failures.unwrap_or(MAX_FAILURES),
            s.max_failures_per_addr.unwrap_or(MAX_FAILURES_PER_ADDR),
            s.trusted_proxies.clone(),
        )
    }

    pub fn new(window: Duration, per_account: u32, per_addr: u32, trusted: Vec<IpAddr>) -> Self {
        Throttle {
            window,
            accounts: Table::new(per_account),
            addrs: Table::new(per_addr),
            trusted,
        }
    }

    /// The client's address: the peer, or behind a trusted proxy the rightmost untrusted
    /// `X-Forwarded-For` address.
    pub fn client(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> String {
        let Some(peer) = peer else {
            return "unknown".into();
        };
        if !self.trusted.contains(&peer) {
            return addr_key(peer);
        }
        addr_key(
            forwarded_for
                .into_iter()
                .flat_map(|h| h.rsplit(','))
                .filter_map(|s| s.trim().parse::<IpAddr>().ok())
                .find(|a| !self.trusted.contains(a))
                .unwrap_or(peer),
        )
    }

    /// An attempt for `account` (an email; None for the master key) from `addr`: 429 when
    /// either is throttled.
    pub fn check(&self, account: Option<&str>, addr: String) -> Result<Attempt> {
        let now = Instant::now();
        let account = account.map(|a| a.trim().to_lowercase());
        let wait = [
            account
                .as_deref()
                .and_then(|a| self.accounts.blocked(a, self.window, now)),
            self.addrs.blocked(&addr, self.window, now),
        ]
        .into_iter()
        .flatten()
        .max();
        match wait {
            Some(retry_after) => Err(Error::RateLimited {
                message: format!("Too many failed logins; try again in {retry_after} seconds."),
                retry_after,
            }),
            None => Ok(Attempt { account, addr }),
        }
    }

    pub fn failed(&self, a: &Attempt) {
        let now = Instant::now();
        if let Some(acct) = &a.account {
            self.accounts.fail(acct, self.window, now);
        }
        self.addrs.fail(&a.addr, self.window, now);
    }

    pub fn succeeded(&self, a: &Attempt) {
        if let Some(acct) = &a.account {
            self.accounts.clear(acct);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> Throttle {
        Throttle::new(
            Duration::from_secs(60),
            3,
            5,
            vec!["10.0.0.1".parse().unwrap()],
        )
    }

    #[test]
    fn an_account_is_throttled_after_its_failures_and_others_are_not() {
        let t = t();
        for i in 0..3 {
            let a = t.check(Some("Ann@x"), format!("1.1.1.{i}")).unwrap();
            t.failed(&a);
        }
        let e = t.check(Some("ann@x "), "9.9.9.9".into()).err().unwrap();
        assert_eq!(e.status(), 429);
        assert!(t.check(Some("bob@x"), "9.9.9.9".into()).is_ok());
    }

    #[test]
    fn an_address_is_throttled_across_accounts_and_a_success_clears_only_the_account() {
        let t = t();
        for i in 0..5 {
            let a = t.check(Some(&format!("u{i}@x")), "2.2.2.2".into()).unwrap();
            t.failed(&a);
        }
        assert!(t.check(Some("new@x"), "2.2.2.2".into()).is_err());
        assert!(t.check(None, "2.2.2.2".into()).is_err(), "master key too");
        assert!(t.check(Some("new@x"), "3.3.3.3".into()).is_ok());
        let a = t.check(Some("c@x"), "4.4.4.4".into()).unwrap();
        t.failed(&a);
        t.succeeded(&a);
        assert!(t.accounts.entries.lock().unwrap().get("c@x").is_none());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let t = t();
        let xff = Some("6.6.6.6, 5.5.5.5");
        assert_eq!(t.client(Some("7.7.7.7".parse().unwrap()), xff), "7.7.7.7");
        assert_eq!(t.client(Some("10.0.0.1".parse().unwrap()), xff), "5.5.5.5");
        assert_eq!(
            t.client(Some("10.0.0.1".parse().unwrap()), Some("5.5.5.5, 10.0.0.1")),
            "5.5.5.5"
        );
        assert_eq!(
            t.client(Some("10.0.0.1".parse().unwrap()), None),
            "10.0.0.1"
        );
    }
}
