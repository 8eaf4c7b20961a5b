//! Which of many short literals occur in a value, ASCII case-insensitively: the scanner
//! behind the shared prefilter ([`crate::prefilter`]).
//!
//! CRS gives the prefilter ~1 400 literals, most of 2 to 8 bytes, and a clean value contains
//! few of them. An Aho-Corasick DFA over them is ~5 MB, and each byte of its scan is a load that
//! depends on the one before. Here a first pass tests every position, without branching on it, against
//! two bitmaps of 8 KiB that stay in the first-level cache: one bit per 2-byte literal (exact),
//! and one bit per hashed 3-byte prefix of the longer literals; it notes the positions that
//! pass. Only those look up their literals (by the rank of their bit: no hash table) and
//! compare them. This is the idea of Hyperscan's FDR matcher, without its SIMD. Single bytes
//! are a 256-entry table. The tests compare every answer with `aho-corasick`'s. In the gateway
//! (CRS at PL1, browser GET) it cut the proxy's CPU per request by ~3 %, and an engine's
//! memory by 4 MB.

/// Bits in each bitmap (8 KiB each).
const BITMAP_BITS: usize = 1 << 16;
/// Candidate positions noted before they are looked at.
const BATCH: usize = 64;
/// A noted candidate: its position in the low bits, and which bitmaps it passed.
const FLAG_SHIFT: u32 = 62;
const PAIR: u64 = 1 << FLAG_SHIFT;
const LONG: u64 = 2 << FLAG_SHIFT;
const POSITION: u64 = PAIR - 1;

/// A bitmap with the rank of each word (the set bits before it), so that each set bit has an
/// index: its rank among the set bits.
#[derive(Debug)]
struct RankedBits {
    words: Box<[u64; WORDS]>,
    ranks: Box<[u32; WORDS]>,
}

/// Words in a bitmap.
const WORDS: usize = BITMAP_BITS / 64;

impl RankedBits {
    fn new(positions: impl Iterator<Item = usize>) -> RankedBits {
        let mut words = Box::new([0u64; WORDS]);
        for p in positions {
            words[(p / 64) % WORDS] |= 1 << (p % 64);
        }
        let mut ranks = Box::new([0u32; WORDS]);
        let mut below = 0;
        for (r, w) in ranks.iter_mut().zip(words.iter()) {
            *r = below;
            below += w.count_ones();
        }
        RankedBits { words, ranks }
    }

    /// Whether bit `p` (below [`BITMAP_BITS`]) is set, as 0 or 1 for the branch-free pass.
    #[inline(always)]
    fn test(&self, p: usize) -> u32 {
        (self.words[(p / 64) % WORDS] >> (p % 64)) as u32 & 1
    }

    /// The index of set bit `p` among the set bits, or `None` if it is clear.
    #[inline]
    fn index(&self, p: usize) -> Option<usize> {
        let (w, r) = (self.words[(p / 64) % WORDS], self.ranks[(p / 64) % WORDS]);
        let below = w & ((1u64 << (p % 64)) - 1);
        (w & (1 << (p % 64)) != 0).then(|| r as usize + below.count_ones() as usize)
    }
}

/// Literals grouped by the bit they set: `starts[i]..starts[i + 1]` are the entries of `items`
/// of the `i`-th set bit.
#[derive(Debug)]
struct Groups<T> {
    bits: RankedBits,
    starts: Vec<u32>,
    items: Vec<T>,
}

impl<T> Groups<T> {
    /// Groups the items by the bit given with each.
    fn new(mut keyed: Vec<(usize, T)>) -> Groups<T> {
        keyed.sort_by_key(|(bit, _)| *bit);
        let bits = RankedBits::new(keyed.iter().map(|(bit, _)| *bit));
        let mut starts: Vec<u32> = Vec::new();
        for (i, (bit, _)) in keyed.iter().enumerate() {
            if i == 0 || keyed[i - 1].0 != *bit {
                starts.push(i as u32);
            }
        }
        starts.push(keyed.len() as u32);
        Groups { bits, starts, items: keyed.into_iter().map(|(_, t)| t).collect() }
    }

