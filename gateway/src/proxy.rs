//! The pingora `ProxyHttp` service. Each phase is a few lines that call the plain functions of
//! the other modules; see the crate docs for the request flow.

use crate::access_log::{self, AccessRecord};
use crate::admission::{self, Admission, ListenerInfo, Refusal};
use crate::attack_log::{AttackEvent, Kind};
use crate::body_prefetch::{self, Prefetched};
use crate::certs_api::CertsApi;
use crate::error_page;
use crate::headers::{self, Forwarding, SecurityHeaders};
use crate::leaks::{self, LeakGuard};
use crate::slow_client::HeadRead;
use crate::sso::access::Identity;
use crate::state::{GatewayState, InFlight, Shared};
use crate::waf::{self, AppWaf};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use govgate_policies::{Builtin, OversizedBody, PersonalData};
use pingora_core::prelude::HttpPeer;
use pingora_core::upstreams::peer::Peer;
use pingora_core::{Error, ErrorSource, ErrorType, Result};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use pingora_timeout::fast_timeout::fast_timeout;
use std::any::Any;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The proxy behind every public listener (one copy per worker when work stealing is off).
pub struct Gateway {
    pub shared: Arc<Shared>,
    /// The listeners by the address they bound.
    pub listeners: Vec<(SocketAddr, ListenerInfo)>,
}

/// Per-request state carried between phases.
pub struct RequestCtx {
    pub request_id: String,
    started: Instant,
    listener: usize,
    /// The policy in force when the request arrived; a reload does not change it mid-request.
    state: Arc<GatewayState>,
    client_ip: Option<IpAddr>,
    peer_ip: Option<IpAddr>,
    peer_trusted: bool,
    app: Option<usize>,
    rewrite: Option<String>,
    tried: Vec<SocketAddr>,
    refused: Option<&'static str>,
    rate_limited: bool,
    body_bytes: u64,
    max_body: u64,
    body_deadline: Option<Instant>,
    prefetched: Option<Prefetched>,
    leak: Option<LeakGuard>,
    /// The WAF transaction kept for the response phases (CRS's outbound rules).
    /// (Boxed: a WAF transaction is ~1.5 KB, and pingora moves the context with each phase.)
    waf_response: Option<Box<waf::ResponseInspection>>,
    _in_flight: Option<InFlight>,
}

/// What single sign-on let through: the identity headers for the app, and who it is.
struct Passed {
    headers: Vec<(String, String)>,
    who: Option<Identity>,
}

/// Marker persisted on a keep-alive connection so the next request knows it is a reuse.
pub struct ReusedConnection;

fn new_request_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn http_status(code: u16, why: &'static str) -> Box<Error> {
    Error::explain(ErrorType::HTTPStatus(code), why)
}

impl Gateway {
    /// Which listener accepted this connection: the exact address, else the same port.
    fn listener_index(&self, session: &Session) -> usize {
        let Some(local) = session.server_addr().and_then(|a| a.as_inet()) else { return 0 };
        let local = SocketAddr::new(crate::client_ip::canonical(local.ip()), local.port());
        self.listeners
            .iter()
            .position(|(a, _)| *a == local)
            .or_else(|| self.listeners.iter().position(|(a, _)| a.port() == local.port()))
            .unwrap_or(0)
    }

    fn listener(&self, ctx: &RequestCtx) -> &ListenerInfo {
        &self.listeners[ctx.listener.min(self.listeners.len() - 1)].1
    }

