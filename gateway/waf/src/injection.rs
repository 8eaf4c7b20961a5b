//! `@detectSQLi` and `@detectXSS`: libinjection (the `libinjectionrs` port),
//! with exits for values that provably cannot be flagged, so that ordinary
//! values (names, words, numbers, text without markup) skip the tokenizers.
//!
//! * **XSS**: libinjection reports XSS only for a tag, doctype or comment
//!   token (all begin at a `<`) or for the value of a dangerous attribute
//!   (an attribute value token follows an attribute name only after a `=`).
//!   The quoted contexts start with a value token, but no attribute name comes
//!   before it, so it is never judged. Without `<` and `=` nothing can match.
//! * **SQLi**: a value that is one SQL word (ASCII letters, digits, `_` and
//!   non-ASCII bytes, starting with a letter, `_` or a non-ASCII byte) or one
//!   run of digits, with nothing but white space around it, is a single token
//!   in every context libinjection tries (it has no quote, so only the unquoted
//!   context runs, and no comment, so no MySQL re-parse); a value of white
//!   space alone has no token at all. White space is what the tokenizer skips
//!   where a token could start: bytes up to `0x20`, `0x7f` and `0xa0`. A
//!   non-ASCII byte other than `0xa0` starts and continues a word, which is
//!   then a bareword (keywords are ASCII). A one-token fingerprint is only
//!   blacklisted when it is `X` (an "evil" comment or brace construct), which
//!   such a value cannot produce, and an empty one never is. This covers the
//!   decoded forms of non-Latin text (`t:utf8toUnicode,t:urlDecodeUni` turn
//!   Chinese characters into one byte each, some of them white space).
//!
//! The library's fingerprint is computed once (its `detect_sqli` computes it
//! again after detection, for every value).

use libinjectionrs::{SqliFlags, SqliState};

/// Bytes libinjection's SQL tokenizer skips where a token could start.
fn sql_white(c: u8) -> bool {
    c <= b' ' || c == 0x7f || c == 0xa0
}

/// Non-ASCII bytes, which libinjection reads as word characters (except `0xa0`, white space).
fn non_ascii_word_byte(c: u8) -> bool {
    c >= 0x80 && c != 0xa0
}

/// Whether `input` is at most one SQL word or number between white space (see the module
/// documentation).
fn at_most_one_sql_token(input: &[u8]) -> bool {
    let Some(start) = input.iter().position(|c| !sql_white(*c)) else { return true };
    let end = input.iter().rposition(|c| !sql_white(*c)).map_or(input.len(), |e| e + 1);
    let core = &input[start..end];
    let word_byte = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_' || non_ascii_word_byte(*c);
    match core.first() {
        Some(c) if c.is_ascii_digit() => core.iter().all(u8::is_ascii_digit),
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' || non_ascii_word_byte(*c) => core.iter().all(word_byte),
        _ => false,
    }
}

/// libinjection's SQLi verdict; on a hit, the fingerprint (e.g. `s&sos`).
pub fn detect_sqli(input: &[u8]) -> Option<String> {
    if at_most_one_sql_token(input) {
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

    /// Deterministic pseudo-random inputs of 1..=12 bytes over `alphabet`.
    fn random_inputs(alphabet: &[u8], n: usize, out: &mut Vec<Vec<u8>>) {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..n {
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
    }

    /// Known cases, pseudo-random inputs over an alphabet rich in SQL/HTML syntax, and over
    /// word characters and white space alone (where single tokens are common).
    fn corpus() -> Vec<Vec<u8>> {
        let alphabet: &[u8] = b"aAbBeEnNqQuUxX_019 '\"`<>=/*-#;(){}[].,:!&|^%@$~+\\\t\nselctunoORdSLECT\x00\x06\x7f\x80\xa0\xde\xe5\xff";
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
            "张三",
            "%u5f20%u4e09",
            " \t",
            "m\u{de}",
            " select ",
            "\u{a0}1\u{a0}",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain(
            [&b"m\xde"[..], b"\x84\xa6\x9e\x06", b"\xa0union\x7f", b"\x06select\x06", b"ab\x06cd", b"\xa01\xa0", b"\x7f"]
                .map(<[u8]>::to_vec),
        )
        .collect();
        random_inputs(alphabet, 20_000, &mut out);
        random_inputs(b"aSeLcTnxX_09 \t\x00\x06\x7f\x80\xa0\xde\xe5\xff", 20_000, &mut out);
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
        let one: [&[u8]; 16] = [
            b"zh",
            b"lang",
            b"session",
            b"select",
            b"union",
            b"_utf8",
            b"A2024",
            b"13800138000",
            b"0",
            b"",
            b" \t",
            b" select\n",
            b"\xa0\x7f42\x00",
            "杭州".as_bytes(),
            "é".as_bytes(),
            b"\x84\xa6\x9e\x06",
        ];
        for w in one {
            assert!(at_most_one_sql_token(w), "{w:?}");
            assert!(!libinjectionrs::detect_sqli(w).is_injection(), "{w:?}");
        }
        // "张三" holds a 0xa0 byte (white space to libinjection): two words.
        let more: [&[u8]; 11] =
            [b"1union", b"A2024-00017", b"a b", b"a.b", b"x'", b"0x41 ", b"a\x06b", b"a\xa0b", b"%u5f20", b"1\xde", "张三".as_bytes()];
        for w in more {
            assert!(!at_most_one_sql_token(w), "{w:?}");
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

    /// The patched keyword lookup (`vendor/libinjectionrs/PATCHES.md`) gives every entry of the
    /// library's table its type in any letter case, and nothing to other words.
    #[test]
    fn keyword_lookup_matches_the_table() {
        use libinjectionrs::sqli::sqli_data::{lookup_word, SQL_KEYWORDS};
        // The table's type bytes that `lookup_word` maps to a token type (others: bareword).
        let typed = b"kfUETto&v1ABF";
        for k in SQL_KEYWORDS {
            let want = if typed.contains(&k.token_type) { char::from(k.token_type) } else { 'n' };
            let mixed: String = k.word.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_lowercase() } else { c }).collect();
            for w in [k.word.to_string(), k.word.to_ascii_lowercase(), mixed] {
                assert_eq!(lookup_word(&w).to_char(), want, "{w:?}");
            }
        }
        let long = "SELECT".repeat(12);
        for w in ["MOZILLA", "zh", "", "SEL ECT", "SELECTX", long.as_str(), "杭州"] {
            assert_eq!(lookup_word(w).to_char(), 'n', "{w:?}");
        }
        assert_eq!(lookup_word("union").to_char(), 'U');
    }
}
