//! The decision taken on every request head before anything is forwarded: refuse it (and
//! why), redirect it to HTTPS, or forward it to an app. Pure: no I/O, no clock but the
//! rate limiter's.

use crate::framing;
use crate::limits;
use crate::path;
use crate::rate_limit::Denied;
use crate::routing::host_without_port;
use crate::state::GatewayState;
use pingora_http::RequestHeader;
use std::net::IpAddr;

/// What a listener is, as far as admission cares.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    pub name: String,
    pub https: bool,
    /// Port of the TLS listener that plain-HTTP requests are redirected to.
    pub redirect_to_port: Option<u16>,
}

#[derive(Debug)]
pub enum Admission {
    Forward {
        app: usize,
        /// The normalised path and query to send upstream, when it differs from the request's.
        rewrite: Option<String>,
        /// The body length from `Content-Length` (`None` when chunked or absent).
        declared_len: Option<u64>,
        /// The request has a body (a non-zero length, or chunked).
        has_body: bool,
    },
    Redirect {
        location: String,
    },
    Refuse(Refusal),
}

#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    /// A short machine-readable reason for logs and metrics.
    pub reason: &'static str,
    /// The connection cannot be reused (ambiguous framing, unread body).
    pub close: bool,
    pub app: Option<usize>,
    pub rate_limit: Option<Denied>,
}

fn refuse(status: u16, reason: &'static str, close: bool) -> Admission {
    Admission::Refuse(Refusal { status, reason, close, app: None, rate_limit: None })
}

/// The host the client asked for: the `Host` header, or the URI authority (HTTP/2).
pub fn request_host(req: &RequestHeader) -> Option<&str> {
    req.headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri.authority().map(|a| a.as_str()))
}

