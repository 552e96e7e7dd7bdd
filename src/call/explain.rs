//! `POST /access/explain`'s answer (issue 16 item 1): would a call of `model` by this caller be
//! admitted now, and why (not)? Walks admission in the order of a real call (`call::run`,
//! API.md §7) with the same functions, stopping at nothing: the key's state
//! (`auth::key_refusal`, THE key check's row), the role (`may_call`), the model (`called_model`
//! for aliases, `candidates` = the one resolver `access::Chain`), budgets (`budget::budgets_of`
//! and `budget::spent`) and rate limits (`limits::Limit::of_key` and `limits::decide`). The
//! first refusal is `refused_by`, worded as the real call's error (`reason`).
//!
//! Changes nothing: reservations and windows are read through `Admission::peek` (memory or
//! PostgreSQL), never reserved or advanced; the round-robin choice of a deployment is not
//! made. Not judged (a real call could still be refused by them): the end user a body may name,
//! strict enforcement's worst case (it depends on the body), a store that cannot record spend.
//! Who may ask about which key is `http::explain`'s.

use super::budget::{self, budgets_of};
use super::limits::{self, Limit};
use super::{called_model, candidates, may_call, Calls};
use crate::access::chain::Chain;
use crate::access::ModelViews;
use crate::auth::{Caller, Refusal};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::hierarchy::Level;
use serde_json::{json, Value};

/// A level as the answer names it.
pub fn level_code(l: Level) -> &'static str {
    match l {
        Level::Key => "key",
        Level::Team => "team",
        Level::Org => "organization",
        Level::User => "user",
        Level::TeamMember => "team_member",
        Level::OrgMember => "organization_member",
        Level::EndUser => "end_user",
    }
}

/// The level a key-state refusal names.
fn refusal_level(r: &Refusal) -> &'static str {
    match r {
        Refusal::TeamGone | Refusal::TeamBlocked(_) => "team",
        Refusal::OrgBlocked(_) | Refusal::OrgGone => "organization",
        _ => "key",
    }
}

/// The first refusal met: its level and its error.
struct Refused {
    level: &'static str,
    error: Error,
}

