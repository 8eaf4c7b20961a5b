//! The authorization endpoint (OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636, RFC 9207) and the
//! interactive steps behind it: login form, TOTP step, consent page.
//!
//! Rules: the client and its redirect URI (exact string match) are checked before anything is
//! redirected — otherwise an error page is shown (no open redirect). PKCE must be S256, is
//! required for public clients and is bound to the code whenever sent. `prompt=none` without a
//! session answers `login_required`; `prompt=login` and an exceeded `max_age` force a new login;
//! every login creates a new session id. Codes are single-use and live ≤ 60 s.

use serde::{Deserialize, Serialize};

use super::claims::{consent_scope, ClaimsRequest};
use super::{body_params, split_scope, Params};
use crate::audit::{self, AuditEvent};
use crate::clients::Client;
use crate::crypto::random_token;
use crate::error::{ErrorCode, IdpError};
use crate::http::{AuthFailure, Ctx, IdpRequest, IdpResponse};
use crate::i18n::{negotiate, strings, Locale};
use crate::session::{set_cookie, Csrf, CSRF_COOKIE, SESSION_COOKIE};
use crate::store::grants::CodeGrant;
use crate::store::sessions::Session;
use crate::{password, throttle, users};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// A validated authorization request, kept server-side while the user logs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub response_mode: ResponseMode,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub acr_values: Vec<String>,
    pub login_hint: Option<String>,
    pub ui_locales: Option<String>,
    /// Claims asked for one by one (the `claims` parameter), those the client may have.
    #[serde(default)]
    pub claims: ClaimsRequest,
    /// Set after a correct password when a TOTP step follows.
    #[serde(default)]
    pub pending_user: Option<String>,
    #[serde(default)]
    pub pending_at: Option<i64>,
}

/// Acr ordering: `pwd` < `otp` < `cert`.
pub fn acr_rank(acr: &str) -> u8 {
    match acr {
        "pwd" => 1,
        "otp" => 2,
        "cert" => 3,
        _ => 0,
    }
}

/// The weakest acr among the requested `acr_values` that this provider knows (0 = no request).
/// A session weaker than that is sent through login again (step-up).
pub fn required_acr_rank(acr_values: &[String]) -> u8 {
    acr_values.iter().map(|a| acr_rank(a)).filter(|r| *r > 0).min().unwrap_or(0)
}

/// Effective real-name assurance: the account's level (1–4) capped by the strength of this
/// login (`pwd` → 2, `otp` → 3, `cert` → 4).
pub fn effective_assurance(real_name_level: i64, acr: &str) -> i64 {
    let cap = match acr {
        "cert" => 4,
        "otp" => 3,
        _ => 2,
    };
    real_name_level.clamp(1, 4).min(cap)
}

enum Reject {
    /// Shown to the user; never redirected (unknown client, bad redirect URI).
    Page(&'static str, String),
    /// Redirected to the client's redirect URI.
    Redirect(ErrorCode, String),
}

fn locale_for(req: &IdpRequest, explicit: Option<&str>, ui_locales: Option<&str>) -> Locale {
    negotiate(explicit, ui_locales, req.header("accept-language"))
}

fn error_page(ctx: &Ctx, status: u16, locale: Locale, message_key: &str, code: &str) -> IdpResponse {
    let t = strings(locale);
    let msg = t.get(message_key).copied().unwrap_or(message_key);
    ctx.page(status, "error.html", locale, "title_error", minijinja::context! { message => msg, code => code, lang_switch_url => "?lang=".to_string() + if locale == Locale::Zh { "en" } else { "zh" } })
}

/// Build the authorization response (success or error) in the requested response mode, always
/// with `state` (if sent) and `iss` (RFC 9207).
pub fn respond(
    ctx: &Ctx,
    redirect_uri: &str,
    mode: ResponseMode,
    state: Option<&str>,
    mut fields: Vec<(String, String)>,
    locale: Locale,
) -> IdpResponse {
    if let Some(s) = state {
        fields.push(("state".into(), s.to_string()));
    }
    fields.push(("iss".into(), ctx.cfg.issuer.clone()));
    match mode {
        ResponseMode::Query => {
            let Ok(mut u) = url::Url::parse(redirect_uri) else { return error_page(ctx, 400, locale, "bad_request", "invalid_request") };
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in &fields {
                    q.append_pair(k, v);
                }
            }
            IdpResponse::redirect(u.as_str())
        }
        ResponseMode::FormPost => {
            let pairs: Vec<Vec<String>> = fields.into_iter().map(|(k, v)| vec![k, v]).collect();
            let mut r =
                ctx.page(200, "form_post.html", locale, "title_login", minijinja::context! { action => redirect_uri, fields => pairs });
            for h in r.headers.iter_mut() {
                if h.0 == "Content-Security-Policy" {
                    h.1 = "default-src 'none'; script-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'".into();
                }
            }
            r
        }
    }
}

