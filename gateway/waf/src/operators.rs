//! Operators (`@rx`, `@pm`, `@detectSQLi`, ...): compiled once at load time
//! and evaluated against transformed values on the request path.

use crate::error::{LoadError, Loc};
use crate::macros::Macro;
use crate::parser::RawOperator;
use crate::prefilter;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use std::borrow::Cow;
use std::net::IpAddr;
use std::path::Path;

/// An argument that may contain macros.
#[derive(Debug, Clone)]
pub enum Arg {
    /// Fixed text.
    Lit(Vec<u8>),
    /// Needs expansion per evaluation.
    Macro(Macro),
}

/// A compiled operator.
#[derive(Debug, Clone)]
pub enum Op {
    /// `@rx`
    Rx(Regex),
    /// `@pm` / `@pmFromFile` (case-insensitive phrase match).
    Pm(Phrases),
    /// Numeric comparisons.
    Eq(Arg),
    /// `@ge`
    Ge(Arg),
    /// `@gt`
    Gt(Arg),
    /// `@le`
    Le(Arg),
    /// `@lt`
    Lt(Arg),
    /// `@streq`
    StrEq(Arg),
    /// `@contains`
    Contains(Arg),
    /// `@containsWord`
    ContainsWord(Arg),
    /// `@beginsWith`
    BeginsWith(Arg),
    /// `@endsWith`
    EndsWith(Arg),
    /// `@within`
    Within(Arg),
    /// `@detectSQLi`
    DetectSqli,
    /// `@detectXSS`
    DetectXss,
    /// `@ipMatch`
    IpMatch(Vec<(IpAddr, u8)>),
    /// `@validateByteRange` (allowed bytes table).
    ValidateByteRange(Box<[bool; 256]>),
    /// `@validateUrlEncoding`
    ValidateUrlEncoding,
    /// `@validateUtf8Encoding`
    ValidateUtf8,
    /// `@unconditionalMatch`
    Unconditional,
    /// `@noMatch`
    NoMatch,
}

/// A compiled phrase list (`@pm`, `@pmFromFile`).
#[derive(Debug, Clone)]
pub struct Phrases {
    /// Case-insensitive automaton over the phrases.
    pub ac: AhoCorasick,
    /// The phrases, lower-cased, when there are at most [`prefilter::MAX_PHRASES`] of them
    /// (the lists the shared prefilter takes); empty for longer lists, which keep only `ac`.
    pub short_list: Vec<Vec<u8>>,
}

/// `Some(arg)` for the operators that take a text argument (`@eq`, `@within`, ...), else `None`.
macro_rules! text_arg {
    ($op:expr) => {
        match $op {
            Op::Eq(a)
            | Op::Ge(a)
            | Op::Gt(a)
            | Op::Le(a)
            | Op::Lt(a)
            | Op::StrEq(a)
            | Op::Contains(a)
            | Op::ContainsWord(a)
            | Op::BeginsWith(a)
            | Op::EndsWith(a)
            | Op::Within(a) => Some(a),
            _ => None,
        }
    };
}

impl Op {
    /// The text argument of the operators that take one (`@eq`, `@within`, ...).
    pub fn arg(&self) -> Option<&Arg> {
        text_arg!(self)
    }

    /// Like [`Self::arg`], for resolving its macro when the engine is built.
    pub fn arg_mut(&mut self) -> Option<&mut Arg> {
        text_arg!(self)
    }
}

/// Operator plus negation.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The operator.
    pub op: Op,
    /// `!@...`
    pub negated: bool,
    /// Name as written (for logs).
    pub name: String,
    /// Argument as written (for logs).
    pub arg_text: String,
}

fn arg(s: &str, loc: &Loc) -> Result<Arg, LoadError> {
    let m = Macro::parse(s, loc)?;
    Ok(match m.as_literal() {
        Some(l) => Arg::Lit(l),
        None => Arg::Macro(m),
    })
}

