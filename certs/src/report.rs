//! Validation results in the vocabulary of ETSI EN 319 102-1: a main [`Indication`] with a
//! [`SubIndication`], plus the typed [`Finding`] that caused it, the chain used and revocation details.
//! Used for certificate validation now and for e-signature validation later.

use serde::Serialize;

/// Main status indication (ETSI EN 319 102-1 §5.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    /// Every check passed.
    TotalPassed,
    /// A check failed for good: the object must not be trusted.
    TotalFailed,
    /// The checks could not conclude (missing data, constraints, time-dependent).
    Indeterminate,
}

/// Sub-indication (ETSI EN 319 102-1 §5.1.3). Only the ones this crate emits or will emit are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubIndication {
    /// Signed data digest mismatch (e-signatures).
    HashFailure,
    /// A cryptographic signature did not verify.
    SigCryptoFailure,
    /// Certificate revoked before the validation time.
    Revoked,
    /// Certificate revoked, no proof of existence before revocation (e-signatures).
    RevokedNoPoe,
    /// Certificate expired at the validation time.
    Expired,
    /// Outside the validity range and no proof of existence (e-signatures).
    OutOfBoundsNoPoe,
    /// Validation time before the certificate's notBefore.
    NotYetValid,
    /// No path from the certificate to a trust anchor could be built.
    NoCertificateChainFound,
    /// A path was found but violates a constraint (basicConstraints, pathLen, keyUsage, name constraints,
    /// unknown critical extension).
    ChainConstraintsFailure,
    /// Signature constraints (e.g. purpose of the signing certificate) not met.
    SigConstraintsFailure,
    /// An algorithm (or key size) is not supported / not acceptable.
    CryptoConstraintsFailure,
    /// Revocation information is not available now (hard-fail policy); try again later.
    TryLater,
    /// The signed data / certificate format is not supported.
    FormatFailure,
    /// The signer's certificate could not be identified.
    NoSigningCertificateFound,
    /// The signed content (detached) was not provided.
    SignedDataNotFound,
}

/// CRL reason codes (RFC 5280 §5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RevocationReason {
    /// unspecified (0) or absent
    Unspecified,
    /// keyCompromise (1)
    KeyCompromise,
    /// cACompromise (2)
    CaCompromise,
    /// affiliationChanged (3)
    AffiliationChanged,
    /// superseded (4)
    Superseded,
    /// cessationOfOperation (5)
    CessationOfOperation,
    /// certificateHold (6)
    CertificateHold,
    /// removeFromCRL (8)
    RemoveFromCrl,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn,
    /// aACompromise (10)
    AaCompromise,
}

impl RevocationReason {
    /// Maps the numeric CRL reason code.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Self::KeyCompromise,
            2 => Self::CaCompromise,
            3 => Self::AffiliationChanged,
            4 => Self::Superseded,
            5 => Self::CessationOfOperation,
            6 => Self::CertificateHold,
            8 => Self::RemoveFromCrl,
            9 => Self::PrivilegeWithdrawn,
            10 => Self::AaCompromise,
            _ => Self::Unspecified,
        }
    }
}

/// What exactly went wrong (or was noted) on a candidate path. In every variant `depth` is the position
/// in the chain (0 = leaf); dates are Unix seconds.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The signature on the certificate at `depth` does not verify with its issuer's key.
    BadSignature { depth: usize },
    /// The signature / key algorithm is not supported (or too weak, e.g. SHA-1, RSA < 2048).
    UnsupportedAlgorithm { depth: usize, algorithm: String },
    /// Validity period ended before the validation time.
    Expired { depth: usize, not_after: i64 },
    /// Validity period starts after the validation time.
    NotYetValid { depth: usize, not_before: i64 },
    /// An issuing certificate is not a CA (basicConstraints absent or cA=false), or is a v1/v2 certificate.
    NotCa { depth: usize },
    /// An issuing certificate's keyUsage lacks keyCertSign.
    CaKeyUsage { depth: usize },
    /// pathLenConstraint of the CA at `depth` exceeded.
    PathLenExceeded { depth: usize, path_len: u32 },
    /// A name of the leaf/sub-CA at `depth` violates name constraints.
    NameConstraints { depth: usize, name: String },
    /// Unknown critical extension.
    UnknownCriticalExtension { depth: usize, oid: String },
    /// The leaf's keyUsage / extendedKeyUsage do not allow the requested purpose.
    WrongKeyUsage { purpose: String, detail: String },
    /// The certificate at `depth` is revoked.
    Revoked { depth: usize, reason: RevocationReason, revocation_date: i64 },
    /// No usable CRL for the certificate at `depth` (none found, stale, bad signature, fetch failed).
    RevocationUnavailable { depth: usize, detail: String },
    /// Soft-fail: revocation not checked for `depth` but accepted by policy.
    RevocationSkipped { depth: usize, detail: String },
    /// No issuer could be found for the certificate at `depth`.
    IssuerNotFound { depth: usize, issuer: String },
    /// The path is longer than the builder allows.
    PathTooLong,
}

/// Summary of one certificate of the chain, leaf first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainElement {
    /// RFC 4514-ish subject string.
    pub subject: String,
    /// Issuer string.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Whether this is the trust anchor.
    pub trust_anchor: bool,
}

/// Result of validating a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateReport {
    /// Main indication.
    pub indication: Indication,
    /// Sub-indication, `None` when `TotalPassed`.
    pub sub_indication: Option<SubIndication>,
    /// The path that passed, or the candidate path that got furthest (leaf first); may be only the leaf.
    pub chain: Vec<ChainElement>,
    /// Findings of the reported path: the failure(s), and warnings such as soft-failed revocation.
    pub findings: Vec<Finding>,
    /// Number of candidate paths that were tried.
    pub paths_tried: usize,
    /// Validation time used, Unix seconds.
    pub validation_time: i64,
}

impl CertificateReport {
    /// True when the indication is `TotalPassed`.
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

/// Maps a blocking finding to the ETSI indication pair.
pub(crate) fn classify(f: &Finding) -> Option<(Indication, SubIndication)> {
    use Indication::*;
    use SubIndication::*;
    Some(match f {
        Finding::BadSignature { .. } => (TotalFailed, SigCryptoFailure),
        Finding::Revoked { .. } => (TotalFailed, Revoked),
        Finding::Expired { .. } => (TotalFailed, Expired),
        Finding::NotYetValid { .. } => (TotalFailed, NotYetValid),
        Finding::RevocationUnavailable { .. } => (Indeterminate, TryLater),
        Finding::IssuerNotFound { .. } | Finding::PathTooLong => (Indeterminate, NoCertificateChainFound),
        Finding::UnsupportedAlgorithm { .. } => (Indeterminate, CryptoConstraintsFailure),
        Finding::NotCa { .. }
        | Finding::CaKeyUsage { .. }
        | Finding::PathLenExceeded { .. }
        | Finding::NameConstraints { .. }
        | Finding::UnknownCriticalExtension { .. }
        | Finding::WrongKeyUsage { .. } => (Indeterminate, ChainConstraintsFailure),
        Finding::RevocationSkipped { .. } => return None,
    })
}
