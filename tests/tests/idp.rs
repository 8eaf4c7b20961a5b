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

/// JWT-shaped values as relying parties send them: a header, a payload and a signature of
/// random bytes, base64url-encoded.
fn jwt_like(payload: &serde_json::Value, alg: &str, sig_len: usize) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let sig: Vec<u8> = (0..sig_len).map(|_| uuid_byte()).collect();
    let header = serde_json::json!({"alg": alg, "typ": "JWT", "kid": format!("{}-Zq3x9LkP0aBc", alg.to_lowercase())});
    format!(
        "{}.{}.{}",
        e.encode(header.to_string()),
        e.encode(payload.to_string()),
        if alg == "none" { String::new() } else { e.encode(sig) }
    )
}

fn uuid_byte() -> u8 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    (x >> 56) as u8
}

/// The OWASP CRS at paranoia level 1 in blocking mode lets the provider's JWT-carrying
/// parameters through (`id_token_hint`, `request`, `client_assertion`, `logout_token`-like
/// values), while still blocking an attack in the same parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_parameters_pass_the_crs_at_paranoia_level_1() {
    let dir = tempfile::tempdir().unwrap();
    let clients = dir.path().join("clients.toml");
    std::fs::write(&clients, CLIENTS).unwrap();
    let waf = format!("[waf]\nrules = \"{}\"\nmode = \"block\"\nparanoia = 1\n\n", govgate_tests::crs_dir().display());
    let gw = Gateway::start(&(waf + &policy("{HTTPS}", &clients)));
    let issuer = format!("https://id.test:{}", gw.https_port);
    let now = 1_790_000_000;
    let mut blocked = Vec::new();
    for i in 0..40 {
        let id_token = jwt_like(
            &serde_json::json!({"iss": issuer, "sub": "0b6c1f8e-52a4-4c1e-9d7b-3f0e5a1c2d4b", "aud": "shebao", "exp": now + 300, "iat": now,
                "auth_time": now, "nonce": format!("n-{i}"), "acr": "pwd", "amr": ["pwd"], "sid": "5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f",
                "at_hash": "x4Qb_3pNc0LzS0d1l5hQ7w", "azp": "shebao"}),
            ["ES256", "RS256", "EdDSA"][i % 3],
            [64, 256, 64][i % 3],
        );
        let request = jwt_like(
            &serde_json::json!({"iss": "shebao", "aud": issuer, "client_id": "shebao", "response_type": "code", "scope": "openid profile",
                "redirect_uri": "https://shebao.test/.govgate/callback", "state": format!("s{i}"), "nonce": format!("n{i}"),
                "claims": {"userinfo": {"name": {"essential": true}}}}),
            "none",
            0,
        );
        let assertion = jwt_like(
            &serde_json::json!({"iss": "shebao", "sub": "shebao", "aud": format!("{issuer}/token"), "exp": now + 60, "jti": format!("jti-{i}")}),
            "ES256",
            64,
        );
        let logout: Vec<(&str, &str)> =
            vec![("id_token_hint", &id_token), ("post_logout_redirect_uri", "https://shebao.test/"), ("state", "x")];
        let authorize: Vec<(&str, &str)> = vec![
            ("client_id", "shebao"),
            ("response_type", "code"),
            ("request", &request),
            ("id_token_hint", &id_token),
            ("login_hint", "zhangsan"),
        ];
        for (path, query) in [("/logout", logout), ("/authorize", authorize)] {
            let r = client().get(gw.url(path)).query(&query).header("host", "id.test").send().await.unwrap();
            if r.status() == 403 {
                blocked.push(format!("{path} {query:?}"));
            }
        }
        let form = [
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
        ];
        let r = client().post(gw.url("/token")).header("host", "id.test").form(&form).send().await.unwrap();
        if r.status() == 403 {
            blocked.push(format!("POST /token client_assertion={assertion}"));
        }
    }
    assert!(blocked.is_empty(), "{} false positives, e.g. {:?}\n{}", blocked.len(), blocked.first(), gw.attack_events().len());
    // The WAF is on: an injection in the same parameter is blocked.
    let r = client().get(gw.url("/logout?id_token_hint=1%27%20OR%20%271%27%3D%271")).header("host", "id.test").send().await.unwrap();
    assert_eq!(r.status(), 403);
}
