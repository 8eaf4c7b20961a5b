//! The OpenID Foundation's logout certification plans, one test per check module (named after
//! it): RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and back-channel logout
//! (OpenID Connect Back-Channel Logout 1.0), against a running provider over real HTTP.

mod common;

use common::*;

/// A registered post-logout URI that has a query of its own.
const LOGOUT_WITH_QUERY: &str = "http://127.0.0.1:1/bye?from=portal";

/// `portal` plus a client whose post-logout URI has a query.
async fn provider() -> TestIdp {
    let hash = govgate_idp::crypto::sha256_hex(PORTAL_SECRET);
    let extra = format!(
        "\n[[client]]\nid = \"q\"\nsecret_hash = \"sha256:{hash}\"\nredirect_uris = [\"{REDIRECT}\"]\npost_logout_redirect_uris = [\"{LOGOUT_WITH_QUERY}\"]\nfirst_party = true\n"
    );
    let t = start_with(&extra, |_| {}).await;
    t.add_citizen("u1").await;
    t
}

/// Logs in to `client` (secret: PORTAL_SECRET, or POST-free basic) and returns its ID token.
async fn id_token_of(b: &mut Browser, t: &TestIdp, client: &str) -> String {
    let page = b.get(&authorize_url(t, client, REDIRECT, None, &[])).await;
    let r = if is_login_page(&page) { submit_login(b, t, &page, "u1", PASSWORD).await } else { page };
    let code = query_of(r.location.as_deref().unwrap())["code"].clone();
    let (s, tokens, _) =
        token_as(t, client, PORTAL_SECRET, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(s, 200, "{tokens}");
    tokens["id_token"].as_str().unwrap().to_string()
}

fn logout_url(t: &TestIdp, params: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&t.url("/logout")).unwrap();
    u.query_pairs_mut().extend_pairs(params);
    u.to_string()
}

/// Whether the browser still has a session at the provider (prompt=none gives a code).
async fn logged_in(b: &mut Browser, t: &TestIdp) -> bool {
    let p = b.get(&authorize_url(t, "portal", REDIRECT, None, &[("prompt", "none")])).await;
    query_of(p.location.as_deref().unwrap()).contains_key("code")
}

