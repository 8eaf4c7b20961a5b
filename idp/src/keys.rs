//! Signing keys and the JWKS.
//!
//! Keys are generated on first start into `<data_dir>/keys/` (directory 0700, each PEM 0600,
//! PKCS#8), one active key per algorithm (ES256 by default; RS256 and EdDSA available).
//! [`KeyStore::rotate`] adds a new active key; the old one is marked retired and stays in the JWKS
//! (and usable for verification) until `retired_at + retention`, i.e. until every token it
//! signed has expired; then [`KeyStore::prune`] deletes it.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use crate::error::IdpError;

/// The JWS algorithms the provider can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    ES256,
    RS256,
    EdDSA,
}

impl SigningAlg {
    pub fn jwt_alg(self) -> Algorithm {
        match self {
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::EdDSA => Algorithm::EdDSA,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ES256" => Some(SigningAlg::ES256),
            "RS256" => Some(SigningAlg::RS256),
            "EdDSA" => Some(SigningAlg::EdDSA),
            _ => None,
        }
    }
}

/// Metadata kept in `keys/keys.json` (no secret material).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyMeta {
    pub kid: String,
    pub alg: SigningAlg,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// The in-memory key material, parsed once (signing is on the hot path of every grant).
pub enum KeyMaterial {
    /// ES256 with `ring` (about 5× faster than the pure-Rust implementation) and the SEC1
    /// public point for verification.
    Es256(Box<ring::signature::EcdsaKeyPair>, Vec<u8>),
    Ed25519(Box<ed25519_dalek::SigningKey>, ed25519_dalek::VerifyingKey),
    Rs256(Box<rsa::pkcs1v15::SigningKey<sha2::Sha256>>, Box<rsa::pkcs1v15::VerifyingKey<sha2::Sha256>>),
}

/// One loaded key.
pub struct SigningKey {
    pub meta: KeyMeta,
    pub material: KeyMaterial,
    /// Public JWK (with `kid`, `alg`, `use`).
    pub jwk: serde_json::Value,
}

impl SigningKey {
    /// JWS signature over `msg` (ES256: raw r‖s, 64 bytes; EdDSA: 64 bytes; RS256: PKCS#1 v1.5).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, IdpError> {
        match &self.material {
            KeyMaterial::Es256(kp, _) => {
                let sig = kp.sign(&ring::rand::SystemRandom::new(), msg).map_err(|_| IdpError::Key("ES256 signing failed".into()))?;
                Ok(sig.as_ref().to_vec())
            }
            KeyMaterial::Ed25519(sk, _) => {
                use ed25519_dalek::Signer;
                Ok(sk.sign(msg).to_bytes().to_vec())
            }
            KeyMaterial::Rs256(sk, _) => {
                use rsa::signature::{SignatureEncoding, Signer};
                Ok(sk.try_sign(msg).map_err(|e| IdpError::Key(e.to_string()))?.to_vec())
            }
        }
    }

    /// Check a JWS signature made by this key.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match &self.material {
            KeyMaterial::Es256(_, public) => {
                ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, public).verify(msg, sig).is_ok()
            }
            KeyMaterial::Ed25519(_, vk) => ed25519_dalek::Signature::from_slice(sig).is_ok_and(|s| vk.verify_strict(msg, &s).is_ok()),
            KeyMaterial::Rs256(_, vk) => {
                use rsa::signature::Verifier;
                rsa::pkcs1v15::Signature::try_from(sig).is_ok_and(|s| vk.verify(msg, &s).is_ok())
            }
        }
    }
}

/// The set of keys, swappable on rotation.
pub struct KeyStore {
    dir: PathBuf,
    /// How long a retired key stays published (≥ longest JWT lifetime).
    retention: i64,
    keys: RwLock<Arc<Vec<Arc<SigningKey>>>>,
}

fn write_secret_file(path: &Path, data: &[u8]) -> Result<(), IdpError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()?;
    Ok(())
}

/// Create a directory with mode 0700 (if missing).
pub fn ensure_private_dir(dir: &Path) -> Result<(), IdpError> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Read a 32-byte secret from `path`, generating it (mode 0600) on first use.
pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, IdpError> {
    if let Ok(b) = fs::read(path) {
        if b.len() >= 32 {
            return Ok(b);
        }
    }
    let mut b = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    write_secret_file(path, &b)?;
    Ok(b)
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn generate_pem(alg: SigningAlg) -> Result<String, IdpError> {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let kerr = |e: &dyn std::fmt::Display| IdpError::Key(e.to_string());
    Ok(match alg {
        SigningAlg::ES256 => {
            p256::SecretKey::random(&mut rand::rngs::OsRng).to_pkcs8_pem(LineEnding::LF).map_err(|e| kerr(&e))?.to_string()
        }
        SigningAlg::EdDSA => {
            ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng).to_pkcs8_pem(LineEnding::LF).map_err(|e| kerr(&e))?.to_string()
        }
        SigningAlg::RS256 => {
            let k = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|e| kerr(&e))?;
            rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&k, rsa::pkcs8::LineEnding::LF).map_err(|e| kerr(&e))?.to_string()
        }
    })
}

