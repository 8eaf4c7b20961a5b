//! # govgate-waf
//!
//! The attack-filtering engine (issue: "Attack filtering"). Being written.
