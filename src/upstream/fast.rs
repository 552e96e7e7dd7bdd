//! The upstream round trip without ureq for plain `http://` upstreams without a proxy (issue
//! 17: vLLM, Ollama, LAN gateways). ureq spent ~50k instructions per JSON call building an
//! `http::Request`, its header map, its protocol state machines and its body reader layers;
//! here the request head and body are written into one reused buffer and sent in one write on
//! a pooled socket (`super::pool`, same probe, bounds and age limit as ureq's connections),
//! the answer's head is parsed with `httparse` from one read into a reused buffer, and the
//! body is read by content length or a strict chunked decoder (`body`).
//!
//! The answer is an `answer::Response` as ureq's answers become (no header map: the status,
//! the one header read, the body), read under the same limits (`BodyExceedsLimit`); every
//! fault is a `ureq::Error` that `super::map_fault` maps as before: the call's deadline (resolve,
//! connect, write, every read of head and body) → `Timeout` (504); refused, reset, closed
//! early → `Io` (502, named by kind); a head over [`MAX_HEAD`] or with more than
//! [`MAX_HEADERS`] headers → 502. No redirect is followed (a 3xx is returned as it is, as
//! ureq with `max_redirects(0)`). A socket goes back to its host's idle list only when its
//! answer was read to its end, nothing more arrived, and it did not say `connection: close`.
//! Unlike ureq, no `accept-encoding: gzip` is sent (a LAN upstream answers uncompressed).

mod body;

pub use body::FastBody;

use super::answer::{Response, ERROR_TYPE};
use super::pool::{IdlePool, Plain};
use super::transport::{connect_one, settle_timeout, IpLiteralResolver};
use body::Framing;
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::{Error, Timeout};

/// The most an answer's head may take (ureq's input buffer, `super::config`).
pub const MAX_HEAD: usize = 32 * 1024;
/// The most headers an answer's head may have.
pub const MAX_HEADERS: usize = 64;
/// Informational (1xx) heads skipped before the answer's own, at most.
const MAX_INFORMATIONAL: usize = 4;
/// A request body up to this size is copied after the head and sent in the same write.
const ONE_WRITE: usize = 64 * 1024;
/// Connecting takes at most this long (ureq's `timeout_connect`, `super::config`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

thread_local! {
    /// The request buffer of this thread's last call (kept if small).
    static WRITE_BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Where a plain `http://` URL goes: its authority (the pool's key) and its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub authority: &'a str,
    pub path: &'a str,
}

impl<'a> Target<'a> {
    /// The target of `url` if it is plain `http://` with an ordinary authority (no user
    /// info) and path; anything else (https, odd URLs) stays with ureq.
    pub fn of(url: &'a str) -> Option<Target<'a>> {
        let rest = url.strip_prefix("http://")?;
        if !rest.bytes().all(|b| b.is_ascii_graphic()) || rest.contains(['@', '#', '\\']) {
            return None;
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], &rest[i..]),
            Some(_) => return None,
            None => (rest, "/"),
        };
        host_port(authority)?;
        Some(Target { authority, path })
    }

    /// The `Host` header: the authority without the default port (as ureq writes it).
    fn host(&self) -> &'a str {
        self.authority.strip_suffix(":80").unwrap_or(self.authority)
    }
}

/// The host (brackets kept for IPv6) and port of an authority; `None` if malformed.
fn host_port(authority: &str) -> Option<(&str, u16)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        match &authority[end + 1..] {
            "" => (&authority[..=end], None),
            p => (&authority[..=end], Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return None;
    }
    let port = match port {
        None => 80,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p.parse().ok()?,
        Some(_) => return None,
    };
    Some((host, port))
}

/// A request being written: its head (and small body) in one buffer.
pub struct Request<'a> {
    target: Target<'a>,
    buf: Vec<u8>,
    host_set: bool,
    /// A header value with a control character (CR, LF, NUL...): the request is not sent.
    invalid: bool,
}

