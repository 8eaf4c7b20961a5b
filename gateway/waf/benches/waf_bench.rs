//! Per-request latency of the engine running CRS (plain `fn main` harness).
//! Run: `cargo bench -p govgate-waf --bench waf_bench` (CRS from
//! `GOVGATE_CRS_DIR` or `<repo>/../shared/crs`; `WAF_BENCH_ITERS` samples per
//! request, default 2000).
//!
//! For each paranoia level (1 and 4) it prints median, p99 and min µs per
//! request (transaction creation, headers and body phases) for every request
//! of a benign and an attack corpus, then median and p99 over each corpus.
//! Requests are interleaved round-robin so that noise from other processes
//! is spread evenly. `WAF_EVICT_BYTES=4000000` writes that many bytes between
//! requests (not timed), so that each request starts on cold caches, as in the
//! gateway.

mod common;

// The gateway's allocator (`gateway/src/main.rs`): the engine allocates per request, so the
// allocator is part of what a request costs in the gateway.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use govgate_waf::{Engine, EngineConfig, Mode};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn crs_dir() -> PathBuf {
    std::env::var("GOVGATE_CRS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs"))
}

struct Req {
    name: &'static str,
    attack: bool,
    method: &'static str,
    uri: &'static str,
    headers: Vec<(&'static str, String)>,
    body: &'static [u8],
}

fn req(name: &'static str, attack: bool, method: &'static str, uri: &'static str, ct: Option<&'static str>, body: &'static [u8]) -> Req {
    Req { name, attack, method, uri, headers: common::browser_headers(ct, body.len()), body }
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");
const JSON: Option<&str> = Some("application/json");

fn corpus() -> Vec<Req> {
    vec![
        // Benign corpus.
        req("benign GET", false, "GET", "/apply/status?ref=A2024-00017&lang=zh", None, b""),
        req("benign GET static", false, "GET", "/static/css/site.min.css", None, b""),
        req("benign GET search", false, "GET", "/search?q=residence+permit+renewal&page=2", None, b""),
        req(
            "benign form POST",
            false,
            "POST",
            "/apply/submit",
            FORM,
            "name=张三&city=杭州&id_type=passport&phone=13800138000&comment=预约办理".as_bytes(),
        ),
        req(
            "benign JSON POST",
            false,
            "POST",
            "/api/v1/appointments",
            JSON,
            br#"{"service":"passport","date":"2026-12-01","slot":"09:30","applicant":{"name":"Li Wei","phone":"13800138000"}}"#,
        ),
        // Attack corpus.
        req("SQLi GET", true, "GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--%20", None, b""),
        req("XSS GET", true, "GET", "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", None, b""),
        req("path traversal GET", true, "GET", "/download?file=../../../../etc/passwd", None, b""),
        req("RCE form POST", true, "POST", "/tools/ping", FORM, b"host=127.0.0.1%3B%20cat%20/etc/passwd"),
        req(
            "attack form POST",
            true,
            "POST",
            "/search",
            FORM,
            b"user=admin&q=1%27%20UNION%20SELECT%20password%20FROM%20users--%20&x=%3Cscript%3Ealert(1)%3C/script%3E",
        ),
    ]
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn main() {
    let dir = crs_dir();
    if !dir.join("rules").is_dir() {
        eprintln!("CRS not found at {} (set GOVGATE_CRS_DIR)", dir.display());
        std::process::exit(1);
    }
    let iters: usize = std::env::var("WAF_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let reqs = corpus();
    let evict_bytes = common::evict_bytes();
    for pl in [1u8, 4] {
        let cfg = EngineConfig { paranoia: pl, mode: Mode::On, ..Default::default() };
        let engine = match Engine::from_crs_dir(&dir, &cfg) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("load: {e}");
                std::process::exit(1);
            }
        };
        println!(
            "PL{pl}: {} rules, {} regex links prefiltered, {} bytes written between requests",
            engine.rule_count(),
            engine.prefiltered_rules(),
            evict_bytes
        );
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(iters); reqs.len()];
        let mut blocked = vec![false; reqs.len()];
        let mut evicted = vec![0u8; evict_bytes];
        for i in 0..iters + iters / 10 {
            for (j, r) in reqs.iter().enumerate() {
                common::evict(&mut evicted);
                let t = Instant::now();
                let mut tx = engine.transaction();
                let mut iv = tx.request_headers(r.method, r.uri.as_bytes(), "HTTP/1.1", &r.headers, "198.51.100.7");
                if iv.is_none() {
                    iv = tx.request_body(r.body);
                }
                std::hint::black_box(&tx);
                let el = t.elapsed();
                blocked[j] = iv.is_some();
                if i >= iters / 10 {
                    samples[j].push(el.as_secs_f64() * 1e6);
                }
            }
        }
        let mut by_corpus: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for (j, r) in reqs.iter().enumerate() {
            let s = &mut samples[j];
            s.sort_by(|a, b| a.total_cmp(b));
            by_corpus[usize::from(r.attack)].extend_from_slice(s);
            println!(
                "PL{pl} {:<20} median {:>7.1} µs   p99 {:>8.1} µs   min {:>7.1} µs   blocked={}",
                r.name,
                percentile(s, 50),
                percentile(s, 99),
                s.first().copied().unwrap_or(0.0),
                blocked[j]
            );
        }
        for (k, name) in ["benign corpus", "attack corpus"].iter().enumerate() {
            let s = &mut by_corpus[k];
            s.sort_by(|a, b| a.total_cmp(b));
            println!("PL{pl} {:<20} median {:>7.1} µs   p99 {:>8.1} µs", name, percentile(s, 50), percentile(s, 99));
        }
    }
}
