//! Negative tests for the security rules, each over HTTP against a running IdP. (The checks of
//! the OpenID certification plans, code reuse and logout among them, are in certification_*.rs.)

mod common;

use common::*;

#[tokio::test]
async fn redirect_uri_must_match_exactly_and_errors_are_not_redirected() {
    let t = start().await;
    let mut b = Browser::new();
    for bad in [
        "http://127.0.0.1:1/cb/",
        "http://127.0.0.1:1/CB",
        "http://127.0.0.1:1/cb?x=1",
        "http://127.0.0.1:1/cb#f",
        "http://127.0.0.1:2/cb",
        "https://evil.example/cb",
        "http://127.0.0.1:1/cb/../cb",
    ] {
        let (_, c) = pkce();
        let p = b.get(&authorize_url(&t, "portal", bad, Some(&c), &[])).await;
        assert_eq!(p.status, 400, "{bad}");
        assert!(p.location.is_none(), "no open redirect for {bad}");
    }
    // Missing redirect_uri and unknown client: page, not redirect.
    let p = b.get(&t.url("/authorize?response_type=code&client_id=portal&scope=openid")).await;
    assert_eq!((p.status, p.location.is_none()), (400, true));
    let p = b.get(&authorize_url(&t, "nobody", REDIRECT, None, &[])).await;
    assert_eq!((p.status, p.location.is_none()), (400, true));
    // Duplicated redirect_uri.
    let p = b.get(&format!("{}&redirect_uri=https%3A%2F%2Fevil.example%2F", authorize_url(&t, "portal", REDIRECT, None, &[]))).await;
    assert_eq!((p.status, p.location.is_none()), (400, true));
}

#[tokio::test]
async fn authorization_request_errors_redirect_with_state_and_iss() {
    let t = start().await;
    let mut b = Browser::new();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("max_age", "-1")], "invalid_request"),
        (vec![("request", "eyJ.x.y")], "invalid_request_object"),
        (vec![("request_uri", "https://rp.example/r")], "request_uri_not_supported"),
    ];
    for (extra, err) in cases {
        let mut u = url::Url::parse(&t.url("/authorize")).unwrap();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("client_id", "portal")
                .append_pair("redirect_uri", REDIRECT)
                .append_pair("scope", "openid")
                .append_pair("state", "s1");
            if !extra.iter().any(|(k, _)| *k == "response_type") {
                q.append_pair("response_type", "code");
            }
            for (k, v) in &extra {
                q.append_pair(k, v);
            }
        }
        let p = b.get(u.as_str()).await;
        assert_eq!(p.status, 303, "{extra:?}");
        let q = query_of(p.location.as_deref().unwrap());
        assert_eq!(q["error"], err, "{extra:?}");
        assert_eq!(q["state"], "s1");
        assert_eq!(q["iss"], t.issuer);
    }
    // Scope without openid.
    let p = b.get(&t.url(&format!("/authorize?response_type=code&client_id=portal&redirect_uri={}&scope=profile", urlenc(REDIRECT)))).await;
    assert_eq!(query_of(p.location.as_deref().unwrap())["error"], "invalid_scope");
}

