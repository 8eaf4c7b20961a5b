//! End-to-end tests of the gateway as apps and clients meet it: the real binary, real
//! upstream servers, real TLS, on random loopback ports.

use govgate_tests::{client, raw, Gateway, Upstream};
use std::time::{Duration, Instant};

fn app(name: &str, host: &str, paths: &str, upstreams: &[&Upstream]) -> String {
    let ups: Vec<String> = upstreams.iter().map(|u| format!("\"{}\"", u.addr)).collect();
    format!("\n[[apps]]\nname = \"{name}\"\nhosts = [\"{host}\"]\npaths = [{paths}]\nupstreams = [{}]\n", ups.join(", "))
}

async fn get(gw: &Gateway, host: &str, path: &str) -> reqwest::Response {
    client().get(gw.url(path)).header("host", host).send().await.expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_by_host_and_path_prefix() {
    let (portal, api, other) = (Upstream::start("portal").await, Upstream::start("api").await, Upstream::start("other").await);
    let policy = app("portal", "shebao.test", "\"/\"", &[&portal])
        + &app("api", "shebao.test", "\"/api\"", &[&api])
        + &app("tax", "tax.test", "\"/\"", &[&other]);
    let gw = Gateway::start(&policy);

    let body = |r: reqwest::Response| async move { r.text().await.unwrap() };
    assert_eq!(body(get(&gw, "shebao.test", "/index.html").await).await, "upstream=portal path=/index.html");
    assert_eq!(body(get(&gw, "shebao.test", "/api/v1/me?x=1").await).await, "upstream=api path=/api/v1/me?x=1");
    assert_eq!(body(get(&gw, "shebao.test", "/apix").await).await, "upstream=portal path=/apix");
    assert_eq!(body(get(&gw, "TAX.test:443", "/").await).await, "upstream=other path=/");

    // An unknown host gets the 404 page, whose incident id is the response's request id.
    let r = get(&gw, "unknown.test", "/").await;
    assert_eq!(r.status(), 404);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let page = r.text().await.unwrap();
    assert!(page.contains(&format!("<code id=\"incident-id\">{id}</code>")), "{page}");
    assert!(page.contains("页面不存在"));

    // Path traversal is resolved before routing: the app that serves /api sees /api/secret.
    let (status, _, body) =
        raw(gw.http_port, b"GET /public/../api/secret HTTP/1.1\r\nHost: shebao.test\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200);
    assert_eq!(body, "upstream=api path=/api/secret");
    let (status, _, _) = raw(gw.http_port, b"GET /../../etc/passwd HTTP/1.1\r\nHost: shebao.test\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_over_two_upstreams_and_fails_over_when_one_stops() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let gw = Gateway::start(&app("shebao", "shebao.test", "\"/\"", &[&a, &b]));
    for _ in 0..10 {
        assert_eq!(get(&gw, "shebao.test", "/").await.status(), 200);
    }
    let (na, nb) = (a.received().len(), b.received().len());
    assert_eq!(na + nb, 10);
    assert!(na >= 3 && nb >= 3, "round robin should spread requests: a={na} b={nb}");

    b.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..20 {
        let r = get(&gw, "shebao.test", &format!("/after-stop/{i}")).await;
        assert_eq!(r.status(), 200, "request {i} failed after one upstream stopped");
        assert!(r.text().await.unwrap().starts_with("upstream=a "));
    }
    assert!(gw.metrics().contains("govgate_upstream_failures_total{app=\"shebao\""), "failures are counted");

    a.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = client().get(gw.url("/")).header("host", "shebao.test").header("accept", "application/json").send().await.unwrap();
    assert_eq!(r.status(), 502);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "bad_gateway");
    assert!(v["incident_id"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_take_a_dead_upstream_out() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let policy = app("shebao", "shebao.test", "\"/\"", &[&a, &b])
        + "health_check = { kind = \"http\", path = \"/healthz\", interval = \"200ms\" }\n";
    let gw = Gateway::start(&policy);
    b.stop();
    // Wait until the health check has taken b out (readiness lists the healthy upstreams).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, body) = raw(gw.admin_port, b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
        if !body.contains(&b.addr.to_string()) {
            break;
        }
        assert!(Instant::now() < deadline, "the dead upstream is still listed as healthy: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = a.received().iter().filter(|r| r.path != "/healthz").count();
    for _ in 0..10 {
        assert_eq!(get(&gw, "shebao.test", "/").await.status(), 200);
    }
    let after = a.received().iter().filter(|r| r.path != "/healthz").count();
    assert_eq!(after - before, 10, "every request goes to the healthy upstream");
    assert!(!gw.metrics().contains("govgate_upstream_failures_total"), "no request even tried the dead upstream");
    let (status, _, body) = raw(gw.admin_port, b"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&a.addr.to_string()) && !body.contains(&b.addr.to_string()), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_and_ratelimit_headers() {
    let up = Upstream::start("up").await;
    let policy = "[rate_limit]\nper_ip = { rate = \"1/min\", burst = 5 }\n".to_string() + &app("shebao", "shebao.test", "\"/\"", &[&up]);
    let gw = Gateway::start(&policy);
    for i in 0..5 {
        assert_eq!(get(&gw, "shebao.test", "/").await.status(), 200, "request {i} is within the burst");
    }
    let r = client()
        .get(gw.url("/"))
        .header("host", "shebao.test")
        .header("accept", "application/json")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let h = r.headers().clone();
    let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(h["ratelimit-policy"], "\"per-ip\";q=5;w=300");
    assert_eq!(h["ratelimit"].to_str().unwrap(), format!("\"per-ip\";r=0;t={retry}"));
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], "rate_limited");
    assert!(v["message"].as_str().unwrap().contains("too many requests"));
    assert_eq!(up.received().len(), 5, "refused requests never reach the app");
    assert!(gw.metrics().contains("govgate_rate_limited_total{app=\"shebao\",scope=\"per-ip\"} 1"));

    // The access log says which request was limited.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = gw.access_log();
    let limited: Vec<_> = log.iter().filter(|l| l["rate_limited"] == true).collect();
    assert_eq!(limited.len(), 1, "{log:?}");
    assert_eq!(limited[0]["status"], 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_limit_protects_the_login_path_only() {
    let up = Upstream::start("up").await;
    let policy = app("shebao", "shebao.test", "\"/\"", &[&up]) + "[[apps.route_limits]]\npath = \"/login\"\nrate = \"3/min\"\n";
    let gw = Gateway::start(&policy);
    let codes: Vec<u16> = futures_codes(&gw, "/login", 5).await;
    assert_eq!(codes, vec![200, 200, 200, 429, 429]);
    assert_eq!(futures_codes(&gw, "/home", 5).await, vec![200; 5]);
    let r = get(&gw, "shebao.test", "/login").await;
    assert_eq!(r.headers()["ratelimit-policy"], "\"per-route\";q=3;w=60");
}

async fn futures_codes(gw: &Gateway, path: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(get(gw, "shebao.test", path).await.status().as_u16());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_413_and_never_reach_the_app() {
    let up = Upstream::start("up").await;
    let policy = app("shebao", "shebao.test", "\"/\"", &[&up]) + "max_body_bytes = \"1KiB\"\n";
    let gw = Gateway::start(&policy);
    let ok = client().post(gw.url("/upload")).header("host", "shebao.test").body(vec![b'a'; 1024]).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    let big = client().post(gw.url("/upload")).header("host", "shebao.test").body(vec![b'a'; 1025]).send().await.unwrap();
    assert_eq!(big.status(), 413);
    assert!(big.text().await.unwrap().contains("上传内容过大"));
    assert_eq!(up.received().len(), 1, "only the request within the limit reached the app");

    // A chunked body has no length up front: it is cut off once it passes the limit.
    let mut req = b"POST /chunked HTTP/1.1\r\nHost: shebao.test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        req.extend_from_slice(b"200\r\n");
        req.extend_from_slice(&[b'b'; 0x200]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (status, _, _) = raw(gw.http_port, &req).await;
    assert_eq!(status, 413);
    assert!(up.received().iter().all(|r| r.path != "/chunked"), "the app never got a complete oversized request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_attempts_are_refused_and_never_forwarded() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&app("shebao", "shebao.test", "\"/\"", &[&up]));
    let attempts: [&[u8]; 5] = [
        // CL.TE: a front end that trusts Content-Length would forward the smuggled request.
        b"POST / HTTP/1.1\r\nHost: shebao.test\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: shebao.test\r\n\r\n",
        // Two Content-Length headers that disagree.
        b"POST / HTTP/1.1\r\nHost: shebao.test\r\nContent-Length: 0\r\nContent-Length: 43\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: shebao.test\r\n\r\n",
        // A list in one Content-Length header.
        b"POST / HTTP/1.1\r\nHost: shebao.test\r\nContent-Length: 43, 0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: shebao.test\r\n\r\n",
        // An obfuscated Transfer-Encoding.
        b"POST / HTTP/1.1\r\nHost: shebao.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: shebao.test\r\n\r\n",
        // A signed Content-Length.
        b"POST / HTTP/1.1\r\nHost: shebao.test\r\nContent-Length: +43\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: shebao.test\r\n\r\n",
    ];
    for (i, attempt) in attempts.iter().enumerate() {
        let (status, head, _) = raw(gw.http_port, attempt).await;
        assert_eq!(status, 400, "attempt {i}: {head}");
        assert!(head.to_ascii_lowercase().contains("connection: close"), "attempt {i} must close the connection: {head}");
    }
    let raw_bytes = String::from_utf8_lossy(&up.raw()).to_string();
    assert!(!raw_bytes.contains("smuggled"), "the upstream saw a smuggled request: {raw_bytes}");
    assert!(up.received().is_empty(), "no attempt reached the upstream: {:?}", up.received());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_identity_and_forwarding_headers_are_replaced() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&app("shebao", "shebao.test", "\"/\"", &[&up]));
    let r = client()
        .get(gw.url("/me"))
        .header("host", "shebao.test")
        .header("X-Govgate-User", "admin")
        .header("x-govgate-roles", "security")
        .header("X-Forwarded-For", "6.6.6.6")
        .header("X-Request-Id", "attacker-chosen")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let resp_headers = r.headers().clone();
    let got = &up.received()[0];
    assert!(got.headers.iter().all(|(k, _)| !k.to_ascii_lowercase().starts_with("x-govgate-")), "{:?}", got.headers);
    assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(got.header("x-forwarded-proto"), Some("http"));
    assert_eq!(got.header("x-forwarded-host"), Some("shebao.test"));
    let id = got.header("x-request-id").unwrap();
    assert_ne!(id, "attacker-chosen");
    assert_eq!(resp_headers["x-request-id"], id);
    // Security headers are added, the upstream's identity is hidden.
    assert_eq!(resp_headers["x-content-type-options"], "nosniff");
    assert_eq!(resp_headers["x-frame-options"], "SAMEORIGIN");
    assert!(resp_headers.get("server").is_none() && resp_headers.get("x-powered-by").is_none());
    assert!(resp_headers.get("strict-transport-security").is_none(), "no HSTS over plain HTTP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_with_the_generated_ca() {
    let up = Upstream::start("up").await;
    let policy = app("shebao", "shebao.test", "\"/\"", &[&up]);
    let gw = Gateway::start(&policy);
    let ca = std::fs::read(gw.dir.path().join("data/tls/ca.pem")).expect("the development CA was generated");
    let https = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .resolve("shebao.test", ([127, 0, 0, 1], gw.https_port).into())
        .build()
        .unwrap();
    let r = https.get(format!("https://shebao.test:{}/secure", gw.https_port)).send().await.expect("TLS handshake with the generated CA");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
    assert_eq!(up.received()[0].header("x-forwarded-proto"), Some("https"));
    // A client that does not trust the CA is refused by the handshake.
    let untrusting = reqwest::Client::builder().no_proxy().resolve("shebao.test", ([127, 0, 0, 1], gw.https_port).into()).build().unwrap();
    assert!(untrusting.get(format!("https://shebao.test:{}/", gw.https_port)).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_redirected_to_https_when_configured() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start_redirecting(&app("shebao", "shebao.test", "\"/\"", &[&up]));
    let r = get(&gw, "shebao.test:80", "/apply?step=2").await;
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], format!("https://shebao.test:{}/apply?step=2", gw.https_port).as_str());
    // No open redirect: an unknown host is not redirected anywhere.
    assert_eq!(get(&gw, "evil.example", "/").await.status(), 404);
    assert!(up.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reload_changes_a_route_without_failing_requests() {
    let (old, new) = (Upstream::start("old").await, Upstream::start("new").await);
    let gw = Gateway::start(&app("shebao", "shebao.test", "\"/\"", &[&old]));
    let url = gw.url("/");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let c = client();
            let (mut ok, mut failed, mut bodies) = (0, 0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match c.get(&url).header("host", "shebao.test").send().await {
                    Ok(r) if r.status() == 200 => {
                        ok += 1;
                        bodies.push(r.text().await.unwrap_or_default());
                    }
                    _ => failed += 1,
                }
            }
            (ok, failed, bodies)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.reload(&app("shebao", "shebao.test", "\"/\"", &[&new]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while new.received().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, bodies) = load.await.unwrap();
    assert_eq!(failed, 0, "no request may fail during the reload ({ok} succeeded)");
    assert!(bodies.first().is_some_and(|b| b.starts_with("upstream=old")));
    assert!(bodies.last().is_some_and(|b| b.starts_with("upstream=new")), "the new route is in force");
    assert!(gw.log().contains("policy reloaded"));

    // A broken policy is refused and the current one stays.
    std::fs::write(&gw.config, "this is = not [valid").unwrap();
    gw.signal("HUP");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gw.log().contains("policy reload refused"), "{}", gw.log());
    assert_eq!(get(&gw, "shebao.test", "/").await.text().await.unwrap(), "upstream=new path=/");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    let up = Upstream::start("up").await;
    let mut gw = Gateway::start(&app("shebao", "shebao.test", "\"/\"", &[&up]));
    let url = gw.url("/slow");
    let in_flight = tokio::spawn(async move { client().get(url).header("host", "shebao.test").send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    gw.signal("TERM");
    assert_eq!(in_flight.await.unwrap().expect("the in-flight request completed"), 200);
    let status = tokio::task::spawn_blocking(move || gw.wait_exit(Duration::from_secs(15))).await.unwrap();
    assert!(status.is_some(), "govgate exited after draining");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let up = Upstream::start("up").await;
    let policy = "[limits]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\nidle_timeout = \"5s\"\n".to_string()
        + &app("shebao", "shebao.test", "\"/\"", &[&up]);
    let gw = Gateway::start(&policy);
    let port = gw.http_port;
    // Slowloris: one header byte every 300 ms never completes the head within 1 s.
    let closed_after = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let start = Instant::now();
        let head = b"GET / HTTP/1.1\r\nHost: shebao.test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        for b in head.iter() {
            if s.write_all(&[*b]).is_err() {
                return start.elapsed();
            }
            let mut buf = [0u8; 64];
            match s.read(&mut buf) {
                Ok(0) => return start.elapsed(),
                Ok(_) => return start.elapsed(),
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        start.elapsed()
    })
    .await
    .unwrap();
    assert!(closed_after < Duration::from_secs(3), "the slow client held the connection for {closed_after:?}");

    // A slow body (one chunk every 400 ms) is cut off at the body deadline.
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"POST /upload HTTP/1.1\r\nHost: shebao.test\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        for _ in 0..8 {
            if s.write_all(b"1\r\na\r\n").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(400));
        }
        let _ = s.write_all(b"0\r\n\r\n");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).to_string()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(gw.metrics().contains("govgate_slow_clients_total{phase=\"head\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_get_414_and_431() {
    let up = Upstream::start("up").await;
    let policy = "[limits]\nmax_uri_bytes = 64\nmax_header_count = 10\n".to_string() + &app("shebao", "shebao.test", "\"/\"", &[&up]);
    let gw = Gateway::start(&policy);
    let long = format!("/{}", "a".repeat(100));
    assert_eq!(get(&gw, "shebao.test", &long).await.status(), 414);
    let mut req = client().get(gw.url("/")).header("host", "shebao.test");
    for i in 0..12 {
        req = req.header(format!("x-h{i}"), "1");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
    assert!(up.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_is_masked_in_the_access_log() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&app("shebao", "shebao.test", "\"/\"", &[&up]));
    assert_eq!(get(&gw, "shebao.test", "/query?id=11010119900307123X&phone=13812345678").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let raw_log = std::fs::read_to_string(gw.dir.path().join("access.log")).unwrap();
    assert!(!raw_log.contains("11010119900307123X") && !raw_log.contains("13812345678"), "{raw_log}");
    let line = gw.access_log().into_iter().find(|l| l["app"] == "shebao").expect("an access-log line");
    assert_eq!(line["path"], "/query?id=110101********123X&phone=138****5678");
    for field in
        ["request_id", "client_ip", "method", "host", "status", "upstream", "duration_ms", "bytes_sent", "rate_limited", "timestamp"]
    {
        assert!(line.get(field).is_some(), "access log lacks {field}: {line}");
    }
}