fn error_fields(code: ErrorCode, desc: &str) -> Vec<(String, String)> {
    vec![("error".into(), code.as_str().into()), ("error_description".into(), desc.into())]
}

/// Where to send an error: redirect URI, response mode, state.
type ErrorTarget = (String, ResponseMode, Option<String>);

fn validate(ctx: &Ctx, p: &Params) -> Result<(AuthRequest, Client), (Reject, Option<ErrorTarget>)> {
    let page = |k: &'static str, c: &str| Err((Reject::Page(k, c.to_string()), None));
    if p.duplicated(&["client_id", "redirect_uri", "response_mode", "state"]).is_some() {
        return page("bad_request", "invalid_request");
    }
    let clients = ctx.clients();
    let Some(client) = p.get("client_id").and_then(|id| clients.get(id)).cloned() else { return page("bad_request", "invalid_client") };
    let Some(redirect_uri) = p.get("redirect_uri").filter(|r| client.redirect_uri_registered(r)).map(String::from) else {
        return page("bad_request", "invalid_redirect_uri");
    };
    let state = p.get("state").map(String::from);
    let mode = match p.get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("form_post") => ResponseMode::FormPost,
        Some(_) => {
            return Err((
                Reject::Redirect(ErrorCode::InvalidRequest, "unsupported response_mode".into()),
                Some((redirect_uri, ResponseMode::Query, state)),
            ))
        }
    };
    let back = Some((redirect_uri.clone(), mode, state.clone()));
    let fail = |c: ErrorCode, d: &str| Err((Reject::Redirect(c, d.to_string()), back.clone()));
    if let Some(k) = p.duplicated(&[
        "response_type",
        "scope",
        "nonce",
        "prompt",
        "max_age",
        "code_challenge",
        "code_challenge_method",
        "login_hint",
        "ui_locales",
        "acr_values",
        "claims",
        "claims_locales",
        "id_token_hint",
        "display",
    ]) {
        return fail(ErrorCode::InvalidRequest, &format!("parameter {k} repeated"));
    }
    if p.get("request_uri").is_some() {
        return fail(ErrorCode::RequestUriNotSupported, "request_uri is not supported");
    }
    if p.get("request").is_some() {
        return fail(ErrorCode::InvalidRequestObject, "the request object could not be used");
    }
    match p.get("response_type") {
        Some("code") => {}
        None => return fail(ErrorCode::InvalidRequest, "response_type missing"),
        Some(_) => return fail(ErrorCode::UnsupportedResponseType, "only response_type=code is supported"),
    }
    if !client.allows_grant("authorization_code") {
        return fail(ErrorCode::UnauthorizedClient, "client may not use the authorization code flow");
    }
    let requested = split_scope(p.get("scope").unwrap_or(""));
    if !requested.iter().any(|s| s == "openid") {
        return fail(ErrorCode::InvalidScope, "the openid scope is required");
    }
    let scope = client.filter_scope(&requested.join(" "));
    let code_challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
        (Some(c), Some("S256")) if super::token::valid_pkce_value(c) => Some(c.to_string()),
        (Some(_), Some("S256")) => return fail(ErrorCode::InvalidRequest, "malformed code_challenge"),
        (Some(_), None) | (Some(_), Some("plain")) => return fail(ErrorCode::InvalidRequest, "code_challenge_method must be S256"),
        (Some(_), Some(_)) => return fail(ErrorCode::InvalidRequest, "unsupported code_challenge_method"),
        (None, Some(_)) => return fail(ErrorCode::InvalidRequest, "code_challenge missing"),
        (None, None) if client.is_public() => return fail(ErrorCode::InvalidRequest, "PKCE is required for public clients"),
        (None, None) => None,
    };
    let prompt = split_scope(p.get("prompt").unwrap_or(""));
    if prompt.iter().any(|x| x == "none") && prompt.len() > 1 {
        return fail(ErrorCode::InvalidRequest, "prompt=none cannot be combined");
    }
    let max_age = match p.get("max_age") {
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => return fail(ErrorCode::InvalidRequest, "max_age must be a non-negative integer"),
        },
        None => None,
    };
    let claims = match p.get("claims").map(ClaimsRequest::parse) {
        None => ClaimsRequest::default(),
        Some(Ok(c)) => c.allowed_for(&client),
        Some(Err(d)) => return fail(ErrorCode::InvalidRequest, d),
    };
    let nonce = p.get("nonce").map(String::from);
    if nonce.as_ref().is_some_and(|n| n.len() > 512) || state.as_ref().is_some_and(|s| s.len() > 2048) {
        return fail(ErrorCode::InvalidRequest, "nonce or state too long");
    }
    Ok((
        AuthRequest {
            client_id: client.id.clone(),
            redirect_uri,
            scope,
            state,
            nonce,
            code_challenge,
            response_mode: mode,
            prompt,
            max_age,
            acr_values: split_scope(p.get("acr_values").unwrap_or("")),
            login_hint: p.get("login_hint").map(|s| s.chars().take(128).collect()),
            ui_locales: p.get("ui_locales").map(String::from),
            claims,
            pending_user: None,
            pending_at: None,
        },
        client,
    ))
}