/// Explains a call of `requested` by `who` (the caller the key acts as), `refusal` being what
/// the key check answers for its key now, if it refuses it.
pub fn explain(
    calls: &Calls,
    cfg: &Config,
    models: &ModelViews,
    who: &Caller,
    refusal: Option<Refusal>,
    requested: &str,
) -> Result<Value> {
    let mut refused: Option<Refused> = refusal.map(|r| Refused {
        level: refusal_level(&r),
        error: r.into(),
    });
    if refused.is_none() {
        if let Err(e) = may_call(who) {
            refused = Some(Refused {
                level: "user",
                error: e,
            });
        }
    }
    let model = called_model(cfg, who, requested.to_string());
    let chain = who.chain();
    let cat = chain.catalog(models);
    if refused.is_none() {
        match candidates(cfg, models, who, requested.to_string()) {
            Ok((_, deps)) => {
                // Every deployment unusable: the call is refused whichever it picks.
                let unusable = deps
                    .iter()
                    .map(|d| crate::access::registry::unusable_reason(d).map(|w| (d, w)))
                    .collect::<Option<Vec<_>>>();
                if let Some((d, why)) = unusable.and_then(|v| v.into_iter().next()) {
                    refused = Some(Refused {
                        level: "proxy",
                        error: Error::Unavailable(format!(
                            "model {model} (id {}) is unusable: {why}",
                            d.id
                        )),
                    });
                }
            }
            Err(e) => {
                refused = Some(Refused {
                    level: chain.denying_level(cat, &model).map_or("proxy", level_code),
                    error: e,
                })
            }
        }
    }
    let levels = levels(&chain, cat, &model);
    let k = who.key.as_deref();
    let budgets = k.map(budgets_of).unwrap_or_default();
    let limits = k.map(Limit::of_key).unwrap_or_default();
    let holders: Vec<(Level, &str)> = budgets
        .iter()
        .map(|(l, id, ..)| (*l, id.as_str()))
        .collect();
    let peek = calls.admission.peek(&holders, &limits)?;
    let resets = calls.ledger.pool.read_db(|c| {
        budgets
            .iter()
            .map(|(level, id, ..)| {
                let (a, b) = budget::spend_ids(*level, id, k);
                Ok(crate::db::budget_state::state_of(c, *level, a, b)?
                    .map(|s| s.period)
                    .filter(|p| !p.is_empty()))
            })
            .collect::<Result<Vec<_>>>()
    })?;
    // Budgets, in admission's order: the first spent refuses; else the one with the least left
    // binds first.
    let mut budget_rows = Vec::with_capacity(budgets.len());
    let mut binding: Option<(usize, f64)> = None;
    let mut spent_at: Option<usize> = None;
    for (i, (level, id, spend, max)) in budgets.iter().enumerate() {
        let reserved = peek.reserved.get(i).copied().unwrap_or(0.0);
        let remaining = max - spend - reserved;
        if spent_at.is_none() && budget::spent(*spend, reserved, *max) {
            spent_at = Some(i);
        }
        if binding.is_none_or(|(_, r)| remaining < r) {
            binding = Some((i, remaining));
        }
        budget_rows.push(json!({
            "level": level_code(*level),
            "id": id,
            "spend": spend,
            "max_budget": max,
            "reserved": reserved,
            "remaining": remaining.max(0.0),
            "budget_reset_at": resets.get(i).cloned().flatten(),
        }));
    }
    let binding = spent_at.or(binding.map(|(i, _)| i));
    if let (None, Some(i)) = (&refused, spent_at) {
        if let Some((level, id, spend, max)) = budgets.get(i) {
            refused = Some(Refused {
                level: level_code(*level),
                error: budget::exceeded(*level, id, *spend, *max),
            });
        }
    }
    // Rate limits: the same decision as admission's, on the usage read now.
    let decided = limits::decide(limits.iter().zip(&peek.usage));
    if let (None, Some((i, what, retry_after))) = (&refused, decided) {
        if let Some(l) = limits.get(i) {
            let cap = match what {
                "rpm" => l.rpm,
                "tpm" => l.tpm,
                _ => l.parallel,
            };
            refused = Some(Refused {
                level: level_code(l.scope),
                error: limits::refused(l.scope, what, cap.unwrap_or(0), retry_after),
            });
        }
    }
    let mut limit_rows = Vec::new();
    for (l, u) in limits.iter().zip(&peek.usage) {
        for (kind, cap, used) in [
            ("rpm", l.rpm, u.requests),
            ("tpm", l.tpm, u.tokens),
            ("parallel", l.parallel, u.in_flight),
        ] {
            if let Some(cap) = cap {
                let used = i64::try_from(used).unwrap_or(i64::MAX);
                limit_rows.push(json!({
                    "level": level_code(l.scope),
                    "kind": kind,
                    "limit": cap,
                    "used": used,
                    "remaining": cap.saturating_sub(used).max(0),
                }));
            }
        }
    }
    Ok(json!({
        "allowed": refused.is_none(),
        "model": { "requested": requested, "resolved": model },
        "refused_by": refused.as_ref().map(|r| r.level),
        "reason": refused.as_ref().map(|r| r.error.message()),
        "status": refused.as_ref().map(|r| r.error.status()),
        "levels": levels,
        "budgets": budget_rows,
        "binding_budget": binding.and_then(|i| budgets.get(i)).map(|(l, id, ..)| json!({
            "level": level_code(*l), "id": id,
        })),
        "rate_limits": limit_rows,
    }))
}

/// One entry per level, top down: its configured list (`null`: not in this chain), the set it
/// leaves callable counting the levels above it, and whether its own list allows `model`.
fn levels(chain: &Chain<'_>, cat: &crate::access::Catalog, model: &str) -> Vec<Value> {
    let personal = !chain.key_has_team && chain.key.is_some();
    let org_only = Chain {
        key: None,
        key_has_team: false,
        team: None,
        user: None,
        ..*chain
    };
    let with_team = Chain {
        team: chain.team,
        key_has_team: chain.key_has_team,
        ..org_only
    };
    let with_user = Chain {
        user: chain.user,
        ..org_only
    };
    let entry = |name: &str, list: Option<&[String]>, applies: bool, upto: Chain<'_>, level| {
        json!({
            "level": name,
            "applies": applies,
            "models": list,
            "effective": if applies { json!(upto.effective(cat)) } else { Value::Null },
            "allows": !applies || chain.allows_at(cat, level, model),
        })
    };
    let proxy = json!({
        "level": "proxy",
        "applies": true,
        "models": cat.names(),
        "effective": cat.names(),
        "allows": cat.is_routable(model),
    });
    vec![
        proxy,
        entry(
            "organization",
            chain.org,
            chain.org.is_some(),
            org_only,
            Level::Org,
        ),
        entry(
            "team",
            chain.team,
            chain.key_has_team,
            with_team,
            Level::Team,
        ),
        entry(
            "user",
            chain.user,
            personal && chain.user.is_some(),
            with_user,
            Level::User,
        ),
        entry("key", chain.key, chain.key.is_some(), *chain, Level::Key),
    ]
}
