//! End users, LiteLLM's customers (issue 15 item 4): `/end_user/new`, `/info`, `/update`,
//! `/delete`, `/list`, `/block`, `/unblock`, each also as `/customer/*` (LiteLLM's
//! `customer_endpoints.py`). An end user is who a model call's `user` field names; its budget
//! and rate limits are a budget row's (`budget_id`, or the budget fields given here, which make
//! one). Writes are for proxy admins, reads for proxy admins and proxy admin viewers (README
//! "End users"). What a model call does with an end user is `call::end_user`'s.

use super::budgets::{opt_id, BudgetPatch};
use super::{patch, Body, Ctx, Reply, Req};
use crate::access::policy;
use crate::audit::{Actor, Entry};
use crate::auth::Caller;
use crate::db::budgets::BudgetRow;
use crate::db::end_users::EndUserRow;
use crate::db::handle::Handle;
use crate::db::rows::unique_or;
use crate::db::{self};
use crate::error::{Error, Result};
use crate::hierarchy::{AllowancePatch, Patch};
use crate::util;
use serde_json::{json, Value};

/// The most ids one `/delete`, `/block` or `/unblock` takes.
const MAX_IDS: usize = 1000;
/// The most end users one `/list` page holds (also the default page size).
const MAX_PAGE_SIZE: u64 = 1000;
/// LiteLLM's `AllowedModelRegion`.
const REGIONS: [&str; 2] = ["eu", "us"];

/// An end user as LiteLLM shows it (`LiteLLM_EndUserTable` with `litellm_budget_table`).
fn shape(e: &EndUserRow, budget: Option<&BudgetRow>) -> Value {
    json!({
        "user_id": e.id,
        "alias": e.alias,
        "spend": e.spend,
        "allowed_model_region": e.allowed_model_region,
        "default_model": e.default_model,
        "budget_id": e.budget_id,
        "blocked": e.blocked,
        "litellm_budget_table": budget.map(BudgetRow::to_json),
        "created_at": e.created_at,
        "updated_at": e.updated_at,
    })
}

/// The row and its budget row, shaped.
fn shape_of<C: Handle + ?Sized>(c: &C, e: &EndUserRow) -> Result<Value> {
    let budget = match &e.budget_id {
        Some(id) => db::budgets::get(c, id)?,
        None => None,
    };
    Ok(shape(e, budget.as_ref()))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("End User Id={id} does not exist in db"))
}

fn require_reader(who: &Caller) -> Result<()> {
    if who.role.reads_all() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "Admin-only endpoint. Your user role={}",
            who.role.as_str()
        )))
    }
}

/// The first budget field given a value (not `null`), if any.
fn budget_field_given(b: &Body) -> Option<&'static str> {
    AllowancePatch::FIELDS
        .into_iter()
        .chain(["model_max_budget"])
        .find(|f| b.given(f))
}

/// `allowed_model_region`: `eu` or `us` (LiteLLM's `AllowedModelRegion`).
fn region(b: &Body, f: &str) -> Result<Option<String>> {
    match b.opt_str(f)? {
        Some(r) if !REGIONS.contains(&r.as_str()) => Err(Error::bad_param(
            f,
            format!("`{f}` must be one of 'eu', 'us'; got '{r}'"),
        )),
        other => Ok(other),
    }
}

/// `default_model`: a model this proxy routes (LiteLLM checks the router's model names).
fn default_model(ctx: &Ctx, b: &Body) -> Result<Patch<String>> {
    let p = patch::field(b, "default_model", Body::opt_str)?;
    if let Patch::Value(m) = &p {
        if !ctx.models.current().global().is_routable(m) {
            return Err(Error::bad_param(
                "default_model",
                format!("Default Model not on proxy. Configure via config.yaml. Default_model={m}"),
            ));
        }
    }
    Ok(p)
}

/// A `budget_id` the body refers to must exist (400: a reference inside a body, API.md §8).
fn check_budget_ref<C: Handle + ?Sized>(c: &C, id: &str) -> Result<()> {
    match db::budgets::get(c, id)? {
        Some(_) => Ok(()),
        None => Err(Error::bad_param(
            "budget_id",
            format!("Budget not found: {id}"),
        )),
    }
}

