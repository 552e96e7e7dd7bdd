//! Membership handling that teams and organizations share: parsing `member` /
//! `members_with_roles` entries, finding (or creating, as LiteLLM does) the user an entry
//! names, finding the member an update or delete names, and writing a membership's budget row
//! (`max_budget_in_team`, `max_budget_in_organization`) by the one update rule. Which caller
//! may change a membership, and what a removal takes with it (keys), stays with the team and
//! organization handlers and `grant`.

use super::{fields, users, Body};
use crate::access::authority;
use crate::auth::Caller;
use crate::db::handle::Handle;
use crate::db::rows::unique_or;
use crate::db::{self, members::Group};
use crate::error::{Error, Result};
use crate::hierarchy::Patch;
use crate::user_defaults::UserDefaults;
use crate::util;
use serde_json::Value;

/// What differs between a team's and an organization's memberships.
pub struct Kind {
    pub group: Group,
    /// "team" or "organization", for messages.
    pub noun: &'static str,
    /// The roles a member may hold; the first is the default of an added member.
    pub roles: &'static [&'static str],
    /// A bad `role`, `user_id` or `user_email` inside an entry names that key as the error's
    /// `param` (organizations), rather than the list field (teams).
    pub inner_params: bool,
}

pub const TEAM: Kind = Kind {
    group: Group::Team,
    noun: "team",
    roles: &["user", "admin"],
    inner_params: false,
};

pub const ORG: Kind = Kind {
    group: Group::Org,
    noun: "organization",
    roles: &["internal_user", "org_admin", "internal_user_viewer"],
    inner_params: true,
};

impl Kind {
    /// `role` checked against the kind's roles (400 naming `field`).
    pub fn role(&self, field: &str, role: &str) -> Result<String> {
        if self.roles.contains(&role) {
            return Ok(role.to_string());
        }
        Err(Error::bad_param(
            field,
            format!("`{field}` must be one of {:?}, got '{role}'", self.roles),
        ))
    }

    /// The optional `role` of a member update.
    pub fn opt_role(&self, b: &Body) -> Result<Option<String>> {
        b.opt_str("role")?
            .map(|r| self.role("role", &r))
            .transpose()
    }
}

/// One `{role, user_id | user_email}` entry of `member` / `members_with_roles`.
pub struct Spec {
    pub role: String,
    pub user_id: Option<String>,
    pub user_email: Option<String>,
}

fn spec(kind: &Kind, field: &str, v: &Value) -> Result<Spec> {
    let Some(o) = v.as_object() else {
        return Err(Error::bad_param(
            field,
            format!("`{field}` entries must be objects {{role, user_id | user_email}}"),
        ));
    };
    let param = |k: &'static str| if kind.inner_params { k } else { field };
    let text = |k: &'static str| -> Result<Option<String>> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => {
                fields::check(k, s).map(|_| Some(s.clone()))
            }
            Some(_) => Err(Error::bad_param(
                param(k),
                format!("`{field}.{k}` must be a non-empty string"),
            )),
        }
    };
    let role = match text("role")? {
        Some(r) => kind
            .role(&format!("{field}.role"), &r)
            .map_err(|e| match e {
                Error::BadRequest { message, .. } => Error::bad_param(param("role"), message),
                e => e,
            })?,
        None => kind.roles[0].to_string(),
    };
    let (user_id, user_email) = (text("user_id")?, text("user_email")?);
    if user_id.is_none() && user_email.is_none() {
        return Err(Error::bad_param(
            field,
            format!("`{field}` entries need `user_id` or `user_email`"),
        ));
    }
    Ok(Spec {
        role,
        user_id,
        user_email,
    })
}

/// `field`: one entry or a list of them. `required`: absent (or `null`) or an empty list is a
/// 400; otherwise absent is no entries.
pub fn specs(kind: &Kind, body: &Body, field: &str, required: bool) -> Result<Vec<Spec>> {
    let out = match body.raw(field) {
        None => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| spec(kind, field, v))
            .collect::<Result<_>>()?,
        Some(v @ Value::Object(_)) => vec![spec(kind, field, v)?],
        Some(_) => {
            return Err(Error::bad_param(
                field,
                format!("`{field}` must be an object or a list of objects"),
            ))
        }
    };
    if required && out.is_empty() {
        return Err(Error::bad_param(
            field,
            format!("`{field}` is required: an object or a non-empty list of objects"),
        ));
    }
    Ok(out)
}

/// The one user with this email (case-insensitive): None when there is none, 400 when several
/// (imported databases may hold more than one).
fn user_by_email<C: Handle + ?Sized>(c: &C, email: &str) -> Result<Option<String>> {
    let mut ids = db::users::ids_by_email(c, email)?;
    if ids.len() > 1 {
        return Err(Error::bad_param(
            "user_email",
            format!("more than one user has the email {email}; pass user_id"),
        ));
    }
    Ok(ids.pop())
}

