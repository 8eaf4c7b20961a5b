//! Validation of Chinese identity numbers as pure functions: the resident identity number (GB 11643-1999, with
//! its ISO 7064 MOD 11-2 check digit and an embedded birth date), the unified social credit code
//! (GB 32100-2015, with its MOD 31 check character), and masking for logs and non-privileged
//! clients.

/// Why an identity number was rejected (used for the message beside the form field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("must be 18 characters")]
    Length,
    #[error("contains an invalid character")]
    Charset,
    #[error("birth date is not a valid date")]
    BirthDate,
    #[error("check digit does not match")]
    Checksum,
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// Check digit of the first 17 digits of a resident identity number.
pub fn gb11643_check_digit(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17.iter().zip(ID_WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    Some(ID_CHECK[(sum % 11) as usize])
}

/// Validate an 18-digit resident identity number (GB 11643). A lowercase `x` is accepted and
/// normalised; the result is the canonical (uppercase) form.
pub fn validate_resident_id(input: &str) -> Result<String, IdNumberError> {
    let s = input.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() != 18 {
        return Err(IdNumberError::Length);
    }
    if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
        return Err(IdNumberError::Charset);
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(0);
    let (y, m, d) = (num(6..10), num(10..12), num(12..14));
    if !valid_date(y, m, d) || !(1900..=2100).contains(&y) {
        return Err(IdNumberError::BirthDate);
    }
    match gb11643_check_digit(&b[..17]) {
        Some(c) if c == b[17] => Ok(s),
        _ => Err(IdNumberError::Checksum),
    }
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// The 31 characters of GB 32100 (digits and uppercase letters without I, O, Z, S, V).
const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

fn uscc_value(c: u8) -> Option<u32> {
    USCC_CHARS.iter().position(|&x| x == c).map(|p| p as u32)
}

/// Check character of the first 17 characters of a unified social credit code.
pub fn gb32100_check_char(first17: &[u8]) -> Option<u8> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (c, w) in first17.iter().zip(USCC_WEIGHTS) {
        sum += uscc_value(*c)? * w;
    }
    let v = (31 - sum % 31) % 31;
    Some(USCC_CHARS[v as usize])
}

/// Validate an 18-character unified social credit code (GB 32100). Returns the canonical
/// (uppercase) form.
pub fn validate_uscc(input: &str) -> Result<String, IdNumberError> {
    let s = input.trim().to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() != 18 {
        return Err(IdNumberError::Length);
    }
    if !b.iter().all(|c| uscc_value(*c).is_some()) {
        return Err(IdNumberError::Charset);
    }
    // Positions 3–8 are the administrative division code: digits only.
    if !b[2..8].iter().all(u8::is_ascii_digit) {
        return Err(IdNumberError::Charset);
    }
    match gb32100_check_char(&b[..17]) {
        Some(c) if c == b[17] => Ok(s),
        _ => Err(IdNumberError::Checksum),
    }
}

/// Mask an identity number / credit code: first 3 and last 2 characters kept
/// (`110***********002X` style), for logs and clients not allowed the full value.
pub fn mask_id(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars.iter().enumerate().map(|(i, c)| if i < 3 || i >= n - 2 { *c } else { '*' }).collect()
}

/// Mask a mobile number: `138****5678`.
pub fn mask_mobile(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 7 {
        return "*".repeat(chars.len());
    }
    let n = chars.len();
    chars.iter().enumerate().map(|(i, c)| if i < 3 || i >= n - 4 { *c } else { '*' }).collect()
}

/// Mainland mobile number: 11 digits starting with 1[3-9].
pub fn validate_mobile(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_valid_examples() {
        assert_eq!(validate_resident_id("11010519491231002X"), Ok("11010519491231002X".into()));
        assert_eq!(validate_resident_id("11010519491231002x"), Ok("11010519491231002X".into()));
        // Build one from a prefix and computed check digit.
        let first = b"44030419900307123";
        let c = gb11643_check_digit(first).unwrap();
        let mut s = String::from_utf8(first.to_vec()).unwrap();
        s.push(c as char);
        assert!(validate_resident_id(&s).is_ok());
    }

    #[test]
    fn resident_id_rejects() {
        assert_eq!(validate_resident_id("110105194912310021"), Err(IdNumberError::Checksum));
        assert_eq!(validate_resident_id("1101051949123100"), Err(IdNumberError::Length));
        assert_eq!(validate_resident_id("11010519491231002Y"), Err(IdNumberError::Charset));
        assert_eq!(validate_resident_id("11010519490231002X"), Err(IdNumberError::BirthDate));
        assert_eq!(validate_resident_id("１1010519491231002X"), Err(IdNumberError::Length));
    }

    #[test]
    fn uscc_valid_and_invalid() {
        assert_eq!(validate_uscc("91350100M000100Y43"), Ok("91350100M000100Y43".into()));
        assert_eq!(validate_uscc("91350100m000100y43"), Ok("91350100M000100Y43".into()));
        assert_eq!(validate_uscc("91350100M000100Y44"), Err(IdNumberError::Checksum));
        assert_eq!(validate_uscc("91350100M000100Y4"), Err(IdNumberError::Length));
        assert_eq!(validate_uscc("91350100I000100Y43"), Err(IdNumberError::Charset));
        assert_eq!(validate_uscc("91A50100M000100Y43"), Err(IdNumberError::Charset));
    }

    #[test]
    fn masking() {
        assert_eq!(mask_id("11010519491231002X"), "110*************2X");
        assert_eq!(mask_mobile("13812345678"), "138****5678");
        assert!(validate_mobile("13812345678"));
        assert!(!validate_mobile("12812345678"));
    }
}
