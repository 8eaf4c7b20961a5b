//! SecLang parsing: splits configuration text into directives (handling line
//! continuations, comments and Apache-style quoting) and parses the pieces of a
//! `SecRule` (variables, operator, actions). Compilation into executable rules
//! lives in `crate::rule`.

mod directives;
mod pieces;

pub use directives::{split_directives, Directive};
pub use pieces::{parse_actions, parse_operator, parse_targets, RawAction, RawOperator, RawTarget};
