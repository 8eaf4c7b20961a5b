//! Token minting and checking: ID tokens (OIDC Core §2, with `at_hash`), JWT access tokens
//! (RFC 9068 profile, `typ: at+jwt`), logout tokens (OIDC Back-Channel Logout §2.4,
//! `typ: logout+jwt`), and verification of access tokens and ID-token hints against the JWKS.

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::error::IdpError;
use crate::keys::{KeyStore, SigningAlg};

/// ID token claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    pub acr: String,
    pub amr: Vec<String>,
    pub sid: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at_hash: Option<String>,
    pub azp: String,
    /// Claims asked for in the ID token with the `claims` parameter.
    #[serde(flatten, default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Access token claims (RFC 9068 §2.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// Token family (revoked together with its refresh tokens).
    pub fid: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub roles: Option<Vec<String>>,
    /// Claims asked for one by one for UserInfo (the `claims` parameter).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub uic: Vec<String>,
}

/// Logout token claims (Back-Channel Logout §2.4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sid: String,
    pub events: serde_json::Value,
}

/// `at_hash`: left half of the hash of the access token, with the hash of the signing algorithm
/// (SHA-256 for ES256/RS256, SHA-512 for EdDSA/Ed25519).
pub fn at_hash(access_token: &str, alg: SigningAlg) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    match alg {
        SigningAlg::ES256 | SigningAlg::RS256 => crate::crypto::left_half_sha256(access_token),
        SigningAlg::EdDSA => {
            let d = sha2::Sha512::digest(access_token.as_bytes());
            e.encode(&d[..32])
        }
    }
}

#[derive(Serialize)]
struct JwsHeaderOut<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

#[derive(Deserialize)]
struct JwsHeaderIn {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct TimeClaims {
    iss: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
}

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn unb64(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}

/// Sign claims (JWS compact serialization) with the active key of `alg` and the given `typ`.
/// The key material is parsed once at load time, so this is one signature operation.
pub fn sign<T: Serialize>(keys: &KeyStore, alg: SigningAlg, typ: &str, claims: &T) -> Result<String, IdpError> {
    let key = keys.active(alg).ok_or_else(|| IdpError::Key(format!("no active {} key", alg.as_str())))?;
    let header = serde_json::to_vec(&JwsHeaderOut { alg: alg.as_str(), kid: &key.meta.kid, typ })?;
    let mut out = b64(&header);
    out.push('.');
    out.push_str(&b64(&serde_json::to_vec(claims)?));
    let sig = key.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&b64(&sig));
    Ok(out)
}

/// Why a presented JWT was rejected.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("wrong token type")]
    WrongType,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verify a JWT signed by this provider: key by `kid`, algorithm pinned to the key's (no `none`,
/// no algorithm confusion), `crit` refused, `typ` checked, signature, issuer, `nbf`, and expiry
/// when `check_exp`.
pub fn verify<T: serde::de::DeserializeOwned>(
    keys: &KeyStore,
    issuer: &str,
    token: &str,
    typ: &str,
    check_exp: bool,
) -> Result<T, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let header: JwsHeaderIn = unb64(h).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(TokenError::Malformed)?;
    if header.crit.is_some() {
        return Err(TokenError::Invalid("crit not supported".into()));
    }
    let key = keys.by_kid(header.kid.as_deref().ok_or(TokenError::UnknownKey)?).ok_or(TokenError::UnknownKey)?;
    if header.alg != key.meta.alg.as_str() {
        return Err(TokenError::Invalid("algorithm mismatch".into()));
    }
    if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}"))) {
        return Err(TokenError::WrongType);
    }
    let sig = unb64(s).ok_or(TokenError::Malformed)?;
    if !key.verify(&token.as_bytes()[..h.len() + 1 + p.len()], &sig) {
        return Err(TokenError::Invalid("bad signature".into()));
    }
    let payload = unb64(p).ok_or(TokenError::Malformed)?;
    let tc: TimeClaims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if tc.iss.as_deref() != Some(issuer) {
        return Err(TokenError::Invalid("wrong issuer".into()));
    }
    let now = crate::now();
    if check_exp && tc.exp.is_none_or(|e| e <= now) {
        return Err(TokenError::Invalid("expired".into()));
    }
    if tc.nbf.is_some_and(|n| n > now + 30) {
        return Err(TokenError::Invalid("not yet valid".into()));
    }
    serde_json::from_slice(&payload).map_err(|e| TokenError::Invalid(e.to_string()))
}

