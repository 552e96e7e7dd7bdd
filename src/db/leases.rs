//! The statements of admission shared across instances (issue 14 item 3, PostgreSQL only):
//! one call's admission (`admit`, one round trip to `litegate_admit` of `schema/pg/0002`), its
//! release, its tokens, and the heartbeat that keeps an instance's leases alive and sweeps what
//! expired. Owns the SQL and the scope codes the schema knows; the decision's meaning (which
//! budgets and limits apply, the refusals' words) is `call::shared`'s.
//!
//! Every error here is a 503 (`Error::Unavailable`): a call is never admitted without its check,
//! and a database that cannot check is the store being unavailable, whatever the cause (the
//! detail goes to the log only).

use super::pg::PgPool;
use crate::error::{Error, Result};
use crate::hierarchy::Level;
use std::time::Duration;

/// A level as `litegate_admit` spells it (its `CASE` finds a budget's spend by it).
pub fn code(l: Level) -> &'static str {
    match l {
        Level::Key => "key",
        Level::Team => "team",
        Level::Org => "org",
        Level::User => "user",
        Level::TeamMember => "team_member",
        Level::OrgMember => "org_member",
        Level::EndUser => "end_user",
    }
}

/// One budget that applies: its scope and holder (the lease's), the ids its spend is found by
/// (a membership's: its team or org, and the user), and its maximum.
pub struct BudgetArg<'a> {
    pub scope: Level,
    pub holder: &'a str,
    pub a: &'a str,
    pub b: &'a str,
    pub max: f64,
}

/// One level's rate limits (`None`: no limit of that kind).
pub struct LimitArg<'a> {
    pub scope: Level,
    pub holder: &'a str,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub parallel: Option<i64>,
}

/// What `litegate_admit` decided.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Admitted; the id of the rows to delete at the end, if any were written.
    Admitted(Option<i64>),
    /// The budget at this index (into the budgets given) is spent; its recorded spend.
    Budget { idx: usize, spend: f64 },
    /// The limit at this index refused: "rpm", "tpm" or "parallel", and the seconds to wait.
    Limit {
        idx: usize,
        what: &'static str,
        retry_after: u64,
    },
}

const ADMIT: &str = "SELECT lease, refused, idx, spend, retry_after FROM litegate_admit(
    ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// A database error of this module as the caller's 503 (detail to the log).
fn fail(what: &str, e: postgres::Error) -> Error {
    log::warn!(
        "PostgreSQL: {what}: {}",
        super::pg::describe(&e).replace('\n', " ")
    );
    Error::Unavailable(format!(
        "the database cannot {what} right now; try again later"
    ))
}

