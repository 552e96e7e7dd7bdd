//! The providers litegate accepts for a `litellm_params.model` prefix (issue 13): ONE table of
//! each provider's default base URL (or that it needs `api_base`), its auth header, the
//! environment variables its key is taken from when `api_key` is not given (LiteLLM's names),
//! and its wire format; and `Route`, a deployment's URL prefix and auth header, built once at
//! config load from the deployment's own `api_base` or its provider's default (never another's).
//! It reads no environment (the config passes the values in) and sends nothing (`upstream`
//! does). Providers not in the table stop the start (`config::model_list`).
//!
//! Names and defaults are checked against LiteLLM's source
//! (`litellm/litellm_core_utils/get_llm_provider_logic.py`, `litellm/llms/*/chat/transformation.py`).
//! Google's service-account credentials, Vertex AI URLs and the access-token cache are in
//! `google.rs` and `token.rs`.

pub mod google;
pub mod token;

/// The header a provider's key goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <key>` (when a key is set).
    Bearer,
    /// Azure OpenAI's `api-key: <key>`, and no `Authorization`.
    ApiKey,
    /// Anthropic's `x-api-key: <key>`, and no `Authorization`.
    XApiKey,
    /// `Authorization: Bearer <token>`, an OAuth access token minted from the deployment's
    /// service-account credentials (`vertex_ai`; `google::ServiceAccount`).
    GoogleOAuth,
    /// Never called over HTTP (`mock`).
    None,
    /// Bedrock: every request SigV4-signed with the deployment's AWS credentials
    /// (`Route::aws`), or `Authorization: Bearer` with a Bedrock API key when one is given.
    SigV4,
}

/// Where a provider's calls go when the deployment gives no `api_base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    Default(&'static str),
    /// `api_base` is required: the start stops without it.
    Required,
    /// Answered by litegate itself (`mock`).
    Local,
}

/// The request and answer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wire {
    /// `{base}/{endpoint}` with OpenAI's bodies.
    #[default]
    OpenAi,
    /// `{api_base}/openai/deployments/{name}/{endpoint}?api-version={v}`, OpenAI's bodies.
    Azure,
    /// Azure AI serverless endpoints: `{api_base}/{endpoint}` (`/models/…` on
    /// `services.ai.azure.com`), `?api-version=` when one is given.
    AzureAi,
    /// Anthropic's Messages API: `{base}/v1/messages`, `anthropic-version` header, chat only,
    /// translated both ways by `upstream::anthropic`.
    Anthropic,
    /// Bedrock's Converse API: `{endpoint}/model/{modelId}/converse` (and `/converse-stream`,
    /// AWS's binary event stream), chat only, translated both ways by `upstream::bedrock`.
    Bedrock,
    /// Anthropic's Messages on Vertex AI: `{base}:rawPredict` / `:streamRawPredict`, no `model`
    /// in the body, `anthropic_version` in it instead of the header (`google::vertex_route`).
    VertexAnthropic,
}

impl Wire {
    /// Anthropic's Messages API, natively or on Vertex: chat only, translated.
    pub fn is_anthropic(self) -> bool {
        matches!(self, Wire::Anthropic | Wire::VertexAnthropic)
    }
}

/// The `anthropic-version` header sent with every Anthropic call (LiteLLM's too).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

#[derive(Debug)]
pub struct Provider {
    pub name: &'static str,
    pub base: Base,
    pub auth: Auth,
    /// Looked up in this order when `api_key` is not given.
    pub key_env: &'static [&'static str],
    pub wire: Wire,
}

