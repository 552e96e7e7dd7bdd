//! TEMPORARY: the hand-walked reader before the typed one, for a differential test.
#![allow(clippy::all, dead_code)]
use super::{Config, ConfigError, Deployment};
use serde_yaml_ng::Value as Yaml;
use std::path::PathBuf;

/// Resolves `os.environ/NAME` values.
fn resolve(
    v: &Yaml,
    file: &str,
    field: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Yaml, ConfigError> {
    if let Yaml::String(s) = v {
        if let Some(name) = s.strip_prefix("os.environ/") {
            return env(name).map(Yaml::String).ok_or_else(|| {
                ConfigError(format!(
                    "{file}: {field}: environment variable {name} is not set"
                ))
            });
        }
    }
    Ok(v.clone())
}

fn as_str(v: &Yaml, file: &str, field: &str) -> Result<String, ConfigError> {
    match v {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        _ => Err(ConfigError(format!("{file}: {field}: expected a string"))),
    }
}

fn as_f64(v: &Yaml, file: &str, field: &str) -> Result<f64, ConfigError> {
    let n = match v {
        Yaml::Number(n) => n.as_f64(),
        Yaml::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(ConfigError(format!(
            "{file}: {field}: expected a non-negative number"
        ))),
    }
}

fn as_i64(v: &Yaml, file: &str, field: &str) -> Result<i64, ConfigError> {
    let n = match v {
        Yaml::Number(n) => n.as_i64(),
        Yaml::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match n {
        Some(x) if x >= 0 => Ok(x),
        _ => Err(ConfigError(format!(
            "{file}: {field}: expected a non-negative integer"
        ))),
    }
}

fn as_bool(v: &Yaml, file: &str, field: &str) -> Result<bool, ConfigError> {
    match v {
        Yaml::Bool(b) => Ok(*b),
        Yaml::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Yaml::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ConfigError(format!(
            "{file}: {field}: expected true or false"
        ))),
    }
}

thread_local! { pub static WARN: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) }; }
fn warn_unknown(file: &str, field: &str, key: &str) {
    WARN.with(|w| {
        w.borrow_mut().push(format!(
            "{file}: {field}.{key} is not used by litegate; ignored"
        ))
    });
}

fn yaml_to_json(v: &Yaml) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

