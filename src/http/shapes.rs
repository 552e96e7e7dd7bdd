//! The JSON shapes of stored rows, as LiteLLM names them (API.md §6): one renderer per row type,
//! used by every info/list/new/update answer that shows it. Rendering only: which rows a caller
//! may see, and which fields are blanked for them (a key's `token`), is the handlers' business.

use crate::db::handle::Handle;
use crate::db::{
    self,
    keys::{KeyRec, KeySummary},
    orgs::OrgRow,
    teams::TeamRow,
    users::UserRow,
};
use crate::error::Result;
use crate::hierarchy::Allowance;
use serde_json::{json, Value};

/// `fields` with the allowance's fields merged in (LiteLLM shows them flat).
fn with_allowance(a: &Allowance, fields: Value) -> Value {
    let mut m = a.json();
    if let Value::Object(o) = fields {
        m.extend(o);
    }
    Value::Object(m)
}

/// Adds `extra`'s fields to the object `v`.
pub fn extend(mut v: Value, extra: Value) -> Value {
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// A team object (API.md §6 team fields), without its members.
pub fn team(t: &TeamRow) -> Value {
    with_allowance(
        &t.allowance,
        json!({
            "team_id": t.id,
            "team_alias": t.alias,
            "organization_id": t.organization_id,
            "models": t.models,
            "spend": t.spend,
            "blocked": t.blocked,
            "metadata": t.metadata,
            "created_at": t.created_at,
            "updated_at": t.updated_at,
            "created_by": t.created_by,
            "updated_by": t.updated_by,
            "model_aliases": t.model_aliases,
            "team_member_permissions": t.member_permissions,
        }),
    )
}

/// A team with its members (`members_with_roles`), as `/team/*` and `/user/info` show it.
pub fn team_with_members(t: &TeamRow, members: &[db::teams::MemberRow]) -> Value {
    let roles: Vec<Value> = members.iter().map(team_member).collect();
    extend(team(t), json!({ "members_with_roles": roles }))
}

/// One entry of `members_with_roles`.
pub fn team_member(m: &db::teams::MemberRow) -> Value {
    json!({"user_id": m.user_id, "user_email": m.user_email, "role": m.role})
}

/// LiteLLM's `LiteLLM_TeamMembership` shape.
pub fn team_membership(m: &db::teams::MemberRow) -> Value {
    json!({
        "team_id": m.team_id,
        "user_id": m.user_id,
        "role": m.role,
        "spend": m.spend,
        "budget_id": m.budget_id,
        "litellm_budget_table": m.budget_id.as_ref().map(|id| json!({
            "budget_id": id,
            "max_budget": m.max_budget,
        })),
    })
}

/// A user object without its teams; never the password hash.
pub fn user(u: &UserRow) -> Value {
    with_allowance(
        &u.allowance,
        json!({
            "user_id": u.id,
            "user_email": u.email,
            "user_role": u.user_role,
            "models": u.models,
            "spend": u.spend,
            "metadata": u.metadata,
            "created_at": u.created_at,
            "updated_at": u.updated_at,
        }),
    )
}

/// Who a user is, and no more (what an org admin learns of a member it added).
pub fn user_identity(u: &UserRow) -> Value {
    json!({"user_id": u.id, "user_email": u.email, "user_role": u.user_role})
}

/// A stored key as the key endpoints show it: the token (its SHA-256), never the raw key.
pub fn key(r: &KeyRec) -> Value {
    let k = &r.k;
    with_allowance(
        &k.allowance,
        json!({
            "token": k.token,
            "key_name": k.key_name,
            "key_alias": k.key_alias,
            "models": k.models,
            "aliases": k.aliases,
            "team_id": k.team_id,
            "user_id": k.user_id,
            "organization_id": k.organization_id,
            "expires": k.expires,
            "blocked": k.blocked,
            "spend": r.spend,
            "metadata": k.metadata,
            "created_at": r.created_at,
            "updated_at": r.updated_at,
            "created_by": k.created_by,
            "updated_by": r.updated_by,
        }),
    )
}

/// A key as team and user info list it.
pub fn key_summary(k: &KeySummary) -> Value {
    json!({
        "token": k.token,
        "key_name": k.key_name,
        "key_alias": k.key_alias,
        "models": k.models,
        "spend": k.spend,
        "max_budget": k.max_budget,
        "expires": k.expires,
        "user_id": k.user_id,
        "team_id": k.team_id,
        "organization_id": k.organization_id,
        "blocked": k.blocked,
        "created_at": k.created_at,
    })
}

/// A budget row by id, as `litellm_budget_table` (null when none).
pub fn budget_by_id<C: Handle + ?Sized>(c: &C, id: Option<&str>) -> Result<Value> {
    Ok(match id {
        Some(id) => db::budgets::get(c, id)?
            .map(|b| b.to_json())
            .unwrap_or(Value::Null),
        None => Value::Null,
    })
}

/// An organization membership (LiteLLM's `LiteLLM_OrganizationMembershipTable`).
pub fn org_member<C: Handle + ?Sized>(c: &C, m: &db::orgs::MemberRow) -> Result<Value> {
    Ok(json!({
        "user_id": m.user_id,
        "user_email": m.user_email,
        "organization_id": m.organization_id,
        "user_role": m.user_role,
        "spend": m.spend,
        "budget_id": m.budget_id,
        "litellm_budget_table": budget_by_id(c, m.budget_id.as_deref())?,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    }))
}

/// The one shape of an organization (new, update, delete, list, info): with its budget, its
/// members and its teams.
pub fn org<C: Handle + ?Sized>(c: &C, o: &OrgRow) -> Result<Value> {
    let members = db::orgs::members(c, &o.id)?
        .iter()
        .map(|m| org_member(c, m))
        .collect::<Result<Vec<_>>>()?;
    let teams: Vec<Value> = db::orgs::teams(c, &o.id)?.iter().map(team).collect();
    Ok(json!({
        "organization_id": o.id,
        "organization_alias": o.alias,
        "models": o.models,
        "spend": o.spend,
        "budget_id": o.budget_id,
        "litellm_budget_table": budget_by_id(c, o.budget_id.as_deref())?,
        "metadata": o.metadata,
        "members": members,
        "teams": teams,
        "created_at": o.created_at,
        "updated_at": o.updated_at,
        "created_by": o.created_by,
        "updated_by": o.updated_by,
    }))
}
