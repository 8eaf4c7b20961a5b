//! CMS SignedData verification against `openssl cms -sign` fixtures, cross-checked with `openssl cms -verify`.

mod common;

use common::{bytes, now, store};
use govgate_certs::{verify_cms, IdKind, Indication, RevocationPolicy, SignatureReport, SubIndication, ValidationOptions};

fn opts() -> ValidationOptions {
    ValidationOptions::at(now()).revocation(RevocationPolicy::SoftFail)
}

fn verify(alg: &str, file: &str, content: Option<&[u8]>) -> SignatureReport {
    let mut r = verify_cms(&store(alg), &bytes(&format!("{alg}/{file}")), content, &opts(), None).expect("decodes");
    assert_eq!(r.len(), 1);
    r.remove(0)
}

fn openssl_cms_verify(alg: &str, file: &str, content: Option<&str>) -> bool {
    let mut cmd = std::process::Command::new("openssl");
    cmd.args(["cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-out", "/dev/null", "-in"]);
    cmd.arg(format!("{alg}/{file}")).args(["-CAfile", &format!("{alg}/root.pem")]);
    if let Some(c) = content {
        cmd.args(["-content", c]);
    }
    cmd.current_dir(common::dir()).output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn cms_detached_and_attached_pass() {
    let doc = bytes("doc.txt");
    for (alg, file, detached, digest) in [
        ("ec", "doc.p7s", true, "SHA256"),
        ("ec", "doc-sha384-attached.p7s", false, "SHA384"),
        ("rsa", "doc.p7s", true, "SHA256"),
        ("rsa", "doc-attached.p7s", false, "SHA512"),
    ] {
        let r = verify(alg, file, detached.then_some(&doc[..]));
        assert_eq!((r.indication, r.sub_indication), (Indication::TotalPassed, None), "{alg}/{file}: {r:#?}");
        assert_eq!(r.digest_algorithm, digest);
        let signer = r.signer.as_ref().expect("signer");
        assert_eq!(signer.id_number, Some((IdKind::ResidentId, "11010519491231002X".into())));
        let st = r.signing_time.expect("signing-time attribute");
        assert!((st - now()).abs() < 3600, "{st}");
        assert_eq!(r.chain.len(), 3);
        assert!(r.timestamp_time.is_none());
        assert!(openssl_cms_verify(alg, file, detached.then_some("doc.txt")), "openssl disagrees on {alg}/{file}");
    }
}

#[test]
fn cms_hash_failure_on_other_content() {
    let r = verify("ec", "doc.p7s", Some(b"tampered document\n"));
    assert_eq!((r.indication, r.sub_indication), (Indication::TotalFailed, Some(SubIndication::HashFailure)));
    std::fs::write(common::path("tampered.txt"), b"tampered document\n").unwrap();
    assert!(!openssl_cms_verify("ec", "doc.p7s", Some("tampered.txt")));
}

#[test]
fn cms_signature_crypto_failure() {
    // flip the last byte of the DER: the end of the SignerInfo's signature value
    let mut der = bytes("ec/doc.p7s");
    if let Some(b) = der.last_mut() {
        *b ^= 0x01;
    }
    let r = verify_cms(&store("ec"), &der, Some(&bytes("doc.txt")), &opts(), None).expect("decodes").remove(0);
    assert_eq!((r.indication, r.sub_indication), (Indication::TotalFailed, Some(SubIndication::SigCryptoFailure)), "{r:#?}");
}

#[test]
fn cms_expired_signer_and_missing_content() {
    let r = verify("ec", "doc-expired-signer.p7s", Some(&bytes("doc.txt")));
    assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some(SubIndication::OutOfBoundsNoPoe)));
    let r = verify("ec", "doc.p7s", None);
    assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some(SubIndication::SignedDataNotFound)));
    // untrusted root
    let r = verify_cms(&store("rsa"), &bytes("ec/doc.p7s"), Some(&bytes("doc.txt")), &opts(), None).expect("decodes").remove(0);
    assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some(SubIndication::NoCertificateChainFound)));
}

