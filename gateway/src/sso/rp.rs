//! The gateway as an OpenID Connect relying party, with the `openidconnect` crate: discovery
//! (cached), the authorization URL (code + PKCE S256 + `state` + `nonce`, `acr_values` for
//! step-up), the code exchange and the ID-token checks (signature from the provider's JWKS,
//! `iss`, `aud`, `exp`, `nonce`), and userinfo.
//!
//! The provider is reached through [`Transport`]: requests to the built-in provider's own
//! origin go straight to its handler in-process (no network hop, no DNS for `id.localhost`);
//! any other issuer is reached over HTTPS with reqwest, so the same code serves an external
//! provider given its issuer URL.

use crate::idp_service::IdpService;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, CsrfToken, HttpRequest, HttpResponse, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long discovery and JWKS answers are reused.
const PROVIDER_TTL: Duration = Duration::from_secs(3600);
/// Fastest refetch when a token names a key we do not have (key rotation).
const REFETCH_AFTER: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum RpError {
    #[error("identity provider unreachable: {0}")]
    Transport(String),
    #[error("identity provider answered {0}")]
    Status(u16),
    #[error("identity provider document: {0}")]
    Document(String),
    #[error("token exchange refused: {0}")]
    Exchange(String),
    #[error("ID token refused: {0}")]
    IdToken(String),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(String);

/// Sends the relying party's requests: in-process to the built-in provider, else over HTTPS.
pub struct Transport<'a> {
    pub idp: Option<&'a IdpService>,
    pub http: &'a reqwest::Client,
}

fn origin(u: &url::Url) -> (String, Option<String>, Option<u16>) {
    (u.scheme().to_string(), u.host_str().map(str::to_ascii_lowercase), u.port_or_known_default())
}

impl Transport<'_> {
    fn in_process(&self, url: &str) -> Option<&IdpService> {
        let idp = self.idp?;
        let (a, b) = (url::Url::parse(url).ok()?, url::Url::parse(idp.issuer()).ok()?);
        (origin(&a) == origin(&b)).then_some(idp)
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = req.uri().to_string();
        if let Some(idp) = self.in_process(&url) {
            let r = govgate_idp::IdpRequest {
                method: req.method().as_str().to_string(),
                path: req.uri().path().to_string(),
                query: req.uri().query().unwrap_or("").to_string(),
                headers: req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect(),
                body: req.body().clone(),
                client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                tls: true,
                client_cert: None,
            };
            let answer = idp.handle(r).await;
            let mut b = http::Response::builder().status(answer.status);
            for (k, v) in &answer.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            return b.body(answer.body).map_err(|e| TransportError(e.to_string()));
        }
        let (parts, body) = req.into_parts();
        let resp = self
            .http
            .request(parts.method, &url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| TransportError(e.to_string()))?;
        let mut b = http::Response::builder().status(resp.status().as_u16());
        for (k, v) in resp.headers() {
            b = b.header(k, v);
        }
        let body = resp.bytes().await.map_err(|e| TransportError(e.to_string()))?;
        b.body(body.to_vec()).map_err(|e| TransportError(e.to_string()))
    }

    /// GET a JSON document (with a bearer token when given).
    pub async fn get_json(&self, url: &str, bearer: Option<&str>) -> Result<serde_json::Value, RpError> {
        let mut b = http::Request::builder().method("GET").uri(url).header("accept", "application/json");
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = b.body(Vec::new()).map_err(|e| RpError::Transport(e.to_string()))?;
        let resp = self.send(req).await.map_err(|e| RpError::Transport(e.0))?;
        if resp.status() != 200 {
            return Err(RpError::Status(resp.status().as_u16()));
        }
        serde_json::from_slice(resp.body()).map_err(|e| RpError::Document(e.to_string()))
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Transport<'_> {
    type Error = TransportError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'c>>;
    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// What the gateway knows about the provider.
pub struct Provider {
    pub issuer: String,
    pub meta: CoreProviderMetadata,
    /// The discovery document as received (for `end_session_endpoint`).
    pub document: serde_json::Value,
    /// The provider's keys, for logout and access tokens.
    pub jwks: jsonwebtoken::jwk::JwkSet,
    fetched: Instant,
}

impl Provider {
    pub fn end_session_endpoint(&self) -> Option<&str> {
        self.document.get("end_session_endpoint").and_then(|v| v.as_str())
    }
    pub fn userinfo_endpoint(&self) -> Option<&str> {
        self.document.get("userinfo_endpoint").and_then(|v| v.as_str())
    }
}

/// The provider's metadata and keys, fetched on first use and cached.
#[derive(Default)]
pub struct ProviderCache {
    current: tokio::sync::RwLock<Option<Arc<Provider>>>,
}

impl ProviderCache {
    /// The provider for `issuer`: cached, or discovered now.
    pub async fn get(&self, t: &Transport<'_>, issuer: &str) -> Result<Arc<Provider>, RpError> {
        if let Some(p) = self.current.read().await.as_ref() {
            if p.issuer == issuer && p.fetched.elapsed() < PROVIDER_TTL {
                return Ok(p.clone());
            }
        }
        self.refetch(t, issuer).await
    }

    /// Fetches again (a key we do not know, an ID token that does not verify), at most every
    /// few seconds.
    pub async fn refresh(&self, t: &Transport<'_>, issuer: &str) -> Result<Arc<Provider>, RpError> {
        if let Some(p) = self.current.read().await.as_ref() {
            if p.issuer == issuer && p.fetched.elapsed() < REFETCH_AFTER {
                return Ok(p.clone());
            }
        }
        self.refetch(t, issuer).await
    }

    async fn refetch(&self, t: &Transport<'_>, issuer: &str) -> Result<Arc<Provider>, RpError> {
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let document = t.get_json(&url, None).await?;
        if document.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(RpError::Document("the discovery document names another issuer".into()));
        }
        let meta: CoreProviderMetadata = serde_json::from_value(document.clone()).map_err(|e| RpError::Document(e.to_string()))?;
        let jwks_raw = t.get_json(meta.jwks_uri().url().as_str(), None).await?;
        let keys: CoreJsonWebKeySet = serde_json::from_value(jwks_raw.clone()).map_err(|e| RpError::Document(format!("jwks: {e}")))?;
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks_raw).map_err(|e| RpError::Document(format!("jwks: {e}")))?;
        let p = Arc::new(Provider { issuer: issuer.to_string(), meta: meta.set_jwks(keys), document, jwks, fetched: Instant::now() });
        *self.current.write().await = Some(p.clone());
        Ok(p)
    }
}

