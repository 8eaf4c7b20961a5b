//! The OpenID Foundation's "Basic OP" certification plan, one test per check module of the
//! conformance suite (named after it), each asserting what that module asserts. The client is the
//! suite's: confidential, `client_secret_basic`, `response_type=code`, no PKCE unless the module
//! is about PKCE. Everything runs over real HTTP against a running provider.

mod common;

use common::*;
use std::time::Duration;

/// Claims of a verified ID token for `portal`.
async fn id_token(t: &TestIdp, tokens: &serde_json::Value) -> serde_json::Value {
    verify_jwt(t, tokens["id_token"].as_str().expect("an id_token"), "portal").await
}

/// Logs in with `extra` parameters and returns the verified ID token and the token response.
async fn flow(b: &mut Browser, t: &TestIdp, extra: &[(&str, &str)]) -> (serde_json::Value, serde_json::Value) {
    let q = authorize_code(b, t, "u1", extra).await;
    let tokens = redeem(t, &q["code"]).await;
    (id_token(t, &tokens).await, tokens)
}

async fn provider() -> (TestIdp, String) {
    let t = start().await;
    let uid = t.add_citizen("u1").await;
    (t, uid)
}

fn at(tokens: &serde_json::Value) -> &str {
    tokens["access_token"].as_str().expect("an access_token")
}

/// An authorization URL with exactly these parameters.
fn url_with(t: &TestIdp, params: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&t.url("/authorize")).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// An unsigned request object (`alg: none`).
fn unsigned_request_object(claims: &serde_json::Value) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!("{}.{}.", e.encode(r#"{"alg":"none"}"#), e.encode(claims.to_string()))
}

#[tokio::test]
async fn oidcc_server() {
    let (t, uid) = provider().await;
    let mut b = Browser::new();
    let q = authorize_code(&mut b, &t, "u1", &[]).await;
    assert_eq!((q["state"].as_str(), q["iss"].as_str()), ("st-1", t.issuer.as_str()));
    let tokens = redeem(&t, &q["code"]).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_i64().is_some_and(|e| e > 0));
    let c = id_token(&t, &tokens).await;
    assert_eq!((c["sub"].as_str(), c["nonce"].as_str(), c["azp"].as_str()), (Some(uid.as_str()), Some("n-1"), Some("portal")));
    let now = govgate_idp::now();
    assert!(c["iat"].as_i64().is_some_and(|i| (now - 60..=now + 5).contains(&i)), "{c}");
    assert!(c["exp"].as_i64().is_some_and(|e| e > now) && c["auth_time"].is_i64(), "{c}");
    assert_eq!(c["at_hash"], govgate_idp::tokens::at_hash(at(&tokens), govgate_idp::keys::SigningAlg::ES256));
    let (s, info) = userinfo(&t, at(&tokens)).await;
    assert_eq!((s, info["sub"].as_str()), (200, Some(uid.as_str())));
}

