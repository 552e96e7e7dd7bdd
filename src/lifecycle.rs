//! The lifecycle of a running server, as one value shared by `Arc`: whether shutdown has begun,
//! how many requests are in flight, and the HTTP layer's connection counters. The server loop
//! (`crate::server`) counts requests and refuses new ones once shutdown begins; `run`'s
//! shutdown waits for the count to reach zero; `/metrics` reads it. It holds no policy of its
//! own (grace periods, what a refusal says) and does no I/O.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shutting down?, requests in flight, connections (see the module doc).
#[derive(Default)]
pub struct Lifecycle {
    shutting_down: AtomicBool,
    in_flight: AtomicUsize,
    connections: Arc<tiny_http::limits::Stats>,
}

/// One request in flight, counted until dropped (also if the request panics).
pub struct InFlight<'a>(&'a Lifecycle);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, SeqCst);
    }
}

impl Lifecycle {
    pub fn new() -> Lifecycle {
        Lifecycle::default()
    }

    /// The counters the HTTP layer keeps (handed to tiny_http at construction).
    pub fn connections(&self) -> &Arc<tiny_http::limits::Stats> {
        &self.connections
    }

    /// Counts a request in flight (until the guard drops), then tells whether requests are
    /// still accepted: `false` once shutdown has begun. Counting first closes the race with
    /// `shut_down`: it either sees this request in flight and waits for it, or set its flag
    /// before, and the request is refused.
    pub fn enter(&self) -> (InFlight<'_>, bool) {
        self.in_flight.fetch_add(1, SeqCst);
        (InFlight(self), !self.shutting_down.load(SeqCst))
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(SeqCst)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(SeqCst)
    }

    /// Refuses new requests from now on, and waits until none is in flight or `grace` has
    /// passed; returns how many were still running.
    pub fn shut_down(&self, grace: Duration) -> usize {
        self.shutting_down.store(true, SeqCst);
        let deadline = Instant::now() + grace;
        while self.in_flight() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request that entered before shutdown is waited for; one after it is refused.
    #[test]
    fn shutdown_waits_for_requests_in_flight_and_refuses_later_ones() {
        let life = Arc::new(Lifecycle::new());
        let (guard, admitted) = life.enter();
        assert!(admitted);
        assert_eq!(life.in_flight(), 1);
        let l2 = life.clone();
        let waiter = std::thread::spawn(move || l2.shut_down(Duration::from_secs(5)));
        while !life.is_shutting_down() {
            std::thread::yield_now();
        }
        let (late, admitted) = life.enter();
        assert!(!admitted, "a request after shutdown began is refused");
        drop(late);
        drop(guard);
        assert_eq!(waiter.join().expect("join"), 0);
        assert_eq!(life.in_flight(), 0);
    }

    #[test]
    fn the_grace_period_ends_the_wait() {
        let life = Lifecycle::new();
        let (_stuck, _) = life.enter();
        let t = Instant::now();
        assert_eq!(life.shut_down(Duration::from_millis(50)), 1);
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