async fn current_session(ctx: &Ctx, req: &IdpRequest) -> Result<Option<Session>, IdpError> {
    let Some(c) = req.cookie(SESSION_COOKIE) else { return Ok(None) };
    let Some(s) = ctx.store.session_by_cookie(c, crate::now()).await? else { return Ok(None) };
    match users::find_by_id(&ctx.store, &s.user_id).await? {
        Some(u) if !u.locked => Ok(Some(s)),
        _ => Ok(None),
    }
}

/// GET/POST `/authorize`.
pub async fn authorize(ctx: &Ctx, req: &IdpRequest) -> Result<IdpResponse, IdpError> {
    let p = if req.method.eq_ignore_ascii_case("POST") { body_params(req) } else { Params::parse(req.query.as_bytes()) };
    // Resuming a stored request (language switch, back from registration).
    if let Some(id) = p.get("resume") {
        let locale0 = locale_for(req, p.get("lang"), None);
        let Some(areq) = load(ctx, id).await? else { return Ok(error_page(ctx, 400, locale0, "request_expired", "")) };
        let locale = locale_for(req, p.get("lang"), areq.ui_locales.as_deref());
        let username = areq.login_hint.clone().unwrap_or_default();
        return Ok(login_page(ctx, req, id, &areq, locale, None, &username, p.get("notice")));
    }
    let locale = locale_for(req, p.get("lang"), p.get("ui_locales"));
    let now = crate::now();
    // A request object (`request`) carries the parameters; `request_uri` is refused in validate.
    let p = match p.get("request") {
        Some(_) if p.get("request_uri").is_none() => match super::request_object::merge(&p, &ctx.cfg.issuer, now) {
            Ok(merged) => merged,
            Err(desc) => return Ok(reject_raw(ctx, &p, ErrorCode::InvalidRequestObject, &desc, locale)),
        },
        _ => p,
    };
    let (areq, client) = match validate(ctx, &p) {
        Ok(v) => v,
        Err((Reject::Page(key, code), _)) => return Ok(error_page(ctx, 400, locale, key, &code)),
        Err((Reject::Redirect(code, desc), Some((uri, mode, state)))) => {
            return Ok(respond(ctx, &uri, mode, state.as_deref(), error_fields(code, &desc), locale))
        }
        Err((Reject::Redirect(..), None)) => return Ok(error_page(ctx, 400, locale, "bad_request", "invalid_request")),
    };
    // An ID token from an earlier login names who the client expects (OIDC Core §3.1.2.1): a
    // session of someone else is not reused.
    let hinted_sub = match p.get("id_token_hint") {
        None => None,
        Some(t) => match crate::tokens::verify::<crate::tokens::IdTokenClaims>(&ctx.keys, &ctx.cfg.issuer, t, "JWT", false) {
            Ok(c) => Some(c.sub),
            Err(_) => {
                let fields = error_fields(ErrorCode::InvalidRequest, "invalid id_token_hint");
                return Ok(respond(ctx, &areq.redirect_uri, areq.response_mode, areq.state.as_deref(), fields, locale));
            }
        },
    };
    let session = current_session(ctx, req).await?;
    let need_login = match &session {
        None => true,
        Some(s) => {
            hinted_sub.as_ref().is_some_and(|h| *h != s.user_id)
                || areq.prompt.iter().any(|x| x == "login")
                || areq.max_age.is_some_and(|m| m == 0 || now - s.auth_time > m)
                || acr_rank(&s.acr) < required_acr_rank(&areq.acr_values)
        }
    };
    if need_login {
        if areq.prompt.iter().any(|x| x == "none") {
            return Ok(respond(
                ctx,
                &areq.redirect_uri,
                areq.response_mode,
                areq.state.as_deref(),
                error_fields(ErrorCode::LoginRequired, "no valid session"),
                locale,
            ));
        }
        let id = ctx.store.put_auth_request(&serde_json::to_value(&areq)?, now, ctx.cfg.auth_request_ttl).await?;
        let username = areq.login_hint.clone().unwrap_or_default();
        return Ok(login_page(ctx, req, &id, &areq, locale, None, &username, None));
    }
    let Some(session) = session else { return Ok(error_page(ctx, 500, locale, "bad_request", "")) };
    after_login(ctx, req, None, &areq, &client, &session, Vec::new(), locale).await
}