#[tokio::test]
async fn oidcc_rp_initiated_logout() {
    let t = provider().await;
    let mut b = Browser::new();
    let hint = id_token_of(&mut b, &t, "portal").await;
    let p = b.get(&logout_url(&t, &[("id_token_hint", &hint), ("post_logout_redirect_uri", LOGOUT_REDIRECT), ("state", "lo-1")])).await;
    assert_eq!(p.status, 303);
    assert_eq!(p.location.as_deref(), Some(format!("{LOGOUT_REDIRECT}?state=lo-1").as_str()), "back to the RP with its state");
    assert!(p.set_cookies.iter().any(|c| c.starts_with("__Host-govgate-sso=") && c.contains("Max-Age=0")), "{:?}", p.set_cookies);
    assert!(!logged_in(&mut b, &t).await, "the session has ended");
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_bad_id_token_hint() {
    let t = provider().await;
    let mut b = Browser::new();
    let hint = id_token_of(&mut b, &t, "portal").await;
    let forged = format!("{}{}", &hint[..hint.len() - 4], if hint.ends_with("AAAA") { "BBBB" } else { "AAAA" });
    for bad in [forged.as_str(), "not-a-jwt"] {
        let p = b.get(&logout_url(&t, &[("id_token_hint", bad), ("post_logout_redirect_uri", LOGOUT_REDIRECT), ("state", "s")])).await;
        assert_eq!((p.status, p.location.is_none()), (400, true), "an error page, no redirect");
    }
    assert!(logged_in(&mut b, &t).await, "the session stays");
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_post_logout_redirect_uri() {
    let t = provider().await;
    let mut b = Browser::new();
    let hint = id_token_of(&mut b, &t, "portal").await;
    let p = b.get(&logout_url(&t, &[("id_token_hint", &hint), ("state", "s")])).await;
    assert_eq!((p.status, p.location.is_none()), (200, true), "the provider's own signed-out page");
    assert!(!logged_in(&mut b, &t).await);
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_bad_post_logout_redirect_uri() {
    let t = provider().await;
    let mut b = Browser::new();
    let hint = id_token_of(&mut b, &t, "portal").await;
    for bad in ["https://evil.example/", "http://127.0.0.1:1/bye/", LOGOUT_WITH_QUERY] {
        let p = b.get(&logout_url(&t, &[("id_token_hint", &hint), ("post_logout_redirect_uri", bad)])).await;
        assert_eq!((p.status, p.location.is_none()), (400, true), "{bad} is not registered for portal");
    }
    assert!(logged_in(&mut b, &t).await);
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri() {
    let t = provider().await;
    let mut b = Browser::new();
    let hint = id_token_of(&mut b, &t, "q").await;
    let p = b.get(&logout_url(&t, &[("id_token_hint", &hint), ("post_logout_redirect_uri", LOGOUT_WITH_QUERY), ("state", "x y")])).await;
    assert_eq!(p.location.as_deref(), Some(format!("{LOGOUT_WITH_QUERY}&state=x+y").as_str()), "the registered query is kept");
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_params() {
    let t = provider().await;
    let mut b = Browser::new();
    id_token_of(&mut b, &t, "portal").await;
    // No hint: the user confirms (a CSRF-protected form) before anything ends.
    let p = b.get(&t.url("/logout")).await;
    assert_eq!((p.status, p.location.is_none()), (200, true));
    assert!(logged_in(&mut b, &t).await, "not logged out by a bare link");
    let r = b.post(&t.url("/logout"), &[("csrf", "forged"), ("confirm", "yes")]).await;
    assert_eq!(r.status, 200, "a forged confirmation shows the question again");
    assert!(logged_in(&mut b, &t).await);
    let r = b.post(&t.url("/logout"), &[("csrf", &hidden(&p.body, "csrf")), ("confirm", "yes")]).await;
    assert_eq!((r.status, r.location.is_none()), (200, true));
    assert!(!logged_in(&mut b, &t).await);
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_only_state() {
    let t = provider().await;
    let mut b = Browser::new();
    id_token_of(&mut b, &t, "portal").await;
    let p = b.get(&logout_url(&t, &[("state", "only")])).await;
    assert_eq!((p.status, p.location.is_none()), (200, true), "state alone has nowhere to go");
    assert!(logged_in(&mut b, &t).await);
}

#[tokio::test]
async fn oidcc_rp_initiated_logout_no_id_token_hint() {
    let t = provider().await;
    let mut b = Browser::new();
    id_token_of(&mut b, &t, "portal").await;
    let p = b.get(&logout_url(&t, &[("client_id", "portal"), ("post_logout_redirect_uri", LOGOUT_REDIRECT), ("state", "s2")])).await;
    assert_eq!(p.status, 200, "asks the user first");
    assert!(logged_in(&mut b, &t).await);
    let form = [
        ("csrf", hidden(&p.body, "csrf")),
        ("confirm", "yes".into()),
        ("client_id", hidden(&p.body, "client_id")),
        ("post_logout_redirect_uri", hidden(&p.body, "post_logout_redirect_uri")),
        ("state", hidden(&p.body, "state")),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = b.post(&t.url("/logout"), &form).await;
    assert_eq!(r.location.as_deref(), Some(format!("{LOGOUT_REDIRECT}?state=s2").as_str()));
    assert!(!logged_in(&mut b, &t).await);
}

/// A relying party's back-channel logout endpoint: every POST body, with the path it came to.
async fn backchannel_receiver() -> (std::net::SocketAddr, tokio::sync::mpsc::Receiver<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<(String, String)>(8);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        use http_body_util::BodyExt;
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let _ = tx.send((path, String::from_utf8_lossy(&body).into_owned())).await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await;
            });
        }
    });
    (addr, rx)
}

#[tokio::test]
async fn oidcc_backchannel_rp_initiated_logout() {
    let (rp, mut rx) = backchannel_receiver().await;
    let hash = govgate_idp::crypto::sha256_hex(PORTAL_SECRET);
    let client = |id: &str, extra: &str| {
        format!("\n[[client]]\nid = \"{id}\"\nsecret_hash = \"sha256:{hash}\"\nredirect_uris = [\"{REDIRECT}\"]\npost_logout_redirect_uris = [\"{LOGOUT_REDIRECT}\"]\nbackchannel_logout_uri = \"http://{rp}/{id}\"\nfirst_party = true\n{extra}")
    };
    let extra = client("bc1", "frontchannel_logout_uri = \"http://127.0.0.1:1/front\"\n")
        + &client("bc2", "id_token_signed_response_alg = \"RS256\"\n");
    let t = start_with(&extra, |_| {}).await;
    let uid = t.add_citizen("u1").await;
    let mut b = Browser::new();
    let hint = id_token_of(&mut b, &t, "bc1").await;
    let second = id_token_of(&mut b, &t, "bc2").await;
    let sid = jwt_payload(&hint)["sid"].as_str().unwrap().to_string();
    assert_eq!(jwt_payload(&second)["sid"], sid.as_str(), "one session, two clients");

    let p = b.get(&logout_url(&t, &[("id_token_hint", &hint), ("post_logout_redirect_uri", LOGOUT_REDIRECT), ("state", "s")])).await;
    assert_eq!(p.status, 200, "the signed-out page loads the front-channel iframe, then continues");
    assert!(unescape(&p.body).contains("http://127.0.0.1:1/front?iss="), "front-channel logout");
    assert!(unescape(&p.body).contains(&format!("{LOGOUT_REDIRECT}?state=s")));

    // One logout token per client, each for that client only.
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let (path, body) = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await.expect("a logout token").unwrap();
        let token: String = url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "logout_token").unwrap().1.into_owned();
        seen.insert(path.trim_start_matches('/').to_string(), token);
    }
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), vec!["bc1", "bc2"]);
    let mut jtis = std::collections::BTreeSet::new();
    for (client, token) in &seen {
        let header = jwt_header(token);
        assert_eq!(header["typ"], "logout+jwt");
        assert_eq!(header["alg"], if client == "bc2" { "RS256" } else { "ES256" }, "signed like the client's ID tokens");
        let c = verify_jwt(&t, token, client).await;
        assert_eq!((c["iss"].as_str(), c["aud"].as_str()), (Some(t.issuer.as_str()), Some(client.as_str())));
        assert_eq!((c["sub"].as_str(), c["sid"].as_str()), (Some(uid.as_str()), Some(sid.as_str())));
        let now = govgate_idp::now();
        assert!(c["iat"].as_i64().is_some_and(|i| (now - 60..=now + 5).contains(&i)));
        assert_eq!(c["events"], serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}}));
        assert!(c.get("nonce").is_none(), "a logout token never has a nonce: {c}");
        assert!(jtis.insert(c["jti"].as_str().unwrap().to_string()), "distinct jti");
    }
    assert!(!logged_in(&mut b, &t).await);
    assert!(t.audit_events().await.iter().filter(|(e, o)| e == "backchannel_logout" && o == "success").count() >= 2);
}
