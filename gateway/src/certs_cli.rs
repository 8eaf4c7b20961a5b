//! `govgate cert verify` and `govgate esign verify`: the certificate library (`govgate-certs`)
//! on the command line, printing its validation report as text or JSON. The exit status is 0
//! only when the indication is `TOTAL_PASSED`.

use govgate_certs::{
    certificates_from_pem, trust_store, validate, verify_cms, CertificateReport, ChainElement, Purpose, SignatureReport, TrustStore,
    ValidationOptions,
};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// An error the operator must fix, naming the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("--at {0:?}: expected an RFC 3339 time such as 2026-11-23T08:00:00Z")]
    Time(String),
    #[error("--purpose {0:?}: expected tls-client, document-signing, time-stamping or any")]
    Purpose(String),
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Read { path: path.to_path_buf(), source })
}

/// Trust anchors from a directory (`anchors/`, `intermediates/`, `crl/`) or one PEM file.
pub fn load_trust(path: &Path) -> Result<TrustStore, CliError> {
    if path.is_dir() {
        return trust_store::load_dir(path).map_err(|e| CliError::Invalid { path: path.display().to_string(), message: e.to_string() });
    }
    let mut store = TrustStore::new();
    store.add_anchors_pem(&read(path)?).map_err(|e| CliError::Invalid { path: path.display().to_string(), message: e.to_string() })?;
    Ok(store)
}

/// Unix seconds for `--at` (now when absent).
pub fn validation_time(at: Option<&str>) -> Result<i64, CliError> {
    let t = match at {
        Some(s) => humantime::parse_rfc3339_weak(s).map_err(|_| CliError::Time(s.to_string()))?,
        None => std::time::SystemTime::now(),
    };
    Ok(t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0))
}

pub fn parse_purpose(s: &str) -> Result<Purpose, CliError> {
    Purpose::parse(s).ok_or_else(|| CliError::Purpose(s.to_string()))
}

/// Validates the certificate in `cert` (PEM; more certificates after the first are offered as
/// intermediates, as are those in `chain`).
pub fn cert_verify(cert: &Path, chain: &[PathBuf], store: &TrustStore, opts: &ValidationOptions) -> Result<CertificateReport, CliError> {
    let invalid = |p: &Path, e: &dyn std::fmt::Display| CliError::Invalid { path: p.display().to_string(), message: e.to_string() };
    let certs = certificates_from_pem(&read(cert)?).map_err(|e| invalid(cert, &e))?;
    let Some((leaf, rest)) = certs.split_first() else {
        return Err(invalid(cert, &"no certificate in the file"));
    };
    let mut intermediates = rest.to_vec();
    for p in chain {
        intermediates.extend(certificates_from_pem(&read(p)?).map_err(|e| invalid(p, &e))?);
    }
    Ok(validate(store, leaf, &intermediates, opts, None))
}

/// Verifies a CMS signature file (`sig`, DER or PEM) over `data` (detached content).
pub fn esign_verify(data: &Path, sig: &Path, store: &TrustStore, opts: &ValidationOptions) -> Result<Vec<SignatureReport>, CliError> {
    let content = read(data)?;
    verify_cms(store, &read(sig)?, Some(&content), opts, None)
        .map_err(|e| CliError::Invalid { path: sig.display().to_string(), message: e.to_string() })
}

/// The ETSI name of a serialisable enum value (`TOTAL_PASSED`, `EXPIRED`, …).
fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn time(t: i64) -> String {
    let st = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    humantime::format_rfc3339_seconds(st).to_string()
}

fn chain_text(out: &mut String, chain: &[ChainElement]) {
    for (depth, c) in chain.iter().enumerate() {
        out.push_str(&format!(
            "  [{depth}] {}\n      valid {} … {}{}\n",
            c.subject,
            time(c.not_before),
            time(c.not_after),
            if c.trust_anchor { "  (trust anchor)" } else { "" }
        ));
    }
}

pub fn certificate_text(r: &CertificateReport) -> String {
    let mut out = format!("indication:     {}\n", name(&r.indication));
    if let Some(s) = &r.sub_indication {
        out.push_str(&format!("sub-indication: {}\n", name(s)));
    }
    out.push_str(&format!("validated at:   {}\nchain:\n", time(r.validation_time)));
    chain_text(&mut out, &r.chain);
    for f in &r.findings {
        out.push_str(&format!("finding: {f:?}\n"));
    }
    out
}

pub fn signature_text(reports: &[SignatureReport]) -> String {
    let mut out = String::new();
    for (i, r) in reports.iter().enumerate() {
        out.push_str(&format!("signature {}:\n  indication:     {}\n", i + 1, name(&r.indication)));
        if let Some(s) = &r.sub_indication {
            out.push_str(&format!("  sub-indication: {}\n", name(s)));
        }
        if let Some(d) = &r.detail {
            out.push_str(&format!("  detail:         {d}\n"));
        }
        if let Some(s) = &r.signer {
            out.push_str(&format!("  signer:         {}\n", s.subject));
            if let Some((kind, number)) = &s.id_number {
                out.push_str(&format!("  identity:       {} {}\n", name(kind), number));
            }
        }
        if let Some(t) = r.signing_time {
            out.push_str(&format!("  signing time:   {}\n", time(t)));
        }
        if let Some(t) = r.timestamp_time {
            out.push_str(&format!("  timestamp:      {}\n", time(t)));
        }
        if let Some(t) = r.poe_time {
            out.push_str(&format!("  existed at:     {} (proof of existence used for the signer certificate)\n", time(t)));
        }
        out.push_str(&format!("  digest:         {}\n  chain:\n", r.digest_algorithm));
        chain_text(&mut out, &r.chain);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_purposes_are_checked() {
        assert_eq!(validation_time(Some("2026-11-23T08:00:00Z")).unwrap(), 1_795_420_800);
        assert!(matches!(validation_time(Some("yesterday")), Err(CliError::Time(_))));
        assert_eq!(parse_purpose("tls-client").unwrap(), Purpose::TlsClient);
        assert!(parse_purpose("tls").is_err());
    }
}
