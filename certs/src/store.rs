//! The in-memory trust store: trust anchors, known intermediates and CRLs (all already decoded), plus a
//! small cache of successful signature verifications of CA certificates and CRLs, keyed by
//! (SHA-256 of the signed object's full DER, SHA-256 of the issuer key): a cached intermediate or CRL
//! costs a hash lookup, not a signature check. Leaf signatures are never cached.
//! Pure: loading from disk lives in [`crate::trust_store`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use crate::error::ParseError;
use crate::parse::{certificates_from_pem, crls_from_pem, Certificate, Crl};

// The store is shared between request threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<TrustStore>();
};

/// Upper bound on remembered CRL signature verifications.
const VERIFIED_CACHE_MAX: usize = 4096;
/// Upper bound on cached fetched CRLs (distribution point URIs).
const FETCHED_CACHE_MAX: usize = 1024;

/// Trust anchors, intermediates and CRLs used for path building and revocation.
#[derive(Debug, Default)]
pub struct TrustStore {
    pub(crate) anchors: Vec<Arc<Certificate>>,
    pub(crate) intermediates: Vec<Arc<Certificate>>,
    pub(crate) crls: Vec<Arc<Crl>>,
    verified: RwLock<HashSet<([u8; 32], [u8; 32])>>,
    fetched: RwLock<HashMap<String, Arc<Crl>>>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a trust anchor.
    pub fn add_anchor(&mut self, cert: Certificate) {
        if !self.anchors.iter().any(|a| a.sha256 == cert.sha256) {
            self.anchors.push(Arc::new(cert));
        }
    }

    /// Adds an intermediate (untrusted) certificate available for path building.
    pub fn add_intermediate(&mut self, cert: Certificate) {
        if !self.intermediates.iter().any(|a| a.sha256 == cert.sha256) {
            self.intermediates.push(Arc::new(cert));
        }
    }

    /// Adds a CRL (its signature is checked when it is used).
    pub fn add_crl(&mut self, crl: Crl) {
        if !self.crls.iter().any(|c| c.sha256 == crl.sha256) {
            self.crls.push(Arc::new(crl));
        }
    }

    /// Adds every certificate of a PEM bundle as a trust anchor; returns how many.
    pub fn add_anchors_pem(&mut self, pem: &[u8]) -> Result<usize, ParseError> {
        let certs = certificates_from_pem(pem)?;
        let n = certs.len();
        certs.into_iter().for_each(|c| self.add_anchor(c));
        Ok(n)
    }

    /// Adds every certificate of a PEM bundle as an intermediate; returns how many.
    pub fn add_intermediates_pem(&mut self, pem: &[u8]) -> Result<usize, ParseError> {
        let certs = certificates_from_pem(pem)?;
        let n = certs.len();
        certs.into_iter().for_each(|c| self.add_intermediate(c));
        Ok(n)
    }

    /// Adds every CRL of a PEM bundle (or one DER CRL); returns how many.
    pub fn add_crls_pem(&mut self, pem: &[u8]) -> Result<usize, ParseError> {
        let crls = crls_from_pem(pem)?;
        let n = crls.len();
        crls.into_iter().for_each(|c| self.add_crl(c));
        Ok(n)
    }

    /// Trust anchors.
    pub fn anchors(&self) -> &[Arc<Certificate>] {
        &self.anchors
    }

    /// Intermediates.
    pub fn intermediates(&self) -> &[Arc<Certificate>] {
        &self.intermediates
    }

    /// CRLs.
    pub fn crls(&self) -> &[Arc<Crl>] {
        &self.crls
    }

    /// Forgets every cached signature verification and fetched CRL (e.g. after a trust configuration reload).
    pub fn clear_caches(&self) {
        if let Ok(mut s) = self.verified.write() {
            s.clear();
        }
        if let Ok(mut s) = self.fetched.write() {
            s.clear();
        }
    }

    /// The CRL last fetched from `uri` through a [`crate::CrlSource`] and found usable, if any.
    pub fn fetched_crl(&self, uri: &str) -> Option<Arc<Crl>> {
        self.fetched.read().ok().and_then(|m| m.get(uri).cloned())
    }

    /// Remembers a usable CRL fetched from `uri` (replaced when stale; bounded).
    pub(crate) fn remember_fetched(&self, uri: &str, crl: Arc<Crl>) {
        if let Ok(mut m) = self.fetched.write() {
            if m.len() >= FETCHED_CACHE_MAX && !m.contains_key(uri) {
                m.clear();
            }
            m.insert(uri.to_owned(), crl);
        }
    }

    /// Whether the object with DER hash `object` was already verified with the key whose id is `key`.
    pub(crate) fn known_good(&self, object: &[u8; 32], key: &[u8; 32]) -> bool {
        self.verified.read().map(|s| s.contains(&(*object, *key))).unwrap_or(false)
    }

    /// Remembers a successful verification (the set is cleared when it reaches its bound).
    pub(crate) fn remember_good(&self, object: [u8; 32], key: [u8; 32]) {
        if let Ok(mut s) = self.verified.write() {
            if s.len() >= VERIFIED_CACHE_MAX {
                s.clear();
            }
            s.insert((object, key));
        }
    }
}
