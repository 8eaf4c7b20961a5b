//! Certificate login, end to end: the real binary with a TLS listener that asks for client
//! certificates, real TLS handshakes presenting certificates made by openssl at test time
//! (`certs/tests/fixtures/make.sh`), the built-in identity provider, and single sign-on for an
//! app that requires `acr=cert`.

use govgate_tests::web::{hidden, jwt_claims, query, Browser, Page};
use govgate_tests::{Gateway, Upstream};
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "Correct-Horse-9";
const HOSTS: [&str; 2] = ["id.test", "secure.test"];
/// The identity number in the subject of the fixtures' `ec/leaf.pem` (and `rsa/leaf.pem`).
const ZHANGSAN_ID: &str = "11010519491231002X";

struct Setup {
    gw: Gateway,
    fx: PathBuf,
    up: Upstream,
    zhangsan: String,
    lisi: String,
    _dir: tempfile::TempDir,
}

/// Fixtures, a trust directory (the EC and RSA test roots, the EC intermediate's CRL), the
/// gateway, and two citizens: zhangsan (found by the identity number in the certificates'
/// subject) and lisi (the RSA certificate is bound to lisi by its fingerprint).
async fn setup(revocation: &str) -> Setup {
    setup_with(revocation, None).await
}

/// [`setup`], with `trust` instead of the fixtures' trust directory when given.
async fn setup_with(revocation: &str, trust_override: Option<PathBuf>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/tests/fixtures/make.sh");
    let out = Command::new("sh").arg(script).arg(&fx).output().unwrap();
    assert!(out.status.success(), "fixtures: {}", String::from_utf8_lossy(&out.stderr));
    let trust = dir.path().join("trust");
    std::fs::create_dir_all(trust.join("anchors")).unwrap();
    std::fs::create_dir_all(trust.join("crl")).unwrap();
    std::fs::copy(fx.join("ec/root.pem"), trust.join("anchors/ec-root.pem")).unwrap();
    std::fs::copy(fx.join("rsa/root.pem"), trust.join("anchors/rsa-root.pem")).unwrap();
    std::fs::copy(fx.join("ec/int.crl.pem"), trust.join("crl/ec-int.crl.pem")).unwrap();
    std::fs::copy(fx.join("ec/root.crl.pem"), trust.join("crl/ec-root.crl.pem")).unwrap();
    let trust = trust_override.unwrap_or(trust);

    let up = Upstream::start("secure").await;
    let policy = format!(
        "[certs]\ntrust = \"{}\"\nrevocation = \"{revocation}\"\n\n[idp]\nissuer = \"https://id.test:{{HTTPS}}\"\nclients = \"clients.toml\"\n\n\
         [[apps]]\nname = \"id\"\nhosts = [\"id.test\"]\nbuiltin = \"idp\"\n\n\
         [[apps]]\nname = \"secure\"\nhosts = [\"secure.test\"]\nupstreams = [\"{}\"]\naccess = {{ acr = \"cert\" }}\n",
        trust.display(),
        up.addr
    );
    let gw = Gateway::start_with_client_certs(&policy);
    let port = gw.https_port;
    std::fs::write(
        gw.dir.path().join("clients.toml"),
        format!(
            "[[client]]\nid = \"secure\"\nauth_method = \"none\"\nredirect_uris = [\"https://secure.test:{port}/.govgate/callback\"]\n\
             grant_types = [\"authorization_code\", \"refresh_token\"]\nscopes = [\"openid\", \"profile\"]\nfirst_party = true\n"
        ),
    )
    .unwrap();

    let mut cfg = govgate_idp::IdpConfig::new(format!("https://id.test:{port}"), gw.dir.path().join("data/idp"));
    cfg.clients_file = gw.dir.path().join("clients.toml");
    let idp = govgate_idp::Idp::open(cfg).await.expect("open the provider's store");
    let citizen = |username: &str, name: &str, id: &str| govgate_idp::users::NewUser {
        username: username.into(),
        kind: Some(govgate_idp::users::AccountKind::Citizen),
        display_name: name.into(),
        password: PASSWORD.into(),
        id_number: Some(id.into()),
        real_name_level: Some(4),
        ..Default::default()
    };
    let argon = govgate_idp::password::Argon2Params::TEST;
    let zhangsan = govgate_idp::admin::add_user(idp.store(), "test", &citizen("zhangsan", "张三", ZHANGSAN_ID), argon).await.unwrap();
    let lisi = govgate_idp::admin::add_user(idp.store(), "test", &citizen("lisi", "李四", "110101199003071233"), argon).await.unwrap();
    let rsa_fp = fingerprint(&fx.join("rsa/leaf.pem"));
    govgate_idp::admin::bind_certificate(idp.store(), "test", "lisi", &rsa_fp).await.unwrap();
    Setup { gw, fx, up, zhangsan, lisi, _dir: dir }
}