#[test]
fn cms_malformed_input_is_an_error() {
    let der = bytes("ec/doc.p7s");
    for i in (0..der.len()).step_by(3) {
        assert!(verify_cms(&store("ec"), &der[..i], None, &opts(), None).is_err());
    }
    assert!(verify_cms(&store("ec"), &bytes("ec/leaf.pem"), None, &opts(), None).is_err());
}

fn openssl_in_fixtures(args: &[&str]) -> bool {
    std::process::Command::new("openssl").args(args).current_dir(common::dir()).output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn rfc3161_token_standalone() {
    use govgate_certs::verify_timestamp_token;
    let token = bytes("ec/doc.tst");
    let r = verify_timestamp_token(&store("ec"), &token, &bytes("doc.txt"), &opts(), None).expect("decodes");
    assert_eq!((r.indication, r.sub_indication), (Indication::TotalPassed, None), "{r:#?}");
    assert!((r.gen_time.unwrap_or(0) - now()).abs() < 3600);
    assert_eq!(r.signature.signer.as_ref().map(|s| s.subject.contains("Test TSA")), Some(true));
    assert!(openssl_in_fixtures(&[
        "ts",
        "-verify",
        "-data",
        "doc.txt",
        "-in",
        "ec/doc.tst",
        "-token_in",
        "-CAfile",
        "ec/root.pem",
        "-untrusted",
        "ec/int.pem"
    ]));
    // other data: imprint mismatch, and openssl agrees
    let r = verify_timestamp_token(&store("ec"), &token, b"other", &opts(), None).expect("decodes");
    assert_eq!((r.indication, r.sub_indication), (Indication::TotalFailed, Some(SubIndication::HashFailure)));
    std::fs::write(common::path("other.txt"), b"other").unwrap();
    assert!(!openssl_in_fixtures(&[
        "ts",
        "-verify",
        "-data",
        "other.txt",
        "-in",
        "ec/doc.tst",
        "-token_in",
        "-CAfile",
        "ec/root.pem",
        "-untrusted",
        "ec/int.pem"
    ]));
    // a document signature is not a timestamp token: the signer lacks the timeStamping EKU
    let r = verify_timestamp_token(&store("ec"), &bytes("ec/doc-sha384-attached.p7s"), b"", &opts(), None);
    assert!(r.is_err(), "content type is not TSTInfo");
}

/// Timestamps the signature value of the SignerInfo of fixture `file` with the fixture TSA (now, with
/// `openssl ts`; scratch files named after `tag`), lets `alter` change the token's DER, and returns the
/// CMS with the token embedded as id-aa-signatureTimeStampToken.
fn timestamped(file: &str, tag: &str, alter: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    use cms::cert::x509::attr::Attribute;
    use cms::cert::x509::der::asn1::{ObjectIdentifier, SetOfVec};
    use cms::cert::x509::der::{Any, Decode, Encode};
    use cms::content_info::ContentInfo;
    use cms::signed_data::{SignedData, SignerInfos};
    // `openssl ts -reply` updates the TSA's serial file: one at a time.
    static TSA: std::sync::Mutex<()> = std::sync::Mutex::new(());

    let ci = ContentInfo::from_der(&bytes(file)).unwrap();
    let mut sd: SignedData = ci.content.decode_as().unwrap();
    let mut sis: Vec<_> = sd.signer_infos.0.iter().cloned().collect();
    let (bin, tsq, tst) = (format!("{tag}.bin"), format!("{tag}.tsq"), format!("{tag}.tst"));
    std::fs::write(common::path(&bin), sis[0].signature.as_bytes()).unwrap();
    {
        let _guard = TSA.lock().unwrap_or_else(|e| e.into_inner());
        assert!(openssl_in_fixtures(&["ts", "-query", "-data", &bin, "-sha256", "-cert", "-out", &tsq]));
        assert!(openssl_in_fixtures(&["ts", "-reply", "-config", "tsa.cnf", "-queryfile", &tsq, "-token_out", "-out", &tst]));
    }
    let mut der = bytes(&tst);
    alter(&mut der);
    let token = Any::from_der(&der).unwrap();
    let attr =
        Attribute { oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14"), values: SetOfVec::try_from(vec![token]).unwrap() };
    sis[0].unsigned_attrs = Some(SetOfVec::try_from(vec![attr]).unwrap());
    sd.signer_infos = SignerInfos::from(SetOfVec::try_from(sis).unwrap());
    ContentInfo { content_type: ci.content_type, content: Any::encode_from(&sd).unwrap() }.to_der().unwrap()
}

#[test]
fn cms_with_embedded_signature_timestamp() {
    let with_ts = timestamped("ec/doc.p7s", "sig", |_| {});
    let r = verify_cms(&store("ec"), &with_ts, Some(&bytes("doc.txt")), &opts(), None).unwrap().remove(0);
    assert!(r.passed(), "{r:#?}");
    let ts = r.timestamp_time.expect("timestamp time");
    assert!((ts - now()).abs() < 3600);
    // the signer certificate is valid at the validation time: the timestamp was not needed as POE
    assert_eq!(r.poe_time, None);
    // the original signature had none
    assert_eq!(verify("ec", "doc.p7s", Some(&bytes("doc.txt"))).timestamp_time, None);
}

/// Validation time two days from now: after the notAfter of `ec/short.pem` (valid one day), while the
/// rest of the chain and the TSA are still valid and the CRLs current.
fn after_short_expiry() -> ValidationOptions {
    ValidationOptions::at(now() + 2 * 86_400).revocation(RevocationPolicy::SoftFail)
}

fn verify_at(cms: &[u8], store: &govgate_certs::TrustStore, opts: &ValidationOptions) -> SignatureReport {
    verify_cms(store, cms, Some(&bytes("doc.txt")), opts, None).expect("decodes").remove(0)
}

#[test]
fn poe_expired_signer_timestamped_before_expiry_passes() {
    let cms = timestamped("ec/doc-short-signer.p7s", "poe-short", |_| {});
    let short_not_after = common::cert("ec/short.pem").not_after;
    let later = after_short_expiry();
    assert!(later.time > short_not_after);
    let r = verify_at(&cms, &store("ec"), &later);
    assert_eq!((r.indication, r.sub_indication), (Indication::TotalPassed, None), "{r:#?}");
    let t = r.poe_time.expect("POE used");
    assert_eq!(Some(t), r.timestamp_time);
    assert!(t <= short_not_after && (t - now()).abs() < 3600, "{t}");
    assert!(r.detail.as_deref().is_some_and(|d| d.contains("proven to exist")), "{r:#?}");
    // the certificate report is the one at the validation time: expired
    let cert = r.certificate.as_ref().expect("certificate report");
    assert_eq!((cert.indication, cert.sub_indication), (Indication::TotalFailed, Some(SubIndication::Expired)));
    // validated now, the same signature needs no POE
    let r = verify_at(&cms, &store("ec"), &opts());
    assert_eq!((r.indication, r.poe_time), (Indication::TotalPassed, None), "{r:#?}");
    // and the signer certificate on its own stays TOTAL_FAILED/EXPIRED after its notAfter
    let c = govgate_certs::validate(&store("ec"), &common::cert("ec/short.pem"), &[common::cert("ec/int.pem")], &later, None);
    assert_eq!((c.indication, c.sub_indication), (Indication::TotalFailed, Some(SubIndication::Expired)));
}

#[test]
fn poe_expired_signer_without_timestamp_is_out_of_bounds() {
    let r = verify_at(&bytes("ec/doc-short-signer.p7s"), &store("ec"), &after_short_expiry());
    assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some(SubIndication::OutOfBoundsNoPoe)), "{r:#?}");
    assert_eq!((r.timestamp_time, r.poe_time), (None, None));
    // a signature made with an already expired certificate, no timestamp
    let r = verify("ec", "doc-expired-signer.p7s", Some(&bytes("doc.txt")));
    assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some(SubIndication::OutOfBoundsNoPoe)));
}

