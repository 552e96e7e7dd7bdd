//! Dispatch: matching a request against the route table, authentication and the per-route
//! grant from the request head alone (`admit`), running the handler, and the error boundary
//! (the panic guard, and `error_reply`, the only place an `Err` becomes a reply). Reading the
//! body, the worker slots and writing the reply are the server's (`crate::server`).

use super::routes::{Handler, ManagedFn, PublicFn, ROUTES};
use super::{Ctx, Reply, Req};
use crate::access::authority;
use crate::auth::Caller;
use crate::error::{Error, Result};

/// Whether `path` matches `pattern`, segment by segment (a segment that opens with `{` matches
/// any non-empty segment). Runs against every route before the one that matches, on every
/// request: one pass over the bytes, no allocation, and most routes differ within a few bytes.
fn path_matches(pattern: &str, path: &str) -> bool {
    let (p, x) = (pattern.as_bytes(), path.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        match (p.get(i), x.get(j)) {
            (None, None) => return true,
            (Some(b'{'), _) if i == 0 || p[i - 1] == b'/' => {
                let segment_end = |b: &[u8], k: usize| {
                    b[k..]
                        .iter()
                        .position(|&c| c == b'/')
                        .map_or(b.len(), |n| k + n)
                };
                let end = segment_end(x, j);
                if end == j {
                    return false;
                }
                (i, j) = (segment_end(p, i), end);
            }
            (Some(a), Some(b)) if a == b => (i, j) = (i + 1, j + 1),
            _ => return false,
        }
    }
}

/// Finds the route of `method` and `path` (a trailing `/` is ignored): its pattern and
/// handler, a 405 when only the method differs, else a 404.
pub fn route(method: &str, path: &str) -> Result<(&'static str, Handler)> {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let mut path_known = false;
    for i in candidates(path) {
        let (m, p, h) = &ROUTES[i];
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
        Err(Error::NotFound(super::unsupported::not_found(path)))
    }
}

/// The routes, by the first segment of their pattern (`v1`, `key`, ... ; `""` for `/`), as
/// indices into `ROUTES` in table order; `any` holds the patterns whose first segment is a
/// `{name}`. Built once: a request then tries only the routes that can match its first
/// segment (issue 17: every route was tried, ~2,700 instructions per request).
struct Index {
    by_first: std::collections::HashMap<&'static str, Vec<usize>>,
    any: Vec<usize>,
}

fn first_segment(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    Some(rest.split('/').next().unwrap_or(rest))
}

fn index() -> &'static Index {
    static INDEX: std::sync::OnceLock<Index> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut ix = Index {
            by_first: std::collections::HashMap::new(),
            any: Vec::new(),
        };
        for (i, (_, p, _)) in ROUTES.iter().enumerate() {
            match first_segment(p) {
                Some(s) if !s.starts_with('{') => ix.by_first.entry(s).or_default().push(i),
                // A pattern not opening with `/` is never indexed away.
                _ => ix.any.push(i),
            }
        }
        ix
    })
}

/// The indices of the routes `path` may match, in table order: those whose pattern's first
/// segment is the path's, and those opening with a `{name}` (all of them for a path that does
/// not open with `/`). `path_matches` still decides each.
fn candidates(path: &str) -> impl Iterator<Item = usize> {
    let ix = index();
    let (same, all): (&[usize], bool) = match first_segment(path) {
        Some(s) => (ix.by_first.get(s).map_or(&[][..], Vec::as_slice), false),
        None => (&[][..], true),
    };
    let (mut a, mut b) = (
        same.iter().copied().peekable(),
        ix.any.iter().copied().peekable(),
    );
    let mut rest = 0..if all { ROUTES.len() } else { 0 };
    std::iter::from_fn(move || {
        if all {
            return rest.next();
        }
        // Merge the two ascending lists.
        match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(_), Some(_)) | (None, Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, None) => None,
        }
    })
}

/// What routing and authentication decided, before any of the body is read.
pub enum Admitted {
    Public(PublicFn),
    Managed(ManagedFn, Caller),
    ModelCall(ManagedFn, Caller),
}

/// Checks the routed request's key (or UI session) from the head alone, so that an unknown
/// route or a missing/invalid key is refused before the body is read (issue 11: an
/// unauthenticated body is never buffered). The one key check of the request.
pub fn admit(ctx: &Ctx, req: &Req, routed: Result<Handler>) -> Result<Admitted> {
    Ok(match routed? {
        Handler::Public(h) => Admitted::Public(h),
        Handler::Managed(h) => {
            let caller = ctx.caller(req)?;
            authority::admit(&caller, req.route)?;
            Admitted::Managed(h, caller)
        }
        Handler::ModelCall(h) => Admitted::ModelCall(h, ctx.key_caller(req)?),
    })
}

