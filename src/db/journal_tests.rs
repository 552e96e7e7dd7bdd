//! The spend journal's exactly-once and torn-tail rules (issue 17), on real files.

use crate::db::journal::{self, frame, frame_payload, header, header_of, path_of, records, HEADER};
use crate::db::journal_codec;
use crate::db::spend::SpendRecord;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

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
        lite.record_spend(rec(&format!("r{i}"))).expect("journaled");
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
    lite.record_spend(rec("late")).expect("direct");
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
        lite.record_spend(rec(&format!("r-{i:05}")))
            .expect("journaled");
    }
    lite.barrier();
    let size = std::fs::metadata(path_of(&p)).expect("meta").len();
    // Past `HARD_CAP` an append waits for the rotation: the bound holds however slowly the
    // applier runs (a loaded machine), not only when it keeps up.
    assert!(size < journal::HARD_CAP + one, "journal of {size} bytes");
    // Three bounds' worth went through a file that never holds more than `HARD_CAP` (two):
    // it rotated at least once. How often more depends on how fast the applier ran.
    let gen = journal::generation(&std::fs::read(path_of(&p)).expect("read"));
    assert!(gen.is_some_and(|g| g >= 2), "{gen:?}");
    let logged: i64 = lite.read(|c| Ok(logs(c))).expect("count");
    assert_eq!(logged as u64, n);
}

#[test]
fn a_store_that_cannot_keep_up_stops_the_journal_at_its_hard_cap() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("x.db");
    let pool = crate::db::Pool::open(&p, 2, Default::default()).expect("pool");
    let lite = pool.lite().expect("sqlite");
    let one = frame(&rec("r-000000")).len() as u64;
    // Holding the hot connection keeps the applier from applying anything (a stuck store).
    let held = lite.hot();
    let started = Instant::now();
    let mut ok = 0u64;
    let err = loop {
        match lite.record_spend(rec(&format!("r-{ok:06}"))) {
            Ok(()) => ok += 1,
            Err(e) => break e,
        }
        assert!(ok <= journal::HARD_CAP / one + 1, "appends never stopped");
    };
    assert!(err.to_string().contains("not keeping up"), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "it waited for room first"
    );
    let size = std::fs::metadata(path_of(&p)).expect("meta").len();
    assert!(size < journal::HARD_CAP + one, "journal of {size} bytes");
    assert!(
        ok >= (journal::HARD_CAP - HEADER) / one - 1,
        "{ok} appended before the cap"
    );
    // The store back: the applier catches up and rotates, appends go on.
    drop(held);
    lite.record_spend(rec("after")).expect("room again");
    lite.barrier();
    let logged: i64 = lite.read(|c| Ok(logs(c))).expect("count");
    assert_eq!(
        logged as u64,
        ok + 1,
        "every acknowledged record applied, the refused one not"
    );
}

/// A version-1 record (JSON payload), as a litegate before the binary records wrote it.
fn frame_v1(r: &SpendRecord) -> Vec<u8> {
    let mut buf = vec![0u8; 8];
    serde_json::to_writer(&mut buf, r).expect("json");
    frame_payload(buf)
}

#[test]
fn a_version_1_json_journal_still_replays_and_an_unknown_version_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let (p, mut c) = db(dir.path());
    let mut bytes = header_of(1, 4).to_vec();
    for id in ["a", "b"] {
        bytes.extend_from_slice(&frame_v1(&rec(id)));
    }
    // A torn tail in the old format is ignored too.
    let third = frame_v1(&rec("c"));
    bytes.extend_from_slice(&third[..third.len() - 3]);
    std::fs::write(path_of(&p), &bytes).expect("write");
    assert_eq!(journal::replay(&mut c, &p).expect("replay"), 2);
    assert_eq!(logs(&c), 2);
    assert!((end_user_spend(&c) - 0.5).abs() < 1e-9);
    // A journal of a newer format is not truncated by a start that cannot read it.
    let mut newer = header_of(99, 9).to_vec();
    newer.extend_from_slice(&frame(&rec("z")));
    std::fs::write(path_of(&p), &newer).expect("write");
    let e = journal::replay(&mut c, &p).expect_err("unknown version");
    assert!(e.contains("version 99"), "{e}");
}

#[test]
fn the_binary_record_round_trips_and_a_garbled_one_is_refused() {
    let full = SpendRecord {
        request_id: "req-é-1".into(),
        token: Some("tok".into()),
        team_id: Some(String::new()),
        organization_id: None,
        user_id: Some("u".into()),
        key_alias: Some("alias \"q\"".into()),
        team_alias: None,
        end_user: Some("eu".into()),
        model: "gpt".into(),
        call_type: "acompletion".into(),
        prompt_tokens: u64::MAX,
        completion_tokens: 7,
        cache_read_tokens: 3,
        cache_write_tokens: 4,
        spend: 0.1 + 0.2,
        start_time: "s".into(),
        end_time: "e".into(),
        status: "success".into(),
    };
    for r in [full, SpendRecord::default()] {
        let mut b = Vec::new();
        journal_codec::encode(&mut b, &r);
        let back = journal_codec::decode(&b).expect("decode");
        assert_eq!(format!("{back:?}"), format!("{r:?}"));
        assert_eq!(back.spend.to_bits(), r.spend.to_bits());
        // Cut short, or with a byte too many: garbled.
        assert!(journal_codec::decode(&b[..b.len() - 1]).is_none());
        b.push(0);
        assert!(journal_codec::decode(&b).is_none());
    }
    // A length past the end, and bytes that are not UTF-8.
    assert!(journal_codec::decode(&[9, 0, 0, 0, b'a']).is_none());
    assert!(journal_codec::decode(&[1, 0, 0, 0, 0xff]).is_none());
}

