//! litegate patch to tiny_http 0.12: how a server is configured (`Config`: connection limits
//! and deadlines, the wording of the answers the connection sends on its own, the counters),
//! per-connection socket timeouts and a cap on open connections applied in the accept loop
//! (the only place a socket is seen before tiny_http reads from it), and the bounds on what
//! one request may make the server hold. Upstream tiny_http sets no timeouts: a client that
//! sends headers slowly, or headers and then no body, or nothing at all, would hold a thread
//! (and, for a body, one of the application's workers) forever. See PATCHES.md.

use crate::connection::Connection;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a connection may take, and how many may be open: a value handed to
/// `Server::from_listener_with_handler` (no process-wide setting, so two servers in one
/// process, or a test, can each have their own).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Set on every accepted socket: a read (headers, body, keep-alive idle) that makes no
    /// progress for this long fails and the connection closes. `None` = no timeout.
    pub read_timeout: Option<Duration>,
    /// Likewise for writes (a client that stops reading, e.g. mid-stream).
    pub write_timeout: Option<Duration>,
    /// Connections beyond this many open ones get a 503 and are closed at once.
    pub max_connections: usize,
    /// A request's head must have arrived within this long of its first byte.
    pub head_timeout: Duration,
    /// The whole request (head and body, also a body that is drained or refused) within this
    /// long of its first byte; never less than `head_timeout`. Both deadlines are enforced on
    /// every read (the socket timeout is shortened to the time left), so a client trickling
    /// bytes cannot hold a connection past them.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            read_timeout: None,
            write_timeout: None,
            max_connections: usize::MAX,
            head_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Why the connection itself answered, with no handler involved; the connection closes after
/// the answer. The application words the answer (`Config::render`).
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// 400: a malformed request head or ambiguous/invalid body framing (the reason).
    Malformed(String),
    /// 400: a header value that is not ASCII (the header's name, lowercase). An application
    /// may answer 401 for its credential headers instead.
    NonAsciiHeader(String),
    /// 414: the request line is longer than this many bytes.
    RequestLineTooLong(usize),
    /// 431: the head is larger than this many bytes.
    HeadTooLarge(usize),
    /// 431: more than this many header lines.
    TooManyHeaders(usize),
    /// 408: the request was not in within its deadline (or a read timed out mid-request).
    Timeout,
    /// 417: an `Expect` header other than `100-continue`.
    ExpectationFailed,
    /// 505: not HTTP/1.0 or HTTP/1.1.
    VersionNotSupported,
    /// 503: already `Limits::max_connections` connections open.
    TooManyConnections,
}

impl Refusal {
    /// The HTTP status this refusal is answered with by default (`plain_text`); a renderer
    /// may choose another (e.g. 401 for a credential header that is not ASCII).
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) | Refusal::NonAsciiHeader(_) => 400,
            Refusal::RequestLineTooLong(_) => 414,
            Refusal::HeadTooLarge(_) | Refusal::TooManyHeaders(_) => 431,
            Refusal::Timeout => 408,
            Refusal::ExpectationFailed => 417,
            Refusal::VersionNotSupported => 505,
            Refusal::TooManyConnections => 503,
        }
    }
}

/// A refusal's answer: its status, `Content-Type` and body. `Content-Length` and
/// `Connection: close` are added by the connection.
pub struct RefusalBody {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// Words a refusal; called on the connection's thread (or a short-lived thread for the 503).
pub type RenderRefusal = Arc<dyn Fn(&Refusal) -> RefusalBody + Send + Sync + 'static>;

/// Counters a running server keeps; the application reads them (e.g. for metrics) through
/// the `Arc` it passed in `Config::stats`.
#[derive(Default, Debug)]
pub struct Stats {
    open: AtomicUsize,
    refused_connections: AtomicU64,
    refused_requests: AtomicU64,
}

impl Stats {
    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Connections refused for being over the cap since start.
    pub fn refused_connections(&self) -> u64 {
        self.refused_connections.load(Ordering::SeqCst)
    }

    /// Requests the HTTP layer refused itself (malformed or oversized head, ambiguous framing,
    /// a deadline passed while reading): they never reach the handler, its metrics or its log.
    pub fn refused_requests(&self) -> u64 {
        self.refused_requests.load(Ordering::Relaxed)
    }