/// Runs the admitted handler (the body has been read into `req`).
pub fn run(ctx: &Ctx, admitted: Admitted, req: &Req) -> Result<Reply> {
    match admitted {
        Admitted::Public(h) => h(ctx, req),
        Admitted::Managed(h, caller) | Admitted::ModelCall(h, caller) => h(ctx, &caller, req),
    }
}

/// The panic guard around any step: a panic becomes `Error::Internal`.
pub fn catch<T>(req: &Req, f: impl FnOnce() -> Result<T>) -> Result<T> {
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
pub fn guarded(req: &Req, f: impl FnOnce() -> Result<Reply>) -> Reply {
    match catch(req, f) {
        Ok(r) => r,
        Err(e) => error_reply(req, &e),
    }
}

/// An `Err` as its envelope (API.md §3); an internal error's detail goes to the log only.
pub fn error_reply(req: &Req, e: &Error) -> Reply {
    if let Error::Internal(detail) = e {
        log::error!("request {} {}: {detail}", req.request_id, req.log_path());
    }
    // Anthropic's routes answer in Anthropic's envelope, as LiteLLM does there: the
    // `anthropic` SDK and Claude Code read `error.type` and `error.message` from it.
    let body = if super::proxy::speaks_anthropic(req.route) {
        e.anthropic_body()
    } else {
        e.body()
    };
    let reply = Reply::Json(e.status(), body);
    match e {
        Error::RateLimited { retry_after, .. } => Reply::WithHeaders(
            Box::new(reply),
            vec![("retry-after".into(), retry_after.to_string())],
        ),
        _ => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The route table's linear scan, as `route` answered before the first-segment index.
    fn route_linear(method: &str, path: &str) -> std::result::Result<&'static str, u16> {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        let mut path_known = false;
        for (m, p, _) in ROUTES {
            if path_matches(p, path) {
                if *m == method {
                    return Ok(p);
                }
                path_known = true;
            }
        }
        Err(if path_known { 405 } else { 404 })
    }

    fn routed(method: &str, path: &str) -> std::result::Result<&'static str, u16> {
        match route(method, path) {
            Ok((p, _)) => Ok(p),
            Err(Error::MethodNotAllowed) => Err(405),
            Err(_) => Err(404),
        }
    }

    proptest::proptest! {
        /// The indexed lookup answers every request as the linear scan did: route patterns
        /// with their placeholders filled (or emptied), cut, extended, slashed, and noise.
        #[test]
        fn indexed_routing_answers_as_the_linear_scan(
            which in 0..ROUTES.len(),
            fill in "[a-z0-9%.-]{0,6}",
            tail in proptest::sample::select(vec!["", "/", "//", "/x", "x", "/regenerate"]),
            cut in 0usize..40,
            method in proptest::sample::select(vec!["GET", "POST", "DELETE", "PATCH", "PUT", "get", "BREW"]),
            noise in "[/a-z{}]{0,12}",
        ) {
            let pattern = ROUTES[which].1;
            let filled: String = pattern
                .split('/')
                .map(|seg| if seg.starts_with('{') { fill.as_str() } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let mut paths = vec![
                filled.clone(),
                format!("{filled}{tail}"),
                filled.get(..cut.min(filled.len())).unwrap_or("").to_string(),
                noise.clone(),
                format!("/{noise}"),
                format!("{tail}{filled}"),
            ];
            paths.push(pattern.to_string());
            for path in &paths {
                proptest::prop_assert_eq!(routed(method, path), route_linear(method, path), "{} {}", method, path);
            }
        }
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
        assert!(route("POST", "/key/sk-abc/regenerate/more").is_err());
        assert!(route("POST", "/key/sk-abc").is_err());
        assert!(route("POST", "/v1/chat/completions").is_ok());
        assert!(route("POST", "/v1/chat/completions/").is_ok());
        assert!(route("POST", "/v1/chat/completionsx").is_err());
    }

    /// Every route matches its own pattern (a placeholder filled in) and nothing else's
    /// literal form, as the allocating matcher it replaced answered.
    #[test]
    fn path_matching_agrees_with_the_segment_rule() {
        let reference = |pattern: &str, path: &str| {
            let (ps, xs): (Vec<&str>, Vec<&str>) =
                (pattern.split('/').collect(), path.split('/').collect());
            ps.len() == xs.len()
                && ps
                    .iter()
                    .zip(&xs)
                    .all(|(p, x)| (p.starts_with('{') && !x.is_empty()) || p == x)
        };
        let mut paths: Vec<String> = vec!["/".into(), "".into(), "/key//regenerate".into()];
        for (_, p, _) in ROUTES {
            paths.push(p.to_string());
            let filled: Vec<String> = p
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "x1".into()
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            paths.push(filled.join("/"));
            paths.push(format!("{}/extra", filled.join("/")));
            paths.push(filled[..filled.len() - 1].join("/"));
        }
        for (_, p, _) in ROUTES {
            for x in &paths {
                assert_eq!(path_matches(p, x), reference(p, x), "{p} vs {x}");
            }
        }
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
}
