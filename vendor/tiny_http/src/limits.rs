//! litegate patch to tiny_http 0.12: per-connection socket timeouts and a cap on open
//! connections, applied in the accept loop (the only place a socket is seen before tiny_http
//! reads from it). Upstream tiny_http sets no timeouts: a client that sends headers slowly, or
//! headers and then no body, or nothing at all, would hold a thread (and, for a body, one of the
//! application's workers) forever.

use crate::connection::Connection;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

static READ_TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);
static WRITE_TIMEOUT_MS: AtomicU64 = AtomicU64::new(0);
static MAX_CONNECTIONS: AtomicUsize = AtomicUsize::new(usize::MAX);
static OPEN: AtomicUsize = AtomicUsize::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Timeouts set on every accepted socket: a read (headers, body, keep-alive idle) or a write
/// that makes no progress for this long fails and the connection closes. `None` = no timeout.
pub fn set_client_timeouts(read: Option<Duration>, write: Option<Duration>) {
    let ms = |d: Option<Duration>| d.map(|d| d.as_millis().max(1) as u64).unwrap_or(0);
    READ_TIMEOUT_MS.store(ms(read), Ordering::SeqCst);
    WRITE_TIMEOUT_MS.store(ms(write), Ordering::SeqCst);
}

/// Connections beyond this many open ones get a 503 and are closed at once.
pub fn set_max_connections(n: usize) {
    MAX_CONNECTIONS.store(n.max(1), Ordering::SeqCst);
}

/// Connections open now.
pub fn open_connections() -> usize {
    OPEN.load(Ordering::SeqCst)
}

/// Connections refused for being over the cap since start.
pub fn refused_connections() -> u64 {
    REFUSED.load(Ordering::SeqCst)
}

/// Counts one open connection; released when the connection's task ends.
pub struct ConnGuard(());

impl Drop for ConnGuard {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

fn ms(v: &AtomicU64) -> Option<Duration> {
    match v.load(Ordering::SeqCst) {
        0 => None,
        n => Some(Duration::from_millis(n)),
    }
}

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
    Connection: close\r\nContent-Length: 115\r\n\r\n\
    {\"error\":{\"message\":\"too many open connections; try again\",\
    \"type\":\"service_unavailable\",\"param\":null,\"code\":\"503\"}}";

pub(crate) fn admit(sock: &mut Connection) -> Option<ConnGuard> {
    let open = OPEN.fetch_add(1, Ordering::SeqCst);
    let guard = ConnGuard(());
    if open >= MAX_CONNECTIONS.load(Ordering::SeqCst) {
        REFUSED.fetch_add(1, Ordering::SeqCst);
        // Answer and close off the accept thread: the request must be drained before closing,
        // or the close turns into a reset that can destroy the 503 before the client reads it.
        if let Ok(mut c) = sock.try_clone() {
            let spawned = std::thread::Builder::new()
                .name("refuse".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    if let Connection::Tcp(t) = &c {
                        let _ = t.set_write_timeout(Some(Duration::from_millis(200)));
                        let _ = t.set_read_timeout(Some(Duration::from_millis(200)));
                    }
                    let _ = c.write_all(REFUSAL);
                    let _ = c.flush();
                    let _ = c.shutdown(std::net::Shutdown::Write);
                    let mut sink = [0u8; 4096];
                    let deadline = std::time::Instant::now() + Duration::from_millis(200);
                    while std::time::Instant::now() < deadline {
                        match std::io::Read::read(&mut c, &mut sink) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                });
            drop(spawned);
        }
        return None; // the guard drops here; our copy of the socket closes when `sock` drops
    }
    if let Connection::Tcp(t) = sock {
        let _ = t.set_read_timeout(ms(&READ_TIMEOUT_MS));
        let _ = t.set_write_timeout(ms(&WRITE_TIMEOUT_MS));
        let _ = t.set_nodelay(true);
    }
    Some(guard)
}
