//! Key-check benchmark (issue 3): THE key-check statement plus the resolver, on a database
//! with 10,000 orgs, 100,000 teams and 1,000,000 keys, against the bare indexed lookup of the
//! same keys. Run: `cargo bench --bench key_check` (env BENCH_KEYS to scale down).

use litegate::access::Catalog;
use litegate::auth;
use litegate::config::Deployment;
use litegate::db::key_check;
use rand::{Rng, SeedableRng};
use rusqlite::params;
use std::time::Instant;

fn dep(name: &str) -> Deployment {
    Deployment {
        model_name: name.into(),
        model: format!("mock/{name}"),
        api_base: None,
        api_key: None,
        rpm: None,
        tpm: None,
        input_cost_per_token: 0.0,
        output_cost_per_token: 0.0,
        timeout_secs: 600.0,
        stream_timeout_secs: 600.0,
        id: name.into(),
        access_groups: vec![],
        model_info: Default::default(),
        route: Default::default(),
    }
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n_keys: usize = std::env::var("BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let n_teams = (n_keys / 10).max(1);
    let n_orgs = (n_keys / 100).max(1);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bench.db");
    let t = Instant::now();
    {
        let mut c = litegate::db::open(&path)?;
        litegate::db::migrate::migrate(&mut c)?;
        let tx = c.transaction()?;
        let now = "2026-01-01T00:00:00.000Z";
        {
            let mut st = tx.prepare(
                "INSERT INTO organizations (id, alias, models, created_at, updated_at)
                 VALUES (?1, ?1, '[\"m0\",\"m1\",\"m2\",\"m3\"]', ?2, ?2)",
            )?;
            for i in 0..n_orgs {
                st.execute(params![format!("org-{i}"), now])?;
            }
            let mut st = tx.prepare(
                "INSERT INTO teams (id, alias, organization_id, models, created_at, updated_at)
                 VALUES (?1, ?1, ?2, '[\"all-org-models\"]', ?3, ?3)",
            )?;
            for i in 0..n_teams {
                st.execute(params![
                    format!("team-{i}"),
                    format!("org-{}", i % n_orgs),
                    now
                ])?;
            }
            let mut st = tx.prepare(
                "INSERT INTO api_keys (token, key_name, models, team_id, created_at, updated_at)
                 VALUES (?1, 'sk-...bench', '[\"all-org-models\"]', ?2, ?3, ?3)",
            )?;
            for i in 0..n_keys {
                st.execute(params![
                    auth::hash_key(&format!("sk-bench-{i}")),
                    format!("team-{}", i % n_teams),
                    now
                ])?;
            }
        }
        tx.commit()?;
        c.execute_batch("ANALYZE")?;
    }
    let seed_s = t.elapsed().as_secs_f64();
    // As the server's key check: the hot connection with THE statement prepared beside it.
    let mut hot = litegate::db::Hot::new(litegate::db::open_hot(&path)?);
    let cat = Catalog::new((0..8).map(|i| dep(&format!("m{i}"))).collect());
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let iters = 200_000;
    let tokens: Vec<String> = (0..iters)
        .map(|_| auth::hash_key(&format!("sk-bench-{}", rng.gen_range(0..n_keys))))
        .collect();
    // Steady state of a long-running server: every page of every table and index mapped once.
    for sql in [
        "SELECT count(*) FROM api_keys INDEXED BY sqlite_autoindex_api_keys_1",
        "SELECT sum(length(metadata)) FROM api_keys",
        "SELECT sum(length(models)) FROM teams",
        "SELECT sum(length(models)) FROM organizations",
    ] {
        let _: i64 = hot
            .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .map(|v| v.unwrap_or(0))?;
    }
    // Warm the page cache for both measurements alike.
    for t in tokens.iter().take(20_000) {
        let _ = key_check::load_key(&hot, t)?;
    }
    let mut bare = Vec::with_capacity(iters);
    let mut full = Vec::with_capacity(iters);
    let mut full_cached = Vec::with_capacity(iters);
    let mut stmt_only = Vec::with_capacity(iters);
    let mut ok = 0usize;
    // Four passes over fresh random keys each (no pass inherits pages another just touched),
    // repeated in alternation so all see the same overall cache state.
    let fresh = |rng: &mut rand::rngs::StdRng| -> Vec<String> {
        (0..iters / 4)
            .map(|_| auth::hash_key(&format!("sk-bench-{}", rng.gen_range(0..n_keys))))
            .collect()
    };
    drop(tokens);
    for _round in 0..4 {
        for t in &fresh(&mut rng) {
            let s = Instant::now();
            let id: Option<Option<String>> = {
                use rusqlite::OptionalExtension;
                hot.prepare_cached("SELECT team_id FROM api_keys WHERE token = ?1")?
                    .query_row([t], |r| r.get(0))
                    .optional()?
            };
            bare.push(s.elapsed().as_nanos());
            std::hint::black_box(id);
        }
        for t in &fresh(&mut rng) {
            let s = Instant::now();
            let k = key_check::load_key_hot(&mut hot, t)?.ok_or("missing key")?;
            if k.state(0) != key_check::KeyState::Valid {
                return Err("invalid key".into());
            }
            if k.chain().check(&cat, "m2").is_ok() {
                ok += 1;
            }
            full.push(s.elapsed().as_nanos());
        }
        // The same through rusqlite's statement cache (looked up by its text), as before
        // issue 17 round 3: the A/B of `db::Hot` in one run.
        for t in &fresh(&mut rng) {
            let s = Instant::now();
            let k = key_check::load_key(&hot, t)?.ok_or("missing key")?;
            if k.state(0) != key_check::KeyState::Valid {
                return Err("invalid key".into());
            }
            std::hint::black_box(k.chain().check(&cat, "m2").is_ok());
            full_cached.push(s.elapsed().as_nanos());
        }
        for t in &fresh(&mut rng) {
            let s = Instant::now();
            let n: Option<String> = {
                use rusqlite::OptionalExtension;
                hot.key_check()?.query_row([t], |r| r.get(0)).optional()?
            };
            stmt_only.push(s.elapsed().as_nanos());
            std::hint::black_box(n);
        }
    }
    stmt_only.sort_unstable();
    let iters = full.len();
    assert_eq!(ok, iters, "every bench key may call m2");
    bare.sort_unstable();
    full.sort_unstable();
    full_cached.sort_unstable();
    let (bm, fm) = (percentile(&bare, 0.5), percentile(&full, 0.5));
    println!(
        "key_check: {n_orgs} orgs, {n_teams} teams, {n_keys} keys (seeded in {seed_s:.1} s), {iters} lookups"
    );
    println!(
        "  bare indexed lookup : median {bm:.2} µs  p99 {:.2} µs",
        percentile(&bare, 0.99)
    );
    println!(
        "  key check + resolver: median {fm:.2} µs  p99 {:.2} µs",
        percentile(&full, 0.99)
    );
    println!(
        "  the same, statement looked up by its text (prepare_cached): median {:.2} µs  p99 {:.2} µs",
        percentile(&full_cached, 0.5),
        percentile(&full_cached, 0.99)
    );
    println!(
        "  statement, no decode: median {:.2} µs  p99 {:.2} µs",
        percentile(&stmt_only, 0.5),
        percentile(&stmt_only, 0.99)
    );
    println!("  ratio (median)      : {:.2}x", fm / bm);
    Ok(())
}
