//! The server itself: startup, health, authentication, errors, body limits, restart.

use crate::common::*;
use serde_json::json;

#[test]
fn health_endpoints_need_no_key() {
    let s = Server::start();
    let r = s.anon("GET", "/health/liveliness");
    assert_eq!(r.status, 200);
    let r = s.anon("GET", "/health/liveness");
    assert_eq!(r.status, 200);
    let r = s.anon("GET", "/health/readiness");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["db"], "connected");
}

#[test]
fn missing_and_bad_keys_are_401() {
    let s = Server::start();
    let r = s.anon("GET", "/organization/list");
    assert_error(&r, 401);
    let r = s.get("/organization/list", "sk-not-a-real-key-000000");
    assert_error(&r, 401);
    let r = s.get("/organization/list", "not-even-sk");
    assert_error(&r, 401);
}

#[test]
fn all_four_key_headers_work() {
    let s = Server::start();
    for h in ["x-litellm-api-key", "api-key", "x-api-key"] {
        let r = s.request("GET", "/organization/list", None, None, &[(h, MASTER)]);
        assert_eq!(r.status, 200, "{h}: {}", r.text());
    }
    let bearer = format!("Bearer {MASTER}");
    let r = s.request(
        "GET",
        "/organization/list",
        None,
        None,
        &[("Authorization", &bearer)],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn unknown_route_and_wrong_method() {
    let s = Server::start();
    assert_error(&s.get("/no/such/route", MASTER), 404);
    assert_error(&s.get("/organization/new", MASTER), 405);
}

#[test]
fn malformed_json_is_400_and_changes_nothing() {
    let s = Server::start();
    let r = s.request(
        "POST",
        "/organization/new",
        Some(MASTER),
        Some(b"{\"organization_alias\": "),
        &[],
    );
    assert_error(&r, 400);
    let r = s.request(
        "POST",
        "/organization/new",
        Some(MASTER),
        Some(b"[1,2]"),
        &[],
    );
    assert_error(&r, 400);
    assert_eq!(s.count("SELECT count(*) FROM organizations"), 0);
}

#[test]
fn huge_body_is_413() {
    let s = Server::start();
    let big = vec![b' '; 9 * 1024 * 1024];
    let r = s.request("POST", "/organization/new", Some(MASTER), Some(&big), &[]);
    assert_error(&r, 413);
    let _ = json!({});
}

#[test]
fn data_survives_restart_and_newer_db_is_refused() {
    let mut s = Server::start();
    let id = s.admin_id(
        "/organization/new",
        json!({"organization_alias": "persist"}),
        "organization_id",
    );
    s.restart();
    let r = s.get(&format!("/organization/info?organization_id={id}"), MASTER);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["organization_alias"], "persist");
    s.stop();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_litegate"));
    cmd.args(["--listen", "127.0.0.1:0", "--db"])
        .arg(s.db_path())
        .env_remove("DATABASE_URL")
        .env("LITELLM_MASTER_KEY", MASTER);
    // The store as a newer litegate would leave it, on whichever engine the server runs.
    match &s.pg {
        Some(db) => {
            s.exec("INSERT INTO litegate_schema (version, applied_at) VALUES (999, 'x')");
            cmd.env("DATABASE_URL", &db.url);
        }
        None => s.db().pragma_update(None, "user_version", 999).unwrap(),
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn generated_master_key_is_printed_once_and_stored_as_hash() {
    let mut s = Server::start_with("model_list: []\n", &[]);
    // start_with sets TEST_MASTER_KEY but this config does not use it: a key is generated.
    let line = s
        .stdout_lines
        .iter()
        .find(|l| l.contains("master key: sk-"))
        .cloned()
        .expect("generated key printed");
    let key = line.rsplit(' ').next().unwrap().to_string();
    assert_eq!(s.get("/organization/list", &key).status, 200);
    let stored: String = s.value(
        "SELECT value FROM settings WHERE name = 'master_key_hash'",
        [],
    );
    assert_ne!(stored, key);
    assert_eq!(stored.len(), 64);
    s.restart();
    assert!(
        !s.stdout_lines.iter().any(|l| l.contains("master key: sk-")),
        "printed again: {:?}",
        s.stdout_lines
    );
    assert_eq!(s.get("/organization/list", &key).status, 200);
}

#[test]
fn bad_config_exits_2_naming_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yaml");
    std::fs::write(
        &cfg,
        "model_list:\n  - model_name: x\n    litellm_params:\n      model: nope\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_litegate"))
        .arg("--config")
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("x.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("litellm_params.model"),
        "{err}"
    );
}

#[test]
fn weak_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_litegate"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("x.db"))
        .env("LITELLM_MASTER_KEY", "sk-1234")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("publicly known"));
}

