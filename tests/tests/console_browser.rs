//! The security console in real headless Chromium: real attacks through the gateway, then a
//! person's path through the console: log in, find the attacks, open one, ban the source, and
//! see the next request from it refused. Screenshots go to target/artifacts/console-*.png.

use fantoccini::Locator;
use govgate_tests::browser::Browser;
use govgate_tests::{binary, client, crs_dir, Gateway, Upstream};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery staple";
const ATTACKER: &str = "203.0.113.77";

fn password_hash(password: &str) -> String {
    let mut child = Command::new(binary()).arg("admin-password").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap().trim().to_string()
}

async fn visit(gw: &Gateway, from: &str, path: &str) -> (u16, String) {
    let r = client().get(gw.url(path)).header("host", "shebao.test").header("x-forwarded-for", from).send().await.unwrap();
    (r.status().as_u16(), r.headers()["x-request-id"].to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_find_attacks_in_the_console_and_ban_the_source() {
    let up = Upstream::start("up").await;
    let policy = format!(
        "password_argon2 = \"{}\"\n\n[forwarding]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\n[waf]\nrules = \"{}\"\nmode = \"block\"\n\n\
         [[apps]]\nname = \"shebao\"\nhosts = [\"shebao.test\"]\nupstreams = [\"{}\"]\n",
        password_hash(PASSWORD),
        crs_dir().display(),
        up.addr
    );
    let gw = Gateway::start(&policy);
    assert_eq!(visit(&gw, ATTACKER, "/").await.0, 200, "served before the ban");
    let (s1, sqli) = visit(&gw, ATTACKER, "/apply?id=1%27%20OR%20%271%27%3D%271").await;
    let (s2, xss) = visit(&gw, ATTACKER, "/search?q=%3Cscript%3Ealert(document.cookie)%3C%2Fscript%3E").await;
    assert_eq!((s1, s2), (403, 403));
    assert_eq!(visit(&gw, "198.51.100.20", "/download?file=../../../../etc/passwd").await.0, 403);

    let b = Browser::start("en-US").await;
    let console = format!("http://127.0.0.1:{}/console", gw.admin_port);
    b.client.goto(&console).await.unwrap();
    b.wait_for("#login-form").await;
    b.wait_for_text("#login-form h2", "Log in").await;
    b.screenshot("console-login").await;
    // A wrong password first.
    b.client.find(Locator::Css("#password")).await.unwrap().send_keys("not it").await.unwrap();
    b.client.find(Locator::Css("#login-button")).await.unwrap().click().await.unwrap();
    b.wait_for_text("#login-error", "Wrong password").await;
    b.client.find(Locator::Css("#password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    b.client.find(Locator::Css("#login-button")).await.unwrap().click().await.unwrap();
    b.wait_for("tr.event").await;

    // Find the attacker's events with the IP filter.
    b.client.find(Locator::Css("#f-ip")).await.unwrap().send_keys(ATTACKER).await.unwrap();
    b.client.find(Locator::Css("#search")).await.unwrap().click().await.unwrap();
    b.wait_for_text("#summary", "2 events").await;
    let rows = b.client.find_all(Locator::Css("tr.event")).await.unwrap();
    assert_eq!(rows.len(), 2);
    b.wait_for(&format!("tr.event[data-incident='{sqli}']")).await;
    // Charts were drawn from the aggregates.
    assert!(!b.client.find_all(Locator::Css("#chart-hours rect.bar")).await.unwrap().is_empty());
    b.wait_for_text("#chart-ips", ATTACKER).await;
    b.wait_for_text("#chart-rules", "941100").await;

    // The detail view shows the attack as text (the payload is not run).
    b.client.find(Locator::Css(&format!("tr.event[data-incident='{xss}']"))).await.unwrap().click().await.unwrap();
    let detail = b.wait_for_text("#detail-json", &xss).await;
    assert!(detail.contains("<script>alert(document.cookie)</script>"), "{detail}");
    b.screenshot("console-events").await;

    // Ban the source from its row.
    b.client.find(Locator::Css(&format!("button.ban-ip[data-ip='{ATTACKER}']"))).await.unwrap().click().await.unwrap();
    b.wait_for_text("#ban-status", ATTACKER).await;
    let banned_at = Instant::now();
    b.wait_for_text("#bans tbody", ATTACKER).await;
    let (status, _) = visit(&gw, ATTACKER, "/").await;
    assert_eq!(status, 403, "the next request from the banned source is refused");
    assert!(banned_at.elapsed() < Duration::from_secs(1));
    assert_eq!(visit(&gw, "198.51.100.21", "/").await.0, 200, "others are still served");
    // The refusal shows up in the console as a ban event.
    b.client.find(Locator::Css("#f-kind")).await.unwrap().select_by_value("ban").await.unwrap();
    b.client.find(Locator::Css("#search")).await.unwrap().click().await.unwrap();
    b.wait_for_text("#summary", "1 events").await;
    b.screenshot("console-banned").await;

    // Chinese at the flick of the switch.
    b.client.find(Locator::Css("#lang")).await.unwrap().click().await.unwrap();
    b.wait_for_text("header h1", "安全控制台").await;
    b.wait_for_text("#bans-section h2", "封禁").await;
    b.screenshot("console-zh").await;
    b.close().await;
}
