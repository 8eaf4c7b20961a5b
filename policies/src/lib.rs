//! # govgate-policies
//!
//! The configuration that operators and security teams edit, and the code that reads it.
//! The files themselves sit beside this crate (`policies/gateway.toml`, `policies/demo.toml`);
//! this crate turns one into a typed, validated [`Policy`] or into a list of errors that each
//! name the file, line and column to fix. The gateway never runs on a policy that failed here:
//! `govgate check` prints these errors, `govgate serve` refuses to start, and a reload by
//! `SIGHUP` keeps the old policy.
//!
//! Nothing here does network I/O; loading reads one file.

pub mod error;
pub mod model;
pub mod sso;
pub mod validate;
pub mod values;

pub use error::{LoadError, PolicyError};
pub use model::*;
pub use sso::{Access, PathAccess, Requirement, Sso};
pub use values::{ByteSize, Dur, HostPattern, PathPrefix, Rate};

use std::path::Path;
use toml::de::{DeTable, DeValue};
use validate::Key;

/// Reads and validates a policy file.
pub fn load(path: &Path) -> Result<Policy, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io { path: path.to_path_buf(), source })?;
    parse(&text, path)
}

/// Parses and validates policy text; `path` is used for error messages and relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Policy, LoadError> {
    let mut policy: Policy =
        toml::from_str(text).map_err(|e| LoadError::Invalid(vec![PolicyError::at(path, text, e.span(), e.message().trim())]))?;
    policy.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if policy.base_dir.as_os_str().is_empty() {
        policy.base_dir = ".".into();
    }
    let problems = validate::validate(&policy);
    if problems.is_empty() {
        return Ok(policy);
    }
    let doc = DeTable::parse(text).ok();
    let errors = problems
        .into_iter()
        .map(|p| {
            let span = doc.as_ref().and_then(|d| span_of(d, &p.path));
            PolicyError::at(path, text, span, p.message)
        })
        .collect();
    Err(LoadError::Invalid(errors))
}

/// Finds the byte span of the value at `path`, or of the deepest part of it that exists.
fn span_of(doc: &toml::Spanned<DeTable<'_>>, path: &[Key]) -> Option<std::ops::Range<usize>> {
    let mut steps = path.iter();
    let first = match steps.next() {
        None => return Some(0..0),
        Some(Key::Name(n)) => doc.get_ref().iter().find(|(k, _)| k.get_ref() == n).map(|(_, v)| v)?,
        Some(Key::Index(_)) => return None,
    };
    let mut cur: &toml::Spanned<DeValue<'_>> = first;
    for step in steps {
        let next = match step {
            Key::Name(n) => cur.get_ref().get(*n),
            Key::Index(i) => cur.get_ref().get(*i),
        };
        match next {
            Some(v) => cur = v,
            None => break,
        }
    }
    Some(cur.span())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[[listeners]]
name = "http"
address = "127.0.0.1:8080"

[[apps]]
name = "shebao"
hosts = ["shebao.gov.cn"]
upstreams = ["127.0.0.1:9001"]
"#;

    fn errors(text: &str) -> Vec<PolicyError> {
        match parse(text, Path::new("policies/gateway.toml")) {
            Err(LoadError::Invalid(e)) => e,
            other => panic!("expected invalid policy, got {other:?}"),
        }
    }

    #[test]
    fn minimal_policy_gets_defaults() {
        let p = parse(MINIMAL, Path::new("policies/gateway.toml")).unwrap();
        assert_eq!(p.apps[0].paths, vec![PathPrefix::root()]);
        assert_eq!(p.limits.max_body_bytes.0, 10 << 20);
        assert_eq!(p.security_headers["x-content-type-options"], "nosniff");
        assert_eq!(p.data_dir(), Path::new("policies/data"));
    }

    #[test]
    fn bad_value_is_reported_at_its_line() {
        let text = MINIMAL
            .replace("upstreams = [\"127.0.0.1:9001\"]", "upstreams = [\"127.0.0.1:9001\"]\nrate_limit = { rate = \"5/fortnight\" }");
        let e = errors(&text);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 10, "{}", e[0]);
        assert!(e[0].message.contains("invalid rate"), "{}", e[0]);
    }

    #[test]
    fn unknown_key_is_an_error_not_ignored() {
        let text = MINIMAL.replace("name = \"shebao\"", "name = \"shebao\"\nupstream = \"typo\"");
        let e = errors(&text);
        assert_eq!(e[0].line, 8);
        assert!(e[0].message.contains("unknown field"), "{}", e[0]);
    }

    #[test]
    fn cross_field_problems_point_at_the_offending_value() {
        let text = format!("{MINIMAL}\n[[apps]]\nname = \"shebao\"\nhosts = [\"shebao.gov.cn\"]\nupstreams = [\"127.0.0.1:9002\"]\n");
        let e = errors(&text);
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].message.contains("used twice"));
        assert_eq!(e[0].line, 12);
        assert!(e[1].message.contains("already served by app \"shebao\""));
    }

    #[test]
    fn redirect_must_name_a_tls_listener() {
        let text = MINIMAL.replace("address = \"127.0.0.1:8080\"", "address = \"127.0.0.1:8080\"\nredirect_to = \"https\"");
        let e = errors(&text);
        assert_eq!(e[0].line, 5);
        assert!(e[0].message.contains("no TLS listener"));
    }

    #[test]
    fn waf_settings_are_checked() {
        let on_without_rules = format!("{MINIMAL}\n[waf]\nmode = \"block\"\n");
        assert!(errors(&on_without_rules)[0].message.contains("rules (the OWASP CRS directory) is not set"));
        let no_crs = format!("{MINIMAL}\n[waf]\nrules = \"/nonexistent\"\nmode = \"block\"\n");
        assert!(errors(&no_crs)[0].message.contains("is not a CRS directory"));
        let bad = MINIMAL.replace(
            "upstreams = [\"127.0.0.1:9001\"]",
            "upstreams = [\"127.0.0.1:9001\"]\nwaf = { paranoia = 5, exclusions = [{ path = \"/a\", rule = 1, target = \"args:q\" }] }",
        );
        let e = errors(&bad);
        assert!(e.iter().any(|e| e.message.contains("paranoia must be")), "{e:?}");
        assert!(e.iter().any(|e| e.message.contains("invalid WAF target")), "{e:?}");
    }

    #[test]
    fn app_waf_overrides_the_global_section() {
        let crs = std::env::temp_dir().join(format!("govgate-crs-{}", std::process::id()));
        std::fs::create_dir_all(crs.join("rules")).unwrap();
        let text = format!(
            "{MINIMAL}waf = {{ mode = \"detect\", paranoia = 3, remove_rules = [2] }}\n[waf]\nrules = \"{}\"\nremove_rules = [1]\n",
            crs.display()
        );
        let p = parse(&text, Path::new("gateway.toml")).unwrap();
        std::fs::remove_dir_all(&crs).unwrap();
        let w = p.waf.for_app(&p.apps[0].waf);
        assert_eq!((w.mode, w.paranoia, w.remove_rules), (WafMode::Detect, 3, vec![1, 2]));
    }

    #[test]
    fn shipped_policies_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in ["gateway.toml", "demo.toml"] {
            if let Err(e) = load(&dir.join(f)) {
                panic!("{f}: {e}");
            }
        }
    }
}
