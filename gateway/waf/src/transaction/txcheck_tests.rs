//! The TX fast path ([`crate::txcheck`]) against the generic link path: on the same links and
//! TX contents, both must find the same matches (variable, key, value).

use super::*;
use crate::engine::EngineConfig;

const RULES: &str = r#"
SecRule TX:detection_paranoia_level "@lt 2" "id:1,phase:1,pass,nolog"
SecRule TX:detection_paranoia_level "!@lt 2" "id:2,phase:1,pass,nolog"
SecRule &TX:blocking_paranoia_level "@eq 0" "id:3,phase:1,pass,nolog"
SecRule &TX:blocking_paranoia_level "!@eq 0" "id:4,phase:1,pass,nolog"
SecRule TX:detection_paranoia_level "@ge %{tx.blocking_paranoia_level}" "id:5,phase:1,pass,nolog"
SecRule TX:blocking_paranoia_level "@streq 1" "id:6,phase:1,pass,nolog"
SecRule TX:blocking_paranoia_level "@within 1 2 3" "id:7,phase:1,pass,log,capture,msg:'x'"
SecRule TX:detection_paranoia_level "@gt %{tx.0}" "id:8,phase:1,pass,nolog"
SecRule TX:blocking_paranoia_level "@contains 2" "id:9,phase:1,pass,nolog"
"#;

/// A removed target of another variable (as CRS 941010 leaves on most clean requests) keeps
/// the fast path, which must still agree with the generic path; one of a TX variable turns it off.
fn removed(var: Var, key: &str) -> (RuleSel, Var, KeySel) {
    (RuleSel::Ids((0, u64::MAX)), var, KeySel::Exact(key.as_bytes().to_vec()))
}

#[test]
fn tx_fast_path_survives_removed_targets_of_other_variables() {
    let cfg = EngineConfig::default();
    let engine = Engine::parse_str("txcheck.conf", RULES, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let mut t = engine.transaction();
    let rule = engine.inner.rules.iter().find(|r| r.tx_check.is_some()).unwrap_or_else(|| panic!("no fast-path link"));
    assert!(t.tx_fast_path(rule).is_some());
    t.removed_targets.push(removed(Var::RequestFilename, ""));
    assert!(t.tx_fast_path(rule).is_some(), "a removed REQUEST_FILENAME keeps the fast path");
    t.removed_targets.push(removed(Var::Tx, "detection_paranoia_level"));
    assert!(t.tx_fast_path(rule).is_none(), "a removed TX target must take the generic path");
}

#[test]
fn tx_fast_path_matches_generic_path() {
    compare_paths(false);
    compare_paths(true);
}

/// Compares both paths on every fast-path link, with removed targets of other variables
/// active when `with_removed`.
fn compare_paths(with_removed: bool) {
    let cfg = EngineConfig::default();
    let engine = Engine::parse_str("txcheck.conf", RULES, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let links: Vec<&Rule> = engine.inner.rules.iter().filter(|r| r.tx_check.is_some()).collect();
    assert_eq!(links.len(), 9, "every link here should take the fast path");
    let values: [Option<&[u8]>; 6] = [None, Some(b""), Some(b"1"), Some(b"2"), Some(b"10"), Some(b"abc")];
    let mut compared = 0;
    for det in values {
        for block in values {
            let mut t = engine.transaction();
            if with_removed {
                t.removed_targets.push(removed(Var::RequestFilename, ""));
                t.removed_targets.push(removed(Var::Args, "detection_paranoia_level"));
            }
            let names = &engine.inner.tx_names;
            for (name, v) in [("detection_paranoia_level", det), ("blocking_paranoia_level", block), ("0", block)] {
                if let Some(v) = v {
                    t.tx.set(names, name, v);
                }
            }
            for rule in &links {
                let Some(c) = t.tx_fast_path(rule) else { panic!("rule {} left the fast path", rule.id) };
                let fast = c.select(&t.tx, names).filter(|_| t.tx_check_hit(c, rule, rule));
                let (mut generic, mut caps) = (Vec::new(), Vec::new());
                let n_generic = t.link_matches(rule, rule, &mut generic, &mut caps);
                let generic = generic.iter().take(n_generic).map(|g| (g.var, &g.key[..], &g.value[..], g.has_caps)).collect::<Vec<_>>();
                let fast = fast.map(|(k, v)| (Var::Tx, k, v, false)).into_iter().collect::<Vec<_>>();
                assert_eq!(fast, generic, "rule {} with {det:?} / {block:?}", rule.id);
                compared += fast.len();
            }
        }
    }
    assert!(compared > 50, "too few matches compared: {compared}");
}
