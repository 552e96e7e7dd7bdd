//! Idle upstream connections, kept by the connector (issue 17) instead of ureq's pool.
//!
//! ureq's pool is one list for every host under one lock: each call scans it twice (to find
//! a connection of its scheme and authority, and to count every host's idle connections when
//! it purges), comparing keys that were built anew for the call. At 64 concurrent calls that
//! showed in perf (`Authority::eq`, `Scheme::eq`, `Pool::purge`). Here the agent's own pool is
//! turned off (`max_idle_connections(0)`) and a connection goes back to a list of its own
//! host instead, taken and returned in O(1) (the hosts, a handful of deployments, are
//! compared by string; the connections of a host are not compared at all).
//!
//! The guarantees stay those of ureq's pool:
//! - a connection is kept only when ureq would have kept it: ureq asks `is_open` only on a
//!   connection whose answer was read to its end, with nothing unread in its buffer and
//!   without `connection: close` (`Connection::reuse`), and a [`Pooled`] transport is kept
//!   when it is dropped only if that ask said yes;
//! - it is probed (`is_open`: one non-blocking peek for plain HTTP, the TLS transport's own
//!   check otherwise) when it is taken out for the next call, so unasked bytes or a close
//!   that came while it waited make the call take another connection;
//! - a connection serves only its own scheme, authority (with any user info) and proxy, so a
//!   provider key never travels on another host's connection;
//! - at most [`PER_HOST`] idle connections per host and [`TOTAL`] in all; none idle longer
//!   than the agent's `max_idle_age` (newest reused first, so the oldest age out).
//!
//! The fast path's plain sockets (`super::fast`) are kept here too, in lists of their own
//! (keyed by authority: only plain `http://` without a proxy takes that path), under the
//! same bounds, probe and age limit.

use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use ureq::unversioned::transport::{Buffers, ConnectionDetails, NextTimeout, Transport};
use ureq::Error;
use ureq::Proxy;

/// Idle connections kept per host (scheme, authority, proxy).
pub const PER_HOST: usize = 256;
/// Idle connections kept in all.
pub const TOTAL: usize = 512;

/// What a connection may serve: calls to the same scheme, authority and proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    tls: bool,
    authority: String,
    proxy: Option<Proxy>,
}

impl Key {
    fn of(details: &ConnectionDetails) -> Option<Key> {
        Some(Key {
            tls: details.needs_tls(),
            authority: details.uri.authority()?.as_str().to_string(),
            proxy: details.config.proxy().cloned(),
        })
    }

    fn matches(&self, details: &ConnectionDetails) -> bool {
        self.tls == details.needs_tls()
            && details.uri.authority().map(|a| a.as_str()) == Some(self.authority.as_str())
            && details.config.proxy() == self.proxy.as_ref()
    }
}

struct Idle {
    transport: Box<dyn Transport>,
    since: Instant,
}

/// An idle socket of the fast path (`super::fast`) and the timeouts last set on it.
#[derive(Debug)]
pub struct Plain {
    pub stream: std::net::TcpStream,
    pub read_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
}

/// A host's idle fast-path sockets, each with the time it went idle.
type PlainList = VecDeque<(Plain, Instant)>;

#[derive(Default)]
struct Lists {
    hosts: Vec<(Arc<Key>, VecDeque<Idle>)>,
    /// The fast path's sockets, per authority (`http://` without a proxy only).
    plain: Vec<(Box<str>, PlainList)>,
    total: usize,
}

/// The idle connections of every host.
#[derive(Default)]
pub struct IdlePool {
    lists: Mutex<Lists>,
}

impl std::fmt::Debug for IdlePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("IdlePool")
            .field("hosts", &l.hosts.len())
            .field("idle", &l.total)
            .finish()
    }
}

impl IdlePool {
    /// An idle connection for `details` that passed its probe, if any. Connections found
    /// closed, or older than `max_age`, are closed (outside the lock).
    pub fn take(
        self: &Arc<Self>,
        details: &ConnectionDetails,
        max_age: Duration,
    ) -> Option<Pooled> {
        let mut stale = Vec::new();
        let found = {
            let mut l = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
            let Lists { hosts, total, .. } = &mut *l;
            let (key, list) = hosts.iter_mut().find(|(k, _)| k.matches(details))?;
            let now = Instant::now();
            let mut found = None;
            while let Some(mut idle) = list.pop_back() {
                *total -= 1;
                if now.duration_since(idle.since) >= max_age {
                    // The newest is too old: so are all the others.
                    stale.push(idle);
                    *total -= list.len();
                    stale.extend(list.drain(..));
                    break;
                }
                if idle.transport.is_open() {
                    found = Some(Pooled {
                        inner: ManuallyDrop::new(idle.transport),
                        home: Some((self.clone(), key.clone())),
                        reusable: false,
                    });
                    break;
                }
                stale.push(idle);
            }
            found
        };
        drop(stale);
        found
    }

