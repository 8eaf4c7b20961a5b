//! How the per-phase prefilter unions (see [`crate::tcache::TCache`]) are numbered, and the
//! atoms the unions of raw values are built from.
//!
//! Three kinds of union share the memo's group table, in this order:
//! * chain groups ([`crate::rule::Gate::group`]): a target set's values after a chain (never
//!   filled for `multiMatch` links, see [`crate::rule::Gate::every_step`]);
//! * target sets ([`crate::rule::Gate::targets`]): the raw values of a target list with
//!   its exclusions;
//! * atoms: the raw values of one target that selects many values (a whole collection, or
//!   the members whose key matches a regex) with the exclusions of its variable (the only
//!   ones that can remove its values). A target set's union is the OR of its atoms' unions
//!   and of its other targets' values; most atoms (`ARGS`, `ARGS_NAMES`,
//!   `REQUEST_COOKIES`, ...) are shared by many target sets, so their values are visited
//!   and ORed in once per phase rather than once per set.

use crate::variables::{Exclusion, KeySel, Target, Targets};
use std::collections::HashMap;

/// One target selecting many values, and the exclusions that apply to its variable.
#[derive(Debug, Clone)]
pub struct Atom {
    /// The target.
    pub target: Target,
    /// The target list's exclusions of the target's variable.
    pub exclusions: Vec<Exclusion>,
}

/// How the union of a target set is built.
#[derive(Debug, Default)]
pub struct SetPlan {
    /// Union indices of its atoms.
    pub atoms: Vec<u32>,
    /// Its other targets (scalars and single members: one value each, cheaper to add
    /// directly than through a union of their own) and its exclusions.
    pub direct: Targets,
}

/// The numbering of an engine's unions (see the module documentation).
#[derive(Debug, Default)]
pub struct UnionPlan {
    groups: u32,
    sets: Vec<SetPlan>,
    atoms: Vec<Atom>,
}

impl UnionPlan {
    /// Number of chain groups.
    pub fn groups(&self) -> usize {
        self.groups as usize
    }

    /// The union index of target set `ts`.
    pub fn set_union(&self, ts: u32) -> u32 {
        self.groups.saturating_add(ts)
    }

    /// How target set `ts`'s union is built.
    pub fn set(&self, ts: u32) -> Option<&SetPlan> {
        self.sets.get(ts as usize)
    }

    /// The atom with union index `u`.
    pub fn atom(&self, u: u32) -> Option<&Atom> {
        let first = self.groups as usize + self.sets.len();
        self.atoms.get((u as usize).checked_sub(first)?)
    }
}

/// Interns target sets, their atoms and chain groups while an engine is built.
#[derive(Debug, Default)]
pub struct UnionPlanBuilder {
    sets: HashMap<String, u32>,
    atoms: HashMap<String, u32>,
    groups: HashMap<(u32, u32), u32>,
    plan: UnionPlan,
}

impl UnionPlanBuilder {
    /// The target set of a target list (its targets and exclusions).
    pub fn target_set(&mut self, targets: &Targets) -> u32 {
        let key = format!("{targets:?}");
        if let Some(&ts) = self.sets.get(&key) {
            return ts;
        }
        let mut set = SetPlan { atoms: Vec::new(), direct: Targets { targets: Vec::new(), exclusions: targets.exclusions.clone() } };
        for t in &targets.targets {
            if t.var.is_collection() && !matches!(t.key, KeySel::Exact(_)) {
                set.atoms.push(self.atom(t, &targets.exclusions));
            } else {
                set.direct.targets.push(t.clone());
            }
        }
        set.atoms.sort_unstable();
        set.atoms.dedup();
        let ts = self.plan.sets.len() as u32;
        self.plan.sets.push(set);
        self.sets.insert(key, ts);
        ts
    }

    /// The atom of `target` (its index among the atoms).
    fn atom(&mut self, target: &Target, exclusions: &[Exclusion]) -> u32 {
        let exclusions: Vec<Exclusion> = exclusions.iter().filter(|e| e.var == target.var).cloned().collect();
        let key = format!("{target:?}{exclusions:?}");
        if let Some(&a) = self.atoms.get(&key) {
            return a;
        }
        let a = self.plan.atoms.len() as u32;
        self.plan.atoms.push(Atom { target: target.clone(), exclusions });
        self.atoms.insert(key, a);
        a
    }

    /// The chain group of target set `ts` under chain node `chain`.
    pub fn group(&mut self, ts: u32, chain: u32) -> u32 {
        let n = self.groups.len() as u32;
        *self.groups.entry((ts, chain)).or_insert(n)
    }

    /// The finished plan.
    pub fn build(mut self) -> UnionPlan {
        self.plan.groups = self.groups.len() as u32;
        // Atoms are numbered after the chain groups and the target sets.
        let first = self.plan.groups.saturating_add(self.plan.sets.len() as u32);
        for set in &mut self.plan.sets {
            for a in &mut set.atoms {
                *a = a.saturating_add(first);
            }
        }
        self.plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variables::Var;

    fn target(var: Var) -> Target {
        Target { var, key: KeySel::All, count: false, tx_slot: None, tx_slots: Vec::new() }
    }

    #[test]
    fn sets_share_atoms_with_the_exclusions_of_their_variable() {
        let mut b = UnionPlanBuilder::default();
        let excl = |var| Exclusion { var, key: KeySel::Exact(b"x".to_vec()) };
        let a = Targets { targets: vec![target(Var::Args), target(Var::ArgsNames)], exclusions: vec![excl(Var::RequestCookies)] };
        let c = Targets { targets: vec![target(Var::ArgsNames), target(Var::RequestCookies)], exclusions: vec![excl(Var::RequestCookies)] };
        let (ta, tc) = (b.target_set(&a), b.target_set(&c));
        assert_eq!(b.target_set(&a), ta);
        assert_eq!((b.group(ta, 0), b.group(tc, 0), b.group(ta, 0)), (0, 1, 0));
        let plan = b.build();
        assert_eq!((plan.groups(), plan.set_union(tc)), (2, 3));
        let atoms = |ts| {
            let set = plan.set(ts).unwrap();
            set.atoms.iter().map(|&u| plan.atom(u).map(|at| (u, at.target.var, at.exclusions.len()))).collect::<Option<Vec<_>>>().unwrap()
        };
        // Unions: 2 groups, 2 sets, then atoms ARGS (4), ARGS_NAMES (5), REQUEST_COOKIES (6).
        assert_eq!(atoms(ta), vec![(4, Var::Args, 0), (5, Var::ArgsNames, 0)]);
        assert_eq!(atoms(tc), vec![(5, Var::ArgsNames, 0), (6, Var::RequestCookies, 1)]);
    }

    #[test]
    fn single_values_are_added_directly() {
        let ua = Target { key: KeySel::Exact(b"user-agent".to_vec()), ..target(Var::RequestHeaders) };
        let d = Targets { targets: vec![ua, target(Var::QueryString)], exclusions: vec![] };
        let mut b = UnionPlanBuilder::default();
        let td = b.target_set(&d);
        let plan = b.build();
        let set = plan.set(td).unwrap();
        assert!(set.atoms.is_empty() && set.direct.targets.len() == 2);
    }
}
