//! The server: the listener's configuration for our tiny_http fork (connection limits and
//! deadlines, and the wording of the refusals the connection sends on its own, rendered by
//! `error.rs`), and the loop that serves one request on its connection's thread: routing and
//! authentication from the head (`http::dispatch`), the worker slots (`--workers`), the body
//! read under its cap, the handler, the response (with our own chunked writer for streams),
//! metrics and the access log. Shutdown state lives in the `Lifecycle` value
//! (`crate::lifecycle`). Routes, handlers and the request model are `http`'s.

mod sse;

use crate::error::{Error, Result};
use crate::http::dispatch;
use crate::http::routes::Handler;
use crate::http::{Ctx, Reply, Req, StreamBody};
use std::sync::Arc;
use std::time::Instant;

/// Serves the already bound `listener` with `limits` until the returned server is dropped.
/// The connection counters go to `ctx.lifecycle`; refusals that the connection sends without
/// a handler (408, 503, a malformed head) are worded by `error.rs`, like every other error.
pub fn serve(
    ctx: Arc<Ctx>,
    listener: std::net::TcpListener,
    limits: tiny_http::limits::Limits,
) -> std::result::Result<tiny_http::Server, String> {
    let config = tiny_http::limits::Config {
        limits,
        render: Arc::new(render_refusal),
        stats: ctx.lifecycle.connections().clone(),
    };
    let listen = ctx.cfg.listen.clone();
    tiny_http::Server::from_listener_with_handler(listener, None, config, handler(ctx))
        .map_err(|e| format!("cannot serve on {listen}: {e}"))
}

/// The header names a key may come in (API.md §2, `auth::presented_key`): a value there that
/// is not ASCII is an authentication failure (401), anywhere else a bad request (400).
const KEY_HEADERS: &[&str] = &["authorization", "x-litellm-api-key", "api-key", "x-api-key"];

/// What the HTTP layer's own refusal is, as our error.
fn refusal_error(r: &tiny_http::limits::Refusal) -> Error {
    use tiny_http::limits::Refusal as R;
    match r {
        R::Malformed(why) => Error::bad(why.clone()),
        R::NonAsciiHeader(name) if KEY_HEADERS.contains(&name.as_str()) => Error::Unauthorized(
            format!("Authentication Error, the {name} header is not valid ASCII"),
        ),
        R::NonAsciiHeader(name) => Error::bad(format!("the value of header {name} is not ASCII")),
        R::RequestLineTooLong(n) => Error::HeadRefused {
            status: 414,
            message: format!("request line longer than {n} bytes"),
        },
        R::HeadTooLarge(n) => Error::HeadRefused {
            status: 431,
            message: format!("request headers larger than {n} bytes"),
        },
        R::TooManyHeaders(n) => Error::HeadRefused {
            status: 431,
            message: format!("more than {n} request headers"),
        },
        R::Timeout => Error::Timeout,
        R::ExpectationFailed => Error::HeadRefused {
            status: 417,
            message: "unsupported Expect header".into(),
        },
        R::VersionNotSupported => Error::HeadRefused {
            status: 505,
            message: "only HTTP/1.0 and HTTP/1.1 are supported".into(),
        },
        R::TooManyConnections => Error::Unavailable("too many open connections; try again".into()),
    }
}

/// The refusal's body: the API.md §3 envelope, as for any other error.
fn render_refusal(r: &tiny_http::limits::Refusal) -> tiny_http::limits::RefusalBody {
    let e = refusal_error(r);
    tiny_http::limits::RefusalBody {
        status: e.status(),
        content_type: "application/json",
        body: serde_json::to_vec(&e.body()).unwrap_or_default(),
    }
}

/// Bodies of routes that need no key (`/ui/login`, ...) are capped lower: they are read
/// before anyone is authenticated, and before a worker slot is taken (at most this much per
/// open connection).
pub const PUBLIC_BODY_LIMIT: usize = 16 * 1024;

