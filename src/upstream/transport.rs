//! The plain-HTTP transport under ureq (issue 6): the same blocking TCP socket as ureq's own
//! `TcpConnector`, with three fewer costs per upstream call, measured with strace on the load
//! benchmark (11 system calls per call beside the one send and one receive):
//! - the request head and body go out in one `send` (ureq hands them over separately; two
//!   sends also woke the upstream twice);
//! - socket timeouts are set only when the wanted one moved by more than a second (ureq sets
//!   them before every read and write, because a global timeout shrinks as it runs);
//! - the "still open?" probe of a pooled connection is one non-blocking `recv(MSG_PEEK)`
//!   (ureq switches the socket to non-blocking, reads, and switches back: three calls);
//! - and it runs once per reuse, not twice (issue 17): ureq asks `is_open` when it puts a
//!   connection back in its pool, right after reading the answer, and again when it takes it
//!   out for the next call. The first ask is answered without a system call (ureq has just
//!   checked its own buffer for bytes beyond the body); the second probes the socket, which
//!   catches everything the first would have (unasked bytes, a close) and what happened
//!   while the connection waited in the pool.
//!
//! Also the resolver of the agents (`IpLiteralResolver`: IP-address hosts without a thread).
//! HTTPS and proxies go through ureq's default connector unchanged. Every connection, plain
//! or not, is kept idle between calls by this connector (`super::pool`), not by ureq's pool.

use super::pool::{IdlePool, Pooled};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, LazyBuffers, NextTimeout,
    ShutdownHandle, Transport,
};
use ureq::{Error, Timeout};

/// Output gathered beyond this many bytes is sent at once (a large request body).
const FLUSH_AT: usize = 64 * 1024;
/// A socket timeout is reset only when the wanted one differs by more than this.
const TIMEOUT_SLACK: Duration = Duration::from_secs(1);

/// An idle connection of the call's host if one passes its probe; else a new one: plain
/// `http://` without a proxy: [`FastTcp`]; anything else: ureq's default chain. The agent
/// using it must have its own pool off (`max_idle_connections(0)`, see [`agent`]).
#[derive(Debug, Default)]
pub struct UpstreamConnector {
    default: DefaultConnector,
    idle: Arc<IdlePool>,
}

/// An agent with `config` (its pool limits replaced) over [`UpstreamConnector`] and
/// `resolver`.
pub fn agent(
    config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    resolver: impl ureq::unversioned::resolver::Resolver,
) -> ureq::Agent {
    agent_sharing(config, resolver, Arc::default())
}

/// As [`agent`], over the idle connections `idle` (shared by agents that differ only in
/// their deadlines).
pub fn agent_sharing(
    config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>,
    resolver: impl ureq::unversioned::resolver::Resolver,
    idle: Arc<IdlePool>,
) -> ureq::Agent {
    // ureq's pool stays empty: connections come back to the connector's (`super::pool`).
    let config = config.max_idle_connections(0).build();
    let connector = UpstreamConnector {
        default: DefaultConnector::default(),
        idle,
    };
    ureq::Agent::with_parts(config, connector, resolver)
}

impl Connector<()> for UpstreamConnector {
    type Out = Pooled;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, Error> {
        let max_age = details.config.max_idle_age();
        if let Some(c) = self.idle.take(details, max_age) {
            return Ok(Some(c));
        }
        let t = self.fresh(details, chained)?;
        Ok(t.map(|t| self.idle.wrap(details, t)))
    }
}

impl UpstreamConnector {
    fn fresh(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Box<dyn Transport>>, Error> {
        if details.needs_tls() || details.config.proxy().is_some() {
            return self.default.connect(details, chained);
        }
        let stream = connect(details)?;
        stream.set_nodelay(true)?;
        let stream = Arc::new(stream);
        (details.register_shutdown)(Arc::downgrade(&stream) as std::sync::Weak<dyn ShutdownHandle>)?;
        Ok(Some(Box::new(FastTcp {
            stream,
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            pending: Vec::new(),
            read_timeout: None,
            write_timeout: None,
            just_used: false,
        })))
    }
}

/// Tries each resolved address in turn within the connect timeout.
fn connect(details: &ConnectionDetails) -> Result<TcpStream, Error> {
    let timeout = details.timeout.not_zero().map(|d| *d);
    let mut last = None;
    for addr in details.addrs.iter() {
        match connect_one(addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        Error::Io(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "no address to connect to",
        ))
    }))
}

