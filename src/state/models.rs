//! Database models in a state file (the `models` kind): what is checked of them beyond types,
//! and the models in force once the file is applied (so model lists and an end user's
//! `default_model` may name a model the same file adds).
//!
//! Secrets: `litellm_params` travel as the store holds them — every string value LiteLLM's
//! ciphertext (`crypt`, keyed by `LITELLM_SALT_KEY` or the master key), an `os.environ/NAME`
//! reference included (it stays a reference, read from the applying instance's environment).
//! So an export holds no plaintext secret, and a file applies only where the same key opens
//! it: each string value must decrypt with the applying instance's key, else the whole file is
//! a 400 naming the model and the parameters (nothing written). Decrypted values are read by
//! the config file's own reader (`config::read_stored`, a team's model reading no environment)
//! and dropped; they never reach the plan, an answer or the log.

use super::kinds::{Kind, KINDS};
use super::Obj;
use crate::access::registry::{access_of, decrypt_params, deployment_of};
use crate::access::ModelViews;
use crate::config::{self, Config};
use crate::db::models::{ModelRow, MAX_KEYS, MAX_MODELS, MAX_VALUE_BYTES};
use crate::error::{Error, Result};
use serde_json::{json, Value};

/// The `models` kind.
fn kind() -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.section == "models")
}

fn text(k: &Kind, o: &Obj, name: &str) -> Option<String> {
    let i = k.fields.iter().position(|f| f.name == name)?;
    match o[i].as_ref()? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// An object of the `models` kind as the row it stores.
fn row(k: &Kind, o: &Obj) -> ModelRow {
    let t = |n: &str| text(k, o, n);
    ModelRow {
        model_id: t("model_id").unwrap_or_default(),
        model_name: t("model_name").unwrap_or_default(),
        litellm_params: t("litellm_params").unwrap_or_else(|| "{}".into()),
        model_info: t("model_info").unwrap_or_else(|| "{}".into()),
        team_id: t("team_id"),
        created_at: t("created_at").unwrap_or_default(),
        created_by: t("created_by"),
        updated_at: String::new(),
        updated_by: None,
    }
}

fn bad(id: &str, param: &str, why: impl std::fmt::Display) -> Error {
    Error::bad_param(param, format!("models: model {id}: {why}"))
}

/// The file's models checked: opened with this instance's key, read as a config entry, their
/// `model_info.team_id` the same as `team_id`, their id not a config model's.
pub fn check(cfg: &Config, file: &super::State) -> Result<()> {
    let Some(k) = kind() else { return Ok(()) };
    let Some(ki) = super::kinds::index_of(k.section) else {
        return Ok(());
    };
    if file.kinds[ki].len() as i64 > MAX_MODELS {
        return Err(Error::bad_param(
            "models",
            format!("models: a state file may hold at most {MAX_MODELS} models"),
        ));
    }
    for obj in file.kinds[ki].values() {
        let r = row(k, obj);
        let id = r.model_id.as_str();
        if cfg.deployments.iter().any(|d| d.id == id) {
            return Err(bad(
                id,
                "model_id",
                "a model of the config file has this id (config models are not state)",
            ));
        }
        let info = crate::db::json_obj(&r.model_info);
        match (info.get("team_id").and_then(Value::as_str), &r.team_id) {
            (None, _) => {}
            (Some(a), Some(b)) if a == b => {}
            (Some(_), _) => {
                return Err(bad(
                    id,
                    "model_info.team_id",
                    "`model_info.team_id` differs from `team_id`",
                ))
            }
        }
        let plain = decrypt_params(cfg.salt_key.as_ref(), &r.litellm_params)
            .map_err(|why| bad(id, "litellm_params", why))?;
        // The bounds of `/model/new`, on the plain values.
        let params = plain.as_object().map_or(0, |m| m.len());
        if params > MAX_KEYS || info.as_object().map_or(0, |m| m.len()) > MAX_KEYS {
            return Err(bad(
                id,
                "litellm_params",
                format!("`litellm_params` and `model_info` may hold at most {MAX_KEYS} keys"),
            ));
        }
        if let Some((k, _)) = plain.as_object().and_then(|m| {
            m.iter()
                .find(|(_, v)| v.to_string().len() > MAX_VALUE_BYTES)
        }) {
            return Err(bad(
                id,
                "litellm_params",
                format!("`litellm_params.{k}` is longer than {MAX_VALUE_BYTES} bytes"),
            ));
        }
        let entry = json!({"model_name": r.model_name, "litellm_params": plain,
                           "model_info": info});
        config::read_stored(cfg, &entry, access_of(r.team_id.as_deref())).map_err(|e| {
            bad(
                id,
                &e.field,
                format!("`{}`: {}", e.field, e.message).as_str(),
            )
        })?;
    }
    Ok(())
}

/// The models in force once the file is applied: the config's and `models` (the objects of
/// the `models` kind the store will hold).
pub fn in_force<'a>(cfg: &Config, models: impl Iterator<Item = &'a Obj>) -> ModelViews {
    let mut deps = cfg.deployments.clone();
    if let Some(k) = kind() {
        deps.extend(models.map(|o| deployment_of(cfg, &row(k, o))));
    }
    ModelViews::new(deps, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypt::{encrypt_params, SaltKey};

    fn cfg(salt: &str) -> Config {
        Config {
            salt_key: Some(SaltKey::new(salt)),
            ..Config::default()
        }
    }

    /// A state file with one model whose parameters `salt` encrypted.
    fn file(salt: &str, params: serde_json::Map<String, Value>) -> super::super::State {
        let sealed = encrypt_params(&SaltKey::new(salt), &params);
        let doc = json!({"litegate_state": 1, "models": [{"model_id": "m1", "model_name": "m",
                          "litellm_params": sealed}]});
        super::super::parse(&doc.to_string()).unwrap()
    }

    fn param(r: Result<()>) -> String {
        match r {
            Err(Error::BadRequest { param, message }) => {
                assert!(message.contains("model m1"), "{message}");
                param.unwrap_or_default()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn opens_with_the_same_key_only_and_keeps_the_bounds() {
        let plain = json!({"model": "openai/gpt-4o", "api_key": "sk-secret", "rpm": 5});
        let plain = plain.as_object().unwrap().clone();
        check(&cfg("k"), &file("k", plain.clone())).unwrap();
        assert_eq!(
            param(check(&cfg("other"), &file("k", plain.clone()))),
            "litellm_params"
        );
        let no_key = Config::default();
        assert_eq!(
            param(check(&no_key, &file("k", plain.clone()))),
            "litellm_params"
        );
        let mut many = plain.clone();
        for i in 0..MAX_KEYS {
            many.insert(format!("extra_{i}"), json!(1));
        }
        assert_eq!(param(check(&cfg("k"), &file("k", many))), "litellm_params");
        let mut big = plain.clone();
        big.insert("api_base".into(), json!("x".repeat(MAX_VALUE_BYTES + 1)));
        assert_eq!(param(check(&cfg("k"), &file("k", big))), "litellm_params");
        let mut bad = plain;
        bad.insert("model".into(), json!("nope/x"));
        assert_eq!(
            param(check(&cfg("k"), &file("k", bad))),
            "litellm_params.model"
        );
    }
}
