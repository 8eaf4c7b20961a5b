//! The admin API (`/api/…`, JSON, docs/api/admin.openapi.yaml) and the security console
//! (`/console`): search attack events, look at one, charts' totals, bans, and marking false
//! positives (answered with the policy exclusion that would stop them). Served in two places
//! by one [`Console`] (in [`crate::state::Shared`]): by the console app behind the proxy
//! (`builtin = "console"`, staff log in through single sign-on) and by the admin listener
//! (password login, the break-glass way in). Who may call is decided in [`auth`]; the page
//! itself is in [`page`].

pub mod auth;
pub mod exclusion;
pub mod page;
pub mod query;

use crate::attack_log::{AttackEvent, Kind};
use crate::events::{now_ms, parse_network, parse_time, Ban, StoreError};
use crate::state::Shared;
use auth::{AuthError, Caller, LoginError, Sessions, Staff, COOKIE, ROLE_SECURITY};
use http::{HeaderMap, Method};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Instant;

/// Request bodies the API reads, at most.
pub const MAX_BODY: usize = 64 * 1024;

/// A request to the API or the console, as the admin listener read it.
pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub client_ip: IpAddr,
    /// Who sent it, as the listener that received it knows.
    pub caller: Caller,
}

/// The answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, v: &Value) -> Reply {
        Reply { status, content_type: "application/json", headers: Vec::new(), body: v.to_string().into_bytes() }
    }

    fn error(status: u16, error: &str, message: impl std::fmt::Display) -> Reply {
        let incident = uuid::Uuid::now_v7().simple().to_string();
        if status >= 500 {
            tracing::error!(incident_id = incident, "admin API: {message}");
        }
        Reply::json(status, &json!({ "error": error, "message": message.to_string(), "incident_id": incident }))
    }
}

/// State of the console (its sessions).
#[derive(Default)]
pub struct Console {
    pub sessions: Sessions,
}

fn store_error(e: StoreError) -> Reply {
    Reply::error(503, "store_unavailable", e)
}

fn auth_error(e: &AuthError) -> Reply {
    let mut r = Reply::error(e.status(), if e.status() == 401 { "unauthorized" } else { "forbidden" }, e);
    if e.status() == 401 {
        r.headers.push(("www-authenticate", "Bearer realm=\"govgate-admin\"".into()));
    }
    r
}

/// Records a refused call as an attack event under the reply's incident id.
fn record(shared: &Shared, req: &ApiRequest, kind: Kind, r: &Reply, user: &str) {
    let incident = serde_json::from_slice::<Value>(&r.body).ok().and_then(|v| v["incident_id"].as_str().map(str::to_string));
    let (ip, method) = (Some(req.client_ip), req.method.as_str());
    let mut event = AttackEvent::refusal(kind, &incident.unwrap_or_default(), ip, "console", method, &req.path, r.status);
    event.user = Some(user.to_string());
    shared.attacks.record(&event);
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")))
}

fn body_json(req: &ApiRequest) -> Result<Value, Reply> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    if !is_json(&req.headers) {
        return Err(Reply::error(415, "unsupported_media_type", "send Content-Type: application/json"));
    }
    serde_json::from_slice(&req.body).map_err(|e| Reply::error(400, "invalid_json", format!("the body is not JSON: {e}")))
}

