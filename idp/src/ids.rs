//! Identity numbers for the IdP: the rules shared with the gateway and the certificate library
//! (`govgate-identity-numbers`: GB 11643, GB 32100, mobile numbers, masking), and the e-mail
//! shape check used by registration.

pub use govgate_identity_numbers::validate::*;

/// Deliberately simple e-mail shape check (one `@`, non-empty parts, a dot in the domain).
pub fn validate_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((l, d)) => {
            !l.is_empty()
                && d.contains('.')
                && !d.starts_with('.')
                && !d.ends_with('.')
                && !s.contains(char::is_whitespace)
                && !d.contains('@')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shape() {
        assert!(validate_email("a@b.cn"));
        assert!(!validate_email("a@b"));
        assert!(validate_resident_id("11010519491231002X").is_ok(), "the shared rules are re-exported");
    }
}
