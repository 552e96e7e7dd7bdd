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
use crate::db::models::ModelRow;
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
