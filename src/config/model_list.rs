//! `model_list`: the model deployments of the config file (API.md §1). Owns `Deployment` (what
//! the rest of litegate routes to) and the typed form of one `model_list` entry as LiteLLM
//! writes it, with its checks. Timeout defaults that come from other sections are filled in by
//! `settings.rs` (`apply_timeout_defaults`); the catalog built from the list is `access::Catalog`.

use super::yaml::{Count, Field, Mapping, Names, NonNegative, Positive, Reader, Shaped};
use super::ConfigError;
use crate::provider::{self, Route};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// The public name callers use (may be a wildcard such as `openai/*`).
    pub model_name: String,
    /// `litellm_params.model`, `provider/name`.
    pub model: String,
    pub api_base: Option<String>,
    pub api_key: Option<String>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub input_cost_per_token: f64,
    pub output_cost_per_token: f64,
    pub timeout_secs: f64,
    pub stream_timeout_secs: f64,
    pub id: String,
    pub access_groups: Vec<String>,
    /// The rest of `model_info`, shown by `/model/info`.
    pub model_info: serde_json::Map<String, serde_json::Value>,
    /// Where calls go and their auth header, built once from this deployment's own
    /// `api_base` (or its provider's default) and key (`api_key` or the provider's variable).
    pub route: Route,
}

impl Deployment {
    pub fn provider(&self) -> &str {
        self.model.split('/').next().unwrap_or("")
    }
}

/// The whole `model_list` value: a list of entries (`null` is an empty list).
pub(super) type ModelList = Shaped<Vec<Shaped<Entry>>>;

/// One `model_list` entry as written.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct Entry {
    model_name: Field<String>,
    litellm_params: Shaped<Params>,
    model_info: Shaped<Info>,
    #[serde(flatten)]
    unknown: Mapping,
}

/// `litellm_params`: every value may be `os.environ/NAME`.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Params {
    model: Field<String>,
    api_base: Field<String>,
    /// LiteLLM's other name for `api_base`.
    base_url: Field<String>,
    api_key: Field<String>,
    /// Azure's `api-version` (else `AZURE_API_VERSION`, else LiteLLM's default).
    api_version: Field<String>,
    /// Bedrock's credentials, region and endpoint (`config::bedrock`).
    aws_access_key_id: Field<String>,
    aws_secret_access_key: Field<String>,
    aws_session_token: Field<String>,
    aws_region_name: Field<String>,
    aws_bedrock_runtime_endpoint: Field<String>,
    rpm: Field<Count>,
    tpm: Field<Count>,
    input_cost_per_token: Field<NonNegative>,
    output_cost_per_token: Field<NonNegative>,
    timeout: Field<Positive>,
    stream_timeout: Field<Positive>,
    /// `vertex_ai`: service-account credentials, a path or the JSON (LiteLLM's names).
    vertex_credentials: Field<Credentials>,
    vertex_ai_credentials: Field<Credentials>,
    vertex_project: Field<String>,
    vertex_ai_project: Field<String>,
    vertex_location: Field<String>,
    vertex_ai_location: Field<String>,
    #[serde(flatten)]
    unknown: Mapping,
}

/// `vertex_credentials` as LiteLLM takes it: a path or the JSON as text, or the JSON written
/// as a YAML mapping (kept as JSON text).
struct Credentials(String);

impl super::yaml::FromYaml for Credentials {
    fn from_yaml(v: &super::yaml::Yaml, r: &Reader, field: &str) -> Result<Self, ConfigError> {
        match v {
            serde_yaml_ng::Value::String(s) => Ok(Credentials(s.clone())),
            serde_yaml_ng::Value::Mapping(_) => {
                Ok(Credentials(super::yaml::to_json(v).to_string()))
            }
            _ => Err(r.error(
                field,
                "expected a path, the credentials' JSON, or a mapping of it",
            )),
        }
    }
}

/// A `vertex_ai` deployment's settings as given (each the first of its two names).
struct Vertex {
    credentials: Option<(String, String)>,
    project: Option<String>,
    location: Option<String>,
}

/// `model_info`: `id` and `access_groups` are litegate's; the rest is shown as is.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Info {
    id: Field<String>,
    access_groups: Field<Names>,
    #[serde(flatten)]
    rest: Mapping,
}

