//! Single sign-on at the gateway (an identity-aware proxy): apps that cannot speak OpenID
//! Connect are protected by the gateway, which is the relying party of the identity provider.
//!
//! * [`access`]: the pure decision (allow / login / step-up / forbidden with a reason);
//! * [`rp`]: the relying party (`openidconnect` crate), in-process for the built-in provider;
//! * [`sessions`]: server-side sessions (SQLite + memory), one per host, indexed by `sid`,
//!   renewed through refresh tokens ([`seal`]ed at rest) when the access token expires;
//! * [`assertion`]: the `X-Govgate-Assertion` JWT and the gateway's JWKS;
//! * [`bearer`]: access tokens on API paths;
//! * [`routes`]: the reserved `/.govgate/*` paths (callback, logout, back-channel logout, JWKS).
//!
//! [`SsoService::gate`] is the one call `proxy.rs` makes: it answers with [`Gate::Continue`]
//! (identity headers to add) or [`Gate::Reply`] (a redirect, a 401/403 page, a reserved route).

pub mod access;
pub mod assertion;
pub mod bearer;
pub mod routes;
pub mod rp;
pub mod seal;
pub mod sessions;

use crate::error_page;
use crate::idp_service::IdpService;
use access::{Decision, Identity};
use govgate_policies::{App, Policy};
use http::HeaderMap;
use sessions::Sessions;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The session cookie (host-only by its prefix).
pub const SESSION_COOKIE: &str = "__Host-govgate-session";
/// Binds a login in progress to the browser that started it (login CSRF, forged `state`).
pub const LOGIN_COOKIE: &str = "__Host-govgate-login";
/// How long a login may take between the redirect and the callback.
const PENDING_TTL: i64 = 600;
/// Most logins in progress kept at once (a flood of redirects cannot exhaust memory).
const PENDING_MAX: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error(transparent)]
    Rp(#[from] rp::RpError),
    #[error(transparent)]
    Session(#[from] sessions::SessionError),
    #[error(transparent)]
    Assertion(#[from] assertion::AssertionError),
    #[error(transparent)]
    Seal(#[from] seal::SealError),
}

/// A response the gateway writes itself.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Why, for the access log (`refused`).
    pub refused: Option<&'static str>,
    /// Who was refused, when they were logged in (for the attack event).
    pub user: Option<String>,
}

impl Reply {
    fn redirect(status: u16, location: &str) -> Reply {
        Reply {
            status,
            headers: vec![("location", location.to_string()), ("cache-control", "no-store".into())],
            content_type: "text/plain; charset=utf-8",
            body: Vec::new(),
            refused: None,
            user: None,
        }
    }
    fn page(status: u16, request_id: &str, req: &HeaderMap, reason: Option<(&str, &str)>, refused: &'static str) -> Reply {
        let p = match reason {
            Some((en, zh)) => error_page::render_with_reason(status, request_id, req, en, zh),
            None => error_page::render(status, request_id, req),
        };
        Reply {
            status,
            headers: vec![("cache-control", "no-store".into())],
            content_type: p.content_type,
            body: p.body.into_bytes(),
            refused: Some(refused),
            user: None,
        }
    }
}

/// What the proxy does with the request.
#[derive(Debug)]
pub enum Gate {
    /// Forward it, adding these headers (after the client's `X-Govgate-*` were removed).
    /// `who` is the person the gateway found logged in (a session or a bearer token; never
    /// anything the client claims in headers), for services the gateway answers itself.
    Continue {
        headers: Vec<(String, String)>,
        who: Option<Identity>,
    },
    Reply(Reply),
}

/// The parts of a request single sign-on looks at.
pub struct Request<'a> {
    pub method: &'a str,
    /// The `Host` header as sent (with the port), lowercased.
    pub host: String,
    /// The normalised path, and path with query.
    pub path: &'a str,
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    pub https: bool,
    pub request_id: &'a str,
}

impl Request<'_> {
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v))
    }
    fn origin(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.host)
    }
}

