//! UserInfo endpoint (OIDC Core §5.3; GET and POST, bearer token per RFC 6750) and the mapping
//! of scopes to claims (§5.4 plus `gov_identity` and `roles`). The identity number is given in
//! full only to clients with `gov_identity_full`; others get it masked.

use super::body_params;
use crate::clients::Client;
use crate::http::{Ctx, IdpRequest, IdpResponse};
use crate::ids::{mask_id, mask_mobile};
use crate::users::{self, AccountKind, User};

/// Claims of `user` released for `scope` to `client`.
pub fn claims_for(user: &User, scope: &[String], client: &Client, acr: Option<&str>) -> serde_json::Value {
    let has = |s: &str| scope.iter().any(|x| x == s);
    let mut m = serde_json::Map::new();
    m.insert("sub".into(), user.id.clone().into());
    if has("profile") {
        m.insert("name".into(), user.display_name.clone().into());
        m.insert("preferred_username".into(), user.username.clone().into());
        m.insert("account_type".into(), user.kind.as_str().into());
        m.insert("updated_at".into(), user.updated_at.into());
    }
    if has("email") {
        if let Some(e) = &user.email {
            m.insert("email".into(), e.clone().into());
            m.insert("email_verified".into(), false.into());
        }
    }
    if has("address") {
        if let Some(a) = &user.address {
            m.insert("address".into(), serde_json::json!({ "formatted": a }));
        }
    }
    if has("phone") {
        if let Some(p) = &user.mobile {
            m.insert("phone_number".into(), format!("+86{p}").into());
            m.insert("phone_number_verified".into(), false.into());
        }
    }
    if has("gov_identity") {
        let full = client.gov_identity_full;
        if let Some(n) = &user.id_number {
            m.insert("id_number".into(), if full { n.clone() } else { mask_id(n) }.into());
        }
        if let Some(n) = &user.uscc {
            m.insert("uscc".into(), n.clone().into());
        }
        if user.kind == AccountKind::Citizen {
            m.insert("real_name_level".into(), user.real_name_level.into());
            m.insert("gov_assurance".into(), super::authorize::effective_assurance(user.real_name_level, acr.unwrap_or("pwd")).into());
        }
    }
    if has("roles") && user.kind == AccountKind::Staff {
        m.insert("roles".into(), serde_json::json!(user.roles));
    }
    serde_json::Value::Object(m)
}

/// The values of claims asked for one by one (the `claims` parameter) that the account has.
/// Each claim's scope was checked against the client when the request was made.
pub fn requested_claims(user: &User, names: &[String], client: &Client, acr: Option<&str>) -> serde_json::Map<String, serde_json::Value> {
    let scopes: Vec<String> = names.iter().filter_map(|n| super::claims::scope_of(n)).map(String::from).collect();
    let all = claims_for(user, &scopes, client, acr);
    names.iter().filter_map(|n| all.get(n).map(|v| (n.clone(), v.clone()))).collect()
}

/// For logs: a user's identity number and mobile masked.
pub fn masked_identity(user: &User) -> String {
    format!(
        "{} {}",
        user.id_number.as_deref().map(mask_id).unwrap_or_default(),
        user.mobile.as_deref().map(mask_mobile).unwrap_or_default()
    )
}

pub async fn userinfo(ctx: &Ctx, req: &IdpRequest) -> IdpResponse {
    let from_header = req.header("authorization").and_then(|h| {
        let (s, t) = h.trim().split_once(' ')?;
        s.eq_ignore_ascii_case("bearer").then(|| t.trim().to_string())
    });
    let from_body = if req.method.eq_ignore_ascii_case("POST") && from_header.is_none() {
        body_params(req).get("access_token").map(String::from)
    } else {
        None
    };
    let Some(token) = from_header.or(from_body) else {
        return IdpResponse::new(401).with_header("WWW-Authenticate", "Bearer realm=\"govgate\"");
    };
    let invalid = || IdpResponse::bearer_error(401, "invalid_token", "the access token is invalid or expired");
    let Ok(c) = crate::tokens::verify_access(&ctx.keys, &ctx.cfg.issuer, &token) else { return invalid() };
    match ctx.store.access_live(&c.jti, &c.fid).await {
        Ok(true) => {}
        Ok(false) => return invalid(),
        Err(e) => return IdpResponse::oauth_error(&e.into()),
    }
    let scope = super::split_scope(&c.scope);
    if !scope.iter().any(|s| s == "openid") {
        return IdpResponse::bearer_error(403, "insufficient_scope", "the openid scope is required");
    }
    let clients = ctx.clients();
    let Some(client) = clients.get(&c.client_id) else { return invalid() };
    match users::find_by_id(&ctx.store, &c.sub).await {
        Ok(Some(u)) if !u.locked => {
            let mut claims = claims_for(&u, &scope, client, c.acr.as_deref());
            if let Some(m) = claims.as_object_mut() {
                for (k, v) in requested_claims(&u, &c.uic, client, c.acr.as_deref()) {
                    m.entry(k).or_insert(v);
                }
            }
            IdpResponse::json(200, &claims)
        }
        Ok(_) => invalid(),
        Err(e) => IdpResponse::oauth_error(&e.into()),
    }
}
