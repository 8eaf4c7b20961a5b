//! The WAF through the gateway: the OWASP Core Rule Set (from `../shared/crs`) at paranoia
//! level 1, blocking attacks before the app sees them, or only recording them in detect mode.

use govgate_tests::{client, crs_dir, raw, Gateway, Upstream};
use std::time::Duration;

fn policy(mode: &str, up: &Upstream) -> String {
    format!(
        "[waf]\nrules = \"{}\"\nmode = \"{mode}\"\nparanoia = 1\n\n[[apps]]\nname = \"shebao\"\nhosts = [\"shebao.test\"]\nupstreams = [\"{}\"]\n",
        crs_dir().display(),
        up.addr
    )
}

async fn events_for(gw: &Gateway, incident: &str) -> Vec<serde_json::Value> {
    for _ in 0..40 {
        let found: Vec<_> = gw.attack_events().into_iter().filter(|e| e["incident_id"] == incident).collect();
        if !found.is_empty() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vec::new()
}

const ATTACKS: [(&str, &str); 5] = [
    ("sql injection", "/apply?id=1%27%20OR%20%271%27%3D%271"),
    ("cross-site scripting", "/search?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E"),
    ("path traversal", "/download?file=../../../../etc/passwd"),
    ("remote command execution", "/ping?host=127.0.0.1%3Bcat%20/etc/passwd"),
    ("php injection", "/index.php?x=%3C%3Fphp%20system(%27id%27)%3B%20%3F%3E"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_are_blocked_and_logged_in_block_mode() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy("block", &up));
    for (name, path) in ATTACKS {
        let r = client().get(gw.url(path)).header("host", "shebao.test").send().await.unwrap();
        assert_eq!(r.status(), 403, "{name} was not blocked");
        let incident = r.headers()["x-request-id"].to_str().unwrap().to_string();
        let page = r.text().await.unwrap();
        assert!(page.contains(&incident), "{name}: the 403 page shows the incident id");
        let events = events_for(&gw, &incident).await;
        assert_eq!(events.len(), 1, "{name}: one attack event");
        let e = &events[0];
        assert_eq!(e["action"], "blocked");
        assert_eq!(e["status"], 403);
        assert_eq!(e["app"], "shebao");
        assert!(e["anomaly_score"].as_i64().unwrap() >= 5, "{name}: {e}");
        assert!(e["rules"].as_array().unwrap().iter().any(|r| r["id"] == 949110), "{name}: CRS's blocking evaluation decided: {e}");
    }
    // A scanner is recognised by its User-Agent.
    let r = client()
        .get(gw.url("/"))
        .header("host", "shebao.test")
        .header("user-agent", "sqlmap/1.7.2#stable (https://sqlmap.org)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "scanner");
    assert!(up.received().is_empty(), "the app never saw an attack: {:?}", up.received());
    assert!(gw.metrics().contains("govgate_waf_events_total{action=\"blocked\",app=\"shebao\"} 6"), "{}", gw.metrics());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attack_in_the_body_is_blocked_before_the_app_is_contacted() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy("block", &up));
    let r = client()
        .post(gw.url("/login"))
        .header("host", "shebao.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("user=admin%27--&password=x%27%20OR%201%3D1--")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let json = client()
        .post(gw.url("/api/apply"))
        .header("host", "shebao.test")
        .header("content-type", "application/json")
        .body(r#"{"name":"x","comment":"<script>alert(1)</script>"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 403, "XSS inside JSON");
    assert!(up.raw().is_empty(), "not one byte reached the app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_benign_chinese_form_passes_unchanged() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy("block", &up));
    let form =
        "name=%E5%BC%A0%E4%B8%89&city=%E6%9D%AD%E5%B7%9E&note=%E7%94%B3%E8%AF%B7%E7%A4%BE%E4%BF%9D%E5%8D%A1%EF%BC%8C%E8%B0%A2%E8%B0%A2";
    let r = client()
        .post(gw.url("/apply"))
        .header("host", "shebao.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept-language", "zh-CN,zh;q=0.9")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.received()[0].body, form.as_bytes());
    let r = client().get(gw.url("/guide?topic=%E5%8C%BB%E4%BF%9D%E6%8A%A5%E9%94%80")).header("host", "shebao.test").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(gw.attack_events().is_empty(), "{:?}", gw.attack_events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_mode_logs_but_lets_the_request_through() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy("detect", &up));
    let r = client().get(gw.url(ATTACKS[0].1)).header("host", "shebao.test").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let incident = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let events = events_for(&gw, &incident).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "detected");
    assert!(events[0]["status"].is_null());
    assert_eq!(up.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_and_chunked_bodies_reach_the_app_byte_for_byte() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy("block", &up));
    // Larger than pingora's 64 KiB retry buffer and than the WAF's inspection limit.
    // (A form post: CRS refuses content types it does not know, such as application/octet-stream.)
    let big: Vec<u8> = b"data=".iter().copied().chain((0..200_000u32).map(|i| b'a' + (i % 26) as u8)).collect();
    let r = client()
        .post(gw.url("/upload"))
        .header("host", "shebao.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", gw.attack_events());
    // Just under the retry buffer: read whole, replayed by pingora.
    let mid: Vec<u8> = big[..60_000].to_vec();
    let r = client()
        .post(gw.url("/upload2"))
        .header("host", "shebao.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(mid.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Chunked, several chunks.
    let mut req = b"POST /upload3 HTTP/1.1\r\nHost: shebao.test\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for part in big[..90_000].chunks(30_000) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (status, _, _) = raw(gw.http_port, &req).await;
    assert_eq!(status, 200, "{:?}", gw.attack_events());
    let got = up.received();
    let body_of = |p: &str| got.iter().find(|r| r.path == p).map(|r| r.body.clone()).unwrap_or_default();
    assert_eq!(body_of("/upload").len(), big.len());
    assert!(body_of("/upload") == big, "200 KB body changed on the way");
    assert!(body_of("/upload2") == mid, "60 KB body changed on the way");
    assert!(body_of("/upload3") == big[..90_000], "chunked body changed on the way");
}

fn leak_policy(action: &str, up: &Upstream) -> String {
    format!(
        "[waf]\npersonal_data = \"{action}\"\n\n[[apps]]\nname = \"shebao\"\nhosts = [\"shebao.test\"]\nupstreams = [\"{}\"]\n",
        up.addr
    )
}

/// The test upstream echoes the path, so a path with personal numbers makes a leaking response.
const LEAKY: &str = "/profile?id=11010519491231002X&phone=13812345678";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_in_responses_is_masked_and_reported() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&leak_policy("mask", &up));
    let r = client().get(gw.url(LEAKY)).header("host", "shebao.test").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let incident = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(r.text().await.unwrap(), "upstream=up path=/profile?id=110105********002X&phone=138****5678");
    let events = events_for(&gw, &incident).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "masked");
    assert_eq!(events[0]["personal_data"]["resident_ids"], 1);
    assert_eq!(events[0]["personal_data"]["mobiles"], 1);
    assert!(!events[0].to_string().contains("11010519491231002X"), "the event itself masks the number");
    // A response without personal data is untouched and makes no event.
    let r = client().get(gw.url("/order/20261123")).header("host", "shebao.test").send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "upstream=up path=/order/20261123");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_in_responses_can_be_stopped() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&leak_policy("block", &up));
    let (_, _, body) =
        raw(gw.http_port, format!("GET {LEAKY} HTTP/1.1\r\nHost: shebao.test\r\nConnection: close\r\n\r\n").as_bytes()).await;
    assert!(!body.contains("11010519491231002X") && !body.contains("13812345678"), "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = gw.attack_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "blocked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_requests_pass_in_block_mode() {
    // Browsers speak HTTP/2, where the host is `:authority`, not a Host header.
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy("block", &up));
    let ca = std::fs::read(gw.dir.path().join("data/tls/ca.pem")).unwrap();
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .resolve("shebao.test", ([127, 0, 0, 1], gw.https_port).into())
        .build()
        .unwrap();
    let r = h2.get(format!("https://shebao.test:{}/apply?x=1", gw.https_port)).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let attack = h2.get(format!("https://shebao.test:{}{}", gw.https_port, ATTACKS[0].1)).send().await.unwrap();
    assert_eq!(attack.status(), 403, "attacks are still blocked over HTTP/2");
}

