//! The client registry: relying parties read from a TOML file (`policies/clients.toml`), with
//! their secret hash, redirect / post-logout / back-channel URIs, grant types, scopes, first-party
//! flag, token lifetimes and authentication method; and client authentication against it.
//!
//! Client secrets are generated (256-bit random) and stored as `sha256:<hex>` — they are
//! high-entropy, so a fast hash keeps client authentication cheap; an argon2id PHC string is
//! also accepted for human-chosen secrets. Comparison is constant-time.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::crypto::{ct_eq, random_token, sha256_hex};
use crate::error::IdpError;
use crate::keys::SigningAlg;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }
}

fn default_auth_method() -> AuthMethod {
    AuthMethod::ClientSecretBasic
}
fn default_grants() -> Vec<String> {
    vec!["authorization_code".into(), "refresh_token".into()]
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into(), "phone".into()]
}
fn default_at_ttl() -> i64 {
    600
}
fn default_id_ttl() -> i64 {
    300
}
fn default_rt_ttl() -> i64 {
    8 * 3600
}
fn default_alg() -> SigningAlg {
    SigningAlg::ES256
}

/// One registered client, as written in the TOML registry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `sha256:<hex>` or an argon2id PHC string. Absent for public clients and private_key_jwt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    #[serde(default = "default_auth_method")]
    pub auth_method: AuthMethod,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<String>,
    #[serde(default = "default_grants")]
    pub grant_types: Vec<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// First-party clients skip the consent page.
    #[serde(default)]
    pub first_party: bool,
    /// May receive the full identity number with the `gov_identity` scope (masked otherwise).
    #[serde(default)]
    pub gov_identity_full: bool,
    #[serde(default = "default_alg", alias = "id_token_signed_response_alg")]
    pub id_token_alg: SigningAlg,
    #[serde(default = "default_at_ttl")]
    pub access_token_ttl: i64,
    #[serde(default = "default_id_ttl")]
    pub id_token_ttl: i64,
    #[serde(default = "default_rt_ttl")]
    pub refresh_token_ttl: i64,
    /// Public keys for private_key_jwt (a JWK Set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<jsonwebtoken::jwk::JwkSet>,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }
    pub fn allows_grant(&self, g: &str) -> bool {
        self.grant_types.iter().any(|x| x == g)
    }
    /// Exact, case-sensitive, character-for-character redirect URI match (no prefix, no wildcard).
    pub fn redirect_uri_registered(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }
    pub fn post_logout_uri_registered(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| r == uri)
    }
    /// Verify a presented secret against the stored hash in constant time.
    pub fn verify_secret(&self, secret: &str) -> bool {
        match &self.secret_hash {
            Some(h) if h.starts_with("sha256:") => ct_eq(sha256_hex(secret).as_bytes(), &h.as_bytes()["sha256:".len()..]),
            Some(h) if h.starts_with("$argon2id$") => crate::password::verify_password(secret, h),
            _ => false,
        }
    }
    /// The requested scopes this client may have (the rest are dropped, RFC 6749 §3.3).
    pub fn filter_scope(&self, requested: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in requested.split(' ').filter(|s| !s.is_empty()) {
            if self.scopes.iter().any(|x| x == s) && !out.iter().any(|x| x == s) {
                out.push(s.to_string());
            }
        }
        out
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryFile {
    #[serde(default, rename = "client")]
    clients: Vec<Client>,
}

/// All clients, by id.
#[derive(Debug, Default, Clone)]
pub struct ClientRegistry {
    clients: HashMap<String, Client>,
}

impl ClientRegistry {
    /// Parse a registry from TOML text, validating every entry.
    pub fn from_toml(text: &str) -> Result<Self, IdpError> {
        let file: RegistryFile = toml::from_str(text).map_err(|e| IdpError::Config(format!("clients: {e}")))?;
        let mut clients = HashMap::new();
        for c in file.clients {
            validate_client(&c)?;
            if clients.insert(c.id.clone(), c).is_some() {
                return Err(IdpError::Config("clients: duplicate client id".into()));
            }
        }
        Ok(ClientRegistry { clients })
    }

    /// Load from a file; a missing file is an empty registry.
    pub fn load(path: &Path) -> Result<Self, IdpError> {
        match std::fs::read_to_string(path) {
            Ok(t) => Self::from_toml(&t).map_err(|e| IdpError::Config(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e.into()),
        }
    }

    pub fn get(&self, id: &str) -> Option<&Client> {
        self.clients.get(id)
    }

    /// Clients sorted by id (for `govgate client list`).
    pub fn list(&self) -> Vec<&Client> {
        let mut v: Vec<&Client> = self.clients.values().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Longest JWT lifetime of any client (how long a retired signing key must stay published).
    pub fn max_jwt_ttl(&self) -> i64 {
        self.clients.values().map(|c| c.access_token_ttl.max(c.id_token_ttl)).max().unwrap_or(3600).max(3600)
    }

    pub fn insert(&mut self, c: Client) -> Result<(), IdpError> {
        validate_client(&c)?;
        self.clients.insert(c.id.clone(), c);
        Ok(())
    }
}

fn validate_client(c: &Client) -> Result<(), IdpError> {
    let err = |m: &str| Err(IdpError::Config(format!("client {:?}: {m}", c.id)));
    if c.id.is_empty() || !c.id.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)) {
        return err("id must be non-empty [A-Za-z0-9._-]");
    }
    for u in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris).chain(&c.backchannel_logout_uri).chain(&c.frontchannel_logout_uri) {
        match url::Url::parse(u) {
            Ok(p) if p.fragment().is_some() => return err("URIs must not contain a fragment"),
            Ok(p) if p.scheme() == "https" || (p.scheme() == "http" && is_loopback(&p)) => {}
            Ok(_) => return err("URIs must be https (http only for loopback)"),
            Err(_) => return err("invalid URI"),
        }
    }
    match c.auth_method {
        AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost if c.secret_hash.is_none() => return err("secret_hash required"),
        AuthMethod::PrivateKeyJwt if c.jwks.is_none() => return err("jwks required for private_key_jwt"),
        AuthMethod::None if c.allows_grant("client_credentials") => return err("public clients cannot use client_credentials"),
        _ => {}
    }
    for g in &c.grant_types {
        if !["authorization_code", "refresh_token", "client_credentials"].contains(&g.as_str()) {
            return err("unknown grant type");
        }
    }
    if c.access_token_ttl <= 0 || c.id_token_ttl <= 0 || c.refresh_token_ttl <= 0 {
        return err("lifetimes must be positive");
    }
    Ok(())
}