#[test]
fn poe_forged_timestamp_is_not_a_proof() {
    // a flipped byte at the end of the token: inside the TSA's signature value
    let flipped = timestamped("ec/doc-short-signer.p7s", "poe-flip", |der| {
        if let Some(b) = der.last_mut() {
            *b ^= 0x01;
        }
    });
    // a genuine token, but over other data (doc.txt instead of the signature value)
    let other = timestamped("ec/doc-short-signer.p7s", "poe-other", |der| *der = bytes("ec/doc.tst"));
    for (what, cms) in [("flipped", &flipped), ("other data", &other)] {
        let r = verify_at(cms, &store("ec"), &after_short_expiry());
        assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some(SubIndication::OutOfBoundsNoPoe)), "{what}: {r:#?}");
        assert_eq!((r.timestamp_time, r.poe_time), (None, None), "{what}");
    }
    // openssl agrees that the altered token does not verify over the signature value
    std::fs::write(common::path("poe-flip-bad.tst"), {
        let mut d = bytes("poe-flip.tst");
        if let Some(b) = d.last_mut() {
            *b ^= 0x01;
        }
        d
    })
    .unwrap();
    let ts_verify = |tst: &str| {
        openssl_in_fixtures(&[
            "ts",
            "-verify",
            "-data",
            "poe-flip.bin",
            "-in",
            tst,
            "-token_in",
            "-CAfile",
            "ec/root.pem",
            "-untrusted",
            "ec/int.pem",
        ])
    };
    assert!(ts_verify("poe-flip.tst"));
    assert!(!ts_verify("poe-flip-bad.tst"));
    assert!(!ts_verify("ec/doc.tst"));
}

