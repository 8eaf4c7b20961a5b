//! Rate limiting with `governor`: per client IP over all apps, per app (all clients together),
//! and per app path (login, search). Keyed state is bounded: past `max_tracked_clients` new
//! clients share one overflow bucket, and idle entries are dropped by [`RateLimits::housekeeping`].

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::{DashMapStateStore, ShrinkableKeyedStateStore};
use governor::state::{InMemoryState, NotKeyed, StateStore};
use governor::{Quota, RateLimiter};
use govgate_policies::{App, Limit, LimitKey, PathPrefix, Policy};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Clients are keyed by address; IPv6 clients by their /64, which one subscriber usually owns.
pub type ClientKey = u128;

pub fn client_key(ip: IpAddr) -> ClientKey {
    match ip {
        IpAddr::V4(v4) => u32::from(v4) as u128,
        // The /64 prefix, with bit 32 set so that no IPv6 key equals an IPv4 key (< 2^32).
        IpAddr::V6(v6) => (u128::from(v6) & !0xffff_ffff_ffff_ffffu128) | (1u128 << 32),
    }
}

/// A keyed state store with a hard cap on the number of keys.
pub struct BoundedStore {
    map: DashMapStateStore<ClientKey>,
    overflow: InMemoryState,
    cap: usize,
}

impl StateStore for BoundedStore {
    type Key = ClientKey;

    fn measure_and_replace<T, F, E>(&self, key: &ClientKey, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        if self.map.len() >= self.cap && !self.map.contains_key(key) {
            return self.overflow.measure_and_replace(&NotKeyed::NonKey, f);
        }
        self.map.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<ClientKey> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        self.map.retain_recent(drop_below)
    }
    fn shrink_to_fit(&self) {
        self.map.shrink_to_fit()
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

type Keyed = RateLimiter<ClientKey, BoundedStore, DefaultClock, NoOpMiddleware>;
type Direct = RateLimiter<NotKeyed, InMemoryState, DefaultClock, NoOpMiddleware>;

/// Where a limit applies, for headers, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ip,
    App,
    Route,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ip => "per-ip",
            Scope::App => "per-app",
            Scope::Route => "per-route",
        }
    }
}

enum Bucket {
    Keyed(Keyed),
    Direct(Direct),
}

struct Limiter {
    limit: Limit,
    bucket: Bucket,
}

impl Limiter {
    fn new(limit: Limit, keyed: bool, cap: usize) -> Self {
        let quota = quota(limit);
        let clock = DefaultClock::default();
        let bucket = if keyed {
            let store = BoundedStore { map: DashMapStateStore::default(), overflow: InMemoryState::default(), cap };
            Bucket::Keyed(RateLimiter::new(quota, store, clock))
        } else {
            Bucket::Direct(RateLimiter::direct_with_clock(quota, clock))
        };
        Limiter { limit, bucket }
    }

    /// Takes one cell. The limiter's own clock is read only on a refusal: creating a clock per
    /// call would query the CPU (CPUID), which costs tens of microseconds in a virtual machine.
    fn check(&self, key: ClientKey) -> Result<(), Duration> {
        match &self.bucket {
            Bucket::Keyed(l) => l.check_key(&key).map_err(|n| n.wait_time_from(l.clock().now())),
            Bucket::Direct(l) => l.check().map_err(|n| n.wait_time_from(l.clock().now())),
        }
    }
}

fn quota(limit: Limit) -> Quota {
    let per_cell = (limit.rate.period / limit.rate.count).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(limit.burst()).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(per_cell).unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN)).allow_burst(burst)
}

/// A refused request: which limit, and when the client may try again.
#[derive(Debug, Clone, PartialEq)]
pub struct Denied {
    pub scope: Scope,
    pub limit: Limit,
    pub retry_after: Duration,
}

impl Denied {
    /// Seconds for `Retry-After` (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        (self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)).max(1)
    }

    /// `RateLimit-Policy` value (draft-ietf-httpapi-ratelimit-headers): quota and window.
    pub fn policy_header(&self) -> String {
        let window =
            (self.limit.rate.period.as_secs_f64() * f64::from(self.limit.burst()) / f64::from(self.limit.rate.count)).ceil().max(1.0);
        format!("\"{}\";q={};w={}", self.scope.as_str(), self.limit.burst(), window as u64)
    }

    /// `RateLimit` value: nothing remaining, reset after `t` seconds.
    pub fn limit_header(&self) -> String {
        format!("\"{}\";r=0;t={}", self.scope.as_str(), self.retry_after_secs())
    }
}

struct RouteLimiter {
    path: PathPrefix,
    key: LimitKey,
    limiter: Arc<Limiter>,
}

#[derive(Default)]
struct AppLimiters {
    app: Option<Arc<Limiter>>,
    routes: Vec<RouteLimiter>,
}

/// All rate limiters of one policy. Built anew on reload, keeping the state of every limiter
/// whose definition did not change.
#[derive(Default)]
pub struct RateLimits {
    allowlist: Vec<IpNet>,
    per_ip: Option<Arc<Limiter>>,
    apps: Vec<AppLimiters>,
    /// Every limiter by its definition, for reuse on reload.
    by_definition: HashMap<String, Arc<Limiter>>,
}

