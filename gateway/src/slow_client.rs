//! The deadline for a request head. pingora's read timeout applies to each read, so a client
//! that drips one byte every few seconds could hold a connection for ever (slowloris). This
//! wrapper around the proxy app closes a connection whose request head is not complete within
//! `limits.header_timeout` (plus `keepalive_timeout` on a reused connection, whose idle wait
//! comes first). The body has its own deadline, checked in the proxy's body filter.

use crate::proxy::ReusedConnection;
use crate::state::Shared;
use async_trait::async_trait;
use pingora_core::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora_core::protocols::http::v2::server::H2Options;
use pingora_core::protocols::http::ServerSession;
use pingora_core::server::ShutdownWatch;
use pingora_timeout::fast_timeout::fast_sleep;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Handed to the proxy with the connection; the proxy calls [`HeadRead::done`] once it has
/// the request head.
pub struct HeadRead(Mutex<Option<oneshot::Sender<()>>>);

impl HeadRead {
    pub fn done(&self) {
        if let Some(tx) = self.0.lock().ok().and_then(|mut g| g.take()) {
            let _ = tx.send(());
        }
    }
}

pub struct SlowClientGuard<A> {
    inner: Arc<A>,
    shared: Arc<Shared>,
}

impl<A> SlowClientGuard<A> {
    pub fn new(inner: A, shared: Arc<Shared>) -> Self {
        SlowClientGuard { inner: Arc::new(inner), shared }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for SlowClientGuard<A> {
    async fn process_new_http(self: &Arc<Self>, mut session: ServerSession, shutdown: &ShutdownWatch) -> Option<ReusedHttpStream> {
        let limits = self.shared.state.load().policy.limits.clone();
        let reused = session.take_connection_user_context().is_some_and(|c| c.is::<ReusedConnection>());
        let deadline = limits.header_timeout.0 + if reused { limits.keepalive_timeout.0 } else { Duration::ZERO };
        let (tx, rx) = oneshot::channel();
        session.set_connection_user_context(Some(Box::new(HeadRead(Mutex::new(Some(tx))))));
        let fut = self.inner.process_new_http(session, shutdown);
        tokio::pin!(fut);
        tokio::select! {
            biased;
            r = &mut fut => return r,
            _ = rx => {}
            // pingora's timer, not tokio's: registering a tokio timer that is due before the
            // runtime's next wake-up writes to its eventfd (a system call and an extra wake-up,
            // on about every fourth request here); pingora's timer thread fires at millisecond
            // ticks and costs nothing when, as usual, the head arrives first.
            _ = fast_sleep(deadline) => {
                self.shared.metrics.slow_clients.with_label_values(&["head"]).inc();
                tracing::debug!("closing a connection whose request head did not arrive within {deadline:?}");
                return None;
            }
        }
        fut.await
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.inner.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.inner.server_options()
    }

    async fn http_cleanup(&self) {
        self.inner.http_cleanup().await
    }
}
