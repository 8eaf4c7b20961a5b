//! Revocation by CRL: finds a usable CRL for a certificate (from the [`TrustStore`] first, then from the
//! caller's [`CrlSource`] for each cRLDistributionPoint URI), checks the CRL's issuer, signature and
//! freshness, and reports the revocation reason and date. Fetching (HTTP, caching) is the caller's job.

use crate::parse::{canonical_serial, Certificate, Crl};
use crate::report::RevocationReason;
use crate::signature;
use crate::store::TrustStore;

/// Why a CRL could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlFetchError {
    /// Network error, timeout, HTTP status, ...
    #[error("CRL unavailable: {0}")]
    Unavailable(String),
}

/// Supplies CRLs for distribution point URIs. Implemented by the caller (the gateway fetches over HTTP
/// with its own timeouts); the library stays free of I/O. Parsed, verified CRLs are cached in the
/// [`TrustStore`] per URI and reused until their nextUpdate, so `fetch` is only called when no current
/// CRL is cached.
pub trait CrlSource: Send + Sync {
    /// Returns the CRL published at `uri` (DER or PEM).
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, CrlFetchError>;
}

/// What to do when no usable CRL can be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationPolicy {
    /// Do not check revocation.
    Off,
    /// Check when a CRL is available; otherwise accept (noted as a finding).
    SoftFail,
    /// A certificate without a usable CRL is `INDETERMINATE` / `TRY_LATER`.
    HardFail,
}

/// Outcome of a revocation check of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A valid, current CRL does not list the certificate.
    Good,
    /// Revoked on `date` (Unix seconds) for `reason`.
    Revoked {
        /// Reason code.
        reason: RevocationReason,
        /// revocationDate.
        date: i64,
    },
    /// No usable CRL; the text says why.
    Unknown(String),
}

/// Checks `cert`, issued by `issuer`, at `time`.
pub fn check(store: &TrustStore, source: Option<&dyn CrlSource>, cert: &Certificate, issuer: &Certificate, time: i64) -> Status {
    let mut why = Vec::new();
    if let Some(ku) = issuer.key_usage {
        if !ku.crl_sign() {
            return Status::Unknown("issuer keyUsage lacks cRLSign".into());
        }
    }
    // Of several usable CRLs of this issuer in the store, the most recent (latest thisUpdate) decides.
    let mut best: Option<(i64, Status)> = None;
    for crl in store.crls.iter() {
        if let Some(s) = use_crl(store, crl, cert, issuer, time, &mut why) {
            if best.as_ref().is_none_or(|(t, _)| crl.this_update > *t) {
                best = Some((crl.this_update, s));
            }
        }
    }
    if let Some((_, s)) = best {
        return s;
    }
    if let Some(src) = source {
        for uri in &cert.crl_distribution_points {
            // A CRL fetched earlier from this URI is reused while it is current (until nextUpdate).
            if let Some(crl) = store.fetched_crl(uri) {
                if let Some(s) = use_crl(store, &crl, cert, issuer, time, &mut Vec::new()) {
                    return s;
                }
            }
            match src.fetch(uri) {
                Ok(bytes) => match crate::parse::crls_from_pem(&bytes) {
                    Ok(crls) => {
                        for crl in crls {
                            if let Some(s) = use_crl(store, &crl, cert, issuer, time, &mut why) {
                                store.remember_fetched(uri, std::sync::Arc::new(crl));
                                return s;
                            }
                        }
                    }
                    Err(e) => why.push(format!("{uri}: {e}")),
                },
                Err(e) => why.push(format!("{uri}: {e}")),
            }
        }
    }
    if why.is_empty() {
        why.push("no CRL for issuer".into());
    }
    Status::Unknown(why.join("; "))
}

fn use_crl(store: &TrustStore, crl: &Crl, cert: &Certificate, issuer: &Certificate, time: i64, why: &mut Vec<String>) -> Option<Status> {
    if !crate::path::names_match(&crl.issuer, &issuer.subject) {
        return None;
    }
    if let (Some(a), Some(s)) = (&crl.authority_key_id, &issuer.subject_key_id) {
        if a != s {
            return None;
        }
    }
    if !crl.unknown_critical_extensions.is_empty() {
        why.push(format!("CRL has unsupported critical extensions {:?}", crl.unknown_critical_extensions));
        return None;
    }
    if crl.this_update > time || crl.next_update.is_some_and(|n| n < time) {
        why.push("CRL not current at validation time".into());
        return None;
    }
    let key_id = issuer.key.id();
    if !store.known_good(&crl.sha256, &key_id) {
        if signature::verify(&issuer.key, &crl.sig_alg, &crl.tbs, &crl.signature).is_err() {
            why.push("CRL signature does not verify".into());
            return None;
        }
        store.remember_good(crl.sha256, key_id);
    }
    match crl.revoked.get(&canonical_serial(&cert.serial)) {
        Some(e) if e.date <= time && e.reason != 8 => Some(Status::Revoked { reason: RevocationReason::from_code(e.reason), date: e.date }),
        _ => Some(Status::Good),
    }
}
