//! Path validation against fixtures from `fixtures/make.sh`, with `openssl verify` cross-checks.

mod common;

use std::collections::HashMap;

use common::{bytes, cert, now, openssl_verify, store};
use govgate_certs::{
    extract_identity, trust_store, validate, CertificateReport, CrlFetchError, CrlSource, Finding, IdKind, Indication, Purpose,
    RevocationPolicy, RevocationReason, SubIndication, ValidationOptions,
};

fn opts() -> ValidationOptions {
    ValidationOptions::at(now()).purpose(Purpose::TlsClient).revocation(RevocationPolicy::SoftFail)
}

fn check(alg: &str, leaf: &str, inter: &[&str], o: &ValidationOptions) -> CertificateReport {
    let s = store(alg);
    let inter: Vec<_> = inter.iter().map(|p| cert(&format!("{alg}/{p}"))).collect();
    validate(&s, &cert(&format!("{alg}/{leaf}")), &inter, o, None)
}

fn assert_verdict(r: &CertificateReport, ind: Indication, sub: Option<SubIndication>) {
    assert_eq!((r.indication, r.sub_indication), (ind, sub), "report: {r:#?}");
}

#[test]
fn good_chains_all_algorithms() {
    for alg in ["ec", "rsa", "rsapss", "ed25519", "sm2"] {
        for purpose in [Purpose::TlsClient, Purpose::DocumentSigning, Purpose::Any] {
            let r = check(alg, "leaf.pem", &["int.pem"], &opts().purpose(purpose));
            assert_verdict(&r, Indication::TotalPassed, None);
            assert_eq!(r.chain.len(), 3, "{alg}");
            assert!(r.chain[2].trust_anchor);
        }
        if alg != "sm2" {
            // OpenSSL 3.0 `verify` cannot be given the SM2 distinguishing id, so SM2 is not cross-checked.
            assert!(openssl_verify(&[
                "-CAfile",
                &format!("{alg}/root.pem"),
                "-untrusted",
                &format!("{alg}/int.pem"),
                &format!("{alg}/leaf.pem")
            ]));
        }
    }
}

#[test]
fn intermediates_from_store_and_in_any_order() {
    let mut s = store("ec");
    s.add_intermediates_pem(&bytes("ec/int.pem")).unwrap();
    let r = validate(&s, &cert("ec/leaf.pem"), &[], &opts(), None);
    assert_verdict(&r, Indication::TotalPassed, None);
    // unrelated and decoy certificates first, the right one last
    let supplied = [cert("ec/other-root.pem"), cert("ec/pathlen-int2.pem"), cert("ec/nc-int.pem"), cert("ec/int.pem")];
    let r = validate(&store("ec"), &cert("ec/leaf.pem"), &supplied, &opts(), None);
    assert_verdict(&r, Indication::TotalPassed, None);
}

#[test]
fn several_candidate_paths_first_failing_one_skipped() {
    // The attacker's self-signed "Test Issuing CA ec" is (wrongly) trusted: the path through it fails on
    // the leaf signature, the next candidate path through the real intermediate passes.
    let mut s = store("ec");
    s.add_anchors_pem(&bytes("ec/evil-int.pem")).unwrap();
    let r = validate(&s, &cert("ec/leaf.pem"), &[cert("ec/int.pem")], &opts(), None);
    assert_verdict(&r, Indication::TotalPassed, None);
    assert!(r.paths_tried >= 2, "{r:#?}");
}

#[test]
fn expired_leaf() {
    let r = check("ec", "expired.pem", &["int.pem"], &opts());
    assert_verdict(&r, Indication::TotalFailed, Some(SubIndication::Expired));
    assert!(matches!(r.findings[0], Finding::Expired { depth: 0, .. }));
    assert!(!openssl_verify(&["-CAfile", "ec/root.pem", "-untrusted", "ec/int.pem", "ec/expired.pem"]));
    // valid when validated at a time inside its validity period (2020-06-01)
    let r = check("ec", "expired.pem", &["int.pem"], &ValidationOptions::at(1_590_969_600).purpose(Purpose::TlsClient));
    // ... but then the root and intermediate are not yet valid
    assert_verdict(&r, Indication::TotalFailed, Some(SubIndication::NotYetValid));
}