fn urlenc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn pkce_rules() {
    let t = start().await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    // plain is refused.
    let p = b
        .get(&authorize_url(&t, "portal", REDIRECT, None, &[("code_challenge", &"a".repeat(43)), ("code_challenge_method", "plain")]))
        .await;
    assert_eq!(query_of(p.location.as_deref().unwrap())["error"], "invalid_request");
    // Public clients must send PKCE.
    let p = b.get(&authorize_url(&t, "spa", SPA_REDIRECT, None, &[])).await;
    assert_eq!(query_of(p.location.as_deref().unwrap())["error"], "invalid_request");
    // Wrong verifier.
    let (code, _v) = login_for_code(&mut b, &t, "u1").await;
    let (s, body, _) = token_basic(
        &t,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &"x".repeat(43))],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    // Missing verifier when a challenge was sent.
    let (code, _v) = login_for_code(&mut b, &t, "u1").await;
    let (s, body, _) = token_basic(&t, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    // A verifier without a challenge (downgrade) is refused.
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, None, &[])).await;
    assert_eq!(page.status, 303);
    let code = query_of(page.location.as_deref().unwrap())["code"].clone();
    let (s, body, _) = token_basic(
        &t,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &"x".repeat(43))],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn public_client_flow_with_consent_and_pkce() {
    let t = start().await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    let (v, c) = pkce();
    let page = b.get(&authorize_url(&t, "spa", SPA_REDIRECT, Some(&c), &[("scope", "openid gov_identity")])).await;
    let after = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    assert_eq!(after.status, 200, "consent page expected");
    assert!(after.body.contains("name=\"decision\" value=\"allow\""));
    // prompt=none while consent is missing → consent_required.
    let (_, c2) = pkce();
    let p = b.get(&authorize_url(&t, "spa", SPA_REDIRECT, Some(&c2), &[("prompt", "none")])).await;
    assert_eq!(query_of(p.location.as_deref().unwrap())["error"], "consent_required");
    // Allow.
    let r = b
        .post(&t.url("/consent"), &[("req", &hidden(&after.body, "req")), ("csrf", &hidden(&after.body, "csrf")), ("decision", "allow")])
        .await;
    assert_eq!(r.status, 303);
    let code = query_of(r.location.as_deref().unwrap())["code"].clone();
    let (s, body) = token_form(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", SPA_REDIRECT),
            ("code_verifier", &v),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(s, 200, "{body}");
    // gov_identity for a client not allowed the full number: masked.
    let info: serde_json::Value = reqwest::Client::new()
        .get(t.url("/userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["id_number"], "110*************2X");
    // Deny on a forced consent → access_denied.
    let (_, c3) = pkce();
    let p = b.get(&authorize_url(&t, "spa", SPA_REDIRECT, Some(&c3), &[("prompt", "consent")])).await;
    assert_eq!(p.status, 200);
    let r = b.post(&t.url("/consent"), &[("req", &hidden(&p.body, "req")), ("csrf", &hidden(&p.body, "csrf")), ("decision", "deny")]).await;
    assert_eq!(query_of(r.location.as_deref().unwrap())["error"], "access_denied");
}

#[tokio::test]
async fn code_bound_to_client_and_redirect_uri() {
    let t = start().await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    let (code, v) = login_for_code(&mut b, &t, "u1").await;
    let (s, body, _) = token_as(
        &t,
        "poster",
        POST_SECRET,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)],
    )
    .await;
    // `poster` is client_secret_post: basic auth is refused outright.
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    let (s, body) = token_form(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &v),
            ("client_id", "poster"),
            ("client_secret", POST_SECRET),
        ],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (code, v) = login_for_code(&mut b, &t, "u1").await;
    let (s, body, _) = token_basic(
        &t,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "http://127.0.0.1:1/other"), ("code_verifier", &v)],
    )
    .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn code_expires() {
    let t = start_with("", |c| c.code_ttl = 1).await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    let (code, v) = login_for_code(&mut b, &t, "u1").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (s, body, _) =
        token_basic(&t, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn refresh_rotation_and_reuse_revokes_family() {
    let t = start().await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    let (code, v) = login_for_code(&mut b, &t, "u1").await;
    let (_, first, _) =
        token_basic(&t, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)]).await;
    let rt1 = first["refresh_token"].as_str().unwrap().to_string();
    let (s, second, _) = token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!(s, 200);
    let rt2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2);
    // Narrower scope is fine, wider is not.
    let (s, body, _) = token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", &rt2), ("scope", "openid email")]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_scope")));
    // Reuse of rt1 revokes the family: rt2 and the access tokens die.
    let (s, body, _) = token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", &rt1)]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (s, body, _) = token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", &rt2)]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(userinfo_status(&t, second["access_token"].as_str().unwrap()).await, 401);
    assert!(t.audit_events().await.iter().any(|(e, _)| e == "refresh_reuse"));
    // Another client cannot use (or burn) a refresh token.
    let (code, v) = login_for_code(&mut b, &t, "u1").await;
    let (_, fresh, _) =
        token_basic(&t, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)]).await;
    let rt = fresh["refresh_token"].as_str().unwrap();
    let (s, _) =
        token_form(&t, &[("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", "poster"), ("client_secret", POST_SECRET)])
            .await;
    assert_eq!(s, 400);
    let (s, _, _) = token_basic(&t, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc6749_5_2() {
    let t = start().await;
    let (s, body, h) = token_as(&t, "portal", "wrong", &[("grant_type", "client_credentials")]).await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    assert!(h.get("www-authenticate").unwrap().to_str().unwrap().starts_with("Basic"));
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    assert_eq!(h.get("content-type").unwrap(), "application/json");
    let (s, body, _) = token_basic(&t, &[("grant_type", "password")]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("unsupported_grant_type")));
    let (s, body, _) = token_basic(&t, &[]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
    let (s, body, _) = token_basic(&t, &[("grant_type", "client_credentials"), ("grant_type", "client_credentials")]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_request")));
    let (s, body) = token_form(&t, &[("grant_type", "client_credentials"), ("client_id", "nobody"), ("client_secret", "x")]).await;
    assert_eq!((s, body["error"].as_str()), (401, Some("invalid_client")));
    let (s, body) =
        token_form(&t, &[("grant_type", "authorization_code"), ("client_id", "spa"), ("code", "nope"), ("redirect_uri", SPA_REDIRECT)])
            .await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    let (s, body) = token_form(&t, &[("grant_type", "client_credentials"), ("client_id", "spa")]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("unauthorized_client")));
    let (s, body, _) = token_basic(&t, &[("grant_type", "client_credentials"), ("scope", "admin")]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_scope")));
    let (s, body, _) = token_basic(&t, &[("grant_type", "authorization_code"), ("code", "nope"), ("redirect_uri", REDIRECT)]).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")));
    assert!(body["error_description"].is_string());
    // GET is not allowed.
    let r = reqwest::get(t.url("/token")).await.unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn client_credentials_introspection_and_revocation() {
    let t = start().await;
    let (s, body, _) = token_basic(&t, &[("grant_type", "client_credentials"), ("scope", "api.read")]).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let at = body["access_token"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let intro: serde_json::Value = http
        .post(t.url("/introspect"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], true);
    assert_eq!(intro["client_id"], "portal");
    assert_eq!(intro["scope"], "api.read");
    // Unauthenticated introspection is refused.
    let r = http.post(t.url("/introspect")).form(&[("token", at.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Another client cannot revoke it; the owner can.
    let r = http
        .post(t.url("/revoke"))
        .form(&[("token", at.as_str()), ("client_id", "poster"), ("client_secret", POST_SECRET)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let intro: serde_json::Value = http
        .post(t.url("/introspect"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], true);
    let r = http.post(t.url("/revoke")).basic_auth("portal", Some(PORTAL_SECRET)).form(&[("token", at.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let intro: serde_json::Value = http
        .post(t.url("/introspect"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro, serde_json::json!({"active": false}));
    // Garbage tokens: inactive; revoking unknown tokens: 200.
    let intro: serde_json::Value = http
        .post(t.url("/introspect"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[("token", "garbage")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], false);
    let r = http.post(t.url("/revoke")).basic_auth("portal", Some(PORTAL_SECRET)).form(&[("token", "garbage")]).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn refresh_token_revocation_kills_family() {
    let t = start().await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    let (code, v) = login_for_code(&mut b, &t, "u1").await;
    let (_, tok, _) =
        token_basic(&t, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)]).await;
    let r = reqwest::Client::new()
        .post(t.url("/revoke"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[("token", tok["refresh_token"].as_str().unwrap()), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(userinfo_status(&t, tok["access_token"].as_str().unwrap()).await, 401);
}

#[tokio::test]
async fn private_key_jwt_client_authentication() {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let key = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let pt = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key.public_key(), false);
    let b64 = |b: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
    let extra = format!(
        r#"
[[client]]
id = "svc"
auth_method = "private_key_jwt"
grant_types = ["client_credentials"]
scopes = ["api.read"]
jwks = {{ keys = [{{ kty = "EC", crv = "P-256", kid = "k1", alg = "ES256", x = "{}", y = "{}" }}] }}
"#,
        b64(pt.x().unwrap()),
        b64(pt.y().unwrap())
    );
    let t = start_with(&extra, |_| {}).await;
    let enc = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.kid = Some("k1".into());
    let mk = |aud: &str, jti: &str| {
        let now = govgate_idp::now();
        jsonwebtoken::encode(
            &h,
            &serde_json::json!({"iss": "svc", "sub": "svc", "aud": aud, "exp": now + 60, "iat": now, "jti": jti}),
            &enc,
        )
        .unwrap()
    };
    let a = mk(&t.url("/token"), "j1");
    let form = |a: &str| {
        vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_assertion_type".into(), "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into()),
            ("client_assertion".into(), a.to_string()),
        ]
    };
    let r = reqwest::Client::new().post(t.url("/token")).form(&form(&a)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Replayed jti.
    let r = reqwest::Client::new().post(t.url("/token")).form(&form(&a)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Wrong audience.
    let r = reqwest::Client::new().post(t.url("/token")).form(&form(&mk("https://other.example/token", "j2"))).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Signed by another key.
    let other = p256::SecretKey::random(&mut rand::rngs::OsRng).to_pkcs8_pem(LineEnding::LF).unwrap();
    let now = govgate_idp::now();
    let forged = jsonwebtoken::encode(
        &h,
        &serde_json::json!({"iss": "svc", "sub": "svc", "aud": t.url("/token"), "exp": now + 60, "jti": "j3"}),
        &jsonwebtoken::EncodingKey::from_ec_pem(other.as_bytes()).unwrap(),
    )
    .unwrap();
    let r = reqwest::Client::new().post(t.url("/token")).form(&form(&forged)).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn prompt_none_login_and_max_age() {
    let t = start().await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    let (_, c) = pkce();
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("prompt", "none")])).await;
    let q = query_of(p.location.as_deref().unwrap());
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("login_required", "st-1"));
    login_for_code(&mut b, &t, "u1").await;
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("prompt", "none")])).await;
    assert!(query_of(p.location.as_deref().unwrap()).contains_key("code"));
    // prompt=login and max_age=0 force the login form despite the session.
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("prompt", "login")])).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("name=\"password\""));
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("max_age", "0")])).await;
    assert_eq!(p.status, 200);
    // acr_values above the session's acr (pwd) forces a step-up login; prompt=none cannot.
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("acr_values", "otp")])).await;
    assert_eq!(p.status, 200);
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("acr_values", "otp"), ("prompt", "none")])).await;
    assert_eq!(query_of(p.location.as_deref().unwrap())["error"], "login_required");
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("acr_values", "pwd otp")])).await;
    assert_eq!(p.status, 303);
}

