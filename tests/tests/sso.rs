//! Single sign-on at the gateway, end to end: the real binary with its built-in identity
//! provider on `id.test`, real upstream apps on other host names, real TLS with the generated
//! development CA, and a browser-like client that keeps cookies per host.

use base64::Engine;
use govgate_tests::web::{hidden, jwt_claims, query, Browser};
use govgate_tests::{Gateway, Upstream};

const PASSWORD: &str = "Correct-Horse-9";

const HOSTS: [&str; 6] = ["id.test", "shebao.test", "tax.test", "staff.test", "secure.test", "api.test"];

fn clients(port: u16) -> String {
    let client = |id: &str, host: &str, scopes: &str, extra: &str| {
        format!(
            "[[client]]\nid = \"{id}\"\nauth_method = \"none\"\nredirect_uris = [\"https://{host}:{port}/.govgate/callback\", \"https://{host}:{port}/cb\"]\ngrant_types = [\"authorization_code\", \"refresh_token\"]\nscopes = [{scopes}]\nfirst_party = true\n{extra}\n"
        )
    };
    [
        client("shebao", "shebao.test", "\"openid\", \"profile\", \"gov_identity\"", ""),
        client("tax", "tax.test", "\"openid\", \"profile\"", "access_token_ttl = 1\n"),
        client("staff", "staff.test", "\"openid\", \"profile\", \"roles\"", ""),
        client("secure", "secure.test", "\"openid\", \"profile\"", ""),
        client("api", "api.test", "\"openid\", \"profile\"", "access_token_ttl = 2\n"),
    ]
    .concat()
}

fn policy(ups: &[&Upstream]) -> String {
    let app = |name: &str, up: &Upstream, extra: &str| {
        format!("[[apps]]\nname = \"{name}\"\nhosts = [\"{name}.test\"]\nupstreams = [\"{}\"]\n{extra}\n", up.addr)
    };
    [
        "[idp]\nissuer = \"https://id.test:{HTTPS}\"\nclients = \"clients.toml\"\n\n[[apps]]\nname = \"id\"\nhosts = [\"id.test\"]\nbuiltin = \"idp\"\n\n"
            .to_string(),
        app(
            "shebao",
            ups[0],
            "access = \"public\"\naccess_paths = [{ path = \"/apply\", access = \"login\" }]\nclaims = [\"name\", \"real_name_level\"]",
        ),
        app("tax", ups[1], "access = \"login\""),
        app("staff", ups[2], "access = { roles = [\"staff\"] }"),
        app("secure", ups[2], "access = { acr = \"cert\" }"),
        app("api", ups[2], "access = \"login\"\napi_paths = [\"/api\"]\napi_scopes = [\"profile\"]"),
    ]
    .concat()
}

/// The three upstreams the test policy routes to: shebao, tax, and the rest.
async fn upstreams() -> (Upstream, Upstream, Upstream) {
    (Upstream::start("shebao").await, Upstream::start("tax").await, Upstream::start("other").await)
}

/// Starts the gateway, registers the clients for its port and adds the citizen `zhangsan`.
async fn start(ups: &[&Upstream]) -> (Gateway, String) {
    let (gw, uid, _) = start_with_provider(ups).await;
    (gw, uid)
}

/// [`start`], keeping a handle on the provider's store and keys (to mint logout tokens).
async fn start_with_provider(ups: &[&Upstream]) -> (Gateway, String, govgate_idp::Idp) {
    let gw = Gateway::start(&policy(ups));
    std::fs::write(gw.dir.path().join("clients.toml"), clients(gw.https_port)).unwrap();
    let issuer = format!("https://id.test:{}", gw.https_port);
    let mut cfg = govgate_idp::IdpConfig::new(issuer, gw.dir.path().join("data/idp"));
    cfg.clients_file = gw.dir.path().join("clients.toml");
    let idp = govgate_idp::Idp::open(cfg).await.expect("open the provider's store");
    let user = govgate_idp::users::NewUser {
        username: "zhangsan".into(),
        kind: Some(govgate_idp::users::AccountKind::Citizen),
        display_name: "张三".into(),
        password: PASSWORD.into(),
        id_number: Some("11010519491231002X".into()),
        mobile: Some("13812345678".into()),
        real_name_level: Some(3),
        ..Default::default()
    };
    let uid = govgate_idp::admin::add_user(idp.store(), "test", &user, govgate_idp::password::Argon2Params::TEST).await.unwrap();
    (gw, uid, idp)
}

