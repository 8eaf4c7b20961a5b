//! Logout: RP-initiated logout (`end_session_endpoint`, OIDC RP-Initiated Logout 1.0) with
//! `id_token_hint` and exact `post_logout_redirect_uri` matching; back-channel logout (signed
//! logout tokens POSTed to each client's `backchannel_logout_uri`, OIDC Back-Channel Logout
//! 1.0); front-channel logout (iframes to each `frontchannel_logout_uri` on the signed-out page).
//!
//! Without a valid `id_token_hint` for the current session the user is asked to confirm (a
//! CSRF-protected form), so a third-party page cannot log users out.

use sqlx::Row;

use super::{body_params, Params};
use crate::audit::{self, AuditEvent};
use crate::error::IdpError;
use crate::http::{Ctx, IdpRequest, IdpResponse};
use crate::i18n::{negotiate, Locale};
use crate::session::{clear_cookie, CSRF_COOKIE, SESSION_COOKIE};
use crate::tokens::{self, IdTokenClaims, LogoutClaims};

pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

pub async fn end_session(ctx: &Ctx, req: &IdpRequest) -> Result<IdpResponse, IdpError> {
    let p = if req.method.eq_ignore_ascii_case("POST") { body_params(req) } else { Params::parse(req.query.as_bytes()) };
    let locale = negotiate(p.get("lang"), p.get("ui_locales"), req.header("accept-language"));
    let now = crate::now();
    let hint: Option<IdTokenClaims> = p.get("id_token_hint").and_then(|t| tokens::verify(&ctx.keys, &ctx.cfg.issuer, t, "JWT", false).ok());
    if p.get("id_token_hint").is_some() && hint.is_none() {
        return Ok(ctx.page(
            400,
            "error.html",
            locale,
            "title_error",
            minijinja::context! { message => "invalid id_token_hint", code => "invalid_request" },
        ));
    }
    // Which client: from the hint's aud, or client_id (must agree).
    let client_id = match (&hint, p.get("client_id")) {
        (Some(h), Some(c)) if h.aud != c => {
            return Ok(ctx.page(
                400,
                "error.html",
                locale,
                "title_error",
                minijinja::context! { message => "client_id does not match id_token_hint", code => "invalid_request" },
            ))
        }
        (Some(h), _) => Some(h.aud.clone()),
        (None, c) => c.map(String::from),
    };
    let clients = ctx.clients();
    let client = client_id.as_deref().and_then(|c| clients.get(c));
    let redirect = match (p.get("post_logout_redirect_uri"), client) {
        (Some(u), Some(c)) if c.post_logout_uri_registered(u) => Some(u.to_string()),
        (Some(_), _) => {
            return Ok(ctx.page(
                400,
                "error.html",
                locale,
                "title_error",
                minijinja::context! { message => "post_logout_redirect_uri is not registered", code => "invalid_request" },
            ))
        }
        (None, _) => None,
    };
    let session = match req.cookie(SESSION_COOKIE) {
        Some(c) => ctx.store.session_by_cookie(c, now).await?,
        None => None,
    };
    let confirmed_by_hint = matches!((&hint, &session), (Some(h), Some(s)) if h.sid == s.sid && h.sub == s.user_id);
    let confirmed_by_form = req.method.eq_ignore_ascii_case("POST")
        && p.get("confirm") == Some("yes")
        && ctx.csrf().check(req.cookie(CSRF_COOKIE), p.get("csrf"));
    if session.is_some() && !confirmed_by_hint && !confirmed_by_form {
        let (cookie, new) = crate::session::Csrf::cookie_or_new(req.cookie(CSRF_COOKIE));
        let fields: Vec<Vec<String>> = ["post_logout_redirect_uri", "state", "client_id", "id_token_hint"]
            .iter()
            .filter_map(|k| p.get(k).map(|v| vec![k.to_string(), v.to_string()]))
            .collect();
        let other = if locale == Locale::Zh { "en" } else { "zh" };
        let mut r = ctx.page(
            200,
            "logout_confirm.html",
            locale,
            "title_logout",
            minijinja::context! { action => ctx.path("/logout"), csrf => ctx.csrf().token(&cookie), fields => fields, lang_switch_url => format!("?lang={other}") },
        );
        if new {
            r.headers.push(("Set-Cookie".into(), crate::session::set_cookie(CSRF_COOKIE, &cookie, None)));
        }
        return Ok(r);
    }
    let mut frontchannel = Vec::new();
    if let Some(s) = &session {
        frontchannel = logout_session(ctx, &s.sid, &s.user_id, &req.client_ip.to_string()).await?;
    }
    let mut resp = match redirect {
        Some(u) => {
            let mut url = url::Url::parse(&u).map_err(|e| IdpError::Invalid(e.to_string()))?;
            if let Some(st) = p.get("state") {
                url.query_pairs_mut().append_pair("state", st);
            }
            if frontchannel.is_empty() {
                IdpResponse::redirect(url.as_str())
            } else {
                ctx.page(
                    200,
                    "logged_out.html",
                    locale,
                    "title_logged_out",
                    minijinja::context! { frontchannel => frontchannel, continue_url => url.as_str(), lang_switch_url => "" },
                )
            }
        }
        None => ctx.page(
            200,
            "logged_out.html",
            locale,
            "title_logged_out",
            minijinja::context! { frontchannel => frontchannel, lang_switch_url => "" },
        ),
    };
    resp.headers.push(("Set-Cookie".into(), clear_cookie(SESSION_COOKIE)));
    Ok(resp)
}