#[test]
fn poe_revoked_signer() {
    // timestamp first, then revoke the signer (a second later, so the dates differ) and issue a CRL
    let cms = timestamped("ec/doc-revoke-later-signer.p7s", "poe-revoke", |_| {});
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert!(openssl_in_fixtures(&["ca", "-batch", "-config", "ec/intca/ca.cnf", "-revoke", "ec/revoke-later.pem"]));
    assert!(openssl_in_fixtures(&["ca", "-batch", "-config", "ec/intca/ca.cnf", "-gencrl", "-out", "ec/int.later.crl.pem"]));
    let mut s = store("ec");
    s.add_crls_pem(&bytes("ec/int.later.crl.pem")).unwrap();
    s.add_crls_pem(&bytes("ec/root.crl.pem")).unwrap();
    let hard = ValidationOptions::at(now()).revocation(RevocationPolicy::HardFail);

    let r = verify_at(&cms, &s, &hard);
    assert_eq!((r.indication, r.sub_indication), (Indication::TotalPassed, None), "{r:#?}");
    let t = r.poe_time.expect("POE used");
    let cert = r.certificate.as_ref().expect("certificate report");
    assert_eq!((cert.indication, cert.sub_indication), (Indication::TotalFailed, Some(SubIndication::Revoked)));
    let revoked_at = cert.findings.iter().find_map(|f| match f {
        govgate_certs::Finding::Revoked { depth: 0, revocation_date, .. } => Some(*revocation_date),
        _ => None,
    });
    assert!(revoked_at.is_some_and(|d| t < d), "{t} {revoked_at:?}");

    // no timestamp: revoked without proof of existence
    let r = verify_at(&bytes("ec/doc-revoke-later-signer.p7s"), &s, &hard);
    assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some(SubIndication::RevokedNoPoe)), "{r:#?}");
    // a timestamp made after the revocation is no proof either
    let late = timestamped("ec/doc-revoke-later-signer.p7s", "poe-revoke-late", |_| {});
    let r = verify_at(&late, &s, &hard);
    assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some(SubIndication::RevokedNoPoe)), "{r:#?}");
    assert!(r.timestamp_time.is_some() && r.poe_time.is_none());
    // certificate validation is unchanged: REVOKED stays TOTAL_FAILED
    let c = govgate_certs::validate(&s, &common::cert("ec/revoke-later.pem"), &[common::cert("ec/int.pem")], &hard, None);
    assert_eq!((c.indication, c.sub_indication), (Indication::TotalFailed, Some(SubIndication::Revoked)));
    // openssl also refuses the signer with the new CRL
    assert!(!common::openssl_verify(&[
        "-crl_check",
        "-CAfile",
        "ec/root.pem",
        "-untrusted",
        "ec/int.pem",
        "-CRLfile",
        "ec/int.later.crl.pem",
        "ec/revoke-later.pem"
    ]));
}
