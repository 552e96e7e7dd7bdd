//! Budget alerts (issue 16 item 2): a Slack-compatible `{"text": …}` POST to
//! `general_settings.alerting_webhook_url` once per crossing of a soft budget or a threshold of
//! `max_budget` (`budget_alert_thresholds`), retried after a failure, remembered across
//! restarts, never in a call's way; the webhook's secret path never in the log.

use crate::common::*;
use crate::upstream::{self, Fake};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// The secret part of the webhook URL (a Slack webhook's path is its credential).
const SECRET: &str = "T0000/B0000/XXXXsecretXXXX";

/// A fake Slack webhook: records each POST's JSON body and answers 500 to the first `fail`
/// requests, 200 ("ok") after.
struct Hook {
    port: u16,
    posts: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    fn start(fail: usize) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let seen = posts.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let mut len = 0usize;
                let mut path = String::new();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if path.is_empty() {
                        path = line.clone();
                    }
                    let l = line.to_ascii_lowercase();
                    if let Some(v) = l.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; len];
                let _ = r.read_exact(&mut body);
                assert!(
                    path.contains(SECRET),
                    "posted to the configured URL: {path}"
                );
                let n = {
                    let mut p = seen.lock().unwrap();
                    p.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    p.len()
                };
                let status = if n <= fail { "500 Oops" } else { "200 OK" };
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                    .as_bytes(),
                );
            }
        });
        Hook { port, posts }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/services/{SECRET}", self.port)
    }

    fn texts(&self) -> Vec<String> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["text"].as_str().unwrap_or("(no text)").to_string())
            .collect()
    }
}

fn config(fake: &Fake, hook: &Hook) -> String {
    upstream::config(fake, "")
        + &format!(
            "  alerting_webhook_url: {}\n  budget_alert_thresholds: [0.5, 0.8, 1.0]\n",
            hook.url()
        )
}

/// Each `json` call costs 0.05: on a key with max_budget 1 and soft_budget 0.3, calls cross the
/// soft budget (6th), 50 % (10th), 80 % (16th), 100 % (20th): four alerts, each once, the first
/// delivered on its second attempt (the webhook fails once). A restart forgets nothing.
#[test]
fn each_crossing_is_alerted_once_with_a_retry() {
    let fake = Fake::start();
    let hook = Hook::start(1);
    let mut s = Server::start_with(&config(&fake, &hook), &[]);
    let key = key_for(
        &s,
        json!({"max_budget": 1.0, "soft_budget": 0.3, "key_alias": "ci-bot"}),
    );
    let call = |s: &Server| {
        let r = chat(s, &key, "json");
        assert_eq!(r.status, 200, "{}", r.text());
    };
    for _ in 0..7 {
        call(&s);
    }
    // The soft budget: posted once, failed (500), posted again.
    until("the soft budget alert, retried", 10, || {
        hook.texts().len() >= 2
    });
    let t = hook.texts();
    assert_eq!(t[0], t[1], "the retry posts the same alert");
    assert!(t[0].contains("soft budget crossed. key ci-bot"), "{}", t[0]);
    // Restarted: the crossing is remembered in the database.
    s.restart();
    for _ in 0..4 {
        call(&s);
    }
    until("the 50% alert", 10, || hook.texts().len() >= 3);
    // 17 calls in all: 0.85.
    for _ in 0..6 {
        call(&s);
    }
    until("the 80% alert", 10, || hook.texts().len() >= 4);
    for _ in 0..6 {
        let r = chat(&s, &key, "json");
        if r.status == 422 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    until("the 100% alert", 10, || hook.texts().len() >= 5);
    // Nothing more arrives: one alert per crossing.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let t = hook.texts();
    assert_eq!(t.len(), 5, "{t:#?}");
    assert!(t[2].contains("50% of budget crossed"), "{}", t[2]);
    assert!(t[3].contains("80% of budget crossed"), "{}", t[3]);
    assert!(t[4].contains("budget crossed. key ci-bot"), "{}", t[4]);
    assert!(t[4].contains("of max budget $1"), "{}", t[4]);
    assert_eq!(
        s.count("SELECT count(*) FROM budget_alerts WHERE scope = 'key'"),
        4
    );
    // The webhook's secret path is never logged; its host is.
    let log = s.log();
    assert!(
        !log.contains(SECRET),
        "the webhook secret leaked to the log"
    );
    assert!(log.contains(&format!("127.0.0.1:{}", hook.port)), "{log}");
}

/// A webhook that never answers well, or is not there at all, does not slow or fail calls,
/// and an undelivered alert is forgotten (a later call alerts it again).
#[test]
fn a_dead_webhook_never_fails_a_call() {
    let fake = Fake::start();
    let hook = Hook::start(usize::MAX);
    let s = Server::start_with(&config(&fake, &hook), &[]);
    let key = key_for(&s, json!({"max_budget": 0.05}));
    let started = std::time::Instant::now();
    let r = chat(&s, &key, "json");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    // The crossings (50, 80, 100 %) are remembered before the first attempt; four attempts
    // (0.25 + 0.5 + 1 s of backoff), then they are forgotten.
    until("a first attempt", 10, || !hook.texts().is_empty());
    until("four attempts", 10, || hook.texts().len() >= 4);
    until("the undelivered crossing forgotten", 10, || {
        s.count("SELECT count(*) FROM budget_alerts") == 0
    });
    assert!(s.log().contains("not delivered"), "{}", s.log());
}
