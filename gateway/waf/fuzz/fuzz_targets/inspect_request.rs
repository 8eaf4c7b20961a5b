//! Any request — method, target, headers, body — run through the full OWASP CRS at paranoia
//! level 4 must end in a decision, never a panic. The CRS directory comes from
//! `GOVGATE_CRS_DIR` (default: `shared/crs` beside the repository).
#![no_main]

use govgate_waf::{Engine, EngineConfig, Mode};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = std::env::var("GOVGATE_CRS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/crs"));
        let cfg = EngineConfig { paranoia: 4, mode: Mode::On, ..EngineConfig::default() };
        match Engine::from_crs_dir(&dir, &cfg) {
            Ok(e) => e,
            Err(e) => panic!("cannot load the CRS from {}: {e}", dir.display()),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    // Layout: method \n target \n (name: value \n)* \n body
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let method = String::from_utf8_lossy(parts.next().unwrap_or(b"GET")).into_owned();
    let target = parts.next().unwrap_or(b"/").to_vec();
    let rest = parts.next().unwrap_or(b"");
    let (head, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &b""[..]),
    };
    let headers: Vec<(&[u8], &[u8])> = head
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], &line[colon + 1..]))
        })
        .collect();
    let mut tx = engine().transaction();
    if tx.request_headers(&method, &target, "HTTP/1.1", &headers, "192.0.2.1").is_none() {
        let _ = tx.request_body(body);
    }
    let _ = tx.anomaly_score();
});