/// Budget fields and `budget_id` together are refused: which should win is not clear
/// (LiteLLM refuses `max_budget` with `budget_id` in these words, and silently drops
/// `budget_id` for the other fields).
fn one_budget_source(b: &Body) -> Result<()> {
    if let (Some(f), true) = (budget_field_given(b), b.given("budget_id")) {
        return Err(Error::bad_param(
            "budget_id",
            format!("Set either '{f}' or 'budget_id', not both."),
        ));
    }
    Ok(())
}

/// `POST /end_user/new` (proxy admin): `user_id`, `alias`, `blocked`, `spend`,
/// `allowed_model_region`, `default_model`, and either `budget_id` or budget fields (which
/// make a budget row of their own, as LiteLLM does). A taken `user_id` → 409.
pub fn create(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let b = req.json()?;
    let id = b.req_str("user_id")?;
    one_budget_source(&b)?;
    let budget_id = opt_id(&b, "budget_id")?;
    let new_budget = match budget_field_given(&b) {
        Some(_) => Some(BudgetPatch::parse(&b)?.new_row(util::uuid4(), who)),
        None => None,
    };
    let now = util::now_iso();
    let row = EndUserRow {
        id,
        alias: patch::text(&b, "alias")?.value().cloned(),
        spend: b.opt_budget("spend")?.unwrap_or(0.0),
        allowed_model_region: region(&b, "allowed_model_region")?,
        default_model: default_model(ctx, &b)?.value().cloned(),
        budget_id: new_budget.as_ref().map(|r| r.id.clone()).or(budget_id),
        blocked: b.opt_bool("blocked")?.unwrap_or(false),
        created_at: now.clone(),
        updated_at: now,
    };
    let out = ctx.pool.write_db(|tx| {
        match &new_budget {
            Some(budget) => db::budgets::insert(tx, budget)?,
            None => {
                if let Some(id) = &row.budget_id {
                    check_budget_ref(tx, id)?;
                }
            }
        }
        db::end_users::insert(tx, &row).map_err(|e| {
            unique_or(e, || {
                format!(
                    "Customer already exists, passed user_id={}. Please pass a new user_id.",
                    row.id
                )
            })
        })?;
        let out = shape_of(tx, &row)?;
        Entry::new("create", "end_user", &row.id)
            .after(out.clone())
            .record(tx, &Actor::of(who))?;
        Ok(out)
    })?;
    Reply::ok(out)
}

/// `GET /end_user/info?end_user_id=` (proxy admin, viewer).
pub fn info(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    require_reader(who)?;
    let id = match req.query("end_user_id").filter(|s| !s.is_empty()) {
        Some(id) => id,
        None => return Err(Error::bad_param("end_user_id", "`end_user_id` is required")),
    };
    let out = ctx.pool.read_db(|c| {
        let e = db::end_users::get(c, id)?.ok_or_else(|| not_found(id))?;
        shape_of(c, &e)
    })?;
    Reply::ok(out)
}

/// `POST /end_user/update` (proxy admin): `user_id` plus the fields to change, by the update
/// rule (absent keeps, `null` clears, a value sets). Budget fields change the end user's budget
/// row; a row other holders share is copied first, so a change to one customer never changes
/// another's tier (LiteLLM would change the shared row).
pub fn update(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let b = req.json()?;
    let id = b.req_str("user_id")?;
    if let (Some(f), true) = (BudgetPatch::first_present(&b), b.has("budget_id")) {
        return Err(Error::bad_param(
            "budget_id",
            format!("Set either '{f}' or 'budget_id', not both."),
        ));
    }
    let budget_ref = patch::field(&b, "budget_id", opt_id)?;
    let budget_patch = match BudgetPatch::first_present(&b) {
        Some(_) => Some(BudgetPatch::parse(&b)?),
        None => None,
    };
    let alias = patch::text(&b, "alias")?;
    let region = patch::field(&b, "allowed_model_region", region)?;
    let default_model = default_model(ctx, &b)?;
    let blocked = b.opt_bool("blocked")?;
    let out = ctx.pool.write_db(|tx| {
        let mut e = db::end_users::get(tx, &id)?.ok_or_else(|| not_found(&id))?;
        let before = shape_of(tx, &e)?;
        let now_ms = util::now_ms();
        if let Patch::Value(budget) = &budget_ref {
            check_budget_ref(tx, budget)?;
        }
        budget_ref.apply(&mut e.budget_id);
        if let Some(p) = &budget_patch {
            e.budget_id = Some(patch_budget(tx, who, &e, p, now_ms)?);
        }
        alias.apply(&mut e.alias);
        region.apply(&mut e.allowed_model_region);
        default_model.apply(&mut e.default_model);
        if let Some(blocked) = blocked {
            e.blocked = blocked;
        }
        e.updated_at = util::iso_from_ms(now_ms);
        db::end_users::update(tx, &e)?;
        let out = shape_of(tx, &e)?;
        Entry::new("update", "end_user", &id)
            .before(before)
            .after(out.clone())
            .record(tx, &Actor::of(who))?;
        Ok(out)
    })?;
    Reply::ok(out)
}

