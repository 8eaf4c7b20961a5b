//! Turns configuration text into a list of [`Directive`]s.

use crate::error::{LoadError, Loc};
use std::sync::Arc;

/// One configuration directive: its name and its (unquoted) arguments.
#[derive(Debug, Clone)]
pub struct Directive {
    /// Directive name, e.g. `SecRule`.
    pub name: String,
    /// Arguments with quotes removed.
    pub args: Vec<String>,
    /// Where it starts.
    pub loc: Loc,
}

/// Splits configuration text into directives.
pub fn split_directives(file: &str, text: &str) -> Result<Vec<Directive>, LoadError> {
    let file: Arc<str> = Arc::from(file);
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut start_line = 0usize;
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if buf.is_empty() {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            start_line = idx + 1;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            buf.push_str(stripped);
            continue;
        }
        buf.push_str(line);
        let loc = Loc { file: file.clone(), line: start_line };
        out.push(tokenize(&buf, loc)?);
        buf.clear();
    }
    if !buf.is_empty() {
        let loc = Loc { file: file.clone(), line: start_line };
        out.push(tokenize(&buf, loc)?);
    }
    Ok(out)
}

fn tokenize(line: &str, loc: Loc) -> Result<Directive, LoadError> {
    let mut words = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] == b'"' || b[i] == b'\'' {
            let q = b[i];
            i += 1;
            let mut w = Vec::new();
            let mut closed = false;
            while i < b.len() {
                if b[i] == b'\\' && i + 1 < b.len() && b[i + 1] == q {
                    w.push(q);
                    i += 2;
                    continue;
                }
                if b[i] == q {
                    closed = true;
                    i += 1;
                    break;
                }
                w.push(b[i]);
                i += 1;
            }
            if !closed {
                return Err(loc.syntax("unterminated quoted argument"));
            }
            words.push(String::from_utf8_lossy(&w).into_owned());
        } else {
            let s = i;
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            words.push(String::from_utf8_lossy(&b[s..i]).into_owned());
        }
    }
    if words.is_empty() {
        return Err(loc.syntax("empty directive"));
    }
    let name = words.remove(0);
    Ok(Directive { name, args: words, loc })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_and_quotes() {
        let t = "# c\nSecRule ARGS \"@rx a\\\"b\" \\\n    \"id:1,\\\n    pass\"\n\nSecMarker END\n";
        let d = split_directives("x.conf", t).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "SecRule");
        assert_eq!(d[0].args, vec!["ARGS", "@rx a\"b", "id:1,    pass"]);
        assert_eq!(d[0].loc.line, 2);
        assert_eq!(d[1].args, vec!["END"]);
        assert_eq!(d[1].loc.line, 6);
    }

    #[test]
    fn unterminated_is_error() {
        assert!(split_directives("x", "SecRule ARGS \"@rx a").is_err());
    }
}
