//! Models stored in the database (issue 15 item 3) read exactly as a `model_list` entry of the
//! config file is (`model_list.rs`: the same provider table, the same refusals, the same
//! prices and timeout defaults), from the JSON a `/model/new` body or a decrypted row holds.
//! Owns what such a model may read of the process environment (`ModelEnv`): a global model
//! added by a proxy admin reads it as the file does (`os.environ/NAME`, a provider's key
//! variable); a team's model never does (`Access::Confined`): a team admin must not be able to
//! point the operator's `OPENAI_API_KEY` at a host of their choosing.

use super::env::Env;
use super::yaml::{Reader, Shaped, Yaml};
use super::{model_list, settings, Config, Deployment};

/// The environment snapshot taken at start, kept for stored models (never printed).
#[derive(Clone, Default)]
pub struct ModelEnv(pub(super) std::sync::Arc<Env>);

impl std::fmt::Debug for ModelEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ModelEnv(..)")
    }
}

/// What a stored model may read of the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// As a config file entry: `os.environ/NAME` and the provider's key variables.
    Environment,
    /// Nothing: every value and credential comes with the model itself.
    Confined,
}

/// Why a stored model is not a deployment: the field (`litellm_params.model`, ...) and what is
/// wrong with it, as the config file's errors say it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredError {
    pub field: String,
    pub message: String,
}

/// Reads one model (`{model_name, litellm_params, model_info}`, plain values) into a
/// deployment; the warnings (unknown keys, ...) come back for the caller to log.
pub fn read_stored(
    cfg: &Config,
    entry: &serde_json::Value,
    access: Access,
) -> Result<(Deployment, Vec<String>), StoredError> {
    let none = Env::default();
    let env = match access {
        Access::Environment => &*cfg.model_env.0,
        Access::Confined => &none,
    };
    let mut r = Reader::new("", env);
    let bad = |m: &str| StoredError {
        field: "model_name".into(),
        message: m.into(),
    };
    let y: Yaml = serde_yaml_ng::to_value(entry).map_err(|_| bad("expected an object"))?;
    let shaped: Shaped<model_list::Entry> =
        serde_yaml_ng::from_value(y).map_err(|_| bad("expected an object"))?;
    let read = shaped
        .get(&r, "", Some(("", "expected an object")))
        .and_then(|e| {
            e.ok_or_else(|| r.error("", "expected an object"))?
                .read(&mut r, "", 0)
        });
    let mut d = read.map_err(|e| split(&e.0))?;
    let (timeout, stream) = cfg.model_timeouts;
    settings::apply_timeout_defaults(std::slice::from_mut(&mut d), timeout, stream);
    let mut warnings = r.warnings;
    warnings.extend(r.unpriced.into_iter().map(|m| {
        format!("model '{m}' is not in litegate's price table and sets no prices: 0 spend")
    }));
    Ok((d, warnings))
}

/// ": .litellm_params.model: what" (the reader's "FILE: FIELD: WHAT" with no file and no
/// entry prefix) → the field and what.
fn split(e: &str) -> StoredError {
    let rest = e.strip_prefix(": ").unwrap_or(e);
    let (field, message) = rest.split_once(": ").unwrap_or(("", rest));
    let field = field.trim_start_matches('.');
    StoredError {
        field: if field.is_empty() {
            "model_name".into()
        } else {
            field.to_string()
        },
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(vars: &[(&str, &str)]) -> Config {
        Config {
            model_env: ModelEnv(std::sync::Arc::new(Env::from_vars(vars.iter().copied()))),
            ..Config::default()
        }
    }

    #[test]
    fn reads_as_the_file_does() {
        let c = cfg(&[]);
        let (d, _) = read_stored(
            &c,
            &json!({"model_name": "m", "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-x",
                    "api_base": "http://127.0.0.1:9/v1", "rpm": 5}, "model_info": {"id": "abc"}}),
            Access::Confined,
        )
        .unwrap();
        assert_eq!(
            (d.model_name.as_str(), d.id.as_str(), d.rpm),
            ("m", "abc", Some(5))
        );
        assert_eq!(d.timeout_secs, 600.0, "timeout defaults filled in");
        assert!(d.input_cost_per_token > 0.0, "priced from the table");
        let e = read_stored(
            &c,
            &json!({"model_name": "m", "litellm_params": {"model": "nope/x"}}),
            Access::Confined,
        )
        .unwrap_err();
        assert_eq!(e.field, "litellm_params.model");
        assert!(
            e.message.contains("provider 'nope' is not supported"),
            "{e:?}"
        );
        let e = read_stored(
            &c,
            &json!({"litellm_params": {"model": "openai/x"}}),
            Access::Confined,
        )
        .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("model_name", "required")
        );
    }

    #[test]
    fn a_confined_model_reads_no_environment() {
        let c = cfg(&[("OPENAI_API_KEY", "sk-operator"), ("SECRET", "s")]);
        let entry = json!({"model_name": "m", "litellm_params": {"model": "openai/gpt-4o",
                           "api_base": "http://127.0.0.1:9/v1"}});
        let (d, _) = read_stored(&c, &entry, Access::Environment).unwrap();
        assert_eq!(d.api_key.as_deref(), Some("sk-operator"));
        let (d, _) = read_stored(&c, &entry, Access::Confined).unwrap();
        assert_eq!(
            d.api_key, None,
            "the operator's key never goes to a team's host"
        );
        let e = read_stored(
            &c,
            &json!({"model_name": "m", "litellm_params": {"model": "openai/x", "api_key": "os.environ/SECRET"}}),
            Access::Confined,
        )
        .unwrap_err();
        assert_eq!(e.field, "litellm_params.api_key");
    }
}