/// Decides what to do with a request. `raw_head` is the HTTP/1 head as received, needed to
/// see framing headers the parser already dropped; the caller passes it when the request has
/// `Transfer-Encoding` (`None` otherwise, and for HTTP/2).
pub fn admit(state: &GatewayState, listener: &ListenerInfo, req: &RequestHeader, raw_head: Option<&[u8]>, client_ip: IpAddr) -> Admission {
    let framing = match raw_head {
        Some(raw) if req.headers.contains_key(http::header::TRANSFER_ENCODING) => {
            framing::check_fields(req.version, framing::raw_fields(raw))
        }
        _ => framing::check(req.version, &req.headers),
    };
    let declared_len = match framing {
        Ok(len) => len,
        Err(_) => return refuse(400, "ambiguous_framing", true),
    };
    let has_body = declared_len.is_some_and(|n| n > 0) || req.headers.contains_key(http::header::TRANSFER_ENCODING);
    if let Err(v) = limits::check_head(req, &state.policy.limits) {
        return refuse(v.status(), "head_too_large", true);
    }
    let Some(host) = request_host(req).filter(|h| !h.is_empty()) else {
        return refuse(400, "missing_host", has_body);
    };
    let raw_path = req.uri.path();
    let normalized = match path::normalize(raw_path) {
        Ok(p) => p,
        Err(_) => return refuse(400, "bad_path", has_body),
    };
    let app = state.router.route(host, &normalized);

    if let Err(denied) = state.rate_limits.check(client_ip, app, &normalized) {
        return Admission::Refuse(Refusal { status: 429, reason: "rate_limited", close: has_body, app, rate_limit: Some(denied) });
    }
    let Some(app) = app else {
        return refuse(404, "no_app", has_body);
    };
    if let Some(port) = listener.redirect_to_port {
        let host = host_without_port(host);
        let port = if port == 443 { String::new() } else { format!(":{port}") };
        let pq = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        return Admission::Redirect { location: format!("https://{host}{port}{pq}") };
    }
    if declared_len.is_some_and(|n| n > state.apps[app].max_body_bytes) {
        return Admission::Refuse(Refusal { status: 413, reason: "body_too_large", close: true, app: Some(app), rate_limit: None });
    }
    let rewrite = match normalized {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(p) => Some(match req.uri.query() {
            Some(q) => format!("{p}?{q}"),
            None => p,
        }),
    };
    Admission::Forward { app, rewrite, declared_len, has_body }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn state(extra: &str) -> GatewayState {
        let text = format!(
            r#"
[[listeners]]
name = "http"
address = "127.0.0.1:1"
{extra}
[[apps]]
name = "shebao"
hosts = ["shebao.gov.cn"]
paths = ["/public"]
upstreams = ["127.0.0.1:2"]
max_body_bytes = 100
[[apps]]
name = "admin"
hosts = ["shebao.gov.cn"]
paths = ["/admin"]
upstreams = ["127.0.0.1:3"]
"#
        );
        GatewayState::build(govgate_policies::parse(&text, Path::new("t.toml")).unwrap(), None).unwrap()
    }

    fn plain() -> ListenerInfo {
        ListenerInfo { name: "http".into(), https: false, redirect_to_port: None }
    }

    fn req(path: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut r = RequestHeader::build("POST", path.as_bytes(), None).unwrap();
        r.insert_header("host", "shebao.gov.cn").unwrap();
        for (k, v) in headers {
            r.append_header(k.to_string(), *v).unwrap();
        }
        r
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    fn status(a: Admission) -> u16 {
        match a {
            Admission::Refuse(r) => r.status,
            Admission::Redirect { .. } => 308,
            Admission::Forward { .. } => 0,
        }
    }

    #[test]
    fn traversal_is_routed_by_the_normalised_path() {
        let s = state("");
        match admit(&s, &plain(), &req("/public/../admin/users?x=1", &[]), None, IP) {
            Admission::Forward { app, rewrite, .. } => {
                assert_eq!(s.apps[app].name, "admin");
                assert_eq!(rewrite.as_deref(), Some("/admin/users?x=1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals_have_the_right_status() {
        let s = state("");
        assert_eq!(
            status(admit(&s, &plain(), &req("/public", &[("content-length", "5"), ("transfer-encoding", "chunked")]), None, IP)),
            400
        );
        assert_eq!(status(admit(&s, &plain(), &req("/public", &[("content-length", "101")]), None, IP)), 413);
        assert_eq!(status(admit(&s, &plain(), &req("/public", &[("content-length", "100")]), None, IP)), 0);
        assert_eq!(status(admit(&s, &plain(), &req("/elsewhere", &[]), None, IP)), 404);
        assert_eq!(status(admit(&s, &plain(), &req("/../../etc/passwd", &[]), None, IP)), 400);
        let mut no_host = RequestHeader::build("GET", b"/public", None).unwrap();
        no_host.insert_header("x", "y").unwrap();
        assert_eq!(status(admit(&s, &plain(), &no_host, None, IP)), 400);
    }

    #[test]
    fn rate_limit_refusal_carries_the_denial() {
        let s = state("[rate_limit]\nper_ip = { rate = \"1/min\", burst = 1 }");
        assert_eq!(status(admit(&s, &plain(), &req("/public", &[]), None, IP)), 0);
        match admit(&s, &plain(), &req("/public", &[]), None, IP) {
            Admission::Refuse(r) => {
                assert_eq!(r.status, 429);
                assert!(r.rate_limit.is_some());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_http_redirects_only_for_known_hosts() {
        let s = state("");
        let l = ListenerInfo { name: "http".into(), https: false, redirect_to_port: Some(8443) };
        match admit(&s, &l, &req("/public/a?b=c", &[]), None, IP) {
            Admission::Redirect { location } => assert_eq!(location, "https://shebao.gov.cn:8443/public/a?b=c"),
            other => panic!("{other:?}"),
        }
        let mut evil = RequestHeader::build("GET", b"/public", None).unwrap();
        evil.insert_header("host", "evil.example").unwrap();
        assert_eq!(status(admit(&s, &l, &evil, None, IP)), 404);
    }
}
