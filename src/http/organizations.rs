//! Organization endpoints (API.md §6 Organizations; roles §5; decisions §8): new, update,
//! delete, list, info (GET and the deprecated POST), member_add, member_update, member_delete.
//! Shapes are `shapes`'; budget fields are parsed by `budgets::BudgetPatch`; membership parsing
//! and user resolution are `members`'; model-list rules are `auth`'s (`exceeding`).
//!
//! Visibility (§8): an organization the caller may not read answers like a missing one (404);
//! one the caller may read but not change answers 403. Every write runs in one IMMEDIATE
//! transaction, authorization included, so a refused or failed request changes nothing.

use super::budgets::{opt_id, BudgetPatch};
use super::members::{self, ORG};
use super::{patch, shapes, Body, Ctx, Reply, Req};
use crate::access::grant::{self, Holder};
use crate::access::{authority, policy};
use crate::audit::{Actor, Entry};
use crate::auth::Caller;
use crate::db::handle::Handle;
use crate::db::rows::unique_or;
use crate::db::{self, members::Group, orgs::MemberRow, orgs::OrgRow};
use crate::error::{Error, Result};
use crate::util;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Checks

fn org_not_found(id: &str) -> Error {
    Error::NotFound(format!("Organization not found: {id}"))
}

/// The organization, if it exists and the caller may read it; otherwise 404 (§8: an invisible
/// organization looks missing).
fn visible_org<C: Handle + ?Sized>(c: &C, who: &Caller, id: &str) -> Result<OrgRow> {
    let org = db::orgs::get(c, id)?.ok_or_else(|| org_not_found(id))?;
    if !policy::can_read_org(c, who, id)? {
        return Err(org_not_found(id));
    }
    Ok(org)
}

/// The organization, if the caller may change it: 404 when missing or invisible, 403 when
/// visible but the caller is not a proxy admin or an org_admin of it.
fn changeable_org<C: Handle + ?Sized>(c: &C, who: &Caller, id: &str) -> Result<OrgRow> {
    let org = visible_org(c, who, id)?;
    if !policy::is_org_admin(c, who, id)? {
        return Err(Error::Forbidden(format!(
            "Only a proxy admin or an org_admin of organization {id} can do this"
        )));
    }
    Ok(org)
}

/// `budget_id` and budget fields are alternatives; both at once is ambiguous (400).
fn budget_source(b: &Body) -> Result<Option<String>> {
    let budget_id = opt_id(b, "budget_id")?;
    if budget_id.is_some() {
        if let Some(f) = BudgetPatch::first_present(b) {
            return Err(Error::bad_param(
                f,
                format!("give either `budget_id` or budget fields such as `{f}`, not both"),
            ));
        }
    }
    Ok(budget_id)
}

fn existing_budget<C: Handle + ?Sized>(c: &C, id: &str) -> Result<()> {
    match db::budgets::get(c, id)? {
        Some(_) => Ok(()),
        None => Err(Error::bad_param(
            "budget_id",
            format!("budget_id {id} does not exist; create it with /budget/new"),
        )),
    }
}

fn parse_metadata(b: &Body) -> Result<Option<Value>> {
    Ok(b.opt_obj("metadata")?.map(Value::Object))
}

// ---------------------------------------------------------------------------------------------
// Organizations

/// `POST /organization/new` (proxy admin).
pub fn create(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let b = req.json()?;
    let alias = b.req_str("organization_alias")?;
    let models = b.opt_list("models")?.unwrap_or_default();
    grant::check_models(
        ctx.models.current().global(),
        &Holder::Org {
            granter: who.chain(),
        },
        &models,
    )?;
    let budget_id = budget_source(&b)?;
    let patch = BudgetPatch::parse(&b)?;
    let metadata = parse_metadata(&b)?.unwrap_or_else(|| json!({}));
    let id = opt_id(&b, "organization_id")?.unwrap_or_else(util::uuid4);
    let out = ctx.pool.write_db(|tx| {
        let budget_id = match budget_id {
            Some(bid) => {
                existing_budget(tx, &bid)?;
                bid
            }
            // As LiteLLM: without a budget_id the org gets its own budget row, even an empty one.
            None => {
                let row = patch.new_row(util::uuid4(), who);
                db::budgets::insert(tx, &row)?;
                row.id
            }
        };
        let now = util::now_iso();
        let org = OrgRow {
            id: id.clone(),
            alias,
            models,
            spend: 0.0,
            budget_id: Some(budget_id),
            blocked: false,
            metadata,
            created_at: now.clone(),
            updated_at: now,
            created_by: who.user_id.clone(),
            updated_by: who.user_id.clone(),
        };
        db::orgs::insert(tx, &org)
            .map_err(|e| unique_or(e, || format!("Organization id already exists: {id}")))?;
        let out = shapes::org(tx, &org)?;
        Entry::new("create", "organization", &id)
            .org(Some(&id))
            .after(out.clone())
            .record(tx, &Actor::of(who))?;
        Ok(out)
    })?;
    Reply::ok(out)
}

