//! Grants: authorization codes (single use, hashed), token families, refresh tokens (hashed,
//! rotated, family revocation on reuse), access-token revocation (by family, or by `jti`) and
//! single-use client-assertion `jti`s.

use sqlx::Row;

use super::Store;
use crate::crypto::sha256_hex;
use crate::error::IdpError;
use crate::flows::claims::ClaimsRequest;

/// Everything bound to an authorization code.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub user_id: String,
    pub sid: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub family_id: String,
    pub expires_at: i64,
    /// Claims requested one by one (the `claims` parameter).
    pub claims: ClaimsRequest,
}

/// Result of redeeming a code.
#[derive(Debug)]
pub enum CodeRedeem {
    Ok(Box<CodeGrant>),
    /// The code was already used: its family has now been revoked.
    Replayed {
        family_id: String,
        client_id: String,
    },
    Unknown,
}

/// Data carried by a refresh token.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    pub sid: String,
    pub expires_at: i64,
    /// The claims requested with the authorization (kept by the token family).
    pub claims: ClaimsRequest,
}

#[derive(Debug)]
pub enum RefreshRedeem {
    Ok(Box<RefreshGrant>),
    /// An already-rotated token was presented again: the whole family is now revoked.
    Reused {
        family_id: String,
    },
    Invalid,
}

