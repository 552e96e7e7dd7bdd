//! Spend: recording a call's cost at every level with its spend-log row (one short
//! transaction), reading the spend log, and resetting spend when `budget_reset_at` passes.

use super::handle::{DbResult, Handle};
pub use super::spend_writer::SpendWriter;
use super::sql::{Arg, Exec};

/// One model call's outcome, as recorded.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SpendRecord {
    pub request_id: String,
    pub token: Option<String>,
    pub team_id: Option<String>,
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    /// The key's alias and its team's, for the row's `metadata.user_api_key_*` (LiteLLM's).
    pub key_alias: Option<String>,
    pub team_alias: Option<String>,
    /// The request's `user` field (LiteLLM's end user): its `end_users` row gets the spend (made
    /// when unknown); `metadata.user_api_key_end_user_id` in the log row.
    pub end_user: Option<String>,
    pub model: String,
    pub call_type: String,
    /// All prompt tokens, cache reads and writes included (LiteLLM's `prompt_tokens`).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Of the prompt, tokens read from / written to the provider's cache: in the row's
    /// `metadata.additional_usage_values` as LiteLLM logs them (only when not 0).
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub spend: f64,
    pub start_time: String,
    pub end_time: String,
    pub status: String,
}

pub(super) const ADD_KEY: &str = "UPDATE api_keys SET spend = spend + ?2 WHERE token = ?1";
pub(super) const ADD_TEAM: &str = "UPDATE teams SET spend = spend + ?2 WHERE id = ?1";
pub(super) const ADD_ORG: &str = "UPDATE organizations SET spend = spend + ?2 WHERE id = ?1";
pub(super) const ADD_USER: &str = "UPDATE users SET spend = spend + ?2 WHERE id = ?1";
pub(super) const ADD_TEAM_MEMBER: &str =
    "UPDATE team_members SET spend = spend + ?3 WHERE team_id = ?1 AND user_id = ?2";
pub(super) const ADD_ORG_MEMBER: &str =
    "UPDATE organization_members SET spend = spend + ?3 WHERE organization_id = ?1 AND user_id = ?2";
/// The end user's spend; an unknown end user is created with its first call (LiteLLM's
/// `update_end_user_spend` upserts). Same text on both engines.
pub(super) const ADD_END_USER: &str =
    "INSERT INTO end_users (id, spend, blocked, created_at, updated_at)
    VALUES (?1, ?2, 0, ?3, ?3)
    ON CONFLICT (id) DO UPDATE SET spend = end_users.spend + excluded.spend";
/// A free call of an unknown end user still records them (a free call changes no spend).
pub(super) const NEW_END_USER: &str =
    "INSERT INTO end_users (id, spend, blocked, created_at, updated_at)
    VALUES (?1, 0, 0, ?2, ?2) ON CONFLICT (id) DO NOTHING";
const INSERT_LOG_HEAD: &str = "INSERT INTO spend_logs (request_id, api_key, team_id,
    organization_id, user_id, model, call_type, prompt_tokens, completion_tokens, total_tokens,
    spend, start_time, end_time, status, metadata) VALUES ";
/// Columns bound per spend-log row.
const LOG_ARGS: usize = 15;
/// Rows per multi-row INSERT, largest first: a batch is written as few statements as these
/// sizes add up to (50 records: 16+16+16+2), each text prepared once per connection. One
/// statement per row opened four cursors (the table and its three indexes), bound its row and
/// ran its program once per row (issue 17).
const LOG_CHUNKS: [usize; 5] = [16, 8, 4, 2, 1];

/// The multi-row INSERT text of `n` rows (`n` one of `LOG_CHUNKS`), numbered placeholders.
fn insert_log_sql(n: usize) -> &'static str {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        LOG_CHUNKS
            .iter()
            .map(|&rows| {
                let mut sql = String::from(INSERT_LOG_HEAD);
                for r in 0..rows {
                    sql.push_str(if r == 0 { "(" } else { ", (" });
                    for a in 0..LOG_ARGS {
                        if a > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!("?{}", r * LOG_ARGS + a + 1));
                    }
                    sql.push(')');
                }
                sql
            })
            .collect()
    });
    let i = LOG_CHUNKS
        .iter()
        .position(|&c| c == n)
        .unwrap_or(LOG_CHUNKS.len() - 1);
    &texts[i]
}