/// End a session: mark it ended, revoke its token families, send back-channel logout tokens and
/// return the front-channel logout URLs. Also used by admin actions (lock).
pub async fn logout_session(ctx: &Ctx, sid: &str, user_id: &str, ip: &str) -> Result<Vec<String>, IdpError> {
    let now = crate::now();
    let client_ids: Vec<String> = sqlx::query("SELECT DISTINCT client_id FROM token_families WHERE sid = $1")
        .bind(sid)
        .fetch_all(&ctx.store.pool)
        .await?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    ctx.store.end_session(sid).await?;
    ctx.store.revoke_session_families(sid, now).await?;
    audit::record(
        &ctx.store,
        AuditEvent {
            event: "logout",
            outcome: "success",
            subject: Some(user_id),
            ip: Some(ip),
            detail: serde_json::json!({"sid": sid, "clients": client_ids}),
            ..Default::default()
        },
    )
    .await;
    let clients = ctx.clients();
    let mut front = Vec::new();
    let mut deliveries = tokio::task::JoinSet::new();
    for cid in &client_ids {
        let Some(c) = clients.get(cid) else { continue };
        if let Some(uri) = &c.backchannel_logout_uri {
            let claims = LogoutClaims {
                iss: ctx.cfg.issuer.clone(),
                sub: user_id.to_string(),
                aud: c.id.clone(),
                iat: now,
                exp: now + 120,
                jti: uuid::Uuid::new_v4().to_string(),
                sid: sid.to_string(),
                events: serde_json::json!({ BACKCHANNEL_EVENT: {} }),
            };
            let token = tokens::sign(&ctx.keys, c.id_token_alg, "logout+jwt", &claims)?;
            deliveries.spawn(deliver_backchannel(ctx.store.clone(), uri.clone(), c.id.clone(), token));
        }
        if let Some(uri) = &c.frontchannel_logout_uri {
            if let Ok(mut u) = url::Url::parse(uri) {
                u.query_pairs_mut().append_pair("iss", &ctx.cfg.issuer).append_pair("sid", sid);
                front.push(u.to_string());
            }
        }
    }
    // All relying parties are notified concurrently; each delivery has its own 5 s timeout.
    while deliveries.join_next().await.is_some() {}
    Ok(front)
}

/// POST `logout_token=<jwt>` to a client (5 s timeout); the outcome is audited. The logout
/// response waits for all deliveries (concurrent, bounded by the timeout).
async fn deliver_backchannel(store: crate::store::Store, uri: String, client_id: String, token: String) {
    let body = format!("logout_token={}", url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>());
    let result =
        match reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).redirect(reqwest::redirect::Policy::none()).build() {
            Ok(http) => http
                .post(&uri)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
    let (outcome, detail) = match result {
        Ok(s) if (200..300).contains(&s) => ("success", serde_json::json!({"status": s})),
        Ok(s) => ("failure", serde_json::json!({"status": s})),
        Err(e) => ("failure", serde_json::json!({"error": e})),
    };
    audit::record(&store, AuditEvent { event: "backchannel_logout", outcome, client_id: Some(&client_id), detail, ..Default::default() })
        .await;
}
