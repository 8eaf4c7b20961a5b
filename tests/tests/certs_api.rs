//! The certificate and e-signature API served by the gateway itself, with fixtures made by the
//! certificate crate's openssl script.

use base64::Engine as _;
use govgate_tests::{binary, client, Gateway};
use serde_json::json;
use std::path::Path;
use std::process::Command;

struct Setup {
    _fx: tempfile::TempDir,
    fx: std::path::PathBuf,
    key: String,
    gw: Gateway,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../certs/tests/fixtures/make.sh");
    assert!(Command::new("sh").arg(script).arg(&fx).status().unwrap().success(), "fixtures");
    std::fs::create_dir_all(dir.path().join("trust/anchors")).unwrap();
    std::fs::copy(fx.join("ec/root.pem"), dir.path().join("trust/anchors/root.pem")).unwrap();
    let out = String::from_utf8(Command::new(binary()).arg("api-key").output().unwrap().stdout).unwrap();
    let field = |name: &str| out.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_string();
    let (key, hash) = (field("key:"), field("sha256:"));
    let policy = format!(
        "[certs]\ntrust = \"{}\"\napi_keys_sha256 = [\"{hash}\"]\n\n[[apps]]\nname = \"certs\"\nhosts = [\"api.test\"]\npaths = [\"/api\"]\nbuiltin = \"certs_api\"\n",
        dir.path().join("trust").display()
    );
    let gw = Gateway::start(&policy);
    Setup { fx, key, gw, _fx: dir }
}

fn pem(s: &Setup, f: &str) -> String {
    std::fs::read_to_string(s.fx.join(f)).unwrap()
}

async fn post(s: &Setup, path: &str, key: Option<&str>, body: serde_json::Value) -> (u16, serde_json::Value) {
    let mut req = client().post(s.gw.url(path)).header("host", "api.test").json(&body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_verified_for_callers_with_a_key() {
    let s = setup();
    let good = json!({ "certificate": pem(&s, "ec/leaf.pem"), "chain": [pem(&s, "ec/int.pem")], "purpose": "tls-client" });
    let (status, body) = post(&s, "/api/certs/verify", None, good.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized");
    assert!(body["incident_id"].as_str().is_some());
    let (status, _) = post(&s, "/api/certs/verify", Some("gk_not-a-key"), good.clone()).await;
    assert_eq!(status, 401);

    let (status, body) = post(&s, "/api/certs/verify", Some(&s.key), good).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["indication"], "TOTAL_PASSED");
    assert_eq!(body["chain"].as_array().unwrap().len(), 3);

    let expired = json!({ "certificate": pem(&s, "ec/expired.pem"), "chain": [pem(&s, "ec/int.pem")] });
    let (status, body) = post(&s, "/api/certs/verify", Some(&s.key), expired).await;
    assert_eq!(status, 200);
    assert_eq!((body["indication"].as_str(), body["sub_indication"].as_str()), (Some("TOTAL_FAILED"), Some("EXPIRED")));

    let (status, body) = post(&s, "/api/certs/verify", Some(&s.key), json!({ "certificate": "%%% not base64" })).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
    let (status, _) = post(&s, "/api/nothing", Some(&s.key), json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_verified_over_the_data() {
    let s = setup();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let data = std::fs::read(s.fx.join("doc.txt")).unwrap();
    let sig = std::fs::read(s.fx.join("ec/doc.p7s")).unwrap();
    let (status, body) = post(&s, "/api/esign/verify", Some(&s.key), json!({ "data": b64(&data), "signature": b64(&sig) })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["passed"], true);
    assert_eq!(body["signatures"][0]["signer"]["id_number"][1], "11010519491231002X");
    let (status, body) = post(&s, "/api/esign/verify", Some(&s.key), json!({ "data": b64(b"tampered"), "signature": b64(&sig) })).await;
    assert_eq!(status, 200);
    assert_eq!(body["passed"], false);
    assert_eq!(body["signatures"][0]["sub_indication"], "HASH_FAILURE");
}
