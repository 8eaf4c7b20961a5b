//! The trust anchors of `[certs] trust` (anchors, intermediates, CRLs), loaded once per policy
//! (and again on reload) and shared by certificate login and the certificate API, with the
//! revocation policy that goes with them.

use govgate_certs::{trust_store, RevocationPolicy, TrustStore};
use govgate_policies::{Builtin, ClientCerts, Policy, Revocation};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("loading the trust anchors from {dir}: {message}")]
pub struct TrustError {
    dir: String,
    message: String,
}

/// Whether anything in the policy needs the trust anchors.
pub fn needed(policy: &Policy) -> bool {
    policy.apps.iter().any(|a| a.builtin == Some(Builtin::CertsApi)) || policy.listeners.iter().any(|l| l.client_certs != ClientCerts::Off)
}

/// Loads `[certs] trust`.
pub fn load(policy: &Policy) -> Result<Arc<TrustStore>, TrustError> {
    let dir = policy.resolve(&policy.certs.trust);
    trust_store::load_dir(&dir).map(Arc::new).map_err(|e| TrustError { dir: dir.display().to_string(), message: e.to_string() })
}

/// `[certs] revocation` in the library's terms.
pub fn revocation(policy: &Policy) -> RevocationPolicy {
    match policy.certs.revocation {
        Revocation::Off => RevocationPolicy::Off,
        Revocation::SoftFail => RevocationPolicy::SoftFail,
        Revocation::HardFail => RevocationPolicy::HardFail,
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