pub fn apply_yaml(
    cfg: &mut Config,
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let doc: Yaml = serde_yaml_ng::from_str(text)
        .map_err(|e| ConfigError(format!("{file}: not valid YAML: {e}")))?;
    let top = match &doc {
        Yaml::Null => return Ok(()),
        Yaml::Mapping(m) => m,
        _ => {
            return Err(ConfigError(format!(
                "{file}: the top level must be a mapping"
            )))
        }
    };
    let (mut request_timeout, mut router_timeout, mut router_stream) = (None, None, None);
    for (k, v) in top {
        let key = as_str(k, file, "top level key")?;
        match key.as_str() {
            "model_list" => cfg.deployments = parse_model_list(v, file, env)?,
            "general_settings" => {
                let Yaml::Mapping(gs) = v else {
                    if v.is_null() {
                        continue;
                    }
                    return Err(ConfigError(format!(
                        "{file}: general_settings: expected a mapping"
                    )));
                };
                for (gk, gv) in gs {
                    let gk = as_str(gk, file, "general_settings key")?;
                    let field = format!("general_settings.{gk}");
                    let gv = resolve(gv, file, &field, env)?;
                    match gk.as_str() {
                        "master_key" => cfg.master_key = Some(as_str(&gv, file, &field)?),
                        "database_path" => cfg.db_path = PathBuf::from(as_str(&gv, file, &field)?),
                        "allow_weak_master_key" => {
                            cfg.allow_weak_master_key = as_bool(&gv, file, &field)?
                        }
                        "metrics_require_auth" => {
                            cfg.metrics_require_auth = as_bool(&gv, file, &field)?
                        }
                        "backup_dir" => {
                            cfg.backup_dir = Some(PathBuf::from(as_str(&gv, file, &field)?))
                        }
                        "max_request_size_mb" => {
                            let mb = as_f64(&gv, file, &field)?;
                            if mb <= 0.0 {
                                return Err(ConfigError(format!(
                                    "{file}: {field}: must be positive"
                                )));
                            }
                            cfg.max_body_bytes = (mb * 1024.0 * 1024.0) as usize;
                        }
                        "max_upstream_response_size_mb" => {
                            let mb = positive(as_f64(&gv, file, &field)?, file, &field)?;
                            cfg.max_upstream_body_bytes = (mb * 1024.0 * 1024.0) as u64;
                        }
                        "database_connection_pool_limit" => {
                            let n = as_i64(&gv, file, &field)?;
                            if !(1..=64).contains(&n) {
                                return Err(ConfigError(format!(
                                    "{file}: {field}: must be between 1 and 64"
                                )));
                            }
                            cfg.db_pool = n as usize;
                        }
                        other => warn_unknown(file, "general_settings", other),
                    }
                }
            }
            // Model aliases: `router_settings.model_group_alias` and
            // `litellm_settings.model_alias_map` (alias -> model_name). Other keys of these
            // sections are accepted for compatibility and ignored.
            "litellm_settings" | "router_settings" => {
                if let Yaml::Mapping(m) = v {
                    for (k2, v2) in m {
                        let k2 = as_str(k2, file, &key)?;
                        if key == "litellm_settings" && k2 == "default_internal_user_params" {
                            cfg.user_defaults =
                                crate::user_defaults::UserDefaults::parse(&yaml_to_json(v2))
                                    .map_err(|e| ConfigError(format!("{file}: {e}")))?;
                        }
                        // Default timeouts, as in LiteLLM (`apply_timeout_defaults`).
                        let slot = match (key.as_str(), k2.as_str()) {
                            ("litellm_settings", "request_timeout") => Some(&mut request_timeout),
                            ("router_settings", "timeout") => Some(&mut router_timeout),
                            ("router_settings", "stream_timeout") => Some(&mut router_stream),
                            _ => None,
                        };
                        if let Some(slot) = slot {
                            let field = format!("{key}.{k2}");
                            let v2 = resolve(v2, file, &field, env)?;
                            *slot = Some(positive(as_f64(&v2, file, &field)?, file, &field)?);
                            continue;
                        }
                        if k2 == "model_group_alias" || k2 == "model_alias_map" {
                            let field = format!("{key}.{k2}");
                            let Yaml::Mapping(aliases) = v2 else {
                                return Err(ConfigError(format!(
                                    "{file}: {field}: expected a mapping of alias: model_name"
                                )));
                            };
                            for (a, target) in aliases {
                                let a = as_str(a, file, &field)?;
                                // LiteLLM also allows {model: name, hidden: bool}.
                                let t = match target {
                                    Yaml::Mapping(tm) => tm
                                        .get(Yaml::String("model".into()))
                                        .map(|x| as_str(x, file, &field))
                                        .transpose()?,
                                    other => Some(as_str(other, file, &field)?),
                                };
                                let t = t.ok_or_else(|| {
                                    ConfigError(format!("{file}: {field}.{a}: needs a model"))
                                })?;
                                cfg.aliases.insert(a, t);
                            }
                        }
                    }
                }
            }
            "environment_variables" => {}
            other => warn_unknown(file, "(top level)", other),
        }
    }
    apply_timeout_defaults(
        &mut cfg.deployments,
        router_timeout.or(request_timeout),
        router_stream,
    );
    Ok(())
}

/// The total deadline of an upstream call (issue 11: an upstream that never stops streaming
/// is cut there), in LiteLLM's order: a deployment's own `timeout` / `stream_timeout`, else
/// `router_settings.timeout` / `stream_timeout`, else `litellm_settings.request_timeout`, else
/// 600 s; a stream without any stream timeout gets the call timeout.
fn apply_timeout_defaults(deps: &mut [Deployment], timeout: Option<f64>, stream: Option<f64>) {
    for d in deps {
        if d.timeout_secs <= 0.0 {
            d.timeout_secs = timeout.unwrap_or(600.0);
        }
        if d.stream_timeout_secs <= 0.0 {
            d.stream_timeout_secs = stream.unwrap_or(d.timeout_secs);
        }
    }
}

