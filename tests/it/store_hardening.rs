//! Issue 11 item 4: the store cannot be silently lost. One litegate per database file; a
//! removed, replaced, read-only or failing database makes readiness fail and model calls
//! refuse before anything goes upstream. The file's tests are SQLite by nature and run on it in
//! both passes of the suite (`Server::start_sqlite_with`); PostgreSQL unreachable mid-load (503,
//! recovery) has its own tests (docs/POSTGRES.md "Tests").

use crate::common::*;
use crate::upstream::*;
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn ready(s: &Server) -> Resp {
    s.get("/health/readiness", MASTER)
}

/// Readiness is 503 naming `why`, and a model call (to the fake upstream and to a mock model)
/// is a 503 that never reached the upstream.
fn assert_refused(s: &Server, fake: &Fake, why: &str) {
    until("readiness fails", 10, || ready(s).status == 503);
    let r = ready(s);
    assert!(
        r.json()["reason"].as_str().unwrap_or("").contains(why),
        "{}",
        r.text()
    );
    let before = fake.count();
    let r = s.post("/v1/chat/completions", MASTER, chat_body("json"));
    assert_error_says(&r, 503, why);
    assert_eq!(
        fake.count(),
        before,
        "the upstream was called although nothing could be billed"
    );
    // A management change is refused too, rather than acknowledged and lost.
    let r = s.post("/team/new", MASTER, json!({"team_alias": "lost"}));
    assert_error(&r, 503);
}

/// A fake upstream and a server pinned to SQLite: every test here but the last checks the
/// database FILE (its lock, removal, replacement, permissions, a failing write to it).
fn fake_and_server() -> (Fake, Server) {
    let f = Fake::start();
    let s = Server::start_sqlite_with(&config(&f, ""), &[]);
    (f, s)
}

