//! The rate limiter's tests: windows, refusals that consume nothing, parallel slots,
//! reclamation.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn lim(scope: Scope, id: &str, rpm: Option<i64>, tpm: Option<i64>, par: Option<i64>) -> Limit {
    Limit {
        scope,
        id: id.into(),
        rpm,
        tpm,
        parallel: par,
    }
}

fn rpm(scope: Scope, id: &str, n: i64) -> Limit {
    lim(scope, id, Some(n), None, None)
}

fn at(start: Instant, secs: u64) -> Instant {
    start + Duration::from_secs(secs)
}

fn retry_after(r: Result<Permit, Error>) -> (u64, String) {
    match r {
        Err(Error::RateLimited {
            retry_after,
            message,
        }) => (retry_after, message),
        Err(e) => panic!("expected 429, got {e}"),
        Ok(_) => panic!("expected 429, got admitted"),
    }
}

/// Unwraps an admission and ends the request at once.
fn ok(r: Result<Permit, Error>) {
    drop(r.unwrap());
}

fn setup() -> (Arc<Limiter>, Instant) {
    let start = Instant::now();
    (Arc::new(Limiter::starting_at(start)), start)
}

#[test]
fn rpm_refuses_past_limit_and_recovers_after_window() {
    let (l, start) = setup();
    let ls = [rpm(Scope::Key, "k", 10)];
    for _ in 0..10 {
        ok(l.admit_at(&ls, start));
    }
    let (ra, msg) = retry_after(l.admit_at(&ls, start));
    assert!((1..=60).contains(&ra), "{ra}");
    assert_eq!(
        msg,
        format!("Rate limit exceeded for Key: rpm limit 10 reached. Retry after {ra} s.")
    );
    retry_after(l.admit_at(&ls, at(start, 59)));
    ok(l.admit_at(&ls, at(start, 60)));
}

#[test]
fn rpm_retry_after_is_exact_and_window_slides() {
    let (l, start) = setup();
    let ls = [rpm(Scope::Team, "t", 10)];
    ok(l.admit_at(&ls, start));
    for _ in 0..9 {
        ok(l.admit_at(&ls, at(start, 30)));
    }
    let (ra, msg) = retry_after(l.admit_at(&ls, at(start, 30)));
    assert_eq!(ra, 30);
    assert!(
        msg.starts_with("Rate limit exceeded for Team: rpm"),
        "{msg}"
    );
    assert_eq!(retry_after(l.admit_at(&ls, at(start, 59))).0, 1);
    // Only the request from second 0 has left; the nine from second 30 still count.
    ok(l.admit_at(&ls, at(start, 60)));
    assert_eq!(retry_after(l.admit_at(&ls, at(start, 60))).0, 30);
}

#[test]
fn tpm_refuses_once_used_and_recovers() {
    let (l, start) = setup();
    let ls = [lim(Scope::User, "u", None, Some(100), None)];
    let p = l.admit_at(&ls, start).unwrap();
    p.add_tokens_at(60, start);
    // Below the limit: still admitted (tokens are only known afterwards).
    ok(l.admit_at(&ls, at(start, 1)));
    p.add_tokens_at(40, at(start, 2));
    drop(p);
    let (ra, msg) = retry_after(l.admit_at(&ls, at(start, 3)));
    // The 60 tokens of second 0 leave at 60: then 40 < 100.
    assert_eq!(ra, 57, "{msg}");
    assert!(msg.contains("User: tpm limit 100"), "{msg}");
    retry_after(l.admit_at(&ls, at(start, 59)));
    ok(l.admit_at(&ls, at(start, 60)));
    ok(l.admit_at(&ls, at(start, 120)));
}

#[test]
fn parallel_slots_and_release_on_drop_and_panic() {
    let (l, start) = setup();
    let ls = [lim(Scope::Org, "o", None, None, Some(2))];
    let a = l.admit_at(&ls, start).unwrap();
    let b = l.admit_at(&ls, start).unwrap();
    let (ra, msg) = retry_after(l.admit_at(&ls, start));
    assert_eq!(ra, 1);
    assert!(msg.contains("Organization: parallel limit 2"), "{msg}");
    drop(a);
    let c = l.admit_at(&ls, start).unwrap();
    retry_after(l.admit_at(&ls, start));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _c = c;
        panic!("upstream blew up");
    }));
    assert!(r.is_err());
    assert_eq!(l.in_flight(Scope::Org, "o"), 1);
    let _d = l.admit_at(&ls, start).unwrap();
    drop(b);
    assert_eq!(l.in_flight(Scope::Org, "o"), 1);
}

