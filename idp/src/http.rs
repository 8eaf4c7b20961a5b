//! The framework-free HTTP layer. [`Idp::handle`] maps an [`IdpRequest`] to an [`IdpResponse`];
//! the gateway calls it in-process for every request whose path is under the issuer's path
//! ([`Idp::owns_path`]). No server framework is involved; tests put a tiny hyper server around it.

use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use crate::clients::ClientRegistry;
use crate::config::IdpConfig;
use crate::error::{IdpError, OAuthError};
use crate::i18n::Locale;
use crate::keys::KeyStore;
use crate::store::Store;
use crate::templates::Templates;

/// An HTTP request as the gateway sees it.
#[derive(Debug, Clone)]
pub struct IdpRequest {
    pub method: String,
    /// Path without query (`/idp/token`).
    pub path: String,
    /// Raw query string without `?` (empty if none).
    pub query: String,
    /// Header names in any case; repeated headers as repeated entries.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The client's address as established by the gateway (for throttling and audit).
    pub client_ip: IpAddr,
    /// Whether the browser connection is TLS (the gateway terminates TLS).
    pub tls: bool,
    /// The client certificate of the TLS connection (mTLS), as the gateway judged it, if one
    /// was presented. This is the certificate-login hook: the IdP never parses or verifies
    /// certificates itself, and only a [`ClientCert::verified`] one may log in.
    pub client_cert: Option<ClientCert>,
}

/// A client certificate, as judged by the gateway (chain to its trust anchors, purpose
/// tls-client, revocation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// Lowercase hex SHA-256 of the DER certificate.
    pub fingerprint_sha256: String,
    /// Subject DN, for display.
    pub subject: String,
    /// The identity number in the subject: a resident identity number (GB 11643) or unified
    /// social credit code (GB 32100) whose check character the gateway verified.
    pub id_number: Option<String>,
    /// `None` when the certificate was verified. Otherwise why it was refused (`untrusted`,
    /// `expired`, `not_yet_valid`, `revoked`, `revocation_unknown`, `unusable`): shown to the
    /// user, never used to log in.
    pub refused: Option<String>,
}

impl ClientCert {
    /// A certificate the gateway verified.
    pub fn verified(fingerprint_sha256: impl Into<String>, subject: impl Into<String>, id_number: Option<String>) -> Self {
        ClientCert { fingerprint_sha256: fingerprint_sha256.into(), subject: subject.into(), id_number, refused: None }
    }
    /// Whether it may be used to log in.
    pub fn is_verified(&self) -> bool {
        self.refused.is_none()
    }
}

impl IdpRequest {
    /// First header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    /// Cookie value by name (all `Cookie` headers are searched).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("cookie")).find_map(|(_, v)| crate::session::cookie_value(v, name))
    }
}

/// The answer: status, headers, body, and what the host should record as a security event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Set when the request was a failed authentication (the gateway turns it into an attack
    /// event for the security console); the audit table has the same facts.
    pub security: Option<SecurityNote>,
}

/// A failed authentication, for the host's security log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityNote {
    pub what: AuthFailure,
    /// The user name that was tried (may be a phone or identity number: mask it before logging).
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Wrong user name or password.
    Password,
    /// Too many failures: this attempt was not even checked.
    Throttled,
    /// This failure locked the account.
    AccountLocked,
    /// Wrong one-time code.
    OneTimeCode,
    /// No account is bound to the presented certificate.
    Certificate,
    /// A client application failed to authenticate at the token endpoint.
    Client,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Password => "password",
            AuthFailure::Throttled => "throttled",
            AuthFailure::AccountLocked => "account_locked",
            AuthFailure::OneTimeCode => "one_time_code",
            AuthFailure::Certificate => "certificate",
            AuthFailure::Client => "client",
        }
    }
}