#[test]
fn access_log_has_one_line_per_request_and_never_a_raw_key() {
    let s = Server::start();
    let v = s.admin("/key/generate", json!({}));
    let key = v["key"].as_str().unwrap().to_string();
    let name = v["key_name"].as_str().unwrap().to_string();
    assert_eq!(s.get("/v1/models", &key).status, 200);
    let q = format!("/key/info?key={key}");
    assert_eq!(s.get(&q, &key).status, 200);
    let r = s.request(
        "GET",
        "/v1/models",
        None,
        None,
        &[("x-api-key", "sk-wrong-key-0123456789")],
    );
    assert_eq!(r.status, 401);
    // The log is written by the server process; poll until the last line is there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let log = loop {
        let log = s.log();
        if log.matches("litegate::access").count() >= 4 || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let access: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("litegate::access"))
        .collect();
    assert_eq!(access.len(), 4, "{log}");
    // Workers log after responding, so lines of back-to-back requests may swap places.
    let one = |needle: &[&str]| {
        let n = access
            .iter()
            .filter(|l| needle.iter().all(|x| l.contains(x)))
            .count();
        assert_eq!(n, 1, "{needle:?} in {log}");
    };
    one(&["POST /key/generate 200", "key=master_key"]);
    one(&["GET /v1/models 200", &name]);
    one(&["GET /key/info 200", &name]);
    one(&["GET /v1/models 401", "key=invalid"]);
    for secret in [key.as_str(), MASTER, "sk-wrong-key-0123456789"] {
        assert!(!log.contains(secret), "secret in the log: {log}");
    }
    let log_token = litegate::auth::hash_key(&key);
    assert!(!log.contains(&log_token), "token in the log");
}

/// Issue 17: access-log lines are written in batches (`log_batch`), never lost on the way: a
/// burst from several connections arrives whole within the batching window, and lines still in
/// their batch when SIGTERM comes are written before the process exits.
#[test]
fn access_log_lines_all_arrive_after_a_burst_and_on_clean_shutdown() {
    let mut s = Server::start();
    let key = s.admin("/key/generate", json!({}))["key"]
        .as_str()
        .unwrap()
        .to_string();
    // 4 threads x 50 requests, each counted in the log by its status and route.
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..50 {
                    assert_eq!(s.get("/v1/models", &key).status, 200);
                }
            });
        }
    });
    let lines = |log: &str| log.matches("GET /v1/models 200").count();
    until("200 access-log lines after the burst", 5, || {
        lines(&s.log()) == 200
    });
    // A burst of 50 more, then SIGTERM straight away: no line may stay in memory.
    for _ in 0..50 {
        assert_eq!(s.get("/v1/models", &key).status, 200);
    }
    let mut child = s.take_child().unwrap();
    let pid = child.id().to_string();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "no exit after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = s.log();
    assert_eq!(lines(&log), 250, "every access line, even the last batch's");
    // Lines are whole: no two records run together, none is cut.
    for l in log.lines().filter(|l| l.contains("litegate::access")) {
        assert_eq!(l.matches("litegate::access").count(), 1, "{l}");
        assert!(l.contains("ms key="), "{l}");
    }
}
