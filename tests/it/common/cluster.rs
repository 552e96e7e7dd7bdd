//! N litegate processes on ONE PostgreSQL database (issue 14's multi-instance tests). The
//! database is the cluster's (created on the shared test cluster, dropped after every
//! instance has stopped); each instance is a `Server` started with `DATABASE_URL` pointing at
//! it (so none of them owns the database). Reads go straight to that database.

use super::pg::{self, admin_url, PgDb};
use super::{parse_response, Resp, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Cluster {
    /// The instances, in start order (declared before `db`: they stop before it is dropped).
    pub nodes: Vec<Server>,
    pub db: PgDb,
}

impl Cluster {
    /// `n` instances of `config_yaml` with `env` on a fresh database: the first one starts
    /// alone (it migrates), the others at once.
    pub fn start(n: usize, config_yaml: &str, env: &[(&str, &str)]) -> Cluster {
        let db = PgDb::create(&admin_url());
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        env.push(("DATABASE_URL".into(), db.url.clone()));
        let start = |env: Vec<(String, String)>, cfg: String| {
            let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Server::start_with_env(&cfg, &[], &e)
        };
        let mut nodes = vec![start(env.clone(), config_yaml.to_string())];
        let rest: Vec<_> = (1..n)
            .map(|_| {
                let (env, cfg) = (env.clone(), config_yaml.to_string());
                std::thread::spawn(move || start(env, cfg))
            })
            .collect();
        nodes.extend(
            rest.into_iter()
                .map(|h| h.join().expect("instance started")),
        );
        Cluster { nodes, db }
    }

    /// Instance `i` modulo the number of instances (round robin).
    pub fn node(&self, i: usize) -> &Server {
        &self.nodes[i % self.nodes.len()]
    }

    /// The first column of the one row `sql` returns (`?N` parameters as text).
    pub fn value<T: pg::Both>(&self, sql: &str, params: &[&str]) -> T {
        let p: Vec<String> = params.iter().map(|s| s.to_string()).collect();
        pg::value(&self.db, sql, &p)
    }

    pub fn count(&self, sql: &str, params: &[&str]) -> i64 {
        self.value(sql, params)
    }

    /// Runs statements straight on the database (test setup only).
    pub fn exec(&self, sql: &str) {
        self.db
            .client()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// A POST of `body` as `key` to `addr` that reports a failed connection or read (an instance
/// killed under load) as `None` instead of panicking.
pub fn try_post(addr: &str, path: &str, key: &str, body: &Value) -> Option<Resp> {
    let body = body.to_string();
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer \
         {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    Some(parse_response(&raw))
}

/// Starts a streamed chat call of `model` as `key` and returns once its head and first event
/// arrived, with the connection still open (the call is in flight until the stream ends or the
/// connection drops). Panics unless the answer is a 200 stream.
pub fn open_stream(addr: &str, key: &str, model: &str) -> TcpStream {
    let body = serde_json::json!({
        "model": model, "stream": true,
        "messages": [{"role": "user", "content": "hi"}],
    })
    .to_string();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body.as_bytes()).expect("write body");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("data:") {
        let n = s.read(&mut buf).expect("read the stream's start");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    s
}