impl IdpResponse {
    pub fn new(status: u16) -> Self {
        IdpResponse {
            status,
            headers: vec![("Cache-Control".into(), "no-store".into()), ("Pragma".into(), "no-cache".into())],
            body: Vec::new(),
            security: None,
        }
    }
    /// Marks the answer as a failed authentication.
    pub fn noting(mut self, what: AuthFailure, user: Option<&str>) -> Self {
        self.security = Some(SecurityNote { what, user: user.filter(|u| !u.is_empty()).map(str::to_string) });
        self
    }
    pub fn with_header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub fn json(status: u16, v: &serde_json::Value) -> Self {
        let mut r = Self::new(status).with_header("Content-Type", "application/json");
        r.body = v.to_string().into_bytes();
        r
    }
    /// A cacheable public JSON document (discovery, JWKS).
    pub fn public_json(v: &serde_json::Value, max_age: u32) -> Self {
        IdpResponse {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Cache-Control".into(), format!("public, max-age={max_age}")),
                ("Access-Control-Allow-Origin".into(), "*".into()),
            ],
            body: v.to_string().into_bytes(),
            security: None,
        }
    }
    pub fn html(status: u16, body: String) -> Self {
        let mut r = Self::new(status)
            .with_header("Content-Type", "text/html; charset=utf-8")
            .with_header(
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; frame-src http: https:; frame-ancestors 'none'; base-uri 'none'",
            )
            .with_header("X-Frame-Options", "DENY")
            .with_header("X-Content-Type-Options", "nosniff")
            .with_header("Referrer-Policy", "no-referrer");
        r.body = body.into_bytes();
        r
    }
    pub fn redirect(location: &str) -> Self {
        Self::new(303).with_header("Location", location)
    }
    /// An RFC 6749 §5.2 token-endpoint error.
    pub fn oauth_error(e: &OAuthError) -> Self {
        let mut r = Self::json(e.token_status(), &e.to_json());
        if e.code == crate::error::ErrorCode::InvalidClient {
            r = r.noting(AuthFailure::Client, None);
            if e.basic_auth_attempted {
                r = r.with_header("WWW-Authenticate", "Basic realm=\"govgate\"");
            }
        }
        r
    }
    /// An RFC 6750 §3 bearer error.
    pub fn bearer_error(status: u16, code: &str, desc: &str) -> Self {
        let mut r = Self::new(status).with_header("WWW-Authenticate", format!("Bearer error=\"{code}\", error_description=\"{desc}\""));
        if status != 401 {
            r = r.with_header("Content-Type", "application/json");
            r.body = serde_json::json!({"error": code, "error_description": desc}).to_string().into_bytes();
        }
        r
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Shared state behind [`Idp`].
pub struct Ctx {
    pub cfg: IdpConfig,
    pub store: Store,
    pub keys: KeyStore,
    pub clients: RwLock<Arc<ClientRegistry>>,
    pub templates: Templates,
    pub csrf_key: Vec<u8>,
    pub base: String,
}

impl Ctx {
    pub fn clients(&self) -> Arc<ClientRegistry> {
        match self.clients.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
    pub fn csrf(&self) -> crate::session::Csrf<'_> {
        crate::session::Csrf { key: &self.csrf_key }
    }
    /// Path of an endpoint under the issuer (`/login` → `/idp/login`).
    pub fn path(&self, p: &str) -> String {
        format!("{}{}", self.base, p)
    }
    /// Render a page, turning template failures into a plain 500.
    pub fn page(&self, status: u16, name: &str, locale: Locale, title: &str, ctx: minijinja::Value) -> IdpResponse {
        match self.templates.render(name, locale, title, ctx) {
            Ok(b) => IdpResponse::html(status, b),
            Err(e) => {
                tracing::error!(error = %e, "template");
                let mut r = IdpResponse::new(500).with_header("Content-Type", "text/plain; charset=utf-8");
                r.body = b"internal error".to_vec();
                r
            }
        }
    }
}

/// The provider. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Idp {
    pub ctx: Arc<Ctx>,
}

impl Idp {
    /// Open the data directory (keys, CSRF key, SQLite database with migrations) and the client
    /// registry. Generates keys on first start.
    pub async fn open(cfg: IdpConfig) -> Result<Self, IdpError> {
        url::Url::parse(&cfg.issuer).map_err(|e| IdpError::Config(format!("issuer: {e}")))?;
        crate::keys::ensure_private_dir(&cfg.data_dir)?;
        if !cfg.clients_file.exists() {
            tracing::warn!(file = %cfg.clients_file.display(), "client registry not found: no clients registered");
        }
        let clients = ClientRegistry::load(&cfg.clients_file)?;
        let keys = KeyStore::open(&cfg.data_dir.join("keys"), &cfg.signing_algs, clients.max_jwt_ttl())?;
        check_client_algs(&clients, &keys)?;
        let csrf_key = crate::keys::load_or_create_secret(&cfg.data_dir.join("csrf.key"))?;
        let store = Store::open(&cfg.database_url()).await?;
        let base = cfg.base_path();
        Ok(Idp {
            ctx: Arc::new(Ctx { cfg, store, keys, clients: RwLock::new(Arc::new(clients)), templates: Templates::new()?, csrf_key, base }),
        })
    }

