//! E-signature verification, first increment: CMS SignedData (RFC 5652), attached or detached, decoded
//! with the RustCrypto `cms` crate. For every SignerInfo: signer certificate lookup (issuer+serial or
//! subjectKeyIdentifier), signed attributes (content-type, message-digest, signing-time), digests
//! SHA-256/384/512 and SM3, the signature (same dispatch as certificates), and the signer's chain
//! validated with purpose `document-signing`. Reports use the ETSI EN 319 102-1 indications.
//! RFC 3161 timestamp tokens: [`verify_timestamp_token`] on its own, and signature timestamps embedded
//! as the unsigned attribute id-aa-signatureTimeStampToken (token over the SignerInfo signature value),
//! whose genTime is reported as `timestamp_time` when the token passes.
//!
//! # Proof of existence (POE), simplified from ETSI EN 319 102-1 §5.6.2.4 (past signature validation)
//!
//! The signature timestamp is verified first: only a token that passes (TSA chain valid at
//! `opts.time` for purpose time-stamping, token signature, message imprint over the SignerInfo's
//! signature value) gives a POE time `t`, and only when `t <= opts.time`. The signer certificate is
//! validated at `opts.time`; when that fails only because of time, the POE decides:
//!
//! * signer chain **expired / not yet valid** at `opts.time`: the chain is validated again at `t` (same
//!   options, so revocation uses CRLs current at `t`). Passes → `TOTAL_PASSED`, `poe_time = t`; fails
//!   because of time, or no usable POE (no token, failed token, POE outside the validity) →
//!   `INDETERMINATE`/`OUT_OF_BOUNDS_NO_POE`; revoked at `t` → `INDETERMINATE`/`REVOKED_NO_POE`; any
//!   other failure at `t` is reported as it is.
//! * signer chain **revoked** (leaf or CA) at `opts.time`: a POE strictly before the earliest revocation
//!   date, with the chain valid at `t` (revocation not rechecked: the revocation dates are known) →
//!   `TOTAL_PASSED`, `poe_time = t`; otherwise `INDETERMINATE`/`REVOKED_NO_POE`.
//!
//! `certificate` always stays the signer certificate's report at `opts.time` (it shows the expiry or
//! revocation); `detail` notes why the signature passed nonetheless. Not implemented: POE from other
//! sources (evidence records, archive timestamps), time-stamp delay / signing-time checks,
//! cryptographic constraints over time. Plain certificate validation ([`crate::validate()`]) is not
//! affected: there `EXPIRED` / `REVOKED` stay `TOTAL_FAILED`.

use cms::cert::x509::der::asn1::{GeneralizedTime, OctetString, UtcTime};
use cms::cert::x509::der::{Decode, Encode};
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use serde::Serialize;
use sha2::Digest;

use crate::crl::CrlSource;
use crate::error::ParseError;
use crate::identity::{self, IdKind};
use crate::parse::{pem_blocks, Certificate};
use crate::purpose::Purpose;
use crate::report::{CertificateReport, ChainElement, Finding, Indication, SubIndication};
use crate::signature::{self, Hash, KeyInfo, SigAlg, SigError};
use crate::store::TrustStore;
use crate::validate::{validate, ValidationOptions};

const OID_SIGNED_DATA: &str = "1.2.840.113549.1.7.2";
const OID_CONTENT_TYPE: &str = "1.2.840.113549.1.9.3";
const OID_MESSAGE_DIGEST: &str = "1.2.840.113549.1.9.4";
const OID_SIGNING_TIME: &str = "1.2.840.113549.1.9.5";
const OID_TIMESTAMP_TOKEN: &str = "1.2.840.113549.1.9.16.2.14";
const OID_TST_INFO: &str = "1.2.840.113549.1.9.16.1.4";

/// The signer as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signer {
    /// Subject of the signing certificate.
    pub subject: String,
    /// Identity number / unified social credit code, when the certificate carries one.
    pub id_number: Option<(IdKind, String)>,
    /// SHA-256 fingerprint of the signing certificate.
    pub fingerprint_sha256: String,
}