/// Applies budget fields to the end user's budget row and returns the row's id: in place when
/// the row is the end user's alone, else on a copy (a new row when it had none).
fn patch_budget<C: Handle + ?Sized>(
    tx: &C,
    who: &Caller,
    e: &EndUserRow,
    p: &BudgetPatch,
    now_ms: i64,
) -> Result<String> {
    let stored = match &e.budget_id {
        Some(id) => db::budgets::get(tx, id)?,
        None => None,
    };
    match stored {
        Some(mut row) if db::end_users::budget_sharers(tx, &row.id, &e.id)? == 0 => {
            p.apply(&mut row, now_ms);
            row.updated_at = util::iso_from_ms(now_ms);
            row.updated_by = who.user_id.clone();
            db::budgets::update(tx, &row)?;
            Ok(row.id)
        }
        shared => {
            let row = match shared {
                // A copy of the shared row (its values, a new id and stamps), then the patch.
                Some(old) => {
                    let now = util::iso_from_ms(now_ms);
                    let mut row = BudgetRow {
                        id: util::uuid4(),
                        created_at: now.clone(),
                        updated_at: now,
                        created_by: who.user_id.clone(),
                        updated_by: who.user_id.clone(),
                        ..old
                    };
                    p.apply(&mut row, now_ms);
                    row
                }
                None => p.new_row(util::uuid4(), who),
            };
            db::budgets::insert(tx, &row)?;
            Ok(row.id)
        }
    }
}

/// The `user_ids` list of delete/block/unblock: required, non-empty, at most `MAX_IDS`, no
/// empty id; duplicates dropped (first kept).
fn user_ids(b: &Body) -> Result<Vec<String>> {
    let ids = b.opt_list("user_ids")?.unwrap_or_default();
    if ids.is_empty() {
        return Err(Error::bad_param(
            "user_ids",
            "`user_ids` is required: a non-empty list of end user ids",
        ));
    }
    if ids.len() > MAX_IDS {
        return Err(Error::bad_param(
            "user_ids",
            format!("`user_ids` holds at most {MAX_IDS} ids"),
        ));
    }
    if ids.iter().any(|s| s.trim().is_empty()) {
        return Err(Error::bad_param("user_ids", "`user_ids` holds an empty id"));
    }
    let mut seen = std::collections::HashSet::new();
    Ok(ids.into_iter().filter(|i| seen.insert(i.clone())).collect())
}

/// The ids of `ids` with no end user, as LiteLLM's 404 lists them; nothing is changed then.
fn missing<C: Handle + ?Sized>(c: &C, ids: &[String]) -> Result<()> {
    let mut gone = Vec::new();
    for id in ids {
        if db::end_users::get(c, id)?.is_none() {
            gone.push(id.as_str());
        }
    }
    if gone.is_empty() {
        return Ok(());
    }
    Err(Error::NotFound(format!(
        "End User Id(s)={} do not exist in db",
        gone.join(", ")
    )))
}

/// A list of ids as Python prints it (LiteLLM's message: `str(list)`).
fn python_list(ids: &[String]) -> String {
    let quoted: Vec<String> = ids
        .iter()
        .map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")))
        .collect();
    format!("[{}]", quoted.join(", "))
}

