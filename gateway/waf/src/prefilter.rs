//! Shared literal prefilter. For every `@rx` rule whose regex can only match
//! text containing one of a small set of literals (a prefix, a suffix or an
//! inner literal, found by walking the regex syntax tree), and for every `@pm`
//! list of at most [`MAX_PHRASES`] phrases, those literals go
//! into one case-insensitive [`LiteralSet`]. A transformed value is
//! scanned once for all rules; a rule whose literals do not occur in the value
//! cannot match and its regex (or phrase automaton) is not run.

use crate::litscan::LiteralSet;
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::ParserBuilder;
use std::collections::HashMap;

/// Longest `@pm`/`@pmFromFile` phrase list whose phrases join the prefilter (as its literals,
/// see [`crate::operators::Operator::necessary_literals`]). With CRS 4.28 that takes the inline
/// `@pm` lists and the short data files (up to 57 phrases) and leaves the long ones (68 to
/// 1 833 phrases) to their own automata. Measured (callgrind, PL1, with the Aho-Corasick DFA
/// the prefilter had then): −1.8 % instructions on a benign GET, −2.0 % on a form POST. All
/// ~6 000 phrases would have made that DFA ~45 MB larger; in a [`LiteralSet`] they take
/// ~2 MB, but the engine benchmark got no faster on benign requests and 5 % slower on attacks
/// (a phrase found means the link's own automaton runs as well).
pub const MAX_PHRASES: usize = 64;

/// Minimum literal length worth prefiltering on.
const MIN_LEN: usize = 3;

/// Lower-cased literals one of which every match of the regex (with the
/// engine's `(?s-u)` flags) must contain, if a useful set exists. Candidates are
/// the prefix and suffix sets from `regex-syntax` and the inner literals found by
/// [`required`]; the most selective one wins.
pub fn necessary_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = ParserBuilder::new().utf8(false).unicode(false).dot_matches_new_line(true).build().parse(pattern).ok()?;
    let candidates = [extract(&hir, ExtractKind::Prefix), extract(&hir, ExtractKind::Suffix), required(&hir).into_set().map(minimize)];
    candidates.into_iter().flatten().filter(|s| useful(s)).max_by_key(|s| score(s))
}

/// Maximum number of literals in a set.
const MAX_SET: usize = 64;
/// Maximum size of an exact set (cross products of small classes).
const MAX_EXACT: usize = 16;
/// Literals are cut to this length (any substring of a required literal is required too).
const MAX_LIT: usize = 24;

fn useful(s: &[Vec<u8>]) -> bool {
    !s.is_empty() && s.len() <= MAX_SET && s.iter().all(|l| useful_literal(l))
}

/// A literal worth scanning for: at least [`MIN_LEN`] bytes, or a shorter one
/// with punctuation or control bytes (`<`, `$`, `\n`, `'`), which are rare in
/// benign values, unlike single letters.
fn useful_literal(l: &[u8]) -> bool {
    l.len() >= MIN_LEN || (!l.is_empty() && l.iter().any(|c| !c.is_ascii_alphanumeric() && *c != b' '))
}

/// Higher is more selective: a shortest literal of at least 4 bytes, then fewer literals.
fn score(s: &[Vec<u8>]) -> (usize, isize) {
    (s.iter().map(Vec::len).min().unwrap_or(0).min(4), -(s.len() as isize))
}

fn minimize(mut out: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    for l in out.iter_mut() {
        l.truncate(MAX_LIT);
    }
    out.sort();
    out.dedup();
    let all = out.clone();
    out.retain(|l| !all.iter().any(|o| o != l && o.len() < l.len() && memchr::memmem::find(l, o).is_some()));
    out
}

/// What a sub-pattern tells about its matches.
#[derive(Debug, Clone)]
enum Info {
    /// Every match is exactly one of these (lower-cased) strings.
    Exact(Vec<Vec<u8>>),
    /// Every match contains one of these (lower-cased) literals.
    Contains(Vec<Vec<u8>>),
    /// Nothing useful is known.
    Any,
}

impl Info {
    /// The literal set implied, if it is a useful filter.
    fn into_set(self) -> Option<Vec<Vec<u8>>> {
        match self {
            Info::Exact(s) | Info::Contains(s) if useful(&s) => Some(s),
            _ => None,
        }
    }

