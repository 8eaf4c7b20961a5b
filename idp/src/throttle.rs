//! Brute-force throttling of password logins, per account and per client IP: after
//! `free_failures` failures every further failure doubles the wait (1 s, 2 s, 4 s … capped at
//! 15 min); after `lockout_failures` failures the account is locked until staff unlock it
//! ([`crate::admin::unlock_user`]). A success clears the account's counter.

use sqlx::Row;

use crate::error::IdpError;
use crate::store::Store;

/// Maximum delay between attempts.
pub const MAX_DELAY: i64 = 15 * 60;

/// Delay (seconds) after `failures` consecutive failures.
pub fn delay_for(failures: i64, free: i64) -> i64 {
    if failures < free {
        0
    } else {
        let exp = (failures - free).min(20) as u32;
        (1i64 << exp).min(MAX_DELAY)
    }
}

/// Seconds to wait before the next attempt for `key` (0 = allowed now).
pub async fn wait_for(store: &Store, key: &str, now: i64) -> Result<i64, IdpError> {
    let row = sqlx::query("SELECT next_allowed FROM login_throttle WHERE key = $1").bind(key).fetch_optional(&store.pool).await?;
    Ok(row.map(|r| (r.get::<i64, _>(0) - now).max(0)).unwrap_or(0))
}

/// Failures older than this are forgotten (a shared office NAT address must not accumulate
/// delays for ever). Account locks are not affected: they stay until staff unlock.
pub const FORGET_AFTER: i64 = 3600;

/// Record a failure; returns the new failure count.
pub async fn record_failure(store: &Store, key: &str, now: i64, free: i64) -> Result<i64, IdpError> {
    let row = sqlx::query("SELECT failures, last_failure FROM login_throttle WHERE key = $1").bind(key).fetch_optional(&store.pool).await?;
    let previous = match row {
        Some(r) if now - r.get::<i64, _>(1) <= FORGET_AFTER => r.get::<i64, _>(0),
        _ => 0,
    };
    let failures = previous + 1;
    let next = now + delay_for(failures, free);
    sqlx::query(
        "INSERT INTO login_throttle (key, failures, last_failure, next_allowed) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure, next_allowed = excluded.next_allowed",
    )
    .bind(key)
    .bind(failures)
    .bind(now)
    .bind(next)
    .execute(&store.pool)
    .await?;
    Ok(failures)
}

/// Clear the counter (after a successful login, or by staff).
pub async fn clear(store: &Store, key: &str) -> Result<(), IdpError> {
    sqlx::query("DELETE FROM login_throttle WHERE key = $1").bind(key).execute(&store.pool).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_delays() {
        assert_eq!(delay_for(1, 3), 0);
        assert_eq!(delay_for(3, 3), 1);
        assert_eq!(delay_for(4, 3), 2);
        assert_eq!(delay_for(6, 3), 8);
        assert_eq!(delay_for(100, 3), MAX_DELAY);
    }

    #[tokio::test]
    async fn counts_and_clears() {
        let s = Store::memory().await.unwrap();
        for _ in 0..3 {
            record_failure(&s, "ip:1.2.3.4", 1000, 3).await.unwrap();
        }
        assert_eq!(wait_for(&s, "ip:1.2.3.4", 1000).await.unwrap(), 1);
        assert_eq!(wait_for(&s, "ip:1.2.3.4", 1001).await.unwrap(), 0);
        // Old failures are forgotten.
        assert_eq!(record_failure(&s, "ip:1.2.3.4", 1000 + FORGET_AFTER + 1, 3).await.unwrap(), 1);
        clear(&s, "ip:1.2.3.4").await.unwrap();
        assert_eq!(wait_for(&s, "ip:1.2.3.4", 1000).await.unwrap(), 0);
    }
}
