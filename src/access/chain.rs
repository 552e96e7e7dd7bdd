//! The resolver: which models a chain (org → team → key, or a personal key under its user) may
//! call, decided at request time along the stored lists, with the special names referring to
//! the level above (`all-team-models`, `all-org-models`), wildcards and access groups (API.md
//! §4). Every reader uses it: model calls, `/v1/models`, the `/model/info` family, `/key/info`
//! and the write-time rules in `grant`. Also `Caller::chain` and `KeyRow::chain`, the chains of
//! an authenticated caller and of a loaded key.
//!
//! Does not decide which lists may be *stored* (`grant`) nor who may change them (`policy`).

use super::catalog::*;
use crate::auth::Caller;
use crate::db::key_check::KeyRow;
use crate::error::{Error, Result};
use std::collections::BTreeSet;

/// A level's model list. Empty, `*` or `all-proxy-models` = unrestricted at that level.
pub type Models = Vec<String>;

/// The hierarchy above one key (or one team), as loaded by the key check or by a handler.
/// `team`/`org`/`user` are `Some(list)` when that level exists in the chain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chain<'a> {
    pub key: Option<&'a [String]>,
    /// True when the key names a team (even if the team row is missing).
    pub key_has_team: bool,
    pub team: Option<&'a [String]>,
    pub org: Option<&'a [String]>,
    /// The owner's models; only consulted for keys without a team.
    pub user: Option<&'a [String]>,
    /// Which view of the models the chain sees (team models: issue 15 item 3).
    pub scope: Scope<'a>,
}

pub use crate::hierarchy::Level;

impl Level {
    /// The error `type` of a model refused at this level (LiteLLM's).
    pub fn denied_kind(self) -> &'static str {
        match self {
            Level::Team => "team_model_access_denied",
            Level::Org => "org_model_access_denied",
            Level::Key | Level::User | Level::TeamMember | Level::OrgMember | Level::EndUser => {
                "key_model_access_denied"
            }
        }
    }
}

pub fn unrestricted(list: &[String]) -> bool {
    list.is_empty() || list.iter().any(|m| m == ALL_PROXY_MODELS || m == STAR)
}

impl<'a> Chain<'a> {
    /// The chain of the master key, proxy admins and admin viewers: unrestricted, and sees
    /// every team's models under their stored names.
    pub fn admin() -> Chain<'a> {
        Chain {
            scope: Scope::Admin,
            ..Chain::default()
        }
    }

    /// The view of `models` this chain sees: THE choice of which team models are visible and
    /// callable (a team's only to its keys, every one to admins).
    pub fn catalog<'m>(&self, models: &'m ModelViews) -> &'m Catalog {
        models.view(self.scope)
    }
}