    fn weaken(self) -> Info {
        match self.into_set() {
            Some(s) => Info::Contains(minimize(s)),
            None => Info::Any,
        }
    }
}

/// The literal bytes a class can match, lower-cased, when there are few.
fn class_bytes(c: &regex_syntax::hir::Class) -> Option<Vec<u8>> {
    use regex_syntax::hir::Class;
    let mut out: Vec<u8> = Vec::new();
    let mut push_range = |lo: u32, hi: u32| -> bool {
        if hi.saturating_sub(lo) > 8 || hi > 0xff {
            return false;
        }
        for b in lo..=hi {
            let b = (b as u8).to_ascii_lowercase();
            if !out.contains(&b) {
                out.push(b);
            }
        }
        true
    };
    let ok = match c {
        Class::Bytes(b) => b.ranges().iter().all(|r| push_range(u32::from(r.start()), u32::from(r.end()))),
        Class::Unicode(u) => u.ranges().iter().all(|r| r.end().is_ascii() && push_range(u32::from(r.start()), u32::from(r.end()))),
    };
    (ok && !out.is_empty() && out.len() <= 4).then_some(out)
}

/// Inner-literal analysis: a set of literals every match must contain.
fn required(h: &regex_syntax::hir::Hir) -> Info {
    use regex_syntax::hir::HirKind;
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => Info::Exact(vec![Vec::new()]),
        HirKind::Literal(l) => Info::Exact(vec![l.0.to_ascii_lowercase()]),
        HirKind::Class(c) => match class_bytes(c) {
            Some(bytes) => Info::Exact(bytes.into_iter().map(|b| vec![b]).collect()),
            None => Info::Any,
        },
        HirKind::Capture(c) => required(&c.sub),
        HirKind::Repetition(r) => {
            if r.min == 0 {
                Info::Any
            } else if r.min == 1 && r.max == Some(1) {
                required(&r.sub)
            } else {
                required(&r.sub).weaken()
            }
        }
        HirKind::Concat(subs) => {
            // Adjacent exact parts are multiplied out; otherwise keep the best requirement.
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut exact: Option<Vec<Vec<u8>>> = Some(vec![Vec::new()]);
            // Whether `exact` still describes the whole concatenation so far.
            let mut whole = true;
            let consider = |set: Option<Vec<Vec<u8>>>, best: &mut Option<Vec<Vec<u8>>>| {
                if let Some(s) = set.map(minimize).filter(|s| useful(s)) {
                    if best.as_ref().is_none_or(|b| score(&s) > score(b)) {
                        *best = Some(s);
                    }
                }
            };
            for sub in subs {
                let info = required(sub);
                // An exact part before an alternation whose branches are not all exact also
                // goes into each branch: `s(?:db|ys…)` needs `sdb` or what `ys…` needs, where
                // the alternation alone offers `db`, too short to scan for.
                if let (Info::Any | Info::Contains(_), HirKind::Alternation(branches), Some(cur)) = (&info, sub.kind(), exact.as_deref()) {
                    if cur.iter().any(|c| !c.is_empty()) {
                        if let Info::Contains(c) = distribute(cur, branches) {
                            consider(Some(c), &mut best);
                        }
                    }
                }
                match info {
                    Info::Exact(e) => {
                        exact = match exact.take() {
                            Some(cur) if cur.len() * e.len() <= MAX_EXACT => {
                                Some(cur.iter().flat_map(|a| e.iter().map(move |b| [a.as_slice(), b].concat())).collect())
                            }
                            Some(cur) => {
                                consider(Some(cur), &mut best);
                                whole = false;
                                Some(e)
                            }
                            None => Some(e),
                        };
                    }
                    other => {
                        consider(exact.take(), &mut best);
                        whole = false;
                        exact = Some(vec![Vec::new()]);
                        if let Info::Contains(c) = other {
                            consider(Some(c), &mut best);
                        }
                    }
                }
            }
            if whole {
                if let Some(e) = exact {
                    return Info::Exact(e);
                }
            }
            consider(exact, &mut best);
            match best {
                Some(b) => Info::Contains(b),
                None => Info::Any,
            }
        }
        HirKind::Alternation(subs) => either(subs.iter().map(required)),
    }
}

