//! Chain validation throughput, single thread (= per core): 3-certificate chains (root, intermediate,
//! leaf) for ECDSA P-256, RSA-2048 and SM2. The leaf is decoded from DER in every iteration (as the
//! gateway gets it from the TLS handshake); the intermediate is supplied decoded. ECDSA is measured with
//! hard-fail CRL checking against cached (store) CRLs and without revocation. "warm" rows reuse the
//! store's cache of verified CA-certificate and CRL signatures (the gateway's steady state: the leaf
//! signature is verified every time, the intermediate and CRL signatures once); "cold caches" rows
//! clear it before every validation, so every signature of the chain (and CRLs) is verified.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-certs cargo bench -p govgate-certs --bench chain_validation`

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use govgate_certs::{
    certificates_from_pem, parse::pem_blocks, validate, Certificate, Purpose, RevocationPolicy, TrustStore, ValidationOptions,
};

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_TARGET_TMPDIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string()))
        .join(format!("govgate-certs-bench-{}", std::process::id()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/make.sh");
    let ok = Command::new("sh").arg(script).arg(&dir).output().map(|o| o.status.success()).unwrap_or(false);
    if !ok {
        eprintln!("fixture generation failed (openssl missing?)");
        std::process::exit(1);
    }
    let read = |p: &str| std::fs::read(dir.join(p)).unwrap_or_default();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    println!("chain validations per second, one thread (3-certificate chains, leaf decoded each time)");
    let cases = [
        ("ec", "ECDSA P-256, CRLs cached, hard-fail", true, false),
        ("ec", "ECDSA P-256, revocation off", false, false),
        ("ec", "ECDSA P-256, hard-fail, cold caches", true, true),
        ("rsa", "RSA-2048, revocation off", false, false),
        ("rsa", "RSA-2048, revocation off, cold caches", false, true),
        ("sm2", "SM2/SM3, revocation off", false, false),
        ("sm2", "SM2/SM3, revocation off, cold caches", false, true),
    ];
    for (alg, label, crl, cold_caches) in cases {
        let mut store = TrustStore::new();
        if store.add_anchors_pem(&read(&format!("{alg}/root.pem"))).is_err() {
            eprintln!("bad fixture");
            return;
        }
        if crl {
            let _ = store.add_crls_pem(&read("ec/int.crl.pem"));
            let _ = store.add_crls_pem(&read("ec/root.crl.pem"));
        }
        let int: Vec<Certificate> = certificates_from_pem(&read(&format!("{alg}/int.pem"))).unwrap_or_default();
        let leaf_der = pem_blocks(&read(&format!("{alg}/leaf.pem")), "CERTIFICATE").unwrap_or_default().pop().unwrap_or_default();
        let opts = ValidationOptions::at(now).purpose(Purpose::TlsClient).revocation(if crl {
            RevocationPolicy::HardFail
        } else {
            RevocationPolicy::Off
        });
        let run = || match Certificate::from_der(&leaf_der) {
            Ok(leaf) if cold_caches => {
                store.clear_caches();
                validate(&store, &leaf, &int, &opts, None).passed()
            }
            Ok(leaf) => validate(&store, &leaf, &int, &opts, None).passed(),
            Err(_) => false,
        };
        if !run() {
            eprintln!("{label}: validation unexpectedly failed");
            continue;
        }
        measure(label, run);
        if !crl && !cold_caches {
            // Reference: one bare signature verification (the leaf's), to normalise for machine load.
            if let (Ok(leaf), Some(issuer)) = (Certificate::from_der(&leaf_der), int.first()) {
                let verify = || govgate_certs::signature::verify(&issuer.key, &leaf.sig_alg, &leaf.tbs, &leaf.signature).is_ok();
                measure(&format!("  (one bare {alg} signature verification)"), verify);
                measure(&format!("  (decoding the {alg} leaf only)"), || Certificate::from_der(&leaf_der).is_ok());
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn measure(label: &str, run: impl Fn() -> bool) {
    let (mut n, start) = (0u64, Instant::now());
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..50 {
            std::hint::black_box(run());
        }
        n += 50;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{label:<42} {:>9.0} /s  ({:.1} µs each)", n as f64 / secs, secs * 1e6 / n as f64);
}