/// Reads the list; `id`s default to `{model_name}-{index}` and must be unique.
pub(super) fn read(list: ModelList, r: &mut Reader) -> Result<Vec<Deployment>, ConfigError> {
    let list = list
        .get(r, "model_list", Some(("model_list", "expected a list")))?
        .unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for (i, entry) in list.into_iter().enumerate() {
        let at = format!("model_list[{i}]");
        let entry = entry
            .get(r, &at, Some((&at, "expected a mapping")))?
            .ok_or_else(|| r.error(&at, "expected a mapping"))?;
        out.push(entry.read(r, &at, i)?);
    }
    let mut ids = std::collections::HashSet::new();
    for d in &out {
        if !ids.insert(d.id.as_str()) {
            return Err(r.error(
                "model_list",
                format_args!("model_info.id '{}' is used twice", d.id),
            ));
        }
    }
    Ok(out)
}

impl Entry {
    pub(super) fn read(
        self,
        r: &mut Reader,
        at: &str,
        index: usize,
    ) -> Result<Deployment, ConfigError> {
        for k in self.unknown.keys().filter_map(|k| k.as_str()) {
            r.unknown(at, k);
        }
        let model_name = self
            .model_name
            .read(r, &format!("{at}.model_name"))?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| r.error(&format!("{at}.model_name"), "required"))?;
        let params = self.litellm_params.get(r, at, None)?.ok_or_else(|| {
            r.error(
                &format!("{at}.litellm_params"),
                "required mapping with `model`",
            )
        })?;
        let mut d = Deployment {
            model_name,
            model: String::new(),
            api_base: None,
            api_key: None,
            rpm: None,
            tpm: None,
            input_cost_per_token: 0.0,
            output_cost_per_token: 0.0,
            // 0: not set here; `settings::apply_timeout_defaults` fills it in.
            timeout_secs: 0.0,
            stream_timeout_secs: 0.0,
            id: String::new(),
            access_groups: Vec::new(),
            model_info: serde_json::Map::new(),
            route: Route::default(),
        };
        let (input, output) = params.apply(r, at, &mut d)?;
        let info_at = format!("{at}.model_info");
        if let Some(info) = self
            .model_info
            .get(r, at, Some((&info_at, "expected a mapping")))?
        {
            info.apply(r, at, &mut d)?;
        }
        price(r, &mut d, input, output);
        if d.id.is_empty() {
            d.id = format!("{}-{index}", d.model_name);
        }
        Ok(d)
    }
}