/// An error about a request whose parameters could not be read (a bad request object): sent to
/// the client's redirect URI when the query names a client and one of its registered URIs,
/// shown on a page otherwise.
fn reject_raw(ctx: &Ctx, p: &Params, code: ErrorCode, desc: &str, locale: Locale) -> IdpResponse {
    let clients = ctx.clients();
    let client = p.get("client_id").and_then(|id| clients.get(id));
    match (client, p.get("redirect_uri")) {
        (Some(c), Some(uri)) if c.redirect_uri_registered(uri) => {
            respond(ctx, uri, ResponseMode::Query, p.get("state"), error_fields(code, desc), locale)
        }
        _ => error_page(ctx, 400, locale, "bad_request", code.as_str()),
    }
}

async fn load(ctx: &Ctx, id: &str) -> Result<Option<AuthRequest>, IdpError> {
    Ok(ctx.store.get_auth_request(id, crate::now()).await?.and_then(|v| serde_json::from_value(v).ok()))
}

/// The CSRF cookie of this browser (or a new one) and the matching form token.
fn csrf_pair(ctx: &Ctx, req: &IdpRequest) -> (String, Option<String>) {
    let (cookie, new) = Csrf::cookie_or_new(req.cookie(CSRF_COOKIE));
    let token = ctx.csrf().token(&cookie);
    (token, new.then(|| set_cookie(CSRF_COOKIE, &cookie, None)))
}

#[allow(clippy::too_many_arguments)]
fn login_page(
    ctx: &Ctx,
    req: &IdpRequest,
    id: &str,
    areq: &AuthRequest,
    locale: Locale,
    error: Option<&str>,
    username: &str,
    notice: Option<&str>,
) -> IdpResponse {
    let (csrf, set) = csrf_pair(ctx, req);
    let t = strings(locale);
    let clients = ctx.clients();
    let client_name = clients.get(&areq.client_id).map(|c| if c.name.is_empty() { c.id.clone() } else { c.name.clone() });
    let other = if locale == Locale::Zh { "en" } else { "zh" };
    let status = if error.is_some() { 400 } else { 200 };
    let mut r = ctx.page(
        status,
        "login.html",
        locale,
        "title_login",
        minijinja::context! {
            action => ctx.path("/login"), req => id, csrf => csrf, username => username,
            error => error.and_then(|e| t.get(e).copied()),
            notice => notice.and_then(|e| t.get(e).copied()),
            client_name => client_name,
            lang_switch_url => format!("{}?resume={}&lang={}", ctx.path("/authorize"), id, other),
            register_url => format!("{}?req={}&lang={}", ctx.path("/register"), id, if locale == Locale::Zh { "zh" } else { "en" }),
            cert_subject => req.client_cert.as_ref().filter(|c| c.is_verified()).map(|c| c.subject.clone()),
            cert_refused => cert_refusal(req).map(|(_, reason)| t.get(reason).copied().unwrap_or(reason)),
            cert_refused_subject => cert_refusal(req).map(|(subject, _)| subject),
        },
    );
    if let Some(c) = set {
        r.headers.push(("Set-Cookie".into(), c));
    }
    r
}