impl Console {
    /// Answers one request under `/api/` or `/console`.
    pub async fn handle(&self, shared: &Shared, req: ApiRequest) -> Reply {
        let path = req.path.trim_end_matches('/');
        if path == "/console" || path.starts_with("/console/") {
            return page::serve(path, &req.headers);
        }
        let signed_in = matches!(req.caller, Caller::SignedIn { .. });
        match (&req.method, path) {
            (&Method::POST, "/api/login" | "/api/logout") if signed_in => {
                let m = format!("signed in through single sign-on: log out at {}", crate::sso::routes::LOGOUT);
                return Reply::error(404, "not_found", m);
            }
            (&Method::POST, "/api/login") => return self.login(shared, &req).await,
            (&Method::POST, "/api/logout") => {
                self.sessions.end(&req.headers);
                let mut r = Reply::json(200, &json!({ "logged_out": true }));
                r.headers.push(("set-cookie", format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")));
                return r;
            }
            _ => {}
        }
        let changes = !matches!(req.method, Method::GET | Method::HEAD);
        let staff = match self.sessions.authorize(&req.caller, &req.headers, changes, ROLE_SECURITY, Instant::now()) {
            Ok(s) => s,
            Err(e) => {
                let r = auth_error(&e);
                if let (AuthError::Role(_), Caller::SignedIn { staff, .. }) = (&e, &req.caller) {
                    record(shared, &req, Kind::Forbidden, &r, &staff.name);
                }
                return r;
            }
        };
        let Some(events) = &shared.events else { return Reply::error(503, "store_unavailable", "the event store is not open") };
        let segments: Vec<&str> = path.trim_start_matches("/api/").split('/').collect();
        match (&req.method, segments.as_slice()) {
            (&Method::GET, ["session"]) => {
                let csrf = self.sessions.csrf(&req.caller, &req.headers, Instant::now());
                let (login, logout) = match signed_in {
                    true => ("sso", Some(crate::sso::routes::LOGOUT)),
                    false => ("password", None),
                };
                if signed_in {
                    tracing::info!(client_ip = %req.client_ip, user = staff.name, "console opened through single sign-on");
                }
                Reply::json(200, &json!({ "user": staff.name, "roles": staff.roles, "csrf": csrf, "login": login, "logout": logout }))
            }
            (&Method::GET, ["events"]) => match query::event_query(&req.query, now_ms(), &[]) {
                Ok(q) => match events.call(move |s| async move { s.query(&q).await }).await {
                    Ok(page) => Reply::json(200, &json!(page)),
                    Err(e) => store_error(e),
                },
                Err(e) => Reply::error(400, "invalid_parameter", e),
            },
            (&Method::GET, ["events", id]) => {
                let id = id.to_string();
                match events.call(move |s| async move { s.get(&id).await }).await {
                    Ok(list) if list.is_empty() => Reply::error(404, "not_found", "no event has this incident id"),
                    Ok(list) => Reply::json(200, &json!({ "incident_id": list[0].event.incident_id, "events": list })),
                    Err(e) => store_error(e),
                }
            }
            (&Method::POST, ["events", id, "false-positive"]) => self.false_positive(events, id, &req).await,
            (&Method::GET, ["aggregates"]) => {
                let top = query::pairs(&req.query).into_iter().find(|(k, _)| k == "top").map(|(_, v)| v.parse::<u32>());
                let top = match top {
                    None => 10,
                    Some(Ok(n)) if (1..=100).contains(&n) => n,
                    Some(_) => return Reply::error(400, "invalid_parameter", "parameter `top`: expected 1 to 100"),
                };
                match query::event_query(&req.query, now_ms(), &["top"]) {
                    Ok(q) => match events.call(move |s| async move { s.aggregates(&q, top).await }).await {
                        Ok(a) => Reply::json(200, &json!(a)),
                        Err(e) => store_error(e),
                    },
                    Err(e) => Reply::error(400, "invalid_parameter", e),
                }
            }
            (&Method::GET, ["bans"]) => match events.call(|s| async move { s.bans(now_ms()).await }).await {
                Ok(list) => Reply::json(200, &json!({ "bans": list })),
                Err(e) => store_error(e),
            },
            (&Method::POST, ["bans"]) => self.ban(events, &staff, &req).await,
            (&Method::DELETE, ["bans"]) => {
                let network = query::pairs(&req.query).into_iter().find(|(k, _)| k == "network").and_then(|(_, v)| parse_network(&v));
                let Some(network) = network else {
                    return Reply::error(400, "invalid_parameter", "parameter `network`: expected an IP address or CIDR network");
                };
                match events.unban(network).await {
                    Ok(true) => {
                        tracing::info!(network = %network, by = staff.name, "unbanned");
                        Reply::json(200, &json!({ "unbanned": network }))
                    }
                    Ok(false) => Reply::error(404, "not_found", format!("{network} is not banned")),
                    Err(e) => store_error(e),
                }
            }
            _ => Reply::error(404, "not_found", format!("no such API call: {} {path}", req.method)),
        }
    }

    async fn login(&self, shared: &Shared, req: &ApiRequest) -> Reply {
        let body = match body_json(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(password) = body.get("password").and_then(Value::as_str).map(str::to_string) else {
            return Reply::error(400, "invalid_request", "send {\"password\": \"…\"} as application/json");
        };
        let now = Instant::now();
        if let Some(wait) = self.sessions.locked_for(req.client_ip, now) {
            return self.login_refused(shared, req, LoginError::Locked(wait));
        }
        let (hash, ttl) = {
            let state = shared.state.load();
            (state.policy.admin.password_argon2.clone(), state.policy.admin.session_ttl.0)
        };
        let verdict = match hash {
            None => Err(LoginError::NotConfigured),
            Some(hash) => Ok(tokio::task::spawn_blocking(move || auth::verify_password(&hash, &password)).await.unwrap_or(false)),
        };
        match self.sessions.login_result(req.client_ip, verdict, ttl, Instant::now()) {
            Ok(s) => {
                tracing::info!(client_ip = %req.client_ip, "console login");
                let mut r =
                    Reply::json(200, &json!({ "token": s.token, "csrf": s.csrf, "expires_in": s.ttl.as_secs(), "roles": [ROLE_SECURITY] }));
                r.headers
                    .push(("set-cookie", format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", s.token, s.ttl.as_secs())));
                r
            }
            Err(e) => self.login_refused(shared, req, e),
        }
    }

    fn login_refused(&self, shared: &Shared, req: &ApiRequest, e: LoginError) -> Reply {
        let mut r = match &e {
            LoginError::NotConfigured => Reply::error(503, "not_configured", &e),
            LoginError::Wrong => Reply::error(401, "invalid_credentials", &e),
            LoginError::Locked(wait) => {
                let mut r = Reply::error(429, "locked_out", &e);
                r.headers.push(("retry-after", wait.to_string()));
                r
            }
        };
        if !matches!(e, LoginError::NotConfigured) {
            record(shared, req, Kind::AuthFailure, &r, "admin");
        }
        r.headers.push(("cache-control", "no-store".into()));
        r
    }

    async fn ban(&self, events: &crate::events::service::EventService, staff: &Staff, req: &ApiRequest) -> Reply {
        let body = match body_json(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(network) = body.get("network").and_then(Value::as_str).and_then(parse_network) else {
            return Reply::error(
                400,
                "invalid_request",
                "`network`: expected an IP address or CIDR network, e.g. \"203.0.113.7\" or \"203.0.113.0/24\"",
            );
        };
        if network.prefix_len() < if network.addr().is_ipv4() { 8 } else { 16 } {
            return Reply::error(400, "invalid_request", "`network`: too wide (at most a /8 for IPv4, a /16 for IPv6)");
        }
        let now = now_ms();
        let expires_ms = match (body.get("expires_in").and_then(Value::as_str), body.get("expires").and_then(Value::as_str)) {
            (Some(d), _) => match humantime::parse_duration(d) {
                Ok(d) if !d.is_zero() => Some(now + d.as_millis() as i64),
                _ => return Reply::error(400, "invalid_request", "`expires_in`: expected a duration such as \"30m\", \"1h\" or \"7d\""),
            },
            (None, Some(t)) => match parse_time(t, now).filter(|&t| t > now) {
                Some(t) => Some(t),
                None => return Reply::error(400, "invalid_request", "`expires`: expected a future RFC 3339 time"),
            },
            (None, None) => None,
        };
        let reason: String = body.get("reason").and_then(Value::as_str).unwrap_or("").chars().take(500).collect();
        let ban = Ban { network, expires_ms, reason, created_ms: now, created_by: staff.name.clone() };
        match events.ban(ban.clone()).await {
            Ok(()) => {
                tracing::info!(network = %network, by = staff.name, "banned");
                Reply::json(201, &json!(ban))
            }
            Err(e) => store_error(e),
        }
    }

    async fn false_positive(&self, events: &crate::events::service::EventService, id: &str, req: &ApiRequest) -> Reply {
        let body = match body_json(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let value = body.get("false_positive").and_then(Value::as_bool).unwrap_or(true);
        let id = id.to_string();
        let result = events
            .call(move |s| async move {
                let n = s.mark_false_positive(&id, value).await?;
                Ok((n, s.get(&id).await?))
            })
            .await;
        match result {
            Ok((0, _)) => Reply::error(404, "not_found", "no event has this incident id"),
            Ok((n, list)) => {
                let snippet = list.iter().find_map(|e| exclusion::snippet(&e.event));
                Reply::json(200, &json!({ "marked": n, "false_positive": value, "exclusion": snippet }))
            }
            Err(e) => store_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every API route is in the OpenAPI document.
    #[test]
    fn the_openapi_document_lists_every_route() {
        let doc = include_str!("../../../docs/api/admin.openapi.yaml");
        for path in [
            "/api/login:",
            "/api/logout:",
            "/api/session:",
            "/api/events:",
            "/api/events/{incident_id}:",
            "/api/events/{incident_id}/false-positive:",
            "/api/aggregates:",
            "/api/bans:",
        ] {
            assert!(doc.contains(&format!("  {path}\n")), "{path} is not documented");
        }
        for method in ["    get:", "    post:", "    delete:"] {
            assert!(doc.contains(method));
        }
    }
}
