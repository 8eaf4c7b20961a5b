//! # govgate-idp
//!
//! The built-in OpenID Connect provider of govgate. It is a library in two layers:
//!
//! * a pure core — identity-number validators ([`ids`]), password hashing ([`password`]), TOTP
//!   ([`totp`]), signing keys and JWKS ([`keys`]), token minting and checking ([`tokens`]), the
//!   client registry ([`clients`]), accounts ([`users`]), storage ([`store`]), audit ([`audit`]),
//!   login throttling ([`throttle`]), cookies and CSRF ([`session`]), pages ([`templates`],
//!   [`i18n`]) and the protocol flows ([`flows`]);
//! * a framework-free HTTP layer ([`http`]): [`Idp::handle`] takes an [`IdpRequest`] (method,
//!   path, query, headers, body, client IP, TLS flag) and returns an [`IdpResponse`] (status,
//!   headers, body), so the gateway can call it in-process from pingora behind its own rate
//!   limiting and WAF.
//!
//! Administrative functions for the future `govgate user …` / `govgate client …` commands are in
//! [`admin`].

pub mod admin;
pub mod audit;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod error;
pub mod flows;
pub mod http;
pub mod i18n;
pub mod ids;
pub mod keys;
pub mod password;
pub mod session;
pub mod store;
pub mod templates;
pub mod throttle;
pub mod tokens;
pub mod totp;
pub mod users;

pub use config::IdpConfig;
pub use error::{IdpError, OAuthError};
pub use http::{AuthFailure, ClientCert, Idp, IdpRequest, IdpResponse, SecurityNote};

/// Current time in unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
