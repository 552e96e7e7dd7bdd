//! Issue 11 item 1: the HTTP layer survives any client. Raw-socket attacks on the request
//! head, the body framing, the deadlines and the key-before-body rule; each asserts the answer
//! (status, LiteLLM envelope), that the connection closes where it must, that the server still
//! serves afterwards, and, where memory is the target, the server's resident size.

use crate::common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// Sends `bytes`, then reads until the server closes (or `wait` passes). Returns what came
/// back and whether the server closed the connection.
fn exchange(addr: &str, bytes: &[u8], wait: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(wait)).unwrap();
    // The server may refuse (and close) before all of `bytes` is written.
    let _ = s.write_all(bytes);
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (raw, closed)
}

/// One response read off a kept-alive connection (Content-Length framed).
fn read_response(s: &mut TcpStream) -> Resp {
    let mut raw = Vec::new();
    let mut b = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).expect("read head"), 1, "closed mid-head");
        raw.push(b[0]);
    }
    let head = parse_response(&raw);
    let n: usize = head
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).expect("read body");
    raw.extend_from_slice(&body);
    parse_response(&raw)
}

/// Refused in LiteLLM's envelope with `status`, and the connection closed.
fn assert_refused(addr: &str, bytes: &[u8], status: u16) -> Resp {
    let (raw, closed) = exchange(addr, bytes, Duration::from_secs(10));
    assert!(
        !raw.is_empty(),
        "no answer to {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
    let r = parse_response(&raw);
    assert_error(&r, status);
    assert!(
        closed,
        "connection left open after {:?}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
    );
    r
}

fn assert_serves(s: &Server) {
    let r = raw_request(&s.addr, "GET", "/health/liveliness", None, None, &[]);
    assert_eq!(r.status, 200, "the server no longer serves");
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The first example: one unauthenticated request declaring 100 GB. Before the fix
/// the vendored tiny_http allocated the declared length when it drained the body, and the
/// allocation failure aborted the process.
#[test]
fn a_declared_100_gb_body_gets_an_answer_and_the_process_lives() {
    let s = Server::start();
    for (path, key, status) in [
        ("/organization/new", Some(MASTER), 413),
        ("/v1/chat/completions", None, 401),
        ("/organization/new", None, 401),
        ("/nope", None, 404),
    ] {
        let auth = key
            .map(|k| format!("Authorization: Bearer {k}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: 100000000000\r\n\r\n{{\"model\":"
        );
        let r = assert_refused(&s.addr, req.as_bytes(), status);
        // Before the fix, the process had aborted by now (a 100 GB allocation).
        assert_serves(&s);
        assert_eq!(r.header("connection"), Some("close"), "{path}");
    }
}

/// 64 connections at once, each declaring a huge body and trickling bytes of it, with and
/// without a key: each is answered, the process's resident memory stays bounded, and it
/// serves afterwards.
#[test]
fn many_huge_declared_bodies_keep_memory_bounded() {
    let s = Server::start();
    let pid = s.pid().expect("pid");
    assert_serves(&s);
    let before = rss_kib(pid);
    let conns: Vec<TcpStream> = (0..64)
        .map(|i| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            let auth = if i % 2 == 0 {
                format!("Authorization: Bearer {MASTER}\r\n")
            } else {
                String::new()
            };
            let req = format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{auth}\
                 Content-Length: 100000000000\r\n\r\n{{\"messages\":["
            );
            c.write_all(req.as_bytes()).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c
        })
        .collect();
    for mut c in conns {
        for _ in 0..3 {
            let _ = c.write_all(&[b' '; 512]);
        }
        let mut raw = Vec::new();
        let _ = c.read_to_end(&mut raw);
        let r = parse_response(&raw);
        assert!(r.status == 401 || r.status == 413, "{}", r.text());
    }
    assert_serves(&s);
    let after = rss_kib(pid);
    eprintln!("64 huge declared bodies: VmRSS {before} KiB -> {after} KiB");
    assert!(
        after < before + 64 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
}

/// The key is checked from the head alone: a request without a valid key is refused at once,
/// before its body arrives (it used to be read, up to the 8 MiB cap, first).
#[test]
fn a_missing_or_invalid_key_is_refused_before_the_body_is_read() {
    let s = Server::start();
    for auth in ["", "Authorization: Bearer sk-not-a-key\r\n"] {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t = Instant::now();
        c.write_all(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{auth}\
                 Content-Length: 7000000\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        // No body is sent: the answer must not wait for it.
        let mut raw = Vec::new();
        let _ = c.read_to_end(&mut raw);
        let r = parse_response(&raw);
        assert_error(&r, 401);
        assert_eq!(r.header("connection"), Some("close"));
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    }
    // A small unread body is drained and the connection kept: the next request on it works.
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = "{\"model\":\"A\",\"messages\":[]}";
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}\
         GET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n",
        body.len()
    );
    c.write_all(req.as_bytes()).unwrap();
    assert_error(&read_response(&mut c), 401);
    assert_eq!(read_response(&mut c).status, 200);
    // A client waiting for `100 Continue` is refused without it, and the connection closes.
    let req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
               Content-Length: 10\r\n\r\n";
    let r = assert_refused(&s.addr, req.as_bytes(), 401);
    assert_eq!(r.header("connection"), Some("close"));
    assert_serves(&s);
}

/// Slow unauthenticated bodies hold no worker slot: with 2 workers, 6 clients trickling a
/// `/ui/login` body (a route without a key) and 6 trickling a keyless model call do not delay
/// a normal request.
#[test]
fn slow_unauthenticated_bodies_hold_no_worker() {
    let s = Server::start_with(TEST_CONFIG, &["--workers", "2"]);
    let slow: Vec<TcpStream> = (0..12)
        .map(|i| {
            let mut c = TcpStream::connect(&s.addr).unwrap();
            let path = if i % 2 == 0 {
                "/ui/login"
            } else {
                "/v1/chat/completions"
            };
            c.write_all(
                format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                     Content-Length: 2000\r\n\r\n{{"
                )
                .as_bytes(),
            )
            .unwrap();
            c
        })
        .collect();
    // Wait until the server has accepted all 12 (plus the connection asking).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = raw_request(&s.addr, "GET", "/metrics", None, None, &[]).text();
        if m.contains("\nlitegate_open_connections 13\n") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow clients never all connected: {m}"
        );
    }
    let t = Instant::now();
    let r = raw_request(
        &s.addr,
        "GET",
        "/organization/list",
        Some(MASTER),
        None,
        &[],
    );
    assert_eq!(r.status, 200);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    drop(slow);
}

#[test]
fn oversized_heads_are_refused_with_414_and_431() {
    let s = Server::start();
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9 * 1024));
    assert_refused(&s.addr, long_uri.as_bytes(), 414);
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40 * 1024)
    );
    assert_refused(&s.addr, big_header.as_bytes(), 431);
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..120 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_refused(&s.addr, many.as_bytes(), 431);
    // An endless header section (no blank line, ever) stops at the bound too.
    let mut endless = String::from("GET / HTTP/1.1\r\n");
    while endless.len() < 1024 * 1024 {
        endless.push_str("X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    assert_refused(&s.addr, endless.as_bytes(), 431);
    // Just under the limits is served.
    let ok = format!(
        "GET /health/liveliness HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "c".repeat(16 * 1024)
    );
    let (raw, _) = exchange(&s.addr, ok.as_bytes(), Duration::from_secs(5));
    assert_eq!(parse_response(&raw).status, 200);
    assert_serves(&s);
    // The four refusals are counted (they never reach the handler's metrics).
    let m = raw_request(&s.addr, "GET", "/metrics", None, None, &[]).text();
    assert!(m.contains("\nlitegate_refused_requests 4\n"), "{m}");
}

/// Ambiguous or invalid framing is refused with 400 and the connection closed: two parsers
/// (a proxy in front and us) must never be able to disagree on where a request ends.
#[test]
fn ambiguous_framing_is_refused_and_the_connection_closed() {
    let s = Server::start();
    let head = format!(
        "POST /organization/new HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {MASTER}\r\n\
         Content-Type: application/json\r\n"
    );
    let body = "{\"organization_alias\":\"smuggled\"}";
    let n = body.len();
    let cases: Vec<(String, String)> = vec![
        (
            "two different lengths".into(),
            format!("Content-Length: {n}\r\nContent-Length: 5\r\n"),
        ),
        (
            "two equal lengths".into(),
            format!("Content-Length: {n}\r\nContent-Length: {n}\r\n"),
        ),
        (
            "a list of lengths".into(),
            format!("Content-Length: {n}, {n}\r\n"),
        ),
        ("a negative length".into(), "Content-Length: -1\r\n".into()),
        (
            "a signed length".into(),
            format!("Content-Length: +{n}\r\n"),
        ),
        ("a hex length".into(), "Content-Length: 0x22\r\n".into()),
        ("an empty length".into(), "Content-Length: \r\n".into()),
        (
            "an overflowing length".into(),
            "Content-Length: 99999999999999999999999\r\n".into(),
        ),
        (
            "length and chunked".into(),
            format!("Content-Length: {n}\r\nTransfer-Encoding: chunked\r\n"),
        ),
        ("gzip coding".into(), "Transfer-Encoding: gzip\r\n".into()),
        (
            "identity coding".into(),
            "Transfer-Encoding: identity\r\n".into(),
        ),
        (
            "a coding list".into(),
            "Transfer-Encoding: gzip, chunked\r\n".into(),
        ),
        (
            "chunked twice".into(),
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n".into(),
        ),
    ];
    for (what, framing) in cases {
        let req = format!("{head}{framing}\r\n{body}");
        let r = assert_refused(&s.addr, req.as_bytes(), 400);
        assert_eq!(r.header("connection"), Some("close"), "{what}");
    }
    // Chunked in HTTP/1.0 is refused too.
    let req = format!("POST /organization/new HTTP/1.0\r\nAuthorization: Bearer {MASTER}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    assert_refused(&s.addr, req.as_bytes(), 400);
    // Malformed chunked bodies: 400 (not a timeout), connection closed.
    for chunks in [
        "zz\r\nabc\r\n0\r\n\r\n",
        "-5\r\nabcde\r\n0\r\n\r\n",
        "10000000000000000\r\nabc\r\n0\r\n\r\n",
        "3\r\nabcXY0\r\n\r\n",
        "3\nabc\r\n0\r\n\r\n",
    ] {
        let req = format!("{head}Transfer-Encoding: chunked\r\n\r\n{chunks}");
        let r = assert_refused(&s.addr, req.as_bytes(), 400);
        assert!(r.text().contains("chunked"), "{}", r.text());
    }
    // A well-formed chunked body is accepted.
    let req = format!(
        "{head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (raw, _) = exchange(&s.addr, req.as_bytes(), Duration::from_secs(5));
    assert_eq!(
        parse_response(&raw).status,
        200,
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(
        s.count("SELECT count(*) FROM organizations"),
        1,
        "only the well-framed request created anything"
    );
    assert_serves(&s);
}

#[test]
fn control_characters_and_bare_lf_in_the_request_line_are_refused() {
    let s = Server::start();
    for line in [
        &b"GET /health/liveliness\x00 HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET /health/\x7fliveliness HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /health/\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET\t/health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /health/\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /health/liveliness HTTP/1.1\nHost: x\r\n\r\n",
        b"GET /health/liveliness HTTP/1.1\r\nHost: x\n\n",
        b"GET /health/liveliness HTTP/1.1\rHost: x\r\n\r\n",
        b"GET  /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /health/liveliness HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET /health/liveliness HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"GET /health/liveliness HTTP/1.1\r\nX-A: a\x00b\r\n\r\n",
    ] {
        assert_refused(&s.addr, line, 400);
    }
    assert_refused(&s.addr, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    assert_serves(&s);
}

/// A header value that is not ASCII (e.g. invalid UTF-8) gets an answer, never a dropped
/// connection: 401 when it is where a key goes, 400 elsewhere.
#[test]
fn a_non_ascii_header_value_gets_an_answer() {
    let s = Server::start();
    for (header, status) in [
        (&b"Authorization: Bearer sk-\xff\xfe"[..], 401),
        (b"x-litellm-api-key: \xc3\xa9", 401),
        (b"X-Anything: caf\xc3\xa9", 400),
        (b"X-Anything: \xff", 400),
    ] {
        let mut req = b"GET /organization/list HTTP/1.1\r\nHost: x\r\n".to_vec();
        req.extend_from_slice(header);
        req.extend_from_slice(b"\r\n\r\n");
        let r = assert_refused(&s.addr, &req, status);
        if status == 401 {
            assert_eq!(r.json()["error"]["type"], "auth_error");
        }
    }
    assert_serves(&s);
}

/// With `--header-timeout 1 --request-timeout 2` and a 5 s read timeout: a client trickling
/// its head (each byte well within the read timeout) is cut at the head deadline, one
/// trickling its body at the request deadline, one whose body is being refused likewise.
#[test]
fn deadlines_bound_a_trickling_head_and_body() {
    let s = Server::start_with_env(
        TEST_CONFIG,
        &["--header-timeout", "1", "--request-timeout", "2"],
        &[("LITEGATE_CLIENT_TIMEOUT_SECS", "5")],
    );
    let trickle = |prefix: &[u8], drip: &[u8]| -> (Resp, Duration) {
        let mut c = TcpStream::connect(&s.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let t = Instant::now();
        c.write_all(prefix).unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        for &b in drip.iter().cycle() {
            assert!(t.elapsed() < Duration::from_secs(8), "never cut off");
            if c.write_all(&[b]).is_err() {
                break;
            }
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if raw.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let took = t.elapsed();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = c.read_to_end(&mut raw);
        (parse_response(&raw), took)
    };
    // The head: one header byte every 200 ms.
    let (r, took) = trickle(b"GET /health/liveliness HTTP/1.1\r\nX-Slow: ", b"a");
    assert_error(&r, 408);
    assert!(
        took < Duration::from_millis(2500),
        "head cut after {took:?}"
    );
    // The body of an authenticated request: one byte every 200 ms.
    let head = format!(
        "POST /organization/new HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {MASTER}\r\n\
         Content-Length: 100000\r\n\r\n{{"
    );
    let (r, took) = trickle(head.as_bytes(), b" ");
    assert_error(&r, 408);
    assert!(
        took < Duration::from_millis(3500),
        "body cut after {took:?}"
    );
    assert_serves(&s);
}

/// `/metrics` labels come from fixed sets: 200 requests with invented methods and paths add
/// a handful of series, not 200.
#[test]
fn metrics_labels_stay_bounded_under_invented_methods_and_paths() {
    let s = Server::start();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let method = format!("M{}", x % 100_000);
        let path = format!("/p{}/{}", x % 997, x % 13);
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let (raw, _) = exchange(&s.addr, req.as_bytes(), Duration::from_secs(5));
        assert_eq!(parse_response(&raw).status, 404);
    }
    let m = raw_request(&s.addr, "GET", "/metrics", None, None, &[]).text();
    let series: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("litegate_requests_total{"))
        .collect();
    assert!(series.len() <= 4, "{series:#?}");
    assert!(
        series
            .iter()
            .any(|l| l.contains("route=\"unmatched\",method=\"other\",status=\"404\"} 200")),
        "{series:#?}"
    );
}

/// Keep-alive, pipelining and HTTP/1.0 still work through the new head parser.
#[test]
fn keep_alive_pipelining_and_http10_still_work() {
    let s = Server::start();
    let mut c = TcpStream::connect(&s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Leading empty lines are ignored; three pipelined requests in one write.
    c.write_all(
        b"\r\nGET /health/liveliness HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /health/readiness HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    assert_eq!(read_response(&mut c).status, 200);
    assert_eq!(read_response(&mut c).status, 404);
    assert_eq!(read_response(&mut c).status, 200);
    c.shutdown(Shutdown::Write).unwrap();
    let (raw, closed) = exchange(
        &s.addr,
        b"GET /health/liveliness HTTP/1.0\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(closed);
    assert_eq!(parse_response(&raw).status, 200);
}