/// One connection attempt (no timeout: the system's); a timeout is `Timeout::Connect`, any
/// other failure the I/O error. Shared with the fast path (`super::fast`).
pub(super) fn connect_one(
    addr: &SocketAddr,
    timeout: Option<Duration>,
) -> Result<TcpStream, Error> {
    match timeout {
        Some(t) => TcpStream::connect_timeout(addr, t),
        None => TcpStream::connect(addr),
    }
    .map_err(|e| match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout(Timeout::Connect),
        _ => Error::Io(e),
    })
}

pub struct FastTcp {
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// Output handed over by ureq and not sent yet: sent before the first read.
    pending: Vec<u8>,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// An answer was read and `is_open` has not been asked since: the next ask is ureq
    /// putting the connection back in its pool (see the module doc).
    just_used: bool,
}

impl std::fmt::Debug for FastTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastTcp")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// The socket timeout for `t`: reset only if it moved by more than [`TIMEOUT_SLACK`] (so a
/// read or write may time out up to a second off the exact deadline).
pub(super) fn settle_timeout(
    current: &mut Option<Duration>,
    wanted: Option<Duration>,
    set: impl FnOnce(Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    let close = match (*current, wanted) {
        (Some(a), Some(b)) => a.abs_diff(b) <= TIMEOUT_SLACK,
        (None, None) => true,
        _ => false,
    };
    if !close {
        set(wanted)?;
        *current = wanted;
    }
    Ok(())
}

fn expired(t: NextTimeout) -> Result<NextTimeout, Error> {
    if !t.after.is_not_happening() && t.after.is_zero() {
        return Err(Error::Timeout(t.reason));
    }
    Ok(t)
}

fn io_err(e: io::Error, reason: Timeout) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout(reason),
        _ => Error::Io(e),
    }
}

impl FastTcp {
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let t = expired(timeout.for_write())?;
        let stream = &*self.stream;
        settle_timeout(&mut self.write_timeout, t.not_zero().map(|d| *d), |d| {
            stream.set_write_timeout(d)
        })?;
        let r = (&*self.stream).write_all(&self.pending);
        self.pending.clear();
        r.map_err(|e| io_err(e, t.reason))
    }
}

impl Transport for FastTcp {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let out = &self.buffers.output()[..amount];
        self.pending.extend_from_slice(out);
        // Held back until ureq waits for the answer (`await_input`). If input is already
        // buffered, ureq may read it without waiting, so nothing is held back then.
        if self.pending.len() >= FLUSH_AT || self.buffers.can_use_input() {
            self.flush(timeout)?;
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.flush(timeout)?;
        let t = expired(timeout.for_read())?;
        let stream = &*self.stream;
        settle_timeout(&mut self.read_timeout, t.not_zero().map(|d| *d), |d| {
            stream.set_read_timeout(d)
        })?;
        let input = self.buffers.input_append_buf();
        let n = loop {
            match (&*self.stream).read(input) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r.map_err(|e| io_err(e, t.reason))?,
            }
        };
        self.buffers.input_appended(n);
        self.just_used = true;
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        if !self.pending.is_empty() {
            return false;
        }
        // Put back in the pool right after its answer: the probe waits for the reuse.
        if std::mem::take(&mut self.just_used) {
            return true;
        }
        probe(&self.stream)
    }
}

/// True if the peer has neither closed the connection nor sent anything unasked: one
/// non-blocking peek.
pub(super) fn probe(stream: &TcpStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = [0u8; 1];
    // SAFETY: a valid socket descriptor (owned by `stream` for the whole call) and a 1-byte
    // buffer that outlives the call; MSG_PEEK | MSG_DONTWAIT neither consumes nor blocks.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// ureq's default resolver, but an IP-address host (`http://10.0.0.5:8000/v1`) is answered
/// without it: whenever a timeout applies (ours always does) ureq resolves on a newly spawned
/// thread per call, even for an address, which cost ~7 % of the CPU of a forwarded call. Names
/// still go to ureq's resolver, with its timeout, on every call (no DNS caching here).
#[derive(Debug, Default)]
pub struct IpLiteralResolver(ureq::unversioned::resolver::DefaultResolver);

impl ureq::unversioned::resolver::Resolver for IpLiteralResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = ip_literal(uri) {
            let mut out = self.empty();
            out.push(addr);
            return Ok(out);
        }
        self.0.resolve(uri, config, timeout)
    }
}

