//! Issue 17: the spend journal (SQLite). An answered call's spend is journaled with one write
//! and applied off the call's thread; nothing visible changes: the next key check, /key/info
//! and /spend/logs see it at once, a budget refuses at the same call, `kill -9` loses no
//! answered call's spend and counts none twice, CLI tools see journaled spend, and the
//! journal stays bounded. SQLite-pinned (the journal is SQLite's; PostgreSQL keeps its group
//! commit).

use crate::common::*;
use serde_json::json;
use std::process::Command;

/// Holds the applier back: records stay journaled but unapplied.
const HOLD: (&str, &str) = ("LITEGATE_SPEND_APPLY_DELAY_MS", "60000");

fn journal_len(s: &Server) -> u64 {
    let mut p = s.db_path().into_os_string();
    p.push("-spend");
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// The database file as it is, without asking the server to apply its journal first.
fn file_db(s: &Server) -> rusqlite::Connection {
    rusqlite::Connection::open(s.db_path()).unwrap()
}

fn key_spend(s: &Server, key: &str) -> f64 {
    let info = s.get(&format!("/key/info?key={key}"), MASTER).json();
    info["info"]["spend"].as_f64().unwrap_or(-1.0)
}

#[test]
fn spend_of_sequential_calls_is_visible_at_once_in_key_info_and_spend_logs() {
    let s = Server::start_sqlite();
    let key = key_for(&s, json!({}));
    let mut total = 0.0;
    for i in 1..=20 {
        let r = chat(&s, &key, "A");
        assert_eq!(r.status, 200, "{}", r.text());
        let row = spend_log_of(&s, &r);
        total += row["spend"].as_f64().unwrap();
        let seen = key_spend(&s, &key);
        assert!(
            (seen - total).abs() < 1e-9,
            "call {i}: /key/info says {seen}, want {total}"
        );
    }
    let logs = s.get("/spend/logs", MASTER).json();
    assert_eq!(logs.as_array().map(Vec::len), Some(20));
}

#[test]
fn a_sequential_client_is_refused_at_the_same_call_as_before() {
    // A call costs 0.001 * prompt + 0.002 * completion on model A; a budget of 3.5 calls'
    // worth: the 4th call is admitted (spend 3 calls < budget), the 5th refused.
    let s = Server::start_sqlite();
    let probe = key_for(&s, json!({}));
    let r = chat(&s, &probe, "A");
    let one = spend_log_of(&s, &r)["spend"].as_f64().unwrap();
    assert!(one > 0.0);
    // Journaled spend that the applier does not apply for a minute: only the overlay
    // stands between the client and a budget overrun.
    drop(s);
    let s = Server::start_sqlite_env(&[HOLD]);
    let key = key_for(&s, json!({"max_budget": one * 3.5}));
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(chat(&s, &key, "A").status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 422, 422], "{}", s.log());
}

#[test]
fn kill_9_with_unapplied_records_then_restart_counts_every_answered_call_once() {
    let mut s = Server::start_sqlite_env(&[HOLD]);
    let key = key_for(&s, json!({}));
    let mut ids = Vec::new();
    for _ in 0..15 {
        let r = chat(&s, &key, "A");
        assert_eq!(r.status, 200);
        ids.push(r.header("x-litellm-call-id").unwrap().to_string());
    }
    assert!(journal_len(&s) > 16, "records journaled");
    // Not applied: the file alone does not hold them yet.
    let n: i64 = one(&file_db(&s), "SELECT count(*) FROM spend_logs", []);
    assert_eq!(n, 0, "the applier was held back");
    let mut child = s.take_child().unwrap();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    s.start_again();
    for _ in 0..2 {
        for id in &ids {
            let n: i64 = one(
                &s.db(),
                "SELECT count(*) FROM spend_logs WHERE request_id = ?1",
                [id],
            );
            assert_eq!(n, 1, "{id}");
        }
        let logged: f64 = one(&s.db(), "SELECT sum(spend) FROM spend_logs", []);
        let keyed: f64 = one(&s.db(), "SELECT spend FROM api_keys", []);
        assert!((logged - keyed).abs() < 1e-9, "key {keyed} vs log {logged}");
        // Once more: a restart replays nothing twice.
        s.restart();
    }
}

#[test]
fn backup_and_copy_db_of_a_database_with_an_unapplied_journal_see_the_spend() {
    let mut s = Server::start_sqlite_env(&[HOLD]);
    let key = key_for(&s, json!({}));
    for _ in 0..5 {
        assert_eq!(chat(&s, &key, "A").status, 200);
    }
    let mut child = s.take_child().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let n: i64 = one(&s.db(), "SELECT count(*) FROM spend_logs", []);
    assert_eq!(n, 0, "the applier was held back");
    let dest = s.dir.path().join("b.db");
    let out = Command::new(env!("CARGO_BIN_EXE_litegate"))
        .args(["backup"])
        .arg(&dest)
        .arg("--db")
        .arg(s.db_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let b = rusqlite::Connection::open(&dest).unwrap();
    let n: i64 = one(&b, "SELECT count(*) FROM spend_logs", []);
    assert_eq!(n, 5);
    // The backup replayed the journal into the database: a copy and a restart count no
    // record twice.
    let to = s.dir.path().join("c.db");
    let out = Command::new(env!("CARGO_BIN_EXE_litegate"))
        .arg("copy-db")
        .arg("--from")
        .arg(s.db_path())
        .arg("--to")
        .arg(&to)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output_text(&out));
    let c = rusqlite::Connection::open(&to).unwrap();
    let n: i64 = one(&c, "SELECT count(*) FROM spend_logs", []);
    assert_eq!(n, 5);
    s.start_again();
    let n: i64 = one(&s.db(), "SELECT count(*) FROM spend_logs", []);
    assert_eq!(n, 5);
}

#[test]
fn the_journal_stays_bounded_and_is_removed_at_clean_shutdown() {
    let mut s = Server::start_sqlite();
    let key = key_for(&s, json!({}));
    for _ in 0..300 {
        assert_eq!(chat(&s, &key, "A").status, 200);
    }
    let logs = s.get("/spend/logs?limit=1000", MASTER).json();
    assert_eq!(logs.as_array().map(Vec::len), Some(300));
    assert!(
        journal_len(&s) < 2 << 20,
        "journal {} bytes",
        journal_len(&s)
    );
    let child = s.take_child().unwrap();
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let mut child = child;
    child.wait().unwrap();
    assert_eq!(journal_len(&s), 0, "{}", s.log());
    let n: i64 = one(&s.db(), "SELECT count(*) FROM spend_logs", []);
    assert_eq!(n, 300);
}