/// Compiles a regex with the engine's standard flags (`(?s-u)`, big size limits).
pub fn compile_regex(pat: &str, loc: &Loc) -> Result<Regex, LoadError> {
    RegexBuilder::new(&regex_source(pat)).size_limit(64 << 20).dfa_size_limit(64 << 20).build().map_err(|e| loc.regex(e.to_string()))
}

/// The exact pattern text compiled for a SecLang regex.
pub fn regex_source(pat: &str) -> String {
    format!("(?s-u){}", normalize_hex_escapes(pat))
}

/// Rewrites `\x{HH}` (at most two hex digits) to `\xHH`, which byte-mode regexes accept.
fn normalize_hex_escapes(pat: &str) -> Cow<'_, str> {
    if !pat.contains("\\x{") {
        return Cow::Borrowed(pat);
    }
    let b = pat.as_bytes();
    let mut out = String::with_capacity(pat.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1] == b'x' && b.get(i + 2) == Some(&b'{') {
                if let Some(close) = pat[i + 3..].find('}') {
                    let hex = &pat[i + 3..i + 3 + close];
                    if !hex.is_empty() && hex.len() <= 2 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                        out.push_str(&format!("\\x{hex:0>2}"));
                        i += 4 + close;
                        continue;
                    }
                }
            }
            out.push_str(&pat[i..i + 2]);
            i += 2;
            continue;
        }
        let ch = pat[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8().max(1);
    }
    Cow::Owned(out)
}

fn pm(words: Vec<String>, loc: &Loc) -> Result<Phrases, LoadError> {
    let short_list = match words.len() {
        1..=prefilter::MAX_PHRASES => words.iter().map(|w| w.to_ascii_lowercase().into_bytes()).collect(),
        _ => Vec::new(),
    };
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(words)
        .map_err(|e| loc.syntax(format!("pm: {e}")))?;
    Ok(Phrases { ac, short_list })
}

fn parse_ip(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = match s.split_once('/') {
        Some((a, b)) => (a, b.parse::<u8>().ok()?),
        None => (s, 255),
    };
    let ip: IpAddr = ip.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    Some((ip, bits.min(max)))
}

/// Compiles a raw operator. `base` is the directory of the config file (for `@pmFromFile`).
pub fn compile(raw: &RawOperator, base: &Path, loc: &Loc) -> Result<Operator, LoadError> {
    let a = raw.arg.as_str();
    let op = match raw.name.to_ascii_lowercase().as_str() {
        "rx" => Op::Rx(compile_regex(a, loc)?),
        "pm" => Op::Pm(pm(a.split_whitespace().map(str::to_string).collect(), loc)?),
        "pmfromfile" | "pmf" => {
            let mut words = Vec::new();
            for f in a.split_whitespace() {
                let p = base.join(f);
                let text = std::fs::read_to_string(&p).map_err(|source| LoadError::Io { path: p.display().to_string(), source })?;
                for l in text.lines() {
                    let l = l.trim();
                    if !l.is_empty() && !l.starts_with('#') {
                        words.push(l.to_string());
                    }
                }
            }
            Op::Pm(pm(words, loc)?)
        }
        "eq" => Op::Eq(arg(a, loc)?),
        "ge" => Op::Ge(arg(a, loc)?),
        "gt" => Op::Gt(arg(a, loc)?),
        "le" => Op::Le(arg(a, loc)?),
        "lt" => Op::Lt(arg(a, loc)?),
        "streq" => Op::StrEq(arg(a, loc)?),
        "contains" => Op::Contains(arg(a, loc)?),
        "containsword" => Op::ContainsWord(arg(a, loc)?),
        "beginswith" => Op::BeginsWith(arg(a, loc)?),
        "endswith" => Op::EndsWith(arg(a, loc)?),
        "within" => Op::Within(arg(a, loc)?),
        "detectsqli" => Op::DetectSqli,
        "detectxss" => Op::DetectXss,
        "ipmatch" => {
            let mut v = Vec::new();
            for p in a.split([',', ' ']).filter(|s| !s.is_empty()) {
                v.push(parse_ip(p).ok_or_else(|| loc.syntax(format!("bad ipMatch entry '{p}'")))?);
            }
            Op::IpMatch(v)
        }
        "validatebyterange" => {
            let mut table = Box::new([false; 256]);
            for part in a.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (lo, hi) = match part.split_once('-') {
                    Some((l, h)) => (l.trim(), h.trim()),
                    None => (part, part),
                };
                let lo: u8 = lo.parse().map_err(|_| loc.syntax(format!("bad byte range '{part}'")))?;
                let hi: u8 = hi.parse().map_err(|_| loc.syntax(format!("bad byte range '{part}'")))?;
                for b in lo..=hi {
                    table[usize::from(b)] = true;
                }
            }
            Op::ValidateByteRange(table)
        }
        "validateurlencoding" => Op::ValidateUrlEncoding,
        "validateutf8encoding" => Op::ValidateUtf8,
        "unconditionalmatch" => Op::Unconditional,
        "nomatch" => Op::NoMatch,
        _ => return Err(loc.unsupported("operator", format!("@{}", raw.name))),
    };
    Ok(Operator { op, negated: raw.negated, name: raw.name.clone(), arg_text: raw.arg.clone() })
}

