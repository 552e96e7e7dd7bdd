//! Three litegate instances on one PostgreSQL database (issue 14 item 3): budgets'
//! reservations, rpm/tpm windows and parallel leases are shared (exact across instances), a
//! crashed instance's leases come back by themselves, a change made through one instance holds
//! on the others' next request, and `kill -9` under load loses no acknowledged write. Always
//! run: they start the shared throwaway cluster themselves (`common::pg::admin_url`).

use crate::common::cluster::{open_stream, try_post, Cluster};
use crate::common::*;
use crate::upstream::{self, Fake, CALL_COST};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A priced mock model: 1 prompt token ("hi") × 0.001 + 10 completion tokens × 0.002.
const MOCK_A: &str =
    "  - model_name: A\n    litellm_params: { model: mock/a, input_cost_per_token: 0.001, \
     output_cost_per_token: 0.002 }\n";
const MOCK_COST: f64 = 0.021;

/// Three instances with the fake upstream's deployments and the mock model `A`.
fn cluster(fake: &Fake, env: &[(&str, &str)]) -> Cluster {
    Cluster::start(3, &upstream::config(fake, MOCK_A), env)
}

fn token(raw: &str) -> String {
    litegate::auth::hash_key(raw)
}

fn key_spend(c: &Cluster, raw: &str) -> f64 {
    c.value(
        "SELECT spend FROM api_keys WHERE token = ?1",
        &[&token(raw)],
    )
}

fn log_rows(c: &Cluster, raw: &str) -> i64 {
    c.count(
        "SELECT count(*) FROM spend_logs WHERE api_key = ?1",
        &[&token(raw)],
    )
}

/// A budget for 20 calls under 200 parallel calls spread round robin over three instances: the
/// budget holds across them. Each call (the fake's `lag`: 100 ms upstream) costs 0.05 and
/// reserves 0.041 (1 prompt token + `max_tokens` 20), so every admitted call saw
/// spend + reservations < 1.0 where each earlier call counts ≥ 0.041: at most 25 are admitted
/// (per-instance reservations would admit up to ~3 budgets' worth); once all settle, the
/// spend reached the budget, so at least 20 were. Each answered call is recorded exactly once.
#[test]
fn a_budget_holds_across_instances_under_parallel_calls() {
    let fake = Fake::start();
    let c = cluster(&fake, &[]);
    let max = 1.0;
    let key = key_for(c.node(0), json!({"max_budget": max}));
    let body = json!({"model": "lag", "max_tokens": 20,
                      "messages": [{"role": "user", "content": "hi"}]});
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(200));
    let calls: Vec<_> = (0..200)
        .map(|i| {
            let (addr, key, body) = (c.node(i).addr.clone(), key.clone(), body.clone());
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let r = try_post(&addr, "/v1/chat/completions", &key, &body).expect("answer");
                let id = r.header("x-litellm-call-id").map(str::to_string);
                (r.status, id, r.text())
            })
        })
        .collect();
    let results: Vec<(u16, Option<String>, String)> =
        calls.into_iter().map(|h| h.join().expect("call")).collect();
    let ok: Vec<&String> = results
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, id, _)| id.as_ref().expect("a 200 has its call id"))
        .collect();
    for (status, _, text) in &results {
        assert!(
            *status == 200 || (*status == 422 && text.contains("Budget has been exceeded")),
            "{status} {text}"
        );
    }
    let n = ok.len();
    assert!((20..=25).contains(&n), "{n} calls answered");
    // Spend recorded exactly once per answered call, and nothing for the refused ones.
    assert_eq!(log_rows(&c, &key), n as i64);
    for id in &ok {
        assert_eq!(
            c.count(
                "SELECT count(*) FROM spend_logs WHERE request_id = ?1",
                &[id]
            ),
            1
        );
    }
    let spend = key_spend(&c, &key);
    assert!(
        (spend - n as f64 * CALL_COST).abs() < 1e-9,
        "{spend} for {n}"
    );
    // The overshoot stays within the calls in flight when the budget was reached: at most 25
    // admitted in all, so at most 1.25 = max + 5 calls.
    assert!(spend <= 25.0 * CALL_COST + 1e-9, "{spend}");
    assert!(spend >= max - 1e-9, "the budget was used up: {spend}");
    // Every reservation was given back.
    assert_eq!(c.count("SELECT count(*) FROM litegate_leases", &[]), 0);
}

