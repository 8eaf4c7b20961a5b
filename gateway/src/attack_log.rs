//! Attack events: one record for every request the WAF flags, with a stable schema
//! (docs/attack-events.md), handed to an [`AttackSink`]. The sink shipped here writes JSON
//! lines to a file through a background writer; the security console will add a database sink.

use serde::Serialize;
use std::net::IpAddr;
use std::path::Path;

/// Schema version of [`AttackEvent`]; bump it when a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

/// One rule that matched.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Refused (403 or the rule's status); the app never saw it.
    Blocked,
    /// Let through because the app's WAF mode is `detect`.
    Detected,
    /// Personal data in a response was masked.
    Masked,
}

/// Personal numbers found in a response.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PersonalDataCounts {
    pub resident_ids: u32,
    pub mobiles: u32,
    pub bank_cards: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttackEvent {
    pub schema: u32,
    /// The request id, shown to the client as the incident id.
    pub incident_id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub client_ip: Option<IpAddr>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_data: Option<PersonalDataCounts>,
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

/// The current time as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}