#[test]
fn refused_by_team_does_not_consume_key() {
    let (l, start) = setup();
    for i in 0..5 {
        ok(l.admit_at(
            &[
                rpm(Scope::Team, "t", 5),
                rpm(Scope::Key, &format!("other{i}"), 1),
            ],
            start,
        ));
    }
    let both = [rpm(Scope::Key, "k", 1), rpm(Scope::Team, "t", 5)];
    for _ in 0..3 {
        let (_, msg) = retry_after(l.admit_at(&both, start));
        assert!(msg.contains("Team"), "{msg}");
    }
    // The key's single request is still available.
    ok(l.admit_at(&[rpm(Scope::Key, "k", 1)], start));
}

#[test]
fn refused_by_key_does_not_consume_team() {
    let (l, start) = setup();
    // Team first in the list: committing while checking would charge the team.
    let both = [rpm(Scope::Team, "t", 5), rpm(Scope::Key, "k", 1)];
    ok(l.admit_at(&both, start));
    for _ in 0..3 {
        let (_, msg) = retry_after(l.admit_at(&both, start));
        assert!(msg.contains("Key"), "{msg}");
    }
    let team = [rpm(Scope::Team, "t", 5)];
    for _ in 0..4 {
        ok(l.admit_at(&team, start));
    }
    retry_after(l.admit_at(&team, start));
}

#[test]
fn refused_request_takes_no_parallel_slot() {
    let (l, start) = setup();
    let both = [
        lim(Scope::Key, "k", None, None, Some(1)),
        rpm(Scope::Team, "t", 0),
    ];
    retry_after(l.admit_at(&both, start));
    assert_eq!(l.in_flight(Scope::Key, "k"), 0);
    let _p = l
        .admit_at(&[lim(Scope::Key, "k", None, None, Some(1))], start)
        .unwrap();
}

#[test]
fn duplicate_limits_on_one_id_count_the_request_once() {
    let (l, start) = setup();
    let ls = [rpm(Scope::Key, "k", 2), rpm(Scope::Key, "k", 2)];
    ok(l.admit_at(&ls, start));
    ok(l.admit_at(&ls, start));
    retry_after(l.admit_at(&ls, start));
}

