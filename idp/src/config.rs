//! Provider configuration: issuer URL, data directory, client registry file, argon2id cost,
//! signing algorithms and the lifetimes of codes, sessions and pending requests.

use std::path::PathBuf;

use crate::keys::SigningAlg;
use crate::password::Argon2Params;

/// Everything the provider needs at start-up.
#[derive(Debug, Clone)]
pub struct IdpConfig {
    /// Issuer identifier, `https://host[/path]` without trailing slash. Every endpoint is served
    /// under its path (e.g. issuer `https://gw.example/idp` → `/idp/token`).
    pub issuer: String,
    /// Directory for `idp.sqlite`, `keys/` and `csrf.key` (created with mode 0700/0600).
    pub data_dir: PathBuf,
    /// The client registry (TOML), e.g. `policies/clients.toml`.
    pub clients_file: PathBuf,
    /// Database URL; default `sqlite://<data_dir>/idp.sqlite` (WAL).
    pub database_url: Option<String>,
    /// argon2id cost for new password hashes.
    pub argon2: Argon2Params,
    /// Signing algorithms to keep keys for; the first is the default. ES256 by default, with
    /// EdDSA and RS256 (which OpenID Connect conformance requires a provider to offer) beside it.
    pub signing_algs: Vec<SigningAlg>,
    /// Authorization code lifetime in seconds (≤ 60).
    pub code_ttl: i64,
    /// SSO session lifetime in seconds.
    pub session_ttl: i64,
    /// Lifetime of a pending authorization request (login form) in seconds.
    pub auth_request_ttl: i64,
    /// Brute-force throttling: failures before delays start, and failures before an account lock.
    pub throttle_free_failures: i64,
    pub lockout_failures: i64,
}

impl IdpConfig {
    /// Defaults for a given issuer and data directory (clients file `<data_dir>/clients.toml`).
    pub fn new(issuer: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        IdpConfig {
            issuer: issuer.into().trim_end_matches('/').to_string(),
            clients_file: data_dir.join("clients.toml"),
            data_dir,
            database_url: None,
            argon2: Argon2Params::PRODUCTION,
            signing_algs: vec![SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::RS256],
            code_ttl: 60,
            session_ttl: 8 * 3600,
            auth_request_ttl: 600,
            throttle_free_failures: 3,
            lockout_failures: 10,
        }
    }

    /// Path part of the issuer (`""` or `/idp`), the prefix of every endpoint.
    pub fn base_path(&self) -> String {
        match url::Url::parse(&self.issuer) {
            Ok(u) => u.path().trim_end_matches('/').to_string(),
            Err(_) => String::new(),
        }
    }

    /// The database URL: [`IdpConfig::database_url`] or `sqlite://<data_dir>/idp.sqlite`.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("idp.sqlite").display()))
    }

    /// Full URL of an endpoint (`/token` → `https://issuer/token`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}
