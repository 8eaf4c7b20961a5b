//! Rule actions: metadata (`id`, `msg`, `tag`, ...), flow (`chain`,
//! `skipAfter`), disruptive actions, `setvar`, `ctl` and transformations,
//! parsed from raw actions into a typed [`Actions`] value.

use crate::error::{LoadError, Loc};
use crate::macros::Macro;
use crate::parser::{parse_targets, RawAction};
use crate::transforms::Transform;
use crate::variables::{compile_key, KeySel, Var};

/// Rule engine mode (`SecRuleEngine`, `ctl:ruleEngine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Evaluate and enforce.
    On,
    /// Evaluate and log, never interrupt.
    DetectionOnly,
    /// Do nothing.
    Off,
}

impl Mode {
    /// Parses `On|DetectionOnly|Off` (case-insensitive).
    pub fn parse(s: &str) -> Option<Mode> {
        match s.to_ascii_lowercase().as_str() {
            "on" => Some(Mode::On),
            "detectiononly" => Some(Mode::DetectionOnly),
            "off" => Some(Mode::Off),
            _ => None,
        }
    }
}

/// Request body processors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProcessor {
    /// `application/x-www-form-urlencoded`
    UrlEncoded,
    /// `multipart/form-data`
    Multipart,
    /// JSON
    Json,
    /// XML
    Xml,
}

impl BodyProcessor {
    /// SecLang name (value of REQBODY_PROCESSOR).
    pub fn name(self) -> &'static str {
        match self {
            BodyProcessor::UrlEncoded => "URLENCODED",
            BodyProcessor::Multipart => "MULTIPART",
            BodyProcessor::Json => "JSON",
            BodyProcessor::Xml => "XML",
        }
    }
}

/// Disruptive actions.
#[derive(Debug, Clone, PartialEq)]
pub enum Disruptive {
    /// `pass`
    Pass,
    /// `block` (resolved to the phase's default at load time).
    Block,
    /// `deny`
    Deny,
    /// `drop`
    Drop,
    /// `allow`
    Allow,
    /// `redirect:URL`
    Redirect(String),
}

/// The TX name a `setvar` writes.
#[derive(Debug, Clone)]
pub struct TxKey {
    /// The name (literal parts lower-cased).
    pub name: Macro,
    /// Slot of a literal name, set when the engine is built (see [`crate::txvars`]).
    pub slot: Option<u32>,
}

impl TxKey {
    fn new(name: Macro) -> TxKey {
        TxKey { name, slot: None }
    }
}

/// `setvar` operations on TX.
#[derive(Debug, Clone)]
pub enum SetVar {
    /// `tx.k=v`
    Set(TxKey, Macro),
    /// `tx.k=+v`
    Add(TxKey, Macro),
    /// `tx.k=-v`
    Sub(TxKey, Macro),
    /// `!tx.k`
    Delete(TxKey),
}

impl SetVar {
    /// The key and, except for `Delete`, the value.
    pub fn parts_mut(&mut self) -> (&mut TxKey, Option<&mut Macro>) {
        match self {
            SetVar::Set(k, v) | SetVar::Add(k, v) | SetVar::Sub(k, v) => (k, Some(v)),
            SetVar::Delete(k) => (k, None),
        }
    }
}

/// An inclusive id range.
pub type IdRange = (u64, u64);

/// A tag named by a `ctl`: as written, and its id in the engine's tag table (resolved when
/// the engine is built, so that the request path compares integers, not strings).
#[derive(Debug, Clone)]
pub struct TagRef {
    /// The tag as written.
    pub name: String,
    /// Id of the (case-folded) tag; [`TagRef::NONE`] when no rule carries it.
    pub id: u32,
}

impl TagRef {
    /// The id of a tag that no rule carries (it removes nothing).
    pub const NONE: u32 = u32::MAX;

    fn new(name: &str) -> TagRef {
        TagRef { name: name.to_string(), id: TagRef::NONE }
    }
}

