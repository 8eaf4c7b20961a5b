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
    
    // The v1 fingerprint: '0', then the fingerprint upper-cased (govgate: looked up in place,
    // without a String, see PATCHES.md)
    sqli_data::lookup_joined(&[b"0", fingerprint.as_bytes()]) == crate::sqli::TokenType::Fingerprint
}