/// `PATCH /organization/update`: the proxy admin changes anything; an org_admin of the org only
/// `organization_alias` and `metadata` (API.md §8).
pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let id = b.req_str("organization_id")?;
    let alias = b.opt_str("organization_alias")?;
    if alias.as_ref().is_some_and(|a| a.trim().is_empty()) {
        return Err(Error::bad_param(
            "organization_alias",
            "`organization_alias` must not be empty",
        ));
    }
    let models = b.opt_list("models")?;
    let budget_id = budget_source(&b)?;
    let budget_field = BudgetPatch::first_present(&b);
    let patch = BudgetPatch::parse(&b)?;
    let metadata = parse_metadata(&b)?;
    let out = ctx.pool.write_db(|tx| {
        let mut org = changeable_org(tx, who, &id)?;
        let before = shapes::org(tx, &org)?;
        if !who.is_proxy_admin() {
            let admin_only = if models.is_some() {
                Some("models")
            } else if budget_id.is_some() {
                Some("budget_id")
            } else {
                budget_field
            };
            if let Some(f) = admin_only {
                return Err(Error::Forbidden(format!(
                    "Only a proxy admin can change an organization's models or budget (`{f}`)"
                )));
            }
        }
        if let Some(m) = models {
            grant::check_models(
                ctx.models.current().global(),
                &Holder::Org {
                    granter: who.chain(),
                },
                &m,
            )?;
            org.models = m;
        }
        if let Some(bid) = budget_id {
            existing_budget(tx, &bid)?;
            org.budget_id = Some(bid);
        } else if budget_field.is_some() {
            let existing = match &org.budget_id {
                Some(bid) => db::budgets::get(tx, bid)?,
                None => None,
            };
            match existing {
                Some(mut row) => {
                    let now_ms = util::now_ms();
                    patch.apply(&mut row, now_ms);
                    row.updated_at = util::iso_from_ms(now_ms);
                    row.updated_by = who.user_id.clone();
                    db::budgets::update(tx, &row)?;
                }
                None => {
                    let row = patch.new_row(util::uuid4(), who);
                    db::budgets::insert(tx, &row)?;
                    org.budget_id = Some(row.id);
                }
            }
        }
        if let Some(a) = alias {
            org.alias = a;
        }
        if let Some(m) = metadata {
            org.metadata = m;
        }
        org.updated_at = util::now_iso();
        org.updated_by = who.user_id.clone();
        db::orgs::update(tx, &org)?;
        let out = shapes::org(tx, &org)?;
        Entry::new("update", "organization", &id)
            .org(Some(&id))
            .before(before)
            .after(out.clone())
            .record(tx, &Actor::of(who))?;
        Ok(out)
    })?;
    Reply::ok(out)
}

/// `DELETE /organization/delete` (proxy admin): `organization_ids`. In one transaction: every id
/// must exist (else 404, nothing deleted); the orgs go with their teams, those teams' keys and
/// memberships, keys whose own organization is the org, the org's memberships (schema
/// cascades), and the budget rows they owned that nothing else uses (API.md §8 "Org delete").
pub fn delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let b = req.json()?;
    let mut ids = b.opt_list("organization_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_param(
            "organization_ids",
            "`organization_ids` is required: a non-empty list of organization ids",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    let out = ctx.pool.write_db(|tx| {
        let mut shaped = Vec::with_capacity(ids.len());
        for id in &ids {
            let org = db::orgs::get(tx, id)?.ok_or_else(|| org_not_found(id))?;
            shaped.push(shapes::org(tx, &org)?);
        }
        for (id, before) in ids.iter().zip(&shaped) {
            Entry::new("delete", "organization", id)
                .org(Some(id))
                .before(before.clone())
                .record(tx, &Actor::of(who))?;
            let budgets = db::orgs::budget_ids_owned(tx, id)?;
            db::orgs::delete(tx, id)?;
            for bid in budgets {
                db::budgets::delete_if_unused(tx, &bid)?;
            }
        }
        Ok(shaped)
    })?;
    Reply::ok(Value::Array(out))
}