impl Params {
    /// Reads the parameters into `d`; returns the prices the file gives (applied by `price`).
    fn apply(
        self,
        r: &mut Reader,
        at: &str,
        d: &mut Deployment,
    ) -> Result<(Option<f64>, Option<f64>), ConfigError> {
        let f = |k: &str| format!("{at}.litellm_params.{k}");
        d.model = self.model.resolve(r, &f("model"))?.unwrap_or_default();
        let api_base = self.api_base.resolve(r, &f("api_base"))?;
        let base_url = self.base_url.resolve(r, &f("base_url"))?;
        if api_base.is_some() && base_url.is_some() {
            r.warn(format_args!(
                "{at}.litellm_params: both api_base and base_url are set; using api_base"
            ));
        }
        d.api_base = api_base.or(base_url);
        d.api_key = self.api_key.resolve(r, &f("api_key"))?;
        d.rpm = self.rpm.resolve(r, &f("rpm"))?.map(|c| c.0);
        d.tpm = self.tpm.resolve(r, &f("tpm"))?.map(|c| c.0);
        let input = self
            .input_cost_per_token
            .resolve(r, &f("input_cost_per_token"))?
            .map(|c| c.0);
        let output = self
            .output_cost_per_token
            .resolve(r, &f("output_cost_per_token"))?
            .map(|c| c.0);
        let secs = |x: Option<Positive>| x.map_or(0.0, |p| p.0);
        d.timeout_secs = secs(self.timeout.resolve(r, &f("timeout"))?);
        d.stream_timeout_secs = secs(self.stream_timeout.resolve(r, &f("stream_timeout"))?);
        let first = |a: Field<String>, an: &str, b: Field<String>, bn: &str| {
            let a = a.resolve(r, &f(an))?.map(|v| (an.to_string(), v));
            let b = b.resolve(r, &f(bn))?.map(|v| (bn.to_string(), v));
            Ok::<_, ConfigError>(a.or(b))
        };
        let creds = |c: Field<Credentials>, n: &str| {
            Ok::<_, ConfigError>(c.resolve(r, &f(n))?.map(|v| (n.to_string(), v.0)))
        };
        let vertex = Vertex {
            credentials: creds(self.vertex_credentials, "vertex_credentials")?
                .or(creds(self.vertex_ai_credentials, "vertex_ai_credentials")?),
            project: first(
                self.vertex_project,
                "vertex_project",
                self.vertex_ai_project,
                "vertex_ai_project",
            )?
            .map(|x| x.1),
            location: first(
                self.vertex_location,
                "vertex_location",
                self.vertex_ai_location,
                "vertex_ai_location",
            )?
            .map(|x| x.1),
        };
        // An unknown key's `os.environ/NAME` must still be set (as when every key was read).
        for (k, v) in &self.unknown {
            let k = k.as_str().unwrap_or_default();
            r.resolve(v, &f(k))?;
            r.unknown(&format!("{at}.litellm_params"), k);
        }
        if !d.model.contains('/') || d.model.starts_with('/') {
            return Err(r.error(
                &f("model"),
                format_args!("expected 'provider/name', got '{}'", d.model),
            ));
        }
        // No silent fallback: an unsupported prefix would send its key to someone else's host.
        let Some(p) = provider::find(d.provider()) else {
            return Err(r.error(
                &f("model"),
                format_args!(
                    "provider '{}' is not supported; supported providers: {}",
                    d.provider(),
                    provider::names()
                ),
            ));
        };
        if d.api_key.is_none() {
            let from_env = p
                .key_env
                .iter()
                .find_map(|n| r.var(n).map(|v| (*n, v.to_string())));
            if let (Some((var, _)), Some(base)) = (&from_env, &d.api_base) {
                // LiteLLM sends the provider's key to a custom api_base too; say so once, at
                // start, so an operator sees where that variable's key goes.
                let msg = format!(
                    "{}: no api_key; {var} from the environment is sent to its api_base {base}",
                    f("model")
                );
                r.warn(msg);
            }
            d.api_key = from_env.map(|(_, v)| v);
        }
        let api_version = match self.api_version.resolve(r, &f("api_version"))? {
            // Only Azure's URLs carry it; elsewhere it is an unused key, as before.
            Some(_) if p.wire == provider::Wire::OpenAi => {
                r.unknown(&format!("{at}.litellm_params"), "api_version");
                None
            }
            Some(v) => Some(v),
            None if p.wire == provider::Wire::Azure => {
                r.var("AZURE_API_VERSION").map(str::to_string)
            }
            None => None,
        };
        let name = d.model.split_once('/').map_or("", |(_, m)| m);
        let aws = super::bedrock::AwsParams {
            access_key_id: self.aws_access_key_id.resolve(r, &f("aws_access_key_id"))?,
            secret_access_key: self
                .aws_secret_access_key
                .resolve(r, &f("aws_secret_access_key"))?,
            session_token: self.aws_session_token.resolve(r, &f("aws_session_token"))?,
            region_name: self.aws_region_name.resolve(r, &f("aws_region_name"))?,
            runtime_endpoint: self
                .aws_bedrock_runtime_endpoint
                .resolve(r, &f("aws_bedrock_runtime_endpoint"))?,
        };
        if p.wire == provider::Wire::Bedrock {
            d.route = super::bedrock::route(
                r,
                &f,
                name,
                d.api_base.as_deref(),
                d.api_key.as_deref(),
                aws,
            )?;
            return Ok((input, output));
        }
        if aws.any() {
            r.warn(format_args!(
                "{at}.litellm_params: aws_* settings are for bedrock deployments; ignored"
            ));
        }
        if p.wire == provider::Wire::Azure && name.contains('*') {
            return Err(r.error(
                &f("model"),
                "an azure deployment names one Azure deployment (it is part of the URL); \
                 wildcards are not supported",
            ));
        }
        if p.auth == provider::Auth::GoogleOAuth {
            d.route = vertex.route(r, at, name, d.api_base.as_deref())?;
            if d.api_key.is_some() {
                r.warn(format_args!(
                    "{}: vertex_ai deployments authenticate with their credentials; \
                     api_key is not sent",
                    f("api_key")
                ));
            }
            return Ok((input, output));
        }
        if vertex.credentials.is_some() || vertex.project.is_some() || vertex.location.is_some() {
            r.warn(format_args!(
                "{at}.litellm_params: vertex_* settings are only used by vertex_ai deployments; \
                 ignored"
            ));
        }
        d.route = p
            .route(
                name,
                d.api_base.as_deref(),
                d.api_key.as_deref(),
                api_version.as_deref(),
            )
            .map_err(|m| r.error(&f("api_base"), format_args!("{m} ('{}')", p.name)))?;
        Ok((input, output))
    }
}

