//! The log's batching writer (issue 17): access-log lines are gathered in memory and written to
//! stderr in batches, instead of one `write` system call per request.
//!
//! env_logger formats each record and hands the bytes to a [`Batch`] (its `Target::Pipe`). The
//! bytes are appended to a buffer under a mutex; the first line into an empty buffer wakes the
//! writer thread, which waits [`WINDOW`] for more lines and then writes them all with one
//! `write_all`. A buffer past [`HIGH_WATER`] is written at once by the thread that filled it, so
//! a burst never holds much memory. [`flush`] writes what is buffered now: the logger calls it
//! after every record that is not an access-log line (warnings and errors are never delayed,
//! and lines keep their order), and `main` calls it when the process ends cleanly.
//!
//! The price, documented in the README: a crash (`kill -9`, power loss) may lose the access-log
//! lines of the last [`WINDOW`]. Spend is not a log — it is committed before the answer.
//! Idle, the writer thread sleeps on a condition variable: no periodic wake-ups.
//!
//! An access-log line (one per request) may skip env_logger's formatter: [`access_line`] writes
//! it straight into the buffer in env_logger's default format, byte for byte (`main` uses it
//! when that format is the one in force), without the formatter's intermediate buffers and its
//! copy through the colour stripper (~8,000 instructions per request, issue 17).

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// How long the writer thread gathers lines after the first one before writing them.
pub const WINDOW: Duration = Duration::from_millis(5);
/// A buffer this large is written at once by the thread that filled it.
pub const HIGH_WATER: usize = 64 * 1024;

struct Shared {
    buf: Mutex<Vec<u8>>,
    wake: Condvar,
    /// The destination; held while a batch is written so batches never interleave or swap.
    /// With it, the spare buffer the batch is swapped into: the buffer lines go into keeps its
    /// capacity from batch to batch (issue 17: taking it left an empty `Vec`, regrown by
    /// doubling after every batch).
    out: Mutex<(Box<dyn Write + Send>, Vec<u8>)>,
}

impl Shared {
    /// Writes everything buffered so far, in order.
    fn drain(&self) {
        let mut g = match self.out.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let (out, batch) = &mut *g;
        {
            let mut b = match self.buf.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if b.is_empty() {
                return;
            }
            batch.clear();
            std::mem::swap(&mut *b, batch);
        }
        // A log that cannot be written (stderr closed) is dropped, as env_logger does.
        let _ = out.write_all(batch);
        let _ = out.flush();
        // Kept for the next swap, unless a burst made it large.
        if batch.capacity() > 2 * HIGH_WATER {
            *batch = Vec::with_capacity(HIGH_WATER);
        } else {
            batch.clear();
        }
    }
}

impl Shared {
    /// Appends to the buffer with `put`; wakes the writer for the first bytes into an empty
    /// buffer, drains at once past the high-water mark.
    fn append(&self, put: impl FnOnce(&mut Vec<u8>)) {
        let (was_empty, full) = {
            let mut b = match self.buf.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let was_empty = b.is_empty();
            put(&mut b);
            (was_empty, b.len() >= HIGH_WATER)
        };
        if full {
            self.drain();
        } else if was_empty {
            self.wake.notify_one();
        }
    }
}

/// The env_logger pipe: appends each formatted record to the shared buffer.
pub struct Batch(Arc<Shared>);