/// What an alternation of sub-patterns with these [`Info`]s tells about its matches.
fn either(branches: impl Iterator<Item = Info>) -> Info {
    let mut all_exact = true;
    let mut set: Vec<Vec<u8>> = Vec::new();
    for info in branches {
        match info {
            Info::Exact(e) => set.extend(e),
            Info::Contains(c) => {
                all_exact = false;
                set.extend(c);
            }
            Info::Any => return Info::Any,
        }
        if set.len() > MAX_SET * 4 {
            return Info::Any;
        }
    }
    if all_exact && set.len() <= MAX_EXACT {
        Info::Exact(set)
    } else {
        Info::Contains(minimize(set)).weaken()
    }
}

/// [`required`] of `(?:p1|p2|…)(?:b1|b2|…)` taken as `p1b1|p1b2|…|p2b1|…`, for the exact
/// prefixes `prefixes` and the alternation's `branches`. (Not built as one alternation:
/// `Hir::alternation` would factor the common prefix out again.)
fn distribute(prefixes: &[Vec<u8>], branches: &[regex_syntax::hir::Hir]) -> Info {
    use regex_syntax::hir::Hir;
    either(prefixes.iter().flat_map(|p| branches.iter().map(move |b| required(&Hir::concat(vec![Hir::literal(p.clone()), b.clone()])))))
}

