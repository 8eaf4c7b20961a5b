//! `govgate pki init`: a demo PKI for trying certificate login and e-signatures — a root CA, an
//! issuing CA (both with an empty CRL), a TLS server certificate, a citizen certificate (resident
//! identity number in the subject; clientAuth) with a PKCS#12 file for a browser, and a
//! document-signing certificate, plus a `trust/` directory to use as `[certs] trust`.
//!
//! ECDSA P-256 material is made in-process with rcgen. The PKCS#12 file and the SM2 chain (root,
//! issuing CA, citizen; SM3 with the default SM2 user id) are made with the `openssl` command
//! line (OpenSSL ≥ 3.0) when it is installed; rcgen has no SM2 and no pure-Rust PKCS#12 writer is
//! in the workspace. Private keys are written readable by the owner only (0600); the PKCS#12
//! password is made at random and written beside it (0600).

use crate::tls::{write_file, TlsError};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, SerialNumber,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The identity number in the demo citizen certificate (the demo citizen 张三 has it).
pub const CITIZEN_ID: &str = "11010519491231002X";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(transparent)]
    Files(#[from] TlsError),
    #[error("generating the demo PKI failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{} already holds a PKI (root.pem); remove the directory to make a new one", .0.display())]
    Exists(PathBuf),
}

/// What `init` made (all paths inside the PKI directory).
#[derive(Debug, Clone)]
pub struct DemoPki {
    pub dir: PathBuf,
    /// Use as `[certs] trust`: anchors/, intermediates/, crl/.
    pub trust: PathBuf,
    /// PKCS#12 of the citizen certificate, its key and the issuing CA, and its password file;
    /// `None` without the openssl command.
    pub citizen_p12: Option<(PathBuf, PathBuf)>,
    /// The SM2 chain's directory; `None` without the openssl command.
    pub sm2: Option<PathBuf>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.to_path_buf(), source }
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "CN");
    dn.push(DnType::OrganizationName, "govgate demo PKI (not for production)");
    dn.push(DnType::CommonName, cn);
    dn
}

fn params(dn: DistinguishedName, days: i64) -> Result<CertificateParams, rcgen::Error> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::hours(1);
    p.not_after = now + time::Duration::days(days);
    p.distinguished_name = dn;
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// A leaf for the citizen: the resident identity number as subject serialNumber (2.5.4.5).
fn citizen_name(cn: &str) -> DistinguishedName {
    let mut dn = name(cn);
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), CITIZEN_ID);
    dn
}

/// The data directory a policy file names, read without validating the rest (the demo makes
/// its PKI there before the policy, which needs the PKI's trust directory, can be loaded).
pub fn data_dir_of(config: &Path) -> Option<PathBuf> {
    #[derive(serde::Deserialize)]
    struct Head {
        server: Option<Server>,
    }
    #[derive(serde::Deserialize)]
    struct Server {
        data_dir: Option<PathBuf>,
    }
    let head: Head = toml::from_str(&std::fs::read_to_string(config).ok()?).ok()?;
    let data = head.server.and_then(|s| s.data_dir).unwrap_or_else(|| PathBuf::from("data"));
    Some(if data.is_absolute() { data } else { config.parent().unwrap_or(Path::new(".")).join(data) })
}

