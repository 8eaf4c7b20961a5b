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