fn parse_model_list(
    v: &Yaml,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Deployment>, ConfigError> {
    let list = match v {
        Yaml::Null => return Ok(Vec::new()),
        Yaml::Sequence(s) => s,
        _ => return Err(ConfigError(format!("{file}: model_list: expected a list"))),
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("model_list[{i}]");
        let Yaml::Mapping(m) = item else {
            return Err(ConfigError(format!("{file}: {at}: expected a mapping")));
        };
        let mut model_name = None;
        let mut params = None;
        let mut info = None;
        for (k, v) in m {
            let k = as_str(k, file, &at)?;
            match k.as_str() {
                "model_name" => model_name = Some(as_str(v, file, &format!("{at}.model_name"))?),
                "litellm_params" => params = Some(v),
                "model_info" => info = Some(v),
                other => warn_unknown(file, &at, other),
            }
        }
        let model_name = model_name
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ConfigError(format!("{file}: {at}.model_name: required")))?;
        let Some(Yaml::Mapping(p)) = params else {
            return Err(ConfigError(format!(
                "{file}: {at}.litellm_params: required mapping with `model`"
            )));
        };
        let mut d = Deployment {
            model_name,
            model: String::new(),
            api_base: None,
            api_key: None,
            rpm: None,
            tpm: None,
            input_cost_per_token: 0.0,
            output_cost_per_token: 0.0,
            // 0: not set here; `apply_timeout_defaults` fills it in.
            timeout_secs: 0.0,
            stream_timeout_secs: 0.0,
            id: String::new(),
            access_groups: Vec::new(),
            model_info: serde_json::Map::new(),
        };
        for (k, v) in p {
            let k = as_str(k, file, &at)?;
            let field = format!("{at}.litellm_params.{k}");
            let v = resolve(v, file, &field, env)?;
            match k.as_str() {
                "model" => d.model = as_str(&v, file, &field)?,
                "api_base" | "base_url" => d.api_base = Some(as_str(&v, file, &field)?),
                "api_key" => d.api_key = Some(as_str(&v, file, &field)?),
                "rpm" => d.rpm = Some(as_i64(&v, file, &field)?),
                "tpm" => d.tpm = Some(as_i64(&v, file, &field)?),
                "input_cost_per_token" => d.input_cost_per_token = as_f64(&v, file, &field)?,
                "output_cost_per_token" => d.output_cost_per_token = as_f64(&v, file, &field)?,
                "timeout" => d.timeout_secs = positive(as_f64(&v, file, &field)?, file, &field)?,
                "stream_timeout" => {
                    d.stream_timeout_secs = positive(as_f64(&v, file, &field)?, file, &field)?
                }
                other => warn_unknown(file, &format!("{at}.litellm_params"), other),
            }
        }
        if !d.model.contains('/') || d.model.starts_with('/') {
            return Err(ConfigError(format!(
                "{file}: {at}.litellm_params.model: expected 'provider/name', got '{}'",
                d.model
            )));
        }
        match d.provider() {
            "mock" => {}
            "openai" | "hosted_vllm" | "openai_compatible" | "azure" | "ollama" | "vllm" => {}
            other => WARN.with(|w| {
                w.borrow_mut().push(format!(
                    "{file}: {at}.litellm_params.model: provider '{other}' is treated as \
                 OpenAI-compatible"
                ))
            }),
        }
        if let Some(Yaml::Mapping(mi)) = info {
            for (k, v) in mi {
                let k = as_str(k, file, &at)?;
                let field = format!("{at}.model_info.{k}");
                match k.as_str() {
                    "id" => d.id = as_str(v, file, &field)?,
                    "access_groups" => {
                        let Yaml::Sequence(gs) = v else {
                            return Err(ConfigError(format!(
                                "{file}: {field}: expected a list of names"
                            )));
                        };
                        for g in gs {
                            d.access_groups.push(as_str(g, file, &field)?);
                        }
                    }
                    _ => {
                        d.model_info.insert(k.clone(), yaml_to_json(v));
                    }
                }
            }
        } else if info.is_some_and(|v| !v.is_null()) {
            return Err(ConfigError(format!(
                "{file}: {at}.model_info: expected a mapping"
            )));
        }
        if d.id.is_empty() {
            d.id = format!("{}-{i}", d.model_name);
        }
        out.push(d);
    }
    let mut ids = std::collections::HashSet::new();
    for d in &out {
        if !ids.insert(d.id.clone()) {
            return Err(ConfigError(format!(
                "{file}: model_list: model_info.id '{}' is used twice",
                d.id
            )));
        }
    }
    Ok(out)
}

fn positive(x: f64, file: &str, field: &str) -> Result<f64, ConfigError> {
    if x > 0.0 {
        Ok(x)
    } else {
        Err(ConfigError(format!("{file}: {field}: must be positive")))
    }
}
