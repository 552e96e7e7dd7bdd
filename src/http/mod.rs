//! The HTTP layer. Owns the worker pool (threads calling tiny_http's `recv`), the routing
//! table, body limits, request parsing helpers, the panic guard and the access log. Handlers
//! live in one module per resource and never see tiny_http; they return `Result<Reply>` and
//! only `handle` renders an `Err` (as the API.md §3 envelope).

pub mod admin;
pub mod budgets;
pub mod call_body;
pub mod fields;
pub mod health;
pub mod keys;
mod logsafe;
pub mod models;
pub mod organizations;
pub mod proxy;
pub mod spend;
pub mod teams;
pub mod throttle;
pub mod ui;
pub mod users;

use crate::access::Catalog;
use crate::auth::{self, Caller, Credentials};
use crate::config::Config;
use crate::db::Pool;
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

/// Shared state of a running server.
pub struct Ctx {
    pub cfg: Config,
    pub pool: Pool,
    pub catalog: Catalog,
    /// SHA-256 hex of the master key (the key itself is never kept).
    pub master_hash: String,
    pub upstream: crate::upstream::Upstream,
    pub budgets: crate::budget::Reservations,
    pub limiter: crate::limits::Limiter,
    /// Group commit of spend records (leader/follower, no thread of its own).
    pub spend: crate::db::spend::SpendWriter,
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
    pub route: std::cell::Cell<&'static str>,
    /// Set by `json()`: the body's top-level object names a key twice (the parsed `Body` keeps
    /// the last value; another parser may keep the first, so such bytes are never forwarded
    /// as they came).
    pub duplicate_keys: std::cell::Cell<bool>,
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
            route: std::cell::Cell::new("unmatched"),
            duplicate_keys: std::cell::Cell::new(false),
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

    /// The body as a JSON object (an empty body is `{}`).
    pub fn json(&self) -> Result<Body> {
        if self.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Body(Map::new()));
        }
        match serde_json::from_slice::<TopObject>(&self.body) {
            Ok(TopObject(Some((m, dup)))) => {
                self.duplicate_keys.set(dup);
                Ok(Body(m))
            }
            Ok(TopObject(None)) => Err(Error::bad("Request body must be a JSON object")),
            Err(e) => Err(Error::bad(format!("Malformed JSON in request body: {e}"))),
        }
    }
}

/// A JSON document parsed as `Value` would be, that also tells whether its top level is an
/// object and whether that object names a key twice (serde_json's `Map` silently keeps the
/// last value). `None`: valid JSON, but not an object.
struct TopObject(Option<(Map<String, Value>, bool)>);

impl<'de> serde::Deserialize<'de> for TopObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TopObject;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON document")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<TopObject, A::Error> {
                let mut m = Map::new();
                let mut dup = false;
                while let Some(k) = a.next_key::<String>()? {
                    let v: Value = a.next_value()?;
                    dup |= m.insert(k, v).is_some();
                }
                Ok(TopObject(Some((m, dup))))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> std::result::Result<TopObject, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(TopObject(None))
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
            fn visit_unit<E>(self) -> std::result::Result<TopObject, E> {
                Ok(TopObject(None))
            }
        }
        d.deserialize_any(V)
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

/// A streamed body: `pump` writes it through `emit`, which sends one chunk to the client and
/// flushes, returning an error once the client has gone.
pub trait StreamBody: Send {
    fn pump(self: Box<Self>, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>);
}

