//! The event store at run time: its own small tokio runtime (the store's connections live
//! there, whichever pingora service calls it), the write queue, retention purges and the ban
//! list refresh.

use super::bans::BanList;
use super::queue::EventQueue;
use super::sqlite::SqliteStore;
use super::{now_ms, Ban, EventStore, StoreError};
use govgate_policies::Policy;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often bans are re-read from the store.
pub const BAN_REFRESH: Duration = Duration::from_millis(500);
/// How often events past the retention are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The store's file for a policy.
pub fn database_path(policy: &Policy) -> PathBuf {
    policy.data_dir().join("events.db")
}

pub struct EventService {
    rt: Option<tokio::runtime::Runtime>,
    store: Arc<dyn EventStore>,
    pub queue: EventQueue,
    pub bans: Arc<BanList>,
}

impl EventService {
    /// Opens the policy's store and starts the writer, the purge and the ban refresh. Call it
    /// outside any async runtime.
    pub fn start(policy: &Policy) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("govgate-events")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Unavailable(format!("runtime: {e}")))?;
        let path = database_path(policy);
        let store: Arc<dyn EventStore> = Arc::new(rt.block_on(SqliteStore::open(&path))?);
        let (queue, writer) = EventQueue::new(policy.attack_log.queue, store.clone());
        rt.spawn(writer);
        let bans = Arc::new(BanList::default());
        bans.replace(&rt.block_on(store.bans(now_ms()))?);
        let retention = policy.attack_log.retention.0;
        let (s, b) = (store.clone(), bans.clone());
        rt.spawn(async move {
            let mut refresh = tokio::time::interval(BAN_REFRESH);
            refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut purge = tokio::time::interval(PURGE_EVERY);
            loop {
                tokio::select! {
                    _ = refresh.tick() => match s.bans(now_ms()).await {
                        Ok(list) => b.replace(&list),
                        Err(e) => tracing::warn!("bans not refreshed, the previous list stays: {e}"),
                    },
                    _ = purge.tick() => match s.purge(now_ms() - retention.as_millis() as i64).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(events = n, "attack events past the retention deleted"),
                        Err(e) => tracing::warn!("attack events not purged: {e}"),
                    },
                }
            }
        });
        Ok(EventService { rt: Some(rt), store, queue, bans })
    }

    /// Runs `f` on the store's runtime and waits for its answer (callable from any runtime).
    pub async fn call<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<dyn EventStore>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let Some(rt) = &self.rt else { return Err(StoreError::Unavailable("shut down".into())) };
        rt.spawn(f(self.store.clone())).await.map_err(|e| StoreError::Unavailable(e.to_string()))?
    }

    /// Bans a network and applies the new list here at once.
    pub async fn ban(&self, ban: Ban) -> Result<(), StoreError> {
        let list = self
            .call(move |s| async move {
                s.ban(&ban).await?;
                s.bans(now_ms()).await
            })
            .await?;
        self.bans.replace(&list);
        Ok(())
    }

    /// Lifts a ban and applies the new list here at once; returns whether there was one.
    pub async fn unban(&self, network: ipnet::IpNet) -> Result<bool, StoreError> {
        let (found, list) = self
            .call(move |s| async move {
                let found = s.unban(&network).await?;
                Ok((found, s.bans(now_ms()).await?))
            })
            .await?;
        self.bans.replace(&list);
        Ok(found)
    }
}

impl Drop for EventService {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
