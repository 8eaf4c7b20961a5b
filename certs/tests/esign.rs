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
    assert_eq!((r.indication, r.sub_indication), (Indication::TotalFailed, Some(SubIndication::Expired)));
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

#[test]
fn cms_with_embedded_signature_timestamp() {
    use cms::cert::x509::attr::Attribute;
    use cms::cert::x509::der::asn1::{ObjectIdentifier, SetOfVec};
    use cms::cert::x509::der::{Any, Decode, Encode};
    use cms::content_info::ContentInfo;
    use cms::signed_data::{SignedData, SignerInfos};

    let ci = ContentInfo::from_der(&bytes("ec/doc.p7s")).unwrap();
    let mut sd: SignedData = ci.content.decode_as().unwrap();
    let mut sis: Vec<_> = sd.signer_infos.0.iter().cloned().collect();
    // timestamp the signature value with the fixture TSA
    std::fs::write(common::path("sig.bin"), sis[0].signature.as_bytes()).unwrap();
    assert!(openssl_in_fixtures(&["ts", "-query", "-data", "sig.bin", "-sha256", "-cert", "-out", "sig.tsq"]));
    assert!(openssl_in_fixtures(&["ts", "-reply", "-config", "tsa.cnf", "-queryfile", "sig.tsq", "-token_out", "-out", "sig.tst"]));
    let token = Any::from_der(&bytes("sig.tst")).unwrap();
    let attr =
        Attribute { oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14"), values: SetOfVec::try_from(vec![token]).unwrap() };
    sis[0].unsigned_attrs = Some(SetOfVec::try_from(vec![attr]).unwrap());
    sd.signer_infos = SignerInfos::from(SetOfVec::try_from(sis).unwrap());
    let with_ts = ContentInfo { content_type: ci.content_type, content: Any::encode_from(&sd).unwrap() }.to_der().unwrap();
    let r = verify_cms(&store("ec"), &with_ts, Some(&bytes("doc.txt")), &opts(), None).unwrap().remove(0);
    assert!(r.passed(), "{r:#?}");
    let ts = r.timestamp_time.expect("timestamp time");
    assert!((ts - now()).abs() < 3600);
    // the original signature had none
    assert_eq!(verify("ec", "doc.p7s", Some(&bytes("doc.txt"))).timestamp_time, None);
}
