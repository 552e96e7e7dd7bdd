//! Bounded argon2 work. Owns the slots every password hash and verification runs in
//! (`auth::hash_password`, `auth::verify_password`): each argon2id run holds `m_cost` of memory
//! (19 MiB with the argon2 crate's defaults, which litegate uses) for its whole run, so a flood
//! of logins with unbounded concurrency would take `--workers` × 19 MiB (and all the CPU).
//!
//! At most `slots` runs at once (default 2 per core, `LITEGATE_ARGON2_CONCURRENCY`), at most
//! `4 × slots` callers wait for one (each at most `WAIT`); a caller beyond that, or one whose
//! wait runs out, gets a 503 at once. Memory bound: slots × m_cost (with 2 cores: 4 × 19 MiB =
//! 76 MiB). Verification also refuses a stored hash whose parameters ask for more than
//! `MAX_M_COST_KIB`, so the bound holds whatever hash is in the database.

use crate::error::{Error, Result};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a caller waits for a slot before it gets a 503.
const WAIT: Duration = Duration::from_secs(10);
/// The largest argon2 memory cost verification accepts (KiB); the default is 19,456.
pub const MAX_M_COST_KIB: u32 = 65_536;

struct Slots {
    max: usize,
    max_waiting: usize,
    state: Mutex<(usize, usize)>, // (running, waiting)
    freed: Condvar,
}

static SLOTS: OnceLock<Slots> = OnceLock::new();

impl Slots {
    /// `max` slots, or 2 per core.
    fn new(max: Option<usize>) -> Slots {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let max = max.filter(|n| *n > 0).unwrap_or(2 * cores);
        Slots {
            max,
            max_waiting: 4 * max,
            state: Mutex::new((0, 0)),
            freed: Condvar::new(),
        }
    }
}

/// The slots: as set by `init`, or the default where nothing called it (unit tests).
fn slots() -> &'static Slots {
    SLOTS.get_or_init(|| Slots::new(None))
}

/// Makes argon2's memory go back to the OS after each run (call once at start). glibc serves
/// an allocation past its mmap threshold with `mmap` and unmaps it on free, but raises that
/// threshold to the size of each such block freed; from then on the 19 MiB blocks come from
/// per-thread arenas and stay resident after free: a login flood over 32 connection threads
/// grew the RSS by ~500 MiB with only 2 slots. A fixed 4 MiB threshold keeps every argon2
/// block (and any other allocation that large, rare: bodies past 4 MiB) on `mmap`; smaller
/// allocations, the request path's, are unaffected.
///
/// `concurrency` is the slot count (`LITEGATE_ARGON2_CONCURRENCY`, read by `config::env`);
/// `None`: 2 per core.
pub fn init(concurrency: Option<usize>) {
    if SLOTS.set(Slots::new(concurrency)).is_err() {
        log::warn!("kdf::init called twice; the first slot count stays");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: sets one malloc parameter before any argon2 run; no memory is passed.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// The slot count in force (for the log and docs).
pub fn concurrency() -> usize {
    slots().max
}

fn busy() -> Error {
    Error::Unavailable("too many logins at once; try again in a moment".into())
}

/// Runs `f` (one argon2 run) in a slot.
pub fn with_slot<T>(f: impl FnOnce() -> T) -> Result<T> {
    let s = slots();
    {
        let mut st = s.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.0 >= s.max {
            if st.1 >= s.max_waiting {
                return Err(busy());
            }
            st.1 += 1;
            let deadline = Instant::now() + WAIT;
            while st.0 >= s.max {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    st.1 -= 1;
                    return Err(busy());
                }
                st = s
                    .freed
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            st.1 -= 1;
        }
        st.0 += 1;
    }
    // Given back on drop, so a panic inside argon2 does not leak the slot.
    struct Release(&'static Slots);
    impl Drop for Release {
        fn drop(&mut self) {
            let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
            st.0 -= 1;
            self.0.freed.notify_one();
        }
    }
    let _release = Release(s);
    Ok(f())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_than_the_slots_run_at_once() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let max = concurrency();
        std::thread::scope(|sc| {
            for _ in 0..(3 * max) {
                sc.spawn(|| {
                    let _ = with_slot(|| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    });
                });
            }
        });
        let p = peak.load(Ordering::SeqCst);
        assert!(p >= 1 && p <= max, "peak {p} with {max} slots");
    }
}
