//! Test helper: runs `fixtures/make.sh` once per test binary into the cargo target tmp dir and offers
//! small loaders plus an `openssl verify` wrapper for verdict cross-checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use govgate_certs::{certificates_from_pem, Certificate, TrustStore};

/// Directory holding freshly generated fixtures.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Fixture directories of earlier runs (older than an hour) are removed.
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let old =
                    e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age.as_secs() > 3600);
                if old && e.file_name().to_string_lossy().starts_with("govgate-certs-fixtures-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let out = tmp.join(format!("govgate-certs-fixtures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make.sh");
        let res = Command::new("sh").arg(&script).arg(&out).output();
        match res {
            Ok(o) if o.status.success() => out,
            Ok(o) => panic!("make.sh failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => panic!("cannot run make.sh (is `sh`/`openssl` installed?): {e}"),
        }
    })
}

pub fn path(rel: &str) -> PathBuf {
    dir().join(rel)
}

pub fn bytes(rel: &str) -> Vec<u8> {
    std::fs::read(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn cert(rel: &str) -> Certificate {
    certificates_from_pem(&bytes(rel)).expect("fixture parses").remove(0)
}

/// Store with `root` of `alg` as the only anchor (and no intermediates, no CRLs).
pub fn store(alg: &str) -> TrustStore {
    let mut s = TrustStore::new();
    s.add_anchors_pem(&bytes(&format!("{alg}/root.pem"))).expect("root");
    s
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Runs `openssl verify` in the fixture dir; true when it says OK.
pub fn openssl_verify(args: &[&str]) -> bool {
    let out = Command::new("openssl").arg("verify").args(args).current_dir(dir()).output().expect("openssl runs");
    out.status.success()
}
