//! Assembles the pingora server: the proxy on every public listener (plain and TLS; one
//! single-threaded copy per worker when work stealing is off, see [`crate::own_sockets`]),
//! the admin listener, and a maintenance task (health checks, rate-limit housekeeping, policy
//! reload on `SIGHUP`), and shutdown: `SIGTERM` drains in-flight requests, then exits.

use crate::admin::AdminApp;
use crate::admission::ListenerInfo;
use crate::attack_log::{AttackSink, Fanout, JsonLinesSink, StdoutSink};
use crate::client_cert;
use crate::events::service::{database_path, EventService};
use crate::own_sockets::{OwnSockets, WorkerSockets};
use crate::proxy::Gateway;
use crate::slow_client::SlowClientGuard;
use crate::state::{GatewayState, Shared};
use crate::tls;
use anyhow::Context;
use async_trait::async_trait;
use govgate_policies::{ClientCerts, Listener, Mirror, Policy};
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::{ListenFds, RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora_core::services::background::{background_service, BackgroundService};
use pingora_core::services::listening::Service;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds a ready-to-run server for the policy at `config_path`. The caller may add more
/// services (the demo adds its apps) and then calls `run_forever`.
pub fn build(config_path: &Path) -> anyhow::Result<(Server, Arc<Shared>)> {
    let policy = govgate_policies::load(config_path)?;
    let threads = match policy.server.threads {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        n => n,
    };
    let conf = ServerConf {
        threads,
        work_stealing: policy.server.work_stealing,
        upstream_keepalive_pool_size: policy.server.upstream_keepalive_pool_size,
        // Draining happens before pingora's shutdown starts (see `DrainOnTerm`).
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let tls_files = tls_files(&policy)?;
    let events = Arc::new(EventService::start(&policy).with_context(|| format!("opening {}", database_path(&policy).display()))?);
    let mut sinks: Vec<Box<dyn AttackSink>> = vec![Box::new(events.queue.clone())];
    match policy.attack_log.mirror {
        Mirror::Off => {}
        Mirror::Stdout => sinks.push(Box::new(StdoutSink)),
        Mirror::File => {
            let file = policy.data_dir().join(&policy.attack_log.mirror_file);
            sinks.push(Box::new(JsonLinesSink::open(&file).with_context(|| format!("opening the attack log {}", file.display()))?));
        }
    }
    let mut shared = Shared::new(GatewayState::build(policy.clone(), None)?, config_path.to_path_buf(), Box::new(Fanout(sinks)));
    shared.events = Some(events);
    let shared = Arc::new(shared);

    let listeners: Vec<_> = policy
        .listeners
        .iter()
        .map(|l| {
            let redirect_to_port =
                l.redirect_to.as_ref().and_then(|t| policy.listeners.iter().find(|o| &o.name == t)).map(|o| o.address.port());
            (l.address, ListenerInfo { name: l.name.clone(), https: l.tls, redirect_to_port })
        })
        .collect();
    // One client-certificate verifier for all TLS listeners that ask for certificates.
    let anchors = shared.state.load().trust.as_ref().map(|t| t.anchors().to_vec()).unwrap_or_default();
    let verifier = Arc::new(client_cert::Verifier::new(&anchors));
    for l in policy.listeners.iter().filter(|l| l.tls && l.client_certs == ClientCerts::Optional && anchors.is_empty()) {
        tracing::warn!(
            "listener {}: client_certs is on, but {} holds no trust anchor: every client certificate will be refused",
            l.name,
            policy.resolve(&policy.certs.trust).display()
        );
    }
    // Without work stealing, one single-threaded service per worker, each on sockets of its
    // own (see `own_sockets`); with it, one service (`None`: pingora's sockets) whose threads
    // share the sockets.
    let services: Vec<Option<ListenFds>> = if !policy.server.work_stealing && threads > 1 {
        let addresses: Vec<_> = policy.listeners.iter().map(|l| l.address).collect();
        let sockets = WorkerSockets::bind(&addresses, threads)?;
        tracing::info!(threads, round_robin = sockets.round_robin, "one listening socket per worker");
        sockets.tables.into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    for (worker, sockets) in services.into_iter().enumerate() {
        let gateway = Gateway { shared: shared.clone(), listeners: listeners.clone() };
        let proxy = pingora_proxy::http_proxy(&server.configuration, gateway);
        let name = if sockets.is_some() { format!("govgate proxy {worker}") } else { "govgate proxy".into() };
        let mut service = Service::new(name, SlowClientGuard::new(proxy, shared.clone()));
        for l in &policy.listeners {
            let addr = l.address.to_string();
            if l.tls {
                let settings = tls_settings(l, tls_files.as_ref(), &shared, &verifier).with_context(|| format!("TLS setup for {addr}"))?;
                service.add_tls_with_settings(&addr, None, settings);
            } else {
                service.add_tcp(&addr);
            }
        }
        if let Some(sockets) = sockets {
            service.threads = Some(1);
            server.add_service(OwnSockets { service, sockets });
        } else {
            server.add_service(service);
        }
    }

    if let Some(addr) = policy.admin.address {
        let mut admin = Service::new("govgate admin".into(), AdminApp { shared: shared.clone() });
        admin.add_tcp(&addr.to_string());
        admin.threads = Some(1);
        server.add_service(admin);
    }
    let mut maintenance = background_service("govgate maintenance", Maintenance { shared: shared.clone() });
    maintenance.threads = Some(1);
    server.add_service(maintenance);
    Ok((server, shared))
}

/// Runs the server until SIGTERM (drain, then exit), SIGINT (exit without draining) or SIGQUIT
/// (pingora's hand-over of the listening sockets in its table to a new process; per-worker
/// sockets are not in it). Queued attack events are stored in every case.
pub fn run(server: Server, shared: Arc<Shared>) {
    let timeout = shared.state.load().policy.server.shutdown_timeout.0;
    server.run(RunArgs { shutdown_signal: Box::new(DrainOnTerm { shared, timeout }) });
}

/// On SIGTERM, stops keeping connections alive and waits (up to `shutdown_timeout`) until no
/// request is in flight; only then is pingora told to shut down.
struct DrainOnTerm {
    shared: Arc<Shared>,
    timeout: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for DrainOnTerm {
    async fn recv(&self) -> ShutdownSignal {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int), Ok(mut quit)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::quit()))
        else {
            tracing::error!("cannot listen for shutdown signals");
            return std::future::pending().await;
        };
        let signal = tokio::select! {
            _ = int.recv() => ShutdownSignal::FastShutdown,
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = term.recv() => {
                self.shared.draining.store(true, Ordering::Release);
                let deadline = Instant::now() + self.timeout;
                let mut n = self.shared.in_flight.load(Ordering::Acquire);
                tracing::info!(in_flight = n, "SIGTERM: draining");
                while n > 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    n = self.shared.in_flight.load(Ordering::Acquire);
                }
                if n > 0 {
                    tracing::warn!(in_flight = n, "shutdown_timeout reached with requests still in flight");
                }
                ShutdownSignal::GracefulTerminate
            }
        };
        // Whichever way the process ends, the attack events already queued are stored first.
        if let Some(events) = &self.shared.events {
            if !events.queue.flush(Duration::from_secs(10)).await {
                tracing::error!("attack events still queued at exit were not all stored");
            }
        }
        signal
    }
}

