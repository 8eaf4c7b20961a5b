//! Browser-side state: the SSO session cookie (`__Host-` prefixed, `Secure`, `HttpOnly`,
//! `SameSite=Lax`, a fresh random value at every login), the CSRF cookie and the CSRF form token
//! bound to it (HMAC with a server key), and cookie parsing.

use crate::crypto::{ct_eq, hmac_sha256, random_token};

pub const SESSION_COOKIE: &str = "__Host-govgate-sso";
pub const CSRF_COOKIE: &str = "__Host-govgate-csrf";

/// `Set-Cookie` value for a `__Host-` cookie (path `/`, no domain, Secure).
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> String {
    let mut s = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Some(m) = max_age {
        s.push_str(&format!("; Max-Age={m}"));
    }
    s
}

/// `Set-Cookie` that deletes a cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// Value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

/// CSRF protection: a random per-browser cookie plus a form token = HMAC(server key, cookie).
pub struct Csrf<'k> {
    pub key: &'k [u8],
}

impl Csrf<'_> {
    /// The browser's CSRF cookie, or a new one (second element: must be set).
    pub fn cookie_or_new(existing: Option<&str>) -> (String, bool) {
        match existing {
            Some(v) if v.len() >= 32 && v.len() <= 64 => (v.to_string(), false),
            _ => (random_token(), true),
        }
    }
    pub fn token(&self, cookie: &str) -> String {
        hmac_sha256(self.key, format!("csrf:{cookie}").as_bytes())
    }
    pub fn check(&self, cookie: Option<&str>, token: Option<&str>) -> bool {
        match (cookie, token) {
            (Some(c), Some(t)) if !c.is_empty() => ct_eq(self.token(c).as_bytes(), t.as_bytes()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes() {
        let c = set_cookie(SESSION_COOKIE, "abc", None);
        assert!(c.starts_with("__Host-govgate-sso=abc; Path=/; Secure; HttpOnly; SameSite=Lax"));
        assert!(!c.contains("Domain"));
        assert_eq!(cookie_value("a=1; __Host-govgate-sso=xyz; b=2", SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie_value("a=1", SESSION_COOKIE), None);
    }

    #[test]
    fn csrf_binding() {
        let csrf = Csrf { key: b"0123456789abcdef0123456789abcdef" };
        let (c, new) = Csrf::cookie_or_new(None);
        assert!(new);
        let t = csrf.token(&c);
        assert!(csrf.check(Some(&c), Some(&t)));
        assert!(!csrf.check(Some("other-cookie-value-other-cookie-value"), Some(&t)));
        assert!(!csrf.check(None, Some(&t)));
        assert!(!csrf.check(Some(&c), None));
    }
}
