//! RFC 5280 §6.1 path validation (simplified as documented in the README) over the candidate paths of
//! [`crate::path`]: signatures, validity at the chosen time, basicConstraints / pathLenConstraint,
//! CA keyUsage, name constraints, unknown critical extensions, leaf purpose and CRL revocation.
//! Produces a [`CertificateReport`] with ETSI EN 319 102-1 indications.

use crate::crl::{self, CrlSource, RevocationPolicy, Status};
use crate::error::ParseError;
use crate::name_constraints;
use crate::parse::{certificates_from_pem, Certificate};
use crate::path::{self, Candidate};
use crate::purpose::{self, Purpose};
use crate::report::{classify, CertificateReport, ChainElement, Finding, Indication, SubIndication};
use crate::signature::{self, SigError};
use crate::store::TrustStore;

/// How to validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Validation time, Unix seconds (treated as a trusted time).
    pub time: i64,
    /// Required purpose of the leaf.
    pub purpose: Purpose,
    /// What to do when no CRL is available.
    pub revocation: RevocationPolicy,
}

impl ValidationOptions {
    /// Validation at `time` for any purpose, revocation soft-fail.
    pub fn at(time: i64) -> Self {
        ValidationOptions { time, purpose: Purpose::Any, revocation: RevocationPolicy::SoftFail }
    }

    /// Sets the purpose.
    pub fn purpose(mut self, purpose: Purpose) -> Self {
        self.purpose = purpose;
        self
    }

    /// Sets the revocation policy.
    pub fn revocation(mut self, policy: RevocationPolicy) -> Self {
        self.revocation = policy;
        self
    }
}

