//! litegate patch (issue 17): the connection's read and write halves are handed from request
//! to request in order, through one baton per half that lives as long as the connection.
//!
//! Upstream created two `std::sync::mpsc` channels per request (one per half) and sent the
//! buffered reader through one of them on every hand-over: a channel allocation, its first
//! block (sized for 31 readers), and their frees, on every request — some 17k instructions per
//! request at c=1. Here a hand-over is a lock of an uncontended mutex, and a condition
//! variable is notified only when someone waits (the `recv()` queue path with pipelined
//! requests; on litegate's handler path nobody ever waits: a request is done before the next
//! head is read). The order guarantees are upstream's: request N+1's head is read only after
//! request N's body reader is gone, and response N+1 is written only after every earlier
//! response's writer is gone.

use std::io::Result as IoResult;
use std::io::{Read, Write};

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Locks, ignoring poisoning (a panic while holding the lock leaves the reader or writer as
/// it was; the connection's own errors then end it).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The read half between two holders: empty while a request's body reader has it.
struct ReadBaton<R> {
    slot: Mutex<(Option<R>, bool)>,
    cv: Condvar,
}

impl<R> ReadBaton<R> {
    fn put(&self, reader: R) {
        let mut g = lock(&self.slot);
        g.0 = Some(reader);
        let waiting = g.1;
        drop(g);
        if waiting {
            self.cv.notify_all();
        }
    }

    fn take(&self) -> R {
        let mut g = lock(&self.slot);
        loop {
            if let Some(r) = g.0.take() {
                g.1 = false;
                return r;
            }
            g.1 = true;
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

pub struct SequentialReaderBuilder<R>
where
    R: Read + Send,
{
    baton: Arc<ReadBaton<R>>,
    first: bool,
}

/// A holder of the read half: it has it (`Mine`) or waits for the previous holder to drop
/// (`Waiting`). On drop it hands the half on to the next holder.
pub struct SequentialReader<R>
where
    R: Read + Send,
{
    inner: Option<R>,
    baton: Arc<ReadBaton<R>>,
}

struct WriteState<W> {
    writer: W,
    /// the ticket allowed to write
    turn: u64,
    /// the next ticket to hand out
    issued: u64,
    /// writers dropped before their turn (pipelined responses answered out of order)
    finished_early: Vec<u64>,
    /// threads waiting for their turn
    waiters: usize,
}

struct WriteBaton<W> {
    state: Mutex<WriteState<W>>,
    cv: Condvar,
}

pub struct SequentialWriterBuilder<W>
where
    W: Write + Send,
{
    baton: Arc<WriteBaton<W>>,
}

pub struct SequentialWriter<W>
where
    W: Write + Send,
{
    baton: Arc<WriteBaton<W>>,
    ticket: u64,
}

impl<R: Read + Send> SequentialReaderBuilder<R> {
    pub fn new(reader: R) -> SequentialReaderBuilder<R> {
        SequentialReaderBuilder {
            baton: Arc::new(ReadBaton {
                slot: Mutex::new((Some(reader), false)),
                cv: Condvar::new(),
            }),
            first: true,
        }
    }
}

impl<W: Write + Send> SequentialWriterBuilder<W> {
    pub fn new(writer: W) -> SequentialWriterBuilder<W> {
        SequentialWriterBuilder {
            baton: Arc::new(WriteBaton {
                state: Mutex::new(WriteState {
                    writer,
                    turn: 0,
                    issued: 0,
                    finished_early: Vec::new(),
                    waiters: 0,
                }),
                cv: Condvar::new(),
            }),
        }
    }
}

impl<R: Read + Send> Iterator for SequentialReaderBuilder<R> {
    type Item = SequentialReader<R>;

    /// The next holder of the read half. Holders are created one at a time and each waits
    /// for the previous one: the first takes the half now, the others when it is handed on.
    fn next(&mut self) -> Option<SequentialReader<R>> {
        let inner = if self.first {
            self.first = false;
            lock(&self.baton.slot).0.take()
        } else {
            None
        };
        Some(SequentialReader {
            inner,
            baton: self.baton.clone(),
        })
    }
}

impl<W: Write + Send> SequentialWriterBuilder<W> {
    /// litegate patch: true while a response handed out is still being written (its writer
    /// not yet dropped).
    pub fn previous_in_progress(&mut self) -> bool {
        let s = lock(&self.baton.state);
        s.turn < s.issued
    }
}

impl<W: Write + Send> Iterator for SequentialWriterBuilder<W> {
    type Item = SequentialWriter<W>;
    fn next(&mut self) -> Option<SequentialWriter<W>> {
        let ticket = {
            let mut s = lock(&self.baton.state);
            s.issued += 1;
            s.issued - 1
        };
        Some(SequentialWriter {
            baton: self.baton.clone(),
            ticket,
        })
    }
}

impl<R: Read + Send> SequentialReader<R> {
    fn mine(&mut self) -> &mut R {
        if self.inner.is_none() {
            self.inner = Some(self.baton.take());
        }
        match &mut self.inner {
            Some(r) => r,
            None => unreachable!(),
        }
    }
}

impl<R: Read + Send> Read for SequentialReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        self.mine().read(buf)
    }
}

/// litegate patch: the head parser reads straight from the connection's buffer.
impl<R: std::io::BufRead + Send> SequentialReader<R> {
    /// The underlying reader once it is this reader's turn (waits for the previous one).
    pub fn get_mut(&mut self) -> &mut R {
        self.mine()
    }
}

impl<W: Write + Send> SequentialWriter<W> {
    /// Runs `f` on the writer once every earlier writer is gone.
    fn with_turn<T>(&mut self, f: impl FnOnce(&mut W) -> T) -> T {
        let mut s = lock(&self.baton.state);
        while s.turn != self.ticket {
            s.waiters += 1;
            s = self.baton.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            s.waiters -= 1;
        }
        f(&mut s.writer)
    }
}

impl<W: Write + Send> Write for SequentialWriter<W> {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.with_turn(|w| w.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> IoResult<()> {
        self.with_turn(|w| w.write_all(buf))
    }

    fn flush(&mut self) -> IoResult<()> {
        self.with_turn(|w| w.flush())
    }
}

impl<R> Drop for SequentialReader<R>
where
    R: Read + Send,
{
    fn drop(&mut self) {
        // A holder dropped before its turn passes the half on once it gets it (the next
        // holder waits on the same baton, so there is nothing to do: the half goes straight
        // to whoever takes it next).
        if let Some(reader) = self.inner.take() {
            self.baton.put(reader);
        }
    }
}

impl<W> Drop for SequentialWriter<W>
where
    W: Write + Send,
{
    fn drop(&mut self) {
        let mut s = lock(&self.baton.state);
        if s.turn != self.ticket {
            s.finished_early.push(self.ticket);
            return;
        }
        s.turn += 1;
        while let Some(i) = s.finished_early.iter().position(|&t| t == s.turn) {
            s.finished_early.swap_remove(i);
            s.turn += 1;
        }
        let waiting = s.waiters > 0;
        drop(s);
        if waiting {
            self.baton.cv.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Readers hand the stream on in order: the second reads where the first stopped, even
    /// when it is asked from another thread before the first is dropped.
    #[test]
    fn readers_hand_on_in_order() {
        let mut b = SequentialReaderBuilder::new(Cursor::new(b"abcdef".to_vec()));
        let mut first = b.next().unwrap();
        let mut second = b.next().unwrap();
        let t = std::thread::spawn(move || {
            let mut s = [0u8; 3];
            second.read_exact(&mut s).unwrap();
            s
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut f = [0u8; 3];
        first.read_exact(&mut f).unwrap();
        assert_eq!(&f, b"abc");
        drop(first);
        assert_eq!(&t.join().unwrap(), b"def");
    }

    /// Responses leave in request order whatever order they are written in, and
    /// `previous_in_progress` tells whether one is still open.
    #[test]
    fn writers_write_in_turn() {
        let mut b = SequentialWriterBuilder::new(Vec::new());
        assert!(!b.previous_in_progress());
        let mut w0 = b.next().unwrap();
        let w1 = b.next().unwrap();
        let mut w2 = b.next().unwrap();
        assert!(b.previous_in_progress());
        let t = std::thread::spawn(move || w2.write_all(b"2").unwrap());
        drop(w1); // finished before its turn: w2 still waits for w0
        std::thread::sleep(std::time::Duration::from_millis(20));
        w0.write_all(b"0").unwrap();
        drop(w0);
        t.join().unwrap();
        assert!(!b.previous_in_progress());
        let out = lock(&b.baton.state).writer.clone();
        assert_eq!(out, b"02");
    }
}
