//! The body of a fast-path answer (`super`): read by its content length, as chunks (a
//! strict decoder: every size line and the trailers are bounded, a malformed one is an
//! error), or to the connection's close; every read within the call's deadline. When the
//! body has been read to its end, nothing more arrived and the answer allowed it, the socket
//! goes back to its host's idle list; otherwise (half read, dropped, malformed) it is closed.

use super::super::pool::{IdlePool, Plain};
use super::{read_some, MAX_HEAD};
use std::cell::Cell;
use std::io::{self, Read};
use std::sync::Arc;
use std::time::Instant;

/// A chunk-size line (with any extension) may be at most this long.
const MAX_CHUNK_LINE: usize = 1024;
/// The trailers after the last chunk may take at most this much.
const MAX_TRAILERS: usize = 8 * 1024;

thread_local! {
    /// The read buffer of this thread's last finished answer.
    static READ_BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A read buffer of [`MAX_HEAD`] bytes (this thread's last one when there is one).
pub(super) fn take_buf() -> Vec<u8> {
    let mut b = READ_BUF.with(Cell::take);
    if b.len() != MAX_HEAD {
        b = vec![0; MAX_HEAD];
    }
    b
}

/// Keeps `b` for this thread's next answer.
pub(super) fn give_buf(b: Vec<u8>) {
    if b.len() == MAX_HEAD {
        READ_BUF.with(|c| c.set(b));
    }
}

/// How a body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// This many bytes are left.
    Length(u64),
    /// Chunked, in this state.
    Chunked(Chunk),
    /// Until the upstream closes the connection.
    Close,
    /// Read to its end.
    Done,
}

impl Framing {
    pub fn chunked() -> Framing {
        Framing::Chunked(Chunk::Size)
    }
}

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// A size line comes next.
    Size,
    /// This many bytes of the current chunk are left.
    Data(u64),
    /// The CRLF after a chunk's data comes next.
    DataEnd,
    /// The trailers (after the last chunk) come next; this many bytes of them were read.
    Trailers(usize),
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("invalid HTTP answer: malformed chunked body: {what}"),
    )
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the upstream closed the connection before the end of its answer",
    )
}

pub struct FastBody {
    /// `None` once the body is done (back in the pool or closed).
    conn: Option<Plain>,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    framing: Framing,
    deadline: Instant,
    /// Where the socket goes once the body is read to its end (`None`: it is closed).
    home: Option<(Arc<IdlePool>, Box<str>)>,
}

impl FastBody {
    pub(super) fn new(
        conn: Plain,
        buf: Vec<u8>,
        pos: usize,
        end: usize,
        framing: Framing,
        deadline: Instant,
        home: Option<(Arc<IdlePool>, Box<str>)>,
    ) -> FastBody {
        let mut b = FastBody {
            conn: Some(conn),
            buf,
            pos,
            end,
            framing,
            deadline,
            home,
        };
        if b.framing == Framing::Length(0) {
            b.finish();
        }
        b
    }

    /// The bytes the body will take, as far as known: its length, or what is buffered.
    pub(in crate::upstream) fn size_hint(&self) -> u64 {
        match self.framing {
            Framing::Length(l) => l,
            _ => (self.end - self.pos) as u64,
        }
    }

    /// The body has been read to its end: the socket goes home if nothing more arrived.
    fn finish(&mut self) {
        self.framing = Framing::Done;
        let conn = self.conn.take();
        if let (Some(conn), Some((pool, authority)), true) =
            (conn, self.home.take(), self.pos == self.end)
        {
            pool.put_plain(&authority, conn);
        }
    }

    /// Reads more into the buffer (after compacting it); `Ok(false)` at the connection's end.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        let n = read_some(conn, &mut self.buf[self.end..], self.deadline)?;
        self.end += n;
        Ok(n > 0)
    }

    /// Copies buffered bytes (at most `max`) to `out`, or reads them from the socket straight
    /// into `out` when none are buffered.
    fn data(&mut self, out: &mut [u8], max: u64) -> io::Result<usize> {
        let want = out.len().min(usize::try_from(max).unwrap_or(usize::MAX));
        if self.pos < self.end {
            let n = want.min(self.end - self.pos);
            out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(0);
        };
        read_some(conn, &mut out[..want], self.deadline)
    }

    /// The next line (without its line end), at most `max` bytes; its end is consumed.
    fn line(&mut self, max: usize) -> io::Result<std::ops::Range<usize>> {
        loop {
            if let Some(p) = self.buf[self.pos..self.end]
                .iter()
                .position(|&b| b == b'\n')
            {
                let start = self.pos;
                let mut stop = start + p;
                self.pos = stop + 1;
                if stop > start && self.buf[stop - 1] == b'\r' {
                    stop -= 1;
                }
                if stop - start > max {
                    return Err(bad("a line too long"));
                }
                return Ok(start..stop);
            }
            if self.end - self.pos > max + 1 {
                return Err(bad("a line too long"));
            }
            if !self.fill()? {
                return Err(eof());
            }
        }
    }

    /// The next bytes of a chunked body (`Ok(0)` once its end, trailers included, is read).
    fn read_chunked(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let Framing::Chunked(state) = self.framing else {
                return Ok(0);
            };
            match state {
                Chunk::Size => {
                    let line = self.line(MAX_CHUNK_LINE)?;
                    let hex = self.buf[line]
                        .split(|&b| b == b';')
                        .next()
                        .unwrap_or_default()
                        .trim_ascii();
                    if hex.is_empty() || hex.len() > 15 || !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(bad("a bad chunk size"));
                    }
                    let size = hex.iter().fold(0u64, |n, &b| {
                        n * 16 + u64::from((b as char).to_digit(16).unwrap_or(0))
                    });
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailers(0)
                    } else {
                        Chunk::Data(size)
                    });
                }
                Chunk::Data(left) => {
                    let n = self.data(out, left)?;
                    if n == 0 {
                        return Err(eof());
                    }
                    let left = left - n as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(n);
                }
                Chunk::DataEnd => {
                    if !self.line(0)?.is_empty() {
                        return Err(bad("a chunk longer than its size"));
                    }
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Chunk::Trailers(seen) => {
                    let line = self.line(MAX_TRAILERS)?;
                    let seen = seen + line.len() + 2;
                    if seen > MAX_TRAILERS {
                        return Err(bad("trailers too long"));
                    }
                    if line.is_empty() {
                        self.finish();
                        return Ok(0);
                    }
                    self.framing = Framing::Chunked(Chunk::Trailers(seen));
                }
            }
        }
    }
}

impl Read for FastBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        match self.framing {
            Framing::Done => Ok(0),
            Framing::Length(left) => {
                let n = self.data(out, left)?;
                if n == 0 {
                    return Err(eof());
                }
                let left = left - n as u64;
                self.framing = Framing::Length(left);
                if left == 0 {
                    self.finish();
                }
                Ok(n)
            }
            Framing::Close => {
                let n = self.data(out, u64::MAX)?;
                if n == 0 {
                    self.home = None;
                    self.finish();
                }
                Ok(n)
            }
            Framing::Chunked(_) => self.read_chunked(out),
        }
    }
}

impl Drop for FastBody {
    fn drop(&mut self) {
        // Not read to its end: the socket closes with `conn`.
        give_buf(std::mem::take(&mut self.buf));
    }
}
