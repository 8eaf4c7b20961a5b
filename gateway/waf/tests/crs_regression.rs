//! Runs CRS's own regression suite (go-ftw YAML) in-process against the
//! engine, at paranoia level 4 in DetectionOnly mode, like CRS's CI.
//!
//! CRS is found through `GOVGATE_CRS_DIR` or `<repo>/../shared/crs`. Known
//! failures are listed with a reason in `crs-overrides.toml`; the test fails
//! on any failure not listed there. In debug builds only every 8th test runs
//! unless `GOVGATE_CRS_FULL=1` (release builds always run everything).
//! `GOVGATE_CRS_WRITE_OVERRIDES=1` rewrites the overrides file with the
//! current failures (keeping existing reasons).

use base64::Engine as _;
use govgate_waf::{Engine, EngineConfig, Mode};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct TestFile {
    rule_id: Option<u64>,
    #[serde(default)]
    tests: Vec<TestCase>,
}

#[derive(Deserialize)]
struct TestCase {
    test_id: u64,
    stages: Vec<Stage>,
}

#[derive(Deserialize)]
struct Stage {
    input: Input,
    output: Output,
}

#[derive(Deserialize, Default)]
struct Input {
    method: Option<String>,
    uri: Option<String>,
    version: Option<String>,
    headers: Option<serde_yaml::Mapping>,
    data: Option<serde_yaml::Value>,
    encoded_request: Option<String>,
    autocomplete_headers: Option<bool>,
}

#[derive(Deserialize, Default)]
struct Output {
    log: Option<LogOut>,
    status: Option<serde_yaml::Value>,
    expect_error: Option<bool>,
}

#[derive(Deserialize, Default)]
struct LogOut {
    expect_ids: Option<Vec<u64>>,
    no_expect_ids: Option<Vec<u64>>,
    match_regex: Option<String>,
    no_match_regex: Option<String>,
}

fn crs_dir() -> PathBuf {
    if let Ok(d) = std::env::var("GOVGATE_CRS_DIR") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/crs")
}

const TEST_SETUP: &str = r#"
SecAction "id:900005,phase:1,nolog,pass,ctl:ruleEngine=DetectionOnly,ctl:ruleRemoveById=910000,\
  setvar:tx.blocking_paranoia_level=4,setvar:tx.crs_validate_utf8_encoding=1,setvar:tx.arg_name_length=100,\
  setvar:tx.arg_length=400,setvar:tx.total_arg_length=64000,setvar:tx.max_num_args=255,\
  setvar:tx.max_file_size=64100,setvar:tx.combined_file_sizes=65535"
"#;

fn yaml_str(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Sequence(s) => s.iter().map(yaml_str).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

struct Request {
    method: String,
    uri: Vec<u8>,
    version: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn build_request(input: &Input) -> Request {
    if let Some(enc) = &input.encoded_request {
        let cleaned: String = enc.chars().filter(|c| !c.is_whitespace()).collect();
        let raw = base64::engine::general_purpose::STANDARD.decode(cleaned).unwrap_or_default();
        return parse_raw(&raw);
    }
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(h) = &input.headers {
        for (k, v) in h {
            headers.push((yaml_str(k), yaml_str(v).into_bytes()));
        }
    }
    let body = input.data.as_ref().map(yaml_str).unwrap_or_default().into_bytes();
    if input.autocomplete_headers.unwrap_or(true) {
        let has = |hs: &Vec<(String, Vec<u8>)>, n: &str| hs.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
        if !body.is_empty() && !has(&headers, "content-length") {
            headers.push(("Content-Length".into(), body.len().to_string().into_bytes()));
        }
        if !body.is_empty() && !has(&headers, "content-type") {
            headers.push(("Content-Type".into(), b"application/x-www-form-urlencoded".to_vec()));
        }
        if !has(&headers, "connection") {
            headers.push(("Connection".into(), b"close".to_vec()));
        }
    }
    Request {
        method: input.method.clone().unwrap_or_else(|| "GET".into()),
        uri: input.uri.clone().unwrap_or_else(|| "/".into()).into_bytes(),
        version: input.version.clone().unwrap_or_else(|| "HTTP/1.1".into()),
        headers,
        body,
    }
}

fn parse_raw(raw: &[u8]) -> Request {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw.get(split + 4..).unwrap_or(b"").to_vec();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.splitn(3, ' ');
    let method = parts.next().unwrap_or("GET").to_string();
    let uri = parts.next().unwrap_or("/").as_bytes().to_vec();
    let version = parts.next().unwrap_or("HTTP/1.1").to_string();
    let headers: Vec<(String, Vec<u8>)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().as_bytes().to_vec()))).collect();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case(b"chunked")) {
        body = dechunk(&body);
    }
    Request { method, uri, version, headers, body }
}

