//! The spend journal's applier thread (issue 17): takes journaled records in batches (it
//! sleeps `APPLY_EVERY` after the first record arrives, so a batch gathers what came meanwhile;
//! a barrier or a full batch cuts the wait) and applies each batch on the hot connection in one
//! transaction with the journal position, skipping what the stored position says is applied
//! (a CLI tool may have replayed it). A store that cannot write keeps the batch for the next
//! try; the overlay keeps counting it meanwhile.

use super::health::Health;
use super::journal::{self, Journal, Pending, HEADER, ROTATE_AT};
use rusqlite::Connection;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the applier gathers a batch after its first record.
const APPLY_EVERY: Duration = Duration::from_millis(1);
/// Records per transaction at most.
const MAX_BATCH: usize = 512;
/// After a failed batch (store down), the next try.
const RETRY: Duration = Duration::from_millis(50);

pub(super) struct Applier {
    pub journal: Arc<Journal>,
    pub hot: Arc<Mutex<Connection>>,
    pub health: Arc<Health>,
}

impl Applier {
    pub fn start(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("spend-apply".into())
            .stack_size(512 * 1024)
            .spawn(move || self.run())
    }

    fn run(self) {
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
                if !j.urgent.load(Ordering::Acquire)
                    && !j.stop.load(Ordering::Acquire)
                    && g.queue.len() < MAX_BATCH
                {
                    drop(g);
                    std::thread::sleep(APPLY_EVERY + j.delay);
                    g = j.lock();
                } else if !j.delay.is_zero() {
                    drop(g);
                    std::thread::sleep(j.delay);
                    g = j.lock();
                }
                j.urgent.store(false, Ordering::Release);
                let take = g.queue.len().min(MAX_BATCH);
                let batch: Vec<Pending> = g.queue.drain(..take).collect();
                (batch, g.gen)
            };
            self.apply_until_done(&batch, gen);
            // Bounded file: once it is large, catch up completely (appenders wait meanwhile)
            // and start a new generation.
            let mut g = j.lock();
            if g.end >= ROTATE_AT {
                // One try: a store that cannot write must not hold the appenders.
                let rest: Vec<Pending> = g.queue.drain(..).collect();
                let gen = g.gen;
                match rest.last().map(|p| (p.seq, self.apply_once(&rest, gen))) {
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
    fn apply_until_done(&self, batch: &[Pending], gen: u64) {
        let Some(last) = batch.last() else { return };
        let mut tries = 0;
        loop {
            match self.apply_once(batch, gen) {
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
    /// is released.
    fn apply_once(&self, batch: &[Pending], gen: u64) -> rusqlite::Result<()> {
        let mut hot = self.hot.lock().unwrap_or_else(|p| p.into_inner());
        let tx = hot
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .inspect_err(|e| self.health.note_write_error(e))?;
        let (sg, so) = journal::stored(&tx)?;
        let todo: Vec<&super::spend::SpendRecord> = batch
            .iter()
            .filter(|p| sg < gen || (sg == gen && p.end > so))
            .map(|p| &p.rec)
            .collect();
        let last = batch.last().map_or(HEADER, |p| p.end);
        if !todo.is_empty() {
            journal::apply(&tx, &todo)?;
            journal::store_position(&tx, gen, last)?;
        }
        tx.commit()
            .inspect_err(|e| self.health.note_write_error(e))?;
        self.journal.overlay.remove(batch.iter().map(|p| &p.rec));
        drop(hot);
        Ok(())
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
        let _ = handle.join();
    }
}
