//! Decoding: turns DER/PEM into owned, pre-digested [`Certificate`] and [`Crl`] values with `x509-parser`.
//! Everything later stages need is extracted once here, so validation never re-parses and never
//! touches borrowed parser types. Malformed input yields [`ParseError`], never a panic.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

use crate::error::ParseError;
use crate::signature::{KeyInfo, SigAlg};

/// A general name (SAN entry or name-constraint base) in owned form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// dNSName
    Dns(String),
    /// rfc822Name
    Email(String),
    /// iPAddress (4 or 16 bytes; in name constraints 8 or 32 bytes: address + mask)
    Ip(Vec<u8>),
    /// directoryName, as the DER of each RDN in order
    Directory(Vec<Vec<u8>>),
    /// uniformResourceIdentifier
    Uri(String),
    /// any other form, kept for reporting only
    Other,
}

/// Name constraints of a CA certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameConstraints {
    /// permittedSubtrees (`None`: no restriction)
    pub permitted: Option<Vec<Name>>,
    /// excludedSubtrees
    pub excluded: Vec<Name>,
}

/// Extended key usage of a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtKeyUsage {
    /// anyExtendedKeyUsage
    pub any: bool,
    /// id-kp-clientAuth
    pub client_auth: bool,
    /// id-kp-serverAuth
    pub server_auth: bool,
    /// id-kp-emailProtection
    pub email_protection: bool,
    /// id-kp-codeSigning
    pub code_signing: bool,
    /// id-kp-timeStamping
    pub time_stamping: bool,
    /// other OIDs, dotted
    pub other: Vec<String>,
}

/// keyUsage bits (RFC 5280 §4.2.1.3), bit 0 = digitalSignature as in x509-parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage(pub u16);

impl KeyUsage {
    /// digitalSignature
    pub fn digital_signature(self) -> bool {
        self.0 & 1 != 0
    }
    /// nonRepudiation / contentCommitment
    pub fn non_repudiation(self) -> bool {
        self.0 & (1 << 1) != 0
    }
    /// keyEncipherment
    pub fn key_encipherment(self) -> bool {
        self.0 & (1 << 2) != 0
    }
    /// keyAgreement
    pub fn key_agreement(self) -> bool {
        self.0 & (1 << 4) != 0
    }
    /// keyCertSign
    pub fn key_cert_sign(self) -> bool {
        self.0 & (1 << 5) != 0
    }
    /// cRLSign
    pub fn crl_sign(self) -> bool {
        self.0 & (1 << 6) != 0
    }
}

/// A subject or issuer distinguished name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinguishedName {
    /// DER of the whole Name (used for chaining; byte comparison).
    pub raw: Vec<u8>,
    /// DER of each RDN, in order (for directoryName constraints).
    pub rdns: Vec<Vec<u8>>,
    /// (dotted OID, value) of every attribute in order; non-string values as "#" + hex of the content.
    pub attributes: Vec<(String, String)>,
    /// Human-readable form.
    pub display: String,
}

impl DistinguishedName {
    fn from_x509(n: &X509Name<'_>) -> Self {
        let rdns = n.iter_rdn().map(|rdn| rdn_der(rdn)).collect();
        let attributes = n
            .iter_attributes()
            .map(|a| {
                // Non-string values are kept as "#" + hex (RFC 4514 style) so the list stays complete.
                let v = match a.as_str() {
                    Ok(s) => s.to_owned(),
                    Err(_) => decode_other_string(a.attr_value()).unwrap_or_else(|| format!("#{}", hex(a.attr_value().data))),
                };
                (a.attr_type().to_id_string(), v)
            })
            .collect();
        let display = x509_parser::x509::X509Name::to_string_with_registry(n, oid_registry()).unwrap_or_else(|_| n.to_string());
        DistinguishedName { raw: n.as_raw().to_vec(), rdns, attributes, display }
    }

    /// First value of an attribute given as dotted OID.
    pub fn attribute(&self, oid: &str) -> Option<&str> {
        self.attributes.iter().find(|(o, _)| o == oid).map(|(_, v)| v.as_str())
    }
}