#[tokio::test]
async fn oidcc_response_type_missing() {
    let (t, _) = provider().await;
    let mut b = Browser::new();
    let p = b.get(&url_with(&t, &[("client_id", "portal"), ("redirect_uri", REDIRECT), ("scope", "openid"), ("state", "s9")])).await;
    assert_eq!(p.status, 303, "the error goes back to the registered redirect URI");
    let q = query_of(p.location.as_deref().unwrap());
    assert!(p.location.as_deref().unwrap().starts_with(REDIRECT));
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("invalid_request", "s9"));
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn oidcc_userinfo_get() {
    let (t, uid) = provider().await;
    let (_, tokens) = flow(&mut Browser::new(), &t, &[]).await;
    let r = reqwest::Client::new().get(t.url("/userinfo")).bearer_auth(at(&tokens)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let info: serde_json::Value = r.json().await.unwrap();
    assert_eq!((info["sub"].as_str(), info["name"].as_str()), (Some(uid.as_str()), Some("张三")));
}

#[tokio::test]
async fn oidcc_userinfo_post_header() {
    let (t, uid) = provider().await;
    let (_, tokens) = flow(&mut Browser::new(), &t, &[]).await;
    let r = reqwest::Client::new().post(t.url("/userinfo")).bearer_auth(at(&tokens)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["sub"], uid.as_str());
}

#[tokio::test]
async fn oidcc_userinfo_post_body() {
    let (t, uid) = provider().await;
    let (_, tokens) = flow(&mut Browser::new(), &t, &[]).await;
    let r = reqwest::Client::new().post(t.url("/userinfo")).form(&[("access_token", at(&tokens))]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["sub"], uid.as_str());
    let r = reqwest::Client::new().post(t.url("/userinfo")).form(&[("access_token", "forged")]).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let (t, _) = provider().await;
    let mut b = Browser::new();
    let page =
        b.get(&url_with(&t, &[("response_type", "code"), ("client_id", "portal"), ("redirect_uri", REDIRECT), ("scope", "openid")])).await;
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let q = query_of(r.location.as_deref().unwrap());
    let c = id_token(&t, &redeem(&t, &q["code"]).await).await;
    assert!(c.get("nonce").is_none(), "no nonce was sent, none comes back: {c}");
}

/// Userinfo after a login with `scope`.
async fn userinfo_for_scope(scope: &str) -> serde_json::Value {
    let (t, _) = provider().await;
    let (_, tokens) = flow(&mut Browser::new(), &t, &[("scope", scope)]).await;
    let granted: Vec<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
    for s in scope.split(' ') {
        assert!(granted.contains(&s), "{s} granted: {tokens}");
    }
    let (s, info) = userinfo(&t, at(&tokens)).await;
    assert_eq!(s, 200);
    info
}

#[tokio::test]
async fn oidcc_scope_profile() {
    let info = userinfo_for_scope("openid profile").await;
    assert_eq!((info["name"].as_str(), info["preferred_username"].as_str()), (Some("张三"), Some("u1")));
    assert!(info["updated_at"].is_i64());
    assert!(info.get("email").is_none() && info.get("phone_number").is_none() && info.get("address").is_none(), "{info}");
}

#[tokio::test]
async fn oidcc_scope_email() {
    let info = userinfo_for_scope("openid email").await;
    assert_eq!((info["email"].as_str(), info["email_verified"].as_bool()), (Some("zs@example.cn"), Some(false)));
    assert!(info.get("name").is_none(), "{info}");
}

#[tokio::test]
async fn oidcc_scope_address() {
    let info = userinfo_for_scope("openid address").await;
    assert_eq!(info["address"]["formatted"], "北京市西城区示例路 1 号");
    assert!(info.get("name").is_none() && info.get("email").is_none(), "{info}");
}

#[tokio::test]
async fn oidcc_scope_phone() {
    let info = userinfo_for_scope("openid phone").await;
    assert_eq!((info["phone_number"].as_str(), info["phone_number_verified"].as_bool()), (Some("+8613812345678"), Some(false)));
    assert!(info.get("name").is_none(), "{info}");
}

#[tokio::test]
async fn oidcc_scope_all() {
    let info = userinfo_for_scope("openid profile email address phone").await;
    for claim in ["name", "preferred_username", "email", "email_verified", "address", "phone_number", "phone_number_verified"] {
        assert!(info.get(claim).is_some(), "{claim} missing: {info}");
    }
}

#[tokio::test]
async fn oidcc_ensure_other_scope_order_succeeds() {
    let (t, uid) = provider().await;
    let (c, tokens) = flow(&mut Browser::new(), &t, &[("scope", "email openid")]).await;
    assert_eq!(c["sub"], uid.as_str());
    let (_, info) = userinfo(&t, at(&tokens)).await;
    assert_eq!(info["email"], "zs@example.cn");
}

async fn display(value: &str) {
    let (t, uid) = provider().await;
    let mut b = Browser::new();
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[("display", value)])).await;
    assert!(is_login_page(&page), "the login page is shown for display={value}");
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let q = query_of(r.location.as_deref().unwrap());
    assert_eq!(id_token(&t, &redeem(&t, &q["code"]).await).await["sub"], uid.as_str());
}

#[tokio::test]
async fn oidcc_display_page() {
    display("page").await;
}

#[tokio::test]
async fn oidcc_display_popup() {
    display("popup").await;
}