fn simple_form(ctx: &Ctx, req: &IdpRequest, template: &str, title: &str, id: &str, locale: Locale, extra: minijinja::Value) -> IdpResponse {
    let (csrf, set) = csrf_pair(ctx, req);
    let other = if locale == Locale::Zh { "en" } else { "zh" };
    let base = minijinja::context! { req => id, csrf => csrf, lang_switch_url => format!("{}?resume={}&lang={}", ctx.path("/authorize"), id, other) };
    let mut r = ctx.page(200, template, locale, title, minijinja::context! { ..extra, ..base });
    if let Some(c) = set {
        r.headers.push(("Set-Cookie".into(), c));
    }
    r
}

/// After the user is authenticated: consent (unless first-party or already granted), then code.
#[allow(clippy::too_many_arguments)]
async fn after_login(
    ctx: &Ctx,
    req: &IdpRequest,
    id: Option<&str>,
    areq: &AuthRequest,
    client: &Client,
    session: &Session,
    cookies: Vec<String>,
    locale: Locale,
) -> Result<IdpResponse, IdpError> {
    let forced = areq.prompt.iter().any(|x| x == "consent");
    let scope = consent_scope(&areq.scope, &areq.claims);
    let need_consent = !client.first_party && (forced || !ctx.store.has_consent(&session.user_id, &client.id, &scope).await?);
    let mut resp = if need_consent && areq.prompt.iter().any(|x| x == "none") {
        respond(
            ctx,
            &areq.redirect_uri,
            areq.response_mode,
            areq.state.as_deref(),
            error_fields(ErrorCode::ConsentRequired, "consent required"),
            locale,
        )
    } else if need_consent {
        let id = match id {
            Some(i) => i.to_string(),
            None => ctx.store.put_auth_request(&serde_json::to_value(areq)?, crate::now(), ctx.cfg.auth_request_ttl).await?,
        };
        let t = strings(locale);
        let scopes: Vec<&str> = scope.iter().filter_map(|s| t.get(format!("scope_{s}").as_str()).copied()).collect();
        let name = if client.name.is_empty() { client.id.clone() } else { client.name.clone() };
        simple_form(
            ctx,
            req,
            "consent.html",
            "title_consent",
            &id,
            locale,
            minijinja::context! { action => ctx.path("/consent"), client_name => name, scopes => scopes },
        )
    } else {
        if let Some(i) = id {
            ctx.store.delete_auth_request(i).await?;
        }
        issue_code(ctx, areq, session, locale).await?
    };
    for c in cookies {
        resp.headers.push(("Set-Cookie".into(), c));
    }
    Ok(resp)
}

async fn issue_code(ctx: &Ctx, areq: &AuthRequest, s: &Session, locale: Locale) -> Result<IdpResponse, IdpError> {
    let code = random_token();
    let now = crate::now();
    let g = CodeGrant {
        client_id: areq.client_id.clone(),
        redirect_uri: areq.redirect_uri.clone(),
        user_id: s.user_id.clone(),
        sid: s.sid.clone(),
        scope: areq.scope.join(" "),
        nonce: areq.nonce.clone(),
        code_challenge: areq.code_challenge.clone(),
        auth_time: s.auth_time,
        acr: s.acr.clone(),
        amr: s.amr.clone(),
        family_id: uuid::Uuid::new_v4().to_string(),
        expires_at: now + ctx.cfg.code_ttl.clamp(1, 60),
        claims: areq.claims.clone(),
    };
    ctx.store.put_code(&code, &g).await?;
    Ok(respond(ctx, &areq.redirect_uri, areq.response_mode, areq.state.as_deref(), vec![("code".into(), code)], locale))
}

/// Signs user `user_id` in after a successful login step (`acr` `pwd`, `otp` or `cert`, with
/// the methods `amr`): starts the session, records the login for the audit log (`actor`: the
/// name the user is known by) and goes on with the authorization request of form `f`.
async fn complete_login(
    ctx: &Ctx,
    req: &IdpRequest,
    f: &FormCtx,
    user_id: &str,
    actor: &str,
    acr: &str,
    amr: &[&str],
) -> Result<IdpResponse, IdpError> {
    let (session, cookies) = start_session(ctx, req, user_id, acr, amr).await?;
    audit::record(
        &ctx.store,
        AuditEvent {
            event: "login",
            outcome: "success",
            actor: Some(actor),
            subject: Some(user_id),
            client_id: Some(&f.client.id),
            ip: Some(&req.client_ip.to_string()),
            detail: serde_json::json!({"acr": acr}),
        },
    )
    .await;
    after_login(ctx, req, Some(&f.id), &f.areq, &f.client, &session, cookies, f.locale).await
}

