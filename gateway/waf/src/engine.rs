//! The rule set: loads SecLang directives into per-phase rule lists, applies
//! load-time removal/update directives and resolves `skipAfter` jumps.
//! An [`Engine`] is immutable, `Send + Sync` and cheap to clone.

use crate::actions::{compile_actions, Actions, BodyProcessor, Ctl, Disruptive, Mode, TagRef};
use crate::error::{LoadError, Loc};
use crate::operators::{self, Operator};
use crate::parser::{parse_actions, parse_operator, parse_targets, split_directives, Directive, RawOperator};
use crate::prefilter::{Prefilter, PrefilterBuilder};
use crate::rule::{Gate, Rule};
use crate::tcache::{ChainTable, TCache};
use crate::transaction::{MatchBuffers, Transaction, TX_PRESET_NAMES};
use crate::transforms::ALWAYS_CHANGE;
use crate::txcheck::TxCheck;
use crate::txvars::{resolve_link, resolve_tx_keys, TxNames, TxStore};
use crate::unions::{UnionPlan, UnionPlanBuilder};
use crate::variables::{compile_targets, Targets};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What to do with a body larger than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLimitAction {
    /// Inspect the first `limit` bytes only (ModSecurity's `ProcessPartial`).
    ProcessPartial,
    /// Interrupt with 413 (request) / 500 (response) when the mode is `On`.
    Reject,
}

/// Engine settings that are not SecLang rules.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Blocking paranoia level 1..4 (used by [`Engine::from_crs_dir`]).
    pub paranoia: u8,
    /// Detection paranoia level (defaults to `paranoia` when `None`).
    pub detection_paranoia: Option<u8>,
    /// Rule engine mode.
    pub mode: Mode,
    /// Inbound anomaly threshold override (CRS default 5).
    pub inbound_threshold: Option<u32>,
    /// Outbound anomaly threshold override (CRS default 4).
    pub outbound_threshold: Option<u32>,
    /// Request body bytes inspected.
    pub request_body_limit: usize,
    /// Policy for larger request bodies.
    pub request_body_limit_action: BodyLimitAction,
    /// Response body bytes inspected.
    pub response_body_limit: usize,
    /// Policy for larger response bodies.
    pub response_body_limit_action: BodyLimitAction,
    /// Response content types whose body is inspected (prefix match on the media type).
    pub response_body_mime_types: Vec<String>,
    /// Extra SecLang text loaded after crs-setup and before the rules.
    pub extra_setup: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            paranoia: 1,
            detection_paranoia: None,
            mode: Mode::On,
            inbound_threshold: None,
            outbound_threshold: None,
            request_body_limit: 1 << 20,
            request_body_limit_action: BodyLimitAction::ProcessPartial,
            response_body_limit: 512 << 10,
            response_body_limit_action: BodyLimitAction::ProcessPartial,
            response_body_mime_types: vec!["text/plain".into(), "text/html".into(), "text/xml".into(), "application/json".into()],
            extra_setup: String::new(),
        }
    }
}

/// One rule of a phase's list: what the walk needs to pass over the rule without reading it
/// (40 bytes, where a [`Rule`] takes nine cache lines).
#[derive(Debug, Clone)]
pub(crate) struct Step {
    /// The rule's id, for `ctl:ruleRemoveById`.
    pub id: u64,
    /// Index into `rules`.
    pub rule: u32,
    /// The list position to go on at after a match (`skipAfter`, `skip`).
    pub jump: Option<u32>,
    /// The head link's prefilter gate.
    pub gate: Option<Gate>,
}

const _: () = assert!(std::mem::size_of::<Step>() == 40);

/// Immutable compiled rule set.
#[derive(Debug)]
pub(crate) struct Inner {
    pub rules: Vec<Rule>,
    pub phases: [Vec<Step>; 6],
    pub mode: Mode,
    pub cfg: EngineConfig,
    pub request_body_access: bool,
    pub response_body_access: bool,
    pub prefilter: Option<Prefilter>,
    /// The numbering of the prefilter unions: chain groups and target sets (see
    /// [`Gate`]) and their atoms.
    pub unions: UnionPlan,
    pub chains: ChainTable,
    /// TX names with slots (see [`crate::txvars`]).
    pub tx_names: TxNames,
    /// Memo tables and TX stores of finished transactions, cleared, for the next ones:
    /// they keep their capacity, so a request does not allocate and grow them anew.
    pub scratch_pool: ScratchPool,
}