/// A spend-log row's `metadata`, as LiteLLM's spend-log metadata builder writes it
/// (`_get_spend_logs_metadata`, API.md §9): who made the call (`user_api_key` = the key's
/// token, `user_api_key_alias`, `_team_id`, `_team_alias`, `_org_id`, `_user_id`,
/// `_end_user_id`; `null` where there is none) and `additional_usage_values` with the cache
/// figures when there are any. Keys in sorted order (as a `serde_json::Value` writes them).
/// Written by hand into one buffer (issue 17, round 4: serde's serializer cost ~4.5k
/// instructions per row, a `json!` value ~13k before it); byte for byte what serializing the
/// fields with serde_json writes (`spend_tests`: a property test against it).
fn log_metadata(r: &SpendRecord) -> String {
    let mut out = String::with_capacity(
        300 + [&r.token, &r.key_alias, &r.end_user, &r.team_alias]
            .iter()
            .map(|v| v.as_ref().map_or(0, String::len))
            .sum::<usize>(),
    );
    out.push('{');
    let (read, write) = (r.cache_read_tokens, r.cache_write_tokens);
    if read != 0 || write != 0 {
        use std::fmt::Write as _;
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "\"additional_usage_values\":{{\"cache_creation_input_tokens\":{write},\
             \"cache_read_input_tokens\":{read},\"prompt_tokens_details\":{{\
             \"cache_creation_tokens\":{write},\"cached_tokens\":{read}}}}},"
        );
    }
    let fields = [
        ("\"user_api_key\":", &r.token),
        (",\"user_api_key_alias\":", &r.key_alias),
        (",\"user_api_key_end_user_id\":", &r.end_user),
        (",\"user_api_key_org_id\":", &r.organization_id),
        (",\"user_api_key_team_alias\":", &r.team_alias),
        (",\"user_api_key_team_id\":", &r.team_id),
        (",\"user_api_key_user_id\":", &r.user_id),
    ];
    for (key, v) in fields {
        out.push_str(key);
        json_str(&mut out, v.as_deref());
    }
    out.push('}');
    out
}

/// `v` as a JSON string (or `null`), as serde_json writes it: a string with no byte serde_json
/// escapes (control characters, `"`, `\`; anything else, non-ASCII too, goes as is) is
/// copied between quotes, any other goes through serde_json.
fn json_str(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push_str("null"),
        Some(s) if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        // Serializing a string cannot fail.
        Some(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
    }
}

/// Adds the call's cost to key, team, org, user, memberships and end user, and writes its log
/// row.
/// Run inside one write transaction, on either engine (`sql::Exec`; generic, so the SQLite
/// instance runs the same cached statements with the same bindings as before).
pub fn record<C: Exec + ?Sized>(c: &mut C, r: &SpendRecord) -> Result<(), C::E> {
    if r.spend > 0.0 {
        let spend = Arg::Real(r.spend);
        if let Some(t) = &r.token {
            c.exec(ADD_KEY, &[t.into(), spend])?;
        }
        if let Some(t) = &r.team_id {
            c.exec(ADD_TEAM, &[t.into(), spend])?;
        }
        if let Some(o) = &r.organization_id {
            c.exec(ADD_ORG, &[o.into(), spend])?;
        }
        if let Some(u) = &r.user_id {
            c.exec(ADD_USER, &[u.into(), spend])?;
            if let Some(t) = &r.team_id {
                c.exec(ADD_TEAM_MEMBER, &[t.into(), u.into(), spend])?;
            }
            if let Some(o) = &r.organization_id {
                c.exec(ADD_ORG_MEMBER, &[o.into(), u.into(), spend])?;
            }
        }
    }
    if let Some(e) = &r.end_user {
        if r.spend > 0.0 {
            c.exec(
                ADD_END_USER,
                &[e.into(), Arg::Real(r.spend), (&r.end_time).into()],
            )?;
        } else {
            c.exec(NEW_END_USER, &[e.into(), (&r.end_time).into()])?;
        }
    }
    insert_log(c, r)
}

/// Writes a call's spend-log row (inside the spend transaction).
pub(super) fn insert_log<C: Exec + ?Sized>(c: &mut C, r: &SpendRecord) -> Result<(), C::E> {
    insert_logs(c, &[r])
}

