//! Macro strings (`%{tx.foo}`, `%{MATCHED_VAR}`, `%{rule.id}`) pre-parsed at
//! load time; expansion is done by the transaction, which knows the values.

use crate::error::{LoadError, Loc};
use crate::variables::Var;
use smallvec::SmallVec;

/// An expanded macro (see [`Macro::expand`]).
pub type Expansion = SmallVec<[u8; 64]>;

/// A reference inside `%{...}`.
#[derive(Debug, Clone, PartialEq)]
pub enum MacroRef {
    /// A variable, optionally keyed (`tx.foo`, `REQUEST_HEADERS.host`). Keys are lower-case.
    Var(Var, Option<String>),
    /// `rule.id`, `rule.msg`, ... (field name lower-case).
    Rule(String),
    /// `tx.name` resolved to its slot when the engine was built (see [`crate::txvars`]).
    TxSlot(u32),
}

/// One piece of a macro string.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    /// Literal text.
    Lit(Vec<u8>),
    /// A reference to expand.
    Ref(MacroRef),
}

/// A parsed macro string.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Macro {
    /// Pieces in order.
    pub parts: Vec<Part>,
}

impl Macro {
    /// Parses a string; text without `%{` becomes a single literal.
    pub fn parse(s: &str, loc: &Loc) -> Result<Macro, LoadError> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(p) = rest.find("%{") {
            let Some(end) = rest[p..].find('}') else { break };
            if p > 0 {
                parts.push(Part::Lit(rest.as_bytes()[..p].to_vec()));
            }
            let inner = &rest[p + 2..p + end];
            let (coll, key) = match inner.find(['.', ':']) {
                Some(i) => (&inner[..i], Some(inner[i + 1..].to_ascii_lowercase())),
                None => (inner, None),
            };
            let up = coll.to_ascii_uppercase();
            if up == "RULE" {
                parts.push(Part::Ref(MacroRef::Rule(key.unwrap_or_default())));
            } else {
                let var = Var::from_name(&up).ok_or_else(|| loc.unsupported("macro variable", inner.to_string()))?;
                parts.push(Part::Ref(MacroRef::Var(var, key)));
            }
            rest = &rest[p + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.as_bytes().to_vec()));
        }
        Ok(Macro { parts })
    }

    /// The literal value when the string has no references.
    pub fn as_literal(&self) -> Option<Vec<u8>> {
        match self.parts.as_slice() {
            [] => Some(Vec::new()),
            [Part::Lit(l)] => Some(l.clone()),
            _ => None,
        }
    }

    /// The literal text, borrowed, when the string has no references.
    pub fn literal_ref(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [] => Some(b""),
            [Part::Lit(l)] => Some(l),
            _ => None,
        }
    }

    /// Lower-cases the literal pieces (for case-insensitive names such as TX keys).
    pub fn lowercase_literals(&mut self) {
        for p in &mut self.parts {
            if let Part::Lit(l) = p {
                l.make_ascii_lowercase();
            }
        }
    }

    /// Expands using `f` for references. Most expansions (`setvar` values and names such as
    /// `%{tx.critical_anomaly_score}`) are short: up to 64 bytes stay on the stack.
    pub fn expand(&self, mut f: impl FnMut(&MacroRef, &mut Expansion)) -> Expansion {
        let mut out = Expansion::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l),
                Part::Ref(r) => f(r, &mut out),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn parse_macro() {
        let loc = Loc { file: Arc::from("t"), line: 1 };
        let m = Macro::parse("a %{TX.Foo} b %{rule.id}%{MATCHED_VAR}", &loc).unwrap();
        assert_eq!(m.parts.len(), 5);
        assert_eq!(m.parts[1], Part::Ref(MacroRef::Var(Var::Tx, Some("foo".into()))));
        let out = m.expand(|r, o| match r {
            MacroRef::Var(Var::Tx, _) => o.extend_from_slice(b"X"),
            MacroRef::Rule(_) => o.extend_from_slice(b"7"),
            _ => o.extend_from_slice(b"M"),
        });
        assert_eq!(&out[..], b"a X b 7M");
        assert!(Macro::parse("%{NOPE}", &loc).is_err());
    }
}
