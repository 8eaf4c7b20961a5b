//! Staff log in to the security console through the built-in identity provider (single sign-on
//! at the gateway), end to end: the real binary serving the provider on `id.test` and the
//! console app (`builtin = "console"`) on `console.test` over real TLS, accounts in the
//! provider's store, real attacks through the WAF. Only the role `security` gets in; citizens
//! and other staff get 403 on the page and on the API (and a `forbidden` event); without a
//! session the browser goes to the provider's login page. The Chromium test saves screenshots
//! to target/artifacts/console-sso-*.png.

use fantoccini::Locator;
use govgate_tests::web::{Browser, Page};
use govgate_tests::{client, crs_dir, Gateway, Upstream};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PASSWORD: &str = "Correct-Horse-9";
const ATTACKER: &str = "203.0.113.77";
const HOSTS: [&str; 3] = ["id.test", "console.test", "shebao.test"];
/// Staff with the role `security`, staff without it, and a citizen.
const OFFICER: &str = "anquan";
const CLERK: &str = "wangwu";
const CITIZEN: &str = "zhangsan";

fn policy(up: &Upstream) -> String {
    format!(
        "[forwarding]\ntrusted_proxies = [\"127.0.0.1/32\"]\n\n[waf]\nrules = \"{}\"\nmode = \"block\"\n\n\
         [idp]\nissuer = \"https://id.test:{{HTTPS}}\"\nclients = \"clients.toml\"\n\n\
         [[apps]]\nname = \"id\"\nhosts = [\"id.test\"]\nbuiltin = \"idp\"\n\n\
         [[apps]]\nname = \"console\"\nhosts = [\"console.test\"]\nbuiltin = \"console\"\naccess = {{ roles = [\"security\"] }}\nwaf = {{ mode = \"off\" }}\n\n\
         [[apps]]\nname = \"shebao\"\nhosts = [\"shebao.test\"]\nupstreams = [\"{}\"]\n",
        crs_dir().display(),
        up.addr
    )
}

/// Starts the gateway, registers the console's client and adds the three accounts.
async fn start(up: &Upstream) -> Gateway {
    let gw = Gateway::start(&policy(up));
    let port = gw.https_port;
    let clients = format!(
        "[[client]]\nid = \"console\"\nauth_method = \"none\"\nredirect_uris = [\"https://console.test:{port}/.govgate/callback\"]\n\
         post_logout_redirect_uris = [\"https://console.test:{port}/console\"]\n\
         grant_types = [\"authorization_code\", \"refresh_token\"]\nscopes = [\"openid\", \"profile\", \"roles\"]\nfirst_party = true\n"
    );
    std::fs::write(gw.dir.path().join("clients.toml"), clients).unwrap();
    let mut cfg = govgate_idp::IdpConfig::new(format!("https://id.test:{port}"), gw.dir.path().join("data/idp"));
    cfg.clients_file = gw.dir.path().join("clients.toml");
    let idp = govgate_idp::Idp::open(cfg).await.expect("open the provider's store");
    let staff = |username: &str, name: &str, roles: &[&str]| govgate_idp::users::NewUser {
        username: username.into(),
        kind: Some(govgate_idp::users::AccountKind::Staff),
        display_name: name.into(),
        password: PASSWORD.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    };
    let citizen = govgate_idp::users::NewUser {
        username: CITIZEN.into(),
        kind: Some(govgate_idp::users::AccountKind::Citizen),
        display_name: "张三".into(),
        password: PASSWORD.into(),
        id_number: Some("11010519491231002X".into()),
        real_name_level: Some(3),
        ..Default::default()
    };
    for user in [staff(OFFICER, "安全员", &["security", "staff"]), staff(CLERK, "王五", &["staff"]), citizen] {
        govgate_idp::admin::add_user(idp.store(), "test", &user, govgate_idp::password::Argon2Params::TEST).await.unwrap();
    }
    gw
}

async fn attack(gw: &Gateway, from: &str, path: &str) -> (u16, String) {
    let r = client().get(gw.url(path)).header("host", "shebao.test").header("x-forwarded-for", from).send().await.unwrap();
    (r.status().as_u16(), r.headers()["x-request-id"].to_str().unwrap().to_string())
}

const SQLI: &str = "/apply?id=1%27%20OR%20%271%27%3D%271";