/// The per-transaction tables worth reusing: the transformation memo, the TX store and the
/// match buffers.
#[derive(Debug)]
pub(crate) struct Scratch {
    pub tcache: TCache,
    pub tx: TxStore,
    pub bufs: MatchBuffers,
}

/// A bounded stack of cleared [`Scratch`]es shared by an engine's transactions.
#[derive(Debug, Default)]
pub(crate) struct ScratchPool(std::sync::Mutex<Vec<Scratch>>);

impl ScratchPool {
    /// At most this many are kept (about one per concurrent request).
    const MAX_KEPT: usize = 256;

    /// Cleared tables for a TX collection of `n_tx` slots: recycled ones, or new ones.
    pub fn take(&self, n_tx: usize) -> Scratch {
        let kept = self.0.lock().ok().and_then(|mut p| p.pop());
        kept.unwrap_or_else(|| Scratch { tcache: TCache::default(), tx: TxStore::new(n_tx), bufs: MatchBuffers::default() })
    }

    /// Clears `s` and keeps it for a later transaction, unless the pool is full or
    /// `s` grew beyond an ordinary request's size (a huge request's tables are freed).
    pub fn give(&self, mut s: Scratch) {
        if !s.tcache.is_ordinary_size() || !s.tx.is_ordinary_size() {
            return;
        }
        s.tcache.clear();
        s.tx.clear();
        if !s.bufs.is_ordinary_size() {
            s.bufs = MatchBuffers::default();
        }
        s.bufs.clear();
        if let Ok(mut p) = self.0.lock() {
            if p.len() < Self::MAX_KEPT {
                p.push(s);
            }
        }
    }
}

/// A loaded rule set, shared by all transactions.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

/// Accumulates directives while loading.
struct Loader {
    cfg: EngineConfig,
    entries: Vec<Entry>,
    defaults: [Option<Actions>; 6],
    chain: Vec<Rule>,
    chains: ChainTable,
    mode: Mode,
    request_body_access: bool,
    response_body_access: bool,
}

enum Entry {
    Rule(Box<Rule>),
    Marker(String),
}

fn in_range(id: u64, spec: &str) -> bool {
    spec.split([' ', ',']).filter(|s| !s.is_empty()).any(|p| match p.split_once('-') {
        Some((a, b)) => matches!((a.parse::<u64>(), b.parse::<u64>()), (Ok(a), Ok(b)) if a <= id && id <= b),
        None => p.parse::<u64>() == Ok(id),
    })
}

impl Loader {
    fn new(cfg: EngineConfig) -> Self {
        let mode = cfg.mode;
        Loader {
            cfg,
            entries: Vec::new(),
            defaults: Default::default(),
            chain: Vec::new(),
            chains: ChainTable::default(),
            mode,
            request_body_access: true,
            response_body_access: true,
        }
    }

    fn load_text(&mut self, name: &str, text: &str, base: &Path) -> Result<(), LoadError> {
        for d in split_directives(name, text)? {
            self.directive(&d, base)?;
        }
        Ok(())
    }

    fn arg(d: &Directive, i: usize) -> Result<&str, LoadError> {
        d.args.get(i).map(String::as_str).ok_or_else(|| d.loc.syntax(format!("{} needs {} argument(s)", d.name, i + 1)))
    }

    fn rules_mut(&mut self) -> impl Iterator<Item = &mut Rule> {
        rules_mut(&mut self.entries)
    }

