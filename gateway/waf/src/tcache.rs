//! Transformation chains and their per-transaction memo.
//!
//! At load time every distinct `t:` chain is interned into a prefix tree
//! ([`ChainTable`]): a chain is a node whose parent is the chain without its
//! last step, so `t:urlDecodeUni,t:lowercase` reuses the result of
//! `t:urlDecodeUni`. On the request path [`TCache`] memoizes, per
//! (value, chain node), the transformed value and its prefilter scan. A step
//! that leaves a value unchanged (checked by [`Transform::is_identity_on`])
//! shares its parent's slot, so clean values are neither copied nor rescanned.

use crate::fxhash::FxHashMap;
use crate::prefilter::Prefilter;
use crate::transforms::{changes, ChangeSet, Transform};

/// Interned transformation chains (node 0 is the empty chain).
#[derive(Debug, Clone)]
pub struct ChainTable {
    /// `(parent, step)` per node; entry 0 is a placeholder for the root.
    nodes: Vec<(u32, Transform)>,
    /// Per node: the set of its chain's steps, and the same without the steps
    /// that only change letter case.
    steps: Vec<(ChangeSet, ChangeSet)>,
    index: FxHashMap<(u32, Transform), u32>,
}

impl Default for ChainTable {
    fn default() -> Self {
        ChainTable { nodes: vec![(0, Transform::Lowercase)], steps: vec![(0, 0)], index: FxHashMap::default() }
    }
}

impl ChainTable {
    /// Interns `chain`, returning its node id (0 for the empty chain).
    pub fn intern(&mut self, chain: &[Transform]) -> u32 {
        let mut node = 0u32;
        for &t in chain {
            node = match self.index.get(&(node, t)) {
                Some(n) => *n,
                None => {
                    let n = self.nodes.len() as u32;
                    let (all, scan) = self.steps[node as usize];
                    let scan = if t.only_changes_case() { scan } else { scan | t.bit() };
                    self.steps.push((all | t.bit(), scan));
                    self.nodes.push((node, t));
                    self.index.insert((node, t), n);
                    n
                }
            };
        }
        node
    }

    /// Number of interned nodes (including the root).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether only the empty chain exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// The chain without its last step (`None` for the empty chain).
    pub fn parent(&self, node: u32) -> Option<u32> {
        self.step(node).map(|(p, _)| p)
    }

    /// The steps of a node's chain (all of them, and those that change more than case).
    fn step_sets(&self, node: u32) -> (ChangeSet, ChangeSet) {
        self.steps.get(node as usize).copied().unwrap_or((ChangeSet::MAX, ChangeSet::MAX))
    }

    /// The steps of a node's chain that change more than letter case (those that can change
    /// a value's prefilter scan).
    pub fn scan_steps(&self, node: u32) -> ChangeSet {
        self.step_sets(node).1
    }

    fn step(&self, node: u32) -> Option<(u32, Transform)> {
        if node == 0 {
            return None;
        }
        self.nodes.get(node as usize).copied()
    }
}

/// One memoized result.
#[derive(Debug)]
struct Slot {
    /// Transformed value; `None` means "the raw value itself".
    val: Option<Vec<u8>>,
    /// 1 + offset of the value's prefilter scan in `TCache::scans` (0: not scanned yet).
    bits: u32,
    /// For raw slots: the transformations that may change the value ([`changes`]).
    changes: ChangeSet,
}

/// Per-transaction memo of transformation results, keyed by the raw value's
/// address and length (values live in the transaction and do not change within
/// a phase) and the chain node. Cleared at every phase start. Prefilter scans
/// and group unions live in two flat tables (one allocation each, reused
/// across phases) rather than one boxed bitset per value.
#[derive(Debug, Default)]
pub struct TCache {
    map: FxHashMap<(usize, usize, u32), u32>,
    slots: Vec<Slot>,
    /// Prefilter scans of slots, `words` per scan.
    scans: Vec<u64>,
    /// Per prefilter group (see `Gate::group`): 1 + offset of the union of its
    /// values' scans in `unions` (0: not computed in this phase).
    groups: Vec<u32>,
    unions: Vec<u64>,
    /// Per union (indexed and grown with `groups`), for unions of raw values: the
    /// transformations that may change one of its values (see [`Self::raw_scan_into_group`]).
    union_changes: Vec<ChangeSet>,
    /// The last raw value looked up (address, length) and its slot.
    last_raw: Option<((usize, usize), u32)>,
}

