//! # govgate-waf
//!
//! A SecLang rule engine that loads the OWASP Core Rule Set v4 unmodified and
//! enforces it. No I/O on the request path, no pingora dependency.
//!
//! ```no_run
//! use govgate_waf::{Engine, EngineConfig, Mode};
//! let engine = Engine::from_crs_dir("/etc/crs".as_ref(), &EngineConfig { paranoia: 1, mode: Mode::On, ..Default::default() }).unwrap();
//! let mut tx = engine.transaction();
//! let headers = [("Host", "example.org")];
//! if let Some(i) = tx.request_headers("GET", b"/?q=1", "HTTP/1.1", &headers, "192.0.2.1") { println!("block {}", i.status); }
//! if let Some(i) = tx.request_body(b"") { println!("block {}", i.status); }
//! println!("score {}", tx.anomaly_score());
//! ```

pub mod actions;
pub mod body;
pub mod engine;
pub mod error;
mod fxhash;
pub mod injection;
pub mod litscan;
pub mod macros;
pub mod operators;
pub mod parser;
pub mod prefilter;
pub mod rule;
pub mod tcache;
pub mod transaction;
pub mod transforms;
pub mod txcheck;
pub mod txvars;
pub mod unions;
pub mod variables;

pub use actions::{BodyProcessor, Mode};
pub use engine::{BodyLimitAction, Engine, EngineConfig};
pub use error::LoadError;
pub use transaction::{Intervention, MatchEvent, Transaction};