/// Writes the spend-log rows of `recs`, in order (ids ascending as one row at a time gave
/// them), as multi-row INSERTs of `LOG_CHUNKS` rows. A refused row (a duplicate request id)
/// fails its whole statement, and the statement writes nothing.
pub(super) fn insert_logs<C: Exec + ?Sized>(c: &mut C, recs: &[&SpendRecord]) -> Result<(), C::E> {
    let metadata: Vec<String> = recs.iter().map(|r| log_metadata(r)).collect();
    let mut args: Vec<Arg<'_>> = Vec::with_capacity(LOG_ARGS * recs.len().min(LOG_CHUNKS[0]));
    let mut at = 0;
    while at < recs.len() {
        let left = recs.len() - at;
        let n = LOG_CHUNKS.iter().copied().find(|&c| c <= left).unwrap_or(1);
        args.clear();
        for (r, m) in recs[at..at + n].iter().zip(&metadata[at..at + n]) {
            args.extend([
                (&r.request_id).into(),
                (&r.token).into(),
                (&r.team_id).into(),
                (&r.organization_id).into(),
                (&r.user_id).into(),
                (&r.model).into(),
                (&r.call_type).into(),
                Arg::Int(r.prompt_tokens as i64),
                Arg::Int(r.completion_tokens as i64),
                Arg::Int((r.prompt_tokens + r.completion_tokens) as i64),
                Arg::Real(r.spend),
                (&r.start_time).into(),
                (&r.end_time).into(),
                (&r.status).into(),
                m.into(),
            ]);
        }
        c.exec(insert_log_sql(n), &args)?;
        at += n;
    }
    Ok(())
}

/// Filters for `/spend/logs`; `owner` restricts to keys of one user (non-admin callers).
#[derive(Debug, Default)]
pub struct LogFilter {
    pub api_key: Option<String>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub request_id: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub owner: Option<String>,
}

const LOG_COLUMNS: &str = "SELECT request_id, api_key, team_id, organization_id, user_id,
    model, call_type, prompt_tokens, completion_tokens, total_tokens, spend, start_time,
    end_time, status, metadata FROM spend_logs";

/// The `/spend/logs` filters: each one's value and its condition, every `?` of which binds
/// that value. A key (or a user's keys) is found through `spend_logs_key`, an index on the
/// first 8 characters of the key's hash (schema 0011): the condition on the prefix reaches the
/// index, the exact one keeps the key's own rows.
fn log_filters(f: &LogFilter) -> [(Option<&String>, &'static str); 7] {
    [
        (
            f.api_key.as_ref(),
            "substr(api_key, 1, 8) = substr(?, 1, 8) AND api_key = ?",
        ),
        (f.user_id.as_ref(), "user_id = ?"),
        (f.team_id.as_ref(), "team_id = ?"),
        (f.request_id.as_ref(), "request_id = ?"),
        (f.start.as_ref(), "start_time >= ?"),
        (f.end.as_ref(), "start_time <= ?"),
        (
            f.owner.as_ref(),
            "substr(api_key, 1, 8) IN (SELECT substr(token, 1, 8) FROM api_keys WHERE user_id = ?) \
             AND api_key IN (SELECT token FROM api_keys WHERE user_id = ?)",
        ),
    ]
}

/// The values `log_filters` binds, in the order of their `?`s (each filter's value once per
/// `?` in its condition).
fn filter_values(f: &LogFilter) -> impl Iterator<Item = &String> {
    log_filters(f).into_iter().flat_map(|(v, cond)| {
        v.into_iter()
            .flat_map(move |v| std::iter::repeat_n(v, cond.matches('?').count()))
    })
}

/// The `/spend/logs` statement for the filters given. Only the filters present go into the SQL
/// (a statement with `?n IS NULL OR ...` gets one plan for every binding, which can use no
/// index): a request id or a key (or a user's keys) is found through its index, anything else
/// walks the time index, newest first. At most 2^7 distinct texts, each cached once prepared.
pub fn logs_sql(f: &LogFilter) -> String {
    let conds: Vec<&str> = log_filters(f)
        .iter()
        .filter(|(v, _)| v.is_some())
        .map(|(_, c)| *c)
        .collect();
    let mut sql = String::from(LOG_COLUMNS);
    if !conds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conds.join(" AND "));
    }
    sql.push_str(" ORDER BY start_time DESC, id DESC LIMIT ?");
    sql
}

/// Binds the filters present, in the order `logs_sql` wrote their conditions, then the limit
/// (the plan test's raw statement).
#[cfg(test)]
fn bind_logs(st: &mut rusqlite::Statement<'_>, f: &LogFilter, limit: i64) -> rusqlite::Result<()> {
    let mut i = 0;
    for v in filter_values(f) {
        i += 1;
        st.raw_bind_parameter(i, v)?;
    }
    st.raw_bind_parameter(i + 1, limit)
}

