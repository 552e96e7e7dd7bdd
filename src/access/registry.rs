//! The models in force, changed at runtime (issue 15 item 3): `Registry` holds the current
//! generation of `ModelViews` (config models plus the database's `proxy_models`) behind an
//! `Arc` swapped atomically — a call keeps the generation it started with, no lock is held
//! across anything slow. `at` reloads when the database's generation (read by THE key check,
//! or by one small statement for callers without a key) differs from the loaded one, so a
//! model written through any instance is in force on every instance's next request; no TTL.
//!
//! A stored row is read by `config::read_stored` exactly as a config entry; its string
//! `litellm_params` are decrypted first (`crypt`). A row that cannot be decrypted (another
//! salt key) or read (a provider litegate lacks) stays listed but unusable: its calls get a
//! 503 saying why (`unusable`), nothing is sent upstream, the others load.

use super::catalog::ModelViews;
use crate::config::{self, Access, Config, Deployment};
pub use crate::crypt::{decrypt_params, encrypt_params};
use crate::db::{self, models::ModelRow, Pool};
use crate::error::Result;
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex, RwLock};

/// `model_info` key of an unusable stored model: why (never a secret).
pub const UNUSABLE: &str = "litegate_unusable";

pub struct Registry {
    current: RwLock<Arc<ModelViews>>,
    /// One reload at a time; the others wait for it and take its result.
    reloading: Mutex<()>,
}

impl Registry {
    pub fn new(m: ModelViews) -> Registry {
        Registry {
            current: RwLock::new(Arc::new(m)),
            reloading: Mutex::new(()),
        }
    }

    pub fn current(&self) -> Arc<ModelViews> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// The models as of the database's `generation`: the loaded ones if they are that
    /// generation, else reloaded now.
    pub fn at(&self, pool: &Pool, cfg: &Config, generation: i64) -> Result<Arc<ModelViews>> {
        let cur = self.current();
        if cur.generation == generation {
            return Ok(cur);
        }
        let _one = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let cur = self.current();
        if cur.generation == generation {
            return Ok(cur);
        }
        self.reload(pool, cfg)
    }

    /// Loads the models now and puts them in force.
    pub fn reload(&self, pool: &Pool, cfg: &Config) -> Result<Arc<ModelViews>> {
        let m = Arc::new(load(pool, cfg)?);
        match self.current.write() {
            Ok(mut g) => *g = Arc::clone(&m),
            Err(p) => *p.into_inner() = Arc::clone(&m),
        }
        Ok(m)
    }
}

/// Config models plus every stored one, at the generation read first (a change after it is
/// seen as a newer generation on the next request: never lost).
pub fn load(pool: &Pool, cfg: &Config) -> Result<ModelViews> {
    let (generation, rows) =
        pool.read_db(|c| Ok((db::models::generation(c)?, db::models::all(c)?)))?;
    let mut deps = cfg.deployments.clone();
    for row in &rows {
        deps.push(deployment_of(cfg, row));
    }
    Ok(ModelViews::new(deps, generation))
}

/// What a stored model may read of the environment: a team's nothing.
pub fn access_of(team_id: Option<&str>) -> Access {
    match team_id {
        Some(_) => Access::Confined,
        None => Access::Environment,
    }
}

/// A stored row as a deployment (or as an unusable one, logged).
pub fn deployment_of(cfg: &Config, row: &ModelRow) -> Deployment {
    let mut info = match serde_json::from_str::<Value>(&row.model_info) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    info.insert("id".into(), json!(row.model_id));
    info.insert("db_model".into(), json!(true));
    if let Some(t) = &row.team_id {
        info.insert("team_id".into(), json!(t));
    }
    let read = decrypt_params(cfg.salt_key.as_ref(), &row.litellm_params).and_then(|params| {
        let entry = json!({"model_name": row.model_name, "litellm_params": params,
                           "model_info": info.clone()});
        config::read_stored(cfg, &entry, access_of(row.team_id.as_deref()))
            .map(|(d, _)| d)
            .map_err(|e| format!("{}: {}", e.field, e.message))
    });
    match read {
        Ok(d) => d,
        Err(why) => {
            log::error!(
                "stored model {} ({}) is unusable: {why}",
                row.model_id,
                row.model_name
            );
            unusable(row, info, why)
        }
    }
}

/// A placeholder that routes nowhere: `call::resolve` refuses it with `why` before anything
/// is sent (its provider is the built-in mock, which it never reaches).
fn unusable(row: &ModelRow, mut info: Map<String, Value>, why: String) -> Deployment {
    info.insert(UNUSABLE.into(), json!(why));
    Deployment {
        model_name: row.model_name.clone(),
        model: "mock/unusable".into(),
        api_base: None,
        api_key: None,
        rpm: None,
        tpm: None,
        input_cost_per_token: 0.0,
        output_cost_per_token: 0.0,
        timeout_secs: 600.0,
        stream_timeout_secs: 600.0,
        id: row.model_id.clone(),
        access_groups: Vec::new(),
        model_info: info,
        route: Default::default(),
    }
}

/// Why a deployment is unusable, if it is.
pub fn unusable_reason(d: &Deployment) -> Option<&str> {
    d.model_info.get(UNUSABLE).and_then(Value::as_str)
}
