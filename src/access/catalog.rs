//! The proxy level of the hierarchy: the configured deployments (`Catalog`), how a called name
//! routes (exact `model_name` first, else wildcard deployments), access groups, and the special
//! names a model list may hold (`all-proxy-models`, `all-team-models`, `all-org-models`, `*`,
//! `no-default-models`). `ModelViews` holds the views of one generation of deployments (config
//! models plus the database's, issue 15 item 3): the global view, each team's (its own models,
//! `model_info.team_id`, under their public names, over the global ones) and the admins' (every
//! model under its stored name); `Scope` says which view a chain sees. Does not decide who may
//! call what: that is `chain` (which picks the view by its scope).

use crate::config::Deployment;
use std::collections::HashMap;

pub const ALL_PROXY_MODELS: &str = "all-proxy-models";
pub const ALL_TEAM_MODELS: &str = "all-team-models";
pub const ALL_ORG_MODELS: &str = "all-org-models";
pub const STAR: &str = "*";
/// On a user's own list: no personal model access (LiteLLM's name); grants nothing anywhere.
pub const NO_DEFAULT_MODELS: &str = "no-default-models";

pub fn is_special(name: &str) -> bool {
    matches!(
        name,
        ALL_PROXY_MODELS | ALL_TEAM_MODELS | ALL_ORG_MODELS | STAR | NO_DEFAULT_MODELS
    )
}

/// The configured deployments, indexed for the resolver: one view (`ModelViews`).
#[derive(Debug, Default)]
pub struct Catalog {
    /// Shared (`Arc`): a model call keeps its deployment until the call is settled.
    pub deployments: Vec<std::sync::Arc<Deployment>>,
    /// The name each deployment is called by in this view: its `model_name`, or in its team's
    /// view a team model's public name (`team_public_model_name`).
    called: Vec<String>,
    /// Distinct called names in config order (wildcard names included as patterns).
    names: Vec<String>,
    exact: HashMap<String, Vec<usize>>,
    wildcards: Vec<usize>,
}

/// `*` matches any run of characters; everything else literally.
pub fn wildcard_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

impl Catalog {
    /// A view of `deployments`, each called by its `model_name`.
    pub fn new(deployments: Vec<Deployment>) -> Catalog {
        Catalog::of(
            deployments
                .into_iter()
                .map(|d| (d.model_name.clone(), std::sync::Arc::new(d)))
                .collect(),
        )
    }

    /// A view of deployments each called by the name given with it.
    fn of(list: Vec<(String, std::sync::Arc<Deployment>)>) -> Catalog {
        let mut c = Catalog::default();
        for (i, (name, d)) in list.into_iter().enumerate() {
            if !c.exact.contains_key(&name) {
                c.names.push(name.clone());
            }
            if name.contains('*') {
                c.wildcards.push(i);
            }
            c.exact.entry(name.clone()).or_default().push(i);
            c.called.push(name);
            c.deployments.push(d);
        }
        c
    }

    /// Every deployment with the name it is called by in this view.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &std::sync::Arc<Deployment>)> {
        self.called
            .iter()
            .map(String::as_str)
            .zip(self.deployments.iter())
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The deployments a called model name routes to: exact `model_name` first, else the
    /// wildcard deployments whose pattern matches.
    pub fn route(&self, model: &str) -> Vec<&std::sync::Arc<Deployment>> {
        if let Some(ix) = self.exact.get(model) {
            return ix.iter().map(|&i| &self.deployments[i]).collect();
        }
        self.wildcards
            .iter()
            .filter(|&&i| wildcard_match(&self.called[i], model))
            .map(|&i| &self.deployments[i])
            .collect()
    }

    pub fn is_routable(&self, model: &str) -> bool {
        self.exact.contains_key(model)
            || self
                .wildcards
                .iter()
                .any(|&i| wildcard_match(&self.called[i], model))
    }

    fn in_group(&self, group: &str, model: &str) -> bool {
        self.route(model)
            .iter()
            .any(|d| d.access_groups.iter().any(|g| g == group))
    }

    pub fn is_group(&self, name: &str) -> bool {
        self.deployments
            .iter()
            .any(|d| d.access_groups.iter().any(|g| g == name))
    }

    /// Does one plain entry (a name, a wildcard or an access group) cover `model`?
    pub fn entry_matches(&self, entry: &str, model: &str) -> bool {
        entry == model
            || (entry.contains('*') && wildcard_match(entry, model))
            || self.in_group(entry, model)
    }
}

/// The team a deployment belongs to (`model_info.team_id`), if any: only that team's keys (and
/// admins) see and call it.
pub fn team_of(d: &Deployment) -> Option<&str> {
    d.model_info
        .get("team_id")
        .and_then(|v| v.as_str())
        .filter(|t| !t.is_empty())
}