/// `ctl` operations.
#[derive(Debug, Clone)]
pub enum Ctl {
    /// `ctl:ruleRemoveById=N[-M]`
    RemoveById(IdRange),
    /// `ctl:ruleRemoveByTag=T`
    RemoveByTag(TagRef),
    /// `ctl:ruleRemoveTargetById=N;VAR:key`
    RemoveTargetById(IdRange, Var, KeySel),
    /// `ctl:ruleRemoveTargetByTag=T;VAR:key`
    RemoveTargetByTag(TagRef, Var, KeySel),
    /// `ctl:ruleEngine=...`
    RuleEngine(Mode),
    /// `ctl:requestBodyProcessor=...`
    RequestBodyProcessor(BodyProcessor),
    /// `ctl:forceRequestBodyVariable=On|Off`
    ForceRequestBodyVariable(bool),
    /// `ctl:requestBodyAccess=On|Off`
    RequestBodyAccess(bool),
    /// `ctl:responseBodyAccess=On|Off`
    ResponseBodyAccess(bool),
    /// Accepted, no effect here (e.g. `auditEngine`, `auditLogParts`).
    Noop,
}

/// Parsed actions of one rule (or of `SecDefaultAction`).
#[derive(Debug, Clone, Default)]
pub struct Actions {
    /// `id`
    pub id: Option<u64>,
    /// `phase`
    pub phase: Option<u8>,
    /// `msg`
    pub msg: Option<Macro>,
    /// `logdata`
    pub logdata: Option<Macro>,
    /// `tag`s
    pub tags: Vec<String>,
    /// `severity` (0..7)
    pub severity: Option<u8>,
    /// `ver`
    pub ver: Option<String>,
    /// `setvar`s in order.
    pub setvars: Vec<SetVar>,
    /// `ctl`s in order.
    pub ctls: Vec<Ctl>,
    /// `capture`
    pub capture: bool,
    /// `multiMatch`
    pub multi_match: bool,
    /// `chain`
    pub chain: bool,
    /// `skipAfter`
    pub skip_after: Option<String>,
    /// `skip:N`
    pub skip: Option<usize>,
    /// Disruptive action.
    pub disruptive: Option<Disruptive>,
    /// `status`
    pub status: Option<u16>,
    /// `log` / `nolog`
    pub log: Option<bool>,
    /// Transformations (after the last `t:none`).
    pub transforms: Vec<Transform>,
    /// Saw `t:none`.
    pub t_none: bool,
}

fn parse_range(s: &str) -> Option<IdRange> {
    let s = s.trim();
    match s.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => {
            let n = s.parse().ok()?;
            Some((n, n))
        }
    }
}

fn severity(s: &str) -> Option<u8> {
    Some(match s.to_ascii_uppercase().as_str() {
        "EMERGENCY" => 0,
        "ALERT" => 1,
        "CRITICAL" => 2,
        "ERROR" => 3,
        "WARNING" => 4,
        "NOTICE" => 5,
        "INFO" => 6,
        "DEBUG" => 7,
        n => n.parse().ok()?,
    })
}

/// Parses a `VAR:key` target as used by `ctl:ruleRemoveTarget*`.
pub fn parse_single_target(s: &str, loc: &Loc) -> Result<(Var, KeySel), LoadError> {
    let t = parse_targets(s, loc)?;
    let first = t.first().ok_or_else(|| loc.syntax(format!("empty target '{s}'")))?;
    let var = Var::from_name(&first.name).ok_or_else(|| loc.unsupported("variable", first.name.clone()))?;
    Ok((var, compile_key(first.key.as_deref(), loc)?))
}

fn on_off(v: &str, loc: &Loc) -> Result<bool, LoadError> {
    match v.to_ascii_lowercase().as_str() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(loc.syntax(format!("expected On|Off, got '{v}'"))),
    }
}

