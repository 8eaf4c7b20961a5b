//! Server-side login sessions: SQLite (through sqlx) in the data directory, with an in-memory
//! cache in front so that an authenticated request costs a hash and a map lookup. The cookie
//! holds only a random id; the store keeps its SHA-256. Each session belongs to one host and
//! is indexed by the provider's session id (`sid`) so that a logout ends all of them.

use sha2::{Digest, Sha256};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// How often a session's last use is written back to the database (it is kept in memory).
const TOUCH_WRITE_EVERY: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("session data: {0}")]
    Data(#[from] serde_json::Error),
    #[error("session directory: {0}")]
    Io(#[from] std::io::Error),
}

/// One login at one host.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionData {
    pub host: String,
    pub app: String,
    pub subject: String,
    /// The provider's session id (from the ID token), for logout.
    pub sid: Option<String>,
    pub acr: String,
    /// ID-token and userinfo claims.
    pub claims: serde_json::Value,
    /// The ID token, for the logout hint.
    pub id_token: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// The refresh token, sealed ([`super::seal`]), when the provider gave one.
    pub refresh_sealed: Option<Vec<u8>>,
    /// When to renew through the refresh token (the access token's expiry).
    pub renew_at: i64,
}

/// The renewal state of a session; locked while a refresh is under way, so that concurrent
/// requests never spend the same (rotating) refresh token twice.
pub struct Renewal {
    pub refresh_sealed: Option<Vec<u8>>,
    pub renew_at: i64,
}

/// A session as cached in memory.
pub struct Session {
    pub data: SessionData,
    key: [u8; 32],
    /// Mirrors `renewal.renew_at` for a lock-free check on every request.
    renew_at: AtomicI64,
    pub renewal: tokio::sync::Mutex<Renewal>,
    last_seen: AtomicI64,
    last_written: AtomicI64,
    /// The current `X-Govgate-Assertion` and when it stops being reused.
    pub assertion: Mutex<Option<(String, i64)>>,
}

impl Session {
    fn new(data: SessionData, key: [u8; 32], last_seen: i64) -> Self {
        let renewal = Renewal { refresh_sealed: data.refresh_sealed.clone(), renew_at: data.renew_at };
        Session {
            renew_at: AtomicI64::new(data.renew_at),
            renewal: tokio::sync::Mutex::new(renewal),
            data,
            key,
            last_seen: AtomicI64::new(last_seen),
            last_written: AtomicI64::new(last_seen),
            assertion: Mutex::new(None),
        }
    }

    /// Whether the session is due for renewal through its refresh token.
    pub fn renewal_due(&self, now: i64) -> bool {
        now >= self.renew_at.load(Ordering::Relaxed)
    }
}

pub struct Sessions {
    pool: SqlitePool,
    cache: Mutex<HashMap<[u8; 32], Arc<Session>>>,
    /// Idle timeout in seconds (follows the policy on reload).
    idle: AtomicI64,
}