/// A login in progress, kept until its callback (or for [`PENDING_TTL`]).
struct Pending {
    host: String,
    app: String,
    client_id: String,
    redirect_uri: String,
    return_to: String,
    nonce: String,
    pkce_verifier: String,
    binding: [u8; 32],
    acr: Option<String>,
    created: i64,
}

pub struct SsoService {
    dir: PathBuf,
    http: reqwest::Client,
    provider: rp::ProviderCache,
    sessions: tokio::sync::OnceCell<Sessions>,
    signer: tokio::sync::OnceCell<assertion::Signer>,
    sealer: tokio::sync::OnceCell<seal::Sealer>,
    pending: Mutex<HashMap<String, Pending>>,
    idle_secs: i64,
    /// When expired sessions and logins in progress were last purged.
    last_purge: std::sync::atomic::AtomicI64,
}

/// How often expired sessions and logins in progress are purged.
const PURGE_EVERY: i64 = 600;

pub fn now() -> i64 {
    govgate_idp::now()
}

impl SsoService {
    pub fn from_policy(policy: &Policy) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        SsoService {
            dir: policy.data_dir().join("sso"),
            http,
            provider: rp::ProviderCache::default(),
            sessions: tokio::sync::OnceCell::new(),
            signer: tokio::sync::OnceCell::new(),
            sealer: tokio::sync::OnceCell::new(),
            pending: Mutex::new(HashMap::new()),
            idle_secs: policy.sso.session_idle.0.as_secs() as i64,
            last_purge: std::sync::atomic::AtomicI64::new(now()),
        }
    }

    async fn sessions(&self) -> Result<&Sessions, SsoError> {
        Ok(self.sessions.get_or_try_init(|| Sessions::open(&self.dir, self.idle_secs)).await?)
    }

    async fn signer(&self) -> Result<&assertion::Signer, SsoError> {
        Ok(self.signer.get_or_try_init(|| async { assertion::Signer::load_or_create(&self.dir.join("assertion-key.p8")) }).await?)
    }

    /// Purges expired sessions (database and memory) and stale logins in progress, at most
    /// every [`PURGE_EVERY`] seconds, off the request.
    fn maintain(self: &Arc<Self>, now: i64) {
        use std::sync::atomic::Ordering;
        let last = self.last_purge.load(Ordering::Relaxed);
        if now - last < PURGE_EVERY || self.last_purge.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return;
        }
        if let Ok(mut p) = self.pending.lock() {
            p.retain(|_, v| now - v.created < PENDING_TTL);
        }
        let me = self.clone();
        tokio::spawn(async move {
            if let Some(s) = me.sessions.get() {
                if let Err(e) = s.purge(now).await {
                    tracing::warn!("expired sessions not purged: {e}");
                }
            }
        });
    }

    async fn sealer(&self) -> Result<&seal::Sealer, SsoError> {
        Ok(self.sealer.get_or_try_init(|| async { seal::Sealer::load_or_create(&self.dir.join("token-key")) }).await?)
    }

    /// Renews a session whose access token has expired; `false` when the provider refused (its
    /// session is over), so the gateway session ends too. An unreachable provider is retried
    /// a little later and the session goes on meanwhile.
    async fn renew(&self, t: &rp::Transport<'_>, issuer: &str, app: &App, s: &sessions::Session) -> Result<bool, SsoError> {
        let mut r = s.renewal.lock().await;
        let now = now();
        if now < r.renew_at {
            return Ok(true); // renewed by a concurrent request
        }
        let Some(sealed) = r.refresh_sealed.clone() else {
            // No refresh token: the session lives until its own timeouts.
            r.renew_at = s.data.expires_at;
            self.sessions().await?.renewed(s, &r).await?;
            return Ok(true);
        };
        let rt = self.sealer().await?.open(&sealed)?;
        let provider = self.provider.get(t, issuer).await?;
        let client_id = app.sso_client.as_deref().unwrap_or(&app.name);
        match rp::refresh(t, &provider, client_id, &rt).await {
            Ok(done) => {
                if let Some(new) = &done.refresh_token {
                    r.refresh_sealed = Some(self.sealer().await?.seal(new)?);
                }
                r.renew_at = now + renew_after(done.expires_in);
                self.sessions().await?.renewed(s, &r).await?;
                Ok(true)
            }
            Err(rp::RpError::Exchange(e)) => {
                tracing::info!(app = app.name, "single sign-on: the provider ended the session ({e})");
                self.sessions().await?.end_session(s).await?;
                Ok(false)
            }
            Err(e) => {
                tracing::warn!(app = app.name, "session renewal postponed: {e}");
                r.renew_at = now + 30;
                Ok(true)
            }
        }
    }

    fn transport<'a>(&'a self, idp: Option<&'a IdpService>, issuer: &str) -> rp::Transport<'a> {
        rp::Transport { idp: idp.filter(|i| i.issuer() == issuer), http: &self.http }
    }

    /// The one decision for a request to `app` (see the module docs).
    pub async fn gate(self: &Arc<Self>, idp: Option<&IdpService>, policy: &Policy, app: &App, req: &Request<'_>, body: &[u8]) -> Gate {
        let Some(issuer) = policy.sso.issuer(policy) else { return Gate::Continue { headers: Vec::new(), who: None } };
        self.maintain(now());
        let t = self.transport(idp, issuer);
        let result = if req.path.starts_with(routes::PREFIX) {
            // Boxed, as is renewal: these rare paths hold an HTTP client's futures (~9 KB), which
            // would otherwise be part of every protected request's future.
            Box::pin(routes::serve(self, &t, issuer, policy, app, req, body)).await
        } else {
            self.protect(&t, issuer, policy, app, req).await
        };
        match result {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(request_id = req.request_id, app = app.name, "single sign-on failed: {e}");
                Gate::Reply(Reply::page(503, req.request_id, req.headers, None, "sso_unavailable"))
            }
        }
    }

    async fn protect(&self, t: &rp::Transport<'_>, issuer: &str, policy: &Policy, app: &App, req: &Request<'_>) -> Result<Gate, SsoError> {
        let required = access::requirement(app, req.path);
        if access::is_api(app, req.path) {
            return bearer::gate(self, t, issuer, policy, app, required, req).await;
        }
        let mut session = match req.cookie(SESSION_COOKIE) {
            Some(id) => {
                let sessions = self.sessions().await?;
                sessions.set_idle(policy.sso.session_idle.0.as_secs() as i64);
                sessions.get(id, &req.host, now()).await?
            }
            None => None,
        };
        if let Some(s) = session.as_deref().filter(|s| s.renewal_due(now())) {
            if !Box::pin(self.renew(t, issuer, app, s)).await? {
                session = None;
            }
        }
        let who = session.as_ref().map(|s| identity(&s.data.subject, &s.data.acr, &s.data.claims));
        let decision = access::decide(required, who.as_ref());
        if !req.https && matches!(decision, Decision::Login | Decision::StepUp(_)) {
            // The session cookie is Secure: a login over plain HTTP could never be kept.
            let (en, zh) = ("Logging in needs HTTPS: open this address with https://.", "登录需要 HTTPS：请使用 https:// 打开此地址。");
            return Ok(Gate::Reply(Reply::page(403, req.request_id, req.headers, Some((en, zh)), "https_required")));
        }
        match decision {
            Decision::Allow => match session {
                Some(s) => {
                    let d = &s.data;
                    let headers = self.identity_headers(policy, app, &d.subject, &d.acr, &d.claims, Some(&s.assertion)).await?;
                    Ok(Gate::Continue { headers, who })
                }
                None => Ok(Gate::Continue { headers: Vec::new(), who: None }),
            },
            Decision::Login => {
                // Ask for the strength the path needs from the start.
                let acr = match required {
                    govgate_policies::Access::Require(r) => r.acr.clone(),
                    _ => None,
                };
                self.login(t, issuer, policy, app, req, acr).await
            }
            Decision::StepUp(acr) => self.login(t, issuer, policy, app, req, Some(acr)).await,
            Decision::Forbidden(why) => {
                let (en, zh) = why.explain();
                let mut r = Reply::page(403, req.request_id, req.headers, Some((&en, &zh)), why.code());
                r.user = who.as_ref().map(|w| w.label().to_string());
                Ok(Gate::Reply(r))
            }
        }
    }

    /// Sends the browser to the provider, remembering where it was going.
    async fn login(
        &self,
        t: &rp::Transport<'_>,
        issuer: &str,
        policy: &Policy,
        app: &App,
        req: &Request<'_>,
        acr: Option<String>,
    ) -> Result<Gate, SsoError> {
        let provider = self.provider.get(t, issuer).await?;
        let client_id = app.sso_client.clone().unwrap_or_else(|| app.name.clone());
        let redirect_uri = format!("{}{}", req.origin(), routes::CALLBACK);
        let started = rp::start(&provider, &client_id, &redirect_uri, &policy.sso.scopes, acr.as_deref())?;
        let (binding, new_binding) = match req.cookie(LOGIN_COOKIE).filter(|v| v.len() >= 32 && v.len() <= 64) {
            Some(v) => (v.to_string(), false),
            None => (sessions::new_id(), true),
        };
        let return_to = if req.method == "GET" || req.method == "HEAD" { safe_return_path(req.path_and_query) } else { "/".into() };
        let now = now();
        if let Ok(mut p) = self.pending.lock() {
            if p.len() >= PENDING_MAX {
                p.retain(|_, v| now - v.created < PENDING_TTL);
            }
            if p.len() < PENDING_MAX {
                p.insert(
                    started.state.clone(),
                    Pending {
                        host: req.host.clone(),
                        app: app.name.clone(),
                        client_id,
                        redirect_uri,
                        return_to,
                        nonce: started.nonce,
                        pkce_verifier: started.pkce_verifier,
                        binding: sessions::hash_id(&binding),
                        acr,
                        created: now,
                    },
                );
            }
        }
        let mut r = Reply::redirect(302, &started.url);
        r.refused = Some("login_required");
        if new_binding {
            r.headers
                .push(("set-cookie", format!("{LOGIN_COOKIE}={binding}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={PENDING_TTL}")));
        }
        Ok(Gate::Reply(r))
    }

    /// Takes (once) the login in progress for `state`.
    fn take_pending(&self, state: &str) -> Option<Pending> {
        let p = self.pending.lock().ok()?.remove(state)?;
        (now() - p.created < PENDING_TTL).then_some(p)
    }

    /// The headers an app receives: who, how, roles, the claims its policy allows, and the
    /// signed assertion (a session's is reused while more than half its life remains).
    async fn identity_headers(
        &self,
        policy: &Policy,
        app: &App,
        subject: &str,
        acr: &str,
        claims: &serde_json::Value,
        cache: Option<&Mutex<Option<(String, i64)>>>,
    ) -> Result<Vec<(String, String)>, SsoError> {
        let who = identity(subject, acr, claims);
        let mut out = Vec::with_capacity(4 + app.claims.len());
        out.push(("x-govgate-user".to_string(), header_value(subject)));
        out.push(("x-govgate-acr".to_string(), header_value(acr)));
        out.push(("x-govgate-roles".to_string(), header_value(&who.roles.join(","))));
        let mut allowed = serde_json::Map::new();
        for c in &app.claims {
            if let Some(v) = claims.get(c) {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Array(a) => {
                        a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect::<Vec<_>>().join(",")
                    }
                    other => other.to_string(),
                };
                out.push((format!("x-govgate-claim-{}", c.replace('_', "-")), header_value(&text)));
                allowed.insert(c.clone(), v.clone());
            }
        }
        let now = now();
        let ttl = policy.sso.assertion_ttl.0.as_secs() as i64;
        let cached =
            cache.and_then(|m| m.lock().ok().and_then(|a| a.as_ref().filter(|(_, exp)| exp - now > ttl / 2).map(|(j, _)| j.clone())));
        let jwt = match cached {
            Some(j) => j,
            None => {
                let claims = assertion::claims(&app.name, subject, acr, &who.roles, &allowed, now, ttl);
                let j = self.signer().await?.sign(&claims)?;
                if let Some(Ok(mut a)) = cache.map(|m| m.lock()) {
                    *a = Some((j.clone(), now + ttl));
                }
                j
            }
        };
        out.push(("x-govgate-assertion".to_string(), jwt));
        Ok(out)
    }
}

