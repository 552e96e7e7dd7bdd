//! The spend module's tests: the `/spend/logs` plans, the spend-log row's metadata and
//! multi-row INSERTs, the budget reset's plans.

use super::*;

/// issue 6: `/spend/logs` finds a request id, a key and a user's keys through indexes (the
/// one-statement version with `?n IS NULL OR ...` walked the whole log for each of them and
/// scanned every key for a user's rows), and lists by time through the time index.
#[test]
fn issue_6_spend_log_reads_use_indexes() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = crate::db::open(&dir.path().join("x.db")).expect("open");
    crate::db::migrate::migrate(&mut c).expect("migrate");
    let s = |v: &str| Some(v.to_string());
    let cases: Vec<(LogFilter, &str)> = vec![
        (
            LogFilter {
                request_id: s("r"),
                ..LogFilter::default()
            },
            "SEARCH spend_logs USING INDEX sqlite_autoindex_spend_logs_1",
        ),
        (
            LogFilter {
                api_key: s("k"),
                start: s("2026"),
                ..LogFilter::default()
            },
            "SEARCH spend_logs USING INDEX spend_logs_key",
        ),
        (
            LogFilter {
                owner: s("u"),
                ..LogFilter::default()
            },
            "SEARCH spend_logs USING INDEX spend_logs_key",
        ),
        (
            LogFilter {
                team_id: s("t"),
                ..LogFilter::default()
            },
            "SCAN spend_logs USING INDEX spend_logs_time",
        ),
    ];
    for (f, want) in cases {
        let sql = logs_sql(&f);
        let mut st = c
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare");
        bind_logs(&mut st, &f, 10).expect("bind");
        let mut rows = st.raw_query();
        let mut plan: Vec<String> = Vec::new();
        while let Some(r) = rows.next().expect("rows") {
            plan.push(r.get(3).expect("detail"));
        }
        assert!(plan.iter().any(|d| d.starts_with(want)), "{sql}: {plan:?}");
        assert!(
            !plan
                .iter()
                .any(|d| d == "SCAN spend_logs" || d.starts_with("SCAN api_keys")),
            "{sql}: {plan:?}"
        );
    }
}

/// issue 17: the spend-log metadata written from borrowed fields is byte for byte what the
/// `json!` value wrote (same keys, same order, `null`s, the cache figures only when any).
#[test]
fn log_metadata_is_what_the_json_value_wrote() {
    let old = |r: &SpendRecord| {
        let mut m = serde_json::json!({
            "user_api_key": r.token,
            "user_api_key_alias": r.key_alias,
            "user_api_key_team_id": r.team_id,
            "user_api_key_team_alias": r.team_alias,
            "user_api_key_org_id": r.organization_id,
            "user_api_key_user_id": r.user_id,
            "user_api_key_end_user_id": r.end_user,
        });
        if r.cache_read_tokens != 0 || r.cache_write_tokens != 0 {
            let (read, write) = (r.cache_read_tokens, r.cache_write_tokens);
            m["additional_usage_values"] = serde_json::json!({
                "cache_read_input_tokens": read,
                "cache_creation_input_tokens": write,
                "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": write},
            });
        }
        m.to_string()
    };
    let s = |v: &str| Some(v.to_string());
    let full = SpendRecord {
        token: s("tok\"quoted\"\n"),
        key_alias: s("alias é"),
        team_id: s("t"),
        team_alias: s("ta"),
        organization_id: s("o"),
        user_id: s("u"),
        end_user: s("eu"),
        cache_read_tokens: 5,
        cache_write_tokens: 0,
        ..SpendRecord::default()
    };
    let only_write = SpendRecord {
        cache_write_tokens: 7,
        ..SpendRecord::default()
    };
    for r in [SpendRecord::default(), full, only_write] {
        assert_eq!(log_metadata(&r), old(&r));
    }
}