fn json_of(p: &Page) -> Value {
    serde_json::from_str(&p.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", p.body))
}

/// Waits (3 s at most) for an attack event matching `pred`.
fn wait_for_event(gw: &Gateway, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(e) = gw.attack_events().into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(Instant::now() < deadline, "no {what} event in {:?}", gw.attack_events());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Signs in on the console (and expects `status` for the console page).
async fn console_as(gw: &Gateway, username: &str, status: u16) -> Browser {
    let mut b = Browser::new(gw, &HOSTS);
    let page = b.sign_in("console.test", "/console", username, PASSWORD).await;
    assert_eq!(page.status, status, "{username} on /console: {}", page.body);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_staff_with_the_security_role_use_the_console_through_single_sign_on() {
    let up = Upstream::start("up").await;
    let gw = start(&up).await;
    let (status, sqli) = attack(&gw, ATTACKER, SQLI).await;
    assert_eq!(status, 403);

    // No session: the page and the API send the browser to the provider's login page, and
    // identity headers from the client mean nothing.
    let mut anon = Browser::new(&gw, &HOSTS);
    let issuer_login = anon.url("id.test", "/authorize?");
    for path in ["/console", "/api/events", "/api/session"] {
        let p = anon.get_with(&anon.url("console.test", path), &[("x-govgate-user", OFFICER), ("x-govgate-roles", "security")]).await;
        assert_eq!(p.status, 302, "{path}: {}", p.body);
        assert!(p.location.as_deref().unwrap_or("").starts_with(&issuer_login), "{path} → {:?}", p.location);
        assert!(p.location.as_deref().unwrap_or("").contains("client_id=console"), "{:?}", p.location);
    }
    let p = anon.call("POST", &anon.url("console.test", "/api/bans"), Some(&json!({ "network": "198.51.100.9" })), &[]).await;
    assert_eq!(p.status, 302, "a change without a session goes nowhere: {}", p.body);

    // The security officer logs in through the provider and gets the console.
    let mut officer = console_as(&gw, OFFICER, 200).await;
    let page = officer.get(&officer.url("console.test", "/console")).await;
    assert!(page.body.contains("id=\"events\"") && page.body.contains("/console/app.js"), "{}", page.body);
    let session = json_of(&officer.get(&officer.url("console.test", "/api/session")).await);
    assert_eq!(session["user"], OFFICER);
    assert_eq!(session["login"], "sso");
    assert_eq!(session["logout"], "/.govgate/logout");
    assert!(session["roles"].as_array().unwrap().contains(&json!("security")), "{session}");
    let csrf = session["csrf"].as_str().unwrap().to_string();
    assert!(csrf.len() >= 43, "{session}");

    // … sees the attack …
    let deadline = Instant::now() + Duration::from_secs(3);
    let events = loop {
        let p = officer.get(&officer.url("console.test", &format!("/api/events?ip={ATTACKER}"))).await;
        assert_eq!(p.status, 200, "{}", p.body);
        let v = json_of(&p);
        if v["total"] == 1 || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(events["events"][0]["incident_id"], sqli.as_str(), "{events}");
    // … and may search for attack strings (the console app is not behind the WAF).
    let p = officer.get(&officer.url("console.test", "/api/events?q=%27%20OR%20%271%27%3D%271")).await;
    assert_eq!(p.status, 200, "{}", p.body);

    // … cannot change anything without the CSRF token of the session …
    let bans = officer.url("console.test", "/api/bans");
    let ban = json!({ "network": ATTACKER, "expires_in": "1h", "reason": "sqli" });
    let p = officer.call("POST", &bans, Some(&ban), &[]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert_eq!(json_of(&p)["error"], "forbidden");
    assert!(json_of(&p)["incident_id"].as_str().is_some_and(|i| !i.is_empty()));
    let p = officer.call("POST", &bans, Some(&ban), &[("x-csrf-token", "forged")]).await;
    assert_eq!(p.status, 403, "{}", p.body);
    assert_eq!(attack(&gw, ATTACKER, "/").await.0, 200, "nothing was banned yet");

    // … and bans the source with it, under their own name.
    let p = officer.call("POST", &bans, Some(&ban), &[("x-csrf-token", &csrf)]).await;
    assert_eq!(p.status, 201, "{}", p.body);
    assert_eq!(json_of(&p)["created_by"], OFFICER);
    let deadline = Instant::now() + Duration::from_secs(1);
    while attack(&gw, ATTACKER, "/").await.0 != 403 {
        assert!(Instant::now() < deadline, "the ban did not take effect within a second");
    }
    let list = json_of(&officer.get(&bans).await);
    assert_eq!(list["bans"][0]["network"], format!("{ATTACKER}/32"), "{list}");

    // The password login belongs to the admin listener, not to the console app.
    let p = officer.call("POST", &officer.url("console.test", "/api/login"), Some(&json!({ "password": "x" })), &[]).await;
    assert_eq!(p.status, 404, "{}", p.body);
    // Another browser with the officer's CSRF token but no session gets nowhere.
    let p =
        anon.call("DELETE", &anon.url("console.test", &format!("/api/bans?network={ATTACKER}")), None, &[("x-csrf-token", &csrf)]).await;
    assert_eq!(p.status, 302);

    // A citizen and staff without the role: 403 on the page (with the reason and the incident
    // id) and on the API (JSON for API clients), and a `forbidden` event naming them.
    for who in [CITIZEN, CLERK] {
        let mut b = Browser::new(&gw, &HOSTS);
        let page = b.sign_in("console.test", "/console", who, PASSWORD).await;
        assert_eq!(page.status, 403, "{who}: {}", page.body);
        assert!(page.body.contains("security") && !page.body.contains("/console/app.js"), "{who}: {}", page.body);
        let api = b.get_with(&b.url("console.test", "/api/events"), &[("accept", "application/json")]).await;
        assert_eq!(api.status, 403, "{who}: {}", api.body);
        assert!(json_of(&api)["incident_id"].as_str().is_some_and(|i| !i.is_empty()), "{}", api.body);
        let change = b
            .call("DELETE", &b.url("console.test", &format!("/api/bans?network={ATTACKER}")), None, &[("accept", "application/json")])
            .await;
        assert_eq!(change.status, 403, "{who}: {}", change.body);
        let e = wait_for_event(&gw, "forbidden", |e| e["kind"] == "forbidden" && e["user"] == who);
        assert_eq!((e["app"].as_str(), e["status"].as_u64()), (Some("console"), Some(403)), "{e}");
    }
    assert_eq!(attack(&gw, ATTACKER, "/").await.0, 403, "the ban still holds: nobody without the role lifted it");
    // Events are written in batches: wait until all six refusals (three each) are in the log.
    let deadline = Instant::now() + Duration::from_secs(5);
    let forbidden = loop {
        let n = gw.attack_events().iter().filter(|e| e["kind"] == "forbidden" && e["app"] == "console").count();
        if n >= 6 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(forbidden >= 6, "each refusal is an event ({forbidden})");

    // Logging out ends the console session too.
    let out = officer.get(&officer.url("console.test", "/.govgate/logout")).await;
    assert!(matches!(out.status, 302 | 303), "{}", out.body);
    assert_eq!(officer.get(&officer.url("console.test", "/api/session")).await.status, 302, "logged out: back to the login page");
}

/// The same in real headless Chromium: the console sends the browser to the provider's login
/// page; the security officer logs in there, finds the attack, bans its source and logs out;
/// a citizen who logs in gets the 403 page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_the_security_officer_logs_in_through_the_identity_provider() {
    use govgate_tests::browser::Browser as Chromium;
    let up = Upstream::start("up").await;
    let gw = start(&up).await;
    let (status, sqli) = attack(&gw, ATTACKER, SQLI).await;
    assert_eq!(status, 403);
    let chrome = Chromium::start_with("en-US", &["--host-resolver-rules=MAP *.test 127.0.0.1", "--ignore-certificate-errors"]).await;
    let console = format!("https://console.test:{}/console", gw.https_port);
    let host_now = || async { chrome.client.current_url().await.unwrap().host_str().unwrap_or("").to_string() };
    let log_in = |user: &'static str| {
        let chrome = &chrome;
        async move {
            chrome.wait_for("#username").await;
            chrome.client.find(Locator::Css("#username")).await.unwrap().send_keys(user).await.unwrap();
            chrome.client.find(Locator::Css("#password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
            chrome.client.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
        }
    };

    // The console sends the browser to the provider's login page.
    chrome.client.goto(&console).await.unwrap();
    chrome.wait_for("#username").await;
    assert_eq!(host_now().await, "id.test");
    chrome.screenshot("console-sso-1-idp-login").await;
    log_in(OFFICER).await;

    // Back on the console, signed in as the officer: no password form, the attack is listed.
    chrome.wait_for("tr.event").await;
    assert_eq!(host_now().await, "console.test");
    chrome.wait_for_text("#who", &format!("{OFFICER} · security")).await;
    assert!(!chrome.client.find(Locator::Css("#login")).await.unwrap().is_displayed().await.unwrap(), "no password form");
    chrome.wait_for(&format!("tr.event[data-incident='{sqli}']")).await;
    chrome.screenshot("console-sso-2-events").await;

    // Ban the source from its row (a change: the page sends the CSRF token of the session).
    chrome.client.find(Locator::Css(&format!("button.ban-ip[data-ip='{ATTACKER}']"))).await.unwrap().click().await.unwrap();
    chrome.wait_for_text("#bans tbody", ATTACKER).await;
    chrome.wait_for_text("#bans tbody", OFFICER).await;
    assert_eq!(attack(&gw, ATTACKER, "/").await.0, 403, "the next request from the source is refused");
    chrome.screenshot("console-sso-3-banned").await;

    // Log out: through the gateway to the provider's signed-out page.
    chrome.client.find(Locator::Css("#logout")).await.unwrap().click().await.unwrap();
    chrome.wait_for_text("body", "Signed out").await;
    chrome.screenshot("console-sso-4-signed-out").await;

    // A citizen logs in: the 403 page, not the console.
    chrome.client.goto(&console).await.unwrap();
    log_in(CITIZEN).await;
    let text = chrome.wait_for_text("body", "403").await;
    assert!(text.contains("security"), "the page says which role is missing: {text}");
    assert!(chrome.client.find(Locator::Css("#events")).await.is_err(), "no console for a citizen");
    chrome.screenshot("console-sso-5-citizen-403").await;
    chrome.close().await;
}