impl Store {
    pub async fn create_family(
        &self,
        family_id: &str,
        client_id: &str,
        user_id: Option<&str>,
        sid: Option<&str>,
        claims: &ClaimsRequest,
        now: i64,
    ) -> Result<(), IdpError> {
        sqlx::query("INSERT INTO token_families (id, client_id, user_id, sid, created_at, claims) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(family_id)
            .bind(client_id)
            .bind(user_id)
            .bind(sid)
            .bind(now)
            .bind(claims.to_db())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn put_code(&self, code: &str, g: &CodeGrant) -> Result<(), IdpError> {
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, redirect_uri, user_id, sid, scope, nonce, code_challenge, auth_time, acr, amr, family_id, expires_at, claims) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(sha256_hex(code))
        .bind(&g.client_id)
        .bind(&g.redirect_uri)
        .bind(&g.user_id)
        .bind(&g.sid)
        .bind(&g.scope)
        .bind(&g.nonce)
        .bind(&g.code_challenge)
        .bind(g.auth_time)
        .bind(&g.acr)
        .bind(serde_json::to_string(&g.amr)?)
        .bind(&g.family_id)
        .bind(g.expires_at)
        .bind(g.claims.to_db())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Atomically mark a code used. A second redemption revokes everything issued from it.
    pub async fn redeem_code(&self, code: &str, now: i64) -> Result<CodeRedeem, IdpError> {
        let h = sha256_hex(code);
        let row = sqlx::query(
            "SELECT client_id, redirect_uri, user_id, sid, scope, nonce, code_challenge, auth_time, acr, amr, family_id, expires_at, used_at, claims \
             FROM auth_codes WHERE code_hash = $1",
        )
        .bind(&h)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(CodeRedeem::Unknown) };
        let g = CodeGrant {
            client_id: r.get(0),
            redirect_uri: r.get(1),
            user_id: r.get(2),
            sid: r.get(3),
            scope: r.get(4),
            nonce: r.get(5),
            code_challenge: r.get(6),
            auth_time: r.get(7),
            acr: r.get(8),
            amr: serde_json::from_str(&r.get::<String, _>(9)).unwrap_or_default(),
            family_id: r.get(10),
            expires_at: r.get(11),
            claims: ClaimsRequest::from_db(r.get(13)),
        };
        let used: Option<i64> = r.get(12);
        let claimed = if used.is_none() {
            sqlx::query("UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL")
                .bind(now)
                .bind(&h)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1
        } else {
            false
        };
        if !claimed {
            self.revoke_family(&g.family_id, now).await?;
            return Ok(CodeRedeem::Replayed { family_id: g.family_id, client_id: g.client_id });
        }
        Ok(CodeRedeem::Ok(Box::new(g)))
    }

    pub async fn put_refresh(&self, token: &str, g: &RefreshGrant, now: i64) -> Result<(), IdpError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, scope, auth_time, acr, amr, sid, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(sha256_hex(token))
        .bind(&g.family_id)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(&g.scope)
        .bind(g.auth_time)
        .bind(&g.acr)
        .bind(serde_json::to_string(&g.amr)?)
        .bind(&g.sid)
        .bind(now)
        .bind(g.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Look up a refresh token without consuming it (introspection / revocation).
    pub async fn find_refresh(&self, token: &str) -> Result<Option<(RefreshGrant, bool)>, IdpError> {
        let row = sqlx::query(
            "SELECT r.family_id, r.client_id, r.user_id, r.scope, r.auth_time, r.acr, r.amr, r.sid, r.expires_at, r.used_at, r.revoked_at, f.revoked_at, f.claims \
             FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.token_hash = $1",
        )
        .bind(sha256_hex(token))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            let g = RefreshGrant {
                family_id: r.get(0),
                client_id: r.get(1),
                user_id: r.get(2),
                scope: r.get(3),
                auth_time: r.get(4),
                acr: r.get(5),
                amr: serde_json::from_str(&r.get::<String, _>(6)).unwrap_or_default(),
                sid: r.get(7),
                expires_at: r.get(8),
                claims: ClaimsRequest::from_db(r.get(12)),
            };
            let dead =
                r.get::<Option<i64>, _>(9).is_some() || r.get::<Option<i64>, _>(10).is_some() || r.get::<Option<i64>, _>(11).is_some();
            (g, !dead)
        }))
    }

    /// Consume a refresh token for rotation. Reuse of a rotated token revokes the family.
    /// A token of another client is `Invalid` and is not consumed (so it cannot be burnt).
    pub async fn redeem_refresh(&self, token: &str, client_id: &str, now: i64) -> Result<RefreshRedeem, IdpError> {
        let Some((g, live)) = self.find_refresh(token).await? else { return Ok(RefreshRedeem::Invalid) };
        if g.client_id != client_id {
            return Ok(RefreshRedeem::Invalid);
        }
        if !live || g.expires_at <= now {
            let row = sqlx::query("SELECT used_at FROM refresh_tokens WHERE token_hash = $1")
                .bind(sha256_hex(token))
                .fetch_one(&self.pool)
                .await?;
            if row.get::<Option<i64>, _>(0).is_some() {
                self.revoke_family(&g.family_id, now).await?;
                return Ok(RefreshRedeem::Reused { family_id: g.family_id });
            }
            return Ok(RefreshRedeem::Invalid);
        }
        let n = sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL")
            .bind(now)
            .bind(sha256_hex(token))
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n != 1 {
            self.revoke_family(&g.family_id, now).await?;
            return Ok(RefreshRedeem::Reused { family_id: g.family_id });
        }
        Ok(RefreshRedeem::Ok(Box::new(g)))
    }

    /// Revoke a family: its refresh tokens, and (through `fid`) its access tokens.
    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<(), IdpError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revoke every family bound to an SSO session (logout).
    pub async fn revoke_session_families(&self, sid: &str, now: i64) -> Result<(), IdpError> {
        let fams: Vec<String> = sqlx::query("SELECT id FROM token_families WHERE sid = $1 AND revoked_at IS NULL")
            .bind(sid)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        for f in fams {
            self.revoke_family(&f, now).await?;
        }
        Ok(())
    }

    /// Whether an access token is still live: its family is not revoked and it was not revoked
    /// on its own.
    pub async fn access_live(&self, jti: &str, family_id: &str) -> Result<bool, IdpError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM token_families WHERE id = $1 AND revoked_at IS NOT NULL) + (SELECT COUNT(*) FROM revoked_access WHERE jti = $2)",
        )
        .bind(family_id)
        .bind(jti)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get::<i64, _>(0) == 0)
    }

    /// Revoke one access token (RFC 7009) until it expires.
    pub async fn revoke_access(&self, jti: &str, expires_at: i64) -> Result<(), IdpError> {
        sqlx::query("INSERT INTO revoked_access (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record a client-assertion jti; false if it was already used.
    pub async fn use_assertion_jti(&self, jti: &str, expires_at: i64) -> Result<bool, IdpError> {
        let r = sqlx::query("INSERT INTO assertion_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}
