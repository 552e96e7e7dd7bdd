//! `LiteLLM_ProxyModelTable` (models added through LiteLLM's UI or `/model/new`) → litegate's
//! `proxy_models`. LiteLLM encrypts every string value of `litellm_params` with the same
//! scheme as litegate (`crypt`: NaCl SecretBox keyed by SHA-256 of `LITELLM_SALT_KEY`, else
//! the master key), so a row is copied as it is — ciphertexts untouched — once it is known to
//! open with this litegate's key and to read as a config entry (`config::read_stored`, a
//! team's model reading no environment). A row that does not is left out with a note saying
//! which parameters and why (never a silent skip, never a secret in the report); so are rows
//! of a team not imported and rows whose id a config model has.

use super::map::{ts_or_now, Plan};
use super::rows::{get_obj, get_str, json_obj, Out, V};
use super::source::Table;
use crate::config::{self, Access, Config};
use crate::crypt::decrypt_params;
use serde_json::{json, Value};

/// Adds the models of `t` to `plan` (after the teams, which a team's model refers to).
pub fn plan_models(t: &Table, cfg: Option<&Config>, plan: &mut Plan) {
    if t.rows.is_empty() {
        return;
    }
    let Some(cfg) = cfg else {
        plan.note(format!(
            "LiteLLM_ProxyModelTable: {} models not imported (no config to check them with)",
            t.rows.len()
        ));
        return;
    };
    let teams: std::collections::HashSet<String> = plan
        .rows
        .iter()
        .filter(|o| o.table == "teams")
        .filter_map(|o| o.get("id").and_then(V::as_text).map(str::to_string))
        .collect();
    for r in &t.rows {
        let Some(id) = get_str(r, "model_id") else {
            plan.note("a LiteLLM_ProxyModelTable row without model_id: not imported".into());
            continue;
        };
        let name = get_str(r, "model_name").unwrap_or_default();
        let what = format!("model {id} ({name})");
        let params = get_obj(r, "litellm_params");
        let info = get_obj(r, "model_info");
        let team = info
            .get("team_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if cfg.deployments.iter().any(|d| d.id == id) {
            plan.note(format!(
                "{what}: not imported: a model of config.yaml has this id"
            ));
            continue;
        }
        if let Some(t) = team.as_deref().filter(|t| !teams.contains(*t)) {
            plan.note(format!(
                "{what}: not imported: its team {t} is not imported"
            ));
            continue;
        }
        let stored = Value::Object(params.clone()).to_string();
        let plain = match decrypt_params(cfg.salt_key.as_ref(), &stored) {
            Ok(p) => p,
            Err(why) => {
                plan.note(format!(
                    "{what}: not imported: {why} (LiteLLM encrypted them with its \
                     LITELLM_SALT_KEY, or its master key when that was unset: give litegate \
                     the same and run again)"
                ));
                continue;
            }
        };
        let entry = json!({"model_name": name, "litellm_params": plain,
                           "model_info": Value::Object(info.clone())});
        // A team's model reads no environment (`access::registry::access_of`).
        let access = match team {
            Some(_) => Access::Confined,
            None => Access::Environment,
        };
        if let Err(e) = config::read_stored(cfg, &entry, access) {
            plan.note(format!(
                "{what}: not imported: `{}`: {}",
                e.field, e.message
            ));
            continue;
        }
        let mut out = Out::new("proxy_models", &["model_id"])
            .set("model_id", V::Text(id))
            .set("model_name", V::Text(name))
            .set("litellm_params", V::Text(stored))
            .set("model_info", json_obj(info))
            .set("team_id", V::text(team))
            .set("created_at", ts_or_now(r, "created_at"))
            .set("created_by", V::text(get_str(r, "created_by")))
            .set("updated_at", ts_or_now(r, "updated_at"))
            .set("updated_by", V::text(get_str(r, "updated_by")));
        out.insert_only = &["created_at"];
        plan.rows.push(out);
    }
}
