//! The spend journal's applier thread (issue 17): takes journaled records in batches and
//! applies each batch on the hot connection in one transaction with the journal position.
//! After the first record arrives it gathers on the journal's condvar for `WINDOW` (no sleep,
//! no polling): a barrier (a management read or write), shutdown, `MAX_BATCH` records queued
//! or a file due for rotation wake it at once. A batch sums each holder's spend in memory (one
//! UPDATE per distinct holder, a spend-log row per record). The position applied is kept in
//! memory (read once, and again after a failure) and moved by compare-and-set: a CLI tool that
//! replayed the journal meanwhile (exactly once: its records are skipped here) makes the
//! batch roll back and start again from the stored position. A store that cannot write keeps
//! the batch for the next try; the overlay keeps counting it meanwhile.
//!
//! The queue (and the overlay) stay bounded: past `ROTATE_AT` bytes of journal the applier
//! catches up completely while appenders wait, and an append that would start past
//! `HARD_CAP` (the applier still busy with its batch on a slow store) waits for that rotation
//! (at most a few seconds, then the call's spend commit fails), so at most `HARD_CAP` bytes of
//! records are held in the file and in memory.

use super::health::Health;
use super::journal::{self, Journal, Pending, HEADER, MAX_BATCH, ROTATE_AT};
use rusqlite::Connection;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the applier gathers a batch after its first record (cut short by a barrier,
/// shutdown, a full batch or rotation). At c=1 (~0.4 ms per call) a batch holds ~50 records:
/// the transaction, the position and the WAL frames of the holders' pages are paid once per
/// batch instead of once per call. Budgets do not wait for it (the overlay), management reads
/// do not (the barrier), and durability does not (the journal's write before the answer).
pub(super) const WINDOW: Duration = Duration::from_millis(20);
/// After a failed batch (store down), the next try.
const RETRY: Duration = Duration::from_millis(50);

pub(super) struct Applier {
    pub journal: Arc<Journal>,
    pub hot: Arc<Mutex<super::Hot>>,
    pub health: Arc<Health>,
}

/// The stored position as this applier last read or wrote it: its text (`None`: no row).
type Known = Option<Option<String>>;

impl Applier {
    pub fn start(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("spend-apply".into())
            .stack_size(512 * 1024)
            .spawn(move || self.run(&mut None))
    }

    fn run(self, known: &mut Known) {
        let j = &self.journal;
        loop {
            let (batch, gen) = {
                let mut g = j.lock();
                while g.queue.is_empty() && !j.stop.load(Ordering::Acquire) {
                    g = j.wake.wait(g).unwrap_or_else(|p| p.into_inner());
                }
                if g.queue.is_empty() {
                    return; // stopped, nothing left
                }
                let window = Duration::from_millis(j.window_ms.load(Ordering::Relaxed));
                let until = Instant::now() + window;
                while !j.urgent.load(Ordering::Acquire)
                    && !j.stop.load(Ordering::Acquire)
                    && g.queue.len() < MAX_BATCH
                    && g.end < ROTATE_AT
                {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    g = j
                        .wake
                        .wait_timeout(g, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                if !j.delay.is_zero() {
                    drop(g);
                    std::thread::sleep(j.delay);
                    g = j.lock();
                }
                j.urgent.store(false, Ordering::Release);
                let take = g.queue.len().min(MAX_BATCH);
                let batch: Vec<Pending> = g.queue.drain(..take).collect();
                (batch, g.gen)
            };
            self.apply_until_done(&batch, gen, known);
            // Bounded file: once it is large, catch up completely (appenders wait meanwhile)
            // and start a new generation.
            let mut g = j.lock();
            if g.end >= ROTATE_AT {
                // One try: a store that cannot write must not hold the appenders.
                let rest: Vec<Pending> = g.queue.drain(..).collect();
                let gen = g.gen;
                match rest
                    .last()
                    .map(|p| (p.seq, self.apply_once(&rest, gen, known)))
                {
                    None => self.rotate(&mut g),
                    Some((seq, Ok(()))) => {
                        self.mark(seq);
                        self.rotate(&mut g);
                    }
                    Some((_, Err(_))) => {
                        for p in rest.into_iter().rev() {
                            g.queue.push_front(p);
                        }
                    }
                }
            }
        }
    }

    /// Applies `batch` (retrying while the store cannot write; at shutdown, gives up after a
    /// few seconds: the records stay in the journal for the next start).
    fn apply_until_done(&self, batch: &[Pending], gen: u64, known: &mut Known) {
        let Some(last) = batch.last() else { return };
        let mut tries = 0;
        loop {
            match self.apply_once(batch, gen, known) {
                Ok(()) => break,
                Err(e) => {
                    tries += 1;
                    if tries == 1 || tries % 100 == 0 {
                        log::error!(
                            "spend journal: applying {} record(s) failed: {e}",
                            batch.len()
                        );
                    }
                    if self.journal.stop.load(Ordering::Acquire) && tries > 60 {
                        log::error!("spend journal: left for the next start");
                        break;
                    }
                    std::thread::sleep(RETRY);
                }
            }
        }
        self.mark(last.seq);
    }

    /// Records up to `seq` are applied: barriers waiting for them go on.
    fn mark(&self, seq: u64) {
        let mut done = self
            .journal
            .applied
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *done = seq;
        self.journal.applied_cv.notify_all();
    }

    /// One transaction on the hot connection; the overlay loses the batch before the hot lock
    /// is released. The position is read only when not known (at start, after a failure, or
    /// when someone else moved it: then the transaction rolls back and runs again).
    fn apply_once(&self, batch: &[Pending], gen: u64, known: &mut Known) -> rusqlite::Result<()> {
        let hot = self.hot.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let r = Self::try_batch(&hot, batch, gen, known);
            match r {
                Ok(true) => break,
                // Moved by someone else: read it again (the transaction rolled back).
                Ok(false) => *known = None,
                Err(e) => {
                    *known = None;
                    self.health.note_write_error(&e);
                    return Err(e);
                }
            }
        }
        self.journal.overlay.remove(batch.iter().map(|p| &p.rec));
        drop(hot);
        Ok(())
    }

    /// `Ok(false)`: the stored position was not `known` (rolled back, nothing applied).
    ///
    /// `BEGIN IMMEDIATE`, `COMMIT` and `ROLLBACK` are statements prepared once on the hot
    /// connection (rusqlite's `Transaction` parsed them as SQL text at every batch). The batch
    /// is applied with no savepoint first (`spend_order::record_all`: a savepoint and its
    /// release cost ~10k instructions per batch); when the store refuses a record (a
    /// constraint), the whole transaction rolls back and runs again with `journal::apply`,
    /// which skips the refused record in a savepoint of its own. Same rows either way.
    fn try_batch(
        hot: &Connection,
        batch: &[Pending],
        gen: u64,
        known: &mut Known,
    ) -> rusqlite::Result<bool> {
        let mut careful = false;
        loop {
            run(hot, "BEGIN IMMEDIATE")?;
            let r = Self::in_tx(hot, batch, gen, known, careful);
            let r = match r {
                Ok(Some(now)) => run(hot, "COMMIT").map(|()| Some(now)),
                other => other,
            };
            match r {
                Ok(Some(now)) => {
                    *known = Some(now);
                    return Ok(true);
                }
                Ok(None) => {
                    rollback(hot);
                    *known = None;
                    return Ok(false);
                }
                Err(e) if !careful && journal::refused(&e) => {
                    rollback(hot);
                    careful = true;
                }
                Err(e) => {
                    rollback(hot);
                    *known = None;
                    return Err(e);
                }
            }
        }
    }

    /// The batch inside the open transaction: the position it moves to, or `None` when the
    /// stored position was not `known` (the caller rolls back).
    fn in_tx(
        hot: &Connection,
        batch: &[Pending],
        gen: u64,
        known: &Known,
        careful: bool,
    ) -> rusqlite::Result<Option<Option<String>>> {
        let was = match known {
            Some(v) => v.clone(),
            None => journal::stored_raw(hot)?,
        };
        let (sg, so) = was.as_deref().map_or((0, 0), journal::parse_position);
        let todo: Vec<&super::spend::SpendRecord> = batch
            .iter()
            .filter(|p| sg < gen || (sg == gen && p.end > so))
            .map(|p| &p.rec)
            .collect();
        if todo.is_empty() {
            return Ok(Some(was));
        }
        if careful {
            journal::apply(hot, &todo)?;
        } else {
            super::spend_order::record_all(&mut &*hot, &todo)?;
        }
        let last = batch.last().map_or(HEADER, |p| p.end);
        if !journal::move_position(hot, was.as_deref(), gen, last)? {
            return Ok(None);
        }
        Ok(Some(Some(format!("{gen}:{last}"))))
    }

    /// Everything journaled is applied (the caller holds the append lock): a new generation in
    /// an emptied file. Cut to the header first, then the new header: a crash in between
    /// leaves the old generation with no records past the stored position.
    fn rotate(&self, g: &mut journal::Inner) {
        let gen = g.gen + 1;
        let r = g
            .file
            .set_len(HEADER)
            .and_then(|()| g.file.write_all_at(&journal::header(gen), 0));
        match r {
            Ok(()) => {
                g.gen = gen;
                g.end = HEADER;
                self.journal.room.notify_all();
            }
            Err(e) => log::warn!("spend journal: cannot rotate ({e}); trying again later"),
        }
    }

    /// Clean shutdown: apply everything journaled, then rotate.
    pub fn drain(journal: &Journal, handle: std::thread::JoinHandle<()>) {
        {
            // Under the lock the applier checks it under: the wake-up cannot be missed.
            let _g = journal.lock();
            journal.stop.store(true, Ordering::Release);
        }
        journal.wake.notify_all();
        journal.room.notify_all();
        let _ = handle.join();
    }
}

/// One statement without parameters, prepared once per connection.
fn run(c: &Connection, sql: &str) -> rusqlite::Result<()> {
    c.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Ends the open transaction, if any, without its changes (a failed `COMMIT` may have ended
/// it already).
fn rollback(c: &Connection) {
    if !c.is_autocommit() {
        if let Err(e) = run(c, "ROLLBACK") {
            log::warn!("spend journal: rollback failed: {e}");
        }
    }
}