#[tokio::test]
async fn oidcc_prompt_login() {
    let (t, uid) = provider().await;
    let mut b = Browser::new();
    let (first, _) = flow(&mut b, &t, &[]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[("prompt", "login")])).await;
    assert!(is_login_page(&page), "prompt=login asks again despite the session");
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let second = id_token(&t, &redeem(&t, &query_of(r.location.as_deref().unwrap())["code"]).await).await;
    assert_eq!(second["sub"], uid.as_str());
    assert!(second["auth_time"].as_i64() > first["auth_time"].as_i64(), "a new authentication: {first} {second}");
}

#[tokio::test]
async fn oidcc_prompt_none_not_logged_in() {
    let (t, _) = provider().await;
    let p = Browser::new().get(&authorize_url(&t, "portal", REDIRECT, None, &[("prompt", "none")])).await;
    assert_eq!(p.status, 303, "no page is shown with prompt=none");
    let q = query_of(p.location.as_deref().unwrap());
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("login_required", "st-1"));
}

#[tokio::test]
async fn oidcc_prompt_none_logged_in() {
    let (t, uid) = provider().await;
    let mut b = Browser::new();
    let (first, _) = flow(&mut b, &t, &[]).await;
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[("prompt", "none")])).await;
    assert_eq!(p.status, 303);
    let second = id_token(&t, &redeem(&t, &query_of(p.location.as_deref().unwrap())["code"]).await).await;
    assert_eq!((second["sub"].as_str(), second["auth_time"].as_i64()), (Some(uid.as_str()), first["auth_time"].as_i64()));
}

#[tokio::test]
async fn oidcc_max_age_1() {
    let (t, _) = provider().await;
    let mut b = Browser::new();
    let (first, _) = flow(&mut b, &t, &[]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[("max_age", "1")])).await;
    assert!(is_login_page(&page), "the session is older than max_age");
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let second = id_token(&t, &redeem(&t, &query_of(r.location.as_deref().unwrap())["code"]).await).await;
    let (a1, a2) = (first["auth_time"].as_i64().unwrap(), second["auth_time"].as_i64().unwrap());
    assert!(a2 >= a1 + 2 && second["iat"].as_i64().unwrap() - a2 <= 1, "auth_time is the new login: {a1} {a2}");
}

#[tokio::test]
async fn oidcc_max_age_10000() {
    let (t, _) = provider().await;
    let mut b = Browser::new();
    let (first, _) = flow(&mut b, &t, &[]).await;
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[("max_age", "10000")])).await;
    assert_eq!(p.status, 303, "no new login within max_age");
    let second = id_token(&t, &redeem(&t, &query_of(p.location.as_deref().unwrap())["code"]).await).await;
    assert!(second["auth_time"].is_i64(), "auth_time is present when max_age was sent");
    assert_eq!(second["auth_time"], first["auth_time"]);
}

#[tokio::test]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    let (t, uid) = provider().await;
    let (c, _) = flow(&mut Browser::new(), &t, &[("extra_param", "foobar"), ("x-unknown", "1")]).await;
    assert_eq!(c["sub"], uid.as_str());
}

#[tokio::test]
async fn oidcc_id_token_hint() {
    let (t, uid) = provider().await;
    let mut b = Browser::new();
    let (_, tokens) = flow(&mut b, &t, &[]).await;
    let hint = tokens["id_token"].as_str().unwrap();
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[("prompt", "none"), ("id_token_hint", hint)])).await;
    let q = query_of(p.location.as_deref().unwrap());
    assert_eq!(id_token(&t, &redeem(&t, &q["code"]).await).await["sub"], uid.as_str());
    // A hint naming someone else does not reuse this session; a forged one is refused.
    t.add_citizen("u2").await;
    let q = authorize_code(&mut Browser::new(), &t, "u2", &[("scope", "openid")]).await;
    let other = redeem(&t, &q["code"]).await;
    let u2 = authorize_url(&t, "portal", REDIRECT, None, &[("prompt", "none"), ("id_token_hint", other["id_token"].as_str().unwrap())]);
    assert_eq!(query_of(b.get(&u2).await.location.as_deref().unwrap())["error"], "login_required");
    let forged = format!("{}x", &hint[..hint.len() - 1]);
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[("prompt", "none"), ("id_token_hint", &forged)])).await;
    assert_eq!(query_of(p.location.as_deref().unwrap())["error"], "invalid_request");
}

