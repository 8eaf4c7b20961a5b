//! Path validation over fuzzer-made certificates: the input is split in two at a position given by its
//! first two bytes; the first part is decoded as trust anchors + CRLs, the second as a chain (leaf first).
//! Validation must always return a report.
#![no_main]

use govgate_certs::{certificates_from_pem, validate, Purpose, RevocationPolicy, TrustStore, ValidationOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cut = (usize::from(data[0]) << 8 | usize::from(data[1])).min(data.len() - 2);
    let (a, b) = data[2..].split_at(cut);
    let mut store = TrustStore::new();
    let _ = store.add_anchors_pem(a);
    let _ = store.add_crls_pem(a);
    let Ok(chain) = certificates_from_pem(b) else { return };
    let Some((leaf, rest)) = chain.split_first() else { return };
    let opts = ValidationOptions::at(1_800_000_000).purpose(Purpose::TlsClient).revocation(RevocationPolicy::HardFail);
    let _ = validate(&store, leaf, rest, &opts, None);
});
