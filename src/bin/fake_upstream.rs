//! A fast fake OpenAI-compatible upstream for the load benchmark (`scripts/bench.sh`, issue 6).
//! Answers `POST /v1/chat/completions` (and `/chat/completions`) over HTTP/1.1 keep-alive with
//! canned bytes built once at start: a JSON completion with `usage`, or with `"stream": true` a
//! chunked SSE stream (three content chunks, a `finish_reason` chunk, a usage chunk when the
//! request asks `stream_options.include_usage`, `[DONE]`). A model name containing
//! `bench-slow` streams slowly instead: one chunk every `--slow-interval-ms` for `--slow-chunks`
//! chunks (the 1,000-slow-streams phase). `POST /v1/messages` answers as Anthropic's Messages
//! API (for the bench's Anthropic deployment, whose translation cost it measures): a JSON
//! `message` with `usage`, or with `"stream": true` Anthropic's SSE events (`message_start`, a
//! text block of three deltas, `message_delta` with the stop reason and usage,
//! `message_stop`). One thread per connection, TCP_NODELAY, one reused
//! buffer per connection, one `write` per fast response. Not a test double: it records nothing
//! and checks nothing beyond what it needs to answer (the tests' fake is `tests/it/upstream.rs`).
//!
//! Usage: `fake_upstream [--listen 127.0.0.1:0] [--slow-chunks 20] [--slow-interval-ms 1000]`;
//! prints `listening on ADDR` once bound.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Largest request head + body accepted (bigger requests get the connection closed).
const MAX_REQUEST: usize = 1024 * 1024;

struct Canned {
    json: Vec<u8>,
    anthropic_json: Vec<u8>,
    anthropic_sse: Vec<u8>,
    sse: Vec<u8>,
    sse_usage: Vec<u8>,
    not_found: Vec<u8>,
    slow_head: Vec<u8>,
    slow_chunk: Vec<u8>,
    slow_tail: Vec<u8>,
    slow_chunks: u32,
    slow_interval: Duration,
}

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a canned answer from the benchmark upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26}}"#;

fn event(data: &str) -> Vec<u8> {
    let ev = format!("data: {data}\n\n");
    let mut out = format!("{:x}\r\n", ev.len()).into_bytes();
    out.extend_from_slice(ev.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

fn content_chunk(text: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench","choices":[{{"index":0,"delta":{{"content":"{text}"}},"finish_reason":null}}]}}"#
    )
}

const FINISH: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
const USAGE: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"bench","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
const MESSAGE: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"Hello! This is a canned answer from the benchmark upstream."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":14}}"#;

/// One Anthropic SSE event (`event:` and `data:` lines) as one chunk.
fn anthropic_event(name: &str, data: &str) -> Vec<u8> {
    let ev = format!("event: {name}\ndata: {data}\n\n");
    let mut out = format!("{:x}\r\n", ev.len()).into_bytes();
    out.extend_from_slice(ev.as_bytes());
    out.extend_from_slice(b"\r\n");
    out
}

/// The Anthropic stream of the canned answer, chunked, with its terminator.
fn anthropic_stream() -> Vec<u8> {
    let mut out = SSE_HEAD.as_bytes().to_vec();
    out.extend(anthropic_event(
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_bench","type":"message","role":"assistant","model":"claude-bench","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}"#,
    ));
    out.extend(anthropic_event(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    ));
    for w in ["Hello", " from", " bench."] {
        out.extend(anthropic_event(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{w}"}}}}"#
            ),
        ));
    }
    out.extend(anthropic_event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    ));
    out.extend(anthropic_event(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":3}}"#,
    ));
    out.extend(anthropic_event(
        "message_stop",
        r#"{"type":"message_stop"}"#,
    ));
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

