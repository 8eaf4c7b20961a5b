//! TX variables in fixed slots.
//!
//! Every TX name the rules spell out (`setvar:tx.foo`, `TX:foo` targets,
//! `%{tx.foo}` macros, the capture keys `0`..`9`) is interned into a slot
//! number when the engine is built ([`TxNames`]), and the references are
//! resolved to slots then ([`resolve_link`]). A transaction keeps its TX
//! collection in a [`TxStore`]: a vector indexed by slot, whose short values
//! live inline, so the request path neither hashes nor allocates for them.
//! Names only known at run time (keys built from macros, such as
//! `tx.header_name_%{tx.0}`) are looked up by name: an interned name maps to
//! its slot, any other name lives in a small map beside the slots.

use crate::fxhash::FxHashMap;
use crate::macros::{Macro, MacroRef, Part};
use crate::operators::Arg;
use crate::rule::Rule;
use crate::variables::{KeySel, Var};
use smallvec::SmallVec;
use std::sync::Arc;

/// A TX value; values up to 24 bytes (numbers, flags, short names) stay inline.
pub type TxValue = SmallVec<[u8; 24]>;

/// Largest value buffer a cleared store keeps for the next transaction.
const MAX_KEPT_VALUE: usize = 1024;

/// The TX names known when the engine was built, each with its slot.
#[derive(Debug, Default, Clone)]
pub struct TxNames {
    names: Vec<Box<str>>,
    index: FxHashMap<Box<str>, u32>,
}