/// The rustls settings of a TLS listener: the server certificate, HTTP/2, and the client
/// certificate verifier when the listener asks for client certificates.
fn tls_settings(
    l: &Listener,
    files: Option<&(String, String)>,
    shared: &Arc<Shared>,
    verifier: &Arc<client_cert::Verifier>,
) -> anyhow::Result<TlsSettings> {
    let (cert, key) = files.context("TLS listener without certificate")?;
    let mut settings = match l.client_certs {
        ClientCerts::Off => TlsSettings::intermediate(cert, key)?,
        ClientCerts::Optional => {
            let mut s = TlsSettings::with_callbacks(Box::new(client_cert::Callbacks { shared: shared.clone() }))?;
            s.set_certificate_chain_file(cert)?;
            s.set_private_key_file(key)?;
            s.set_client_cert_verifier(verifier.clone());
            s
        }
    };
    settings.enable_h2();
    Ok(settings)
}

/// The certificate and key for TLS listeners, generating development ones for `"auto"`.
fn tls_files(policy: &Policy) -> anyhow::Result<Option<(String, String)>> {
    if !policy.listeners.iter().any(|l| l.tls) {
        return Ok(None);
    }
    if policy.tls.is_auto() {
        let names = GatewayState::tls_names(policy);
        let dev = tls::ensure_dev_certificates(&policy.data_dir(), &names)?;
        tracing::info!(ca = %dev.ca.display(), "using development TLS certificates; trust the CA file in your browser");
        return Ok(Some((dev.certificate.display().to_string(), dev.key.display().to_string())));
    }
    let cert = policy.resolve(policy.tls.certificate.as_ref());
    let key = policy.resolve(policy.tls.key.as_ref());
    Ok(Some((cert.display().to_string(), key.display().to_string())))
}

/// Periodic work off the request path, and policy reloads.
struct Maintenance {
    shared: Arc<Shared>,
}

impl Maintenance {
    fn reload(&self) {
        match self.shared.reload() {
            Ok(outcome) => {
                self.shared.metrics.reloads.with_label_values(&["ok"]).inc();
                tracing::info!(apps = outcome.apps, "policy reloaded from {}", self.shared.config_path.display());
                if !outcome.needs_restart.is_empty() {
                    tracing::warn!(sections = ?outcome.needs_restart, "these sections changed but take effect only after a restart");
                }
            }
            Err(e) => {
                self.shared.metrics.reloads.with_label_values(&["refused"]).inc();
                tracing::error!("policy reload refused, the current policy stays in force:\n{e}");
            }
        }
    }
}

#[async_trait]
impl BackgroundService for Maintenance {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!("cannot listen for SIGHUP, reloads are disabled: {e}");
                None
            }
        };
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut last_housekeeping = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                Some(_) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => self.reload(),
                _ = tick.tick() => {
                    let state = self.shared.state.load_full();
                    for app in &state.apps {
                        app.pool.check_health_if_due().await;
                    }
                    if last_housekeeping.elapsed() > Duration::from_secs(10) {
                        state.rate_limits.housekeeping();
                        last_housekeeping = Instant::now();
                    }
                }
            }
        }
    }
}