    /// Writes an error page (and any extra headers) as the response.
    async fn respond(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        status: u16,
        extra: Vec<(&'static str, String)>,
        close: bool,
    ) -> Result<()> {
        let page = error_page::render(status, &ctx.request_id, &session.req_header().headers);
        let mut resp = headers::error_response(status, &page, &ctx.request_id)?;
        for (k, v) in extra {
            resp.insert_header(k, v)?;
        }
        self.security_headers(ctx).apply(&mut resp, self.listener(ctx).https)?;
        if close {
            session.set_keepalive(None);
            resp.insert_header(http::header::CONNECTION, "close")?;
        }
        session.write_response_header(Box::new(resp), false).await?;
        let body = if session.req_header().method == http::Method::HEAD { None } else { Some(Bytes::from(page.body)) };
        session.write_response_body(body, true).await
    }

    /// Reads the body ahead (up to the WAF's limit) and runs the WAF on the request. Returns
    /// whether a response was sent (the request was refused).
    async fn waf_check(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        waf: &AppWaf,
        declared: Option<u64>,
        has_body: bool,
    ) -> Result<bool> {
        let limit = waf.body_limit;
        let reject_oversized = waf.oversized == OversizedBody::Reject;
        if has_body {
            if reject_oversized && declared.is_some_and(|n| n > limit as u64) {
                ctx.refused = Some("waf_body_too_large");
                self.respond(session, ctx, 413, Vec::new(), true).await?;
                return Ok(true);
            }
            let remaining = ctx.body_deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default();
            let prefetched = match fast_timeout(remaining, body_prefetch::prefetch(session, limit, declared)).await {
                Ok(p) => p?,
                Err(_) => {
                    ctx.refused = Some("body_timeout");
                    self.shared.metrics.slow_clients.with_label_values(&["body"]).inc();
                    self.respond(session, ctx, 408, Vec::new(), true).await?;
                    return Ok(true);
                }
            };
            if reject_oversized && !prefetched.complete {
                ctx.refused = Some("waf_body_too_large");
                self.respond(session, ctx, 413, Vec::new(), true).await?;
                return Ok(true);
            }
            ctx.prefetched = Some(prefetched);
        }
        let app = ctx.app.map(|i| ctx.state.apps[i].name.as_str()).unwrap_or("-");
        let cx = waf::Context::new(&ctx.request_id, app, ctx.client_ip);
        let body = ctx.prefetched.as_ref().map(|p| p.data.clone()).unwrap_or_default();
        let complete = !has_body || ctx.prefetched.as_ref().is_some_and(|p| p.complete);
        let (verdict, rest) = waf::inspect(waf, session.req_header(), &body, complete, &cx);
        self.record_waf(app, &verdict);
        ctx.waf_response = rest;
        let Some(status) = verdict.block else { return Ok(false) };
        ctx.refused = Some("waf");
        let body_unread = has_body && !ctx.prefetched.as_ref().is_some_and(|p| p.complete);
        self.respond(session, ctx, status, Vec::new(), body_unread).await?;
        Ok(true)
    }

    /// Counts and records the attack event of a WAF verdict, if any.
    fn record_waf(&self, app: &str, verdict: &waf::Verdict) {
        if let Some(event) = &verdict.event {
            let action = if verdict.block.is_some() { "blocked" } else { "detected" };
            self.shared.metrics.waf_events.with_label_values(&[app, action]).inc();
            self.shared.attacks.record(event);
        }
    }

    /// The whole request body (what the WAF read ahead, then the rest), or `None` when a
    /// refusal (413, 408) has been sent instead.
    async fn read_body(&self, session: &mut Session, ctx: &mut RequestCtx, has_body: bool) -> Result<Option<Bytes>> {
        let mut body = BytesMut::new();
        if let Some(p) = &ctx.prefetched {
            body.extend_from_slice(&p.data);
        }
        if !has_body || ctx.prefetched.as_ref().is_some_and(|p| p.complete) {
            return Ok(Some(body.freeze()));
        }
        let remaining = ctx.body_deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default();
        let read_all = async {
            while let Some(chunk) = session.as_mut().read_request_body().await? {
                body.extend_from_slice(&chunk);
                if body.len() as u64 > ctx.max_body {
                    return Ok::<_, Box<Error>>(false);
                }
            }
            Ok(true)
        };
        let (status, reason) = match fast_timeout(remaining, read_all).await {
            Ok(Ok(true)) => return Ok(Some(body.freeze())),
            Ok(Ok(false)) => (413, "body_too_large"),
            Ok(Err(e)) => return Err(e),
            Err(_) => (408, "body_timeout"),
        };
        ctx.refused = Some(reason);
        self.respond(session, ctx, status, Vec::new(), true).await?;
        Ok(None)
    }

    /// Hands a request to the built-in identity provider and writes its answer.
    async fn serve_idp(&self, session: &mut Session, ctx: &mut RequestCtx, has_body: bool) -> Result<()> {
        let Some(idp) = &self.shared.idp else {
            return self.respond(session, ctx, 503, Vec::new(), has_body).await;
        };
        let Some(body) = self.read_body(session, ctx, has_body).await? else { return Ok(()) };
        let req = session.req_header();
        let request = govgate_idp::IdpRequest {
            method: req.method.as_str().to_string(),
            path: req.uri.path().to_string(),
            query: req.uri.query().unwrap_or("").to_string(),
            headers: req
                .headers
                .iter()
                .filter(|(k, _)| !k.as_str().starts_with(headers::RESERVED_PREFIX))
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: body.to_vec(),
            client_ip: ctx.client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            tls: self.listener(ctx).https,
            client_cert: crate::client_cert::of_connection(session).map(|c| c.for_idp()),
        };
        let head_only = req.method == http::Method::HEAD;
        let answer = idp.handle(request).await;
        if let Some(note) = &answer.security {
            tracing::info!(request_id = ctx.request_id, failure = note.what.as_str(), "failed authentication at the identity provider");
            self.record_refusal(session.req_header(), ctx, Kind::AuthFailure, answer.status, note.user.as_deref());
        }
        let mut resp = pingora_http::ResponseHeader::build(answer.status, Some(answer.headers.len() + 4))?;
        for (k, v) in &answer.headers {
            resp.append_header(k.clone(), v.as_str())?;
        }
        resp.insert_header(http::header::CONTENT_LENGTH, answer.body.len())?;
        resp.insert_header(headers::X_REQUEST_ID, ctx.request_id.as_str())?;
        self.security_headers(ctx).apply(&mut resp, self.listener(ctx).https)?;
        session.write_response_header(Box::new(resp), false).await?;
        let body = if head_only { None } else { Some(Bytes::from(answer.body)) };
        session.write_response_body(body, true).await
    }

    /// Single sign-on: the identity headers to add and who is logged in, or `None` when a
    /// response (login redirect, 401/403, a `/.govgate/*` route) has been written instead.
    async fn sso_gate(&self, session: &mut Session, ctx: &mut RequestCtx, app: usize, has_body: bool) -> Result<Option<Passed>> {
        let state = ctx.state.clone();
        // Without an issuer the gate lets everything through; say so before building its request
        // (a path copy and the boxed gate future) on every request.
        if state.policy.sso.issuer(&state.policy).is_none() {
            return Ok(Some(Passed { headers: Vec::new(), who: None }));
        }
        let req = session.req_header();
        let pq = ctx.rewrite.clone().unwrap_or_else(|| req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string());
        let path = pq.split('?').next().unwrap_or("/");
        let body = match crate::sso::routes::needs_body(path) {
            true => match self.read_body(session, ctx, has_body).await? {
                Some(b) => b,
                None => return Ok(None),
            },
            false => Bytes::new(),
        };
        let req = session.req_header();
        let sso_req = crate::sso::Request {
            method: req.method.as_str(),
            host: admission::request_host(req).unwrap_or("").to_ascii_lowercase(),
            path,
            path_and_query: &pq,
            headers: &req.headers,
            https: self.listener(ctx).https,
            request_id: &ctx.request_id,
        };
        // Boxed: inline, the single sign-on future would make every request's `request_filter`
        // future as large (async_trait allocates and copies it per request, SSO or not).
        let gate = Box::pin(self.shared.sso.gate(self.shared.idp.as_ref(), &state.policy, &state.policy.apps[app], &sso_req, &body));
        let reply = match gate.await {
            crate::sso::Gate::Continue { headers, who } => return Ok(Some(Passed { headers, who })),
            crate::sso::Gate::Reply(r) => r,
        };
        ctx.refused = reply.refused;
        if let Some(kind) = crate::sso::event_kind(&reply) {
            self.record_refusal(session.req_header(), ctx, kind, reply.status, reply.user.as_deref());
        }
        let mut resp = pingora_http::ResponseHeader::build(reply.status, Some(reply.headers.len() + 4))?;
        for (k, v) in reply.headers {
            resp.append_header(k, v)?;
        }
        resp.insert_header(http::header::CONTENT_TYPE, reply.content_type)?;
        resp.insert_header(http::header::CONTENT_LENGTH, reply.body.len())?;
        resp.insert_header(headers::X_REQUEST_ID, ctx.request_id.as_str())?;
        self.security_headers(ctx).apply(&mut resp, self.listener(ctx).https)?;
        if has_body && !crate::sso::routes::needs_body(path) {
            session.set_keepalive(None);
        }
        let head_only = session.req_header().method == http::Method::HEAD;
        session.write_response_header(Box::new(resp), false).await?;
        session.write_response_body((!head_only).then(|| Bytes::from(reply.body)), true).await?;
        Ok(None)
    }

    /// Answers a request to the security console app: single sign-on has let `who` through
    /// (the app's `access` requires the role `security`); the console decides again on that
    /// identity and the CSRF token, as for the admin listener.
    async fn serve_console(&self, session: &mut Session, ctx: &mut RequestCtx, who: Option<Identity>, has_body: bool) -> Result<()> {
        let Some(who) = who else {
            // Only a policy without an identity provider gets here; validation refuses those.
            ctx.refused = Some("console_without_sso");
            return self.respond(session, ctx, 403, Vec::new(), has_body).await;
        };
        ctx.max_body = ctx.max_body.min(crate::console::MAX_BODY as u64);
        let Some(body) = self.read_body(session, ctx, has_body).await? else { return Ok(()) };
        let req = session.req_header();
        let staff = crate::console::auth::Staff { name: who.label().to_string(), roles: who.roles };
        let sso_session = crate::console::auth::cookie(&req.headers, crate::sso::SESSION_COOKIE).map(str::to_string);
        // The normalised path, as single sign-on judged it.
        let pq = ctx.rewrite.as_deref().unwrap_or_else(|| req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        let (path, query) = pq.split_once('?').unwrap_or((pq, ""));
        let request = crate::console::ApiRequest {
            method: req.method.clone(),
            path: path.to_string(),
            query: query.to_string(),
            headers: req.headers.clone(),
            body: body.to_vec(),
            client_ip: ctx.client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            caller: crate::console::auth::Caller::SignedIn { staff, session: sso_session },
        };
        let head_only = req.method == http::Method::HEAD;
        let reply = self.shared.console.handle(&self.shared, request).await;
        if reply.status >= 400 {
            ctx.refused = Some("console");
        }
        let mut resp = pingora_http::ResponseHeader::build(reply.status, Some(reply.headers.len() + 5))?;
        resp.insert_header(http::header::CONTENT_TYPE, reply.content_type)?;
        resp.insert_header(http::header::CONTENT_LENGTH, reply.body.len())?;
        resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
        for (k, v) in reply.headers {
            if k != "cache-control" {
                resp.append_header(k, v)?;
            }
        }
        resp.insert_header(headers::X_REQUEST_ID, ctx.request_id.as_str())?;
        self.security_headers(ctx).apply(&mut resp, self.listener(ctx).https)?;
        session.write_response_header(Box::new(resp), false).await?;
        session.write_response_body((!head_only).then(|| Bytes::from(reply.body)), true).await
    }

    /// Answers a request to the built-in certificate API.
    async fn serve_certs_api(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        api: &CertsApi,
        has_body: bool,
        authorized: bool,
    ) -> Result<()> {
        let (status, mut body, extra) = if !authorized {
            ctx.refused = Some("unauthorized");
            self.record_refusal(session.req_header(), ctx, Kind::AuthFailure, 401, None);
            let body = serde_json::json!({ "error": "unauthorized", "message": "send an API key: Authorization: Bearer KEY" });
            (401, body, Some(("www-authenticate", "Bearer realm=\"govgate\"")))
        } else {
            let Some(request) = self.read_body(session, ctx, has_body).await? else { return Ok(()) };
            let req = session.req_header();
            let content_type = req.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            let r = api.handle(req.method.as_str(), req.uri.path(), content_type, &request, crate::trust::now(), &self.shared.crls).await;
            (r.status, r.body, None)
        };
        if status >= 400 {
            body["incident_id"] = serde_json::Value::String(ctx.request_id.clone());
        }
        let bytes = Bytes::from(body.to_string());
        let mut resp = pingora_http::ResponseHeader::build(status, Some(6))?;
        resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
        resp.insert_header(http::header::CONTENT_LENGTH, bytes.len())?;
        resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
        resp.insert_header(headers::X_REQUEST_ID, ctx.request_id.as_str())?;
        if let Some((k, v)) = extra {
            resp.insert_header(k, v)?;
        }
        self.security_headers(ctx).apply(&mut resp, self.listener(ctx).https)?;
        if has_body && status == 401 {
            session.set_keepalive(None);
        }
        session.write_response_header(Box::new(resp), false).await?;
        session.write_response_body(Some(bytes), true).await
    }

    fn security_headers<'a>(&self, ctx: &'a RequestCtx) -> &'a SecurityHeaders {
        match ctx.app {
            Some(i) => &ctx.state.apps[i].security_headers,
            None => &ctx.state.default_headers,
        }
    }