/// The socket address of a URI whose host is an IP address (`[v6]` too), with its port or the
/// scheme's default; `None` for names.
fn ip_literal(uri: &ureq::http::Uri) -> Option<std::net::SocketAddr> {
    let host = uri.host()?;
    let ip: std::net::IpAddr = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .parse()
        .ok()?;
    let port = match uri.port_u16() {
        Some(p) => p,
        None => match uri.scheme_str()? {
            "http" => 80,
            "https" => 443,
            _ => return None,
        },
    };
    Some(std::net::SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_hosts_skip_the_resolver() {
        let u = |s: &str| s.parse::<ureq::http::Uri>().expect("uri");
        assert_eq!(
            ip_literal(&u("http://127.0.0.1:8080/v1/chat/completions")),
            Some("127.0.0.1:8080".parse().expect("addr"))
        );
        assert_eq!(
            ip_literal(&u("https://10.1.2.3/v1")),
            Some("10.1.2.3:443".parse().expect("addr"))
        );
        assert_eq!(
            ip_literal(&u("http://[::1]:9/v1")),
            Some("[::1]:9".parse().expect("addr"))
        );
        assert_eq!(ip_literal(&u("https://api.openai.com/v1")), None);
        assert_eq!(ip_literal(&u("http://localhost:80/v1")), None);
    }

    #[test]
    fn timeouts_are_reset_only_when_they_move_by_more_than_a_second() {
        let mut cur = None;
        let mut sets = 0;
        let mut set = |_| {
            sets += 1;
            Ok(())
        };
        settle_timeout(&mut cur, Some(Duration::from_secs(600)), &mut set).expect("set");
        settle_timeout(&mut cur, Some(Duration::from_millis(599_500)), &mut set).expect("set");
        settle_timeout(&mut cur, Some(Duration::from_millis(598_900)), &mut set).expect("set");
        settle_timeout(&mut cur, None, &mut set).expect("set");
        assert_eq!(sets, 3);
        assert_eq!(cur, None);
    }

    /// Head and body leave in one send: the upstream's first read has the whole request.
    #[test]
    fn the_request_head_and_body_arrive_together() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/v1/x", l.local_addr().expect("addr"));
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            let mut buf = vec![0u8; 64 * 1024];
            let n = s.read(&mut buf).expect("read");
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .expect("write");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let agent = agent(
            ureq::Agent::config_builder(),
            ureq::unversioned::resolver::DefaultResolver::default(),
        );
        let body = format!("{{\"messages\": \"{}\"}}", "x".repeat(2000));
        let mut resp = agent.post(&url).send(body.as_bytes()).expect("post");
        assert_eq!(resp.body_mut().read_to_string().expect("body"), "ok");
        let first_read = server.join().expect("server");
        assert!(
            first_read.starts_with("POST /v1/x HTTP/1.1"),
            "{first_read}"
        );
        assert!(
            first_read.ends_with(&body),
            "the first read lacked the body: {first_read}"
        );
    }

    /// Issue 17: the probe runs once per reuse, when the pool hands the connection out, and
    /// still catches what arrived while it waited there: bytes nobody asked for after an
    /// answer make ureq take a new connection instead of reading them as the next answer.
    #[test]
    fn unasked_bytes_after_an_answer_are_caught_before_reuse() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/v1/x", l.local_addr().expect("addr"));
        let server = std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            let (mut first, _) = l.accept().expect("accept");
            let _ = first.read(&mut buf).expect("read");
            first
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\none")
                .expect("write");
            std::thread::sleep(Duration::from_millis(50));
            first
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale")
                .expect("write");
            let (mut second, _) = l.accept().expect("accept a second connection");
            let _ = second.read(&mut buf).expect("read");
            second
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\ntwo")
                .expect("write");
            // The first connection carried no second request.
            first
                .set_read_timeout(Some(Duration::from_millis(200)))
                .expect("timeout");
            matches!(first.read(&mut buf), Ok(0) | Err(_))
        });
        let agent = agent(
            ureq::Agent::config_builder(),
            ureq::unversioned::resolver::DefaultResolver::default(),
        );
        let call = || {
            let mut r = agent.post(&url).send(&b"{}"[..]).expect("post");
            r.body_mut().read_to_string().expect("body")
        };
        assert_eq!(call(), "one");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(call(), "two", "the unasked answer was not read as this one");
        assert!(server.join().expect("server"));
    }

    #[test]
    fn the_probe_tells_open_closed_and_unasked_bytes() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (mut s, _) = l.accept().expect("accept");
        assert!(probe(&c), "open and quiet");
        s.write_all(b"x").expect("write");
        std::thread::sleep(Duration::from_millis(50));
        assert!(!probe(&c), "unasked bytes");
        let mut one = [0u8; 1];
        (&c).read_exact(&mut one).expect("read");
        drop(s);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!probe(&c), "closed by the peer");
    }
}
