//! `X-Govgate-Assertion`: a short-lived ES256 JWT (audience = the app) that tells an app who the
//! gateway let through. The P-256 key is generated into the data directory on first use (0600)
//! and its public half is published as a JWK Set at `/.govgate/jwks.json` on every app host.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use sha2::{Digest, Sha256};
use std::path::Path;

/// The `iss` of every assertion.
pub const ISSUER: &str = "govgate";

#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("assertion key file: {0}")]
    Io(#[from] std::io::Error),
    #[error("assertion key: {0}")]
    Key(String),
}

pub struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    pub kid: String,
    /// Base64url of the JWT header, computed once.
    header: String,
    jwks: String,
}

impl Signer {
    /// Loads `file` (PKCS#8 DER), or generates it (mode 0600).
    pub fn load_or_create(file: &Path) -> Result<Self, AssertionError> {
        let rng = SystemRandom::new();
        let pkcs8 = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc =
                    EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|e| AssertionError::Key(e.to_string()))?;
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(file, doc.as_ref())?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(e.into()),
        };
        Self::from_pkcs8(&pkcs8)
    }

    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, AssertionError> {
        let rng = SystemRandom::new();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng).map_err(|e| AssertionError::Key(e.to_string()))?;
        let public = key.public_key().as_ref();
        if public.len() != 65 {
            return Err(AssertionError::Key("unexpected public key length".into()));
        }
        let kid = B64.encode(&Sha256::digest(public)[..12]);
        let header = B64.encode(serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": kid }).to_string());
        let jwks = serde_json::json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": B64.encode(&public[1..33]), "y": B64.encode(&public[33..65]),
        }]})
        .to_string();
        Ok(Signer { key, rng, kid, header, jwks })
    }

    /// The JWK Set apps verify assertions with.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    /// Signs `claims` (a JSON object) as a compact JWS.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, AssertionError> {
        let mut out = String::with_capacity(512);
        out.push_str(&self.header);
        out.push('.');
        B64.encode_string(claims.to_string(), &mut out);
        let sig = self.key.sign(&self.rng, out.as_bytes()).map_err(|e| AssertionError::Key(e.to_string()))?;
        out.push('.');
        B64.encode_string(sig.as_ref(), &mut out);
        Ok(out)
    }
}

pub(super) fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(file)?.write_all(bytes)
}

/// The claims of an assertion: who, how strongly, their roles and only the claims the app's
/// policy lets through.
pub fn claims(
    app: &str,
    subject: &str,
    acr: &str,
    roles: &[String],
    extra: &serde_json::Map<String, serde_json::Value>,
    now: i64,
    ttl: i64,
) -> serde_json::Value {
    let mut m = extra.clone();
    m.insert("iss".into(), ISSUER.into());
    m.insert("aud".into(), app.into());
    m.insert("sub".into(), subject.into());
    m.insert("acr".into(), acr.into());
    m.insert("roles".into(), serde_json::json!(roles));
    m.insert("iat".into(), now.into());
    m.insert("nbf".into(), now.into());
    m.insert("exp".into(), (now + ttl).into());
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, decode_header, jwk::JwkSet, DecodingKey, Validation};

    #[test]
    fn assertions_verify_with_the_published_jwks_and_only_for_their_audience() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sso/assertion-key.p8");
        let s = Signer::load_or_create(&file).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(Signer::load_or_create(&file).unwrap().kid, s.kid, "the key is kept across restarts");
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let mut extra = serde_json::Map::new();
        extra.insert("name".into(), "张三".into());
        let jwt = s.sign(&claims("shebao", "u1", "pwd", &["staff".into()], &extra, now, 60)).unwrap();

        let jwks: JwkSet = serde_json::from_str(s.jwks()).unwrap();
        let kid = decode_header(&jwt).unwrap().kid.unwrap();
        let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
        let mut v = Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_audience(&["shebao"]);
        v.set_issuer(&[ISSUER]);
        let c = decode::<serde_json::Value>(&jwt, &key, &v).unwrap().claims;
        assert_eq!((c["sub"].as_str(), c["name"].as_str(), c["roles"][0].as_str()), (Some("u1"), Some("张三"), Some("staff")));
        v.set_audience(&["tax"]);
        assert!(decode::<serde_json::Value>(&jwt, &key, &v).is_err(), "another app's assertion is refused");
        let mut forged = jwt.clone();
        forged.replace_range(forged.len() - 4.., "AAAA");
        v.set_audience(&["shebao"]);
        assert!(decode::<serde_json::Value>(&forged, &key, &v).is_err());
    }
}
