//! The SQLite [`EventStore`] (`data_dir/events.db`, WAL): plain SQL with bound parameters,
//! portable to PostgreSQL apart from the connection itself.

use super::{key_hex, net_range, time_ms, Aggregates, Ban, Count, EventQuery, EventStore, Page, RuleCount, StoreError, StoredEvent};
use crate::attack_log::AttackEvent;
use async_trait::async_trait;
use ipnet::IpNet;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use std::path::Path;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/events");

/// The tag CRS gives its anomaly-evaluation rules.
const EVALUATION_TAG: &str = "anomaly-evaluation";

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating and migrating when needed) the database at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn like_pattern(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// ` WHERE …` for a query, on the events table aliased `e`.
fn push_filters(b: &mut QueryBuilder<'_, Sqlite>, q: &EventQuery) {
    b.push(" WHERE 1 = 1");
    if let Some(from) = q.from_ms {
        b.push(" AND e.ts_ms >= ").push_bind(from);
    }
    if let Some(to) = q.to_ms {
        b.push(" AND e.ts_ms < ").push_bind(to);
    }
    if let Some(net) = &q.ip {
        let (lo, hi) = net_range(net);
        b.push(" AND e.ip_key >= ").push_bind(key_hex(lo)).push(" AND e.ip_key <= ").push_bind(key_hex(hi));
    }
    if let Some(app) = &q.app {
        b.push(" AND e.app = ").push_bind(app.clone());
    }
    if let Some(rule) = q.rule {
        b.push(" AND e.rule_ids LIKE ").push_bind(format!("%|{rule}|%"));
    }
    if let Some(tag) = &q.tag {
        b.push(" AND e.tags LIKE ").push_bind(like_pattern(&format!("|{tag}|"))).push(" ESCAPE '\\'");
    }
    if let Some(action) = q.action {
        b.push(" AND e.action = ").push_bind(action.as_str());
    }
    if let Some(kind) = q.kind {
        b.push(" AND e.kind = ").push_bind(kind.as_str());
    }
    if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let p = like_pattern(text);
        b.push(" AND (");
        for (i, col) in ["e.uri", "e.app", "e.client_ip", "e.incident_id", "e.user_name", "e.messages"].iter().enumerate() {
            if i > 0 {
                b.push(" OR ");
            }
            b.push(format!("LOWER(COALESCE({col}, '')) LIKE ")).push_bind(p.clone()).push(" ESCAPE '\\'");
        }
        b.push(")");
    }
}

fn stored(row: &sqlx::sqlite::SqliteRow) -> Result<StoredEvent, StoreError> {
    let body: String = row.try_get("body")?;
    let fp: i64 = row.try_get("false_positive")?;
    Ok(StoredEvent { event: serde_json::from_str(&body)?, false_positive: fp != 0 })
}