    fn directive(&mut self, d: &Directive, base: &Path) -> Result<(), LoadError> {
        let loc = &d.loc;
        match d.name.to_ascii_lowercase().as_str() {
            "secrule" => {
                let vars = Self::arg(d, 0)?;
                let op = Self::arg(d, 1)?;
                let acts = d.args.get(2).map(String::as_str).unwrap_or("");
                self.add_rule(Some(vars), parse_operator(op), acts, base, loc)?;
            }
            "secaction" => {
                let acts = Self::arg(d, 0)?;
                let op = RawOperator { negated: false, name: "unconditionalMatch".into(), arg: String::new() };
                self.add_rule(None, op, acts, base, loc)?;
            }
            "secmarker" => {
                self.entries.push(Entry::Marker(Self::arg(d, 0)?.to_string()));
            }
            "secdefaultaction" => {
                let a = compile_actions(&parse_actions(Self::arg(d, 0)?, loc)?, loc)?;
                let phase = usize::from(a.phase.unwrap_or(2));
                if a.disruptive.is_none() {
                    return Err(loc.syntax("SecDefaultAction must name a disruptive action"));
                }
                self.defaults[phase] = Some(a);
            }
            "secruleengine" => {
                let v = Self::arg(d, 0)?;
                self.mode = Mode::parse(v).ok_or_else(|| loc.syntax(format!("bad SecRuleEngine '{v}'")))?;
            }
            "secrequestbodyaccess" => self.request_body_access = Self::arg(d, 0)?.eq_ignore_ascii_case("on"),
            "secresponsebodyaccess" => self.response_body_access = Self::arg(d, 0)?.eq_ignore_ascii_case("on"),
            "secrequestbodylimit" => self.cfg.request_body_limit = Self::arg(d, 0)?.parse().map_err(|_| loc.syntax("bad limit"))?,
            "secresponsebodylimit" => self.cfg.response_body_limit = Self::arg(d, 0)?.parse().map_err(|_| loc.syntax("bad limit"))?,
            "secresponsebodymimetype" => {
                self.cfg.response_body_mime_types = d.args.iter().flat_map(|a| a.split_whitespace()).map(str::to_string).collect()
            }
            "seccomponentsignature"
            | "secrequestbodynofileslimit"
            | "secrequestbodyinmemorylimit"
            | "secargumentslimit"
            | "secauditengine"
            | "secauditlog"
            | "secauditlogparts"
            | "secdebuglog"
            | "secdebugloglevel"
            | "sectmpdir"
            | "secdatadir"
            | "secpcrematchlimit"
            | "secpcrematchlimitrecursion" => {}
            "secrequestbodylimitaction" | "secresponsebodylimitaction" => {
                let v = match Self::arg(d, 0)?.to_ascii_lowercase().as_str() {
                    "processpartial" => BodyLimitAction::ProcessPartial,
                    "reject" => BodyLimitAction::Reject,
                    other => return Err(loc.syntax(format!("bad limit action '{other}'"))),
                };
                if d.name.eq_ignore_ascii_case("secrequestbodylimitaction") {
                    self.cfg.request_body_limit_action = v;
                } else {
                    self.cfg.response_body_limit_action = v;
                }
            }
            "secruleremovebyid" => {
                let spec = d.args.join(" ");
                self.entries.retain(|e| !matches!(e, Entry::Rule(r) if in_range(r.id, &spec)));
            }
            "secruleremovebytag" => {
                let tag = Self::arg(d, 0)?;
                let re = operators::compile_regex(&format!("(?i){tag}"), loc)?;
                self.entries.retain(|e| !matches!(e, Entry::Rule(r) if r.actions.tags.iter().any(|t| re.is_match(t.as_bytes()))));
            }
            "secruleremovebymsg" => {
                let m = Self::arg(d, 0)?.as_bytes().to_vec();
                self.entries.retain(|e| !matches!(e, Entry::Rule(r) if r.actions.msg.as_ref().and_then(|x| x.as_literal()).as_deref() == Some(m.as_slice())));
            }
            "secruleupdatetargetbyid" | "secruleupdatetargetbytag" => {
                let sel = Self::arg(d, 0)?.to_string();
                let raw = parse_targets(Self::arg(d, 1)?, loc)?;
                let mut add = Targets::default();
                compile_targets(&raw, loc, &mut add)?;
                let by_id = d.name.eq_ignore_ascii_case("secruleupdatetargetbyid");
                for r in self.rules_mut() {
                    let hit = if by_id { in_range(r.id, &sel) } else { r.has_tag(&sel) };
                    if hit {
                        let t = Arc::make_mut(&mut r.targets);
                        t.targets.extend(add.targets.iter().cloned());
                        t.exclusions.extend(add.exclusions.iter().cloned());
                    }
                }
            }
            "secruleupdateactionbyid" => {
                let id: u64 = Self::arg(d, 0)?.parse().map_err(|_| loc.syntax("bad id"))?;
                let a = compile_actions(&parse_actions(Self::arg(d, 1)?, loc)?, loc)?;
                for r in self.rules_mut().filter(|r| r.id == id) {
                    if let Some(dis) = &a.disruptive {
                        r.disruptive = dis.clone();
                    }
                    if a.status.is_some() {
                        r.actions.status = a.status;
                    }
                    if let Some(l) = a.log {
                        r.log = l;
                    }
                    r.actions.setvars.extend(a.setvars.iter().cloned());
                    r.actions.tags.extend(a.tags.iter().cloned());
                }
            }
            _ => return Err(loc.unsupported("directive", d.name.clone())),
        }
        Ok(())
    }

