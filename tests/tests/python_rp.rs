//! A relying party in another language: `tests/rp/python_rp.py` (Authlib) signs a user in at the
//! real binary's identity provider over TLS and checks every step itself — discovery, login form,
//! code, tokens, ID token against the JWKS, UserInfo, refresh, RP-initiated logout and the
//! back-channel logout token it receives. The account is made with `govgate user add`.
//! Python 3 with `authlib` and `requests` is required (`make test-prerequisites` installs them):
//! without them this test fails, it is not skipped.

use govgate_tests::{binary, free_port, Gateway};
use std::io::Write;
use std::process::{Command, Stdio};

const SECRET: &str = "python-rp-secret-0123456789abcdefghijklmnop";
const PASSWORD: &str = "Python-rp-pass-1";

#[test]
fn an_authlib_relying_party_signs_in_refreshes_and_logs_out() {
    let has_modules = Command::new("python3").args(["-c", "import authlib, requests, cryptography"]).status().is_ok_and(|s| s.success());
    assert!(has_modules, "python3 with authlib, requests and cryptography is required: make test-prerequisites");

    let backchannel = free_port();
    let policy = "[idp]\nissuer = \"https://localhost:{HTTPS}\"\nclients = \"clients.toml\"\n\n[[apps]]\nname = \"id\"\nhosts = [\"localhost\"]\nbuiltin = \"idp\"\n";
    let gw = Gateway::start(policy);
    let hash = govgate_idp::crypto::sha256_hex(SECRET);
    let clients = format!(
        "[[client]]\nid = \"python-rp\"\nname = \"Python RP\"\nsecret_hash = \"sha256:{hash}\"\nredirect_uris = [\"http://127.0.0.1:1/cb\"]\npost_logout_redirect_uris = [\"http://127.0.0.1:1/bye\"]\nbackchannel_logout_uri = \"http://127.0.0.1:{backchannel}/backchannel\"\nscopes = [\"openid\", \"profile\", \"email\"]\nfirst_party = true\n"
    );
    std::fs::write(gw.dir.path().join("clients.toml"), clients).unwrap();

    let mut add = Command::new(binary())
        .args([
            "user",
            "add",
            "lisi",
            "--name",
            "李四",
            "--id-number",
            "11010519491231002X",
            "--email",
            "lisi@example.cn",
            "--password-stdin",
        ])
        .arg("--config")
        .arg(&gw.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rp/python_rp.py");
    let mut rp = Command::new("python3")
        .arg(&script)
        .args(["--issuer", &format!("https://localhost:{}", gw.https_port)])
        .arg("--ca")
        .arg(gw.data_dir().join("tls/ca.pem"))
        .args(["--client-id", "python-rp", "--client-secret", SECRET])
        .args(["--redirect-uri", "http://127.0.0.1:1/cb", "--post-logout-uri", "http://127.0.0.1:1/bye"])
        .args(["--backchannel-port", &backchannel.to_string(), "--username", "lisi", "--password-stdin"])
        .env("NO_PROXY", "*")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    rp.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = rp.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the Python RP failed:\n{stdout}\n{stderr}\n--- gateway ---\n{}", gw.log());
    for step in [
        "discovery and JWKS",
        "ID token valid",
        "userinfo",
        "refresh",
        "RP-initiated logout",
        "back-channel logout token",
        "refused after logout",
    ] {
        assert!(stdout.contains(step), "step {step:?} missing:\n{stdout}");
    }
    assert!(stdout.contains("python RP: all steps passed"), "{stdout}");
}
