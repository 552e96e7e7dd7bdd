//! The spend journal's exactly-once and torn-tail rules (issue 17), on real files.

use crate::db::journal::{self, frame, header, path_of, records, HEADER};
use crate::db::spend::SpendRecord;
use rusqlite::Connection;
use std::path::Path;

fn rec(id: &str) -> SpendRecord {
    SpendRecord {
        request_id: id.into(),
        model: "m".into(),
        call_type: "acompletion".into(),
        prompt_tokens: 1,
        completion_tokens: 2,
        spend: 0.25,
        start_time: "2026-01-01T00:00:00.000Z".into(),
        end_time: "2026-01-01T00:00:01.000Z".into(),
        status: "success".into(),
        end_user: Some("eu".into()),
        ..SpendRecord::default()
    }
}

fn db(dir: &Path) -> (std::path::PathBuf, Connection) {
    let p = dir.join("x.db");
    let mut c = crate::db::open(&p).expect("open");
    crate::db::migrate::migrate(&mut c).expect("migrate");
    (p, c)
}

/// A journal of generation `gen` holding `ids`, as a crashed server leaves it.
fn write_journal(db: &Path, gen: u64, ids: &[&str]) -> Vec<u8> {
    let mut bytes = header(gen).to_vec();
    for id in ids {
        bytes.extend_from_slice(&frame(&rec(id)));
    }
    std::fs::write(path_of(db), &bytes).expect("write");
    bytes
}

fn logs(c: &Connection) -> i64 {
    c.query_row("SELECT count(*) FROM spend_logs", [], |r| r.get(0))
        .expect("count")
}

fn end_user_spend(c: &Connection) -> f64 {
    c.query_row("SELECT spend FROM end_users WHERE id = 'eu'", [], |r| {
        r.get(0)
    })
    .expect("spend")
}

#[test]
fn replay_applies_once_even_when_the_crash_came_after_the_commit_before_the_rotation() {
    let dir = tempfile::tempdir().expect("tmp");
    let (p, mut c) = db(dir.path());
    write_journal(&p, 7, &["a", "b", "c"]);
    assert_eq!(journal::replay(&mut c, &p).expect("replay"), 3);
    assert_eq!(logs(&c), 3);
    // The applier's commit is in, the file still holds every record (no rotation yet): a
    // second open, and a third, count nothing again.
    assert_eq!(journal::replay(&mut c, &p).expect("again"), 0);
    assert_eq!(journal::replay_path(&p).expect("tool"), 0);
    assert_eq!(logs(&c), 3);
    assert!((end_user_spend(&c) - 0.75).abs() < 1e-9);
    // Records appended after the position are applied, the earlier ones not again.
    let mut more = std::fs::read(path_of(&p)).expect("read");
    more.extend_from_slice(&frame(&rec("d")));
    std::fs::write(path_of(&p), &more).expect("write");
    assert_eq!(journal::replay(&mut c, &p).expect("d"), 1);
    assert_eq!(logs(&c), 4);
    // The server opens it: nothing twice, and a new, empty generation.
    drop(c);
    let pool = crate::db::Pool::open(&p, 2, Default::default()).expect("pool");
    let lite = pool.lite().expect("sqlite");
    let n: i64 = lite.read(|c| Ok(logs(c))).expect("count");
    assert_eq!(n, 4);
    let bytes = std::fs::read(path_of(&p)).expect("read");
    assert_eq!(bytes.len() as u64, HEADER);
    assert_eq!(journal::generation(&bytes), Some(8));
}

#[test]
fn a_torn_or_garbled_tail_is_ignored() {
    let dir = tempfile::tempdir().expect("tmp");
    let (p, mut c) = db(dir.path());
    let mut bytes = write_journal(&p, 1, &["a", "b"]);
    // Half of a third record (a crash in the middle of its write).
    let third = frame(&rec("c"));
    bytes.extend_from_slice(&third[..third.len() / 2]);
    std::fs::write(path_of(&p), &bytes).expect("write");
    assert_eq!(records(&bytes, HEADER).len(), 2);
    // A whole record whose payload was garbled: its checksum fails.
    let mut garbled = bytes[..bytes.len() - third.len() / 2].to_vec();
    let mut bad = third.clone();
    let last = bad.len() - 2;
    bad[last] ^= 0x55;
    garbled.extend_from_slice(&bad);
    assert_eq!(records(&garbled, HEADER).len(), 2);
    assert_eq!(journal::replay(&mut c, &p).expect("replay"), 2);
    assert_eq!(logs(&c), 2);
    // A file without a header (cut at rotation) holds nothing.
    std::fs::write(path_of(&p), b"LG").expect("write");
    assert_eq!(journal::replay(&mut c, &p).expect("short"), 0);
}

#[test]
fn a_record_the_store_refuses_is_skipped_and_the_rest_applied() {
    let dir = tempfile::tempdir().expect("tmp");
    let (p, mut c) = db(dir.path());
    // "a" twice: the second violates the spend log's unique request id.
    write_journal(&p, 1, &["a", "a", "b"]);
    assert_eq!(journal::replay(&mut c, &p).expect("replay"), 3);
    assert_eq!(logs(&c), 2);
    assert!(
        (end_user_spend(&c) - 0.5).abs() < 1e-9,
        "the refused record added nothing"
    );
}

#[test]
fn the_applier_applies_the_overlay_counts_meanwhile_and_a_barrier_waits_for_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("x.db");
    let pool = crate::db::Pool::open(&p, 2, Default::default()).expect("pool");
    let lite = pool.lite().expect("sqlite");
    for i in 0..50 {
        lite.record_spend(&rec(&format!("r{i}")))
            .expect("journaled");
    }
    // Until applied, the overlay holds the spend; after the barrier the store does.
    lite.barrier();
    let n: i64 = lite.read(|c| Ok(logs(c))).expect("count");
    assert_eq!(n, 50);
    let pending = lite
        .journal()
        .overlay
        .get(crate::hierarchy::Level::EndUser, "eu", "");
    assert_eq!(pending, 0.0, "applied spend left the overlay");
    let spend: f64 = lite.read(|c| Ok(end_user_spend(c))).expect("spend");
    assert!((spend - 12.5).abs() < 1e-9);
    // Clean shutdown: nothing left, the file removed.
    lite.close_journal();
    assert!(!path_of(&p).exists());
    // A call still running after it is recorded directly.
    lite.record_spend(&rec("late")).expect("direct");
    let n: i64 = lite.read(|c| Ok(logs(c))).expect("count");
    assert_eq!(n, 51);
}

#[test]
fn the_journal_rotates_once_past_its_bound() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("x.db");
    let pool = crate::db::Pool::open(&p, 2, Default::default()).expect("pool");
    let lite = pool.lite().expect("sqlite");
    let one = frame(&rec("r-00000")).len() as u64;
    let n = (journal::ROTATE_AT / one) * 3;
    for i in 0..n {
        lite.record_spend(&rec(&format!("r-{i:05}")))
            .expect("journaled");
    }
    lite.barrier();
    let size = std::fs::metadata(path_of(&p)).expect("meta").len();
    assert!(
        size < journal::ROTATE_AT + 512 * one,
        "journal of {size} bytes"
    );
    let gen = journal::generation(&std::fs::read(path_of(&p)).expect("read"));
    assert!(gen.is_some_and(|g| g >= 3), "{gen:?}");
    let logged: i64 = lite.read(|c| Ok(logs(c))).expect("count");
    assert_eq!(logged as u64, n);
}
