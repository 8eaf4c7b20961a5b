//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps, ±1 step tolerance).
//! Secrets are 160-bit random values, shown to the user once in base32.

use totp_rs::{Algorithm, TOTP};

fn totp(secret: &[u8], digits: usize) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, digits, 1, 30, secret.to_vec())
}

/// A new random secret, base32 (RFC 4648, no padding).
pub fn generate_secret() -> String {
    let mut b = [0u8; 20];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    totp_rs::Secret::Raw(b.to_vec()).to_encoded().to_string()
}

/// Check a 6-digit code at unix time `now`, accepting the previous, current and next 30 s step.
/// Returns the matched time step, so that the caller can refuse a step that was already used
/// (RFC 6238 §5.2). Comparison is constant-time.
pub fn verify_step(secret_b32: &str, code: &str, now: u64) -> Option<u64> {
    let bytes = totp_rs::Secret::Encoded(secret_b32.to_string()).to_bytes().ok()?;
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let t = totp(&bytes, 6);
    let step = now / 30;
    let mut found = None;
    for s in [step.saturating_sub(1), step, step + 1] {
        if crate::crypto::ct_eq(t.generate(s * 30).as_bytes(), code.as_bytes()) && found.is_none() {
            found = Some(s);
        }
    }
    found
}

/// Check a 6-digit code at unix time `now` (no replay tracking).
pub fn verify(secret_b32: &str, code: &str, now: u64) -> bool {
    verify_step(secret_b32, code, now).is_some()
}

/// The current code (tests and enrolment confirmation).
pub fn current(secret_b32: &str, now: u64) -> Option<String> {
    let bytes = totp_rs::Secret::Encoded(secret_b32.to_string()).to_bytes().ok()?;
    Some(totp(&bytes, 6).generate(now))
}

/// `otpauth://` URI for authenticator apps.
pub fn provisioning_uri(secret_b32: &str, issuer: &str, account: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        secret_b32,
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        assert_eq!(totp(b"12345678901234567890", 8).generate(59), "94287082");
        assert_eq!(totp(b"12345678901234567890", 8).generate(1111111109), "07081804");
    }

    #[test]
    fn verify_window() {
        let s = generate_secret();
        let c = current(&s, 1_000_000).unwrap();
        assert!(verify(&s, &c, 1_000_000));
        assert!(verify(&s, &c, 1_000_030));
        assert!(!verify(&s, &c, 1_000_120));
        assert!(!verify(&s, "abcdef", 1_000_000));
    }
}
