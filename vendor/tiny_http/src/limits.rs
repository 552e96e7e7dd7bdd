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

// ---------------------------------------------------------------------------------------------
// litegate patch (issue 11): bounds on what one request may make the server hold.

/// A request line longer than this is refused with 414 (before the rest is read).
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// The request head (request line + headers + blank line) longer than this: 431.
pub const MAX_HEAD: usize = 32 * 1024;
/// More header lines than this: 431 (httparse's array of this size lives on the stack).
pub const MAX_HEADERS: usize = 100;
/// A body left unread by the handler (an early 401/413) is drained to keep the connection
/// only when at most this much of it remains; otherwise the connection is closed.
pub const MAX_DRAIN: usize = 64 * 1024;
/// When a connection is closed with input still arriving, we stop writing (FIN), then keep
/// reading and discarding (through a fixed 4 KiB buffer) until the client closes too or for
/// at most this long ("lingering close", as nginx does): closing with unread input makes the
/// kernel send a reset, which can destroy the response before the client has read it (a
/// client that uploads its whole body before reading would never see our 413/401).
pub const LINGER: Duration = Duration::from_secs(3);
/// A chunk-size line (size, extensions) or a trailer line longer than this: the body is refused.
pub const MAX_CHUNK_LINE: usize = 1024;
/// All trailer lines of a chunked body together.
pub const MAX_TRAILERS: usize = 8 * 1024;

static REFUSED_REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Requests the HTTP layer refused itself (malformed or oversized head, ambiguous framing,
/// a deadline passed while reading): they never reach the handler, its metrics or its log.
pub fn refused_requests() -> u64 {
    REFUSED_REQUESTS.load(Ordering::Relaxed)
}

pub(crate) fn count_refused_request() {
    REFUSED_REQUESTS.fetch_add(1, Ordering::Relaxed);
}

static HEAD_TIMEOUT_MS: AtomicU64 = AtomicU64::new(10_000);
static REQUEST_TIMEOUT_MS: AtomicU64 = AtomicU64::new(30_000);

/// Deadlines counted from the first byte of a request: its head must have arrived within
/// `head`, and the whole request (head and body, also a body that is drained or refused)
/// within `whole`. They are enforced on every read (the socket timeout is shortened to the
/// time left), so a client trickling bytes cannot hold a connection past them.
pub fn set_request_deadlines(head: Duration, whole: Duration) {
    let ms = |d: Duration| d.as_millis().clamp(1, u64::MAX as u128) as u64;
    HEAD_TIMEOUT_MS.store(ms(head), Ordering::SeqCst);
    REQUEST_TIMEOUT_MS.store(ms(whole).max(ms(head)), Ordering::SeqCst);
}

pub(crate) fn head_timeout() -> Duration {
    Duration::from_millis(HEAD_TIMEOUT_MS.load(Ordering::Relaxed))
}

pub(crate) fn request_timeout() -> Duration {
    Duration::from_millis(REQUEST_TIMEOUT_MS.load(Ordering::Relaxed))
}

pub(crate) fn read_timeout() -> Option<Duration> {
    ms(&READ_TIMEOUT_MS)
}

/// State one connection's reader, its requests and its body readers share (all on the
/// connection's own thread; atomics only because `Request` must be `Send`).
#[derive(Default)]
pub(crate) struct ConnState {
    /// Milliseconds after `epoch()` when reads start failing with `TimedOut`; 0 = none.
    deadline_ms: AtomicU64,
    /// Body bytes the handler left unread (drained before the next request, or close).
    unread: AtomicU64,
    /// The connection must close after the current response (framing can no longer be
    /// trusted, or too much unread input).
    close: std::sync::atomic::AtomicBool,
}

fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

impl ConnState {
    pub(crate) fn set_deadline(&self, at: Option<std::time::Instant>) {
        let v = at.map_or(0, |t| {
            (t.saturating_duration_since(epoch()).as_millis() as u64).max(1)
        });
        self.deadline_ms.store(v, Ordering::Relaxed);
    }

    pub(crate) fn deadline(&self) -> Option<std::time::Instant> {
        match self.deadline_ms.load(Ordering::Relaxed) {
            0 => None,
            n => Some(epoch() + Duration::from_millis(n)),
        }
    }

    pub(crate) fn add_unread(&self, n: u64) {
        self.unread.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn take_unread(&self) -> u64 {
        self.unread.swap(0, Ordering::Relaxed)
    }

    pub(crate) fn close(&self) {
        self.close.store(true, Ordering::Relaxed);
    }

    pub(crate) fn must_close(&self) -> bool {
        self.close.load(Ordering::Relaxed)
    }
}
