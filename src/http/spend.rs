//! Spend log reads (`GET /spend/logs`, API.md §6/§7): proxy admins and viewers see every row;
//! everyone else sees only the rows of their own keys.

use super::{Ctx, Reply, Req};
use crate::auth::Caller;
use crate::db::spend::LogFilter;
use crate::error::{Error, Result};
use serde_json::json;

pub fn logs(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let q = |n: &str| req.query(n).filter(|s| !s.is_empty()).map(str::to_string);
    let date = |n: &str| -> Result<Option<String>> {
        match q(n) {
            None => Ok(None),
            Some(d)
                if d.len() == 10
                    && crate::util::ms_from_iso(&format!("{d}T00:00:00Z")).is_some() =>
            {
                Ok(Some(if n == "end_date" {
                    format!("{d}T23:59:59.999Z")
                } else {
                    format!("{d}T00:00:00.000Z")
                }))
            }
            Some(d) if crate::util::ms_from_iso(&d).is_some() => Ok(Some(d)),
            Some(_) => Err(Error::bad_param(
                n,
                format!("`{n}` must be a date (YYYY-MM-DD) or an ISO-8601 time"),
            )),
        }
    };
    let limit = match q("limit") {
        None => 1000,
        Some(s) => match s.parse::<i64>() {
            Ok(n) if (1..=10_000).contains(&n) => n,
            _ => return Err(Error::bad_param("limit", "`limit` must be from 1 to 10000")),
        },
    };
    let owner = if who.role.reads_all() {
        None
    } else {
        match &who.user_id {
            Some(u) => Some(u.clone()),
            None => {
                // A key without a user sees its own rows only.
                let token = who.key.as_ref().map(|k| k.token.clone());
                let f = LogFilter {
                    api_key: token,
                    request_id: q("request_id"),
                    start: date("start_date")?,
                    end: date("end_date")?,
                    ..LogFilter::default()
                };
                let rows = ctx
                    .pool
                    .read_db(|c| Ok(crate::db::spend::logs(c, &f, limit)?))?;
                return Reply::ok(json!(rows));
            }
        }
    };
    let f = LogFilter {
        api_key: q("api_key").map(|k| crate::auth::token_of(&k)),
        user_id: q("user_id"),
        team_id: q("team_id"),
        request_id: q("request_id"),
        start: date("start_date")?,
        end: date("end_date")?,
        owner,
    };
    let rows = ctx
        .pool
        .read_db(|c| Ok(crate::db::spend::logs(c, &f, limit)?))?;
    Reply::ok(json!(rows))
}
