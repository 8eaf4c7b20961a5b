//! The audit trail: every login success/failure, token issue, logout and admin change is one row
//! in the `audit` table. Details never contain secrets; identity numbers and phone numbers are
//! masked before they get here.

use sqlx::Row;

use crate::error::IdpError;
use crate::store::Store;

/// One audit event.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent<'a> {
    pub event: &'a str,
    pub outcome: &'a str,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: serde_json::Value,
}

/// Write an event. Failures are logged, not propagated (auditing must not break a login), unless
/// `strict` is wanted — use [`record_strict`].
pub async fn record(store: &Store, e: AuditEvent<'_>) {
    if let Err(err) = record_strict(store, e).await {
        tracing::error!(error = %err, "audit write failed");
    }
}

pub async fn record_strict(store: &Store, e: AuditEvent<'_>) -> Result<(), IdpError> {
    let detail = if e.detail.is_null() { "{}".to_string() } else { e.detail.to_string() };
    sqlx::query("INSERT INTO audit (at, event, outcome, actor, subject, client_id, ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(crate::now())
        .bind(e.event)
        .bind(e.outcome)
        .bind(e.actor)
        .bind(e.subject)
        .bind(e.client_id)
        .bind(e.ip)
        .bind(detail)
        .execute(&store.pool)
        .await?;
    tracing::info!(target: "govgate_idp::audit", event = e.event, outcome = e.outcome, subject = e.subject, client_id = e.client_id, ip = e.ip);
    Ok(())
}

/// A stored audit row (for admin listing and tests).
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub detail: String,
}

/// The most recent `limit` rows, newest first.
pub async fn recent(store: &Store, limit: i64) -> Result<Vec<AuditRow>, IdpError> {
    let rows = sqlx::query("SELECT at, event, outcome, actor, subject, client_id, ip, detail FROM audit ORDER BY id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(&store.pool)
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditRow {
            at: r.get(0),
            event: r.get(1),
            outcome: r.get(2),
            actor: r.get(3),
            subject: r.get(4),
            client_id: r.get(5),
            ip: r.get(6),
            detail: r.get(7),
        })
        .collect())
}