/// Start a new SSO session (always a new id) and return its Set-Cookie.
async fn start_session(ctx: &Ctx, req: &IdpRequest, user_id: &str, acr: &str, amr: &[&str]) -> Result<(Session, Vec<String>), IdpError> {
    let now = crate::now();
    if let Some(old) = req.cookie(SESSION_COOKIE) {
        if let Some(s) = ctx.store.session_by_cookie(old, now).await? {
            ctx.store.end_session(&s.sid).await?;
        }
    }
    let (cookie, s) = ctx.store.create_session(user_id, acr, amr, now, ctx.cfg.session_ttl).await?;
    Ok((s, vec![set_cookie(SESSION_COOKIE, &cookie, Some(ctx.cfg.session_ttl))]))
}

struct FormCtx {
    id: String,
    areq: AuthRequest,
    client: Client,
    locale: Locale,
    p: Params,
}

/// Common checks of the POSTed forms: stored request, client still registered, CSRF.
async fn form_ctx(ctx: &Ctx, req: &IdpRequest) -> Result<Result<FormCtx, IdpResponse>, IdpError> {
    let p = body_params(req);
    let locale0 = locale_for(req, p.get("lang"), None);
    let Some(id) = p.get("req").map(String::from) else { return Ok(Err(error_page(ctx, 400, locale0, "request_expired", ""))) };
    let Some(areq) = load(ctx, &id).await? else { return Ok(Err(error_page(ctx, 400, locale0, "request_expired", ""))) };
    let locale = locale_for(req, p.get("lang"), areq.ui_locales.as_deref());
    let Some(client) = ctx.clients().get(&areq.client_id).cloned() else {
        return Ok(Err(error_page(ctx, 400, locale, "bad_request", "invalid_client")));
    };
    if !ctx.csrf().check(req.cookie(CSRF_COOKIE), p.get("csrf")) {
        let username = p.get("username").unwrap_or("").to_string();
        return Ok(Err(login_page(ctx, req, &id, &areq, locale, Some("csrf_failed"), &username, None)));
    }
    Ok(Ok(FormCtx { id, areq, client, locale, p }))
}

/// POST `/login`: password check with throttling, then TOTP step or session + continuation.
pub async fn login(ctx: &Ctx, req: &IdpRequest) -> Result<IdpResponse, IdpError> {
    let f = match form_ctx(ctx, req).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    if f.p.get("method") == Some("cert") {
        return cert_login(ctx, req, f).await;
    }
    let username = f.p.get("username").unwrap_or("").trim().to_string();
    let pw = f.p.get("password").unwrap_or("");
    let now = crate::now();
    let ip = req.client_ip.to_string();
    let ip_key = format!("ip:{ip}");
    let user_key = format!("user:{}", username.to_lowercase());
    let fail_page = |key: &str| login_page(ctx, req, &f.id, &f.areq, f.locale, Some(key), &username, None);
    if throttle::wait_for(&ctx.store, &ip_key, now).await? > 0 || throttle::wait_for(&ctx.store, &user_key, now).await? > 0 {
        audit::record(
            &ctx.store,
            AuditEvent {
                event: "login",
                outcome: "throttled",
                actor: Some(&username),
                client_id: Some(&f.client.id),
                ip: Some(&ip),
                ..Default::default()
            },
        )
        .await;
        let mut r = fail_page("throttled").noting(AuthFailure::Throttled, Some(&username));
        r.status = 429;
        return Ok(r);
    }
    let user = users::find_by_username(&ctx.store, &username).await?;
    let ok = match &user {
        Some(u) => {
            let v = password::verify_password(pw, &u.password_hash);
            v && !u.locked
        }
        None => {
            password::dummy_verify(ctx.cfg.argon2);
            false
        }
    };
    let Some(user) = user.filter(|_| ok) else {
        throttle::record_failure(&ctx.store, &ip_key, now, ctx.cfg.throttle_free_failures).await?;
        let n = throttle::record_failure(&ctx.store, &user_key, now, ctx.cfg.throttle_free_failures).await?;
        let mut what = AuthFailure::Password;
        if n >= ctx.cfg.lockout_failures {
            if let Some(u) = users::find_by_username(&ctx.store, &username).await? {
                if !u.locked {
                    users::set_locked(&ctx.store, &u.id, true).await?;
                    what = AuthFailure::AccountLocked;
                    audit::record(
                        &ctx.store,
                        AuditEvent {
                            event: "account_lock",
                            outcome: "success",
                            actor: Some("system"),
                            subject: Some(&u.id),
                            ip: Some(&ip),
                            ..Default::default()
                        },
                    )
                    .await;
                }
            }
        }
        audit::record(
            &ctx.store,
            AuditEvent {
                event: "login",
                outcome: "failure",
                actor: Some(&username),
                client_id: Some(&f.client.id),
                ip: Some(&ip),
                ..Default::default()
            },
        )
        .await;
        return Ok(fail_page("login_failed").noting(what, Some(&username)));
    };
    throttle::clear(&ctx.store, &user_key).await?;
    if user.totp_secret.is_some() {
        let mut areq = f.areq.clone();
        areq.pending_user = Some(user.id.clone());
        areq.pending_at = Some(now);
        ctx.store.update_auth_request(&f.id, &serde_json::to_value(&areq)?).await?;
        return Ok(simple_form(ctx, req, "otp.html", "title_otp", &f.id, f.locale, minijinja::context! { action => ctx.path("/otp") }));
    }
    complete_login(ctx, req, &f, &user.id, &username, "pwd", &["pwd"]).await
}

