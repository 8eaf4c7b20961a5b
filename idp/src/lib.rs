//! # govgate-idp
//!
//! The built-in OpenID Connect provider (issue: "The built-in OpenID Connect identity
//! provider"). Not written yet: this crate is the place where token minting, code and session
//! rules will live as plain library code, served by the `govgate` binary behind the gateway's
//! own rate limiting.