fn is_loopback(u: &url::Url) -> bool {
    matches!(u.host_str(), Some("127.0.0.1") | Some("localhost") | Some("[::1]"))
}

/// A newly generated client secret (shown once) and the hash to store in the registry.
pub fn generate_client_secret() -> (String, String) {
    let s = random_token();
    let h = format!("sha256:{}", sha256_hex(&s));
    (s, h)
}

/// Append a client to a registry file (for `govgate client add`), refusing duplicates.
pub fn add_client_to_file(path: &Path, client: Client) -> Result<(), IdpError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e.into()),
    };
    let mut reg = ClientRegistry::from_toml(&text)?;
    if reg.get(&client.id).is_some() {
        return Err(IdpError::Invalid(format!("client {} exists", client.id)));
    }
    reg.insert(client.clone())?;
    let block = toml::to_string(&RegistryFile { clients: vec![client] }).map_err(|e| IdpError::Config(e.to_string()))?;
    let mut out = text;
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&block);
    std::fs::write(path, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = r#"
[[client]]
id = "portal"
secret_hash = "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
redirect_uris = ["https://portal.example.gov.cn/cb"]
first_party = true
"#;

    #[test]
    fn parse_and_verify_secret() {
        let r = ClientRegistry::from_toml(REG).unwrap();
        let c = r.get("portal").unwrap();
        assert!(c.verify_secret("secret"));
        assert!(!c.verify_secret("secreT"));
        assert!(c.redirect_uri_registered("https://portal.example.gov.cn/cb"));
        assert!(!c.redirect_uri_registered("https://portal.example.gov.cn/cb/"));
        assert!(!c.redirect_uri_registered("https://portal.example.gov.cn/CB"));
        assert!(!c.redirect_uri_registered("https://portal.example.gov.cn/cb?x=1"));
        assert_eq!(c.filter_scope("openid  profile admin openid"), vec!["openid", "profile"]);
    }

    #[test]
    fn rejects_bad_entries() {
        assert!(ClientRegistry::from_toml("[[client]]\nid='a'\nredirect_uris=['http://evil.example/cb']\nauth_method='none'").is_err());
        assert!(ClientRegistry::from_toml("[[client]]\nid='a'\nauth_method='client_secret_basic'").is_err());
        assert!(ClientRegistry::from_toml("[[client]]\nid='a'\nauth_method='none'\ngrant_types=['client_credentials']").is_err());
        assert!(ClientRegistry::from_toml("[[client]]\nid='a'\nauth_method='none'\nbogus=1").is_err());
    }

    #[test]
    fn add_to_file_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("clients.toml");
        std::fs::write(&p, REG).unwrap();
        let (secret, hash) = generate_client_secret();
        let mut c = ClientRegistry::from_toml(REG).unwrap().get("portal").unwrap().clone();
        c.id = "second".into();
        c.secret_hash = Some(hash);
        add_client_to_file(&p, c.clone()).unwrap();
        assert!(add_client_to_file(&p, c).is_err());
        let r = ClientRegistry::load(&p).unwrap();
        assert_eq!(r.list().len(), 2);
        assert!(r.get("second").unwrap().verify_secret(&secret));
    }
}

#[cfg(test)]
mod example_registry {
    /// The example registry shipped in `policies/clients.toml` must parse.
    #[test]
    fn policies_clients_toml_parses() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/clients.toml");
        let r = super::ClientRegistry::load(&p).unwrap();
        assert!(r.get("gov-portal").is_some());
        assert!(r.get("social-insurance-app").unwrap().is_public());
    }
}