    /// The items of bit `p` (none if it is clear).
    #[inline]
    fn get(&self, p: usize) -> &[T] {
        let Some(i) = self.bits.index(p) else { return &[] };
        match (self.starts.get(i), self.starts.get(i + 1)) {
            (Some(&s), Some(&e)) => self.items.get(s as usize..e as usize).unwrap_or_default(),
            _ => &[],
        }
    }
}

/// A literal of three bytes or more.
#[derive(Debug, Clone, Copy)]
struct Long {
    id: u32,
    /// Its first four bytes (three for a literal of three), lower-cased, little-endian: a
    /// quick test before the whole comparison.
    head: u32,
    /// Where it is in [`LiteralSet::text`].
    start: u32,
    end: u32,
}

/// A literal set, built once; [`LiteralSet::for_each_in`] reports the literals in a value.
#[derive(Debug)]
pub struct LiteralSet {
    /// Single-byte literals: (lower-cased byte, id).
    bytes: Vec<(u8, u32)>,
    /// 2-byte literals by their two lower-cased bytes, little-endian: the ids.
    pairs: Groups<u32>,
    /// Longer literals by the [`hash3`] of their first three bytes.
    long: Groups<Long>,
    /// The longer literals, lower-cased, one after the other.
    text: Vec<u8>,
}

/// ASCII lower case by table: one load instead of a compare, a shift and an or per byte.
const FOLD: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).to_ascii_lowercase();
        i += 1;
    }
    t
};

#[inline(always)]
fn fold(b: u8) -> u8 {
    FOLD[usize::from(b)]
}

#[inline(always)]
fn pair(a: u8, b: u8) -> usize {
    usize::from(a) | usize::from(b) << 8
}

