//! The smallest pingora reverse proxy: every request goes to one upstream, with no filter, no
//! log and no metric. `bench/run.sh` runs it as the `pingora-bare` target, beside the gateway
//! and nginx, to show how much of the distance to nginx is pingora's own and how much the
//! gateway's.
//!
//! ```sh
//! cargo build --release -p govgate-gateway --example bare_proxy
//! target/release/examples/bare_proxy 127.0.0.1:8000 127.0.0.1:9000 [THREADS] [shared]
//! ```
//!
//! It uses the gateway's best settings (`threads` workers without work stealing, a keep-alive
//! pool of 128 upstream connections, mimalloc) and, like the gateway, one single-threaded
//! service per worker on `SO_REUSEPORT` sockets of its own (`own_sockets`). With `shared` it
//! runs pingora's default instead: one service whose threads share one listening socket.

use async_trait::async_trait;
use govgate_gateway::own_sockets::{OwnSockets, WorkerSockets};
use pingora_core::server::configuration::ServerConf;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_core::Result;
use pingora_proxy::{ProxyHttp, Session};
use std::net::SocketAddr;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bare_proxy LISTEN UPSTREAM [THREADS] [shared]";
    let (Some(listen), Some(upstream)) =
        (args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()), args.get(2).and_then(|a| a.parse::<SocketAddr>().ok()))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let threads = match args.get(3).map(|t| t.parse::<usize>()) {
        None => 2,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("{usage}: THREADS must be a positive number");
            std::process::exit(2);
        }
    };
    let shared = args.get(4).is_some_and(|a| a == "shared");
    let conf = ServerConf { threads, work_stealing: false, upstream_keepalive_pool_size: 128, ..ServerConf::default() };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    if shared {
        let mut service = pingora_proxy::http_proxy_service(&server.configuration, Bare { upstream });
        service.add_tcp(&listen.to_string());
        server.add_service(service);
    } else {
        let sockets = WorkerSockets::bind(&[listen], threads).unwrap_or_else(|e| {
            eprintln!("bare_proxy: {e:#}");
            std::process::exit(1);
        });
        for (worker, sockets) in sockets.tables.into_iter().enumerate() {
            let mut service =
                pingora_proxy::http_proxy_service_with_name(&server.configuration, Bare { upstream }, &format!("bare proxy {worker}"));
            service.add_tcp(&listen.to_string());
            service.threads = Some(1);
            server.add_service(OwnSockets { service, sockets });
        }
    }
    server.run_forever();
}
