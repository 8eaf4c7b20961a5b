//! Token endpoint (RFC 6749 §3.2: `authorization_code` with PKCE, `refresh_token` with rotation
//! and family revocation on reuse, `client_credentials`), token introspection (RFC 7662) and
//! revocation (RFC 7009). Errors are JSON exactly as RFC 6749 §5.2.

use super::issue::{self, Subject};
use super::{body_params, client_auth, split_scope, Params};
use crate::audit::{self, AuditEvent};
use crate::clients::Client;
use crate::crypto::{ct_eq, s256};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Ctx, IdpRequest, IdpResponse};
use crate::store::grants::{CodeRedeem, RefreshRedeem};
use crate::users::{self, User};

/// RFC 7636 §4.1: 43–128 characters of `[A-Za-z0-9-._~]`.
pub fn valid_pkce_value(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
}

pub async fn token(ctx: &Ctx, req: &IdpRequest) -> IdpResponse {
    let p = body_params(req);
    match token_inner(ctx, req, &p).await {
        Ok(r) => r,
        Err(e) => {
            if e.code == ErrorCode::InvalidClient {
                audit::record(
                    &ctx.store,
                    AuditEvent {
                        event: "client_auth",
                        outcome: "failure",
                        client_id: p.get("client_id"),
                        ip: Some(&req.client_ip.to_string()),
                        ..Default::default()
                    },
                )
                .await;
            }
            IdpResponse::oauth_error(&e)
        }
    }
}

async fn token_inner(ctx: &Ctx, req: &IdpRequest, p: &Params) -> Result<IdpResponse, OAuthError> {
    p.check_no_dups(&["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope"])?;
    let client = client_auth::authenticate(ctx, req, p).await?;
    let grant = p.get("grant_type").ok_or_else(|| OAuthError::invalid_request("grant_type missing"))?;
    let ip = req.client_ip.to_string();
    match grant {
        "authorization_code" | "refresh_token" | "client_credentials" if !client.allows_grant(grant) => {
            Err(OAuthError::new(ErrorCode::UnauthorizedClient, "grant type not allowed for this client"))
        }
        "authorization_code" => authorization_code(ctx, &client, p, &ip).await,
        "refresh_token" => refresh(ctx, &client, p, &ip).await,
        "client_credentials" => client_credentials(ctx, &client, p, &ip).await,
        _ => Err(OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type")),
    }
}

async fn authorization_code(ctx: &Ctx, client: &Client, p: &Params, ip: &str) -> Result<IdpResponse, OAuthError> {
    let code = p.get("code").ok_or_else(|| OAuthError::invalid_request("code missing"))?;
    let now = crate::now();
    let g = match ctx.store.redeem_code(code, now).await? {
        CodeRedeem::Unknown => return Err(OAuthError::invalid_grant("invalid authorization code")),
        CodeRedeem::Replayed { family_id, client_id } => {
            audit::record(
                &ctx.store,
                AuditEvent {
                    event: "code_replay",
                    outcome: "revoked",
                    client_id: Some(&client_id),
                    ip: Some(ip),
                    detail: serde_json::json!({"family": family_id}),
                    ..Default::default()
                },
            )
            .await;
            return Err(OAuthError::invalid_grant("authorization code already used"));
        }
        CodeRedeem::Ok(g) => g,
    };
    if g.client_id != client.id {
        return Err(OAuthError::invalid_grant("code was issued to another client"));
    }
    if g.expires_at <= now {
        return Err(OAuthError::invalid_grant("authorization code expired"));
    }
    if p.get("redirect_uri") != Some(g.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant("redirect_uri does not match"));
    }
    match (&g.code_challenge, p.get("code_verifier")) {
        (Some(ch), Some(v)) if valid_pkce_value(v) && ct_eq(s256(v).as_bytes(), ch.as_bytes()) => {}
        (Some(_), _) => return Err(OAuthError::invalid_grant("PKCE verification failed")),
        (None, Some(_)) => return Err(OAuthError::invalid_grant("code_verifier sent but no code_challenge was registered")),
        (None, None) => {}
    }
    let user = users::find_by_id(&ctx.store, &g.user_id).await?;
    let Some(user) = user.filter(|u| !u.locked) else { return Err(OAuthError::invalid_grant("account unavailable")) };
    ctx.store.create_family(&g.family_id, &client.id, Some(&g.user_id), Some(&g.sid), &g.claims, now).await?;
    let scope = split_scope(&g.scope);
    let s = Subject {
        user_id: &g.user_id,
        scope: &scope,
        sid: &g.sid,
        auth_time: g.auth_time,
        acr: &g.acr,
        amr: &g.amr,
        family_id: &g.family_id,
        claims: &g.claims,
        nonce: g.nonce.as_deref(),
    };
    issue_to_user(ctx, client, &user, &s, "authorization_code", ip).await
}

