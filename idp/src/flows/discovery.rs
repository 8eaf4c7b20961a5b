//! OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414) at
//! `/.well-known/openid-configuration`. Everything listed is supported and everything supported
//! is listed (`idp/tests/certification_config_op.rs` checks both ways): the signing algorithms
//! are those with an active key; request objects by value are taken unsigned only; `request_uri`
//! is refused.

use crate::http::{Ctx, IdpResponse};

pub fn document(ctx: &Ctx) -> IdpResponse {
    let e = |p: &str| ctx.cfg.endpoint(p);
    let algs: Vec<&str> = ctx.keys.algorithms().iter().map(|a| a.as_str()).collect();
    let doc = serde_json::json!({
        "issuer": ctx.cfg.issuer,
        "authorization_endpoint": e("/authorize"),
        "token_endpoint": e("/token"),
        "userinfo_endpoint": e("/userinfo"),
        "jwks_uri": e("/jwks"),
        "end_session_endpoint": e("/logout"),
        "introspection_endpoint": e("/introspect"),
        "revocation_endpoint": e("/revoke"),
        "registration_endpoint": serde_json::Value::Null,
        "scopes_supported": ["openid", "profile", "email", "address", "phone", "gov_identity", "roles"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"],
        "code_challenge_methods_supported": ["S256"],
        "acr_values_supported": ["pwd", "otp", "cert"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash", "azp",
            "name", "preferred_username", "account_type", "updated_at", "email", "email_verified", "address", "phone_number", "phone_number_verified",
            "id_number", "uscc", "real_name_level", "gov_assurance", "roles"],
        "claims_parameter_supported": true,
        "request_parameter_supported": true,
        "request_object_signing_alg_values_supported": ["none"],
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "ui_locales_supported": ["zh-CN", "en"],
        "display_values_supported": ["page", "popup"],
        "claim_types_supported": ["normal"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
    });
    let mut doc = doc;
    if let Some(o) = doc.as_object_mut() {
        o.remove("registration_endpoint");
    }
    IdpResponse::public_json(&doc, 300)
}