impl Vertex {
    /// The route of a `vertex_ai/{name}` deployment: credentials from `vertex_credentials`,
    /// else `VERTEXAI_CREDENTIALS`, else the file `GOOGLE_APPLICATION_CREDENTIALS` names (read
    /// now: bad credentials stop the start); the project from `vertex_project`, else
    /// `VERTEXAI_PROJECT`, else the credentials'; the location from `vertex_location`, else
    /// `VERTEXAI_LOCATION`/`VERTEX_LOCATION`, else LiteLLM's `us-central1`. Deployments with the
    /// same credentials share one account, and so one cached token.
    fn route(
        self,
        r: &mut Reader,
        at: &str,
        name: &str,
        api_base: Option<&str>,
    ) -> Result<Route, ConfigError> {
        use provider::google::{self, ServiceAccount};
        let f = |k: &str| format!("{at}.litellm_params.{k}");
        let (field, value) = match self.credentials {
            Some((field, v)) => (f(&field), v),
            None => match ["VERTEXAI_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"]
                .iter()
                .find_map(|n| r.var(n).map(|v| (*n, v)))
            {
                Some((var, v)) => (
                    format!("{} (from {var})", f("vertex_credentials")),
                    v.to_string(),
                ),
                None => {
                    return Err(r.error(
                        &f("vertex_credentials"),
                        "required for vertex_ai (a service account key file or its JSON), \
                         or set GOOGLE_APPLICATION_CREDENTIALS",
                    ))
                }
            },
        };
        let account = ServiceAccount::load(&value).map_err(|e| r.error(&field, e))?;
        let account = r
            .google_accounts
            .entry(account.identity().to_string())
            .or_insert_with(|| std::sync::Arc::new(account))
            .clone();
        let project = self
            .project
            .or_else(|| r.var("VERTEXAI_PROJECT").map(str::to_string))
            .or_else(|| account.project_id.clone())
            .ok_or_else(|| {
                r.error(
                    &f("vertex_project"),
                    "required (or VERTEXAI_PROJECT, or project_id in the credentials)",
                )
            })?;
        let location = self
            .location
            .or_else(|| {
                ["VERTEXAI_LOCATION", "VERTEX_LOCATION"]
                    .iter()
                    .find_map(|n| r.var(n).map(str::to_string))
            })
            .unwrap_or_else(|| google::DEFAULT_LOCATION.to_string());
        google::vertex_route(name, api_base, project.trim(), location.trim(), account)
            .map_err(|(k, m)| r.error(&f(k), m))
    }
}

/// Prices in force: the file's, each field separately, else the embedded table's, else 0 and
/// the model is noted as unpriced (`mock` deployments are never priced). The table is looked up
/// by `model_info.base_model` when given (LiteLLM's way to price e.g. an Azure deployment
/// name; without a `provider/` it gets the deployment's), else by `litellm_params.model`. The
/// table's cache prices and token limits go into `model_info` where the file did not set them.
fn price(r: &mut Reader, d: &mut Deployment, input: Option<f64>, output: Option<f64>) {
    let mock = d.provider() == "mock";
    let key = match d.model_info.get("base_model").and_then(|v| v.as_str()) {
        Some(b) if b.contains('/') => b.to_string(),
        Some(b) => format!("{}/{b}", d.provider()),
        None => d.model.clone(),
    };
    let table = if mock {
        None
    } else {
        crate::prices::lookup(&key)
    };
    let t = table.unwrap_or_default();
    let input = input.or(t.input_cost_per_token);
    let output = output.or(t.output_cost_per_token);
    d.input_cost_per_token = input.unwrap_or(0.0);
    d.output_cost_per_token = output.unwrap_or(0.0);
    if !mock && (input.is_none() || output.is_none()) && !r.unpriced.contains(&key) {
        r.unpriced.push(key);
    }
    let mut put = |k: &str, v: Option<serde_json::Value>| {
        if let Some(v) = v {
            d.model_info.entry(k.to_string()).or_insert(v);
        }
    };
    let max_tokens = t.max_output_tokens.or(t.max_input_tokens);
    put("max_tokens", max_tokens.map(Into::into));
    put("max_input_tokens", t.max_input_tokens.map(Into::into));
    put("max_output_tokens", t.max_output_tokens.map(Into::into));
    put(
        "cache_read_input_token_cost",
        t.cache_read_input_token_cost.map(Into::into),
    );
    put(
        "cache_creation_input_token_cost",
        t.cache_creation_input_token_cost.map(Into::into),
    );
}

impl Info {
    fn apply(self, r: &Reader, at: &str, d: &mut Deployment) -> Result<(), ConfigError> {
        let f = |k: &str| format!("{at}.model_info.{k}");
        if let Some(id) = self.id.read(r, &f("id"))? {
            d.id = id;
        }
        if let Some(Names(groups)) = self.access_groups.read(r, &f("access_groups"))? {
            d.access_groups = groups;
        }
        for (k, v) in &self.rest {
            if let Some(k) = k.as_str() {
                d.model_info.insert(k.to_string(), super::yaml::to_json(v));
            }
        }
        Ok(())
    }
}