fn oid_registry() -> &'static oid_registry::OidRegistry<'static> {
    static REG: std::sync::OnceLock<oid_registry::OidRegistry<'static>> = std::sync::OnceLock::new();
    REG.get_or_init(|| oid_registry::OidRegistry::default().with_x509())
}

/// BMPString (UCS-2 BE) and T61/Teletex (treated as Latin-1) values, which `as_str` refuses.
fn decode_other_string(v: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<String> {
    use x509_parser::der_parser::asn1_rs::Tag;
    match v.tag() {
        Tag::BmpString => {
            let d = v.data;
            if d.len() & 1 == 1 {
                return None;
            }
            let units: Vec<u16> = d.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16(&units).ok()
        }
        Tag::T61String => Some(v.data.iter().map(|&b| b as char).collect()),
        _ => None,
    }
}

/// Re-encodes one RDN (SET OF AttributeTypeAndValue) as DER for byte comparison.
fn rdn_der(rdn: &RelativeDistinguishedName<'_>) -> Vec<u8> {
    let mut body = Vec::new();
    for atv in rdn.iter() {
        let mut inner = Vec::new();
        let oid = atv.attr_type().as_bytes();
        push_tlv(&mut inner, 0x06, oid);
        let val = atv.attr_value();
        let tag = val.tag().0;
        let cls = match val.class() {
            x509_parser::der_parser::asn1_rs::Class::Universal => 0u8,
            x509_parser::der_parser::asn1_rs::Class::Application => 0x40,
            x509_parser::der_parser::asn1_rs::Class::ContextSpecific => 0x80,
            x509_parser::der_parser::asn1_rs::Class::Private => 0xc0,
        };
        let constructed = if val.header.is_constructed() { 0x20 } else { 0 };
        let t = if tag < 31 { cls | constructed | tag as u8 } else { 0xff };
        push_tlv(&mut inner, t, val.data);
        push_tlv(&mut body, 0x30, &inner);
    }
    let mut out = Vec::new();
    push_tlv(&mut out, 0x31, &body);
    out
}

pub(crate) fn push_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
}

/// policyConstraints (RFC 5280 §4.2.1.11): skip counts before an explicit policy is required / policy
/// mapping is inhibited. Parsed and reported; the RFC 5280 §6.1 policy tree is not built, so they are
/// accepted but not enforced (see README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyConstraints {
    /// requireExplicitPolicy SkipCerts.
    pub require_explicit_policy: Option<u32>,
    /// inhibitPolicyMapping SkipCerts.
    pub inhibit_policy_mapping: Option<u32>,
}

/// Extension OIDs this crate processes (a critical extension outside this list is rejected).
pub const HANDLED_EXTENSIONS: &[&str] = &[
    "2.5.29.19",         // basicConstraints
    "2.5.29.15",         // keyUsage
    "2.5.29.37",         // extKeyUsage
    "2.5.29.17",         // subjectAltName
    "2.5.29.30",         // nameConstraints
    "2.5.29.14",         // subjectKeyIdentifier
    "2.5.29.35",         // authorityKeyIdentifier
    "2.5.29.31",         // cRLDistributionPoints
    "2.5.29.32",         // certificatePolicies (parsed; accepted, not enforced: see README)
    "2.5.29.36",         // policyConstraints (parsed; accepted, not enforced)
    "2.5.29.54",         // inhibitAnyPolicy (parsed; accepted, not enforced)
    "1.3.6.1.5.5.7.1.1", // authorityInfoAccess
];