    /// Re-read the client registry file (on SIGHUP / policy reload).
    pub fn reload_clients(&self) -> Result<(), IdpError> {
        let c = ClientRegistry::load(&self.ctx.cfg.clients_file)?;
        check_client_algs(&c, &self.ctx.keys)?;
        let mut w = self.ctx.clients.write().map_err(|_| IdpError::Config("client lock poisoned".into()))?;
        *w = Arc::new(c);
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }
    pub fn keys(&self) -> &KeyStore {
        &self.ctx.keys
    }
    pub fn config(&self) -> &IdpConfig {
        &self.ctx.cfg
    }

    /// Housekeeping, to be called periodically (e.g. every 10 minutes): deletes expired codes,
    /// pending requests, access-token records and assertion jtis, and retired signing keys whose
    /// tokens have all expired.
    pub async fn maintenance(&self) -> Result<(), IdpError> {
        let now = crate::now();
        self.ctx.store.purge_expired(now).await?;
        self.ctx.keys.prune(now)?;
        Ok(())
    }

    /// Whether the gateway should hand this path to [`Idp::handle`].
    pub fn owns_path(&self, path: &str) -> bool {
        let b = &self.ctx.base;
        path == format!("{b}/.well-known/openid-configuration") || (path.starts_with(b.as_str()) && ROUTES.contains(&&path[b.len()..]))
    }

    /// Handle one request. Never panics on client input; internal errors become 500.
    pub async fn handle(&self, req: IdpRequest) -> IdpResponse {
        let ctx = &self.ctx;
        let Some(route) = req.path.strip_prefix(ctx.base.as_str()) else { return not_found() };
        let m = req.method.to_ascii_uppercase();
        let r = match (route, m.as_str()) {
            ("/.well-known/openid-configuration", "GET" | "HEAD") => return crate::flows::discovery::document(ctx),
            ("/jwks", "GET" | "HEAD") => return IdpResponse::public_json(&ctx.keys.jwks(), 300),
            ("/authorize", "GET" | "POST") => crate::flows::authorize::authorize(ctx, &req).await,
            ("/login", "POST") => crate::flows::authorize::login(ctx, &req).await,
            ("/otp", "POST") => crate::flows::authorize::otp(ctx, &req).await,
            ("/consent", "POST") => crate::flows::authorize::consent(ctx, &req).await,
            ("/register", "GET" | "POST") => crate::flows::register::register(ctx, &req).await,
            ("/token", "POST") => return crate::flows::token::token(ctx, &req).await,
            ("/userinfo", "GET" | "POST") => return crate::flows::userinfo::userinfo(ctx, &req).await,
            ("/introspect", "POST") => return crate::flows::token::introspect(ctx, &req).await,
            ("/revoke", "POST") => return crate::flows::token::revoke(ctx, &req).await,
            ("/logout", "GET" | "POST") => crate::flows::logout::end_session(ctx, &req).await,
            (p, _) if ROUTES.contains(&p) || p == "/.well-known/openid-configuration" => return method_not_allowed(p),
            _ => return not_found(),
        };
        match r {
            Ok(resp) => resp,
            Err(e) => {
                tracing::error!(error = %e, path = %req.path, "idp request failed");
                let mut r = IdpResponse::new(500).with_header("Content-Type", "text/plain; charset=utf-8");
                r.body = b"internal error".to_vec();
                r
            }
        }
    }
}

/// Every client's signing algorithm must have an active key.
fn check_client_algs(clients: &ClientRegistry, keys: &KeyStore) -> Result<(), IdpError> {
    let algs = keys.algorithms();
    for c in clients.list() {
        if !algs.contains(&c.id_token_alg) {
            return Err(IdpError::Config(format!(
                "client {}: id_token_alg {} has no key (add it to signing_algs)",
                c.id,
                c.id_token_alg.as_str()
            )));
        }
    }
    Ok(())
}

const ROUTES: &[&str] =
    &["/jwks", "/authorize", "/login", "/otp", "/consent", "/register", "/token", "/userinfo", "/introspect", "/revoke", "/logout"];

fn not_found() -> IdpResponse {
    let mut r = IdpResponse::new(404).with_header("Content-Type", "text/plain; charset=utf-8");
    r.body = b"not found".to_vec();
    r
}

fn method_not_allowed(route: &str) -> IdpResponse {
    let allow = match route {
        "/token" | "/introspect" | "/revoke" | "/login" | "/otp" | "/consent" => "POST",
        "/jwks" | "/.well-known/openid-configuration" => "GET, HEAD",
        _ => "GET, POST",
    };
    let mut r = IdpResponse::json(405, &serde_json::json!({"error": "invalid_request", "error_description": "method not allowed"}));
    r.headers.push(("Allow".into(), allow.into()));
    r
}
