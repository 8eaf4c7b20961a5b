//! Parses the three parts of a `SecRule`: the target list, the operator and the
//! action list. Produces raw (uncompiled) pieces.

use crate::error::{LoadError, Loc};

/// One entry of a target list such as `!REQUEST_COOKIES:/__utm/`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTarget {
    /// Leading `!`: exclusion.
    pub exclude: bool,
    /// Leading `&`: count.
    pub count: bool,
    /// Variable name, upper-cased.
    pub name: String,
    /// Selector after `:`; regex selectors keep their slashes.
    pub key: Option<String>,
}

/// The operator part of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOperator {
    /// Leading `!`.
    pub negated: bool,
    /// Operator name without `@` (`rx` when implicit).
    pub name: String,
    /// Argument text.
    pub arg: String,
}

/// One action: `name` or `name:value`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawAction {
    /// Action name (as written).
    pub name: String,
    /// Value with quotes removed.
    pub value: Option<String>,
}

/// Parses `ARGS|!ARGS:foo|&TX:x|REQUEST_COOKIES:/re|gex/`.
pub fn parse_targets(s: &str, loc: &Loc) -> Result<Vec<RawTarget>, LoadError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b'|' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut exclude = false;
        let mut count = false;
        loop {
            match b.get(i) {
                Some(b'!') => exclude = true,
                Some(b'&') => count = true,
                _ => break,
            }
            i += 1;
        }
        let ns = i;
        while i < b.len() && b[i] != b':' && b[i] != b'|' {
            i += 1;
        }
        let name = s[ns..i].trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(loc.syntax(format!("empty variable name in '{s}'")));
        }
        let mut key = None;
        if i < b.len() && b[i] == b':' {
            i += 1;
            if name == "XML" {
                let ks = i;
                while i < b.len() && b[i] != b'|' {
                    i += 1;
                }
                key = Some(s[ks..i].trim().to_string());
            } else if i < b.len() && b[i] == b'/' {
                let ks = i;
                i += 1;
                while i < b.len() && b[i] != b'/' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                key = Some(s[ks..i].to_string());
            } else if i < b.len() && b[i] == b'\'' {
                i += 1;
                let ks = i;
                while i < b.len() && b[i] != b'\'' {
                    i += 1;
                }
                key = Some(s[ks..i.min(b.len())].to_string());
                i = (i + 1).min(b.len());
            } else {
                let ks = i;
                while i < b.len() && b[i] != b'|' {
                    i += 1;
                }
                key = Some(s[ks..i].trim().to_string());
            }
        }
        out.push(RawTarget { exclude, count, name, key });
    }
    Ok(out)
}

/// Parses `!@rx foo`, `@unconditionalMatch`, or a bare regex.
pub fn parse_operator(s: &str) -> RawOperator {
    let mut t = s.trim_start();
    let mut negated = false;
    if let Some(r) = t.strip_prefix('!') {
        negated = true;
        t = r.trim_start();
    }
    if let Some(r) = t.strip_prefix('@') {
        let end = r.find(|c: char| c.is_whitespace()).unwrap_or(r.len());
        let name = r[..end].to_string();
        let arg = r[end..].trim_start().to_string();
        RawOperator { negated, name, arg }
    } else {
        RawOperator { negated, name: "rx".into(), arg: t.to_string() }
    }
}

/// Parses `id:1,phase:2,msg:'a, b',t:none`.
pub fn parse_actions(s: &str, loc: &Loc) -> Result<Vec<RawAction>, LoadError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ns = i;
        while i < b.len() && b[i] != b':' && b[i] != b',' {
            i += 1;
        }
        let name = s[ns..i].trim().to_string();
        let mut value = None;
        if i < b.len() && b[i] == b':' {
            i += 1;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if i < b.len() && b[i] == b'\'' {
                i += 1;
                let mut v = Vec::new();
                let mut closed = false;
                while i < b.len() {
                    if b[i] == b'\\' && i + 1 < b.len() && (b[i + 1] == b'\'' || b[i + 1] == b'\\') {
                        v.push(b[i + 1]);
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\'' {
                        closed = true;
                        i += 1;
                        break;
                    }
                    v.push(b[i]);
                    i += 1;
                }
                if !closed {
                    return Err(loc.syntax(format!("unterminated quote in action '{name}'")));
                }
                value = Some(String::from_utf8_lossy(&v).into_owned());
            } else {
                let vs = i;
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                value = Some(s[vs..i].trim_end().to_string());
            }
        }
        if name.is_empty() {
            return Err(loc.syntax("empty action name"));
        }
        out.push(RawAction { name, value });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn loc() -> Loc {
        Loc { file: Arc::from("t"), line: 1 }
    }

    #[test]
    fn targets() {
        let t = parse_targets("REQUEST_COOKIES|!REQUEST_COOKIES:/__u|tm/|&TX:foo|ARGS:'a b'", &loc()).unwrap();
        assert_eq!(t.len(), 4);
        assert!(t[1].exclude);
        assert_eq!(t[1].key.as_deref(), Some("/__u|tm/"));
        assert!(t[2].count);
        assert_eq!(t[2].key.as_deref(), Some("foo"));
        assert_eq!(t[3].key.as_deref(), Some("a b"));
    }

    #[test]
    fn operator() {
        assert_eq!(parse_operator("!@rx a b").arg, "a b");
        assert!(parse_operator("!@rx a b").negated);
        assert_eq!(parse_operator("^foo$").name, "rx");
        assert_eq!(parse_operator("@unconditionalMatch").arg, "");
    }

    #[test]
    fn actions() {
        let a = parse_actions("id:1, msg:'a, \\'b\\'',t:none,pass,setvar:tx.x=+%{tx.y}", &loc()).unwrap();
        assert_eq!(a.len(), 5);
        assert_eq!(a[1].value.as_deref(), Some("a, 'b'"));
        assert_eq!(a[3].value, None);
        assert_eq!(a[4].value.as_deref(), Some("tx.x=+%{tx.y}"));
    }
}