/// Reads the body through the size cap (413 past it; `Content-Length` is not trusted beyond
/// refusing early). Time is bounded by the request deadline the tiny_http patch enforces on
/// every read (`--request-timeout`): a slow client gets a 408, not a worker held forever.
fn read_body(rq: &mut tiny_http::Request, limit: usize) -> Result<Vec<u8>> {
    if rq.body_length().is_some_and(|n| n > limit) {
        return Err(Error::TooLarge(limit));
    }
    // Read straight into the body's own buffer, sized by the declared length up to 64 KiB
    // (a lie costs at most that): issue 17's profile found a zeroed 16 KiB scratch buffer
    // per request costing more than the rest of the read.
    use std::io::Read;
    let mut buf = Vec::with_capacity(rq.body_length().unwrap_or(0).min(64 * 1024));
    let read = rq.as_reader().take(limit as u64 + 1).read_to_end(&mut buf);
    match read {
        Ok(_) if buf.len() > limit => Err(Error::TooLarge(limit)),
        Ok(_) => Ok(buf),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Err(Error::bad(e.to_string())),
        // A read timeout, the deadline, or a reset: the client is too slow or gone.
        Err(_) => Err(Error::Timeout),
    }
}

/// A refusal sent without reading the whole body: the connection survives only when what is
/// left is small enough for tiny_http to drain (`tiny_http::limits::MAX_DRAIN`) and the
/// client is not waiting for `100 Continue`; otherwise it closes (and the response says
/// `Connection: close`).
fn close_unless_drainable(rq: &tiny_http::Request, read_started: bool) {
    let drainable = !rq.has_body()
        || (!read_started
            && !rq.expects_continue()
            && rq
                .body_length()
                .is_some_and(|n| n <= tiny_http::limits::MAX_DRAIN));
    if !drainable {
        rq.close_connection();
    }
}

/// The response header every answer carries: the request's id (LiteLLM's `x-litellm-call-id`).
const CALL_ID: &str = "x-litellm-call-id";

fn respond(rq: tiny_http::Request, reply: Reply, call_id: &str) -> u16 {
    let (reply, extra) = match reply {
        Reply::WithHeaders(r, h) => (*r, h),
        r => (r, Vec::new()),
    };
    let (status, ctype, body): (u16, &str, Vec<u8>) = match reply {
        Reply::Json(s, v) => (
            s,
            "application/json",
            serde_json::to_vec(&v).unwrap_or_default(),
        ),
        Reply::Raw(s, ct, b) => (s, ct, b),
        Reply::Text(s, ct, t) => (s, ct, t.into_bytes()),
        Reply::Sse(body) => {
            let mut extra = extra;
            extra.push((CALL_ID.to_string(), call_id.to_string()));
            return respond_sse(rq, body, &extra);
        }
        Reply::WithHeaders(..) => (
            500,
            "application/json",
            serde_json::to_vec(&Error::internal("nested headers").body()).unwrap_or_default(),
        ),
    };
    let n = body.len();
    let mut resp = tiny_http::Response::new(
        tiny_http::StatusCode(status),
        Vec::new(),
        std::io::Cursor::new(body),
        Some(n),
        None,
    );
    // Content-Type, the handler's extra headers, then the call id: the order of before. Added
    // as text into the response's one buffer (tiny_http patch L), no `Header` per line; a
    // value that is not ASCII is left out, as `Header::from_bytes` refused it before.
    resp.add_field("Content-Type", ctype);
    for (k, v) in &extra {
        resp.add_field(k, v);
    }
    resp.add_field(CALL_ID, call_id);
    if let Err(e) = rq.respond(resp) {
        log::debug!("client went away before the response was sent: {e}");
    }
    status
}

/// Server-sent events: our own status line and chunked framing on the raw connection, so each
/// event reaches the client as soon as it is produced (tiny_http's response writer buffers).
fn respond_sse(
    rq: tiny_http::Request,
    body: Box<dyn StreamBody>,
    extra: &[(String, String)],
) -> u16 {
    let mut w = rq.into_writer();
    crate::metrics::METRICS.stream_started();
    sse::write(&mut w, body, extra);
    crate::metrics::METRICS.stream_ended();
    200
}

