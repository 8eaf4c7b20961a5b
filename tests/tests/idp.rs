//! The built-in OpenID Connect provider served by the gateway in-process: its endpoints
//! answer on the IdP host behind the gateway's own protections.

use govgate_tests::{client, Gateway};

fn policy(gw_https_placeholder: &str, clients: &std::path::Path) -> String {
    format!(
        "[idp]\nissuer = \"https://id.test:{gw_https_placeholder}\"\nclients = \"{}\"\n\n[[apps]]\nname = \"id\"\nhosts = [\"id.test\"]\nbuiltin = \"idp\"\n",
        clients.display()
    )
}

const CLIENTS: &str = r#"
[[client]]
id = "shebao"
name = "社保"
auth_method = "none"
redirect_uris = ["https://shebao.test/.govgate/callback"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile"]
first_party = true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_provider_is_served_on_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    std::fs::write(&clients, CLIENTS).unwrap();
    let gw = Gateway::start(&policy("{HTTPS}", &clients));
    let issuer = format!("https://id.test:{}", gw.https_port);

    let r = client().get(gw.url("/.well-known/openid-configuration")).header("host", "id.test").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some(), "answered through the gateway");
    let d: serde_json::Value = r.json().await.unwrap();
    assert_eq!(d["issuer"], issuer.as_str());
    assert_eq!(d["authorization_endpoint"], format!("{issuer}/authorize"));
    let jwks: serde_json::Value = client().get(gw.url("/jwks")).header("host", "id.test").send().await.unwrap().json().await.unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty(), "signing keys were generated: {jwks}");
    assert!(gw.dir.path().join("data/idp").is_dir(), "the provider keeps its state in the data directory");

    // The login page for a registered client, in Chinese by default.
    let authorize = "/authorize?response_type=code&client_id=shebao&redirect_uri=https%3A%2F%2Fshebao.test%2F.govgate%2Fcallback&scope=openid&state=s1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    let r = client().get(gw.url(authorize)).header("host", "id.test").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("lang=\"zh"), "{page}");
    // An unregistered redirect URI is refused, never followed.
    let evil = authorize.replace("https%3A%2F%2Fshebao.test", "https%3A%2F%2Fevil.example");
    let r = client().get(gw.url(&evil)).header("host", "id.test").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // A token request with a made-up code gets an RFC 6749 error, through the gateway.
    let r = client()
        .post(gw.url("/token"))
        .header("host", "id.test")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("client_id", "shebao"),
            ("redirect_uri", "https://shebao.test/.govgate/callback"),
            ("code_verifier", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
}
