//! The attack log store, the admin API and bans, through the real binary: events survive a
//! restart, a flood of attacks keeps the event queue bounded while normal traffic is served,
//! the API refuses callers without the role, personal data is never stored unmasked, and a ban
//! refuses the next request within a second, on this instance and on another sharing the store.

use govgate_tests::{binary, client, crs_dir, Gateway, Upstream};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";

/// The argon2id hash of `password`, from `govgate admin-password` (nothing committed).
pub fn password_hash(password: &str) -> String {
    let mut child = Command::new(binary()).arg("admin-password").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Keys at the top go into the harness's `[admin]` section.
fn policy(up: &Upstream, extra: &str) -> String {
    format!(
        "password_argon2 = \"{}\"\n\n[forwarding]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\n[waf]\nrules = \"{}\"\nmode = \"block\"\n\n{extra}\n\n\
         [[apps]]\nname = \"shebao\"\nhosts = [\"shebao.test\"]\nupstreams = [\"{}\"]\n",
        password_hash(PASSWORD),
        crs_dir().display(),
        up.addr
    )
}

fn admin(gw: &Gateway, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", gw.admin_port)
}

/// Logs in; returns the bearer token.
async fn login(gw: &Gateway) -> String {
    let r = client().post(admin(gw, "/api/login")).json(&json!({ "password": PASSWORD })).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
}

async fn get(gw: &Gateway, token: &str, path: &str) -> Value {
    let r = client().get(admin(gw, path)).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

async fn attack(gw: &Gateway, from: &str, path: &str) -> (u16, String) {
    let r = client().get(gw.url(path)).header("host", "shebao.test").header("x-forwarded-for", from).send().await.unwrap();
    (r.status().as_u16(), r.headers()["x-request-id"].to_str().unwrap().to_string())
}

const SQLI: &str = "/apply?id=1%27%20OR%20%271%27%3D%271";

/// Polls the API until `pred` holds for the events matching `query` (2 s at most).
async fn events_until(gw: &Gateway, token: &str, query: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let page = get(gw, token, &format!("/api/events?{query}")).await;
        if pred(&page) || Instant::now() > deadline {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_survive_a_restart_and_the_cli_finds_them() {
    let up = Upstream::start("up").await;
    let mut gw = Gateway::start(&policy(&up, ""));
    let mut incidents = Vec::new();
    for i in 0..20 {
        let (status, id) = attack(&gw, &format!("203.0.113.{i}"), SQLI).await;
        assert_eq!(status, 403);
        incidents.push(id);
    }
    // SIGTERM right away: what is still queued is stored before the exit.
    gw.restart();
    let token = login(&gw).await;
    let page = get(&gw, &token, "/api/events?kind=waf&limit=100").await;
    assert_eq!(page["total"], 20, "{page}");
    let stored: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["incident_id"].as_str().unwrap()).collect();
    for id in &incidents {
        assert!(stored.contains(&id.as_str()), "{id} lost in the restart");
    }
    // SIGINT (Ctrl-C) skips the drain of requests, not the store of queued events.
    for i in 20..30 {
        let (status, id) = attack(&gw, &format!("203.0.113.{i}"), SQLI).await;
        assert_eq!(status, 403);
        incidents.push(id);
    }
    gw.restart_after("INT");
    let token = login(&gw).await;
    let page = get(&gw, &token, "/api/events?kind=waf&limit=100").await;
    assert_eq!(page["total"], 30, "events lost at SIGINT: {page}");
    let one = get(&gw, &token, &format!("/api/events/{}", incidents[3])).await;
    assert_eq!(one["events"][0]["client_ip"], "203.0.113.3");
    assert!(one["events"][0]["rules"].as_array().unwrap().iter().any(|r| r["id"] == 942100), "{one}");
    let by_net = get(&gw, &token, "/api/events?ip=203.0.113.0/29").await;
    assert_eq!(by_net["total"], 8);
    let agg = get(&gw, &token, "/api/aggregates").await;
    assert_eq!(agg["total"], 30);
    assert_eq!(agg["top_apps"][0], json!({ "key": "shebao", "count": 30 }));
    assert!(agg["top_rules"].as_array().unwrap().iter().any(|r| r["rule"] == 942100), "{agg}");

    // The CLI reads the same store.
    let out = Command::new(binary()).args(["logs", "query", "--config"]).arg(&gw.config).args(["--ip", "203.0.113.3"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains(&incidents[3]) && table.contains("942100") && table.contains("1 of 1 events"), "{table}");
    let out = Command::new(binary())
        .args(["logs", "query", "--json", "--kind", "waf", "--limit", "5", "--config"])
        .arg(&gw.config)
        .output()
        .unwrap();
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((page["total"].as_u64(), page["events"].as_array().unwrap().len()), (Some(30), 5));
    let out = Command::new(binary()).args(["logs", "query", "--kind", "worm", "--config"]).arg(&gw.config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kind"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_keeps_the_event_queue_bounded_while_normal_traffic_is_served() {
    let up = Upstream::start("up").await;
    let extra = "[attack_log]\nqueue = 1\n\n[rate_limit]\nper_ip = { rate = \"1/min\", burst = 1 }\n";
    let gw = Gateway::start(&policy(&up, extra));
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let url = gw.url(SQLI);
            tokio::spawn(async move {
                let c = client();
                let mut refused = 0u64;
                for _ in 0..150 {
                    let r = c.get(&url).header("host", "shebao.test").header("x-forwarded-for", "203.0.113.66").send().await.unwrap();
                    // Each is refused with an event: 429 (rate limit), or 403 (WAF) for the first.
                    refused += u64::from(r.status() == 429 || r.status() == 403);
                }
                refused
            })
        })
        .collect();
    // Normal traffic from other clients meanwhile: one request each (their own limit).
    let mut served = 0;
    for i in 0..40 {
        let r = client()
            .get(gw.url("/"))
            .header("host", "shebao.test")
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        served += u32::from(r.status() == 200);
    }
    let mut refused = 0;
    for f in flood {
        refused += f.await.unwrap();
    }
    assert_eq!(served, 40, "normal traffic was not all served during the flood");
    assert_eq!(refused, 1200, "the flood was refused");
    let metric = |m: &str, name: &str| {
        m.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let (stored, dropped) = loop {
        let m = gw.metrics();
        let (s, d) = (metric(&m, "govgate_attack_events_stored_total "), metric(&m, "govgate_attack_events_dropped_total "));
        assert!(metric(&m, "govgate_attack_events_queued ") <= 1, "the queue grew past its limit");
        if s + d >= refused || Instant::now() > deadline {
            break (s, d);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("flood: {refused} refused with an event, {stored} stored, {dropped} dropped; normal traffic: {served}/40 served");
    assert!(dropped > 0, "a queue of 1 took {refused} events without dropping any");
    assert_eq!(stored + dropped, refused, "every refusal was either stored or counted as dropped");
    let token = login(&gw).await;
    let page = get(&gw, &token, "/api/events?limit=1").await;
    assert_eq!(page["total"].as_u64(), Some(stored));
    assert_eq!(page["events"][0]["client_ip"], "203.0.113.66");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_refuses_callers_without_the_role() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy(&up, ""));
    let c = client();
    for path in ["/api/events", "/api/events/x", "/api/aggregates", "/api/bans", "/api/session"] {
        let r = c.get(admin(&gw, path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(body["incident_id"].is_string(), "{body}");
    }
    let r = c.post(admin(&gw, "/api/bans")).json(&json!({ "network": "127.0.0.1" })).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c.get(admin(&gw, "/api/events")).bearer_auth("forged-token").send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A wrong password is refused and recorded as an authentication failure.
    let r = c.post(admin(&gw, "/api/login")).json(&json!({ "password": "guess" })).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // A cookie session may read, but a change needs the CSRF token too.
    let r = c.post(admin(&gw, "/api/login")).json(&json!({ "password": PASSWORD })).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let login: Value = r.json().await.unwrap();
    let session = cookie.split(';').next().unwrap().to_string();
    let r = c.get(admin(&gw, "/api/events?kind=auth_failure")).header("cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["total"], 1, "the failed login is an event: {page}");
    assert_eq!(page["events"][0]["app"], "console");
    let ban = json!({ "network": "203.0.113.0/24", "expires_in": "1h" });
    let r = c.post(admin(&gw, "/api/bans")).header("cookie", &session).json(&ban).send().await.unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");
    let r = c.post(admin(&gw, "/api/bans")).header("cookie", &session).header("x-csrf-token", "x").json(&ban).send().await.unwrap();
    assert_eq!(r.status(), 403, "wrong CSRF token");
    let csrf = login["csrf"].as_str().unwrap();
    let r = c.post(admin(&gw, "/api/bans")).header("cookie", &session).header("x-csrf-token", csrf).json(&ban).send().await.unwrap();
    assert_eq!(r.status(), 201);
    // Bad input is named, with an incident id.
    let r = c.get(admin(&gw, "/api/events?ip=not-an-ip")).header("cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("`ip`") && body["incident_id"].is_string(), "{body}");
    // Logging out ends the session.
    c.post(admin(&gw, "/api/logout")).header("cookie", &session).send().await.unwrap();
    let r = c.get(admin(&gw, "/api/events")).header("cookie", &session).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Five wrong passwords lock the address out, even for the right one.
    for _ in 0..5 {
        c.post(admin(&gw, "/api/login")).json(&json!({ "password": "guess" })).send().await.unwrap();
    }
    let r = c.post(admin(&gw, "/api/login")).json(&json!({ "password": PASSWORD })).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_never_appears_unmasked_in_stored_events() {
    let up = Upstream::start("up").await;
    let mut gw = Gateway::start(&policy(&up, ""));
    let (id_card, mobile) = ("11010519491231002X", "13812345678");
    let path = format!("/apply?id={id_card}%27%20OR%20%271%27%3D%271&phone={mobile}%27%20OR%201=1--");
    let (status, incident) = attack(&gw, "203.0.113.5", &path).await;
    assert_eq!(status, 403);
    let r = client()
        .post(gw.url("/apply"))
        .header("host", "shebao.test")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("id={id_card}&q=%3Cscript%3Ealert(1)%3C/script%3E&m={mobile}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let token = login(&gw).await;
    let page = events_until(&gw, &token, "kind=waf", |p| p["total"] == 2).await;
    assert_eq!(page["total"], 2);
    let one = get(&gw, &token, &format!("/api/events/{incident}")).await.to_string();
    assert!(one.contains("110105"), "the event keeps the masked number's prefix: {one}");
    gw.signal("TERM");
    assert!(gw.wait_exit(Duration::from_secs(30)).is_some());
    for entry in std::fs::read_dir(gw.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for secret in [id_card, mobile] {
                assert!(!text.contains(secret), "{secret} unmasked in {}", path.display());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_refuses_the_next_request_on_every_instance_within_a_second() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy(&up, ""));
    let second = Gateway::start_sharing_data(&policy(&up, ""), &gw.data_dir());
    let visit = |gw: &Gateway, from: &str| {
        let req = client().get(gw.url("/")).header("host", "shebao.test").header("x-forwarded-for", from.to_string());
        async move { req.send().await.unwrap() }
    };
    assert_eq!(visit(&gw, "203.0.113.9").await.status(), 200);
    assert_eq!(visit(&second, "203.0.113.9").await.status(), 200);
    let token = login(&gw).await;
    let ban = json!({ "network": "203.0.113.0/24", "expires_in": "10m", "reason": "scanner" });
    let r = client().post(admin(&gw, "/api/bans")).bearer_auth(&token).json(&ban).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let banned_at = Instant::now();
    // This instance: at once.
    let r = visit(&gw, "203.0.113.9").await;
    assert_eq!(r.status(), 403);
    let incident = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(r.text().await.unwrap().contains(&incident), "the 403 page shows the incident id");
    assert_eq!(visit(&gw, "203.0.114.9").await.status(), 200, "outside the network");
    // The other instance: within a second.
    loop {
        let status = visit(&second, "203.0.113.200").await.status();
        if status == 403 {
            break;
        }
        assert!(banned_at.elapsed() < Duration::from_secs(1), "the second instance still served a banned client after 1 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = events_until(&gw, &token, "kind=ban", |p| p["total"].as_u64() >= Some(2)).await;
    assert!(page["total"].as_u64() >= Some(2), "{page}");
    let event = page["events"].as_array().unwrap().iter().find(|e| e["incident_id"] == incident.as_str()).cloned();
    assert_eq!(event.expect("the refusal is a ban event")["app"], "shebao", "{page}");
    let bans = get(&gw, &token, "/api/bans").await;
    assert_eq!(bans["bans"][0]["network"], "203.0.113.0/24");
    // Unban: served again.
    let r = client().delete(admin(&gw, "/api/bans?network=203.0.113.0/24")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(visit(&gw, "203.0.113.9").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_false_positive_answers_with_the_exclusion_that_stops_it() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy(&up, ""));
    let (status, incident) = attack(&gw, "203.0.113.5", SQLI).await;
    assert_eq!(status, 403);
    let token = login(&gw).await;
    events_until(&gw, &token, "kind=waf", |p| p["total"] == 1).await;
    let url = admin(&gw, &format!("/api/events/{incident}/false-positive"));
    let r = client().post(url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let snippet = body["exclusion"].as_str().unwrap().to_string();
    assert!(snippet.contains("[apps.waf]") && snippet.contains("path = \"/apply\"") && snippet.contains("ARGS:id"), "{snippet}");
    // Put it into the policy and reload: the same request passes.
    let mut text = std::fs::read_to_string(&gw.config).unwrap();
    text.push_str(&snippet);
    std::fs::write(&gw.config, &text).unwrap();
    let check = Command::new(binary()).args(["check", "--config"]).arg(&gw.config).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _) = attack(&gw, "203.0.113.5", SQLI).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the exclusion did not stop the false positive");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = get(&gw, &token, &format!("/api/events/{incident}")).await;
    assert_eq!(page["events"][0]["false_positive"], true, "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_tail_prints_events_as_they_arrive() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy(&up, ""));
    let mut tail = Command::new(binary())
        .args(["logs", "tail", "--json", "--kind", "waf", "--config"])
        .arg(&gw.config)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = tail.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut incidents = Vec::new();
    for i in 0..3 {
        let (status, id) = attack(&gw, &format!("203.0.113.{i}"), SQLI).await;
        assert_eq!(status, 403);
        incidents.push(id);
    }
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 3 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            let e: Value = serde_json::from_str(&line).unwrap();
            seen.push(e["incident_id"].as_str().unwrap().to_string());
        }
    }
    let _ = tail.kill();
    let _ = tail.wait();
    assert_eq!(seen, incidents, "each event once, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_siem_mirror_can_go_to_stdout_instead_of_a_file() {
    let up = Upstream::start("up").await;
    let gw = Gateway::start(&policy(&up, "[attack_log]\nmirror = \"stdout\"\nretention = \"30d\"\n"));
    let (status, incident) = attack(&gw, "203.0.113.5", SQLI).await;
    assert_eq!(status, 403);
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let out = std::fs::read_to_string(gw.dir.path().join("access.log")).unwrap_or_default();
        if let Some(l) = out.lines().find(|l| l.contains("\"schema\":2") && l.contains(&incident)) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no event on stdout:\n{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!((event["kind"].as_str(), event["action"].as_str()), (Some("waf"), Some("blocked")));
    assert!(!gw.data_dir().join("attack-events.jsonl").exists(), "no mirror file");
    let token = login(&gw).await;
    assert_eq!(events_until(&gw, &token, "kind=waf", |p| p["total"] == 1).await["total"], 1, "the store has it too");
}