/// A certificate the gateway refused: its subject and the message key of the reason.
fn cert_refusal(req: &IdpRequest) -> Option<(String, &'static str)> {
    let c = req.client_cert.as_ref()?;
    let key = match c.refused.as_deref()? {
        "expired" => "cert_refused_expired",
        "not_yet_valid" => "cert_refused_not_yet_valid",
        "revoked" => "cert_refused_revoked",
        "untrusted" => "cert_refused_untrusted",
        "revocation_unknown" => "cert_refused_revocation_unknown",
        _ => "cert_refused_unusable",
    };
    Some((c.subject.clone(), key))
}

/// The account a verified certificate logs in: the one bound to its fingerprint (an
/// administrator's binding wins), else the one with the identity number of its subject.
async fn cert_user(ctx: &Ctx, cert: &crate::http::ClientCert) -> Result<Option<users::User>, IdpError> {
    if !cert.is_verified() {
        return Ok(None);
    }
    if let Some(u) = users::find_by_cert(&ctx.store, &cert.fingerprint_sha256).await? {
        return Ok(Some(u));
    }
    match &cert.id_number {
        Some(n) => users::find_by_identity_number(&ctx.store, n).await,
        None => Ok(None),
    }
}

/// Certificate login: the gateway verified the client certificate (mTLS) and passed it in
/// [`crate::http::IdpRequest::client_cert`]; the account bound to its fingerprint, or else the
/// account with the identity number in its subject, logs in with `acr=cert`, `amr=["hwk"]`.
/// A refused certificate, or one that maps to no (unlocked) account, gets the login page again
/// with the reason, where the password login remains.
async fn cert_login(ctx: &Ctx, req: &IdpRequest, f: FormCtx) -> Result<IdpResponse, IdpError> {
    let ip = req.client_ip.to_string();
    let user = match &req.client_cert {
        Some(c) => cert_user(ctx, c).await?.filter(|u| !u.locked),
        None => None,
    };
    let Some(user) = user else {
        let refused = req.client_cert.as_ref().and_then(|c| c.refused.clone());
        audit::record(
            &ctx.store,
            AuditEvent {
                event: "login_cert",
                outcome: "failure",
                client_id: Some(&f.client.id),
                ip: Some(&ip),
                detail: serde_json::json!({ "refused": refused }),
                ..Default::default()
            },
        )
        .await;
        let error = if cert_refusal(req).is_some() { None } else { Some("cert_failed") };
        let mut page = login_page(ctx, req, &f.id, &f.areq, f.locale, error, "", None);
        page.status = 400;
        return Ok(page.noting(AuthFailure::Certificate, None));
    };
    complete_login(ctx, req, &f, &user.id, &user.username, "cert", &["hwk"]).await
}

