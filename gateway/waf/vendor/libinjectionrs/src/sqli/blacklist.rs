// SQL injection blacklist checker - matches C implementation exactly

use super::sqli_data;

/// Check if a fingerprint is blacklisted
/// This matches libinjection_sqli_blacklist from the C version
pub fn is_blacklisted(fingerprint: &str) -> bool {
    // Match the C version: convert v0 fingerprint to v1 format
    // v0: up to 5 chars, mixed case  
    // v1: '0' prefix, up to 5 more chars, upper case
    
    if fingerprint.is_empty() {
        return false;
    }
    
    // Build the v1 fingerprint with '0' prefix and uppercase (on the stack: a fingerprint has
    // at most 8 bytes, see PATCHES.md)
    let mut buf = [0u8; 16];
    if fingerprint.len() >= buf.len() {
        return false;
    }
    buf[0] = b'0';
    for (out, &b) in buf[1..].iter_mut().zip(fingerprint.as_bytes()) {
        *out = if b.is_ascii_lowercase() { b - 0x20 } else { b };
    }
    let Ok(fp2) = core::str::from_utf8(&buf[..fingerprint.len() + 1]) else {
        return false;
    };
    
    // Check if this fingerprint exists in the keywords table with type 'F'
    sqli_data::lookup_word(fp2) == crate::sqli::TokenType::Fingerprint
}