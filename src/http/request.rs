//! The request model: the server's shared state (`Ctx`, with the authentication of a request
//! that handlers call), a parsed request (`Req`) independent of tiny_http, query decoding and
//! the typed accessors of a JSON body (`Body`). Nothing here reads from a socket, routes or
//! renders a reply (`reply.rs`, `dispatch.rs`, `crate::server`).

use super::fields;
use crate::access::Catalog;
use crate::auth::{self, Caller, Credentials};
use crate::config::Config;
use crate::db::Pool;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::sync::Arc;

/// Shared state of a running server.
pub struct Ctx {
    pub cfg: Config,
    /// Shared with the model call's ledger, which may settle after the handler returned.
    pub pool: Arc<Pool>,
    pub catalog: Catalog,
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

    /// The front door, plus the access log's name for the caller (never the raw key).
    fn authenticate(&self, req: &Req, credentials: Credentials) -> Result<Caller> {
        let outcome = auth::authenticate(&self.pool, &self.master_hash, &credentials, &req.method);
        *req.key_name.borrow_mut() = credentials.log_label(&outcome);
        Ok(outcome?)
    }
}

/// A parsed request, independent of tiny_http.
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
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
            headers,
            body,
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
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
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

/// A JSON request body with typed accessors whose errors name the field (400).
#[derive(Debug, Clone)]
pub struct Body(pub Map<String, Value>);

fn type_err(field: &str, want: &str) -> Error {
    Error::bad_param(field, format!("`{field}` must be {want}"))
}

impl Body {
    pub fn has(&self, f: &str) -> bool {
        self.0.contains_key(f)
    }
    /// Present and not null.
    pub fn given(&self, f: &str) -> bool {
        self.0.get(f).is_some_and(|v| !v.is_null())
    }
    pub fn raw(&self, f: &str) -> Option<&Value> {
        self.0.get(f).filter(|v| !v.is_null())
    }
    pub fn opt_str(&self, f: &str) -> Result<Option<String>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => fields::check(f, s).map(|_| Some(s.clone())),
            Some(_) => Err(type_err(f, "a string")),
        }
    }
    pub fn req_str(&self, f: &str) -> Result<String> {
        match self.opt_str(f)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(Error::bad_param(f, format!("`{f}` is required"))),
        }
    }
    pub fn opt_bool(&self, f: &str) -> Result<Option<bool>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(type_err(f, "true or false")),
        }
    }
    /// A budget: a finite number ≥ 0.
    pub fn opt_budget(&self, f: &str) -> Result<Option<f64>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
                _ => Err(type_err(f, "a finite number ≥ 0")),
            },
            Some(_) => Err(type_err(f, "a finite number ≥ 0")),
        }
    }
    /// A limit: an integer ≥ 0.
    pub fn opt_limit(&self, f: &str) -> Result<Option<i64>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(x) if x >= 0 => Ok(Some(x)),
                _ => Err(type_err(f, "an integer ≥ 0")),
            },
            Some(_) => Err(type_err(f, "an integer ≥ 0")),
        }
    }
    pub fn opt_u64(&self, f: &str) -> Result<Option<u64>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| type_err(f, "a positive integer")),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| type_err(f, "a positive integer")),
            Some(_) => Err(type_err(f, "a positive integer")),
        }
    }
    /// A list of strings (model lists, id lists).
    pub fn opt_list(&self, f: &str) -> Result<Option<Vec<String>>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => fields::check(f, s).map(|_| s.clone()),
                    _ => Err(type_err(f, "a list of strings")),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some),
            Some(_) => Err(type_err(f, "a list of strings")),
        }
    }
    pub fn opt_obj(&self, f: &str) -> Result<Option<Map<String, Value>>> {
        match self.0.get(f) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => {
                // Names are stored and shown as identifiers; so are an `aliases` map's models.
                for (k, v) in m {
                    fields::check(f, k)?;
                    if let (Value::String(v), "aliases") = (v, f) {
                        fields::check(f, v)?;
                    }
                }
                Ok(Some(m.clone()))
            }
            Some(_) => Err(type_err(f, "a JSON object")),
        }
    }
    /// A duration like `30s`, `1h`, `7d`; returns (text, seconds).
    pub fn opt_duration(&self, f: &str) -> Result<Option<(String, i64)>> {
        match self.opt_str(f)? {
            None => Ok(None),
            Some(s) => crate::util::parse_duration(&s)
                .map(|secs| Some((s.clone(), secs)))
                .ok_or_else(|| {
                    Error::bad_param(
                        f,
                        format!("`{f}` must be a duration like 30s, 15m, 1h, 7d or 1mo; got '{s}'"),
                    )
                }),
        }
    }
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

    #[test]
    fn body_accessors_name_the_field() {
        let b = Body(
            serde_json::json!({"max_budget": -1, "models": ["a", 1], "x": "s"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        let e = b.opt_budget("max_budget").expect_err("neg");
        assert_eq!(e.body()["error"]["param"], "max_budget");
        assert!(b.opt_list("models").is_err());
        assert!(b.opt_budget("x").is_err());
        assert_eq!(b.opt_str("x").expect("ok").as_deref(), Some("s"));
        assert_eq!(b.opt_str("missing").expect("ok"), None);
    }
}