/// `GET /organization/list`: proxy admins and viewers see all; others the orgs they belong to.
pub fn list(ctx: &Ctx, who: &Caller, _req: &Req) -> Result<Reply> {
    let out = ctx.pool.read_db(|c| {
        let rows = if who.role.reads_all() {
            db::orgs::list_all(c)?
        } else {
            match &who.user_id {
                Some(u) => db::orgs::list_for_user(c, u)?,
                None => Vec::new(),
            }
        };
        rows.iter()
            .map(|o| shapes::org(c, o))
            .collect::<Result<Vec<_>>>()
    })?;
    Reply::ok(Value::Array(out))
}

/// `GET /organization/info?organization_id=`: proxy admins/viewers and members of the org.
pub fn info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let id = req
        .query("organization_id")
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            Error::bad_param(
                "organization_id",
                "query parameter `organization_id` is required",
            )
        })?;
    let out = ctx
        .pool
        .read_db(|c| shapes::org(c, &visible_org(c, who, id)?))?;
    Reply::ok(out)
}

/// Deprecated `POST /organization/info` with `{"organizations": [ids]}`: a list; any unknown or
/// invisible id → 404.
pub fn info_deprecated(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let ids = b.opt_list("organizations")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_param(
            "organizations",
            "`organizations` is required: a non-empty list of organization ids",
        ));
    }
    let out = ctx.pool.read_db(|c| {
        ids.iter()
            .map(|id| shapes::org(c, &visible_org(c, who, id)?))
            .collect::<Result<Vec<_>>>()
    })?;
    Reply::ok(Value::Array(out))
}

// ---------------------------------------------------------------------------------------------
// Members

/// `POST /organization/member_add` (proxy admin or org_admin of the org).
pub fn member_add(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let org_id = b.req_str("organization_id")?;
    let specs = members::specs(&ORG, &b, "member", true)?;
    let max_budget = b.opt_budget("max_budget_in_organization")?;
    let by = who.user_id.clone();
    let out = ctx.pool.write_db(|tx| {
        changeable_org(tx, who, &org_id)?;
        let d = &ctx.cfg.user_defaults;
        let added = members::add(tx, d, &ORG, &org_id, &specs, max_budget, by.as_deref())?;
        let mut users = Vec::with_capacity(added.len());
        let mut memberships = Vec::with_capacity(added.len());
        for user_id in &added {
            if max_budget.is_some() {
                let rank = authority::org_rank(tx, who, &org_id)?;
                db::authority::set_org_member_rank(tx, &org_id, user_id, rank.n())?;
            }
            if let Some(u) = db::users::get(tx, user_id)? {
                // An org admin may name any existing user: it learns who they are in the org,
                // not their personal models, budgets, spend or metadata (proxy readers do).
                users.push(if who.role.reads_all() {
                    shapes::user(&u)
                } else {
                    shapes::user_identity(&u)
                });
            }
            if let Some(mr) = db::orgs::member_get(tx, &org_id, user_id)? {
                let m = shapes::org_member(tx, &mr)?;
                Entry::new("member_add", "organization", &org_id)
                    .org(Some(&org_id))
                    .after(m.clone())
                    .record(tx, &Actor::of(who))?;
                memberships.push(m);
            }
        }
        Ok(json!({
            "organization_id": org_id,
            "updated_users": users,
            "updated_organization_memberships": memberships,
        }))
    })?;
    Reply::ok(out)
}

