//! A compiled rule (one link of a chain, or a `SecAction`).

use crate::actions::{Actions, Disruptive};
use crate::error::Loc;
use crate::operators::Operator;
use crate::transforms::Transform;
use crate::txcheck::TxCheck;
use crate::variables::Targets;
use std::sync::Arc;

/// An executable rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Rule id (0 for chain links).
    pub id: u64,
    /// Phase 1..5.
    pub phase: u8,
    /// Targets; empty for `SecAction` (evaluated once, unconditionally). Links with the same
    /// list share one copy (see `engine::share_target_lists`).
    pub targets: Arc<Targets>,
    /// Operator.
    pub operator: Operator,
    /// Transformations.
    pub transforms: Vec<Transform>,
    /// Actions.
    pub actions: Actions,
    /// Resolved disruptive action.
    pub disruptive: Disruptive,
    /// Whether a match is logged.
    pub log: bool,
    /// Next link of the chain.
    pub chained: Option<Box<Rule>>,
    /// Source location.
    pub loc: Loc,
    /// `SecAction` (no targets).
    pub is_action: bool,
    /// Node of `transforms` in the engine's [`crate::tcache::ChainTable`] (same list, same id).
    pub chain_id: u32,
    /// Bit in the shared literal prefilter, for `@rx` and short `@pm` links that have
    /// necessary literals.
    pub pf_bit: Option<u32>,
    /// The link's prefilter gate, when its literals and targets allow one.
    pub gate: Option<Gate>,
    /// The link's fast path when it only compares one TX variable (see [`crate::txcheck`]);
    /// set when the engine is built.
    pub tx_check: Option<TxCheck>,
    /// Ids of the (case-folded) tags in the engine's tag table, sorted; filled when the
    /// engine is built (see [`crate::actions::TagRef`]).
    pub tag_ids: Vec<u32>,
}

/// What the prefilter needs to rule a link out (see `Transaction::gate_open`). A head link's
/// gate is also in the engine's per-phase [`crate::engine::Step`] list, so that skipping a
/// rule does not read the rule itself (nine cache lines, most of them cold on a request's
/// first visit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// Prefilter group: links with the same targets, exclusions and chain share one union of
    /// their values' prefilter scans per phase, so a link whose literals occur in none of the
    /// values is skipped without visiting them.
    pub group: u32,
    /// The group's targets and exclusions without the chain (shared by the groups that differ
    /// only in their chain): the union of the raw values' scans decides for every such group
    /// whose chain leaves all of the values as they are.
    pub targets: u32,
    /// [`Rule::pf_bit`].
    pub bit: u32,
    /// [`Rule::chain_id`].
    pub chain_id: u32,
    /// A `multiMatch` link: its operator also sees the raw value and each intermediate one, so
    /// the group's union (after the whole chain) cannot rule it out. Only the raw values' union
    /// can, when the chain leaves every value as it is; otherwise the gate is open (scanning
    /// every intermediate value costs more than such a link: measured in session 19).
    pub every_step: bool,
}

impl Rule {
    /// Calls `f` on the rule and then on each further link of its chain.
    pub fn for_each_link_mut(&mut self, mut f: impl FnMut(&mut Rule)) {
        let mut link = Some(self);
        while let Some(l) = link {
            f(l);
            link = l.chained.as_deref_mut();
        }
    }

    /// Whether the rule carries tag `t` (case-insensitive).
    pub fn has_tag(&self, t: &str) -> bool {
        self.actions.tags.iter().any(|x| x.eq_ignore_ascii_case(t))
    }

    /// Whether the rule carries the tag with this id (see [`Rule::tag_ids`]).
    pub fn has_tag_id(&self, id: u32) -> bool {
        self.tag_ids.binary_search(&id).is_ok()
    }
}
