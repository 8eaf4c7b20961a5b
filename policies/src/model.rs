//! The gateway policy as typed data: what `policies/gateway.toml` may contain.
//! Defaults live here, next to the fields they belong to; `docs/configuration.md` explains each.

use crate::values::{ByteSize, Dur, HostPattern, PathPrefix, Rate};
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole gateway policy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub server: Server,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub admin: Admin,
    #[serde(default)]
    pub forwarding: Forwarding,
    #[serde(default)]
    pub limits: Limits,
    /// Response headers added to every response (when the app did not set them).
    #[serde(default = "default_security_headers")]
    pub security_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub rate_limit: RateLimits,
    #[serde(default)]
    pub waf: Waf,
    #[serde(default)]
    pub certs: Certs,
    #[serde(default)]
    pub idp: Idp,
    #[serde(default)]
    pub sso: crate::sso::Sso,
    #[serde(default)]
    pub attack_log: AttackLog,
    #[serde(default)]
    pub apps: Vec<App>,
    /// Directory that relative paths in this policy are resolved against (the policy file's own).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

impl Policy {
    /// Resolves a path from the policy relative to the policy file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.resolve(&self.server.data_dir)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    /// Worker threads for the proxy (0: one per core).
    pub threads: usize,
    /// Let idle worker threads steal tasks from busy ones. Off is faster on small machines.
    pub work_stealing: bool,
    /// Where generated state lives (development CA, keys, databases).
    pub data_dir: PathBuf,
    /// Idle upstream connections kept for reuse, per worker thread.
    pub upstream_keepalive_pool_size: usize,
    /// On SIGTERM: how long in-flight requests may take to finish.
    pub shutdown_timeout: Dur,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            threads: 0,
            work_stealing: false,
            data_dir: PathBuf::from("data"),
            upstream_keepalive_pool_size: 256,
            shutdown_timeout: Dur::secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    pub address: SocketAddr,
    #[serde(default)]
    pub tls: bool,
    /// Name of a TLS listener: plain-HTTP requests are answered with a redirect to it.
    #[serde(default)]
    pub redirect_to: Option<String>,
    /// Certificate login: `"optional"` asks every TLS client for a certificate (browsers offer
    /// the user's citizen certificate), which the gateway validates against `[certs] trust` and
    /// hands to the built-in identity provider. `"off"` (the default) asks for none.
    #[serde(default)]
    pub client_certs: ClientCerts,
}

/// Whether a TLS listener asks clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientCerts {
    #[default]
    Off,
    /// Asked for, never required: a client without one (or with a refused one) still gets in
    /// and may log in with a password.
    Optional,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM certificate chain, or `"auto"` for a development CA and server certificate
    /// generated into the data directory on first start.
    pub certificate: String,
    /// PEM private key, or `"auto"`.
    pub key: String,
}

impl Default for Tls {
    fn default() -> Self {
        Tls { certificate: "auto".into(), key: "auto".into() }
    }
}

impl Tls {
    pub fn is_auto(&self) -> bool {
        self.certificate == "auto" && self.key == "auto"
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Listener for `/metrics`, `/healthz`, `/readyz`, the admin API (`/api/`) and the security
    /// console (`/console`); keep it off the public network.
    pub address: Option<SocketAddr>,
    /// Argon2id hash (PHC string) of the console and admin API password on this listener (the
    /// break-glass login), made with `govgate admin-password`; without it this listener's
    /// console and `/api/` refuse every login. Staff normally log in through single sign-on on
    /// an app with `builtin = "console"`.
    pub password_argon2: Option<String>,
    /// How long a console login lasts.
    pub session_ttl: Dur,
}

impl Default for Admin {
    fn default() -> Self {
        Admin { address: Some(SocketAddr::from(([127, 0, 0, 1], 9090))), password_argon2: None, session_ttl: Dur::secs(8 * 3600) }
    }
}

/// Where attack events are kept (see docs/attack-events.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttackLog {
    /// The event store: `"sqlite"` (`data_dir/events.db`).
    pub store: EventStoreKind,
    /// Events older than this are deleted (checked hourly).
    pub retention: Dur,
    /// Events waiting to be written; when full, new events are dropped and counted
    /// (`govgate_attack_events_dropped_total`).
    pub queue: usize,
    /// A copy of every event as JSON lines for a SIEM: `"file"` (`mirror_file`), `"stdout"` or `"off"`.
    pub mirror: Mirror,
    /// The mirror file, relative to the data directory.
    pub mirror_file: PathBuf,
}

