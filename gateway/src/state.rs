//! The compiled policy the proxy runs on. Built from a validated [`Policy`]; a reload builds a
//! new one (keeping rate-limit and health state that did not change) and swaps it in.

use crate::attack_log::AttackSink;
use crate::certs_api::CertsApi;
use crate::client_ip::TrustedProxies;
use crate::headers::SecurityHeaders;
use crate::idp_service::IdpService;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimits;
use crate::routing::Router;
use crate::upstreams::Pool;
use crate::waf::{AppWaf, WafError};
use arc_swap::ArcSwap;
use govgate_policies::Policy;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Everything the proxy needs to know about one app.
pub struct AppRuntime {
    pub name: String,
    pub pool: Arc<Pool>,
    /// The app's WAF, when its mode is not `off`.
    pub waf: Option<Arc<AppWaf>>,
    /// What to do with personal data in the app's responses.
    pub personal_data: govgate_policies::PersonalData,
    pub security_headers: SecurityHeaders,
    pub max_body_bytes: u64,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub write_timeout: Duration,
}

pub struct GatewayState {
    pub policy: Policy,
    pub router: Router,
    pub apps: Vec<AppRuntime>,
    pub rate_limits: RateLimits,
    pub trusted: TrustedProxies,
    /// Headers for responses that belong to no app (404 for an unknown host, and so on).
    pub default_headers: SecurityHeaders,
    /// Compiled WAF engines by configuration, for reuse by the next reload.
    waf_engines: crate::waf::Engines,
    /// The certificate API, when an app serves it.
    pub certs_api: Option<Arc<CertsApi>>,
    /// `[certs] trust`, when the certificate API or certificate login needs it.
    pub trust: Option<Arc<govgate_certs::TrustStore>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("upstream addresses: {0}")]
    Upstreams(#[from] std::io::Error),
    #[error(transparent)]
    Waf(#[from] WafError),
    #[error(transparent)]
    Trust(#[from] crate::trust::TrustError),
}

impl GatewayState {
    pub fn build(policy: Policy, previous: Option<&GatewayState>) -> Result<Self, StateError> {
        let no_engines = HashMap::new();
        let crate::waf::Built { apps: wafs, engines: waf_engines } =
            crate::waf::build(&policy, previous.map(|p| &p.waf_engines).unwrap_or(&no_engines))?;
        let mut apps = Vec::with_capacity(policy.apps.len());
        for (app, waf) in policy.apps.iter().zip(wafs) {
            let old_pool = previous.and_then(|p| p.apps.iter().find(|a| a.name == app.name)).map(|a| &a.pool);
            apps.push(AppRuntime {
                name: app.name.clone(),
                pool: Pool::reuse_or_new(app, old_pool)?,
                waf,
                personal_data: policy.waf.for_app(&app.waf).personal_data,
                security_headers: SecurityHeaders::merged(&policy.security_headers, &app.security_headers),
                max_body_bytes: app.max_body_bytes.unwrap_or(policy.limits.max_body_bytes).0,
                connect_timeout: app.connect_timeout.0,
                read_timeout: app.read_timeout.0,
                write_timeout: app.write_timeout.0,
            });
        }
        let trust = if crate::trust::needed(&policy) { Some(crate::trust::load(&policy)?) } else { None };
        let serves_certs = policy.apps.iter().any(|a| a.builtin == Some(govgate_policies::Builtin::CertsApi));
        let certs_api = trust.as_ref().filter(|_| serves_certs).map(|t| Arc::new(CertsApi::new(&policy, t.clone())));
        Ok(GatewayState {
            certs_api,
            trust,
            router: Router::new(&policy.apps),
            rate_limits: RateLimits::new(&policy, previous.map(|p| &p.rate_limits)),
            trusted: TrustedProxies::new(policy.forwarding.trusted_proxies.clone()),
            default_headers: SecurityHeaders::merged(&policy.security_headers, &Default::default()),
            waf_engines,
            apps,
            policy,
        })
    }

    /// Host names the development TLS certificate must cover.
    pub fn tls_names(policy: &Policy) -> Vec<String> {
        let mut names: Vec<String> = policy.apps.iter().flat_map(|a| a.hosts.iter().map(|h| h.as_str().to_string())).collect();
        names.dedup();
        names
    }
}

/// State shared by every service of the process: the current policy, metrics, and where the
/// policy came from (for reloads).
pub struct Shared {
    pub state: ArcSwap<GatewayState>,
    pub metrics: Metrics,
    pub attacks: Box<dyn AttackSink>,
    /// The built-in identity provider, when the policy serves one (process-wide: its issuer and
    /// data take effect at start).
    pub idp: Option<IdpService>,
    /// Single sign-on at the gateway (sessions, relying party, assertion key).
    pub sso: Arc<crate::sso::SsoService>,
    pub config_path: PathBuf,
    /// Requests between `request_filter` and the end of `logging`.
    pub in_flight: AtomicUsize,
    /// Set on SIGTERM: connections are closed after their current request.
    pub draining: AtomicBool,
    /// The event store (attack events, bans), when it is open.
    pub events: Option<Arc<crate::events::service::EventService>>,
    /// The security console and admin API (served by the admin listener and by a console app).
    pub console: crate::console::Console,
    /// CRLs fetched from distribution points (certificate login and the certificate API).
    pub crls: Arc<crate::crl_fetch::CrlFetcher>,
}

impl Shared {
    pub fn new(state: GatewayState, config_path: PathBuf, attacks: Box<dyn AttackSink>) -> Self {
        let certs = &state.policy.certs;
        Shared {
            crls: Arc::new(crate::crl_fetch::CrlFetcher::new(certs.crl_fetch_timeout.0, certs.crl_max_bytes.0)),
            idp: IdpService::from_policy(&state.policy),
            sso: Arc::new(crate::sso::SsoService::from_policy(&state.policy)),
            state: ArcSwap::from_pointee(state),
            metrics: Metrics::new(),
            attacks,
            config_path,
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            events: None,
            console: Default::default(),
        }
    }

    /// Loads the policy file again and swaps it in; on any error the current policy stays.
    pub fn reload(&self) -> Result<ReloadOutcome, String> {
        let policy = govgate_policies::load(&self.config_path).map_err(|e| e.to_string())?;
        let current = self.state.load();
        let mut needs_restart = Vec::new();
        if policy.listeners != current.policy.listeners {
            needs_restart.push("listeners");
        }
        // The console password and session length are read at each login.
        if policy.admin.address != current.policy.admin.address {
            needs_restart.push("admin");
        }
        if policy.server != current.policy.server {
            needs_restart.push("server");
        }
        if policy.tls != current.policy.tls {
            needs_restart.push("tls");
        }
        if policy.attack_log != current.policy.attack_log {
            needs_restart.push("attack_log");
        }
        if (policy.certs.crl_fetch_timeout, policy.certs.crl_max_bytes)
            != (current.policy.certs.crl_fetch_timeout, current.policy.certs.crl_max_bytes)
        {
            needs_restart.push("certs.crl_fetch_timeout/crl_max_bytes");
        }
        if policy.idp.issuer != current.policy.idp.issuer {
            needs_restart.push("idp");
        }
        let next = GatewayState::build(policy, Some(&current)).map_err(|e| e.to_string())?;
        let apps = next.apps.len();
        self.state.store(Arc::new(next));
        if let Some(idp) = &self.idp {
            idp.reload_clients();
        }
        Ok(ReloadOutcome { apps, needs_restart })
    }
}

/// Counts a request as in flight for as long as it lives.
pub struct InFlight(Arc<Shared>);

impl InFlight {
    pub fn enter(shared: &Arc<Shared>) -> Self {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
pub struct ReloadOutcome {
    pub apps: usize,
    /// Sections that changed but only take effect after a restart.
    pub needs_restart: Vec<&'static str>,
}