async fn refresh(ctx: &Ctx, client: &Client, p: &Params, ip: &str) -> Result<IdpResponse, OAuthError> {
    let rt = p.get("refresh_token").ok_or_else(|| OAuthError::invalid_request("refresh_token missing"))?;
    let now = crate::now();
    let g = match ctx.store.redeem_refresh(rt, &client.id, now).await? {
        RefreshRedeem::Ok(g) => *g,
        RefreshRedeem::Reused { family_id } => {
            audit::record(
                &ctx.store,
                AuditEvent {
                    event: "refresh_reuse",
                    outcome: "revoked",
                    client_id: Some(&client.id),
                    ip: Some(ip),
                    detail: serde_json::json!({"family": family_id}),
                    ..Default::default()
                },
            )
            .await;
            return Err(OAuthError::invalid_grant("refresh token already used; token family revoked"));
        }
        RefreshRedeem::Invalid => return Err(OAuthError::invalid_grant("invalid refresh token")),
    };
    let granted = split_scope(&g.scope);
    let scope = match p.get("scope") {
        Some(s) => {
            let req = split_scope(s);
            if !req.iter().all(|x| granted.contains(x)) {
                return Err(OAuthError::new(ErrorCode::InvalidScope, "scope exceeds the original grant"));
            }
            req
        }
        None => granted,
    };
    let user = users::find_by_id(&ctx.store, &g.user_id).await?;
    let Some(user) = user.filter(|u| !u.locked) else {
        ctx.store.revoke_family(&g.family_id, now).await?;
        return Err(OAuthError::invalid_grant("account unavailable"));
    };
    let s = Subject {
        user_id: &g.user_id,
        scope: &scope,
        sid: &g.sid,
        auth_time: g.auth_time,
        acr: &g.acr,
        amr: &g.amr,
        family_id: &g.family_id,
        claims: &g.claims,
        nonce: None,
    };
    issue_to_user(ctx, client, &user, &s, "refresh_token", ip).await
}

/// Issues `user`'s tokens for `s` (the two grants that continue a citizen's login), records the
/// issue in the audit log as `grant` and answers with the token response.
async fn issue_to_user(ctx: &Ctx, client: &Client, user: &User, s: &Subject<'_>, grant: &str, ip: &str) -> Result<IdpResponse, OAuthError> {
    let issued = issue::for_user(ctx, client, user, s).await?;
    audit::record(
        &ctx.store,
        AuditEvent {
            event: "token_issue",
            outcome: "success",
            subject: Some(s.user_id),
            client_id: Some(&client.id),
            ip: Some(ip),
            detail: serde_json::json!({"grant": grant, "family": s.family_id}),
            ..Default::default()
        },
    )
    .await;
    Ok(issued.response())
}

async fn client_credentials(ctx: &Ctx, client: &Client, p: &Params, ip: &str) -> Result<IdpResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "public clients cannot use client_credentials"));
    }
    let requested = p.get("scope").unwrap_or("");
    let scope: Vec<String> = if requested.is_empty() {
        client.scopes.iter().filter(|s| !["openid", "offline_access"].contains(&s.as_str())).cloned().collect()
    } else {
        let f = client.filter_scope(requested);
        if f.len() != split_scope(requested).len() || f.iter().any(|s| s == "openid") {
            return Err(OAuthError::new(ErrorCode::InvalidScope, "scope not allowed"));
        }
        f
    };
    let scope = scope.join(" ");
    let family = format!("cc:{}", client.id);
    let at = issue::access_token(ctx, client, &client.id, &scope, &family, (None, None, None), None, Vec::new()).await?;
    audit::record(
        &ctx.store,
        AuditEvent {
            event: "token_issue",
            outcome: "success",
            subject: Some(&client.id),
            client_id: Some(&client.id),
            ip: Some(ip),
            detail: serde_json::json!({"grant": "client_credentials"}),
            ..Default::default()
        },
    )
    .await;
    Ok(IdpResponse::json(
        200,
        &serde_json::json!({"access_token": at, "token_type": "Bearer", "expires_in": client.access_token_ttl, "scope": scope}),
    ))
}

