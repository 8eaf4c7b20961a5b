//! Client authentication (RFC 6749 §2.3, OIDC Core §9): `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt` (RFC 7523, single-use `jti`) and `none` for public
//! clients. Each client must use the method it is registered with; presenting two methods is an
//! error. Secrets are compared in constant time.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::Params;
use crate::clients::{AuthMethod, Client};
use crate::error::OAuthError;
use crate::http::{Ctx, IdpRequest};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: Option<String>,
}

fn basic_credentials(req: &IdpRequest) -> Option<Result<(String, String), OAuthError>> {
    let h = req.header("authorization")?;
    let (scheme, rest) = h.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bad = || {
        let mut e = OAuthError::invalid_client("malformed basic credentials");
        e.basic_auth_attempted = true;
        e
    };
    let dec = match STANDARD.decode(rest.trim()) {
        Ok(d) => d,
        Err(_) => return Some(Err(bad())),
    };
    let Ok(s) = String::from_utf8(dec) else { return Some(Err(bad())) };
    let Some((id, secret)) = s.split_once(':') else { return Some(Err(bad())) };
    // RFC 6749 §2.3.1: both parts are form-urlencoded.
    let decode = |x: &str| url::form_urlencoded::parse(format!("v={x}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    Some(Ok((decode(id), decode(secret))))
}

/// Authenticate the calling client. Errors are `invalid_client` (401) or `invalid_request`.
pub async fn authenticate(ctx: &Ctx, req: &IdpRequest, p: &Params) -> Result<Client, OAuthError> {
    p.check_no_dups(&["client_id", "client_secret", "client_assertion", "client_assertion_type"])?;
    let clients = ctx.clients();
    let basic = basic_credentials(req);
    let methods =
        usize::from(basic.is_some()) + usize::from(p.get("client_secret").is_some()) + usize::from(p.get("client_assertion").is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_request("more than one client authentication method"));
    }
    let fail = |basic: bool| {
        let mut e = OAuthError::invalid_client("client authentication failed");
        e.basic_auth_attempted = basic;
        e
    };
    if let Some(b) = basic {
        let (id, secret) = b?;
        if p.get("client_id").is_some_and(|c| c != id) {
            return Err(OAuthError::invalid_request("client_id does not match credentials"));
        }
        let Some(c) = clients.get(&id) else { return Err(fail(true)) };
        if c.auth_method != AuthMethod::ClientSecretBasic || !c.verify_secret(&secret) {
            return Err(fail(true));
        }
        return Ok(c.clone());
    }
    if let Some(secret) = p.get("client_secret") {
        let id = p.get("client_id").ok_or_else(|| OAuthError::invalid_request("client_id missing"))?;
        let Some(c) = clients.get(id) else { return Err(fail(false)) };
        if c.auth_method != AuthMethod::ClientSecretPost || !c.verify_secret(secret) {
            return Err(fail(false));
        }
        return Ok(c.clone());
    }
    if let Some(assertion) = p.get("client_assertion") {
        if p.get("client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_request("unsupported client_assertion_type"));
        }
        return private_key_jwt(ctx, assertion, p.get("client_id")).await;
    }
    let id = p.get("client_id").ok_or_else(|| fail(false))?;
    match clients.get(id) {
        Some(c) if c.auth_method == AuthMethod::None => Ok(c.clone()),
        _ => Err(fail(false)),
    }
}

async fn private_key_jwt(ctx: &Ctx, assertion: &str, client_id: Option<&str>) -> Result<Client, OAuthError> {
    let fail = || OAuthError::invalid_client("client assertion rejected");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| fail())?;
    if !matches!(header.alg, Algorithm::ES256 | Algorithm::RS256 | Algorithm::PS256 | Algorithm::EdDSA) {
        return Err(fail());
    }
    // The client id is the unverified `sub` until the signature is checked.
    let unverified = jsonwebtoken::dangerous::insecure_decode::<AssertionClaims>(assertion).map_err(|_| fail())?;
    let id = unverified.claims.sub.clone();
    if client_id.is_some_and(|c| c != id) {
        return Err(fail());
    }
    let clients = ctx.clients();
    let c = clients.get(&id).filter(|c| c.auth_method == AuthMethod::PrivateKeyJwt).ok_or_else(fail)?;
    let jwks = c.jwks.as_ref().ok_or_else(fail)?;
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(fail)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| fail())?;
    let mut v = Validation::new(header.alg);
    v.set_audience(&[ctx.cfg.endpoint("/token"), ctx.cfg.issuer.clone()]);
    v.set_issuer(&[id.as_str()]);
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    v.leeway = 30;
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &v).map_err(|_| fail())?;
    let now = crate::now();
    if data.claims.sub != id || data.claims.iss != id || data.claims.exp > now + 600 {
        return Err(fail());
    }
    let jti = data.claims.jti.ok_or_else(fail)?;
    if !ctx.store.use_assertion_jti(&format!("{id}:{jti}"), data.claims.exp + 60).await.map_err(OAuthError::from)? {
        return Err(OAuthError::invalid_client("client assertion replayed"));
    }
    Ok(c.clone())
}