/// `POST /end_user/delete` (proxy admin): `user_ids`; any unknown → 404 and nothing deleted.
/// Their budget rows stay (a tier other end users use, or one to link again), as in LiteLLM.
pub fn delete(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let ids = user_ids(&req.json()?)?;
    let n = ctx.pool.write_db(|tx| {
        missing(tx, &ids)?;
        let mut n = 0;
        for id in &ids {
            if let Some(e) = db::end_users::get(tx, id)? {
                Entry::new("delete", "end_user", id)
                    .before(shape_of(tx, &e)?)
                    .record(tx, &Actor::of(who))?;
            }
            n += db::end_users::delete(tx, id)?;
        }
        Ok(n)
    })?;
    Reply::ok(json!({
        "deleted_customers": n,
        "message": format!("Successfully deleted customers with ids: {}", python_list(&ids)),
    }))
}

/// `POST /end_user/block` (proxy admin): `user_ids`; unknown ones are created blocked, as in
/// LiteLLM (a customer can be refused before their first call).
pub fn block(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let ids = user_ids(&req.json()?)?;
    let out = ctx.pool.write_db(|tx| {
        let now = util::now_iso();
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            let before = match db::end_users::get(tx, id)? {
                Some(e) => Some(shape_of(tx, &e)?),
                None => None,
            };
            db::end_users::block(tx, id, &now)?;
            let e = db::end_users::get(tx, id)?.ok_or_else(|| not_found(id))?;
            let after = shape_of(tx, &e)?;
            let entry = Entry::new("block", "end_user", id).after(after.clone());
            match before {
                Some(b) => entry.before(b),
                None => entry,
            }
            .record(tx, &Actor::of(who))?;
            out.push(after);
        }
        Ok(out)
    })?;
    Reply::ok(json!({ "blocked_users": out }))
}

/// `POST /end_user/unblock` (proxy admin): `user_ids`; any unknown → 404 and nothing changed.
pub fn unblock(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    policy::require_proxy_admin(who)?;
    let ids = user_ids(&req.json()?)?;
    let out = ctx.pool.write_db(|tx| {
        missing(tx, &ids)?;
        let now = util::now_iso();
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            let before = match db::end_users::get(tx, id)? {
                Some(e) => shape_of(tx, &e)?,
                None => return Err(not_found(id)),
            };
            db::end_users::unblock(tx, id, &now)?;
            let e = db::end_users::get(tx, id)?.ok_or_else(|| not_found(id))?;
            let after = shape_of(tx, &e)?;
            Entry::new("unblock", "end_user", id)
                .before(before)
                .after(after.clone())
                .record(tx, &Actor::of(who))?;
            out.push(after);
        }
        Ok(out)
    })?;
    Reply::ok(json!({ "unblocked_users": out }))
}

fn query_u64(req: &Req, name: &str, default: u64, max: u64) -> Result<u64> {
    match req.query(name).filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(Error::bad_param(
                name,
                format!("`{name}` must be an integer from 1 to {max}"),
            )),
        },
    }
}

/// `GET /end_user/list` (proxy admin, viewer): a JSON list as LiteLLM answers, by `user_id`;
/// bounded: `page_size` (default and most `MAX_PAGE_SIZE`) and `page` (from 1).
pub fn list(ctx: &Ctx, who: &Caller, req: &Req) -> Result<Reply> {
    require_reader(who)?;
    let size = query_u64(req, "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE)?;
    let page = query_u64(req, "page", 1, i64::MAX as u64 / MAX_PAGE_SIZE)?;
    let (limit, offset) = (size as i64, (page as i64 - 1) * size as i64);
    let out = ctx.pool.read_db(|c| {
        let rows = db::end_users::list(c, limit, offset)?;
        let mut budgets: std::collections::HashMap<String, Option<BudgetRow>> = Default::default();
        let mut out = Vec::with_capacity(rows.len());
        for e in &rows {
            let budget = match &e.budget_id {
                Some(id) => match budgets.get(id) {
                    Some(b) => b.clone(),
                    None => {
                        let b = db::budgets::get(c, id)?;
                        budgets.insert(id.clone(), b.clone());
                        b
                    }
                },
                None => None,
            };
            out.push(shape(e, budget.as_ref()));
        }
        Ok(out)
    })?;
    Reply::ok(Value::Array(out))
}