/// Visits a protected URL and logs in at the provider; returns the callback URL (not visited).
async fn login_until_callback(b: &mut Browser, host: &str, path: &str) -> String {
    let url = b.url(host, path);
    let to_idp = b.get(&url).await;
    assert_eq!(to_idp.status, 302, "{}", to_idp.body);
    let auth = to_idp.location.clone().unwrap();
    assert!(auth.starts_with(&b.url("id.test", "/authorize?")), "{auth}");
    let login = b.get(&auth).await;
    assert_eq!(login.status, 200, "the provider shows its login page");
    let done = b.log_in(&login, "zhangsan", PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    done.location.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_for_two_apps_then_logout_everywhere() {
    let (a, bu, c) = upstreams().await;
    let (gw, uid) = start(&[&a, &bu, &c]).await;
    let mut b = Browser::new(&gw, &HOSTS);

    // A public page of app A needs no login and carries no identity.
    let home = b.get(&b.url("shebao.test", "/")).await;
    assert_eq!(home.status, 200);
    assert!(a.received()[0].header("x-govgate-user").is_none());

    // The protected /apply: redirected to the provider with code + PKCE + state + nonce.
    let to_idp = b.get(&b.url("shebao.test", "/apply?form=1")).await;
    assert_eq!(to_idp.status, 302);
    let q = query(to_idp.location.as_deref().unwrap());
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "shebao");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], b.url("shebao.test", "/.govgate/callback"));
    assert!(q.contains_key("state") && q.contains_key("nonce") && q["scope"].contains("openid"));
    assert_eq!(a.received().len(), 1, "the app saw nothing of the protected request");

    let login = b.get(to_idp.location.as_deref().unwrap()).await;
    assert_eq!(login.status, 200);
    let done = b.log_in(&login, "zhangsan", PASSWORD).await;
    let callback = done.location.clone().unwrap();
    assert!(callback.starts_with(&b.url("shebao.test", "/.govgate/callback?")), "{callback}");
    let back = b.get(&callback).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some("/apply?form=1"), "back where the user was going, on this host");
    let code = query(&callback)["code"].clone();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let logged: Vec<String> = gw.access_log().iter().map(|l| l["path"].as_str().unwrap_or("").to_string()).collect();
    assert!(logged.iter().any(|p| p.starts_with("/.govgate/callback?code=***")), "{logged:?}");
    assert!(!logged.iter().any(|p| p.contains(&code)), "the authorization code is not logged");
    assert!(b.cookie("shebao.test", "__Host-govgate-session").is_some());

    // On app A with identity headers; spoofed ones are replaced.
    let page = b.get_with(&b.url("shebao.test", "/apply?form=1"), &[("x-govgate-user", "admin"), ("x-govgate-roles", "admin")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let seen = a.received().last().cloned().unwrap();
    assert_eq!(seen.path, "/apply?form=1");
    assert_eq!(seen.header("x-govgate-user"), Some(uid.as_str()));
    assert_eq!(seen.header("x-govgate-acr"), Some("pwd"));
    assert_eq!(seen.header("x-govgate-roles"), Some(""));
    assert_eq!(seen.header("x-govgate-claim-name"), Some("%E5%BC%A0%E4%B8%89"), "the name, percent-encoded UTF-8");
    assert_eq!(seen.header("x-govgate-claim-real-name-level"), Some("3"));
    assert!(seen.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("x-govgate-user")).count() == 1);
    assert!(
        seen.header("x-govgate-claim-phone-number").is_none() && seen.header("x-govgate-claim-id-number").is_none(),
        "only the claims the policy allows"
    );
    assert!(seen.header("cookie").is_none(), "the gateway's cookies are credentials for the gateway, never given to the app");
    let assertion = jwt_claims(seen.header("x-govgate-assertion").unwrap());
    assert_eq!(
        (assertion["aud"].as_str(), assertion["sub"].as_str(), assertion["iss"].as_str()),
        (Some("shebao"), Some(uid.as_str()), Some("govgate"))
    );
    assert_eq!(assertion["name"], "张三");
    assert!(assertion.get("id_number").is_none());
    assert!(assertion["exp"].as_i64().unwrap() - assertion["iat"].as_i64().unwrap() <= 60);
    let jwks: serde_json::Value = serde_json::from_str(&b.get(&b.url("shebao.test", "/.govgate/jwks.json")).await.body).unwrap();
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    verify_with_python(&gw, &jwks, seen.header("x-govgate-assertion").unwrap(), &uid);

    // App B on another host: the provider already knows the user, no login page.
    let to_idp = b.get(&b.url("tax.test", "/")).await;
    assert_eq!(to_idp.status, 302);
    let at_idp = b.get(to_idp.location.as_deref().unwrap()).await;
    assert_eq!(at_idp.status, 303, "no login page the second time: {}", at_idp.body);
    let back = b.get(at_idp.location.as_deref().unwrap()).await;
    assert_eq!(back.status, 303);
    let page = b.follow("tax.test", &back).await;
    assert_eq!(page.status, 200);
    assert_eq!(bu.received().last().unwrap().header("x-govgate-user"), Some(uid.as_str()));
    assert!(bu.received().last().unwrap().header("x-govgate-claim-name").is_none(), "app B's policy forwards no claims");

    // The cookie of host A is nothing on host B.
    let a_cookie = b.cookie("shebao.test", "__Host-govgate-session").unwrap();
    let replay = reqwest_get(&b, "tax.test", "/", &format!("__Host-govgate-session={a_cookie}")).await;
    assert_eq!(replay, 302, "a cookie of host A replayed on host B asks for a login");

    // Log out on B: every session of this login ends, on every host, and the provider's too.
    let out = b.get(&b.url("tax.test", "/.govgate/logout")).await;
    assert_eq!(out.status, 303);
    assert!(out.location.as_deref().unwrap().starts_with(&b.url("id.test", "/logout?id_token_hint=")));
    let signed_out = b.get(out.location.as_deref().unwrap()).await;
    assert_eq!(signed_out.status, 200, "the provider's signed-out page");
    let again = b.get(&b.url("shebao.test", "/apply")).await;
    assert_eq!(again.status, 302, "app A asks for a login again");
    let login = b.get(again.location.as_deref().unwrap()).await;
    assert_eq!(login.status, 200, "and the provider shows its login page again");
    assert!(login.body.contains("name=\"password\""));
}

