//! The PostgreSQL store's health flag (issue 14 item 5), and the rule that decides whether a
//! call that got no answer says the server is gone or only that one connection is stuck.
//!
//! A statement that gets no answer within `database_connection_timeout` ends its call with a
//! 503 and its connection is closed (the vendored client's `io_timeout`). Whether the *store*
//! goes down — every waiting caller refused at once, idle connections dropped, one probe at a
//! time — depends on the other connections: if the server answered none of them for half the
//! timeout (`silence`), it is hung or unreachable and the store goes down; if it answered
//! others meanwhile, only that statement was stuck (behind a row lock, a slow plan, a
//! descheduled backend) and the store stays up. Before, one such timeout on a healthy server
//! took the store down and turned a hundred healthy calls into 503s (docs/POSTGRES.md). Which
//! client errors mean the server is unreachable, or timed out, is decided here too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Health {
    /// False after the server could not be reached, until a connection works again.
    up: AtomicBool,
    /// While down: a caller is trying a new connection; the others are refused at once.
    probing: AtomicBool,
    epoch: Instant,
    /// When a connection last came back from the server alive (ms since `epoch`).
    answered_ms: AtomicU64,
    /// How long the server must have answered no connection for a timeout to mean it is gone.
    silence: Duration,
}

impl Health {
    /// Up, as after the first connection; `timeout` is the connection's wait bound.
    pub fn new(timeout: Duration) -> Health {
        Health {
            up: AtomicBool::new(true),
            probing: AtomicBool::new(false),
            epoch: Instant::now(),
            answered_ms: AtomicU64::new(0),
            silence: timeout / 2,
        }
    }

    /// One atomic load.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Marks the store down; true when it was up.
    pub fn set_down(&self) -> bool {
        self.up.swap(false, Ordering::AcqRel)
    }

    /// Marks the store up (a connection worked); true when it was down.
    pub fn set_up(&self) -> bool {
        self.answered();
        !self.up.swap(true, Ordering::AcqRel)
    }

    /// While down: whether this caller may try a connection (no other caller is trying one).
    pub fn start_probe(&self) -> bool {
        !self.probing.swap(true, Ordering::AcqRel)
    }

    pub fn end_probe(&self) {
        self.probing.store(false, Ordering::Release);
    }

    /// A connection came back from the server alive (its call answered, even with an error).
    pub fn answered(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        // One relaxed store, skipped when another connection stamped this millisecond already.
        if self.answered_ms.load(Ordering::Relaxed) != ms {
            self.answered_ms.store(ms, Ordering::Relaxed);
        }
    }

    /// Whether the server has answered no connection for `silence`.
    pub fn silent(&self) -> bool {
        self.silent_at(self.epoch.elapsed())
    }

    fn silent_at(&self, now: Duration) -> bool {
        let last = Duration::from_millis(self.answered_ms.load(Ordering::Relaxed));
        now.saturating_sub(last) >= self.silence
    }
}

/// Whether an error says the server cannot be reached (the connection closed, the socket
/// failed, or the server did not answer within the timeout: `Config::io_timeout`), as opposed to
/// a statement the server or the client refused.
pub fn unreachable(e: &postgres::Error) -> bool {
    e.is_closed()
        || std::error::Error::source(e)
            .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
        || (e.as_db_error().is_none() && e.to_string() == TIMED_OUT)
}

/// Whether the error is the client's own bound (`Config::io_timeout`): no answer in time.
pub fn timed_out(e: &postgres::Error) -> bool {
    e.as_db_error().is_none() && e.to_string() == TIMED_OUT
}

/// The text of the client's timeout error (tokio-postgres `Kind::Timeout`, which has no
/// accessor of its own).
const TIMED_OUT: &str = "timeout waiting for server";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_means_gone_only_after_silence() {
        let h = Health::new(Duration::from_secs(3));
        h.answered_ms.store(10_000, Ordering::Relaxed);
        // Another connection answered 1 s ago: this statement alone was stuck.
        assert!(!h.silent_at(Duration::from_millis(11_000)));
        assert!(!h.silent_at(Duration::from_millis(11_499)));
        // Nobody answered for half the timeout: the server is hung or gone.
        assert!(h.silent_at(Duration::from_millis(11_500)));
        assert!(h.silent_at(Duration::from_secs(60)));
    }

    #[test]
    fn flag_and_probe() {
        let h = Health::new(Duration::from_secs(3));
        assert!(h.is_up());
        assert!(h.set_down());
        assert!(!h.set_down(), "already down");
        assert!(!h.is_up());
        assert!(h.start_probe());
        assert!(!h.start_probe(), "one probe at a time");
        h.end_probe();
        assert!(h.start_probe());
        h.end_probe();
        assert!(h.set_up());
        assert!(!h.set_up(), "already up");
        assert!(!h.silent(), "set_up stamps an answer");
    }
}