/// The bitmap position of three lower-cased bytes (multiplicative hashing, top 16 bits).
#[inline(always)]
fn hash3(a: u8, b: u8, c: u8) -> usize {
    let x = u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16;
    (x.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

impl LiteralSet {
    /// The set of `lits`; literal `i` is reported as id `i`. Literals are matched ASCII
    /// case-insensitively; empty ones are never reported.
    pub fn new(lits: &[Vec<u8>]) -> LiteralSet {
        let mut bytes = Vec::new();
        let mut pairs = Vec::new();
        let mut long = Vec::new();
        let mut text = Vec::new();
        for (id, l) in lits.iter().enumerate() {
            let (id, l) = (id as u32, l.to_ascii_lowercase());
            match *l.as_slice() {
                [] => {}
                [a] => bytes.push((a, id)),
                [a, b] => pairs.push((pair(a, b), id)),
                [a, b, c, ref rest @ ..] => {
                    let head = u32::from_le_bytes([a, b, c, rest.first().copied().unwrap_or(0)]);
                    let (start, end) = (text.len() as u32, (text.len() + l.len()) as u32);
                    long.push((hash3(a, b, c), Long { id, head, start, end }));
                    text.extend_from_slice(&l);
                }
            }
        }
        LiteralSet { bytes, pairs: Groups::new(pairs), long: Groups::new(long), text }
    }

    /// Calls `found` with the id of each literal occurring in `v`, at least once for each.
    pub fn for_each_in(&self, v: &[u8], mut found: impl FnMut(u32)) {
        // One pass notes the bytes present (for the single-byte literals) and the positions
        // where a 2-byte literal (flag `PAIR`) or a longer literal's prefix (flag `LONG`) may
        // start; `check` looks at those positions.
        let mut present = [false; 256];
        let mut batch = [0u64; BATCH];
        let mut n = 0usize;
        if let [first, second, ..] = *v {
            let (mut a, mut b) = (fold(first), fold(second));
            present[usize::from(a)] = true;
            for (i, &c) in v.iter().skip(2).enumerate() {
                let c = fold(c);
                present[usize::from(b)] = true;
                let flags = self.pairs.bits.test(pair(a, b)) | self.long.bits.test(hash3(a, b, c)) << 1;
                batch[n % BATCH] = i as u64 | u64::from(flags) << FLAG_SHIFT;
                n += usize::from(flags != 0);
                if n == BATCH {
                    self.check(v, &batch, &mut found);
                    n = 0;
                }
                (a, b) = (b, c);
            }
        }
        if let Some(&last) = v.last() {
            present[usize::from(fold(last))] = true;
        }
        for &(b, id) in &self.bytes {
            if present[usize::from(b)] {
                found(id);
            }
        }
        self.check(v, &batch[..n], &mut found);
        // The last two bytes can only start a 2-byte literal.
        if let [.., a, b] = *v {
            for &id in self.pairs.get(pair(fold(a), fold(b))) {
                found(id);
            }
        }
    }

    /// Reports the literals starting at `positions` of `v`.
    fn check(&self, v: &[u8], positions: &[u64], found: &mut impl FnMut(u32)) {
        for &p in positions {
            let at = v.get((p & POSITION) as usize..).unwrap_or_default();
            let [a, b, c, ..] = *at else { continue };
            let (a, b, c) = (fold(a), fold(b), fold(c));
            if p & PAIR != 0 {
                for &id in self.pairs.get(pair(a, b)) {
                    found(id);
                }
            }
            if p & LONG != 0 {
                let d = at.get(3).map_or(0, |&d| fold(d));
                let head = u32::from_le_bytes([a, b, c, d]);
                for l in self.long.get(hash3(a, b, c)) {
                    let len = (l.end - l.start) as usize;
                    let mask = if len == 3 { 0x00ff_ffff } else { u32::MAX };
                    if head & mask != l.head || at.len() < len {
                        continue;
                    }
                    let lit = self.text.get(l.start as usize..l.end as usize).unwrap_or_default();
                    if len <= 4 || at.get(4..len).zip(lit.get(4..)).is_some_and(|(t, l)| t.eq_ignore_ascii_case(l)) {
                        found(l.id);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::{AhoCorasickBuilder, AhoCorasickKind, MatchKind};
    use std::collections::BTreeSet;

    fn found(set: &LiteralSet, v: &[u8]) -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        set.for_each_in(v, |id| {
            out.insert(id);
        });
        out
    }

    /// What Aho-Corasick (the scanner this one replaced) reports: every literal that occurs.
    fn reference(lits: &[Vec<u8>], v: &[u8]) -> BTreeSet<u32> {
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(lits)
            .expect("automaton");
        ac.find_overlapping_iter(v).map(|m| m.pattern().as_u32()).collect()
    }

    #[test]
    fn finds_literals_anywhere_in_any_case() {
        let lits: Vec<Vec<u8>> =
            ["/*", "union", "uni", "select", "<script", "Or", "xp_cmdshell", "onerror"].iter().map(|s| s.as_bytes().to_vec()).collect();
        let set = LiteralSet::new(&lits);
        assert_eq!(found(&set, b"1 UNION SeLeCt /* x"), BTreeSet::from([0, 1, 2, 3]));
        assert_eq!(found(&set, b"<SCRIPT>"), BTreeSet::from([4]));
        assert_eq!(found(&set, b"or"), BTreeSet::from([5]), "a whole value");
        assert_eq!(found(&set, b"exec XP_CMDSHELL"), BTreeSet::from([6]), "at the very end");
        assert_eq!(found(&set, b"xp_cmdshel"), BTreeSet::new(), "cut short by the end");
        assert_eq!(found(&set, b"un"), BTreeSet::new());
        assert_eq!(found(&set, b""), BTreeSet::new());
        assert_eq!(found(&set, b"o"), BTreeSet::new());
    }

    /// A small deterministic generator (xorshift), so the test needs no crate and repeats.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The same answers as Aho-Corasick on random literals and values from a small alphabet
    /// (so that literals occur often, overlap and share prefixes), including high bytes and
    /// both cases.
    #[test]
    fn agrees_with_aho_corasick() {
        let alphabet = b"aAbB/*<'-\x00\xe4\xc4";
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for _ in 0..500 {
            let lits: Vec<Vec<u8>> =
                (0..1 + rng.below(40)).map(|_| (0..2 + rng.below(5)).map(|_| alphabet[rng.below(alphabet.len())]).collect()).collect();
            let set = LiteralSet::new(&lits);
            for _ in 0..40 {
                let v: Vec<u8> = (0..rng.below(40)).map(|_| alphabet[rng.below(alphabet.len())]).collect();
                assert_eq!(found(&set, &v), reference(&lits, &v), "literals {lits:?} in {v:?}");
            }
        }
    }
}
