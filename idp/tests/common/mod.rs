//! Test harness: the IdP behind a tiny hyper server on 127.0.0.1:0, test clients, and a
//! cookie-keeping "browser" that drives the HTML forms.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use govgate_idp::password::Argon2Params;
use govgate_idp::users::{AccountKind, NewUser};
use govgate_idp::{Idp, IdpConfig, IdpRequest};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

pub const PORTAL_SECRET: &str = "portal-secret-for-tests-only-0123456789";
pub const POST_SECRET: &str = "post-secret-for-tests-only-0123456789";
pub const PASSWORD: &str = "Correct-horse-1";
pub const REDIRECT: &str = "http://127.0.0.1:1/cb";
pub const SPA_REDIRECT: &str = "http://127.0.0.1:1/spa";
pub const LOGOUT_REDIRECT: &str = "http://127.0.0.1:1/bye";

pub struct TestIdp {
    pub idp: Idp,
    pub issuer: String,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

fn sha(s: &str) -> String {
    govgate_idp::crypto::sha256_hex(s)
}

/// The test client registry; `extra` is appended (TOML).
pub fn clients_toml(extra: &str) -> String {
    format!(
        r#"
[[client]]
id = "portal"
name = "政务服务门户"
secret_hash = "sha256:{portal}"
auth_method = "client_secret_basic"
redirect_uris = ["{REDIRECT}"]
post_logout_redirect_uris = ["{LOGOUT_REDIRECT}"]
grant_types = ["authorization_code", "refresh_token", "client_credentials"]
scopes = ["openid", "profile", "email", "address", "phone", "gov_identity", "roles", "api.read"]
first_party = true
gov_identity_full = true

[[client]]
id = "spa"
name = "第三方应用"
auth_method = "none"
redirect_uris = ["{SPA_REDIRECT}"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "gov_identity"]

[[client]]
id = "poster"
secret_hash = "sha256:{post}"
auth_method = "client_secret_post"
redirect_uris = ["{REDIRECT}"]
grant_types = ["authorization_code", "client_credentials"]
scopes = ["openid", "profile", "api.read"]
first_party = true
{extra}
"#,
        portal = sha(PORTAL_SECRET),
        post = sha(POST_SECRET),
    )
}

pub async fn start() -> TestIdp {
    start_with("", |_| {}).await
}

pub async fn start_with(extra_clients: &str, tweak: impl FnOnce(&mut IdpConfig)) -> TestIdp {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let issuer = format!("http://{addr}");
    std::fs::write(dir.path().join("clients.toml"), clients_toml(extra_clients)).unwrap();
    let mut cfg = IdpConfig::new(&issuer, dir.path());
    cfg.argon2 = Argon2Params::TEST;
    tweak(&mut cfg);
    let idp = Idp::open(cfg).await.unwrap();
    let server_idp = idp.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else { return };
            let idp = server_idp.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<Incoming>| {
                    let idp = idp.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                        let headers: Vec<(String, String)> = parts
                            .headers
                            .iter()
                            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                            .collect();
                        // Test-only: let a test pretend to come from another address.
                        let ip: IpAddr =
                            headers.iter().find(|(k, _)| k == "x-test-client-ip").and_then(|(_, v)| v.parse().ok()).unwrap_or(peer.ip());
                        // Test-only: a client certificate "verified by the gateway".
                        let cert = headers.iter().find(|(k, _)| k == "x-test-client-cert").and_then(|(_, v)| {
                            let (fp, subject) = v.split_once('|')?;
                            Some(govgate_idp::ClientCert::verified(fp, subject, None))
                        });
                        let r = idp
                            .handle(IdpRequest {
                                method: parts.method.as_str().to_string(),
                                path: parts.uri.path().to_string(),
                                query: parts.uri.query().unwrap_or("").to_string(),
                                headers,
                                body,
                                client_ip: ip,
                                tls: false,
                                client_cert: cert,
                            })
                            .await;
                        let mut resp = hyper::Response::builder().status(r.status);
                        for (k, v) in &r.headers {
                            resp = resp.header(k, v);
                        }
                        Ok::<_, std::convert::Infallible>(resp.body(Full::new(Bytes::from(r.body))).unwrap())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    TestIdp { idp, issuer, addr, dir }
}

impl TestIdp {
    pub fn url(&self, p: &str) -> String {
        format!("{}{}", self.issuer, p)
    }

    pub async fn add_citizen(&self, username: &str) -> String {
        let nu = NewUser {
            username: username.into(),
            kind: Some(AccountKind::Citizen),
            display_name: "张三".into(),
            password: PASSWORD.into(),
            id_number: Some("11010519491231002X".into()),
            mobile: Some("13812345678".into()),
            email: Some("zs@example.cn".into()),
            real_name_level: Some(3),
            address: Some("北京市西城区示例路 1 号".into()),
            ..Default::default()
        };
        govgate_idp::admin::add_user(self.idp.store(), "test", &nu, Argon2Params::TEST).await.unwrap()
    }

    pub async fn audit_events(&self) -> Vec<(String, String)> {
        govgate_idp::audit::recent(self.idp.store(), 1000).await.unwrap().into_iter().map(|r| (r.event, r.outcome)).collect()
    }
}

/// A minimal browser: no redirects followed, cookies kept by hand (the `__Host-` cookies are
/// `Secure`, which a real cookie jar would not send over plain-HTTP loopback).
pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    pub ip: Option<String>,
    pub cert: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
            cookies: HashMap::new(),
            ip: None,
            cert: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn finish(&mut self, r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let location = headers.get("location").map(|v| v.to_str().unwrap().to_string());
        let set_cookies: Vec<String> = headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page { status, location, body: r.text().await.unwrap(), set_cookies, headers }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let mut rb = self.http.get(url).header("cookie", self.cookie_header());
        if let Some(ip) = &self.ip {
            rb = rb.header("x-test-client-ip", ip);
        }
        if let Some(c) = &self.cert {
            rb = rb.header("x-test-client-cert", c);
        }
        let r = rb.send().await.unwrap();
        self.finish(r).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut rb = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(ip) = &self.ip {
            rb = rb.header("x-test-client-ip", ip);
        }
        if let Some(c) = &self.cert {
            rb = rb.header("x-test-client-cert", c);
        }
        let r = rb.send().await.unwrap();
        self.finish(r).await
    }
}

/// Value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let html = &unescape(html);
    let needle = format!(r#"name="{name}" value=""#);
    let i = html.find(&needle).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + needle.len();
    html[i..].split('"').next().unwrap().to_string()
}

/// Query parameters of a redirect Location.
pub fn query_of(location: &str) -> HashMap<String, String> {
    url::Url::parse(location).unwrap().query_pairs().into_owned().collect()
}

/// Log in on a login page; returns the page after the POST.
pub async fn submit_login(b: &mut Browser, t: &TestIdp, login_page: &Page, username: &str, password: &str) -> Page {
    let req = hidden(&login_page.body, "req");
    let csrf = hidden(&login_page.body, "csrf");
    let lang = hidden(&login_page.body, "lang");
    b.post(&t.url("/login"), &[("req", &req), ("csrf", &csrf), ("lang", &lang), ("username", username), ("password", password)]).await
}

/// PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let v = govgate_idp::crypto::random_token();
    let c = govgate_idp::crypto::s256(&v);
    (v, c)
}

