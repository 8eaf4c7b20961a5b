//! SSO sessions (stored by SHA-256 of the cookie value), pending authorization requests and
//! remembered consents.

use sqlx::Row;

use super::Store;
use crate::crypto::{random_token, sha256_hex};
use crate::error::IdpError;

/// A live SSO session.
#[derive(Debug, Clone)]
pub struct Session {
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub expires_at: i64,
}

impl Store {
    /// Create a session; returns the cookie value (only its hash is stored) and the session.
    pub async fn create_session(&self, user_id: &str, acr: &str, amr: &[&str], now: i64, ttl: i64) -> Result<(String, Session), IdpError> {
        let cookie = random_token();
        let sid = uuid::Uuid::new_v4().to_string();
        sqlx::query("INSERT INTO sessions (id_hash, sid, user_id, auth_time, acr, amr, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(sha256_hex(&cookie))
            .bind(&sid)
            .bind(user_id)
            .bind(now)
            .bind(acr)
            .bind(serde_json::to_string(amr)?)
            .bind(now)
            .bind(now + ttl)
            .execute(&self.pool)
            .await?;
        Ok((
            cookie,
            Session {
                sid,
                user_id: user_id.into(),
                auth_time: now,
                acr: acr.into(),
                amr: amr.iter().map(|m| m.to_string()).collect(),
                expires_at: now + ttl,
            },
        ))
    }

    /// The live session for a cookie value, if any.
    pub async fn session_by_cookie(&self, cookie: &str, now: i64) -> Result<Option<Session>, IdpError> {
        let row = sqlx::query(
            "SELECT sid, user_id, auth_time, acr, amr, expires_at FROM sessions WHERE id_hash = $1 AND ended = 0 AND expires_at > $2",
        )
        .bind(sha256_hex(cookie))
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| Session {
            sid: r.get(0),
            user_id: r.get(1),
            auth_time: r.get(2),
            acr: r.get(3),
            amr: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
            expires_at: r.get(5),
        }))
    }

    pub async fn session_by_sid(&self, sid: &str) -> Result<Option<(String, bool)>, IdpError> {
        let row = sqlx::query("SELECT user_id, ended FROM sessions WHERE sid = $1").bind(sid).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| (r.get(0), r.get::<i64, _>(1) != 0)))
    }

    /// End a session (logout).
    pub async fn end_session(&self, sid: &str) -> Result<(), IdpError> {
        sqlx::query("UPDATE sessions SET ended = 1 WHERE sid = $1").bind(sid).execute(&self.pool).await?;
        Ok(())
    }

    /// Store a validated authorization request; returns its id.
    pub async fn put_auth_request(&self, params: &serde_json::Value, now: i64, ttl: i64) -> Result<String, IdpError> {
        let id = random_token();
        sqlx::query("INSERT INTO auth_requests (id, params, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(params.to_string())
            .bind(now)
            .bind(now + ttl)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    pub async fn get_auth_request(&self, id: &str, now: i64) -> Result<Option<serde_json::Value>, IdpError> {
        let row = sqlx::query("SELECT params FROM auth_requests WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.get::<String, _>(0)).ok()))
    }

    pub async fn update_auth_request(&self, id: &str, params: &serde_json::Value) -> Result<(), IdpError> {
        sqlx::query("UPDATE auth_requests SET params = $1 WHERE id = $2").bind(params.to_string()).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn delete_auth_request(&self, id: &str) -> Result<(), IdpError> {
        sqlx::query("DELETE FROM auth_requests WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Whether the user already granted `scopes` to the client.
    pub async fn has_consent(&self, user_id: &str, client_id: &str, scopes: &[String]) -> Result<bool, IdpError> {
        let row = sqlx::query("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => {
                let granted: String = r.get(0);
                scopes.iter().all(|s| granted.split(' ').any(|g| g == s))
            }
            None => false,
        })
    }

    pub async fn save_consent(&self, user_id: &str, client_id: &str, scopes: &[String], now: i64) -> Result<(), IdpError> {
        sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2").bind(user_id).bind(client_id).execute(&self.pool).await?;
        sqlx::query("INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)")
            .bind(user_id)
            .bind(client_id)
            .bind(scopes.join(" "))
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