/// Makes the PKI in `dir` (refused when one is there already). `hosts` go into the server
/// certificate besides localhost and the loopback addresses.
pub fn init(dir: &Path, hosts: &[String]) -> Result<DemoPki, PkiError> {
    if dir.join("root.pem").exists() {
        return Err(PkiError::Exists(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Absolute, as the openssl commands run in a subdirectory.
    let dir = &dir.canonicalize().map_err(io(dir))?;
    let trust = dir.join("trust");
    for d in [trust.join("anchors"), trust.join("intermediates"), trust.join("crl")] {
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    let save = |file: &str, text: &str, secret: bool| write_file(&dir.join(file), text, secret);

    let root_key = KeyPair::generate()?;
    let mut root = params(name("govgate demo Root CA"), 3650)?;
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    root.use_authority_key_identifier_extension = false;
    let root_cert = root.self_signed(&root_key)?;
    save("root.pem", &root_cert.pem(), false)?;
    save("root-key.pem", &root_key.serialize_pem(), true)?;
    let root_issuer = Issuer::new(root, root_key);

    let int_key = KeyPair::generate()?;
    let mut int = params(name("govgate demo Issuing CA"), 1825)?;
    int.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    int.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let int_cert = int.signed_by(&int_key, &root_issuer)?;
    save("int.pem", &int_cert.pem(), false)?;
    save("int-key.pem", &int_key.serialize_pem(), true)?;
    let int_issuer = Issuer::new(int, int_key);

    let leaf = |file: &str, mut p: CertificateParams, chain: bool| -> Result<(), PkiError> {
        let key = KeyPair::generate()?;
        let mut serial = uuid::Uuid::new_v4().as_u128().to_be_bytes().to_vec();
        serial[0] &= 0x7f;
        p.serial_number = Some(SerialNumber::from(serial));
        let cert = p.signed_by(&key, &int_issuer)?;
        let pem = if chain { format!("{}{}", cert.pem(), int_cert.pem()) } else { cert.pem() };
        save(&format!("{file}.pem"), &pem, false)?;
        save(&format!("{file}-key.pem"), &key.serialize_pem(), true)?;
        Ok(())
    };
    let mut server = params(name("govgate demo server"), 825)?;
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    names.extend(hosts.iter().filter(|h| !names.contains(h)).cloned().collect::<Vec<_>>());
    server.subject_alt_names = CertificateParams::new(names)?.subject_alt_names;
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf("server", server, true)?;

    let mut citizen = params(citizen_name("张三"), 730)?;
    citizen.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::EmailProtection];
    citizen.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
    leaf("citizen", citizen, false)?;

    let mut signing = params(citizen_name("张三 (document signing)"), 730)?;
    // id-kp-documentSigning (RFC 9336)
    signing.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 36])];
    signing.key_usages = vec![KeyUsagePurpose::ContentCommitment, KeyUsagePurpose::DigitalSignature];
    leaf("docsign", signing, false)?;

    // Empty CRLs of both CAs, current for a year, so that `revocation = "hard_fail"` works too.
    let now = time::OffsetDateTime::now_utc();
    let crl = CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(365),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    write_file(&trust.join("anchors/root.pem"), &root_cert.pem(), false)?;
    write_file(&trust.join("intermediates/int.pem"), &int_cert.pem(), false)?;
    write_file(&trust.join("crl/int.crl.pem"), &crl.signed_by(&int_issuer)?.pem()?, false)?;
    write_file(&trust.join("crl/root.crl.pem"), &crl.signed_by(&root_issuer)?.pem()?, false)?;

    let openssl = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    let citizen_p12 = if openssl { pkcs12(dir)? } else { None };
    let sm2 = if openssl { sm2_chain(dir, &trust)? } else { None };
    Ok(DemoPki { dir: dir.to_path_buf(), trust, citizen_p12, sm2 })
}

/// `citizen.p12` (citizen certificate, key, issuing CA) with a random password in
/// `citizen.p12.password`; the password goes to openssl through its environment, not argv.
fn pkcs12(dir: &Path) -> Result<Option<(PathBuf, PathBuf)>, PkiError> {
    let password = uuid::Uuid::new_v4().simple().to_string()[..16].to_string();
    let (p12, pw) = (dir.join("citizen.p12"), dir.join("citizen.p12.password"));
    write_file(&pw, &format!("{password}\n"), true)?;
    // Created 0600 before openssl writes into it.
    write_file(&p12, "", true)?;
    let ok = Command::new("openssl")
        .args(["pkcs12", "-export", "-name", "张三", "-passout", "env:GOVGATE_P12_PASSWORD", "-in"])
        .arg(dir.join("citizen.pem"))
        .arg("-inkey")
        .arg(dir.join("citizen-key.pem"))
        .arg("-certfile")
        .arg(dir.join("int.pem"))
        .arg("-out")
        .arg(&p12)
        .env("GOVGATE_P12_PASSWORD", &password)
        .output()
        .map_err(io(&p12))?;
    if !ok.status.success() {
        tracing::warn!("openssl pkcs12 failed: {}", String::from_utf8_lossy(&ok.stderr));
        return Ok(None);
    }
    Ok(Some((p12, pw)))
}

