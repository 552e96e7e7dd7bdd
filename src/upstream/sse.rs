//! Reading an upstream's server-sent events (issue 11): one line at a time, through a cap, so
//! a line without end costs at most the cap, not all the memory there is.

use std::io::{BufRead, Read};

/// One line of an upstream event stream (one `data:` event: a chunk of the answer) may be at
/// most this long; a longer one ends the stream with an error event.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

/// One line of an event stream, read through a cap.
pub enum Line {
    /// A line (with its `\n`, unless the stream ended without one) is in the buffer.
    Got,
    Eof,
    /// The line is longer than the cap; what was read of it is dropped.
    TooLong,
}

/// Reads one line into `line` (cleared first), never holding more than `cap` bytes of it (and
/// its newline): `BufRead::read_line` would grow without end on a line without end. std's
/// `read_until` does the work (its newline search is the optimised one).
pub fn read_line_capped<R: BufRead>(
    r: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<Line> {
    line.clear();
    let n = r.take(cap as u64 + 1).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if line.last() != Some(&b'\n') && line.len() > cap {
        line.clear();
        return Ok(Line::TooLong);
    }
    Ok(Line::Got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_through_the_cap() {
        let mut r = std::io::BufReader::with_capacity(4, &b"ab\ncdefgh\nij"[..]);
        let mut line = Vec::new();
        assert!(matches!(
            read_line_capped(&mut r, &mut line, 5),
            Ok(Line::Got)
        ));
        assert_eq!(line, b"ab\n");
        assert!(matches!(
            read_line_capped(&mut r, &mut line, 5),
            Ok(Line::TooLong)
        ));
        assert!(line.is_empty());
        let mut r = std::io::BufReader::with_capacity(4, &b"abcdefgh\nij"[..]);
        assert!(matches!(
            read_line_capped(&mut r, &mut line, 9),
            Ok(Line::Got)
        ));
        assert_eq!(line, b"abcdefgh\n");
        assert!(matches!(
            read_line_capped(&mut r, &mut line, 9),
            Ok(Line::Got)
        ));
        assert_eq!(line, b"ij");
        assert!(matches!(
            read_line_capped(&mut r, &mut line, 9),
            Ok(Line::Eof)
        ));
    }
}
