//! SM2 digital signature verification with SM3 (GM/T 0003-2012 / GM/T 0004-2012), using the RustCrypto
//! `sm2` crate and the default distinguishing identifier "1234567812345678" (GM/T 0009) that China's
//! government PKI uses for certificates and CRLs.

use sm2::dsa::signature::Verifier;

use crate::signature::SigError;

/// Default SM2 user id (distinguishing identifier).
pub const DEFAULT_DISTID: &str = "1234567812345678";

/// Verifies a DER `SM2Signature` (SEQUENCE of r, s) over `message` with a SEC1 `public_key`.
pub fn verify(public_key: &[u8], message: &[u8], signature_der: &[u8]) -> Result<(), SigError> {
    verify_with_id(DEFAULT_DISTID, public_key, message, signature_der)
}

/// As [`verify`], with an explicit distinguishing identifier.
pub fn verify_with_id(distid: &str, public_key: &[u8], message: &[u8], signature_der: &[u8]) -> Result<(), SigError> {
    let vk =
        sm2::dsa::VerifyingKey::from_sec1_bytes(distid, public_key).map_err(|_| SigError::Unsupported("invalid SM2 public key".into()))?;
    let raw = der_to_raw(signature_der).ok_or(SigError::Invalid)?;
    let sig = sm2::dsa::Signature::from_slice(&raw).map_err(|_| SigError::Invalid)?;
    vk.verify(message, &sig).map_err(|_| SigError::Invalid)
}

/// Decodes `SEQUENCE { INTEGER r, INTEGER s }` into the 64-byte r||s form (strict DER lengths).
fn der_to_raw(der: &[u8]) -> Option<[u8; 64]> {
    let body = tlv(der, 0x30).filter(|(_, rest)| rest.is_empty())?.0;
    let (r, rest) = tlv(body, 0x02)?;
    let (s, rest) = tlv(rest, 0x02)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = [0u8; 64];
    for (i, int) in [r, s].into_iter().enumerate() {
        let skip = int.iter().take_while(|&&b| b == 0).count();
        let v = &int[skip..];
        if v.len() > 32 || int.is_empty() {
            return None;
        }
        out[i * 32 + 32 - v.len()..(i + 1) * 32].copy_from_slice(v);
    }
    Some(out)
}

/// One definite-length TLV with the expected tag: (content, remainder).
fn tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&l, rest) = rest.split_first()?;
    let (len, rest) = if l < 0x80 {
        (l as usize, rest)
    } else {
        let n = (l & 0x7f) as usize;
        if n == 0 || n > 2 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_signatures_are_rejected_not_panicking() {
        let key = [4u8; 65];
        for sig in [&[][..], &[0x30], &[0x30, 0x81], &[0x30, 0x02, 0x02, 0x00], &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]] {
            assert!(verify(&key, b"m", sig).is_err());
        }
    }
}