#[tokio::test]
async fn new_session_id_at_every_login() {
    let t = start().await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    login_for_code(&mut b, &t, "u1").await;
    let first = b.cookies["__Host-govgate-sso"].clone();
    let (_, c) = pkce();
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("prompt", "login")])).await;
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    assert_eq!(r.status, 303);
    let second = b.cookies["__Host-govgate-sso"].clone();
    assert_ne!(first, second);
    // The old cookie no longer works.
    let mut old = Browser::new();
    old.cookies.insert("__Host-govgate-sso".into(), first);
    let p = old.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("prompt", "none")])).await;
    assert_eq!(query_of(p.location.as_deref().unwrap())["error"], "login_required");
}

#[tokio::test]
async fn login_form_requires_csrf_token() {
    let t = start().await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    let (_, c) = pkce();
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[])).await;
    let req = hidden(&page.body, "req");
    let r = b.post(&t.url("/login"), &[("req", &req), ("csrf", "forged"), ("username", "u1"), ("password", PASSWORD)]).await;
    assert_eq!(r.status, 400);
    assert!(r.location.is_none());
    // A different browser (other CSRF cookie) cannot reuse the token.
    let mut other = Browser::new();
    let r = other
        .post(&t.url("/login"), &[("req", &req), ("csrf", &hidden(&page.body, "csrf")), ("username", "u1"), ("password", PASSWORD)])
        .await;
    assert_eq!(r.status, 400);
    assert!(r.location.is_none());
}

