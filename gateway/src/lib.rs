//! # govgate gateway
//!
//! The reverse proxy in front of every government app. A request flows through pingora's
//! phases in [`proxy`], each of which stays thin and calls plain functions from the modules
//! below, so that every rule can be unit-tested without a network:
//!
//! ```text
//! client ─TLS─▶ client_cert (certificate login: chain validated after the handshake)
//!            ─▶ slow_client (head deadline)
//!            ─▶ request_filter: framing · limits · path · routing · client_ip · rate_limit
//!                               body_prefetch · waf (CRS; attack_log) · sso (login, identity
//!                               headers, /.govgate/*) · headers::strip_reserved (refusals: error_page)
//!            ─▶ upstream_peer:  upstreams (load balancing, health, failover)
//!            ─▶ upstream_request_filter: headers::set_forwarding
//!            ─▶ response_filter: security headers, hide upstream identity; leaks (personal data)
//!            ─▶ logging: access_log (JSON line) · metrics (Prometheus)
//! ```
//!
//! [`server`] assembles the pingora server; without work stealing each worker thread runs its
//! own copy of the proxy on sockets of its own ([`own_sockets`]), so a connection and its
//! upstream keep-alive pool stay on one core, and the kernel hands new connections to the
//! workers in turn ([`round_robin`]). [`state`] holds the compiled policy; a `SIGHUP`
//! builds a new one and swaps it in atomically, so in-flight requests finish on the policy they
//! started with.

pub mod access_log;
pub mod admin;
pub mod admission;
pub mod attack_log;
pub mod body_prefetch;
pub mod certs_api;
pub mod certs_cli;
pub mod client_cert;
pub mod client_ip;
pub mod console;
pub mod crl_fetch;
pub mod demo;
pub mod error_page;
pub mod events;
pub mod framing;
pub mod headers;
pub mod idp_cli;
pub mod idp_service;
pub mod leaks;
pub mod limits;
pub mod logs_cli;
pub mod metrics;
pub mod own_sockets;
pub mod path;
pub mod pki;
pub mod proxy;
pub mod rate_limit;
pub mod round_robin;
pub mod routing;
pub mod server;
pub mod slow_client;
pub mod sso;
pub mod state;
pub mod tls;
pub mod trust;
pub mod upstreams;
pub mod waf;
