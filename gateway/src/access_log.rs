//! One JSON line per request, through `tracing` (target `govgate::access`). Personal data in
//! the path is masked before it is written, and so are credentials in OpenID Connect queries.

use govgate_identity_numbers::mask_for_log as mask;
use std::net::IpAddr;
use std::time::Duration;

/// What is logged about one request.
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    pub client_ip: Option<IpAddr>,
    pub listener: &'a str,
    pub app: &'a str,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub upstream: Option<std::net::SocketAddr>,
    pub duration: Duration,
    pub bytes_sent: usize,
    pub bytes_received: usize,
    pub rate_limited: bool,
    pub refused: Option<&'a str>,
    pub error: Option<String>,
}

pub fn emit(r: &AccessRecord<'_>) {
    tracing::info!(
        target: "govgate::access",
        request_id = r.request_id,
        client_ip = r.client_ip.map(|ip| ip.to_string()),
        listener = r.listener,
        app = r.app,
        method = r.method,
        host = r.host,
        path = %mask(&crate::sso::redact_query(r.path)),
        status = r.status,
        upstream = r.upstream.map(|u| u.to_string()),
        duration_ms = (r.duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        bytes_sent = r.bytes_sent,
        bytes_received = r.bytes_received,
        rate_limited = r.rate_limited,
        refused = r.refused,
        error = r.error.as_deref(),
    );
}
