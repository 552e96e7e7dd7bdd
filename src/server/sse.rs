//! Server-sent events on the wire (issue 17): a stream's head and its chunks in HTTP/1.1
//! chunked framing, one write per chunk the body emits. What the chunks say is the
//! `StreamBody`'s (`call::relay`, `call::mock`, ...); the connection is `server.rs`'s.

use crate::http::StreamBody;

/// Writes a stream onto `w` with one write per chunk the body emits (issue 17). The head
/// leaves with the first chunk (or with the end of a stream that emitted none): the head and
/// a separate first event were two writes and two wake-ups of the client, for a head that
/// tells the client nothing before the first event. Each chunk is framed in one reused
/// buffer (size line, data and CRLF written one by one into the connection's 1 KiB buffer
/// took up to three writes), and `[DONE]` takes the chunked terminator with it.
pub(super) fn write(
    w: &mut dyn std::io::Write,
    body: Box<dyn StreamBody>,
    extra: &[(String, String)],
) {
    let mut frame: Vec<u8> = Vec::with_capacity(1024);
    frame.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\
          Transfer-Encoding: chunked\r\n",
    );
    for (k, v) in extra {
        if !k.contains(['\r', '\n']) && !v.contains(['\r', '\n']) {
            frame.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
    }
    frame.extend_from_slice(b"\r\n");
    // `frame` holds the head until the first chunk goes out with it.
    let mut head_sent = false;
    let mut alive = true;
    let mut ended = false;
    let mut emit = |chunk: &[u8]| -> std::io::Result<()> {
        if !alive || ended {
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "client gone",
            ));
        }
        if chunk.is_empty() {
            return Ok(());
        }
        if head_sent {
            frame.clear();
        }
        frame_chunk(&mut frame, chunk);
        // `[DONE]` ends an OpenAI stream (API.md §5): the chunked terminator goes with it.
        ended = chunk.ends_with(DONE_EVENT);
        if ended {
            frame.extend_from_slice(LAST_CHUNK);
        }
        head_sent = true;
        let r = w.write_all(&frame).and_then(|_| w.flush());
        if r.is_err() {
            alive = false;
        }
        r
    };
    body.pump(&mut emit);
    if alive && !ended {
        if head_sent {
            frame.clear();
        }
        frame.extend_from_slice(LAST_CHUNK);
        let _ = w.write_all(&frame).and_then(|_| w.flush());
    }
}

/// The last event of an OpenAI stream.
const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";
/// The chunked encoding's terminator: a zero-length chunk, no trailers.
const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends `chunk` in HTTP/1.1 chunked framing (size line, data, CRLF) to `out`.
fn frame_chunk(out: &mut Vec<u8>, chunk: &[u8]) {
    use std::io::Write;
    out.reserve(chunk.len() + 24);
    let _ = write!(out, "{:x}\r\n", chunk.len());
    out.extend_from_slice(chunk);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A `Write` that records every write it is given.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);
    impl std::io::Write for Writes {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.push(b.to_vec());
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A stream body emitting the given chunks; records what each emit returned.
    struct Chunks(Vec<Vec<u8>>, Arc<std::sync::Mutex<Vec<bool>>>);
    impl StreamBody for Chunks {
        fn pump(self: Box<Self>, emit: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) {
            for c in &self.0 {
                let ok = emit(c).is_ok();
                self.1.lock().unwrap_or_else(|p| p.into_inner()).push(ok);
            }
        }
    }

    /// Decodes a chunked body; panics on bad framing or bytes after the terminator.
    fn dechunk(mut b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let nl = b.windows(2).position(|w| w == b"\r\n").expect("size line");
            let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).expect("hex"), 16)
                .expect("size");
            b = &b[nl + 2..];
            if n == 0 {
                assert_eq!(b, b"\r\n", "the terminator ends the body");
                return out;
            }
            out.extend_from_slice(&b[..n]);
            assert_eq!(&b[n..n + 2], b"\r\n");
            b = &b[n + 2..];
        }
    }

    fn sse(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Vec<bool>) {
        let mut w = Writes::default();
        let results = Arc::new(std::sync::Mutex::new(Vec::new()));
        let body = Chunks(chunks.iter().map(|c| c.to_vec()).collect(), results.clone());
        write(
            &mut w,
            Box::new(body),
            &[("x-litellm-call-id".into(), "r1".into())],
        );
        let results = results.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (w.0, results)
    }

    /// Issue 17: one write per emitted chunk; the head goes with the first, the terminator
    /// with `[DONE]`; the bytes are a well-formed chunked stream of exactly the chunks.
    #[test]
    fn a_stream_is_one_write_per_chunk() {
        let big = vec![b'y'; 3000];
        let chunks: [&[u8]; 3] = [b"data: {\"a\":1}\n\n", &big, b"data: [DONE]\n\n"];
        let (writes, results) = sse(&chunks);
        assert_eq!(writes.len(), 3, "{writes:?}");
        assert_eq!(results, [true, true, true]);
        let all = writes.concat();
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
        let head = String::from_utf8_lossy(&all[..split]);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Transfer-Encoding: chunked\r\n"));
        assert!(head.contains("x-litellm-call-id: r1\r\n"));
        assert!(
            writes[0].len() > split,
            "the first chunk went with the head"
        );
        assert_eq!(dechunk(&all[split..]), chunks.concat());
        assert!(writes[2].ends_with(b"0\r\n\r\n"));
        // An emit after `[DONE]` is refused: nothing may follow the terminator.
        let (writes, results) = sse(&[b"data: [DONE]\n\n", b"data: late\n\n"]);
        assert_eq!(writes.len(), 1);
        assert_eq!(results, [true, false]);
    }

    /// A stream without `[DONE]` (Anthropic's events) gets its terminator on its own; one
    /// that emitted nothing still gets its head, and a well-formed empty body.
    #[test]
    fn a_stream_without_done_is_terminated() {
        let (writes, _) = sse(&[b"event: message_stop\ndata: {}\n\n"]);
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[1], b"0\r\n\r\n");
        let (writes, _) = sse(&[]);
        assert_eq!(writes.len(), 1);
        let all = &writes[0];
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
        assert!(dechunk(&all[split..]).is_empty());
    }
}