/// Verify an access token (signature, `typ: at+jwt`, issuer, expiry). Revocation is checked by
/// the caller against the store.
pub fn verify_access(keys: &KeyStore, issuer: &str, token: &str) -> Result<AccessClaims, TokenError> {
    verify(keys, issuer, token, "at+jwt", true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_access_token() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyStore::open(dir.path(), &[SigningAlg::ES256, SigningAlg::EdDSA], 3600).unwrap();
        let now = crate::now();
        let c = AccessClaims {
            iss: "https://id.example".into(),
            sub: "u1".into(),
            aud: "app".into(),
            client_id: "app".into(),
            exp: now + 60,
            iat: now,
            jti: "j1".into(),
            fid: "f1".into(),
            scope: "openid".into(),
            auth_time: None,
            acr: None,
            sid: None,
            roles: None,
            uic: Vec::new(),
        };
        for alg in [SigningAlg::ES256, SigningAlg::EdDSA] {
            let t = sign(&keys, alg, "at+jwt", &c).unwrap();
            let back = verify_access(&keys, "https://id.example", &t).unwrap();
            assert_eq!(back.sub, "u1");
            assert!(matches!(verify_access(&keys, "https://other", &t), Err(TokenError::Invalid(_))));
            // An ID token is not an access token.
            let id = sign(&keys, alg, "JWT", &c).unwrap();
            assert!(matches!(verify_access(&keys, "https://id.example", &id), Err(TokenError::WrongType)));
            // Tampered payload.
            let mut parts: Vec<String> = t.split('.').map(String::from).collect();
            parts[1] = parts[1].chars().rev().collect();
            assert!(verify_access(&keys, "https://id.example", &parts.join(".")).is_err());
        }
        let expired = AccessClaims { exp: now - 10, ..c };
        let t = sign(&keys, SigningAlg::ES256, "at+jwt", &expired).unwrap();
        assert!(verify_access(&keys, "https://id.example", &t).is_err());
    }

    #[test]
    fn rejects_alg_none_and_alg_confusion_and_crit() {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyStore::open(dir.path(), &[SigningAlg::ES256, SigningAlg::EdDSA], 3600).unwrap();
        let es = keys.active(SigningAlg::ES256).unwrap().meta.kid.clone();
        let ed = keys.active(SigningAlg::EdDSA).unwrap().meta.kid.clone();
        let payload = e.encode(br#"{"iss":"i","exp":99999999999}"#);
        let none = format!("{}.{payload}.", e.encode(format!(r#"{{"alg":"none","kid":"{es}","typ":"JWT"}}"#)));
        assert!(verify::<serde_json::Value>(&keys, "i", &none, "JWT", true).is_err());
        // An EdDSA signature presented as ES256 under the EdDSA kid.
        let good = sign(&keys, SigningAlg::EdDSA, "JWT", &serde_json::json!({"iss": "i", "exp": 99999999999i64})).unwrap();
        let sig = good.split('.').nth(2).unwrap();
        let confused =
            format!("{}.{}.{sig}", e.encode(format!(r#"{{"alg":"ES256","kid":"{ed}","typ":"JWT"}}"#)), good.split('.').nth(1).unwrap());
        assert!(verify::<serde_json::Value>(&keys, "i", &confused, "JWT", true).is_err());
        let crit = format!("{}.{payload}.{sig}", e.encode(format!(r#"{{"alg":"EdDSA","kid":"{ed}","typ":"JWT","crit":["x"]}}"#)));
        assert!(verify::<serde_json::Value>(&keys, "i", &crit, "JWT", true).is_err());
        assert!(verify::<serde_json::Value>(&keys, "i", &good, "JWT", true).is_ok());
        assert!(verify::<serde_json::Value>(&keys, "i", "a.b", "JWT", true).is_err());
        assert!(verify::<serde_json::Value>(&keys, "i", "a.b.c.d", "JWT", true).is_err());
    }

    #[test]
    fn at_hash_example() {
        // OIDC Core A.3-style check: 16 bytes → 22 base64url characters for SHA-256.
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", SigningAlg::ES256), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash("x", SigningAlg::EdDSA).len(), 43);
    }
}