#[tokio::test]
async fn brute_force_throttling_lockout_and_staff_unlock() {
    let t = start_with("", |c| {
        c.throttle_free_failures = 3;
        c.lockout_failures = 3;
    })
    .await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    let (_, c) = pkce();
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[])).await;
    for i in 0..3 {
        b.ip = Some(format!("10.0.0.{i}"));
        let r = submit_login(&mut b, &t, &page, "u1", "wrong-password-1").await;
        assert_eq!(r.status, 400, "attempt {i}");
    }
    // Next attempt (even with the right password, from a fresh IP) is throttled.
    b.ip = Some("10.0.0.9".into());
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    assert_eq!(r.status, 429);
    // Per-IP: another account from the same hammering IP is throttled too.
    t.add_citizen("u2").await;
    b.ip = Some("10.0.1.1".into());
    for _ in 0..3 {
        submit_login(&mut b, &t, &page, "nosuchuser", "x-wrong-123").await;
    }
    let r = submit_login(&mut b, &t, &page, "u2", PASSWORD).await;
    assert_eq!(r.status, 429);
    // The account got locked; staff unlock clears lock and counter.
    let u = govgate_idp::users::find_by_username(t.idp.store(), "u1").await.unwrap().unwrap();
    assert!(u.locked);
    govgate_idp::admin::unlock_user(t.idp.store(), "security-officer", "u1").await.unwrap();
    b.ip = Some("10.0.2.1".into());
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let ev = t.audit_events().await;
    assert!(ev.iter().any(|(e, o)| e == "login" && o == "failure"));
    assert!(ev.iter().any(|(e, o)| e == "login" && o == "throttled"));
    assert!(ev.iter().any(|(e, _)| e == "account_lock"));
    assert!(ev.iter().any(|(e, _)| e == "admin_user_unlock"));
}