/// One request, from the connection's thread: route and authenticate from the head, take a
/// worker slot, read the body, run the handler, respond, count and log it.
fn handle(ctx: &Ctx, mut rq: tiny_http::Request, slots: &Slots) {
    let started = Instant::now();
    // The target and the headers are moved out of tiny_http's request, not copied (issue 17).
    let (url, headers) = rq.take_head();
    let mut req = Req::from_parts(rq.method().as_str(), url, headers);
    req.peer = rq.remote_addr().map(|a| a.ip());
    let routed = dispatch::route(&req.method, &req.path).map(|(pattern, h)| {
        req.route = pattern;
        h
    });
    // A route that needs no key reads its (small) body before taking a slot: a slow
    // unauthenticated client then holds its own connection's thread, never a worker slot.
    let early = match routed {
        Ok(Handler::Public(_)) => Some(read_body(
            &mut rq,
            PUBLIC_BODY_LIMIT.min(ctx.cfg.max_body_bytes),
        )),
        _ => None,
    };
    let _slot = slots.take();
    // Counted before the check: shutdown either sees this request in flight and waits for
    // it, or began before, and the request is refused here.
    let (_in_flight, accepting) = ctx.lifecycle.enter();
    let refusal = if !accepting {
        Err(Error::Unavailable(
            "litegate is shutting down; try again".into(),
        ))
    } else {
        // Route and key first (from the head alone); the body only for an admitted request.
        dispatch::catch(&req, || dispatch::admit(ctx, &req, routed))
    };
    let reply = match refusal {
        Err(e) => {
            if early.is_none() {
                close_unless_drainable(&rq, false);
            }
            dispatch::error_reply(&req, &e)
        }
        Ok(admitted) => {
            let body = match early {
                Some(b) => b,
                None => read_body(&mut rq, ctx.cfg.max_body_bytes),
            };
            match body {
                Ok(b) => {
                    req.body = b;
                    dispatch::guarded(&req, || dispatch::run(ctx, admitted, &req))
                }
                Err(e) => {
                    close_unless_drainable(&rq, true);
                    dispatch::error_reply(&req, &e)
                }
            }
        }
    };
    // Counted before the response goes out, so a client that reads /metrics right after sees it.
    crate::metrics::METRICS.request(req.route, &req.method, reply.status());
    let status = respond(rq, reply, &req.request_id);
    // One access-log line per request: the route, never the path (`logsafe.rs`), key_name only.
    log::info!(
        target: crate::ACCESS_LOG,
        "{} {} {} {}ms key={}",
        req.log_method(),
        req.log_path(),
        status,
        Millis(started.elapsed()),
        req.key_name.borrow().as_deref().unwrap_or("-")
    );
}

/// A duration in milliseconds with one decimal (`12.3`), as `{:.1}` printed the `f64`
/// before, from integers (issue 17: float formatting on every access-log line).
struct Millis(std::time::Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenths = (self.0.as_nanos() + 50_000) / 100_000;
        write!(f, "{}.{}", tenths / 10, tenths % 10)
    }
}

/// At most `n` holders at once (`--workers`: how many requests run at once). Taking and giving
/// back a slot are atomic operations when nobody waits; the lock and condvar are only used
/// while some request waits for a slot.
pub struct Slots {
    free: std::sync::atomic::AtomicIsize,
    waiting: std::sync::atomic::AtomicUsize,
    lock: std::sync::Mutex<()>,
    freed: std::sync::Condvar,
}

/// A slot, given back on drop.
pub struct Slot<'a>(&'a Slots);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        self.0.free.fetch_add(1, SeqCst);
        if self.0.waiting.load(SeqCst) > 0 {
            // Under the lock: a waiter between its check and its wait holds it, so the
            // notification cannot fall between the two.
            let _g = self.0.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.0.freed.notify_one();
        }
    }
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots {
            free: std::sync::atomic::AtomicIsize::new(n.max(1) as isize),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            lock: std::sync::Mutex::new(()),
            freed: std::sync::Condvar::new(),
        }
    }

    fn try_take(&self) -> bool {
        use std::sync::atomic::Ordering::SeqCst;
        let mut f = self.free.load(SeqCst);
        while f > 0 {
            match self.free.compare_exchange_weak(f, f - 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => f = now,
            }
        }
        false
    }

    /// Waits for a free slot.
    pub fn take(&self) -> Slot<'_> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.try_take() {
            return Slot(self);
        }
        let mut g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.waiting.fetch_add(1, SeqCst);
        while !self.try_take() {
            g = self.freed.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        self.waiting.fetch_sub(1, SeqCst);
        Slot(self)
    }
}

