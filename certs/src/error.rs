//! Typed errors of the crate: what can go wrong while decoding certificates, CRLs and PEM input.
//! Validation *outcomes* (revoked, expired, ...) are not errors: they are reported in [`crate::report`].

use thiserror::Error;

/// Decoding errors for certificates, CRLs and PEM text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The DER could not be decoded as an X.509 certificate.
    #[error("malformed certificate: {0}")]
    Certificate(String),
    /// The DER could not be decoded as an X.509 CRL.
    #[error("malformed CRL: {0}")]
    Crl(String),
    /// A known extension could not be decoded.
    #[error("malformed extension {oid}: {reason}")]
    Extension {
        /// Dotted OID of the extension.
        oid: String,
        /// Decoder message.
        reason: String,
    },
    /// The CMS structure could not be decoded or is not SignedData.
    #[error("malformed CMS: {0}")]
    Cms(String),
    /// Trailing bytes after the DER structure.
    #[error("trailing data after DER structure")]
    TrailingData,
    /// PEM armour could not be decoded.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// Input contained no certificate / CRL where one was required.
    #[error("no {0} found in input")]
    Empty(&'static str),
}

/// Errors of the (thin, I/O) trust store loader.
#[derive(Debug, Error)]
pub enum LoadError {
    /// Reading a file or directory failed.
    #[error("reading {path}: {source}")]
    Io {
        /// File or directory.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be decoded.
    #[error("{path}: {source}")]
    Parse {
        /// File.
        path: String,
        /// Underlying error.
        #[source]
        source: ParseError,
    },
}
