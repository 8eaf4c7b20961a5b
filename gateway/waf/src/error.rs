//! Typed errors raised while loading rules. Every error carries the file and
//! line of the directive that caused it, so an operator can fix the config.

use thiserror::Error;

/// An error while reading or compiling SecLang configuration.
#[derive(Debug, Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file that failed.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The directive, variable, operator, transformation or action is not supported.
    #[error("{file}:{line}: unsupported {what}: {name}")]
    Unsupported {
        /// Config file name.
        file: String,
        /// 1-based line where the directive starts.
        line: usize,
        /// What kind of thing ("directive", "operator", ...).
        what: &'static str,
        /// The offending name.
        name: String,
    },
    /// The directive is syntactically wrong.
    #[error("{file}:{line}: syntax error: {msg}")]
    Syntax {
        /// Config file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A regular expression does not compile.
    #[error("{file}:{line}: bad regex: {msg}")]
    Regex {
        /// Config file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// The compiler's message.
        msg: String,
    },
}

/// Where a directive came from; used to build [`LoadError`]s.
#[derive(Debug, Clone)]
pub struct Loc {
    /// Config file name.
    pub file: std::sync::Arc<str>,
    /// 1-based line.
    pub line: usize,
}

impl Loc {
    /// An "unsupported X" error at this location.
    pub fn unsupported(&self, what: &'static str, name: impl Into<String>) -> LoadError {
        LoadError::Unsupported { file: self.file.to_string(), line: self.line, what, name: name.into() }
    }
    /// A syntax error at this location.
    pub fn syntax(&self, msg: impl Into<String>) -> LoadError {
        LoadError::Syntax { file: self.file.to_string(), line: self.line, msg: msg.into() }
    }
    /// A regex error at this location.
    pub fn regex(&self, msg: impl Into<String>) -> LoadError {
        LoadError::Regex { file: self.file.to_string(), line: self.line, msg: msg.into() }
    }
}
