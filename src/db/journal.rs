//! The spend journal (issue 17, SQLite only): an answered call's spend record is appended to
//! `<db>-spend` beside the database with ONE `write` (no fsync: the durability of a WAL commit
//! under `synchronous=NORMAL`, the OS page cache) and the answer goes out; the applier thread
//! (`journal_apply.rs`) applies the records in batches on the hot connection, storing the
//! journal position applied (generation and offset, setting `spend_journal`) in the same
//! transaction, and rotates the file once everything in it is applied. Whoever opens the
//! database applies what is past the stored position first (`replay`), exactly once.
//!
//! File: a 16-byte header (`LGSJ`, version u32 LE, generation u64 LE), then records: length
//! u32 LE, FNV-1a checksum u32 LE of the payload, payload (version 2: the compact binary record
//! of `journal_codec.rs`; version 1 files, JSON payloads, still replay). A torn or garbled tail
//! (a crash in the middle of a write) ends the readable records and is ignored.
//!
//! Until a record is applied its spend is in the `Overlay` (`journal_overlay.rs`), added where
//! budgets are decided; management reads and writes wait for the applier first (`barrier`).

use super::journal_codec::{self as codec, VERSION};
use super::journal_overlay::Overlay;
use super::spend::SpendRecord;
use rusqlite::Connection;
use std::collections::VecDeque;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub(super) const MAGIC: &[u8; 4] = b"LGSJ";
pub(super) const HEADER: u64 = 16;
/// Where the position applied is stored (`gen:offset`).
pub(super) const POSITION: &str = "spend_journal";
/// Past this size, the applier catches up completely (holding appenders back for one batch)
/// and rotates the file: the journal stays bounded under continuous load.
pub(super) const ROTATE_AT: u64 = 1 << 20;
/// The journal's hard bound: an append that would start past it waits for the applier's
/// rotation (backpressure, as a call waited for its commit before the journal) for at most
/// `FULL_WAIT`, then fails the call's spend commit. Between `ROTATE_AT` and this the
/// appenders go on while the applier finishes its batch.
pub(super) const HARD_CAP: u64 = 2 * ROTATE_AT;
/// How long an append waits for room past `HARD_CAP` (a store that cannot write).
const FULL_WAIT: Duration = Duration::from_secs(5);
/// Records per applier transaction at most; a queue this long cuts the applier's gathering
/// window short.
pub(super) const MAX_BATCH: usize = 512;
/// A record longer than this is garbage (a torn length).
const MAX_RECORD: u32 = 1 << 20;

/// The journal's file beside the database (like `-wal`).
pub fn path_of(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push("-spend");
    PathBuf::from(s)
}