/// SHA-256 of the certificate's DER, as `openssl x509 -fingerprint` computes it.
fn fingerprint(pem: &Path) -> String {
    let out = Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(pem).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().rsplit('=').next().unwrap().replace(':', "").to_ascii_lowercase()
}

/// A browser presenting `leaf` (with `chain` after it) and its key, or no certificate.
fn browser(s: &Setup, cert: Option<(&str, &[&str], &str)>) -> Browser {
    let identity = cert.map(|(leaf, chain, key)| {
        let mut pem = std::fs::read(s.fx.join(leaf)).unwrap();
        for c in chain {
            pem.extend(std::fs::read(s.fx.join(c)).unwrap());
        }
        pem.extend(std::fs::read(s.fx.join(key)).unwrap());
        reqwest::Identity::from_pem(&pem).expect("client identity")
    });
    Browser::with_identity(&s.gw, &HOSTS, identity)
}

/// Visits the app that needs `acr=cert` and follows to the provider's login page.
async fn login_page(b: &mut Browser) -> Page {
    let to_idp = b.get(&b.url("secure.test", "/")).await;
    assert_eq!(to_idp.status, 302, "{}", to_idp.body);
    let auth = to_idp.location.clone().unwrap();
    assert_eq!(query(&auth).get("acr_values").map(String::as_str), Some("cert"));
    let page = b.get(&auth).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

async fn post_cert_login(b: &mut Browser, page: &Page) -> Page {
    let f = |n: &str| hidden(&page.body, n);
    let url = b.url("id.test", "/login");
    b.post(&url, &[("req", &f("req")), ("csrf", &f("csrf")), ("lang", "en"), ("method", "cert")]).await
}

const CERT_BUTTON: &str = r#"name="method" value="cert""#;

/// Logs in with the certificate and returns who the app was told the user is, with the
/// gateway's assertion claims.
async fn cert_login_reaches_the_app(s: &Setup, b: &mut Browser) -> (String, serde_json::Value) {
    let page = login_page(b).await;
    assert!(page.body.contains(CERT_BUTTON), "the provider offers the certificate login: {}", page.body);
    assert!(page.body.contains(ZHANGSAN_ID), "and shows the certificate's subject: {}", page.body);
    let done = post_cert_login(b, &page).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = b.get(done.location.as_deref().unwrap()).await;
    let app = b.follow("secure.test", &back).await;
    assert_eq!(app.status, 200, "acr=cert satisfies the app: {}", app.body);
    let seen = s.up.received().last().cloned().unwrap();
    let claims = jwt_claims(seen.header("x-govgate-assertion").unwrap());
    (seen.header("x-govgate-user").unwrap().to_string(), claims)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_certificate_logs_in_with_acr_cert() {
    let s = setup("soft_fail").await;

    // Found by the identity number in the subject.
    let mut b = browser(&s, Some(("ec/leaf.pem", &["ec/int.pem"], "ec/leaf.key")));
    let (user, claims) = cert_login_reaches_the_app(&s, &mut b).await;
    assert_eq!(user, s.zhangsan);
    assert_eq!(claims["acr"], "cert", "{claims}");

    // A certificate bound to an account by its fingerprint logs that account in, even though
    // its subject carries zhangsan's identity number: an administrator's binding wins.
    let mut b = browser(&s, Some(("rsa/leaf.pem", &["rsa/int.pem"], "rsa/leaf.key")));
    let (user, claims) = cert_login_reaches_the_app(&s, &mut b).await;
    assert_eq!(user, s.lisi);
    assert_eq!(claims["acr"], "cert");

    // No certificate: no certificate button, and the password login works; a forged
    // certificate-login POST, with headers claiming a certificate, is refused.
    let mut b = browser(&s, None);
    let page = login_page(&mut b).await;
    assert!(!page.body.contains(CERT_BUTTON) && !page.body.contains("cert-refused"));
    let url = b.url("id.test", "/login");
    let rb = b
        .http()
        .post(&url)
        .header("x-govgate-client-cert", fingerprint(&s.fx.join("ec/leaf.pem")))
        .header("x-ssl-client-cert", std::fs::read_to_string(s.fx.join("ec/leaf.pem")).unwrap().replace('\n', " "));
    let (req, csrf) = (hidden(&page.body, "req"), hidden(&page.body, "csrf"));
    let forged = b.send(rb.form(&[("req", req.as_str()), ("csrf", &csrf), ("lang", "en"), ("method", "cert")]), "id.test").await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(forged.body.contains("not bound to an account"), "{}", forged.body);
    let page = login_page(&mut b).await;
    let done = b.log_in(&page, "zhangsan", PASSWORD).await;
    assert_eq!(done.status, 303, "the password login works without a certificate: {}", done.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_revoked_and_untrusted_certificates_are_refused_with_a_clear_page() {
    let s = setup("soft_fail").await;
    // The reason, in Chinese (the default) and in English.
    let cases: [(&str, &[&str], &str, &str, &str); 3] = [
        ("ec/expired.pem", &["ec/int.pem"], "ec/expired.key", "证书已过期", "it has expired"),
        ("ec/revoked.pem", &["ec/int.pem"], "ec/revoked.key", "证书已被吊销", "it has been revoked"),
        ("ec/forged.pem", &["ec/evil-int.pem"], "ec/forged.key", "证书不是由受信任的机构签发的", "not issued by a trusted authority"),
    ];
    for (leaf, chain, key, zh, reason) in cases {
        let mut b = browser(&s, Some((leaf, chain, key)));
        let page = login_page(&mut b).await;
        // The login page says why the certificate is not accepted, and offers no certificate login.
        assert!(page.body.contains("id=\"cert-refused\"") && page.body.contains(zh), "{leaf}: {}", page.body);
        assert!(!page.body.contains(CERT_BUTTON), "{leaf}");
        // Posting the certificate login anyway fails with the same explanation.
        let refused = post_cert_login(&mut b, &page).await;
        assert_eq!(refused.status, 400, "{leaf}");
        assert!(refused.body.contains(reason), "{leaf}: {}", refused.body);
        // The password login remains.
        let page = login_page(&mut b).await;
        let done = b.log_in(&page, "zhangsan", PASSWORD).await;
        assert_eq!(done.status, 303, "{leaf}: {}", done.body);
    }
    assert!(s.up.received().is_empty(), "no refused certificate reached the app");
    // Each refused certificate login is an authentication failure in the attack log.
    let failures = || {
        let events = s.gw.attack_events();
        events.iter().filter(|e| e["kind"] == "auth_failure" && e["uri"] == "/login" && e["status"] == 400).count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while failures() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(failures(), 3, "{:?}", s.gw.attack_events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_fail_refuses_a_certificate_whose_crl_cannot_be_had() {
    // The RSA chain has no CRL in the trust directory, and its distribution point
    // (crl.example.gov.cn) cannot be reached: with hard_fail the login is refused...
    let s = setup("hard_fail").await;
    let mut b = browser(&s, Some(("rsa/leaf.pem", &["rsa/int.pem"], "rsa/leaf.key")));
    let page = login_page(&mut b).await;
    assert!(page.body.contains("暂时无法确认证书是否已被吊销"), "{}", page.body);
    assert!(!page.body.contains(CERT_BUTTON));
    // ...while the EC chain, whose CRL is in the trust directory, logs in.
    let mut b = browser(&s, Some(("ec/leaf.pem", &["ec/int.pem"], "ec/leaf.key")));
    let (user, _) = cert_login_reaches_the_app(&s, &mut b).await;
    assert_eq!(user, s.zhangsan);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_pki_validates_for_its_purposes_and_its_citizen_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let govgate = |args: &[&str]| Command::new(govgate_tests::binary()).args(args).output().unwrap();
    let out = govgate(&["pki", "init", "--dir", pki.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(summary.contains("citizen.p12") && summary.contains("Import"), "says how to import the .p12: {summary}");
    // Private keys and the PKCS#12 file (and its password) are readable by the owner only.
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "root-key.pem",
        "int-key.pem",
        "server-key.pem",
        "citizen-key.pem",
        "docsign-key.pem",
        "citizen.p12",
        "citizen.p12.password",
        "sm2/citizen-key.pem",
    ] {
        let mode = std::fs::metadata(pki.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // Each certificate validates (govgate-certs, through the CLI) for its purpose, not others.
    let trust = pki.join("trust");
    let verify = |cert: &str, purpose: &str| {
        let out = govgate(&["cert", "verify", "--trust", trust.to_str().unwrap(), "--purpose", purpose, pki.join(cert).to_str().unwrap()]);
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    for (cert, purpose) in
        [("citizen.pem", "tls-client"), ("docsign.pem", "document-signing"), ("server.pem", "any"), ("sm2/citizen.pem", "tls-client")]
    {
        let (code, report) = verify(cert, purpose);
        assert_eq!(code, Some(0), "{cert} for {purpose}: {report}");
        assert!(report.contains("TOTAL_PASSED"));
    }
    for (cert, purpose) in [("server.pem", "tls-client"), ("docsign.pem", "tls-client")] {
        assert_eq!(verify(cert, purpose).0, Some(1), "{cert} is not for {purpose}");
    }
    // The PKCS#12 file opens with its password and holds the citizen certificate and the issuing CA.
    let p12 = Command::new("openssl")
        .args(["pkcs12", "-nokeys", "-passin"])
        .arg(format!("file:{}", pki.join("citizen.p12.password").display()))
        .arg("-in")
        .arg(pki.join("citizen.p12"))
        .output()
        .unwrap();
    assert!(p12.status.success(), "{}", String::from_utf8_lossy(&p12.stderr));
    let text = String::from_utf8_lossy(&p12.stdout);
    assert!(text.contains("govgate demo Issuing CA") && text.matches("BEGIN CERTIFICATE").count() == 2, "{text}");
    // An existing PKI is never overwritten.
    assert!(!govgate(&["pki", "init", "--dir", pki.to_str().unwrap()]).status.success());

    // The citizen certificate logs in (found by its identity number) with acr=cert.
    let s = setup_with("hard_fail", Some(trust)).await;
    let pem = |f: &str| pki.join(f).to_str().unwrap().to_string();
    let (leaf, int, key) = (pem("citizen.pem"), pem("int.pem"), pem("citizen-key.pem"));
    let mut b = browser(&s, Some((&leaf, &[&int], &key)));
    let (user, claims) = cert_login_reaches_the_app(&s, &mut b).await;
    assert_eq!(user, s.zhangsan);
    assert_eq!(claims["acr"], "cert");
}