/// Whether `bit` is set in a scan bitset (missing words count as set, to stay safe).
pub fn bit_set(bits: &[u64], bit: u32) -> bool {
    bits.get(bit as usize / 64).is_none_or(|w| w & (1 << (bit % 64)) != 0)
}

impl TCache {
    /// Forgets everything (at phase start, when values may be replaced).
    pub fn clear(&mut self) {
        self.last_raw = None;
        self.map.clear();
        self.slots.clear();
        self.scans.clear();
        self.clear_groups();
    }

    /// Whether the tables are no larger than a large ordinary request needs (so they
    /// are worth keeping for the next transaction; see `engine::ScratchPool`).
    pub fn is_ordinary_size(&self) -> bool {
        self.map.capacity() <= 4096
            && self.slots.capacity() <= 4096
            && self.scans.capacity() <= 1 << 16
            && self.unions.capacity() <= 1 << 16
    }

    /// Forgets the group unions only (values of the next phase may differ).
    pub fn clear_groups(&mut self) {
        self.groups.clear();
        self.unions.clear();
        self.union_changes.clear();
    }

    /// The memoized scan union of a prefilter group, if computed in this phase.
    pub fn group(&self, g: u32, pf: &Prefilter) -> Option<&[u64]> {
        let off = self.group_off(g)?;
        self.unions.get(off..off + pf.words())
    }

    /// Offset of group `g`'s union in `unions`, if begun in this phase.
    fn group_off(&self, g: u32) -> Option<usize> {
        (*self.groups.get(g as usize)? as usize).checked_sub(1)
    }

    /// Starts a group's union (all bits clear); values are added with [`Self::or_scan_into_group`].
    pub fn begin_group(&mut self, g: u32, pf: &Prefilter) {
        let i = g as usize;
        if self.groups.len() <= i {
            // Grow geometrically: a request touches most groups, in increasing order.
            let n = (i + 1).max(2 * self.groups.len()).max(64);
            self.groups.resize(n, 0);
            self.union_changes.resize(n, 0);
        }
        let off = self.unions.len();
        self.unions.resize(off + pf.words(), 0);
        self.groups[i] = off as u32 + 1;
        self.union_changes[i] = 0;
    }

    /// Marks every literal as present in a group's union (a value that cannot be scanned),
    /// and every transformation as one that may change its values.
    pub fn fill_group(&mut self, g: u32, pf: &Prefilter) {
        self.add_union_changes(g, ChangeSet::MAX);
        if let Some(off) = self.group_off(g) {
            if let Some(u) = self.unions.get_mut(off..off + pf.words()) {
                u.fill(u64::MAX);
            }
        }
    }

    /// ORs the prefilter scan of a slot's value into group `g`'s union.
    pub fn or_scan_into_group(&mut self, slot: u32, raw: &[u8], pf: &Prefilter, g: u32) {
        let words = pf.words();
        let Some(soff) = self.scan(slot, raw, pf) else {
            self.fill_group(g, pf);
            return;
        };
        let (Some(goff), Some(scan)) = (self.group_off(g), self.scans.get(soff..soff + words)) else { return };
        or_words(&mut self.unions, goff, scan);
    }

    /// ORs the scan of the untransformed `raw` into group `g`'s union and notes the
    /// transformations that may change `raw` (see [`Self::union_changes`]).
    pub fn raw_scan_into_group(&mut self, raw: &[u8], pf: &Prefilter, g: u32) {
        let slot = self.raw_slot(raw);
        let changes = self.slots.get(slot as usize).map_or(ChangeSet::MAX, |s| s.changes);
        self.add_union_changes(g, changes);
        self.or_scan_into_group(slot, raw, pf, g);
    }

    /// Notes that a value of group `g` may be changed by the transformations in `changes`.
    fn add_union_changes(&mut self, g: u32, changes: ChangeSet) {
        if let Some(c) = self.union_changes.get_mut(g as usize) {
            *c |= changes;
        }
    }

    /// The transformations that may change one of the values ORed into group `g` by
    /// [`Self::raw_scan_into_group`] (all of them once [`Self::fill_group`] filled it).
    pub fn union_changes(&self, g: u32) -> ChangeSet {
        self.union_changes.get(g as usize).copied().unwrap_or(0)
    }

