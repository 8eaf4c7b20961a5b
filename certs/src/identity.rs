//! Identity extraction for certificate login: the subject's PRC resident identity number (GB 11643,
//! 18 characters with check digit) or unified social credit code (GB 32100, 18 characters with check
//! character), and the SHA-256 fingerprint. Pure functions over a decoded [`Certificate`]. The rules
//! mirror the workspace crate `govgate-identity-numbers` (see README: to be merged once it is clippy-clean).

use serde::Serialize;

use crate::parse::Certificate;

/// Kind of identity number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// Resident identity card number (公民身份号码, GB 11643-1999), check digit verified.
    ResidentId,
    /// Unified social credit code (统一社会信用代码, GB 32100-2015), check character verified.
    UnifiedSocialCreditCode,
    /// A subject serialNumber that is neither of the above (kept verbatim).
    Other,
}

/// The identity a certificate asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Subject, human readable.
    pub subject: String,
    /// Common name, if any.
    pub common_name: Option<String>,
    /// Identity number and its kind, if one was found.
    pub id_number: Option<(IdKind, String)>,
    /// SHA-256 of the certificate DER, lowercase hex (for registered-fingerprint login).
    pub fingerprint_sha256: String,
}

const OID_SERIAL_NUMBER: &str = "2.5.4.5";
const OID_CN: &str = "2.5.4.3";

/// Extracts the identity. The subject serialNumber attribute is preferred; otherwise every subject
/// attribute is scanned for an 18-character token that passes a GB 11643 or GB 32100 check.
pub fn extract(cert: &Certificate) -> Identity {
    let attrs = &cert.subject.attributes;
    let mut id = None;
    if let Some(sn) = cert.subject.attribute(OID_SERIAL_NUMBER) {
        let v = sn.trim();
        let v = v.strip_prefix("SF").or_else(|| v.strip_prefix("ID:")).unwrap_or(v);
        id = Some(classify(v).unwrap_or((IdKind::Other, v.to_owned())));
        if id.as_ref().is_some_and(|(k, _)| *k == IdKind::Other) {
            id = tokens(sn).find_map(classify).or(id);
        }
    }
    if id.is_none() {
        id = attrs.iter().flat_map(|(_, v)| tokens(v)).find_map(classify);
    }
    Identity {
        subject: cert.subject.display.clone(),
        common_name: cert.subject.attribute(OID_CN).map(str::to_owned),
        id_number: id,
        fingerprint_sha256: cert.fingerprint_sha256(),
    }
}

fn tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_ascii_alphanumeric()).filter(|t| t.len() == 18)
}

fn classify(s: &str) -> Option<(IdKind, String)> {
    let up = s.to_ascii_uppercase();
    if is_resident_id(&up) {
        Some((IdKind::ResidentId, up))
    } else if is_uscc(&up) {
        Some((IdKind::UnifiedSocialCreditCode, up))
    } else {
        None
    }
}

/// GB 11643-1999 resident identity number with a valid check digit and birth date.
pub fn is_resident_id(s: &str) -> bool {
    govgate_identity_numbers::validate_resident_id(s).is_ok()
}

/// GB 32100-2015 unified social credit code with a valid check character.
pub fn is_uscc(s: &str) -> bool {
    govgate_identity_numbers::validate_uscc(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_check_digit() {
        assert!(is_resident_id("11010519491231002X"));
        assert!(!is_resident_id("110105194912310021"));
        assert!(!is_resident_id("1101051949123100"));
    }

    #[test]
    fn uscc_check_character() {
        assert!(is_uscc("91350100M000100Y43"));
        assert!(!is_uscc("91350100M000100Y44"));
        assert!(!is_uscc("91350100M000100I43"));
    }
}