    fn add_rule(&mut self, vars: Option<&str>, op: RawOperator, acts: &str, base: &Path, loc: &Loc) -> Result<(), LoadError> {
        let in_chain = !self.chain.is_empty();
        let mut actions = compile_actions(&parse_actions(acts, loc)?, loc)?;
        let phase = if in_chain { self.chain[0].phase } else { actions.phase.unwrap_or(2) };
        let id = if in_chain { 0 } else { actions.id.ok_or_else(|| loc.syntax("rule without id"))? };
        let mut targets = Targets::default();
        if let Some(v) = vars {
            compile_targets(&parse_targets(v, loc)?, loc, &mut targets)?;
        }
        let operator: Operator = operators::compile(&op, base, loc)?;
        let defaults = self.defaults[usize::from(phase)].clone().unwrap_or_else(|| Actions {
            disruptive: Some(Disruptive::Pass),
            log: Some(true),
            ..Actions::default()
        });
        let mut transforms = Vec::new();
        if !actions.t_none {
            transforms.extend(defaults.transforms.iter().copied());
        }
        transforms.append(&mut actions.transforms);
        let default_dis = defaults.disruptive.clone().unwrap_or(Disruptive::Pass);
        let disruptive = match actions.disruptive.clone() {
            None => Disruptive::Pass,
            Some(Disruptive::Block) => default_dis,
            Some(d) => d,
        };
        let log = actions.log.or(defaults.log).unwrap_or(true);
        let chain_id = self.chains.intern(&transforms);
        let rule = Rule {
            id,
            phase,
            is_action: vars.is_none(),
            targets: Arc::new(targets),
            operator,
            transforms,
            disruptive,
            log,
            chained: None,
            loc: loc.clone(),
            actions,
            chain_id,
            pf_bit: None,
            gate: None,
            tx_check: None,
            tag_ids: Vec::new(),
        };
        if rule.actions.chain {
            self.chain.push(rule);
            return Ok(());
        }
        let mut child = rule;
        while let Some(mut parent) = self.chain.pop() {
            parent.chained = Some(Box::new(child));
            child = parent;
        }
        self.entries.push(Entry::Rule(Box::new(child)));
        Ok(())
    }

