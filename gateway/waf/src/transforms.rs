//! Transformation functions (`t:...`), implemented with ModSecurity v2
//! semantics. All functions are total: they never panic on any input.

use base64::Engine as _;
use sha1::Digest;

/// Declares [`Transform`], [`Transform::ALL`] and [`Transform::from_name`] from one table of
/// variants and SecLang names (matched without regard to case), so they cannot disagree.
macro_rules! transforms {
    ($($variant:ident => $name:literal $(| $alias:literal)*,)*) => {
        /// A transformation step.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Transform {
            $(#[doc = concat!("`t:", $name, "`")] $variant,)*
        }

        impl Transform {
            /// Every transformation, in declaration order (bit `t as u32` of a [`ChangeSet`]).
            pub const ALL: &'static [Transform] = &[$(Transform::$variant,)*];

            /// Looks a transformation up by its SecLang name (case-insensitive).
            /// `none` is handled by the caller.
            pub fn from_name(name: &str) -> Option<Transform> {
                $(if name.eq_ignore_ascii_case($name) $(|| name.eq_ignore_ascii_case($alias))* {
                    return Some(Transform::$variant);
                })*
                None
            }
        }
    };
}

transforms! {
    Lowercase => "lowercase",
    Uppercase => "uppercase",
    UrlDecode => "urlDecode",
    UrlDecodeUni => "urlDecodeUni",
    HtmlEntityDecode => "htmlEntityDecode",
    JsDecode => "jsDecode",
    CssDecode => "cssDecode",
    CmdLine => "cmdLine",
    CompressWhitespace => "compressWhitespace",
    RemoveWhitespace => "removeWhitespace",
    RemoveNulls => "removeNulls",
    ReplaceNulls => "replaceNulls",
    ReplaceComments => "replaceComments",
    RemoveCommentsChar => "removeCommentsChar",
    RemoveComments => "removeComments",
    EscapeSeqDecode => "escapeSeqDecode",
    HexEncode => "hexEncode",
    HexDecode => "hexDecode",
    Base64Decode => "base64Decode",
    Base64DecodeExt => "base64DecodeExt",
    Base64Encode => "base64Encode",
    Length => "length",
    Sha1 => "sha1",
    NormalizePath => "normalizePath" | "normalisePath",
    NormalizePathWin => "normalizePathWin" | "normalisePathWin",
    Utf8ToUnicode => "utf8toUnicode",
    Trim => "trim",
    TrimLeft => "trimLeft",
    TrimRight => "trimRight",
    UrlEncode => "urlEncode",
}

// Every transformation has a bit in a `ChangeSet`.
const _: () = assert!(Transform::ALL.len() <= ChangeSet::BITS as usize);

impl Transform {
    /// Applies the transformation, or returns `None` when the output would equal
    /// the input (checked with a cheap scan, so unchanged values are not copied).
    pub fn apply_changed(self, v: &[u8]) -> Option<Vec<u8>> {
        if self.is_identity_on(v) {
            None
        } else {
            Some(self.apply(v))
        }
    }

