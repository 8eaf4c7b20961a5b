//! Token issuance shared by the grants: JWT access token (carrying its family id), ID token
//! with `at_hash`, and rotated refresh tokens; the JSON token response (RFC 6749 §5.1).

use super::claims::ClaimsRequest;
use crate::clients::Client;
use crate::crypto::random_token;
use crate::error::IdpError;
use crate::http::{Ctx, IdpResponse};
use crate::store::grants::RefreshGrant;
use crate::tokens::{self, AccessClaims, IdTokenClaims};
use crate::users::User;

/// What the tokens are about: the login that an authorization code or a refresh token carries
/// on, and the scope granted now.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub scope: &'a [String],
    pub auth_time: i64,
    pub acr: &'a str,
    pub amr: &'a [String],
    pub sid: &'a str,
    pub nonce: Option<&'a str>,
    pub family_id: &'a str,
    /// Claims requested one by one (the `claims` parameter).
    pub claims: &'a ClaimsRequest,
}

/// Issued tokens.
pub struct Issued {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
}

impl Issued {
    pub fn response(&self) -> IdpResponse {
        let mut v = serde_json::json!({
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        });
        if let Some(o) = v.as_object_mut() {
            if let Some(t) = &self.id_token {
                o.insert("id_token".into(), t.clone().into());
            }
            if let Some(t) = &self.refresh_token {
                o.insert("refresh_token".into(), t.clone().into());
            }
        }
        IdpResponse::json(200, &v)
    }
}

/// Mint a JWT access token (nothing is stored: it dies with its family or by `jti` revocation).
#[allow(clippy::too_many_arguments)]
pub async fn access_token(
    ctx: &Ctx,
    client: &Client,
    sub: &str,
    scope: &str,
    family_id: &str,
    extra: (Option<i64>, Option<&str>, Option<&str>),
    roles: Option<Vec<String>>,
    userinfo_claims: Vec<String>,
) -> Result<String, IdpError> {
    let now = crate::now();
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = AccessClaims {
        iss: ctx.cfg.issuer.clone(),
        sub: sub.to_string(),
        aud: client.id.clone(),
        client_id: client.id.clone(),
        exp: now + client.access_token_ttl,
        iat: now,
        jti,
        fid: family_id.to_string(),
        scope: scope.to_string(),
        auth_time: extra.0,
        acr: extra.1.map(String::from),
        sid: extra.2.map(String::from),
        roles,
        uic: userinfo_claims,
    };
    tokens::sign(&ctx.keys, client.id_token_alg, "at+jwt", &claims)
}

/// Issue `user`'s access token, ID token (if `openid` in scope) and refresh token (if the
/// client may use them).
pub async fn for_user(ctx: &Ctx, client: &Client, user: &User, s: &Subject<'_>) -> Result<Issued, IdpError> {
    let now = crate::now();
    let scope = s.scope.join(" ");
    let roles = s.scope.iter().any(|x| x == "roles").then(|| user.roles.clone());
    let at = access_token(
        ctx,
        client,
        s.user_id,
        &scope,
        s.family_id,
        (Some(s.auth_time), Some(s.acr), Some(s.sid)),
        roles,
        s.claims.userinfo.clone(),
    )
    .await?;
    let id_token = if s.scope.iter().any(|x| x == "openid") {
        let c = IdTokenClaims {
            iss: ctx.cfg.issuer.clone(),
            sub: s.user_id.to_string(),
            aud: client.id.clone(),
            exp: now + client.id_token_ttl,
            iat: now,
            auth_time: s.auth_time,
            nonce: s.nonce.map(String::from),
            acr: s.acr.to_string(),
            amr: s.amr.to_vec(),
            sid: s.sid.to_string(),
            at_hash: Some(tokens::at_hash(&at, client.id_token_alg)),
            azp: client.id.clone(),
            extra: super::userinfo::requested_claims(user, &s.claims.id_token, client, Some(s.acr)),
        };
        Some(tokens::sign(&ctx.keys, client.id_token_alg, "JWT", &c)?)
    } else {
        None
    };
    let refresh_token = if client.allows_grant("refresh_token") {
        let rt = random_token();
        let g = RefreshGrant {
            family_id: s.family_id.to_string(),
            client_id: client.id.clone(),
            user_id: s.user_id.to_string(),
            scope: scope.clone(),
            auth_time: s.auth_time,
            acr: s.acr.to_string(),
            amr: s.amr.to_vec(),
            sid: s.sid.to_string(),
            expires_at: now + client.refresh_token_ttl,
            claims: s.claims.clone(),
        };
        ctx.store.put_refresh(&rt, &g, now).await?;
        Some(rt)
    } else {
        None
    };
    Ok(Issued { access_token: at, id_token, refresh_token, expires_in: client.access_token_ttl, scope })
}
