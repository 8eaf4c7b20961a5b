//! Policy errors that point at the file, line and column an operator must fix.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a policy file, located by line and column (both 1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The text of the offending line, for the caret display.
    pub source_line: String,
}

impl PolicyError {
    /// Builds an error from a byte span of `text`.
    pub fn at(file: &Path, text: &str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let offset = span.map(|s| s.start.min(text.len())).unwrap_or(0);
        let (line, column) = line_col(text, offset);
        let source_line = text.lines().nth(line - 1).unwrap_or("").to_string();
        PolicyError { file: file.to_path_buf(), line, column, message: message.into(), source_line }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}:{}: error: {}", self.file.display(), self.line, self.column, self.message)?;
        if !self.source_line.is_empty() {
            let gutter = self.line.to_string().len();
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{} | {}", self.line, self.source_line)?;
            write!(f, "{:gutter$} | {:>col$}", "", "^", col = self.column)?;
        }
        Ok(())
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read policy file: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}", render(.0))]
    Invalid(Vec<PolicyError>),
}

fn render(errors: &[PolicyError]) -> String {
    let mut out = String::new();
    for e in errors {
        out.push_str(&e.to_string());
        out.push('\n');
    }
    out.push_str(&format!("{} error{} in policy", errors.len(), if errors.len() == 1 { "" } else { "s" }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "a = 1\n# 注释\nbb = \"x\"\n";
        let off = text.find("bb").unwrap();
        assert_eq!(line_col(text, off), (3, 1));
        let off = text.find('"').unwrap();
        assert_eq!(line_col(text, off), (3, 6));
        let off = text.find('释').unwrap();
        assert_eq!(line_col(text, off), (2, 4));
    }

    #[test]
    fn display_names_file_line_and_shows_caret() {
        let text = "x = 1\nrate = \"10/fortnight\"\n";
        let e = PolicyError::at(Path::new("p.toml"), text, Some(13..26), "bad rate");
        let s = e.to_string();
        assert!(s.starts_with("p.toml:2:8: error: bad rate"), "{s}");
        assert!(s.contains("2 | rate = \"10/fortnight\""), "{s}");
        assert!(s.ends_with("|        ^"), "{s:?}");
    }
}