/// What a handler answers.
pub enum Reply {
    Json(u16, Value),
    /// Bytes passed through as they are (an upstream's JSON answer).
    Raw(u16, &'static str, Vec<u8>),
    /// Server-sent events, each chunk flushed as it is produced.
    Sse(Box<dyn StreamBody>),
    Text(u16, &'static str, String),
    /// Any reply with extra response headers (e.g. `retry-after`).
    WithHeaders(Box<Reply>, Vec<(String, String)>),
}

impl Reply {
    pub fn ok(v: Value) -> Result<Reply> {
        Ok(Reply::Json(200, v))
    }
}

type Authed = fn(&Ctx, &Caller, &Req) -> Result<Reply>;
type Public = fn(&Ctx, &Req) -> Result<Reply>;
/// Model calls keep state (rate-limit permits, budget reservations) for the life of a stream,
/// so they get the server's `'static` context.
type Calls = fn(&'static Ctx, &Caller, &Req) -> Result<Reply>;

#[derive(Clone, Copy)]
enum H {
    A(Authed),
    P(Public),
    C(Calls),
}

/// The routing table: (method, path, handler). `{key}` segments are matched by `route`.
const ROUTES: &[(&str, &str, H)] = &[
    ("GET", "/health/liveliness", H::P(health::liveliness)),
    ("GET", "/health/liveness", H::P(health::liveliness)),
    ("GET", "/health/readiness", H::P(health::readiness)),
    ("GET", "/", H::P(health::root)),
    ("GET", "/metrics", H::P(health::metrics)),
    // Organizations (API.md §6).
    ("POST", "/organization/new", H::A(organizations::create)),
    ("PATCH", "/organization/update", H::A(organizations::update)),
    ("POST", "/organization/update", H::A(organizations::update)),
    (
        "DELETE",
        "/organization/delete",
        H::A(organizations::delete),
    ),
    ("POST", "/organization/delete", H::A(organizations::delete)),
    ("GET", "/organization/list", H::A(organizations::list)),
    ("GET", "/organization/info", H::A(organizations::info)),
    (
        "POST",
        "/organization/info",
        H::A(organizations::info_deprecated),
    ),
    (
        "POST",
        "/organization/member_add",
        H::A(organizations::member_add),
    ),
    (
        "PATCH",
        "/organization/member_update",
        H::A(organizations::member_update),
    ),
    (
        "POST",
        "/organization/member_update",
        H::A(organizations::member_update),
    ),
    (
        "DELETE",
        "/organization/member_delete",
        H::A(organizations::member_delete),
    ),
    (
        "POST",
        "/organization/member_delete",
        H::A(organizations::member_delete),
    ),
    // Budgets.
    ("POST", "/budget/new", H::A(budgets::create)),
    ("POST", "/budget/update", H::A(budgets::update)),
    ("POST", "/budget/info", H::A(budgets::info)),
    ("GET", "/budget/list", H::A(budgets::list)),
    ("POST", "/budget/delete", H::A(budgets::delete)),
    // Teams.
    ("POST", "/team/new", H::A(teams::create)),
    ("POST", "/team/update", H::A(teams::update)),
    ("POST", "/team/delete", H::A(teams::delete)),
    ("GET", "/team/info", H::A(teams::info)),
    ("GET", "/team/list", H::A(teams::list)),
    ("POST", "/team/member_add", H::A(teams::member_add)),
    ("POST", "/team/member_delete", H::A(teams::member_delete)),
    ("POST", "/team/member_update", H::A(teams::member_update)),
    ("POST", "/team/block", H::A(teams::block)),
    ("POST", "/team/unblock", H::A(teams::unblock)),
    ("POST", "/team/model/add", H::A(teams::model_add)),
    ("POST", "/team/model/delete", H::A(teams::model_delete)),
    // Users.
    ("POST", "/user/new", H::A(users::create)),
    ("GET", "/user/info", H::A(users::info)),
    ("POST", "/user/update", H::A(users::update)),
    ("POST", "/user/delete", H::A(users::delete)),
    ("GET", "/user/list", H::A(users::list)),
    // Keys.
    ("POST", "/key/generate", H::A(keys::generate)),
    ("POST", "/key/update", H::A(keys::update)),
    ("POST", "/key/delete", H::A(keys::delete)),
    ("GET", "/key/info", H::A(keys::info)),
    ("GET", "/key/list", H::A(keys::list)),
    ("POST", "/key/block", H::A(keys::block)),
    ("POST", "/key/unblock", H::A(keys::unblock)),
    ("POST", "/key/regenerate", H::A(keys::regenerate)),
    ("POST", "/key/{key}/regenerate", H::A(keys::regenerate)),
    // Models and calls.
    ("GET", "/v1/models", H::A(models::list)),
    ("GET", "/models", H::A(models::list)),
    ("GET", "/model/info", H::A(models::info)),
    ("GET", "/v1/model/info", H::A(models::info)),
    ("GET", "/v2/model/info", H::A(models::info_v2)),
    ("POST", "/v1/chat/completions", H::C(proxy::chat)),
    ("POST", "/chat/completions", H::C(proxy::chat)),
    ("POST", "/v1/completions", H::C(proxy::completions)),
    ("POST", "/completions", H::C(proxy::completions)),
    ("POST", "/v1/embeddings", H::C(proxy::embeddings)),
    ("POST", "/embeddings", H::C(proxy::embeddings)),
    ("GET", "/spend/logs", H::A(spend::logs)),
    ("POST", "/admin/backup", H::A(admin::backup)),
    // The web UI (issue 7): static files, session login, and the key form's model choices.
    ("GET", "/ui", H::P(ui::index)),
    ("POST", "/ui/login", H::P(ui::login)),
    ("POST", "/ui/logout", H::P(ui::logout)),
    ("GET", "/ui/me", H::A(ui::me)),
    ("GET", "/ui/key_model_options", H::A(ui::key_model_options)),
    ("GET", "/ui/{file}", H::P(ui::asset)),
];

fn path_matches(pattern: &str, path: &str) -> bool {
    if !pattern.contains('{') {
        return pattern == path;
    }
    let (ps, xs): (Vec<&str>, Vec<&str>) =
        (pattern.split('/').collect(), path.split('/').collect());
    ps.len() == xs.len()
        && ps
            .iter()
            .zip(&xs)
            .all(|(p, x)| (p.starts_with('{') && !x.is_empty()) || p == x)
}

/// The `{name}` segment of a matched path pattern (e.g. the key in `/key/{key}/regenerate`).
pub fn path_param(req: &Req, pattern: &str, name: &str) -> Option<String> {
    let want = format!("{{{name}}}");
    pattern
        .split('/')
        .zip(req.path.split('/'))
        .find(|(p, _)| *p == want)
        .map(|(_, x)| percent_decode(x))
}

fn route(method: &str, path: &str) -> std::result::Result<(&'static str, H), Error> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let mut path_known = false;
    for (m, p, h) in ROUTES {
        if path_matches(p, path) {
            if *m == method {
                return Ok((p, *h));
            }
            path_known = true;
        }
    }
    if path_known {
        Err(Error::MethodNotAllowed)
    } else {
        Err(Error::NotFound(format!("Route not found: {path}")))
    }
}

/// What routing and authentication decided, before any of the body is read.
enum Admitted {
    Public(Public),
    Authed(Authed, Caller),
    Calls(Calls, Caller),
}

/// Checks the routed request's key (or UI session) from the head alone, so that an unknown
/// route or a missing/invalid key is refused before the body is read (issue 11: an
/// unauthenticated body is never buffered). The one key check of the request.
fn admit(ctx: &'static Ctx, req: &Req, routed: Result<H>) -> Result<Admitted> {
    Ok(match routed? {
        H::P(h) => Admitted::Public(h),
        H::A(h) => {
            let caller = ctx.caller(req)?;
            crate::access::authority::admit(&caller, req.route.get())?;
            Admitted::Authed(h, caller)
        }
        H::C(h) => Admitted::Calls(h, ctx.key_caller(req)?),
    })
}

fn run(ctx: &'static Ctx, admitted: Admitted, req: &Req) -> Result<Reply> {
    match admitted {
        Admitted::Public(h) => h(ctx, req),
        Admitted::Authed(h, caller) => h(ctx, &caller, req),
        Admitted::Calls(h, caller) => h(ctx, &caller, req),
    }
}

/// The panic guard around any step: a panic becomes `Error::Internal`.
fn catch<T>(req: &Req, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::debug!("request {} panicked", req.request_id);
            Err(Error::Internal(format!("handler panicked: {msg}")))
        }
    }
}

/// The panic guard: a panic in `f` becomes a 500 (detail logged, not sent) and the worker
/// thread lives on; an `Err` becomes its envelope.
fn guarded(req: &Req, f: impl FnOnce() -> Result<Reply>) -> Reply {
    match catch(req, f) {
        Ok(r) => r,
        Err(e) => error_reply(req, &e),
    }
}

pub fn error_reply(req: &Req, e: &Error) -> Reply {
    if let Error::Internal(detail) = e {
        log::error!("request {} {}: {detail}", req.request_id, req.log_path());
    }
    let reply = Reply::Json(e.status(), e.body());
    match e {
        Error::RateLimited { retry_after, .. } => Reply::WithHeaders(
            Box::new(reply),
            vec![("retry-after".into(), retry_after.to_string())],
        ),
        _ => reply,
    }
}

// ---------------------------------------------------------------------------------------------
// The server loop

fn header(name: &str, value: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
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
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let r = rq.as_reader();
    loop {
        match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if buf.len() + n > limit {
                    return Err(Error::TooLarge(limit));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(Error::bad(e.to_string()))
            }
            // A read timeout, the deadline, or a reset: the client is too slow or gone.
            Err(_) => return Err(Error::Timeout),
        }
    }
    Ok(buf)
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

fn reply_status(r: &Reply) -> u16 {
    match r {
        Reply::Json(s, _) | Reply::Raw(s, _, _) | Reply::Text(s, _, _) => *s,
        Reply::Sse(_) => 200,
        Reply::WithHeaders(inner, _) => reply_status(inner),
    }
}

fn respond(rq: tiny_http::Request, reply: Reply, extra: &[(String, String)]) -> u16 {
    let (reply, extra) = match reply {
        Reply::WithHeaders(r, mut h) => {
            h.extend_from_slice(extra);
            (*r, h)
        }
        r => (r, extra.to_vec()),
    };
    let (status, ctype, body): (u16, &str, Vec<u8>) = match reply {
        Reply::Json(s, v) => (
            s,
            "application/json",
            serde_json::to_vec(&v).unwrap_or_default(),
        ),
        Reply::Raw(s, ct, b) => (s, ct, b),
        Reply::Text(s, ct, t) => (s, ct, t.into_bytes()),
        Reply::Sse(body) => return respond_sse(rq, body, &extra),
        Reply::WithHeaders(..) => (
            500,
            "application/json",
            serde_json::to_vec(&Error::internal("nested headers").body()).unwrap_or_default(),
        ),
    };
    let mut headers: Vec<tiny_http::Header> = Vec::new();
    headers.extend(header("Content-Type", ctype));
    for (k, v) in &extra {
        headers.extend(header(k, v));
    }
    let n = body.len();
    let resp = tiny_http::Response::new(
        tiny_http::StatusCode(status),
        headers,
        std::io::Cursor::new(body),
        Some(n),
        None,
    );
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
    use std::io::Write;
    let mut w = rq.into_writer();
    let mut head = String::from(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
         Transfer-Encoding: chunked\r\n",
    );
    for (k, v) in extra {
        if !k.contains(['\r', '\n']) && !v.contains(['\r', '\n']) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    let mut alive = w.write_all(head.as_bytes()).and_then(|_| w.flush()).is_ok();
    let mut emit = |chunk: &[u8]| -> std::io::Result<()> {
        if !alive {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "client gone",
            ));
        }
        if chunk.is_empty() {
            return Ok(());
        }
        let r = write!(w, "{:x}\r\n", chunk.len())
            .and_then(|_| w.write_all(chunk))
            .and_then(|_| w.write_all(b"\r\n"))
            .and_then(|_| w.flush());
        if r.is_err() {
            alive = false;
        }
        r
    };
    crate::metrics::METRICS.stream_started();
    body.pump(&mut emit);
    crate::metrics::METRICS.stream_ended();
    if alive {
        let _ = w.write_all(b"0\r\n\r\n").and_then(|_| w.flush());
    }
    200
}

