//! Leaf certificate purposes: which keyUsage / extendedKeyUsage a certificate needs for a use.

use crate::parse::Certificate;

/// What the leaf certificate is going to be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// No purpose check (chain only).
    Any,
    /// TLS client certificate login: keyUsage (if present) has digitalSignature or keyAgreement;
    /// extendedKeyUsage (if present) has clientAuth or anyExtendedKeyUsage.
    TlsClient,
    /// Document / e-signature signing: keyUsage (if present) has nonRepudiation or digitalSignature;
    /// extendedKeyUsage (if present) has one of documentSigning (RFC 9336), emailProtection,
    /// MS document signing, Adobe PDF signing, clientAuth (common in Chinese citizen certificates)
    /// or anyExtendedKeyUsage.
    DocumentSigning,
    /// RFC 3161 time-stamping authority: extendedKeyUsage present with timeStamping; keyUsage (if
    /// present) has digitalSignature or nonRepudiation.
    TimeStamping,
}

impl Purpose {
    /// Name used in reports and configuration (`any`, `tls-client`, `document-signing`).
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Any => "any",
            Purpose::TlsClient => "tls-client",
            Purpose::DocumentSigning => "document-signing",
            Purpose::TimeStamping => "time-stamping",
        }
    }

    /// Parses the configuration name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "any" => Some(Purpose::Any),
            "tls-client" => Some(Purpose::TlsClient),
            "document-signing" => Some(Purpose::DocumentSigning),
            "time-stamping" => Some(Purpose::TimeStamping),
            _ => None,
        }
    }
}

const DOC_SIGNING_EKUS: &[&str] = &[
    "1.3.6.1.5.5.7.3.36",      // id-kp-documentSigning (RFC 9336)
    "1.3.6.1.4.1.311.10.3.12", // Microsoft document signing
    "1.2.840.113583.1.1.5",    // Adobe PDF signing
];

/// Checks the leaf against `purpose`; `Err` carries a human-readable reason.
pub fn check(leaf: &Certificate, purpose: Purpose) -> Result<(), String> {
    let ku = leaf.key_usage;
    let eku = leaf.ext_key_usage.as_ref();
    match purpose {
        Purpose::Any => Ok(()),
        Purpose::TlsClient => {
            if let Some(ku) = ku {
                if !(ku.digital_signature() || ku.key_agreement()) {
                    return Err("keyUsage lacks digitalSignature".into());
                }
            }
            if let Some(e) = eku {
                if !(e.any || e.client_auth) {
                    return Err("extendedKeyUsage lacks clientAuth".into());
                }
            }
            Ok(())
        }
        Purpose::TimeStamping => {
            if ku.is_some_and(|ku| !(ku.digital_signature() || ku.non_repudiation())) {
                return Err("keyUsage lacks digitalSignature and nonRepudiation".into());
            }
            if !eku.is_some_and(|e| e.time_stamping) {
                return Err("extendedKeyUsage lacks timeStamping".into());
            }
            Ok(())
        }
        Purpose::DocumentSigning => {
            if let Some(ku) = ku {
                if !(ku.non_repudiation() || ku.digital_signature()) {
                    return Err("keyUsage lacks nonRepudiation and digitalSignature".into());
                }
            }
            if let Some(e) = eku {
                let ok = e.any || e.email_protection || e.client_auth || e.other.iter().any(|o| DOC_SIGNING_EKUS.contains(&o.as_str()));
                if !ok {
                    return Err("extendedKeyUsage allows no document signing".into());
                }
            }
            Ok(())
        }
    }
}