/// One call's admission, atomically across every instance on the database (see
/// `litegate_admit`): one round trip.
pub fn admit(
    pg: &PgPool,
    instance: &str,
    ttl: Duration,
    estimate: f64,
    budgets: &[BudgetArg<'_>],
    limits: &[LimitArg<'_>],
) -> Result<Decision> {
    let b_scope: Vec<&str> = budgets.iter().map(|b| code(b.scope)).collect();
    let b_holder: Vec<&str> = budgets.iter().map(|b| b.holder).collect();
    let b_a: Vec<&str> = budgets.iter().map(|b| b.a).collect();
    let b_b: Vec<&str> = budgets.iter().map(|b| b.b).collect();
    let b_max: Vec<f64> = budgets.iter().map(|b| b.max).collect();
    let l_scope: Vec<&str> = limits.iter().map(|l| code(l.scope)).collect();
    let l_holder: Vec<&str> = limits.iter().map(|l| l.holder).collect();
    let l_rpm: Vec<Option<i64>> = limits.iter().map(|l| l.rpm).collect();
    let l_tpm: Vec<Option<i64>> = limits.iter().map(|l| l.tpm).collect();
    let l_parallel: Vec<Option<i64>> = limits.iter().map(|l| l.parallel).collect();
    let ttl = ttl.as_secs_f64();
    let row = pg.with_client(|q| {
        q.typed(
            ADMIT,
            &[
                &instance,
                &ttl,
                &estimate,
                &b_scope,
                &b_holder,
                &b_a,
                &b_b,
                &b_max,
                &l_scope,
                &l_holder,
                &l_rpm,
                &l_tpm,
                &l_parallel,
            ],
        )
        .map_err(|e| fail("check budgets and rate limits", e))
    })?;
    let r = row
        .first()
        .ok_or_else(|| Error::Unavailable("the database gave no admission decision".into()))?;
    let read = || -> std::result::Result<Decision, postgres::Error> {
        let refused: Option<String> = r.try_get(1)?;
        let idx = |i: Option<i32>| {
            i.and_then(|i| usize::try_from(i).ok())
                .map_or(0, |i| i.saturating_sub(1))
        };
        Ok(match refused.as_deref() {
            None => Decision::Admitted(r.try_get(0)?),
            Some("budget") => Decision::Budget {
                idx: idx(r.try_get(2)?),
                spend: r.try_get::<_, Option<f64>>(3)?.unwrap_or(0.0),
            },
            Some(what) => Decision::Limit {
                idx: idx(r.try_get(2)?),
                what: match what {
                    "rpm" => "rpm",
                    "tpm" => "tpm",
                    _ => "parallel",
                },
                retry_after: r
                    .try_get::<_, Option<i64>>(4)?
                    .and_then(|s| u64::try_from(s).ok())
                    .unwrap_or(1),
            },
        })
    };
    read().map_err(|e| fail("check budgets and rate limits", e))
}

const RELEASE: &str = "DELETE FROM litegate_leases WHERE id = ?1";

/// Deletes a call's leases (its reservations and parallel slots), waiting at most `wait` for a
/// connection. A failure leaves them to expire.
pub fn release(pg: &PgPool, id: i64, wait: Duration) -> Result<()> {
    pg.with_client_within(wait, |q| {
        q.typed(RELEASE, &[&id])
            .map(|_| ())
            .map_err(|e| fail("release a call's leases", e))
    })
}

const RESERVED: &str = "SELECT COALESCE(sum(amount), 0)::DOUBLE PRECISION FROM litegate_leases
    WHERE scope = ?1 AND holder = ?2 AND kind = 'budget' AND expires_at > clock_timestamp()";

/// What live calls have reserved on a budget (for a strict refusal's message).
pub fn reserved(pg: &PgPool, scope: Level, holder: &str) -> Result<f64> {
    let scope = code(scope);
    pg.with_client(|q| {
        let rows = q
            .typed(RESERVED, &[&scope, &holder])
            .map_err(|e| fail("read a budget's reservations", e))?;
        Ok(rows
            .first()
            .and_then(|r| r.try_get::<_, f64>(0).ok())
            .unwrap_or(0.0))
    })
}

const USAGE: &str = "WITH u AS (
    SELECT s.now_s,
        (SELECT COALESCE(sum(x.n), 0)::BIGINT FROM litegate_rates x
         WHERE x.scope = ?1 AND x.holder = ?2 AND x.kind = 'rpm'
           AND x.sec > s.now_s - 60 AND x.sec <= s.now_s) AS requests,
        (SELECT COALESCE(sum(x.n), 0)::BIGINT FROM litegate_rates x
         WHERE x.scope = ?1 AND x.holder = ?2 AND x.kind = 'tpm'
           AND x.sec > s.now_s - 60 AND x.sec <= s.now_s) AS tokens,
        (SELECT count(*) FROM litegate_leases l
         WHERE l.scope = ?1 AND l.holder = ?2 AND l.kind = 'parallel'
           AND l.expires_at > clock_timestamp()) AS in_flight
    FROM (SELECT floor(extract(epoch FROM clock_timestamp()))::BIGINT AS now_s) s)
SELECT requests, tokens, in_flight,
    CASE WHEN ?3::BIGINT IS NOT NULL AND requests >= ?3::BIGINT
         THEN litegate_retry_after(?1, ?2, 'rpm', now_s, requests, ?3::BIGINT) ELSE 0 END,
    CASE WHEN ?4::BIGINT IS NOT NULL AND tokens >= ?4::BIGINT
         THEN litegate_retry_after(?1, ?2, 'tpm', now_s, tokens, ?4::BIGINT) ELSE 0 END
FROM u";

/// What one level's shared rate limits have used now, read as `litegate_admit` reads them and
/// writing nothing (`/access/explain`): requests and tokens in the window, live parallel
/// leases, and the waits of a window at or over `rpm` / `tpm`.
pub fn usage(
    pg: &PgPool,
    scope: Level,
    holder: &str,
    rpm: Option<i64>,
    tpm: Option<i64>,
) -> Result<[u64; 5]> {
    let scope = code(scope);
    pg.with_client(|q| {
        let rows = q
            .typed(USAGE, &[&scope, &holder, &rpm, &tpm])
            .map_err(|e| fail("read rate limits", e))?;
        let r = rows
            .first()
            .ok_or_else(|| Error::Unavailable("the database gave no usage".into()))?;
        let mut out = [0u64; 5];
        for (i, v) in out.iter_mut().enumerate() {
            let n: i64 = r.try_get(i).map_err(|e| fail("read rate limits", e))?;
            *v = u64::try_from(n).unwrap_or(0);
        }
        Ok(out)
    })
}

/// Adds `tokens` to the current second's tpm bucket of each (scope, holder), in one statement
/// (in a fixed order: two calls adding to the same buckets lock them in the same order).
const ADD_TOKENS: &str = "INSERT INTO litegate_rates AS x (scope, holder, kind, sec, n)
    SELECT s, h, 'tpm', floor(extract(epoch FROM clock_timestamp()))::BIGINT, ?3
    FROM unnest(?1::TEXT[], ?2::TEXT[]) AS u(s, h)
    ORDER BY s, h
    ON CONFLICT (scope, holder, kind, sec) DO UPDATE SET n = x.n + excluded.n";

/// A call's tokens, into the tpm windows of the levels it was admitted against with a tpm
/// limit.
pub fn add_tokens(pg: &PgPool, held: &[(Level, String)], tokens: u64) -> Result<()> {
    let scopes: Vec<&str> = held.iter().map(|(l, _)| code(*l)).collect();
    let holders: Vec<&str> = held.iter().map(|(_, h)| h.as_str()).collect();
    let n = i64::try_from(tokens).unwrap_or(i64::MAX);
    pg.with_client(|q| {
        q.typed(ADD_TOKENS, &[&scopes, &holders, &n])
            .map(|_| ())
            .map_err(|e| fail("count a call's tokens", e))
    })
}

const RENEW: &str = "UPDATE litegate_leases
    SET expires_at = clock_timestamp() + ?2 * interval '1 second' WHERE id = ANY(?1)";

/// Pushes the expiry of the leases of the calls still running here (`ids`) to `ttl` from now.
pub fn renew(pg: &PgPool, ids: &[i64], ttl: Duration) -> Result<()> {
    let ttl = ttl.as_secs_f64();
    pg.with_client(|q| {
        q.typed(RENEW, &[&ids, &ttl])
            .map(|_| ())
            .map_err(|e| fail("renew leases", e))
    })
}

const SWEEP_LEASES: &str = "DELETE FROM litegate_leases WHERE expires_at < clock_timestamp()";
const SWEEP_RATES: &str = "DELETE FROM litegate_rates
    WHERE sec < floor(extract(epoch FROM clock_timestamp()))::BIGINT - 60";

/// Deletes expired leases and the buckets that left every window (any instance may; they
/// count for nothing already).
pub fn sweep(pg: &PgPool) -> Result<()> {
    pg.with_client(|q| {
        q.typed(SWEEP_LEASES, &[])
            .and_then(|_| q.typed(SWEEP_RATES, &[]))
            .map(|_| ())
            .map_err(|e| fail("sweep leases", e))
    })
}