/// POST `/otp`: the TOTP step after a correct password.
pub async fn otp(ctx: &Ctx, req: &IdpRequest) -> Result<IdpResponse, IdpError> {
    let f = match form_ctx(ctx, req).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let now = crate::now();
    let ip = req.client_ip.to_string();
    let (Some(uid), Some(at)) = (f.areq.pending_user.clone(), f.areq.pending_at) else {
        return Ok(error_page(ctx, 400, f.locale, "request_expired", ""));
    };
    if now - at > 300 {
        return Ok(error_page(ctx, 400, f.locale, "request_expired", ""));
    }
    let Some(user) = users::find_by_id(&ctx.store, &uid).await?.filter(|u| !u.locked) else {
        return Ok(error_page(ctx, 400, f.locale, "login_failed", ""));
    };
    let key = format!("user:{}", user.username.to_lowercase());
    let throttled = throttle::wait_for(&ctx.store, &key, now).await? > 0;
    let step = if throttled {
        None
    } else {
        user.totp_secret.as_deref().and_then(|s| crate::totp::verify_step(s, f.p.get("otp").unwrap_or(""), now as u64))
    };
    let good = match step {
        Some(st) => users::use_totp_step(&ctx.store, &user.id, st as i64).await?,
        None => false,
    };
    if !good {
        if !throttled {
            throttle::record_failure(&ctx.store, &key, now, ctx.cfg.throttle_free_failures).await?;
        }
        audit::record(
            &ctx.store,
            AuditEvent {
                event: "login_otp",
                outcome: "failure",
                subject: Some(&user.id),
                client_id: Some(&f.client.id),
                ip: Some(&ip),
                ..Default::default()
            },
        )
        .await;
        let t = strings(f.locale);
        let mut r = simple_form(
            ctx,
            req,
            "otp.html",
            "title_otp",
            &f.id,
            f.locale,
            minijinja::context! { action => ctx.path("/otp"), error => t.get(if throttled { "throttled" } else { "otp_failed" }).copied() },
        );
        r.status = if throttled { 429 } else { 400 };
        let what = if throttled { AuthFailure::Throttled } else { AuthFailure::OneTimeCode };
        return Ok(r.noting(what, Some(&user.username)));
    }
    throttle::clear(&ctx.store, &key).await?;
    complete_login(ctx, req, &f, &user.id, &user.username, "otp", &["pwd", "otp"]).await
}

/// POST `/consent`: allow or deny.
pub async fn consent(ctx: &Ctx, req: &IdpRequest) -> Result<IdpResponse, IdpError> {
    let f = match form_ctx(ctx, req).await? {
        Ok(f) => f,
        Err(r) => return Ok(r),
    };
    let Some(session) = current_session(ctx, req).await? else {
        let u = f.areq.login_hint.clone().unwrap_or_default();
        return Ok(login_page(ctx, req, &f.id, &f.areq, f.locale, None, &u, None));
    };
    ctx.store.delete_auth_request(&f.id).await?;
    let ip = req.client_ip.to_string();
    if f.p.get("decision") != Some("allow") {
        audit::record(
            &ctx.store,
            AuditEvent {
                event: "consent",
                outcome: "denied",
                subject: Some(&session.user_id),
                client_id: Some(&f.client.id),
                ip: Some(&ip),
                ..Default::default()
            },
        )
        .await;
        return Ok(respond(
            ctx,
            &f.areq.redirect_uri,
            f.areq.response_mode,
            f.areq.state.as_deref(),
            error_fields(ErrorCode::AccessDenied, "the user denied the request"),
            f.locale,
        ));
    }
    let scope = consent_scope(&f.areq.scope, &f.areq.claims);
    ctx.store.save_consent(&session.user_id, &f.client.id, &scope, crate::now()).await?;
    audit::record(
        &ctx.store,
        AuditEvent {
            event: "consent",
            outcome: "granted",
            subject: Some(&session.user_id),
            client_id: Some(&f.client.id),
            ip: Some(&ip),
            detail: serde_json::json!({"scope": scope.join(" ")}),
            ..Default::default()
        },
    )
    .await;
    issue_code(ctx, &f.areq, &session, f.locale).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_order_and_assurance() {
        assert!(acr_rank("pwd") < acr_rank("otp") && acr_rank("otp") < acr_rank("cert"));
        assert_eq!(effective_assurance(4, "pwd"), 2);
        assert_eq!(effective_assurance(4, "otp"), 3);
        assert_eq!(effective_assurance(4, "cert"), 4);
        assert_eq!(effective_assurance(1, "cert"), 1);
        assert_eq!(required_acr_rank(&["otp".into(), "cert".into()]), 2);
        assert_eq!(required_acr_rank(&["urn:unknown".into()]), 0);
    }
}
