//! The upstream servers of each app: selection by the app's load-balancing method
//! (pingora-load-balancing), active health checks, and failover to the next healthy server
//! when one cannot be reached.

use govgate_policies::{App, Balancing, HealthCheck, HealthCheckKind};
use pingora_load_balancing::health_check::{HttpHealthCheck, TcpHealthCheck};
use pingora_load_balancing::selection::{Consistent, Random, RoundRobin};
use pingora_load_balancing::{Backend, LoadBalancer};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

enum Selector {
    RoundRobin(LoadBalancer<RoundRobin>),
    Random(LoadBalancer<Random>),
    IpHash(LoadBalancer<Consistent>),
}

macro_rules! with_lb {
    ($sel:expr, $lb:ident => $body:expr) => {
        match $sel {
            Selector::RoundRobin($lb) => $body,
            Selector::Random($lb) => $body,
            Selector::IpHash($lb) => $body,
        }
    };
}

/// One app's upstream servers.
pub struct Pool {
    selector: Selector,
    addrs: Vec<SocketAddr>,
    health: Option<HealthCheck>,
    next_check: Mutex<Instant>,
    /// What the pool was built from; a reload keeps the pool (and its health) when unchanged.
    definition: String,
}

fn definition(app: &App) -> String {
    format!("{:?}|{:?}|{:?}|{:?}", app.upstreams, app.load_balancing, app.health_check, app.hosts.first())
}

impl Pool {
    pub fn new(app: &App) -> std::io::Result<Self> {
        let addrs = app.upstreams.clone();
        let mut selector = match app.load_balancing {
            Balancing::RoundRobin => Selector::RoundRobin(LoadBalancer::try_from_iter(addrs.iter().copied())?),
            Balancing::Random => Selector::Random(LoadBalancer::try_from_iter(addrs.iter().copied())?),
            Balancing::IpHash => Selector::IpHash(LoadBalancer::try_from_iter(addrs.iter().copied())?),
        };
        if let Some(hc) = &app.health_check {
            let host = app.hosts.iter().find(|h| h.wildcard_suffix().is_none()).map(|h| h.as_str()).unwrap_or("localhost");
            with_lb!(&mut selector, lb => lb.set_health_check(health_check(hc, host)));
        }
        Ok(Pool { selector, addrs, health: app.health_check.clone(), next_check: Mutex::new(Instant::now()), definition: definition(app) })
    }

    /// Reuses `previous` when it was built from the same definition.
    pub fn reuse_or_new(app: &App, previous: Option<&std::sync::Arc<Pool>>) -> std::io::Result<std::sync::Arc<Pool>> {
        match previous {
            Some(p) if p.definition == definition(app) => Ok(p.clone()),
            _ => Ok(std::sync::Arc::new(Pool::new(app)?)),
        }
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The next healthy server not in `tried`; `key` is the client address for `ip_hash`.
    pub fn select(&self, key: &[u8], tried: &[SocketAddr]) -> Option<SocketAddr> {
        let accept = |b: &Backend, healthy: bool| healthy && !b.addr.as_inet().is_some_and(|a| tried.contains(a));
        let iterations = self.addrs.len() * 4 + 4;
        let b = with_lb!(&self.selector, lb => lb.select_with(key, iterations, accept))?;
        b.addr.as_inet().copied()
    }

    /// Servers currently passing their health check (all of them when there is no check).
    pub fn healthy(&self) -> Vec<SocketAddr> {
        with_lb!(&self.selector, lb => {
            let backends = lb.backends();
            backends
                .get_backend()
                .iter()
                .filter(|b| backends.ready(b))
                .filter_map(|b| b.addr.as_inet().copied())
                .collect()
        })
    }

    /// Runs the health check when its interval has passed.
    pub async fn check_health_if_due(&self) {
        let Some(hc) = &self.health else { return };
        {
            let Ok(mut next) = self.next_check.lock() else { return };
            let now = Instant::now();
            if now < *next {
                return;
            }
            *next = now + hc.interval.0;
        }
        with_lb!(&self.selector, lb => lb.backends().run_health_check(true).await);
    }
}

fn health_check(hc: &HealthCheck, host: &str) -> Box<dyn pingora_load_balancing::health_check::HealthCheck + Send + Sync> {
    let timeout = hc.interval.0.min(Duration::from_secs(2));
    match hc.kind {
        HealthCheckKind::Tcp => {
            let mut c = TcpHealthCheck::new();
            c.consecutive_success = hc.threshold;
            c.consecutive_failure = hc.threshold;
            c.peer_template.options.connection_timeout = Some(timeout);
            c
        }
        HealthCheckKind::Http => {
            let mut c = HttpHealthCheck::new(host, false);
            c.consecutive_success = hc.threshold;
            c.consecutive_failure = hc.threshold;
            c.peer_template.options.connection_timeout = Some(timeout);
            c.peer_template.options.read_timeout = Some(timeout);
            if let Ok(req) = pingora_http::RequestHeader::build("GET", hc.path.as_bytes(), None) {
                let mut req = req;
                let _ = req.insert_header("host", host);
                let _ = req.insert_header("user-agent", "govgate-health-check");
                c.req = req;
            }
            c.validator = Some(Box::new(|resp: &pingora_http::ResponseHeader| {
                if resp.status.is_success() || resp.status.is_redirection() {
                    Ok(())
                } else {
                    pingora_core::Error::e_explain(pingora_core::ErrorType::Custom("unhealthy"), format!("status {}", resp.status))
                }
            }));
            Box::new(c)
        }
    }
}
