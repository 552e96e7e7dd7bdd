//! The proxy level of the hierarchy: the configured deployments (`Catalog`), how a called name
//! routes (exact `model_name` first, else wildcard deployments), access groups, and the special
//! names a model list may hold (`all-proxy-models`, `all-team-models`, `all-org-models`, `*`,
//! `no-default-models`). Does not decide who may call what: that is `chain`.

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

/// The configured deployments, indexed for the resolver.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Shared (`Arc`): a model call keeps its deployment until the call is settled.
    pub deployments: Vec<std::sync::Arc<Deployment>>,
    /// Distinct `model_name`s in config order (wildcard names included as patterns).
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
    pub fn new(deployments: Vec<Deployment>) -> Catalog {
        let mut c = Catalog {
            deployments: deployments.into_iter().map(std::sync::Arc::new).collect(),
            ..Catalog::default()
        };
        for (i, d) in c.deployments.iter().enumerate() {
            if !c.exact.contains_key(&d.model_name) {
                c.names.push(d.model_name.clone());
            }
            c.exact.entry(d.model_name.clone()).or_default().push(i);
            if d.model_name.contains('*') {
                c.wildcards.push(i);
            }
        }
        c
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
            .map(|&i| &self.deployments[i])
            .filter(|d| wildcard_match(&d.model_name, model))
            .collect()
    }

    pub fn is_routable(&self, model: &str) -> bool {
        self.exact.contains_key(model)
            || self
                .wildcards
                .iter()
                .any(|&i| wildcard_match(&self.deployments[i].model_name, model))
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
}
