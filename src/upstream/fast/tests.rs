//! The fast path against honest and lying upstreams (raw sockets): what is sent, how answers
//! are framed, when a socket is reused, and that every lie ends in a bounded error within the
//! call's deadline.

use super::super::{map_fault, Upstream};
use super::*;
use crate::config::Deployment;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// A server whose every connection is handed to `handle` (on a thread of its own) with its
/// number; returns its base URL and the count of connections accepted.
fn server(handle: impl Fn(TcpStream, usize) + Send + Sync + 'static) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}/v1", l.local_addr().expect("addr"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let n = count.fetch_add(1, Ordering::SeqCst);
            let h = handle.clone();
            std::thread::spawn(move || h(s, n));
        }
    });
    (base, accepted)
}

/// Reads one request (head and content-length body); `None` at the connection's end.
fn request(s: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(i) = text.find("\r\n\r\n") {
            let len = text[..i]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if got.len() >= i + 4 + len {
                return Some(text);
            }
        }
        match s.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
}

/// A server answering every request on every connection with `answer`.
fn answering(answer: &'static [u8]) -> (String, Arc<AtomicUsize>) {
    server(move |mut s, _| {
        while request(&mut s).is_some() {
            if s.write_all(answer).is_err() {
                return;
            }
        }
    })
}

fn dep(base: &str, timeout: f64) -> Deployment {
    let mut d = super::super::tests::dep();
    d.route = crate::provider::find("openai")
        .expect("openai")
        .route("gpt-4o", Some(base), Some("sk-provider-secret"), None)
        .expect("route");
    d.timeout_secs = timeout;
    d.stream_timeout_secs = timeout;
    d
}

