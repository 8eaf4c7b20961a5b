//! The event store: where attack events ([`AttackEvent`]) and bans are kept for the security
//! console, the admin API and `govgate logs`. [`EventStore`] is the interface (SQLite today in
//! [`sqlite`], PostgreSQL later: nothing in it is SQLite-specific); [`queue`] batches writes off
//! the request path; [`service`] runs the store on its own runtime next to pingora's.

pub mod bans;
pub mod queue;
pub mod service;
pub mod sqlite;

use crate::attack_log::{Action, AttackEvent, Kind};
use async_trait::async_trait;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("event store: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("event store: a stored event is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("event store: {0}")]
    Unavailable(String),
}

/// A search over stored events. Every field narrows the result; all empty = every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// From this time on (Unix milliseconds, inclusive).
    pub from_ms: Option<i64>,
    /// Before this time (Unix milliseconds, exclusive).
    pub to_ms: Option<i64>,
    /// Client address inside this network (a single address is a /32 or /128).
    pub ip: Option<IpNet>,
    pub app: Option<String>,
    pub rule: Option<u64>,
    pub tag: Option<String>,
    pub action: Option<Action>,
    pub kind: Option<Kind>,
    /// Free text, searched in the URI, app, client address, incident id, user and rule messages.
    pub text: Option<String>,
    /// Page size (at most [`MAX_PAGE`]); 0 means the default of 50.
    pub limit: u32,
    pub offset: u32,
}

pub const MAX_PAGE: u32 = 500;

impl EventQuery {
    pub fn page_size(&self) -> u32 {
        match self.limit {
            0 => 50,
            n => n.min(MAX_PAGE),
        }
    }
}

/// One stored event with what the console added to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    #[serde(flatten)]
    pub event: AttackEvent,
    /// Marked as a false positive by security staff.
    pub false_positive: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// Events matching the query (all pages).
    pub total: u64,
    /// Newest first.
    pub events: Vec<StoredEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Count<K> {
    pub key: K,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleCount {
    pub rule: u64,
    pub message: String,
    pub count: u64,
}

/// Totals for the console's charts (over the events a query matches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregates {
    pub total: u64,
    /// Events per hour: the key is the hour's start, Unix seconds; oldest first.
    pub per_hour: Vec<Count<i64>>,
    pub top_ips: Vec<Count<String>>,
    /// Top matched rules, without CRS's anomaly-evaluation rules (949110 …).
    pub top_rules: Vec<RuleCount>,
    pub top_apps: Vec<Count<String>>,
}

/// A banned address or network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    pub network: IpNet,
    /// Unix milliseconds; `None`: until unbanned.
    pub expires_ms: Option<i64>,
    pub reason: String,
    pub created_ms: i64,
    pub created_by: String,
}

/// Where events and bans are kept. Implementations are shared by every instance of a
/// deployment (bans made through one instance reach all).
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores a batch of events (one transaction).
    async fn insert(&self, events: &[AttackEvent]) -> Result<(), StoreError>;
    async fn query(&self, q: &EventQuery) -> Result<Page, StoreError>;
    async fn get(&self, incident_id: &str) -> Result<Vec<StoredEvent>, StoreError>;
    /// `limit` entries in each top list.
    async fn aggregates(&self, q: &EventQuery, limit: u32) -> Result<Aggregates, StoreError>;
    /// Marks the events of an incident; returns how many there were.
    async fn mark_false_positive(&self, incident_id: &str, value: bool) -> Result<u64, StoreError>;
    /// Deletes events older than `before_ms`; returns how many.
    async fn purge(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// Bans in force at `now_ms`.
    async fn bans(&self, now_ms: i64) -> Result<Vec<Ban>, StoreError>;
    /// Adds a ban or replaces the one on the same network.
    async fn ban(&self, ban: &Ban) -> Result<(), StoreError>;
    /// Returns whether there was such a ban.
    async fn unban(&self, network: &IpNet) -> Result<bool, StoreError>;
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// An address as a 128-bit number (IPv4 mapped into IPv6), so both families sort together.
pub fn ip_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u128::from(v4.to_ipv6_mapped()),
            None => u128::from(v6),
        },
    }
}

/// The first and last address of a network as [`ip_key`]s.
pub fn net_range(net: &IpNet) -> (u128, u128) {
    (ip_key(net.network()), ip_key(net.broadcast()))
}

/// An [`ip_key`] as 32 hex digits: text that sorts like the number, in any database.
pub fn key_hex(k: u128) -> String {
    format!("{k:032x}")
}

/// Parses an address or network (`203.0.113.7`, `203.0.113.0/24`, `2001:db8::/32`); the host
/// bits of a network are cleared.
pub fn parse_network(s: &str) -> Option<IpNet> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(IpNet::from(ip));
    }
    s.parse::<IpNet>().ok().map(|n| n.trunc())
}

/// Parses a time for a query: RFC 3339 (`2026-11-23T01:00:00Z`), a date (`2026-11-23`, UTC
/// midnight), or an age (`15m`, `2h`, `7d`: that long before `now_ms`).
pub fn parse_time(s: &str, now_ms: i64) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_millis() as i64);
    }
    if s.len() == 10 {
        if let Ok(t) = humantime::parse_rfc3339_weak(&format!("{s} 00:00:00")) {
            return t.duration_since(std::time::UNIX_EPOCH).ok().map(|d| d.as_millis() as i64);
        }
    }
    humantime::parse_duration(s).ok().map(|d| now_ms - d.as_millis() as i64)
}

/// Unix milliseconds of an event's RFC 3339 `time` (0 when unreadable).
pub fn time_ms(time: &str) -> i64 {
    humantime::parse_rfc3339_weak(time.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 (UTC, seconds).
pub fn format_ms(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_and_mapped_ipv6_have_one_key() {
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        let (lo, hi) = net_range(&parse_network("203.0.113.9/24").unwrap());
        assert!(lo <= ip_key(a) && ip_key(a) <= hi);
        assert!(ip_key("203.0.114.1".parse().unwrap()) > hi);
        assert!(key_hex(lo) < key_hex(ip_key(a)) && key_hex(ip_key(a)) < key_hex(hi));
    }

    #[test]
    fn networks_parse_and_drop_host_bits() {
        assert_eq!(parse_network("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_network(" 2001:db8::1 ").unwrap().to_string(), "2001:db8::1/128");
        assert_eq!(parse_network("10.0.0.0/33"), None);
        assert_eq!(parse_network("evil'--"), None);
    }

    #[test]
    fn times_parse_as_rfc3339_dates_or_ages() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("2023-11-14T22:13:20Z", now), Some(now));
        assert_eq!(parse_time("1970-01-02", now), Some(86_400_000));
        assert_eq!(parse_time("2h", now), Some(now - 7_200_000));
        assert_eq!(parse_time("yesterday-ish", now), None);
        assert_eq!(time_ms("2023-11-14T22:13:20.500Z"), now + 500);
        assert_eq!(format_ms(now), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn page_size_is_bounded() {
        let mut q = EventQuery::default();
        assert_eq!(q.page_size(), 50);
        q.limit = 100_000;
        assert_eq!(q.page_size(), MAX_PAGE);
    }
}