impl Canned {
    fn new(slow_chunks: u32, slow_interval: Duration) -> Canned {
        let json = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{COMPLETION}",
            COMPLETION.len()
        )
        .into_bytes();
        let anthropic_json = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{MESSAGE}",
            MESSAGE.len()
        )
        .into_bytes();
        let mut sse = SSE_HEAD.as_bytes().to_vec();
        for w in ["Hello", " from", " bench."] {
            sse.extend(event(&content_chunk(w)));
        }
        sse.extend(event(FINISH));
        let mut sse_usage = sse.clone();
        sse_usage.extend(event(USAGE));
        let tail = [event("[DONE]"), b"0\r\n\r\n".to_vec()].concat();
        sse.extend_from_slice(&tail);
        sse_usage.extend_from_slice(&tail);
        let not_found = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 21\r\n\r\n{\"error\":\"not found\"}".to_vec();
        let slow_tail = [event(FINISH), event(USAGE), tail].concat();
        Canned {
            json,
            anthropic_json,
            anthropic_sse: anthropic_stream(),
            sse,
            sse_usage,
            not_found,
            slow_head: SSE_HEAD.as_bytes().to_vec(),
            slow_chunk: event(&content_chunk(" tick")),
            slow_tail,
            slow_chunks,
            slow_interval,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// True when `key` (with its quotes, e.g. `"stream"`) appears in `body` followed by `: true`
/// (any whitespace). Enough for the bodies the benchmark sends; not a JSON parser.
fn json_flag(body: &[u8], key: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = find(&body[from..], key) {
        let mut j = from + i + key.len();
        from = j;
        while body.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        if body.get(j) != Some(&b':') {
            continue;
        }
        j += 1;
        while body.get(j).is_some_and(|b| b.is_ascii_whitespace()) {
            j += 1;
        }
        return body[j..].starts_with(b"true");
    }
    false
}

/// `Content-Length` and `Connection: close` from a request head (headers case-insensitive).
fn parse_head(head: &[u8]) -> Option<(usize, bool)> {
    let mut len = 0usize;
    let mut close = head.starts_with(b"HTTP/1.0") || find(head, b" HTTP/1.0\r\n").is_some();
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            len = std::str::from_utf8(value).ok()?.parse().ok()?;
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Chunked request bodies are not needed by any client of this fake.
            return None;
        }
    }
    Some((len, close))
}

fn serve(mut s: TcpStream, canned: &Canned) -> std::io::Result<()> {
    s.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    let mut filled = 0usize;
    loop {
        // Read until a whole request (head + body) is in `buf[..filled]`.
        let (head_end, body_len, close) = loop {
            if let Some(h) = find(&buf[..filled], b"\r\n\r\n") {
                let Some((len, close)) = parse_head(&buf[..h]) else {
                    return Ok(());
                };
                if h + 4 + len <= filled {
                    break (h + 4, len, close);
                }
                if h + 4 + len > MAX_REQUEST {
                    return Ok(());
                }
                if buf.len() < h + 4 + len {
                    buf.resize(h + 4 + len, 0);
                }
            } else if filled == buf.len() {
                if buf.len() >= MAX_REQUEST {
                    return Ok(());
                }
                buf.resize(buf.len() * 2, 0);
            }
            let n = s.read(&mut buf[filled..])?;
            if n == 0 {
                return Ok(());
            }
            filled += n;
        };
        let head = &buf[..head_end];
        let body = &buf[head_end..head_end + body_len];
        let ok = head.starts_with(b"POST ")
            && (head[5..].starts_with(b"/v1/chat/completions ")
                || head[5..].starts_with(b"/chat/completions "));
        let messages = head.starts_with(b"POST /v1/messages ");
        if messages && json_flag(body, br#""stream""#) {
            s.write_all(&canned.anthropic_sse)?;
        } else if messages {
            s.write_all(&canned.anthropic_json)?;
        } else if !ok {
            s.write_all(&canned.not_found)?;
        } else if !json_flag(body, br#""stream""#) {
            s.write_all(&canned.json)?;
        } else if find(body, b"bench-slow").is_some() {
            s.write_all(&canned.slow_head)?;
            for _ in 0..canned.slow_chunks {
                std::thread::sleep(canned.slow_interval);
                s.write_all(&canned.slow_chunk)?;
            }
            s.write_all(&canned.slow_tail)?;
        } else if json_flag(body, br#""include_usage""#) {
            s.write_all(&canned.sse_usage)?;
        } else {
            s.write_all(&canned.sse)?;
        }
        if close {
            return Ok(());
        }
        // Keep any pipelined bytes of the next request.
        let used = head_end + body_len;
        buf.copy_within(used..filled, 0);
        filled -= used;
    }
}