    /// Records a refusal that matched no WAF rule (rate limit, ban, forbidden, failed login) as an
    /// attack event. Credentials in the query and personal numbers are masked.
    fn record_refusal(&self, req: &pingora_http::RequestHeader, ctx: &RequestCtx, kind: Kind, status: u16, user: Option<&str>) {
        let app = ctx.app.map(|i| ctx.state.apps[i].name.as_str()).unwrap_or("-");
        let uri = crate::sso::redact_query(req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        let mut event = AttackEvent::refusal(kind, &ctx.request_id, ctx.client_ip, app, req.method.as_str(), &uri, status);
        event.user = user.map(|u| govgate_identity_numbers::mask_for_log(u).into_owned());
        self.shared.attacks.record(&event);
    }

    /// The client address is banned: 403 with the incident id, and a `ban` event.
    async fn refuse_banned(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.refused = Some("banned");
        self.shared.metrics.refused.with_label_values(&["banned"]).inc();
        let req = session.req_header();
        let host = admission::request_host(req).unwrap_or("");
        ctx.app = ctx.state.router.route(host, req.uri.path());
        self.record_refusal(req, ctx, Kind::Ban, 403, None);
        self.respond(session, ctx, 403, Vec::new(), true).await?;
        Ok(true)
    }

    async fn refuse(&self, session: &mut Session, ctx: &mut RequestCtx, r: Refusal) -> Result<bool> {
        ctx.refused = Some(r.reason);
        ctx.app = r.app;
        let mut extra = Vec::new();
        if let Some(d) = &r.rate_limit {
            ctx.rate_limited = true;
            let app = r.app.map(|i| ctx.state.apps[i].name.as_str()).unwrap_or("-");
            self.shared.metrics.rate_limited.with_label_values(&[app, d.scope.as_str()]).inc();
            self.record_refusal(session.req_header(), ctx, Kind::RateLimit, r.status, None);
            extra.push(("retry-after", d.retry_after_secs().to_string()));
            extra.push(("ratelimit-policy", d.policy_header()));
            extra.push(("ratelimit", d.limit_header()));
        } else {
            self.shared.metrics.refused.with_label_values(&[r.reason]).inc();
        }
        self.respond(session, ctx, r.status, extra, r.close).await?;
        Ok(true)
    }
}

fn peer_ip(session: &Session) -> IpAddr {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| crate::client_ip::canonical(a.ip()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            request_id: String::new(),
            started: Instant::now(),
            listener: 0,
            state: self.shared.state.load_full(),
            client_ip: None,
            peer_ip: None,
            peer_trusted: false,
            app: None,
            rewrite: None,
            tried: Vec::new(),
            refused: None,
            rate_limited: false,
            body_bytes: 0,
            max_body: u64::MAX,
            body_deadline: None,
            prefetched: None,
            leak: None,
            waf_response: None,
            _in_flight: None,
        }
    }