/// Parses a number the way ModSecurity's `atoi` does (leading digits, else 0).
pub fn atoi(v: &[u8]) -> i64 {
    let s = v.trim_ascii();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            break;
        }
        n = n.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

fn ip_in(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let bits = u32::from(bits.min(32));
            if bits == 0 {
                return true;
            }
            let mask = u32::MAX << (32 - bits);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let bits = u32::from(bits.min(128));
            if bits == 0 {
                return true;
            }
            let mask = u128::MAX << (128 - bits);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn invalid_url_encoding(v: &[u8]) -> bool {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            if i + 2 >= v.len() || !v[i + 1].is_ascii_hexdigit() || !v[i + 2].is_ascii_hexdigit() {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
}

impl Operator {
    /// Literals one of which (ASCII case-insensitively) every value the operator matches must
    /// contain, for the shared prefilter: those a regex requires (see
    /// [`prefilter::necessary_literals`]) or the phrases of a short phrase list. Negated
    /// operators match values without them and have none.
    pub fn necessary_literals(&self) -> Option<Vec<Vec<u8>>> {
        match &self.op {
            _ if self.negated => None,
            Op::Rx(_) => prefilter::necessary_literals(&regex_source(&self.arg_text)),
            Op::Pm(p) if !p.short_list.is_empty() => Some(p.short_list.clone()),
            _ => None,
        }
    }

    /// The operator's argument when it is a macro (`@within %{tx.allowed_methods}`): the caller
    /// expands it once per rule evaluation and passes the result to [`Self::matches`].
    pub fn macro_arg(&self) -> Option<&Macro> {
        match self.op.arg()? {
            Arg::Macro(m) => Some(m),
            Arg::Lit(_) => None,
        }
    }

    /// Evaluates the operator (ignoring negation). `expanded` is the expansion of
    /// [`Self::macro_arg`] (an empty argument if not given). When `captures` is given,
    /// it receives TX:0..9 values.
    pub fn matches(&self, input: &[u8], expanded: Option<&[u8]>, captures: Option<&mut Vec<Vec<u8>>>) -> bool {
        fn arg_value<'a>(a: &'a Arg, expanded: Option<&'a [u8]>) -> &'a [u8] {
            match a {
                Arg::Lit(l) => l,
                Arg::Macro(_) => expanded.unwrap_or_default(),
            }
        }
        let val = |a| arg_value(a, expanded);
        match &self.op {
            Op::Rx(re) => match captures {
                // `is_match` first: it allocates nothing and most inputs do not match.
                Some(_) if !re.is_match(input) => false,
                // Without groups, TX:0 is the whole match: `find` needs no capture engine.
                Some(caps) if re.captures_len() == 1 => match re.find(input) {
                    Some(m) => {
                        caps.clear();
                        caps.push(m.as_bytes().to_vec());
                        true
                    }
                    None => false,
                },
                Some(caps) => match re.captures(input) {
                    Some(c) => {
                        caps.clear();
                        for i in 0..c.len().min(10) {
                            caps.push(c.get(i).map(|m| m.as_bytes().to_vec()).unwrap_or_default());
                        }
                        true
                    }
                    None => false,
                },
                None => re.is_match(input),
            },
            Op::Pm(p) => match p.ac.find(input) {
                Some(m) => {
                    if let Some(caps) = captures {
                        caps.clear();
                        caps.push(input[m.start()..m.end()].to_vec());
                    }
                    true
                }
                None => false,
            },
            Op::Eq(a) => atoi(input) == atoi(val(a)),
            Op::Ge(a) => atoi(input) >= atoi(val(a)),
            Op::Gt(a) => atoi(input) > atoi(val(a)),
            Op::Le(a) => atoi(input) <= atoi(val(a)),
            Op::Lt(a) => atoi(input) < atoi(val(a)),
            Op::StrEq(a) => input == val(a),
            Op::Contains(a) => memchr::memmem::find(input, val(a)).is_some(),
            Op::ContainsWord(a) => {
                let w = val(a);
                if w.is_empty() {
                    return true;
                }
                memchr::memmem::find_iter(input, w).any(|p| {
                    let before = p == 0 || !input[p - 1].is_ascii_alphanumeric();
                    let after = input.get(p + w.len()).is_none_or(|c| !c.is_ascii_alphanumeric());
                    before && after
                })
            }
            Op::BeginsWith(a) => input.starts_with(val(a)),
            Op::EndsWith(a) => input.ends_with(val(a)),
            Op::Within(a) => {
                let hay = val(a);
                input.is_empty() || memchr::memmem::find(hay, input).is_some()
            }
            Op::DetectSqli => match crate::injection::detect_sqli(input) {
                Some(fingerprint) => {
                    if let Some(caps) = captures {
                        caps.clear();
                        caps.push(fingerprint.into_bytes());
                    }
                    true
                }
                None => false,
            },
            Op::DetectXss => crate::injection::detect_xss(input),
            Op::IpMatch(nets) => match std::str::from_utf8(input).ok().and_then(|s| s.trim().parse::<IpAddr>().ok()) {
                Some(ip) => nets.iter().any(|(n, b)| ip_in(ip, *n, *b)),
                None => false,
            },
            Op::ValidateByteRange(t) => input.iter().any(|b| !t[usize::from(*b)]),
            Op::ValidateUrlEncoding => invalid_url_encoding(input),
            Op::ValidateUtf8 => std::str::from_utf8(input).is_err(),
            Op::Unconditional => true,
            Op::NoMatch => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_operator;
    use std::sync::Arc;

    fn op(s: &str) -> Operator {
        let loc = Loc { file: Arc::from("t"), line: 1 };
        compile(&parse_operator(s), Path::new("."), &loc).unwrap()
    }

    fn m(s: &str, input: &str) -> bool {
        op(s).matches(input.as_bytes(), None, None)
    }

    #[test]
    fn basic_ops() {
        assert!(m("@rx ^a.c$", "abc"));
        assert!(m("@rx a.c", "a\nc"));
        assert!(!m("@rx ^b", "abc"));
        assert!(m("@pm foo bar", "xxBARxx"));
        assert!(m("@eq 5", "5"));
        assert!(m("@lt 10", "9"));
        assert!(m("@ge 1", "abc") == (0 >= 1));
        assert!(m("@within GET POST", "GET"));
        assert!(!m("@within GET POST", "PUT"));
        assert!(m("@streq x", "x"));
        assert!(m("@beginsWith ab", "abc"));
        assert!(m("@endsWith bc", "abc"));
        assert!(m("@contains b", "abc"));
        assert!(m("@ipMatch 10.0.0.0/8,::1", "10.2.3.4"));
        assert!(!m("@ipMatch 10.0.0.0/8", "11.2.3.4"));
        assert!(m("@validateByteRange 32-126", "a\u{1}"));
        assert!(!m("@validateByteRange 32-126", "abc"));
        assert!(m("@validateUrlEncoding", "a%zz"));
        assert!(!m("@validateUrlEncoding", "a%20"));
        assert!(m("@detectSQLi", "1' OR '1'='1"));
        assert!(!m("@detectSQLi", "hello world"));
        assert!(m("@detectXSS", "<script>alert(1)</script>"));
        assert!(!m("@detectXSS", "hello"));
        assert!(m("@unconditionalMatch", ""));
    }

    #[test]
    fn rx_capture() {
        let mut caps = Vec::new();
        assert!(op("@rx (a)(b)").matches(b"xab", None, Some(&mut caps)));
        assert_eq!(caps, vec![b"ab".to_vec(), b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn rx_capture_without_groups_is_the_whole_match() {
        let mut caps = vec![b"stale".to_vec(), b"x".to_vec()];
        assert!(op("@rx b+").matches(b"abbbc", None, Some(&mut caps)));
        assert_eq!(caps, vec![b"bbb".to_vec()]);
        assert!(!op("@rx z").matches(b"abc", None, Some(&mut caps)));
    }

    #[test]
    fn unknown_operator_is_error() {
        let loc = Loc { file: Arc::from("t"), line: 3 };
        let e = compile(&parse_operator("@nope x"), Path::new("."), &loc).unwrap_err().to_string();
        assert!(e.contains("t:3"), "{e}");
    }

    #[test]
    fn short_phrase_lists_give_the_prefilter_their_phrases() {
        // Whenever the phrase automaton matches, the prefilter must find one of the phrases
        // (ASCII case-insensitively, also one-byte phrases): otherwise it would skip a match.
        let short = op("@pm /etc/passwd .HTaccess x <? \u{e9}t\u{e9} Select");
        let lits = short.necessary_literals().unwrap();
        let mut b = crate::prefilter::PrefilterBuilder::default();
        let bit = b.add(&lits);
        let other = b.add(&[b"unrelated".to_vec()]);
        let pf = b.build().unwrap();
        let inputs = [
            "",
            "/ETC/PASSWD",
            "a.htAccess",
            "X",
            "<?php",
            "\u{c9}T\u{c9}",
            "\u{e9}t\u{e9}",
            "SeLeCt 1",
            "hello",
            "/etc/pass",
            "unrelated",
        ];
        for input in inputs {
            let on = pf.scan(input.as_bytes())[0] & (1 << bit) != 0;
            assert!(!short.matches(input.as_bytes(), None, None) || on, "{input:?}");
            assert_eq!(on, lits.iter().any(|l| input.to_ascii_lowercase().as_bytes().windows(l.len()).any(|w| w == &l[..])), "{input:?}");
        }
        assert!(pf.scan(b"unrelated")[0] & (1 << other) != 0);
        // Longer lists, negated lists and other operators give none.
        let words: Vec<String> = (0..=crate::prefilter::MAX_PHRASES).map(|i| format!("w{i}")).collect();
        assert!(op(&format!("@pm {}", words.join(" "))).necessary_literals().is_none());
        assert!(op("!@pm a b").necessary_literals().is_none());
        assert!(op("@streq a").necessary_literals().is_none());
        assert!(op("@rx ^abc").necessary_literals().is_some());
    }
}
