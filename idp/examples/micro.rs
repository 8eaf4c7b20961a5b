//! Micro-benchmark of the building blocks behind the grant figures (signing, one query).
use std::time::Instant;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let ks = govgate_idp::keys::KeyStore::open(
            dir.path(),
            &[govgate_idp::keys::SigningAlg::ES256, govgate_idp::keys::SigningAlg::EdDSA],
            60,
        )
        .unwrap();
        for alg in [govgate_idp::keys::SigningAlg::ES256, govgate_idp::keys::SigningAlg::EdDSA] {
            let t0 = Instant::now();
            let mut tok = String::new();
            for _ in 0..2000 {
                tok = govgate_idp::tokens::sign(&ks, alg, "JWT", &serde_json::json!({"iss": "i", "exp": govgate_idp::now() + 60})).unwrap();
            }
            println!("{alg:?} sign: {:.1} us", t0.elapsed().as_secs_f64() * 1e6 / 2000.0);
            let t0 = Instant::now();
            for _ in 0..2000 {
                let _: serde_json::Value = govgate_idp::tokens::verify(&ks, "i", &tok, "JWT", true).unwrap();
            }
            println!("{alg:?} verify: {:.1} us", t0.elapsed().as_secs_f64() * 1e6 / 2000.0);
        }
        let store = govgate_idp::store::Store::open(&format!("sqlite://{}/x.sqlite", dir.path().display())).await.unwrap();
        let t0 = Instant::now();
        for i in 0..5000 {
            store.revoke_access(&format!("j{i}"), 0).await.unwrap();
        }
        println!("insert: {:.1} us", t0.elapsed().as_secs_f64() * 1e6 / 5000.0);
        let t0 = Instant::now();
        for i in 0..5000 {
            store.access_live(&format!("j{i}"), "f").await.unwrap();
        }
        println!("select: {:.1} us", t0.elapsed().as_secs_f64() * 1e6 / 5000.0);
    });
}
