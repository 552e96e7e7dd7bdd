//! Test harness: starts the real binary on an ephemeral port with a temp database, a tiny
//! blocking HTTP client, direct database access for asserting effects, and the seeders; the
//! `World` of named callers and the case-table runner are in `common/world.rs`.
#![allow(dead_code)]

pub mod cluster;
pub mod pg;
mod store;
mod world;
pub use store::*;
pub use world::*;

use litegate::db::sql::Arg;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MASTER: &str = "sk-test-master-key-0123456789abcdef";

/// The config most tests use: mock models A, B, C, D (D in access group `grp`), and a
/// wildcard deployment `openai/*`.
pub const TEST_CONFIG: &str = r#"
model_list:
  - model_name: A
    litellm_params: { model: mock/a, input_cost_per_token: 0.001, output_cost_per_token: 0.002 }
    model_info: { id: a-1, access_groups: [grp-ab] }
  - model_name: B
    litellm_params: { model: mock/b }
    model_info: { id: b-1, access_groups: [grp-ab] }
  - model_name: C
    litellm_params: { model: mock/c }
    model_info: { id: c-1 }
  - model_name: D
    litellm_params: { model: mock/d, api_key: sk-upstream-secret-should-never-leak }
    model_info: { id: d-1, access_groups: [grp] }
general_settings:
  master_key: os.environ/TEST_MASTER_KEY