fn extract(hir: &regex_syntax::hir::Hir, kind: ExtractKind) -> Option<Vec<Vec<u8>>> {
    let suffix = matches!(kind, ExtractKind::Suffix);
    let mut ex = Extractor::new();
    ex.kind(kind).limit_class(64).limit_repeat(16).limit_literal_len(16).limit_total(4096);
    let seq = ex.extract(hir);
    let lits = seq.literals()?;
    if lits.is_empty() {
        return None;
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    for l in lits {
        let b = l.as_bytes();
        if !useful_literal(b) {
            return None;
        }
        let cut = if suffix { &b[b.len().saturating_sub(8)..] } else { &b[..b.len().min(8)] };
        let lower = cut.to_ascii_lowercase();
        if !out.contains(&lower) {
            out.push(lower);
        }
    }
    // Drop literals that contain another literal of the set (the shorter one suffices).
    let all = out.clone();
    out.retain(|l| !all.iter().any(|o| o != l && o.len() < l.len() && memchr::memmem::find(l, o).is_some()));
    Some(out)
}

/// The combined prefilter: every rule's literals in one [`LiteralSet`].
#[derive(Debug)]
pub struct Prefilter {
    /// All literals.
    lits: LiteralSet,
    /// Literal id of `lits` -> rule bits.
    bits: Vec<Vec<u32>>,
    /// Number of rule bits.
    pub n_bits: usize,
}

/// Collects literals while rules are compiled.
#[derive(Default)]
pub struct PrefilterBuilder {
    lits: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, usize>,
    bits: Vec<Vec<u32>>,
    n_bits: usize,
}

impl PrefilterBuilder {
    /// Registers a rule's literals; returns its bit.
    pub fn add(&mut self, lits: &[Vec<u8>]) -> u32 {
        let bit = self.n_bits as u32;
        self.n_bits += 1;
        for l in lits {
            let l = l.to_ascii_lowercase();
            let id = match self.index.get(&l) {
                Some(i) => *i,
                None => {
                    self.lits.push(l.clone());
                    self.bits.push(Vec::new());
                    self.index.insert(l, self.lits.len() - 1);
                    self.lits.len() - 1
                }
            };
            self.bits[id].push(bit);
        }
        bit
    }

    /// Builds the prefilter (None when no rule qualified).
    pub fn build(self) -> Option<Prefilter> {
        (self.n_bits > 0).then(|| Prefilter { lits: LiteralSet::new(&self.lits), bits: self.bits, n_bits: self.n_bits })
    }
}

impl Prefilter {
    /// Number of `u64` words in a scan bitset.
    pub fn words(&self) -> usize {
        self.n_bits.div_ceil(64)
    }

    /// Bitset of rules whose literals occur in `v` (ASCII case-insensitively).
    pub fn scan(&self, v: &[u8]) -> Vec<u64> {
        let mut set = vec![0u64; self.words()];
        self.scan_into(v, &mut set);
        set
    }

    /// Like [`Self::scan`], into `set` (all clear, [`Self::words`] long).
    pub fn scan_into(&self, v: &[u8], set: &mut [u64]) {
        self.lits.for_each_in(v, |p| {
            if let Some(bits) = self.bits.get(p as usize) {
                for &b in bits {
                    if let Some(w) = set.get_mut(b as usize / 64) {
                        *w |= 1 << (b % 64);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals() {
        let l = necessary_literals("(?i)union[\\s]+select").unwrap_or_default();
        assert!(!l.is_empty() && l.iter().all(|x| x.starts_with(b"union")), "{l:?}");
        assert!(necessary_literals("a|b").is_none());
        assert_eq!(necessary_literals(".*foo"), Some(vec![b"foo".to_vec()]));
        assert!(necessary_literals(".*").is_none());
        let l = necessary_literals("(?i)(?:eval|exec)\\(").unwrap_or_default();
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn inner_literals() {
        // No usable prefix or suffix, but every match contains "select" or "union".
        let l = necessary_literals("(?i)\\b(?:select|union)\\b[^a-z]*\\d").unwrap_or_default();
        assert_eq!(l, vec![b"select".to_vec(), b"union".to_vec()]);
        // Concatenation keeps the most selective part.
        let l = necessary_literals("[a-z]+=\\s*javascript:").unwrap_or_default();
        assert_eq!(l, vec![b"javascript:".to_vec()]);
        // Optional parts give nothing.
        assert!(necessary_literals("(?:select)?\\d+").is_none());
        // Short punctuation literals are kept, single letters are not.
        assert_eq!(necessary_literals("[\\n\\r]"), Some(vec![b"\n".to_vec(), b"\r".to_vec()]));
        assert!(necessary_literals("[ab]x").is_none());
        // An alternative without literals defeats the filter.
        assert!(necessary_literals("foo|\\d+").is_none());
        // An exact part goes into the branches of the alternation after it, so that a short
        // exact branch (`db`) is kept as `sdb`.
        let l = necessary_literals("(?i)\\bs(?:db|ys(?:aux|tem)?\\d)\\b").unwrap_or_default();
        assert_eq!(l, vec![b"sdb".to_vec(), b"sys".to_vec()]);
    }

    /// A rule skipped by the prefilter must really be unable to match:
    /// check the literal sets against sample matches.
    #[test]
    fn literals_are_necessary() {
        let cases: &[(&str, &[&str])] = &[
            ("(?i)\\b(?:select|union)\\b[^a-z]*\\d", &["x UNION 1", "Select -2"]),
            ("(?i)on(?:load|error)\\s*=", &["<img ONERROR =", "onload="]),
            ("(?:\\.\\./|\\.\\.\\\\)+etc", &["../../etc", "..\\etc"]),
            ("[Jj][Aa][Vv][Aa]script:", &["JaVascript:", "javascript:"]),
            ("(?i)\\bs(?:db|ys(?:aux|tem)?\\d)\\b", &["SDB", "sys1", "SysTem2"]),
            ("(?i)x(?:ab|cd(?:e|f+)*)y", &["XABY", "xcdy", "xcdffey"]),
        ];
        for (re, samples) in cases {
            let lits = necessary_literals(re).unwrap_or_default();
            assert!(!lits.is_empty(), "{re}");
            let rx = regex::bytes::Regex::new(re).unwrap();
            for s in *samples {
                assert!(rx.is_match(s.as_bytes()), "{re} should match {s}");
                let lower = s.to_ascii_lowercase();
                assert!(lits.iter().any(|l| memchr::memmem::find(lower.as_bytes(), l).is_some()), "{re}: {lits:?} not in {s}");
            }
        }
    }

    #[test]
    fn scan_sets_bits() {
        let mut b = PrefilterBuilder::default();
        let r0 = b.add(&[b"union".to_vec()]);
        let r1 = b.add(&[b"script".to_vec()]);
        let p = b.build().unwrap();
        let s = p.scan(b"1 UNION select");
        assert!(s[0] & (1 << r0) != 0);
        assert!(s[0] & (1 << r1) == 0);
        // Single bytes go through the byte table, case-insensitively like the automaton.
        let mut b = PrefilterBuilder::default();
        let lt = b.add(&[b"<".to_vec()]);
        let dollar = b.add(&[b"$".to_vec(), b"&dollar".to_vec()]);
        let p = b.build().unwrap();
        let s = p.scan(b"a < b");
        assert!(s[0] & (1 << lt) != 0 && s[0] & (1 << dollar) == 0);
        let s = p.scan(b"&DOLLAR;{x}");
        assert!(s[0] & (1 << lt) == 0 && s[0] & (1 << dollar) != 0);
    }
}