/// Counts a request in flight until dropped (also if the request panics).
struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn handle(ctx: &'static Ctx, mut rq: tiny_http::Request, slots: &Slots) {
    use std::sync::atomic::Ordering::SeqCst;
    let started = Instant::now();
    let method = rq.method().as_str().to_string();
    let url = rq.url().to_string();
    let headers: Vec<(String, String)> = rq
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let mut req = Req::new(&method, &url, headers, Vec::new());
    req.peer = rq.remote_addr().map(|a| a.ip());
    let extra = vec![("x-litellm-call-id".to_string(), req.request_id.clone())];
    let routed = route(&req.method, &req.path).map(|(pattern, h)| {
        req.route.set(pattern);
        h
    });
    // A route that needs no key reads its (small) body before taking a slot: a slow
    // unauthenticated client then holds its own connection's thread, never a worker slot.
    let early = match routed {
        Ok(H::P(_)) => Some(read_body(
            &mut rq,
            PUBLIC_BODY_LIMIT.min(ctx.cfg.max_body_bytes),
        )),
        _ => None,
    };
    let _slot = slots.take();
    IN_FLIGHT.fetch_add(1, SeqCst);
    let _counted = Counted;
    // After counting itself: shutdown either sees this request in flight and waits for it, or
    // set the flag before, and the request is refused here.
    let refusal = if SHUTTING_DOWN.load(SeqCst) {
        Err(Error::Unavailable(
            "litegate is shutting down; try again".into(),
        ))
    } else {
        // Route and key first (from the head alone); the body only for an admitted request.
        catch(&req, || admit(ctx, &req, routed))
    };
    let reply = match refusal {
        Err(e) => {
            if early.is_none() {
                close_unless_drainable(&rq, false);
            }
            error_reply(&req, &e)
        }
        Ok(admitted) => {
            let body = match early {
                Some(b) => b,
                None => read_body(&mut rq, ctx.cfg.max_body_bytes),
            };
            match body {
                Ok(b) => {
                    req.body = b;
                    guarded(&req, || run(ctx, admitted, &req))
                }
                Err(e) => {
                    close_unless_drainable(&rq, true);
                    error_reply(&req, &e)
                }
            }
        }
    };
    // Counted before the response goes out, so a client that reads /metrics right after sees it.
    crate::metrics::METRICS.request(req.route.get(), &method, reply_status(&reply));
    let status = respond(rq, reply, &extra);
    // One access-log line per request: the route, never the path (`logsafe.rs`), key_name only.
    log::info!(
        target: "litegate::access",
        "{} {} {} {:.1}ms key={}",
        req.log_method(),
        req.log_path(),
        status,
        started.elapsed().as_secs_f64() * 1000.0,
        req.key_name.borrow().as_deref().unwrap_or("-")
    );
}