fn dechunk(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let Some(e) = b[i..].windows(2).position(|w| w == b"\r\n") else { break };
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[i..i + e]).trim(), 16).unwrap_or(0);
        i += e + 2;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i..(i + n).min(b.len())]);
        i += n + 2;
    }
    out
}

/// Emulates the albedo backend: `/reflect` answers with the JSON-described response.
fn backend_response(req: &Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut status = 200;
    let mut headers = vec![("Content-Type".to_string(), "text/plain".to_string())];
    let mut body = Vec::new();
    if req.uri.starts_with(b"/reflect") {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body) {
            if let Some(s) = v.get("status").and_then(|s| s.as_u64()) {
                status = u16::try_from(s).unwrap_or(200);
            }
            if let Some(h) = v.get("headers").and_then(|h| h.as_object()) {
                headers.clear();
                for (k, x) in h {
                    headers.push((k.clone(), x.as_str().unwrap_or("").to_string()));
                }
                if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
                    headers.push(("Content-Type".into(), "text/plain".into()));
                }
            }
            if let Some(b) = v.get("body").and_then(|b| b.as_str()) {
                body = b.as_bytes().to_vec();
            }
            if let Some(b) = v.get("encodedBody").and_then(|b| b.as_str()) {
                body = base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default();
            }
        }
    }
    (status, headers, body)
}

fn run_stage(engine: &Engine, stage: &Stage) -> Result<(), String> {
    let req = build_request(&stage.input);
    let mut tx = engine.transaction();
    let mut status = None;
    if let Some(i) = tx.request_headers(&req.method, &req.uri, &req.version, &req.headers, "127.0.0.1") {
        status = Some(i.status);
    }
    if status.is_none() {
        if let Some(i) = tx.request_body(&req.body) {
            status = Some(i.status);
        }
    }
    if status.is_none() {
        let (st, hs, body) = backend_response(&req);
        if let Some(i) = tx.response_headers(st, "HTTP/1.1", &hs) {
            status = Some(i.status);
        } else if let Some(i) = tx.response_body(&body) {
            status = Some(i.status);
        } else {
            status = Some(st);
        }
    }
    tx.finish();
    let ids = tx.matched_rule_ids();
    if std::env::var("GOVGATE_CRS_VERBOSE").is_ok() {
        eprintln!("request: {} {} {}", req.method, String::from_utf8_lossy(&req.uri), req.version);
        for e in tx.matches() {
            eprintln!("  {}", e.log_line());
        }
    }
    let log: String = tx.matches().iter().map(|e| e.log_line()).collect::<Vec<_>>().join("\n");
    let out = &stage.output;
    if out.expect_error == Some(true) {
        return Err("expects a transport error (not reproducible in-process)".into());
    }
    if let Some(l) = &out.log {
        for id in l.expect_ids.iter().flatten() {
            if !ids.contains(id) {
                return Err(format!("expected id {id} not matched; matched {ids:?}"));
            }
        }
        for id in l.no_expect_ids.iter().flatten() {
            if ids.contains(id) {
                return Err(format!("id {id} matched but must not"));
            }
        }
        if let Some(r) = &l.match_regex {
            let re = regex::Regex::new(r).map_err(|e| e.to_string())?;
            if !re.is_match(&log) {
                return Err(format!("log does not match /{r}/"));
            }
        }
        if let Some(r) = &l.no_match_regex {
            let re = regex::Regex::new(r).map_err(|e| e.to_string())?;
            if re.is_match(&log) {
                return Err(format!("log matches /{r}/ but must not"));
            }
        }
    }
    if let Some(s) = &out.status {
        let wanted: Vec<u16> = match s {
            serde_yaml::Value::Sequence(v) => v.iter().filter_map(|x| x.as_u64()).filter_map(|x| u16::try_from(x).ok()).collect(),
            other => other.as_u64().and_then(|x| u16::try_from(x).ok()).into_iter().collect(),
        };
        if !wanted.is_empty() && !status.is_some_and(|st| wanted.contains(&st)) {
            return Err(format!("status {status:?}, expected {wanted:?}"));
        }
    }
    Ok(())
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
}

