//! `@detectSQLi` and `@detectXSS`: libinjection (the `libinjectionrs` port),
//! with exits for values that provably cannot be flagged, so that ordinary
//! values (names, words, numbers, text without markup) skip the tokenizers.
//!
//! * **XSS**: libinjection reports XSS only for a tag, doctype or comment
//!   token (all begin at a `<`) or for the value of a dangerous attribute
//!   (an attribute value token follows an attribute name only after a `=`).
//!   The quoted contexts start with a value token, but no attribute name comes
//!   before it, so it is never judged. Without `<` and `=` nothing can match.
//! * **SQLi**: a value that is one SQL word (ASCII letters, digits and `_`,
//!   starting with a letter or `_`) or one run of digits is a single token in
//!   every context libinjection tries (it has no quote, so only the unquoted
//!   context runs, and no comment, so no MySQL re-parse). A one-token
//!   fingerprint is only blacklisted when it is `X` (an "evil" comment or
//!   brace construct), which such a value cannot produce.
//!
//! The library's fingerprint is computed once (its `detect_sqli` computes it
//! again after detection, for every value).

use libinjectionrs::{SqliFlags, SqliState};

/// Whether `input` is one SQL word or number (see the module documentation).
fn single_sql_token(input: &[u8]) -> bool {
    match input.first() {
        Some(c) if c.is_ascii_digit() => input.iter().all(u8::is_ascii_digit),
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => input.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_'),
        _ => false,
    }
}

/// libinjection's SQLi verdict; on a hit, the fingerprint (e.g. `s&sos`).
pub fn detect_sqli(input: &[u8]) -> Option<String> {
    if input.is_empty() || single_sql_token(input) {
        return None;
    }
    let mut state = SqliState::new(input, SqliFlags::FLAG_NONE);
    if !state.detect() {
        return None;
    }
    Some(state.get_fingerprint().as_str().to_string())
}

/// libinjection's XSS verdict.
pub fn detect_xss(input: &[u8]) -> bool {
    memchr::memchr2(b'<', b'=', input).is_some() && libinjectionrs::detect_xss(input).is_injection()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random inputs over an alphabet rich in SQL/HTML syntax.
    fn corpus() -> Vec<Vec<u8>> {
        let alphabet: &[u8] = b"aAbBeEnNqQuUxX_019 '\"`<>=/*-#;(){}[].,:!&|^%@$~+\\\t\nselctunoORdSLECT";
        let mut out: Vec<Vec<u8>> = [
            "1' OR '1'='1",
            "1 union select 1",
            "admin'--",
            "<script>alert(1)</script>",
            "x onerror=alert(1)",
            "\" onmouseover=alert(1) x=\"",
            "javascript:alert(1)",
            "<!--[if IE]>",
            "select",
            "union",
            "1union",
            "_utf8",
            "0x41",
            "13800138000",
            "zh",
            "A2024-00017",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            "style=x",
            "a href=javascript:x",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize + 1;
            let mut v = Vec::with_capacity(len);
            let mut s = seed;
            for _ in 0..len {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                v.push(alphabet[(s >> 33) as usize % alphabet.len()]);
            }
            out.push(v);
        }
        out
    }

    #[test]
    fn same_verdicts_as_the_library() {
        for v in corpus() {
            let lib = libinjectionrs::detect_sqli(&v);
            let ours = detect_sqli(&v);
            assert_eq!(ours.is_some(), lib.is_injection(), "sqli {:?}", String::from_utf8_lossy(&v));
            if let (Some(fp), Some(lfp)) = (ours, lib.fingerprint) {
                assert_eq!(fp, lfp.as_str(), "{:?}", String::from_utf8_lossy(&v));
            }
            assert_eq!(detect_xss(&v), libinjectionrs::detect_xss(&v).is_injection(), "xss {:?}", String::from_utf8_lossy(&v));
        }
    }

    #[test]
    fn words_and_numbers_are_single_tokens() {
        for w in ["zh", "lang", "session", "select", "union", "_utf8", "A2024", "13800138000", "0"] {
            assert!(single_sql_token(w.as_bytes()), "{w}");
            assert!(!libinjectionrs::detect_sqli(w.as_bytes()).is_injection(), "{w}");
        }
        for w in ["1union", "A2024-00017", "a b", "a.b", "x'", "", "0x41 ", "é"] {
            assert!(!single_sql_token(w.as_bytes()), "{w}");
        }
    }

    #[test]
    fn verdicts() {
        assert_eq!(detect_sqli(b"1' OR '1'='1").as_deref(), Some("s&sos"));
        assert!(detect_sqli(b"hello world").is_none());
        assert!(detect_xss(b"<script>alert(1)</script>"));
        assert!(detect_xss(b"x onerror=alert(1)"));
        assert!(!detect_xss(b"hello"));
    }
}