impl TxNames {
    /// The slot of a (lower-case) name, adding it if new.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(s) = self.index.get(name) {
            return *s;
        }
        let s = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), s);
        s
    }

    /// The slot of a (lower-case) name, if interned.
    pub fn slot(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The name of a slot.
    pub fn name(&self, slot: u32) -> &str {
        self.names.get(slot as usize).map(|n| &**n).unwrap_or("")
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no name is interned.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Resolves `%{tx.name}` references with a literal name to slots.
fn resolve_macro(m: &mut Macro, names: &mut TxNames) {
    for p in &mut m.parts {
        if let Part::Ref(MacroRef::Var(Var::Tx, Some(k))) = p {
            *p = Part::Ref(MacroRef::TxSlot(names.intern(k)));
        }
    }
}

/// Interns the TX names a link uses and stores their slots.
pub fn resolve_link(l: &mut Rule, names: &mut TxNames) {
    for t in &mut Arc::make_mut(&mut l.targets).targets {
        if let (Var::Tx, KeySel::Exact(k)) = (t.var, &t.key) {
            t.tx_slot = std::str::from_utf8(k).ok().map(|k| names.intern(k));
        }
    }
    for sv in &mut l.actions.setvars {
        let (key, value) = sv.parts_mut();
        if let Some(lit) = key.name.literal_ref().and_then(|l| std::str::from_utf8(l).ok()) {
            key.slot = Some(names.intern(lit));
        } else {
            resolve_macro(&mut key.name, names);
        }
        if let Some(v) = value {
            resolve_macro(v, names);
        }
    }
    for m in [&mut l.actions.msg, &mut l.actions.logdata].into_iter().flatten() {
        resolve_macro(m, names);
    }
    if let Some(Arg::Macro(m)) = l.operator.op.arg_mut() {
        resolve_macro(m, names);
    }
}

/// Gives every `TX` target without a slot of its own (`TX`, `TX:/regex/`) the slots of the
/// interned names its key selects (see [`crate::variables::Target::tx_slots`]), so that a
/// transaction visits those slots rather than testing the key on every name. Call it on each
/// link once every rule's names are interned.
pub fn resolve_tx_keys(l: &mut Rule, names: &TxNames) {
    for t in &mut Arc::make_mut(&mut l.targets).targets {
        if t.var == Var::Tx && t.tx_slot.is_none() {
            t.tx_slots = (0..names.len() as u32).filter(|&s| t.key.matches(names.name(s).as_bytes())).collect();
        }
    }
}

/// A transaction's TX collection.
#[derive(Debug, Default)]
pub struct TxStore {
    /// Per slot: 0 if never set, else 1 + the index of its entry in `vals`
    /// (a zeroed table is cheap to create; most slots are never set).
    index: Vec<u32>,
    /// Values of the slots set so far, and whether each is currently set: the first `used`
    /// entries. Entries past `used` are kept from earlier transactions for their buffers
    /// (CRS's setup sets lists such as `tx.restricted_extensions`, too long to be inline).
    vals: Vec<(TxValue, bool)>,
    used: usize,
    /// Values of names that have no slot.
    extra: FxHashMap<String, Vec<u8>>,
}

impl TxStore {
    /// An empty collection for `n` slots.
    pub fn new(n: usize) -> TxStore {
        TxStore { index: vec![0; n], vals: Vec::with_capacity(128), used: 0, extra: FxHashMap::default() }
    }

    /// Forgets every value, keeping the tables' capacity (for the next transaction).
    pub fn clear(&mut self) {
        self.index.fill(0);
        // Keep the buffers for the next transaction, but not a large one (a value copied from
        // the request by a macro can be as long as the request).
        for (v, _) in self.vals.iter_mut().take(self.used) {
            if v.capacity() > MAX_KEPT_VALUE {
                *v = TxValue::new();
            }
        }
        self.used = 0;
        self.extra.clear();
    }

    /// Whether the tables are no larger than an ordinary request needs (see `engine::ScratchPool`).
    pub fn is_ordinary_size(&self) -> bool {
        self.vals.capacity() <= 1024 && self.extra.capacity() <= 256
    }

    /// The value in a slot.
    pub fn get_slot(&self, slot: u32) -> Option<&[u8]> {
        let i = *self.index.get(slot as usize)?;
        match self.vals.get((i as usize).wrapping_sub(1)) {
            Some((v, true)) => Some(v.as_slice()),
            _ => None,
        }
    }

    /// Sets a slot (reusing its buffer).
    pub fn set_slot(&mut self, slot: u32, val: &[u8]) {
        let Some(i) = self.index.get_mut(slot as usize) else { return };
        match self.vals.get_mut((*i as usize).wrapping_sub(1)) {
            Some((v, present)) => {
                v.clear();
                v.extend_from_slice(val);
                *present = true;
            }
            None => {
                match self.vals.get_mut(self.used) {
                    Some((v, present)) => {
                        v.clear();
                        v.extend_from_slice(val);
                        *present = true;
                    }
                    None => self.vals.push((TxValue::from_slice(val), true)),
                }
                self.used += 1;
                *i = self.used as u32;
            }
        }
    }

    /// Removes a slot's value.
    pub fn remove_slot(&mut self, slot: u32) {
        let Some(&i) = self.index.get(slot as usize) else { return };
        if let Some((_, present)) = self.vals.get_mut((i as usize).wrapping_sub(1)) {
            *present = false;
        }
    }

    /// The value of a (lower-case) name.
    pub fn get(&self, names: &TxNames, name: &str) -> Option<&[u8]> {
        match names.slot(name) {
            Some(s) => self.get_slot(s),
            None => self.extra.get(name).map(Vec::as_slice),
        }
    }

    /// Sets a (lower-case) name.
    pub fn set(&mut self, names: &TxNames, name: &str, val: &[u8]) {
        match names.slot(name) {
            Some(s) => self.set_slot(s, val),
            None => match self.extra.get_mut(name) {
                Some(cur) => {
                    cur.clear();
                    cur.extend_from_slice(val);
                }
                None => {
                    self.extra.insert(name.to_string(), val.to_vec());
                }
            },
        }
    }

    /// Removes a (lower-case) name.
    pub fn remove(&mut self, names: &TxNames, name: &str) {
        match names.slot(name) {
            Some(s) => self.remove_slot(s),
            None => {
                self.extra.remove(name);
            }
        }
    }

    /// The set variables whose names were not interned (see [`Self::set`]), as (name, value).
    pub fn iter_unnamed(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.extra.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// All set variables as (name, value): slots in order, then the others.
    pub fn iter<'a>(&'a self, names: &'a TxNames) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let slots = (0..self.index.len() as u32).filter_map(move |i| self.get_slot(i).map(|v| (names.name(i), v)));
        slots.chain(self.iter_unnamed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_names_agree() {
        let mut n = TxNames::default();
        let a = n.intern("anomaly_score");
        assert_eq!(n.intern("anomaly_score"), a);
        let mut s = TxStore::new(n.len());
        s.set_slot(a, b"5");
        assert_eq!(s.get(&n, "anomaly_score"), Some(&b"5"[..]));
        // A name without a slot lives beside the slots.
        s.set(&n, "header_name_x", b"/x/");
        assert_eq!(s.get(&n, "header_name_x"), Some(&b"/x/"[..]));
        s.set(&n, "anomaly_score", b"a value longer than twenty-four bytes");
        assert_eq!(s.get_slot(a), Some(&b"a value longer than twenty-four bytes"[..]));
        let all: Vec<_> = s.iter(&n).collect();
        assert_eq!(all.len(), 2);
        s.remove(&n, "anomaly_score");
        s.remove(&n, "header_name_x");
        assert_eq!(s.iter(&n).count(), 0);
        // Out-of-range slots are ignored rather than panicking.
        s.set_slot(99, b"1");
        assert_eq!(s.get_slot(99), None);
    }

    /// A cleared store (handed to the next transaction) shows none of the old values, though it
    /// keeps their buffers, and never a large one.
    #[test]
    fn a_cleared_store_starts_empty() {
        let mut n = TxNames::default();
        let (a, b) = (n.intern("restricted_extensions"), n.intern("blocking_paranoia_level"));
        let mut s = TxStore::new(n.len());
        s.set_slot(a, b".asa/ .asax/ .ascx/ .backup/ .bak/ .bat/");
        s.set_slot(b, &[b'x'; 4 * MAX_KEPT_VALUE]);
        s.clear();
        assert_eq!((s.get_slot(a), s.get_slot(b)), (None, None));
        assert_eq!(s.iter(&n).count(), 0);
        assert!(s.vals.iter().all(|(v, _)| v.capacity() <= MAX_KEPT_VALUE));
        // The slots are filled in another order this time: each gets its own value back.
        s.set_slot(b, b"1");
        s.set_slot(a, b".exe/");
        assert_eq!((s.get_slot(a), s.get_slot(b)), (Some(&b".exe/"[..]), Some(&b"1"[..])));
    }
}
