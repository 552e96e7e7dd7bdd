//! Secrets at rest (issue 15 item 3): LiteLLM's own scheme for the `litellm_params` of models
//! stored in the database (`common_utils/encrypt_decrypt_utils.py`), so rows carry over between
//! LiteLLM and litegate in both directions: a NaCl SecretBox (XSalsa20-Poly1305, RustCrypto's
//! `crypto_secretbox`) keyed by SHA-256 of `LITELLM_SALT_KEY`, else of the master key; the
//! stored text is base64url (padded) of nonce (24 bytes) ‖ tag ‖ ciphertext, as PyNaCl's
//! `SecretBox.encrypt` lays it out; `decrypt_params` / `encrypt_params` apply it to every string
//! value of a `litellm_params` object, as LiteLLM does. A leaf: no I/O, nothing logged (the key and plaintexts are
//! never printed: `SaltKey`'s `Debug` shows nothing).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

const NONCE: usize = 24;
const TAG: usize = 16;

/// base64url, padding optional on input (Python's `urlsafe_b64decode` is given padded text;
/// a row written elsewhere may have lost it).
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The secret the box key is derived from (`LITELLM_SALT_KEY`, else the master key).
#[derive(Clone)]
pub struct SaltKey(String);

impl std::fmt::Debug for SaltKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SaltKey(..)")
    }
}

impl SaltKey {
    pub fn new(secret: impl Into<String>) -> SaltKey {
        SaltKey(secret.into())
    }

    fn cipher(&self) -> XSalsa20Poly1305 {
        let key = Sha256::digest(self.0.as_bytes());
        XSalsa20Poly1305::new(&key)
    }

    /// Encrypts `plain` with a fresh random nonce: base64url(nonce ‖ box).
    pub fn encrypt(&self, plain: &str) -> String {
        use rand::RngCore;
        let mut nonce = [0u8; NONCE];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.encrypt_with(plain, nonce)
    }

    fn encrypt_with(&self, plain: &str, nonce: [u8; NONCE]) -> String {
        let sealed = self
            .cipher()
            .encrypt(&nonce.into(), plain.as_bytes())
            // Encryption of an in-memory buffer cannot fail (no length limit applies here).
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        URL_SAFE.encode(out)
    }

    /// Decrypts a stored value; `None` when it is not this key's box (wrong key, tampered, not
    /// base64, or not UTF-8). An empty value is the empty string, as LiteLLM's
    /// `decrypt_value`.
    pub fn decrypt(&self, stored: &str) -> Option<String> {
        let bytes = URL_SAFE_LENIENT
            .decode(stored)
            .or_else(|_| STANDARD.decode(stored))
            .ok()?;
        if bytes.is_empty() {
            return Some(String::new());
        }
        if bytes.len() < NONCE + TAG {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE);
        let nonce: [u8; NONCE] = nonce.try_into().ok()?;
        let plain = self.cipher().decrypt(&nonce.into(), sealed).ok()?;
        String::from_utf8(plain).ok()
    }
}

/// The stored `litellm_params` (JSON text, string values encrypted) as plain values; the
/// fields that cannot be decrypted are named in the error.
pub fn decrypt_params(salt: Option<&SaltKey>, stored: &str) -> std::result::Result<Value, String> {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(stored) else {
        return Err("litellm_params: not a JSON object".into());
    };
    let Some(salt) = salt else {
        return Err("no LITELLM_SALT_KEY and no configured master key to decrypt it with".into());
    };
    let mut out = Map::new();
    let mut bad = Vec::new();
    for (k, v) in m {
        match v {
            Value::String(s) => match salt.decrypt(&s) {
                Some(p) => {
                    out.insert(k, Value::String(p));
                }
                None => bad.push(k),
            },
            other => {
                out.insert(k, other);
            }
        }
    }
    if bad.is_empty() {
        Ok(Value::Object(out))
    } else {
        Err(format!(
            "litellm_params {} cannot be decrypted with this instance's LITELLM_SALT_KEY (or \
             master key): set the key they were stored with, or give them again with \
             /model/update",
            bad.join(", ")
        ))
    }
}

/// Plain `litellm_params` encrypted for storage: every string value, as LiteLLM does.
pub fn encrypt_params(salt: &SaltKey, plain: &Map<String, Value>) -> Map<String, Value> {
    plain
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => Value::String(salt.encrypt(s)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by PyNaCl 1.5 as LiteLLM does it: `SecretBox(sha256(b"sk-test-salt").digest())
    /// .encrypt(b"sk-upstream-secret", nonce=bytes(range(24)))`, base64url.
    const PYNACL: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXSVoB2TJXKyLujmNBO_R5b-gMShFfg0QhpCpK5Ja7-SPLbQ==";

    #[test]
    fn matches_litellm_byte_for_byte() {
        let k = SaltKey::new("sk-test-salt");
        let nonce: [u8; 24] = std::array::from_fn(|i| i as u8);
        assert_eq!(k.encrypt_with("sk-upstream-secret", nonce), PYNACL);
        assert_eq!(k.decrypt(PYNACL).as_deref(), Some("sk-upstream-secret"));
    }

    #[test]
    fn round_trip_fresh_nonces_and_refusals() {
        let k = SaltKey::new("salt");
        let a = k.encrypt("secret");
        let b = k.encrypt("secret");
        assert_ne!(a, b, "a fresh nonce per value");
        assert!(!a.contains("secret"));
        assert_eq!(k.decrypt(&a).as_deref(), Some("secret"));
        assert_eq!(
            k.decrypt(a.trim_end_matches('=')).as_deref(),
            Some("secret")
        );
        assert_eq!(SaltKey::new("other").decrypt(&a), None, "wrong key");
        let mut t = a.into_bytes();
        t[30] = if t[30] == b'A' { b'B' } else { b'A' };
        assert_eq!(k.decrypt(&String::from_utf8(t).unwrap()), None, "tampered");
        assert_eq!(k.decrypt("gpt-4o"), None, "not a box");
        assert_eq!(k.decrypt("").as_deref(), Some(""));
        assert_eq!(format!("{k:?}"), "SaltKey(..)");
    }
}