#[test]
fn not_yet_valid_leaf() {
    let r = check("ec", "notyet.pem", &["int.pem"], &opts());
    assert_verdict(&r, Indication::TotalFailed, Some(SubIndication::NotYetValid));
    assert!(!openssl_verify(&["-CAfile", "ec/root.pem", "-untrusted", "ec/int.pem", "ec/notyet.pem"]));
}

#[test]
fn wrong_key_usage_for_tls_client_and_document_signing() {
    for p in [Purpose::TlsClient, Purpose::DocumentSigning] {
        let r = check("ec", "wrongku.pem", &["int.pem"], &opts().purpose(p));
        assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::ChainConstraintsFailure));
        assert!(matches!(r.findings[0], Finding::WrongKeyUsage { .. }), "{r:#?}");
    }
    assert!(!openssl_verify(&["-CAfile", "ec/root.pem", "-untrusted", "ec/int.pem", "-purpose", "sslclient", "ec/wrongku.pem"]));
    assert_verdict(&check("ec", "wrongku.pem", &["int.pem"], &opts().purpose(Purpose::Any)), Indication::TotalPassed, None);
}

#[test]
fn missing_intermediate() {
    let r = check("ec", "leaf.pem", &[], &opts());
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::NoCertificateChainFound));
    assert!(matches!(r.findings[0], Finding::IssuerNotFound { depth: 0, .. }));
    assert!(!openssl_verify(&["-CAfile", "ec/root.pem", "ec/leaf.pem"]));
    // wrong anchor altogether
    let mut s = govgate_certs::TrustStore::new();
    s.add_anchors_pem(&bytes("ec/other-root.pem")).unwrap();
    let r = validate(&s, &cert("ec/leaf.pem"), &[cert("ec/int.pem")], &opts(), None);
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::NoCertificateChainFound));
}

fn store_with_crls() -> govgate_certs::TrustStore {
    let mut s = store("ec");
    s.add_crls_pem(&bytes("ec/int.crl.pem")).unwrap();
    s.add_crls_pem(&bytes("ec/root.crl.pem")).unwrap();
    s
}

#[test]
fn revoked_by_crl_with_reason_and_date() {
    let s = store_with_crls();
    let o = opts().revocation(RevocationPolicy::HardFail);
    let r = validate(&s, &cert("ec/revoked.pem"), &[cert("ec/int.pem")], &o, None);
    assert_verdict(&r, Indication::TotalFailed, Some(SubIndication::Revoked));
    match &r.findings[0] {
        Finding::Revoked { depth: 0, reason, revocation_date } => {
            assert_eq!(*reason, RevocationReason::KeyCompromise);
            assert!(*revocation_date > 1_700_000_000 && *revocation_date <= now());
        }
        f => panic!("unexpected {f:?}"),
    }
    let crl_args = [
        "-CAfile",
        "ec/root.pem",
        "-untrusted",
        "ec/int.pem",
        "-crl_check_all",
        "-CRLfile",
        "ec/int.crl.pem",
        "-CRLfile",
        "ec/root.crl.pem",
    ];
    assert!(!openssl_verify(&[&crl_args[..], &["ec/revoked.pem"]].concat()));
    // the good leaf passes hard-fail with both CRLs, and so does openssl
    let r = validate(&s, &cert("ec/leaf.pem"), &[cert("ec/int.pem")], &o, None);
    assert_verdict(&r, Indication::TotalPassed, None);
    assert!(r.findings.is_empty(), "{r:#?}");
    assert!(openssl_verify(&[&crl_args[..], &["ec/leaf.pem"]].concat()));
    // before the revocation date the certificate was fine
    let before = ValidationOptions { time: 1_600_000_000, ..o };
    let r = validate(&s, &cert("ec/revoked.pem"), &[cert("ec/int.pem")], &before, None);
    assert_ne!(r.sub_indication, Some(SubIndication::Revoked));
}

