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

/// A `multipart/form-data` body with the given (field, file name, bytes) parts.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "govgate-test-boundary-7d1c";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend(format!("--{boundary}\r\n").into_bytes());
        match file {
            Some(f) => body.extend(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .into_bytes(),
            ),
            None => body.extend(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").into_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").into_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn post_multipart(s: &Setup, path: &str, parts: &[(&str, Option<&str>, &[u8])]) -> (u16, serde_json::Value) {
    let (content_type, body) = multipart(parts);
    let r = client()
        .post(s.gw.url(path))
        .header("host", "api.test")
        .header("content-type", content_type)
        .bearer_auth(&s.key)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_uploaded_as_multipart_form_data() {
    let s = setup();
    let file = |f: &str| std::fs::read(s.fx.join(f)).unwrap();
    // The intermediate as DER, the leaf as PEM: both are taken as they are.
    let der = Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(s.fx.join("ec/int.pem")).output().unwrap().stdout;
    let (leaf, expired) = (file("ec/leaf.pem"), file("ec/expired.pem"));
    let (status, body) = post_multipart(
        &s,
        "/api/certs/verify",
        &[("certificate", Some("leaf.pem"), &leaf), ("chain", Some("int.cer"), &der), ("purpose", None, b"tls-client")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["indication"], "TOTAL_PASSED");
    assert_eq!(body["chain"].as_array().unwrap().len(), 3);
    let (_, body) =
        post_multipart(&s, "/api/certs/verify", &[("certificate", Some("x.pem"), &expired), ("chain", Some("int.cer"), &der)]).await;
    assert_eq!(body["sub_indication"], "EXPIRED");
    // Without the intermediate there is no chain: the chain part really was used above.
    let (_, body) = post_multipart(&s, "/api/certs/verify", &[("certificate", Some("leaf.pem"), &leaf)]).await;
    assert_eq!(body["sub_indication"], "NO_CERTIFICATE_CHAIN_FOUND");

    // A detached DER signature over a document, both uploaded raw.
    let (data, sig) = (file("doc.txt"), file("ec/doc.p7s"));
    let (status, body) =
        post_multipart(&s, "/api/esign/verify", &[("data", Some("doc.txt"), &data), ("signature", Some("doc.p7s"), &sig)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["passed"], true);
    let (_, body) =
        post_multipart(&s, "/api/esign/verify", &[("data", Some("doc.txt"), b"tampered"), ("signature", Some("doc.p7s"), &sig)]).await;
    assert_eq!(body["signatures"][0]["sub_indication"], "HASH_FAILURE");

    // Unknown and repeated fields, and a body that is not multipart, are refused with 400.
    let (status, body) = post_multipart(&s, "/api/esign/verify", &[("data", None, b"x"), ("document", None, b"x")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("document"));
    let (status, _) = post_multipart(&s, "/api/certs/verify", &[("certificate", None, &leaf), ("certificate", None, &leaf)]).await;
    assert_eq!(status, 400);
    let r = client()
        .post(s.gw.url("/api/certs/verify"))
        .header("host", "api.test")
        .header("content-type", "multipart/form-data; boundary=nothing-here")
        .bearer_auth(&s.key)
        .body("not multipart at all")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["incident_id"].as_str().is_some(), "{body}");
}

/// With an `access` rule on the API's app, single sign-on admits callers too: an app's access
/// token from the built-in provider on the API paths, next to the policy's API keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_from_the_provider_are_accepted_when_the_app_asks_for_a_login() {
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
        "[idp]\nissuer = \"https://id.test:{{HTTPS}}\"\nclients = \"clients.toml\"\n\n[certs]\ntrust = \"{}\"\napi_keys_sha256 = [\"{hash}\"]\n\n[[apps]]\nname = \"id\"\nhosts = [\"id.test\"]\nbuiltin = \"idp\"\n\n[[apps]]\nname = \"certs\"\nhosts = [\"certs.test\"]\nbuiltin = \"certs_api\"\naccess = \"login\"\napi_paths = [\"/api\"]\napi_scopes = [\"profile\"]\n",
        dir.path().join("trust").display()
    );
    let gw = Gateway::start(&policy);
    let port = gw.https_port;
    std::fs::write(
        gw.dir.path().join("clients.toml"),
        format!("[[client]]\nid = \"certs\"\nauth_method = \"none\"\nredirect_uris = [\"https://certs.test:{port}/.govgate/callback\", \"https://certs.test:{port}/cb\"]\ngrant_types = [\"authorization_code\"]\nscopes = [\"openid\", \"profile\"]\nfirst_party = true\n"),
    )
    .unwrap();
    let mut cfg = govgate_idp::IdpConfig::new(format!("https://id.test:{port}"), gw.dir.path().join("data/idp"));
    cfg.clients_file = gw.dir.path().join("clients.toml");
    let idp = govgate_idp::Idp::open(cfg).await.expect("open the provider's store");
    let clerk = govgate_idp::users::NewUser {
        username: "wang".into(),
        kind: Some(govgate_idp::users::AccountKind::Staff),
        display_name: "王五".into(),
        password: "Correct-Horse-9".into(),
        ..Default::default()
    };
    govgate_idp::admin::add_user(idp.store(), "test", &clerk, govgate_idp::password::Argon2Params::TEST).await.unwrap();

    let mut b = govgate_tests::web::Browser::new(&gw, &["id.test", "certs.test"]);
    let url = b.url("certs.test", "/api/certs/verify");
    let good = json!({ "certificate": std::fs::read_to_string(fx.join("ec/leaf.pem")).unwrap(), "chain": [std::fs::read_to_string(fx.join("ec/int.pem")).unwrap()], "purpose": "tls-client" });
    let http = b.http().clone();
    let call = |auth: Option<String>| {
        let mut rb = http.post(&url).json(&good);
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        async move {
            let r = rb.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = call(None).await;
    assert_eq!(status, 401, "no credentials: {body}");
    let (status, body) = call(Some("Bearer not-a-token".into())).await;
    assert_eq!(status, 401, "neither a key nor a token: {body}");
    let (status, body) = call(Some(format!("Bearer {key}"))).await;
    assert_eq!(status, 200, "the API key still works: {body}");
    let token = b.access_token("certs", "wang", "Correct-Horse-9").await;
    let (status, body) = call(Some(format!("Bearer {token}"))).await;
    assert_eq!(status, 200, "a token for the app: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["indication"], "TOTAL_PASSED", "{v}");
}
