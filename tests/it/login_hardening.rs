//! Issue 11 item 5: UI login is throttled per account and per client address, argon2 work is
//! bounded, and raw keys never reach the log, whatever the route.

use crate::common::*;
use serde_json::json;

const UI: (&str, &str) = ("X-Litegate-UI", "1");

/// Every place a raw key can be put in a request, for a valid key, an invalid one, the master
/// key and a key minted by regenerating: none of them may appear in the server's log, with
/// every log target at trace level.
#[test]
fn raw_keys_never_reach_the_log_whatever_the_route() {
    let fake = crate::upstream::Fake::start();
    let s = Server::start_with_env(
        &crate::upstream::config(&fake, ""),
        &[],
        &[("RUST_LOG", "trace")],
    );
    let valid = crate::access::key_for(&s, json!({}));
    let invalid = "sk-invalid-key-0123456789abcdefghij".to_string();
    let mut minted = Vec::new();
    for k in [valid.as_str(), invalid.as_str(), MASTER] {
        let auth = format!("Bearer {k}");
        let cookie = format!("litegate_session={k}");
        let body = |v: serde_json::Value| v.to_string().into_bytes();
        // Headers.
        s.request("GET", "/key/info", Some(k), None, &[]);
        s.request("GET", "/v1/models", None, None, &[("x-litellm-api-key", k)]);
        s.request("GET", "/v1/models", None, None, &[("api-key", k)]);
        s.request("GET", "/ui/me", None, None, &[("Cookie", &cookie)]);
        s.request("GET", "/ui/me", None, None, &[("Authorization", &auth), UI]);
        // Query and path, on known and unknown routes.
        s.get(&format!("/key/info?key={k}"), MASTER);
        s.get(&format!("/key/info?key={k}"), k);
        s.get(&format!("/{k}"), MASTER);
        s.get(&format!("/v1/{k}/x?api_key={k}"), MASTER);
        s.get(&format!("/key/{k}/regenrate"), MASTER);
        s.request(
            "POST",
            &format!("/key/{k}/regenerate"),
            Some(k),
            Some(b"{}"),
            &[],
        );
        // Bodies: management calls, a malformed body, UI login, a model call.
        s.post("/key/info", MASTER, json!({"key": k}));
        s.post("/key/update", MASTER, json!({"key": k, "max_budget": 1}));
        s.post("/key/delete", k, json!({"keys": [k]}));
        let broken = format!("{{\"key\": \"{k}\"");
        s.request(
            "POST",
            "/key/update",
            Some(MASTER),
            Some(broken.as_bytes()),
            &[],
        );
        s.request(
            "POST",
            "/ui/login",
            None,
            Some(&body(json!({"master_key": k}))),
            &[UI],
        );
        s.request(
            "POST",
            "/ui/login",
            None,
            Some(&body(json!({"email": k, "password": k}))),
            &[UI],
        );
        for model in ["json", "sse", "fail401"] {
            s.post(
                "/v1/chat/completions",
                k,
                json!({"model": model, "api_key": k, "user": k, "stream": model == "sse",
                       "messages": [{"role": "user", "content": k}]}),
            );
        }
        // A method no route has.
        s.request(k, "/", Some(k), None, &[]);
    }
    // Regenerating the valid key (as the master) mints a new raw key: it must not be logged
    // either.
    let r = s.post(&format!("/key/{valid}/regenerate"), MASTER, json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    minted.push(r.json()["key"].as_str().unwrap().to_string());
    s.get(&format!("/key/info?key={}", minted[0]), &minted[0]);
    let log = s.log();
    assert!(
        log.contains("litegate::access") && log.contains("TRACE"),
        "the log did not record requests at trace level:\n{log}"
    );
    for k in [valid.as_str(), invalid.as_str(), MASTER]
        .into_iter()
        .chain(minted.iter().map(String::as_str))
    {
        let hit = log.lines().find(|l| l.contains(k));
        assert!(hit.is_none(), "a raw key is in the log: {hit:?}");
    }
}
