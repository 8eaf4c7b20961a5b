//! Any bytes given to the CMS and RFC 3161 verifiers give reports or a ParseError, never a panic.
#![no_main]

use govgate_certs::{verify_cms, verify_timestamp_token, TrustStore, ValidationOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let store = TrustStore::new();
    let opts = ValidationOptions::at(1_800_000_000);
    let _ = verify_cms(&store, data, Some(b"content"), &opts, None);
    let _ = verify_timestamp_token(&store, data, b"content", &opts, None);
});