/// Validates `leaf` against `store`, with extra untrusted `intermediates` (any order), trying every
/// candidate path until one passes. `crl_source` is consulted for CRL distribution points when the
/// store holds no usable CRL.
pub fn validate(
    store: &TrustStore,
    leaf: &Certificate,
    intermediates: &[Certificate],
    opts: &ValidationOptions,
    crl_source: Option<&dyn CrlSource>,
) -> CertificateReport {
    let supplied: Vec<&Certificate> = intermediates.iter().collect();
    let stored: Vec<&Certificate> = store.intermediates.iter().map(|c| c.as_ref()).collect();
    let anchors: Vec<&Certificate> = store.anchors.iter().map(|c| c.as_ref()).collect();
    let candidates = path::build(leaf, &supplied, &stored, &anchors);
    let paths_tried = candidates.len();
    let mut first: Option<(Vec<Finding>, &Candidate<'_>)> = None;
    for cand in &candidates {
        let findings = if cand.complete {
            check_path(store, crl_source, &cand.certs, opts)
        } else {
            let depth = cand.certs.len().saturating_sub(1);
            let issuer = cand.certs.last().map(|c| c.issuer.display.clone()).unwrap_or_default();
            let f =
                if cand.certs.len() + 1 >= path::MAX_PATH_LEN { Finding::PathTooLong } else { Finding::IssuerNotFound { depth, issuer } };
            vec![f]
        };
        if blocking(&findings).is_none() {
            return report(cand, findings, Indication::TotalPassed, None, paths_tried, opts.time);
        }
        if first.is_none() {
            first = Some((findings, cand));
        }
    }
    match first {
        Some((findings, cand)) => {
            let (ind, sub) = blocking(&findings).unwrap_or((Indication::Indeterminate, SubIndication::NoCertificateChainFound));
            report(cand, findings, ind, Some(sub), paths_tried, opts.time)
        }
        None => CertificateReport {
            indication: Indication::Indeterminate,
            sub_indication: Some(SubIndication::NoCertificateChainFound),
            chain: vec![element(leaf, false)],
            findings: Vec::new(),
            paths_tried,
            validation_time: opts.time,
        },
    }
}

/// Convenience: `pem` holds the leaf first, then any intermediates.
pub fn validate_pem(
    store: &TrustStore,
    pem: &[u8],
    opts: &ValidationOptions,
    crl_source: Option<&dyn CrlSource>,
) -> Result<CertificateReport, ParseError> {
    let certs = certificates_from_pem(pem)?;
    let (leaf, rest) = certs.split_first().ok_or(ParseError::Empty("certificate"))?;
    Ok(validate(store, leaf, rest, opts, crl_source))
}

fn rank(f: &Finding) -> u8 {
    match f {
        Finding::BadSignature { .. } => 0,
        Finding::Revoked { .. } => 1,
        Finding::Expired { .. } | Finding::NotYetValid { .. } => 2,
        Finding::RevocationUnavailable { .. } => 4,
        Finding::IssuerNotFound { .. } | Finding::PathTooLong => 5,
        _ => 3,
    }
}

fn blocking(findings: &[Finding]) -> Option<(Indication, SubIndication)> {
    findings.iter().filter_map(|f| classify(f).map(|c| (rank(f), c))).min_by_key(|(r, _)| *r).map(|(_, c)| c)
}

fn element(c: &Certificate, anchor: bool) -> ChainElement {
    ChainElement {
        subject: c.subject.display.clone(),
        issuer: c.issuer.display.clone(),
        serial: c.serial_hex(),
        sha256: c.fingerprint_sha256(),
        not_before: c.not_before,
        not_after: c.not_after,
        trust_anchor: anchor,
    }
}

fn report(
    cand: &Candidate<'_>,
    findings: Vec<Finding>,
    indication: Indication,
    sub: Option<SubIndication>,
    paths_tried: usize,
    time: i64,
) -> CertificateReport {
    let n = cand.certs.len();
    CertificateReport {
        indication,
        sub_indication: sub,
        chain: cand.certs.iter().enumerate().map(|(i, c)| element(c, cand.complete && i + 1 == n)).collect(),
        findings,
        paths_tried,
        validation_time: time,
    }
}

/// All checks on a complete path (`path[0]` leaf, last = trust anchor). Returns the findings.
pub(crate) fn check_path(
    store: &TrustStore,
    source: Option<&dyn CrlSource>,
    path: &[&Certificate],
    opts: &ValidationOptions,
) -> Vec<Finding> {
    let mut f = Vec::new();
    let n = path.len();
    if n < 2 {
        return vec![Finding::IssuerNotFound { depth: 0, issuer: String::new() }];
    }
    let t = opts.time;
    let anchor_depth = n - 1;
    // Validity (anchor included, as OpenSSL does).
    for (depth, c) in path.iter().enumerate() {
        if t > c.not_after {
            f.push(Finding::Expired { depth, not_after: c.not_after });
        } else if t < c.not_before {
            f.push(Finding::NotYetValid { depth, not_before: c.not_before });
        }
    }
    // Unknown critical extensions (not for the anchor: only its name and key are used).
    for (depth, c) in path[..anchor_depth].iter().enumerate() {
        for oid in &c.unknown_critical_extensions {
            f.push(Finding::UnknownCriticalExtension { depth, oid: oid.clone() });
        }
    }
    // CA certificates: basicConstraints, keyUsage, pathLenConstraint, name constraints.
    for (depth, ca) in path.iter().enumerate().skip(1) {
        let is_anchor = depth == anchor_depth;
        match ca.basic_constraints {
            Some((true, _)) if ca.version >= 2 => {}
            // A v1 trust anchor without extensions is accepted (legacy roots).
            None if is_anchor && ca.version == 0 => {}
            _ => f.push(Finding::NotCa { depth }),
        }
        if ca.key_usage.is_some_and(|ku| !ku.key_cert_sign()) {
            f.push(Finding::CaKeyUsage { depth });
        }
        if let Some((_, Some(path_len))) = ca.basic_constraints {
            // Non-self-issued intermediates between this CA and the leaf.
            let below = path[1..depth].iter().filter(|c| !c.is_self_issued()).count();
            if below > path_len as usize {
                f.push(Finding::PathLenExceeded { depth, path_len });
            }
        }
        if let Some(nc) = &ca.name_constraints {
            for (d, sub) in path[..depth].iter().enumerate() {
                if d > 0 && sub.is_self_issued() {
                    continue;
                }
                if let Some(name) = name_constraints::violation(nc, &name_constraints::names_of(sub)) {
                    f.push(Finding::NameConstraints { depth: d, name });
                }
            }
        }
    }
    // Leaf purpose.
    if let Err(detail) = purpose::check(path[0], opts.purpose) {
        f.push(Finding::WrongKeyUsage { purpose: opts.purpose.as_str().into(), detail });
    }
    // Signatures, top down.
    for depth in (0..anchor_depth).rev() {
        let (c, issuer) = (path[depth], path[depth + 1]);
        // CA certificates are cached after a successful check; the leaf is always verified.
        let key_id = (depth > 0).then(|| issuer.key.id());
        if key_id.is_some_and(|k| store.known_good(&c.sha256, &k)) {
            continue;
        }
        match signature::verify(&issuer.key, &c.sig_alg, &c.tbs, &c.signature) {
            Ok(()) => {
                if let Some(k) = key_id {
                    store.remember_good(c.sha256, k);
                }
            }
            Err(SigError::Invalid) => f.push(Finding::BadSignature { depth }),
            Err(SigError::Unsupported(algorithm)) => f.push(Finding::UnsupportedAlgorithm { depth, algorithm }),
        }
    }
    // Revocation, only for otherwise valid paths (no point fetching CRLs for a forged chain).
    if opts.revocation != RevocationPolicy::Off && blocking(&f).is_none() {
        for depth in 0..anchor_depth {
            match crl::check(store, source, path[depth], path[depth + 1], t) {
                Status::Good => {}
                Status::Revoked { reason, date } => f.push(Finding::Revoked { depth, reason, revocation_date: date }),
                Status::Unknown(detail) if opts.revocation == RevocationPolicy::HardFail => {
                    f.push(Finding::RevocationUnavailable { depth, detail })
                }
                Status::Unknown(detail) => f.push(Finding::RevocationSkipped { depth, detail }),
            }
        }
    }
    f
}
