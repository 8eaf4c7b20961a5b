//! # govgate-certs
//!
//! Pure certificate trust decisions for govgate: RFC 5280 path validation (RSA PKCS#1 v1.5 / PSS,
//! ECDSA P-256/P-384, Ed25519, SM2-with-SM3), leaf purposes, name constraints, CRL revocation with a
//! caller-supplied [`CrlSource`], ETSI EN 319 102-1 style reports, identity extraction for
//! certificate login, and a first increment of e-signature verification (CMS SignedData, RFC 3161
//! timestamp tokens, signature timestamps as proof of existence for expired / revoked signers). No
//! network or server code: the gateway's certificate login, `/api/certs/verify`, `/api/esign/verify`
//! and the CLI call into this crate. See README.md.
//!
//! ```no_run
//! use govgate_certs::{trust_store, validate_pem, Purpose, RevocationPolicy, ValidationOptions};
//! let store = trust_store::load_dir(std::path::Path::new("policies/trust")).unwrap();
//! let opts = ValidationOptions::at(1_800_000_000).purpose(Purpose::TlsClient).revocation(RevocationPolicy::HardFail);
//! let report = validate_pem(&store, b"-----BEGIN CERTIFICATE-----...", &opts, None).unwrap();
//! assert!(report.passed());
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod crl;
pub mod error;
pub mod esign;
pub mod identity;
pub mod name_constraints;
pub mod parse;
pub mod path;
pub mod purpose;
pub mod report;
pub mod signature;
pub mod sm2;
pub mod store;
pub mod trust_store;
pub mod validate;

pub use crl::{CrlFetchError, CrlSource, RevocationPolicy};
pub use error::{LoadError, ParseError};
pub use esign::{verify_cms, verify_timestamp_token, SignatureReport, Signer, TimestampReport};
pub use identity::{extract as extract_identity, IdKind, Identity};
pub use parse::{certificates_from_pem, crls_from_pem, Certificate, Crl, PolicyConstraints};
pub use purpose::Purpose;
pub use report::{CertificateReport, ChainElement, Finding, Indication, RevocationReason, SubIndication};
pub use store::TrustStore;
pub use validate::{validate, validate_pem, ValidationOptions};
