//! A tiny standalone server around `Idp::handle` for manual testing (plain HTTP on loopback).
//!
//! `cargo run -p govgate-idp --example dev_server -- <data-dir> [port] [clients.toml]`
//! Issuer: `http://127.0.0.1:<port>`. Browsers drop `__Host-`/`Secure` cookies on plain HTTP
//! except on localhost in some browsers — production always runs behind the gateway's TLS.

use std::net::SocketAddr;

use govgate_idp::{Idp, IdpConfig, IdpRequest};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = args.next().unwrap_or_else(|| "./idp-data".into());
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cfg = IdpConfig::new(format!("http://{addr}"), &data);
    if let Some(c) = args.next() {
        cfg.clients_file = c.into();
    }
    let idp = Idp::open(cfg).await?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("govgate-idp dev server on http://{addr}");
    loop {
        let (stream, peer) = listener.accept().await?;
        let idp = idp.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: hyper::Request<Incoming>| {
                let idp = idp.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
                    let headers = parts
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                        .collect();
                    let r = idp
                        .handle(IdpRequest {
                            method: parts.method.as_str().into(),
                            path: parts.uri.path().into(),
                            query: parts.uri.query().unwrap_or("").into(),
                            headers,
                            body,
                            client_ip: peer.ip(),
                            tls: false,
                            client_cert: None,
                        })
                        .await;
                    let mut b = hyper::Response::builder().status(r.status);
                    for (k, v) in &r.headers {
                        b = b.header(k, v);
                    }
                    b.body(Full::new(Bytes::from(r.body)))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