    pub(crate) fn count_refused_request(&self) {
        self.refused_requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything a server is configured with, by value at construction.
#[derive(Clone)]
pub struct Config {
    pub limits: Limits,
    /// Words the answers the connection sends on its own (408, 503, malformed heads, ...).
    pub render: RenderRefusal,
    /// Where the server counts connections and refusals.
    pub stats: Arc<Stats>,
}

impl Default for Config {
    /// No timeouts, no cap, refusals as a plain-text sentence.
    fn default() -> Config {
        Config {
            limits: Limits::default(),
            render: Arc::new(plain_text),
            stats: Arc::new(Stats::default()),
        }
    }
}

/// The default wording of a refusal: one line of plain text.
pub fn plain_text(r: &Refusal) -> RefusalBody {
    let body = match r {
        Refusal::Malformed(why) => why.clone(),
        Refusal::NonAsciiHeader(name) => format!("the value of header {name} is not ASCII"),
        Refusal::RequestLineTooLong(n) => format!("request line longer than {n} bytes"),
        Refusal::HeadTooLarge(n) => format!("request headers larger than {n} bytes"),
        Refusal::TooManyHeaders(n) => format!("more than {n} request headers"),
        Refusal::Timeout => "request timed out while reading the request".into(),
        Refusal::ExpectationFailed => "unsupported Expect header".into(),
        Refusal::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are supported".into(),
        Refusal::TooManyConnections => "too many open connections; try again".into(),
    };
    RefusalBody {
        status: r.status(),
        content_type: "text/plain; charset=utf-8",
        body: body.into_bytes(),
    }
}

/// The whole answer to a refusal, head and body, announcing the close.
pub(crate) fn refusal_bytes(config: &Config, r: &Refusal) -> Vec<u8> {
    let RefusalBody {
        status,
        content_type,
        body,
    } = (config.render)(r);
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n",
        crate::StatusCode(status).default_reason_phrase(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Counts one open connection; released when the connection's task ends.
pub struct ConnGuard(Arc<Stats>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

pub(crate) fn admit(sock: &mut Connection, config: &Config) -> Option<ConnGuard> {
    let stats = &config.stats;
    let open = stats.open.fetch_add(1, Ordering::SeqCst);
    let guard = ConnGuard(stats.clone());
    if open >= config.limits.max_connections.max(1) {
        stats.refused_connections.fetch_add(1, Ordering::SeqCst);
        // Answer and close off the accept thread: the request must be drained before closing,
        // or the close turns into a reset that can destroy the 503 before the client reads it.
        if let Ok(mut c) = sock.try_clone() {
            let config = config.clone();
            let spawned = std::thread::Builder::new()
                .name("refuse".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    if let Connection::Tcp(t) = &c {
                        let _ = t.set_write_timeout(Some(Duration::from_millis(200)));
                        let _ = t.set_read_timeout(Some(Duration::from_millis(200)));
                    }
                    let _ = c.write_all(&refusal_bytes(&config, &Refusal::TooManyConnections));
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
        let _ = t.set_read_timeout(config.limits.read_timeout);
        let _ = t.set_write_timeout(config.limits.write_timeout);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// A server on loopback with `config` whose handler answers 204 to everything.
    fn server(config: Config) -> (crate::Server, std::net::SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let handler: crate::Handler = Arc::new(|rq: crate::Request| {
            let _ = rq.respond(crate::Response::empty(204));
        });
        let s = crate::Server::from_listener_with_handler(l, None, config, handler).unwrap();
        (s, addr)
    }

    fn exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn tagged(tag: &'static str) -> RenderRefusal {
        Arc::new(move |r: &Refusal| RefusalBody {
            status: if *r == Refusal::Timeout { 499 } else { r.status() },
            content_type: "application/x-test",
            body: format!("{tag}:{}", r.status()).into_bytes(),
        })
    }

    /// Two servers in one process, each with its own limits, wording and counters (what the
    /// process-wide statics this replaced could not do).
    #[test]
    fn each_server_has_its_own_configuration() {
        let a_stats = Arc::new(Stats::default());
        let (_a, a) = server(Config {
            limits: Limits {
                max_connections: 1,
                ..Limits::default()
            },
            render: tagged("a"),
            stats: a_stats.clone(),
        });
        let b_stats = Arc::new(Stats::default());
        let (_b, b) = server(Config {
            limits: Limits::default(),
            render: tagged("b"),
            stats: b_stats.clone(),
        });

        // A holds one connection open; the next one is over its cap.
        let mut held = TcpStream::connect(a).unwrap();
        held.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut first = [0u8; 12];
        held.read_exact(&mut first).unwrap();
        assert_eq!(&first, b"HTTP/1.1 204");
        let refused = exchange(a, b"GET / HTTP/1.1\r\n\r\n");
        assert!(refused.starts_with("HTTP/1.1 503 "), "{refused}");
        assert!(refused.contains("Content-Type: application/x-test\r\n"), "{refused}");
        assert!(refused.contains("Connection: close\r\n"), "{refused}");
        assert!(refused.contains("Content-Length: 5\r\n"), "{refused}");
        assert!(refused.ends_with("\r\n\r\na:503"), "{refused}");
        assert_eq!(a_stats.refused_connections(), 1);

        // B has no cap, and words a malformed head its own way, with its own count.
        let bad = exchange(b, b"GET / HTTP/1.1\nHost: x\r\n\r\n");
        assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
        assert!(bad.ends_with("\r\n\r\nb:400"), "{bad}");
        assert_eq!(b_stats.refused_requests(), 1);
        assert_eq!(b_stats.refused_connections(), 0);
        assert_eq!(a_stats.refused_requests(), 0);
        drop(held);
    }

    /// The renderer chooses the status; the deadlines are the server's own.
    #[test]
    fn deadlines_come_from_the_config_and_the_renderer_picks_the_status() {
        let (_s, addr) = server(Config {
            limits: Limits {
                head_timeout: Duration::from_millis(200),
                request_timeout: Duration::from_millis(200),
                ..Limits::default()
            },
            render: tagged("t"),
            stats: Arc::new(Stats::default()),
        });
        let t = std::time::Instant::now();
        let out = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n");
        assert!(out.starts_with("HTTP/1.1 499 "), "{out}");
        assert!(out.ends_with("t:408"), "{out}");
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    }

    #[test]
    fn the_default_wording_is_plain_text() {
        let b = plain_text(&Refusal::TooManyHeaders(100));
        assert_eq!(b.status, 431);
        assert_eq!(b.body, b"more than 100 request headers");
    }
}
