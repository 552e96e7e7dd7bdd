//! `GET /audit/list` (issue 16 item 3, README "Audit log"): the audit entries, newest first,
//! filtered by `object_type`, `object_id`, `actor`, `action`, `start_date`, `end_date`, paged
//! by `page` / `page_size` (≤ 100). Who sees what is `access::policy::audit_scope`'s; the
//! entries are written by `crate::audit` inside each write's own transaction.

use super::{Ctx, Reply, Req};
use crate::access::policy::{self, AuditScope};
use crate::auth::Caller;
use crate::db::audit::{AuditRow, Filter};
use crate::error::{Error, Result};
use serde_json::{json, Value};

/// The largest `page_size`.
pub const MAX_PAGE_SIZE: i64 = 100;

/// A time filter: a date (the whole day) or an ISO-8601 time.
fn time(req: &Req, n: &str, end: bool) -> Result<Option<String>> {
    let Some(d) = req.query(n).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if d.len() == 10 && crate::util::ms_from_iso(&format!("{d}T00:00:00Z")).is_some() {
        let t = if end {
            "T23:59:59.999Z"
        } else {
            "T00:00:00.000Z"
        };
        return Ok(Some(format!("{d}{t}")));
    }
    match crate::util::ms_from_iso(d) {
        // Stored times are `util::iso_from_ms`'s; compare in that form.
        Some(ms) => Ok(Some(crate::util::iso_from_ms(ms))),
        None => Err(Error::bad_param(
            n,
            format!("`{n}` must be a date (YYYY-MM-DD) or an ISO-8601 time"),
        )),
    }
}

fn number(req: &Req, n: &str, default: i64, max: i64) -> Result<i64> {
    match req.query(n).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<i64>() {
            Ok(v) if (1..=max).contains(&v) => Ok(v),
            _ => Err(Error::bad_param(
                n,
                format!("`{n}` must be a whole number from 1 to {max}"),
            )),
        },
    }
}

fn parsed(text: &Option<String>) -> Value {
    text.as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// One entry in LiteLLM's `LiteLLM_AuditLog` names (plus `changed_by_role`,
/// `organization_id`).
fn shape(r: &AuditRow) -> Value {
    json!({
        "id": r.id,
        "updated_at": r.updated_at,
        "changed_by": r.changed_by,
        "changed_by_api_key": r.changed_by_api_key,
        "changed_by_role": r.changed_by_role,
        "action": r.action,
        "table_name": r.table_name,
        "object_id": r.object_id,
        "organization_id": r.organization_id,
        "before_value": parsed(&r.before_value),
        "updated_values": parsed(&r.updated_values),
    })
}

pub fn list(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let q = |n: &str| req.query(n).filter(|s| !s.is_empty()).map(str::to_string);
    let page = number(req, "page", 1, 1_000_000)?;
    let page_size = number(req, "page_size", 50, MAX_PAGE_SIZE)?;
    let mut f = Filter {
        table_name: q("object_type"),
        object_id: q("object_id"),
        changed_by: q("actor"),
        action: q("action"),
        start: time(req, "start_date", false)?,
        end: time(req, "end_date", true)?,
        org_admin_of: None,
    };
    let (rows, total) = ctx.pool.read_db(|c| {
        if let AuditScope::OrgAdmin(u) = policy::audit_scope(c, who)? {
            f.org_admin_of = Some(u);
        }
        Ok(crate::db::audit::list(
            c,
            &f,
            page_size,
            (page - 1) * page_size,
        )?)
    })?;
    Reply::ok(json!({
        "audit_logs": rows.iter().map(shape).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "page_size": page_size,
        "total_pages": (total + page_size - 1) / page_size,
    }))
}
