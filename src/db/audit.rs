//! The audit log's statements (issue 16 item 3, schema 0010 / pg 0007): `insert` (run by
//! `crate::audit::record` on the handle of the write it records), `list` (newest first, only
//! the given filters in the SQL, an org admin's scope as one indexed subquery), `prune` (the
//! retention) and the master key's fingerprint in `settings`. What an entry holds, and that
//! it holds no secret, is `crate::audit`'s.

use super::handle::{DbResult, Handle, Row};
use super::sql::Arg;

/// One stored entry, as `/audit/list` shows it (JSON texts already scrubbed).
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub id: String,
    pub updated_at: String,
    pub changed_by: Option<String>,
    pub changed_by_api_key: Option<String>,
    pub changed_by_role: String,
    pub action: String,
    pub table_name: String,
    pub object_id: String,
    pub organization_id: Option<String>,
    pub before_value: Option<String>,
    pub updated_values: Option<String>,
}

const COLS: &str = "id, updated_at, changed_by, changed_by_api_key, changed_by_role, action, \
                    table_name, object_id, organization_id, before_value, updated_values";

const INSERT: &str = "INSERT INTO audit_log (id, updated_at, changed_by, changed_by_api_key, \
    changed_by_role, action, table_name, object_id, organization_id, before_value, \
    updated_values) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

pub fn insert<C: Handle + ?Sized>(c: &C, r: &AuditRow) -> DbResult<()> {
    c.exec(
        INSERT,
        &[
            (&r.id).into(),
            (&r.updated_at).into(),
            r.changed_by.as_ref().into(),
            r.changed_by_api_key.as_ref().into(),
            (&r.changed_by_role).into(),
            (&r.action).into(),
            (&r.table_name).into(),
            (&r.object_id).into(),
            r.organization_id.as_ref().into(),
            r.before_value.as_ref().into(),
            r.updated_values.as_ref().into(),
        ],
    )?;
    Ok(())
}

fn from_row(r: &Row<'_, '_>) -> DbResult<AuditRow> {
    Ok(AuditRow {
        id: r.get(0)?,
        updated_at: r.get(1)?,
        changed_by: r.get(2)?,
        changed_by_api_key: r.get(3)?,
        changed_by_role: r.get(4)?,
        action: r.get(5)?,
        table_name: r.get(6)?,
        object_id: r.get(7)?,
        organization_id: r.get(8)?,
        before_value: r.get(9)?,
        updated_values: r.get(10)?,
    })
}

/// `/audit/list`'s filters; `None` is "any". `org_admin_of`: only entries about the
/// organizations this user administers (an org admin's view).
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub table_name: Option<String>,
    pub object_id: Option<String>,
    pub changed_by: Option<String>,
    pub action: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub org_admin_of: Option<String>,
}

impl Filter {
    /// The WHERE clause (fixed fragments, values as parameters) and its arguments.
    fn clause(&self) -> (String, Vec<Arg<'_>>) {
        let mut sql = String::new();
        let mut args: Vec<Arg<'_>> = Vec::new();
        let pairs: [(&str, &Option<String>); 7] = [
            ("table_name = ?#", &self.table_name),
            ("object_id = ?#", &self.object_id),
            ("changed_by = ?#", &self.changed_by),
            ("action = ?#", &self.action),
            ("updated_at >= ?#", &self.start),
            ("updated_at <= ?#", &self.end),
            (
                "organization_id IN (SELECT organization_id FROM organization_members \
                 WHERE user_id = ?# AND user_role = 'org_admin')",
                &self.org_admin_of,
            ),
        ];
        for (frag, v) in pairs {
            if let Some(v) = v {
                sql.push_str(if args.is_empty() { " WHERE " } else { " AND " });
                sql.push_str(&frag.replace('#', &(args.len() + 1).to_string()));
                args.push(Arg::Text(v));
            }
        }
        (sql, args)
    }
}

/// The entries matching `f`, newest first, `limit` from `offset`; and how many match.
pub fn list<C: Handle + ?Sized>(
    c: &C,
    f: &Filter,
    limit: i64,
    offset: i64,
) -> DbResult<(Vec<AuditRow>, i64)> {
    let (clause, mut args) = f.clause();
    let total = c
        .one(
            &format!("SELECT COUNT(*) FROM audit_log{clause}"),
            &args,
            |r| r.get::<i64>(0),
        )?
        .unwrap_or(0);
    let n = args.len();
    args.push(Arg::Int(limit));
    args.push(Arg::Int(offset));
    let sql = format!(
        "SELECT {COLS} FROM audit_log{clause} ORDER BY updated_at DESC, id DESC \
         LIMIT ?{} OFFSET ?{}",
        n + 1,
        n + 2
    );
    Ok((c.all(&sql, &args, from_row)?, total))
}

const PRUNE: &str = "DELETE FROM audit_log WHERE updated_at < ?1";

/// Deletes the entries written before `cutoff` (ISO-8601); how many.
pub fn prune<C: Handle + ?Sized>(c: &C, cutoff: &str) -> DbResult<usize> {
    c.exec(PRUNE, &[cutoff.into()])
}

/// The setting that holds the master key's fingerprint (`crate::audit::fingerprint`).
pub const MASTER_FINGERPRINT: &str = "audit_master_key_fingerprint";

/// A setting read on a write handle (so that the check and the update share a transaction).
pub fn setting<C: Handle + ?Sized>(c: &C, name: &str) -> DbResult<Option<String>> {
    c.one(super::SETTINGS_GET, &[name.into()], |r| r.get(0))
}

pub fn put_setting<C: Handle + ?Sized>(c: &C, name: &str, value: &str) -> DbResult<()> {
    c.exec(super::SETTINGS_PUT, &[name.into(), value.into()])?;
    Ok(())
}

const ADMINS_AN_ORG: &str =
    "SELECT 1 FROM organization_members WHERE user_id = ?1 AND user_role = 'org_admin' LIMIT 1";

/// Is `user_id` org admin of at least one organization?
pub fn admins_an_org<C: Handle + ?Sized>(c: &C, user_id: &str) -> DbResult<bool> {
    Ok(c.one(ADMINS_AN_ORG, &[user_id.into()], |_| Ok(()))?
        .is_some())
}