    fn finish(self) -> Result<Engine, LoadError> {
        if let Some(r) = self.chain.first() {
            return Err(r.loc.syntax("chain without a following rule"));
        }
        let mut pfb = PrefilterBuilder::default();
        // Target sets by their (targets, exclusions); groups by (target set, chain).
        let mut unions = UnionPlanBuilder::default();
        let mut entries = self.entries;
        let chains = &self.chains;
        let mut tx_names = TxNames::default();
        for n in TX_PRESET_NAMES {
            tx_names.intern(n);
        }
        resolve_tags(&mut entries);
        for r in rules_mut(&mut entries) {
            r.for_each_link_mut(|l| {
                resolve_link(l, &mut tx_names);
                l.tx_check = TxCheck::of(l);
                let groupable = l.targets.targets.iter().all(groupable);
                // A `multiMatch` link uses its literals only through its gate, which stays open
                // when a step of its chain changes every value (`t:base64Decode`; see
                // `Gate::every_step`): then it needs neither.
                let multi_gate_open = l.actions.multi_match && (!groupable || chains.scan_steps(l.chain_id) & ALWAYS_CHANGE != 0);
                if l.is_action || multi_gate_open {
                    return;
                }
                if let Some(lits) = l.operator.necessary_literals() {
                    let bit = pfb.add(&lits);
                    l.pf_bit = Some(bit);
                    if groupable {
                        let targets = unions.target_set(&l.targets);
                        let group = unions.group(targets, l.chain_id);
                        l.gate = Some(Gate { group, targets, bit, chain_id: l.chain_id, every_step: l.actions.multi_match });
                    }
                }
            });
        }
        // Target lists are final once every TX name has its slot: then links share equal ones.
        let mut lists = HashMap::new();
        for r in rules_mut(&mut entries) {
            r.for_each_link_mut(|l| {
                resolve_tx_keys(l, &tx_names);
                share_target_list(l, &mut lists);
            });
        }
        let (rules, phases) = phase_lists(entries);
        let inner = Inner {
            rules,
            phases,
            mode: self.mode,
            cfg: self.cfg,
            request_body_access: self.request_body_access,
            response_body_access: self.response_body_access,
            prefilter: pfb.build(),
            unions: unions.build(),
            chains: self.chains,
            tx_names,
            scratch_pool: ScratchPool::default(),
        };
        Ok(Engine { inner: Arc::new(inner) })
    }
}

/// An item of a phase's list while the jumps are resolved.
enum Item {
    Rule(usize),
    Marker(String),
}

/// Puts the rules in order into `rules` and into the [`Step`] list of their phase, with each
/// `skipAfter` (to a marker or a rule id) and `skip:N` resolved to the position to go on at.
/// Markers only mark positions: the lists hold the rules alone.
fn phase_lists(entries: Vec<Entry>) -> (Vec<Rule>, [Vec<Step>; 6]) {
    // Rule indexes and list positions are u32 in a step: far more than any rule set needs.
    let u32_of = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut rules = Vec::new();
    let mut items: [Vec<Item>; 6] = Default::default();
    for e in entries {
        match e {
            Entry::Marker(m) => {
                for p in items.iter_mut().skip(1) {
                    p.push(Item::Marker(m.clone()));
                }
            }
            Entry::Rule(r) => {
                items[usize::from(r.phase)].push(Item::Rule(rules.len()));
                rules.push(*r);
            }
        }
    }
    let phases = items.map(|list| {
        // Position in the list of rules alone of every position in `list` (and of its end).
        let mut rank = Vec::with_capacity(list.len() + 1);
        let mut n = 0;
        for item in &list {
            rank.push(n);
            n += usize::from(matches!(item, Item::Rule(_)));
        }
        rank.push(n);
        let mut steps = Vec::with_capacity(n);
        for (pos, item) in list.iter().enumerate() {
            let Item::Rule(idx) = item else { continue };
            let rule = &rules[*idx];
            let jump = if let Some(target) = &rule.actions.skip_after {
                let found = list.iter().enumerate().skip(pos + 1).find(|(_, it)| match it {
                    Item::Marker(m) => m == target,
                    Item::Rule(j) => rules[*j].id.to_string() == *target,
                });
                // Go on past the marker; a missing marker skips to the end of the phase, like ModSecurity.
                Some(rank[found.map_or(list.len(), |(i, _)| i + 1)])
            } else {
                rule.actions.skip.map(|k| rank[(pos + 1 + k).min(list.len())])
            };
            steps.push(Step { id: rule.id, rule: u32_of(*idx), jump: jump.map(u32_of), gate: rule.gate });
        }
        steps
    });
    (rules, phases)
}

/// The rules of `entries` (chain heads), in order.
fn rules_mut(entries: &mut [Entry]) -> impl Iterator<Item = &mut Rule> {
    entries.iter_mut().filter_map(|e| match e {
        Entry::Rule(r) => Some(&mut **r),
        Entry::Marker(_) => None,
    })
}

