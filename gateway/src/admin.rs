//! The admin listener: `/metrics` (Prometheus), `/healthz` (the process is up) and `/readyz`
//! (every app has at least one healthy upstream). Bind it to a private address.

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
        match session.req_header().uri.path() {
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