fn parse_ctl(v: &str, loc: &Loc) -> Result<Ctl, LoadError> {
    let (k, val) = v.split_once('=').ok_or_else(|| loc.syntax(format!("ctl without '=': {v}")))?;
    let bad = || loc.syntax(format!("bad ctl value: {v}"));
    Ok(match k.to_ascii_lowercase().as_str() {
        "ruleremovebyid" => Ctl::RemoveById(parse_range(val).ok_or_else(bad)?),
        "ruleremovebytag" => Ctl::RemoveByTag(TagRef::new(val)),
        "ruleremovetargetbyid" => {
            let (id, t) = val.split_once(';').ok_or_else(bad)?;
            let (var, key) = parse_single_target(t, loc)?;
            Ctl::RemoveTargetById(parse_range(id).ok_or_else(bad)?, var, key)
        }
        "ruleremovetargetbytag" => {
            let (tag, t) = val.split_once(';').ok_or_else(bad)?;
            let (var, key) = parse_single_target(t, loc)?;
            Ctl::RemoveTargetByTag(TagRef::new(tag), var, key)
        }
        "ruleengine" => Ctl::RuleEngine(Mode::parse(val).ok_or_else(bad)?),
        "requestbodyprocessor" => Ctl::RequestBodyProcessor(match val.to_ascii_uppercase().as_str() {
            "URLENCODED" => BodyProcessor::UrlEncoded,
            "MULTIPART" => BodyProcessor::Multipart,
            "JSON" => BodyProcessor::Json,
            "XML" => BodyProcessor::Xml,
            _ => return Err(bad()),
        }),
        "forcerequestbodyvariable" => Ctl::ForceRequestBodyVariable(on_off(val, loc)?),
        "requestbodyaccess" => Ctl::RequestBodyAccess(on_off(val, loc)?),
        "responsebodyaccess" => Ctl::ResponseBodyAccess(on_off(val, loc)?),
        "auditengine" | "auditlogparts" => Ctl::Noop,
        _ => return Err(loc.unsupported("ctl", k.to_string())),
    })
}

fn parse_setvar(v: &str, loc: &Loc) -> Result<SetVar, LoadError> {
    let (del, body) = match v.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, v),
    };
    let (name, value) = match body.split_once('=') {
        Some((n, val)) => (n, Some(val)),
        None => (body, None),
    };
    let (coll, key) = name.split_once('.').ok_or_else(|| loc.syntax(format!("setvar without collection: {v}")))?;
    if !coll.eq_ignore_ascii_case("tx") {
        return Err(loc.unsupported("setvar collection", coll.to_string()));
    }
    let mut key = Macro::parse(key, loc)?;
    // TX keys are case-insensitive; literal parts are lower-cased once here.
    key.lowercase_literals();
    let key = TxKey::new(key);
    if del {
        return Ok(SetVar::Delete(key));
    }
    Ok(match value {
        None => SetVar::Set(key, Macro::parse("1", loc)?),
        Some(val) => {
            if let Some(r) = val.strip_prefix('+') {
                SetVar::Add(key, Macro::parse(r, loc)?)
            } else if let Some(r) = val.strip_prefix('-') {
                SetVar::Sub(key, Macro::parse(r, loc)?)
            } else {
                SetVar::Set(key, Macro::parse(val, loc)?)
            }
        }
    })
}

