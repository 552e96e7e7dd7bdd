//! Write-time rules for model lists (API.md §4): which lists may be *stored* at each holder —
//! an organization, a team, a key or a user — given the chain above it. One function,
//! `check_models`, used by all four handler families, plus `options`, the key form's choices
//! (`/ui/key_model_options`) computed by the same rules. Special names are judged by one table
//! (`check_special`); every other entry must fit the parent's effective set (`exceeding`).
//!
//! Not here: who may change a list (`policy`), whether a lower rank may loosen one
//! (`authority`), nor request-time access (`chain`).

use super::catalog::*;
use super::chain::{exceeding, Chain};
use crate::db;
use crate::db::handle::Handle;
use crate::error::{Error, Result};
use serde_json::{json, Value};

/// The rows above a key, for its write-time checks: its team, its organization (the team's,
/// or the key's own), and its owner.
#[derive(Debug, Clone, Default)]
pub struct Parent {
    pub team: Option<db::teams::TeamRow>,
    pub org: Option<db::orgs::OrgRow>,
    pub user: Option<db::users::UserRow>,
}

impl Parent {
    /// The chain a key with this parent sits under (the owner counts only without a team).
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            key: None,
            key_has_team: self.team.is_some(),
            team: self.team.as_ref().map(|t| t.models.as_slice()),
            org: self.org.as_ref().map(|o| o.models.as_slice()),
            user: if self.team.is_none() {
                self.user.as_ref().map(|u| u.models.as_slice())
            } else {
                None
            },
            scope: self
                .team
                .as_ref()
                .map_or(super::Scope::Global, |t| super::Scope::Team(&t.id)),
        }
    }
}