const fn openai(name: &'static str, base: Base, key_env: &'static [&'static str]) -> Provider {
    Provider {
        name,
        base,
        auth: Auth::Bearer,
        key_env,
        wire: Wire::OpenAi,
    }
}

use Base::{Default as D, Required};

/// Every provider litegate accepts. Anything else stops the start.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        name: "mock",
        base: Base::Local,
        auth: Auth::None,
        key_env: &[],
        wire: Wire::OpenAi,
    },
    openai(
        "openai",
        D("https://api.openai.com/v1"),
        &["OPENAI_API_KEY"],
    ),
    openai(
        "text-completion-openai",
        D("https://api.openai.com/v1"),
        &["OPENAI_API_KEY"],
    ),
    openai(
        "groq",
        D("https://api.groq.com/openai/v1"),
        &["GROQ_API_KEY"],
    ),
    openai(
        "mistral",
        D("https://api.mistral.ai/v1"),
        &["MISTRAL_API_KEY"],
    ),
    openai(
        "deepseek",
        D("https://api.deepseek.com/beta"),
        &["DEEPSEEK_API_KEY"],
    ),
    openai(
        "together_ai",
        D("https://api.together.ai/v1"),
        &[
            "TOGETHER_API_KEY",
            "TOGETHER_AI_API_KEY",
            "TOGETHERAI_API_KEY",
        ],
    ),
    openai(
        "fireworks_ai",
        D("https://api.fireworks.ai/inference/v1"),
        &[
            "FIREWORKS_API_KEY",
            "FIREWORKS_AI_API_KEY",
            "FIREWORKSAI_API_KEY",
        ],
    ),
    openai("xai", D("https://api.x.ai/v1"), &["XAI_API_KEY"]),
    openai(
        "openrouter",
        D("https://openrouter.ai/api/v1"),
        &["OPENROUTER_API_KEY"],
    ),
    openai(
        "perplexity",
        D("https://api.perplexity.ai"),
        &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"],
    ),
    openai(
        "cerebras",
        D("https://api.cerebras.ai/v1"),
        &["CEREBRAS_API_KEY"],
    ),
    openai(
        "deepinfra",
        D("https://api.deepinfra.com/v1/openai"),
        &["DEEPINFRA_API_KEY"],
    ),
    openai(
        "ollama",
        D("http://localhost:11434/v1"),
        &["OLLAMA_API_KEY"],
    ),
    openai(
        "ollama_chat",
        D("http://localhost:11434/v1"),
        &["OLLAMA_API_KEY"],
    ),
    openai(
        "lm_studio",
        D("http://localhost:1234/v1"),
        &["LM_STUDIO_API_KEY"],
    ),
    openai("hosted_vllm", Required, &["HOSTED_VLLM_API_KEY"]),
    openai("openai_compatible", Required, &[]),
    openai("vllm", Required, &[]),
    Provider {
        name: "azure",
        base: Required,
        auth: Auth::ApiKey,
        key_env: &["AZURE_API_KEY"],
        wire: Wire::Azure,
    },
    Provider {
        name: "azure_ai",
        base: Required,
        auth: Auth::Bearer,
        key_env: &["AZURE_AI_API_KEY"],
        wire: Wire::AzureAi,
    },
    Provider {
        name: "anthropic",
        base: D("https://api.anthropic.com"),
        auth: Auth::XApiKey,
        key_env: &["ANTHROPIC_API_KEY"],
        wire: Wire::Anthropic,
    },
    // The endpoint is `bedrock_endpoint(region)` unless `api_base` or
    // `aws_bedrock_runtime_endpoint` is given (`config::bedrock`); the key variable is a
    // Bedrock API key (sent as a Bearer token instead of signing), LiteLLM's name.
    Provider {
        name: "bedrock",
        base: D("https://bedrock-runtime.{region}.amazonaws.com"),
        auth: Auth::SigV4,
        key_env: &["AWS_BEARER_TOKEN_BEDROCK"],
        wire: Wire::Bedrock,
    },
    // Google AI Studio through its OpenAI-compatible endpoint (chat, streams, embeddings).
    // LiteLLM reads GOOGLE_API_KEY before GEMINI_API_KEY (`llms/gemini/common_utils.py`).
    Provider {
        name: "gemini",
        base: D("https://generativelanguage.googleapis.com/v1beta/openai"),
        auth: Auth::Bearer,
        key_env: &["GOOGLE_API_KEY", "GEMINI_API_KEY"],
        wire: Wire::OpenAi,
    },
    // Vertex AI: the base depends on vertex_location and vertex_project, the auth on
    // service-account credentials; its routes are built by `google::vertex_route`.
    Provider {
        name: "vertex_ai",
        base: D("https://{location}-aiplatform.googleapis.com"),
        auth: Auth::GoogleOAuth,
        key_env: &[],
        wire: Wire::OpenAi,
    },
];