#[test]
fn most_recent_crl_of_an_issuer_wins() {
    let mut s = store("ec");
    s.add_crls_pem(&bytes("ec/int.old.crl.pem")).unwrap();
    s.add_crls_pem(&bytes("ec/int.crl.pem")).unwrap();
    s.add_crls_pem(&bytes("ec/root.crl.pem")).unwrap();
    let o = opts().revocation(RevocationPolicy::HardFail);
    let r = validate(&s, &cert("ec/revoked.pem"), &[cert("ec/int.pem")], &o, None);
    assert_verdict(&r, Indication::TotalFailed, Some(SubIndication::Revoked));
    // with only the old CRL the certificate looks good (as it would to openssl)
    let mut s = store("ec");
    s.add_crls_pem(&bytes("ec/int.old.crl.pem")).unwrap();
    s.add_crls_pem(&bytes("ec/root.crl.pem")).unwrap();
    assert_verdict(&validate(&s, &cert("ec/revoked.pem"), &[cert("ec/int.pem")], &o, None), Indication::TotalPassed, None);
    assert!(openssl_verify(&[
        "-CAfile",
        "ec/root.pem",
        "-untrusted",
        "ec/int.pem",
        "-crl_check_all",
        "-CRLfile",
        "ec/int.old.crl.pem",
        "-CRLfile",
        "ec/root.crl.pem",
        "ec/revoked.pem"
    ]));
}

#[test]
fn revocation_policy_soft_and_hard_fail() {
    let leaf = cert("ec/leaf.pem");
    let int = [cert("ec/int.pem")];
    let r = validate(&store("ec"), &leaf, &int, &opts().revocation(RevocationPolicy::HardFail), None);
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    let r = validate(&store("ec"), &leaf, &int, &opts().revocation(RevocationPolicy::SoftFail), None);
    assert_verdict(&r, Indication::TotalPassed, None);
    assert!(r.findings.iter().any(|f| matches!(f, Finding::RevocationSkipped { .. })));
    let r = validate(&store("ec"), &leaf, &int, &opts().revocation(RevocationPolicy::Off), None);
    assert!(r.passed() && r.findings.is_empty());
}

struct MapSource(HashMap<String, Vec<u8>>, std::sync::atomic::AtomicUsize);

impl MapSource {
    fn new(m: HashMap<String, Vec<u8>>) -> Self {
        MapSource(m, Default::default())
    }
    fn calls(&self) -> usize {
        self.1.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl CrlSource for MapSource {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, CrlFetchError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.get(uri).cloned().ok_or_else(|| CrlFetchError::Unavailable(format!("404 {uri}")))
    }
}

#[test]
fn crl_from_distribution_point_source() {
    let mut s = store("ec");
    s.add_crls_pem(&bytes("ec/root.crl.pem")).unwrap();
    let src = MapSource::new(HashMap::from([("http://crl.example.gov.cn/int.crl".to_owned(), bytes("ec/int.crl.pem"))]));
    let o = opts().revocation(RevocationPolicy::HardFail);
    let r = validate(&s, &cert("ec/revoked.pem"), &[cert("ec/int.pem")], &o, Some(&src));
    assert_verdict(&r, Indication::TotalFailed, Some(SubIndication::Revoked));
    let r = validate(&s, &cert("ec/leaf.pem"), &[cert("ec/int.pem")], &o, Some(&src));
    assert_verdict(&r, Indication::TotalPassed, None);
    // the fetched CRL was cached: one fetch only
    assert_eq!(src.calls(), 1);
    // fetch failure under hard fail (fresh store, nothing cached)
    let mut s = store("ec");
    s.add_crls_pem(&bytes("ec/root.crl.pem")).unwrap();
    let empty = MapSource::new(HashMap::new());
    let r = validate(&s, &cert("ec/leaf.pem"), &[cert("ec/int.pem")], &o, Some(&empty));
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
    // a CRL signed by someone else is not accepted
    let wrong = MapSource::new(HashMap::from([("http://crl.example.gov.cn/int.crl".to_owned(), bytes("ec/root.crl.pem"))]));
    let r = validate(&s, &cert("ec/leaf.pem"), &[cert("ec/int.pem")], &o, Some(&wrong));
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::TryLater));
}