fn bar_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let mut s = String::from("|");
    for i in items {
        s.push_str(i);
        s.push('|');
    }
    s
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn insert(&self, events: &[AttackEvent]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for e in events {
            let body = serde_json::to_string(e)?;
            let rule_ids = bar_list(e.rules.iter().map(|r| r.id.to_string()).collect::<Vec<_>>().iter().map(String::as_str));
            let tags = bar_list(e.rules.iter().flat_map(|r| r.tags.iter().map(String::as_str)));
            let messages = e.rules.iter().map(|r| r.message.as_str()).collect::<Vec<_>>().join("\n");
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO events (incident_id, ts_ms, kind, action, app, client_ip, ip_key, user_name, method, uri, anomaly_score, \
                 status, rule_ids, tags, messages, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
                 RETURNING id",
            )
            .bind(&e.incident_id)
            .bind(time_ms(&e.time))
            .bind(e.kind.as_str())
            .bind(e.action.as_str())
            .bind(&e.app)
            .bind(e.client_ip.map(|ip| ip.to_string()))
            .bind(e.client_ip.map(|ip| key_hex(super::ip_key(ip))))
            .bind(&e.user)
            .bind(&e.method)
            .bind(&e.uri)
            .bind(e.anomaly_score)
            .bind(e.status.map(i64::from))
            .bind(rule_ids)
            .bind(tags)
            .bind(messages)
            .bind(body)
            .fetch_one(&mut *tx)
            .await?;
            for r in &e.rules {
                sqlx::query("INSERT INTO event_rules (event_id, rule_id, message, evaluation) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(r.id as i64)
                    .bind(&r.message)
                    .bind(i64::from(r.tags.iter().any(|t| t == EVALUATION_TAG)))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn query(&self, q: &EventQuery) -> Result<Page, StoreError> {
        let mut count = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM events e");
        push_filters(&mut count, q);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;
        let mut b = QueryBuilder::<Sqlite>::new("SELECT e.body, e.false_positive FROM events e");
        push_filters(&mut b, q);
        b.push(" ORDER BY e.ts_ms DESC, e.id DESC LIMIT ").push_bind(i64::from(q.page_size()));
        b.push(" OFFSET ").push_bind(i64::from(q.offset));
        let rows = b.build().fetch_all(&self.pool).await?;
        let events = rows.iter().map(stored).collect::<Result<_, _>>()?;
        Ok(Page { total: total as u64, events })
    }

    async fn get(&self, incident_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query("SELECT e.body, e.false_positive FROM events e WHERE e.incident_id = $1 ORDER BY e.id")
            .bind(incident_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(stored).collect()
    }

    async fn aggregates(&self, q: &EventQuery, limit: u32) -> Result<Aggregates, StoreError> {
        let limit = i64::from(limit.clamp(1, 100));
        let mut b = QueryBuilder::<Sqlite>::new("SELECT COUNT(*) FROM events e");
        push_filters(&mut b, q);
        let total: i64 = b.build_query_scalar().fetch_one(&self.pool).await?;

        let mut b = QueryBuilder::<Sqlite>::new("SELECT (e.ts_ms / 3600000) * 3600 AS hour, COUNT(*) AS n FROM events e");
        push_filters(&mut b, q);
        b.push(" GROUP BY hour ORDER BY hour");
        let per_hour = b
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(Count { key: r.try_get::<i64, _>("hour")?, count: r.try_get::<i64, _>("n")? as u64 }))
            .collect::<Result<_, sqlx::Error>>()?;

        let top = |col: &'static str| {
            let mut b = QueryBuilder::<Sqlite>::new(format!("SELECT {col} AS k, COUNT(*) AS n FROM events e"));
            push_filters(&mut b, q);
            b.push(format!(" AND {col} IS NOT NULL GROUP BY {col} ORDER BY n DESC, k LIMIT ")).push_bind(limit);
            b
        };
        let mut ips = top("e.client_ip");
        let mut apps = top("e.app");
        let count_rows = |rows: Vec<sqlx::sqlite::SqliteRow>| {
            rows.iter()
                .map(|r| Ok(Count { key: r.try_get::<String, _>("k")?, count: r.try_get::<i64, _>("n")? as u64 }))
                .collect::<Result<Vec<_>, sqlx::Error>>()
        };
        let top_ips = count_rows(ips.build().fetch_all(&self.pool).await?)?;
        let top_apps = count_rows(apps.build().fetch_all(&self.pool).await?)?;

        let mut b = QueryBuilder::<Sqlite>::new(
            "SELECT r.rule_id AS k, MAX(r.message) AS m, COUNT(*) AS n FROM event_rules r JOIN events e ON e.id = r.event_id",
        );
        push_filters(&mut b, q);
        b.push(" AND r.evaluation = 0 GROUP BY r.rule_id ORDER BY n DESC, k LIMIT ").push_bind(limit);
        let top_rules = b
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(RuleCount { rule: r.try_get::<i64, _>("k")? as u64, message: r.try_get("m")?, count: r.try_get::<i64, _>("n")? as u64 })
            })
            .collect::<Result<_, sqlx::Error>>()?;
        Ok(Aggregates { total: total as u64, per_hour, top_ips, top_rules, top_apps })
    }

    async fn mark_false_positive(&self, incident_id: &str, value: bool) -> Result<u64, StoreError> {
        let r = sqlx::query("UPDATE events SET false_positive = $1 WHERE incident_id = $2")
            .bind(i64::from(value))
            .bind(incident_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn purge(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM event_rules WHERE event_id IN (SELECT id FROM events WHERE ts_ms < $1)")
            .bind(before_ms)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM events WHERE ts_ms < $1").bind(before_ms).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    async fn bans(&self, now_ms: i64) -> Result<Vec<Ban>, StoreError> {
        let rows = sqlx::query(
            "SELECT network, expires_ms, reason, created_ms, created_by FROM bans WHERE expires_ms IS NULL OR expires_ms > $1 ORDER BY created_ms",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let network: String = r.try_get("network")?;
            let Ok(network) = network.parse::<IpNet>() else {
                tracing::warn!(network, "unreadable ban in the event store, ignored");
                continue;
            };
            out.push(Ban {
                network,
                expires_ms: r.try_get("expires_ms")?,
                reason: r.try_get("reason")?,
                created_ms: r.try_get("created_ms")?,
                created_by: r.try_get("created_by")?,
            });
        }
        Ok(out)
    }

    async fn ban(&self, ban: &Ban) -> Result<(), StoreError> {
        let (lo, hi) = net_range(&ban.network);
        sqlx::query(
            "INSERT INTO bans (network, lo, hi, expires_ms, reason, created_ms, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (network) DO UPDATE SET expires_ms = excluded.expires_ms, reason = excluded.reason, \
             created_ms = excluded.created_ms, created_by = excluded.created_by",
        )
        .bind(ban.network.to_string())
        .bind(key_hex(lo))
        .bind(key_hex(hi))
        .bind(ban.expires_ms)
        .bind(&ban.reason)
        .bind(ban.created_ms)
        .bind(&ban.created_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn unban(&self, network: &IpNet) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM bans WHERE network = $1").bind(network.to_string()).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack_log::{Action, Kind, RuleMatch, SCHEMA_VERSION};

    pub(crate) fn event(incident: &str, ip: &str, app: &str, rule: u64, time: &str) -> AttackEvent {
        AttackEvent {
            schema: SCHEMA_VERSION,
            kind: Kind::Waf,
            incident_id: incident.into(),
            time: time.into(),
            client_ip: ip.parse().ok(),
            user: None,
            app: app.into(),
            method: "GET".into(),
            uri: format!("/apply?id=1%27%20OR_{rule}"),
            rules: vec![
                RuleMatch {
                    id: rule,
                    message: format!("SQL Injection {rule}"),
                    tags: vec!["attack-sqli".into(), "paranoia-level/1".into()],
                    severity: Some(2),
                    variable: "ARGS:id".into(),
                    data: "1' OR".into(),
                },
                RuleMatch {
                    id: 949110,
                    message: "Inbound Anomaly Score Exceeded".into(),
                    tags: vec![EVALUATION_TAG.into()],
                    severity: None,
                    variable: "TX:BLOCKING_INBOUND_ANOMALY_SCORE".into(),
                    data: "5".into(),
                },
            ],
            anomaly_score: 5,
            action: Action::Blocked,
            status: Some(403),
            personal_data: None,
        }
    }

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("events.db")).await.unwrap();
        (dir, s)
    }

    #[tokio::test]
    async fn filters_narrow_the_events() {
        let (_dir, s) = store().await;
        let mut rl = AttackEvent::refusal(Kind::RateLimit, "c", "2001:db8::5".parse().ok(), "tax", "GET", "/", 429);
        rl.time = "2026-11-23T03:00:00.000Z".into();
        s.insert(&[
            event("a", "203.0.113.7", "shebao", 942100, "2026-11-23T01:10:00.000Z"),
            event("b", "198.51.100.1", "shebao", 941100, "2026-11-23T02:10:00.000Z"),
            rl,
        ])
        .await
        .unwrap();
        let ids = |p: Page| p.events.into_iter().map(|e| e.event.incident_id).collect::<Vec<_>>();
        let q = |f: fn(&mut EventQuery)| {
            let mut q = EventQuery::default();
            f(&mut q);
            q
        };
        assert_eq!(ids(s.query(&EventQuery::default()).await.unwrap()), ["c", "b", "a"]);
        assert_eq!(ids(s.query(&q(|q| q.ip = "203.0.113.0/24".parse().ok())).await.unwrap()), ["a"]);
        assert_eq!(ids(s.query(&q(|q| q.ip = "2001:db8::/32".parse().ok())).await.unwrap()), ["c"]);
        assert_eq!(ids(s.query(&q(|q| q.rule = Some(941100))).await.unwrap()), ["b"]);
        assert_eq!(ids(s.query(&q(|q| q.rule = Some(94110))).await.unwrap()), Vec::<String>::new());
        assert_eq!(ids(s.query(&q(|q| q.tag = Some("attack-sqli".into()))).await.unwrap()), ["b", "a"]);
        assert_eq!(ids(s.query(&q(|q| q.tag = Some("attack".into()))).await.unwrap()), Vec::<String>::new());
        assert_eq!(ids(s.query(&q(|q| q.kind = Some(Kind::RateLimit))).await.unwrap()), ["c"]);
        assert_eq!(ids(s.query(&q(|q| q.app = Some("tax".into()))).await.unwrap()), ["c"]);
        assert_eq!(ids(s.query(&q(|q| q.text = Some("injection 9421".into()))).await.unwrap()), ["a"]);
        assert_eq!(ids(s.query(&q(|q| q.text = Some("R%9".into()))).await.unwrap()), Vec::<String>::new(), "LIKE wildcards are literal");
        let window = q(|q| {
            q.from_ms = Some(super::super::time_ms("2026-11-23T02:00:00Z"));
            q.to_ms = Some(super::super::time_ms("2026-11-23T03:00:00Z"));
        });
        assert_eq!(ids(s.query(&window).await.unwrap()), ["b"]);
        let second = q(|q| {
            q.limit = 1;
            q.offset = 1;
        });
        let page = s.query(&second).await.unwrap();
        assert_eq!((page.total, ids(page)), (3, vec!["b".to_string()]));
    }

    #[tokio::test]
    async fn aggregates_count_hours_sources_rules_and_apps() {
        let (_dir, s) = store().await;
        s.insert(&[
            event("a", "203.0.113.7", "shebao", 942100, "2026-11-23T01:10:00.000Z"),
            event("b", "203.0.113.7", "shebao", 942100, "2026-11-23T01:50:00.000Z"),
            event("c", "198.51.100.1", "tax", 941100, "2026-11-23T02:10:00.000Z"),
        ])
        .await
        .unwrap();
        let a = s.aggregates(&EventQuery::default(), 10).await.unwrap();
        assert_eq!(a.total, 3);
        let hour = super::super::time_ms("2026-11-23T01:00:00Z") / 1000;
        assert_eq!(a.per_hour, vec![Count { key: hour, count: 2 }, Count { key: hour + 3600, count: 1 }]);
        assert_eq!(a.top_ips[0], Count { key: "203.0.113.7".to_string(), count: 2 });
        assert_eq!(a.top_rules.iter().map(|r| (r.rule, r.count)).collect::<Vec<_>>(), [(942100, 2), (941100, 1)]);
        assert_eq!(a.top_apps[0], Count { key: "shebao".to_string(), count: 2 });
    }

    #[tokio::test]
    async fn events_false_positives_purge_and_bans_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        {
            let s = SqliteStore::open(&path).await.unwrap();
            s.insert(&[event("old", "203.0.113.7", "shebao", 942100, "2020-01-01T00:00:00.000Z")]).await.unwrap();
            s.insert(&[event("new", "203.0.113.7", "shebao", 942100, "2026-11-23T01:00:00.000Z")]).await.unwrap();
            assert_eq!(s.mark_false_positive("new", true).await.unwrap(), 1);
            let net: IpNet = "203.0.113.0/24".parse().unwrap();
            let ban = Ban { network: net, expires_ms: None, reason: "scan".into(), created_ms: 1, created_by: "console".into() };
            s.ban(&ban).await.unwrap();
            s.ban(&Ban { network: "198.51.100.1/32".parse().unwrap(), expires_ms: Some(1000), ..ban }).await.unwrap();
            s.close().await;
        }
        let s = SqliteStore::open(&path).await.unwrap();
        assert_eq!(s.purge(super::super::time_ms("2021-01-01T00:00:00Z")).await.unwrap(), 1);
        let all = s.query(&EventQuery::default()).await.unwrap();
        assert_eq!(all.total, 1);
        assert!(all.events[0].false_positive);
        assert_eq!(s.get("new").await.unwrap()[0].event.rules.len(), 2);
        let bans = s.bans(2000).await.unwrap();
        assert_eq!(bans.iter().map(|b| b.network.to_string()).collect::<Vec<_>>(), ["203.0.113.0/24"]);
        assert_eq!(s.bans(500).await.unwrap().len(), 2);
        assert!(s.unban(&"203.0.113.0/24".parse().unwrap()).await.unwrap());
        assert!(!s.unban(&"203.0.113.0/24".parse().unwrap()).await.unwrap());
    }
}