/// The name a team's model is called by in its team (`model_info.team_public_model_name`,
/// LiteLLM's), else its `model_name`.
pub fn public_name(d: &Deployment) -> &str {
    d.model_info
        .get("team_public_model_name")
        .and_then(|v| v.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or(&d.model_name)
}

/// Which view of the models a chain sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Models without a team only.
    #[default]
    Global,
    /// A team's keys: its own models under their public names, over the global ones.
    Team(&'a str),
    /// The master key, proxy admins and admin viewers: every model under its stored name.
    Admin,
}

/// One generation of deployments (config plus database), as the views the scopes see.
#[derive(Debug, Default)]
pub struct ModelViews {
    /// The database's models generation this was built at (`db::models::generation`).
    pub generation: i64,
    global: Catalog,
    admin: Catalog,
    teams: HashMap<String, Catalog>,
}

impl ModelViews {
    pub fn new(deployments: Vec<Deployment>, generation: i64) -> ModelViews {
        let all: Vec<std::sync::Arc<Deployment>> =
            deployments.into_iter().map(std::sync::Arc::new).collect();
        let named = |d: &std::sync::Arc<Deployment>| (d.model_name.clone(), d.clone());
        let global: Vec<_> = all.iter().filter(|d| team_of(d).is_none()).collect();
        let mut by_team: HashMap<String, Vec<(String, std::sync::Arc<Deployment>)>> =
            HashMap::new();
        for d in all.iter() {
            if let Some(t) = team_of(d) {
                let entry = (public_name(d).to_string(), d.clone());
                by_team.entry(t.to_string()).or_default().push(entry);
            }
        }
        let teams = by_team
            .into_iter()
            .map(|(t, mut own)| {
                // The team's own name wins over a global model of the same name (LiteLLM: the
                // team's alias points the public name at its model).
                let shadowed: std::collections::HashSet<String> =
                    own.iter().map(|(n, _)| n.clone()).collect();
                own.extend(
                    global
                        .iter()
                        .filter(|d| !shadowed.contains(&d.model_name))
                        .map(|d| named(d)),
                );
                (t, Catalog::of(own))
            })
            .collect();
        ModelViews {
            generation,
            global: Catalog::of(global.iter().map(|d| named(d)).collect()),
            admin: Catalog::of(all.iter().map(named).collect()),
            teams,
        }
    }

    /// The models without a team: what write-time rules (`grant`) judge model lists against.
    pub fn global(&self) -> &Catalog {
        &self.global
    }

    /// The view a scope sees (a team without models of its own sees the global one).
    pub fn view(&self, scope: Scope<'_>) -> &Catalog {
        match scope {
            Scope::Global => &self.global,
            Scope::Admin => &self.admin,
            Scope::Team(t) => self.teams.get(t).unwrap_or(&self.global),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn dep(name: &str, groups: &[&str]) -> Deployment {
        Deployment {
            model_name: name.into(),
            model: format!("mock/{name}"),
            api_base: None,
            api_key: None,
            rpm: None,
            tpm: None,
            input_cost_per_token: 0.0,
            output_cost_per_token: 0.0,
            timeout_secs: 600.0,
            stream_timeout_secs: 600.0,
            id: name.into(),
            access_groups: groups.iter().map(|s| s.to_string()).collect(),
            model_info: Default::default(),
            route: Default::default(),
        }
    }

    /// A, B in group g1; C in none; the wildcard deployment `openai/*` in group g2.
    pub(crate) fn cat() -> Catalog {
        Catalog::new(vec![
            dep("A", &["g1"]),
            dep("B", &["g1"]),
            dep("C", &[]),
            dep("openai/*", &["g2"]),
        ])
    }

    pub(crate) fn v(x: &[&str]) -> Vec<String> {
        x.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("openai/*", "openai/gpt-4o"));
        assert!(!wildcard_match("openai/*", "anthropic/x"));
        assert!(wildcard_match("*", "x"));
        assert!(wildcard_match("a*c*e", "abcde"));
        assert!(!wildcard_match("a*c*e", "abde"));
        assert!(wildcard_match("gpt-4.1", "gpt-4.1"));
        assert!(!wildcard_match("gpt-4.1", "gpt-4x1"));
    }

    #[test]
    fn routing_and_groups() {
        let c = cat();
        assert_eq!(c.names(), &v(&["A", "B", "C", "openai/*"])[..]);
        assert_eq!(c.route("openai/gpt-4o").len(), 1);
        assert!(c.is_routable("A") && !c.is_routable("D"));
        assert!(c.is_group("g1") && !c.is_group("A"));
        assert!(c.entry_matches("g1", "B") && !c.entry_matches("g1", "C"));
        assert!(c.entry_matches("openai/*", "openai/x"));
        assert!(is_special(ALL_ORG_MODELS) && !is_special("A"));
    }

    fn team_dep(stored: &str, public: &str, team: &str) -> Deployment {
        let mut d = dep(stored, &[]);
        d.model_info.insert("team_id".into(), team.into());
        d.model_info
            .insert("team_public_model_name".into(), public.into());
        d
    }

    #[test]
    fn team_models_only_in_their_teams_view() {
        let m = ModelViews::new(
            vec![
                dep("A", &[]),
                dep("B", &[]),
                team_dep("model_name_t1_x", "B", "t1"),
                team_dep("model_name_t1_y", "mine", "t1"),
                team_dep("model_name_t2_z", "theirs", "t2"),
            ],
            7,
        );
        assert_eq!(m.generation, 7);
        assert_eq!(m.global().names(), &v(&["A", "B"])[..]);
        let t1 = m.view(Scope::Team("t1"));
        assert_eq!(t1.names(), &v(&["B", "mine", "A"])[..]);
        assert_eq!(
            t1.route("B")[0].model_name,
            "model_name_t1_x",
            "team's B wins"
        );
        assert!(!t1.is_routable("theirs") && !t1.is_routable("model_name_t2_z"));
        assert!(!m.view(Scope::Team("t3")).is_routable("mine"));
        assert!(!m.view(Scope::Global).is_routable("mine"));
        let admin = m.view(Scope::Admin);
        assert!(admin.is_routable("model_name_t2_z") && !admin.is_routable("theirs"));
        assert_eq!(admin.route("B")[0].model_name, "B");
    }
}
