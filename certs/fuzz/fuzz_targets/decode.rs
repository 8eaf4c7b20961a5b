//! Any bytes given to the certificate / CRL / PEM decoders give a value or a ParseError, never a panic;
//! a decoded certificate's identity can always be extracted.
#![no_main]

use govgate_certs::{certificates_from_pem, crls_from_pem, extract_identity, Certificate, Crl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Certificate::from_der(data) {
        let _ = extract_identity(&c);
    }
    let _ = Crl::from_der(data);
    let _ = certificates_from_pem(data);
    let _ = crls_from_pem(data);
});