    /// Conservative test: `true` only when `apply(v) == v` is certain.
    pub fn is_identity_on(self, v: &[u8]) -> bool {
        use Transform::*;
        match self {
            Lowercase => !v.iter().any(u8::is_ascii_uppercase),
            Uppercase => !v.iter().any(u8::is_ascii_lowercase),
            UrlDecode | UrlDecodeUni => memchr::memchr2(b'%', b'+', v).is_none(),
            HtmlEntityDecode => memchr::memchr(b'&', v).is_none(),
            JsDecode | CssDecode | EscapeSeqDecode => memchr::memchr(b'\\', v).is_none(),
            CmdLine => !v.iter().any(|c| {
                c.is_ascii_uppercase()
                    || matches!(c, b'"' | b'\'' | b'\\' | b'^' | b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
            }),
            CompressWhitespace => {
                let mut prev_space = false;
                for &c in v {
                    let sp = is_space(c);
                    if sp && (c != b' ' || prev_space) {
                        return false;
                    }
                    prev_space = sp;
                }
                true
            }
            RemoveWhitespace => !v.iter().any(|c| is_space(*c)),
            RemoveNulls | ReplaceNulls => memchr::memchr(0, v).is_none(),
            ReplaceComments => memchr::memmem::find(v, b"/*").is_none(),
            RemoveComments => memchr::memchr(b'#', v).is_none() && !has_any(v, &[b"/*", b"--", b"<!--"]),
            RemoveCommentsChar => memchr::memchr(b'#', v).is_none() && !has_any(v, &[b"/*", b"*/", b"--"]),
            NormalizePath => path_is_normal(v, false),
            NormalizePathWin => path_is_normal(v, true),
            Utf8ToUnicode => v.is_ascii(),
            Trim => v.first().is_none_or(|c| !is_space(*c)) && v.last().is_none_or(|c| !is_space(*c)),
            TrimLeft => v.first().is_none_or(|c| !is_space(*c)),
            TrimRight => v.last().is_none_or(|c| !is_space(*c)),
            HexEncode | HexDecode | Base64Decode | Base64DecodeExt | Base64Encode | Length | Sha1 | UrlEncode => false,
        }
    }

    /// Applies the transformation.
    pub fn apply(self, v: &[u8]) -> Vec<u8> {
        use Transform::*;
        match self {
            Lowercase => v.to_ascii_lowercase(),
            Uppercase => v.to_ascii_uppercase(),
            UrlDecode => url_decode(v, false),
            UrlDecodeUni => url_decode(v, true),
            HtmlEntityDecode => html_entity_decode(v),
            JsDecode => js_decode(v),
            CssDecode => css_decode(v),
            CmdLine => cmd_line(v),
            CompressWhitespace => compress_whitespace(v),
            RemoveWhitespace => v.iter().copied().filter(|c| !is_space(*c)).collect(),
            RemoveNulls => v.iter().copied().filter(|c| *c != 0).collect(),
            ReplaceNulls => v.iter().map(|c| if *c == 0 { b' ' } else { *c }).collect(),
            ReplaceComments => replace_comments(v),
            RemoveCommentsChar => remove_comments_char(v),
            RemoveComments => remove_comments(v),
            EscapeSeqDecode => escape_seq_decode(v),
            HexEncode => hex::encode(v).into_bytes(),
            HexDecode => hex_decode(v),
            Base64Decode => base64_decode(v, false),
            Base64DecodeExt => base64_decode(v, true),
            Base64Encode => base64::engine::general_purpose::STANDARD.encode(v).into_bytes(),
            Length => v.len().to_string().into_bytes(),
            Sha1 => sha1::Sha1::digest(v).to_vec(),
            NormalizePath => normalize_path(v, false),
            NormalizePathWin => normalize_path(v, true),
            Utf8ToUnicode => utf8_to_unicode(v),
            Trim => trim(v, true, true),
            TrimLeft => trim(v, true, false),
            TrimRight => trim(v, false, true),
            UrlEncode => url_encode(v),
        }
    }

    /// This transformation's bit in a [`ChangeSet`].
    pub const fn bit(self) -> ChangeSet {
        1 << (self as u32)
    }

    /// Whether the transformation only changes letter case (so it leaves the
    /// ASCII-case-insensitive prefilter scan of a value as it was).
    pub fn only_changes_case(self) -> bool {
        matches!(self, Transform::Lowercase | Transform::Uppercase)
    }
}

/// A set of transformations (bit `t as u32` for each [`Transform`] `t`).
pub type ChangeSet = u32;

/// The transformations that [`changes`] counts as changing every value: encoders, decoders
/// whose input has no telltale byte, and digests.
pub const ALWAYS_CHANGE: ChangeSet = Transform::HexEncode.bit()
    | Transform::HexDecode.bit()
    | Transform::Base64Decode.bit()
    | Transform::Base64DecodeExt.bit()
    | Transform::Base64Encode.bit()
    | Transform::Length.bit()
    | Transform::Sha1.bit()
    | Transform::UrlEncode.bit();

/// Byte classes for [`changes`]: what a byte is, and (`AFTER_*`) which pair it ends.
mod class {
    pub const UPPER: u32 = 1;
    pub const LOWER: u32 = 1 << 1;
    pub const PCT: u32 = 1 << 2;
    pub const AMP: u32 = 1 << 3;
    pub const BSLASH: u32 = 1 << 4;
    pub const CMD: u32 = 1 << 5;
    pub const NUL: u32 = 1 << 6;
    pub const HASH: u32 = 1 << 7;
    pub const DOT: u32 = 1 << 8;
    pub const SPACE: u32 = 1 << 9;
    /// A space other than `' '` (compressWhitespace turns it into `' '`).
    pub const OTHER_SPACE: u32 = 1 << 10;
    pub const NON_ASCII: u32 = 1 << 11;
    /// `*` ends `/*`.
    pub const AFTER_SLASH_STAR: u32 = 1 << 12;
    /// `/` ends `*/`.
    pub const AFTER_STAR_SLASH: u32 = 1 << 13;
    /// `/` ends `//`.
    pub const AFTER_SLASH_SLASH: u32 = 1 << 14;
    /// `-` ends `--`.
    pub const AFTER_DASH_DASH: u32 = 1 << 15;
    /// A space ends two spaces in a row.
    pub const AFTER_SPACE_SPACE: u32 = 1 << 16;
    /// Every `AFTER_*` bit: these count only after a byte that started their pair.
    pub const PAIRS: u32 = AFTER_SLASH_STAR | AFTER_STAR_SLASH | AFTER_SLASH_SLASH | AFTER_DASH_DASH | AFTER_SPACE_SPACE;
    /// The pairs a byte starts, in the `AFTER_*` bits of the byte that would end them.
    pub const fn starts(c: u8) -> u32 {
        match c {
            b'/' => AFTER_SLASH_STAR | AFTER_SLASH_SLASH,
            b'*' => AFTER_STAR_SLASH,
            b'-' => AFTER_DASH_DASH,
            _ if super::is_space(c) => AFTER_SPACE_SPACE,
            _ => 0,
        }
    }
    /// What byte `c` is, and which pairs it ends.
    pub const fn of(c: u8) -> u32 {
        let mut k = match c {
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'%' | b'+' => PCT,
            b'&' => AMP,
            b'\\' => BSLASH,
            b'"' | b'\'' | b'^' | b',' | b';' => CMD,
            0 => NUL,
            b'#' => HASH,
            b'.' => DOT,
            b'*' => AFTER_SLASH_STAR,
            b'/' => AFTER_STAR_SLASH | AFTER_SLASH_SLASH,
            b'-' => AFTER_DASH_DASH,
            _ => 0,
        };
        if super::is_space(c) {
            k |= SPACE | AFTER_SPACE_SPACE;
            if c != b' ' {
                k |= OTHER_SPACE;
            }
        }
        if c >= 0x80 {
            k |= NON_ASCII;
        }
        k
    }
    /// Per byte: its class ([`of`]) and the pairs it starts ([`starts`]), one lookup.
    pub static TABLE: [(u32, u32); 256] = {
        let mut t = [(0, 0); 256];
        let mut i = 0;
        while i < 256 {
            t[i] = (of(i as u8), starts(i as u8));
            i += 1;
        }
        t
    };
}

/// The transformations that may change `v`, found in one pass over it: the bit of
/// `t` is clear only when [`Transform::is_identity_on`] holds for `t` on `v`. A chain
/// none of whose steps is in the set leaves `v` as it is (each step sees `v`).
/// Each byte is one table lookup ([`class::TABLE`]): its class, and the pairs (`/*`, `*/`,
/// `//`, `--`, two spaces) it ends when the byte before started them.
pub fn changes(v: &[u8]) -> ChangeSet {
    use class::*;
    use Transform::*;
    let mut out: ChangeSet = ALWAYS_CHANGE;
    let (mut seen, mut started) = (0u32, 0u32);
    for &c in v {
        let (k, starts) = TABLE[usize::from(c)];
        seen |= (k & !PAIRS) | (k & started);
        started = starts;
    }
    let has = |bits: u32| seen & bits != 0;
    let (upper, lower, pct, amp, bslash, cmd) = (has(UPPER), has(LOWER), has(PCT), has(AMP), has(BSLASH), has(CMD));
    let (nul, hash, dot, space, non_ascii) = (has(NUL), has(HASH), has(DOT), has(SPACE), has(NON_ASCII));
    let (slash_star, star_slash, slash_slash, dash_dash) =
        (has(AFTER_SLASH_STAR), has(AFTER_STAR_SLASH), has(AFTER_SLASH_SLASH), has(AFTER_DASH_DASH));
    let compress = has(OTHER_SPACE | AFTER_SPACE_SPACE);
    let mut set = |t: Transform, changes: bool| {
        if changes {
            out |= t.bit();
        }
    };
    set(Lowercase, upper);
    set(Uppercase, lower);
    set(UrlDecode, pct);
    set(UrlDecodeUni, pct);
    set(HtmlEntityDecode, amp);
    set(JsDecode, bslash);
    set(CssDecode, bslash);
    set(EscapeSeqDecode, bslash);
    set(CmdLine, upper || cmd || bslash || space);
    set(CompressWhitespace, compress);
    set(RemoveWhitespace, space);
    set(RemoveNulls, nul);
    set(ReplaceNulls, nul);
    set(ReplaceComments, slash_star);
    set(RemoveComments, hash || slash_star || dash_dash);
    set(RemoveCommentsChar, hash || slash_star || star_slash || dash_dash);
    // A path without `.` and `//` has no `.`/`..` segment and no empty inner one.
    let path_changes = |win: bool| (dot || slash_slash || (win && bslash)) && !path_is_normal(v, win);
    set(NormalizePath, path_changes(false));
    set(NormalizePathWin, path_changes(true));
    set(Utf8ToUnicode, non_ascii);
    let (first_sp, last_sp) = (v.first().is_some_and(|c| is_space(*c)), v.last().is_some_and(|c| is_space(*c)));
    set(Trim, first_sp || last_sp);
    set(TrimLeft, first_sp);
    set(TrimRight, last_sp);
    out
}

fn has_any(v: &[u8], needles: &[&[u8]]) -> bool {
    needles.iter().any(|n| memchr::memmem::find(v, n).is_some())
}

/// Whether `normalize_path` leaves `v` as it is: no empty (except leading/trailing),
/// `.` or `..` segments, and no backslash for the Windows variant.
fn path_is_normal(v: &[u8], win: bool) -> bool {
    if win && memchr::memchr(b'\\', v).is_some() {
        return false;
    }
    if v.is_empty() {
        return true;
    }
    let n = v.split(|c| *c == b'/').count();
    v.split(|c| *c == b'/').enumerate().all(|(i, s)| match s {
        b"." | b".." => false,
        b"" => i == 0 || i + 1 == n,
        _ => true,
    })
}

const fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn hex2(a: u8, b: u8) -> Option<u8> {
    Some(hexval(a)? << 4 | hexval(b)?)
}

/// Maps a %u / \u code unit to one byte like ModSecurity (full-width ASCII folds to ASCII).
fn unicode_to_byte(code: u32) -> u8 {
    if (0xff01..=0xff5e).contains(&code) {
        ((code - 0xff01) as u8).wrapping_add(0x21)
    } else {
        (code & 0xff) as u8
    }
}

/// `%XX` (and `%uXXXX` when `uni`) decoding; `+` becomes a space. Invalid escapes are kept.
pub fn url_decode(v: &[u8], uni: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        if c == b'%' {
            if uni && i + 5 < v.len() && (v[i + 1] == b'u' || v[i + 1] == b'U') {
                if let (Some(a), Some(b)) = (hex2(v[i + 2], v[i + 3]), hex2(v[i + 4], v[i + 5])) {
                    out.push(unicode_to_byte(u32::from(a) << 8 | u32::from(b)));
                    i += 6;
                    continue;
                }
            }
            if i + 2 < v.len() {
                if let Some(b) = hex2(v[i + 1], v[i + 2]) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(c);
        } else if c == b'+' {
            out.push(b' ');
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

fn url_encode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &c in v {
        if c == b' ' {
            out.push(b'+');
        } else if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'*') {
            out.push(c);
        } else {
            out.extend_from_slice(format!("%{c:02x}").as_bytes());
        }
    }
    out
}

fn push_code(out: &mut Vec<u8>, code: u32) {
    out.push(unicode_to_byte(code));
}

/// HTML entity decoding (numeric and the common named entities); `;` is optional.
pub fn html_entity_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'&' && i + 1 < v.len() {
            if v[i + 1] == b'#' {
                let (hexmode, start) =
                    if i + 2 < v.len() && (v[i + 2] == b'x' || v[i + 2] == b'X') { (true, i + 3) } else { (false, i + 2) };
                let mut j = start;
                let mut code: u32 = 0;
                while j < v.len() {
                    let d = if hexmode { hexval(v[j]) } else { v[j].is_ascii_digit().then(|| v[j] - b'0') };
                    match d {
                        Some(d) => code = code.saturating_mul(if hexmode { 16 } else { 10 }).saturating_add(u32::from(d)),
                        None => break,
                    }
                    j += 1;
                }
                if j > start {
                    push_code(&mut out, code);
                    if j < v.len() && v[j] == b';' {
                        j += 1;
                    }
                    i = j;
                    continue;
                }
            } else {
                let mut j = i + 1;
                while j < v.len() && v[j].is_ascii_alphanumeric() && j - i < 10 {
                    j += 1;
                }
                let name = &v[i + 1..j];
                let rep: Option<&[u8]> = match name.to_ascii_lowercase().as_slice() {
                    b"quot" => Some(b"\""),
                    b"amp" => Some(b"&"),
                    b"lt" => Some(b"<"),
                    b"gt" => Some(b">"),
                    b"nbsp" => Some(&[0xa0]),
                    b"apos" => Some(b"'"),
                    b"colon" => Some(b":"),
                    b"tab" => Some(b"\t"),
                    b"newline" => Some(b"\n"),
                    b"lpar" => Some(b"("),
                    b"rpar" => Some(b")"),
                    b"sol" => Some(b"/"),
                    b"bsol" => Some(b"\\"),
                    b"grave" => Some(b"`"),
                    _ => None,
                };
                if let Some(r) = rep {
                    out.extend_from_slice(r);
                    if j < v.len() && v[j] == b';' {
                        j += 1;
                    }
                    i = j;
                    continue;
                }
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn js_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() {
            let n = v[i + 1];
            if (n == b'u' || n == b'U') && i + 5 < v.len() {
                if let (Some(a), Some(b)) = (hex2(v[i + 2], v[i + 3]), hex2(v[i + 4], v[i + 5])) {
                    push_code(&mut out, u32::from(a) << 8 | u32::from(b));
                    i += 6;
                    continue;
                }
            }
            if (n == b'x' || n == b'X') && i + 3 < v.len() {
                if let Some(b) = hex2(v[i + 2], v[i + 3]) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
            if (b'0'..=b'7').contains(&n) {
                let mut j = i + 1;
                let mut code: u32 = 0;
                while j < v.len() && j < i + 4 && (b'0'..=b'7').contains(&v[j]) {
                    code = code * 8 + u32::from(v[j] - b'0');
                    j += 1;
                }
                out.push((code & 0xff) as u8);
                i = j;
                continue;
            }
            out.push(match n {
                b'a' => 7,
                b'b' => 8,
                b'f' => 12,
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'v' => 11,
                other => other,
            });
            i += 2;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn css_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' {
            if i + 1 >= v.len() {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            let mut code: u32 = 0;
            while j < v.len() && j - (i + 1) < 6 {
                match hexval(v[j]) {
                    Some(d) => code = code * 16 + u32::from(d),
                    None => break,
                }
                j += 1;
            }
            if j > i + 1 {
                push_code(&mut out, code);
                if j < v.len() && is_space(v[j]) {
                    j += 1;
                }
                i = j;
                continue;
            }
            if v[i + 1] == b'\n' {
                i += 2;
                continue;
            }
            out.push(v[i + 1]);
            i += 2;
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn cmd_line(v: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(v.len());
    let mut space = false;
    for &c in v {
        match c {
            b'"' | b'\'' | b'\\' | b'^' => {}
            b' ' | b',' | b';' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c => {
                if !space {
                    out.push(b' ');
                    space = true;
                }
            }
            b'/' | b'(' => {
                if space {
                    out.pop();
                }
                space = false;
                out.push(c);
            }
            _ => {
                space = false;
                out.push(c.to_ascii_lowercase());
            }
        }
    }
    out
}

fn compress_whitespace(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut in_ws = false;
    for &c in v {
        if is_space(c) {
            if !in_ws {
                out.push(b' ');
            }
            in_ws = true;
        } else {
            in_ws = false;
            out.push(c);
        }
    }
    out
}

fn replace_comments(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'/' && v.get(i + 1) == Some(&b'*') {
            let mut j = i + 2;
            while j + 1 < v.len() && !(v[j] == b'*' && v[j + 1] == b'/') {
                j += 1;
            }
            out.push(b' ');
            i = if j + 1 < v.len() { j + 2 } else { v.len() };
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn remove_comments(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'/' && v.get(i + 1) == Some(&b'*') {
            let mut j = i + 2;
            while j + 1 < v.len() && !(v[j] == b'*' && v[j + 1] == b'/') {
                j += 1;
            }
            i = if j + 1 < v.len() { j + 2 } else { v.len() };
            continue;
        }
        if (v[i] == b'-' && v.get(i + 1) == Some(&b'-')) || v[i] == b'#' {
            break;
        }
        if v[i] == b'<' && v[i..].starts_with(b"<!--") {
            let mut j = i + 4;
            while j + 2 < v.len() && !v[j..].starts_with(b"-->") {
                j += 1;
            }
            i = if j + 2 < v.len() { j + 3 } else { v.len() };
            continue;
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn remove_comments_char(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let rest = &v[i..];
        if rest.starts_with(b"/*") || rest.starts_with(b"*/") || rest.starts_with(b"--") {
            i += 2;
        } else if rest.starts_with(b"<!--") {
            i += 4;
        } else if rest.starts_with(b"-->") {
            i += 3;
        } else if v[i] == b'#' {
            i += 1;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    out
}

fn escape_seq_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() {
            let n = v[i + 1];
            let simple = match n {
                b'a' => Some(7),
                b'b' => Some(8),
                b'f' => Some(12),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'v' => Some(11),
                b'\\' | b'?' | b'\'' | b'"' => Some(n),
                _ => None,
            };
            if let Some(s) = simple {
                out.push(s);
                i += 2;
                continue;
            }
            if (n == b'x' || n == b'X') && i + 3 < v.len() {
                if let Some(b) = hex2(v[i + 2], v[i + 3]) {
                    out.push(b);
                    i += 4;
                    continue;
                }
            }
            if (b'0'..=b'7').contains(&n) {
                let mut j = i + 1;
                let mut code: u32 = 0;
                while j < v.len() && j < i + 4 && (b'0'..=b'7').contains(&v[j]) {
                    code = code * 8 + u32::from(v[j] - b'0');
                    j += 1;
                }
                out.push((code & 0xff) as u8);
                i = j;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn hex_decode(v: &[u8]) -> Vec<u8> {
    v.chunks(2).filter_map(|c| if c.len() == 2 { hex2(c[0], c[1]) } else { None }).collect()
}

fn base64_decode(v: &[u8], ext: bool) -> Vec<u8> {
    // Most values are short: the cleaned copy stays on the stack.
    let mut clean: smallvec::SmallVec<[u8; 256]> = smallvec::SmallVec::with_capacity(v.len());
    for &c in v {
        if c.is_ascii_alphanumeric() || c == b'+' || c == b'/' {
            clean.push(c);
        } else if c == b'-' && ext {
            clean.push(b'+');
        } else if c == b'_' && ext {
            clean.push(b'/');
        } else if c == b'=' || (ext && (c == b'.' || is_space(c))) {
            if c == b'=' {
                break;
            }
        } else {
            break;
        }
    }
    // Drop a dangling single character that cannot encode a byte.
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(&clean).unwrap_or_default()
}

fn normalize_path(v: &[u8], win: bool) -> Vec<u8> {
    let src: Vec<u8> = if win { v.iter().map(|c| if *c == b'\\' { b'/' } else { *c }).collect() } else { v.to_vec() };
    let absolute = src.first() == Some(&b'/');
    let trailing = src.last() == Some(&b'/') || src.ends_with(b"/.") || src.ends_with(b"/..");
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in src.split(|c| *c == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !absolute {
                    parts.push(seg);
                }
            }
            _ => parts.push(seg),
        }
    }
    let mut out = Vec::with_capacity(src.len());
    if absolute {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if trailing && !parts.is_empty() {
        out.push(b'/');
    }
    out
}

fn utf8_to_unicode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        if c < 0x80 {
            out.push(c);
            i += 1;
            continue;
        }
        let len = if c & 0xe0 == 0xc0 {
            2
        } else if c & 0xf0 == 0xe0 {
            3
        } else if c & 0xf8 == 0xf0 {
            4
        } else {
            0
        };
        if len > 0 && i + len <= v.len() {
            if let Ok(s) = std::str::from_utf8(&v[i..i + len]) {
                if let Some(ch) = s.chars().next() {
                    out.extend_from_slice(format!("%u{:04x}", u32::from(ch)).as_bytes());
                    i += len;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

fn trim(v: &[u8], left: bool, right: bool) -> Vec<u8> {
    let mut s = 0;
    let mut e = v.len();
    if left {
        while s < e && is_space(v[s]) {
            s += 1;
        }
    }
    if right {
        while e > s && is_space(v[e - 1]) {
            e -= 1;
        }
    }
    v[s..e].to_vec()
}

#[cfg(test)]
mod tests {
    use super::Transform::*;

    fn t(tr: super::Transform, s: &str) -> String {
        String::from_utf8_lossy(&tr.apply(s.as_bytes())).into_owned()
    }

    /// `changes` may only clear a transformation's bit when the transformation leaves the
    /// value as it is: checked on generated values built from the bytes that matter. It is
    /// also as precise as the identity checks: it clears a bit whenever
    /// [`super::Transform::is_identity_on`] holds (`cmdLine` also counts `\xa0` as a space).
    #[test]
    fn changes_never_misses_a_change() {
        let alphabet: &[u8] = b"aZ09 \t\r\n%+&\\\"'^,;#/*-.<!\x00\xa0\xe5\x0b\x0c";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..50_000 {
            let len = (next() % 12) as usize;
            let v: Vec<u8> = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let set = super::changes(&v);
            for &tr in super::Transform::ALL {
                if set & tr.bit() == 0 {
                    assert_eq!(tr.apply(&v), v, "{tr:?} changed {v:?} but changes() said it would not");
                }
                if tr != CmdLine {
                    assert_eq!(set & tr.bit() != 0, !tr.is_identity_on(&v), "{tr:?} on {v:?}");
                }
            }
        }
        // The common benign case: a plain lower-case word changes under none of the decoders.
        let set = super::changes(b"passport");
        assert_eq!(set & (UrlDecodeUni.bit() | HtmlEntityDecode.bit() | Lowercase.bit() | CmdLine.bit()), 0);
        assert_ne!(set & Uppercase.bit(), 0);
    }

    #[test]
    fn decoders() {
        assert_eq!(t(UrlDecodeUni, "a%20b+c%u0041%uff1c%zz"), "a b cA<%zz");
        assert_eq!(t(HtmlEntityDecode, "&lt;script&gt;&#x41;&#66&quot;"), "<script>AB\"");
        assert_eq!(t(JsDecode, "\\x41\\u0042\\n\\'"), "AB\n'");
        assert_eq!(t(CssDecode, "\\6a avascript\\:"), "javascript:");
        assert_eq!(t(EscapeSeqDecode, "\\x41\\101\\t"), "AA\t");
        assert_eq!(t(Base64Decode, "aGVsbG8="), "hello");
        assert_eq!(t(HexEncode, "AB"), "4142");
        assert_eq!(t(Length, "abc"), "3");
        assert_eq!(t(Utf8ToUnicode, "a张"), "a%u5f20");
    }

    /// Every value the identity check accepts must come out of `apply` unchanged.
    #[test]
    fn identity_check_is_sound() {
        let all = [
            Lowercase,
            Uppercase,
            UrlDecode,
            UrlDecodeUni,
            HtmlEntityDecode,
            JsDecode,
            CssDecode,
            CmdLine,
            CompressWhitespace,
            RemoveWhitespace,
            RemoveNulls,
            ReplaceNulls,
            ReplaceComments,
            RemoveCommentsChar,
            RemoveComments,
            EscapeSeqDecode,
            HexEncode,
            HexDecode,
            Base64Decode,
            Base64DecodeExt,
            Base64Encode,
            Length,
            Sha1,
            NormalizePath,
            NormalizePathWin,
            Utf8ToUnicode,
            Trim,
            TrimLeft,
            TrimRight,
            UrlEncode,
        ];
        let alphabet: &[u8] = b"aZ09 /.\\%+&#;-*<!>'\"^,\t\n\x00\xa0\xe5uxX=_";
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut accepted = 0;
        for len in 0..12 {
            for _ in 0..400 {
                let v: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                for tr in all {
                    if tr.is_identity_on(&v) {
                        accepted += 1;
                        assert_eq!(tr.apply(&v), v, "{tr:?} on {:?}", String::from_utf8_lossy(&v));
                    }
                    assert_eq!(tr.apply_changed(&v).unwrap_or_else(|| v.clone()), tr.apply(&v));
                }
            }
        }
        assert!(accepted > 10_000, "the check should accept common values ({accepted})");
        assert!(NormalizePath.is_identity_on(b"/apply/status"));
        assert!(!NormalizePath.is_identity_on(b"/a/../b"));
        assert!(UrlDecodeUni.is_identity_on(b"A2024-00017"));
    }

    #[test]
    fn normalizers() {
        assert_eq!(t(CmdLine, "C^:\\wi\"nd'ows ,;  /foo (x)"), "c:windows/foo(x)");
        assert_eq!(t(CompressWhitespace, "a  \t\n b"), "a b");
        assert_eq!(t(RemoveWhitespace, " a b "), "ab");
        assert_eq!(t(ReplaceComments, "a/*x*/b/*c"), "a b ");
        assert_eq!(t(RemoveCommentsChar, "a/*b*/--#c"), "abc");
        assert_eq!(t(NormalizePath, "/a/./b/../../../etc//passwd"), "/etc/passwd");
        assert_eq!(t(NormalizePathWin, "c:\\a\\..\\b"), "c:/b");
        assert_eq!(t(Lowercase, "AbC"), "abc");
        assert_eq!(t(Trim, "  x "), "x");
    }
}