/// issue 17: the multi-row INSERTs write the rows one statement per row wrote (every
/// column, ids in batch order), on generated records of every batch size up to 40 (every
/// mix of `LOG_CHUNKS`), and a duplicate request id fails its statement with nothing written.
#[test]
fn multi_row_inserts_write_what_one_row_at_a_time_wrote() {
    let old = "INSERT INTO spend_logs (request_id, api_key, team_id, organization_id,
        user_id, model, call_type, prompt_tokens, completion_tokens, total_tokens, spend,
        start_time, end_time, status, metadata)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let dir = tempfile::tempdir().expect("tmp");
    let open = |name: &str| {
        let mut c = crate::db::open(&dir.path().join(name)).expect("open");
        crate::db::migrate::migrate(&mut c).expect("migrate");
        c
    };
    let (a, b) = (open("a.db"), open("b.db"));
    let mut id = 0;
    for n in 0..=40 {
        let recs: Vec<SpendRecord> = (0..n)
            .map(|_| {
                id += 1;
                let mut opt = |v: &str| (next() % 3 != 0).then(|| format!("{v}-{}", next() % 5));
                SpendRecord {
                    request_id: format!("req-{id}"),
                    token: opt("k"),
                    team_id: opt("t"),
                    organization_id: opt("o"),
                    user_id: opt("u"),
                    key_alias: opt("ka \"q\""),
                    team_alias: opt("ta"),
                    end_user: opt("eu"),
                    model: format!("m{}", next() % 3),
                    call_type: "acompletion".into(),
                    prompt_tokens: next() % 1000,
                    completion_tokens: next() % 1000,
                    cache_read_tokens: next() % 2 * (next() % 50),
                    cache_write_tokens: next() % 2 * (next() % 50),
                    spend: (next() % 10_000) as f64 / 1e4,
                    start_time: format!("2026-01-01T00:00:{:02}.000Z", next() % 60),
                    end_time: "2026-01-01T00:01:00.000Z".into(),
                    status: "success".into(),
                }
            })
            .collect();
        let refs: Vec<&SpendRecord> = recs.iter().collect();
        insert_logs(&mut &a, &refs).expect("multi-row");
        for r in &recs {
            let m = log_metadata(r);
            let args: [&dyn rusqlite::ToSql; 15] = [
                &r.request_id,
                &r.token,
                &r.team_id,
                &r.organization_id,
                &r.user_id,
                &r.model,
                &r.call_type,
                &(r.prompt_tokens as i64),
                &(r.completion_tokens as i64),
                &((r.prompt_tokens + r.completion_tokens) as i64),
                &r.spend,
                &r.start_time,
                &r.end_time,
                &r.status,
                &m,
            ];
            b.execute(old, args.as_slice()).expect("one row");
        }
    }
    let rows = |c: &rusqlite::Connection| -> Vec<String> {
        let mut st = c
            .prepare(
                "SELECT id, request_id, api_key, team_id, organization_id, user_id, model,
                call_type, prompt_tokens, completion_tokens, total_tokens, spend, start_time,
                end_time, status, metadata FROM spend_logs ORDER BY id",
            )
            .expect("prepare");
        let out = st
            .query_map([], |r| {
                (0..16)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map(|v| v.join("|"))
            })
            .expect("query")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("rows");
        out
    };
    let (ra, rb) = (rows(&a), rows(&b));
    assert_eq!(ra.len(), 40 * 41 / 2);
    assert_eq!(ra, rb);
    // A duplicate in a chunk of 4: the statement fails and writes none of its rows.
    let fresh = |i: u32| SpendRecord {
        request_id: format!("new-{i}"),
        ..SpendRecord::default()
    };
    let (x, y, dup) = (
        fresh(1),
        fresh(2),
        SpendRecord {
            request_id: "req-1".into(),
            ..SpendRecord::default()
        },
    );
    let z = fresh(3);
    assert!(insert_logs(&mut &a, &[&x, &y, &dup, &z]).is_err());
    assert_eq!(rows(&a), ra, "nothing of the failed statement written");
}

/// issue 6: the budget-reset thread ran a full scan of `api_keys` once a minute.
#[test]
fn issue_6_budget_reset_uses_indexes() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut c = crate::db::open(&dir.path().join("x.db")).expect("open");
    crate::db::migrate::migrate(&mut c).expect("migrate");
    c.execute_batch("ANALYZE").expect("analyze");
    for (select, _) in RESETS {
        let plan: Vec<String> = c
            .prepare(&format!("EXPLAIN QUERY PLAN {select}"))
            .expect("prepare")
            .query_map(["2026-01-01T00:00:00.000Z"], |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("rows");
        assert!(
            plan.iter().all(|d| !d.starts_with("SCAN")),
            "{select}: {plan:?}"
        );
    }
}