/// One call, its body read under `cap`: the status and body, or the mapped error.
fn call(up: &Upstream, d: &Deployment, cap: u64) -> Result<(u16, Vec<u8>), crate::error::Error> {
    let r = up.post(d, "chat/completions", br#"{"model":"gpt-4o"}"#, false, None)?;
    let status = r.status();
    let body = r.into_body().read_capped(cap).map_err(|e| match e {
        ureq::Error::BodyExceedsLimit(_) => crate::error::Error::Upstream {
            status: 502,
            message: "too large".into(),
        },
        e => map_fault(d, &e),
    })?;
    Ok((status, body))
}

#[test]
fn targets() {
    let t = Target::of("http://10.0.0.5:8000/v1/chat/completions").expect("plain");
    assert_eq!(t.authority, "10.0.0.5:8000");
    assert_eq!(t.path, "/v1/chat/completions");
    assert_eq!(t.host(), "10.0.0.5:8000");
    assert_eq!(Target::of("http://h:80/x").expect("plain").host(), "h");
    assert_eq!(
        Target::of("http://[::1]:9/x").expect("v6").authority,
        "[::1]:9"
    );
    assert_eq!(Target::of("http://h").expect("bare").path, "/");
    for url in [
        "https://api.openai.com/v1",
        "http://u:p@h/x",
        "http://h/x#f",
        "http://h?x",
        "http:///x",
        "http://h:/x",
        "http://h:99999/x",
        "http://h/a b",
        "http://a:b:c/x",
    ] {
        assert_eq!(Target::of(url), None, "{url}");
    }
}

/// Head and body leave in one write with the headers ureq sent (but `accept-encoding`).
#[test]
fn the_request_is_one_write_with_its_headers() {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let (base, _) = server(move |mut s, _| {
        let mut b = vec![0u8; 64 * 1024];
        let n = s.read(&mut b).expect("read");
        let _ = tx
            .lock()
            .map(|t| t.send(String::from_utf8_lossy(&b[..n]).into_owned()));
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
    });
    let up = Upstream::new();
    let d = dep(&base, 5.0);
    assert_eq!(call(&up, &d, 1024).expect("call"), (200, b"{}".to_vec()));
    let first = rx.recv().expect("request");
    let authority = base.trim_start_matches("http://").trim_end_matches("/v1");
    assert!(
        first.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{first}"
    );
    for h in [
        "content-type: application/json\r\n",
        "accept: application/json\r\n",
        "authorization: Bearer sk-provider-secret\r\n",
        &format!("host: {authority}\r\n"),
        "content-length: 18\r\n",
        "user-agent: litegate/",
    ] {
        assert!(first.contains(h), "{h} missing: {first}");
    }
    assert!(first.ends_with("\r\n\r\n{\"model\":\"gpt-4o\"}"), "{first}");
}

/// A header value from a caller with CR/LF is not written (no request splitting): the call
/// fails as ureq's did, and nothing reaches the upstream.
#[test]
fn a_header_with_a_line_break_is_never_sent() {
    let (base, conns) = answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
    let up = Upstream::new();
    let mut d = dep(&base, 5.0);
    d.route = crate::provider::find("anthropic")
        .expect("anthropic")
        .route("claude", Some(&base), Some("sk-ant"), None)
        .expect("route");
    let e = up
        .post(&d, "messages", b"{}", false, Some("x\r\nx-evil: 1"))
        .expect_err("refused");
    assert_eq!(e.status(), 502);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(conns.load(Ordering::SeqCst), 0);
}

/// Keep-alive answers reuse one socket; `connection: close`, a half-read answer, bytes
/// beyond the body and a close-delimited body each make the next call take a new one.
#[test]
fn a_socket_is_reused_only_after_a_clean_whole_answer() {
    let up = Upstream::new();
    let (base, conns) = answering(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlong");
    let d = dep(&base, 5.0);
    for _ in 0..3 {
        assert_eq!(call(&up, &d, 1024).expect("call").1, b"long");
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
    // Half read: dropped, never reused.
    let r = up
        .post(&d, "chat/completions", b"{}", false, None)
        .expect("post");
    let mut two = [0u8; 2];
    r.into_body()
        .into_reader()
        .read_exact(&mut two)
        .expect("read");
    assert_eq!(call(&up, &d, 1024).expect("call").1, b"long");
    assert_eq!(
        conns.load(Ordering::SeqCst),
        2,
        "a half-read socket was reused"
    );

    let (base, conns) =
        answering(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\nc");
    let d = dep(&base, 5.0);
    assert_eq!(call(&up, &d, 1024).expect("call").1, b"c");
    assert_eq!(call(&up, &d, 1024).expect("call").1, b"c");
    assert_eq!(
        conns.load(Ordering::SeqCst),
        2,
        "connection: close was reused"
    );

    let (base, conns) = answering(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nxSTALE");
    let d = dep(&base, 5.0);
    assert_eq!(call(&up, &d, 1024).expect("call").1, b"x");
    assert_eq!(call(&up, &d, 1024).expect("call").1, b"x");
    assert_eq!(
        conns.load(Ordering::SeqCst),
        2,
        "bytes beyond the body were kept"
    );

    // No length: read to the close, never reused.
    let (base, conns) = server(|mut s, _| {
        let _ = request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil close");
    });
    let d = dep(&base, 5.0);
    assert_eq!(call(&up, &d, 1024).expect("call").1, b"until close");
    assert_eq!(call(&up, &d, 1024).expect("call").1, b"until close");
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

/// Chunked answers are decoded (extensions, trailers) and their socket reused.
#[test]
fn chunked_answers_are_decoded() {
    let (base, conns) = answering(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
          5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: 1\r\n\r\n",
    );
    let up = Upstream::new();
    let d = dep(&base, 5.0);
    for _ in 0..2 {
        assert_eq!(call(&up, &d, 1024).expect("call").1, b"hello world");
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

/// Malformed chunks are a 502, never a hang or an allocation the upstream chose: a size line
/// that never ends, a bad size, a chunk longer than its size, a size beyond any buffer.
#[test]
fn malformed_chunks_are_bounded_errors() {
    let up = Upstream::new();
    for answer in [
        &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
    ] {
        let (base, _) = answering(answer);
        let e = call(&up, &dep(&base, 5.0), 1024).expect_err("malformed");
        assert_eq!(e.status(), 502, "{}", String::from_utf8_lossy(answer));
    }
    // A chunk-size line without end: an error once it passes the line bound.
    let (base, _) = server(|mut s, _| {
        let _ = request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        let line = vec![b'1'; 64 * 1024];
        while s.write_all(&line).is_ok() {}
    });
    let started = Instant::now();
    let e = call(&up, &dep(&base, 5.0), 1 << 30).expect_err("endless size line");
    assert_eq!(e.status(), 502);
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// Endless chunks end at the reader's limit (the answer cap): a 502, not unbounded memory.
#[test]
fn endless_chunks_end_at_the_cap() {
    let (base, _) = server(|mut s, _| {
        let _ = request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
        while s.write_all(chunk.as_bytes()).is_ok() {}
    });
    let up = Upstream::new();
    let e = call(&up, &dep(&base, 10.0), 1024 * 1024).expect_err("endless");
    assert_eq!(e.status(), 502);
    assert_eq!(e.message(), "too large");
}

/// An answer that promises more than it sends and stalls ends at the call's deadline: 504.
#[test]
fn a_stalled_body_ends_at_the_deadline() {
    let (base, _) = server(|mut s, _| {
        let _ = request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\"");
        std::thread::sleep(Duration::from_secs(5));
    });
    let up = Upstream::new();
    let started = Instant::now();
    let e = call(&up, &dep(&base, 1.0), 1024).expect_err("stalled");
    assert_eq!(e.status(), 504, "{}", e.message());
    assert!(started.elapsed() < Duration::from_millis(2900));
    // A head that never comes: the same.
    let (base, _) = server(|mut s, _| {
        let _ = request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
        std::thread::sleep(Duration::from_secs(5));
    });
    let started = Instant::now();
    let e = call(&up, &dep(&base, 1.0), 1024).expect_err("stalled head");
    assert_eq!(e.status(), 504, "{}", e.message());
    assert!(started.elapsed() < Duration::from_millis(2900));
    // Closed early: a 502 named by kind.
    let (base, _) = server(|mut s, _| {
        let _ = request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{");
    });
    let e = call(&up, &dep(&base, 5.0), 1024).expect_err("closed early");
    assert_eq!(e.status(), 502, "{}", e.message());
    assert!(
        e.message().contains("connection closed early"),
        "{}",
        e.message()
    );
}

/// A head larger than the bound, or with too many headers, is a 502 (nothing of it echoed).
#[test]
fn a_huge_head_is_a_502() {
    let (base, _) = server(|mut s, _| {
        let _ = request(&mut s);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n");
        let h = format!("x-big: {}\r\n", "y".repeat(1000));
        while s.write_all(h.as_bytes()).is_ok() {}
    });
    let up = Upstream::new();
    let e = call(&up, &dep(&base, 5.0), 1024).expect_err("huge head");
    assert_eq!(e.status(), 502);
    assert!(e.message().contains("too large"), "{}", e.message());
    let many: &'static [u8] = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\n{}content-length: 0\r\n\r\n",
            "x-h: 1\r\n".repeat(MAX_HEADERS + 1)
        )
        .into_bytes()
        .into_boxed_slice(),
    );
    let (base, _) = answering(many);
    let e = call(&up, &dep(&base, 5.0), 1024).expect_err("too many headers");
    assert_eq!(e.status(), 502);
}

/// A redirect is handed back as it is (the caller makes it a 502); nothing follows it.
#[test]
fn a_redirect_is_not_followed() {
    let (elsewhere, visited) = answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
    let answer: &'static [u8] = Box::leak(
        format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/x\r\ncontent-length: 0\r\n\r\n")
            .into_bytes()
            .into_boxed_slice(),
    );
    let (base, _) = answering(answer);
    let up = Upstream::new();
    let (status, _) = call(&up, &dep(&base, 5.0), 1024).expect("answer");
    assert_eq!(status, 307);
    let d = dep(&base, 5.0);
    assert_eq!(Upstream::status_error(&d, status, b"").status(), 502);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(visited.load(Ordering::SeqCst), 0);
}

/// Informational heads are skipped; a refused connection is a 502 named by kind only.
#[test]
fn informational_heads_and_refusals() {
    let (base, _) = answering(
        b"HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    );
    let up = Upstream::new();
    assert_eq!(
        call(&up, &dep(&base, 5.0), 1024).expect("call"),
        (200, b"ok".to_vec())
    );
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}/v1", l.local_addr().expect("addr"));
    drop(l);
    let e = call(&up, &dep(&base, 5.0), 1024).expect_err("refused");
    assert_eq!(e.status(), 502);
    assert!(
        e.message().contains("connection refused"),
        "{}",
        e.message()
    );
    assert!(!e.message().contains("127.0.0.1"), "{}", e.message());
}