/// SHA-256 of a cookie value: what the store keys sessions by.
pub fn hash_id(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// A new random session id (256 bits, base64url).
pub fn new_id() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    let rng = ring::rand::SystemRandom::new();
    // SystemRandom only fails when the OS has no randomness at all; fall back to two UUIDv4s.
    if ring::rand::SecureRandom::fill(&rng, &mut b).is_err() {
        b[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        b[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Sessions {
    /// Opens (creating) `sessions.sqlite` in `dir`.
    pub async fn open(dir: &Path, idle_secs: i64) -> Result<Self, SessionError> {
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let url = format!("sqlite://{}", dir.join("sessions.sqlite").display());
        let opts = SqliteConnectOptions::from_str(&url)?.create_if_missing(true).journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS sessions (
                id_hash TEXT PRIMARY KEY, host TEXT NOT NULL, app TEXT NOT NULL, sub TEXT NOT NULL, sid TEXT,
                acr TEXT NOT NULL, claims TEXT NOT NULL, id_token TEXT NOT NULL,
                created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL, expires_at INTEGER NOT NULL,
                refresh BLOB, renew_at INTEGER NOT NULL)",
        )
        .execute(&pool)
        .await?;
        sqlx::query("CREATE INDEX IF NOT EXISTS sessions_sid ON sessions(sid)").execute(&pool).await?;
        Ok(Sessions { pool, cache: Mutex::new(HashMap::new()), idle: AtomicI64::new(idle_secs) })
    }

    /// Sets the idle timeout (the policy's `session_idle`, after a reload).
    pub fn set_idle(&self, secs: i64) {
        self.idle.store(secs, Ordering::Relaxed);
    }

    /// Stores a new session and returns the cookie value.
    pub async fn create(&self, data: SessionData, now: i64) -> Result<String, SessionError> {
        let id = new_id();
        let h = hash_id(&id);
        sqlx::query("INSERT INTO sessions VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
            .bind(hex(&h))
            .bind(&data.host)
            .bind(&data.app)
            .bind(&data.subject)
            .bind(&data.sid)
            .bind(&data.acr)
            .bind(serde_json::to_string(&data.claims)?)
            .bind(&data.id_token)
            .bind(data.created_at)
            .bind(now)
            .bind(data.expires_at)
            .bind(&data.refresh_sealed)
            .bind(data.renew_at)
            .execute(&self.pool)
            .await?;
        let s = Arc::new(Session::new(data, h, now));
        if let Ok(mut c) = self.cache.lock() {
            c.insert(h, s);
        }
        Ok(id)
    }

    /// The live session for this cookie value at this host; expired ones are deleted.
    pub async fn get(&self, id: &str, host: &str, now: i64) -> Result<Option<Arc<Session>>, SessionError> {
        let h = hash_id(id);
        let cached = self.cache.lock().ok().and_then(|c| c.get(&h).cloned());
        let s = match cached {
            Some(s) => s,
            None => match self.load(&h).await? {
                Some(s) => {
                    let s = Arc::new(s);
                    if let Ok(mut c) = self.cache.lock() {
                        c.insert(h, s.clone());
                    }
                    s
                }
                None => return Ok(None),
            },
        };
        if s.data.host != host {
            // A cookie replayed on another host: not a session there.
            return Ok(None);
        }
        if now >= s.data.expires_at || now - s.last_seen.load(Ordering::Relaxed) > self.idle.load(Ordering::Relaxed) {
            self.delete(&h).await?;
            return Ok(None);
        }
        s.last_seen.store(now, Ordering::Relaxed);
        if now - s.last_written.load(Ordering::Relaxed) >= TOUCH_WRITE_EVERY {
            s.last_written.store(now, Ordering::Relaxed);
            sqlx::query("UPDATE sessions SET last_seen = $1 WHERE id_hash = $2").bind(now).bind(hex(&h)).execute(&self.pool).await?;
        }
        Ok(Some(s))
    }

    async fn load(&self, h: &[u8; 32]) -> Result<Option<Session>, SessionError> {
        let row = sqlx::query(
            "SELECT host, app, sub, sid, acr, claims, id_token, created_at, last_seen, expires_at, refresh, renew_at FROM sessions WHERE id_hash = $1",
        )
        .bind(hex(h))
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let claims: String = r.get(5);
        let last_seen: i64 = r.get(8);
        let data = SessionData {
            host: r.get(0),
            app: r.get(1),
            subject: r.get(2),
            sid: r.get(3),
            acr: r.get(4),
            claims: serde_json::from_str(&claims)?,
            id_token: r.get(6),
            created_at: r.get(7),
            expires_at: r.get(9),
            refresh_sealed: r.get(10),
            renew_at: r.get(11),
        };
        Ok(Some(Session::new(data, *h, last_seen)))
    }

    /// Records a renewal (the rotated refresh token and the next renewal time).
    pub async fn renewed(&self, s: &Session, r: &Renewal) -> Result<(), SessionError> {
        s.renew_at.store(r.renew_at, Ordering::Relaxed);
        sqlx::query("UPDATE sessions SET refresh = $1, renew_at = $2 WHERE id_hash = $3")
            .bind(&r.refresh_sealed)
            .bind(r.renew_at)
            .bind(hex(&s.key))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a session found by [`Sessions::get`] (its provider session is gone).
    pub async fn end_session(&self, s: &Session) -> Result<(), SessionError> {
        self.delete(&s.key).await
    }

    async fn delete(&self, h: &[u8; 32]) -> Result<(), SessionError> {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(h);
        }
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1").bind(hex(h)).execute(&self.pool).await?;
        Ok(())
    }

    /// Ends one session (by cookie value).
    pub async fn end(&self, id: &str) -> Result<(), SessionError> {
        self.delete(&hash_id(id)).await
    }

    /// Ends every session, on every host, that came from the provider session `sid`.
    /// Returns how many there were.
    pub async fn end_sid(&self, sid: &str) -> Result<u64, SessionError> {
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, s| s.data.sid.as_deref() != Some(sid));
        }
        Ok(sqlx::query("DELETE FROM sessions WHERE sid = $1").bind(sid).execute(&self.pool).await?.rows_affected())
    }

    /// Ends every session of a subject (a back-channel logout without `sid`).
    pub async fn end_subject(&self, sub: &str) -> Result<u64, SessionError> {
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, s| s.data.subject != sub);
        }
        Ok(sqlx::query("DELETE FROM sessions WHERE sub = $1").bind(sub).execute(&self.pool).await?.rows_affected())
    }

    /// Deletes expired sessions (memory and database).
    pub async fn purge(&self, now: i64) -> Result<(), SessionError> {
        let idle = self.idle.load(Ordering::Relaxed);
        if let Ok(mut c) = self.cache.lock() {
            c.retain(|_, s| now < s.data.expires_at && now - s.last_seen.load(Ordering::Relaxed) <= idle);
        }
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen < $2").bind(now).bind(now - idle).execute(&self.pool).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(host: &str, sid: &str, now: i64) -> SessionData {
        SessionData {
            host: host.into(),
            app: "a".into(),
            subject: "u1".into(),
            sid: Some(sid.into()),
            acr: "pwd".into(),
            claims: serde_json::json!({"name": "张三"}),
            id_token: "t".into(),
            created_at: now,
            expires_at: now + 3600,
            refresh_sealed: Some(vec![1, 2, 3]),
            renew_at: now + 300,
        }
    }

    #[tokio::test]
    async fn sessions_live_per_host_expire_and_end_by_sid() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sessions::open(dir.path(), 600).await.unwrap();
        let a = s.create(data("a.test", "sid1", 1000), 1000).await.unwrap();
        let b = s.create(data("b.test", "sid1", 1000), 1000).await.unwrap();
        let other = s.create(data("a.test", "sid2", 1000), 1000).await.unwrap();
        assert_eq!(s.get(&a, "a.test", 1001).await.unwrap().unwrap().data.claims["name"], "张三");
        assert!(s.get(&a, "b.test", 1001).await.unwrap().is_none(), "a cookie of host A is nothing on host B");
        assert!(s.get("made-up", "a.test", 1001).await.unwrap().is_none());
        // The database holds the hash, never the id.
        let raw: Vec<String> = sqlx::query_scalar("SELECT id_hash FROM sessions").fetch_all(&s.pool).await.unwrap();
        assert!(raw.iter().all(|h| h.len() == 64 && *h != a));
        // A fresh store (a restart) finds the session in SQLite.
        let s2 = Sessions::open(dir.path(), 600).await.unwrap();
        let found = s2.get(&b, "b.test", 1002).await.unwrap().unwrap();
        assert_eq!(
            (found.data.refresh_sealed.as_deref(), found.renewal_due(1299), found.renewal_due(1300)),
            (Some(&[1u8, 2, 3][..]), false, true)
        );
        s2.renewed(&found, &Renewal { refresh_sealed: Some(vec![9]), renew_at: 2000 }).await.unwrap();
        let reread = Sessions::open(dir.path(), 600).await.unwrap().get(&b, "b.test", 1003).await.unwrap().unwrap();
        assert_eq!((reread.data.refresh_sealed.as_deref(), reread.renewal_due(1999)), (Some(&[9u8][..]), false));
        // Idle timeout.
        assert!(s2.get(&other, "a.test", 1000 + 601).await.unwrap().is_none());
        assert!(s2.get(&other, "a.test", 1000).await.unwrap().is_none(), "an idle session is deleted");
        // Logout by sid ends both hosts' sessions.
        assert_eq!(s.end_sid("sid1").await.unwrap(), 2);
        assert!(s.get(&a, "a.test", 1003).await.unwrap().is_none());
        assert!(s.get(&b, "b.test", 1003).await.unwrap().is_none());
        // Absolute timeout.
        let c = s.create(data("a.test", "sid3", 1000), 1000).await.unwrap();
        assert!(s.get(&c, "a.test", 1000 + 3600).await.unwrap().is_none());
        // Purging removes expired rows that nobody asked for again.
        s.create(data("a.test", "sid4", 1000), 1000).await.unwrap();
        let count = || async { sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM sessions").fetch_one(&s.pool).await.unwrap() };
        assert_eq!(count().await, 1);
        s.purge(1000 + 100).await.unwrap();
        assert_eq!(count().await, 1, "a live session stays");
        s.purge(1000 + 601).await.unwrap();
        assert_eq!(count().await, 0, "an idle one goes");
    }
}