impl Chain<'_> {
    /// Does the list at `level` allow `model`? Special names refer to the parent's current set.
    fn level_allows(&self, cat: &Catalog, level: Level, list: &[String], model: &str) -> bool {
        if list.is_empty() {
            return true;
        }
        list.iter().any(|e| match e.as_str() {
            ALL_PROXY_MODELS | STAR => true,
            // Matches nothing, even a model or group configured under that name.
            NO_DEFAULT_MODELS => false,
            ALL_TEAM_MODELS => {
                level == Level::Key
                    && self
                        .team
                        .is_some_and(|t| self.level_allows(cat, Level::Team, t, model))
            }
            ALL_ORG_MODELS => {
                matches!(level, Level::Key | Level::Team)
                    && self
                        .org
                        .is_some_and(|o| self.level_allows(cat, Level::Org, o, model))
            }
            name => cat.entry_matches(name, model),
        })
    }

    /// The level of the chain that refuses `model`, or None when every level allows it.
    /// The highest refusing level is named (org, then team, then user, then key), so the error
    /// says where a change is needed: a key of `all-org-models` refused a model its org lacks
    /// gets `org_model_access_denied`. Routing is checked separately by `allows`.
    pub fn denying_level(&self, cat: &Catalog, model: &str) -> Option<Level> {
        if let Some(o) = self.org {
            if !self.level_allows(cat, Level::Org, o, model) {
                return Some(Level::Org);
            }
        }
        if self.key.is_some() && self.key_has_team && self.team.is_none() {
            // A key whose team is gone may call nothing (never a wider default).
            return Some(Level::Team);
        }
        if let Some(t) = self.team {
            if !self.level_allows(cat, Level::Team, t, model) {
                return Some(Level::Team);
            }
        }
        if self.team.is_none() && !self.key_has_team {
            if let Some(u) = self.user {
                if !self.level_allows(cat, Level::User, u, model) {
                    return Some(Level::User);
                }
            }
        }
        if let Some(k) = self.key {
            if !self.level_allows(cat, Level::Key, k, model) {
                return Some(Level::Key);
            }
        }
        None
    }

    /// Does the list of `level` itself allow `model` (special names judged against the levels
    /// above, as at request time)? A level absent from the chain restricts nothing here
    /// (`denying_level` says what a missing team means). For `/access/explain`.
    pub fn allows_at(&self, cat: &Catalog, level: Level, model: &str) -> bool {
        let list = match level {
            Level::Key => self.key,
            Level::Team => self.team,
            Level::Org => self.org,
            Level::User => self.user,
            Level::TeamMember | Level::OrgMember | Level::EndUser => None,
        };
        list.is_none_or(|l| self.level_allows(cat, level, l, model))
    }

    /// May this chain call `model`? (Configured, and allowed at every level.)
    pub fn allows(&self, cat: &Catalog, model: &str) -> bool {
        cat.is_routable(model) && self.denying_level(cat, model).is_none()
    }

    /// The effective set: every model name this chain may call, in config order, wildcards
    /// listed as their pattern, plus explicit names that route through a wildcard deployment.
    pub fn effective(&self, cat: &Catalog) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut candidates: Vec<&str> = cat.names().iter().map(|s| s.as_str()).collect();
        for l in [self.key, self.team, self.org, self.user]
            .into_iter()
            .flatten()
        {
            for e in l {
                if !e.contains('*') && !is_special(e) && cat.is_routable(e) {
                    candidates.push(e);
                }
            }
        }
        for c in candidates {
            if seen.insert(c) && self.allows(cat, c) {
                out.push(c.to_string());
            }
        }
        out
    }

    /// Model access for a request, with the API.md §3 error on refusal.
    pub fn check(&self, cat: &Catalog, model: &str) -> Result<()> {
        if let Some(level) = self.denying_level(cat, model) {
            return Err(Error::ModelDenied {
                kind: level.denied_kind(),
                message: denied_message(level, &self.list_at(level), model),
            });
        }
        if !cat.is_routable(model) {
            return Err(Error::bad_param(
                "model",
                format!("Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key."),
            ));
        }
        Ok(())
    }

    fn list_at(&self, level: Level) -> Vec<String> {
        let l = match level {
            Level::Key => self.key,
            Level::Team => self.team,
            Level::Org => self.org,
            Level::User => self.user,
            // Memberships and end users carry budgets, not model lists.
            Level::TeamMember | Level::OrgMember | Level::EndUser => None,
        };
        l.map(|x| x.to_vec()).unwrap_or_default()
    }
}

/// Write-time check (API.md §4): may `child` (a new model list for a team or key) be stored
/// under `parent`, the chain above it? Returns the offending entries (empty = fits).
///
/// A plain entry fits when the parent lists it literally, or when it names configured models
/// and every one of them is in the parent's effective set. Names the parent does not list and
/// that grant nothing here are refused too: storing them would promise what the parent lacks.
/// An empty child list fits (it inherits, never exceeds).
pub fn exceeding(cat: &Catalog, parent: &Chain<'_>, child: &[String]) -> Vec<String> {
    let parent_open = parent.is_open();
    let mut bad = Vec::new();
    for e in child {
        let ok = match e.as_str() {
            // Checked by the caller, which knows whether a team or an org is in the chain.
            ALL_TEAM_MODELS | ALL_ORG_MODELS => true,
            ALL_PROXY_MODELS | STAR => parent_open,
            _ if parent_open => true,
            name => {
                let covered = expand(cat, name);
                if covered.is_empty() {
                    // Not configured: it must be listed (or matched) at every level above.
                    parent.denying_level(cat, name).is_none()
                } else {
                    covered
                        .iter()
                        .all(|m| parent.denying_level(cat, m).is_none())
                }
            }
        };
        if !ok {
            bad.push(e.clone());
        }
    }
    bad
}

