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
    let valid = key_for(&s, json!({}));
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
        // The upstream's key too: ureq and ureq_proto log requests at debug/trace.
        .chain([crate::upstream::UPSTREAM_KEY])
    {
        let hit = log.lines().find(|l| l.contains(k));
        assert!(hit.is_none(), "a raw key is in the log: {hit:?}");
    }
}

fn login(s: &Server, body: serde_json::Value) -> Resp {
    let b = body.to_string();
    s.request("POST", "/ui/login", None, Some(b.as_bytes()), &[UI])
}

fn user_with_password(s: &Server, id: &str, email: &str, pw: &str) {
    s.admin(
        "/user/new",
        json!({"user_id": id, "user_email": email, "user_role": "internal_user"}),
    );
    s.admin("/user/update", json!({"user_id": id, "password": pw}));
}

fn assert_throttled(r: &Resp) {
    let e = assert_error(r, 429);
    assert_eq!(e["error"]["type"], "rate_limit_error", "{e}");
    let after: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=300).contains(&after), "{after}");
}

#[test]
fn an_account_is_throttled_after_failed_logins_even_for_the_right_password_and_others_are_not() {
    let s = Server::start();
    user_with_password(&s, "ann", "ann@example.com", "ann-right-password");
    user_with_password(&s, "bob", "bob@example.com", "bob-right-password");
    let wrong = json!({"email": "ann@example.com", "password": "guess"});
    let mut checked = std::time::Duration::MAX;
    for i in 0..5 {
        let t = std::time::Instant::now();
        assert_eq!(login(&s, wrong.clone()).status, 401, "attempt {i}");
        checked = checked.min(t.elapsed());
    }
    let t = std::time::Instant::now();
    assert_throttled(&login(&s, wrong.clone()));
    // A throttled attempt runs no argon2: far quicker than the fastest checked one.
    let throttled = t.elapsed();
    assert!(
        throttled * 4 < checked,
        "throttled {throttled:?} vs checked {checked:?}"
    );
    // Case and spaces do not make a new account name.
    let right = json!({"email": " ANN@example.com", "password": "ann-right-password"});
    assert_throttled(&login(&s, right));
    // No session was created while throttled.
    assert_eq!(s.count("SELECT COUNT(*) FROM ui_sessions"), 0);
    let r = login(
        &s,
        json!({"email": "bob@example.com", "password": "bob-right-password"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_client_address_is_throttled_across_accounts_and_for_the_master_key() {
    let s = Server::start_with_env(
        TEST_CONFIG,
        &[],
        &[("LITEGATE_LOGIN_MAX_FAILURES_PER_ADDR", "6")],
    );
    for i in 0..3 {
        let r = login(
            &s,
            json!({"email": format!("nobody{i}@x"), "password": "p"}),
        );
        assert_eq!(r.status, 401);
        let r = login(&s, json!({"master_key": format!("sk-wrong-{i}")}));
        assert_eq!(r.status, 401);
    }
    assert_throttled(&login(&s, json!({"email": "other@x", "password": "p"})));
    // The right master key too: nothing is checked while the address is throttled.
    assert_throttled(&login(&s, json!({"master_key": MASTER})));
    // X-Forwarded-For is not trusted by default: a spoofed one changes nothing.
    let r = s.post_anon(
        "/ui/login",
        &json!({"master_key": MASTER}),
        &[UI, ("X-Forwarded-For", "203.0.113.9")],
    );
    assert_throttled(&r);
    // Keys still work on the API: only UI logins are throttled.
    assert_eq!(s.get("/key/list", MASTER).status, 200);
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    st.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A flood of concurrent logins (no throttle in the way: limits raised) runs at most
/// LITEGATE_ARGON2_CONCURRENCY argon2 computations at once: the peak RSS grows by about that
/// many × 19 MiB, not by the number of workers × 19 MiB, excess logins get a 503 instead of
/// piling up, and the server keeps answering meanwhile.
#[test]
fn a_concurrent_login_flood_keeps_memory_bounded_and_the_server_answering() {
    let mut s = Server::start_with_env(
        TEST_CONFIG,
        &["--workers", "32"],
        &[
            ("LITEGATE_ARGON2_CONCURRENCY", "2"),
            ("LITEGATE_LOGIN_MAX_FAILURES", "1000000"),
            ("LITEGATE_LOGIN_MAX_FAILURES_PER_ADDR", "1000000"),
        ],
    );
    user_with_password(&s, "ann", "ann@example.com", "ann-right-password");
    let child = s.take_child().unwrap();
    let pid = child.id();
    let before = vm_hwm_kib(pid);
    let done = std::sync::atomic::AtomicBool::new(false);
    let statuses = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|sc| {
        let mut flood = Vec::new();
        for t in 0..30 {
            let (s, statuses) = (&s, &statuses);
            flood.push(sc.spawn(move || {
                for i in 0..3 {
                    let r = login(s, json!({"email": format!("u{t}-{i}@x"), "password": "p"}));
                    statuses.lock().unwrap().push(r.status);
                }
            }));
        }
        let watcher = sc.spawn(|| {
            let mut answered = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let r = s.anon("GET", "/health/liveliness");
                assert_eq!(r.status, 200);
                answered += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            answered
        });
        for f in flood {
            f.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(watcher.join().unwrap() > 0);
    });
    let statuses = statuses.into_inner().unwrap();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    assert!(statuses.contains(&401), "{statuses:?}");
    let grown_mib = (vm_hwm_kib(pid).saturating_sub(before)) / 1024;
    eprintln!("login flood: peak RSS grew by {grown_mib} MiB; statuses {statuses:?}");
    // 2 slots × 19 MiB, plus connection threads and allocator slack; 32 workers running
    // argon2 at once would be ~600 MiB.
    assert!(grown_mib < 120, "peak RSS grew by {grown_mib} MiB");
    // The right password still works after the flood.
    let r = login(
        &s,
        json!({"email": "ann@example.com", "password": "ann-right-password"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
}
