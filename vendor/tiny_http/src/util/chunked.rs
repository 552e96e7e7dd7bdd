//! litegate patch: a strict, bounded decoder for `Transfer-Encoding: chunked` request bodies
//! (replaces `chunked_transfer::Decoder` for requests, which grew a `Vec` without bound on a
//! chunk-size line that never ends, accepted a size line ended by a bare CR, and left the
//! connection mid-body when the handler stopped reading). Every line it reads is bounded
//! (`limits::MAX_CHUNK_LINE`, trailers `limits::MAX_TRAILERS`); a malformed body, or one the
//! handler did not read to its end, closes the connection (framing can no longer be trusted).

use std::io::{Error, ErrorKind, Read, Result};
use std::sync::Arc;

use crate::limits::{ConnState, MAX_CHUNK_LINE, MAX_TRAILERS};

pub struct ChunkedReader<R: Read> {
    source: R,
    /// Bytes left in the current chunk; `None` before a size line.
    left: Option<u64>,
    done: bool,
    state: Option<Arc<ConnState>>,
}

fn bad(what: &str) -> Error {
    Error::new(ErrorKind::InvalidData, format!("malformed chunked body: {what}"))
}

impl<R: Read> ChunkedReader<R> {
    pub fn new(source: R, state: Option<Arc<ConnState>>) -> ChunkedReader<R> {
        ChunkedReader {
            source,
            left: None,
            done: false,
            state,
        }
    }

    fn byte(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        loop {
            match self.source.read(&mut b) {
                Ok(0) => return Err(Error::new(ErrorKind::UnexpectedEof, "body ended early")),
                Ok(_) => return Ok(b[0]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// One line up to CRLF (not kept), at most `MAX_CHUNK_LINE` bytes; calls `each` per byte.
    /// Returns its length.
    fn line(&mut self, mut each: impl FnMut(u8, usize) -> Result<()>) -> Result<usize> {
        let mut n = 0;
        loop {
            let b = self.byte()?;
            if b == b'\r' {
                return match self.byte()? {
                    b'\n' => Ok(n),
                    _ => Err(bad("CR without LF")),
                };
            }
            if b == b'\n' {
                return Err(bad("bare LF"));
            }
            if n >= MAX_CHUNK_LINE {
                return Err(bad("line too long"));
            }
            each(b, n)?;
            n += 1;
        }
    }

    fn size_line(&mut self) -> Result<u64> {
        let mut size: u64 = 0;
        let mut digits = 0usize;
        let mut in_ext = false;
        self.line(|b, _| {
            if in_ext {
                // Extensions are ignored, but stay printable (HTAB allowed).
                if b != b'\t' && (b < 0x20 || b == 0x7f) {
                    return Err(bad("control character in chunk extension"));
                }
                return Ok(());
            }
            match (b as char).to_digit(16) {
                Some(d) => {
                    digits += 1;
                    size = size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(d)))
                        .ok_or_else(|| bad("chunk size overflows"))?;
                    Ok(())
                }
                None if b == b';' && digits > 0 => {
                    in_ext = true;
                    Ok(())
                }
                None => Err(bad("invalid chunk size")),
            }
        })?;
        if digits == 0 {
            return Err(bad("missing chunk size"));
        }
        Ok(size)
    }

    fn trailers(&mut self) -> Result<()> {
        let mut total = 0usize;
        loop {
            let n = self.line(|b, _| {
                if b != b'\t' && (b < 0x20 || b == 0x7f) {
                    return Err(bad("control character in trailer"));
                }
                Ok(())
            })?;
            if n == 0 {
                return Ok(());
            }
            total += n + 2;
            if total > MAX_TRAILERS {
                return Err(bad("trailers too large"));
            }
        }
    }

    fn read_inner(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let left = match self.left {
            Some(n) => n,
            None => {
                let n = self.size_line()?;
                if n == 0 {
                    self.trailers()?;
                    self.done = true;
                    return Ok(0);
                }
                n
            }
        };
        let want = (buf.len() as u64).min(left) as usize;
        let got = self.source.read(&mut buf[..want])?;
        if got == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof, "body ended early"));
        }
        let left = left - got as u64;
        if left == 0 {
            if self.byte()? != b'\r' || self.byte()? != b'\n' {
                return Err(bad("chunk not followed by CRLF"));
            }
            self.left = None;
        } else {
            self.left = Some(left);
        }
        Ok(got)
    }
}

impl<R: Read> Read for ChunkedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let r = self.read_inner(buf);
        if r.is_err() {
            // Where the next request would start is unknown now.
            if let Some(s) = &self.state {
                s.close();
            }
        }
        r
    }
}

impl<R: Read> Drop for ChunkedReader<R> {
    fn drop(&mut self) {
        if !self.done {
            if let Some(s) = &self.state {
                s.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ChunkedReader;
    use std::io::Read;

    fn decode(input: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        ChunkedReader::new(input, None).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let b = decode(b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: v\r\n\r\n").unwrap();
        assert_eq!(b, b"hello world");
    }

    #[test]
    fn refuses_bad_framing() {
        for bad in [
            &b"5\nhello\r\n0\r\n\r\n"[..],             // bare LF
            b"5\rhello\r\n0\r\n\r\n",                  // bare CR
            b"x\r\nhello\r\n0\r\n\r\n",                // not hex
            b"-5\r\nhello\r\n0\r\n\r\n",               // sign
            b"+5\r\nhello\r\n0\r\n\r\n",               // sign
            b" 5\r\nhello\r\n0\r\n\r\n",               // space
            b"\r\nhello\r\n0\r\n\r\n",                 // empty size
            b"10000000000000000\r\n",                  // overflows u64
            b"5\r\nhelloXX0\r\n\r\n",                  // no CRLF after data
            b"5\r\nhel",                               // ends early
            b"0\r\nT: v\r\n",                          // trailers never end
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let long = [b'0'; 2000];
        assert!(decode(&long).is_err(), "an endless size line is refused");
    }
}