/// The SM2 chain in `dir/sm2/` (root, issuing CA, citizen), made with the openssl command;
/// the root and issuing CA are added to `trust`.
fn sm2_chain(dir: &Path, trust: &Path) -> Result<Option<PathBuf>, PkiError> {
    let sm2 = dir.join("sm2");
    std::fs::create_dir_all(&sm2).map_err(io(&sm2))?;
    let ext = sm2.join("ext.cnf");
    write_file(
        &ext,
        "[root]\nbasicConstraints = critical, CA:true\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n\n\
         [int]\nbasicConstraints = critical, CA:true, pathlen:0\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\n\
         [citizen]\nbasicConstraints = critical, CA:false\nkeyUsage = critical, digitalSignature, nonRepudiation\nextendedKeyUsage = clientAuth, emailProtection\nauthorityKeyIdentifier = keyid\n\n\
         [req]\ndistinguished_name = dn\n[dn]\n",
        false,
    )?;
    let run = |args: &[&str]| -> bool {
        Command::new("openssl").args(args).current_dir(&sm2).env("OPENSSL_CONF", &ext).output().is_ok_and(|o| o.status.success())
    };
    let sm3 = ["-sm3", "-sigopt", "distid:1234567812345678"];
    let subj = |cn: &str| format!("/C=CN/O=govgate demo PKI (not for production)/CN={cn}");
    let mut ok = true;
    for k in ["root-key.pem", "int-key.pem", "citizen-key.pem"] {
        write_file(&sm2.join(k), "", true)?;
        ok = ok && run(&["genpkey", "-algorithm", "SM2", "-out", k]);
    }
    let root_subj = subj("govgate demo SM2 Root CA");
    ok = ok
        && run(&[
            &[
                "req",
                "-utf8",
                "-x509",
                "-new",
                "-key",
                "root-key.pem",
                "-subj",
                &root_subj,
                "-days",
                "3650",
                "-extensions",
                "root",
                "-out",
                "root.pem",
            ][..],
            &sm3,
        ]
        .concat());
    let issue = |key: &str, subject: &str, out: &str, ca: &str, ca_key: &str, section: &str| {
        run(&[&["req", "-utf8", "-new", "-key", key, "-subj", subject, "-out", "req.csr"][..], &sm3].concat())
            && run(&[
                &[
                    "x509",
                    "-req",
                    "-in",
                    "req.csr",
                    "-CA",
                    ca,
                    "-CAkey",
                    ca_key,
                    "-CAcreateserial",
                    "-days",
                    "730",
                    "-extfile",
                    "ext.cnf",
                    "-extensions",
                    section,
                ][..],
                &sm3,
                &["-vfyopt", "distid:1234567812345678", "-out", out],
            ]
            .concat())
    };
    ok = ok && issue("int-key.pem", &subj("govgate demo SM2 Issuing CA"), "int.pem", "root.pem", "root-key.pem", "int");
    let citizen_subj = format!("{}/serialNumber={CITIZEN_ID}", subj("张三"));
    ok = ok && issue("citizen-key.pem", &citizen_subj, "citizen.pem", "int.pem", "int-key.pem", "citizen");
    let _ = std::fs::remove_file(sm2.join("req.csr"));
    if !ok {
        tracing::warn!("the openssl command could not make the SM2 chain (OpenSSL 3.0 or later is needed)");
        return Ok(None);
    }
    for (from, to) in [("root.pem", "anchors/sm2-root.pem"), ("int.pem", "intermediates/sm2-int.pem")] {
        let text = std::fs::read_to_string(sm2.join(from)).map_err(io(&sm2))?;
        write_file(&trust.join(to), &text, false)?;
    }
    Ok(Some(sm2))
}
