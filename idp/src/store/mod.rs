//! Storage: a `sqlx` SQLite pool (WAL, foreign keys) with the embedded migrations of
//! `idp/migrations/`. Queries elsewhere use `$n` placeholders in ascending order and plain
//! SQL types so that a PostgreSQL backend can follow.

pub mod grants;
pub mod sessions;

use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

use crate::error::IdpError;

/// Handle to the database.
#[derive(Clone)]
pub struct Store {
    pub pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Open (creating if missing) and migrate the database at `url` (`sqlite://path`).
    pub async fn open(url: &str) -> Result<Self, IdpError> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    /// An in-memory database (tests).
    pub async fn memory() -> Result<Self, IdpError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    /// Delete expired codes, pending requests, sessions and assertion jtis.
    pub async fn purge_expired(&self, now: i64) -> Result<(), IdpError> {
        sqlx::query("DELETE FROM auth_requests WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        sqlx::query("DELETE FROM assertion_jtis WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1").bind(now - 3600).execute(&self.pool).await?;
        sqlx::query("DELETE FROM revoked_access WHERE expires_at < $1").bind(now).execute(&self.pool).await?;
        Ok(())
    }
}
