//! # govgate-identity-numbers
//!
//! Personal numbers the way Chinese government services meet them: resident identity numbers
//! (GB 11643, check digit), unified social credit codes (GB 32100), mainland mobile numbers and
//! bank-card numbers (Luhn). Pure functions, no I/O. Used by the identity provider (validating
//! what citizens type), and by the gateway (masking logs, finding personal data that a response
//! is about to leak).

pub mod log_mask;
pub mod scan;
pub mod validate;

pub use log_mask::mask as mask_for_log;
pub use scan::{find, luhn_valid, Counts, Finding, Kind, Scanner};
pub use validate::*;