/// The target of member_update / member_delete: `user_id`, else `user_email`. A user that does
/// not exist is reported as an unknown membership (404).
fn target_membership<C: Handle + ?Sized>(c: &C, b: &Body, org_id: &str) -> Result<MemberRow> {
    let missing = || Error::NotFound(format!("Member not found in organization {org_id}"));
    match members::named_user(c, b)? {
        Some(u) => db::orgs::member_get(c, org_id, &u)?.ok_or_else(missing),
        None => Err(missing()),
    }
}

/// `PATCH /organization/member_update` (proxy admin or org_admin of the org): `role` and/or
/// `max_budget_in_organization` (`null` removes the member's budget). Never touches the
/// user's global role.
pub fn member_update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let org_id = b.req_str("organization_id")?;
    let role = ORG.opt_role(&b)?;
    let budget = patch::field(&b, "max_budget_in_organization", Body::opt_budget)?;
    if role.is_none() && !budget.present() {
        return Err(Error::bad_param(
            "role",
            "nothing to change: give `role` and/or `max_budget_in_organization`",
        ));
    }
    let out = ctx.pool.write_db(|tx| {
        changeable_org(tx, who, &org_id)?;
        let m = target_membership(tx, &b, &org_id)?;
        let before = shapes::org_member(tx, &m)?;
        let uid = &m.user_id;
        let rank = authority::org_rank(tx, who, &org_id)?;
        let budget_rank = db::authority::org_member_rank(tx, &org_id, uid)?;
        let old = members::max_budget_of(tx, m.budget_id.as_deref())?;
        let what = format!("user {uid} in organization {org_id}");
        let field = "max_budget_in_organization";
        members::check_budget(rank, budget_rank, old, &budget, field, &what)?;
        if budget.present() && budget.over(old) != old {
            let next = authority::next_rank(budget_rank, rank, true);
            db::authority::set_org_member_rank(tx, &org_id, uid, next)?;
        }
        let budget_id = members::write_budget(tx, m.budget_id.as_deref(), &budget, who)?;
        let role = role.clone().unwrap_or_else(|| m.user_role.clone());
        db::members::set(tx, Group::Org, &org_id, uid, &role, budget_id.as_deref())?;
        members::release_budget(tx, m.budget_id.as_deref(), budget_id.as_deref())?;
        if m.user_role == "org_admin" && role != "org_admin" {
            // No longer its admin: keys held in its teams only as admin go (`grant`).
            db::authority::delete_org_keys(tx, &org_id, uid, false)?;
        }
        let updated = db::orgs::member_get(tx, &org_id, uid)?
            .ok_or_else(|| Error::internal("membership vanished inside its transaction"))?;
        let out = shapes::org_member(tx, &updated)?;
        Entry::new("member_update", "organization", &org_id)
            .org(Some(&org_id))
            .before(before)
            .after(out.clone())
            .record(tx, &Actor::of(who))?;
        Ok(out)
    })?;
    Reply::ok(out)
}

/// `DELETE /organization/member_delete` (proxy admin or org_admin of the org). The membership's
/// budget row goes too. Answers the removed membership.
pub fn member_delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    let b = req.json()?;
    let org_id = b.req_str("organization_id")?;
    let out = ctx.pool.write_db(|tx| {
        changeable_org(tx, who, &org_id)?;
        let m = target_membership(tx, &b, &org_id)?;
        // Removing and adding again would drop a budget a higher rank set (`grant`).
        let rank = authority::org_rank(tx, who, &org_id)?;
        let budget_rank = db::authority::org_member_rank(tx, &org_id, &m.user_id)?;
        let what = format!("user {} in organization {org_id}", m.user_id);
        authority::check_member_removal(rank, budget_rank, m.budget_id.is_some(), &what)?;
        let shaped = shapes::org_member(tx, &m)?;
        Entry::new("member_delete", "organization", &org_id)
            .org(Some(&org_id))
            .before(shaped.clone())
            .record(tx, &Actor::of(who))?;
        db::orgs::member_delete(tx, &org_id, &m.user_id)?;
        // What the membership gave goes with it: its admin's keys in the org's teams they are
        // not members of, and personal keys in the org.
        db::authority::delete_org_keys(tx, &org_id, &m.user_id, true)?;
        if let Some(bid) = &m.budget_id {
            db::budgets::delete_if_unused(tx, bid)?;
        }
        Ok(shaped)
    })?;
    Reply::ok(out)
}