#[test]
fn concurrent_parallel_never_exceeds_limit() {
    let l = Arc::new(Limiter::new());
    let holders = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let admitted = Arc::new(AtomicUsize::new(0));
    let ls = [lim(Scope::Key, "k", None, None, Some(3))];
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (l, holders, max_seen, admitted, ls) = (
                l.clone(),
                holders.clone(),
                max_seen.clone(),
                admitted.clone(),
                ls.clone(),
            );
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    if let Ok(p) = l.admit(&ls) {
                        let n = holders.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(n, Ordering::SeqCst);
                        admitted.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                        holders.fetch_sub(1, Ordering::SeqCst);
                        drop(p);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let max = max_seen.load(Ordering::SeqCst);
    assert!((1..=3).contains(&max), "max concurrent holders {max}");
    assert!(admitted.load(Ordering::Relaxed) > 0);
    assert_eq!(l.in_flight(Scope::Key, "k"), 0);
    ok(l.admit(&ls));
}

#[test]
fn idle_entries_are_reclaimed() {
    let (l, start) = setup();
    for i in 0..10_000 {
        let p = l
            .admit_at(&[rpm(Scope::Key, &format!("key-{i}"), 100)], start)
            .unwrap();
        p.add_tokens_at(5, start);
    }
    assert_eq!(l.tracked(), 10_000);
    // A slot held across the window keeps its entry.
    let held = l
        .admit_at(&[lim(Scope::Team, "busy", None, Some(10), Some(5))], start)
        .unwrap();
    ok(l.admit_at(&[rpm(Scope::Key, "late", 100)], at(start, 61)));
    assert_eq!(l.tracked(), 2);
    held.add_tokens_at(20, at(start, 61));
    retry_after(l.admit_at(
        &[lim(Scope::Team, "busy", None, Some(10), None)],
        at(start, 62),
    ));
    drop(held);
    ok(l.admit_at(&[rpm(Scope::Key, "later", 100)], at(start, 200)));
    assert_eq!(l.tracked(), 1);
}

#[test]
fn sweep_also_runs_under_steady_traffic() {
    let (l, start) = setup();
    // Only distinct keys: the admit-count trigger never catches up with the map's length,
    // so the time trigger must do the reclaiming.
    for i in 0..5_000u64 {
        let now = at(start, i / 50); // 50 new keys per second
        ok(l.admit_at(&[rpm(Scope::Key, &format!("k{i}"), 1)], now));
    }
    // 100 s of traffic at 50 keys/s: an entry goes at most two windows after its last use,
    // so about 80 s worth (4,000) may remain, never all 5,000.
    assert!(l.tracked() <= 4_100, "{}", l.tracked());
}

#[test]
fn zero_limits_refuse_everything() {
    let (l, start) = setup();
    for (ls, what) in [
        (rpm(Scope::Key, "k", 0), "rpm"),
        (lim(Scope::Key, "k", None, Some(0), None), "tpm"),
        (lim(Scope::Key, "k", None, None, Some(0)), "parallel"),
        (rpm(Scope::Key, "neg", -1), "rpm"),
    ] {
        let (ra, msg) = retry_after(l.admit_at(&[ls], start));
        assert!(ra >= 1);
        assert!(msg.contains(&format!("{what} limit 0")), "{msg}");
    }
    assert_eq!(l.tracked(), 0, "refusals leave no state");
}

#[test]
fn all_none_limits_admit_without_state() {
    let (l, start) = setup();
    let ls = [
        lim(Scope::Key, "k", None, None, None),
        lim(Scope::Team, "t", None, None, None),
    ];
    for _ in 0..1000 {
        let p = l.admit_at(&ls, start).unwrap();
        p.add_tokens_at(1_000_000, start);
    }
    ok(l.admit_at(&[], start));
    assert_eq!(l.tracked(), 0);
}

#[test]
fn clock_going_backwards_is_harmless() {
    let (l, start) = setup();
    let ls = [rpm(Scope::Key, "k", 2)];
    ok(l.admit_at(&ls, at(start, 10)));
    ok(l.admit_at(&ls, at(start, 5)));
    let (ra, _) = retry_after(l.admit_at(&ls, start));
    assert_eq!(ra, 60);
    assert_eq!(Scope::Org.to_string(), "Organization");
}

/// A permit owns its limiter: it may outlive every other holder (a stream after its handler
/// returned) and still adds its tokens and gives its slot back.
#[test]
fn a_permit_outlives_the_handle_it_came_from() {
    let (l, start) = setup();
    let ls = [lim(Scope::Key, "k", None, Some(100), Some(1))];
    let p = l.admit_at(&ls, start).unwrap();
    let watcher = Arc::downgrade(&l);
    drop(l);
    p.add_tokens_at(7, start);
    let l = watcher
        .upgrade()
        .expect("the permit keeps the limiter alive");
    assert_eq!(l.in_flight(Scope::Key, "k"), 1);
    drop(l);
    drop(p);
    assert!(watcher.upgrade().is_none(), "the last holder freed it");
}

/// `/access/explain` reads usage without consuming: no window advanced, no request counted, no
/// entry created; and it decides as admission does.
#[test]
fn usage_reads_without_consuming_and_decides_as_admission() {
    let lim = Arc::new(Limiter::new());
    let l = Limit {
        scope: Scope::Key,
        id: "k".into(),
        rpm: Some(2),
        tpm: Some(100),
        parallel: Some(1),
    };
    let limits = [l.clone()];
    assert_eq!(lim.usage(&limits), vec![Usage::default()]);
    assert_eq!(lim.tracked(), 0, "reading creates no entry");
    let p = lim.admit(&limits).expect("first");
    p.add_tokens(40);
    let u = lim.usage(&limits);
    assert_eq!((u[0].requests, u[0].tokens, u[0].in_flight), (1, 40, 1));
    assert_eq!(lim.usage(&limits), u, "reading twice reads the same");
    // Parallel full: decided as the second admit is refused.
    assert_eq!(
        decide(limits.iter().zip(&u)).map(|(i, w, _)| (i, w)),
        Some((0, "parallel"))
    );
    assert!(lim.admit(&limits).is_err());
    drop(p);
    let u = lim.usage(&limits);
    assert_eq!(decide(limits.iter().zip(&u)), None);
    let _p = lim.admit(&limits).expect("second");
    let u = lim.usage(&limits);
    assert_eq!(u[0].requests, 2);
    // rpm full too: the usage carries the wait admission words.
    let d = decide(limits.iter().zip(&u)).expect("refused");
    assert_eq!(
        d.1, "rpm",
        "the longest wait (rpm's, not parallel's 1 s) is named"
    );
    assert!(d.2 > 1, "{d:?}");
    let zero = [Limit {
        rpm: Some(0),
        tpm: None,
        parallel: None,
        ..l
    }];
    let u = lim.usage(&zero);
    assert_eq!(decide(zero.iter().zip(&u)), Some((0, "rpm", 60)));
}