/// Gives link `l` the copy in `lists` of a target list equal to its own (or makes its own that
/// copy): CRS has a few dozen lists for hundreds of rules, so a request's walk reads each
/// list's targets from memory once and finds them in the cache for the next rule over it.
fn share_target_list(l: &mut Rule, lists: &mut HashMap<String, Arc<Targets>>) {
    l.targets = lists.entry(format!("{:?}", l.targets)).or_insert_with(|| l.targets.clone()).clone();
}

/// Numbers every tag (case-folded) that a rule carries, gives each rule its sorted
/// [`Rule::tag_ids`] and each `ctl` that names a tag the tag's id.
fn resolve_tags(entries: &mut [Entry]) {
    let mut ids: HashMap<String, u32> = HashMap::new();
    for r in rules_mut(entries) {
        let mut own: Vec<u32> = r
            .actions
            .tags
            .iter()
            .map(|t| {
                let n = ids.len() as u32;
                *ids.entry(t.to_ascii_lowercase()).or_insert(n)
            })
            .collect();
        own.sort_unstable();
        own.dedup();
        r.tag_ids = own;
    }
    for r in rules_mut(entries) {
        r.for_each_link_mut(|l| {
            for c in l.actions.ctls.iter_mut() {
                if let Ctl::RemoveByTag(t) | Ctl::RemoveTargetByTag(t, _, _) = c {
                    t.id = ids.get(&t.name.to_ascii_lowercase()).copied().unwrap_or(TagRef::NONE);
                }
            }
        });
    }
}

/// Whether a target only yields request/response data that stays put during a
/// phase (so its transformed values are memoized and can be prefiltered as a group).
fn groupable(t: &crate::variables::Target) -> bool {
    use crate::variables::Var::*;
    !t.count
        && !matches!(
            t.var,
            Tx | MatchedVar
                | MatchedVars
                | MatchedVarName
                | MatchedVarsNames
                | RequestBodyLength
                | ArgsCombinedSize
                | FilesCombinedSize
                | ResponseContentLength
                | UniqueId
        )
}

/// The CRS data and rule files of a directory, in load order.
fn crs_rule_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let rd = std::fs::read_dir(dir).map_err(|source| LoadError::Io { path: dir.display().to_string(), source })?;
    let mut files: Vec<PathBuf> =
        rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "conf")).collect();
    files.sort();
    Ok(files)
}

fn read(p: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(p).map_err(|source| LoadError::Io { path: p.display().to_string(), source })
}

impl Engine {
    /// Parses SecLang text (no file includes; `@pmFromFile` paths are relative to the working directory).
    pub fn parse_str(name: &str, text: &str, cfg: &EngineConfig) -> Result<Engine, LoadError> {
        let mut l = Loader::new(cfg.clone());
        l.load_text(name, text, Path::new("."))?;
        l.finish()
    }

    /// Loads the given files in order (`@pmFromFile` relative to each file's directory).
    pub fn from_files(files: &[PathBuf], cfg: &EngineConfig) -> Result<Engine, LoadError> {
        let mut l = Loader::new(cfg.clone());
        for f in files {
            let base = f.parent().unwrap_or(Path::new("."));
            l.load_text(&f.display().to_string(), &read(f)?, base)?;
        }
        l.finish()
    }

    /// Loads a CRS v4 checkout: `crs-setup.conf` (or `.example`), then a
    /// generated `SecAction` 900000 with the configured paranoia levels and
    /// thresholds, then `cfg.extra_setup`, then `rules/*.conf` in name order.
    pub fn from_crs_dir(dir: &Path, cfg: &EngineConfig) -> Result<Engine, LoadError> {
        let mut l = Loader::new(cfg.clone());
        let setup = [dir.join("crs-setup.conf"), dir.join("crs-setup.conf.example")].into_iter().find(|p| p.exists());
        let setup = setup.ok_or_else(|| LoadError::Io {
            path: dir.join("crs-setup.conf").display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no crs-setup.conf(.example)"),
        })?;
        l.load_text(&setup.display().to_string(), &read(&setup)?, dir)?;
        l.load_text("<engine-config>", &crs_setup_action(cfg), dir)?;
        if !cfg.extra_setup.is_empty() {
            l.load_text("<extra-setup>", &cfg.extra_setup, dir)?;
        }
        let rules_dir = dir.join("rules");
        for f in crs_rule_files(&rules_dir)? {
            l.load_text(&f.display().to_string(), &read(&f)?, &rules_dir)?;
        }
        l.mode = cfg.mode;
        l.finish()
    }

