//! Masking for logs: broad on purpose (no check digits), so that nothing that looks like an
//! identity number (18 characters: 17 digits and a digit or X) or a mainland mobile number
//! (11 digits, 1[3-9]) is ever written in clear.

use std::borrow::Cow;

/// Masks identity and mobile numbers found in `s`: `110101199003071234` → `110101********1234`,
/// `13812345678` → `138****5678`.
pub fn mask(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    let mut out: Option<String> = None;
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && b[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let mut end = i;
        let digits = end - start;
        if digits == 17 && i < b.len() && (b[i] == b'X' || b[i] == b'x') {
            end += 1;
            i += 1;
        }
        let len = end - start;
        let boundary = end == b.len() || !b[end].is_ascii_alphanumeric();
        let (keep_head, keep_tail) = match len {
            18 if boundary => (6, 4),
            11 if boundary && b[start] == b'1' && (b'3'..=b'9').contains(&b[start + 1]) => (3, 4),
            _ => continue,
        };
        let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
        o.push_str(&s[copied..start + keep_head]);
        o.extend(std::iter::repeat_n('*', len - keep_head - keep_tail));
        copied = end - keep_tail;
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_identity_and_mobile_numbers() {
        assert_eq!(mask("/q?id=11010119900307123X&x=1"), "/q?id=110101********123X&x=1");
        assert_eq!(mask("/user/110101199003071234"), "/user/110101********1234");
        assert_eq!(mask("phone=13812345678"), "phone=138****5678");
        assert_eq!(mask("13812345678,15900001111"), "138****5678,159****1111");
    }

    #[test]
    fn leaves_other_numbers_alone() {
        for s in ["/orders/12345", "/a/123456789012345678901", "ts=12812345678", "/v1/abc13812345678"] {
            assert!(matches!(mask(s), Cow::Borrowed(_)), "{s}");
        }
    }
}