    /// Keeps `transport` for the next call to `key`'s host, unless the bounds are reached
    /// (then it is closed).
    fn put(&self, key: Arc<Key>, transport: Box<dyn Transport>) {
        let mut l = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let Lists { hosts, total, .. } = &mut *l;
        if *total >= TOTAL {
            drop(l);
            return drop(transport);
        }
        let list = match hosts
            .iter()
            .position(|(k, _)| Arc::ptr_eq(k, &key) || **k == *key)
        {
            Some(i) => &mut hosts[i].1,
            None => {
                hosts.push((key, VecDeque::new()));
                let last = hosts.len() - 1;
                &mut hosts[last].1
            }
        };
        if list.len() >= PER_HOST {
            drop(l);
            return drop(transport);
        }
        list.push_back(Idle {
            transport,
            since: Instant::now(),
        });
        *total += 1;
    }

    /// An idle fast-path socket of `authority` that passed its probe, if any; those found
    /// closed, or older than `max_age`, are closed (outside the lock).
    pub fn take_plain(&self, authority: &str, max_age: Duration) -> Option<Plain> {
        let mut stale = Vec::new();
        let found = {
            let mut l = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
            let Lists { plain, total, .. } = &mut *l;
            let (_, list) = plain.iter_mut().find(|(a, _)| **a == *authority)?;
            let now = Instant::now();
            let mut found = None;
            while let Some((conn, since)) = list.pop_back() {
                *total -= 1;
                if now.duration_since(since) >= max_age {
                    stale.push(conn);
                    *total -= list.len();
                    stale.extend(list.drain(..).map(|(c, _)| c));
                    break;
                }
                if super::transport::probe(&conn.stream) {
                    found = Some(conn);
                    break;
                }
                stale.push(conn);
            }
            found
        };
        drop(stale);
        found
    }

    /// Keeps the fast-path socket `conn` for the next call to `authority`, unless the bounds
    /// are reached (then it is closed).
    pub fn put_plain(&self, authority: &str, conn: Plain) {
        let mut l = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let Lists { plain, total, .. } = &mut *l;
        if *total >= TOTAL {
            drop(l);
            return drop(conn);
        }
        let list = match plain.iter().position(|(a, _)| **a == *authority) {
            Some(i) => &mut plain[i].1,
            None => {
                plain.push((authority.into(), VecDeque::new()));
                let last = plain.len() - 1;
                &mut plain[last].1
            }
        };
        if list.len() >= PER_HOST {
            drop(l);
            return drop(conn);
        }
        list.push_back((conn, Instant::now()));
        *total += 1;
    }

    /// Wraps a new connection for `details` so that it comes back here after its call.
    pub fn wrap(self: &Arc<Self>, details: &ConnectionDetails, t: Box<dyn Transport>) -> Pooled {
        Pooled {
            inner: ManuallyDrop::new(t),
            home: Key::of(details).map(|k| (self.clone(), Arc::new(k))),
            reusable: false,
        }
    }

    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.lists
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// A connection that returns to its host's idle list when ureq is done with it, if ureq
/// found it fit for reuse (see the module doc).
pub struct Pooled {
    /// Taken out only by `drop`.
    inner: ManuallyDrop<Box<dyn Transport>>,
    home: Option<(Arc<IdlePool>, Arc<Key>)>,
    /// ureq asked `is_open` after reading an answer to its end, and it was.
    reusable: bool,
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pooled")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Pooled {
    fn t(&mut self) -> &mut dyn Transport {
        &mut **self.inner
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // SAFETY: `drop` runs once, and `inner` is not touched after this.
        let t = unsafe { ManuallyDrop::take(&mut self.inner) };
        match (self.reusable, self.home.take()) {
            (true, Some((pool, key))) => pool.put(key, t),
            _ => drop(t),
        }
    }
}

impl Transport for Pooled {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.t().buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.reusable = false;
        self.t().transmit_output(amount, timeout)
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.t().maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.t().await_input(timeout)
    }

