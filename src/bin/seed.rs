//! Seeds a fresh litegate database for the load benchmark (`scripts/bench.sh`, issue 6), the
//! way `benches/key_check.rs` does: the real migrations, then plain INSERTs in one transaction.
//! 10,000 orgs (models = the benchmark models), 100,000 teams (each in an org, models
//! `["all-org-models"]`), 1,000,000 keys (each in a team, models `["all-org-models"]`), so a
//! call's access goes key → team → org through `all-org-models`. Key `i` is `sk-bench-<i>`; the
//! one the load generator uses is printed on stdout (progress goes to stderr).
//!
//! Usage: `seed --db PATH [--models bench,bench-slow] [--keys 1000000]`. Refuses an existing
//! database file. `--db postgresql://…` seeds that PostgreSQL database instead (issue 14, the
//! benchmark's PostgreSQL mode): its migrations, then `COPY` in one transaction; refuses a
//! database that already holds keys.

use litegate::{access, auth};
use rusqlite::params;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let mut db: Option<std::path::PathBuf> = None;
    let mut models = "bench,bench-slow".to_string();
    let mut n_keys: usize = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--db" => db = Some(value()?.into()),
            "--models" => models = value()?,
            "--keys" => n_keys = value()?.parse()?,
            other => {
                return Err(format!(
                    "unknown argument '{other}'; usage: seed --db PATH [--models a,b] [--keys N]"
                )
                .into())
            }
        }
    }
    let db = db.ok_or("--db PATH is required")?;
    let (n_keys, n_teams, n_orgs) = {
        let k = n_keys.max(1);
        (k, (k / 10).max(1), (k / 100).max(1))
    };
    if let Some(url) = db.to_str().filter(|u| litegate::db::pg::is_pg_url(u)) {
        seed_pg(url, &models, n_orgs, n_teams, n_keys)?;
        println!("sk-bench-{}", n_keys * 7 / 9);
        return Ok(());
    }
    if db.exists() {
        return Err(format!("{}: already exists; seed a fresh path", db.display()).into());
    }
    let org_models = litegate::db::to_json(&models.split(',').map(str::trim).collect::<Vec<_>>());
    let all_org = litegate::db::to_json(&[access::ALL_ORG_MODELS]);
    let t = Instant::now();
    let mut c = litegate::db::open(&db)?;
    litegate::db::migrate::migrate(&mut c)?;
    let tx = c.transaction()?;
    let now = litegate::util::now_iso();
    {
        let mut st = tx.prepare(
            "INSERT INTO organizations (id, alias, models, created_at, updated_at)
             VALUES (?1, ?1, ?2, ?3, ?3)",
        )?;
        for i in 0..n_orgs {
            st.execute(params![format!("org-{i}"), org_models, now])?;
        }
        let mut st = tx.prepare(
            "INSERT INTO teams (id, alias, organization_id, models, created_at, updated_at)
             VALUES (?1, ?1, ?2, ?3, ?4, ?4)",
        )?;
        for i in 0..n_teams {
            st.execute(params![
                format!("team-{i}"),
                format!("org-{}", i % n_orgs),
                all_org,
                now
            ])?;
        }
        let mut st = tx.prepare(
            "INSERT INTO api_keys (token, key_name, models, team_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?;
        for i in 0..n_keys {
            let raw = format!("sk-bench-{i}");
            st.execute(params![
                auth::hash_key(&raw),
                auth::key_name(&raw),
                all_org,
                format!("team-{}", i % n_teams),
                now
            ])?;
        }
    }
    tx.commit()?;
    c.execute_batch("ANALYZE")?;
    litegate::db::checkpoint_truncate(&c)?;
    eprintln!(
        "seeded {}: {n_orgs} orgs, {n_teams} teams, {n_keys} keys in {:.1} s",
        db.display(),
        t.elapsed().as_secs_f64()
    );
    // A key in the middle of the table, not the first one inserted.
    println!("sk-bench-{}", n_keys * 7 / 9);
    Ok(())
}

/// The same rows in a PostgreSQL database: migrations, then one `COPY` per table in one
/// transaction (a million INSERT round trips would take minutes), then `ANALYZE`.
fn seed_pg(url: &str, models: &str, n_orgs: usize, n_teams: usize, n_keys: usize) -> Res<()> {
    use std::io::Write;
    let t = Instant::now();
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    litegate::db::pg::migrate(&mut c)?;
    let n: i64 = c.query_one("SELECT count(*) FROM api_keys", &[])?.get(0);
    if n > 0 {
        return Err("the PostgreSQL database already holds keys; seed a fresh database".into());
    }
    let org_models = litegate::db::to_json(&models.split(',').map(str::trim).collect::<Vec<_>>());
    let all_org = litegate::db::to_json(&[access::ALL_ORG_MODELS]);
    let now = litegate::util::now_iso();
    // COPY's text format: tab-separated; none of these values holds a tab, newline or backslash.
    let mut tx = c.transaction()?;
    let mut w =
        tx.copy_in("COPY organizations (id, alias, models, created_at, updated_at) FROM STDIN")?;
    for i in 0..n_orgs {
        writeln!(w, "org-{i}\torg-{i}\t{org_models}\t{now}\t{now}")?;
    }
    w.finish()?;
    let mut w = tx.copy_in(
        "COPY teams (id, alias, organization_id, models, created_at, updated_at) FROM STDIN",
    )?;
    for i in 0..n_teams {
        let org = i % n_orgs;
        writeln!(w, "team-{i}\tteam-{i}\torg-{org}\t{all_org}\t{now}\t{now}")?;
    }
    w.finish()?;
    let mut w = tx.copy_in(
        "COPY api_keys (token, key_name, models, team_id, created_at, updated_at) FROM STDIN",
    )?;
    for i in 0..n_keys {
        let raw = format!("sk-bench-{i}");
        let (hash, name, team) = (auth::hash_key(&raw), auth::key_name(&raw), i % n_teams);
        writeln!(w, "{hash}\t{name}\t{all_org}\tteam-{team}\t{now}\t{now}")?;
    }
    w.finish()?;
    tx.commit()?;
    c.batch_execute("ANALYZE")?;
    eprintln!(
        "seeded PostgreSQL: {n_orgs} orgs, {n_teams} teams, {n_keys} keys in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
