//! Password hashing with argon2id (RFC 9106) in PHC string format.
//!
//! Production parameters ([`Argon2Params::PRODUCTION`]): m = 19 456 KiB (19 MiB), t = 2,
//! p = 1 — the OWASP Password Storage Cheat Sheet minimum for argon2id. Tests use
//! [`Argon2Params::TEST`] to stay fast. Parameters are stored in each hash, so raising them later
//! only affects new hashes (re-hash on next login is a future item).

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::Deserialize;

use crate::error::IdpError;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Argon2Params {
    pub const PRODUCTION: Argon2Params = Argon2Params { m_cost: 19_456, t_cost: 2, p_cost: 1 };
    pub const TEST: Argon2Params = Argon2Params { m_cost: 64, t_cost: 1, p_cost: 1 };
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self::PRODUCTION
    }
}

fn hasher(p: Argon2Params) -> Result<Argon2<'static>, IdpError> {
    let params = Params::new(p.m_cost, p.t_cost, p.p_cost, None).map_err(|e| IdpError::Password(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash a password with argon2id and a random 16-byte salt.
pub fn hash_password(password: &str, p: Argon2Params) -> Result<String, IdpError> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(hasher(p)?.hash_password(password.as_bytes(), &salt).map_err(|e| IdpError::Password(e.to_string()))?.to_string())
}

/// Verify a password against a PHC string. Comparison is constant-time inside `argon2`.
/// Unparseable hashes verify as false.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) if h.algorithm.as_str() == "argon2id" => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        _ => false,
    }
}

/// A dummy verification with the same cost, run when the account does not exist, so that
/// response time does not reveal which usernames exist.
pub fn dummy_verify(p: Argon2Params) {
    if let Ok(h) = hash_password("dummy-password", p) {
        let _ = verify_password("not-the-password", &h);
    }
}

/// Password policy: 8–128 characters, at least two of letters / digits / other.
pub fn check_policy(pw: &str) -> Result<(), &'static str> {
    let n = pw.chars().count();
    if !(8..=128).contains(&n) {
        return Err("password_length");
    }
    let classes = [pw.chars().any(|c| c.is_alphabetic()), pw.chars().any(|c| c.is_ascii_digit()), pw.chars().any(|c| !c.is_alphanumeric())];
    if classes.iter().filter(|x| **x).count() < 2 {
        return Err("password_classes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse 1", Argon2Params::TEST).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(verify_password("correct horse 1", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn policy() {
        assert!(check_policy("short1").is_err());
        assert!(check_policy("onlyletters").is_err());
        assert!(check_policy("letters123").is_ok());
    }
}