/// The user an entry names, created when missing as LiteLLM does (`users::create_implicit`:
/// the new-user defaults, no personal models unless configured).
pub fn resolve_or_create<C: Handle + ?Sized>(c: &C, d: &UserDefaults, m: &Spec) -> Result<String> {
    let found = match (&m.user_id, &m.user_email) {
        (Some(id), _) => db::users::get(c, id)?.map(|u| u.id),
        (None, Some(email)) => user_by_email(c, email)?,
        (None, None) => None,
    };
    if let Some(id) = found {
        return Ok(id);
    }
    let id = m.user_id.clone().unwrap_or_else(util::uuid4);
    users::create_implicit(c, d, &id, m.user_email.as_deref()).map_err(|e| {
        unique_or(e, || {
            format!(
                "another user already has the email {}",
                m.user_email.as_deref().unwrap_or_default()
            )
        })
    })?;
    Ok(id)
}

/// Adds each entry as a member of `group_id` (creating missing users), each with its own
/// budget row when `budget` is given. Returns the user ids. An existing membership is 409.
pub fn add<C: Handle + ?Sized>(
    c: &C,
    d: &UserDefaults,
    kind: &Kind,
    group_id: &str,
    specs: &[Spec],
    budget: Option<f64>,
    by: Option<&str>,
) -> Result<Vec<String>> {
    let mut added = Vec::with_capacity(specs.len());
    for m in specs {
        let uid = resolve_or_create(c, d, m)?;
        let budget_id = match budget {
            Some(b) => {
                let row = db::budgets::new_max_budget_row(b, by);
                db::budgets::insert(c, &row)?;
                Some(row.id)
            }
            None => None,
        };
        db::members::add(c, kind.group, group_id, &uid, &m.role, budget_id.as_deref()).map_err(
            |e| {
                unique_or(e, || {
                    format!("User {uid} is already a member of {} {group_id}", kind.noun)
                })
            },
        )?;
        added.push(uid);
    }
    Ok(added)
}

/// The user an update or delete names by `user_id`, else `user_email`: None when no user has
/// that email (the caller answers 404). Neither given: 400.
pub fn named_user<C: Handle + ?Sized>(c: &C, b: &Body) -> Result<Option<String>> {
    let id = b.opt_str("user_id")?.filter(|s| !s.trim().is_empty());
    let email = b.opt_str("user_email")?.filter(|s| !s.trim().is_empty());
    match (id, email) {
        (Some(id), _) => Ok(Some(id)),
        (None, Some(email)) => user_by_email(c, &email),
        (None, None) => Err(Error::bad_param(
            "user_id",
            "`user_id` or `user_email` of the member is required",
        )),
    }
}

/// A membership budget change by the one update rule, checked against the rank that set the
/// stored one (`grant`): clearing a budget loosens it as much as raising it does.
pub fn check_budget(
    rank: authority::Rank,
    stored_rank: i64,
    old: Option<f64>,
    patch: &Patch<f64>,
    field: &str,
    what: &str,
) -> Result<()> {
    match patch {
        Patch::Absent => Ok(()),
        Patch::Value(v) => {
            authority::check_member_budget(rank, stored_rank, old, Some(*v), field, what)
        }
        Patch::Null if old.is_some() && rank.n() < stored_rank => {
            Err(authority::loosen_denied(field, what, stored_rank))
        }
        Patch::Null => Ok(()),
    }
}

/// Writes a membership budget patch; returns the membership's budget id after it. A value
/// updates the row (or creates one), `null` detaches it (`release_budget` deletes it once the
/// membership no longer points at it), absent changes nothing.
pub fn write_budget<C: Handle + ?Sized>(
    c: &C,
    budget_id: Option<&str>,
    patch: &Patch<f64>,
    who: &Caller,
) -> Result<Option<String>> {
    let by = who.user_id.as_deref();
    let existing = match budget_id {
        Some(id) => db::budgets::get(c, id)?,
        None => None,
    };
    Ok(match (patch, existing) {
        (Patch::Absent, _) => budget_id.map(str::to_string),
        (Patch::Value(v), Some(mut row)) => {
            row.allowance.max_budget = Some(*v);
            row.updated_at = util::now_iso();
            row.updated_by = by.map(str::to_string);
            db::budgets::update(c, &row)?;
            Some(row.id)
        }
        (Patch::Value(v), None) => {
            let row = db::budgets::new_max_budget_row(*v, by);
            db::budgets::insert(c, &row)?;
            Some(row.id)
        }
        (Patch::Null, _) => None,
    })
}

/// After the membership was written with `new`: the `old` budget row goes when it was
/// detached and nothing else uses it.
pub fn release_budget<C: Handle + ?Sized>(
    c: &C,
    old: Option<&str>,
    new: Option<&str>,
) -> Result<()> {
    if let Some(old) = old.filter(|o| Some(*o) != new) {
        db::budgets::delete_if_unused(c, old)?;
    }
    Ok(())
}

/// The stored budget of a membership (`None`: no budget row, or one without `max_budget`).
pub fn max_budget_of<C: Handle + ?Sized>(c: &C, budget_id: Option<&str>) -> Result<Option<f64>> {
    Ok(match budget_id {
        Some(id) => db::budgets::get(c, id)?.and_then(|b| b.allowance.max_budget),
        None => None,
    })
}
