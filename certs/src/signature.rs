//! Signature algorithm dispatch: maps certificate/CRL AlgorithmIdentifiers and SubjectPublicKeyInfos to
//! a small closed set ([`SigAlg`], [`KeyInfo`]) and verifies with `ring` (RSA PKCS#1 v1.5 and PSS,
//! ECDSA P-256/P-384, Ed25519) or [`crate::sm2`] (SM2 with SM3). Weak algorithms (SHA-1, RSA < 2048)
//! are reported as unsupported.

use ring::signature as rs;
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;
use x509_parser::signature_algorithm::SignatureAlgorithm;

/// Hash functions used with RSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256
    Sha256,
    /// SHA-384
    Sha384,
    /// SHA-512
    Sha512,
}

/// Supported signature algorithms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigAlg {
    /// RSASSA-PKCS1-v1_5
    RsaPkcs1(Hash),
    /// RSASSA-PSS, MGF1 with the same hash, salt length = hash length
    RsaPss(Hash),
    /// ECDSA with SHA-256
    EcdsaSha256,
    /// ECDSA with SHA-384
    EcdsaSha384,
    /// Ed25519
    Ed25519,
    /// SM2 with SM3 (GM/T 0003/0004), default user id
    Sm2Sm3,
    /// Anything else (dotted OID or description)
    Unsupported(String),
}

/// A subject public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyInfo {
    /// RSA: DER RSAPublicKey and modulus size in bits
    Rsa {
        /// RSAPublicKey DER
        der: Vec<u8>,
    },
    /// ECDSA P-256, SEC1 point
    P256(Vec<u8>),
    /// ECDSA P-384, SEC1 point
    P384(Vec<u8>),
    /// SM2 curve, SEC1 point
    Sm2(Vec<u8>),
    /// Ed25519, 32 bytes
    Ed25519(Vec<u8>),
    /// Anything else
    Unsupported(String),
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// Algorithm/key combination not supported.
    #[error("unsupported algorithm: {0}")]
    Unsupported(String),
    /// The signature is wrong.
    #[error("signature does not verify")]
    Invalid,
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_SM2_CURVE: &str = "1.2.156.10197.1.301";
const OID_ED25519: &str = "1.3.101.112";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_SHA384: &str = "2.16.840.1.101.3.4.2.2";
const OID_SHA512: &str = "2.16.840.1.101.3.4.2.3";

impl SigAlg {
    /// Maps an AlgorithmIdentifier.
    pub fn from_algorithm_identifier(ai: &AlgorithmIdentifier<'_>) -> Self {
        let oid = ai.algorithm.to_id_string();
        match oid.as_str() {
            "1.2.840.113549.1.1.11" => SigAlg::RsaPkcs1(Hash::Sha256),
            "1.2.840.113549.1.1.12" => SigAlg::RsaPkcs1(Hash::Sha384),
            "1.2.840.113549.1.1.13" => SigAlg::RsaPkcs1(Hash::Sha512),
            "1.2.840.10045.4.3.2" => SigAlg::EcdsaSha256,
            "1.2.840.10045.4.3.3" => SigAlg::EcdsaSha384,
            OID_ED25519 => SigAlg::Ed25519,
            "1.2.156.10197.1.501" => SigAlg::Sm2Sm3,
            "1.2.840.113549.1.1.10" => pss(ai).unwrap_or_else(|| SigAlg::Unsupported("RSASSA-PSS with unsupported parameters".into())),
            _ => SigAlg::Unsupported(oid),
        }
    }

    /// Display name.
    pub fn name(&self) -> String {
        match self {
            SigAlg::RsaPkcs1(h) => format!("RSA-PKCS1-{h:?}"),
            SigAlg::RsaPss(h) => format!("RSA-PSS-{h:?}"),
            SigAlg::EcdsaSha256 => "ECDSA-SHA256".into(),
            SigAlg::EcdsaSha384 => "ECDSA-SHA384".into(),
            SigAlg::Ed25519 => "Ed25519".into(),
            SigAlg::Sm2Sm3 => "SM2-SM3".into(),
            SigAlg::Unsupported(s) => s.clone(),
        }
    }
}

fn hash_from_oid(oid: &str) -> Option<Hash> {
    match oid {
        OID_SHA256 => Some(Hash::Sha256),
        OID_SHA384 => Some(Hash::Sha384),
        OID_SHA512 => Some(Hash::Sha512),
        _ => None,
    }
}

fn pss(ai: &AlgorithmIdentifier<'_>) -> Option<SigAlg> {
    let SignatureAlgorithm::RSASSA_PSS(p) = SignatureAlgorithm::try_from(ai).ok()? else {
        return None;
    };
    let hash = hash_from_oid(&p.hash_algorithm_oid().to_id_string())?;
    let mgf = p.mask_gen_algorithm().ok()?;
    if mgf.mgf.to_id_string() != "1.2.840.113549.1.1.8" || hash_from_oid(&mgf.hash.to_id_string()) != Some(hash) {
        return None;
    }
    let want_salt = match hash {
        Hash::Sha256 => 32,
        Hash::Sha384 => 48,
        Hash::Sha512 => 64,
    };
    (p.salt_length() == want_salt && p.trailer_field() == 1).then_some(SigAlg::RsaPss(hash))
}