#[tokio::test]
async fn form_post_response_mode() {
    let t = start().await;
    t.add_citizen("u1").await;
    let mut b = Browser::new();
    let (_, c) = pkce();
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("response_mode", "form_post")])).await;
    let r = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    assert_eq!(r.status, 200);
    assert!(unescape(&r.body).contains(&format!(r#"action="{REDIRECT}""#)), "{}", r.body);
    assert_eq!(hidden(&r.body, "state"), "st-1");
    assert!(!hidden(&r.body, "code").is_empty());
    assert!(r.body.contains(r#"<button type="submit""#), "works without JavaScript");
}

#[tokio::test]
async fn totp_second_factor_raises_acr() {
    let t = start().await;
    t.add_citizen("u1").await;
    let secret = govgate_idp::admin::enrol_totp(t.idp.store(), "admin", "u1").await.unwrap();
    let mut b = Browser::new();
    let (v, c) = pkce();
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[])).await;
    let otp_page = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    assert_eq!(otp_page.status, 200);
    assert!(otp_page.body.contains("autocomplete=\"one-time-code\""));
    let (req, csrf) = (hidden(&otp_page.body, "req"), hidden(&otp_page.body, "csrf"));
    let bad = b.post(&t.url("/otp"), &[("req", &req), ("csrf", &csrf), ("otp", "000000")]).await;
    assert_eq!(bad.status, 400);
    let code = govgate_idp::totp::current(&secret, govgate_idp::now() as u64).unwrap();
    let otp_code = code.clone();
    let ok = b.post(&t.url("/otp"), &[("req", &req), ("csrf", &csrf), ("otp", &otp_code)]).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let code = query_of(ok.location.as_deref().unwrap())["code"].clone();
    let (_, tok, _) =
        token_basic(&t, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)]).await;
    let payload = tok["id_token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap()).unwrap();
    assert_eq!(claims["acr"], "otp");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]));
    // The same one-time code cannot be used twice (RFC 6238 §5.2).
    let (_, c2) = pkce();
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c2), &[("prompt", "login")])).await;
    let otp_page = submit_login(&mut b, &t, &page, "u1", PASSWORD).await;
    let replay = b
        .post(&t.url("/otp"), &[("req", &hidden(&otp_page.body, "req")), ("csrf", &hidden(&otp_page.body, "csrf")), ("otp", &otp_code)])
        .await;
    assert_eq!(replay.status, 400);
}