fn load_key(meta: KeyMeta, pem: &str) -> Result<SigningKey, IdpError> {
    use p256::pkcs8::DecodePrivateKey;
    let kerr = |e: &dyn std::fmt::Display| IdpError::Key(format!("{}: {e}", meta.kid));
    let (material, mut jwk) = match meta.alg {
        SigningAlg::ES256 => {
            let sk = p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| kerr(&e))?;
            let pt = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&sk.public_key(), false);
            let (x, y) = (b64(pt.x().map(|x| x.as_slice()).unwrap_or_default()), b64(pt.y().map(|y| y.as_slice()).unwrap_or_default()));
            let der = p256::pkcs8::EncodePrivateKey::to_pkcs8_der(&sk).map_err(|e| kerr(&e))?;
            let kp = ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                der.as_bytes(),
                &ring::rand::SystemRandom::new(),
            )
            .map_err(|e| kerr(&e))?;
            (KeyMaterial::Es256(Box::new(kp), pt.as_bytes().to_vec()), serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}))
        }
        SigningAlg::EdDSA => {
            let sk = ed25519_dalek::SigningKey::from_pkcs8_pem(pem).map_err(|e| kerr(&e))?;
            let vk = sk.verifying_key();
            let x = b64(vk.as_bytes());
            (KeyMaterial::Ed25519(Box::new(sk), vk), serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}))
        }
        SigningAlg::RS256 => {
            use rsa::traits::PublicKeyParts;
            let sk = rsa::RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| kerr(&e))?;
            let (n, e) = (b64(&sk.n().to_bytes_be()), b64(&sk.e().to_bytes_be()));
            let vk = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(sk.to_public_key());
            (
                KeyMaterial::Rs256(Box::new(rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(sk)), Box::new(vk)),
                serde_json::json!({"kty": "RSA", "n": n, "e": e}),
            )
        }
    };
    if let Some(o) = jwk.as_object_mut() {
        o.insert("kid".into(), meta.kid.clone().into());
        o.insert("alg".into(), meta.alg.as_str().into());
        o.insert("use".into(), "sig".into());
    }
    Ok(SigningKey { meta, material, jwk })
}

impl KeyStore {
    /// Load the keys in `dir`, generating an active key for every algorithm in `algs` that has
    /// none. `retention` is how long retired keys stay published.
    pub fn open(dir: &Path, algs: &[SigningAlg], retention: i64) -> Result<Self, IdpError> {
        ensure_private_dir(dir)?;
        let store = KeyStore { dir: dir.to_path_buf(), retention, keys: RwLock::new(Arc::new(Vec::new())) };
        let mut metas = store.read_meta()?;
        for alg in algs {
            if !metas.iter().any(|m| m.alg == *alg && m.retired_at.is_none()) {
                metas.push(store.create_key(*alg)?);
            }
        }
        store.write_meta(&metas)?;
        store.reload(metas)?;
        Ok(store)
    }

    fn meta_path(&self) -> PathBuf {
        self.dir.join("keys.json")
    }