fn main() -> Res<()> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut slow_chunks: u32 = 20;
    let mut slow_ms: u64 = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--listen" => listen = value()?,
            "--slow-chunks" => slow_chunks = value()?.parse()?,
            "--slow-interval-ms" => slow_ms = value()?.parse()?,
            other => {
                return Err(format!(
                    "unknown argument '{other}'; usage: fake_upstream [--listen ADDR:PORT] \
                     [--slow-chunks N] [--slow-interval-ms MS]"
                )
                .into())
            }
        }
    }
    let canned = Arc::new(Canned::new(slow_chunks, Duration::from_millis(slow_ms)));
    let listener = TcpListener::bind(&listen).map_err(|e| format!("bind {listen}: {e}"))?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    for conn in listener.incoming() {
        let Ok(s) = conn else {
            // EMFILE and the like: back off instead of spinning.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let canned = canned.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = serve(s, &canned);
            });
        if let Err(e) = spawned {
            eprintln!("fake_upstream: cannot start a connection thread: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        assert!(json_flag(br#"{"model":"x","stream":true}"#, br#""stream""#));
        assert!(json_flag(br#"{"stream" :  true}"#, br#""stream""#));
        assert!(!json_flag(br#"{"stream":false}"#, br#""stream""#));
        assert!(!json_flag(br#"{"xstream":true}"#, br#""stream""#));
        assert!(json_flag(
            br#"{"stream_options":{"include_usage":true},"stream":true}"#,
            br#""stream""#
        ));
        assert!(json_flag(
            br#"{"stream_options":{"include_usage":true}}"#,
            br#""include_usage""#
        ));
        assert!(!json_flag(br#"{"stream_options":{}}"#, br#""stream""#));
    }

    /// The canned Anthropic stream is well-formed chunked SSE whose events parse and are
    /// named by their `type`, and the JSON answer is a Messages answer.
    #[test]
    fn anthropic_answers() {
        let c = Canned::new(1, Duration::from_millis(1));
        let body = &c.anthropic_sse[SSE_HEAD.len()..];
        let mut rest = body;
        let mut events = String::new();
        loop {
            let crlf = find(rest, b"\r\n").expect("chunk size line");
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..crlf]).expect("utf8"), 16)
                .expect("hex");
            if n == 0 {
                assert_eq!(&rest[crlf..], b"\r\n\r\n");
                break;
            }
            events.push_str(std::str::from_utf8(&rest[crlf + 2..crlf + 2 + n]).expect("utf8"));
            rest = &rest[crlf + 2 + n + 2..];
        }
        let mut types = Vec::new();
        for ev in events.split("\n\n").filter(|e| !e.is_empty()) {
            let (name, data) = ev.split_once('\n').expect("two lines");
            let v: serde_json::Value =
                serde_json::from_str(data.strip_prefix("data: ").expect("data")).expect("json");
            assert_eq!(name.strip_prefix("event: "), v["type"].as_str());
            types.push(v["type"].as_str().unwrap_or("").to_string());
        }
        assert_eq!(types.first().map(String::as_str), Some("message_start"));
        assert_eq!(types.last().map(String::as_str), Some("message_stop"));
        assert_eq!(
            types.iter().filter(|t| *t == "content_block_delta").count(),
            3
        );
        let json = String::from_utf8(c.anthropic_json.clone()).expect("utf8");
        let (_, body) = json.split_once("\r\n\r\n").expect("head");
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["type"], "message");
        assert_eq!(v["usage"]["output_tokens"], 14);
    }

    #[test]
    fn head() {
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: 12\r\nConnection: close"),
            Some((12, true))
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\ncontent-length: 3"),
            Some((3, false))
        );
    }
}