/// An end user's budget (issue 15 item 4) holds across instances as a key's does: the end
/// user is one more holder of `litegate_admit`. 60 parallel calls naming one end user with a
/// budget of 0.5, through three keys and three instances: each reserves 0.041 and costs 0.05,
/// so at most 13 are admitted (0.5 / 0.041) and, once all settle, at least 10 (the budget used
/// up); the end user's spend is exactly what was answered.
#[test]
fn an_end_users_budget_holds_across_instances() {
    let fake = Fake::start();
    let c = cluster(&fake, &[]);
    c.node(1).admin(
        "/end_user/new",
        json!({"user_id": "cust", "max_budget": 0.5}),
    );
    let keys: Vec<String> = (0..3).map(|i| key_for(c.node(i), json!({}))).collect();
    let body = json!({"model": "lag", "max_tokens": 20, "user": "cust",
                      "messages": [{"role": "user", "content": "hi"}]});
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(60));
    let calls: Vec<_> = (0..60)
        .map(|i| {
            let (addr, key, body) = (
                c.node(i).addr.clone(),
                keys[i / 3 % 3].clone(),
                body.clone(),
            );
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let r = try_post(&addr, "/v1/chat/completions", &key, &body).expect("answer");
                (r.status, r.text())
            })
        })
        .collect();
    let results: Vec<(u16, String)> = calls.into_iter().map(|h| h.join().expect("call")).collect();
    for (status, text) in &results {
        assert!(
            *status == 200 || (*status == 422 && text.contains("End User=cust over budget")),
            "{status} {text}"
        );
    }
    let n = results.iter().filter(|(s, _)| *s == 200).count();
    assert!((10..=13).contains(&n), "{n} calls answered");
    let spend: f64 = c.value("SELECT spend FROM end_users WHERE id = ?1", &["cust"]);
    assert!(
        (spend - n as f64 * CALL_COST).abs() < 1e-9,
        "{spend} for {n}"
    );
    assert_eq!(c.count("SELECT count(*) FROM litegate_leases", &[]), 0);
}

/// rpm 10 and tpm 25 held across three instances: of calls spread round robin, the window
/// admits 10 in all (429 with `retry-after` for the rest), and a tpm window filled through two
/// instances refuses on the third.
#[test]
fn rpm_and_tpm_limits_hold_across_instances() {
    let fake = Fake::start();
    let c = cluster(&fake, &[]);
    let key = key_for(c.node(0), json!({"rpm_limit": 10}));
    let mut answered = 0;
    for i in 0..30 {
        let r = chat(c.node(i), &key, "A");
        match r.status {
            200 => answered += 1,
            429 => {
                let ra: u64 = r
                    .header("retry-after")
                    .and_then(|v| v.parse().ok())
                    .expect("retry-after");
                assert!((1..=60).contains(&ra), "{ra}");
                assert_error_says(&r, 429, "rpm limit 10");
            }
            s => panic!("{s}: {}", r.text()),
        }
    }
    assert_eq!(answered, 10, "one window for the three instances");

    // Each mock call uses 11 tokens: 0, 11, 22 < 25 are admitted, then 33 ≥ 25 refuses.
    let key = key_for(c.node(0), json!({"tpm_limit": 25}));
    let statuses: Vec<u16> = (0..5).map(|i| chat(c.node(i), &key, "A").status).collect();
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    let r = chat(c.node(2), &key, "A");
    assert_error_says(&r, 429, "tpm limit 25");
}