/// An X.509 certificate, decoded once.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// The certificate DER.
    pub der: Vec<u8>,
    /// DER of tbsCertificate (signed bytes).
    pub tbs: Vec<u8>,
    /// X.509 version: 0 = v1, 2 = v3.
    pub version: u32,
    /// Serial number (DER INTEGER content bytes).
    pub serial: Vec<u8>,
    /// Subject.
    pub subject: DistinguishedName,
    /// Issuer.
    pub issuer: DistinguishedName,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// Subject public key.
    pub key: KeyInfo,
    /// Signature algorithm of the issuer's signature (from the outer AlgorithmIdentifier).
    pub sig_alg: SigAlg,
    /// Signature value.
    pub signature: Vec<u8>,
    /// basicConstraints: (cA, pathLenConstraint).
    pub basic_constraints: Option<(bool, Option<u32>)>,
    /// keyUsage.
    pub key_usage: Option<KeyUsage>,
    /// extendedKeyUsage.
    pub ext_key_usage: Option<ExtKeyUsage>,
    /// subjectAltName entries.
    pub subject_alt_names: Vec<Name>,
    /// nameConstraints.
    pub name_constraints: Option<NameConstraints>,
    /// subjectKeyIdentifier.
    pub subject_key_id: Option<Vec<u8>>,
    /// authorityKeyIdentifier keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// URIs of the cRLDistributionPoints fullName entries.
    pub crl_distribution_points: Vec<String>,
    /// certificatePolicies policy identifiers (dotted OIDs; accepted, not enforced).
    pub certificate_policies: Vec<String>,
    /// policyConstraints (accepted, not enforced).
    pub policy_constraints: Option<PolicyConstraints>,
    /// inhibitAnyPolicy SkipCerts (accepted, not enforced).
    pub inhibit_any_policy: Option<u32>,
    /// Critical extensions that are not processed by this crate (dotted OIDs).
    pub unknown_critical_extensions: Vec<String>,
    /// SHA-256 of `der`.
    pub sha256: [u8; 32],
}