impl<'a> Request<'a> {
    pub fn new(target: Target<'a>) -> Request<'a> {
        let mut buf = WRITE_BUF.with(Cell::take);
        buf.clear();
        buf.extend_from_slice(b"POST ");
        buf.extend_from_slice(target.path.as_bytes());
        buf.extend_from_slice(b" HTTP/1.1\r\n");
        Request {
            target,
            buf,
            host_set: false,
            invalid: false,
        }
    }

    /// Adds a header; a name or value that is not a valid header's makes the call fail (as
    /// ureq's builder does) instead of splitting the head.
    pub fn header(&mut self, name: &str, value: &str) {
        let name_ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let value_ok = value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f));
        if !(name_ok && value_ok) {
            self.invalid = true;
            return;
        }
        self.host_set |= name.eq_ignore_ascii_case("host");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(b": ");
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Sends the request with `body` on an idle socket of its host (or a new one) and reads
    /// the answer's head; the body is read by the caller through the response.
    pub fn send(mut self, up: &Fast, body: &[u8], timeout: Duration) -> Result<Response, Error> {
        let deadline = Instant::now() + timeout;
        if self.invalid {
            self.recycle();
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid request header",
            )));
        }
        if !self.host_set {
            let host = self.target.host();
            self.header("host", host);
        }
        self.buf.extend_from_slice(b"user-agent: ");
        self.buf.extend_from_slice(super::USER_AGENT.as_bytes());
        self.buf.extend_from_slice(b"\r\ncontent-length: ");
        self.buf.extend_from_slice(digits(body.len()).as_bytes());
        self.buf.extend_from_slice(b"\r\n\r\n");
        let together = body.len() <= ONE_WRITE;
        if together {
            self.buf.extend_from_slice(body);
        }
        let (mut conn, reused) = match up.idle.take_plain(self.target.authority, up.max_idle_age) {
            Some(c) => (c, true),
            None => (connect(up, self.target, deadline)?, false),
        };
        log::trace!(
            "upstream POST {} ({} bytes, {} connection)",
            self.target.path,
            body.len(),
            if reused { "reused" } else { "new" }
        );
        let r = write(&mut conn, &self.buf, deadline).and_then(|()| {
            if together {
                Ok(())
            } else {
                write(&mut conn, body, deadline)
            }
        });
        self.recycle();
        r?;
        read_head(up, self.target.authority, conn, deadline)
    }

    fn recycle(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= 2 * ONE_WRITE {
            WRITE_BUF.with(|c| c.set(buf));
        }
    }
}

/// Decimal digits of `n` without the formatting machinery.
fn digits(mut n: usize) -> Digits {
    let mut d = Digits([0; 20], 20);
    loop {
        d.1 -= 1;
        d.0[d.1] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

struct Digits([u8; 20], usize);

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.0[self.1..]
    }
}

/// What the fast path needs of the `Upstream`: its idle sockets and settings.
pub struct Fast {
    pub idle: Arc<IdlePool>,
    pub max_idle_age: Duration,
    pub config: ureq::config::Config,
}

/// The time left until `deadline`, or the timeout error.
fn left(deadline: Instant, reason: Timeout) -> Result<Duration, Error> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(Error::Timeout(reason)),
    }
}

fn io_err(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Error::Timeout(Timeout::Global),
        _ => Error::Io(e),
    }
}

/// A new socket to `target`'s host within the deadline (and the connect timeout).
fn connect(up: &Fast, target: Target, deadline: Instant) -> Result<Plain, Error> {
    let addrs = resolve(up, target, deadline)?;
    let mut last = None;
    for addr in addrs {
        let t = left(deadline, Timeout::Connect)?.min(CONNECT_TIMEOUT);
        match connect_one(&addr, Some(t)) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(Plain {
                    stream,
                    read_timeout: None,
                    write_timeout: None,
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(Error::HostNotFound))
}

/// The addresses of `target`'s host through the agents' resolver (`transport::IpLiteralResolver`:
/// an IP address as it is, a name through ureq's resolver on a thread of its own, bounded by
/// the deadline). Only when no idle socket of the host is left.
fn resolve(up: &Fast, target: Target, deadline: Instant) -> Result<Vec<SocketAddr>, Error> {
    use ureq::unversioned::resolver::Resolver;
    let uri: ureq::http::Uri = format!("http://{}/", target.authority)
        .parse()
        .map_err(|_| Error::HostNotFound)?;
    let timeout = ureq::unversioned::transport::NextTimeout {
        after: ureq::unversioned::transport::time::Duration::Exact(left(
            deadline,
            Timeout::Resolve,
        )?),
        reason: Timeout::Resolve,
        per_read: None,
        per_write: None,
    };
    let addrs = IpLiteralResolver::default().resolve(&uri, &up.config, timeout)?;
    Ok(addrs.iter().copied().collect())
}

fn write(conn: &mut Plain, bytes: &[u8], deadline: Instant) -> Result<(), Error> {
    let t = left(deadline, Timeout::SendRequest)?;
    let stream = &conn.stream;
    settle_timeout(&mut conn.write_timeout, Some(t), |d| {
        stream.set_write_timeout(d)
    })?;
    (&conn.stream).write_all(bytes).map_err(io_err)
}

/// One read into `buf` within the deadline (the socket timeout is moved only when it is off
/// by more than a second, as in `super::transport`). A timeout is `ureq::Error::Timeout`.
pub(crate) fn read_some(conn: &mut Plain, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    let t = left(deadline, Timeout::Global).map_err(Error::into_io)?;
    let stream = &conn.stream;
    settle_timeout(&mut conn.read_timeout, Some(t), |d| {
        stream.set_read_timeout(d)
    })?;
    loop {
        match (&conn.stream).read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e).into_io()),
            Ok(n) => return Ok(n),
        }
    }
}