impl RateLimits {
    pub fn new(policy: &Policy, previous: Option<&RateLimits>) -> Self {
        let cap = policy.rate_limit.max_tracked_clients;
        let mut by_definition = HashMap::new();
        let mut get = |id: String, limit: Limit, keyed: bool| -> Arc<Limiter> {
            let def = format!("{id}|{limit:?}|{keyed}|{cap}");
            let l = previous.and_then(|p| p.by_definition.get(&def).cloned()).unwrap_or_else(|| Arc::new(Limiter::new(limit, keyed, cap)));
            by_definition.insert(def, l.clone());
            l
        };
        let per_ip = policy.rate_limit.per_ip.map(|l| get("ip".into(), l, true));
        let apps = policy
            .apps
            .iter()
            .map(|app: &App| AppLimiters {
                app: app.rate_limit.map(|l| get(format!("app|{}", app.name), l, false)),
                routes: app
                    .route_limits
                    .iter()
                    .map(|r| RouteLimiter {
                        path: r.path.clone(),
                        key: r.per,
                        limiter: get(format!("route|{}|{}", app.name, r.path.as_str()), r.limit(), r.per == LimitKey::Ip),
                    })
                    .collect(),
            })
            .collect();
        RateLimits { allowlist: policy.rate_limit.allowlist.clone(), per_ip, apps, by_definition }
    }

    /// Counts one request from `ip` to `app` (if routed) at the normalised `path`.
    pub fn check(&self, ip: IpAddr, app: Option<usize>, path: &str) -> Result<(), Denied> {
        if self.allowlist.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        let key = client_key(ip);
        let deny = |scope, l: &Limiter, retry_after| Denied { scope, limit: l.limit, retry_after };
        if let Some(l) = &self.per_ip {
            l.check(key).map_err(|d| deny(Scope::Ip, l, d))?;
        }
        let Some(app) = app.and_then(|i| self.apps.get(i)) else { return Ok(()) };
        for r in app.routes.iter().filter(|r| r.path.matches(path)) {
            let k = if r.key == LimitKey::Ip { key } else { 0 };
            r.limiter.check(k).map_err(|d| deny(Scope::Route, &r.limiter, d))?;
        }
        if let Some(l) = &app.app {
            l.check(key).map_err(|d| deny(Scope::App, l, d))?;
        }
        Ok(())
    }

    /// Drops keyed entries that are back to full capacity. Run it every few seconds.
    pub fn housekeeping(&self) {
        for l in self.by_definition.values() {
            if let Bucket::Keyed(k) = &l.bucket {
                k.retain_recent();
                k.shrink_to_fit();
            }
        }
    }

    /// Client entries held across all keyed limiters (for metrics and tests).
    pub fn tracked_clients(&self) -> usize {
        self.by_definition
            .values()
            .map(|l| match &l.bucket {
                Bucket::Keyed(k) => k.len(),
                Bucket::Direct(_) => 0,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn policy(extra: &str) -> Policy {
        let text = format!(
            r#"
[[listeners]]
name = "http"
address = "127.0.0.1:1"
[rate_limit]
{extra}
[[apps]]
name = "a"
hosts = ["a.gov.cn"]
upstreams = ["127.0.0.1:2"]
[[apps.route_limits]]
path = "/login"
rate = "2/min"
"#
        );
        govgate_policies::parse(&text, Path::new("t.toml")).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_burst_then_denied_with_headers() {
        let p = policy("per_ip = { rate = \"1/min\", burst = 3 }");
        let rl = RateLimits::new(&p, None);
        for _ in 0..3 {
            assert!(rl.check(ip("192.0.2.1"), None, "/").is_ok());
        }
        let d = rl.check(ip("192.0.2.1"), None, "/").unwrap_err();
        assert_eq!(d.scope, Scope::Ip);
        assert!((59..=60).contains(&d.retry_after_secs()), "{}", d.retry_after_secs());
        assert_eq!(d.policy_header(), "\"per-ip\";q=3;w=180");
        assert!(d.limit_header().starts_with("\"per-ip\";r=0;t="));
        // another client is unaffected
        assert!(rl.check(ip("192.0.2.2"), None, "/").is_ok());
    }

    #[test]
    fn route_limit_applies_to_its_path_only() {
        let p = policy("");
        let rl = RateLimits::new(&p, None);
        let c = ip("192.0.2.9");
        assert!(rl.check(c, Some(0), "/login").is_ok());
        assert!(rl.check(c, Some(0), "/login/step2").is_ok());
        assert_eq!(rl.check(c, Some(0), "/login").unwrap_err().scope, Scope::Route);
        for _ in 0..100 {
            assert!(rl.check(c, Some(0), "/home").is_ok());
        }
    }

    #[test]
    fn allowlist_is_never_limited() {
        let p = policy("per_ip = { rate = \"1/min\" }\nallowlist = [\"10.0.0.0/8\"]");
        let rl = RateLimits::new(&p, None);
        for _ in 0..50 {
            assert!(rl.check(ip("10.9.9.9"), None, "/").is_ok());
        }
    }

    #[test]
    fn flood_of_addresses_stays_bounded() {
        let p = policy("per_ip = { rate = \"100/s\", burst = 1000 }\nmax_tracked_clients = 1000");
        let rl = RateLimits::new(&p, None);
        for i in 0..50_000u32 {
            let _ = rl.check(IpAddr::V4(i.into()), None, "/");
        }
        assert!(rl.tracked_clients() <= 1000, "{}", rl.tracked_clients());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        assert_eq!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:3::1")));
        assert_ne!(client_key(ip("0.0.0.1")), client_key(ip("::1")));
    }

    #[test]
    fn reload_keeps_state_of_unchanged_limits() {
        let p = policy("per_ip = { rate = \"1/min\", burst = 1 }");
        let rl = RateLimits::new(&p, None);
        assert!(rl.check(ip("192.0.2.1"), None, "/").is_ok());
        let reloaded = RateLimits::new(&p, Some(&rl));
        assert!(reloaded.check(ip("192.0.2.1"), None, "/").is_err());
        let changed = RateLimits::new(&policy("per_ip = { rate = \"2/min\", burst = 1 }"), Some(&rl));
        assert!(changed.check(ip("192.0.2.1"), None, "/").is_ok());
    }
}