/// Where a model list is stored, with what is above it.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// An organization's list, bounded by what the caller who sets it may call.
    Org { granter: Chain<'a> },
    /// A team's list, under its organization's models (`None`: a team without one, bounded by
    /// the proxy only).
    Team { org: Option<&'a [String]> },
    /// A key's list, under its team, organization and owner.
    Key(&'a Parent),
    /// A user's own list: set by proxy admins, nothing above it but the proxy.
    User,
}

/// May `list` be stored at `holder`? 400 naming `models` when not.
pub fn check_models(cat: &Catalog, holder: &Holder<'_>, list: &[String]) -> Result<()> {
    check_special(cat, holder, list)?;
    let parent = match holder {
        Holder::Org { granter } => *granter,
        Holder::Team { org } => Chain {
            org: *org,
            ..Chain::default()
        },
        Holder::Key(p) => p.chain(),
        Holder::User => return Ok(()),
    };
    let bad = exceeding(cat, &parent, list);
    if bad.is_empty() {
        return Ok(());
    }
    let message = match holder {
        Holder::Org { .. } => format!("models {bad:?} are outside the models you may grant"),
        Holder::Team { org } => format!(
            "Team models {bad:?} are not allowed by the team's organization (models={:?})",
            org.unwrap_or_default()
        ),
        Holder::Key(p) => {
            let above = if p.team.is_some() {
                "the team's"
            } else if p.org.is_some() {
                "the organization's or the user's"
            } else {
                "the user's"
            };
            format!(
                "models {} are not within {above} allowed models",
                bad.join(", ")
            )
        }
        // Never reached (a user's list has no parent above it); worded all the same.
        Holder::User => format!("models {bad:?} are not configured"),
    };
    Err(Error::bad_param("models", message))
}

/// The special names that refer to a level above, per holder:
///
/// | holder | `all-team-models`       | `all-org-models`                                        |
/// |--------|-------------------------|---------------------------------------------------------|
/// | org    | refused (nothing above) | refused (nothing above)                                 |
/// | team   | refused (keys only)     | needs an organization                                   |
/// | key    | needs a team            | needs an organization; with a team, the team must be able to call all of it |
/// | user   | refused                 | refused                                                 |
///
/// `all-proxy-models` and `*` are judged like any entry: they fit only an open parent.
fn check_special(cat: &Catalog, holder: &Holder<'_>, list: &[String]) -> Result<()> {
    let bad = |m: String| Err(Error::bad_param("models", m));
    let has = |name: &str| list.iter().any(|m| m == name);
    match holder {
        Holder::Org { .. } => {
            let special: Vec<&String> = list
                .iter()
                .filter(|m| *m == ALL_TEAM_MODELS || *m == ALL_ORG_MODELS)
                .collect();
            if !special.is_empty() {
                return bad(format!(
                    "{special:?} cannot be used in an organization's models: they refer to a \
                     team or organization above, and an organization has none"
                ));
            }
        }
        Holder::Team { org } => {
            if has(ALL_TEAM_MODELS) {
                return bad(format!(
                    "`{ALL_TEAM_MODELS}` is for keys; a team's models are its own list"
                ));
            }
            if org.is_none() && has(ALL_ORG_MODELS) {
                return bad(format!(
                    "`{ALL_ORG_MODELS}` needs the team to be in an organization"
                ));
            }
        }
        Holder::Key(p) => {
            if has(ALL_TEAM_MODELS) && p.team.is_none() {
                return bad("`all-team-models` needs a team: set `team_id` or list models".into());
            }
            if has(ALL_ORG_MODELS) {
                let Some(org) = &p.org else {
                    return bad(
                        "`all-org-models` needs an organization: the key's team (or the \
                         key) must belong to one"
                            .into(),
                    );
                };
                if let Some(team) = &p.team {
                    let missing = team_lacks(cat, &org.models, &team.models);
                    if !missing.is_empty() {
                        return bad(format!(
                            "`all-org-models` is not available for this key: its team cannot \
                             call every model of the organization (missing: {}). Use \
                             `all-team-models` or list models.",
                            missing.join(", ")
                        ));
                    }
                }
            }
        }
        Holder::User => {
            if let Some(m) = list
                .iter()
                .find(|m| *m == ALL_TEAM_MODELS || *m == ALL_ORG_MODELS)
            {
                return bad(format!("`{m}` is for keys and teams, not users"));
            }
        }
    }
    Ok(())
}

/// The models of the organization that a team in it cannot call (`all-org-models` on a key
/// must not promise what the team forbids).
fn team_lacks(cat: &Catalog, org: &[String], team: &[String]) -> Vec<String> {
    let org_chain = Chain {
        org: Some(org),
        ..Chain::default()
    };
    let team_chain = Chain {
        key_has_team: true,
        team: Some(team),
        org: Some(org),
        ..Chain::default()
    };
    let team_eff = team_chain.effective(cat);
    org_chain
        .effective(cat)
        .into_iter()
        .filter(|m| !team_eff.contains(m))
        .collect()
}

/// The rows above a key with this team / organization / owner. 400 naming the field for a
/// team or organization that does not exist, or an organization other than the team's.
pub fn load_parent<C: Handle + ?Sized>(
    c: &C,
    team_id: Option<&str>,
    org_id: Option<&str>,
    user_id: Option<&str>,
) -> Result<Parent> {
    let team =
        match team_id {
            Some(t) => Some(db::teams::get(c, t)?.ok_or_else(|| {
                Error::bad_param("team_id", format!("team_id {t} does not exist"))
            })?),
            None => None,
        };
    let org_id = match &team {
        Some(t) => {
            if let (Some(given), Some(tid)) = (org_id, &t.organization_id) {
                if given != tid {
                    return Err(Error::bad_param(
                        "organization_id",
                        "organization_id does not match the team's organization",
                    ));
                }
            }
            if org_id.is_some() && t.organization_id.is_none() {
                return Err(Error::bad_param(
                    "organization_id",
                    "the team does not belong to an organization",
                ));
            }
            t.organization_id.clone()
        }
        None => org_id.map(str::to_string),
    };
    let org = match &org_id {
        Some(o) => Some(db::orgs::get(c, o)?.ok_or_else(|| {
            Error::bad_param(
                "organization_id",
                format!("organization_id {o} does not exist"),
            )
        })?),
        None => None,
    };
    let user = match user_id {
        Some(u) => db::users::get(c, u)?,
        None => None,
    };
    Ok(Parent { team, org, user })
}

/// The model choices a key form may offer (`GET /ui/key_model_options`): for a key in
/// `team_id` (or, without a team, a personal key of `user_id`, optionally in `org_id`), every
/// value that `check_models` would accept — `all-team-models`, `all-org-models` (only when the
/// team belongs to an org and can call all of it), and each model the parent may grant — with
/// the models it gives, resolved by the one resolver. The UI shows this; it never re-implements
/// the rules. A missing team or org is a 400 naming the field, as on `/key/generate`.
pub fn options<C: Handle + ?Sized>(
    cat: &Catalog,
    c: &C,
    team_id: Option<&str>,
    org_id: Option<&str>,
    user_id: Option<&str>,
) -> Result<Value> {
    let p = load_parent(c, team_id, org_id, user_id)?;
    let parent = p.chain();
    let resolve = |value: &str| -> Vec<String> {
        let k = vec![value.to_string()];
        Chain {
            key: Some(&k),
            ..parent
        }
        .effective(cat)
    };
    // What the parent may grant: its effective set (wildcard deployments as their pattern).
    let grantable = parent.effective(cat);
    let mut options = Vec::new();
    let candidates = [ALL_TEAM_MODELS, ALL_ORG_MODELS]
        .into_iter()
        .chain(grantable.iter().map(String::as_str));
    for value in candidates {
        if check_models(cat, &Holder::Key(&p), &[value.to_string()]).is_ok() {
            options.push(json!({ "value": value, "models": resolve(value) }));
        }
    }
    Ok(json!({
        "team_id": p.team.as_ref().map(|t| t.id.clone()),
        "organization_id": p.org.as_ref().map(|o| o.id.clone()),
        "team_models": p.team.as_ref().map(|_| grantable.clone()),
        "grantable_models": grantable,
        "options": options,
    }))
}

#[cfg(test)]
#[path = "grant_tests.rs"]
mod tests;