/// Seconds until a session is renewed: when its access token expires (at least 5 s; 5 min
/// when the provider does not say).
pub fn renew_after(expires_in: Option<u64>) -> i64 {
    expires_in.map(|e| e.clamp(5, 86_400) as i64).unwrap_or(300)
}

/// The identity in a session's claims.
pub fn identity(subject: &str, acr: &str, claims: &serde_json::Value) -> Identity {
    Identity {
        subject: subject.to_string(),
        acr: acr.to_string(),
        roles: claims
            .get("roles")
            .and_then(|r| r.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
        real_name_level: claims.get("real_name_level").and_then(|l| l.as_u64()).map(|l| l.min(255) as u8),
        username: claims.get("preferred_username").and_then(|u| u.as_str()).map(str::to_string),
    }
}

/// A header value: printable ASCII as is, anything else percent-encoded (UTF-8).
pub fn header_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Removes the gateway's own cookies (`__Host-govgate-*`: session and login binding) from the
/// request before it is forwarded: they are credentials for the gateway, not for the app (and
/// apps may log cookies). Other cookies pass unchanged.
pub fn strip_own_cookies(req: &mut pingora_http::RequestHeader) {
    let values: Vec<String> =
        req.headers.get_all(http::header::COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
    if !values.iter().any(|v| v.contains("__Host-govgate-")) {
        return;
    }
    let kept: Vec<&str> =
        values.iter().flat_map(|v| v.split(';')).map(str::trim).filter(|c| !c.is_empty() && !c.starts_with("__Host-govgate-")).collect();
    req.remove_header(&http::header::COOKIE);
    if !kept.is_empty() {
        let _ = req.insert_header(http::header::COOKIE, kept.join("; "));
    }
}

/// Query parameters that carry credentials in OpenID Connect flows.
const CREDENTIAL_PARAMS: [&str; 7] =
    ["code", "id_token_hint", "access_token", "refresh_token", "logout_token", "code_verifier", "client_secret"];

/// A path for the logs with the values of credential parameters (`code`, `id_token_hint`, …)
/// replaced by `***`.
pub fn redact_query(path: &str) -> std::borrow::Cow<'_, str> {
    let Some((p, q)) = path.split_once('?') else { return path.into() };
    let secret = |kv: &str| CREDENTIAL_PARAMS.contains(&kv.split('=').next().unwrap_or(""));
    if !q.split('&').any(secret) {
        return path.into();
    }
    let q: Vec<String> =
        q.split('&').map(|kv| if secret(kv) { format!("{}=***", kv.split('=').next().unwrap_or("")) } else { kv.to_string() }).collect();
    format!("{p}?{}", q.join("&")).into()
}

/// Which refusals go to the attack log: a signed-in person refused for a missing role or level
/// (`forbidden`), and logins or tokens that fail their checks (`auth_failure`: a forged or
/// replayed `state`, a foreign issuer, a code that does not exchange, an invalid bearer token or
/// logout token). Redirects to the login page and plain-HTTP hints are not attacks.
pub fn event_kind(reply: &Reply) -> Option<crate::attack_log::Kind> {
    use crate::attack_log::Kind;
    match reply.refused? {
        "sso_state" | "sso_iss" | "sso_exchange" | "bearer_invalid" | "backchannel_invalid" => Some(Kind::AuthFailure),
        "https_required" | "sso_unavailable" | "sso_not_found" | "sso_method" | "login_required" | "bearer_missing" => None,
        _ if reply.status == 403 => Some(Kind::Forbidden),
        _ => None,
    }
}

/// Where to go back after login: a path on this host only (no scheme, no `//host`).
pub fn safe_return_path(p: &str) -> String {
    let ok = p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") && !p.bytes().any(|b| b < 0x20 || b == 0x7f);
    if ok && !p.starts_with(routes::PREFIX) {
        p.to_string()
    } else {
        "/".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_that_are_security_events() {
        use crate::attack_log::Kind;
        let reply =
            |status, refused| Reply { status, headers: Vec::new(), content_type: "text/html", body: Vec::new(), refused, user: None };
        assert_eq!(event_kind(&reply(403, Some("missing_roles"))), Some(Kind::Forbidden));
        assert_eq!(event_kind(&reply(403, Some("bearer_forbidden"))), Some(Kind::Forbidden));
        assert_eq!(event_kind(&reply(400, Some("sso_state"))), Some(Kind::AuthFailure));
        assert_eq!(event_kind(&reply(401, Some("bearer_invalid"))), Some(Kind::AuthFailure));
        assert_eq!(event_kind(&reply(403, Some("https_required"))), None, "a hint, not an attack");
        assert_eq!(event_kind(&reply(302, Some("login_required"))), None);
        assert_eq!(event_kind(&reply(401, Some("bearer_missing"))), None, "a client that has not sent a token yet");
        assert_eq!(event_kind(&reply(200, None)), None);
    }

    #[test]
    fn return_paths_stay_on_this_host() {
        assert_eq!(safe_return_path("/apply?x=1"), "/apply?x=1");
        for evil in ["//evil.example/", "/\\evil.example", "https://evil.example/", "evil", "/a\r\nSet-Cookie: x", "/.govgate/logout"] {
            assert_eq!(safe_return_path(evil), "/", "{evil:?}");
        }
    }

    #[test]
    fn the_gateways_cookies_never_reach_the_app() {
        let mut req = pingora_http::RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("cookie", "lang=zh; __Host-govgate-session=secret").unwrap();
        req.append_header("cookie", "__Host-govgate-login=x;theme=dark").unwrap();
        strip_own_cookies(&mut req);
        let all: Vec<_> = req.headers.get_all("cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        assert_eq!(all, vec!["lang=zh; theme=dark".to_string()]);
        let mut only = pingora_http::RequestHeader::build("GET", b"/", None).unwrap();
        only.append_header("cookie", "__Host-govgate-session=secret").unwrap();
        strip_own_cookies(&mut only);
        assert!(only.headers.get("cookie").is_none());
    }

    #[test]
    fn credentials_in_queries_are_redacted_for_logs() {
        assert_eq!(redact_query("/.govgate/callback?code=abc&state=s1&iss=x"), "/.govgate/callback?code=***&state=s1&iss=x");
        assert_eq!(redact_query("/logout?id_token_hint=eyJ.x.y&codes=1"), "/logout?id_token_hint=***&codes=1");
        assert_eq!(redact_query("/apply?x=1"), "/apply?x=1");
    }

    #[test]
    fn header_values_are_ascii() {
        assert_eq!(header_value("张三"), "%E5%BC%A0%E4%B8%89");
        assert_eq!(header_value("a b\r\n%"), "a b%0D%0A%25");
    }

    /// The per-request cost single sign-on adds: an authenticated request (cookie → session
    /// lookup → decision → identity headers with the cached assertion) against a public one.
    /// `cargo test -p govgate-gateway --release --lib sso::tests::per_request_cost -- --ignored --nocapture`
    #[tokio::test]
    #[ignore]
    async fn per_request_cost() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[server]\ndata_dir = \"{}\"\n[[listeners]]\nname = \"h\"\naddress = \"127.0.0.1:1\"\n[sso]\nissuer = \"https://id.test\"\n[[apps]]\nname = \"a\"\nhosts = [\"a.test\"]\nupstreams = [\"127.0.0.1:2\"]\naccess_paths = [{{ path = \"/apply\", access = \"login\" }}]\nclaims = [\"name\"]\n",
            dir.path().display()
        );
        let policy = govgate_policies::parse(&text, std::path::Path::new("t.toml")).unwrap();
        let sso = Arc::new(SsoService::from_policy(&policy));
        let now = now();
        let data = sessions::SessionData {
            host: "a.test".into(),
            app: "a".into(),
            subject: "3183cc70-d3a2-4ba0-a2aa-cafb64a25d19".into(),
            sid: Some("sid".into()),
            acr: "pwd".into(),
            claims: serde_json::json!({"name": "张三", "real_name_level": 2}),
            id_token: "t".into(),
            created_at: now,
            expires_at: now + 3600,
            refresh_sealed: None,
            renew_at: now + 3600,
        };
        let id = sso.sessions().await.unwrap().create(data, now).await.unwrap();
        let mut with_cookie = HeaderMap::new();
        with_cookie.insert(http::header::COOKIE, format!("lang=zh; {SESSION_COOKIE}={id}").parse().unwrap());
        let empty = HeaderMap::new();
        let app = &policy.apps[0];
        let req = |path: &'static str, headers: &'static HeaderMap| Request {
            method: "GET",
            host: "a.test".into(),
            path,
            path_and_query: path,
            headers,
            https: true,
            request_id: "r",
        };
        let with_cookie: &'static HeaderMap = Box::leak(Box::new(with_cookie));
        let empty: &'static HeaderMap = Box::leak(Box::new(empty));
        async fn median(sso: &Arc<SsoService>, policy: &Policy, app: &App, r: &Request<'_>) -> std::time::Duration {
            let mut times = Vec::with_capacity(20_000);
            for _ in 0..20_000 {
                let t = std::time::Instant::now();
                let g = sso.gate(None, policy, app, r, &[]).await;
                times.push(t.elapsed());
                assert!(matches!(g, Gate::Continue { .. }));
            }
            times.sort();
            times[times.len() / 2]
        }
        let authed = req("/apply", with_cookie);
        let Gate::Continue { headers: h, .. } = sso.gate(None, &policy, app, &authed, &[]).await else { panic!("not let through") };
        assert_eq!(h.len(), 5, "{h:?}");
        let public = median(&sso, &policy, app, &req("/", empty)).await;
        let auth = median(&sso, &policy, app, &authed).await;
        let signer = sso.signer().await.unwrap();
        let claims = assertion::claims("a", "u", "pwd", &[], &serde_json::Map::new(), now, 60);
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            signer.sign(&claims).unwrap();
        }
        let sign = t.elapsed() / 1000;
        println!("sso gate median: public {public:?}, authenticated {auth:?} (added {:?}); ES256 assertion signing {sign:?} (once per session every assertion_ttl/2)", auth.saturating_sub(public));
    }

    #[test]
    fn identity_reads_roles_and_level() {
        let i = identity("u", "cert", &serde_json::json!({"roles": ["staff", 3], "real_name_level": 3, "preferred_username": "li"}));
        assert_eq!(i.label(), "li");
        assert_eq!((i.roles, i.real_name_level), (vec!["staff".to_string()], Some(3)));
        assert_eq!(identity("u", "pwd", &serde_json::json!({})).label(), "u", "without a user name, the subject");
    }
}
