//! The whole authorization code flow over HTTP with the `openidconnect` crate as relying party:
//! discovery, authorize (PKCE S256, state, nonce), login form, code, token, ID-token validation
//! (signature via JWKS, nonce, at_hash), userinfo, refresh (rotation), RP-initiated logout.

mod common;

use base64::Engine;
use common::*;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};

fn jwt_payload(t: &str) -> serde_json::Value {
    let p = t.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

#[tokio::test]
async fn full_code_flow_with_openidconnect_rp() {
    let t = start().await;
    let uid = t.add_citizen("zhangsan").await;
    let http = openidconnect::reqwest::Client::builder().redirect(openidconnect::reqwest::redirect::Policy::none()).build().unwrap();

    // Discovery.
    let meta = CoreProviderMetadata::discover_async(IssuerUrl::new(t.issuer.clone()).unwrap(), &http).await.expect("discovery");
    let client = CoreClient::from_provider_metadata(meta, ClientId::new("portal".into()), Some(ClientSecret::new(PORTAL_SECRET.into())))
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    // Authorization request.
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("gov_identity".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser: login page, then the form.
    let mut b = Browser::new();
    let page = b.get(auth_url.as_str()).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<form method=\"post\""));
    let after = submit_login(&mut b, &t, &page, "zhangsan", PASSWORD).await;
    assert_eq!(after.status, 303, "{}", after.body);
    let sso = after.set_cookies.iter().find(|c| c.starts_with("__Host-govgate-sso=")).expect("session cookie");
    assert!(
        sso.contains("Secure")
            && sso.contains("HttpOnly")
            && sso.contains("SameSite=Lax")
            && sso.contains("Path=/")
            && !sso.contains("Domain")
    );
    let location = after.location.unwrap();
    assert!(location.starts_with(REDIRECT));
    let q = query_of(&location);
    assert_eq!(&q["state"], csrf_state.secret());
    assert_eq!(q["iss"], t.issuer, "RFC 9207 iss parameter");

    // Code exchange.
    let tokens = client
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().expect("id_token");
    let verifier = client.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let claims = id_token.claims(&verifier, &nonce).expect("valid id token");
    assert_eq!(claims.subject().as_str(), uid);
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.auth_context_ref().map(|a| a.as_str()), Some("pwd"));
    let expected_hash =
        AccessTokenHash::from_token(tokens.access_token(), id_token.signing_alg().unwrap(), id_token.signing_key(&verifier).unwrap())
            .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    let raw = jwt_payload(&id_token.to_string());
    for c in ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "at_hash"] {
        assert!(raw.get(c).is_some(), "id token lacks {c}");
    }
    // Access token is an RFC 9068 JWT.
    let at_header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tokens.access_token().secret().split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(at_header["typ"], "at+jwt");
    let at_claims = jwt_payload(tokens.access_token().secret());
    assert_eq!(at_claims["client_id"], "portal");
    assert_eq!(at_claims["sub"], uid.as_str());

    // UserInfo.
    let info: CoreUserInfoClaims =
        client.user_info(tokens.access_token().clone(), None).unwrap().request_async(&http).await.expect("userinfo");
    assert_eq!(info.subject().as_str(), uid);
    assert_eq!(info.email().map(|e| e.as_str()), Some("zs@example.cn"));
    // gov_identity for a client allowed to receive it: full number.
    let raw_info: serde_json::Value = reqwest::Client::new()
        .get(t.url("/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw_info["id_number"], "11010519491231002X");
    assert_eq!(raw_info["real_name_level"], 3);
    assert_eq!(raw_info["gov_assurance"], 2);
    // POST userinfo works too.
    let post_info = reqwest::Client::new().post(t.url("/userinfo")).bearer_auth(tokens.access_token().secret()).send().await.unwrap();
    assert_eq!(post_info.status(), 200);

    // Refresh with rotation.
    let rt = tokens.refresh_token().expect("refresh token").clone();
    let refreshed = client.exchange_refresh_token(&rt).unwrap().request_async(&http).await.expect("refresh");
    let rt2 = refreshed.refresh_token().expect("rotated refresh token");
    assert_ne!(rt2.secret(), rt.secret());
    assert_eq!(userinfo_status(&t, refreshed.access_token().secret()).await, 200);

    // SSO: a second authorization needs no login.
    let (_, c2) = pkce();
    let again = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c2), &[])).await;
    assert_eq!(again.status, 303);
    assert!(query_of(again.location.as_deref().unwrap()).contains_key("code"));

    // RP-initiated logout with id_token_hint and an exact post_logout_redirect_uri.
    let mut lo = url::Url::parse(&t.url("/logout")).unwrap();
    lo.query_pairs_mut()
        .append_pair("id_token_hint", &id_token.to_string())
        .append_pair("post_logout_redirect_uri", LOGOUT_REDIRECT)
        .append_pair("state", "bye-1");
    let out = b.get(lo.as_str()).await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(out.location.as_deref(), Some(format!("{LOGOUT_REDIRECT}?state=bye-1").as_str()));
    // Tokens of the session are revoked; the session is gone.
    assert_eq!(userinfo_status(&t, refreshed.access_token().secret()).await, 401);
    let (s, body, _) = token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", rt2.secret())]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let none = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c2), &[("prompt", "none")])).await;
    assert_eq!(query_of(none.location.as_deref().unwrap())["error"], "login_required");

    let events = t.audit_events().await;
    for e in ["login", "token_issue", "logout", "admin_user_add"] {
        assert!(events.iter().any(|(ev, _)| ev == e), "audit lacks {e}: {events:?}");
    }
}
