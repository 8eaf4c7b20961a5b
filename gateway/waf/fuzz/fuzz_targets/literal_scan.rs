//! The prefilter's literal scanner (`govgate_waf::litscan`) must report exactly the literals
//! that Aho-Corasick finds, ASCII case-insensitively: a literal it misses would let the engine
//! skip a rule that matches. Input: the value, then the literals, one per line.
#![no_main]

use aho_corasick::{AhoCorasickBuilder, MatchKind};
use govgate_waf::litscan::LiteralSet;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|&b| b == b'\n');
    let value = lines.next().unwrap_or_default();
    let lits: Vec<Vec<u8>> = lines.filter(|l| !l.is_empty()).take(200).map(<[u8]>::to_vec).collect();
    let mut found = BTreeSet::new();
    LiteralSet::new(&lits).for_each_in(value, |id| {
        found.insert(id);
    });
    let ac = AhoCorasickBuilder::new().ascii_case_insensitive(true).match_kind(MatchKind::Standard).build(&lits).expect("automaton");
    let expected: BTreeSet<u32> = ac.find_overlapping_iter(value).map(|m| m.pattern().as_u32()).collect();
    assert_eq!(found, expected, "literals {lits:?} in {value:?}");
});
