//! SigV4 signatures for Bedrock requests, made by AWS's own `aws-sigv4` crate (what AWS's Rust
//! SDK signs with; no hand-rolled HMAC or canonicalisation here). Owns only the setup: which
//! headers are signed (`host`, `content-type`, and the `x-amz-date` / `x-amz-security-token`
//! the signer adds), the service name (`bedrock`), the default settings (the path
//! double-encoded as botocore does for every service but S3, the payload hashed but not sent
//! as a header). A unit test holds the setup to AWS's published test vectors.

use crate::provider::AwsCredentials;
use aws_sigv4::http_request::{sign as sigv4, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use std::time::SystemTime;

/// The service name Bedrock's runtime signs under (botocore's `signingName`).
pub const SERVICE: &str = "bedrock";

/// The headers to add to a request so that it is signed: `x-amz-date`, `authorization` and,
/// with a session token, `x-amz-security-token`. `headers` are the ones sent that are signed
/// (lower-case names; `host` among them); `url` is as sent (already percent-encoded).
/// The error names no secret.
pub fn headers(
    creds: &AwsCredentials,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, String> {
    let identity = aws_credential_types::Credentials::new(
        creds.access_key_id.as_str(),
        creds.secret_access_key.as_str(),
        creds.session_token.clone(),
        None,
        "litegate-config",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&creds.region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("signing setup: {e}"))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| format!("signing: {e}"))?;
    let (instructions, _signature) = sigv4(request, &params)
        .map_err(|e| format!("signing: {e}"))?
        .into_parts();
    let (added, _params) = instructions.into_parts();
    Ok(added
        .into_iter()
        .map(|h| (h.name(), h.value().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2015-08-30T12:36:00Z, the time of AWS's SigV4 test suite.
    fn suite_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn suite_creds(token: Option<&str>) -> AwsCredentials {
        AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
            region: "us-east-1".into(),
        }
    }

    fn get<'a>(h: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        h.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// AWS's published SigV4 test suite (`aws-signing-test-suite/v4/post-vanilla` and
    /// `get-vanilla-with-session-token`, the expected `Authorization` copied from it): our
    /// setup of the signer produces AWS's signatures, so the fake Bedrock's check (which
    /// recomputes them independently) is not circular.
    #[test]
    fn the_signer_setup_matches_aws_test_vectors() {
        let h = headers(
            &suite_creds(None),
            "service",
            "POST",
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
            b"",
            suite_time(),
        )
        .expect("signed");
        assert_eq!(get(&h, "x-amz-date"), Some("20150830T123600Z"));
        assert_eq!(
            get(&h, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date, \
                 Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            )
        );
        assert_eq!(get(&h, "x-amz-security-token"), None);
        let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        let h = headers(
            &suite_creds(Some(token)),
            "service",
            "GET",
            "https://example.amazonaws.com/",
            &[("host", "example.amazonaws.com")],
            b"",
            suite_time(),
        )
        .expect("signed");
        assert_eq!(get(&h, "x-amz-security-token"), Some(token));
        assert_eq!(
            get(&h, "authorization"),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                 SignedHeaders=host;x-amz-date;x-amz-security-token, \
                 Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
            )
        );
    }
}
