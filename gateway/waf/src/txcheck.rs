//! Fast path for chain links that compare one TX variable with an argument.
//!
//! About 120 links per request test a TX variable: CRS's paranoia-level skips
//! (`TX:DETECTION_PARANOIA_LEVEL "@lt 2"` with `skipAfter`), its initialisation rules
//! (`&TX:blocking_paranoia_level "@eq 0"`), the anomaly-score checks. Such a link selects at
//! most one value (or its count), has nothing to transform and, with a text-argument operator
//! (`@eq`, `@lt`, `@streq`, `@within`, ...), never captures. The transaction reads the slot and
//! runs the operator directly ([`TxCheck::select`]) instead of going through the target
//! visitor and the per-value match bookkeeping. [`TxCheck::of`] decides when the engine is
//! built which links qualify; a link with exclusions, transformations, `multiMatch` or another
//! operator takes the generic path, as does any link while a `ctl:ruleRemoveTarget…` of a TX
//! variable is active (one of another variable cannot exclude the link's value).

use crate::rule::Rule;
use crate::txvars::{TxNames, TxStore};
use crate::variables::Var;

/// A link whose only target is one interned TX name (`TX:name` or `&TX:name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxCheck {
    /// The name's slot (see [`crate::txvars`]).
    pub slot: u32,
    /// `&TX:name`: the value is the number of values (0 or 1).
    pub count: bool,
}

impl TxCheck {
    /// The fast-path form of `rule`'s own link (not its chain), if it qualifies. Call it once
    /// the rule's TX names are resolved to slots.
    pub fn of(rule: &Rule) -> Option<TxCheck> {
        let [t] = rule.targets.targets.as_slice() else { return None };
        let qualifies = t.var == Var::Tx
            && !rule.is_action
            && rule.targets.exclusions.is_empty()
            && rule.transforms.is_empty()
            && !rule.actions.multi_match
            && rule.operator.op.arg().is_some();
        Some(TxCheck { slot: t.tx_slot.filter(|_| qualifies)?, count: t.count })
    }

    /// The value the link inspects and its key, as the target visitor gives them: the slot's
    /// value under its name, or for `&TX:name` the count under an empty key; `None` when a
    /// plain `TX:name` is not set.
    pub fn select<'a>(&self, tx: &'a TxStore, names: &'a TxNames) -> Option<(&'a [u8], &'a [u8])> {
        let value = tx.get_slot(self.slot);
        if self.count {
            return Some((b"", if value.is_some() { b"1" } else { b"0" }));
        }
        Some((names.name(self.slot).as_bytes(), value?))
    }
}