/// Bedrock's runtime endpoint in `region` (LiteLLM's default; China's regions have their own
/// DNS suffix). `region` must be valid ([`valid_aws_region`]): it becomes part of a host name.
pub fn bedrock_endpoint(region: &str) -> String {
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://bedrock-runtime.{region}.{suffix}")
}

/// An AWS region name as LiteLLM accepts one (`[a-z0-9-]+`): anything else could steer the
/// signed request to another host.
pub fn valid_aws_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A Bedrock deployment's AWS credentials and region, for SigV4. Secrets: never printed.
#[derive(Clone, PartialEq, Default)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub region: String,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("region", &self.region)
            .field("session_token", &self.session_token.is_some())
            .finish_non_exhaustive()
    }
}

/// `s` percent-encoded as one URL path segment (everything but `A-Za-z0-9-._~`), as LiteLLM's
/// `urllib.parse.quote(model_id, safe="")`: a Bedrock model id (`…-v1:0`, an ARN with `/`) is
/// one segment of the URL.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// LiteLLM's `AZURE_DEFAULT_API_VERSION`, used when neither `api_version` nor
/// `AZURE_API_VERSION` is set.
pub const AZURE_DEFAULT_API_VERSION: &str = "2025-02-01-preview";

/// The provider of a prefix, if litegate supports it.
pub fn find(name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.name == name)
}

/// The supported prefixes, comma-separated (for messages).
pub fn names() -> String {
    PROVIDERS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where one deployment's calls go and how they are authorised; built once at config load.
#[derive(Clone, PartialEq, Default)]
pub struct Route {
    /// The URL up to the endpoint, without a trailing `/`.
    pub base: String,
    /// `""` or `?api-version=…`.
    pub query: String,
    /// The auth header's name and value, when the deployment has a key.
    pub auth: Option<(&'static str, String)>,
    /// The request and answer format.
    pub wire: Wire,
    /// Bedrock without an API key: the credentials every request is signed with.
    pub aws: Option<AwsCredentials>,
    /// A `vertex_ai` deployment's credentials: a Bearer token minted from them is sent.
    pub google: Option<std::sync::Arc<google::ServiceAccount>>,
    /// Put before the model name in the body (`google/` for Gemini on Vertex).
    pub model_prefix: &'static str,
}

/// The key is a secret: never printed.
impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("base", &self.base)
            .field("query", &self.query)
            .field("auth", &self.auth.as_ref().map(|(h, _)| h))
            .field("wire", &self.wire)
            .field("aws", &self.aws)
            .field("google", &self.google)
            .field("model_prefix", &self.model_prefix)
            .finish()
    }
}

impl Route {
    /// The URL of an endpoint (`chat/completions`, `completions`, `embeddings`; `messages`
    /// for Anthropic; `converse`, `converse-stream` for Bedrock; `rawPredict`/`streamRawPredict`,
    /// a method after `:`, on Vertex).
    pub fn url(&self, endpoint: &str) -> String {
        let sep = if self.wire == Wire::VertexAnthropic {
            ':'
        } else {
            '/'
        };
        // Pushed, not `format!`ed: once per upstream call (issue 17).
        let mut url =
            String::with_capacity(self.base.len() + 1 + endpoint.len() + self.query.len());
        url.push_str(&self.base);
        url.push(sep);
        url.push_str(endpoint);
        url.push_str(&self.query);
        url
    }
}