    fn on_connection_reuse(&self, _session: &mut Session, _ctx: &mut RequestCtx, prev: Box<dyn Any + Send + Sync>) {
        // The head of this request has been read: stop the slow-client head deadline.
        if let Ok(signal) = prev.downcast::<HeadRead>() {
            signal.done();
        }
    }

    fn persist_connection_context(&self, _session: &Session, _ctx: &RequestCtx) -> Option<Box<dyn Any + Send + Sync>> {
        Some(Box::new(ReusedConnection))
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let state = ctx.state.clone();
        ctx.listener = self.listener_index(session);
        let peer = peer_ip(session);
        ctx.peer_ip = Some(peer);
        ctx.peer_trusted = state.trusted.contains(peer);
        ctx.request_id = match session.req_header().headers.get(headers::X_REQUEST_ID).and_then(|v| v.to_str().ok()) {
            Some(id) if ctx.peer_trusted && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => id.to_string(),
            _ => new_request_id(),
        };
        let client_ip = if ctx.peer_trusted {
            let xff = session.req_header().headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
            state.trusted.client_ip(peer, xff)
        } else {
            peer
        };
        ctx.client_ip = Some(client_ip);

        ctx._in_flight = Some(InFlight::enter(&self.shared));
        if self.shared.events.as_ref().is_some_and(|e| e.bans.contains(client_ip)) {
            return self.refuse_banned(session, ctx).await;
        }
        let limits = &state.policy.limits;
        if self.shared.draining.load(std::sync::atomic::Ordering::Acquire) {
            session.set_keepalive(None);
        } else {
            session.set_keepalive(Some(limits.keepalive_timeout.0.as_secs()));
        }
        session.set_read_timeout(Some(limits.idle_timeout.0));

        // pingora drops Content-Length when Transfer-Encoding is present: look at the raw head.
        let raw_head = match session.req_header().headers.contains_key(http::header::TRANSFER_ENCODING) {
            true => session.as_downstream().as_http1().map(|h1| h1.get_headers_raw_bytes()),
            false => None,
        };
        match admission::admit(&state, self.listener(ctx), session.req_header(), raw_head.as_deref(), client_ip) {
            Admission::Refuse(r) => self.refuse(session, ctx, r).await,
            Admission::Redirect { location } => {
                let mut resp = pingora_http::ResponseHeader::build(308, Some(4))?;
                resp.insert_header(http::header::LOCATION, location)?;
                resp.insert_header(http::header::CONTENT_LENGTH, 0)?;
                resp.insert_header(headers::X_REQUEST_ID, ctx.request_id.as_str())?;
                session.write_response_header(Box::new(resp), true).await?;
                ctx.refused = Some("redirect_https");
                Ok(true)
            }
            Admission::Forward { app, rewrite, declared_len, has_body } => {
                ctx.app = Some(app);
                ctx.rewrite = rewrite;
                ctx.max_body = state.apps[app].max_body_bytes;
                ctx.body_deadline = Some(Instant::now() + limits.body_timeout.0);
                if let Some(waf) = &state.apps[app].waf {
                    if self.waf_check(session, ctx, waf, declared_len, has_body).await? {
                        return Ok(true);
                    }
                }
                match state.policy.apps[app].builtin {
                    Some(Builtin::CertsApi) => {
                        if let Some(api) = &state.certs_api {
                            // An API key from the policy, or (when the app's `access` asks for a
                            // login) what single sign-on lets in: an app's bearer token on its
                            // `api_paths`, or a signed-in person with the required roles.
                            let mut authorized = api.authorized(&session.req_header().headers);
                            if !authorized && !state.policy.apps[app].access.is_public() {
                                if self.sso_gate(session, ctx, app, has_body).await?.is_none() {
                                    return Ok(true);
                                }
                                authorized = true;
                            }
                            Box::pin(self.serve_certs_api(session, ctx, api, has_body, authorized)).await?;
                            return Ok(true);
                        }
                    }
                    Some(Builtin::Idp) => {
                        Box::pin(self.serve_idp(session, ctx, has_body)).await?;
                        return Ok(true);
                    }
                    Some(Builtin::Console) => {
                        if let Some(passed) = self.sso_gate(session, ctx, app, has_body).await? {
                            Box::pin(self.serve_console(session, ctx, passed.who, has_body)).await?;
                        }
                        return Ok(true);
                    }
                    None => {}
                }
                let Some(passed) = self.sso_gate(session, ctx, app, has_body).await? else { return Ok(true) };
                headers::strip_reserved(session.req_header_mut());
                crate::sso::strip_own_cookies(session.req_header_mut());
                for (k, v) in passed.headers {
                    session.req_header_mut().insert_header(k, v)?;
                }
                Ok(false)
            }
        }
    }

