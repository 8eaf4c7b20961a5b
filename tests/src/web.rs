//! A browser-like HTTPS client for the end-to-end tests: no automatic redirects, cookies kept
//! per host (as a real browser keeps `__Host-` cookies), optionally a client certificate; and
//! helpers to read the pages and URLs it gets.

use crate::Gateway;
use base64::Engine;
use std::collections::HashMap;

/// A browser without redirects: cookies kept per host (as a real one keeps `__Host-` cookies).
pub struct Browser {
    pub http: reqwest::Client,
    pub port: u16,
    jar: HashMap<String, HashMap<String, String>>,
    password: String,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub www_authenticate: Option<String>,
    pub body: String,
}

impl Browser {
    /// A browser that reaches `hosts` on the gateway's TLS port, trusts its development CA and
    /// logs in with `password`.
    pub fn new(gw: &Gateway, hosts: &[&str], password: &str) -> Browser {
        Self::with_identity(gw, hosts, password, None)
    }

    /// [`Browser::new`] presenting a client certificate in TLS handshakes.
    pub fn with_identity(gw: &Gateway, hosts: &[&str], password: &str, identity: Option<reqwest::Identity>) -> Browser {
        let ca = std::fs::read(gw.dir.path().join("data/tls/ca.pem")).expect("the development CA");
        let mut b = reqwest::Client::builder()
            .no_proxy()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap());
        if let Some(id) = identity {
            b = b.identity(id);
        }
        for h in hosts {
            b = b.resolve(h, ([127, 0, 0, 1], gw.https_port).into());
        }
        Browser { http: b.build().unwrap(), port: gw.https_port, jar: HashMap::new(), password: password.to_string() }
    }

    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.port)
    }

    pub fn cookie(&self, host: &str, name: &str) -> Option<String> {
        self.jar.get(host).and_then(|c| c.get(name)).cloned()
    }

    pub async fn send(&mut self, rb: reqwest::RequestBuilder, host: &str) -> Page {
        let cookies: Vec<String> = self.jar.get(host).map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default();
        let rb = if cookies.is_empty() { rb } else { rb.header("cookie", cookies.join("; ")) };
        let r = rb.send().await.expect("request");
        for sc in r.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            if sc.starts_with("__Host-") {
                assert!(sc.contains("Secure") && sc.contains("Path=/") && !sc.contains("Domain"), "{sc}");
            }
            let (nv, attrs) = sc.split_once(';').unwrap_or((sc, ""));
            let (n, v) = nv.split_once('=').unwrap();
            let jar = self.jar.entry(host.to_string()).or_default();
            if attrs.contains("Max-Age=0") {
                jar.remove(n);
            } else {
                jar.insert(n.to_string(), v.to_string());
            }
        }
        let h = |k: &str| r.headers().get(k).map(|v| v.to_str().unwrap().to_string());
        let (location, www_authenticate) = (h("location"), h("www-authenticate"));
        Page { status: r.status().as_u16(), location, www_authenticate, body: r.text().await.unwrap() }
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

    /// Follows a redirect Location relative to `host`.
    pub async fn follow(&mut self, host: &str, p: &Page) -> Page {
        let loc = p.location.clone().unwrap_or_else(|| panic!("no redirect ({}): {}", p.status, p.body));
        let url = if loc.starts_with('/') { self.url(host, &loc) } else { loc };
        self.get(&url).await
    }

    /// Submits the provider's login form.
    pub async fn log_in(&mut self, login_page: &Page, username: &str) -> Page {
        let base = self.url("id.test", "");
        self.log_in_at(&base, login_page, username).await
    }

    /// Submits the login form of the provider at `base`.
    pub async fn log_in_at(&mut self, base: &str, login_page: &Page, username: &str) -> Page {
        let f = |n: &str| hidden(&login_page.body, n);
        let (req, csrf, lang) = (f("req"), f("csrf"), f("lang"));
        let url = format!("{base}/login");
        let password = self.password.clone();
        self.post(&url, &[("req", &req), ("csrf", &csrf), ("lang", &lang), ("username", username), ("password", &password)]).await
    }
}

pub fn host_of(url: &str) -> String {
    url.split("://").nth(1).unwrap().split(['/', ':']).next().unwrap().to_string()
}

pub fn hidden(html: &str, name: &str) -> String {
    let html = html.replace("&#x2f;", "/").replace("&quot;", "\"").replace("&amp;", "&");
    let needle = format!(r#"name="{name}" value=""#);
    let i = html.find(&needle).unwrap_or_else(|| panic!("no hidden {name} in {html}")) + needle.len();
    html[i..].split('"').next().unwrap().to_string()
}

pub fn query(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), urldecode(v))).collect()
}

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

pub fn jwt_claims(t: &str) -> serde_json::Value {
    let p = t.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}