impl Write for Batch {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.append(|b| b.extend_from_slice(bytes));
        Ok(bytes.len())
    }

    /// env_logger flushes after every record: a no-op here (the batch is the point).
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The process's batching writer to `out` (stderr in `main`), and its writer thread. Called
/// once; a second call returns a writer to the first destination.
pub fn install(out: Box<dyn Write + Send>) -> Batch {
    let mut fresh = false;
    let shared = SHARED.get_or_init(|| {
        fresh = true;
        Arc::new(Shared {
            buf: Mutex::new(Vec::with_capacity(HIGH_WATER)),
            wake: Condvar::new(),
            out: Mutex::new((out, Vec::with_capacity(HIGH_WATER))),
        })
    });
    if fresh {
        let s = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .stack_size(64 * 1024)
            .spawn(move || writer(&s));
        if spawned.is_err() {
            // No thread: every record is written by `flush` right after it (see `log`).
            NO_THREAD.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    Batch(Arc::clone(shared))
}

static NO_THREAD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether records must be flushed one by one (the writer thread could not start).
pub fn unbatched() -> bool {
    NO_THREAD.load(std::sync::atomic::Ordering::Relaxed)
}

fn writer(s: &Shared) {
    loop {
        {
            let mut b = match s.buf.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            while b.is_empty() {
                b = match s.wake.wait(b) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
            }
        }
        std::thread::sleep(WINDOW);
        s.drain();
    }
}

/// Appends `record` to the batch as env_logger's default format prints it (`[` the time in
/// seconds, the level padded to 5, the target `] ` the message), formatted straight into the
/// buffer. `false` (nothing written) before `install` or for a clock outside years 0..=9999:
/// the caller then logs through env_logger.
pub fn access_line(record: &log::Record<'_>) -> bool {
    let (Some(shared), Some(ts)) = (SHARED.get(), stamp(crate::util::now_ms())) else {
        return false;
    };
    shared.append(|b| put_line(b, &ts, record));
    true
}

/// `util::iso_bytes(ms)` for the line's stamp, of which the line prints the seconds only:
/// computed once per second per thread (issue 17: the calendar arithmetic ran per line).
fn stamp(ms: i64) -> Option<[u8; 24]> {
    thread_local! {
        static LAST: std::cell::Cell<(i64, Option<[u8; 24]>)> =
            const { std::cell::Cell::new((i64::MIN, None)) };
    }
    let secs = ms.div_euclid(1000);
    LAST.with(|c| match c.get() {
        (s, Some(b)) if s == secs => Some(b),
        _ => {
            let b = crate::util::iso_bytes(ms);
            c.set((secs, b));
            b
        }
    })
}

/// env_logger's default line for `record` at `ts` (`util::iso_bytes`: cut to seconds, as
/// env_logger's `{:.0}` truncates).
fn put_line(b: &mut Vec<u8>, ts: &[u8; 24], record: &log::Record<'_>) {
    b.push(b'[');
    b.extend_from_slice(&ts[..19]);
    b.extend_from_slice(b"Z ");
    let level = record.level().as_str();
    b.extend_from_slice(level.as_bytes());
    b.extend_from_slice(&b"      "[..6 - level.len().min(5)]);
    b.extend_from_slice(record.target().as_bytes());
    b.extend_from_slice(b"] ");
    // Writing into a Vec fails only if a Display impl fails; env_logger drops such a record's
    // rest too.
    let start = b.len();
    let _ = b.write_fmt(*record.args());
    // env_logger indents a message's further lines by 4 spaces.
    if b[start..].contains(&b'\n') {
        let message = b.split_off(start);
        for (i, line) in message.split(|&c| c == b'\n').enumerate() {
            if i > 0 {
                b.extend_from_slice(b"\n    ");
            }
            b.extend_from_slice(line);
        }
    }
    b.push(b'\n');
}

/// Writes what is buffered now (no-op before `install`).
pub fn flush() {
    if let Some(s) = SHARED.get() {
        s.drain();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached stamp prints the seconds `iso_bytes` prints, whatever order the clock
    /// readings come in (another thread's, a clock stepped back).
    #[test]
    fn the_cached_stamp_has_the_seconds_of_the_clock() {
        use proptest::prelude::*;
        proptest!(|(readings in proptest::collection::vec(
            prop_oneof![0i64..4_000, 1_700_000_000_000i64..1_700_000_004_000, -2_000i64..0],
            1..40,
        ))| {
            for ms in readings {
                let want = crate::util::iso_bytes(ms).map(|b| b[..19].to_vec());
                prop_assert_eq!(stamp(ms).map(|b| b[..19].to_vec()), want);
            }
        });
    }

    /// A destination the test can read, counting the writes it received.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let mut g = self.0.lock().unwrap();
            g.0.extend_from_slice(b);
            g.1 += 1;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The direct access line is env_logger's default line, byte for byte, at every level.
    #[test]
    fn direct_lines_are_env_loggers_default_format() {
        let sink = Sink::default();
        let logger = env_logger::Builder::new()
            .filter_level(log::LevelFilter::Trace)
            .write_style(env_logger::WriteStyle::Never)
            .target(env_logger::Target::Pipe(Box::new(sink.clone())))
            .build();
        let levels = [
            log::Level::Error,
            log::Level::Warn,
            log::Level::Info,
            log::Level::Debug,
            log::Level::Trace,
        ];
        for (level, key) in levels
            .into_iter()
            .zip(["sk-...7777", "a\nb\n", "-", "", "\n"])
        {
            let (status, ms) = (200, 3.25_f64);
            let args = format_args!("POST /v1/chat/completions {status} {ms:.1}ms key={key}");
            let record = log::Record::builder()
                .args(args)
                .level(level)
                .target(crate::ACCESS_LOG)
                .build();
            // Same second before and after, or try again.
            loop {
                sink.0.lock().unwrap().0.clear();
                let t0 = crate::util::now_ms();
                log::Log::log(&logger, &record);
                let t1 = crate::util::now_ms();
                if t0 / 1000 != t1 / 1000 {
                    continue;
                }
                let mut mine = Vec::new();
                put_line(&mut mine, &crate::util::iso_bytes(t0).unwrap(), &record);
                let theirs = sink.0.lock().unwrap().0.clone();
                assert_eq!(
                    String::from_utf8(mine).unwrap(),
                    String::from_utf8(theirs).unwrap()
                );
                break;
            }
        }
    }

    // One test: `install` is once per process.
    #[test]
    fn lines_arrive_in_order_in_few_writes_and_flush_writes_the_rest() {
        let sink = Sink::default();
        let mut w = install(Box::new(sink.clone()));
        for i in 0..1000 {
            w.write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        // Within the window plus scheduling slack, the writer thread wrote them all.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let n = sink.0.lock().unwrap().0.len();
            if n == (0..1000)
                .map(|i| format!("line {i}\n").len())
                .sum::<usize>()
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "lines never written");
            std::thread::sleep(Duration::from_millis(2));
        }
        let (text, writes) = sink.0.lock().unwrap().clone();
        let text = String::from_utf8(text).unwrap();
        let want: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, want, "every line, in order");
        assert!(writes < 100, "{writes} writes for 1000 lines: not batched");

        // flush() writes at once, without waiting for the window.
        w.write_all(b"last\n").unwrap();
        flush();
        assert!(String::from_utf8(sink.0.lock().unwrap().0.clone())
            .unwrap()
            .ends_with("line 999\nlast\n"));
        // Past the high-water mark the writing thread drains by itself.
        let big = vec![b'x'; HIGH_WATER];
        let before = sink.0.lock().unwrap().0.len();
        w.write_all(&big).unwrap();
        assert!(sink.0.lock().unwrap().0.len() >= before + HIGH_WATER);
    }
}