    fn read_meta(&self) -> Result<Vec<KeyMeta>, IdpError> {
        match fs::read(self.meta_path()) {
            Ok(b) => Ok(serde_json::from_slice(&b)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn write_meta(&self, metas: &[KeyMeta]) -> Result<(), IdpError> {
        let tmp = self.dir.join("keys.json.tmp");
        let _ = fs::remove_file(&tmp);
        write_secret_file(&tmp, &serde_json::to_vec_pretty(metas)?)?;
        fs::rename(tmp, self.meta_path())?;
        Ok(())
    }

    fn create_key(&self, alg: SigningAlg) -> Result<KeyMeta, IdpError> {
        let kid = format!("{}-{}", alg.as_str().to_lowercase(), &crate::crypto::random_token()[..12]);
        let pem = generate_pem(alg)?;
        write_secret_file(&self.dir.join(format!("{kid}.pem")), pem.as_bytes())?;
        tracing::info!(kid = %kid, alg = alg.as_str(), "generated signing key");
        Ok(KeyMeta { kid, alg, created_at: crate::now(), retired_at: None })
    }

    fn reload(&self, metas: Vec<KeyMeta>) -> Result<(), IdpError> {
        let mut keys = Vec::new();
        for m in metas {
            let pem = fs::read_to_string(self.dir.join(format!("{}.pem", m.kid)))?;
            keys.push(Arc::new(load_key(m, &pem)?));
        }
        let mut w = self.keys.write().map_err(|_| IdpError::Key("key lock poisoned".into()))?;
        *w = Arc::new(keys);
        Ok(())
    }

    fn snapshot(&self) -> Arc<Vec<Arc<SigningKey>>> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Add a new active key for `alg`; the previous active key is retired (still published).
    pub fn rotate(&self, alg: SigningAlg) -> Result<String, IdpError> {
        let mut metas = self.read_meta()?;
        let now = crate::now();
        for m in metas.iter_mut().filter(|m| m.alg == alg && m.retired_at.is_none()) {
            m.retired_at = Some(now);
        }
        let new = self.create_key(alg)?;
        let kid = new.kid.clone();
        metas.push(new);
        self.write_meta(&metas)?;
        self.reload(metas)?;
        Ok(kid)
    }

    /// Delete retired keys whose retention has passed. Returns the removed kids.
    pub fn prune(&self, now: i64) -> Result<Vec<String>, IdpError> {
        let metas = self.read_meta()?;
        let (gone, keep): (Vec<KeyMeta>, Vec<KeyMeta>) =
            metas.into_iter().partition(|m| m.retired_at.is_some_and(|r| r + self.retention < now));
        for m in &gone {
            let _ = fs::remove_file(self.dir.join(format!("{}.pem", m.kid)));
        }
        self.write_meta(&keep)?;
        self.reload(keep)?;
        Ok(gone.into_iter().map(|m| m.kid).collect())
    }

    /// The active key for `alg`.
    pub fn active(&self, alg: SigningAlg) -> Option<Arc<SigningKey>> {
        self.snapshot().iter().rev().find(|k| k.meta.alg == alg && k.meta.retired_at.is_none()).cloned()
    }

    /// Any published key by `kid` (active or retired).
    pub fn by_kid(&self, kid: &str) -> Option<Arc<SigningKey>> {
        self.snapshot().iter().find(|k| k.meta.kid == kid).cloned()
    }

    /// The algorithms with an active key.
    pub fn algorithms(&self) -> Vec<SigningAlg> {
        let mut v: Vec<SigningAlg> = Vec::new();
        for k in self.snapshot().iter() {
            if k.meta.retired_at.is_none() && !v.contains(&k.meta.alg) {
                v.push(k.meta.alg);
            }
        }
        v
    }

    /// The public JWK Set (RFC 7517) of all published keys.
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({ "keys": self.snapshot().iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_persist_rotate_prune() {
        let dir = tempfile::tempdir().unwrap();
        let kdir = dir.path().join("keys");
        let ks = KeyStore::open(&kdir, &[SigningAlg::ES256, SigningAlg::EdDSA], 3600).unwrap();
        let es = ks.active(SigningAlg::ES256).unwrap();
        assert_eq!(ks.jwks()["keys"].as_array().unwrap().len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(kdir.join(format!("{}.pem", es.meta.kid))).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            assert_eq!(fs::metadata(&kdir).unwrap().permissions().mode() & 0o777, 0o700);
        }
        // Re-open: same keys, nothing new generated.
        let ks2 = KeyStore::open(&kdir, &[SigningAlg::ES256], 3600).unwrap();
        assert_eq!(ks2.active(SigningAlg::ES256).unwrap().meta.kid, es.meta.kid);
        // Rotation keeps the old key published.
        let new = ks2.rotate(SigningAlg::ES256).unwrap();
        assert_ne!(new, es.meta.kid);
        assert!(ks2.by_kid(&es.meta.kid).is_some());
        assert_eq!(ks2.jwks()["keys"].as_array().unwrap().len(), 3);
        // Not pruned before retention, pruned after.
        assert!(ks2.prune(crate::now()).unwrap().is_empty());
        assert_eq!(ks2.prune(crate::now() + 3601).unwrap(), vec![es.meta.kid.clone()]);
        assert!(ks2.by_kid(&es.meta.kid).is_none());
        assert_eq!(ks2.active(SigningAlg::ES256).unwrap().meta.kid, new);
    }

    #[test]
    fn jwk_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyStore::open(dir.path(), &[SigningAlg::ES256, SigningAlg::EdDSA], 60).unwrap();
        let j = ks.jwks();
        let keys = j["keys"].as_array().unwrap();
        assert!(keys.iter().any(|k| k["kty"] == "EC" && k["crv"] == "P-256" && k["alg"] == "ES256" && k["use"] == "sig"));
        assert!(keys.iter().any(|k| k["kty"] == "OKP" && k["crv"] == "Ed25519" && k["alg"] == "EdDSA"));
        assert!(keys.iter().all(|k| k.get("d").is_none()));
    }

    #[test]
    fn rs256_key_signs_and_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let ks = KeyStore::open(dir.path(), &[SigningAlg::RS256], 60).unwrap();
        let k = ks.active(SigningAlg::RS256).unwrap();
        assert_eq!(k.jwk["kty"], "RSA");
        assert_eq!(k.jwk["e"], "AQAB");
        let t = crate::tokens::sign(&ks, SigningAlg::RS256, "JWT", &serde_json::json!({"iss": "i", "exp": crate::now() + 60})).unwrap();
        let v: serde_json::Value = crate::tokens::verify(&ks, "i", &t, "JWT", true).unwrap();
        assert_eq!(v["iss"], "i");
    }
}
