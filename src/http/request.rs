//! The request model: the server's shared state (`Ctx`, with the authentication of a request
//! that handlers call), a parsed request (`Req`: owned, its header fields kept in tiny_http's
//! `HeaderFields`, one buffer per request), query decoding and
//! the JSON body (`Body`, whose typed accessors live in `crate::input`). Nothing here reads from a socket, routes or
//! renders a reply (`reply.rs`, `dispatch.rs`, `crate::server`).

use crate::access::registry::Registry;
use crate::access::ModelViews;
use crate::auth::{self, Caller, Credentials};
use crate::config::Config;
use crate::db::Pool;
use crate::error::Result;
use crate::input::Body;
use std::cell::RefCell;
use std::sync::Arc;
use tiny_http::HeaderFields;

/// Shared state of a running server.
pub struct Ctx {
    pub cfg: Config,
    /// Shared with the model call's ledger, which may settle after the handler returned.
    pub pool: Arc<Pool>,
    /// The models in force (config plus database), reloaded when another write changed them.
    pub models: Registry,
    /// SHA-256 hex of the master key (the key itself is never kept).
    pub master_hash: String,
    /// What model calls share: the upstream client, budget reservations, rate limits and the
    /// spend ledger.
    pub calls: crate::call::Calls,
    /// Shutting down?, requests in flight, the HTTP layer's connection counters.
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
}

impl Ctx {
    /// Authenticates a management request (`auth::authenticate`): the key (API.md §2), or,
    /// when no key header is given, the web UI's session cookie (writes need the
    /// `X-Litegate-UI` header).
    pub fn caller(&self, req: &Req) -> Result<Caller> {
        self.authenticate(req, Credentials::of(&req.headers))
    }

    /// Authenticates the request's key (API.md §2) — model calls accept nothing else, so a
    /// browser session never spends. The connection is released before return.
    pub fn key_caller(&self, req: &Req) -> Result<Caller> {
        self.authenticate(req, Credentials::key_only(&req.headers))
    }

    /// The models as the caller's request must see them: a key carries the database's models
    /// generation from THE key check; other callers (master key, UI sessions) read it with
    /// one small statement. Reloaded first when another instance (or this one) changed them.
    pub fn models_for(&self, who: &Caller) -> Result<Arc<ModelViews>> {
        let generation = match &who.key {
            Some(k) => k.models_generation,
            None => self
                .pool
                .read_db(|c| Ok(crate::db::models::generation(c)?))?,
        };
        self.models.at(&self.pool, &self.cfg, generation)
    }

    /// The front door, plus the access log's name for the caller (never the raw key).
    fn authenticate(&self, req: &Req, credentials: Credentials) -> Result<Caller> {
        let outcome = auth::authenticate(&self.pool, &self.master_hash, &credentials, &req.method);
        *req.key_name.borrow_mut() = credentials.log_label(&outcome);
        Ok(outcome?)
    }
}

/// A parsed request, owned (no borrow of tiny_http's `Request`).
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// The header fields as tiny_http read them: spans into one buffer (issue 17, round 4).
    pub headers: HeaderFields,
    pub body: Vec<u8>,
    pub request_id: String,
    /// Set by authentication, for the access log (never the raw key).
    pub key_name: RefCell<Option<String>>,
    /// The matched route pattern, for metrics labels (never the raw path).
    pub route: &'static str,
    /// The TCP peer's address (login throttling, `throttle.rs`).
    pub peer: Option<std::net::IpAddr>,
}

impl Req {
    pub fn new(method: &str, url: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Req {
        let (path, q) = url.split_once('?').unwrap_or((url, ""));
        Req {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query: parse_query(q),
            headers: headers.into(),
            body,
            request_id: crate::util::uuid7(),
            key_name: RefCell::new(None),
            route: "unmatched",
            peer: None,
        }
    }

    /// `new` from what the server moved out of tiny_http's request: the target's own
    /// `String` becomes the path (the query, if any, cut off after it is decoded), so the
    /// request line is not copied again (issue 17).
    pub fn from_parts(method: &str, mut target: String, headers: HeaderFields) -> Req {
        let query = match target.find('?') {
            Some(at) => {
                let q = parse_query(&target[at + 1..]);
                target.truncate(at);
                q
            }
            None => Vec::new(),
        };
        Req {
            method: method.to_ascii_uppercase(),
            path: target,
            query,
            headers,
            body: Vec::new(),
            request_id: crate::util::uuid7(),
            key_name: RefCell::new(None),
            route: "unmatched",
            peer: None,
        }
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The path segment a `{name}` segment of the matched route captured (e.g. the key in
    /// `/key/{key}/regenerate`), percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        let pattern = self.route;
        pattern
            .split('/')
            .zip(self.path.split('/'))
            .find(|(p, _)| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) == Some(name))
            .map(|(_, x)| percent_decode(x))
    }

    /// The body as a JSON object (an empty body is `{}`).
    pub fn json(&self) -> Result<Body> {
        crate::input::json_object(&self.body).map(|(m, _)| Body(m))
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("a=1&b=x%20y&c=sk-a%2Bb&d");
        assert_eq!(q[1], ("b".into(), "x y".into()));
        assert_eq!(q[2], ("c".into(), "sk-a+b".into()));
        assert_eq!(q[3], ("d".into(), "".into()));
    }

    /// `from_parts` (the server's way) reads a request exactly as `new` does.
    #[test]
    fn from_parts_reads_as_new() {
        let targets = [
            "/",
            "",
            "/v1/chat/completions",
            "/key/info?key=sk-a%2Bb",
            "/x?",
            "/x?a=1&b",
            "?q=1",
            "/a?b?c=d",
            "/p%20q?x=%zz&y=+",
            "/é?ü=ß",
        ];
        for t in targets {
            for m in ["POST", "get", "BREW"] {
                let h = vec![("Authorization".to_string(), "Bearer sk-1".to_string())];
                let a = Req::new(m, t, h.clone(), Vec::new());
                let b = Req::from_parts(m, t.to_string(), h.clone().into());
                assert_eq!(
                    (&a.method, &a.path, &a.query),
                    (&b.method, &b.path, &b.query),
                    "{m} {t}"
                );
                assert_eq!(a.headers, b.headers);
                assert!(b.body.is_empty() && b.route == "unmatched" && b.peer.is_none());
                assert_eq!(b.request_id.len(), 36);
            }
        }
    }
}
