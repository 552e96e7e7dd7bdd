//! A `bedrock/…` deployment's route (issue 13): which Bedrock model id its `litellm_params.model`
//! names (LiteLLM's forms `bedrock/<id>`, `bedrock/converse/<id>`, `bedrock/<region>/<id>`;
//! `bedrock/invoke/…` and other sub-routes are refused), its endpoint (`api_base`, else
//! `aws_bedrock_runtime_endpoint`, else `AWS_BEDROCK_RUNTIME_ENDPOINT`, else the region's
//! default) and its credentials: a Bedrock API key (`api_key` / `AWS_BEARER_TOKEN_BEDROCK`,
//! sent as a Bearer token), else `aws_access_key_id` / `aws_secret_access_key` /
//! `aws_session_token` / `aws_region_name` from `litellm_params`, else the standard AWS
//! variables (LiteLLM's names and order). Anything missing stops the start naming the field.
//! Reads the environment only through the config's snapshot (`Reader::var`).

use super::yaml::Reader;
use super::ConfigError;
use crate::provider::{self, AwsCredentials, Route};

/// The AWS settings of one `litellm_params`, resolved (`os.environ/NAME` done).
#[derive(Default)]
pub(super) struct AwsParams {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region_name: Option<String>,
    pub runtime_endpoint: Option<String>,
}

impl AwsParams {
    /// Whether any of them is set (they mean nothing to other providers).
    pub fn any(&self) -> bool {
        self.access_key_id.is_some()
            || self.secret_access_key.is_some()
            || self.session_token.is_some()
            || self.region_name.is_some()
            || self.runtime_endpoint.is_some()
    }
}

/// The region written as the first segment of `bedrock/<region>/<id>` (LiteLLM's form).
fn region_segment(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && provider::valid_aws_region(s)
        && parts[0].len() == 2
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
}

/// The model id and the region written in `name` (the model after `bedrock/`), or why the
/// name is refused.
pub(super) fn model_id(name: &str) -> Result<(&str, Option<&str>), String> {
    let id = name.strip_prefix("converse/").unwrap_or(name);
    if id.starts_with("invoke/") {
        return Err(
            "bedrock/invoke/… (the InvokeModel API) is not supported by litegate; \
                    use bedrock/<modelId> or bedrock/converse/<modelId> (the Converse API)"
                .into(),
        );
    }
    let (id, region) = match id.split_once('/') {
        Some((r, rest)) if region_segment(r) => (rest, Some(r)),
        _ => (id, None),
    };
    if id.contains('*') {
        return Err(
            "a bedrock deployment names one model id (it is part of the URL); \
                    wildcards are not supported"
                .into(),
        );
    }
    if id.is_empty() || (id.contains('/') && !id.starts_with("arn:")) {
        return Err(format!(
            "bedrock/{name}: expected bedrock/<modelId> or bedrock/converse/<modelId> \
             (sub-routes such as {}/ are not supported)",
            id.split('/').next().unwrap_or(id)
        ));
    }
    Ok((id, region))
}

