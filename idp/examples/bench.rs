//! Throughput benchmark of the IdP core, in-process through `Idp::handle` (no network), on a
//! single-threaded runtime — i.e. per core. Prints refresh grants/s, code exchanges/s,
//! client-credentials grants/s, JWKS-verified access-token checks/s and password logins/s with
//! the production argon2id cost (m=19456 KiB, t=2, p=1).
//!
//! Run: `CARGO_TARGET_DIR=/work/target-idp cargo run --release -p govgate-idp --example bench [seconds-per-case]`

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use base64::Engine;
use govgate_idp::password::Argon2Params;
use govgate_idp::users::{AccountKind, NewUser};
use govgate_idp::{Idp, IdpConfig, IdpRequest, IdpResponse};

const SECRET: &str = "bench-secret-0123456789-0123456789";
const REDIRECT: &str = "https://app.example.gov.cn/cb";

fn req(method: &str, path: &str, query: &str, headers: Vec<(String, String)>, body: &str) -> IdpRequest {
    IdpRequest {
        method: method.into(),
        path: path.into(),
        query: query.into(),
        headers,
        body: body.as_bytes().to_vec(),
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        tls: true,
        client_cert: None,
    }
}

fn basic() -> (String, String) {
    ("authorization".into(), format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("app:{SECRET}"))))
}

fn json(r: &IdpResponse) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null)
}

fn hidden(html: &str, name: &str) -> String {
    let needle = format!(r#"name="{name}" value=""#);
    let i = html.find(&needle).map(|i| i + needle.len()).unwrap_or(0);
    html[i..].split('"').next().unwrap_or("").to_string()
}

fn set_cookie(r: &IdpResponse, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k == "Set-Cookie")
        .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")).map(|x| x.split(';').next().unwrap_or("").to_string()))
}

fn report(name: &str, n: u64, d: Duration) {
    println!("{name:<42} {:>10.0} /s   ({n} in {:.2} s)", n as f64 / d.as_secs_f64(), d.as_secs_f64());
}

fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let budget = Duration::from_secs(secs);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let hash = format!("sha256:{}", govgate_idp::crypto::sha256_hex(SECRET));
        std::fs::write(
            dir.path().join("clients.toml"),
            format!(
                "[[client]]\nid = \"app\"\nsecret_hash = \"{hash}\"\nredirect_uris = [\"{REDIRECT}\"]\ngrant_types = [\"authorization_code\", \"refresh_token\", \"client_credentials\"]\nscopes = [\"openid\", \"profile\", \"api\"]\nfirst_party = true\n"
            ),
        )
        .expect("clients");
        let mut cfg = IdpConfig::new("https://id.example.gov.cn", dir.path());
        cfg.argon2 = Argon2Params::PRODUCTION;
        let idp = Idp::open(cfg).await.expect("open");
        let nu = NewUser {
            username: "bench".into(),
            kind: Some(AccountKind::Staff),
            display_name: "Bench".into(),
            password: "Bench-password-1".into(),
            ..Default::default()
        };
        govgate_idp::users::create_user(idp.store(), &nu, Argon2Params::PRODUCTION).await.expect("user");

        let verifier = "v".repeat(43);
        let challenge = govgate_idp::crypto::s256(&verifier);
        let q = format!(
            "response_type=code&client_id=app&scope=openid%20profile&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256&state=s",
            url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
        );

        // Password logins (production argon2id cost).
        let mut n = 0u64;
        let mut login_time = Duration::ZERO;
        let mut session = String::new();
        while login_time < budget {
            let page = idp.handle(req("GET", "/authorize", &q, vec![], "")).await;
            let csrf_cookie = set_cookie(&page, "__Host-govgate-csrf").unwrap_or_default();
            let body = String::from_utf8_lossy(&page.body).into_owned();
            let form = format!("req={}&csrf={}&username=bench&password=Bench-password-1", hidden(&body, "req"), hidden(&body, "csrf"));
            let t0 = Instant::now();
            let r = idp.handle(req("POST", "/login", "", vec![("cookie".into(), format!("__Host-govgate-csrf={csrf_cookie}"))], &form)).await;
            login_time += t0.elapsed();
            assert_eq!(r.status, 303, "login failed");
            session = set_cookie(&r, "__Host-govgate-sso").unwrap_or_default();
            n += 1;
        }
        report("password logins (argon2id m=19456,t=2,p=1)", n, login_time);

        // Code exchanges: codes minted first (untimed), then exchanged.
        let cookie = vec![("cookie".to_string(), format!("__Host-govgate-sso={session}"))];
        let mut codes = Vec::new();
        let t0 = Instant::now();
        while t0.elapsed() < budget && codes.len() < 200_000 {
            let r = idp.handle(req("GET", "/authorize", &q, cookie.clone(), "")).await;
            let loc = r.header("Location").unwrap_or_default().to_string();
            let code = url::Url::parse(&loc).ok().and_then(|u| u.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()));
            codes.push(code.expect("code"));
        }
        let mut refresh = String::new();
        let t0 = Instant::now();
        let mut n = 0u64;
        for code in &codes {
            let body = format!("grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={verifier}", url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>());
            let r = idp.handle(req("POST", "/token", "", vec![basic()], &body)).await;
            assert_eq!(r.status, 200);
            refresh = json(&r)["refresh_token"].as_str().unwrap_or_default().to_string();
            n += 1;
            if t0.elapsed() > budget {
                break;
            }
        }
        report("code exchanges (authorization_code)", n, t0.elapsed());

        // Refresh grants with rotation.
        let t0 = Instant::now();
        let mut n = 0u64;
        let mut last_at = String::new();
        while t0.elapsed() < budget {
            let r = idp.handle(req("POST", "/token", "", vec![basic()], &format!("grant_type=refresh_token&refresh_token={refresh}"))).await;
            assert_eq!(r.status, 200);
            let j = json(&r);
            refresh = j["refresh_token"].as_str().unwrap_or_default().to_string();
            last_at = j["access_token"].as_str().unwrap_or_default().to_string();
            n += 1;
        }
        report("refresh grants (rotating)", n, t0.elapsed());

        // Client credentials.
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < budget {
            let r = idp.handle(req("POST", "/token", "", vec![basic()], "grant_type=client_credentials&scope=api")).await;
            assert_eq!(r.status, 200);
            n += 1;
        }
        report("client-credentials grants", n, t0.elapsed());

        // JWKS-verified access-token checks (signature + claims, as a resource server would).
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(idp.keys().jwks()).expect("jwks");
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < budget {
            let h = jsonwebtoken::decode_header(&last_at).expect("header");
            let jwk = jwks.find(h.kid.as_deref().unwrap_or("")).expect("kid");
            let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key");
            let mut v = jsonwebtoken::Validation::new(h.alg);
            v.set_issuer(&["https://id.example.gov.cn"]);
            v.set_audience(&["app"]);
            jsonwebtoken::decode::<serde_json::Value>(&last_at, &key, &v).expect("valid");
            n += 1;
        }
        report("JWKS-verified access-token checks (jsonwebtoken)", n, t0.elapsed());
        // The same check with the IdP's own verifier (ring, cached keys) — what the gateway uses in-process.
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < budget {
            govgate_idp::tokens::verify_access(idp.keys(), "https://id.example.gov.cn", &last_at).expect("valid");
            n += 1;
        }
        report("access-token checks (govgate_idp::tokens)", n, t0.elapsed());
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < budget {
            let r = idp.handle(req("GET", "/userinfo", "", vec![("authorization".into(), format!("Bearer {last_at}"))], "")).await;
            assert_eq!(r.status, 200);
            n += 1;
        }
        report("userinfo (verify + revocation check + user)", n, t0.elapsed());
    });
}
