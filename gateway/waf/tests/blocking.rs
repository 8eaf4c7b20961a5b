//! CRS at paranoia level 1 in `On` mode: attacks end in a 403 from CRS's own
//! blocking evaluation (949110); a benign form post with Chinese text passes.

use govgate_waf::{Engine, EngineConfig, Intervention, Mode};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn crs_dir() -> PathBuf {
    if let Ok(d) = std::env::var("GOVGATE_CRS_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs")
}

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        let dir = crs_dir();
        assert!(dir.join("rules").is_dir(), "CRS not found at {} (set GOVGATE_CRS_DIR)", dir.display());
        let cfg = EngineConfig { paranoia: 1, mode: Mode::On, ..Default::default() };
        Engine::from_crs_dir(&dir, &cfg).unwrap_or_else(|e| panic!("load CRS: {e}"))
    })
}

fn headers(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut h =
        vec![("Host", "gov.example"), ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"), ("Accept", "text/html,*/*;q=0.8")];
    h.extend_from_slice(extra);
    h
}

fn run(method: &str, uri: &str, extra: &[(&'static str, &'static str)], body: &[u8]) -> (Option<Intervention>, govgate_waf::Transaction) {
    let mut tx = engine().transaction();
    let mut h: Vec<(String, String)> = headers(extra).into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    if !body.is_empty() {
        h.push(("Content-Length".into(), body.len().to_string()));
    }
    let mut iv = tx.request_headers(method, uri.as_bytes(), "HTTP/1.1", &h, "198.51.100.7");
    if iv.is_none() {
        iv = tx.request_body(body);
    }
    (iv, tx)
}

fn assert_blocked(method: &str, uri: &str, extra: &[(&'static str, &'static str)], body: &[u8]) {
    let (iv, tx) = run(method, uri, extra, body);
    let iv = iv.unwrap_or_else(|| panic!("{uri} not blocked; matches: {:?}", tx.matched_rule_ids()));
    assert_eq!(iv.status, 403, "{iv:?}");
    assert_eq!(iv.rule_id, 949110, "blocked by CRS's anomaly evaluation");
    assert!(tx.anomaly_score() >= 5, "score {}", tx.anomaly_score());
    assert!(tx.matches().iter().any(|m| m.rule_id != 949110 && !m.message.is_empty()));
}

#[test]
fn sqli_in_query_is_blocked() {
    assert_blocked("GET", "/search?id=1%27%20OR%20%271%27%3D%271", &[], b"");
}

#[test]
fn xss_is_blocked() {
    assert_blocked("GET", "/page?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E", &[], b"");
}

#[test]
fn path_traversal_is_blocked() {
    assert_blocked("GET", "/download?file=../../../../etc/passwd", &[], b"");
}

#[test]
fn command_injection_is_blocked() {
    assert_blocked("POST", "/ping", &[("Content-Type", "application/x-www-form-urlencoded")], b"host=127.0.0.1%3B%20cat%20/etc/passwd");
}

#[test]
fn benign_chinese_form_passes() {
    let body = "name=张三&city=杭州&comment=你好，我想预约办理身份证。".as_bytes();
    let (iv, tx) = run("POST", "/apply", &[("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body);
    assert!(iv.is_none(), "benign request blocked: {:?}", tx.matches());
    assert_eq!(tx.anomaly_score(), 0, "{:?}", tx.matches());
}

#[test]
fn benign_json_passes() {
    let body = br#"{"applicant":{"name":"Li Wei","email":"li.wei@example.org"},"items":[1,2,3]}"#;
    let (iv, tx) = run("POST", "/api/forms", &[("Content-Type", "application/json")], body);
    assert!(iv.is_none(), "benign request blocked: {:?}", tx.matches());
}

#[test]
fn detection_only_never_interrupts() {
    let dir = crs_dir();
    let cfg = EngineConfig { paranoia: 1, mode: Mode::DetectionOnly, ..Default::default() };
    let e = Engine::from_crs_dir(&dir, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let mut tx = e.transaction();
    assert!(tx.request_headers("GET", b"/?id=1%27%20OR%20%271%27%3D%271", "HTTP/1.1", &headers(&[]), "10.0.0.1").is_none());
    assert!(tx.request_body(b"").is_none());
    assert_eq!(tx.detected_intervention().map(|i| i.status), Some(403));
}

#[test]
fn engine_is_send_sync_and_shared() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
    fn assert_send<T: Send>() {}
    assert_send::<govgate_waf::Transaction>();
    let e = engine().clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || {
                let mut tx = e.transaction();
                tx.request_headers("GET", b"/?q=../../etc/passwd", "HTTP/1.1", &[("Host", "x")], "10.0.0.1");
                tx.request_body(b"").is_some()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap_or(false));
    }
}