#[test]
fn forged_signature() {
    let r = check("ec", "forged.pem", &["int.pem"], &opts());
    assert_verdict(&r, Indication::TotalFailed, Some(SubIndication::SigCryptoFailure));
    assert!(matches!(r.findings[0], Finding::BadSignature { depth: 0 }));
    assert!(!openssl_verify(&["-CAfile", "ec/root.pem", "-untrusted", "ec/int.pem", "ec/forged.pem"]));
}

#[test]
fn sm2_good_and_forged() {
    assert_verdict(&check("sm2", "leaf.pem", &["int.pem"], &opts()), Indication::TotalPassed, None);
    let r = check("sm2", "forged.pem", &["int.pem"], &opts());
    assert_verdict(&r, Indication::TotalFailed, Some(SubIndication::SigCryptoFailure));
}

#[test]
fn path_len_violated() {
    let r = check("ec", "pathlen-leaf.pem", &["pathlen-int2.pem", "int.pem"], &opts());
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::ChainConstraintsFailure));
    assert!(r.findings.iter().any(|f| matches!(f, Finding::PathLenExceeded { depth: 2, path_len: 0 })), "{r:#?}");
    assert!(!openssl_verify(&[
        "-CAfile",
        "ec/root.pem",
        "-untrusted",
        "ec/int.pem",
        "-untrusted",
        "ec/pathlen-int2.pem",
        "ec/pathlen-leaf.pem"
    ]));
}

#[test]
fn name_constraints_violated() {
    let r = check("ec", "nc-leaf.pem", &["nc-int.pem"], &opts());
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::ChainConstraintsFailure));
    assert!(matches!(&r.findings[0], Finding::NameConstraints { depth: 0, name } if name == "DNS:evil.example.com"), "{r:#?}");
    assert!(!openssl_verify(&["-CAfile", "ec/root.pem", "-untrusted", "ec/nc-int.pem", "ec/nc-leaf.pem"]));
    assert_verdict(&check("ec", "nc-good-leaf.pem", &["nc-int.pem"], &opts()), Indication::TotalPassed, None);
    assert!(openssl_verify(&["-CAfile", "ec/root.pem", "-untrusted", "ec/nc-int.pem", "ec/nc-good-leaf.pem"]));
}

#[test]
fn unknown_critical_extension() {
    let r = check("ec", "critical.pem", &["int.pem"], &opts());
    assert_verdict(&r, Indication::Indeterminate, Some(SubIndication::ChainConstraintsFailure));
    assert!(matches!(&r.findings[0], Finding::UnknownCriticalExtension { depth: 0, oid } if oid == "1.2.3.4.5.6.7.8"));
    assert!(!openssl_verify(&["-CAfile", "ec/root.pem", "-untrusted", "ec/int.pem", "ec/critical.pem"]));
}