/// Reads and parses the answer's head; what came after it starts the body.
fn read_head(
    up: &Fast,
    authority: &str,
    mut conn: Plain,
    deadline: Instant,
) -> Result<Response, Error> {
    let mut buf = body::take_buf();
    let mut filled = 0;
    let mut informational = 0;
    loop {
        // Parsed only once the blank line that ends a head has arrived (a head sent byte by
        // byte is searched once per read, not parsed again each time).
        let end = find_head_end(&buf[..filled]);
        let Some(_) = end else {
            if filled == buf.len() {
                body::give_buf(buf);
                return Err(Error::LargeResponseHeader(filled, MAX_HEAD));
            }
            let n = read_some(&mut conn, &mut buf[filled..], deadline)?;
            if n == 0 {
                body::give_buf(buf);
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the upstream closed the connection before its answer",
                )));
            }
            filled += n;
            continue;
        };
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut head = httparse::Response::new(&mut headers);
        let parsed = head.parse(&buf[..filled]);
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                body::give_buf(buf);
                return Err(invalid("an incomplete head"));
            }
            Err(httparse::Error::TooManyHeaders) => {
                body::give_buf(buf);
                return Err(Error::LargeResponseHeader(filled, MAX_HEAD));
            }
            Err(_) => {
                body::give_buf(buf);
                return Err(invalid("a malformed head"));
            }
        };
        let code = head.code.unwrap_or(0);
        if (100..200).contains(&code) && code != 101 {
            // An informational head (103 Early Hints): the answer follows.
            informational += 1;
            if informational > MAX_INFORMATIONAL {
                body::give_buf(buf);
                return Err(invalid("too many informational heads"));
            }
            buf.copy_within(len..filled, 0);
            filled -= len;
            continue;
        }
        let built = build(&head, code);
        let (framing, keep, error_type) = match built {
            Ok(b) => b,
            Err(e) => {
                body::give_buf(buf);
                return Err(e);
            }
        };
        let home = keep.then(|| (up.idle.clone(), Box::<str>::from(authority)));
        let body = FastBody::new(conn, buf, len, filled, framing, deadline, home);
        return Ok(Response::fast(code, error_type, body));
    }
}

/// The index just past the blank line ending a head, if it has arrived (CRLF or bare LF
/// line ends, as httparse takes them).
fn find_head_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = b[i..].iter().position(|&c| c == b'\n') {
        let at = i + p;
        match b.get(at + 1) {
            Some(b'\n') => return Some(at + 2),
            Some(b'\r') if b.get(at + 2) == Some(&b'\n') => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

fn invalid(what: &str) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid HTTP answer: {what}"),
    ))
}

/// How the answer's body is framed, whether its connection may serve another call once the
/// body is read to its end, and its `x-amzn-errortype` when the status is an error's (the
/// only header read: no header map is built). httparse has checked every name and value.
fn build(head: &httparse::Response, code: u16) -> Result<(Framing, bool, Option<Box<str>>), Error> {
    if !(100..=999).contains(&code) {
        return Err(invalid("a bad status"));
    }
    let mut keep = head.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut error_type = None;
    for h in head.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| invalid("a bad content-length"))?;
            if length.is_some_and(|l| l != v) {
                return Err(invalid("two content-lengths"));
            }
            length = Some(v);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked` is understood; any other coding cannot be framed.
            let v = visible(h.value).ok_or_else(|| invalid("a transfer-encoding"))?;
            for coding in v.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if chunked || !coding.eq_ignore_ascii_case("chunked") {
                    return Err(invalid("a transfer-encoding other than chunked"));
                }
                chunked = true;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            let v = visible(h.value).unwrap_or("");
            if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")) {
                keep = false;
            }
        } else if code >= 400 && name.eq_ignore_ascii_case(ERROR_TYPE) {
            error_type = visible(h.value).map(Box::from);
        }
    }
    let framing = if code == 204 || code == 304 {
        Framing::Length(0)
    } else if chunked {
        if length.is_some() {
            // Both framings: the chunked one is read, the connection is not trusted again.
            keep = false;
        }
        Framing::chunked()
    } else if let Some(l) = length {
        Framing::Length(l)
    } else {
        keep = false;
        Framing::Close
    };
    Ok((framing, keep, error_type))
}

/// A header value of visible ASCII (and tabs), as `HeaderValue::to_str` takes it.
fn visible(v: &[u8]) -> Option<&str> {
    v.iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        .then(|| std::str::from_utf8(v).ok())
        .flatten()
}

#[cfg(test)]
mod tests;