/// Holders for the aggregation test: two orgs, two teams, three users with memberships, keys.
const HOLDERS: &str = "
    INSERT INTO organizations (id, alias, created_at, updated_at) VALUES
        ('o1', 'o1', 'x', 'x'), ('o2', 'o2', 'x', 'x');
    INSERT INTO teams (id, organization_id, created_at, updated_at) VALUES
        ('t1', 'o1', 'x', 'x'), ('t2', 'o2', 'x', 'x');
    INSERT INTO users (id, user_role, created_at, updated_at) VALUES
        ('u1', 'internal_user', 'x', 'x'), ('u2', 'internal_user', 'x', 'x'),
        ('u3', 'internal_user', 'x', 'x');
    INSERT INTO team_members (team_id, user_id, role, created_at, updated_at) VALUES
        ('t1', 'u1', 'user', 'x', 'x'), ('t1', 'u2', 'user', 'x', 'x'),
        ('t2', 'u3', 'user', 'x', 'x');
    INSERT INTO organization_members (organization_id, user_id, user_role, created_at, updated_at)
        VALUES ('o1', 'u1', 'internal_user', 'x', 'x'), ('o1', 'u2', 'internal_user', 'x', 'x'),
        ('o2', 'u3', 'internal_user', 'x', 'x');
    INSERT INTO api_keys (token, key_name, team_id, user_id, created_at, updated_at) VALUES
        ('k1', 'k1', 't1', 'u1', 'x', 'x'), ('k2', 'k2', 't1', 'u2', 'x', 'x'),
        ('k3', 'k3', 't2', 'u3', 'x', 'x'), ('k4', 'k4', NULL, 'u1', 'x', 'x');
";

/// Every holder's spend and every end user row, as text (compared between two databases).
fn holder_state(c: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT 'key ' || token, spend FROM api_keys ORDER BY 1",
        "SELECT 'team ' || id, spend FROM teams ORDER BY 1",
        "SELECT 'org ' || id, spend FROM organizations ORDER BY 1",
        "SELECT 'user ' || id, spend FROM users ORDER BY 1",
        "SELECT 'tm ' || team_id || '/' || user_id, spend FROM team_members ORDER BY 1",
        "SELECT 'om ' || organization_id || '/' || user_id, spend FROM organization_members ORDER BY 1",
        "SELECT 'eu ' || id || ' ' || created_at || ' ' || updated_at, spend FROM end_users ORDER BY 1",
        "SELECT 'log ' || request_id || ' ' || metadata, spend FROM spend_logs ORDER BY 1",
    ] {
        let mut st = c.prepare(sql).expect("prepare");
        let rows = st
            .query_map([], |r| {
                Ok(format!("{} {:.9}", r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
            })
            .expect("query");
        out.extend(rows.map(|r| r.expect("row")));
    }
    out
}

/// 300 records over few holders, some free, some with an end user (a new one first seen free,
/// then paying): the batch's summed UPDATEs leave exactly what one record at a time left.
#[test]
fn a_batch_sums_per_holder_exactly_as_record_by_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let keys = [
        ("k1", Some("t1"), Some("o1"), "u1"),
        ("k2", Some("t1"), Some("o1"), "u2"),
        ("k3", Some("t2"), Some("o2"), "u3"),
        ("k4", None, None, "u1"),
    ];
    let recs: Vec<SpendRecord> = (0..300)
        .map(|i| {
            let (k, t, o, u) = keys[i % keys.len()];
            SpendRecord {
                request_id: format!("r{i}"),
                token: Some(k.into()),
                team_id: t.map(Into::into),
                organization_id: o.map(Into::into),
                user_id: Some(u.into()),
                end_user: match i % 5 {
                    0 => None,
                    1 | 2 => Some("eu-a".into()),
                    _ => Some(format!("eu-{}", i % 7)),
                },
                spend: if i % 3 == 0 {
                    0.0
                } else {
                    0.001 * (i % 11) as f64
                },
                end_time: format!("2026-01-01T00:00:{:02}.000Z", i % 60),
                model: "m".into(),
                call_type: "acompletion".into(),
                status: "success".into(),
                ..SpendRecord::default()
            }
        })
        .collect();
    let refs: Vec<&SpendRecord> = recs.iter().collect();
    let (one_dir, all_dir) = (dir.path().join("one"), dir.path().join("all"));
    dir_db(&one_dir);
    dir_db(&all_dir);
    let (_, mut one) = db(&one_dir);
    let (_, mut all) = db(&all_dir);
    for c in [&mut one, &mut all] {
        c.execute_batch(HOLDERS).expect("holders");
    }
    let tx = one.transaction().expect("tx");
    for r in &refs {
        crate::db::spend::record(&mut &*tx, r).expect("record");
    }
    tx.commit().expect("commit");
    let tx = all.transaction().expect("tx");
    journal::apply(&tx, &refs).expect("apply");
    tx.commit().expect("commit");
    let (a, b) = (holder_state(&one), holder_state(&all));
    assert_eq!(a.len(), 4 + 2 + 2 + 3 + 3 + 3 + 8 + 300);
    assert_eq!(a, b);
    let k1: f64 = one
        .query_row("SELECT spend FROM api_keys WHERE token = 'k1'", [], |r| {
            r.get(0)
        })
        .expect("k1");
    assert!(k1 > 0.0);
}

