//! RFC 5280 §4.2.1.10 name constraints for dNSName, rfc822Name, iPAddress and directoryName.
//! Constraints of other name forms are ignored (see README, "what is missing").

use crate::parse::{Certificate, Name, NameConstraints};

/// The names of `cert` subject to constraints: subject DN (unless empty), SAN entries, and the
/// subject's emailAddress attributes when the certificate has no SAN.
pub fn names_of(cert: &Certificate) -> Vec<Name> {
    let mut v = Vec::new();
    if !cert.subject.rdns.is_empty() {
        v.push(Name::Directory(cert.subject.rdns.clone()));
    }
    v.extend(cert.subject_alt_names.iter().cloned());
    if cert.subject_alt_names.is_empty() {
        for (oid, val) in &cert.subject.attributes {
            if oid == "1.2.840.113549.1.9.1" {
                v.push(Name::Email(val.clone()));
            }
        }
    }
    v
}

/// Returns the first name violating `nc`, as text.
pub fn violation(nc: &NameConstraints, names: &[Name]) -> Option<String> {
    for n in names {
        if nc.excluded.iter().any(|c| matches(c, n) == Some(true)) {
            return Some(describe(n));
        }
        if let Some(permitted) = &nc.permitted {
            // Only constraints of the same form apply; a form with no permitted entry is unrestricted.
            let same_form: Vec<bool> = permitted.iter().filter_map(|c| matches(c, n)).collect();
            if !same_form.is_empty() && !same_form.iter().any(|&m| m) {
                return Some(describe(n));
            }
        }
    }
    None
}

fn describe(n: &Name) -> String {
    match n {
        Name::Dns(s) => format!("DNS:{s}"),
        Name::Email(s) => format!("email:{s}"),
        Name::Uri(s) => format!("URI:{s}"),
        Name::Ip(b) => format!("IP:{b:?}"),
        Name::Directory(_) => "directoryName".into(),
        Name::Other => "other name".into(),
    }
}

/// `None` when constraint and name are of different forms (or the form is unsupported).
fn matches(constraint: &Name, name: &Name) -> Option<bool> {
    match (constraint, name) {
        (Name::Dns(c), Name::Dns(n)) => Some(dns_within(c, n)),
        (Name::Email(c), Name::Email(n)) => Some(email_within(c, n)),
        (Name::Ip(c), Name::Ip(n)) => Some(ip_within(c, n)),
        (Name::Directory(c), Name::Directory(n)) => Some(n.len() >= c.len() && n[..c.len()] == c[..]),
        _ => None,
    }
}

fn dns_within(c: &str, n: &str) -> bool {
    let c = c.trim_start_matches('.').to_ascii_lowercase();
    let n = n.trim_end_matches('.').to_ascii_lowercase();
    if c.is_empty() {
        return true;
    }
    n == c || n.ends_with(&format!(".{c}"))
}

fn email_within(c: &str, n: &str) -> bool {
    let c = c.to_ascii_lowercase();
    let n = n.to_ascii_lowercase();
    if c.contains('@') {
        return c == n;
    }
    let Some((_, host)) = n.rsplit_once('@') else { return false };
    if let Some(stripped) = c.strip_prefix('.') {
        host.ends_with(&format!(".{stripped}"))
    } else {
        host == c
    }
}

fn ip_within(c: &[u8], n: &[u8]) -> bool {
    let len = n.len();
    if c.len() != 2 * len {
        return false;
    }
    let (addr, mask) = c.split_at(len);
    n.iter().zip(addr).zip(mask).all(|((a, b), m)| a & m == b & m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subtrees() {
        assert!(dns_within(".gov.cn", "hz.gov.cn"));
        assert!(dns_within("gov.cn", "gov.cn"));
        assert!(!dns_within(".gov.cn", "evilgov.cn"));
        assert!(!dns_within("gov.cn", "example.com"));
    }

    #[test]
    fn email_and_ip_subtrees() {
        assert!(email_within(".gov.cn", "a@hz.gov.cn"));
        assert!(email_within("hz.gov.cn", "a@hz.gov.cn"));
        assert!(!email_within("hz.gov.cn", "a@x.hz.gov.cn"));
        assert!(ip_within(&[10, 0, 0, 0, 255, 0, 0, 0], &[10, 1, 2, 3]));
        assert!(!ip_within(&[10, 0, 0, 0, 255, 0, 0, 0], &[11, 1, 2, 3]));
    }
}
