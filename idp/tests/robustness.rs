//! No panics and no 5xx from client input: every route and method gets malformed queries,
//! bodies, cookies and authorization headers through `Idp::handle` directly.

mod common;

use govgate_idp::IdpRequest;

#[tokio::test]
async fn garbage_input_never_panics_or_500s() {
    let t = common::start().await;
    let routes = [
        "/.well-known/openid-configuration",
        "/jwks",
        "/authorize",
        "/login",
        "/otp",
        "/consent",
        "/register",
        "/token",
        "/userinfo",
        "/introspect",
        "/revoke",
        "/logout",
        "/nope",
        "",
    ];
    let queries = [
        "",
        "a",
        "%",
        "%ff%fe",
        "client_id=portal&redirect_uri=%00",
        "resume=x",
        "req=%zz&lang=en",
        "&&&==",
        "client_id=portal&client_id=spa",
    ];
    let bodies: [&[u8]; 6] = [b"", b"\xff\xfe\x00", b"grant_type=authorization_code&code=", b"token=a.b.c", b"client_assertion=eyJhbGciOiJub25lIn0.e30.&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&grant_type=client_credentials", b"req=&csrf=&username=&password="];
    let auths =
        ["", "Basic", "Basic !!!", "Basic Og==", "Bearer", "Bearer a.b.c", "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6Im5vIn0.e30.AA", "Digest x"];
    for route in routes {
        for method in ["GET", "POST", "PUT", "HEAD"] {
            for (i, q) in queries.iter().enumerate() {
                let body = bodies[i % bodies.len()];
                let auth = auths[i % auths.len()];
                let mut headers = vec![("cookie".to_string(), "__Host-govgate-sso=%%%; __Host-govgate-csrf=;=;".to_string())];
                if !auth.is_empty() {
                    headers.push(("authorization".into(), auth.into()));
                }
                let r = t
                    .idp
                    .handle(IdpRequest {
                        method: method.into(),
                        path: route.into(),
                        query: q.to_string(),
                        headers,
                        body: body.to_vec(),
                        client_ip: "192.0.2.1".parse().unwrap(),
                        tls: true,
                        client_cert: None,
                    })
                    .await;
                assert!(r.status < 500, "{method} {route}?{q} -> {}: {}", r.status, String::from_utf8_lossy(&r.body));
            }
        }
    }
}

#[tokio::test]
async fn owns_only_its_paths_under_the_issuer_path() {
    let dir = tempfile::tempdir().unwrap();
    let idp = govgate_idp::Idp::open(govgate_idp::IdpConfig::new("https://gw.example.gov.cn/idp", dir.path())).await.unwrap();
    assert!(idp.owns_path("/idp/token"));
    assert!(idp.owns_path("/idp/.well-known/openid-configuration"));
    assert!(!idp.owns_path("/token"));
    assert!(!idp.owns_path("/idp/admin"));
    let r = idp
        .handle(IdpRequest {
            method: "GET".into(),
            path: "/idp/.well-known/openid-configuration".into(),
            query: String::new(),
            headers: vec![],
            body: vec![],
            client_ip: "192.0.2.1".parse().unwrap(),
            tls: true,
            client_cert: None,
        })
        .await;
    let d: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(d["token_endpoint"], "https://gw.example.gov.cn/idp/token");
    assert_eq!(d["issuer"], "https://gw.example.gov.cn/idp");
}

/// The gateway runs the handler inside pingora's multi-threaded runtime: the provider must be
/// `Send + Sync + Clone` and `handle`'s future `Send`.
#[tokio::test]
async fn handler_is_send_for_pingora() {
    fn send_sync<T: Send + Sync + Clone + 'static>(_: &T) {}
    fn send_future<F: std::future::Future + Send>(_: &F) {}
    let t = common::start().await;
    send_sync(&t.idp);
    let fut = t.idp.handle(IdpRequest {
        method: "GET".into(),
        path: "/jwks".into(),
        query: String::new(),
        headers: vec![],
        body: vec![],
        client_ip: "192.0.2.1".parse().unwrap(),
        tls: true,
        client_cert: None,
    });
    send_future(&fut);
    assert_eq!(fut.await.status, 200);
}

#[tokio::test]
async fn client_algorithm_without_key_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clients.toml"), "[[client]]\nid = \"rs\"\nauth_method = \"none\"\nid_token_alg = \"RS256\"\n").unwrap();
    let mut cfg = govgate_idp::IdpConfig::new("https://id.example.gov.cn", dir.path());
    cfg.signing_algs = vec![govgate_idp::keys::SigningAlg::ES256, govgate_idp::keys::SigningAlg::EdDSA];
    assert!(matches!(govgate_idp::Idp::open(cfg).await, Err(govgate_idp::IdpError::Config(_))));
}
