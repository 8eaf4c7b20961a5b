//! One proxy service per worker thread, each with listening sockets of its own.
//!
//! Without work stealing, pingora runs a service's threads as separate single-threaded runtimes
//! and spawns both each accepted connection and each pooled upstream connection's idle watcher on
//! a runtime picked at random (`pingora_runtime::current_handle`). Half the time a reused upstream
//! connection then belongs to the other thread, and every request through it wakes that thread
//! twice. A service with one thread has only its own runtime to pick, so connection, upstream
//! pool and watchers stay on one core.
//!
//! Services that listen on the same address would normally share one socket (pingora's table of
//! listening fds), and on a shared socket the worker that wakes first accepts a whole burst of
//! connections. [`OwnSockets`] starts its service without that table, so each worker binds its
//! own `SO_REUSEPORT` socket and the kernel spreads new connections over the workers by their
//! address hash, as nginx does with `reuseport`. (These sockets are not in pingora's table, so
//! its `SIGQUIT` hand-over of listening sockets to a new process does not include them.)

use async_trait::async_trait;
use pingora_core::listeners::TcpSocketOptions;
use pingora_core::server::ListenFds;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::Service;

/// Socket options for a listener that several workers bind at once.
pub fn reuseport() -> TcpSocketOptions {
    let mut o = TcpSocketOptions::default();
    o.so_reuseport = Some(true);
    o
}

/// A service that binds its listeners itself instead of taking them from pingora's fd table.
pub struct OwnSockets<S>(pub S);

#[async_trait]
impl<S: Service> Service for OwnSockets<S> {
    async fn start_service(&mut self, _fds: Option<ListenFds>, shutdown: ShutdownWatch, listeners_per_fd: usize) {
        self.0.start_service(None, shutdown, listeners_per_fd).await
    }

    fn name(&self) -> &str {
        self.0.name()
    }

    fn threads(&self) -> Option<usize> {
        self.0.threads()
    }
}