"#;

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub dir: tempfile::TempDir,
    pub config: Option<PathBuf>,
    pub extra_args: Vec<String>,
    pub stdout_lines: Vec<String>,
    /// Extra environment for the server process (kept across restarts).
    pub env: Vec<(String, String)>,
    /// The PostgreSQL database of this server under `LITEGATE_TEST_PG` (dropped with it).
    pub pg: Option<pg::PgDb>,
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Server {
    /// The real binary with TEST_CONFIG and master key MASTER.
    pub fn start() -> Server {
        Server::start_with(TEST_CONFIG, &[])
    }

    pub fn start_with(config_yaml: &str, args: &[&str]) -> Server {
        Server::start_with_env(config_yaml, args, &[])
    }

    /// The server's stderr (its log), kept across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("litegate.db")
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_litegate"));
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--db")
            .arg(self.db_path())
            .arg("--workers")
            .arg("16");
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        cmd.args(&self.extra_args)
            .env_remove("RUST_LOG")
            .env_remove("LITELLM_MASTER_KEY")
            .env_remove("LITEGATE_MASTER_KEY")
            .env_remove("DATABASE_URL")
            .env("TEST_MASTER_KEY", MASTER)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.log_path())
                    .expect("log file"),
            ));
        let mut child = cmd.spawn().expect("spawn litegate");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    self.stdout_lines.push(line.clone());
                    if let Some(rest) = line.strip_prefix("litegate listening on http://") {
                        self.addr = rest.trim().to_string();
                        break;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "litegate did not start: {:?}\n{}",
                        self.stdout_lines,
                        self.log()
                    );
                }
            }
        }
        self.child = Some(child);
    }

    /// The running child's process id (for /proc reads), if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The running child, taken out of the harness (the caller now owns stopping it).
    pub fn take_child(&mut self) -> Option<Child> {
        self.child.take()
    }

    /// Starts the server again on the same database after `take_child` (or `stop`).
    pub fn start_again(&mut self) {
        self.stdout_lines.clear();
        self.spawn();
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill -9 and start again on the same database.
    pub fn restart(&mut self) {
        self.stop();
        self.stdout_lines.clear();
        self.spawn();
    }

    /// A connection on the SQLite file, for the tests of SQLite-only behaviour (they start with
    /// `start_sqlite*`); everything else reads through `value` / `count` / `rows` /
    /// `text_rows`, which read whichever engine the server runs on.
    pub fn db(&self) -> rusqlite::Connection {
        assert!(
            self.pg.is_none(),
            "Server::db() opens the SQLite file but this server runs on PostgreSQL: read with \
             Server::value / rows / text_rows, or start it with Server::start_sqlite*"
        );
        // The spend journal (issue 17) is applied a moment after a call is answered; a direct
        // read of the file first makes the server apply it, as every read of its API does
        // (readiness reads through the store's barrier).
        if self.child.is_some() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.anon("GET", "/health/readiness")
            }));
        }
        let c = rusqlite::Connection::open(self.db_path()).expect("open db");
        c.busy_timeout(Duration::from_secs(5)).expect("busy");
        c
    }

    /// The first column of the one row `sql` returns with `params` (on the test's PostgreSQL
    /// database under `LITEGATE_TEST_PG`, `?N` rewritten to `$N`).
    pub fn value<T: pg::Both, P: pg::Args>(&self, sql: &str, params: P) -> T {
        match &self.pg {
            Some(db) => pg::value(db, sql, &params.texts()),
            None => one(&self.db(), sql, params),
        }
    }

    /// Runs one statement without parameters straight on the database (test setup only).
    pub fn exec(&self, sql: &str) {
        if let Some(db) = &self.pg {
            db.client()
                .batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            return;
        }
        self.db()
            .execute(sql, [])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.value(sql, [])
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Resp {
        raw_request(&self.addr, method, path, key, body, headers)
    }

    /// A request without credentials and without a body.
    pub fn anon(&self, method: &str, path: &str) -> Resp {
        self.request(method, path, None, None, &[])
    }

    /// A POST of the JSON `body` without credentials, with extra `headers`.
    pub fn post_anon(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        let b = body.to_string();
        self.request("POST", path, None, Some(b.as_bytes()), headers)
    }

    pub fn get(&self, path: &str, key: &str) -> Resp {
        self.request("GET", path, Some(key), None, &[])
    }

    pub fn post(&self, path: &str, key: &str, body: Value) -> Resp {
        let b = body.to_string();
        self.request("POST", path, Some(key), Some(b.as_bytes()), &[])
    }

    pub fn send(&self, method: &str, path: &str, key: &str, body: Value) -> Resp {
        let b = body.to_string();
        self.request(method, path, Some(key), Some(b.as_bytes()), &[])
    }

    /// POST as the master key, asserting 200; returns the string `field` of the answer (the id
    /// of what it made).
    pub fn admin_id(&self, path: &str, body: Value, field: &str) -> String {
        let v = self.admin(path, body);
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field}: {v}"))
            .to_string()
    }

    /// POST as the master key, asserting 200, returning the JSON.
    pub fn admin(&self, path: &str, body: Value) -> Value {
        let r = self.post(path, MASTER, body.clone());
        assert_eq!(r.status, 200, "{path} {body} -> {}", r.text());
        r.json()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The first column of the one row `sql` returns with `params` on connection `c`.
pub fn one<T: rusqlite::types::FromSql>(
    c: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> T {
    c.query_row(sql, params, |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A minimal HTTP/1.1 client (Connection: close; Content-Length or chunked responses).
pub fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or(b"");
    if !body.is_empty() || matches!(method, "POST" | "PATCH" | "PUT" | "DELETE") {
        req.push_str("Content-Type: application/json\r\n");
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(
                String::from_utf8_lossy(&rest[..p])
                    .split(';')
                    .next()
                    .unwrap_or("0")
                    .trim(),
                16,
            )
            .unwrap_or(0);
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[p + 2..p + 2 + n]);
            rest = &rest[p + 2 + n + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

/// A chat completion request body for `model` with one user message.
pub fn chat_body(model: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

/// A finished command's exit code, stdout and stderr, for an assertion's message.
pub fn output_text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `/v1/chat/completions` as `key` for `model`.
pub fn chat(s: &Server, key: &str, model: &str) -> Resp {
    s.post("/v1/chat/completions", key, chat_body(model))
}

/// A key made by the master key with `body`; returns the raw key.
pub fn key_for(s: &Server, body: Value) -> String {
    let v = s.admin("/key/generate", body);
    v["key"].as_str().expect("a raw key").to_string()
}

/// Polls `f` until it holds, failing after `secs`.
pub fn until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the error envelope with `status` and a message containing `needle`.
pub fn assert_error_says(r: &Resp, status: u16, needle: &str) -> Value {
    let v = assert_error(r, status);
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{v}");
    v
}

/// The string `field` of every element of the JSON array `v`, sorted.
pub fn sorted_field(v: &Value, field: &str) -> Vec<String> {
    let mut out = fields_of(v, field);
    out.sort();
    out
}

/// The string `field` of every element of the JSON array `v`, in order.
pub fn fields_of(v: &Value, field: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| {
            x[field]
                .as_str()
                .unwrap_or_else(|| panic!("no {field}: {x}"))
                .to_string()
        })
        .collect()
}

/// Asserts the LiteLLM error envelope with the given status.
pub fn assert_error(r: &Resp, status: u16) -> Value {
    assert_eq!(r.status, status, "body: {}", r.text());
    let v = r.json();
    assert!(v["error"]["message"].is_string(), "{v}");
    assert!(v["error"]["type"].is_string(), "{v}");
    assert_eq!(v["error"]["code"], status.to_string(), "{v}");
    v
}

/// Runs one statement with text parameters on the test's store (SQLite file, or its PostgreSQL
/// database under `LITEGATE_TEST_PG`; test setup only).
pub fn run_sql(s: &Server, sql: &str, p: &[litegate::db::sql::Arg<'_>]) {
    match &s.pg {
        Some(db) => {
            let sql = litegate::db::sql::pg_text(sql);
            let args: Vec<&(dyn postgres::types::ToSql + Sync)> = p
                .iter()
                .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                .collect();
            db.client()
                .execute(&sql, &args)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        None => {
            s.db()
                .execute(sql, rusqlite::params_from_iter(p.iter()))
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}

/// Seeds a user with a global role and a personal key straight into the database (test setup
/// only; the calls under test go through HTTP). Returns the raw key.
pub fn seed_user(s: &Server, user_id: &str, role: &str) -> String {
    let key = format!("sk-test-{user_id}-{}", "x".repeat(16));
    let email = format!("{user_id}@example.com");
    run_sql(
        s,
        "INSERT INTO users (id, email, user_role, created_at, updated_at)
         VALUES (?1, ?2, ?3, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        &[
            Arg::from(Some(user_id)),
            Arg::from(Some(&email)),
            Arg::from(Some(role)),
        ],
    );
    seed_key_row(s, &key, None, Some(user_id), None);
    key
}

/// Seeds the key `raw` (stored as its hash) of the given team, user and org straight into the
/// database (test setup only).
pub fn seed_key_row(
    s: &Server,
    raw: &str,
    team_id: Option<&str>,
    user_id: Option<&str>,
    org_id: Option<&str>,
) {
    let (token, name) = (litegate::auth::hash_key(raw), litegate::auth::key_name(raw));
    run_sql(
        s,
        "INSERT INTO api_keys (token, key_name, team_id, user_id, organization_id,
         created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        &[
            Arg::from(Some(&token)),
            Arg::from(Some(&name)),
            Arg::from(team_id),
            Arg::from(user_id),
            Arg::from(org_id),
        ],
    );
}

/// Seeds an organization membership straight into the database (test setup only).
pub fn seed_org_member(s: &Server, org_id: &str, user_id: &str, role: &str) {
    run_sql(
        s,
        "INSERT INTO organization_members (organization_id, user_id, user_role, created_at,
         updated_at) VALUES (?1, ?2, ?3, '2026-01-01T00:00:00.000Z',
         '2026-01-01T00:00:00.000Z')",
        &[
            Arg::from(Some(org_id)),
            Arg::from(Some(user_id)),
            Arg::from(Some(role)),
        ],
    );
}

/// Seeds a team membership straight into the database (test setup only).
pub fn seed_team_member(s: &Server, team_id: &str, user_id: &str, role: &str) {
    run_sql(
        s,
        "INSERT INTO team_members (team_id, user_id, role, created_at, updated_at)
         VALUES (?1, ?2, ?3, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        &[
            Arg::from(Some(team_id)),
            Arg::from(Some(user_id)),
            Arg::from(Some(role)),
        ],
    );
}

/// Seeds an organization straight into the database (test setup only; the org endpoints are
/// tested in their own module).
pub fn seed_org(s: &Server, org_id: &str, models: &[&str]) {
    let models = serde_json::to_string(models).expect("json");
    run_sql(
        s,
        "INSERT INTO organizations (id, alias, models, created_at, updated_at)
         VALUES (?1, ?1, ?2, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        &[Arg::from(Some(org_id)), Arg::from(Some(&models))],
    );
}

/// Seeds a team straight into the database (test setup only).
pub fn seed_team(s: &Server, team_id: &str, org_id: Option<&str>, models: &[&str]) {
    let models = serde_json::to_string(models).expect("json");
    run_sql(
        s,
        "INSERT INTO teams (id, alias, organization_id, models, created_at, updated_at)
         VALUES (?1, ?1, ?2, ?3, '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        &[
            Arg::from(Some(team_id)),
            Arg::from(org_id),
            Arg::from(Some(&models)),
        ],
    );
}

/// Seeds a key of `user_id` in `team_id` straight into the database; returns the raw key.
pub fn seed_team_key(s: &Server, team_id: &str, user_id: &str, org_id: Option<&str>) -> String {
    let key = format!("sk-test-{team_id}-{user_id}-{}", "y".repeat(16));
    seed_key_row(s, &key, Some(team_id), Some(user_id), org_id);
    key
}

/// Whether `needle` occurs in the bytes `hay`.
pub fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every row of every table of the store (the schema's tables, each in a fixed order) as
/// text, for "a refused call writes nothing": equal snapshots mean nothing changed.
pub fn snapshot(s: &Server) -> String {
    if let Some(db) = &s.pg {
        return pg::snapshot(db);
    }
    let db = s.db();
    let tables: Vec<String> = db
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
             ORDER BY name",
        )
        .expect("prepare table list")
        .query_map([], |r| r.get(0))
        .expect("table list")
        .collect::<Result<_, _>>()
        .expect("table name");
    let mut out = String::new();
    for table in tables {
        let mut st = db
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("prepare snapshot");
        let n = st.column_count();
        let mut rows: Vec<String> = st
            .query_map([], |r| {
                let mut v = Vec::with_capacity(n);
                for i in 0..n {
                    v.push(format!("{:?}", r.get_ref(i)?));
                }
                Ok(v.join("|"))
            })
            .expect("snapshot")
            .collect::<Result<_, _>>()
            .expect("row");
        rows.sort();
        for r in rows {
            out.push_str(&table);
            out.push(':');
            out.push_str(&r);
            out.push('\n');
        }
    }
    out
}

/// `SELECT count(*) ...` with parameters.
pub fn count_p(s: &Server, sql: &str, p: &[&str]) -> i64 {
    if let Some(db) = &s.pg {
        let texts: Vec<String> = p.iter().map(|v| v.to_string()).collect();
        return pg::value(db, sql, &texts);
    }
    s.db()
        .query_row(sql, rusqlite::params_from_iter(p.iter()), |r| r.get(0))
        .expect(sql)
}

impl Server {
    /// Like `start_with`, with extra environment variables for the server process.
    pub fn start_with_env(config_yaml: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Server::launch(config_yaml, args, env, true)
    }

    /// Starts the binary; with `pg_switch`, on a PostgreSQL database of its own when
    /// `LITEGATE_TEST_PG` is set (else on its SQLite file).
    fn launch(config_yaml: &str, args: &[&str], env: &[(&str, &str)], pg_switch: bool) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("config.yaml");
        std::fs::write(&cfg, config_yaml).expect("write config");
        let mut s = Server {
            child: None,
            addr: String::new(),
            dir,
            config: Some(cfg),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            stdout_lines: Vec::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            // A test that names its own database (tests/it/pg.rs) keeps it.
            pg: pg::switch()
                .filter(|_| pg_switch)
                .filter(|_| !env.iter().any(|(k, _)| *k == "DATABASE_URL"))
                .map(|admin| pg::PgDb::create(&admin)),
        };
        if let Some(db) = &s.pg {
            s.env.push(("DATABASE_URL".into(), db.url.clone()));
        }
        s.spawn();
        s
    }
}

/// A PYTHONPATH under which `import module` works: None when the system python has it, else
/// target/py-deps, where `package` is pip-installed on first use (under a file lock, since
/// tests run in parallel).
pub fn python_path_with(module: &str, package: &str) -> Option<PathBuf> {
    let ok = |pp: Option<&std::path::Path>| {
        let mut c = Command::new("python3");
        c.args(["-c", &format!("import {module}")]);
        if let Some(p) = pp {
            c.env("PYTHONPATH", p);
        }
        c.output().map(|o| o.status.success()).unwrap_or(false)
    };
    if ok(None) {
        return None;
    }
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let dir = target.join("py-deps");
    std::fs::create_dir_all(&target).expect("target dir");
    let lock = std::fs::File::create(target.join("py-deps.lock")).expect("lock file");
    lock.lock().expect("lock");
    if !ok(Some(&dir)) {
        let st = Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(["--upgrade", "--target"])
            .arg(&dir)
            .arg(package)
            .status()
            .expect("python3 and pip are needed for this test");
        assert!(st.success(), "pip install {package} failed");
    }
    drop(lock);
    assert!(ok(Some(&dir)), "{module} not importable after install");
    Some(dir)
}

/// The one spend-log row of a model call's response (its `x-litellm-call-id`), as the master
/// key sees it.
pub fn spend_log_of(s: &Server, r: &Resp) -> Value {
    let id = r.header("x-litellm-call-id").expect("call id");
    let rows = s
        .get(&format!("/spend/logs?request_id={id}"), MASTER)
        .json();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{rows}");
    rows[0].clone()
}