/// Set once shutdown begins: requests already running finish, later ones get a 503.
pub static SHUTTING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Requests being handled right now (for the shutdown grace period and metrics).
pub static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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
pub fn handler(ctx: &'static Ctx) -> tiny_http::Handler {
    let slots = Arc::new(Slots::new(ctx.cfg.workers));
    Arc::new(move |rq| handle(ctx, rq, &slots))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--workers` bounds the requests running at once: with 3 slots and 12 threads holding a
    /// slot for a while, never more than 3 run together, and every thread gets its turn.
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

    #[test]
    fn routing() {
        assert!(route("GET", "/health/liveliness").is_ok());
        assert!(route("GET", "/v1/models/").is_ok());
        assert!(matches!(
            route("GET", "/organization/new"),
            Err(Error::MethodNotAllowed)
        ));
        assert!(matches!(route("GET", "/nope"), Err(Error::NotFound(_))));
        assert!(route("POST", "/key/sk-abc/regenerate").is_ok());
        assert!(route("POST", "/key//regenerate").is_err());
    }

    #[test]
    fn a_panicking_handler_becomes_a_500_and_the_thread_lives_on() {
        let req = Req::new("GET", "/x?key=sk-secret", vec![], vec![]);
        let reply = guarded(&req, || -> Result<Reply> {
            panic!("boom at SELECT secret")
        });
        match reply {
            Reply::Json(500, v) => {
                assert_eq!(v["error"]["type"], "internal_server_error");
                assert!(!v.to_string().contains("boom"), "{v}");
            }
            _ => panic!("expected a 500 JSON reply"),
        }
        // Same thread, still serving.
        let ok = guarded(&req, || Reply::ok(serde_json::json!({"ok": true})));
        assert!(matches!(ok, Reply::Json(200, _)));
    }

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
