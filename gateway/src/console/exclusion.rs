//! Turns an event marked as a false positive into the policy exclusion that would stop it:
//! one `{ path, rule, target }` per matched rule (CRS's anomaly evaluation left out), in the
//! app's `[apps.waf]` section (see `[waf] exclusions` in policies/gateway.toml).

use crate::attack_log::{AttackEvent, Kind};

/// Tag of CRS's scoring rules: excluding them would switch the WAF off for the path.
const EVALUATION_TAG: &str = "anomaly-evaluation";

/// A variable the policy accepts as an exclusion target (same alphabet as the validator).
fn valid_target(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:-.[]/".contains(&b))
}

/// The path prefix to exclude: the event's path without query, cut before the first segment
/// that holds masked personal data (`*`) or anything a path prefix may not hold.
pub fn exclusion_path(uri: &str) -> String {
    let path = uri.split(['?', '#']).next().unwrap_or("/");
    let mut out = String::new();
    for seg in path.split('/').skip(1) {
        let ok = !seg.is_empty() && seg != "." && seg != ".." && seg.bytes().all(|b| b.is_ascii_graphic() && !b"*\"'\\?#".contains(&b));
        if !ok {
            break;
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The TOML to add to the app's entry, or `None` when the event has no WAF rule to exclude.
pub fn snippet(event: &AttackEvent) -> Option<String> {
    if event.kind != Kind::Waf {
        return None;
    }
    let path = exclusion_path(&event.uri);
    let mut lines: Vec<String> = Vec::new();
    for r in event.rules.iter().filter(|r| !r.tags.iter().any(|t| t == EVALUATION_TAG)) {
        // TX variables are CRS's own bookkeeping: exclude the whole rule on the path instead.
        let target = if valid_target(&r.variable) && !r.variable.starts_with("TX:") { r.variable.as_str() } else { "" };
        let line = format!("  {{ path = {}, rule = {}, target = {} }},", toml_str(&path), r.id, toml_str(target));
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    if lines.is_empty() {
        return None;
    }
    Some(format!(
        "# In the [[apps]] entry with name = {} (incident {}):\n[apps.waf]\nexclusions = [\n{}\n]\n",
        toml_str(&event.app),
        event.incident_id.replace(['\n', '\r'], ""),
        lines.join("\n")
    ))
}

fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attack_log::{Action, RuleMatch, SCHEMA_VERSION};

    fn waf_event(uri: &str, variable: &str) -> AttackEvent {
        let rule = |id, var: &str, tag: &str| RuleMatch {
            id,
            message: "m".into(),
            tags: vec![tag.into()],
            severity: Some(2),
            variable: var.into(),
            data: "x".into(),
        };
        AttackEvent {
            schema: SCHEMA_VERSION,
            kind: Kind::Waf,
            incident_id: "0193abc".into(),
            time: "2026-11-23T01:00:00.000Z".into(),
            client_ip: None,
            user: None,
            app: "shebao".into(),
            method: "GET".into(),
            uri: uri.into(),
            rules: vec![rule(942100, variable, "attack-sqli"), rule(949110, "TX:BLOCKING_INBOUND_ANOMALY_SCORE", EVALUATION_TAG)],
            anomaly_score: 5,
            action: Action::Blocked,
            status: Some(403),
            personal_data: None,
        }
    }

    #[test]
    fn paths_stop_before_masked_or_odd_segments() {
        assert_eq!(exclusion_path("/apply?id=1"), "/apply");
        assert_eq!(exclusion_path("/person/110105********002X/edit"), "/person");
        assert_eq!(exclusion_path("/a/../b"), "/a");
        assert_eq!(exclusion_path("/"), "/");
        assert_eq!(exclusion_path("/x\"y"), "/");
    }

    /// The snippet, put into the app's entry, is a valid policy that carries the exclusion.
    #[test]
    fn the_snippet_parses_as_policy_with_the_exclusion() {
        for (uri, var, target) in [
            ("/apply?id=1%27", "ARGS:id", "ARGS:id"),
            ("/search/110105********002X?q=x", "REQUEST_HEADERS:User-Agent", "REQUEST_HEADERS:User-Agent"),
            ("/", "TX:foo", ""),
            ("/q", "ARGS:we\"ird name", ""),
        ] {
            let snippet = snippet(&waf_event(uri, var)).unwrap();
            let policy = format!(
                "[[listeners]]\nname = \"http\"\naddress = \"127.0.0.1:8080\"\n[[apps]]\nname = \"shebao\"\npaths = [\"/\"]\nhosts = [\"shebao.example\"]\nupstreams = [\"127.0.0.1:1\"]\n{snippet}"
            );
            let p = govgate_policies::parse(&policy, std::path::Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}\n{policy}"));
            let ex = &p.apps[0].waf.exclusions;
            assert_eq!(ex.len(), 1, "{snippet}");
            assert_eq!((ex[0].rule, ex[0].target.as_str()), (942100, target));
            assert_eq!(ex[0].path.as_str(), exclusion_path(uri));
        }
    }

    #[test]
    fn events_without_waf_rules_have_no_snippet() {
        let mut e = waf_event("/", "ARGS:id");
        e.rules.remove(0);
        assert_eq!(snippet(&e), None);
        e.kind = Kind::RateLimit;
        assert_eq!(snippet(&e), None);
    }
}