/// The request handler tiny_http calls on the thread that read the request from its
/// connection (the vendored patch `Server::from_listener_with_handler`): no hand-off to another
/// thread and back, which cost two futex wake-ups and context switches per request. At most
/// `ctx.cfg.workers` requests run at once; the others wait for a slot on their connection's
/// thread, as they waited in tiny_http's queue for a worker before.
fn handler(ctx: Arc<Ctx>) -> tiny_http::Handler {
    let slots = Arc::new(Slots::new(ctx.cfg.workers));
    Arc::new(move |rq| handle(&ctx, rq, &slots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_bound_how_many_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let slots = Arc::new(Slots::new(3));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let (slots, running, most) = (slots.clone(), running.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _s = slots.take();
                        let now = running.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        running.fetch_sub(1, SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(most.load(SeqCst), 3);
        assert!(slots.try_take() && slots.try_take() && slots.try_take());
        assert!(!slots.try_take(), "all 3 slots were given back, no more");
    }

    /// The access log's duration reads as the `{:.1}` of the milliseconds as an `f64` did
    /// (away from exact ties, where the float's own rounding decided).
    #[test]
    fn millis_print_as_the_float_did() {
        use proptest::prelude::*;
        proptest!(|(nanos in 0u64..2_000_000_000_000)| {
            prop_assume!((nanos % 100_000).abs_diff(50_000) > 2);
            let d = std::time::Duration::from_nanos(nanos);
            prop_assert_eq!(Millis(d).to_string(), format!("{:.1}", d.as_secs_f64() * 1000.0));
        });
        assert_eq!(
            Millis(std::time::Duration::from_micros(12_340)).to_string(),
            "12.3"
        );
        assert_eq!(Millis(std::time::Duration::ZERO).to_string(), "0.0");
    }

    /// Every refusal the connection sends on its own is our error: its status, and the API.md
    /// §3 envelope whose `code` matches.
    #[test]
    fn refusals_are_rendered_as_our_errors() {
        use tiny_http::limits::Refusal as R;
        #[rustfmt::skip]
        let all = [
            (R::Malformed("bare LF in the request head".into()), 400, "invalid_request_error"),
            (R::NonAsciiHeader("x-api-key".into()), 401, "auth_error"),
            (R::NonAsciiHeader("x-other".into()), 400, "invalid_request_error"),
            (R::RequestLineTooLong(8192), 414, "invalid_request_error"),
            (R::HeadTooLarge(32768), 431, "invalid_request_error"),
            (R::TooManyHeaders(100), 431, "invalid_request_error"),
            (R::Timeout, 408, "timeout_error"),
            (R::ExpectationFailed, 417, "invalid_request_error"),
            (R::VersionNotSupported, 505, "invalid_request_error"),
            (R::TooManyConnections, 503, "service_unavailable"),
        ];
        for (r, status, kind) in all {
            let out = render_refusal(&r);
            assert_eq!(out.status, status, "{r:?}");
            assert_eq!(out.content_type, "application/json");
            let v: serde_json::Value = serde_json::from_slice(&out.body).expect("json");
            assert_eq!(v["error"]["code"], status.to_string(), "{r:?}");
            assert_eq!(v["error"]["type"], kind, "{r:?}");
            assert!(v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&render_refusal(&R::TooManyConnections).body).expect("json");
        assert_eq!(
            v["error"]["message"],
            "too many open connections; try again"
        );
        let v: serde_json::Value = serde_json::from_slice(
            &render_refusal(&R::NonAsciiHeader("authorization".into())).body,
        )
        .expect("json");
        assert_eq!(
            v["error"]["message"],
            "Authentication Error, the authorization header is not valid ASCII"
        );
    }
}
