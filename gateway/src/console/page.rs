//! The security console's files (plain HTML, CSS and JavaScript, embedded in the binary; no
//! CDN), served with a strict Content-Security-Policy. The page talks to the admin API.

use super::Reply;
use http::HeaderMap;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The page's language from `Accept-Language` (the page can switch later): `zh` or `en`.
pub fn language(headers: &HeaderMap) -> &'static str {
    let accept = headers.get(http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut best = ("zh", -1.0f32);
    for part in accept.split(',') {
        let mut it = part.split(';');
        let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
        let lang = if tag.starts_with("zh") {
            "zh"
        } else if tag.starts_with("en") {
            "en"
        } else {
            continue;
        };
        if q > best.1 {
            best = (lang, q);
        }
    }
    best.0
}

pub fn serve(path: &str, headers: &HeaderMap) -> Reply {
    let (content_type, body) = match path {
        "/console" => ("text/html; charset=utf-8", INDEX.replace("{{LANG}}", language(headers))),
        "/console/app.js" => ("text/javascript; charset=utf-8", APP_JS.to_string()),
        "/console/app.css" => ("text/css; charset=utf-8", APP_CSS.to_string()),
        _ => ("text/plain; charset=utf-8", "not found\n".to_string()),
    };
    let status = if body == "not found\n" { 404 } else { 200 };
    Reply {
        status,
        content_type,
        headers: vec![
            ("content-security-policy", CSP.into()),
            ("x-frame-options", "DENY".into()),
            ("x-content-type-options", "nosniff".into()),
            ("referrer-policy", "no-referrer".into()),
            ("cache-control", "no-store".into()),
        ],
        body: body.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_follows_accept_language() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(http::header::ACCEPT_LANGUAGE, v.parse().unwrap());
            m
        };
        assert_eq!(language(&HeaderMap::new()), "zh");
        assert_eq!(language(&h("en-US,en;q=0.9")), "en");
        assert_eq!(language(&h("zh-CN,zh;q=0.9,en;q=0.8")), "zh");
        assert_eq!(language(&h("fr, en;q=0.5, zh;q=0.4")), "en");
    }

    #[test]
    fn pages_carry_a_strict_policy() {
        let r = serve("/console", &HeaderMap::new());
        assert_eq!(r.status, 200);
        assert!(r.headers.iter().any(|(k, v)| *k == "content-security-policy" && v.contains("script-src 'self'")));
        assert!(String::from_utf8(r.body).unwrap().contains("lang=\"zh\""));
        assert_eq!(serve("/console/../secret", &HeaderMap::new()).status, 404);
    }
}
