//! What the engine benchmark and the profiling example share: the headers of an ordinary
//! browser request, so that both measure the same realistic request head.

/// A desktop browser's request headers, plus `Content-Type`/`Content-Length` for a body.
pub fn browser_headers(content_type: Option<&'static str>, body_len: usize) -> Vec<(&'static str, String)> {
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
    if let Some(ct) = content_type {
        h.push(("Content-Type", ct.to_string()));
        h.push(("Content-Length", body_len.to_string()));
    }
    h
}

/// Bytes written between two requests when `WAF_EVICT_BYTES` is set (default 0: none). A few MB
/// push the engine's tables out of the core's caches, as the proxy, the kernel and the other
/// processes on the core do between two requests in the gateway; without it, the benchmark
/// repeats a few requests on caches that hold everything they touch.
pub fn evict_bytes() -> usize {
    std::env::var("WAF_EVICT_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Writes one byte per cache line of `buf` (see [`evict_bytes`]).
#[inline(never)]
pub fn evict(buf: &mut [u8]) {
    for b in buf.iter_mut().step_by(64) {
        *b = b.wrapping_add(1);
    }
    std::hint::black_box(buf);
}