/// A model call that works: the store is fine and the upstream was called once more.
fn assert_serving(s: &Server, fake: &Fake) {
    until("readiness recovers", 10, || ready(s).status == 200);
    let before = fake.count();
    let r = s.post("/v1/chat/completions", MASTER, chat_body("json"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(fake.count(), before + 1);
}

#[test]
fn a_second_litegate_on_the_same_database_is_refused_and_the_first_keeps_serving() {
    let (fake, s) = fake_and_server();
    let mut second = Command::new(env!("CARGO_BIN_EXE_litegate"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--db")
        .arg(s.db_path())
        .arg("--config")
        .arg(s.config.as_ref().unwrap())
        .env("TEST_MASTER_KEY", MASTER)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run a second litegate");
    // It must exit by itself (old code: it served beside the first one).
    let deadline = Instant::now() + Duration::from_secs(20);
    while second.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second litegate started on the same database");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another litegate (pid ") && stderr.contains("litegate.db"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "the second one must not serve"
    );
    // `litegate backup` opens the same database and still works while the first one runs.
    let dest = s.dir.path().join("copy.db");
    let b = Command::new(env!("CARGO_BIN_EXE_litegate"))
        .arg("backup")
        .arg(&dest)
        .arg("--db")
        .arg(s.db_path())
        .output()
        .expect("backup");
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    assert_serving(&s, &fake);
}

#[test]
fn a_removed_database_fails_readiness_and_refuses_model_calls_before_upstream() {
    let (fake, s) = fake_and_server();
    assert_serving(&s, &fake);
    let moved = s.dir.path().join("moved.db");
    std::fs::rename(s.db_path(), &moved).unwrap();
    assert_refused(&s, &fake, "was removed");
    std::fs::rename(&moved, s.db_path()).unwrap();
    assert_serving(&s, &fake);
}

#[test]
fn a_database_replaced_under_the_server_fails_readiness() {
    let (fake, s) = fake_and_server();
    assert_serving(&s, &fake);
    let copy = s.dir.path().join("copy.db");
    std::fs::copy(s.db_path(), &copy).unwrap();
    std::fs::rename(&copy, s.db_path()).unwrap();
    assert_refused(&s, &fake, "was replaced");
}

#[test]
fn a_read_only_database_file_fails_readiness_until_it_is_writable_again() {
    use std::os::unix::fs::PermissionsExt;
    let (fake, s) = fake_and_server();
    let path = s.db_path();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    assert_refused(&s, &fake, "read-only");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_serving(&s, &fake);
}

#[test]
fn a_removed_lock_file_fails_readiness() {
    let (fake, s) = fake_and_server();
    let lock = s.dir.path().join("litegate.db.lock");
    assert!(lock.exists());
    std::fs::remove_file(&lock).unwrap();
    assert_refused(&s, &fake, "lock file");
}

#[test]
fn a_read_only_database_directory_fails_readiness_until_it_is_writable_again() {
    use std::os::unix::fs::PermissionsExt;
    let (fake, s) = fake_and_server();
    let dir = s.dir.path().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    assert_refused(&s, &fake, "directory of the database file");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_serving(&s, &fake);
}

/// Disk-full-like: the server's file-size limit is lowered to 1 byte while it runs, so every
/// write to the WAL or the database fails (EFBIG; works as root too). The call whose spend
/// could not be committed is not reported as a success; the next one is refused before the
/// upstream; raising the limit again recovers.
#[test]
fn failing_writes_fail_readiness_and_refuse_model_calls_before_upstream() {
    let (fake, mut s) = fake_and_server();
    assert_serving(&s, &fake);
    let child = s.take_child().unwrap();
    let pid = child.id() as libc::pid_t;
    let set_fsize = |limit: libc::rlim_t| {
        let l = libc::rlimit {
            rlim_cur: limit,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: plain syscall on a child we own, with a valid rlimit.
        let r = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &l, std::ptr::null_mut()) };
        assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
    };
    set_fsize(1);
    // Either the checkpointer or this call's spend commit hits the limit first.
    let r = s.post("/v1/chat/completions", MASTER, chat_body("json"));
    assert_ne!(
        r.status,
        200,
        "an unrecorded call reported success: {}",
        r.text()
    );
    assert_refused(&s, &fake, "failed");
    set_fsize(libc::RLIM_INFINITY);
    assert_serving(&s, &fake);
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
}

/// Identifiers, aliases, emails, model names and metadata names with control characters or
/// absurd lengths are refused with a 400 naming the field, on every endpoint that stores them,
/// and nothing changes.
#[test]
fn control_characters_and_absurd_lengths_in_identifiers_are_refused_naming_the_field() {
    let s = Server::start();
    s.admin(
        "/organization/new",
        json!({"organization_id": "o1", "organization_alias": "O"}),
    );
    s.admin("/team/new", json!({"team_id": "t1", "team_alias": "T"}));
    let key = s.admin_id("/key/generate", json!({}), "key");
    let long = "x".repeat(10_000);
    let bads = [
        "a\u{0}b",
        "a\nb",
        "\u{1b}[31mred",
        "tab\there",
        "del\u{7f}",
        long.as_str(),
    ];
    // (endpoint, field named in the error, body with BAD where the value goes)
    let table: &[(&str, &str, &str)] = &[
        ("/user/new", "user_id", r#"{"user_id": BAD}"#),
        ("/user/new", "user_email", r#"{"user_email": BAD}"#),
        (
            "/user/new",
            "models",
            r#"{"user_id": "u9", "models": [BAD]}"#,
        ),
        ("/team/new", "team_id", r#"{"team_id": BAD}"#),
        ("/team/new", "team_alias", r#"{"team_alias": BAD}"#),
        (
            "/team/new",
            "organization_id",
            r#"{"organization_alias": "x", "organization_id": BAD}"#,
        ),
        (
            "/organization/new",
            "models",
            r#"{"organization_alias": "x", "models": [BAD]}"#,
        ),
        ("/team/new", "models", r#"{"models": ["A", BAD]}"#),
        ("/team/new", "metadata", r#"{"metadata": {BAD: 1}}"#),
        (
            "/team/new",
            "user_id",
            r#"{"members_with_roles": [{"role": "user", "user_id": BAD}]}"#,
        ),
        (
            "/team/update",
            "team_alias",
            r#"{"team_id": "t1", "team_alias": BAD}"#,
        ),
        (
            "/team/member_add",
            "user_id",
            r#"{"team_id": "t1", "member": {"role": "user", "user_id": BAD}}"#,
        ),
        (
            "/team/member_add",
            "user_email",
            r#"{"team_id": "t1", "member": {"role": "user", "user_email": BAD}}"#,
        ),
        (
            "/organization/new",
            "organization_id",
            r#"{"organization_alias": "x", "organization_id": BAD}"#,
        ),
        (
            "/organization/new",
            "models",
            r#"{"organization_alias": "x", "models": [BAD]}"#,
        ),
        (
            "/organization/new",
            "organization_alias",
            r#"{"organization_alias": BAD}"#,
        ),
        (
            "/organization/update",
            "organization_alias",
            r#"{"organization_id": "o1", "organization_alias": BAD}"#,
        ),
        (
            "/organization/member_add",
            "user_id",
            r#"{"organization_id": "o1", "member": {"role": "internal_user", "user_id": BAD}}"#,
        ),
        ("/key/generate", "key_alias", r#"{"key_alias": BAD}"#),
        ("/key/generate", "user_id", r#"{"user_id": BAD}"#),
        ("/key/generate", "team_id", r#"{"team_id": BAD}"#),
        ("/key/generate", "models", r#"{"models": [BAD]}"#),
        ("/key/generate", "aliases", r#"{"aliases": {"x": BAD}}"#),
        ("/key/generate", "metadata", r#"{"metadata": {BAD: "v"}}"#),
        (
            "/key/update",
            "key_alias",
            r#"{"key": "KEY", "key_alias": BAD}"#,
        ),
    ];
    let before = snapshot(&s);
    for (path, field, template) in table {
        for bad in bads {
            let body = template
                .replace("KEY", &key)
                .replace("BAD", &serde_json::to_string(bad).unwrap());
            let r = s.request("POST", path, Some(MASTER), Some(body.as_bytes()), &[]);
            let e = assert_error(&r, 400);
            assert_eq!(e["error"]["param"], *field, "{path} {body}: {e}");
        }
    }
    assert_eq!(snapshot(&s), before, "a refused request changed something");
    // Ordinary non-ASCII text is fine.
    s.admin("/team/new", json!({"team_alias": "Équipe 東京"}));
}
