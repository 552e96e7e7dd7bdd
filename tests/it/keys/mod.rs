//! Key endpoints (API.md §2 key format, §3 errors, §4 write-time checks, §5 roles, §6 Keys,
//! §8 keys in URLs and echoes): generate, update, delete, info, list, block/unblock,
//! regenerate, and expiry.

use crate::access::models_of;
use crate::common::*;
use litegate::auth::hash_key;
use serde_json::{json, Value};

/// Two orgs, two teams and one caller per role:
/// org1 [A, B] with team t1 [A]; org2 [A, B, C] with team t2 [A, B].
/// alice and iviewer are `user` members of t1, tadmin its admin; oadmin administers org1,
/// oadmin2 org2; bob and outsider belong to nothing.
fn world() -> World {
    World::new()
        .orgs(&[("org1", &["A", "B"]), ("org2", &["A", "B", "C"])])
        .teams(&[
            ("t1", Some("org1"), &["A"]),
            ("t2", Some("org2"), &["A", "B"]),
        ])
        .users(&[("padmin", "proxy_admin"), ("pview", "proxy_admin_viewer")])
        .internal_users(&["alice", "bob", "tadmin", "oadmin", "oadmin2", "outsider"])
        .users(&[("iviewer", "internal_user_viewer")])
        .team_members(&[
            ("t1", "alice", "user"),
            ("t1", "iviewer", "user"),
            ("t1", "tadmin", "admin"),
        ])
        .org_members(&[
            ("org1", "oadmin", "org_admin"),
            ("org2", "oadmin2", "org_admin"),
        ])
}

/// `/key/generate` as `key`, asserting 200; returns (raw key, response).
fn gen(s: &Server, key: &str, body: Value) -> (String, Value) {
    let v = expect(s, key, "/key/generate", body, 200);
    (v["key"].as_str().unwrap().to_string(), v)
}

/// One column of the key stored under the token of `raw`, as JSON.
fn col(s: &Server, raw: &str, column: &str) -> Value {
    if let Some(db) = &s.pg {
        let row = db
            .client()
            .query_one(
                &format!("SELECT {column}::text, pg_typeof({column})::text FROM api_keys WHERE token = $1"),
                &[&hash_key(raw)],
            )
            .unwrap_or_else(|e| panic!("no key row for {column}: {e}"));
        let (v, ty): (Option<String>, String) = (row.get(0), row.get(1));
        return match (v, ty.as_str()) {
            (None, _) => Value::Null,
            (Some(v), "bigint") => json!(v.parse::<i64>().unwrap()),
            (Some(v), "double precision") => json!(v.parse::<f64>().unwrap()),
            (Some(v), _) => json!(v),
        };
    }
    s.db()
        .query_row(
            &format!("SELECT {column} FROM api_keys WHERE token = ?1"),
            [hash_key(raw)],
            |r| {
                Ok(match r.get_ref(0)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(i) => json!(i),
                    rusqlite::types::ValueRef::Real(x) => json!(x),
                    rusqlite::types::ValueRef::Text(t) => {
                        json!(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(_) => panic!("blob in {column}"),
                })
            },
        )
        .unwrap_or_else(|e| panic!("no key row for {column}: {e}"))
}

fn exists(s: &Server, raw: &str) -> bool {
    s.value::<i64, _>(
        "SELECT count(*) FROM api_keys WHERE token = ?1",
        [hash_key(raw)],
    ) == 1
}

fn key_count(s: &Server) -> i64 {
    s.count("SELECT count(*) FROM api_keys")
}

/// The raw key appears in no text column of api_keys and nowhere in the database files.
fn assert_raw_key_not_stored(s: &Server, raw: &str) {
    if s.pg.is_some() {
        let all = db_bytes(s);
        assert!(
            contains(&all, &hash_key(raw)),
            "the key is stored (as its hash)"
        );
        assert!(!contains(&all, raw), "the raw key is stored");
        return;
    }
    let db = s.db();
    let mut st = db.prepare("SELECT * FROM api_keys").unwrap();
    let n = st.column_count();
    let mut rows = st.query([]).unwrap();
    let mut seen = 0;
    while let Some(r) = rows.next().unwrap() {
        seen += 1;
        for i in 0..n {
            if let rusqlite::types::ValueRef::Text(t) = r.get_ref(i).unwrap() {
                assert!(
                    !String::from_utf8_lossy(t).contains(raw),
                    "raw key stored in api_keys column {i}"
                );
            }
        }
    }
    assert!(seen > 0);
    let bytes = db_bytes(s);
    assert!(
        !bytes.windows(raw.len()).any(|w| w == raw.as_bytes()),
        "raw key found in the database files"
    );
}

fn tokens(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn sorted_tokens(raws: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = raws.iter().map(|r| hash_key(r)).collect();
    out.sort();
    out
}

fn list(s: &Server, key: &str, query: &str) -> Value {
    let r = s.get(&format!("/key/list{query}"), key);
    assert_eq!(r.status, 200, "/key/list{query} -> {}", r.text());
    r.json()
}

fn info(s: &Server, caller: &str, key: &str) -> Resp {
    s.get(&format!("/key/info?key={key}"), caller)
}

mod block_regenerate;
mod generate;
mod read;
mod update_delete;
