//! Header rules: what the gateway removes from and adds to requests before an app sees them,
//! and the security headers it adds to responses.

use crate::error_page::ErrorPage;
use http::{HeaderName, HeaderValue};
use pingora_http::{RequestHeader, ResponseHeader};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Headers in this namespace carry what the gateway vouches for (identity, later issues);
/// whatever a client sends under it is removed.
pub const RESERVED_PREFIX: &str = "x-govgate-";

pub const X_REQUEST_ID: &str = "x-request-id";

/// Removes every `X-Govgate-*` header the client sent.
pub fn strip_reserved(req: &mut RequestHeader) {
    let reserved: Vec<HeaderName> = req.headers.keys().filter(|k| k.as_str().starts_with(RESERVED_PREFIX)).cloned().collect();
    for name in reserved {
        req.remove_header(&name);
    }
}

/// What the gateway knows about the request it forwards.
pub struct Forwarding<'a> {
    pub client_ip: IpAddr,
    /// The direct peer is a trusted proxy: extend its forwarding headers instead of replacing.
    pub peer_trusted: bool,
    pub peer_ip: IpAddr,
    pub https: bool,
    pub host: Option<&'a str>,
    pub request_id: &'a str,
}

/// Sets `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Real-IP` and `X-Request-Id`.
pub fn set_forwarding(req: &mut RequestHeader, f: &Forwarding<'_>) -> pingora_core::Result<()> {
    let xff = if f.peer_trusted {
        let prior: Vec<&str> = req.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
        if prior.is_empty() {
            f.peer_ip.to_string()
        } else {
            format!("{}, {}", prior.join(", "), f.peer_ip)
        }
    } else {
        f.client_ip.to_string()
    };
    req.insert_header("x-forwarded-for", xff)?;
    req.insert_header("x-real-ip", f.client_ip.to_string())?;
    if !(f.peer_trusted && req.headers.contains_key("x-forwarded-proto")) {
        req.insert_header("x-forwarded-proto", if f.https { "https" } else { "http" })?;
    }
    if !(f.peer_trusted && req.headers.contains_key("x-forwarded-host")) {
        match f.host {
            Some(h) => req.insert_header("x-forwarded-host", h)?,
            None => {
                req.remove_header("x-forwarded-host");
            }
        }
    }
    req.remove_header("forwarded");
    req.insert_header(X_REQUEST_ID, f.request_id)?;
    Ok(())
}

/// The security headers of one app: global defaults merged with the app's overrides.
#[derive(Debug, Clone, Default)]
pub struct SecurityHeaders {
    set: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    pub fn merged(global: &BTreeMap<String, String>, app: &BTreeMap<String, String>) -> Self {
        let mut all = global.clone();
        for (k, v) in app {
            all.insert(k.to_ascii_lowercase(), v.clone());
        }
        let set = all
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(k, v)| Some((HeaderName::from_bytes(k.as_bytes()).ok()?, HeaderValue::from_str(&v).ok()?)))
            .collect();
        SecurityHeaders { set }
    }

    /// Adds each header the response does not already carry; HSTS only over HTTPS.
    pub fn apply(&self, resp: &mut ResponseHeader, https: bool) -> pingora_core::Result<()> {
        for (name, value) in &self.set {
            if name == http::header::STRICT_TRANSPORT_SECURITY && !https {
                continue;
            }
            if !resp.headers.contains_key(name) {
                resp.insert_header(name.clone(), value.clone())?;
            }
        }
        Ok(())
    }
}

/// Removes headers that tell attackers what runs behind the gateway.
pub fn hide_upstream_identity(resp: &mut ResponseHeader) {
    for h in ["server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version"] {
        resp.remove_header(h);
    }
}

/// Builds the response header of an error page.
pub fn error_response(status: u16, page: &ErrorPage, request_id: &str) -> pingora_core::Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(status, Some(6))?;
    resp.insert_header(http::header::CONTENT_TYPE, page.content_type)?;
    resp.insert_header(http::header::CONTENT_LENGTH, page.body.len())?;
    resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    resp.insert_header(X_REQUEST_ID, request_id)?;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_headers_are_stripped_in_any_case() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("X-Govgate-User", "admin").unwrap();
        req.insert_header("x-GOVGATE-roles", "security").unwrap();
        req.insert_header("x-govgateway", "kept").unwrap();
        strip_reserved(&mut req);
        assert!(req.headers.get("x-govgate-user").is_none());
        assert!(req.headers.get("x-govgate-roles").is_none());
        assert_eq!(req.headers.get("x-govgateway").unwrap(), "kept");
    }

    #[test]
    fn untrusted_forwarding_headers_are_replaced() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("x-forwarded-for", "6.6.6.6").unwrap();
        req.insert_header("x-forwarded-proto", "https").unwrap();
        let ip: IpAddr = "203.0.113.5".parse().unwrap();
        let f = Forwarding { client_ip: ip, peer_trusted: false, peer_ip: ip, https: false, host: Some("a.gov.cn"), request_id: "r1" };
        set_forwarding(&mut req, &f).unwrap();
        assert_eq!(req.headers["x-forwarded-for"], "203.0.113.5");
        assert_eq!(req.headers["x-forwarded-proto"], "http");
        assert_eq!(req.headers["x-forwarded-host"], "a.gov.cn");
        assert_eq!(req.headers["x-request-id"], "r1");
    }

    #[test]
    fn trusted_proxy_chain_is_extended() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("x-forwarded-for", "198.51.100.7").unwrap();
        let f = Forwarding {
            client_ip: "198.51.100.7".parse().unwrap(),
            peer_trusted: true,
            peer_ip: "10.0.0.2".parse().unwrap(),
            https: true,
            host: None,
            request_id: "r2",
        };
        set_forwarding(&mut req, &f).unwrap();
        assert_eq!(req.headers["x-forwarded-for"], "198.51.100.7, 10.0.0.2");
        assert_eq!(req.headers["x-real-ip"], "198.51.100.7");
    }

    #[test]
    fn security_headers_merge_override_and_hsts_only_on_https() {
        let global = govgate_policies::default_security_headers();
        let app: BTreeMap<_, _> =
            [("x-frame-options".to_string(), "DENY".to_string()), ("referrer-policy".to_string(), String::new())].into();
        let sh = SecurityHeaders::merged(&global, &app);
        let mut plain = ResponseHeader::build(200, None).unwrap();
        sh.apply(&mut plain, false).unwrap();
        assert_eq!(plain.headers["x-frame-options"], "DENY");
        assert!(plain.headers.get("referrer-policy").is_none());
        assert!(plain.headers.get("strict-transport-security").is_none());
        let mut tls = ResponseHeader::build(200, None).unwrap();
        tls.insert_header("x-content-type-options", "app-set").unwrap();
        sh.apply(&mut tls, true).unwrap();
        assert!(tls.headers.get("strict-transport-security").is_some());
        assert_eq!(tls.headers["x-content-type-options"], "app-set");
    }
}
