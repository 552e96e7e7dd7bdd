//! The spend group commit (issue 6; PostgreSQL, and SQLite with `LITEGATE_SPEND_JOURNAL=off`
//! or after the journal closed): callers' records committed together, each caller answered
//! only once its own record is in.

use super::spend::{record, SpendRecord};
use rusqlite::Connection;

/// Group commit for spend (issue 6), leader/follower: a caller with nothing being written
/// becomes the leader and commits every record waiting at that moment (its own included) in one
/// transaction on its own thread; callers that arrive meanwhile wait, and when the leader is done
/// it wakes exactly the callers it committed for and hands the leadership to the first caller
/// still waiting, whose batch follows. Each caller returns only once its own record is
/// committed, so the spend of an answered call survives `kill -9` exactly as with one
/// transaction per call; alone (c=1) a call writes its record itself with no hand-off.
/// Waiting is `park`/`unpark` per caller: one wake-up per follower, none for the others (a
/// shared condvar woke every waiter at every commit, ~7 % of CPU at c=64 in futex calls).
#[derive(Default)]
pub struct SpendWriter {
    state: std::sync::Mutex<WriterState>,
}

#[derive(Default)]
struct WriterState {
    queue: std::collections::VecDeque<(std::sync::Arc<Waiter>, SpendRecord)>,
    /// A leader is writing, or has been chosen and is waking up.
    writing: bool,
}

/// One waiting caller: its thread, and what the leader tells it.
struct Waiter {
    thread: std::thread::Thread,
    /// `WAITING`, `DONE` (its result is in `error`), or `LEAD` (it is the next leader).
    state: std::sync::atomic::AtomicU8,
    /// The leader's error for this record (a 503 stays a 503: PostgreSQL unreachable).
    error: std::sync::Mutex<Option<crate::error::Error>>,
}

const WAITING: u8 = 0;
const DONE: u8 = 1;
const LEAD: u8 = 2;

/// Records per transaction at most; the rest wait for the next batch.
const MAX_BATCH: usize = 256;

impl SpendWriter {
    fn lock(&self) -> std::sync::MutexGuard<'_, WriterState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one call's spend; returns once it is committed.
    pub fn record(&self, pool: &super::Pool, rec: &SpendRecord) -> crate::error::Result<()> {
        use std::sync::atomic::Ordering::{Acquire, Release};
        let me = std::sync::Arc::new(Waiter {
            thread: std::thread::current(),
            state: std::sync::atomic::AtomicU8::new(WAITING),
            error: std::sync::Mutex::new(None),
        });
        {
            let mut st = self.lock();
            st.queue.push_back((me.clone(), rec.clone()));
            if st.writing {
                drop(st);
                loop {
                    match me.state.load(Acquire) {
                        DONE => {
                            let e = me.error.lock().unwrap_or_else(|p| p.into_inner()).take();
                            return e.map_or(Ok(()), Err);
                        }
                        LEAD => break,
                        // `park` may return spuriously; the state says whether it was meant.
                        _ => std::thread::park(),
                    }
                }
            } else {
                st.writing = true;
            }
        }
        // Leader: commit the waiting records (this caller's among them: the queue is in arrival
        // order and a new leader is always the first caller still waiting).
        let batch: Vec<(std::sync::Arc<Waiter>, SpendRecord)> = {
            let mut st = self.lock();
            let take = st.queue.len().min(MAX_BATCH);
            st.queue.drain(..take).collect()
        };
        let records: Vec<&SpendRecord> = batch.iter().map(|(_, r)| r).collect();
        // A panic while writing must not leave `writing` set (every later call would wait
        // forever): the batch's callers get an error instead.
        let results =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write_batch(pool, &records)))
                .unwrap_or_else(|_| {
                    let e = crate::error::Error::Internal("spend write panicked".into());
                    vec![Err(e); records.len()]
                });
        let mut mine = Ok(());
        for ((w, _), r) in batch.iter().zip(results) {
            if std::sync::Arc::ptr_eq(w, &me) {
                mine = r;
                continue;
            }
            if let Err(e) = r {
                *w.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
            w.state.store(DONE, Release);
            w.thread.unpark();
        }
        {
            let mut st = self.lock();
            match st.queue.front() {
                Some((next, _)) => {
                    next.state.store(LEAD, Release);
                    next.thread.unpark();
                }
                None => st.writing = false,
            }
        }
        mine
    }
}

/// Writes `batch` in one transaction; if that fails, each record in a transaction of its own
/// (one bad record must not cost the others). One result per record, in order.
fn write_batch(pool: &super::Pool, batch: &[&SpendRecord]) -> Vec<Result<(), crate::error::Error>> {
    let one = |recs: &[&SpendRecord]| -> crate::error::Result<()> {
        match pool {
            super::Pool::Sqlite(lite) => lite.write_hot(|tx| {
                let mut c: &Connection = tx;
                for r in recs {
                    record(&mut c, r)?;
                }
                Ok(())
            }),
            // Several instances commit spend at once here: rows are locked in one order.
            super::Pool::Postgres(pg) => {
                pg.write_if_up(|q| super::spend_order::record_all(q, recs))
            }
        }
    };
    match one(batch) {
        Ok(()) => vec![Ok(()); batch.len()],
        // The store is unreachable: one by one would only wait for it again, record by record.
        Err(e @ crate::error::Error::Unavailable(_)) => vec![Err(e); batch.len()],
        Err(_) => batch.iter().map(|r| one(std::slice::from_ref(r))).collect(),
    }
}

#[cfg(test)]
mod writer_tests {
    use super::*;

    fn rec(id: &str) -> SpendRecord {
        SpendRecord {
            request_id: id.into(),
            model: "m".into(),
            call_type: "acompletion".into(),
            prompt_tokens: 1,
            completion_tokens: 2,
            spend: 0.5,
            start_time: "2026-01-01T00:00:00.000Z".into(),
            end_time: "2026-01-01T00:00:01.000Z".into(),
            status: "success".into(),
            ..SpendRecord::default()
        }
    }

    #[test]
    fn concurrent_records_are_all_committed_and_a_bad_one_costs_only_itself() {
        let dir = tempfile::tempdir().expect("tmp");
        let pool: &'static crate::db::Pool = Box::leak(Box::new(
            crate::db::Pool::open(&dir.path().join("x.db"), 4, Default::default()).expect("pool"),
        ));
        let w: &'static SpendWriter = Box::leak(Box::default());
        w.record(pool, &rec("before-start"))
            .expect("alone: written by the caller itself");
        // 64 callers, 20 records each: leadership passes from caller to caller many times.
        let handles: Vec<_> = (0..64)
            .map(|i| {
                std::thread::spawn(move || {
                    (0..20).try_for_each(|j| w.record(pool, &rec(&format!("r{i}-{j}"))))
                })
            })
            .collect();
        for h in handles {
            h.join().expect("join").expect("recorded");
        }
        // A duplicate request id fails alone.
        let dup = std::thread::spawn(move || w.record(pool, &rec("r1-1")));
        let ok = std::thread::spawn(move || w.record(pool, &rec("after")));
        assert!(dup.join().expect("join").is_err());
        ok.join()
            .expect("join")
            .expect("the other record of the batch");
        let n: i64 = pool
            .lite()
            .expect("sqlite")
            .read(|c| Ok(c.query_row("SELECT count(*) FROM spend_logs", [], |r| r.get(0))?))
            .expect("count");
        assert_eq!(n, 1 + 64 * 20 + 1);
    }
}
