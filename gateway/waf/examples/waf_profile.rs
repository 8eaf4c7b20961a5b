//! Runs one request through the engine N times, for instruction-count profiling:
//!
//! ```sh
//! cargo build --release -p govgate-waf --example waf_profile
//! valgrind --tool=callgrind --toggle-collect='*waf_profile*inspect_n*' \
//!     target/release/examples/waf_profile get 1 200
//! ```
//!
//! Arguments: request (`get`, `post` (urlencoded form), `json`, `sqli`, or `bare`: `GET /` with
//! only a Host header, what wrk sends in `bench/run.sh`); `+resp` after it (`get+resp`) adds the
//! response phases on a small HTML page, as the gateway runs them), paranoia level, iterations.
//! Only `inspect_n` is measured (loading CRS is excluded by `--toggle-collect`). It also
//! prints allocations (and reallocations) per request, counted by a wrapper around mimalloc
//! (the gateway's allocator).
//! With `WAF_EVICT_BYTES=4000000` every request starts on cold caches; under
//! `valgrind --tool=callgrind --cache-sim=yes --LL=1048576,16,64` the LL misses per request then
//! count the cache lines a request has to fetch from memory.

#[path = "../benches/common/mod.rs"]
mod common;
use govgate_waf::{Engine, EngineConfig, Mode};
use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The gateway's allocator (mimalloc), counting allocations (including reallocations), so the
/// example can report allocations per request.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to mimalloc; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { MiMalloc.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { MiMalloc.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { MiMalloc.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { MiMalloc.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn crs_dir() -> PathBuf {
    std::env::var("GOVGATE_CRS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs"))
}

/// A service page, for the response phases (`+resp` after the request kind).
const RESPONSE_BODY: &[u8] = "<!doctype html><html lang=\"zh-CN\"><head><title>办理进度</title></head><body><h1>申请编号 A2024-00017</h1><p>状态：已受理，预计 3 个工作日内办结。</p><a href=\"/apply/start\">返回</a></body></html>".as_bytes();

struct Req {
    response: bool,
    method: &'static str,
    uri: &'static str,
    headers: Vec<(&'static str, String)>,
    body: &'static [u8],
}

fn request(kind: &str) -> Req {
    let (kind, response) = match kind.strip_suffix("+resp") {
        Some(k) => (k, true),
        None => (kind, false),
    };
    let (method, uri, body): (&str, &str, &'static [u8]) = match kind {
        "post" => ("POST", "/apply/submit", "name=张三&city=杭州&id_type=passport&phone=13800138000&comment=预约办理".as_bytes()),
        "sqli" => ("GET", "/search?q=1%27%20UNION%20SELECT%20password%20FROM%20users--%20", b""),
        "json" => (
            "POST",
            "/api/v1/appointments",
            br#"{"service":"passport","date":"2026-12-01","slot":"09:30","applicant":{"name":"Li Wei","phone":"13800138000"}}"#,
        ),
        _ => ("GET", "/apply/status?ref=A2024-00017&lang=zh", b""),
    };
    let content_type = match kind {
        "json" => Some("application/json"),
        _ => (!body.is_empty()).then_some("application/x-www-form-urlencoded; charset=utf-8"),
    };
    if kind == "bare" {
        return Req { response, method: "GET", uri: "/", headers: vec![("Host", "127.0.0.1:18714".to_string())], body: b"" };
    }
    Req { response, method, uri, headers: common::browser_headers(content_type, body.len()), body }
}

#[inline(never)]
fn inspect_n(engine: &Engine, r: &Req, n: usize) -> usize {
    let mut blocked = 0;
    for _ in 0..n {
        let mut tx = engine.transaction();
        let mut iv = tx.request_headers(r.method, r.uri.as_bytes(), "HTTP/1.1", &r.headers, "198.51.100.7");
        if iv.is_none() {
            iv = tx.request_body(r.body);
        }
        if iv.is_none() && r.response {
            // The response phases, as the gateway runs them on an app's answer.
            iv = tx.response_headers(200, "HTTP/1.1", &[("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "1024")]);
            if iv.is_none() && tx.wants_response_body() {
                iv = tx.response_body(RESPONSE_BODY);
            }
        }
        blocked += usize::from(iv.is_some());
        std::hint::black_box(&tx);
    }
    blocked
}

#[inline(never)]
fn warm_up(engine: &Engine, r: &Req) -> bool {
    let mut tx = engine.transaction();
    tx.request_headers(r.method, r.uri.as_bytes(), "HTTP/1.1", &r.headers, "198.51.100.7").is_some() || tx.request_body(r.body).is_some()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map(String::as_str).unwrap_or("get");
    let pl: u8 = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1);
    let n: usize = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(100);
    let cfg = EngineConfig { paranoia: pl, mode: Mode::On, ..Default::default() };
    let engine = match Engine::from_crs_dir(&crs_dir(), &cfg) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("load: {e}");
            std::process::exit(1);
        }
    };
    let r = request(kind);
    // Warm up outside the measured function (regex caches are created on first use).
    let _ = std::hint::black_box(warm_up(&engine, &r));
    let a0 = ALLOCS.load(Ordering::Relaxed);
    // With WAF_EVICT_BYTES, each request starts on cold caches (see `common::evict_bytes`);
    // callgrind's `--cache-sim=yes` then counts the cache lines a request fetches. Only the
    // requests are timed.
    let mut evicted = vec![0u8; common::evict_bytes()];
    let (blocked, el) = if evicted.is_empty() {
        let t = std::time::Instant::now();
        (inspect_n(&engine, &r, n), t.elapsed())
    } else {
        (0..n).fold((0, std::time::Duration::ZERO), |(blocked, el), _| {
            common::evict(&mut evicted);
            let t = std::time::Instant::now();
            (blocked + inspect_n(&engine, &r, 1), el + t.elapsed())
        })
    };
    let allocs = (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / n as f64;
    println!(
        "{kind} PL{pl}: {n} requests, {blocked} blocked, {:.1} µs/request (mean), {allocs:.1} allocations/request",
        el.as_secs_f64() * 1e6 / n as f64
    );
}