#[tokio::test]
async fn registration_shows_errors_beside_fields() {
    let t = start().await;
    let mut b = Browser::new();
    let p = b.get(&t.url("/register?lang=en")).await;
    assert_eq!(p.status, 200);
    let csrf = hidden(&p.body, "csrf");
    let r = b
        .post(
            &t.url("/register"),
            &[
                ("csrf", &csrf),
                ("lang", "en"),
                ("username", "new1"),
                ("display_name", "李四"),
                ("id_number", "110105194912310021"),
                ("mobile", "123"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains(r#"id="id_number-error""#) && r.body.contains("check digit"));
    assert!(r.body.contains(r#"id="mobile-error""#));
    assert!(r.body.contains(r#"id="password-error""#));
    let r = b
        .post(
            &t.url("/register"),
            &[
                ("csrf", &csrf),
                ("username", "new1"),
                ("display_name", "李四"),
                ("id_number", "11010519491231002X"),
                ("mobile", "13912345678"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let u = govgate_idp::users::find_by_username(t.idp.store(), "new1").await.unwrap().unwrap();
    assert_eq!(u.real_name_level, 1);
}

#[tokio::test]
async fn login_page_language_and_accessibility() {
    let t = start().await;
    let mut b = Browser::new();
    let (_, c) = pkce();
    let zh = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[])).await;
    assert!(zh.body.contains(r#"<html lang="zh-CN">"#) && zh.body.contains("密码"));
    let en = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("ui_locales", "en-US zh")])).await;
    assert!(en.body.contains(r#"<html lang="en">"#) && en.body.contains(r#"<label for="password">Password</label>"#));
    assert!(en.headers.get("content-security-policy").unwrap().to_str().unwrap().contains("frame-ancestors 'none'"));
    // The language chosen with the switch sticks across a failed login.
    let en_switch = b.get(&t.url(&format!("/authorize?resume={}&lang=en", hidden(&zh.body, "req")))).await;
    assert!(en_switch.body.contains(r#"<html lang="en">"#));
    let failed = submit_login(&mut b, &t, &en_switch, "nobody", "wrong-pass-1").await;
    assert!(failed.body.contains(r#"<html lang="en">"#) && failed.body.contains(r#"role="alert""#));
    let csrf_cookie = zh.set_cookies.iter().find(|c| c.starts_with("__Host-govgate-csrf=")).unwrap();
    assert!(csrf_cookie.contains("Secure") && csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"));
}

#[tokio::test]
async fn discovery_and_jwks() {
    let t = start().await;
    let d: serde_json::Value = reqwest::get(t.url("/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    assert_eq!(d["issuer"], t.issuer);
    assert_eq!(d["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["id_token_signing_alg_values_supported"][0], "ES256");
    let j: serde_json::Value = reqwest::get(t.url("/jwks")).await.unwrap().json().await.unwrap();
    assert!(j["keys"].as_array().unwrap().iter().all(|k| k.get("d").is_none()));
    // Key rotation: the old key stays published and old tokens still verify.
    let (_, tok, _) = token_basic(&t, &[("grant_type", "client_credentials")]).await;
    let before = j["keys"].as_array().unwrap().len();
    t.idp.keys().rotate(govgate_idp::keys::SigningAlg::ES256).unwrap();
    let j2: serde_json::Value = reqwest::get(t.url("/jwks")).await.unwrap().json().await.unwrap();
    assert_eq!(j2["keys"].as_array().unwrap().len(), before + 1);
    let intro: serde_json::Value = reqwest::Client::new()
        .post(t.url("/introspect"))
        .basic_auth("portal", Some(PORTAL_SECRET))
        .form(&[("token", tok["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro["active"], true);
}

#[tokio::test]
async fn certificate_login_hook_gives_acr_cert() {
    let t = start().await;
    t.add_citizen("u1").await;
    let fp = "ab".repeat(32);
    govgate_idp::admin::bind_certificate(t.idp.store(), "admin", "u1", &fp).await.unwrap();
    let mut b = Browser::new();
    let (v, c) = pkce();
    // No certificate: no certificate button, and a forged cert-login POST fails.
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[])).await;
    assert!(!page.body.contains(r#"name="method" value="cert""#));
    let r =
        b.post(&t.url("/login"), &[("req", &hidden(&page.body, "req")), ("csrf", &hidden(&page.body, "csrf")), ("method", "cert")]).await;
    assert_eq!(r.status, 400);
    // An unbound certificate fails too.
    b.cert = Some(format!("{}|CN=Other", "cd".repeat(32)));
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[])).await;
    let r =
        b.post(&t.url("/login"), &[("req", &hidden(&page.body, "req")), ("csrf", &hidden(&page.body, "csrf")), ("method", "cert")]).await;
    assert_eq!(r.status, 400);
    // The bound certificate logs in with acr=cert.
    b.cert = Some(format!("{fp}|CN=Zhang San"));
    let page = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[])).await;
    assert!(page.body.contains(r#"name="method" value="cert""#) && page.body.contains("CN=Zhang San"));
    let r =
        b.post(&t.url("/login"), &[("req", &hidden(&page.body, "req")), ("csrf", &hidden(&page.body, "csrf")), ("method", "cert")]).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let code = query_of(r.location.as_deref().unwrap())["code"].clone();
    let (_, tok, _) =
        token_basic(&t, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &v)]).await;
    let payload = tok["id_token"].as_str().unwrap().split('.').nth(1).unwrap().to_string();
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).unwrap()).unwrap();
    assert_eq!(claims["acr"], "cert");
    // acr_values=cert is satisfied by this session without a new login.
    let p = b.get(&authorize_url(&t, "portal", REDIRECT, Some(&c), &[("acr_values", "cert"), ("prompt", "none")])).await;
    assert!(query_of(p.location.as_deref().unwrap()).contains_key("code"));
}
