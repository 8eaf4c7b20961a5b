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
//! connections. [`WorkerSockets::bind`] instead binds one `SO_REUSEPORT` socket per worker and
//! address, and [`OwnSockets`] hands each worker its own through a table of its own. The kernel
//! then gives each new connection to one worker: in turn when the [`crate::round_robin`] program
//! could be attached, by address hash otherwise (as nginx does with `reuseport`). (These sockets
//! are not in pingora's table, so its `SIGQUIT` hand-over of listening sockets to a new process
//! does not include them.)

use crate::round_robin;
use anyhow::Context;
use async_trait::async_trait;
use pingora_core::server::{Fds, ListenFds, ShutdownWatch};
use pingora_core::services::Service;
use socket2::{Domain, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::sync::Arc;

/// pingora's listen backlog, which it sets again on sockets from a table.
const BACKLOG: i32 = 65535;

/// The listening sockets of every worker, one table per worker.
pub struct WorkerSockets {
    pub tables: Vec<ListenFds>,
    /// Whether the kernel hands connections out in turn (else by address hash).
    pub round_robin: bool,
}

impl WorkerSockets {
    /// Binds `workers` sockets to each address and tries to attach the round robin to each
    /// group; a kernel that refuses it is logged once and leaves the hash in place.
    pub fn bind(addresses: &[SocketAddr], workers: usize) -> anyhow::Result<WorkerSockets> {
        let tables: Vec<ListenFds> = (0..workers).map(|_| Arc::new(parking_lot::Mutex::new(Fds::new()))).collect();
        let mut round_robin = true;
        for &address in addresses {
            let sockets = (0..workers).map(|_| reuseport_socket(address)).collect::<anyhow::Result<Vec<_>>>()?;
            let fds: Vec<RawFd> = sockets.iter().map(|s| s.as_raw_fd()).collect();
            if round_robin {
                if let Err(e) = round_robin::attach(&fds) {
                    tracing::warn!("{address}: new connections go to the workers by address hash, not in turn: {e}");
                    round_robin = false;
                }
            }
            for (table, socket) in tables.iter().zip(sockets) {
                table.lock().add(address.to_string(), socket.into_raw_fd());
            }
        }
        Ok(WorkerSockets { tables, round_robin })
    }
}

/// A listening, non-blocking `SO_REUSEPORT` socket on `address`.
pub(crate) fn reuseport_socket(address: SocketAddr) -> anyhow::Result<Socket> {
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None).context("creating a socket")?;
    socket.set_reuse_address(true).context("SO_REUSEADDR")?;
    socket.set_reuse_port(true).context("SO_REUSEPORT")?;
    socket.bind(&address.into()).with_context(|| format!("binding {address}"))?;
    socket.listen(BACKLOG).with_context(|| format!("listening on {address}"))?;
    // pingora hands the fd to tokio, which needs it non-blocking.
    socket.set_nonblocking(true).context("O_NONBLOCK")?;
    Ok(socket)
}

/// A service that takes its listeners from a table of its own instead of pingora's.
pub struct OwnSockets<S> {
    pub service: S,
    pub sockets: ListenFds,
}

#[async_trait]
impl<S: Service> Service for OwnSockets<S> {
    async fn start_service(&mut self, _fds: Option<ListenFds>, shutdown: ShutdownWatch, listeners_per_fd: usize) {
        self.service.start_service(Some(self.sockets.clone()), shutdown, listeners_per_fd).await
    }

    fn name(&self) -> &str {
        self.service.name()
    }

    fn threads(&self) -> Option<usize> {
        self.service.threads()
    }
}