/// A JSON body longer than the inspection limit: the part read ahead is still parsed (the cut
/// document is repaired), so an attack before the cut is blocked rather than hidden by a parse
/// error; a benign long document passes and reaches the app whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_body_cut_at_the_inspection_limit_is_inspected_up_to_the_cut() {
    let up = Upstream::start("up").await;
    let policy = policy("block", &up).replace("paranoia = 1\n", "paranoia = 1\nrequest_body_limit = \"2KiB\"\n");
    let gw = Gateway::start(&policy);
    let post = |body: String| {
        client().post(gw.url("/api/apply")).header("host", "shebao.test").header("content-type", "application/json").body(body).send()
    };
    let tail = "y".repeat(8 * 1024);
    let attack = format!(r#"{{"name":"张三","note":"{}","q":"1' UNION SELECT password FROM users--","more":"{tail}"}}"#, "x".repeat(500));
    let r = post(attack).await.unwrap();
    assert_eq!(r.status(), 403, "the injection sits before the cut");
    let incident = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let events = events_for(&gw, &incident).await;
    assert!(events[0]["rules"].as_array().unwrap().iter().any(|m| m["variable"].as_str().unwrap_or("").contains("json.q")), "{events:?}");
    assert!(up.received().is_empty());

    let benign = format!(r#"{{"name":"张三","note":"{}","more":"{tail}"}}"#, "x".repeat(500));
    let r = post(benign.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.received()[0].body, benign.as_bytes(), "the whole body reaches the app");
}

/// An app that answers every request with a database error page (what CRS's RESPONSE-951 rules
/// look for: a MySQL syntax error leaking from a broken query).
async fn leaky_app() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = govgate_tests::claim_listener();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "<html><body><h1>查询失败</h1><p>You have an error in your SQL syntax; check the manual that \
                            corresponds to your MySQL server version for the right syntax to use near ''' at line 1</p></body></html>";
                let resp =
                    format!("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

fn leaky_policy(mode: &str, addr: std::net::SocketAddr) -> String {
    format!(
        "[waf]\nrules = \"{}\"\nmode = \"{mode}\"\nparanoia = 1\n\n[[apps]]\nname = \"shebao\"\nhosts = [\"shebao.test\"]\nupstreams = [\"{addr}\"]\n",
        crs_dir().display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_error_leaking_in_a_response_is_stopped_in_block_mode() {
    let gw = Gateway::start(&leaky_policy("block", leaky_app().await));
    let (status, head, body) = raw(gw.http_port, b"GET /apply?id=17 HTTP/1.1\r\nHost: shebao.test\r\nConnection: close\r\n\r\n").await;
    // The head had gone out before the body was inspected; none of the body follows it.
    assert!(!body.contains("SQL syntax"), "the error page leaked: {status} {head}\n{body}");
    let incident = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("x-request-id")).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_default();
    let events = events_for(&gw, &incident).await;
    assert_eq!(events.len(), 1, "one event for the response: {events:?} ({head})");
    let e = &events[0];
    assert_eq!(e["action"], "blocked");
    let ids: Vec<i64> = e["rules"].as_array().unwrap().iter().filter_map(|r| r["id"].as_i64()).collect();
    assert!(ids.contains(&951230), "the MySQL error rule matched: {e}");
    assert!(ids.contains(&959100), "CRS's outbound blocking evaluation decided: {e}");
    assert!(e["anomaly_score"].as_i64().unwrap() >= 4, "the outbound score: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_error_leaking_in_a_response_is_recorded_in_detect_mode() {
    let gw = Gateway::start(&leaky_policy("detect", leaky_app().await));
    let r = client().get(gw.url("/apply?id=17")).header("host", "shebao.test").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let incident = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(r.text().await.unwrap().contains("SQL syntax"), "detect mode passes the response unchanged");
    let events = events_for(&gw, &incident).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "detected");
    assert!(events[0]["rules"].as_array().unwrap().iter().any(|r| r["id"] == 951230), "{}", events[0]);
}
