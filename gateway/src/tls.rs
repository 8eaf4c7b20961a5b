//! Development certificates for `certificate = "auto"`: a local CA (created once) and a server
//! certificate for every app host, localhost and the loopback addresses, re-issued whenever
//! the host list changes. Production deployments give their own files instead.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("generating the development certificates failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Paths of the generated files.
#[derive(Debug, Clone)]
pub struct DevCertificates {
    pub ca: PathBuf,
    pub certificate: PathBuf,
    pub key: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io { path: path.to_path_buf(), source }
}

/// Writes `contents` to `path`, readable by the owner only when `secret`.
pub(crate) fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), TlsError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path))?;
    f.write_all(contents.as_bytes()).map_err(io(path))
}

/// Makes sure `dir/tls/` holds a CA and a server certificate covering `hosts`.
pub fn ensure_dev_certificates(dir: &Path, hosts: &[String]) -> Result<DevCertificates, TlsError> {
    let tls = dir.join("tls");
    fs::create_dir_all(&tls).map_err(io(&tls))?;
    let out = DevCertificates { ca: tls.join("ca.pem"), certificate: tls.join("server.pem"), key: tls.join("server-key.pem") };
    let ca_key_path = tls.join("ca-key.pem");

    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for h in hosts {
        if !names.contains(h) {
            names.push(h.clone());
        }
    }
    let names_path = tls.join("server-names.txt");
    let wanted = names.join("\n");

    let (ca_pem, ca_key) = if out.ca.is_file() && ca_key_path.is_file() {
        let key_pem = fs::read_to_string(&ca_key_path).map_err(io(&ca_key_path))?;
        (fs::read_to_string(&out.ca).map_err(io(&out.ca))?, KeyPair::from_pem(&key_pem)?)
    } else {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "govgate development CA");
        dn.push(DnType::OrganizationName, "govgate (development only)");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key)?;
        write_file(&ca_key_path, &key.serialize_pem(), true)?;
        write_file(&out.ca, &cert.pem(), false)?;
        let _ = fs::remove_file(&names_path);
        (cert.pem(), key)
    };

    let current = fs::read_to_string(&names_path).unwrap_or_default();
    if current == wanted && out.certificate.is_file() && out.key.is_file() {
        return Ok(out);
    }
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::CommonName, "govgate development server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&key, &issuer)?;
    write_file(&out.key, &key.serialize_pem(), true)?;
    write_file(&out.certificate, &format!("{}{}", cert.pem(), ca_pem), false)?;
    write_file(&names_path, &wanted, false)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_and_reissues_on_new_hosts() {
        let dir = std::env::temp_dir().join(format!("govgate-tls-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let a = ensure_dev_certificates(&dir, &["a.localhost".into()]).unwrap();
        let ca1 = fs::read_to_string(&a.ca).unwrap();
        let cert1 = fs::read_to_string(&a.certificate).unwrap();
        let again = ensure_dev_certificates(&dir, &["a.localhost".into()]).unwrap();
        assert_eq!(cert1, fs::read_to_string(&again.certificate).unwrap());
        let b = ensure_dev_certificates(&dir, &["a.localhost".into(), "b.localhost".into()]).unwrap();
        assert_eq!(ca1, fs::read_to_string(&b.ca).unwrap(), "the CA is kept");
        assert_ne!(cert1, fs::read_to_string(&b.certificate).unwrap(), "the server certificate is re-issued");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("tls/ca-key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