/// RFC 7662 token introspection. Access tokens of any client may be introspected by an
/// authenticated confidential client (a resource server); refresh tokens only by their owner.
pub async fn introspect(ctx: &Ctx, req: &IdpRequest) -> IdpResponse {
    let p = body_params(req);
    let client = match client_auth::authenticate(ctx, req, &p).await {
        Ok(c) if !c.is_public() => c,
        Ok(_) => return IdpResponse::oauth_error(&OAuthError::invalid_client("public clients cannot introspect")),
        Err(e) => return IdpResponse::oauth_error(&e),
    };
    let Some(token) = p.get("token") else { return IdpResponse::oauth_error(&OAuthError::invalid_request("token missing")) };
    let inactive = IdpResponse::json(200, &serde_json::json!({"active": false}));
    if let Ok(c) = crate::tokens::verify_access(&ctx.keys, &ctx.cfg.issuer, token) {
        return match ctx.store.access_live(&c.jti, &c.fid).await {
            Ok(true) => IdpResponse::json(
                200,
                &serde_json::json!({
                    "active": true, "scope": c.scope, "client_id": c.client_id, "sub": c.sub, "aud": c.aud, "iss": c.iss,
                    "exp": c.exp, "iat": c.iat, "jti": c.jti, "token_type": "Bearer", "acr": c.acr, "auth_time": c.auth_time,
                }),
            ),
            Ok(false) => inactive,
            Err(e) => IdpResponse::oauth_error(&e.into()),
        };
    }
    match ctx.store.find_refresh(token).await {
        Ok(Some((g, true))) if g.client_id == client.id && g.expires_at > crate::now() => IdpResponse::json(
            200,
            &serde_json::json!({"active": true, "scope": g.scope, "client_id": g.client_id, "sub": g.user_id, "exp": g.expires_at, "token_type": "refresh_token", "iss": ctx.cfg.issuer}),
        ),
        Ok(_) => inactive,
        Err(e) => IdpResponse::oauth_error(&e.into()),
    }
}

/// RFC 7009 revocation: a refresh token revokes its whole family (and the access tokens issued
/// with it); an access token revokes itself. Unknown tokens answer 200 as well.
pub async fn revoke(ctx: &Ctx, req: &IdpRequest) -> IdpResponse {
    let p = body_params(req);
    let client = match client_auth::authenticate(ctx, req, &p).await {
        Ok(c) => c,
        Err(e) => return IdpResponse::oauth_error(&e),
    };
    let Some(token) = p.get("token") else { return IdpResponse::oauth_error(&OAuthError::invalid_request("token missing")) };
    let now = crate::now();
    let r: Result<(), crate::error::IdpError> = async {
        if let Some((g, _)) = ctx.store.find_refresh(token).await? {
            if g.client_id == client.id {
                ctx.store.revoke_family(&g.family_id, now).await?;
                audit::record(
                    &ctx.store,
                    AuditEvent {
                        event: "revoke",
                        outcome: "success",
                        subject: Some(&g.user_id),
                        client_id: Some(&client.id),
                        detail: serde_json::json!({"type": "refresh_token"}),
                        ..Default::default()
                    },
                )
                .await;
            }
        } else if let Ok(c) = crate::tokens::verify_access(&ctx.keys, &ctx.cfg.issuer, token) {
            if c.client_id == client.id {
                ctx.store.revoke_access(&c.jti, c.exp).await?;
                audit::record(
                    &ctx.store,
                    AuditEvent {
                        event: "revoke",
                        outcome: "success",
                        subject: Some(&c.sub),
                        client_id: Some(&client.id),
                        detail: serde_json::json!({"type": "access_token"}),
                        ..Default::default()
                    },
                )
                .await;
            }
        }
        Ok(())
    }
    .await;
    match r {
        Ok(()) => IdpResponse::new(200),
        Err(e) => IdpResponse::oauth_error(&e.into()),
    }
}