/// The documented Python example (docs/examples/verify_assertion.py, PyJWT) accepts the
/// assertion for its app and refuses it for another.
fn verify_with_python(gw: &Gateway, jwks: &serde_json::Value, assertion: &str, uid: &str) {
    let has_pyjwt = std::process::Command::new("python3").args(["-c", "import jwt, cryptography"]).status().is_ok_and(|s| s.success());
    assert!(has_pyjwt, "the documented Python example needs python3 with PyJWT: pip install 'PyJWT[crypto]' (make test installs it)");
    let file = gw.dir.path().join("jwks.json");
    std::fs::write(&file, jwks.to_string()).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/verify_assertion.py");
    let run = |aud: &str| {
        std::process::Command::new("python3").arg(&script).arg("--jwks").arg(&file).args(["--audience", aud, assertion]).output().unwrap()
    };
    let ok = run("shebao");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let claims: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(claims["sub"], uid);
    let wrong = run("tax");
    assert!(!wrong.status.success(), "the assertion for shebao is refused by tax");
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("invalid"));
}

async fn reqwest_get(b: &Browser, host: &str, path: &str, cookie: &str) -> u16 {
    b.http().get(b.url(host, path)).header("cookie", cookie).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_replayed_and_cross_browser_callbacks_are_refused() {
    let (a, bu, c) = upstreams().await;
    let (gw, _) = start(&[&a, &bu, &c]).await;
    let mut b = Browser::new(&gw, &HOSTS);

    // A made-up state.
    let forged = b.get(&b.url("shebao.test", "/.govgate/callback?code=x&state=forged")).await;
    assert_eq!(forged.status, 400);
    assert!(forged.body.contains("id=\"reason\""), "{}", forged.body);

    // A callback taken to another browser (login CSRF): refused, its state is spent.
    let callback = login_until_callback(&mut b, "shebao.test", "/apply").await;
    let mut other = Browser::new(&gw, &HOSTS);
    assert_eq!(other.get(&callback).await.status, 400, "another browser cannot finish this login");
    assert_eq!(b.get(&callback).await.status, 400, "a state is used once");

    // A code from another login, with this browser's own state: PKCE and the code binding refuse it.
    let mine = b.get(&b.url("shebao.test", "/apply")).await;
    let my_state = query(mine.location.as_deref().unwrap())["state"].clone();
    let theirs = login_until_callback(&mut other, "shebao.test", "/apply").await;
    let their_code = query(&theirs)["code"].clone();
    let mixed = b.get(&b.url("shebao.test", &format!("/.govgate/callback?code={their_code}&state={my_state}"))).await;
    assert_eq!(mixed.status, 400, "{}", mixed.body);

    // After login, the return path never leaves the host.
    let to_idp = b.get(&b.url("tax.test", "//evil.example/x")).await;
    assert_eq!(to_idp.status, 302);
    let at_idp = b.get(to_idp.location.as_deref().unwrap()).await;
    let page = if at_idp.status == 200 { b.log_in(&at_idp, "zhangsan", PASSWORD).await } else { at_idp };
    let back = b.get(page.location.as_deref().unwrap()).await;
    assert_eq!(back.status, 303);
    let loc = back.location.unwrap();
    assert!(loc.starts_with('/') && !loc.starts_with("//"), "{loc}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_step_up_and_bearer_tokens() {
    let (a, bu, c) = upstreams().await;
    let (gw, uid) = start(&[&a, &bu, &c]).await;
    let mut b = Browser::new(&gw, &HOSTS);

    // A citizen lacks the staff role: 403 that says why.
    let callback = login_until_callback(&mut b, "staff.test", "/").await;
    let back = b.get(&callback).await;
    let page = b.follow("staff.test", &back).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("staff") && page.body.contains("id=\"reason\""), "{}", page.body);
    assert!(c.received().is_empty());

    // A certificate login is required: step-up with acr_values; a password login does not do.
    let step = b.get(&b.url("secure.test", "/")).await;
    assert_eq!(step.status, 302);
    assert_eq!(query(step.location.as_deref().unwrap()).get("acr_values").map(String::as_str), Some("cert"));
    let at_idp = b.get(step.location.as_deref().unwrap()).await;
    assert_eq!(at_idp.status, 200, "the provider asks for a login again rather than reuse the weaker one");
    let done = b.log_in(&at_idp, "zhangsan", PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let refused = b.get(done.location.as_deref().unwrap()).await;
    assert_eq!(refused.status, 403, "a password login does not satisfy acr=cert: {}", refused.body);
    assert!(refused.body.contains("cert") && refused.body.contains("id=\"reason\""));
    // With that weaker session on the host, the next visit is a step-up again, not a loop of 403s.
    let again = b.get(&b.url("secure.test", "/")).await;
    assert_eq!(again.status, 302);
    assert_eq!(query(again.location.as_deref().unwrap()).get("acr_values").map(String::as_str), Some("cert"));
    assert!(c.received().is_empty(), "nothing reached the app");

    // Bearer tokens on API paths.
    let api = b.url("api.test", "/api/v1/me");
    let none = b.get(&api).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.www_authenticate.as_deref(), Some("Bearer realm=\"govgate\""));
    let garbage = b.get_with(&api, &[("authorization", "Bearer abc.def.ghi")]).await;
    assert_eq!(garbage.status, 401);
    assert!(garbage.www_authenticate.unwrap().contains("error=\"invalid_token\""));
    // A real access token for client "api" (the provider already has the session).
    let token = b.access_token("api", "zhangsan", PASSWORD).await;
    let ok = b.get_with(&api, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(c.received().last().unwrap().header("x-govgate-user"), Some(uid.as_str()));
    // Another client's token: wrong audience.
    let tax_token = b.access_token("tax", "zhangsan", PASSWORD).await;
    let wrong = b.get_with(&api, &[("authorization", &format!("Bearer {tax_token}"))]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.www_authenticate.unwrap().contains("another audience"));
    // The browser path of the same app still takes the cookie, not tokens.
    assert_eq!(b.get(&b.url("api.test", "/")).await.status, 302);
    // Expired (the "api" client's tokens live 2 s; the gateway allows 5 s of clock skew).
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let expired = b.get_with(&api, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(expired.status, 401);
    assert!(expired.www_authenticate.unwrap().contains("expired"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_renewed_through_refresh_tokens_and_end_with_the_provider_session() {
    let (a, bu, c) = upstreams().await;
    let (gw, uid) = start(&[&a, &bu, &c]).await;
    // Two browsers log in to tax (whose access tokens live 1 s: renewal is due after 5 s).
    let (mut stays, mut leaves) = (Browser::new(&gw, &HOSTS), Browser::new(&gw, &HOSTS));
    for b in [&mut stays, &mut leaves] {
        let callback = login_until_callback(b, "tax.test", "/").await;
        let back = b.get(&callback).await;
        assert_eq!(b.follow("tax.test", &back).await.status, 200);
    }
    // One logs out at the provider itself (not through the gateway).
    let confirm = leaves.get(&leaves.url("id.test", "/logout")).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let csrf = hidden(&confirm.body, "csrf");
    let url = leaves.url("id.test", "/logout");
    let out = leaves.post(&url, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(out.status, 200, "{}", out.body);
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    // The gateway renews with the refresh token: still signed in …
    let page = stays.get(&stays.url("tax.test", "/")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(bu.received().last().unwrap().header("x-govgate-user"), Some(uid.as_str()));
    // … the rotated token works again next time …
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(stays.get(&stays.url("tax.test", "/")).await.status, 200, "the rotated refresh token was kept");
    // … while the session whose provider session ended asks for a login again.
    assert_eq!(leaves.get(&leaves.url("tax.test", "/")).await.status, 302);
    let log = gw.log();
    assert!(!log.contains("session renewal postponed"), "renewals reached the provider: {log}");
    assert!(log.contains("the provider ended the session"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_channel_logout_ends_the_sessions_on_every_host() {
    let (a, bu, c) = upstreams().await;
    let (gw, uid, idp) = start_with_provider(&[&a, &bu, &c]).await;
    let mut b = Browser::new(&gw, &HOSTS);
    for (host, path) in [("shebao.test", "/apply"), ("tax.test", "/")] {
        let to_idp = b.get(&b.url(host, path)).await;
        let at_idp = b.get(to_idp.location.as_deref().unwrap()).await;
        let done = if at_idp.status == 200 { b.log_in(&at_idp, "zhangsan", PASSWORD).await } else { at_idp };
        let back = b.get(done.location.as_deref().unwrap()).await;
        assert_eq!(b.follow(host, &back).await.status, 200);
    }
    let issuer = format!("https://id.test:{}", gw.https_port);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let event = serde_json::json!({ "http://schemas.openid.net/event/backchannel-logout": {} });
    let token = |claims: serde_json::Value| {
        govgate_idp::tokens::sign(idp.keys(), govgate_idp::keys::SigningAlg::ES256, "logout+jwt", &claims).unwrap()
    };
    let claims = |aud: &str, events: &serde_json::Value| serde_json::json!({ "iss": issuer, "sub": uid, "aud": aud, "iat": now, "exp": now + 120, "jti": "j1", "events": events });
    let url = b.url("tax.test", "/.govgate/backchannel-logout");
    let http = b.http().clone();
    let post = |t: String| {
        let http = http.clone();
        let url = url.clone();
        async move { http.post(url).form(&[("logout_token", t)]).send().await.unwrap().status().as_u16() }
    };
    // Refused: another audience, not a logout event, a changed payload, nothing at all.
    assert_eq!(post(token(claims("nobody", &event))).await, 400);
    assert_eq!(post(token(claims("tax", &serde_json::json!({})))).await, 400);
    let good = token(claims("tax", &event));
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut other = claims("tax", &event);
    other["sub"] = "someone-else".into();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(other.to_string());
    assert_eq!(post(parts.join(".")).await, 400, "a token whose payload was changed");
    assert_eq!(post(String::new()).await, 400);
    assert_eq!(b.get(&b.url("shebao.test", "/apply")).await.status, 200, "refused tokens ended nothing");
    // A valid logout token ends the user's sessions on both hosts.
    assert_eq!(post(good).await, 200);
    assert_eq!(b.get(&b.url("shebao.test", "/apply")).await.status, 302);
    assert_eq!(b.get(&b.url("tax.test", "/")).await.status, 302);
}

/// The identity provider as an external one: govgate-idp's standalone server (the
/// `dev_server` example, plain HTTP on loopback) in its own process, reached by the gateway
/// over the network. The same relying-party code serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_provider_reached_over_the_network() {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let server = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target").join(profile).join("examples/dev_server");
    assert!(server.is_file(), "{} is missing: cargo build -p govgate-idp --example dev_server", server.display());
    let up = Upstream::start("tax").await;
    let idp_port = govgate_tests::free_port();
    let issuer = format!("http://127.0.0.1:{idp_port}");
    let gw = Gateway::start(&format!(
        "[sso]\nissuer = \"{issuer}\"\n\n[[apps]]\nname = \"tax\"\nhosts = [\"tax.test\"]\nupstreams = [\"{}\"]\naccess = \"login\"\nclaims = [\"name\"]\n",
        up.addr
    ));
    let dir = gw.dir.path().join("external-idp");
    let clients = gw.dir.path().join("external-clients.toml");
    std::fs::write(
        &clients,
        format!(
            "[[client]]\nid = \"tax\"\nauth_method = \"none\"\nredirect_uris = [\"https://tax.test:{}/.govgate/callback\"]\ngrant_types = [\"authorization_code\", \"refresh_token\"]\nscopes = [\"openid\", \"profile\"]\nfirst_party = true\n",
            gw.https_port
        ),
    )
    .unwrap();
    let mut cfg = govgate_idp::IdpConfig::new(issuer.clone(), &dir);
    cfg.clients_file = clients.clone();
    let idp = govgate_idp::Idp::open(cfg).await.unwrap();
    let user = govgate_idp::users::NewUser {
        username: "zhangsan".into(),
        kind: Some(govgate_idp::users::AccountKind::Citizen),
        display_name: "张三".into(),
        password: PASSWORD.into(),
        id_number: Some("11010519491231002X".into()),
        ..Default::default()
    };
    let uid = govgate_idp::admin::add_user(idp.store(), "test", &user, govgate_idp::password::Argon2Params::TEST).await.unwrap();
    drop(idp);
    let mut child = std::process::Command::new(&server)
        .arg(&dir)
        .arg(idp_port.to_string())
        .arg(&clients)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _kill = Kill(&mut child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", idp_port)).is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let mut b = Browser::new(&gw, &HOSTS);
    let to_idp = b.get(&b.url("tax.test", "/")).await;
    assert_eq!(to_idp.status, 302, "{}", to_idp.body);
    let auth = to_idp.location.clone().unwrap();
    assert!(auth.starts_with(&format!("{issuer}/authorize?")), "{auth}");
    let login = b.get(&auth).await;
    assert_eq!(login.status, 200);
    let done = b.log_in_at(&issuer, &login, "zhangsan", PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = b.get(done.location.as_deref().unwrap()).await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(b.follow("tax.test", &back).await.status, 200);
    let seen = up.received().last().cloned().unwrap();
    assert_eq!(seen.header("x-govgate-user"), Some(uid.as_str()));
    assert_eq!(seen.header("x-govgate-claim-name"), Some("%E5%BC%A0%E4%B8%89"));
}

/// Waits (up to 5 s: events are written in batches) until the attack log holds an event for which
/// `pred` holds, and returns it.
fn wait_for_event(gw: &Gateway, what: &str, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if let Some(e) = gw.attack_events().into_iter().find(|e| pred(e)) {
            return e;
        }
        assert!(std::time::Instant::now() < deadline, "no {what} event in {:?}", gw.attack_events());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_forged_callbacks_and_forbidden_pages_reach_the_attack_log() {
    let (a, bu, c) = upstreams().await;
    let (gw, _) = start(&[&a, &bu, &c]).await;
    let mut b = Browser::new(&gw, &HOSTS);

    // A wrong password at the provider: an auth_failure event naming the account tried.
    let to_idp = b.get(&b.url("tax.test", "/")).await;
    let login = b.get(to_idp.location.as_deref().unwrap()).await;
    let f = |n: &str| hidden(&login.body, n);
    let url = b.url("id.test", "/login");
    let (req, csrf, lang) = (f("req"), f("csrf"), f("lang"));
    let failed = b.post(&url, &[("req", &req), ("csrf", &csrf), ("lang", &lang), ("username", "zhangsan"), ("password", "wrong")]).await;
    assert!(failed.body.contains("name=\"password\""), "the login page again: {}", failed.body);
    let e = wait_for_event(&gw, "failed login", |e| e["kind"] == "auth_failure" && e["app"] == "id");
    assert_eq!(e["user"], "zhangsan");
    assert_eq!(e["uri"], "/login");
    assert!(!e.to_string().contains("wrong"), "the password tried is never logged: {e}");

    // A login tried with a mobile number as the user name: masked in the event.
    let failed = b.post(&url, &[("req", &req), ("csrf", &csrf), ("lang", &lang), ("username", "13812345678"), ("password", "x")]).await;
    assert_ne!(failed.status, 303);
    let e = wait_for_event(&gw, "masked failed login", |e| e["kind"] == "auth_failure" && e["user"] != "zhangsan" && e["app"] == "id");
    assert!(!e.to_string().contains("13812345678"), "{e}");

    // A forged callback state: an auth_failure event on the app, with the code redacted.
    assert_eq!(b.get(&b.url("shebao.test", "/.govgate/callback?code=secretcode&state=forged")).await.status, 400);
    let e = wait_for_event(&gw, "forged state", |e| e["kind"] == "auth_failure" && e["app"] == "shebao");
    assert_eq!(e["uri"], "/.govgate/callback?code=***&state=forged");

    // A signed-in citizen on a staff-only app: a forbidden event.
    let callback = login_until_callback(&mut b, "staff.test", "/").await;
    let back = b.get(&callback).await;
    assert_eq!(b.follow("staff.test", &back).await.status, 403);
    let e = wait_for_event(&gw, "forbidden", |e| e["kind"] == "forbidden");
    assert_eq!(e["app"], "staff");
    assert_eq!(e["status"], 403);
    assert!(c.received().is_empty());
}

/// The browser scenario in real headless Chromium, over HTTPS with the gateway's
/// generated CA: visit app A, get the login page, log in, see your name on app A; visit app B
/// with no login page; log out on B; app A asks for a login again. Screenshots of each step go
/// to target/artifacts/sso-*.png.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_one_login_for_two_apps_and_one_logout_for_both() {
    use fantoccini::Locator;
    use govgate_tests::browser::Browser as Chromium;
    let (a, bu, c) = upstreams().await;
    let (gw, uid) = start(&[&a, &bu, &c]).await;
    let chrome = Chromium::start_with("en-US", &["--host-resolver-rules=MAP *.test 127.0.0.1", "--ignore-certificate-errors"]).await;
    let url = |host: &str, path: &str| format!("https://{host}:{}{path}", gw.https_port);
    let host_now = || async { chrome.client.current_url().await.unwrap().host_str().unwrap_or("").to_string() };

    // App A's protected page sends the browser to the provider's login page.
    chrome.client.goto(&url("shebao.test", "/apply")).await.unwrap();
    chrome.wait_for("#username").await;
    assert_eq!(host_now().await, "id.test");
    chrome.screenshot("sso-1-login-page").await;
    chrome.client.find(Locator::Css("#username")).await.unwrap().send_keys("zhangsan").await.unwrap();
    chrome.client.find(Locator::Css("#password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    chrome.client.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();

    // Back on app A, signed in: the app greets the user by name.
    let text = chrome.wait_for_text("body", "upstream=shebao path=/apply").await;
    assert!(text.contains(&format!("user={uid}")) && text.contains("name=张三"), "{text}");
    assert_eq!(host_now().await, "shebao.test");
    chrome.screenshot("sso-2-app-a-signed-in").await;

    // App B on another host: signed in without a login page.
    chrome.client.goto(&url("tax.test", "/")).await.unwrap();
    let text = chrome.wait_for_text("body", "upstream=tax").await;
    assert!(text.contains(&format!("user={uid}")), "{text}");
    assert!(bu.received().iter().any(|r| r.header("x-govgate-user") == Some(uid.as_str())));
    chrome.screenshot("sso-3-app-b-no-login").await;

    // Log out on B: the provider's signed-out page.
    chrome.client.goto(&url("tax.test", "/.govgate/logout")).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while host_now().await != "id.test" {
        assert!(std::time::Instant::now() < deadline, "logout did not reach the provider");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    chrome.wait_for_text("body", "Signed out").await;
    chrome.screenshot("sso-4-signed-out").await;

    // App A asks for a login again.
    let served = a.received().len();
    chrome.client.goto(&url("shebao.test", "/apply")).await.unwrap();
    chrome.wait_for("#username").await;
    assert_eq!(host_now().await, "id.test", "app A sends the browser to the login page again");
    assert_eq!(a.received().len(), served, "app A saw no request after the logout");
    chrome.screenshot("sso-5-app-a-asks-again").await;
    chrome.close().await;
}
