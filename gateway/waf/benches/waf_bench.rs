//! Per-request latency of the engine running CRS (plain `fn main` harness).
//! Run: `cargo bench -p govgate-waf --bench waf_bench` (CRS from
//! `GOVGATE_CRS_DIR` or `<repo>/../shared/crs`).

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
    method: &'static str,
    uri: &'static str,
    headers: Vec<(&'static str, String)>,
    body: &'static [u8],
}

fn requests() -> Vec<Req> {
    let common = |ct: Option<&'static str>, len: usize| {
        let mut h = vec![
            ("Host", "services.gov.example".to_string()),
            (
                "User-Agent",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36".to_string(),
            ),
            ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".to_string()),
            ("Accept-Language", "zh-CN,zh;q=0.9,en;q=0.8".to_string()),
            ("Accept-Encoding", "gzip, deflate, br".to_string()),
            ("Cookie", "session=8f3a9c0d2b7e4f61a5c3; lang=zh-CN".to_string()),
            ("Referer", "https://services.gov.example/apply/start".to_string()),
        ];
        if let Some(ct) = ct {
            h.push(("Content-Type", ct.to_string()));
            h.push(("Content-Length", len.to_string()));
        }
        h
    };
    let benign_body: &'static [u8] = "name=张三&city=杭州&id_type=passport&phone=13800138000&comment=预约办理".as_bytes();
    let attack_body: &'static [u8] =
        b"user=admin&q=1%27%20UNION%20SELECT%20password%20FROM%20users--%20&x=%3Cscript%3Ealert(1)%3C/script%3E";
    vec![
        Req { name: "benign GET", method: "GET", uri: "/apply/status?ref=A2024-00017&lang=zh", headers: common(None, 0), body: b"" },
        Req {
            name: "benign form POST",
            method: "POST",
            uri: "/apply/submit",
            headers: common(Some("application/x-www-form-urlencoded; charset=utf-8"), benign_body.len()),
            body: benign_body,
        },
        Req {
            name: "attack form POST",
            method: "POST",
            uri: "/search",
            headers: common(Some("application/x-www-form-urlencoded"), attack_body.len()),
            body: attack_body,
        },
    ]
}

fn main() {
    let dir = crs_dir();
    if !dir.join("rules").is_dir() {
        eprintln!("CRS not found at {} (set GOVGATE_CRS_DIR)", dir.display());
        std::process::exit(1);
    }
    let iters: usize = std::env::var("WAF_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    for pl in [1u8, 4] {
        let cfg = EngineConfig { paranoia: pl, mode: Mode::On, ..Default::default() };
        let engine = match Engine::from_crs_dir(&dir, &cfg) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("load: {e}");
                std::process::exit(1);
            }
        };
        println!("PL{pl}: {} rules, {} regex links prefiltered", engine.rule_count(), engine.prefiltered_rules());
        for r in requests() {
            let mut samples = Vec::with_capacity(iters);
            let mut blocked = false;
            for i in 0..iters + iters / 10 {
                let t = Instant::now();
                let mut tx = engine.transaction();
                let mut iv = tx.request_headers(r.method, r.uri.as_bytes(), "HTTP/1.1", &r.headers, "198.51.100.7");
                if iv.is_none() {
                    iv = tx.request_body(r.body);
                }
                std::hint::black_box(&tx);
                let el = t.elapsed();
                blocked = iv.is_some();
                if i >= iters / 10 {
                    samples.push(el.as_secs_f64() * 1e6);
                }
            }
            samples.sort_by(|a, b| a.total_cmp(b));
            let med = samples[samples.len() / 2];
            let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
            println!("PL{pl} {:<18} median {:>7.1} µs   p99 {:>8.1} µs   min {:>7.1} µs   blocked={blocked}", r.name, med, p99, samples[0]);
        }
    }
}
