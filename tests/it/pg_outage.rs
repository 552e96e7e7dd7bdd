//! PostgreSQL outages under load (issue 14 item 5): the server stopped at once, or hung (every
//! process SIGSTOPped: TCP accepts, nobody answers). Calls that need the database get a 503 in
//! LiteLLM's error shape within a bound, readiness says the database is disconnected, liveness
//! stays up, no call is answered 200 without its spend-log row, and when PostgreSQL is back the
//! calls succeed again by themselves (no litegate restart).
//!
//! Each test runs its own throwaway cluster (`scripts/pg.sh` with `LITEGATE_PG_DIR`), never the
//! shared one other tests use, and removes it at the end.

use crate::common::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bound asserted on any call's latency while PostgreSQL is down or hung: litegate's
/// default `database_connection_timeout` (3 s) plus slack for a busy test machine.
const BOUND: Duration = Duration::from_secs(5);
/// How soon after PostgreSQL is back the calls must succeed again.
const RECOVERY: Duration = Duration::from_secs(10);

/// A cluster of this test's own.
struct Cluster {
    dir: String,
    url: String,
}

impl Cluster {
    fn start() -> Cluster {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = format!(
            "/tmp/litegate-outage-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = Cluster {
            dir,
            url: String::new(),
        };
        c.url = c.script("start");
        c
    }

    fn script(&self, cmd: &str) -> String {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg.sh");
        let out = std::process::Command::new("bash")
            .arg(script)
            .arg(cmd)
            .env("LITEGATE_PG_DIR", &self.dir)
            // Acknowledged commits must survive `kill` (the throwaway default is `off`).
            .env("LITEGATE_PG_OPTS", "-c synchronous_commit=on")
            .output()
            .expect("run scripts/pg.sh");
        assert!(
            out.status.success(),
            "scripts/pg.sh {cmd} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pg.sh");
        for cmd in ["resume", "stop"] {
            let _ = std::process::Command::new("bash")
                .arg(&script)
                .arg(cmd)
                .env("LITEGATE_PG_DIR", &self.dir)
                .output();
        }
    }
}

/// One call as the load threads saw it.
struct Seen {
    at: Instant,
    took: Duration,
    status: u16,
    call_id: Option<String>,
    body: String,
}