    /// ureq asks only when it would put the connection in its pool (`Connection::reuse`,
    /// its pool being off, `Pool::get` never runs): the answer decides whether it is kept.
    fn is_open(&mut self) -> bool {
        let open = self.t().is_open();
        self.reusable = open;
        open
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::super::transport::agent;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A server answering every request on every connection with `answer`; counts the
    /// connections it accepted.
    fn server(answer: &'static [u8]) -> (String, Arc<AtomicUsize>) {
        server_with(answer, |_| {})
    }

    /// The same, running `before` on each request's bytes before answering it (a slow answer).
    fn server_with(answer: &'static [u8], before: fn(&[u8])) -> (String, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/v1/x", l.local_addr().expect("addr"));
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                count.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = s.read(&mut buf) {
                        before(&buf[..n]);
                        if s.write_all(answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn call(agent: &ureq::Agent, url: &str) -> String {
        let mut r = agent.post(url).send(&b"{}"[..]).expect("post");
        r.body_mut().read_to_string().expect("body")
    }

    fn plain(config: ureq::config::ConfigBuilder<ureq::typestate::AgentScope>) -> ureq::Agent {
        agent(
            config,
            ureq::unversioned::resolver::DefaultResolver::default(),
        )
    }

    use super::*;

    /// Issue 17: calls to one host reuse one connection; another host (another authority)
    /// never gets it, and gets its own.
    #[test]
    fn a_connection_is_reused_for_its_own_host_only() {
        let (a, a_conns) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\na");
        let (b, b_conns) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb");
        let agent = plain(ureq::Agent::config_builder());
        for _ in 0..5 {
            assert_eq!(call(&agent, &a), "a");
            assert_eq!(call(&agent, &b), "b");
        }
        assert_eq!(a_conns.load(Ordering::SeqCst), 1);
        assert_eq!(b_conns.load(Ordering::SeqCst), 1);
        // The same host named with user info is another pool key (as in ureq).
        let with_user = a.replace("http://", "http://u:p@");
        assert_eq!(call(&agent, &with_user), "a");
        assert_eq!(a_conns.load(Ordering::SeqCst), 2);
    }

    /// An answer with `connection: close`, or one not read to its end, does not come back.
    #[test]
    fn only_connections_ureq_would_keep_are_kept() {
        let (url, conns) =
            server(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nc");
        let agent = plain(ureq::Agent::config_builder());
        assert_eq!(call(&agent, &url), "c");
        assert_eq!(call(&agent, &url), "c");
        assert_eq!(conns.load(Ordering::SeqCst), 2);

        let (url, conns) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlong");
        let agent = plain(ureq::Agent::config_builder());
        let mut r = agent.post(&url).send(&b"{}"[..]).expect("post");
        let mut two = [0u8; 2];
        r.body_mut().as_reader().read_exact(&mut two).expect("read");
        drop(r);
        assert_eq!(call(&agent, &url), "long");
        assert_eq!(
            conns.load(Ordering::SeqCst),
            2,
            "a half-read answer's connection was reused"
        );
        assert_eq!(call(&agent, &url), "long");
        assert_eq!(conns.load(Ordering::SeqCst), 2);
    }

    /// A connection idle longer than the agent's `max_idle_age` is closed, not reused.
    #[test]
    fn idle_connections_age_out() {
        let (url, conns) = server(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx");
        let agent = plain(ureq::Agent::config_builder().max_idle_age(Duration::from_millis(100)));
        assert_eq!(call(&agent, &url), "x");
        assert_eq!(call(&agent, &url), "x");
        assert_eq!(conns.load(Ordering::SeqCst), 1);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(call(&agent, &url), "x");
        assert_eq!(conns.load(Ordering::SeqCst), 2);
    }

    /// The bounds hold: no more than `PER_HOST` idle connections of one host are kept.
    #[test]
    fn at_most_per_host_idle_connections_are_kept() {
        let pool = Arc::new(IdlePool::default());
        let key = Arc::new(Key {
            tls: false,
            authority: "127.0.0.1:9".into(),
            proxy: None,
        });
        for _ in 0..PER_HOST + 3 {
            pool.put(key.clone(), Box::new(Sock));
        }
        assert_eq!(pool.idle(), PER_HOST);
    }

    /// Issue 17: calls with different deadlines go through different agents, over the same
    /// idle connections; past `super::super::MAX_TIMED_AGENTS` deadlines, calls still go out (with a
    /// request-level deadline) on the same connection; and a deadline still ends a call.
    #[test]
    fn deadlines_share_connections_and_still_apply() {
        let (url, accepted) =
            server_with(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", |req| {
                if String::from_utf8_lossy(req).contains("\"slow\"") {
                    std::thread::sleep(Duration::from_secs(3));
                }
            });
        let base = url.strip_suffix("/x").unwrap_or(&url).to_string();
        // Through ureq (plain `http://` would take the fast path, which has no agents).
        let mut up = super::super::Upstream::new();
        up.fast = None;
        let mut d = super::super::tests::dep();
        d.route = crate::provider::find("openai")
            .expect("openai")
            .route("gpt-4o", Some(&base), Some("sk-provider-secret"), None)
            .expect("route");
        for i in 0..super::super::MAX_TIMED_AGENTS + 5 {
            d.timeout_secs = 1.0 + i as f64;
            let r = up
                .post(&d, "chat/completions", b"{}", false, None)
                .expect("post");
            assert_eq!(r.status(), 200);
            let _ = r.into_body().read_capped(1024).expect("body");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "a connection per deadline"
        );
        assert_eq!(
            up.timed
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
            super::super::MAX_TIMED_AGENTS
        );
        d.timeout_secs = 1.0;
        let started = std::time::Instant::now();
        let e = up
            .post(&d, "chat/completions", br#"{"slow"}"#, false, None)
            .and_then(|r| {
                r.into_body()
                    .read_capped(1024)
                    .map_err(|e| super::super::map_fault(&d, &e))
            })
            .expect_err("the 1 s deadline ends the call");
        assert_eq!(e.status(), 504);
        assert!(started.elapsed() < Duration::from_millis(2900));
    }

    #[derive(Debug)]
    struct Sock;

    impl Transport for Sock {
        fn buffers(&mut self) -> &mut dyn Buffers {
            unimplemented!("not used by the pool")
        }
        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), Error> {
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, Error> {
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }
}