/// The configured model names a plain entry stands for (a name, a wildcard or a group).
pub fn expand(cat: &Catalog, entry: &str) -> Vec<String> {
    let mut v: Vec<String> = cat
        .names()
        .iter()
        .filter(|n| cat.entry_matches(entry, n))
        .cloned()
        .collect();
    if v.is_empty() && cat.is_routable(entry) && !entry.contains('*') {
        v.push(entry.to_string());
    }
    v
}

impl Chain<'_> {
    /// True when no level of the chain restricts anything (every list unrestricted).
    pub fn is_open(&self) -> bool {
        let open = |l: Option<&[String]>| l.is_none_or(unrestricted);
        // Special names in a list restrict to the referenced level, so they are not open.
        open(self.key)
            && open(self.team)
            && open(self.org)
            && (self.team.is_some() || self.key_has_team || open(self.user))
            && !(self.key_has_team && self.team.is_none())
    }
}

impl KeyRow {
    /// The access chain of this key.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            key: Some(&self.models),
            key_has_team: self.team_id.is_some(),
            team: self.team.as_ref().map(|t| t.models.as_slice()),
            org: self.org.as_ref().map(|o| o.models.as_slice()),
            user: self.user.as_ref().map(|u| u.models.as_slice()),
            scope: self.team_id.as_deref().map_or(Scope::Global, Scope::Team),
        }
    }
}

impl Caller {
    /// The access chain: a key's own; a keyless user (web UI session) is bounded by the user's
    /// models; only the master key is unrestricted.
    /// Team models: a key sees its team's; a proxy admin's own key (no team) and a proxy
    /// admin's UI session every team's; the master key every one.
    pub fn chain(&self) -> Chain<'_> {
        let admin = self.role == crate::auth::Role::ProxyAdmin;
        match (&self.key, &self.user_models) {
            (Some(k), _) => {
                let mut c = k.chain();
                if admin && k.team_id.is_none() {
                    c.scope = Scope::Admin;
                }
                c
            }
            (None, Some(m)) => Chain {
                user: Some(m),
                scope: if admin { Scope::Admin } else { Scope::Global },
                ..Chain::default()
            },
            (None, None) => Chain::admin(),
        }
    }
}

/// LiteLLM's wording of a model-access refusal (API.md §9; `auth_checks.py`
/// `_can_object_call_model`): its lowercase object type (`key`, `team`, `org`, `user`) and the
/// level's list as Python prints it, so clients that match LiteLLM's text match ours.
fn denied_message(level: Level, models: &[String], model: &str) -> String {
    let object = match level {
        Level::Key => "key",
        Level::Team => "team",
        Level::Org => "org",
        Level::User => "user",
        Level::TeamMember | Level::OrgMember | Level::EndUser => level.noun(),
    };
    let list: Vec<String> = models.iter().map(|m| python_str(m)).collect();
    format!(
        "{object} not allowed to access model. This {object} can only access models=[{}]. \
         Tried to access {model}",
        list.join(", ")
    )
}

