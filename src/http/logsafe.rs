//! What of a request may reach the log. Owns `Req::log_path`: the path as the access log and
//! error log show it, built only from the routing table's fixed words, so no key, id or other
//! caller-chosen text in a path (`/key/sk-…/regenerate`, a mistyped route with a key in it)
//! is ever written out. Queries, headers and bodies are never logged at all.

use super::routes::ROUTES;
use super::Req;

/// Shown in place of a path segment that is not one of the routing table's fixed words.
const HIDDEN: &str = "…";

/// Whether `seg` is a fixed word of some route (`v1`, `key`, `regenerate`, …).
fn known_word(seg: &str) -> bool {
    ROUTES.iter().any(|(_, p, _)| {
        p.split('/')
            .any(|w| !w.is_empty() && !w.starts_with('{') && w == seg)
    })
}

/// Methods the log names; any other is logged as `OTHER` (a method is caller-chosen text).
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

impl Req {
    /// The method for the log: a standard one, else `OTHER`.
    pub fn log_method(&self) -> &'static str {
        METHODS
            .iter()
            .find(|m| **m == self.method)
            .copied()
            .unwrap_or("OTHER")
    }

    /// The path for the log: a matched route's pattern (`/key/{key}/regenerate`), else the path
    /// with every segment that is not a fixed route word replaced by `…`.
    pub fn log_path(&self) -> std::borrow::Cow<'static, str> {
        let route = self.route;
        if route != "unmatched" {
            return std::borrow::Cow::Borrowed(route);
        }
        let hidden: String = self
            .path
            .split('/')
            .map(|seg| {
                if seg.is_empty() || known_word(seg) {
                    seg
                } else {
                    HIDDEN
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        std::borrow::Cow::Owned(hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(method: &str, url: &str) -> String {
        let mut req = Req::new(method, url, Vec::new(), Vec::new());
        if let Ok((p, _)) = super::super::dispatch::route(&req.method, &req.path) {
            req.route = p;
        }
        req.log_path().into_owned()
    }

    #[test]
    fn no_caller_text_from_a_path_reaches_the_log() {
        assert_eq!(
            path_of("POST", "/key/sk-secret123/regenerate"),
            "/key/{key}/regenerate"
        );
        assert_eq!(path_of("GET", "/v1/models"), "/v1/models");
        assert_eq!(path_of("GET", "/key/sk-secret123/regenrate"), "/key/…/…");
        assert_eq!(path_of("GET", "/sk-secret123"), "/…");
        assert_eq!(path_of("GET", "/v1/chat/completion?key=sk-x"), "/v1/chat/…");
        let odd = Req::new("sk-secret123", "/", Vec::new(), Vec::new());
        assert_eq!(odd.log_method(), "OTHER");
    }
}