/// `threads` clients making model calls until `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: &str, key: &str, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handles = (0..threads)
            .map(|_| {
                let (stop, seen) = (stop.clone(), seen.clone());
                let (addr, key) = (addr.to_string(), key.to_string());
                std::thread::spawn(move || {
                    let body = chat_body("A").to_string();
                    while !stop.load(Ordering::Relaxed) {
                        let at = Instant::now();
                        let r = raw_request(
                            &addr,
                            "POST",
                            "/v1/chat/completions",
                            Some(&key),
                            Some(body.as_bytes()),
                            &[],
                        );
                        let s = Seen {
                            at,
                            took: at.elapsed(),
                            status: r.status,
                            call_id: r.header("x-litellm-call-id").map(str::to_string),
                            body: r.text(),
                        };
                        seen.lock().unwrap().push(s);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            })
            .collect();
        Load {
            stop,
            seen,
            handles,
        }
    }

    /// The first 200 that started at or after `t`, if any yet.
    fn first_ok_since(&self, t: Instant) -> Option<Instant> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.at >= t && s.status == 200)
            .map(|s| s.at + s.took)
            .min()
    }

    fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles {
            h.join().expect("load thread");
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// What the whole run must show, whichever the outage: only 200s and 503s (the 503s in
/// LiteLLM's error shape), failures only around the outage, and every 200 in the spend log.
fn check_run(seen: &[Seen], s: &Server, url: &str, out: Instant, back: Instant) {
    let mut refused = 0;
    for x in seen {
        match x.status {
            200 => {}
            503 => {
                refused += 1;
                let v: serde_json::Value = serde_json::from_str(&x.body).unwrap();
                assert_eq!(v["error"]["code"], "503", "{v}");
                assert!(v["error"]["message"].is_string(), "{v}");
                assert!(v["error"]["type"].is_string(), "{v}");
                assert!(
                    !x.body.contains("litegate:litegate"),
                    "no URL or password in answers: {}",
                    x.body
                );
            }
            other => panic!(
                "only 200 or 503 while PostgreSQL goes and comes back: {other} {}",
                x.body
            ),
        }
    }
    assert!(refused > 0, "some calls met the outage");
    // While PostgreSQL was away, no call waited longer than the bound.
    let during: Vec<&Seen> = seen
        .iter()
        .filter(|x| x.at + x.took >= out && x.at <= back)
        .collect();
    let worst = during.iter().map(|x| x.took).max().unwrap_or_default();
    eprintln!(
        "outage: {} calls during it, {refused} answered 503 in the run, slowest {worst:?} during it",
        during.len()
    );
    assert!(worst <= BOUND, "a call took {worst:?} during the outage");
    // Every acknowledged call has its spend row; nothing else was acknowledged.
    let mut c = crate::common::pg::client(url);
    let logged: std::collections::HashSet<String> = c
        .query("SELECT request_id FROM spend_logs", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let acked: Vec<&String> = seen
        .iter()
        .filter(|x| x.status == 200)
        .map(|x| x.call_id.as_ref().expect("a 200 names its call"))
        .collect();
    assert!(acked.len() > 10, "{} acknowledged calls", acked.len());
    for id in &acked {
        assert!(logged.contains(*id), "200 without its spend row: {id}");
    }
    // Liveness never depended on the database.
    assert_eq!(s.anon("GET", "/health/liveliness").status, 200);
}

/// Readiness while PostgreSQL is away: a 503 saying the database is disconnected, in time.
fn assert_not_ready(s: &Server) {
    let t = Instant::now();
    let r = s.anon("GET", "/health/readiness");
    assert!(t.elapsed() <= BOUND, "readiness took {:?}", t.elapsed());
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["db"], "disconnected", "{}", r.text());
    assert_eq!(r.json()["db_engine"], "postgresql");
    assert_eq!(s.anon("GET", "/health/liveliness").status, 200);
}

/// Management calls while PostgreSQL is away: a write (`/key/generate`) and a read
/// (`/key/info`) answer 503 in time.
fn assert_management_refused(s: &Server, key: &str) {
    let t = Instant::now();
    assert_error(&s.post("/key/generate", MASTER, serde_json::json!({})), 503);
    assert_error(&s.get(&format!("/key/info?key={key}"), MASTER), 503);
    assert!(t.elapsed() <= BOUND * 2, "took {:?}", t.elapsed());
}

fn outage_under_load(hang: bool) {
    let pg = Cluster::start();
    let s = Server::start_with_env(TEST_CONFIG, &[], &[("DATABASE_URL", &pg.url)]);
    let key = key_for(&s, serde_json::json!({}));
    assert_eq!(chat(&s, &key, "A").status, 200);
    let load = Load::start(&s.addr, &key, 4);
    std::thread::sleep(Duration::from_millis(800));
    let out = Instant::now();
    pg.script(if hang { "pause" } else { "kill" });
    // Calls fail (fast) while it is away.
    until("calls refused with 503", 10, || {
        load.seen
            .lock()
            .unwrap()
            .iter()
            .any(|x| x.at >= out && x.status == 503)
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_not_ready(&s);
    assert_management_refused(&s, &key);
    let refused_late = load
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|x| x.at >= out + Duration::from_secs(1))
        .all(|x| x.status == 503);
    assert!(refused_late, "no call succeeds while PostgreSQL is away");
    let back = Instant::now();
    pg.script(if hang { "resume" } else { "start" });
    // From the moment PostgreSQL answers again (`start` waits for it).
    let answers = Instant::now();
    until("calls succeed again", RECOVERY.as_secs(), || {
        load.first_ok_since(answers).is_some()
    });
    let recovered = load.first_ok_since(answers).unwrap() - answers;
    std::thread::sleep(Duration::from_millis(500));
    let seen = load.finish();
    eprintln!("recovered {recovered:?} after PostgreSQL was back");
    let r = s.anon("GET", "/health/readiness");
    assert_eq!(r.status, 200, "{}", r.text());
    // The last calls all succeed: broken pooled connections were replaced.
    let last: Vec<u16> = seen.iter().rev().take(8).map(|x| x.status).collect();
    assert!(last.iter().all(|&st| st == 200), "{last:?}");
    check_run(&seen, &s, &pg.url, out, back);
}

/// `pg_ctl stop -m immediate` mid-load, then `start` on the same port.
#[test]
fn issue_14_postgres_stopped_mid_load_fails_fast_and_recovers() {
    outage_under_load(false);
}

/// Every PostgreSQL process SIGSTOPped mid-load (connections accepted, never answered), then
/// SIGCONT: the per-call bound comes from `database_connection_timeout`.
#[test]
fn issue_14_postgres_hung_mid_load_fails_fast_and_recovers() {
    outage_under_load(true);
}