    async fn request_body_filter(&self, _session: &mut Session, body: &mut Option<Bytes>, _end: bool, ctx: &mut RequestCtx) -> Result<()> {
        // Body read ahead for the WAF that pingora's retry buffer could not hold goes first.
        if let Some(ahead) = ctx.prefetched.as_mut().and_then(Prefetched::take_replay) {
            *body = Some(match body.take() {
                Some(rest) => {
                    let mut joined = BytesMut::with_capacity(ahead.len() + rest.len());
                    joined.extend_from_slice(&ahead);
                    joined.extend_from_slice(&rest);
                    joined.freeze()
                }
                None => ahead,
            });
        }
        if let Some(b) = body {
            ctx.body_bytes += b.len() as u64;
            if ctx.body_bytes > ctx.max_body {
                ctx.refused = Some("body_too_large");
                return Err(http_status(413, "request body larger than the limit"));
            }
        }
        if ctx.body_deadline.is_some_and(|d| Instant::now() > d) {
            ctx.refused = Some("body_timeout");
            self.shared.metrics.slow_clients.with_label_values(&["body"]).inc();
            return Err(http_status(408, "request body arrived too slowly"));
        }
        Ok(())
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
        let (state, Some(app)) = (&ctx.state, ctx.app) else {
            return Err(http_status(500, "no app chosen"));
        };
        let app = &state.apps[app];
        let key = match ctx.client_ip {
            Some(IpAddr::V4(v4)) => v4.octets().to_vec(),
            Some(IpAddr::V6(v6)) => v6.octets().to_vec(),
            None => Vec::new(),
        };
        let Some(addr) = app.pool.select(&key, &ctx.tried) else {
            let status = if ctx.tried.is_empty() { 503 } else { 502 };
            return Err(http_status(status, "no healthy upstream"));
        };
        ctx.tried.push(addr);
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(app.connect_timeout);
        peer.options.read_timeout = Some(app.read_timeout);
        peer.options.write_timeout = Some(app.write_timeout);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        Ok(Box::new(peer))
    }