    /// ORs group `src`'s union and the transformations that may change its values
    /// (see [`Self::union_changes`]) into group `dst`.
    pub fn or_group_into(&mut self, src: u32, dst: u32, pf: &Prefilter) {
        self.add_union_changes(dst, self.union_changes(src));
        let Some(d) = self.group_off(dst) else { return };
        let words = pf.words();
        match self.group_off(src) {
            // Both unions lie in the same table: word by word, within the bounds checked here.
            Some(s) if self.unions.len() >= s.max(d) + words => {
                for i in 0..words {
                    let w = self.unions[s + i];
                    self.unions[d + i] |= w;
                }
            }
            // Never skip on account of a union that was not computed.
            _ => self.fill_group(dst, pf),
        }
    }

    /// Offset of a slot's scan in `scans`, scanning on first use.
    fn scan(&mut self, slot: u32, raw: &[u8], pf: &Prefilter) -> Option<usize> {
        let s = self.slots.get_mut(slot as usize)?;
        if s.bits == 0 {
            let off = self.scans.len();
            self.scans.resize(off + pf.words(), 0);
            pf.scan_into(s.val.as_deref().unwrap_or(raw), &mut self.scans[off..]);
            s.bits = off as u32 + 1;
        }
        Some(s.bits as usize - 1)
    }

    /// The slot holding `raw` transformed by chain `node`, computing it (and its
    /// prefixes) if needed. A chain none of whose steps can change the value (one
    /// pass over the value tells, see [`changes`]) gives the raw slot at once.
    pub fn slot(&mut self, chains: &ChainTable, raw: &[u8], node: u32) -> u32 {
        if self.map.capacity() == 0 {
            // A CRS request memoizes a few hundred (value, chain) pairs per phase.
            self.map.reserve(512);
            self.slots.reserve(128);
        }
        // Most values are left as they are by the chain: then the raw slot is the answer,
        // and the (value, chain) pair needs no entry of its own.
        let raw_slot = self.raw_slot(raw);
        if node == 0 || self.slots.get(raw_slot as usize).is_some_and(|s| s.changes & chains.step_sets(node).0 == 0) {
            return raw_slot;
        }
        let key = (raw.as_ptr() as usize, raw.len(), node);
        if let Some(s) = self.map.get(&key) {
            return *s;
        }
        let s = match chains.step(node) {
            None => raw_slot,
            Some((parent, tr)) => {
                let ps = self.slot(chains, raw, parent);
                match tr.apply_changed(self.value(ps, raw)) {
                    None => ps,
                    Some(v) => self.push(Some(v), 0),
                }
            }
        };
        self.map.insert(key, s);
        s
    }

    /// The slot of the untransformed value (created with its [`changes`] on first use).
    fn raw_slot(&mut self, raw: &[u8]) -> u32 {
        let key = (raw.as_ptr() as usize, raw.len(), 0);
        // A link asks for the same value several times in a row (its scan, then its
        // transformed value, or each step of a multiMatch chain).
        if let Some((k, s)) = self.last_raw {
            if k == (key.0, key.1) {
                return s;
            }
        }
        let s = match self.map.get(&key) {
            Some(s) => *s,
            None => {
                let s = self.push(None, changes(raw));
                self.map.insert(key, s);
                s
            }
        };
        self.last_raw = Some(((key.0, key.1), s));
        s
    }

    /// A slot whose value has the same prefilter scan as `raw` transformed by chain
    /// `node`: the raw slot when the chain's steps can at most change letter case
    /// on this value (the scan ignores case), else the chain's own slot.
    pub fn scan_slot(&mut self, chains: &ChainTable, raw: &[u8], node: u32) -> u32 {
        let raw_slot = self.raw_slot(raw);
        if self.slots[raw_slot as usize].changes & chains.step_sets(node).1 == 0 {
            raw_slot
        } else {
            self.slot(chains, raw, node)
        }
    }

    fn push(&mut self, val: Option<Vec<u8>>, changes: ChangeSet) -> u32 {
        self.slots.push(Slot { val, bits: 0, changes });
        (self.slots.len() - 1) as u32
    }

    /// The value of a slot (`raw` for untransformed slots).
    pub fn value<'a>(&'a self, slot: u32, raw: &'a [u8]) -> &'a [u8] {
        self.slots.get(slot as usize).and_then(|s| s.val.as_deref()).unwrap_or(raw)
    }