    /// Starts a transaction (one per HTTP request).
    pub fn transaction(&self) -> Transaction {
        Transaction::new(self.clone())
    }

    /// Number of rule links using the shared literal prefilter.
    pub fn prefiltered_rules(&self) -> usize {
        self.inner.prefilter.as_ref().map(|p| p.n_bits).unwrap_or(0)
    }

    /// Number of prefilter groups (links sharing targets and transformations).
    pub fn prefilter_groups(&self) -> usize {
        self.inner.unions.groups()
    }

    /// Response-body bytes phase 4 inspects (`SecResponseBodyLimit`).
    pub fn response_body_limit(&self) -> usize {
        self.inner.cfg.response_body_limit
    }

    /// Number of top-level rules loaded.
    pub fn rule_count(&self) -> usize {
        self.inner.rules.len()
    }

    /// The engine mode.
    pub fn mode(&self) -> Mode {
        self.inner.mode
    }

    /// Ids of all loaded rules.
    pub fn rule_ids(&self) -> Vec<u64> {
        self.inner.rules.iter().map(|r| r.id).collect()
    }

    /// Request body processor chosen for a Content-Type.
    pub fn body_processor_for(content_type: &str) -> Option<BodyProcessor> {
        let ct = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if ct == "application/x-www-form-urlencoded" {
            Some(BodyProcessor::UrlEncoded)
        } else if ct == "multipart/form-data" {
            Some(BodyProcessor::Multipart)
        } else if ct == "application/json" || ct.ends_with("+json") {
            Some(BodyProcessor::Json)
        } else if ct == "text/xml" || ct == "application/xml" || ct.ends_with("+xml") {
            Some(BodyProcessor::Xml)
        } else {
            None
        }
    }
}

fn crs_setup_action(cfg: &EngineConfig) -> String {
    let pl = cfg.paranoia.clamp(1, 4);
    let dpl = cfg.detection_paranoia.unwrap_or(pl).clamp(pl, 4);
    let mut s = format!(
        "SecAction \"id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level={pl},setvar:tx.detection_paranoia_level={dpl}"
    );
    if let Some(t) = cfg.inbound_threshold {
        s.push_str(&format!(",setvar:tx.inbound_anomaly_score_threshold={t}"));
    }
    if let Some(t) = cfg.outbound_threshold {
        s.push_str(&format!(",setvar:tx.outbound_anomaly_score_threshold={t}"));
    }
    s.push_str("\"\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_with_equal_target_lists_share_one_and_an_updated_list_is_its_own() {
        let e = Engine::parse_str(
            "t.conf",
            r#"SecRule ARGS|!ARGS:a "@rx x" "id:1,phase:2,pass"
               SecRule ARGS|!ARGS:a "@rx y" "id:2,phase:2,pass,chain"
               SecRule ARGS|!ARGS:a "@rx z" "t:none"
               SecRule ARGS|!ARGS:a "@rx w" "id:3,phase:2,pass"
               SecRuleUpdateTargetById 3 "!ARGS:b""#,
            &EngineConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let rules = &e.inner.rules;
        let (r1, r2, r3) = (&rules[0], &rules[1], &rules[2]);
        let link = r2.chained.as_deref().map(|l| &l.targets);
        assert!(Arc::ptr_eq(&r1.targets, &r2.targets));
        assert!(link.is_some_and(|t| Arc::ptr_eq(&r1.targets, t)));
        assert!(!Arc::ptr_eq(&r1.targets, &r3.targets));
        assert_eq!((r1.targets.exclusions.len(), r3.targets.exclusions.len()), (1, 2));
    }
}
