//! # govgate-certs
//!
//! X.509 path validation, revocation and CMS e-signature verification (issue: "Certificates").
//! Not written yet: this crate will hold the pure validation logic (no network or server code),
//! used by the gateway's certificate login and its `/api/certs/verify` and `/api/esign/verify`.
