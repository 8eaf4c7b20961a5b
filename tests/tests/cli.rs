//! The `govgate` command line as an operator meets it.

use govgate_tests::binary;
use std::process::Command;

const BROKEN: &str = r#"[[listeners]]
name = "http"
address = "127.0.0.1:18999"

[[apps]]
name = "shebao"
hosts = ["shebao.gov.cn"]
upstreams = ["127.0.0.1:9001"]
rate_limit = { rate = "10/fortnight" }
"#;

#[test]
fn check_names_the_file_line_and_column_of_each_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, BROKEN).unwrap();
    let out = Command::new(binary()).args(["check", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:9:23: error: invalid rate \"10/fortnight\"", path.display())), "{err}");
    assert!(err.contains("9 | rate_limit = { rate = \"10/fortnight\" }"), "{err}");

    // A cross-field error points at the value it is about.
    let dup = BROKEN.replace("rate_limit = { rate = \"10/fortnight\" }", "")
        + "\n[[apps]]\nname = \"shebao\"\nhosts = [\"x.gov.cn\"]\nupstreams = [\"127.0.0.1:9002\"]\n";
    std::fs::write(&path, dup).unwrap();
    let out = Command::new(binary()).args(["check", "--config"]).arg(&path).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":12:8: error: app name \"shebao\" is used twice"), "{err}");
}

