//! The bounded queue between the request path and the event store: `record` never waits (a
//! full queue drops the event and counts it); one writer task takes events in batches and
//! stores each batch in one transaction. `flush` waits until everything queued before it is
//! stored (clean shutdown).

use super::EventStore;
use crate::attack_log::{AttackEvent, AttackSink};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Events taken from the queue and written in one transaction, at most.
pub const BATCH: usize = 512;

enum Msg {
    Event(Box<AttackEvent>),
    Flush(oneshot::Sender<()>),
}

/// Counters of the queue (exported as metrics).
#[derive(Debug, Default)]
pub struct QueueStats {
    /// Refused because the queue was full.
    pub dropped: AtomicU64,
    /// Stored.
    pub written: AtomicU64,
    /// Lost because the store failed.
    pub failed: AtomicU64,
}

/// The sending side: an [`AttackSink`] that never blocks.
#[derive(Clone)]
pub struct EventQueue {
    tx: mpsc::Sender<Msg>,
    pub stats: Arc<QueueStats>,
}

impl EventQueue {
    /// A queue of `capacity` events and the writer that empties it into `store` (to be spawned).
    pub fn new(capacity: usize, store: Arc<dyn EventStore>) -> (EventQueue, impl std::future::Future<Output = ()> + Send) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stats = Arc::new(QueueStats::default());
        (EventQueue { tx, stats: stats.clone() }, writer(rx, store, stats))
    }

    /// Waits (up to `timeout`) until every event queued before this call is stored.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        let sent = async { self.tx.send(Msg::Flush(tx)).await.is_ok() && rx.await.is_ok() };
        tokio::time::timeout(timeout, sent).await.unwrap_or(false)
    }

    /// Events waiting to be written.
    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

impl AttackSink for EventQueue {
    fn record(&self, event: &AttackEvent) {
        if self.tx.try_send(Msg::Event(Box::new(event.clone()))).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn writer(mut rx: mpsc::Receiver<Msg>, store: Arc<dyn EventStore>, stats: Arc<QueueStats>) {
    let mut msgs = Vec::with_capacity(BATCH);
    let mut events = Vec::with_capacity(BATCH);
    loop {
        if rx.recv_many(&mut msgs, BATCH).await == 0 {
            return;
        }
        let mut waiting = Vec::new();
        for m in msgs.drain(..) {
            match m {
                Msg::Event(e) => events.push(*e),
                Msg::Flush(done) => waiting.push(done),
            }
        }
        if !events.is_empty() {
            write(&*store, &events, &stats).await;
            events.clear();
        }
        for done in waiting {
            let _ = done.send(());
        }
    }
}

/// Stores a batch, trying again twice when the database is busy.
async fn write(store: &dyn EventStore, events: &[AttackEvent], stats: &QueueStats) {
    let mut delay = Duration::from_millis(50);
    for attempt in 0..3 {
        match store.insert(events).await {
            Ok(()) => {
                stats.written.fetch_add(events.len() as u64, Ordering::Relaxed);
                return;
            }
            Err(e) if attempt < 2 => {
                tracing::warn!("attack events not stored yet, trying again: {e}");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            Err(e) => {
                tracing::error!(events = events.len(), "attack events lost: {e}");
                stats.failed.fetch_add(events.len() as u64, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack_log::Kind;
    use crate::events::sqlite::SqliteStore;
    use crate::events::EventQuery;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_is_bounded_and_a_flush_stores_everything_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&dir.path().join("events.db")).await.unwrap());
        let (queue, writer) = EventQueue::new(100, store.clone());
        tokio::spawn(writer);
        let e = AttackEvent::refusal(Kind::RateLimit, "flood", "203.0.113.7".parse().ok(), "shebao", "GET", "/", 429);
        for _ in 0..20_000 {
            queue.record(&e);
            assert!(queue.depth() <= 100);
        }
        assert!(queue.flush(Duration::from_secs(30)).await);
        let dropped = queue.stats.dropped.load(Ordering::Relaxed);
        let written = queue.stats.written.load(Ordering::Relaxed);
        assert!(dropped > 0, "a queue of 100 took 20000 events without dropping any");
        assert_eq!(dropped + written, 20_000);
        assert_eq!(store.query(&EventQuery::default()).await.unwrap().total, written);
    }
}