impl Certificate {
    /// Decodes one DER certificate (no trailing data allowed).
    pub fn from_der(der: &[u8]) -> Result<Self, ParseError> {
        let (rest, c) = X509Certificate::from_der(der).map_err(|e| ParseError::Certificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ParseError::TrailingData);
        }
        let used = &der[..der.len() - rest.len()];
        let tbs = &c.tbs_certificate;
        if tbs.signature != c.signature_algorithm {
            return Err(ParseError::Certificate("inner and outer signature algorithms differ".into()));
        }
        let key = KeyInfo::from_spki(c.public_key());
        let sig_alg = SigAlg::from_algorithm_identifier(&c.signature_algorithm);
        let mut cert = Certificate {
            der: used.to_vec(),
            tbs: tbs.as_ref().to_vec(),
            version: c.version().0,
            serial: c.raw_serial().to_vec(),
            subject: DistinguishedName::from_x509(c.subject()),
            issuer: DistinguishedName::from_x509(c.issuer()),
            not_before: c.validity().not_before.timestamp(),
            not_after: c.validity().not_after.timestamp(),
            key,
            sig_alg,
            signature: c.signature_value.as_ref().to_vec(),
            basic_constraints: None,
            key_usage: None,
            ext_key_usage: None,
            subject_alt_names: Vec::new(),
            name_constraints: None,
            subject_key_id: None,
            authority_key_id: None,
            crl_distribution_points: Vec::new(),
            certificate_policies: Vec::new(),
            policy_constraints: None,
            inhibit_any_policy: None,
            unknown_critical_extensions: Vec::new(),
            sha256: Sha256::digest(used).into(),
        };
        for ext in c.extensions() {
            let oid = ext.oid.to_id_string();
            let handled = HANDLED_EXTENSIONS.contains(&oid.as_str());
            if ext.critical && !handled {
                cert.unknown_critical_extensions.push(oid.clone());
                continue;
            }
            let bad = |reason: String| ParseError::Extension { oid: oid.clone(), reason };
            match ext.parsed_extension() {
                ParsedExtension::BasicConstraints(bc) => cert.basic_constraints = Some((bc.ca, bc.path_len_constraint)),
                ParsedExtension::KeyUsage(ku) => cert.key_usage = Some(KeyUsage(ku.flags)),
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    cert.ext_key_usage = Some(ExtKeyUsage {
                        any: eku.any,
                        client_auth: eku.client_auth,
                        server_auth: eku.server_auth,
                        email_protection: eku.email_protection,
                        code_signing: eku.code_signing,
                        time_stamping: eku.time_stamping,
                        other: eku.other.iter().map(|o| o.to_id_string()).collect(),
                    })
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    cert.subject_alt_names = san.general_names.iter().map(general_name).collect();
                }
                ParsedExtension::NameConstraints(nc) => {
                    cert.name_constraints = Some(NameConstraints {
                        permitted: nc.permitted_subtrees.as_ref().map(|v| v.iter().map(|s| general_name(&s.base)).collect()),
                        excluded: nc
                            .excluded_subtrees
                            .as_ref()
                            .map(|v| v.iter().map(|s| general_name(&s.base)).collect())
                            .unwrap_or_default(),
                    })
                }
                ParsedExtension::SubjectKeyIdentifier(k) => cert.subject_key_id = Some(k.0.to_vec()),
                ParsedExtension::AuthorityKeyIdentifier(a) => cert.authority_key_id = a.key_identifier.as_ref().map(|k| k.0.to_vec()),
                ParsedExtension::CRLDistributionPoints(dps) => {
                    for dp in dps.points.iter() {
                        if let Some(DistributionPointName::FullName(names)) = &dp.distribution_point {
                            for n in names {
                                if let GeneralName::URI(u) = n {
                                    cert.crl_distribution_points.push((*u).to_owned());
                                }
                            }
                        }
                    }
                }
                ParsedExtension::CertificatePolicies(policies) => {
                    cert.certificate_policies = policies.iter().map(|p| p.policy_id.to_id_string()).collect();
                }
                ParsedExtension::PolicyConstraints(pc) => {
                    cert.policy_constraints = Some(PolicyConstraints {
                        require_explicit_policy: pc.require_explicit_policy,
                        inhibit_policy_mapping: pc.inhibit_policy_mapping,
                    })
                }
                ParsedExtension::InhibitAnyPolicy(iap) => cert.inhibit_any_policy = Some(iap.skip_certs),
                ParsedExtension::ParseError { error } if handled && oid != "2.5.29.32" && oid != "1.3.6.1.5.5.7.1.1" => {
                    return Err(bad(error.to_string()));
                }
                _ => {}
            }
        }
        Ok(cert)
    }

    /// Whether subject and issuer are the same name.
    pub fn is_self_issued(&self) -> bool {
        self.subject.raw == self.issuer.raw
    }

    /// Serial number as lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex(&self.serial)
    }

    /// SHA-256 fingerprint of the DER, lowercase hex.
    pub fn fingerprint_sha256(&self) -> String {
        hex(&self.sha256)
    }
}

fn general_name(g: &GeneralName<'_>) -> Name {
    match g {
        GeneralName::DNSName(s) => Name::Dns((*s).to_owned()),
        GeneralName::RFC822Name(s) => Name::Email((*s).to_owned()),
        GeneralName::IPAddress(b) => Name::Ip(b.to_vec()),
        GeneralName::DirectoryName(n) => Name::Directory(n.iter_rdn().map(rdn_der).collect()),
        GeneralName::URI(s) => Name::Uri((*s).to_owned()),
        _ => Name::Other,
    }
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

/// One revoked entry of a CRL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevokedEntry {
    /// revocationDate, Unix seconds.
    pub date: i64,
    /// reasonCode (0 if absent).
    pub reason: u8,
}

/// A certificate revocation list, decoded once.
#[derive(Debug, Clone)]
pub struct Crl {
    /// The CRL DER.
    pub der: Vec<u8>,
    /// DER of tbsCertList.
    pub tbs: Vec<u8>,
    /// Issuer name.
    pub issuer: DistinguishedName,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds.
    pub next_update: Option<i64>,
    /// Revoked serials (DER INTEGER content, leading zeros stripped) → entry.
    pub revoked: HashMap<Vec<u8>, RevokedEntry>,
    /// Signature algorithm.
    pub sig_alg: SigAlg,
    /// Signature value.
    pub signature: Vec<u8>,
    /// Critical CRL or entry extensions this crate does not process (the CRL is then unusable).
    pub unknown_critical_extensions: Vec<String>,
    /// authorityKeyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// SHA-256 of `der`.
    pub sha256: [u8; 32],
}

