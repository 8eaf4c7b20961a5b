//! The reserved paths under `/.govgate/` on every app host when single sign-on is on:
//! `callback` (the end of a login), `logout` (RP-initiated logout, ending every session of the
//! provider session on every host), `backchannel-logout` (logout tokens from the provider) and
//! `jwks.json` (the keys apps verify `X-Govgate-Assertion` with). They never reach the app.

use super::sessions::SessionData;
use super::{rp, Gate, Reply, Request, SsoError, SsoService, LOGIN_COOKIE, SESSION_COOKIE};
use govgate_policies::{App, Policy};
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "/.govgate/";
pub const CALLBACK: &str = "/.govgate/callback";
pub const LOGOUT: &str = "/.govgate/logout";
pub const BACKCHANNEL_LOGOUT: &str = "/.govgate/backchannel-logout";
pub const JWKS: &str = "/.govgate/jwks.json";
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Whether the proxy must read the request body before calling [`super::SsoService::gate`].
pub fn needs_body(path: &str) -> bool {
    path == BACKCHANNEL_LOGOUT
}

fn query(pq: &str) -> Vec<(String, String)> {
    let q = pq.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn get<'a>(params: &'a [(String, String)], k: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn bad(req: &Request<'_>, status: u16, en: &str, zh: &str, refused: &'static str) -> Result<Gate, SsoError> {
    Ok(Gate::Reply(Reply::page(status, req.request_id, req.headers, Some((en, zh)), refused)))
}

fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

pub(super) async fn serve(
    sso: &SsoService,
    t: &rp::Transport<'_>,
    issuer: &str,
    policy: &Policy,
    app: &App,
    req: &Request<'_>,
    body: &[u8],
) -> Result<Gate, SsoError> {
    match (req.path, req.method) {
        (CALLBACK, "GET") => callback(sso, t, issuer, policy, app, req).await,
        (LOGOUT, "GET" | "POST") => logout(sso, t, issuer, app, req).await,
        (BACKCHANNEL_LOGOUT, "POST") => backchannel(sso, t, issuer, policy, req, body).await,
        (JWKS, "GET" | "HEAD") => {
            let jwks = sso.signer().await?.jwks().as_bytes().to_vec();
            Ok(Gate::Reply(Reply {
                status: 200,
                headers: vec![("cache-control", "public, max-age=300".into()), ("access-control-allow-origin", "*".into())],
                content_type: "application/json",
                body: jwks,
                refused: None,
                user: None,
            }))
        }
        (CALLBACK | LOGOUT | BACKCHANNEL_LOGOUT | JWKS, _) => {
            bad(req, 400, "Method not allowed here.", "此地址不接受该请求方法。", "sso_method")
        }
        _ => Ok(Gate::Reply(Reply::page(404, req.request_id, req.headers, None, "sso_not_found"))),
    }
}

/// The end of a login: checks `state` (known, unused, this host, this browser), exchanges the
/// code, verifies the ID token, opens the session and goes back to where the user was going.
async fn callback(
    sso: &SsoService,
    t: &rp::Transport<'_>,
    issuer: &str,
    policy: &Policy,
    app: &App,
    req: &Request<'_>,
) -> Result<Gate, SsoError> {
    let p = query(req.path_and_query);
    let Some(state) = get(&p, "state") else {
        return bad(req, 400, "The login answer has no state.", "登录应答缺少 state 参数。", "sso_state");
    };
    let Some(pending) = sso.take_pending(state) else {
        return bad(
            req,
            400,
            "This login link is unknown, expired or already used. Please start again.",
            "登录链接无效、已过期或已使用，请重新登录。",
            "sso_state",
        );
    };
    let binding_ok = req.cookie(LOGIN_COOKIE).is_some_and(|c| bool::from(super::sessions::hash_id(c).ct_eq(&pending.binding)));
    if pending.host != req.host || pending.app != app.name || !binding_ok {
        return bad(
            req,
            400,
            "This login was started in another browser or for another site.",
            "此登录不是由本浏览器或本网站发起的。",
            "sso_state",
        );
    }
    if let Some(e) = get(&p, "error") {
        let en = format!("The identity provider did not log you in ({e}).");
        let zh = format!("统一身份认证未完成登录（{e}）。");
        return bad(req, 401, &en, &zh, "sso_error");
    }
    if get(&p, "iss").is_some_and(|i| i != issuer) {
        return bad(req, 400, "The login answer came from another identity provider.", "登录应答来自其他身份提供方。", "sso_iss");
    }
    let Some(code) = get(&p, "code") else {
        return bad(req, 400, "The login answer has no code.", "登录应答缺少授权码。", "sso_code");
    };
    let provider = sso.provider.get(t, issuer).await?;
    let done = match rp::complete(t, &provider, &pending.client_id, &pending.redirect_uri, code, &pending.pkce_verifier, &pending.nonce)
        .await
    {
        Ok(d) => d,
        Err(e @ (rp::RpError::Exchange(_) | rp::RpError::IdToken(_))) => {
            tracing::warn!(request_id = req.request_id, app = app.name, "login refused: {e}");
            return bad(req, 400, "The login could not be completed. Please start again.", "登录未能完成，请重新登录。", "sso_exchange");
        }
        Err(e) => return Err(e.into()),
    };
    let s = |k: &str| done.claims.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let subject = s("sub").unwrap_or_default();
    let acr = s("acr").unwrap_or_default();
    let mut claims = done.claims.clone();
    if let Some(url) = provider.userinfo_endpoint() {
        match t.get_json(url, Some(&done.access_token)).await {
            Ok(serde_json::Value::Object(info)) if info.get("sub").and_then(|v| v.as_str()) == Some(subject.as_str()) => {
                if let Some(m) = claims.as_object_mut() {
                    for (k, v) in info {
                        m.entry(k).or_insert(v);
                    }
                }
            }
            Ok(_) => tracing::warn!(request_id = req.request_id, "userinfo ignored: it names another subject"),
            Err(e) => tracing::warn!(request_id = req.request_id, "userinfo unavailable: {e}"),
        }
    }
    let now = super::now();
    let data = SessionData {
        host: req.host.clone(),
        app: app.name.clone(),
        subject: subject.clone(),
        sid: s("sid"),
        acr: acr.clone(),
        claims,
        id_token: done.id_token,
        created_at: now,
        expires_at: now + policy.sso.session_absolute.0.as_secs() as i64,
        refresh_sealed: match &done.refresh_token {
            Some(rt) => Some(sso.sealer().await?.seal(rt)?),
            None => None,
        },
        renew_at: now + super::renew_after(done.expires_in),
    };
    let id = sso.sessions().await?.create(data, now).await?;
    let cookie =
        format!("{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}", policy.sso.session_absolute.0.as_secs());
    tracing::info!(request_id = req.request_id, app = app.name, acr, "single sign-on: session opened");
    // A step-up that did not reach the strength asked for: say so rather than loop.
    if let Some(want) = &pending.acr {
        let who = super::access::Identity { acr: acr.clone(), ..Default::default() };
        let req_acr = govgate_policies::Access::Require(govgate_policies::Requirement { acr: Some(want.clone()), ..Default::default() });
        if super::access::decide(&req_acr, Some(&who)) != super::access::Decision::Allow {
            let en = format!("This page needs a stronger login ({want}); you logged in with {acr}. Use your certificate to log in.");
            let zh = format!("此页面需要更高强度的登录方式（{want}），您使用的是 {acr}。请使用证书登录。");
            let mut r = Reply::page(403, req.request_id, req.headers, Some((&en, &zh)), "sso_step_up");
            r.headers.push(("set-cookie", cookie));
            return Ok(Gate::Reply(r));
        }
    }
    let mut r = Reply::redirect(303, &pending.return_to);
    r.headers.push(("set-cookie", cookie));
    r.headers.push(("set-cookie", clear_cookie(LOGIN_COOKIE)));
    Ok(Gate::Reply(r))
}

/// Ends this login everywhere: every gateway session of the same provider session (all hosts),
/// then the provider's session (RP-initiated logout, which shows the signed-out page).
async fn logout(sso: &SsoService, t: &rp::Transport<'_>, issuer: &str, app: &App, req: &Request<'_>) -> Result<Gate, SsoError> {
    let sessions = sso.sessions().await?;
    let mut hint = None;
    if let Some(id) = req.cookie(SESSION_COOKIE) {
        if let Some(s) = sessions.get(id, &req.host, super::now()).await? {
            hint = Some(s.data.id_token.clone());
            let ended = match &s.data.sid {
                Some(sid) => sessions.end_sid(sid).await?,
                None => sessions.end_subject(&s.data.subject).await?,
            };
            tracing::info!(request_id = req.request_id, app = app.name, sessions = ended, "single sign-on: logged out");
        }
        sessions.end(id).await?;
    }
    let provider = sso.provider.get(t, issuer).await?;
    let location = match provider.end_session_endpoint().and_then(|u| url::Url::parse(u).ok()) {
        Some(mut u) => {
            let client_id = app.sso_client.as_deref().unwrap_or(&app.name);
            match &hint {
                Some(h) => u.query_pairs_mut().append_pair("id_token_hint", h),
                None => u.query_pairs_mut().append_pair("client_id", client_id),
            };
            u.to_string()
        }
        None => "/".to_string(),
    };
    let mut r = Reply::redirect(303, &location);
    r.headers.push(("set-cookie", clear_cookie(SESSION_COOKIE)));
    Ok(Gate::Reply(r))
}

/// OIDC Back-Channel Logout: a signed logout token from the provider ends the sessions of its
/// `sid` (or of its subject) on every host.
async fn backchannel(
    sso: &SsoService,
    t: &rp::Transport<'_>,
    issuer: &str,
    policy: &Policy,
    req: &Request<'_>,
    body: &[u8],
) -> Result<Gate, SsoError> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let json = |status: u16, error: &str| {
        Gate::Reply(Reply {
            status,
            headers: vec![("cache-control", "no-store".into())],
            content_type: "application/json",
            body: serde_json::json!({ "error": error, "incident_id": req.request_id }).to_string().into_bytes(),
            refused: (status != 200).then_some("backchannel_invalid"),
            user: None,
        })
    };
    let Some(token) = get(&form, "logout_token") else { return Ok(json(400, "invalid_request")) };
    let audiences: Vec<&str> = policy.apps.iter().map(|a| a.sso_client.as_deref().unwrap_or(&a.name)).collect();
    let mut provider = sso.provider.get(t, issuer).await?;
    let mut claims = verify_logout(token, &provider.jwks, issuer, &audiences);
    if matches!(claims, Err(true)) {
        provider = sso.provider.refresh(t, issuer).await?;
        claims = verify_logout(token, &provider.jwks, issuer, &audiences);
    }
    let Ok(c) = claims else { return Ok(json(400, "invalid_request")) };
    let sessions = sso.sessions().await?;
    let ended = match (c.get("sid").and_then(|v| v.as_str()), c.get("sub").and_then(|v| v.as_str())) {
        (Some(sid), _) => sessions.end_sid(sid).await?,
        (None, Some(sub)) => sessions.end_subject(sub).await?,
        (None, None) => return Ok(json(400, "invalid_request")),
    };
    tracing::info!(request_id = req.request_id, sessions = ended, "single sign-on: back-channel logout");
    Ok(json(200, "none"))
}

/// Verifies a logout token; `Err(true)` when its key is unknown (refetch and retry).
pub fn verify_logout(token: &str, jwks: &jsonwebtoken::jwk::JwkSet, issuer: &str, audiences: &[&str]) -> Result<serde_json::Value, bool> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| false)?;
    let Some(jwk) = header.kid.as_deref().and_then(|k| jwks.find(k)) else { return Err(true) };
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| false)?;
    if matches!(header.alg, jsonwebtoken::Algorithm::HS256 | jsonwebtoken::Algorithm::HS384 | jsonwebtoken::Algorithm::HS512) {
        return Err(false);
    }
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[issuer]);
    v.set_audience(audiences);
    v.leeway = 5;
    let c = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).map_err(|_| false)?.claims;
    let is_logout = c.get("events").and_then(|e| e.get(BACKCHANNEL_EVENT)).is_some() && c.get("nonce").is_none();
    if is_logout {
        Ok(c)
    } else {
        Err(false)
    }
}