/// Validation report of one signature (one SignerInfo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureReport {
    /// Main indication.
    pub indication: Indication,
    /// Sub-indication, `None` when passed.
    pub sub_indication: Option<SubIndication>,
    /// Human-readable reason for a failure, or a note why a signature passed although its signer
    /// certificate is expired / revoked at the validation time (proof of existence).
    pub detail: Option<String>,
    /// The signer, when its certificate was found.
    pub signer: Option<Signer>,
    /// The signer's chain (leaf first), from the certificate validation.
    pub chain: Vec<ChainElement>,
    /// Full certificate validation report of the signer.
    pub certificate: Option<CertificateReport>,
    /// Claimed signing time (signed attribute), Unix seconds.
    pub signing_time: Option<i64>,
    /// genTime of a valid embedded RFC 3161 signature timestamp token, Unix seconds.
    pub timestamp_time: Option<i64>,
    /// Proof-of-existence time (the signature timestamp's genTime, Unix seconds) that made the signature
    /// pass although its signer certificate was expired, not yet valid or revoked at the validation time.
    pub poe_time: Option<i64>,
    /// Digest algorithm name.
    pub digest_algorithm: String,
}

impl SignatureReport {
    /// True when `TotalPassed`.
    pub fn passed(&self) -> bool {
        self.indication == Indication::TotalPassed
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn generalized_time() {
        assert_eq!(super::parse_generalized_time(b"19700101000000Z"), Some(0));
        assert_eq!(super::parse_generalized_time(b"20261123014613Z"), Some(1_795_398_373));
        assert_eq!(super::parse_generalized_time(b"20000229120000.5Z"), Some(951_825_600));
        assert_eq!(super::parse_generalized_time(b"2026112301461Z"), None);
        assert_eq!(super::parse_generalized_time(b"20261323014613Z"), None);
    }
}

/// Outcome of judging an expired / revoked signer certificate with a proof of existence.
struct PoeJudgement {
    indication: Indication,
    sub_indication: Option<SubIndication>,
    detail: String,
    poe_time: Option<i64>,
}

/// Past signature validation (see the module doc): `cert` is the signer certificate's report at
/// `opts.time`, `poe` the verified signature timestamp's genTime. `None` keeps the report as it is.
fn judge_with_poe(
    store: &TrustStore,
    signer: &Certificate,
    certs: &[Certificate],
    opts: &ValidationOptions,
    crl_source: Option<&dyn CrlSource>,
    cert: &CertificateReport,
    poe: Option<i64>,
) -> Option<PoeJudgement> {
    use Indication::*;
    use SubIndication::*;
    let poe = poe.filter(|t| *t <= opts.time);
    let judged = |indication, sub_indication, detail: String| Some(PoeJudgement { indication, sub_indication, detail, poe_time: None });
    match cert.sub_indication {
        Some(Expired | NotYetValid) => {
            let Some(t) = poe else {
                return judged(
                    Indeterminate,
                    Some(OutOfBoundsNoPoe),
                    "signer certificate chain outside its validity period at the validation time, and no valid signature timestamp".into(),
                );
            };
            let at_t = validate(store, signer, certs, &ValidationOptions { time: t, ..*opts }, crl_source);
            if at_t.passed() {
                return Some(PoeJudgement {
                    indication: TotalPassed,
                    sub_indication: None,
                    detail: "signature proven to exist (signature timestamp) while the signer certificate chain was valid; it has expired \
                             (or is not yet valid) at the validation time"
                        .into(),
                    poe_time: Some(t),
                });
            }
            let why = at_t.findings.first().map(|f| format!("{f:?}")).unwrap_or_default();
            match at_t.sub_indication {
                Some(Expired | NotYetValid) => judged(
                    Indeterminate,
                    Some(OutOfBoundsNoPoe),
                    format!("signature timestamp outside the signer certificate chain's validity period: {why}"),
                ),
                Some(Revoked) => judged(
                    Indeterminate,
                    Some(RevokedNoPoe),
                    format!("signer certificate chain revoked at the signature timestamp's time: {why}"),
                ),
                _ => judged(at_t.indication, at_t.sub_indication, format!("signer certificate at the signature timestamp's time: {why}")),
            }
        }
        Some(Revoked) => {
            let revoked_at = cert
                .findings
                .iter()
                .filter_map(|f| match f {
                    Finding::Revoked { revocation_date, .. } => Some(*revocation_date),
                    _ => None,
                })
                .min()?;
            if let Some(t) = poe.filter(|t| *t < revoked_at) {
                let at_t = validate(
                    store,
                    signer,
                    certs,
                    &ValidationOptions { time: t, revocation: crate::crl::RevocationPolicy::Off, ..*opts },
                    crl_source,
                );
                if at_t.passed() {
                    return Some(PoeJudgement {
                        indication: TotalPassed,
                        sub_indication: None,
                        detail: "signature proven to exist (signature timestamp) before the signer certificate chain was revoked".into(),
                        poe_time: Some(t),
                    });
                }
            }
            judged(
                Indeterminate,
                Some(RevokedNoPoe),
                "signer certificate chain revoked, and no valid signature timestamp proving the signature existed before the revocation"
                    .into(),
            )
        }
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum DigestAlg {
    Sha(Hash),
    Sm3,
}

fn digest_alg(oid: &str) -> Option<DigestAlg> {
    Some(match oid {
        "2.16.840.1.101.3.4.2.1" => DigestAlg::Sha(Hash::Sha256),
        "2.16.840.1.101.3.4.2.2" => DigestAlg::Sha(Hash::Sha384),
        "2.16.840.1.101.3.4.2.3" => DigestAlg::Sha(Hash::Sha512),
        "1.2.156.10197.1.401" => DigestAlg::Sm3,
        _ => return None,
    })
}

fn digest(alg: DigestAlg, data: &[u8]) -> Vec<u8> {
    match alg {
        DigestAlg::Sha(Hash::Sha256) => sha2::Sha256::digest(data).to_vec(),
        DigestAlg::Sha(Hash::Sha384) => sha2::Sha384::digest(data).to_vec(),
        DigestAlg::Sha(Hash::Sha512) => sha2::Sha512::digest(data).to_vec(),
        DigestAlg::Sm3 => sm3::Sm3::digest(data).to_vec(),
    }
}

/// Maps the SignerInfo signatureAlgorithm (often just the key algorithm) plus digest to a [`SigAlg`].
fn cms_sig_alg(oid: &str, d: DigestAlg, key: &KeyInfo) -> SigAlg {
    match (oid, d, key) {
        ("1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.11" | "1.2.840.113549.1.1.12" | "1.2.840.113549.1.1.13", DigestAlg::Sha(h), _) => {
            SigAlg::RsaPkcs1(h)
        }
        ("1.2.840.10045.4.3.2", _, _) | ("1.2.840.10045.2.1", DigestAlg::Sha(Hash::Sha256), _) => SigAlg::EcdsaSha256,
        ("1.2.840.10045.4.3.3", _, _) | ("1.2.840.10045.2.1", DigestAlg::Sha(Hash::Sha384), _) => SigAlg::EcdsaSha384,
        ("1.3.101.112", _, _) => SigAlg::Ed25519,
        ("1.2.156.10197.1.501" | "1.2.156.10197.1.301.1", DigestAlg::Sm3, _) => SigAlg::Sm2Sm3,
        ("1.2.840.10045.2.1", DigestAlg::Sm3, KeyInfo::Sm2(_)) => SigAlg::Sm2Sm3,
        _ => SigAlg::Unsupported(oid.to_owned()),
    }
}

fn fail(ind: Indication, sub: SubIndication, detail: impl Into<String>, digest_algorithm: &str) -> SignatureReport {
    SignatureReport {
        indication: ind,
        sub_indication: Some(sub),
        detail: Some(detail.into()),
        signer: None,
        chain: Vec::new(),
        certificate: None,
        signing_time: None,
        timestamp_time: None,
        poe_time: None,
        digest_algorithm: digest_algorithm.to_owned(),
    }
}

/// Verifies a CMS SignedData (DER or PEM "CMS"/"PKCS7"). `detached` is the signed content when it is
/// not encapsulated. The signer certificates are validated at `opts.time` with purpose
/// `document-signing` (the purpose in `opts` is overridden). Returns one report per SignerInfo.
pub fn verify_cms(
    store: &TrustStore,
    cms_bytes: &[u8],
    detached: Option<&[u8]>,
    opts: &ValidationOptions,
    crl_source: Option<&dyn CrlSource>,
) -> Result<Vec<SignatureReport>, ParseError> {
    let opts = opts.purpose(Purpose::DocumentSigning);
    verify_signed_data(store, cms_bytes, detached, &opts, crl_source, true).map(|(r, _, _)| r)
}

/// Result of verifying an RFC 3161 TimeStampToken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimestampReport {
    /// Indication: passed only if the token's signature and TSA chain pass and the imprint matches.
    pub indication: Indication,
    /// Sub-indication (`HASH_FAILURE` when the imprint does not match the data).
    pub sub_indication: Option<SubIndication>,
    /// genTime, Unix seconds.
    pub gen_time: Option<i64>,
    /// The token's own signature report (TSA as signer).
    pub signature: SignatureReport,
}

/// Verifies an RFC 3161 TimeStampToken (a CMS SignedData over TSTInfo) for `timestamped_data`: the
/// token signature, the TSA chain with purpose time-stamping, and the message imprint.
pub fn verify_timestamp_token(
    store: &TrustStore,
    token: &[u8],
    timestamped_data: &[u8],
    opts: &ValidationOptions,
    crl_source: Option<&dyn CrlSource>,
) -> Result<TimestampReport, ParseError> {
    let opts = opts.purpose(Purpose::TimeStamping);
    let (mut reports, econtent, ctype) = verify_signed_data(store, token, None, &opts, crl_source, false)?;
    if ctype != OID_TST_INFO {
        return Err(ParseError::Cms(format!("timestamp token content type {ctype} is not TSTInfo")));
    }
    let tst = econtent.ok_or(ParseError::Cms("timestamp token without TSTInfo".into()))?;
    let info = parse_tst_info(&tst).ok_or(ParseError::Cms("malformed TSTInfo".into()))?;
    let signature = reports.remove(0);
    let (mut indication, mut sub_indication) = (signature.indication, signature.sub_indication);
    let imprint_ok = digest_alg(&info.hash_oid).is_some_and(|d| digest(d, timestamped_data) == info.imprint);
    if !imprint_ok && indication != Indication::TotalFailed {
        indication = Indication::TotalFailed;
        sub_indication = Some(SubIndication::HashFailure);
    }
    Ok(TimestampReport { indication, sub_indication, gen_time: Some(info.gen_time), signature })
}

struct TstInfo {
    hash_oid: String,
    imprint: Vec<u8>,
    gen_time: i64,
}

/// Reads one DER TLV: (tag, content, rest). Definite lengths only, at most 4 length octets.
fn next_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&l, rest) = rest.split_first()?;
    let (len, rest) = if l < 0x80 {
        (l as usize, rest)
    } else {
        let n = (l & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize), &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    let (content, rest) = rest.split_at(len);
    Some((tag, content, rest))
}

/// TSTInfo ::= SEQUENCE { version, policy, messageImprint, serialNumber, genTime, ... }
fn parse_tst_info(der: &[u8]) -> Option<TstInfo> {
    let (0x30, body, _) = next_tlv(der)? else { return None };
    let (0x02, _, rest) = next_tlv(body)? else { return None };
    let (0x06, _, rest) = next_tlv(rest)? else { return None };
    let (0x30, mi, rest) = next_tlv(rest)? else { return None };
    let (0x02, _, rest) = next_tlv(rest)? else { return None };
    let (0x18, gt, _) = next_tlv(rest)? else { return None };
    let (0x30, alg, mi_rest) = next_tlv(mi)? else { return None };
    let (0x04, imprint, _) = next_tlv(mi_rest)? else { return None };
    let (0x06, oid, _) = next_tlv(alg)? else { return None };
    let hash_oid = cms::cert::x509::der::asn1::ObjectIdentifier::from_bytes(oid).ok()?.to_string();
    Some(TstInfo { hash_oid, imprint: imprint.to_vec(), gen_time: parse_generalized_time(gt)? })
}

/// "YYYYMMDDHHMMSS[.f*]Z" to Unix seconds.
fn parse_generalized_time(b: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.strip_suffix('Z')?;
    let main = s.split('.').next()?;
    if main.len() != 14 || !main.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| main[r].parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(4..6)?, n(6..8)?, n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // days from civil (H. Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

type SignedDataResult = (Vec<SignatureReport>, Option<Vec<u8>>, String);

fn verify_signed_data(
    store: &TrustStore,
    cms_bytes: &[u8],
    detached: Option<&[u8]>,
    opts: &ValidationOptions,
    crl_source: Option<&dyn CrlSource>,
    allow_timestamps: bool,
) -> Result<SignedDataResult, ParseError> {
    let der = match pem_blocks(cms_bytes, "CMS")?.pop() {
        Some(d) if d != cms_bytes => d,
        _ => pem_blocks(cms_bytes, "PKCS7")?.pop().unwrap_or_else(|| cms_bytes.to_vec()),
    };
    let bad = |e: cms::cert::x509::der::Error| ParseError::Cms(e.to_string());
    let ci = ContentInfo::from_der(&der).map_err(bad)?;
    if ci.content_type.to_string() != OID_SIGNED_DATA {
        return Err(ParseError::Cms(format!("content type {} is not signedData", ci.content_type)));
    }
    let sd: SignedData = ci.content.decode_as().map_err(bad)?;
    let econtent = match &sd.encap_content_info.econtent {
        Some(any) => Some(any.decode_as::<OctetString>().map_err(bad)?.as_bytes().to_vec()),
        None => None,
    };
    let content: Option<&[u8]> = econtent.as_deref().or(detached);
    let mut certs = Vec::new();
    if let Some(set) = &sd.certificates {
        for choice in set.0.iter() {
            if let cms::cert::CertificateChoices::Certificate(c) = choice {
                certs.push(Certificate::from_der(&c.to_der().map_err(bad)?)?);
            }
        }
    }
    let econtent_type = sd.encap_content_info.econtent_type.to_string();
    let mut out = Vec::new();
    for si in sd.signer_infos.0.iter() {
        // The signature timestamp is verified first: it is the proof of existence for the signer.
        let timestamp = if allow_timestamps { signature_timestamp(store, si, opts, crl_source) } else { None };
        let mut r = verify_signer(store, si, &certs, content, &econtent_type, opts, crl_source, timestamp);
        r.timestamp_time = timestamp;
        out.push(r);
    }
    if out.is_empty() {
        return Err(ParseError::Empty("SignerInfo"));
    }
    Ok((out, econtent, econtent_type))
}

/// genTime of the first passing id-aa-signatureTimeStampToken over this SignerInfo's signature.
fn signature_timestamp(
    store: &TrustStore,
    si: &cms::signed_data::SignerInfo,
    opts: &ValidationOptions,
    crl_source: Option<&dyn CrlSource>,
) -> Option<i64> {
    let attrs = si.unsigned_attrs.as_ref()?;
    for a in attrs.iter().filter(|a| a.oid.to_string() == OID_TIMESTAMP_TOKEN) {
        for v in a.values.iter() {
            let Ok(token) = v.to_der() else { continue };
            if let Ok(ts) = verify_timestamp_token(store, &token, si.signature.as_bytes(), opts, crl_source) {
                if ts.indication == Indication::TotalPassed {
                    return ts.gen_time;
                }
            }
        }
    }
    None
}

/// Verifies one SignerInfo; `poe` is the verified signature timestamp's genTime (see the module doc).
#[allow(clippy::too_many_arguments)]
fn verify_signer(
    store: &TrustStore,
    si: &cms::signed_data::SignerInfo,
    certs: &[Certificate],
    content: Option<&[u8]>,
    econtent_type: &str,
    opts: &ValidationOptions,
    crl_source: Option<&dyn CrlSource>,
    poe: Option<i64>,
) -> SignatureReport {
    use Indication::*;
    use SubIndication::*;
    let dig_oid = si.digest_alg.oid.to_string();
    let Some(dalg) = digest_alg(&dig_oid) else {
        return fail(Indeterminate, CryptoConstraintsFailure, format!("unsupported digest algorithm {dig_oid}"), &dig_oid);
    };
    let dname = match dalg {
        DigestAlg::Sha(h) => format!("{h:?}").to_uppercase(),
        DigestAlg::Sm3 => "SM3".into(),
    };
    // Signer certificate.
    let signer = certs.iter().find(|c| match &si.sid {
        SignerIdentifier::IssuerAndSerialNumber(ias) => {
            ias.issuer.to_der().is_ok_and(|d| d == c.issuer.raw)
                && crate::parse::canonical_serial(ias.serial_number.as_bytes()) == crate::parse::canonical_serial(&c.serial)
        }
        SignerIdentifier::SubjectKeyIdentifier(skid) => c.subject_key_id.as_deref() == Some(skid.0.as_bytes()),
    });
    let Some(signer) = signer else {
        return fail(Indeterminate, NoSigningCertificateFound, "signer certificate not in the SignedData", &dname);
    };
    let Some(content) = content else {
        return fail(Indeterminate, SignedDataNotFound, "detached signature and no content given", &dname);
    };
    let content_digest = digest(dalg, content);
    let mut signing_time = None;
    let signed_bytes: Vec<u8> = match &si.signed_attrs {
        Some(attrs) => {
            let mut md = None;
            let mut ct = None;
            for a in attrs.iter() {
                let oid = a.oid.to_string();
                let Some(v) = a.values.iter().next() else { continue };
                match oid.as_str() {
                    OID_MESSAGE_DIGEST => md = v.decode_as::<OctetString>().ok().map(|o| o.as_bytes().to_vec()),
                    OID_CONTENT_TYPE => ct = v.decode_as::<cms::cert::x509::der::asn1::ObjectIdentifier>().ok().map(|o| o.to_string()),
                    OID_SIGNING_TIME => {
                        signing_time = v
                            .decode_as::<UtcTime>()
                            .map(|t| t.to_unix_duration())
                            .or_else(|_| v.decode_as::<GeneralizedTime>().map(|t| t.to_unix_duration()))
                            .ok()
                            .map(|d| d.as_secs() as i64)
                    }
                    _ => {}
                }
            }
            if ct.as_deref() != Some(econtent_type) {
                return fail(TotalFailed, FormatFailure, "content-type signed attribute missing or different from eContentType", &dname);
            }
            match md {
                Some(md) if md == content_digest => {}
                Some(_) => return fail(TotalFailed, HashFailure, "message-digest does not match the content", &dname),
                None => return fail(TotalFailed, FormatFailure, "message-digest signed attribute missing", &dname),
            }
            match attrs.to_der() {
                Ok(d) => d,
                Err(e) => return fail(TotalFailed, FormatFailure, e.to_string(), &dname),
            }
        }
        None => content.to_vec(),
    };
    let alg = cms_sig_alg(&si.signature_algorithm.oid.to_string(), dalg, &signer.key);
    let mut r = match signature::verify(&signer.key, &alg, &signed_bytes, si.signature.as_bytes()) {
        Ok(()) => {
            let cert = validate(store, signer, certs, opts, crl_source);
            let mut r = SignatureReport {
                indication: cert.indication,
                sub_indication: cert.sub_indication,
                detail: cert.findings.first().filter(|_| !cert.passed()).map(|f| format!("signer certificate: {f:?}")),
                signer: None,
                chain: cert.chain.clone(),
                certificate: None,
                signing_time: None,
                timestamp_time: None,
                poe_time: None,
                digest_algorithm: dname.clone(),
            };
            if let Some(j) = judge_with_poe(store, signer, certs, opts, crl_source, &cert, poe) {
                (r.indication, r.sub_indication, r.detail) = (j.indication, j.sub_indication, Some(j.detail));
                r.poe_time = j.poe_time;
            }
            r.certificate = Some(cert);
            r
        }
        Err(SigError::Invalid) => fail(TotalFailed, SigCryptoFailure, "signature does not verify", &dname),
        Err(SigError::Unsupported(a)) => {
            fail(Indeterminate, CryptoConstraintsFailure, format!("unsupported signature algorithm {a}"), &dname)
        }
    };
    let id = identity::extract(signer);
    r.signer = Some(Signer { subject: id.subject, id_number: id.id_number, fingerprint_sha256: id.fingerprint_sha256 });
    r.signing_time = signing_time;
    r
}
