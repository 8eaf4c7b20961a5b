//! Request body processors: turn a raw body into named arguments the way
//! ModSecurity/Coraza name them (`ARGS_POST`, `FILES`, `json.a.b`, XML text).
//! All parsers are panic-free on arbitrary input.

pub mod json;
pub mod multipart;
pub mod urlencoded;
pub mod xml;

/// Key/value list (ordered, duplicates allowed).
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;