/// Whether `base`'s host is an Azure OpenAI v1 host (LiteLLM's `is_azure_openai_v1_host`).
fn azure_openai_v1_host(base: &str) -> bool {
    base.parse::<ureq::http::Uri>()
        .ok()
        .and_then(|u| u.host().map(|h| h.to_ascii_lowercase()))
        .is_some_and(|h| h.ends_with(".services.ai.azure.com") || h.ends_with(".openai.azure.com"))
}

impl Provider {
    /// The route of a deployment of this provider: `name` is the model after the prefix,
    /// `api_base`/`api_key`/`api_version` the deployment's own (the key and version already
    /// defaulted from the environment by the caller). `Err` names what is missing. For Bedrock
    /// `name` is the model id and `api_base` the endpoint (`config::bedrock` decides both); the
    /// caller sets `aws` when there is no API key.
    pub fn route(
        &self,
        name: &str,
        api_base: Option<&str>,
        api_key: Option<&str>,
        api_version: Option<&str>,
    ) -> Result<Route, &'static str> {
        if self.auth == Auth::GoogleOAuth {
            return Err("vertex_ai routes need vertex_credentials (google::vertex_route)");
        }
        let base = match (api_base.filter(|b| !b.trim().is_empty()), self.base) {
            (Some(b), _) => b.trim_end_matches('/'),
            (None, Base::Default(d)) => d,
            (None, Base::Local) => "",
            (None, Base::Required) => {
                return Err("api_base is required for this provider");
            }
        };
        let version = |v: Option<&str>| v.map_or(String::new(), |v| format!("?api-version={v}"));
        let (base, query) = match self.wire {
            Wire::OpenAi => (base.to_string(), String::new()),
            Wire::Azure => (
                format!("{base}/openai/deployments/{name}"),
                version(Some(api_version.unwrap_or(AZURE_DEFAULT_API_VERSION))),
            ),
            Wire::AzureAi
                if base.contains("services.ai.azure.com") && !base.ends_with("/models") =>
            {
                (format!("{base}/models"), version(api_version))
            }
            Wire::AzureAi => (base.to_string(), version(api_version)),
            // LiteLLM accepts `https://api.anthropic.com`, `…/v1` and `…/v1/messages`.
            Wire::Anthropic | Wire::VertexAnthropic => {
                let b = base.strip_suffix("/messages").unwrap_or(base);
                let b = b.strip_suffix("/v1").unwrap_or(b);
                (format!("{b}/v1"), String::new())
            }
            Wire::Bedrock => (
                format!("{base}/model/{}", encode_segment(name)),
                String::new(),
            ),
        };
        let auth = match (self.auth, api_key) {
            // LiteLLM's `azure_ai` sends `api-key` to Azure OpenAI v1 hosts
            // (`*.services.ai.azure.com`, `*.openai.azure.com`) and Bearer elsewhere
            // (`llms/azure_ai/common_utils.py`, `api_key_header_for_base`).
            (Auth::Bearer, Some(k))
                if self.wire == Wire::AzureAi && azure_openai_v1_host(&base) =>
            {
                Some(("api-key", k.to_string()))
            }
            (Auth::Bearer, Some(k)) => Some(("authorization", format!("Bearer {k}"))),
            (Auth::ApiKey, Some(k)) => Some(("api-key", k.to_string())),
            (Auth::XApiKey, Some(k)) => Some(("x-api-key", k.to_string())),
            // A Bedrock API key replaces signing.
            (Auth::SigV4, Some(k)) => Some(("authorization", format!("Bearer {k}"))),
            _ => None,
        };
        Ok(Route {
            base,
            query,
            auth,
            wire: self.wire,
            aws: None,
            google: None,
            model_prefix: "",
        })
    }
}

#[cfg(test)]
mod tests;