impl KeyInfo {
    /// Maps a SubjectPublicKeyInfo.
    pub fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Self {
        let alg = spki.algorithm.algorithm.to_id_string();
        let key = spki.subject_public_key.as_ref().to_vec();
        match alg.as_str() {
            OID_RSA => KeyInfo::Rsa { der: key },
            OID_ED25519 if key.len() == 32 => KeyInfo::Ed25519(key),
            OID_EC => {
                let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string()).unwrap_or_default();
                match curve.as_str() {
                    OID_P256 => KeyInfo::P256(key),
                    OID_P384 => KeyInfo::P384(key),
                    OID_SM2_CURVE => KeyInfo::Sm2(key),
                    _ => KeyInfo::Unsupported(format!("EC curve {curve}")),
                }
            }
            "1.2.156.10197.1.301.1" => KeyInfo::Sm2(key),
            _ => KeyInfo::Unsupported(alg),
        }
    }

    /// SHA-256 over the key bytes (identifies a key in caches).
    pub fn id(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        match self {
            KeyInfo::Rsa { der } => h.update(der),
            KeyInfo::P256(k) | KeyInfo::P384(k) | KeyInfo::Sm2(k) | KeyInfo::Ed25519(k) => h.update(k),
            KeyInfo::Unsupported(s) => h.update(s.as_bytes()),
        }
        h.finalize().into()
    }
}

/// Verifies `signature` over `message` with `key` under `alg`.
pub fn verify(key: &KeyInfo, alg: &SigAlg, message: &[u8], signature: &[u8]) -> Result<(), SigError> {
    let ring_alg: &dyn rs::VerificationAlgorithm = match (key, alg) {
        (KeyInfo::Sm2(point), SigAlg::Sm2Sm3) => return crate::sm2::verify(point, message, signature),
        (KeyInfo::Rsa { .. }, SigAlg::RsaPkcs1(Hash::Sha256)) => &rs::RSA_PKCS1_2048_8192_SHA256,
        (KeyInfo::Rsa { .. }, SigAlg::RsaPkcs1(Hash::Sha384)) => &rs::RSA_PKCS1_2048_8192_SHA384,
        (KeyInfo::Rsa { .. }, SigAlg::RsaPkcs1(Hash::Sha512)) => &rs::RSA_PKCS1_2048_8192_SHA512,
        (KeyInfo::Rsa { .. }, SigAlg::RsaPss(Hash::Sha256)) => &rs::RSA_PSS_2048_8192_SHA256,
        (KeyInfo::Rsa { .. }, SigAlg::RsaPss(Hash::Sha384)) => &rs::RSA_PSS_2048_8192_SHA384,
        (KeyInfo::Rsa { .. }, SigAlg::RsaPss(Hash::Sha512)) => &rs::RSA_PSS_2048_8192_SHA512,
        (KeyInfo::P256(_), SigAlg::EcdsaSha256) => &rs::ECDSA_P256_SHA256_ASN1,
        (KeyInfo::P256(_), SigAlg::EcdsaSha384) => &rs::ECDSA_P256_SHA384_ASN1,
        (KeyInfo::P384(_), SigAlg::EcdsaSha256) => &rs::ECDSA_P384_SHA256_ASN1,
        (KeyInfo::P384(_), SigAlg::EcdsaSha384) => &rs::ECDSA_P384_SHA384_ASN1,
        (KeyInfo::Ed25519(_), SigAlg::Ed25519) => &rs::ED25519,
        (k, a) => return Err(SigError::Unsupported(format!("{} with {}", a.name(), key_name(k)))),
    };
    let key_bytes = match key {
        KeyInfo::Rsa { der } => der,
        KeyInfo::P256(k) | KeyInfo::P384(k) | KeyInfo::Ed25519(k) => k,
        KeyInfo::Sm2(_) | KeyInfo::Unsupported(_) => return Err(SigError::Unsupported(key_name(key))),
    };
    rs::UnparsedPublicKey::new(ring_alg, key_bytes).verify(message, signature).map_err(|_| SigError::Invalid)
}

fn key_name(k: &KeyInfo) -> String {
    match k {
        KeyInfo::Rsa { .. } => "RSA key".into(),
        KeyInfo::P256(_) => "P-256 key".into(),
        KeyInfo::P384(_) => "P-384 key".into(),
        KeyInfo::Sm2(_) => "SM2 key".into(),
        KeyInfo::Ed25519(_) => "Ed25519 key".into(),
        KeyInfo::Unsupported(s) => s.clone(),
    }
}