#[test]
fn critical_policy_extensions_are_recognised() {
    // critical certificatePolicies / policyConstraints / inhibitAnyPolicy are parsed, not "unknown"
    let int = cert("ec/policy-int.pem");
    assert_eq!(int.certificate_policies, vec!["1.2.156.112233.1".to_owned()]);
    assert_eq!(
        int.policy_constraints,
        Some(govgate_certs::PolicyConstraints { require_explicit_policy: Some(0), inhibit_policy_mapping: Some(1) })
    );
    assert_eq!(int.inhibit_any_policy, Some(0));
    assert!(int.unknown_critical_extensions.is_empty(), "{:?}", int.unknown_critical_extensions);
    let leaf = cert("ec/policy-leaf.pem");
    assert_eq!((leaf.certificate_policies.len(), leaf.policy_constraints, leaf.inhibit_any_policy), (1, None, None));
    // the chain passes (accepted, not enforced), as with openssl (whose policy check is satisfied here)
    let r = check("ec", "policy-leaf.pem", &["policy-int.pem"], &opts());
    assert_verdict(&r, Indication::TotalPassed, None);
    assert!(openssl_verify(&["-CAfile", "ec/root.pem", "-untrusted", "ec/policy-int.pem", "ec/policy-leaf.pem"]));
    // certificates without these extensions have none
    let plain = cert("ec/int.pem");
    assert_eq!((plain.certificate_policies.len(), plain.policy_constraints, plain.inhibit_any_policy), (0, None, None));
}

#[test]
fn identity_and_fingerprint() {
    for alg in ["ec", "sm2"] {
        let c = cert(&format!("{alg}/leaf.pem"));
        let id = extract_identity(&c);
        assert_eq!(id.id_number, Some((IdKind::ResidentId, "11010519491231002X".to_owned())));
        assert_eq!(id.common_name.as_deref(), Some("Zhang San"));
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(common::path(&format!("{alg}/leaf.pem")))
            .output()
            .unwrap();
        let want = String::from_utf8_lossy(&out.stdout).split('=').nth(1).unwrap_or_default().trim().replace(':', "").to_lowercase();
        assert_eq!(id.fingerprint_sha256, want);
    }
}

#[test]
fn trust_store_from_directory() {
    let d = common::dir().join("trustdir");
    for sub in ["anchors", "intermediates", "crl"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("anchors/root.pem"), bytes("ec/root.pem")).unwrap();
    std::fs::write(d.join("intermediates/int.pem"), bytes("ec/int.pem")).unwrap();
    std::fs::write(d.join("crl/int.crl"), bytes("ec/int.crl.pem")).unwrap();
    std::fs::write(d.join("crl/root.crl.pem"), bytes("ec/root.crl.pem")).unwrap();
    std::fs::write(d.join("crl/README"), b"ignored").unwrap();
    let s = trust_store::load_dir(&d).unwrap();
    assert_eq!((s.anchors().len(), s.intermediates().len(), s.crls().len()), (1, 1, 2));
    let o = opts().revocation(RevocationPolicy::HardFail);
    assert!(validate(&s, &cert("ec/leaf.pem"), &[], &o, None).passed());
    assert_eq!(validate(&s, &cert("ec/revoked.pem"), &[], &o, None).sub_indication, Some(SubIndication::Revoked));
    std::fs::write(d.join("anchors/bad.pem"), b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
    assert!(trust_store::load_dir(&d).is_err());
}

#[test]
fn malformed_input_never_panics() {
    let der = govgate_certs::parse::pem_blocks(&bytes("sm2/leaf.pem"), "CERTIFICATE").unwrap().remove(0);
    for i in 0..der.len() {
        assert!(govgate_certs::Certificate::from_der(&der[..i]).is_err());
    }
    for i in (0..der.len()).step_by(7) {
        let mut d = der.clone();
        d[i] ^= 0x5a;
        let _ = govgate_certs::Certificate::from_der(&d);
    }
    let crl = govgate_certs::parse::pem_blocks(&bytes("ec/int.crl.pem"), "X509 CRL").unwrap().remove(0);
    for i in 0..crl.len() {
        assert!(govgate_certs::Crl::from_der(&crl[..i]).is_err());
    }
    assert!(govgate_certs::validate_pem(&store("ec"), b"", &opts(), None).is_err());
}

#[test]
fn report_serialises_with_etsi_names() {
    let r = check("ec", "expired.pem", &["int.pem"], &opts());
    let v = serde_json::to_string(&r).unwrap();
    assert!(v.contains(r#""indication":"TOTAL_FAILED""#) && v.contains(r#""sub_indication":"EXPIRED""#), "{v}");
}
