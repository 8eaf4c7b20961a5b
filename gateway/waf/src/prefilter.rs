//! Shared literal prefilter. For every `@rx` rule whose regex can only match
//! text that starts with one of a small set of literals, those literals go
//! into one case-insensitive Aho-Corasick automaton. A transformed value is
//! scanned once for all rules; a rule whose literals do not occur in the value
//! cannot match and its regex is not run. Everything else runs its regex.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::ParserBuilder;
use std::collections::HashMap;

/// Minimum literal length worth prefiltering on.
const MIN_LEN: usize = 3;

/// Lower-cased necessary prefixes of a regex (with the engine's `(?s-u)` flags), if useful.
pub fn necessary_literals(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let hir = ParserBuilder::new().utf8(false).unicode(false).dot_matches_new_line(true).build().parse(pattern).ok()?;
    // Any match starts with one of the prefix literals, and ends with one of the
    // suffix literals; either set is a necessary condition.
    extract(&hir, ExtractKind::Prefix).or_else(|| extract(&hir, ExtractKind::Suffix))
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
        if b.len() < MIN_LEN {
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

/// The combined automaton.
#[derive(Debug)]
pub struct Prefilter {
    ac: AhoCorasick,
    /// Pattern id -> rule bits.
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
            let id = match self.index.get(l) {
                Some(i) => *i,
                None => {
                    self.lits.push(l.clone());
                    self.bits.push(Vec::new());
                    self.index.insert(l.clone(), self.lits.len() - 1);
                    self.lits.len() - 1
                }
            };
            self.bits[id].push(bit);
        }
        bit
    }

    /// Builds the automaton (None when no rule qualified).
    pub fn build(self) -> Option<Prefilter> {
        if self.n_bits == 0 {
            return None;
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&self.lits)
            .ok()?;
        Some(Prefilter { ac, bits: self.bits, n_bits: self.n_bits })
    }
}

impl Prefilter {
    /// Bitset of rules whose literals occur in `v`.
    pub fn scan(&self, v: &[u8]) -> Vec<u64> {
        let mut set = vec![0u64; self.n_bits.div_ceil(64)];
        for m in self.ac.find_overlapping_iter(v) {
            if let Some(bits) = self.bits.get(m.pattern().as_usize()) {
                for &b in bits {
                    if let Some(w) = set.get_mut(b as usize / 64) {
                        *w |= 1 << (b % 64);
                    }
                }
            }
        }
        set
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
    fn scan_sets_bits() {
        let mut b = PrefilterBuilder::default();
        let r0 = b.add(&[b"union".to_vec()]);
        let r1 = b.add(&[b"script".to_vec()]);
        let p = b.build().unwrap();
        let s = p.scan(b"1 UNION select");
        assert!(s[0] & (1 << r0) != 0);
        assert!(s[0] & (1 << r1) == 0);
    }
}
