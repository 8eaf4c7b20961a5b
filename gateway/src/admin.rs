//! The admin listener: `/metrics` (Prometheus), `/healthz` (the process is up), `/readyz`
//! (every app has at least one healthy upstream), and the admin API (`/api/`) and security
//! console (`/console`) of [`crate::console`]. Bind it to a private address.

use crate::state::Shared;
use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::sync::Arc;

pub struct AdminApp {
    pub shared: Arc<Shared>,
}

fn respond(status: u16, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(body)
        .unwrap_or_default()
}

impl AdminApp {
    /// Reads the request (body up to [`crate::console::MAX_BODY`]) and hands it to the console.
    async fn console(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            match session.read_request_body().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= crate::console::MAX_BODY => body.extend_from_slice(&chunk),
                Ok(Some(_)) => {
                    return respond(413, "application/json", br#"{"error":"payload_too_large","message":"at most 64 KiB"}"#.to_vec())
                }
                Ok(None) => break,
                Err(_) => return respond(400, "application/json", br#"{"error":"invalid_request","message":"unreadable body"}"#.to_vec()),
            }
        }
        let req = session.req_header();
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| crate::client_ip::canonical(a.ip()))
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let request = crate::console::ApiRequest {
            method: req.method.clone(),
            path: req.uri.path().to_string(),
            query: req.uri.query().unwrap_or("").to_string(),
            headers: req.headers.clone(),
            body,
            client_ip,
            caller: crate::console::auth::Caller::AdminListener,
        };
        let reply = self.shared.console.handle(&self.shared, request).await;
        let mut b = Response::builder()
            .status(reply.status)
            .header(http::header::CONTENT_TYPE, reply.content_type)
            .header(http::header::CONTENT_LENGTH, reply.body.len())
            .header(http::header::CACHE_CONTROL, "no-store");
        for (k, v) in reply.headers {
            if k != "cache-control" {
                b = b.header(k, v);
            }
        }
        b.body(reply.body).unwrap_or_default()
    }
}

/// Readiness as JSON: each app with its healthy upstreams.
pub fn readiness(shared: &Shared) -> (bool, serde_json::Value) {
    let state = shared.state.load();
    let mut ready = true;
    let apps: Vec<_> = state
        .apps
        .iter()
        .map(|a| {
            let healthy = a.pool.healthy();
            ready &= !healthy.is_empty();
            serde_json::json!({ "app": a.name, "healthy_upstreams": healthy.iter().map(|h| h.to_string()).collect::<Vec<_>>() })
        })
        .collect();
    (ready, serde_json::json!({ "ready": ready, "apps": apps }))
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path();
        if path.starts_with("/api/") || path == "/console" || path.starts_with("/console/") {
            return self.console(session).await;
        }
        match path {
            "/metrics" => {
                let state = self.shared.state.load();
                self.shared.metrics.tracked_clients.set(state.rate_limits.tracked_clients() as i64);
                if let Some(events) = &self.shared.events {
                    self.shared.metrics.observe_event_queue(&events.queue);
                }
                respond(200, "text/plain; version=0.0.4", self.shared.metrics.render())
            }
            "/healthz" => respond(200, "text/plain", b"ok\n".to_vec()),
            "/readyz" => {
                let (ready, body) = readiness(&self.shared);
                respond(if ready { 200 } else { 503 }, "application/json", body.to_string().into_bytes())
            }
            _ => respond(404, "text/plain", b"not found: try /metrics, /healthz or /readyz\n".to_vec()),
        }
    }
}
