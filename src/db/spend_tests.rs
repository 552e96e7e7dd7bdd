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
                api_key: s("k"),
                ..LogFilter::default()
            },
            "SEARCH spend_logs USING INDEX spend_logs_key",
        ),
        (
            LogFilter {
                api_key: s("k"),
                team_id: s("t"),
                end: s("2027"),
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
                owner: s("u"),
                api_key: s("k"),
                start: s("2026"),
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
        // One key's rows come newest first out of the index: no sort of all of them (a key
        // with millions of rows and LIMIT 50 reads 50 entries).
        if f.api_key.is_some() {
            assert!(
                !plan.iter().any(|d| d.contains("TEMP B-TREE")),
                "{sql}: {plan:?}"
            );
        }
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

/// issue 17, round 4: the hand-written metadata is byte for byte what serde_json wrote from
/// the borrowed fields (round 3's serializer), on generated records: strings with quotes,
/// backslashes, control characters, DEL, non-ASCII, empty or absent; any cache figures.
#[test]
fn log_metadata_is_what_serde_wrote() {
    use proptest::prelude::*;
    #[derive(serde::Serialize)]
    struct Details {
        cache_creation_tokens: u64,
        cached_tokens: u64,
    }
    #[derive(serde::Serialize)]
    struct Usage {
        cache_creation_input_tokens: u64,
        cache_read_input_tokens: u64,
        prompt_tokens_details: Details,
    }
    #[derive(serde::Serialize)]
    struct Meta<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        additional_usage_values: Option<Usage>,
        user_api_key: Option<&'a str>,
        user_api_key_alias: Option<&'a str>,
        user_api_key_end_user_id: Option<&'a str>,
        user_api_key_org_id: Option<&'a str>,
        user_api_key_team_alias: Option<&'a str>,
        user_api_key_team_id: Option<&'a str>,
        user_api_key_user_id: Option<&'a str>,
    }
    let old = |r: &SpendRecord| {
        let (read, write) = (r.cache_read_tokens, r.cache_write_tokens);
        serde_json::to_string(&Meta {
            additional_usage_values: (read != 0 || write != 0).then_some(Usage {
                cache_creation_input_tokens: write,
                cache_read_input_tokens: read,
                prompt_tokens_details: Details {
                    cache_creation_tokens: write,
                    cached_tokens: read,
                },
            }),
            user_api_key: r.token.as_deref(),
            user_api_key_alias: r.key_alias.as_deref(),
            user_api_key_end_user_id: r.end_user.as_deref(),
            user_api_key_org_id: r.organization_id.as_deref(),
            user_api_key_team_alias: r.team_alias.as_deref(),
            user_api_key_team_id: r.team_id.as_deref(),
            user_api_key_user_id: r.user_id.as_deref(),
        })
        .expect("serialize")
    };
    let text = || {
        proptest::option::of(prop_oneof![
            "[0-9a-f]{64}",
            "[a-z0-9_-]{0,12}",
            "[\\x00-\\x7f]{0,8}",
            any::<String>(),
            Just("\"q\\\u{7f}\u{1f}é🔑".to_string()),
        ])
    };
    let number = || prop_oneof![Just(0u64), 0u64..1000, any::<u64>()];
    let record = (
        (text(), text(), text(), text()),
        (text(), text(), text()),
        (number(), number()),
    )
        .prop_map(
            |((token, key_alias, end_user, team_alias), (o, t, u), (cr, cw))| SpendRecord {
                token,
                key_alias,
                end_user,
                team_alias,
                organization_id: o,
                team_id: t,
                user_id: u,
                cache_read_tokens: cr,
                cache_write_tokens: cw,
                ..SpendRecord::default()
            },
        );
    proptest!(ProptestConfig::with_cases(2000), |(r in record)| {
        prop_assert_eq!(log_metadata(&r), old(&r));
    });
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

/// issue 17 (schema 0011): a database with spend-log rows upgraded from schema 10 answers
/// every `/spend/logs` filter as the old statements did (`api_key = ?`, the owner's
/// `api_key IN (...)`), with keys sharing their 8-character prefix, short keys and no key.
#[test]
fn schema_11_upgrade_answers_as_before() {
    let dir = tempfile::tempdir().expect("tmp");
    let c = rusqlite::Connection::open(dir.path().join("old.db")).expect("open");
    // The keys' owners need no rows of their own here.
    c.pragma_update(None, "foreign_keys", "OFF").expect("fk");
    for (n, sql) in crate::db::migrate::MIGRATIONS
        .iter()
        .filter(|(n, _)| *n <= 10)
    {
        c.execute_batch(sql).expect("old schema");
        c.pragma_update(None, "user_version", n).expect("version");
    }
    let keys = [
        Some("aaaaaaaa0001"),
        Some("aaaaaaaa0002"),
        Some("aaaaaaaa"),
        Some("aaaa"),
        Some("bbbbbbbb0001"),
        Some("é-ключ-🔑-long-key"),
        None,
    ];
    for (i, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            let user = if i % 2 == 0 { "u-even" } else { "u-odd" };
            c.execute(
                "INSERT INTO api_keys (token, key_name, user_id, created_at, updated_at)
                VALUES (?1, 'sk-...', ?2, 'now', 'now')",
                [k, &user],
            )
            .expect("key");
        }
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let recs: Vec<SpendRecord> = (0..400)
        .map(|i| SpendRecord {
            request_id: format!("req-{i}"),
            token: keys[(next() % keys.len() as u64) as usize].map(str::to_string),
            team_id: Some(format!("t{}", next() % 2)),
            model: "m".into(),
            call_type: "acompletion".into(),
            // Ties on start_time: the order falls back to the id.
            start_time: format!("2026-01-01T00:{:02}:00.000Z", next() % 40),
            end_time: "2026-01-01T01:00:00.000Z".into(),
            status: "success".into(),
            ..SpendRecord::default()
        })
        .collect();
    let refs: Vec<&SpendRecord> = recs.iter().collect();
    insert_logs(&mut &c, &refs).expect("rows");
    // The statements of schema 10 (before 0011), as `logs_sql` wrote them.
    let old = |f: &LogFilter, limit: i64| -> Vec<String> {
        let conds = [
            (f.api_key.as_ref(), "api_key = ?"),
            (f.team_id.as_ref(), "team_id = ?"),
            (f.start.as_ref(), "start_time >= ?"),
            (
                f.owner.as_ref(),
                "api_key IN (SELECT token FROM api_keys WHERE user_id = ?)",
            ),
        ];
        let present: Vec<_> = conds.iter().filter(|(v, _)| v.is_some()).collect();
        let mut sql = String::from("SELECT request_id FROM spend_logs");
        if !present.is_empty() {
            sql.push_str(" WHERE ");
            let w: Vec<&str> = present.iter().map(|(_, c)| *c).collect();
            sql.push_str(&w.join(" AND "));
        }
        sql.push_str(" ORDER BY start_time DESC, id DESC LIMIT ?");
        let mut args: Vec<&dyn rusqlite::ToSql> = Vec::new();
        for (v, _) in &present {
            args.push(v.as_ref().expect("present"));
        }
        args.push(&limit);
        let mut st = c.prepare(&sql).expect("old sql");
        let out = st
            .query_map(args.as_slice(), |r| r.get::<_, String>(0))
            .expect("old query")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("old rows");
        out
    };
    let new = |c: &rusqlite::Connection, f: &LogFilter, limit: i64| -> Vec<String> {
        logs(c, f, limit)
            .expect("logs")
            .iter()
            .map(|v| v["request_id"].as_str().expect("id").to_string())
            .collect()
    };
    let s = |v: &str| Some(v.to_string());
    let mut filters = vec![LogFilter::default()];
    for k in keys.iter().flatten().chain(&["aaaaaaaa000", "zzzz", ""]) {
        filters.push(LogFilter {
            api_key: s(k),
            ..LogFilter::default()
        });
        filters.push(LogFilter {
            api_key: s(k),
            team_id: s("t1"),
            start: s("2026-01-01T00:20"),
            ..LogFilter::default()
        });
    }
    for u in ["u-even", "u-odd", "nobody"] {
        filters.push(LogFilter {
            owner: s(u),
            ..LogFilter::default()
        });
        filters.push(LogFilter {
            owner: s(u),
            api_key: s("aaaaaaaa0002"),
            ..LogFilter::default()
        });
    }
    let before: Vec<Vec<String>> = filters.iter().map(|f| old(f, 1000)).collect();
    let mut upgraded = crate::db::open(&dir.path().join("old.db")).expect("reopen");
    crate::db::migrate::migrate(&mut upgraded).expect("migrate to 11");
    assert_eq!(
        crate::db::migrate::version(&upgraded).expect("v"),
        crate::db::migrate::latest()
    );
    let mut nonempty = 0;
    for (f, want) in filters.iter().zip(&before) {
        assert_eq!(&new(&upgraded, f, 1000), want, "{f:?}");
        assert_eq!(new(&upgraded, f, 7), want[..want.len().min(7)], "{f:?}");
        nonempty += usize::from(!want.is_empty());
    }
    assert!(nonempty > 15, "the filters find rows ({nonempty})");
    // With the table's statistics too, a key is found through the prefix index.
    upgraded.execute_batch("ANALYZE").expect("analyze");
    for f in &filters[1..3] {
        let sql = logs_sql(f);
        let mut st = upgraded
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("prepare");
        bind_logs(&mut st, f, 50).expect("bind");
        let mut rows = st.raw_query();
        let mut plan: Vec<String> = Vec::new();
        while let Some(r) = rows.next().expect("rows") {
            plan.push(r.get(3).expect("detail"));
        }
        assert!(
            plan.iter()
                .any(|d| d.starts_with("SEARCH spend_logs USING INDEX spend_logs_key")),
            "{sql}: {plan:?}"
        );
    }
}