/// A login being started: where to send the browser and what to remember.
pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The authorization URL for one app's client.
pub fn start(p: &Provider, client_id: &str, redirect_uri: &str, scopes: &[String], acr: Option<&str>) -> Result<Started, RpError> {
    let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|e| RpError::Document(e.to_string()))?;
    let client = CoreClient::from_provider_metadata(p.meta.clone(), ClientId::new(client_id.to_string()), None).set_redirect_uri(redirect);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge);
    for s in scopes.iter().filter(|s| *s != "openid") {
        req = req.add_scope(Scope::new(s.clone()));
    }
    if let Some(a) = acr {
        req = req.add_auth_context_value(AuthenticationContextClass::new(a.to_string()));
    }
    let (url, state, nonce) = req.url();
    Ok(Started {
        url: url.to_string(),
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
    })
}

/// A completed login: the verified ID token and its claims, and the access token.
pub struct Completed {
    pub id_token: String,
    pub claims: serde_json::Value,
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Seconds the access token lives (when the provider says).
    pub expires_in: Option<u64>,
}

/// A renewal through the refresh token.
pub struct Refreshed {
    /// The rotated refresh token (the old one is spent), if the provider rotates.
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
}

/// Renews with a refresh token. `Err(RpError::Exchange)` means the provider refused it (its
/// session ended, the token was revoked): the gateway session must end too.
pub async fn refresh(t: &Transport<'_>, p: &Provider, client_id: &str, refresh_token: &str) -> Result<Refreshed, RpError> {
    let client = CoreClient::from_provider_metadata(p.meta.clone(), ClientId::new(client_id.to_string()), None);
    let rt = openidconnect::RefreshToken::new(refresh_token.to_string());
    let tokens =
        client.exchange_refresh_token(&rt).map_err(|e| RpError::Document(e.to_string()))?.request_async(t).await.map_err(|e| match e {
            openidconnect::RequestTokenError::ServerResponse(r) => RpError::Exchange(r.error().to_string()),
            other => RpError::Transport(other.to_string()),
        })?;
    Ok(Refreshed {
        refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
        expires_in: tokens.expires_in().map(|d| d.as_secs()),
    })
}

/// Exchanges the code (with the PKCE verifier) and verifies the ID token against `nonce`.
pub async fn complete(
    t: &Transport<'_>,
    p: &Provider,
    client_id: &str,
    redirect_uri: &str,
    code: &str,
    pkce_verifier: &str,
    nonce: &str,
) -> Result<Completed, RpError> {
    let redirect = RedirectUrl::new(redirect_uri.to_string()).map_err(|e| RpError::Document(e.to_string()))?;
    let client = CoreClient::from_provider_metadata(p.meta.clone(), ClientId::new(client_id.to_string()), None).set_redirect_uri(redirect);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| RpError::Document(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
        .request_async(t)
        .await
        .map_err(|e| RpError::Exchange(describe(&e)))?;
    let id_token = tokens.id_token().ok_or_else(|| RpError::IdToken("no id_token in the answer".into()))?;
    let verifier = client.id_token_verifier().set_allowed_algs(vec![
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EdDsa,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    ]);
    id_token.claims(&verifier, &Nonce::new(nonce.to_string())).map_err(|e| RpError::IdToken(e.to_string()))?;
    let raw = id_token.to_string();
    // Verified above: read the claims the standard types do not carry (sid, acr as sent).
    let claims = raw
        .split('.')
        .nth(1)
        .and_then(|p| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| RpError::IdToken("unreadable payload".into()))?;
    Ok(Completed {
        id_token: raw,
        claims,
        access_token: tokens.access_token().secret().clone(),
        refresh_token: tokens.refresh_token().map(|r| r.secret().clone()),
        expires_in: tokens.expires_in().map(|d| d.as_secs()),
    })
}

fn describe<E: std::error::Error + 'static>(
    e: &openidconnect::RequestTokenError<E, openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>>,
) -> String {
    match e {
        openidconnect::RequestTokenError::ServerResponse(r) => r.error().to_string(),
        other => other.to_string(),
    }
}
