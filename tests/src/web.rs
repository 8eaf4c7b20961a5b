//! A browser-like HTTPS client for the end-to-end tests: follows no redirects by itself, keeps
//! cookies per host (as a real browser keeps `__Host-` cookies, whose attributes it checks),
//! trusts the gateway's development CA, optionally presents a client certificate, and fills in
//! the built-in provider's login form at `id.test`; and helpers to read the pages and URLs it gets.

use crate::Gateway;
use base64::Engine;
use std::collections::HashMap;

/// The host the test policies give the built-in identity provider.
pub const IDP_HOST: &str = "id.test";

/// A browser without redirects: cookies kept per host.
pub struct Browser {
    http: reqwest::Client,
    port: u16,
    jar: HashMap<String, HashMap<String, String>>,
}

/// One answer.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub www_authenticate: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

impl Browser {
    /// A client that reaches each of `hosts` at the gateway's HTTPS listener.
    pub fn new(gw: &Gateway, hosts: &[&str]) -> Browser {
        Self::with_identity(gw, hosts, None)
    }

    /// [`Browser::new`] presenting a client certificate in TLS handshakes.
    pub fn with_identity(gw: &Gateway, hosts: &[&str], identity: Option<reqwest::Identity>) -> Browser {
        let ca = std::fs::read(gw.dir.path().join("data/tls/ca.pem")).expect("the development CA");
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("the CA is PEM"));
        if let Some(id) = identity {
            b = b.identity(id);
        }
        for h in hosts {
            b = b.resolve(h, ([127, 0, 0, 1], gw.https_port).into());
        }
        Browser { http: b.build().expect("client"), port: gw.https_port, jar: HashMap::new() }
    }

    /// The underlying client (no cookies added).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    pub fn cookie(&self, host: &str, name: &str) -> Option<String> {
        self.jar.get(host).and_then(|c| c.get(name)).cloned()
    }

    /// Sends a request with this host's cookies and keeps the cookies the answer sets.
    pub async fn send(&mut self, rb: reqwest::RequestBuilder, host: &str) -> Page {
        let cookies: Vec<String> = self.jar.get(host).map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default();
        let rb = if cookies.is_empty() { rb } else { rb.header("cookie", cookies.join("; ")) };
        let r = rb.send().await.expect("request");
        for sc in r.headers().get_all("set-cookie") {
            let sc = sc.to_str().expect("an ASCII Set-Cookie");
            if sc.starts_with("__Host-") {
                assert!(sc.contains("Secure") && sc.contains("Path=/") && !sc.contains("Domain"), "{sc}");
            }
            let (nv, attrs) = sc.split_once(';').unwrap_or((sc, ""));
            let (n, v) = nv.split_once('=').expect("name=value");
            let jar = self.jar.entry(host.to_string()).or_default();
            if attrs.contains("Max-Age=0") {
                jar.remove(n);
            } else {
                jar.insert(n.to_string(), v.to_string());
            }
        }
        let h = |k: &str| r.headers().get(k).map(|v| v.to_str().unwrap_or_default().to_string());
        let (location, www_authenticate, content_type) = (h("location"), h("www-authenticate"), h("content-type"));
        Page { status: r.status().as_u16(), location, www_authenticate, content_type, body: r.text().await.unwrap_or_default() }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let host = host_of(url);
        let rb = self.http.get(url);
        self.send(rb, &host).await
    }

    pub async fn get_with(&mut self, url: &str, headers: &[(&str, &str)]) -> Page {
        let host = host_of(url);
        let mut rb = self.http.get(url);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        self.send(rb, &host).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let host = host_of(url);
        let rb = self.http.post(url).form(form);
        self.send(rb, &host).await
    }

    /// Any request: `method`, JSON `body` (if any) and extra headers.
    pub async fn call(&mut self, method: &str, url: &str, body: Option<&serde_json::Value>, headers: &[(&str, &str)]) -> Page {
        let host = host_of(url);
        let mut rb = self.http.request(method.parse().expect("a method"), url);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        self.send(rb, &host).await
    }

    /// Follows a redirect Location relative to `host`.
    pub async fn follow(&mut self, host: &str, p: &Page) -> Page {
        let loc = p.location.clone().unwrap_or_else(|| panic!("no redirect ({}): {}", p.status, p.body));
        let url = if loc.starts_with('/') { self.url(host, &loc) } else { loc };
        self.get(&url).await
    }

    /// Submits the login form of the provider at [`IDP_HOST`].
    pub async fn log_in(&mut self, login_page: &Page, username: &str, password: &str) -> Page {
        let base = self.url(IDP_HOST, "");
        self.log_in_at(&base, login_page, username, password).await
    }

    /// Submits the login form of the provider at `base`.
    pub async fn log_in_at(&mut self, base: &str, login_page: &Page, username: &str, password: &str) -> Page {
        let f = |n: &str| hidden(&login_page.body, n);
        let (req, csrf, lang) = (f("req"), f("csrf"), f("lang"));
        let url = format!("{base}/login");
        self.post(&url, &[("req", &req), ("csrf", &csrf), ("lang", &lang), ("username", username), ("password", password)]).await
    }

    /// Opens `path` on `host` (protected), logs in at the provider as `username` and comes back:
    /// the answer of the first request after the callback.
    pub async fn sign_in(&mut self, host: &str, path: &str, username: &str, password: &str) -> Page {
        let to_idp = self.get(&self.url(host, path)).await;
        assert_eq!(to_idp.status, 302, "{} is sent to the provider: {}", path, to_idp.body);
        let auth = to_idp.location.clone().unwrap_or_default();
        assert!(auth.starts_with(&self.url(IDP_HOST, "/authorize?")), "{auth}");
        let login = self.get(&auth).await;
        assert_eq!(login.status, 200, "the provider shows its login page");
        let done = self.log_in(&login, username, password).await;
        assert_eq!(done.status, 303, "{}", done.body);
        let back = self.follow(host, &done).await;
        assert_eq!(back.status, 303, "the callback opens the session: {}", back.body);
        self.follow(host, &back).await
    }

    /// An access token for `client` (a public client whose redirect URIs include
    /// `https://CLIENT.test:PORT/cb`) through the code flow with PKCE, as that client would get it,
    /// logging in at the provider as `username` if there is no provider session yet.
    pub async fn access_token(&mut self, client: &str, username: &str, password: &str) -> String {
        let verifier = "v".repeat(50);
        let challenge = {
            use sha2::Digest;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
        };
        let redirect = self.url(&format!("{client}.test"), "/cb");
        let url = format!(
            "{}?response_type=code&client_id={client}&redirect_uri={}&scope=openid%20profile&state=s&code_challenge={challenge}&code_challenge_method=S256",
            self.url("id.test", "/authorize"),
            redirect.replace(':', "%3A").replace('/', "%2F")
        );
        let r = self.get(&url).await;
        let r = if r.status == 200 { self.log_in(&r, username, password).await } else { r };
        assert_eq!(r.status, 303, "{}", r.body);
        let code = query(r.location.as_deref().unwrap())["code"].clone();
        let token_url = self.url("id.test", "/token");
        let t = self
            .post(
                &token_url,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("client_id", client),
                    ("redirect_uri", &redirect),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
        assert_eq!(t.status, 200, "{}", t.body);
        serde_json::from_str::<serde_json::Value>(&t.body).unwrap()["access_token"].as_str().unwrap().to_string()
    }
}

/// The host of a URL.
pub fn host_of(url: &str) -> String {
    url.split("://").nth(1).unwrap_or(url).split(['/', ':']).next().unwrap_or_default().to_string()
}

/// The value of the hidden form field `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> String {
    let html = html.replace("&#x2f;", "/").replace("&quot;", "\"").replace("&amp;", "&");
    let needle = format!(r#"name="{name}" value=""#);
    let i = html.find(&needle).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + needle.len();
    html[i..].split('"').next().unwrap_or_default().to_string()
}

/// The query parameters of a URL, decoded.
pub fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), urldecode(v))).collect()
}

/// Decodes `%XX` and `+` of a form-encoded value.
pub fn urldecode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The claims of a JWT (not verified).
pub fn jwt_claims(t: &str) -> serde_json::Value {
    let p = t.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}
