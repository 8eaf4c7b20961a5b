//! Attack events: one record for everything the gateway refuses or flags (WAF matches, rate-limit
//! refusals, bans, forbidden access, authentication failures, personal data in responses), with
//! a stable schema (docs/attack-events.md), handed to an [`AttackSink`]. [`JsonLinesSink`] writes
//! JSON lines (the SIEM mirror); the event store (`crate::events`) keeps them for the console.

use serde::Serialize;
use std::net::IpAddr;
use std::path::Path;

/// Schema version of [`AttackEvent`]; bump it when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 2;

/// One rule that matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RuleMatch {
    pub id: u64,
    pub message: String,
    pub tags: Vec<String>,
    pub severity: Option<u8>,
    /// The variable that matched, e.g. `ARGS:id`.
    pub variable: String,
    /// An excerpt of the matched data (personal data masked).
    pub data: String,
}

/// What the gateway did about the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refused (403 or the rule's status); the app never saw it.
    Blocked,
    /// Let through because the app's WAF mode is `detect`.
    Detected,
    /// Personal data in a response was masked.
    Masked,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Blocked, Action::Detected, Action::Masked];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Blocked => "blocked",
            Action::Detected => "detected",
            Action::Masked => "masked",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What kind of event this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// WAF rules matched the request.
    Waf,
    /// A rate limit refused the request (429).
    RateLimit,
    /// The client address is banned.
    Ban,
    /// Access refused by policy (403 outside the WAF).
    Forbidden,
    /// A failed login (or a lockout after too many).
    AuthFailure,
    /// A response carried personal data.
    PersonalData,
}

impl Kind {
    pub const ALL: [Kind; 6] = [Kind::Waf, Kind::RateLimit, Kind::Ban, Kind::Forbidden, Kind::AuthFailure, Kind::PersonalData];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Waf => "waf",
            Kind::RateLimit => "rate_limit",
            Kind::Ban => "ban",
            Kind::Forbidden => "forbidden",
            Kind::AuthFailure => "auth_failure",
            Kind::PersonalData => "personal_data",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Personal numbers found in a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PersonalDataCounts {
    pub resident_ids: u32,
    pub mobiles: u32,
    pub bank_cards: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AttackEvent {
    pub schema: u32,
    pub kind: Kind,
    /// The request id, shown to the client as the incident id.
    pub incident_id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub client_ip: Option<IpAddr>,
    /// The signed-in user, when the gateway knows one (never a password).
    #[serde(default)]
    pub user: Option<String>,
    pub app: String,
    pub method: String,
    /// As the client sent it, with identity-card and mobile numbers masked.
    pub uri: String,
    pub rules: Vec<RuleMatch>,
    pub anomaly_score: i64,
    pub action: Action,
    /// The status answered when blocked.
    pub status: Option<u16>,
    /// For a response that carried personal data: how many of each kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal_data: Option<PersonalDataCounts>,
}

impl AttackEvent {
    /// An event without rule matches (rate limit, ban, forbidden, login failure); the other
    /// kinds start from it and add their matches.
    pub fn refusal(kind: Kind, incident_id: &str, client_ip: Option<IpAddr>, app: &str, method: &str, uri: &str, status: u16) -> Self {
        AttackEvent {
            schema: SCHEMA_VERSION,
            kind,
            incident_id: incident_id.to_string(),
            time: now_rfc3339(),
            client_ip,
            user: None,
            app: app.to_string(),
            method: method.to_string(),
            uri: govgate_identity_numbers::mask_for_log(uri).into_owned(),
            rules: Vec::new(),
            anomaly_score: 0,
            action: Action::Blocked,
            status: Some(status),
            personal_data: None,
        }
    }
}

/// Where attack events go. Implementations must not block the request path.
pub trait AttackSink: Send + Sync {
    fn record(&self, event: &AttackEvent);
}

/// Writes each event as one JSON line, off the request path.
pub struct JsonLinesSink {
    writer: std::sync::Mutex<tracing_appender::non_blocking::NonBlocking>,
    _guard: tracing_appender::non_blocking::WorkerGuard,
}

impl JsonLinesSink {
    /// Appends to `path` (created with its directory when missing).
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(false).finish(file);
        Ok(JsonLinesSink { writer: std::sync::Mutex::new(writer), _guard: guard })
    }
}

impl AttackSink for JsonLinesSink {
    fn record(&self, event: &AttackEvent) {
        use std::io::Write;
        let Ok(mut line) = serde_json::to_vec(event) else { return };
        line.push(b'\n');
        if let Ok(mut w) = self.writer.lock() {
            if let Err(e) = w.write_all(&line) {
                tracing::error!(incident_id = event.incident_id, "attack event not written: {e}");
            }
        }
    }
}

/// Sends each event to several sinks (the store and the JSON-lines mirror).
pub struct Fanout(pub Vec<Box<dyn AttackSink>>);

impl AttackSink for Fanout {
    fn record(&self, event: &AttackEvent) {
        for s in &self.0 {
            s.record(event);
        }
    }
}

/// Writes JSON lines to standard output (for a SIEM collecting the process output).
pub struct StdoutSink;

impl AttackSink for StdoutSink {
    fn record(&self, event: &AttackEvent) {
        use std::io::Write;
        let Ok(mut line) = serde_json::to_vec(event) else { return };
        line.push(b'\n');
        let _ = std::io::stdout().lock().write_all(&line);
    }
}

/// The current time as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_events_mask_personal_numbers_and_round_trip() {
        let e = AttackEvent::refusal(Kind::RateLimit, "abc", None, "shebao", "GET", "/q?id=11010519491231002X", 429);
        assert!(!e.uri.contains("11010519491231002X"), "{}", e.uri);
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("\"kind\":\"rate_limit\""), "{json}");
        let back: AttackEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn kinds_and_actions_parse_their_names() {
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Kind::parse("nope"), None);
    }
}
