//! The virtual key's format: minting (`sk-` + 192 random bits), the stored token (SHA-256 hex,
//! LiteLLM's format), the public `sk-...abcd` name, and where a request presents its key (the
//! four header forms of API.md §2). Does not look keys up: that is `db::key_check`, called by
//! `auth::authenticate`.

use crate::util;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tiny_http::HeaderFields;

/// A new virtual key: `sk-` + 192 random bits, url-safe base64 (32 chars).
pub fn new_raw_key() -> String {
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    format!("sk-{}", base64url(&b))
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        let chars = c.len() + 1;
        for i in 0..chars {
            s.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s
}

/// `token`: lowercase hex SHA-256 of the whole raw key (LiteLLM's stored format).
pub fn hash_key(raw: &str) -> String {
    util::hex(&Sha256::digest(raw.as_bytes()))
}

/// A caller may name a key by its raw value or by its token (API.md §8).
pub fn token_of(key_or_token: &str) -> String {
    let s = key_or_token.trim();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) && !s.starts_with("sk-") {
        s.to_ascii_lowercase()
    } else {
        hash_key(s)
    }
}

/// `sk-...` + the last 4 characters: the only form of a key that is ever shown again or logged.
pub fn key_name(raw: &str) -> String {
    let tail: String = raw
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("sk-...{tail}")
}

/// `Bearer x` (any case, or a bare `Bearer`) -> `x`; anything else as is, trimmed. Compares
/// bytes: a value whose 6th byte falls inside a character is not `Bearer` (and is no panic).
fn strip_bearer(v: &str) -> &str {
    let t = v.trim();
    if t.len() >= 6 && t.as_bytes()[..6].eq_ignore_ascii_case(b"bearer") {
        let rest = &t[6..];
        if rest.is_empty() || rest.starts_with(' ') {
            return rest.trim();
        }
    }
    t
}

/// Pulls the presented key out of the four header forms of API.md §2 (one allocation: the key).
pub fn presented_key(headers: &HeaderFields) -> Option<String> {
    let get = |name: &str| headers.get(name).map(strip_bearer);
    ["authorization", "x-litellm-api-key", "api-key", "x-api-key"]
        .into_iter()
        .filter_map(get)
        .find(|v| !v.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_format() {
        let k = new_raw_key();
        assert!(k.starts_with("sk-") && k.len() == 35, "{k}");
        assert!(k[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(new_raw_key(), k);
        assert_eq!(hash_key("sk-1234").len(), 64);
        assert_eq!(key_name("sk-abcdefgh"), "sk-...efgh");
        assert_eq!(token_of(&hash_key("sk-x")), hash_key("sk-x"));
        assert_eq!(token_of("sk-x"), hash_key("sk-x"));
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn presented_key_forms() {
        let h = |k: &str, v: &str| HeaderFields::from(vec![(k, v)]);
        assert_eq!(
            presented_key(&h("Authorization", "Bearer sk-a")).as_deref(),
            Some("sk-a")
        );
        assert_eq!(
            presented_key(&h("x-litellm-api-key", "sk-b")).as_deref(),
            Some("sk-b")
        );
        assert_eq!(
            presented_key(&h("api-key", "sk-c")).as_deref(),
            Some("sk-c")
        );
        assert_eq!(
            presented_key(&h("X-API-Key", "sk-d")).as_deref(),
            Some("sk-d")
        );
        assert_eq!(presented_key(&h("Authorization", "Bearer ")), None);
        // A multi-byte character across the 6th byte was a slicing panic.
        assert_eq!(
            presented_key(&h("Authorization", "beareé sk-x")).as_deref(),
            Some("beareé sk-x")
        );
    }

    /// The header reading before it borrowed (two copies per header), kept as the oracle.
    fn presented_key_before(headers: &[(String, String)]) -> Option<String> {
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        if let Some(v) = get("authorization") {
            let v = strip_bearer(&v);
            if !v.is_empty() {
                return Some(v.to_string());
            }
        }
        for h in ["x-litellm-api-key", "api-key", "x-api-key"] {
            if let Some(v) = get(h) {
                let v = strip_bearer(&v);
                if !v.is_empty() {
                    return Some(v.to_string());
                }
            }
        }
        None
    }

    proptest::proptest! {
        #[test]
        fn presented_key_reads_as_before(
            headers in proptest::collection::vec((
                proptest::prop_oneof![
                    proptest::strategy::Just("Authorization".to_string()),
                    proptest::strategy::Just("authorization".to_string()),
                    proptest::strategy::Just("X-LiteLLM-API-Key".to_string()),
                    proptest::strategy::Just("api-key".to_string()),
                    proptest::strategy::Just("x-api-key".to_string()),
                    proptest::strategy::Just("content-type".to_string()),
                ],
                proptest::prop_oneof![
                    "(Bearer|bearer|BEARER|Bearerx)?[ \t]{0,2}(sk-[a-z]{0,3})?[ \t]{0,2}",
                    "\\PC{0,8}",
                ],
            ), 0..5),
        ) {
            let fields: HeaderFields = headers.iter().map(|(k, v)| (k, v)).collect();
            proptest::prop_assert_eq!(presented_key(&fields), presented_key_before(&headers));
        }
    }
}