pub(super) fn fnv(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &x in b {
        h ^= u32::from(x);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

pub(super) fn header(gen: u64) -> [u8; 16] {
    header_of(VERSION, gen)
}

/// A header of any version (tests write version-1 files, as an older litegate left them).
pub(super) fn header_of(version: u32, gen: u64) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(MAGIC);
    h[4..8].copy_from_slice(&version.to_le_bytes());
    h[8..].copy_from_slice(&gen.to_le_bytes());
    h
}

/// One record framed for the file (the tests' way; `append` frames into a reused buffer).
#[cfg(test)]
pub(super) fn frame(r: &SpendRecord) -> Vec<u8> {
    let mut buf = Vec::with_capacity(384);
    frame_into(&mut buf, r);
    buf
}

/// `frame` into `buf` (cleared first): the same bytes, in a buffer the caller reuses.
pub(super) fn frame_into(buf: &mut Vec<u8>, r: &SpendRecord) {
    buf.clear();
    buf.extend_from_slice(&[0u8; 8]);
    codec::encode(buf, r);
    seal(buf);
}

thread_local! {
    /// The connection thread's frame buffer for `Journal::append`, reused from call to call.
    static FRAME: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A frame buffer grown past this (a record with huge ids) is not kept.
const FRAME_KEEP: usize = 4096;

/// Fills in the length and checksum of `buf` (8 bytes reserved, then the payload).
#[cfg(test)]
pub(super) fn frame_payload(mut buf: Vec<u8>) -> Vec<u8> {
    seal(&mut buf);
    buf
}

/// Writes the length and checksum of the payload after the 8 reserved bytes into them.
fn seal(buf: &mut [u8]) {
    let len = (buf.len() - 8) as u32;
    let sum = fnv(&buf[8..]);
    buf[..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&sum.to_le_bytes());
}

/// The generation in a file's header (`None`: no valid header).
pub(super) fn generation(bytes: &[u8]) -> Option<u64> {
    if bytes.len() < HEADER as usize || &bytes[..4] != MAGIC {
        return None;
    }
    let mut g = [0u8; 8];
    g.copy_from_slice(&bytes[8..16]);
    Some(u64::from_le_bytes(g))
}

/// The format version in a file's header (`None`: no valid header).
pub(super) fn version(bytes: &[u8]) -> Option<u32> {
    generation(bytes)?;
    let mut v = [0u8; 4];
    v.copy_from_slice(&bytes[4..8]);
    Some(u32::from_le_bytes(v))
}

/// The complete records from `from` on in a whole file `bytes` (header included), each with
/// the offset just past it; stops at the first torn or garbled one.
pub(super) fn records(bytes: &[u8], from: u64) -> Vec<(u64, SpendRecord)> {
    let mut out = Vec::new();
    let Some(version) = version(bytes) else {
        return out;
    };
    let mut at = from as usize;
    while at + 8 <= bytes.len() {
        let mut w = [0u8; 4];
        w.copy_from_slice(&bytes[at..at + 4]);
        let len = u32::from_le_bytes(w);
        w.copy_from_slice(&bytes[at + 4..at + 8]);
        let sum = u32::from_le_bytes(w);
        let end = at + 8 + len as usize;
        if len == 0 || len > MAX_RECORD || end > bytes.len() || fnv(&bytes[at + 8..end]) != sum {
            break;
        }
        match codec::decode_version(version, &bytes[at + 8..end]) {
            Some(r) => out.push((end as u64, r)),
            None => break,
        }
        at = end;
    }
    out
}

/// The position applied, as stored: (generation, offset); (0, 0) before any.
pub(super) fn stored(c: &Connection) -> rusqlite::Result<(u64, u64)> {
    Ok(stored_raw(c)?.map_or((0, 0), |v| parse_position(&v)))
}

/// The stored position's text (`None`: no row yet).
pub(super) fn stored_raw(c: &Connection) -> rusqlite::Result<Option<String>> {
    super::settings_get(c, POSITION)
}

pub(super) fn parse_position(v: &str) -> (u64, u64) {
    let mut it = v.split(':').map(|x| x.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

pub(super) fn store_position(c: &Connection, gen: u64, off: u64) -> rusqlite::Result<()> {
    super::settings_put(&mut &*c, POSITION, &format!("{gen}:{off}"))
}

/// Moves the stored position from `was` (its text as last read or written; `None`: no row)
/// to `gen:off`, only if it still is `was`. `false`: someone else (a CLI tool's `replay` on a
/// connection of its own) moved it meanwhile; the caller rolls back and reads it again.
pub(super) fn move_position(
    c: &Connection,
    was: Option<&str>,
    gen: u64,
    off: u64,
) -> rusqlite::Result<bool> {
    let now = format!("{gen}:{off}");
    let n = match was {
        Some(was) => c
            .prepare_cached("UPDATE settings SET value = ?2 WHERE name = ?1 AND value = ?3")?
            .execute([POSITION, now.as_str(), was])?,
        None => c
            .prepare_cached(
                "INSERT INTO settings(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
            )?
            .execute([POSITION, now.as_str()])?,
    };
    Ok(n == 1)
}

/// Applies `recs` inside the open transaction on `c`: all at once (the holders' spend summed
/// per holder: one UPDATE per distinct key, team, org, user, membership and end user, then a
/// spend-log row per record), or, when one fails, each in a savepoint of its own, skipping (and
/// logging) a record the store refuses (a constraint). Any other error (I/O, disk full, busy)
/// is returned: the transaction must roll back.
pub(super) fn apply(c: &Connection, recs: &[&SpendRecord]) -> rusqlite::Result<()> {
    run(c, "SAVEPOINT spend_batch")?;
    let all = super::spend_order::record_all(&mut &*c, recs);
    match all {
        Ok(()) => return run(c, "RELEASE spend_batch"),
        Err(e) if !refused(&e) => return Err(e),
        Err(_) => {
            run(c, "ROLLBACK TO spend_batch")?;
            run(c, "RELEASE spend_batch")?;
        }
    }
    for r in recs {
        run(c, "SAVEPOINT spend_one")?;
        match super::spend::record(&mut &*c, r) {
            Ok(()) => run(c, "RELEASE spend_one")?,
            Err(e) if refused(&e) => {
                log::error!(
                    "request {}: spend record refused by the store, skipped: {e}",
                    r.request_id
                );
                run(c, "ROLLBACK TO spend_one")?;
                run(c, "RELEASE spend_one")?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One statement without parameters, prepared once per connection.
fn run(c: &Connection, sql: &str) -> rusqlite::Result<()> {
    c.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// A record the store will never take (a constraint), as opposed to a store that cannot write.
pub(super) fn refused(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Applies the journal beside `db` past the position stored, in one transaction with the new
/// position (exactly once: a crash after an applier's commit and before its rotation finds
/// the position at the end). Safe while a server runs on the database (its applier skips what
/// is applied here). Returns how many records were applied.
pub fn replay(c: &mut Connection, db: &Path) -> Result<usize, String> {
    let jp = path_of(db);
    let bytes = match std::fs::read(&jp) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", jp.display())),
    };
    let Some(gen) = generation(&bytes) else {
        return Ok(0);
    };
    if let Some(v) = version(&bytes).filter(|v| *v != VERSION && *v != codec::VERSION_JSON) {
        // A newer litegate's journal: starting would truncate what it has not applied yet.
        return Err(format!(
            "{}: spend journal of version {v}, which this litegate cannot read",
            jp.display()
        ));
    }
    let fail = |e: rusqlite::Error| format!("{}: replaying the spend journal: {e}", db.display());
    let tx = c
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(fail)?;
    let (sg, so) = stored(&tx).map_err(fail)?;
    let from = match sg.cmp(&gen) {
        std::cmp::Ordering::Equal => so.max(HEADER),
        std::cmp::Ordering::Greater => return Ok(0),
        std::cmp::Ordering::Less => HEADER,
    };
    let recs = records(&bytes, from);
    let Some(&(last, _)) = recs.last() else {
        return Ok(0);
    };
    let refs: Vec<&SpendRecord> = recs.iter().map(|(_, r)| r).collect();
    apply(&tx, &refs).map_err(fail)?;
    store_position(&tx, gen, last).map_err(fail)?;
    tx.commit().map_err(fail)?;
    log::info!("spend journal: {} record(s) applied at open", recs.len());
    Ok(recs.len())
}

/// Replays the journal of the database at `db` on a connection of its own (CLI tools that
/// open the file read-only or through `VACUUM INTO`). Nothing to do without a journal.
pub fn replay_path(db: &Path) -> Result<usize, String> {
    if !path_of(db).exists() || !db.is_file() {
        return Ok(0);
    }
    let mut c = super::open(db).map_err(|e| format!("{}: cannot open: {e}", db.display()))?;
    replay(&mut c, db)
}

/// A journaled record waiting for the applier.
pub(super) struct Pending {
    pub seq: u64,
    pub end: u64,
    pub rec: SpendRecord,
}

pub(super) struct Inner {
    pub file: std::fs::File,
    pub gen: u64,
    pub end: u64,
    pub queue: VecDeque<Pending>,
    /// Records appended so far (sequence numbers start at 1).
    pub appended: u64,
}

/// The journal of a running server (see the module doc).
pub struct Journal {
    pub(super) inner: Mutex<Inner>,
    /// The applier waits here for records (woken when the queue stops being empty, or by a
    /// barrier or shutdown; never per call).
    pub(super) wake: Condvar,
    /// Appenders waiting for room past `HARD_CAP` wait here (notified at rotation).
    pub(super) room: Condvar,
    /// The last sequence number applied (or skipped), and its waiters (barriers, shutdown).
    pub(super) applied: Mutex<u64>,
    pub(super) applied_cv: Condvar,
    pub(super) urgent: AtomicBool,
    pub(super) stop: AtomicBool,
    pub overlay: Overlay,
    /// `LITEGATE_SPEND_APPLY_DELAY_MS` (tests only): the applier waits this long per batch.
    pub(super) delay: Duration,
    /// The applier's gathering window in ms (`journal_apply::WINDOW`; unit tests widen it).
    pub(super) window_ms: std::sync::atomic::AtomicU64,
}

impl Journal {
    /// Opens the journal beside `db` for appending, after `replay` applied what it held: a new
    /// generation, past both the file's and the stored one, in an empty file.
    pub fn create(c: &Connection, db: &Path) -> Result<Journal, String> {
        let jp = path_of(db);
        let fail = |e: std::io::Error| format!("{}: {e}", jp.display());
        let file_gen = std::fs::read(&jp)
            .ok()
            .and_then(|b| generation(&b))
            .unwrap_or(0);
        let (sg, _) = stored(c).map_err(|e| e.to_string())?;
        let gen = file_gen.max(sg) + 1;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&jp)
            .map_err(fail)?;
        file.set_len(0).map_err(fail)?;
        file.write_all_at(&header(gen), 0).map_err(fail)?;
        let delay = std::env::var("LITEGATE_SPEND_APPLY_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        Ok(Journal {
            inner: Mutex::new(Inner {
                file,
                gen,
                end: HEADER,
                queue: VecDeque::new(),
                appended: 0,
            }),
            wake: Condvar::new(),
            room: Condvar::new(),
            applied: Mutex::new(0),
            applied_cv: Condvar::new(),
            urgent: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            overlay: Overlay::default(),
            delay,
            window_ms: std::sync::atomic::AtomicU64::new(
                super::journal_apply::WINDOW.as_millis() as u64
            ),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether appends are taken (until clean shutdown closes the journal).
    pub fn is_open(&self) -> bool {
        !self.stop.load(Ordering::Acquire)
    }

    /// After the applier has drained: removes the file when nothing in it is left unapplied
    /// (the next start begins a new generation; a backup restored in its place finds no
    /// stale records beside it).
    pub(super) fn remove_if_applied(&self, db: &Path) {
        let g = self.lock();
        if g.queue.is_empty() {
            if let Err(e) = std::fs::remove_file(path_of(db)) {
                log::warn!("spend journal: cannot remove the applied journal: {e}");
            }
        } else {
            log::warn!(
                "spend journal: {} record(s) left for the next start",
                g.queue.len()
            );
        }
    }

    /// Journals one answered call's spend: one `write`; its spend joins the overlay and the
    /// record itself moves to the applier's queue (no copy; issue 17). An error (disk full)
    /// fails the call as a failed spend commit does. `Err(rec)`: the journal is closed (clean
    /// shutdown), nothing written; the record is given back (boxed: only at shutdown).
    pub fn append(
        &self,
        rec: SpendRecord,
    ) -> std::result::Result<crate::error::Result<()>, Box<SpendRecord>> {
        // The thread's buffer is taken out and put back (none during the thread's teardown).
        let mut buf = FRAME.try_with(std::cell::Cell::take).unwrap_or_default();
        let done = self.append_framed(rec, &mut buf);
        if buf.capacity() <= FRAME_KEEP {
            let _ = FRAME.try_with(|c| c.set(buf));
        }
        done
    }

    /// `append` with `buf`, the thread's reused frame buffer (its contents are replaced).
    fn append_framed(
        &self,
        rec: SpendRecord,
        buf: &mut Vec<u8>,
    ) -> std::result::Result<crate::error::Result<()>, Box<SpendRecord>> {
        frame_into(buf, &rec);
        let mut g = self.lock();
        if g.end >= HARD_CAP {
            // The applier is a whole journal behind (a slow or failing store): wait for its
            // rotation, bounded, instead of growing the file and the queue without end.
            self.wake.notify_one();
            let until = std::time::Instant::now() + FULL_WAIT;
            while g.end >= HARD_CAP && !self.stop.load(Ordering::Acquire) {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Ok(Err(crate::error::Error::Internal(
                        "cannot journal spend: the store is not keeping up".into(),
                    )));
                }
                g = self
                    .room
                    .wait_timeout(g, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        if self.stop.load(Ordering::Acquire) {
            return Err(Box::new(rec));
        }
        let at = g.end;
        if let Err(e) = g.file.write_all_at(buf, at) {
            // Whatever part was written lies past `end`: overwritten by the next record.
            return Ok(Err(crate::error::Error::Internal(format!(
                "cannot journal spend: {e}"
            ))));
        }
        g.end = at + buf.len() as u64;
        g.appended += 1;
        let seq = g.appended;
        let end = g.end;
        self.overlay.add(&rec);
        let was_empty = g.queue.is_empty();
        g.queue.push_back(Pending { seq, end, rec });
        // The applier waits for the first record, then gathers until its window ends, unless
        // a full batch or a file due for rotation cuts it short: one wake-up per batch.
        let cut = g.queue.len() == MAX_BATCH || (end >= ROTATE_AT && at < ROTATE_AT);
        drop(g);
        if was_empty || cut {
            self.wake.notify_one();
        }
        Ok(Ok(()))
    }

    /// Waits (at most `limit`) until the applier has applied every record journaled before
    /// this call: management reads and writes see every answered call, as before the journal.
    pub fn barrier(&self, limit: Duration) {
        let applied = || self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let target = self.lock().appended;
        if *applied() >= target {
            return;
        }
        {
            // Under the lock the applier checks it under: the wake-up cannot be missed (the
            // applier would wait out its gathering window). Not holding `applied`: the
            // applier takes `applied` while holding this lock (at rotation).
            let _g = self.lock();
            self.urgent.store(true, Ordering::Release);
        }
        self.wake.notify_one();
        let mut done = applied();
        let until = std::time::Instant::now() + limit;
        while *done < target {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                log::warn!("spend journal: the applier is behind; reading without it");
                return;
            }
            done = self
                .applied_cv
                .wait_timeout(done, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