/// `max_parallel_requests` 2 held across instances: slots are given back when calls end, two
/// streams held open on one instance refuse a third call on the others, and after `kill -9`
/// of that instance its slots come back within the lease expiry (`LITEGATE_LEASE_SECS`).
#[test]
fn parallel_leases_hold_across_instances_and_expire_after_kill_9() {
    let fake = Fake::start();
    let ttl = 3.0;
    let mut c = cluster(&fake, &[("LITEGATE_LEASE_SECS", "3")]);
    let key = key_for(c.node(0), json!({"max_parallel_requests": 2}));
    // Calls one after another never hold more than one slot: each is given back.
    for i in 0..6 {
        let r = chat(c.node(i), &key, "A");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(c.count("SELECT count(*) FROM litegate_leases", &[]), 0);
    // Two streams held open upstream (`gated`) through instance 0.
    let _held: Vec<_> = (0..2)
        .map(|_| open_stream(&c.node(0).addr, &key, "gated"))
        .collect();
    let leases = "SELECT count(*) FROM litegate_leases WHERE kind = 'parallel'";
    assert_eq!(c.count(leases, &[]), 2);
    for i in [1, 2] {
        let r = chat(c.node(i), &key, "A");
        assert_error_says(&r, 429, "parallel limit 2");
        assert_eq!(r.header("retry-after"), Some("1"));
    }
    // The heartbeat keeps them alive past the expiry while instance 0 lives.
    std::thread::sleep(Duration::from_secs_f64(ttl + 1.0));
    assert_eq!(chat(c.node(1), &key, "A").status, 429, "renewed leases");
    let mut child = c.nodes[0].take_child().expect("instance 0 runs");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let killed = Instant::now();
    assert_eq!(chat(c.node(2), &key, "A").status, 429, "not yet expired");
    let mut freed = None;
    while killed.elapsed() < Duration::from_secs_f64(ttl + 5.0) {
        let r = chat(c.node(1), &key, "A");
        if r.status == 200 {
            freed = Some(killed.elapsed());
            break;
        }
        assert_eq!(r.status, 429, "{}", r.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let freed = freed.expect("the crashed instance's slots came back");
    assert!(
        freed <= Duration::from_secs_f64(ttl + 2.0),
        "freed after {freed:?}"
    );
    // Both slots are back: two streams at once through the survivors.
    let _two: Vec<_> = [1, 2]
        .iter()
        .map(|i| open_stream(&c.node(*i).addr, &key, "gated"))
        .collect();
    assert_eq!(chat(c.node(1), &key, "A").status, 429);
}

/// A key blocked, a key deleted and a team's models changed through one instance are refused by
/// the others on their next request (nothing is cached).
#[test]
fn changes_through_one_instance_hold_on_the_others_next_request() {
    let fake = Fake::start();
    let c = cluster(&fake, &[]);
    let (a, b, d) = (c.node(0), c.node(1), c.node(2));
    let key = key_for(a, json!({}));
    for s in [a, b, d] {
        assert_eq!(chat(s, &key, "A").status, 200);
    }
    a.admin("/key/block", json!({"key": key}));
    for s in [b, d] {
        let r = chat(s, &key, "A");
        assert_error(&r, 401);
        assert!(r.text().contains("blocked"), "{}", r.text());
    }
    d.admin("/key/unblock", json!({"key": key}));
    assert_eq!(chat(b, &key, "A").status, 200);

    b.admin("/key/delete", json!({"keys": [key]}));
    for s in [a, d] {
        assert_error(&chat(s, &key, "A"), 401);
    }

    a.admin(
        "/team/new",
        json!({"team_id": "t1", "models": ["A", "lag"]}),
    );
    let tkey = key_for(b, json!({"team_id": "t1"}));
    assert_eq!(chat(d, &tkey, "A").status, 200);
    d.admin("/team/update", json!({"team_id": "t1", "models": ["lag"]}));
    for s in [a, b] {
        assert_error(&chat(s, &tkey, "A"), 403);
        assert_eq!(chat(s, &tkey, "lag").status, 200);
    }
}

/// `kill -9` of one instance under load: every call it answered 200 has its spend-log row and
/// its spend (committed before the answer), and the survivors keep answering.
#[test]
fn kill_9_of_an_instance_under_load_loses_no_acknowledged_write() {
    let fake = Fake::start();
    let mut c = cluster(&fake, &[]);
    let key = key_for(
        c.node(0),
        json!({"max_budget": 1000.0, "rpm_limit": 100000}),
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addrs: Vec<String> = c.nodes.iter().map(|s| s.addr.clone()).collect();
    let workers: Vec<_> = (0..9)
        .map(|i| {
            let (addr, key, stop) = (addrs[i % 3].clone(), key.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acked: Vec<String> = Vec::new();
                let mut failed = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match try_post(&addr, "/v1/chat/completions", &key, &chat_body("A")) {
                        Some(r) if r.status == 200 => {
                            acked.push(r.header("x-litellm-call-id").expect("call id").to_string())
                        }
                        Some(r) => panic!("{}: {}", r.status, r.text()),
                        None => failed += 1,
                    }
                }
                (i % 3, acked, failed)
            })
        })
        .collect();
    let logged = |c: &Cluster| log_rows(c, &key);
    until("calls answered on every instance", 20, || logged(&c) >= 60);
    let mut child = c.nodes[1].take_child().expect("instance 1 runs");
    child.kill().expect("kill -9");
    child.wait().expect("reaped");
    let at_kill = logged(&c);
    until("the survivors keep answering", 20, || {
        logged(&c) >= at_kill + 60
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked_by_killed = 0;
    let mut all: Vec<String> = Vec::new();
    for w in workers {
        let (node, acked, failed) = w.join().expect("worker");
        if node == 1 {
            // Three workers call instance 1: any of them may have been answered before the kill.
            acked_by_killed += acked.len();
        } else {
            assert_eq!(failed, 0, "instance {node} stayed up");
        }
        all.extend(acked);
    }
    assert!(acked_by_killed > 0, "instance 1 answered before it died");
    let ids: Vec<Value> = all.iter().map(|s| json!(s)).collect();
    let found = c.count(
        "SELECT count(*) FROM spend_logs WHERE request_id IN
         (SELECT value FROM json_array_elements_text(CAST(?1 AS TEXT)::json))",
        &[&Value::Array(ids).to_string()],
    );
    assert_eq!(found, all.len() as i64, "every 200 has its spend-log row");
    // The key's spend is the sum of its rows' (a call killed between its commit and its
    // answer is recorded and not acknowledged: counted in both, never in one only).
    let rows = log_rows(&c, &key);
    assert!(rows >= all.len() as i64);
    let spend = key_spend(&c, &key);
    assert!(
        (spend - rows as f64 * MOCK_COST).abs() < 1e-6,
        "{spend} for {rows} rows"
    );
    // What the killed instance held is given back (its leases expire; none were renewed).
    let live = "SELECT count(*) FROM litegate_leases WHERE expires_at > now()";
    until("no live lease of the dead instance", 30, || {
        c.count(live, &[]) == 0
    });
}

/// A database error while admitting is a 503, never an admission without the check; a key
/// with no budget and no limit makes no admission round trip at all (it is answered even
/// then).
#[test]
fn admission_fails_closed_when_the_database_cannot_decide() {
    let fake = Fake::start();
    let c = cluster(&fake, &[]);
    let limited = key_for(c.node(0), json!({"rpm_limit": 100}));
    let budgeted = key_for(c.node(0), json!({"max_budget": 100.0}));
    let free = key_for(c.node(0), json!({}));
    assert_eq!(chat(c.node(1), &limited, "A").status, 200);
    c.exec("ALTER FUNCTION litegate_admit RENAME TO litegate_admit_away");
    for (i, k) in [&limited, &budgeted].iter().enumerate() {
        let r = chat(c.node(i), k, "A");
        assert_error(&r, 503);
    }
    assert_eq!(chat(c.node(2), &free, "A").status, 200);
    c.exec("ALTER FUNCTION litegate_admit_away RENAME TO litegate_admit");
    assert_eq!(chat(c.node(1), &budgeted, "A").status, 200);
    assert_eq!(log_rows(&c, &limited), 1);
    assert_eq!(log_rows(&c, &budgeted), 1);
}

/// `litegate_admit` itself, on a database of its own: it reads each level's recorded spend
/// (key, team, organization, user, team member, organization member) and refuses at the first
/// budget whose spend + live reservations reaches its maximum; reservations add up, are given
/// back by deleting the call's rows, and stop counting once expired; the sweep deletes what
/// expired and the buckets that left every window.
#[test]
fn the_admission_function_reads_every_levels_spend_and_reservations() {
    let db = crate::common::pg::PgDb::create(&crate::common::pg::admin_url());
    let mut c = db.client();
    litegate::db::pg::migrate(&mut c).expect("migrate");
    let at = "'2026-01-01T00:00:00.000Z'";
    c.batch_execute(&format!(
        "INSERT INTO organizations (id, alias, spend, created_at, updated_at)
             VALUES ('o', 'o', 2, {at}, {at});
         INSERT INTO teams (id, alias, organization_id, spend, created_at, updated_at)
             VALUES ('t', 't', 'o', 3, {at}, {at});
         INSERT INTO users (id, email, user_role, spend, created_at, updated_at)
             VALUES ('u', 'u@x', 'internal_user', 4, {at}, {at});
         INSERT INTO api_keys (token, key_name, team_id, user_id, spend, created_at, updated_at)
             VALUES ('k', 'sk-...k', 't', 'u', 1, {at}, {at});
         INSERT INTO team_members (team_id, user_id, role, spend, created_at, updated_at)
             VALUES ('t', 'u', 'user', 5, {at}, {at});
         INSERT INTO organization_members (organization_id, user_id, user_role, spend,
             created_at, updated_at) VALUES ('o', 'u', 'internal_user', 6, {at}, {at});"
    ))
    .expect("seed");
    let scopes = ["key", "team", "org", "user", "team_member", "org_member"];
    let holders = ["k", "t", "o", "u", "t/u", "o/u"];
    let a = ["k", "t", "o", "u", "t", "o"];
    let b = ["", "", "", "", "u", "u"];
    let spends = [1.0, 3.0, 2.0, 4.0, 5.0, 6.0];
    let admit = |c: &mut postgres::Client, max: &[f64], ttl: f64| {
        let r = c
            .query_one(
                "SELECT lease, refused, idx, spend FROM litegate_admit('test', $1, 0.1,
                 $2, $3, $4, $5, $6, '{}', '{}', '{}', '{}', '{}')",
                &[&ttl, &&scopes[..], &&holders[..], &&a[..], &&b[..], &max],
            )
            .expect("admit");
        let lease: Option<i64> = r.get(0);
        let refused: Option<String> = r.get(1);
        let idx: Option<i32> = r.get(2);
        let spend: Option<f64> = r.get(3);
        (lease, refused, idx, spend)
    };
    // Each level refuses alone when its maximum is its recorded spend.
    for i in 0..6 {
        let mut max: Vec<f64> = spends.iter().map(|s| s + 100.0).collect();
        max[i] = spends[i];
        let (lease, refused, idx, spend) = admit(&mut c, &max, 20.0);
        assert_eq!(lease, None);
        assert_eq!(refused.as_deref(), Some("budget"), "{}", scopes[i]);
        assert_eq!(idx, Some(i as i32 + 1), "{}", scopes[i]);
        assert_eq!(spend, Some(spends[i]), "{}", scopes[i]);
    }
    // Reservations of 0.1 on the team member's budget (spend 5, max 5.15): two fit (5 + 0.1 <
    // 5.15), the third is refused; deleting a call's rows gives its reservation back.
    let mut max: Vec<f64> = spends.iter().map(|s| s + 100.0).collect();
    max[4] = 5.15;
    let first = admit(&mut c, &max, 20.0).0.expect("admitted, rows written");
    let second = admit(&mut c, &max, 20.0).0.expect("admitted");
    assert_ne!(first, second);
    let rows: i64 = c
        .query_one(
            "SELECT count(*) FROM litegate_leases WHERE id = $1",
            &[&first],
        )
        .expect("rows")
        .get(0);
    assert_eq!(rows, 6, "one reservation per budget");
    assert_eq!(admit(&mut c, &max, 20.0).1.as_deref(), Some("budget"));
    c.execute("DELETE FROM litegate_leases WHERE id = $1", &[&first])
        .expect("release");
    let third = admit(&mut c, &max, 0.2).0.expect("admitted again");
    assert_eq!(admit(&mut c, &max, 20.0).1.as_deref(), Some("budget"));
    // `third` expires after 0.2 s: its reservation stops counting.
    std::thread::sleep(Duration::from_millis(400));
    let fourth = admit(&mut c, &max, 20.0);
    assert!(
        fourth.0.is_some() && fourth.1.is_none(),
        "{fourth:?} ({third})"
    );
    // The sweep deletes expired leases and buckets that left every window, nothing else.
    c.batch_execute(
        "INSERT INTO litegate_rates (scope, holder, kind, sec, n) VALUES
           ('key', 'old', 'rpm', floor(extract(epoch FROM now()))::BIGINT - 61, 1),
           ('key', 'new', 'rpm', floor(extract(epoch FROM now()))::BIGINT - 5, 1)",
    )
    .expect("buckets");
    let pool = litegate::db::pg::PgPool::open(&db.url, 1).expect("pool");
    litegate::db::leases::sweep(&pool).expect("sweep");
    let rows = |c: &mut postgres::Client, sql: &str| -> Vec<String> {
        let mut v: Vec<String> = c
            .query(sql, &[])
            .expect("rows")
            .iter()
            .map(|r| r.get(0))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        rows(&mut c, "SELECT holder FROM litegate_rates"),
        vec!["new"]
    );
    let mut kept = vec![second.to_string(), fourth.0.unwrap_or(0).to_string()];
    kept.sort();
    assert_eq!(
        rows(&mut c, "SELECT DISTINCT id::TEXT FROM litegate_leases"),
        kept,
        "the expired `third` is gone, the live ones stay"
    );
}

/// Issue 15 item 3: a model added through one instance is callable through every other on its
/// next request (the models' generation read by THE key check; a master-key caller reads it
/// with one statement), its update and its deletion likewise.
#[test]
fn a_model_stored_through_one_instance_holds_on_the_others_next_request() {
    let fake = Fake::start();
    let c = cluster(&fake, &[]);
    let (a, b, d) = (c.node(0), c.node(1), c.node(2));
    let key = key_for(a, json!({}));
    for s in [b, d] {
        assert_error_says(&chat(s, &key, "added"), 400, "Invalid model name");
    }
    a.admin(
        "/model/new",
        json!({"model_name": "added", "litellm_params": {"model": "openai/json",
               "api_base": fake.api_base(), "api_key": upstream::UPSTREAM_KEY},
               "model_info": {"id": "added-1"}}),
    );
    for s in [b, d] {
        let r = chat(s, &key, "added");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(chat(s, MASTER, "added").status, 200);
    }
    assert_eq!(
        fake.last().header("authorization"),
        Some(&*format!("Bearer {}", upstream::UPSTREAM_KEY))
    );
    b.admin(
        "/model/update",
        json!({"model_info": {"id": "added-1"}, "model_name": "renamed"}),
    );
    for s in [a, d] {
        assert_error(&chat(s, &key, "added"), 400);
        assert_eq!(chat(s, &key, "renamed").status, 200);
    }
    d.admin("/model/delete", json!({"id": "added-1"}));
    for s in [a, b] {
        assert_error(&chat(s, &key, "renamed"), 400);
        let info = s.get("/model/info", MASTER).json().to_string();
        assert!(!info.contains("added-1"), "{info}");
    }
}

/// `budget_enforcement: strict` on three instances (issue 16 item 2): 200 callers at once, each
/// making 5 calls spread round robin over the instances, on a key with a budget of 5.0. Each
/// call costs 0.05 and reserves its worst case (~0.12) in the shared reservations: the recorded
/// spend never passes the budget, each answered call is recorded exactly once, every
/// reservation is given back, and what remains at the end is less than one more worst case.
#[test]
fn strict_budget_never_overshoots_across_instances() {
    let fake = Fake::start();
    let config = upstream::config(&fake, MOCK_A) + "  budget_enforcement: strict\n";
    let c = Cluster::start(3, &config, &[]);
    let max = 5.0;
    let key = key_for(c.node(0), json!({"max_budget": max}));
    let body = json!({"model": "lag", "max_tokens": 20,
                      "messages": [{"role": "user", "content": "hi"}]});
    let worst = serde_json::to_vec(&body).expect("body").len() as f64 * upstream::IN_COST
        + 20.0 * upstream::OUT_COST;
    let addrs: Vec<Vec<String>> = (0..200)
        .map(|i| (0..5).map(|j| c.node(i + j).addr.clone()).collect())
        .collect();
    let results = crate::strict_budgets::parallel_strict_calls(&addrs, &key, &body);
    let ok: Vec<&String> = results
        .iter()
        .filter(|(s, _, _)| *s == 200)
        .map(|(_, id, _)| id.as_ref().expect("a 200 has its call id"))
        .collect();
    let n = ok.len();
    let spend = key_spend(&c, &key);
    eprintln!(
        "strict, 3 PostgreSQL instances: 200 callers x 5 calls: {n} answered, {} refused; \
         recorded spend {spend:.6} of max_budget {max} (worst case per call {worst:.3})",
        results.len() - n
    );
    assert!(
        spend <= max,
        "recorded spend {spend} passed max_budget {max}"
    );
    assert_eq!(log_rows(&c, &key), n as i64);
    for id in &ok {
        assert_eq!(
            c.count(
                "SELECT count(*) FROM spend_logs WHERE request_id = ?1",
                &[id]
            ),
            1
        );
    }
    assert!(
        (spend - n as f64 * CALL_COST).abs() < 1e-9,
        "{spend} for {n}"
    );
    assert_eq!(c.count("SELECT count(*) FROM litegate_leases", &[]), 0);
    // One call at a time, round robin: admitted while the worst case fits, then refused.
    for i in 0.. {
        let r = try_post(&c.node(i).addr, "/v1/chat/completions", &key, &body).expect("answer");
        if r.status == 422 {
            assert!(r.text().contains("would be exceeded"), "{}", r.text());
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(i < 100);
    }
    let spend = key_spend(&c, &key);
    assert!(spend <= max && max - spend < worst, "{spend}");
}
