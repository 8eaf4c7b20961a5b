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