/// Authorize URL for a client with the usual parameters plus `extra`.
pub fn authorize_url(t: &TestIdp, client_id: &str, redirect: &str, challenge: Option<&str>, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&t.url("/authorize")).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "st-1")
            .append_pair("nonce", "n-1");
        if !extra.iter().any(|(k, _)| *k == "scope") {
            q.append_pair("scope", "openid profile");
        }
        if let Some(c) = challenge {
            q.append_pair("code_challenge", c).append_pair("code_challenge_method", "S256");
        }
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    u.to_string()
}

/// Full browser login for `portal`; returns (code, verifier).
pub async fn login_for_code(b: &mut Browser, t: &TestIdp, username: &str) -> (String, String) {
    let (v, c) = pkce();
    let page = b.get(&authorize_url(t, "portal", REDIRECT, Some(&c), &[])).await;
    let r = if page.status == 303 { page } else { submit_login(b, t, &page, username, PASSWORD).await };
    assert_eq!(r.status, 303, "{}", r.body);
    let q = query_of(r.location.as_deref().unwrap());
    (q["code"].clone(), v)
}

/// Token request with HTTP Basic for `portal`.
pub async fn token_basic(t: &TestIdp, form: &[(&str, &str)]) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    token_as(t, "portal", PORTAL_SECRET, form).await
}

pub async fn token_as(t: &TestIdp, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let r = reqwest::Client::new().post(t.url("/token")).basic_auth(id, Some(secret)).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, r.json().await.unwrap_or(serde_json::Value::Null), h)
}

pub async fn token_form(t: &TestIdp, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new().post(t.url("/token")).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

pub async fn userinfo_status(t: &TestIdp, at: &str) -> u16 {
    reqwest::Client::new().get(t.url("/userinfo")).bearer_auth(at).send().await.unwrap().status().as_u16()
}

/// Undo minijinja's HTML escaping of `/`, `&`, quotes.
pub fn unescape(s: &str) -> String {
    s.replace("&#x2f;", "/").replace("&#x27;", "'").replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Payload of a JWT, unverified.
pub fn jwt_payload(t: &str) -> serde_json::Value {
    use base64::Engine;
    let p = t.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("JSON payload")
}

/// Header of a JWT, unverified.
pub fn jwt_header(t: &str) -> serde_json::Value {
    use base64::Engine;
    let h = t.split('.').next().expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h).expect("base64url")).expect("JSON header")
}

/// Verifies a JWT of the provider as a relying party does (key from the published JWKS by
/// `kid`, algorithm of that key, issuer, audience `aud`, expiry) and returns its claims.
pub async fn verify_jwt(t: &TestIdp, token: &str, aud: &str) -> serde_json::Value {
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(t.url("/jwks")).await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).expect("JWT header");
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("the kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[t.issuer.as_str()]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).expect("a valid JWT").claims
}

/// The OpenID conformance suite's Basic OP client: `portal` (client_secret_basic), no PKCE,
/// `state=st-1`, `nonce=n-1`, scope `openid profile` unless `extra` says otherwise. Logs in as
/// `username` when the login form comes; returns the query of the redirect back to the client.
pub async fn authorize_code(b: &mut Browser, t: &TestIdp, username: &str, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let page = b.get(&authorize_url(t, "portal", REDIRECT, None, extra)).await;
    let r = if is_login_page(&page) { submit_login(b, t, &page, username, PASSWORD).await } else { page };
    assert_eq!(r.status, 303, "{}", r.body);
    query_of(r.location.as_deref().unwrap())
}

/// Whether a page is the login form.
pub fn is_login_page(p: &Page) -> bool {
    p.status == 200 && p.body.contains(r#"name="password""#)
}

/// Redeems a code of `portal` (client_secret_basic); the token response, which must be 200.
pub async fn redeem(t: &TestIdp, code: &str) -> serde_json::Value {
    let (s, body, _) = token_basic(t, &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(s, 200, "{body}");
    body
}

/// GET /userinfo with a bearer token: (status, JSON body or null).
pub async fn userinfo(t: &TestIdp, at: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new().get(t.url("/userinfo")).bearer_auth(at).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}