/// Strips the leading zero octets of a DER INTEGER so serial comparisons are canonical.
pub(crate) fn canonical_serial(s: &[u8]) -> Vec<u8> {
    let skip = s.iter().take_while(|&&b| b == 0).count().min(s.len().saturating_sub(1));
    s[skip..].to_vec()
}

impl Crl {
    /// Decodes one DER CRL.
    pub fn from_der(der: &[u8]) -> Result<Self, ParseError> {
        let (rest, c) = CertificateRevocationList::from_der(der).map_err(|e| ParseError::Crl(e.to_string()))?;
        if !rest.is_empty() {
            return Err(ParseError::TrailingData);
        }
        let used = &der[..der.len() - rest.len()];
        let mut unknown = Vec::new();
        let mut akid = None;
        for ext in c.extensions() {
            let oid = ext.oid.to_id_string();
            match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => akid = a.key_identifier.as_ref().map(|k| k.0.to_vec()),
                ParsedExtension::CRLNumber(_) => {}
                _ if ext.critical => unknown.push(oid),
                _ => {}
            }
        }
        let mut revoked = HashMap::new();
        for r in c.iter_revoked_certificates() {
            for ext in r.extensions() {
                let oid = ext.oid.to_id_string();
                // reasonCode and invalidityDate are understood; anything else critical (e.g. certificateIssuer
                // of indirect CRLs) makes the CRL unusable.
                if ext.critical && oid != "2.5.29.21" && oid != "2.5.29.24" {
                    unknown.push(oid);
                }
            }
            let reason = r.reason_code().map(|(_, rc)| rc.0).unwrap_or(0);
            revoked.insert(canonical_serial(r.raw_serial()), RevokedEntry { date: r.revocation_date.timestamp(), reason });
        }
        Ok(Crl {
            der: used.to_vec(),
            tbs: c.tbs_cert_list.as_ref().to_vec(),
            issuer: DistinguishedName::from_x509(c.issuer()),
            this_update: c.last_update().timestamp(),
            next_update: c.next_update().map(|t| t.timestamp()),
            revoked,
            sig_alg: SigAlg::from_algorithm_identifier(&c.signature_algorithm),
            signature: c.signature_value.as_ref().to_vec(),
            unknown_critical_extensions: unknown,
            authority_key_id: akid,
            sha256: Sha256::digest(used).into(),
        })
    }
}

/// Decodes every `label` block of PEM text (e.g. "CERTIFICATE", "X509 CRL"). Input that does not
/// start with "-----BEGIN" is treated as a single DER object.
pub fn pem_blocks(data: &[u8], label: &str) -> Result<Vec<Vec<u8>>, ParseError> {
    let trimmed = data.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &data[i..]).unwrap_or(&[]);
    if !trimmed.starts_with(b"-----BEGIN") {
        if trimmed.is_empty() {
            return Ok(Vec::new());
        }
        return Ok(vec![data.to_vec()]);
    }
    let mut out = Vec::new();
    for pem in Pem::iter_from_buffer(data) {
        let pem = pem.map_err(|e| ParseError::Pem(e.to_string()))?;
        if pem.label == label {
            out.push(pem.contents);
        }
    }
    Ok(out)
}

/// Decodes all certificates of a PEM bundle (or one DER certificate).
pub fn certificates_from_pem(data: &[u8]) -> Result<Vec<Certificate>, ParseError> {
    pem_blocks(data, "CERTIFICATE")?.iter().map(|d| Certificate::from_der(d)).collect()
}

/// Decodes all CRLs of a PEM bundle (or one DER CRL).
pub fn crls_from_pem(data: &[u8]) -> Result<Vec<Crl>, ParseError> {
    pem_blocks(data, "X509 CRL")?.iter().map(|d| Crl::from_der(d)).collect()
}
