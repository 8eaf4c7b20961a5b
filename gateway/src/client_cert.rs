//! Certificate login at the TLS layer. TLS listeners with `client_certs = "optional"` ask the
//! client for a certificate (naming the trust anchors of `[certs] trust`, so browsers offer
//! only matching ones). During the handshake rustls checks only that the client holds the key
//! of the certificate it presents (the CertificateVerify signature, [`Verifier`]); the
//! certificate itself is accepted there so that a refused one gets a clear page from the
//! identity provider instead of a bare TLS alert, and so that the checks are those of
//! `govgate-certs` (SM2 chains, CRLs, name constraints, purpose `tls-client`).
//!
//! Right after the handshake, [`Callbacks`] validates the chain and attaches the outcome, a
//! [`ClientCertificate`], to the connection; [`of_connection`] reads it back for each request.
//! Nothing a client sends in a header can stand in for it: the outcome lives in the TLS
//! session, and `X-Govgate-*` request headers are removed before anything else sees them.

use crate::state::Shared;
use async_trait::async_trait;
use govgate_certs::{Certificate, IdKind, Purpose, SubIndication, ValidationOptions};
use pingora_core::listeners::TlsAccept;
use pingora_core::protocols::tls::TlsRef;
use pingora_proxy::Session;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use std::any::Any;
use std::sync::Arc;

/// The client certificate of a connection, as the gateway judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// Lowercase hex SHA-256 of the leaf's DER.
    pub fingerprint_sha256: String,
    /// The leaf's subject, readable.
    pub subject: String,
    /// A resident identity number or unified social credit code in the subject (check
    /// character verified).
    pub id_number: Option<String>,
    /// `None`: the chain validated. Otherwise the reason it was refused (see [`refusal`]).
    pub refused: Option<&'static str>,
}

impl ClientCertificate {
    /// What the built-in identity provider is handed.
    pub fn for_idp(&self) -> govgate_idp::ClientCert {
        govgate_idp::ClientCert {
            fingerprint_sha256: self.fingerprint_sha256.clone(),
            subject: self.subject.clone(),
            id_number: self.id_number.clone(),
            refused: self.refused.map(str::to_string),
        }
    }
}

/// The reason word for a failed validation: `untrusted`, `expired`, `not_yet_valid`,
/// `revoked`, `revocation_unknown` or `unusable`.
pub fn refusal(sub: Option<SubIndication>) -> &'static str {
    match sub {
        Some(SubIndication::Expired | SubIndication::OutOfBoundsNoPoe) => "expired",
        Some(SubIndication::NotYetValid) => "not_yet_valid",
        Some(SubIndication::Revoked | SubIndication::RevokedNoPoe) => "revoked",
        Some(SubIndication::NoCertificateChainFound | SubIndication::SigCryptoFailure) => "untrusted",
        Some(SubIndication::TryLater) => "revocation_unknown",
        _ => "unusable",
    }
}

/// The client certificate of the request's connection, when one was presented.
pub fn of_connection(session: &Session) -> Option<ClientCertificate> {
    let digest = session.digest()?.ssl_digest.as_ref()?;
    digest.extension.get::<ClientCertificate>().cloned()
}

/// Validates a presented chain (leaf first) with `govgate-certs` at the current time.
pub async fn judge(shared: &Shared, chain: &[&[u8]]) -> Option<ClientCertificate> {
    let leaf_der = chain.first()?;
    let fingerprint = hex(&Sha256::digest(leaf_der));
    let leaf = match Certificate::from_der(leaf_der) {
        Ok(c) => c,
        Err(_) => {
            return Some(ClientCertificate {
                fingerprint_sha256: fingerprint,
                subject: String::new(),
                id_number: None,
                refused: Some("unusable"),
            })
        }
    };
    // Intermediates that do not decode are left out: the path simply cannot use them.
    let intermediates: Vec<Certificate> = chain[1..].iter().filter_map(|d| Certificate::from_der(d).ok()).collect();
    let identity = govgate_certs::extract_identity(&leaf);
    let id_number = identity.id_number.and_then(|(kind, n)| (kind != IdKind::Other).then_some(n));
    let state = shared.state.load_full();
    let refused = match &state.trust {
        None => Some("untrusted"),
        Some(store) => {
            let now = crate::trust::now();
            let opts = ValidationOptions::at(now).purpose(Purpose::TlsClient).revocation(crate::trust::revocation(&state.policy));
            let report = shared.crls.validate(now, |src| govgate_certs::validate(store, &leaf, &intermediates, &opts, Some(src))).await;
            (!report.passed()).then(|| refusal(report.sub_indication))
        }
    };
    let masked = id_number.as_deref().map(govgate_identity_numbers::mask_id);
    match refused {
        None => tracing::info!(fingerprint, id_number = masked, "client certificate verified"),
        Some(why) => tracing::info!(fingerprint, id_number = masked, refused = why, "client certificate refused"),
    }
    Some(ClientCertificate { fingerprint_sha256: fingerprint, subject: identity.subject, id_number, refused })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs [`judge`] once per TLS connection, right after the handshake.
pub struct Callbacks {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl TlsAccept for Callbacks {
    async fn handshake_complete_callback(&self, tls: &TlsRef) -> Option<Arc<dyn Any + Send + Sync>> {
        let chain: Vec<&[u8]> = tls.peer_cert_chain_der()?.iter().map(|c| c.as_ref()).collect();
        let outcome = judge(&self.shared, &chain).await?;
        Some(Arc::new(outcome))
    }
}

/// Asks for an optional client certificate and checks the client's proof of its key; the
/// certificate's validity is judged after the handshake (see the module docs).
#[derive(Debug)]
pub struct Verifier {
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    /// `anchors`: the trust anchors, named to the client as acceptable issuers.
    pub fn new(anchors: &[Arc<Certificate>]) -> Self {
        Verifier {
            hints: anchors.iter().map(|a| DistinguishedName::from(a.subject.raw.clone())).collect(),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Judged after the handshake by `govgate-certs` (module docs); never trusted before.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_reasons() {
        assert_eq!(refusal(Some(SubIndication::Expired)), "expired");
        assert_eq!(refusal(Some(SubIndication::Revoked)), "revoked");
        assert_eq!(refusal(Some(SubIndication::NoCertificateChainFound)), "untrusted");
        assert_eq!(refusal(Some(SubIndication::SigCryptoFailure)), "untrusted");
        assert_eq!(refusal(Some(SubIndication::TryLater)), "revocation_unknown");
        assert_eq!(refusal(Some(SubIndication::ChainConstraintsFailure)), "unusable");
        assert_eq!(refusal(None), "unusable");
    }
}