    fn fail_to_connect(&self, _session: &mut Session, peer: &HttpPeer, ctx: &mut RequestCtx, mut e: Box<Error>) -> Box<Error> {
        if let Some(app) = ctx.app {
            let app = &ctx.state.apps[app];
            self.shared.metrics.upstream_failures.with_label_values(&[app.name.as_str(), &peer.address().to_string()]).inc();
            // Nothing reached the app yet: try the next server.
            if ctx.tried.len() < app.pool.len() {
                e.set_retry(true);
            }
        }
        e
    }

    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        if let Some(app) = ctx.app {
            self.shared
                .metrics
                .upstream_failures
                .with_label_values(&[ctx.state.apps[app].name.as_str(), &peer.address().to_string()])
                .inc();
        }
        let mut e = e.more_context(format!("upstream {peer}"));
        if !session.req_header().method.is_idempotent() || session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
        } else {
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut pingora_http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(rewrite) = &ctx.rewrite {
            let uri = rewrite.parse::<http::Uri>().map_err(|_| http_status(400, "unparsable normalised path"))?;
            upstream.set_uri(uri);
        }
        let host = admission::request_host(session.req_header()).map(str::to_string);
        let f = Forwarding {
            client_ip: ctx.client_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            peer_trusted: ctx.peer_trusted,
            peer_ip: ctx.peer_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            https: self.listener(ctx).https,
            host: host.as_deref(),
            request_id: &ctx.request_id,
        };
        headers::set_forwarding(upstream, &f)
    }

    async fn response_filter(&self, session: &mut Session, resp: &mut pingora_http::ResponseHeader, ctx: &mut RequestCtx) -> Result<()> {
        if let (Some(mut inspection), Some(app)) = (ctx.waf_response.take(), ctx.app) {
            let block = if let Some(waf) = &ctx.state.apps[app].waf {
                let name = ctx.state.apps[app].name.as_str();
                let cx = waf::Context::new(&ctx.request_id, name, ctx.client_ip);
                let verdict = inspection.headers(waf, resp, session.req_header(), &cx);
                self.record_waf(name, &verdict);
                verdict.block
            } else {
                None
            };
            if let Some(status) = block {
                ctx.refused = Some("waf_response");
                return Err(http_status(status, "response refused by the WAF"));
            }
            if inspection.collecting() {
                ctx.waf_response = Some(inspection);
            }
        }
        headers::hide_upstream_identity(resp);
        self.security_headers(ctx).apply(resp, self.listener(ctx).https)?;
        resp.insert_header(headers::X_REQUEST_ID, ctx.request_id.as_str())?;
        let personal_data = ctx.app.map(|i| ctx.state.apps[i].personal_data).unwrap_or_default();
        if personal_data != PersonalData::Off && leaks::scannable(resp) {
            ctx.leak = Some(LeakGuard::new(personal_data));
        }
        Ok(())
    }

    fn response_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<Duration>> {
        // The WAF's phase 4 first (it holds the body back until it has decided), then the
        // personal-data guard on what it lets through.
        if let (Some(inspection), Some(app)) = (ctx.waf_response.as_mut(), ctx.app) {
            if let Some(waf) = &ctx.state.apps[app].waf {
                let name = ctx.state.apps[app].name.as_str();
                let cx = waf::Context::new(&ctx.request_id, name, ctx.client_ip);
                if let Some(verdict) = inspection.body(waf, body, end, session.req_header(), &cx) {
                    self.record_waf(name, &verdict);
                    ctx.waf_response = None;
                    if verdict.block.is_some() {
                        ctx.refused = Some("waf_response");
                        return Err(Error::explain(ErrorType::Custom("waf"), "response stopped: refused by the WAF"));
                    }
                }
            }
        }
        if let Some(guard) = ctx.leak.as_mut() {
            if guard.filter(body, end).is_err() {
                return Err(Error::explain(ErrorType::Custom("personal data"), "response stopped: it carries personal data"));
            }
        }
        Ok(None)
    }

    async fn fail_to_proxy(&self, session: &mut Session, e: &Error, ctx: &mut RequestCtx) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ConnectRefused | ErrorType::ConnectNoRoute | ErrorType::ConnectError => 502,
            ErrorType::ReadTimedout | ErrorType::WriteTimedout if e.esource() == &ErrorSource::Upstream => 504,
            ErrorType::ReadTimedout if e.esource() == &ErrorSource::Downstream => {
                ctx.refused = Some("client_timeout");
                self.shared.metrics.slow_clients.with_label_values(&["idle"]).inc();
                408
            }
            _ => match e.esource() {
                ErrorSource::Upstream => 502,
                ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if ctx.request_id.is_empty() {
            ctx.listener = self.listener_index(session);
        }
        if ctx.request_id.is_empty() {
            ctx.request_id = new_request_id();
        }
        if code > 0 && session.response_written().is_none() {
            if let Err(err) = self.respond(session, ctx, code, Vec::new(), true).await {
                tracing::debug!(request_id = ctx.request_id, "could not send the error page: {err}");
            }
        }
        FailToProxy { error_code: code, can_reuse_downstream: false }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map(|r| r.status.as_u16()).unwrap_or(0);
        let app = ctx.app.map(|i| ctx.state.apps[i].name.as_str()).unwrap_or("-");
        let req = session.req_header();
        if let Some(guard) = &ctx.leak {
            let uri = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            if let Some(event) = guard.event(&ctx.request_id, app, ctx.client_ip, req.method.as_str(), uri) {
                let action = serde_json::to_value(event.action).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                self.shared.metrics.waf_events.with_label_values(&[app, action.as_str()]).inc();
                self.shared.attacks.record(&event);
            }
        }
        let elapsed = ctx.started.elapsed();
        let m = &self.shared.metrics;
        m.requests.with_label_values(&[app, status_label(status)]).inc();
        m.duration.with_label_values(&[app]).observe(elapsed.as_secs_f64());
        access_log::emit(&AccessRecord {
            request_id: &ctx.request_id,
            client_ip: ctx.client_ip,
            listener: &self.listener(ctx).name,
            app,
            method: req.method.as_str(),
            host: admission::request_host(req).unwrap_or("-"),
            path: req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
            status,
            upstream: ctx.tried.last().copied(),
            duration: elapsed,
            bytes_sent: session.body_bytes_sent(),
            bytes_received: session.body_bytes_read(),
            rate_limited: ctx.rate_limited,
            refused: ctx.refused,
            error: e.map(|e| e.etype().as_str().to_string()),
        });
    }
}

/// Status codes as static label strings (no allocation per request).
fn status_label(status: u16) -> &'static str {
    const LABELS: [&str; 6] = ["0", "1xx", "2xx", "3xx", "4xx", "5xx"];
    match status {
        200 => "200",
        301 => "301",
        302 => "302",
        304 => "304",
        308 => "308",
        400 => "400",
        403 => "403",
        404 => "404",
        408 => "408",
        413 => "413",
        414 => "414",
        429 => "429",
        431 => "431",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        s => LABELS[(s / 100).min(5) as usize],
    }
}