impl Default for AttackLog {
    fn default() -> Self {
        AttackLog {
            store: EventStoreKind::Sqlite,
            retention: Dur::secs(90 * 86400),
            queue: 10_000,
            mirror: Mirror::File,
            mirror_file: PathBuf::from("attack-events.jsonl"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventStoreKind {
    #[default]
    Sqlite,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mirror {
    Off,
    #[default]
    File,
    Stdout,
}

/// How the gateway learns who the client is when other proxies stand in front of it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Forwarding {
    /// Direct peers allowed to tell us the client address through `X-Forwarded-For` (and
    /// whose `X-Request-Id` we keep). Everybody else's forwarding headers are replaced.
    pub trusted_proxies: Vec<IpNet>,
}

/// Input limits that protect the gateway and the apps from oversized or slow requests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_header_bytes: ByteSize,
    pub max_header_count: usize,
    pub max_uri_bytes: ByteSize,
    pub max_body_bytes: ByteSize,
    /// The whole request head must arrive within this time (slowloris).
    pub header_timeout: Dur,
    /// The whole request body must arrive within this time (slow POST).
    pub body_timeout: Dur,
    /// Longest pause between two reads of the body.
    pub idle_timeout: Dur,
    /// How long an idle client connection is kept open between requests.
    pub keepalive_timeout: Dur,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: ByteSize(16 * 1024),
            max_header_count: 100,
            max_uri_bytes: ByteSize(8 * 1024),
            max_body_bytes: ByteSize(10 * 1024 * 1024),
            header_timeout: Dur::secs(10),
            body_timeout: Dur::secs(60),
            idle_timeout: Dur::secs(15),
            keepalive_timeout: Dur::secs(60),
        }
    }
}

pub fn default_security_headers() -> BTreeMap<String, String> {
    [
        ("strict-transport-security", "max-age=31536000; includeSubDomains"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "SAMEORIGIN"),
        ("content-security-policy", "frame-ancestors 'self'"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A rate with its burst: `{ rate = "100/s", burst = 200 }`. The burst defaults to the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub rate: Rate,
    #[serde(default)]
    pub burst: Option<u32>,
}

impl Limit {
    pub fn burst(&self) -> u32 {
        self.burst.unwrap_or(self.rate.count).max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Limit for each client IP over all apps.
    pub per_ip: Option<Limit>,
    /// Clients never rate limited (monitoring, other government networks).
    pub allowlist: Vec<IpNet>,
    /// Most client addresses tracked at once; beyond it new clients share one bucket, so an
    /// address flood cannot exhaust memory.
    pub max_tracked_clients: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits { per_ip: None, allowlist: Vec::new(), max_tracked_clients: 100_000 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancing {
    #[default]
    RoundRobin,
    Random,
    /// The same client IP goes to the same upstream while it is healthy (consistent hashing).
    IpHash,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// `"tcp"` (connect) or `"http"` (GET `path`, expect 2xx/3xx).
    #[serde(default)]
    pub kind: HealthCheckKind,
    #[serde(default = "default_health_path")]
    pub path: String,
    #[serde(default = "default_health_interval")]
    pub interval: Dur,
    /// Consecutive failures before an upstream is taken out, and successes before it returns.
    #[serde(default = "default_threshold")]
    pub threshold: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheckKind {
    #[default]
    Tcp,
    Http,
}

fn default_health_path() -> String {
    "/".into()
}
fn default_health_interval() -> Dur {
    Dur::secs(5)
}
fn default_threshold() -> usize {
    1
}

/// What the WAF does with a request its rules flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WafMode {
    /// Refuse it with 403; the app never sees it.
    Block,
    /// Let it through and record an attack event.
    Detect,
    /// Do not inspect.
    #[default]
    Off,
}

/// Attack filtering with the OWASP Core Rule Set: the defaults for every app.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Waf {
    /// The CRS directory (holding `rules/` and `crs-setup.conf.example`).
    pub rules: Option<PathBuf>,
    pub mode: WafMode,
    /// Paranoia level 1 (few false positives) to 4 (strictest).
    pub paranoia: u8,
    /// Anomaly score at which a request is refused (CRS default 5).
    pub inbound_threshold: Option<u32>,
    /// Anomaly score at which a response is refused (CRS default 4).
    pub outbound_threshold: Option<u32>,
    /// Request-body bytes read and inspected before the app is contacted (at most 64 KiB).
    pub request_body_limit: ByteSize,
    /// Larger bodies: `"partial"` inspects the first `request_body_limit` bytes and forwards
    /// the whole body; `"reject"` answers 413.
    pub oversized_body: OversizedBody,
    /// Rules removed everywhere (`SecRuleRemoveById`).
    pub remove_rules: Vec<u64>,
    /// Rules removed by tag (`SecRuleRemoveByTag`), e.g. `"attack-protocol"`.
    pub remove_tags: Vec<String>,
    /// Targets dropped from one rule on one path: `{ path = "/search", rule = 942100, target = "ARGS:q" }`.
    pub exclusions: Vec<WafExclusion>,
    /// Responses that carry resident identity numbers, mobile or bank-card numbers (a leak).
    pub personal_data: PersonalData,
}

/// What the gateway does when a response carries personal numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonalData {
    /// Do not look.
    #[default]
    Off,
    /// Record an event, change nothing.
    Detect,
    /// Mask the numbers in the response (`110105********002X`) and record an event.
    Mask,
    /// Stop the response where the first number would be sent, and record an event.
    Block,
}

impl Default for Waf {
    fn default() -> Self {
        Waf {
            rules: None,
            mode: WafMode::Off,
            paranoia: 1,
            inbound_threshold: None,
            outbound_threshold: None,
            request_body_limit: ByteSize(64 * 1024),
            oversized_body: OversizedBody::Partial,
            remove_rules: Vec::new(),
            remove_tags: Vec::new(),
            exclusions: Vec::new(),
            personal_data: PersonalData::Off,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OversizedBody {
    #[default]
    Partial,
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafExclusion {
    pub path: PathPrefix,
    pub rule: u64,
    /// A variable such as `ARGS:q` or `REQUEST_COOKIES:session`; empty removes the whole rule on that path.
    #[serde(default)]
    pub target: String,
}

/// Per-app WAF settings; anything left out comes from the global `[waf]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WafOverride {
    pub mode: Option<WafMode>,
    pub paranoia: Option<u8>,
    pub inbound_threshold: Option<u32>,
    pub outbound_threshold: Option<u32>,
    pub request_body_limit: Option<ByteSize>,
    pub oversized_body: Option<OversizedBody>,
    pub personal_data: Option<PersonalData>,
    /// Added to the global lists.
    pub remove_rules: Vec<u64>,
    pub remove_tags: Vec<String>,
    pub exclusions: Vec<WafExclusion>,
}

impl Waf {
    /// The settings in force for an app: the global section with the app's overrides.
    pub fn for_app(&self, o: &WafOverride) -> Waf {
        let mut w = self.clone();
        w.mode = o.mode.unwrap_or(w.mode);
        w.paranoia = o.paranoia.unwrap_or(w.paranoia);
        w.inbound_threshold = o.inbound_threshold.or(w.inbound_threshold);
        w.outbound_threshold = o.outbound_threshold.or(w.outbound_threshold);
        w.request_body_limit = o.request_body_limit.unwrap_or(w.request_body_limit);
        w.oversized_body = o.oversized_body.unwrap_or(w.oversized_body);
        w.personal_data = o.personal_data.unwrap_or(w.personal_data);
        w.remove_rules.extend(o.remove_rules.iter().copied());
        w.remove_tags.extend(o.remove_tags.iter().cloned());
        w.exclusions.extend(o.exclusions.iter().cloned());
        w
    }
}

/// Certificate and e-signature verification served by the gateway itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Certs {
    /// Trust anchors: a directory with `anchors/`, `intermediates/` and `crl/` (PEM).
    pub trust: PathBuf,
    /// SHA-256 (hex) of each API key allowed to call the verification API; the keys themselves
    /// are never stored (`govgate api-key` makes one).
    pub api_keys_sha256: Vec<String>,
    /// When no CRL can be had: `soft_fail` (pass with a warning), `hard_fail` (INDETERMINATE) or `off`.
    pub revocation: Revocation,
    /// CRLs missing from `trust/crl/` are fetched from the certificate's cRLDistributionPoints
    /// (`http://` only): at most this long per fetch...
    pub crl_fetch_timeout: Dur,
    /// ...and at most this large.
    pub crl_max_bytes: ByteSize,
}

impl Default for Certs {
    fn default() -> Self {
        Certs {
            trust: PathBuf::from("trust"),
            api_keys_sha256: Vec::new(),
            revocation: Revocation::SoftFail,
            crl_fetch_timeout: Dur::secs(5),
            crl_max_bytes: ByteSize(10 * 1024 * 1024),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    Off,
    #[default]
    SoftFail,
    HardFail,
}

/// The built-in OpenID Connect provider (served by an app with `builtin = "idp"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Idp {
    /// Issuer URL, e.g. `https://id.example.gov.cn`; its host must be one of the IdP app's hosts.
    pub issuer: Option<String>,
    /// The client registry (relying parties): `clients.toml` beside the policy.
    pub clients: PathBuf,
}

impl Default for Idp {
    fn default() -> Self {
        Idp { issuer: None, clients: PathBuf::from("clients.toml") }
    }
}

/// A service the gateway answers itself instead of forwarding to upstreams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// `POST …/certs/verify` and `POST …/esign/verify` (see docs/api/certs.openapi.yaml).
    CertsApi,
    /// The OpenID Connect provider (see `[idp]`).
    Idp,
    /// The security console and admin API (docs/console.md), for staff who log in through
    /// single sign-on: the app's `access` must require the role `security`.
    Console,
}

/// A limit for one path of an app, such as a login or search endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteLimit {
    pub path: PathPrefix,
    pub rate: Rate,
    #[serde(default)]
    pub burst: Option<u32>,
    /// `"ip"`: each client gets this limit; `"app"`: all clients share it.
    #[serde(default)]
    pub per: LimitKey,
}

impl RouteLimit {
    pub fn limit(&self) -> Limit {
        Limit { rate: self.rate, burst: self.burst }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKey {
    #[default]
    Ip,
    App,
}

/// One government app behind the gateway.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    pub hosts: Vec<HostPattern>,
    #[serde(default = "default_paths")]
    pub paths: Vec<PathPrefix>,
    #[serde(default)]
    pub upstreams: Vec<SocketAddr>,
    /// Served by the gateway itself (then `upstreams` stays empty).
    #[serde(default)]
    pub builtin: Option<Builtin>,
    #[serde(default)]
    pub load_balancing: Balancing,
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    #[serde(default = "default_upstream_timeout")]
    pub read_timeout: Dur,
    #[serde(default = "default_upstream_timeout")]
    pub write_timeout: Dur,
    /// Overrides `limits.max_body_bytes` for this app.
    #[serde(default)]
    pub max_body_bytes: Option<ByteSize>,
    /// One limit shared by every client of this app (protects the app's capacity).
    #[serde(default)]
    pub rate_limit: Option<Limit>,
    #[serde(default)]
    pub route_limits: Vec<RouteLimit>,
    /// Overrides of the global security headers; an empty value removes the header.
    #[serde(default)]
    pub security_headers: BTreeMap<String, String>,
    /// Overrides of the global `[waf]` settings.
    #[serde(default)]
    pub waf: WafOverride,
    /// Who may reach the app (single sign-on at the gateway): `"public"` (the default),
    /// `"login"`, or `{ acr = "cert", roles = ["staff"], real_name_level = 3 }`.
    #[serde(default)]
    pub access: crate::sso::Access,
    /// Per-path overrides of `access`: `{ path = "/apply", access = "login" }` (longest prefix wins).
    #[serde(default)]
    pub access_paths: Vec<crate::sso::PathAccess>,
    /// Path prefixes that take bearer access tokens instead of the login cookie.
    #[serde(default)]
    pub api_paths: Vec<PathPrefix>,
    /// Scopes every access token on `api_paths` must carry.
    #[serde(default)]
    pub api_scopes: Vec<String>,
    /// Identity claims forwarded to the app as `X-Govgate-Claim-*` (data minimisation: only these).
    #[serde(default)]
    pub claims: Vec<String>,
    /// The gateway's client id at the identity provider for this app (default: the app name).
    #[serde(default)]
    pub sso_client: Option<String>,
}

fn default_paths() -> Vec<PathPrefix> {
    vec![PathPrefix::root()]
}
fn default_connect_timeout() -> Dur {
    Dur::secs(3)
}
fn default_upstream_timeout() -> Dur {
    Dur::secs(30)
}