/// The route of a bedrock deployment. `field` words a field of this entry's `litellm_params`
/// for errors; `api_base`/`api_key` are the deployment's (the key already defaulted from
/// `AWS_BEARER_TOKEN_BEDROCK`).
pub(super) fn route(
    r: &Reader,
    field: &dyn Fn(&str) -> String,
    name: &str,
    api_base: Option<&str>,
    api_key: Option<&str>,
    aws: AwsParams,
) -> Result<Route, ConfigError> {
    let (id, region_in_name) = model_id(name).map_err(|m| r.error(&field("model"), m))?;
    let api_key = api_key.filter(|k| !k.is_empty());
    // An empty variable is as if unset.
    let var = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| r.var(n).filter(|v| !v.is_empty()))
            .map(str::to_string)
    };
    // An ARN names its region (`arn:aws:bedrock:us-east-1:…`), as LiteLLM reads it.
    let region_in_arn = id
        .strip_prefix("arn:")
        .and_then(|a| a.split(':').nth(2))
        .filter(|r| !r.is_empty());
    let region = aws
        .region_name
        .or_else(|| region_in_name.or(region_in_arn).map(str::to_string))
        .or_else(|| var(&["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"]));
    let endpoint = api_base
        .filter(|b| !b.trim().is_empty())
        .map(str::to_string)
        .or(aws.runtime_endpoint)
        .or_else(|| var(&["AWS_BEDROCK_RUNTIME_ENDPOINT"]));
    let region = match region {
        Some(reg) if provider::valid_aws_region(&reg) => Some(reg),
        Some(reg) => {
            return Err(r.error(
                &field("aws_region_name"),
                format_args!("'{reg}' is not an AWS region name"),
            ))
        }
        None => None,
    };
    let endpoint = match (endpoint, &region) {
        (Some(e), _) => e,
        (None, Some(reg)) => provider::bedrock_endpoint(reg),
        (None, None) => {
            return Err(r.error(
                &field("aws_region_name"),
                "required for bedrock (or AWS_REGION_NAME / AWS_REGION / AWS_DEFAULT_REGION, \
                 or an api_base)",
            ))
        }
    };
    let p = provider::find("bedrock").ok_or_else(|| r.error(&field("model"), "no bedrock"))?;
    let mut route = p
        .route(id, Some(&endpoint), api_key, None)
        .map_err(|m| r.error(&field("api_base"), m))?;
    if api_key.is_some() {
        return Ok(route);
    }
    // SigV4: the signature names the region, so one is needed even with a custom endpoint.
    let Some(region) = region else {
        return Err(r.error(
            &field("aws_region_name"),
            "required for bedrock (or AWS_REGION_NAME / AWS_REGION / AWS_DEFAULT_REGION)",
        ));
    };
    let access_key_id = aws
        .access_key_id
        .or_else(|| var(&["AWS_ACCESS_KEY_ID"]))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            r.error(
                &field("aws_access_key_id"),
                "required for bedrock (or AWS_ACCESS_KEY_ID, or a Bedrock api_key)",
            )
        })?;
    let secret_access_key = aws
        .secret_access_key
        .or_else(|| var(&["AWS_SECRET_ACCESS_KEY"]))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            r.error(
                &field("aws_secret_access_key"),
                "required for bedrock (or AWS_SECRET_ACCESS_KEY)",
            )
        })?;
    let session_token = aws
        .session_token
        .or_else(|| var(&["AWS_SESSION_TOKEN"]))
        .filter(|s| !s.is_empty());
    route.aws = Some(AwsCredentials {
        access_key_id,
        secret_access_key,
        session_token,
        region,
    });
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_as_litellm_writes_them() {
        fn ok(n: &str) -> (&str, Option<&str>) {
            model_id(n).expect(n)
        }
        assert_eq!(
            ok("anthropic.claude-3-5-haiku-20241022-v1:0"),
            ("anthropic.claude-3-5-haiku-20241022-v1:0", None)
        );
        assert_eq!(
            ok("converse/us.anthropic.claude-3-5-haiku-20241022-v1:0"),
            ("us.anthropic.claude-3-5-haiku-20241022-v1:0", None)
        );
        assert_eq!(
            ok("us-west-2/meta.llama3-8b-instruct-v1:0"),
            ("meta.llama3-8b-instruct-v1:0", Some("us-west-2"))
        );
        assert_eq!(
            ok("arn:aws:bedrock:us-east-1:1:inference-profile/x").0,
            "arn:aws:bedrock:us-east-1:1:inference-profile/x"
        );
        for bad in [
            "invoke/anthropic.claude-v2",
            "converse/invoke/x",
            "*",
            "nova/x",
            "",
        ] {
            assert!(model_id(bad).is_err(), "{bad}");
        }
        assert!(model_id("invoke/x").unwrap_err().contains("not supported"));
    }
}