/// `/spend/logs`, on either engine (the bare `?`s of `logs_sql` number in order on both).
pub fn logs<C: Handle + ?Sized>(
    c: &C,
    f: &LogFilter,
    limit: i64,
) -> DbResult<Vec<serde_json::Value>> {
    let mut args: Vec<Arg<'_>> = filter_values(f).map(Arg::from).collect();
    args.push(limit.into());
    c.all(&logs_sql(f), &args, |r| {
        let metadata = serde_json::from_str::<serde_json::Value>(&r.get::<String>(14)?)
            .unwrap_or_else(|_| serde_json::json!({}));
        // LiteLLM's `end_user` column: the request's `user` ("" when none), kept in metadata.
        let end_user = metadata["user_api_key_end_user_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(serde_json::json!({
            "request_id": r.get::<String>(0)?,
            "api_key": r.get::<Option<String>>(1)?,
            "team_id": r.get::<Option<String>>(2)?,
            "organization_id": r.get::<Option<String>>(3)?,
            "user": r.get::<Option<String>>(4)?,
            "model": r.get::<String>(5)?,
            "call_type": r.get::<String>(6)?,
            "prompt_tokens": r.get::<i64>(7)?,
            "completion_tokens": r.get::<i64>(8)?,
            "total_tokens": r.get::<i64>(9)?,
            "spend": r.get::<f64>(10)?,
            "startTime": r.get::<String>(11)?,
            "endTime": r.get::<String>(12)?,
            "status": r.get::<String>(13)?,
            "end_user": end_user,
            "metadata": metadata,
        }))
    })
}

/// What `reset_due` selects (on the partial `budget_reset_at` indexes of schema 0003) and
/// updates, per holder table.
const RESETS: &[(&str, &str)] = &[
    (
        "SELECT token, budget_duration FROM api_keys WHERE budget_reset_at <= ?1",
        "UPDATE api_keys SET spend = 0, budget_reset_at = ?2 WHERE token = ?1",
    ),
    (
        "SELECT id, budget_duration FROM teams WHERE budget_reset_at <= ?1",
        "UPDATE teams SET spend = 0, budget_reset_at = ?2 WHERE id = ?1",
    ),
    (
        "SELECT id, budget_duration FROM users WHERE budget_reset_at <= ?1",
        "UPDATE users SET spend = 0, budget_reset_at = ?2 WHERE id = ?1",
    ),
    (
        "SELECT id, budget_duration FROM budgets WHERE budget_reset_at <= ?1",
        "UPDATE budgets SET budget_reset_at = ?2 WHERE id = ?1",
    ),
];

/// Resets spend to 0 where `budget_reset_at` has passed and moves `budget_reset_at` on by the
/// holder's `budget_duration` (keys, teams, users; organizations, memberships and end users
/// through their budget rows; `default_end_user_budget`, the config's
/// `max_end_user_budget_id`, also resets the end users without a budget row of their own).
/// Returns how many holders were reset.
pub fn reset_due<C: Handle + ?Sized>(
    c: &C,
    now_iso: &str,
    now_ms: i64,
    default_end_user_budget: Option<&str>,
) -> DbResult<usize> {
    let mut n = 0;
    for &(select, update) in RESETS {
        let due: Vec<(String, Option<String>)> =
            c.all(select, &[now_iso.into()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for (id, dur) in due {
            let next = dur
                .as_deref()
                .and_then(crate::util::parse_duration)
                .map(|s| crate::util::iso_from_ms(now_ms + s * 1000));
            c.exec(update, &[(&id).into(), (&next).into()])?;
            if update.starts_with("UPDATE budgets") {
                // The holders of this budget row start again from zero.
                for holders in [
                    "UPDATE organizations SET spend = 0 WHERE budget_id = ?1",
                    "UPDATE organization_members SET spend = 0 WHERE budget_id = ?1",
                    "UPDATE team_members SET spend = 0 WHERE budget_id = ?1",
                    "UPDATE end_users SET spend = 0 WHERE budget_id = ?1",
                ] {
                    c.exec(holders, &[(&id).into()])?;
                }
                if default_end_user_budget == Some(id.as_str()) {
                    c.exec(
                        "UPDATE end_users SET spend = 0 WHERE budget_id IS NULL",
                        &[],
                    )?;
                }
            }
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
#[path = "spend_tests.rs"]
mod tests;
