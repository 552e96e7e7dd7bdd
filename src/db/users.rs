//! User queries. One fn per query. The allowance columns come from `allowance_columns!`. On the
//! engine-neutral `handle::Handle` (issue 14); `list` keeps a PostgreSQL text (JSON arrays).

use super::handle::{allowance, allowance_args, DbResult, Handle, Row};
use super::sql::Arg;
use crate::hierarchy::Allowance;
use crate::{allowance_columns, allowance_set, allowance_values};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: Option<String>,
    pub user_role: String,
    pub password_hash: Option<String>,
    pub models: Vec<String>,
    pub spend: f64,
    pub allowance: Allowance,
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

/// The columns `user_row` reads.
macro_rules! user_columns {
    () => {
        concat!(
            "id, email, user_role, password_hash, models, spend, metadata, created_at, \
             updated_at, ",
            allowance_columns!()
        )
    };
}

pub fn user_row(r: &Row<'_, '_>) -> DbResult<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        email: r.get(1)?,
        user_role: r.get(2)?,
        password_hash: r.get(3)?,
        models: super::json_list(&r.get::<String>(4)?),
        spend: r.get(5)?,
        metadata: super::json_obj(&r.get::<String>(6)?),
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        allowance: allowance(r, 9)?,
    })
}

const GET: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?1");

pub fn get<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<Option<UserRow>> {
    c.one(GET, &[id.into()], user_row)
}

const IDS_BY_EMAIL: &str = "SELECT id FROM users WHERE lower(email) = lower(?1)";

/// Ids of users with this email (case-insensitive). The unique index allows at most one, but
/// imported databases may hold more: callers treat more than one as ambiguous (400).
pub fn ids_by_email<C: Handle + ?Sized>(c: &C, email: &str) -> DbResult<Vec<String>> {
    c.all(IDS_BY_EMAIL, &[email.into()], |r| r.get(0))
}

// ---------------------------------------------------------------------------------------------
// Writes

/// Columns a user write sets (everything but id, spend and the creation stamp).
#[derive(Debug, Clone, Default)]
pub struct UserFields {
    pub email: Option<String>,
    pub user_role: String,
    pub password_hash: Option<String>,
    pub models: Vec<String>,
    pub allowance: Allowance,
    pub metadata: serde_json::Value,
}

impl UserFields {
    /// The writable part of a stored user (start of an update).
    pub fn of(u: &UserRow) -> UserFields {
        UserFields {
            email: u.email.clone(),
            user_role: u.user_role.clone(),
            password_hash: u.password_hash.clone(),
            models: u.models.clone(),
            allowance: u.allowance.clone(),
            metadata: u.metadata.clone(),
        }
    }
}

const INSERT: &str = concat!(
    "INSERT INTO users (",
    allowance_columns!(),
    ", id, email, user_role, password_hash, models, metadata, created_at, updated_at)
    VALUES (",
    allowance_values!(),
    ", ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)"
);

/// Inserts a user. A duplicate id or email is a UNIQUE violation: the caller's 409.
pub fn insert<C: Handle + ?Sized>(c: &C, id: &str, f: &UserFields) -> DbResult<()> {
    write(c, INSERT, id, f).map(|_| ())
}

const UPDATE: &str = concat!(
    "UPDATE users SET ",
    allowance_set!(),
    ", email = ?9, user_role = ?10, password_hash = ?11, models = ?12, metadata = ?13,
    updated_at = ?14 WHERE id = ?8"
);

/// Writes every writable column of a user; returns the rows changed (0 = gone). A taken email
/// is a UNIQUE violation: the caller's 409.
pub fn update<C: Handle + ?Sized>(c: &C, id: &str, f: &UserFields) -> DbResult<usize> {
    write(c, UPDATE, id, f)
}

/// Runs INSERT or UPDATE: `?1`..`?7` the allowance, then id, email, role, password hash,
/// models, metadata, now.
fn write<C: Handle + ?Sized>(c: &C, sql: &str, id: &str, f: &UserFields) -> DbResult<usize> {
    let (models, metadata) = (super::to_json(&f.models), super::obj_text(&f.metadata));
    let now = crate::util::now_iso();
    let a = allowance_args(&f.allowance);
    let args: [Arg<'_>; 14] = [
        a[0],
        a[1],
        a[2],
        a[3],
        a[4],
        a[5],
        a[6],
        id.into(),
        (&f.email).into(),
        (&f.user_role).into(),
        (&f.password_hash).into(),
        (&models).into(),
        (&metadata).into(),
        (&now).into(),
    ];
    c.exec(sql, &args)
}

const DELETE_TEAM_BUDGETS: &str = "DELETE FROM budgets WHERE id IN
    (SELECT budget_id FROM team_members WHERE user_id = ?1 AND budget_id IS NOT NULL)";
const DELETE: &str = "DELETE FROM users WHERE id = ?1";

/// Deletes a user with their team-membership budget rows; keys and memberships go by FK cascade.
pub fn delete<C: Handle + ?Sized>(c: &C, id: &str) -> DbResult<usize> {
    c.exec(DELETE_TEAM_BUDGETS, &[id.into()])?;
    c.exec(DELETE, &[id.into()])
}

// ---------------------------------------------------------------------------------------------
// Listing

/// `ids` is a JSON array of user ids, or NULL for no id filter.
const LIST: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users
    WHERE (?1 IS NULL OR user_role = ?1)
      AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2)))
    ORDER BY created_at, id LIMIT ?3 OFFSET ?4"
);

const COUNT: &str = "SELECT count(*) FROM users
    WHERE (?1 IS NULL OR user_role = ?1)
      AND (?2 IS NULL OR id IN (SELECT value FROM json_each(?2)))";

/// `LIST` and `COUNT` on PostgreSQL: its JSON array function, and typed parameters.
const LIST_PG: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users
    WHERE (?1::text IS NULL OR user_role = ?1)
      AND (?2::text IS NULL OR id IN (SELECT json_array_elements_text(?2::json)))
    ORDER BY created_at, id LIMIT ?3 OFFSET ?4"
);

const COUNT_PG: &str = "SELECT count(*) FROM users
    WHERE (?1::text IS NULL OR user_role = ?1)
      AND (?2::text IS NULL OR id IN (SELECT json_array_elements_text(?2::json)))";

/// One page of users, filtered by role and/or ids; and the total matching.
pub fn list<C: Handle + ?Sized>(
    c: &C,
    role: Option<&str>,
    ids: Option<&[String]>,
    limit: i64,
    offset: i64,
) -> DbResult<(Vec<UserRow>, i64)> {
    let ids = ids.map(|v| super::to_json(&v));
    let filter = [role.into(), (&ids).into()];
    let total: i64 = c
        .one(c.pick(COUNT, COUNT_PG), &filter, |r| r.get(0))?
        .unwrap_or(0);
    let args = [filter[0], filter[1], limit.into(), offset.into()];
    let rows = c.all(c.pick(LIST, LIST_PG), &args, user_row)?;
    Ok((rows, total))
}