fn load_overrides(path: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(path) else { return BTreeMap::new() };
    #[derive(Deserialize)]
    struct F {
        #[serde(default)]
        failures: BTreeMap<String, String>,
    }
    match toml::from_str::<F>(&text) {
        Ok(f) => f.failures,
        Err(e) => panic!("{}: invalid overrides file: {e}", path.display()),
    }
}

#[test]
fn crs_regression_suite() {
    let dir = crs_dir();
    let tests_dir = dir.join("tests/regression/tests");
    assert!(
        dir.join("rules").is_dir() && tests_dir.is_dir(),
        "CRS not found at {} (set GOVGATE_CRS_DIR to a CRS v4 checkout with rules/ and tests/regression/tests/)",
        dir.display()
    );
    let cfg = EngineConfig { paranoia: 4, mode: Mode::DetectionOnly, extra_setup: TEST_SETUP.into(), ..Default::default() };
    let t0 = std::time::Instant::now();
    let engine = Engine::from_crs_dir(&dir, &cfg).unwrap_or_else(|e| panic!("loading CRS failed: {e}"));
    eprintln!("loaded {} rules in {:?}", engine.rule_count(), t0.elapsed());

    let full = !cfg!(debug_assertions) || std::env::var("GOVGATE_CRS_FULL").is_ok_and(|v| v == "1");
    let filter = std::env::var("GOVGATE_CRS_FILTER").ok();
    let overrides_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("crs-overrides.toml");
    let overrides = load_overrides(&overrides_path);

    let mut files = Vec::new();
    yaml_files(&tests_dir, &mut files);
    let mut per_file: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let mut seen: HashMap<String, bool> = HashMap::new();
    let mut counter = 0usize;
    let (mut passed, mut failed) = (0usize, 0usize);
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        let tf: TestFile = match serde_yaml::from_str(&text) {
            Ok(t) => t,
            Err(e) => panic!("{}: cannot parse test file: {e}", f.display()),
        };
        let group = f.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let rule = tf.rule_id.map(|r| r.to_string()).unwrap_or(stem);
        for tc in &tf.tests {
            let id = format!("{rule}-{}", tc.test_id);
            if let Some(fl) = &filter {
                if !id.starts_with(fl.as_str()) {
                    continue;
                }
            }
            counter += 1;
            if !full && (counter & 7) != 0 {
                continue;
            }
            let mut res = Ok(());
            for st in &tc.stages {
                res = run_stage(&engine, st);
                if res.is_err() {
                    break;
                }
            }
            let e = per_file.entry(group.clone()).or_default();
            match res {
                Ok(()) => {
                    passed += 1;
                    e.0 += 1;
                    seen.insert(id, true);
                }
                Err(msg) => {
                    failed += 1;
                    e.1 += 1;
                    seen.insert(id.clone(), false);
                    failures.insert(id, msg);
                }
            }
        }
    }
    for (g, (p, fl)) in &per_file {
        println!("{g}: {p} passed, {fl} failed");
    }
    let unexpected: Vec<&String> = failures.keys().filter(|k| !overrides.contains_key(*k)).collect();
    let stale: Vec<&String> = overrides.keys().filter(|k| seen.get(*k) == Some(&true)).collect();
    for k in &unexpected {
        println!("UNEXPECTED FAILURE {k}: {}", failures[*k]);
    }
    for k in &stale {
        println!("note: {k} is listed in crs-overrides.toml but passes now");
    }
    let total = passed + failed;
    let rate = if total > 0 { passed as f64 * 100.0 / total as f64 } else { 0.0 };
    println!("CRS regression ({}): {passed} of {total} = {rate:.2}% in {:?}", if full { "full" } else { "debug sample 1/8" }, t0.elapsed());
    println!("overall: {passed} passed, {failed} failed");
    if std::env::var("GOVGATE_CRS_WRITE_OVERRIDES").is_ok_and(|v| v == "1") && full {
        let mut s = String::from(
            "# Known CRS regression failures: test id (\"<rule_id>-<test_id>\") = reason.\n# The regression test fails on any failure not listed here.\n\n[failures]\n",
        );
        for (k, msg) in &failures {
            let reason = overrides.get(k).cloned().unwrap_or_else(|| format!("unclassified: {msg}"));
            s.push_str(&format!("\"{k}\" = {}\n", toml::Value::String(reason)));
        }
        std::fs::write(&overrides_path, s).unwrap_or_else(|e| panic!("write overrides: {e}"));
    }
    assert!(total > 0, "no CRS regression tests ran");
    assert!(unexpected.is_empty(), "{} unexpected CRS regression failure(s), see output", unexpected.len());
}