fn dir_db(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    dir.join("x.db")
}

/// With a gathering window of a minute, records wait in the journal (the overlay counts them);
/// a barrier (a management read) wakes the applier at once.
#[test]
fn the_applier_gathers_for_its_window_and_a_barrier_cuts_it_short() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir_db(dir.path());
    let pool = crate::db::Pool::open(&p, 2, Default::default()).expect("pool");
    let lite = pool.lite().expect("sqlite");
    lite.journal().window_ms.store(60_000, Ordering::Relaxed);
    // Let the applier finish any wait begun with the old window (there is none: no record yet).
    for i in 0..3 {
        lite.record_spend(rec(&format!("r{i}"))).expect("journaled");
    }
    std::thread::sleep(Duration::from_millis(200));
    let unapplied: i64 = logs(&lite.get().expect("conn"));
    assert_eq!(unapplied, 0, "applied before its window ended");
    let pending = lite
        .journal()
        .overlay
        .get(crate::hierarchy::Level::EndUser, "eu", "");
    assert!((pending - 0.75).abs() < 1e-9, "{pending}");
    let t = Instant::now();
    let n: i64 = lite.read(|c| Ok(logs(c))).expect("count");
    assert_eq!(n, 3);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "the barrier waited out the window: {:?}",
        t.elapsed()
    );
    // A refused record among good ones, through the applier: skipped alone.
    for id in ["r9", "r1", "r10"] {
        lite.record_spend(rec(id)).expect("journaled");
    }
    let (n, spend): (i64, f64) = lite
        .read(|c| Ok((logs(c), end_user_spend(c))))
        .expect("count");
    assert_eq!(n, 5);
    assert!((spend - 1.25).abs() < 1e-9, "{spend}");
    lite.close_journal();
    assert!(!path_of(&p).exists());
}

/// The applier keeps the position in memory; a CLI tool replaying the journal meanwhile moves
/// the stored one: the applier's batch rolls back and the records count once.
#[test]
fn a_replay_by_another_connection_meanwhile_counts_nothing_twice() {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir_db(dir.path());
    let pool = crate::db::Pool::open(&p, 2, Default::default()).expect("pool");
    let lite = pool.lite().expect("sqlite");
    lite.record_spend(rec("first")).expect("journaled");
    lite.barrier(); // the applier knows the position now
    lite.journal().window_ms.store(60_000, Ordering::Relaxed);
    for id in ["x", "y"] {
        lite.record_spend(rec(id)).expect("journaled");
    }
    assert_eq!(journal::replay_path(&p).expect("tool"), 2);
    let (n, spend): (i64, f64) = lite
        .read(|c| Ok((logs(c), end_user_spend(c))))
        .expect("count");
    assert_eq!(n, 3);
    assert!((spend - 0.75).abs() < 1e-9, "{spend}");
    // And the applier goes on from there.
    lite.record_spend(rec("z")).expect("journaled");
    let n: i64 = lite.read(|c| Ok(logs(c))).expect("count");
    assert_eq!(n, 4);
}

/// `frame_into` on a reused buffer (longer or shorter records before) writes exactly the
/// bytes `frame` writes, and they read back as the record (issue 17, round 3).
#[test]
fn a_reused_frame_buffer_frames_as_a_fresh_one() {
    let mut buf = Vec::new();
    for id in ["a", &"x".repeat(5000), "", "r-000123", &"y".repeat(300)] {
        let mut r = rec(id);
        r.token = Some(format!("tok-{id}"));
        journal::frame_into(&mut buf, &r);
        assert_eq!(buf, frame(&r), "{}", id.len());
        let mut bytes = header(1).to_vec();
        bytes.extend_from_slice(&buf);
        let got = records(&bytes, HEADER);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.request_id, id);
        assert_eq!(
            got[0].1.token.as_deref(),
            Some(format!("tok-{id}").as_str())
        );
    }
}
