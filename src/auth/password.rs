//! Passwords for UI login: argon2id hashes (PHC strings), every run inside a `kdf` slot so
//! memory and CPU stay bounded. Does not decide who may set a password (`http::users`) nor
//! throttle guesses (`http::throttle`).

use crate::error::{Error, Result};

/// An argon2id hash (PHC string) of `pw`, computed in a `kdf` slot (503 when all are busy).
pub fn hash_password(pw: &str) -> Result<String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    crate::kdf::with_slot(|| {
        argon2::Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::internal(format!("argon2: {e}")))
    })?
}

/// Whether `pw` matches the stored hash `phc`; false also when every `kdf` slot stays busy
/// (never a match that was not checked). `try_verify_password` tells busy apart.
pub fn verify_password(pw: &str, phc: &str) -> bool {
    try_verify_password(pw, phc).unwrap_or(false)
}

/// Whether `pw` matches the stored hash `phc`, computed in a `kdf` slot (503 when all are
/// busy). A hash asking for more memory than `kdf::MAX_M_COST_KIB` never matches (the slots'
/// memory bound holds whatever is stored).
pub fn try_verify_password(pw: &str, phc: &str) -> Result<bool> {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let Ok(h) = PasswordHash::new(phc) else {
        return Ok(false);
    };
    let m_cost = argon2::Params::try_from(&h).map(|p| p.m_cost());
    if !m_cost.is_ok_and(|m| m <= crate::kdf::MAX_M_COST_KIB) {
        return Ok(false);
    }
    crate::kdf::with_slot(|| {
        argon2::Argon2::default()
            .verify_password(pw.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        let h = hash_password("hunter2").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("hunter2", &h));
        assert!(!verify_password("hunter3", &h));
        // A stored hash asking for 4 GiB is never run (the kdf memory bound holds).
        let greedy = h.replace("m=19456", "m=4194304");
        assert_ne!(greedy, h);
        assert!(!try_verify_password("hunter2", &greedy).unwrap());
        // Not a PHC string at all: no match, no error.
        assert!(!try_verify_password("hunter2", "plain").unwrap());
    }
}