    /// Whether the prefilter saw one of rule `bit`'s literals in the slot's value.
    pub fn has_literal(&mut self, slot: u32, raw: &[u8], pf: &Prefilter, bit: u32) -> bool {
        let words = pf.words();
        self.scan(slot, raw, pf).and_then(|off| self.scans.get(off..off + words)).is_none_or(|bits| bit_set(bits, bit))
    }
}

/// ORs `words` into the union at offset `off` of `unions`.
fn or_words(unions: &mut [u64], off: usize, words: &[u64]) {
    if let Some(union) = unions.get_mut(off..off + words.len()) {
        for (u, w) in union.iter_mut().zip(words) {
            *u |= *w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Transform::*;

    /// A prefilter for two rules, one needing `union` and one `script`: (prefilter, their bits).
    fn union_script_prefilter() -> (Prefilter, u32, u32) {
        let mut b = crate::prefilter::PrefilterBuilder::default();
        let union = b.add(&[b"union".to_vec()]);
        let script = b.add(&[b"script".to_vec()]);
        (b.build().unwrap(), union, script)
    }

    #[test]
    fn group_unions_combine_scans() {
        let (pf, union, script) = union_script_prefilter();
        let t = ChainTable::default();
        let mut c = TCache::default();
        assert!(c.group(3, &pf).is_none());
        c.begin_group(3, &pf);
        for raw in [&b"a UNION b"[..], b"plain"] {
            let s = c.slot(&t, raw, 0);
            c.or_scan_into_group(s, raw, &pf, 3);
            assert_eq!(c.has_literal(s, raw, &pf, union), raw != b"plain");
        }
        let u = c.group(3, &pf).unwrap();
        assert!(bit_set(u, union) && !bit_set(u, script));
        c.fill_group(3, &pf);
        assert!(bit_set(c.group(3, &pf).unwrap(), script));
        c.clear_groups();
        assert!(c.group(3, &pf).is_none());
    }

    #[test]
    fn group_unions_combine_in_either_order() {
        let (pf, union, script) = union_script_prefilter();
        let t = ChainTable::default();
        let mut c = TCache::default();
        let add = |c: &mut TCache, g: u32, raw: &[u8]| {
            c.begin_group(g, &pf);
            let s = c.slot(&t, raw, 0);
            c.or_scan_into_group(s, raw, &pf, g);
        };
        // Source before and after the destination in the table.
        add(&mut c, 1, b"a union");
        add(&mut c, 2, b"plain");
        add(&mut c, 3, b"<script>");
        c.or_group_into(1, 2, &pf);
        c.or_group_into(3, 2, &pf);
        let u = c.group(2, &pf).unwrap();
        assert!(bit_set(u, union) && bit_set(u, script));
        // A source not computed in this phase fills the destination rather than adding nothing.
        add(&mut c, 4, b"plain");
        c.or_group_into(9, 4, &pf);
        assert!(bit_set(c.group(4, &pf).unwrap(), union));
    }

    #[test]
    fn chains_share_prefixes() {
        let mut t = ChainTable::default();
        let a = t.intern(&[UrlDecodeUni]);
        let b = t.intern(&[UrlDecodeUni, Lowercase]);
        assert_eq!(t.intern(&[UrlDecodeUni]), a);
        assert_eq!(t.step(b), Some((a, Lowercase)));
        assert_eq!(t.intern(&[]), 0);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn memo_matches_direct_application() {
        let mut t = ChainTable::default();
        let chain = [UrlDecodeUni, HtmlEntityDecode, Lowercase, CompressWhitespace];
        let n = t.intern(&chain);
        let short = t.intern(&chain[..2]);
        let mut c = TCache::default();
        for raw in [&b"plain"[..], b"A%20B&lt;C  D", b""] {
            let mut want = raw.to_vec();
            for tr in chain {
                want = tr.apply(&want);
            }
            let s = c.slot(&t, raw, n);
            assert_eq!(c.value(s, raw), want.as_slice());
            // Asking again hits the memo; a clean value shares the raw slot.
            assert_eq!(c.slot(&t, raw, n), s);
            if raw == b"plain" {
                assert_eq!(c.slot(&t, raw, short), c.slot(&t, raw, 0));
            }
        }
    }
}