/// A string as Python's `repr` shows it: single quotes, unless it holds one and no double
/// quote; backslashes and the chosen quote escaped.
fn python_str(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        if c == '\\' || c == q {
            out.push('\\');
        }
        out.push(c);
    }
    out.push(q);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::catalog::tests::{cat, v};

    #[test]
    fn refusal_worded_as_litellm() {
        let m = |l, list: &[&str]| denied_message(l, &v(list), "C");
        assert_eq!(
            m(Level::Key, &["A", "B"]),
            "key not allowed to access model. This key can only access models=['A', 'B']. \
             Tried to access C"
        );
        assert!(m(Level::Org, &["A"]).starts_with("org not allowed to access model. This org "));
        assert!(m(Level::Team, &[]).contains("This team can only access models=[]."));
        assert_eq!(python_str("it's"), "\"it's\"");
        assert_eq!(python_str("a'b\"c\\"), "'a\\'b\"c\\\\'");
    }

    #[test]
    fn intersection_of_levels() {
        let c = cat();
        let (k, t, o) = (v(&[]), v(&["A", "B"]), v(&["A", "C"]));
        let ch = Chain {
            key: Some(&k),
            key_has_team: true,
            team: Some(&t),
            org: Some(&o),
            user: None,
            ..Chain::default()
        };
        assert_eq!(ch.effective(&c), v(&["A"]));
        assert_eq!(ch.denying_level(&c, "B"), Some(Level::Org));
        assert_eq!(ch.denying_level(&c, "C"), Some(Level::Team));
    }

    #[test]
    fn all_org_models_follows_org() {
        let c = cat();
        let (k, t, o) = (v(&[ALL_ORG_MODELS]), v(&[]), v(&["A", "B"]));
        let ch = Chain {
            key: Some(&k),
            key_has_team: true,
            team: Some(&t),
            org: Some(&o),
            user: None,
            ..Chain::default()
        };
        assert_eq!(ch.effective(&c), v(&["A", "B"]));
        // No org in the chain: nothing, never everything.
        let ch2 = Chain { org: None, ..ch };
        assert!(ch2.effective(&c).is_empty());
    }

    #[test]
    fn empty_team_in_restricted_org() {
        let c = cat();
        let (k, t, o) = (v(&[]), v(&[]), v(&["A"]));
        let ch = Chain {
            key: Some(&k),
            key_has_team: true,
            team: Some(&t),
            org: Some(&o),
            user: None,
            ..Chain::default()
        };
        assert!(ch.allows(&c, "A"));
        assert!(!ch.allows(&c, "B"));
    }

    #[test]
    fn groups_and_wildcard_deployments() {
        let c = cat();
        let k = v(&["g1"]);
        let ch = Chain {
            key: Some(&k),
            ..Chain::default()
        };
        assert_eq!(ch.effective(&c), v(&["A", "B"]));
        let k2 = v(&["openai/gpt-4o"]);
        let ch2 = Chain {
            key: Some(&k2),
            ..Chain::default()
        };
        assert!(ch2.allows(&c, "openai/gpt-4o"));
        assert!(!ch2.allows(&c, "openai/gpt-5"));
        assert_eq!(ch2.effective(&c), v(&["openai/gpt-4o"]));
        let k3 = v(&["g2"]);
        let ch3 = Chain {
            key: Some(&k3),
            ..Chain::default()
        };
        assert!(ch3.allows(&c, "openai/anything"));
        assert_eq!(ch3.effective(&c), v(&["openai/*"]));
    }

    #[test]
    fn missing_team_denies_everything() {
        let c = cat();
        let k = v(&[]);
        let ch = Chain {
            key: Some(&k),
            key_has_team: true,
            team: None,
            org: None,
            user: None,
            ..Chain::default()
        };
        assert!(ch.effective(&c).is_empty());
    }

    #[test]
    fn personal_key_answers_to_user() {
        let c = cat();
        let (k, u) = (v(&[]), v(&["C"]));
        let ch = Chain {
            key: Some(&k),
            user: Some(&u),
            ..Chain::default()
        };
        assert_eq!(ch.effective(&c), v(&["C"]));
        assert_eq!(ch.denying_level(&c, "A"), Some(Level::User));
    }

    #[test]
    fn write_time_subset() {
        let c = cat();
        let o = v(&["A", "B"]);
        let parent = Chain {
            org: Some(&o),
            ..Chain::default()
        };
        assert!(exceeding(&c, &parent, &v(&["A"])).is_empty());
        assert!(exceeding(&c, &parent, &v(&["g1"])).is_empty());
        assert_eq!(exceeding(&c, &parent, &v(&["C", "A"])), v(&["C"]));
        assert_eq!(
            exceeding(&c, &parent, &v(&[ALL_PROXY_MODELS])),
            v(&[ALL_PROXY_MODELS])
        );
        assert_eq!(exceeding(&c, &parent, &v(&["unknown"])), v(&["unknown"]));
        assert!(exceeding(&c, &parent, &v(&[])).is_empty());
        let open = Chain::default();
        assert!(exceeding(&c, &open, &v(&["anything", ALL_PROXY_MODELS])).is_empty());
    }
}