#[test]
fn check_accepts_the_shipped_policies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for f in ["policies/gateway.toml", "policies/demo.toml"] {
        let out = Command::new(binary()).args(["check", "--config"]).arg(root.join(f)).output().unwrap();
        assert!(out.status.success(), "{f}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains(": ok ("));
    }
}

#[test]
fn serve_refuses_to_start_on_an_invalid_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, BROKEN).unwrap();
    let out = Command::new(binary()).args(["serve", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not starting") && err.contains("broken.toml:9:23"), "{err}");
}

/// Certificates and signatures made by the certificate crate's fixture script (openssl).
fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/tests/fixtures/make.sh");
    let out = Command::new("sh").arg(&script).arg(dir.path().join("fx")).output().expect("run make.sh (needs openssl)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn govgate(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(binary()).args(args).current_dir(dir.join("fx")).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn cert_verify_reports_etsi_indications_and_exits_accordingly() {
    let fx = fixtures();
    let d = fx.path();
    let (code, out) =
        govgate(d, &["cert", "verify", "ec/leaf.pem", "--chain", "ec/int.pem", "--trust", "ec/root.pem", "--purpose", "tls-client"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("indication:     TOTAL_PASSED") && out.contains("serialNumber=11010519491231002X"), "{out}");
    let (code, out) = govgate(d, &["cert", "verify", "sm2/leaf.pem", "--chain", "sm2/int.pem", "--trust", "sm2/root.pem"]);
    assert_eq!(code, 0, "SM2 chain: {out}");
    let (code, out) = govgate(d, &["cert", "verify", "ec/expired.pem", "--chain", "ec/int.pem", "--trust", "ec/root.pem", "--json"]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["indication"].as_str(), v["sub_indication"].as_str()), (Some("TOTAL_FAILED"), Some("EXPIRED")));
    // A forged signature, and a chain that cannot be built without its intermediate.
    let (code, out) = govgate(d, &["cert", "verify", "ec/forged.pem", "--chain", "ec/int.pem", "--trust", "ec/root.pem"]);
    assert_eq!(code, 1);
    assert!(out.contains("SIG_CRYPTO_FAILURE"), "{out}");
    let (code, out) = govgate(d, &["cert", "verify", "ec/leaf.pem", "--trust", "ec/root.pem"]);
    assert_eq!(code, 1);
    assert!(out.contains("NO_CERTIFICATE_CHAIN_FOUND"), "missing intermediate: {out}");
    let (code, out) = govgate(d, &["cert", "verify", "missing.pem", "--trust", "ec/root.pem"]);
    assert_eq!(code, 2);
    assert!(out.contains("missing.pem: No such file"), "{out}");
    let (code, out) = govgate(d, &["cert", "verify", "ec/leaf.pem", "--trust", "ec/root.pem", "--at", "tomorrow"]);
    assert_eq!(code, 2);
    assert!(out.contains("RFC 3339"), "{out}");
}

#[test]
fn esign_verify_checks_the_signature_over_the_data() {
    let fx = fixtures();
    let d = fx.path();
    let (code, out) = govgate(d, &["esign", "verify", "--data", "doc.txt", "--sig", "ec/doc.p7s", "--trust", "ec/root.pem"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("TOTAL_PASSED") && out.contains("identity:       resident_id 11010519491231002X"), "{out}");
    std::fs::write(d.join("fx/tampered.txt"), b"this is not what was signed").unwrap();
    let (code, out) = govgate(d, &["esign", "verify", "--data", "tampered.txt", "--sig", "ec/doc.p7s", "--trust", "ec/root.pem"]);
    assert_eq!(code, 1);
    assert!(out.contains("HASH_FAILURE"), "{out}");
}

/// A policy serving the identity provider on `id.test`, with one public client.
const IDP_POLICY: &str = "[idp]\nissuer = \"https://id.test:{HTTPS}\"\nclients = \"clients.toml\"\n\n[[apps]]\nname = \"id\"\nhosts = [\"id.test\"]\nbuiltin = \"idp\"\n";
const IDP_CLIENTS: &str =
    "[[client]]\nid = \"shebao\"\nauth_method = \"none\"\nredirect_uris = [\"https://shebao.test/cb\"]\nfirst_party = true\n";

/// Runs `govgate ARGS --config POLICY` with `stdin` on standard input: (exit code, stdout, stderr).
fn govgate_with(config: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A command that refuses its arguments exits before reading its input: that is no error here.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing the command's input: {e}");
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Logs in through the gateway's provider with the password form; the status of the answer to
/// the form (303 to the client with a code, or the form again with an error).
async fn log_in(gw: &govgate_tests::Gateway, username: &str, password: &str) -> (u16, String) {
    let http = govgate_tests::client();
    let authorize = "/authorize?response_type=code&client_id=shebao&redirect_uri=https%3A%2F%2Fshebao.test%2Fcb&scope=openid&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    let r = http.get(gw.url(authorize)).header("host", "id.test").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookies: Vec<String> =
        r.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string()).collect();
    let page = r.text().await.unwrap().replace("&#x2f;", "/");
    let hidden = |name: &str| {
        let needle = format!(r#"name="{name}" value=""#);
        let i = page.find(&needle).unwrap_or_else(|| panic!("no {name} in {page}")) + needle.len();
        page[i..].split('"').next().unwrap().to_string()
    };
    let form = [("req", hidden("req")), ("csrf", hidden("csrf")), ("username", username.into()), ("password", password.into())];
    let r = http.post(gw.url("/login")).header("host", "id.test").header("cookie", cookies.join("; ")).form(&form).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    (status, location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_commands_manage_the_accounts_the_provider_logs_in() {
    let gw = govgate_tests::Gateway::start(IDP_POLICY);
    std::fs::write(gw.dir.path().join("clients.toml"), IDP_CLIENTS).unwrap();
    gw.signal("HUP");
    let cfg = gw.config.clone();
    let add = |args: &[&str], stdin: &str| govgate_with(&cfg, &[&["user", "add"], args].concat(), stdin);

    let (code, out, err) = add(
        &[
            "zhangsan",
            "--name",
            "张三",
            "--id-number",
            "11010519491231002X",
            "--mobile",
            "13812345678",
            "--email",
            "zs@example.cn",
            "--level",
            "3",
            "--password-stdin",
        ],
        "Citizen-pass-1\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = add(
        &["acme", "--kind", "legal-person", "--name", "某某公司", "--uscc", "91350100M000100Y43", "--password-stdin"],
        "Company-pass-1\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) =
        add(&["wang", "--kind", "staff", "--name", "王五", "--role", "security", "--role", "admin", "--password-stdin"], "Staff-pass-12\n");
    assert_eq!(code, 0, "{out}{err}");

    // Bad input is refused with a message naming the flag, and nothing is created.
    let (code, _, err) = add(&["lisi", "--name", "李四", "--id-number", "110105194912310021", "--password-stdin"], "Citizen-pass-1\n");
    assert_eq!(code, 2);
    assert!(err.contains("--id-number: The check digit of the identity number is wrong."), "{err}");
    let (code, _, err) =
        add(&["lisi", "--kind", "legal-person", "--name", "X", "--uscc", "91350100M000100Y44", "--password-stdin"], "Citizen-pass-1\n");
    assert!(code == 2 && err.contains("--uscc: The check character"), "{err}");
    let (code, _, err) =
        add(&["lisi", "--name", "李四", "--id-number", "11010519491231002X", "--level", "5", "--password-stdin"], "Citizen-pass-1\n");
    assert!(code == 2 && err.contains("--level: Real-name level must be 1–4."), "{err}");
    let (code, _, err) = add(&["lisi", "--name", "李四", "--id-number", "11010519491231002X", "--password-stdin"], "short\n");
    assert!(code == 2 && err.contains("password: Password: 8–128 characters."), "{err}");
    let (code, _, err) = add(&["lisi", "--name", "李四", "--id-number", "11010519491231002X"], "");
    assert!(code == 2 && err.contains("--password-stdin"), "no terminal and no --password-stdin: {err}");
    let (code, _, err) = add(&["zhangsan", "--name", "张三", "--id-number", "11010519491231002X", "--password-stdin"], "Citizen-pass-1\n");
    assert!(code == 2 && err.contains("\"zhangsan\" exists already"), "{err}");
    let (code, _, err) = govgate_with(std::path::Path::new("/nonexistent/gateway.toml"), &["user", "list"], "");
    assert!(code != 0 && err.contains("/nonexistent/gateway.toml"), "{err}");

    // The list masks identity numbers and mobiles.
    let (code, out, err) = govgate_with(&cfg, &["user", "list"], "");
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("11010519491231002X") && !out.contains("13812345678"), "{out}");
    assert!(out.contains("110*************2X") && out.contains("138****5678"), "{out}");
    assert!(out.contains("acme") && out.contains("legal_person") && out.contains("security,admin") && out.contains("3 accounts"), "{out}");
    assert!(!out.contains("lisi"), "{out}");

    // The accounts log in; a locked one does not, until it is unlocked.
    assert_eq!(log_in(&gw, "zhangsan", "Citizen-pass-1").await.0, 303);
    assert_eq!(govgate_with(&cfg, &["user", "lock", "zhangsan"], "").0, 0);
    assert!(govgate_with(&cfg, &["user", "list"], "").1.lines().any(|l| l.starts_with("zhangsan") && l.ends_with("locked")));
    let (status, location) = log_in(&gw, "zhangsan", "Citizen-pass-1").await;
    assert!(status != 303 && !location.contains("code="), "a locked account logged in: {status} {location}");
    assert_eq!(govgate_with(&cfg, &["user", "unlock", "zhangsan"], "").0, 0);
    assert_eq!(log_in(&gw, "zhangsan", "Citizen-pass-1").await.0, 303);
    let (code, _, err) = govgate_with(&cfg, &["user", "lock", "nobody"], "");
    assert!(code == 2 && err.contains("no such user nobody"), "{err}");

    // A new password replaces the old one; a weak one is refused.
    let (code, _, err) = govgate_with(&cfg, &["user", "set-password", "wang", "--password-stdin"], "New-staff-pass-2\n");
    assert_eq!(code, 0, "{err}");
    assert_ne!(log_in(&gw, "wang", "Staff-pass-12").await.0, 303);
    assert_eq!(log_in(&gw, "wang", "New-staff-pass-2").await.0, 303);
    let (code, _, err) = govgate_with(&cfg, &["user", "set-password", "wang", "--password-stdin"], "aaaaaaaaaa\n");
    assert!(code == 2 && err.contains("at least two of letters"), "{err}");
    // No password ever reaches the database in clear.
    let db = std::fs::read(gw.data_dir().join("idp/idp.sqlite")).unwrap();
    let wal = std::fs::read(gw.data_dir().join("idp/idp.sqlite-wal")).unwrap_or_default();
    for secret in ["Citizen-pass-1", "New-staff-pass-2", "Company-pass-1"] {
        let hit = |b: &[u8]| b.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!hit(&db) && !hit(&wal), "{secret} stored in clear");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_add_writes_a_hashed_secret_that_the_token_endpoint_accepts() {
    let gw = govgate_tests::Gateway::start(IDP_POLICY);
    let file = gw.dir.path().join("clients.toml");
    std::fs::write(&file, IDP_CLIENTS).unwrap();
    let cfg = gw.config.clone();
    let (code, out, err) = govgate_with(
        &cfg,
        &[
            "client",
            "add",
            "tax",
            "--name",
            "税务",
            "--redirect-uri",
            "https://tax.test/cb",
            "--scope",
            "profile",
            "--post-logout-redirect-uri",
            "https://tax.test/bye",
        ],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    let secret = out.lines().find_map(|l| l.strip_prefix("client_secret: ")).unwrap_or_else(|| panic!("{out}")).to_string();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(IDP_CLIENTS), "appended, the existing entries kept: {text}");
    assert!(!text.contains(&secret) && text.contains("secret_hash = \"sha256:"), "{text}");
    let (code, out, _) = govgate_with(&cfg, &["check"], "");
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = govgate_with(&cfg, &["client", "list"], "");
    assert_eq!(code, 0);
    assert!(
        out.contains("tax") && out.contains("client_secret_basic") && out.contains("openid profile") && out.contains("2 clients"),
        "{out}"
    );
    assert!(!out.contains(&secret));

    // The running gateway takes the new client on SIGHUP and authenticates it with the secret.
    gw.signal("HUP");
    let mut verdict = String::new();
    for _ in 0..50 {
        verdict = token(&gw, &secret).await;
        if verdict == "invalid_grant" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(verdict, "invalid_grant", "the client authenticated (the made-up code is what fails)");
    assert_eq!(token(&gw, "wrong").await, "invalid_client");

    // Duplicates and bad URIs are refused.
    let (code, _, err) = govgate_with(&cfg, &["client", "add", "tax", "--redirect-uri", "https://tax.test/cb"], "");
    assert!(code == 2 && err.contains("client tax exists"), "{err}");
    let (code, _, err) = govgate_with(&cfg, &["client", "add", "evil", "--redirect-uri", "http://evil.example/cb"], "");
    assert!(code == 2 && err.contains("https"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}

/// The `error` of a token request by client `tax` with `secret` and a made-up code.
async fn token(gw: &govgate_tests::Gateway, secret: &str) -> String {
    let form = [("grant_type", "authorization_code"), ("code", "made-up"), ("redirect_uri", "https://tax.test/cb")];
    let r = govgate_tests::client().post(gw.url("/token")).header("host", "id.test").basic_auth("tax", Some(secret)).form(&form);
    let r = r.send().await.unwrap();
    r.json::<serde_json::Value>().await.unwrap()["error"].as_str().unwrap_or_default().to_string()
}