/// Parses raw actions into [`Actions`]. Unknown actions are errors.
pub fn compile_actions(raw: &[RawAction], loc: &Loc) -> Result<Actions, LoadError> {
    let mut a = Actions::default();
    for r in raw {
        let v = r.value.as_deref().unwrap_or("");
        let need = || loc.syntax(format!("action '{}' needs a value", r.name));
        match r.name.to_ascii_lowercase().as_str() {
            "id" => a.id = Some(v.trim().parse().map_err(|_| loc.syntax(format!("bad id '{v}'")))?),
            "phase" => {
                a.phase = Some(match v.trim() {
                    "request" => 2,
                    "response" => 4,
                    "logging" => 5,
                    n => n.parse().ok().filter(|p| (1..=5).contains(p)).ok_or_else(|| loc.syntax(format!("bad phase '{v}'")))?,
                })
            }
            "msg" => a.msg = Some(Macro::parse(v, loc)?),
            "logdata" => a.logdata = Some(Macro::parse(v, loc)?),
            "tag" => a.tags.push(v.to_string()),
            "severity" => a.severity = Some(severity(v).ok_or_else(|| loc.syntax(format!("bad severity '{v}'")))?),
            "ver" => a.ver = Some(v.to_string()),
            "rev" | "maturity" | "accuracy" | "auditlog" | "noauditlog" | "sanitisematched" | "sanitizematched" | "initcol"
            | "expirevar" => {}
            "setvar" => a.setvars.push(parse_setvar(r.value.as_deref().ok_or_else(need)?, loc)?),
            "ctl" => a.ctls.push(parse_ctl(r.value.as_deref().ok_or_else(need)?, loc)?),
            "capture" => a.capture = true,
            "multimatch" => a.multi_match = true,
            "chain" => a.chain = true,
            "skipafter" => a.skip_after = Some(r.value.clone().ok_or_else(need)?),
            "skip" => a.skip = Some(v.trim().parse().map_err(|_| loc.syntax(format!("bad skip '{v}'")))?),
            "pass" => a.disruptive = Some(Disruptive::Pass),
            "block" => a.disruptive = Some(Disruptive::Block),
            "deny" => a.disruptive = Some(Disruptive::Deny),
            "drop" => a.disruptive = Some(Disruptive::Drop),
            "allow" => a.disruptive = Some(Disruptive::Allow),
            "redirect" => a.disruptive = Some(Disruptive::Redirect(v.to_string())),
            "status" => a.status = Some(v.trim().parse().map_err(|_| loc.syntax(format!("bad status '{v}'")))?),
            "log" => a.log = Some(true),
            "nolog" => a.log = Some(false),
            "t" => {
                if v.eq_ignore_ascii_case("none") {
                    a.transforms.clear();
                    a.t_none = true;
                } else {
                    a.transforms.push(Transform::from_name(v).ok_or_else(|| loc.unsupported("transformation", v.to_string()))?);
                }
            }
            _ => return Err(loc.unsupported("action", r.name.clone())),
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::parse_actions;
    use std::sync::Arc;

    fn loc() -> Loc {
        Loc { file: Arc::from("a.conf"), line: 9 }
    }

    #[test]
    fn actions_parse() {
        let raw = parse_actions(
            "id:5,phase:2,block,t:lowercase,t:none,t:urlDecodeUni,setvar:'tx.a=+%{tx.b}',ctl:ruleRemoveTargetById=942100;ARGS:x,severity:'CRITICAL',skipAfter:END",
            &loc(),
        )
        .unwrap();
        let a = compile_actions(&raw, &loc()).unwrap();
        assert_eq!(a.id, Some(5));
        assert_eq!(a.phase, Some(2));
        assert_eq!(a.transforms, vec![Transform::UrlDecodeUni]);
        assert!(a.t_none);
        assert!(matches!(a.setvars[0], SetVar::Add(..)));
        assert!(matches!(a.ctls[0], Ctl::RemoveTargetById((942100, 942100), Var::Args, _)));
        assert_eq!(a.severity, Some(2));
        assert_eq!(a.skip_after.as_deref(), Some("END"));
    }

    #[test]
    fn unknown_action_reports_location() {
        let raw = parse_actions("id:1,frobnicate", &loc()).unwrap();
        let e = compile_actions(&raw, &loc()).unwrap_err().to_string();
        assert!(e.contains("a.conf:9") && e.contains("frobnicate"), "{e}");
    }
}