#[tokio::test]
async fn oidcc_login_hint() {
    let (t, _) = provider().await;
    let page = Browser::new().get(&authorize_url(&t, "portal", REDIRECT, None, &[("login_hint", "u1")])).await;
    assert!(is_login_page(&page));
    assert!(unescape(&page.body).contains(r#"name="username""#) && page.body.contains(r#"value="u1""#), "the user name is filled in");
}

#[tokio::test]
async fn oidcc_ui_locales() {
    let (t, _) = provider().await;
    let en = Browser::new().get(&authorize_url(&t, "portal", REDIRECT, None, &[("ui_locales", "fr-CA en")])).await;
    assert!(is_login_page(&en) && en.body.contains(r#"lang="en""#), "the first supported locale is used");
    let zh = Browser::new().get(&authorize_url(&t, "portal", REDIRECT, None, &[("ui_locales", "zh-CN")])).await;
    assert!(zh.body.contains(r#"lang="zh"#));
}

#[tokio::test]
async fn oidcc_claims_locales() {
    let (t, uid) = provider().await;
    let (c, tokens) = flow(&mut Browser::new(), &t, &[("claims_locales", "en zh-CN")]).await;
    assert_eq!(c["sub"], uid.as_str());
    assert_eq!(userinfo(&t, at(&tokens)).await.1["name"], "张三");
}

#[tokio::test]
async fn oidcc_ensure_request_with_acr_values_succeeds() {
    let (t, _) = provider().await;
    let mut b = Browser::new();
    let (c, _) = flow(&mut b, &t, &[("acr_values", "otp pwd")]).await;
    assert_eq!(c["acr"], "pwd", "the acr answers one of the requested values: {c}");
    // Values the provider does not know do not fail the request; the acr says what was done.
    let (c, _) = flow(&mut Browser::new(), &t, &[("acr_values", "1 2")]).await;
    assert_eq!(c["acr"], "pwd");
}

#[tokio::test]
async fn oidcc_codereuse() {
    let (t, _) = provider().await;
    let q = authorize_code(&mut Browser::new(), &t, "u1", &[]).await;
    let first = redeem(&t, &q["code"]).await;
    let (s, body, _) = token_basic(&t, &[("grant_type", "authorization_code"), ("code", &q["code"]), ("redirect_uri", REDIRECT)]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    // Everything issued from the replayed code is revoked (RFC 6749 §4.1.2), and audited.
    assert_eq!(userinfo(&t, at(&first)).await.0, 401);
    let (s, body, _) =
        token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", first["refresh_token"].as_str().unwrap())]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert!(t.audit_events().await.iter().any(|(e, o)| e == "code_replay" && o == "revoked"));
}

#[tokio::test]
async fn oidcc_codereuse_30seconds() {
    let (t, _) = provider().await;
    let q = authorize_code(&mut Browser::new(), &t, "u1", &[]).await;
    let first = redeem(&t, &q["code"]).await;
    assert_eq!(userinfo(&t, at(&first)).await.0, 200);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let (s, body, _) = token_basic(&t, &[("grant_type", "authorization_code"), ("code", &q["code"]), ("redirect_uri", REDIRECT)]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(userinfo(&t, at(&first)).await.0, 401, "the access token first issued from the code is refused");
}

#[tokio::test]
async fn oidcc_ensure_registered_redirect_uri() {
    let (t, _) = provider().await;
    let p = Browser::new().get(&authorize_url(&t, "portal", "https://evil.example/cb", None, &[])).await;
    assert_eq!(p.status, 400, "an error page");
    assert!(p.location.is_none(), "never a redirect to an unregistered URI");
}

#[tokio::test]
async fn oidcc_ensure_post_request_succeeds() {
    let (t, uid) = provider().await;
    let mut b = Browser::new();
    let form = [
        ("response_type", "code"),
        ("client_id", "portal"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile"),
        ("state", "post-state"),
        ("nonce", "post-nonce"),
    ];
    let page = b.post(&t.url("/authorize"), &form).await;
    assert!(is_login_page(&page), "{}", page.body);
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let q = query_of(r.location.as_deref().unwrap());
    assert_eq!(q["state"], "post-state");
    let c = id_token(&t, &redeem(&t, &q["code"]).await).await;
    assert_eq!((c["sub"].as_str(), c["nonce"].as_str()), (Some(uid.as_str()), Some("post-nonce")));
}

#[tokio::test]
async fn oidcc_server_client_secret_post() {
    let (t, uid) = provider().await;
    let mut b = Browser::new();
    let page = b.get(&authorize_url(&t, "poster", REDIRECT, None, &[])).await;
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let code = query_of(r.location.as_deref().unwrap())["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("client_id", "poster"),
        ("client_secret", POST_SECRET),
    ];
    let (s, tokens) = token_form(&t, &form).await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!(verify_jwt(&t, tokens["id_token"].as_str().unwrap(), "poster").await["sub"], uid.as_str());
    // The method is the registered one: HTTP Basic for this client is refused.
    let (s, _, _) = token_as(&t, "poster", POST_SECRET, &[("grant_type", "client_credentials")]).await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn oidcc_request_uri_unsigned() {
    let (t, _) = provider().await;
    let d: serde_json::Value = reqwest::get(t.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(d["request_uri_parameter_supported"], false, "discovery says request_uri is not supported");
    let p = Browser::new().get(&authorize_url(&t, "portal", REDIRECT, None, &[("request_uri", "https://rp.example/request.jwt")])).await;
    let q = query_of(p.location.as_deref().unwrap());
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("request_uri_not_supported", "st-1"));
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    let (t, uid) = provider().await;
    let d: serde_json::Value = reqwest::get(t.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(d["request_parameter_supported"], true);
    assert_eq!(d["request_object_signing_alg_values_supported"], serde_json::json!(["none"]));
    let object = serde_json::json!({
        "iss": "portal", "aud": t.issuer, "client_id": "portal", "response_type": "code", "redirect_uri": REDIRECT,
        "scope": "openid email", "state": "ro-state", "nonce": "ro-nonce",
    });
    let params = [("response_type", "code"), ("client_id", "portal"), ("scope", "openid"), ("request", &unsigned_request_object(&object))];
    let mut b = Browser::new();
    let page = b.get(&url_with(&t, &params)).await;
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let q = query_of(r.location.as_deref().unwrap());
    assert_eq!(q["state"], "ro-state", "the state of the request object is used");
    let tokens = redeem(&t, &q["code"]).await;
    let c = id_token(&t, &tokens).await;
    assert_eq!((c["sub"].as_str(), c["nonce"].as_str()), (Some(uid.as_str()), Some("ro-nonce")));
    assert_eq!(userinfo(&t, at(&tokens)).await.1["email"], "zs@example.cn", "the scope of the request object is used");
    // A signed object (not supported) and one naming another client are refused.
    let signed = format!("{}sig", unsigned_request_object(&object)).replacen("eyJhbGciOiJub25lIn0", "eyJhbGciOiJSUzI1NiJ9", 1);
    let bad_client = unsigned_request_object(&serde_json::json!({"client_id": "spa", "state": "x"}));
    for bad in [signed, bad_client] {
        let p = b
            .get(&url_with(
                &t,
                &[("response_type", "code"), ("client_id", "portal"), ("redirect_uri", REDIRECT), ("state", "s"), ("request", &bad)],
            ))
            .await;
        let q = query_of(p.location.as_deref().unwrap());
        assert_eq!((q["error"].as_str(), q["state"].as_str()), ("invalid_request_object", "s"));
    }
}

#[tokio::test]
async fn oidcc_claims_essential() {
    let (t, uid) = provider().await;
    let claims = r#"{"userinfo":{"name":{"essential":true}},"id_token":{"email":{"essential":true}}}"#;
    let (c, tokens) = flow(&mut Browser::new(), &t, &[("scope", "openid"), ("claims", claims)]).await;
    assert_eq!(c["email"], "zs@example.cn", "a claim requested for the ID token is in it");
    let (s, info) = userinfo(&t, at(&tokens)).await;
    assert_eq!((s, info["sub"].as_str(), info["name"].as_str()), (200, Some(uid.as_str()), Some("张三")));
    assert!(info.get("email").is_none() && info.get("preferred_username").is_none(), "only what was asked for: {info}");
    // Refreshed tokens release the same claims.
    let (_, refreshed, _) =
        token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())]).await;
    assert_eq!(userinfo(&t, at(&refreshed)).await.1["name"], "张三");
    assert_eq!(id_token(&t, &refreshed).await["email"], "zs@example.cn");
    // A claim of a scope the client may not have is not released: `spa` may not have `email`.
    let (v, ch) = pkce();
    let mut b = Browser::new();
    let page = b
        .get(&authorize_url(
            &t,
            "spa",
            SPA_REDIRECT,
            Some(&ch),
            &[("scope", "openid"), ("claims", r#"{"userinfo":{"email":null,"name":null}}"#)],
        ))
        .await;
    let consent = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let r = b
        .post(
            &t.url("/consent"),
            &[("req", &hidden(&consent.body, "req")), ("csrf", &hidden(&consent.body, "csrf")), ("decision", "allow")],
        )
        .await;
    let code = query_of(r.location.as_deref().unwrap())["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", SPA_REDIRECT),
        ("client_id", "spa"),
        ("code_verifier", &v),
    ];
    let (_, tokens) = token_form(&t, &form).await;
    let (_, info) = userinfo(&t, at(&tokens)).await;
    assert_eq!(info["name"], "张三");
    assert!(info.get("email").is_none(), "{info}");
    // A malformed claims parameter is an invalid request.
    let p = Browser::new().get(&authorize_url(&t, "portal", REDIRECT, None, &[("claims", "{not json")])).await;
    assert_eq!(query_of(p.location.as_deref().unwrap())["error"], "invalid_request");
}

#[tokio::test]
async fn oidcc_ensure_request_object_with_redirect_uri() {
    let (t, uid) = provider().await;
    let object = serde_json::json!({"client_id": "portal", "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid", "state": "in-object"});
    let mut b = Browser::new();
    // The redirect URI is only in the request object.
    let page = b
        .get(&url_with(
            &t,
            &[("response_type", "code"), ("client_id", "portal"), ("scope", "openid"), ("request", &unsigned_request_object(&object))],
        ))
        .await;
    assert!(is_login_page(&page), "{}", page.body);
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let loc = r.location.unwrap();
    assert!(loc.starts_with(&format!("{REDIRECT}?")), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q["state"], "in-object");
    assert_eq!(id_token(&t, &redeem(&t, &q["code"]).await).await["sub"], uid.as_str());
    // The object's redirect URI must be registered too.
    let evil = serde_json::json!({"client_id": "portal", "redirect_uri": "https://evil.example/cb", "scope": "openid"});
    let p = b.get(&url_with(&t, &[("response_type", "code"), ("client_id", "portal"), ("request", &unsigned_request_object(&evil))])).await;
    assert_eq!((p.status, p.location.is_none()), (400, true));
}

#[tokio::test]
async fn oidcc_refresh_token() {
    let (t, uid) = provider().await;
    let (first, tokens) = flow(&mut Browser::new(), &t, &[]).await;
    let rt = tokens["refresh_token"].as_str().expect("a refresh token");
    let (s, refreshed, _) = token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(s, 200, "{refreshed}");
    assert_ne!(refreshed["access_token"], tokens["access_token"]);
    assert_eq!(userinfo(&t, at(&refreshed)).await.1["sub"], uid.as_str());
    // OIDC Core §12.2: the new ID token has the same iss, sub, aud and auth_time, and no nonce.
    let second = id_token(&t, &refreshed).await;
    for k in ["iss", "sub", "aud", "auth_time"] {
        assert_eq!(second[k], first[k], "{k}");
    }
    assert!(second.get("nonce").is_none(), "{second}");
    // The refresh token is bound to its client.
    let next = refreshed["refresh_token"].as_str().unwrap();
    let (s, body, _) = token_as(&t, "poster", POST_SECRET, &[("grant_type", "refresh_token"), ("refresh_token", next)]).await;
    assert!(s >= 400 && body.get("access_token").is_none(), "{body}");
    let (s, body) = token_form(&t, &[("grant_type", "refresh_token"), ("refresh_token", next), ("client_id", "spa")]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    let (t, uid) = provider().await;
    let mut b = Browser::new();
    let (v, c) = pkce();
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[])).await;
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let code = query_of(r.location.as_deref().unwrap())["code"].clone();
    let (s, tokens, _) =
        token_basic(&t, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)]).await;
    assert_eq!(s, 200, "{tokens}");
    assert_eq!(id_token(&t, &tokens).await["sub"], uid.as_str());
}
