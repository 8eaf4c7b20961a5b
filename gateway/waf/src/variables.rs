//! Variables (`ARGS`, `REQUEST_HEADERS:User-Agent`, `&TX:x`, `!ARGS:/re/`):
//! the names SecLang knows, how a target list compiles, and key selectors.

use crate::error::{LoadError, Loc};
use crate::parser::RawTarget;
use regex::bytes::Regex;

macro_rules! vars {
    ($( $v:ident = $n:literal, $coll:literal );* $(;)?) => {
        /// A SecLang variable (collection or scalar).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs, non_camel_case_types, clippy::upper_case_acronyms)]
        pub enum Var { $( $v ),* }
        impl Var {
            /// Looks a variable up by its (upper-case) name.
            pub fn from_name(n: &str) -> Option<Var> {
                match n { $( $n => Some(Var::$v), )* _ => None }
            }
            /// The SecLang name.
            pub fn name(self) -> &'static str {
                match self { $( Var::$v => $n ),* }
            }
            /// Whether the variable is a keyed collection.
            pub fn is_collection(self) -> bool {
                match self { $( Var::$v => $coll ),* }
            }
        }
    };
}

vars! {
    Args = "ARGS", true;
    ArgsNames = "ARGS_NAMES", true;
    ArgsGet = "ARGS_GET", true;
    ArgsGetNames = "ARGS_GET_NAMES", true;
    ArgsPost = "ARGS_POST", true;
    ArgsPostNames = "ARGS_POST_NAMES", true;
    ArgsCombinedSize = "ARGS_COMBINED_SIZE", false;
    RequestHeaders = "REQUEST_HEADERS", true;
    RequestHeadersNames = "REQUEST_HEADERS_NAMES", true;
    RequestCookies = "REQUEST_COOKIES", true;
    RequestCookiesNames = "REQUEST_COOKIES_NAMES", true;
    RequestMethod = "REQUEST_METHOD", false;
    RequestUri = "REQUEST_URI", false;
    RequestUriRaw = "REQUEST_URI_RAW", false;
    RequestFilename = "REQUEST_FILENAME", false;
    RequestBasename = "REQUEST_BASENAME", false;
    RequestLine = "REQUEST_LINE", false;
    RequestProtocol = "REQUEST_PROTOCOL", false;
    RequestBody = "REQUEST_BODY", false;
    RequestBodyLength = "REQUEST_BODY_LENGTH", false;
    QueryString = "QUERY_STRING", false;
    RemoteAddr = "REMOTE_ADDR", false;
    UniqueId = "UNIQUE_ID", false;
    ReqbodyProcessor = "REQBODY_PROCESSOR", false;
    ReqbodyError = "REQBODY_ERROR", false;
    ReqbodyErrorMsg = "REQBODY_ERROR_MSG", false;
    Files = "FILES", true;
    FilesNames = "FILES_NAMES", true;
    FilesSizes = "FILES_SIZES", true;
    FilesCombinedSize = "FILES_COMBINED_SIZE", false;
    MultipartPartHeaders = "MULTIPART_PART_HEADERS", true;
    MultipartFilename = "MULTIPART_FILENAME", false;
    MultipartName = "MULTIPART_NAME", false;
    MultipartStrictError = "MULTIPART_STRICT_ERROR", false;
    MultipartUnmatchedBoundary = "MULTIPART_UNMATCHED_BOUNDARY", false;
    Xml = "XML", true;
    Tx = "TX", true;
    MatchedVar = "MATCHED_VAR", false;
    MatchedVarName = "MATCHED_VAR_NAME", false;
    MatchedVars = "MATCHED_VARS", true;
    MatchedVarsNames = "MATCHED_VARS_NAMES", true;
    ResponseHeaders = "RESPONSE_HEADERS", true;
    ResponseHeadersNames = "RESPONSE_HEADERS_NAMES", true;
    ResponseBody = "RESPONSE_BODY", false;
    ResponseStatus = "RESPONSE_STATUS", false;
    ResponseProtocol = "RESPONSE_PROTOCOL", false;
    ResponseContentType = "RESPONSE_CONTENT_TYPE", false;
    ResponseContentLength = "RESPONSE_CONTENT_LENGTH", false;
    Duration = "DURATION", false;
}

/// How a collection member is selected.
#[derive(Debug, Clone)]
pub enum KeySel {
    /// Whole collection.
    All,
    /// Exact key, compared case-insensitively (stored lower-case).
    Exact(Vec<u8>),
    /// A key regex that is only a literal prefix (`/^_pk_ref/`), compared case-insensitively
    /// (stored lower-case): no regex runs.
    Prefix(Vec<u8>),
    /// Key regex (`/.../`), case-insensitive. `prefix` is a literal (lower-case) that every
    /// matching key starts with, when the pattern begins with one (`/^pbjs-\w+$/`): a key
    /// without it is rejected before the regex runs.
    Regex { re: Regex, prefix: Vec<u8> },
}

impl KeySel {
    /// Does this selector accept `key`?
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            KeySel::All => true,
            KeySel::Exact(k) => k.eq_ignore_ascii_case(key),
            KeySel::Prefix(p) => starts_with_ignore_case(key, p),
            KeySel::Regex { re, prefix } => starts_with_ignore_case(key, prefix) && re.is_match(key),
        }
    }
}

/// Whether `key` starts with the lower-case `prefix`, ASCII case-insensitively.
fn starts_with_ignore_case(key: &[u8], prefix: &[u8]) -> bool {
    key.get(..prefix.len()).is_some_and(|h| h.eq_ignore_ascii_case(prefix))
}

/// The literal prefix every match of a key regex starts with, and whether the pattern is
/// nothing but `^` and that literal. Only plain letters, digits, `_` and `-` count; a
/// pattern with an alternation gives none, and a letter a quantifier makes optional is left out.
fn anchored_literal(pat: &str) -> (Vec<u8>, bool) {
    let Some(rest) = pat.strip_prefix('^') else { return (Vec::new(), false) };
    if pat.contains('|') {
        return (Vec::new(), false);
    }
    let n = rest.bytes().take_while(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-').count();
    let after = rest.as_bytes().get(n).copied();
    if after.is_none() {
        return (rest.as_bytes().to_ascii_lowercase(), true);
    }
    // `^abc?` / `^abc*` / `^abc{0,1}` leave the last letter optional.
    let keep = if matches!(after, Some(b'?' | b'*' | b'{')) { n.saturating_sub(1) } else { n };
    (rest.as_bytes()[..keep].to_ascii_lowercase(), false)
}

/// One compiled target (not an exclusion).
#[derive(Debug, Clone)]
pub struct Target {
    /// Variable.
    pub var: Var,
    /// Member selector.
    pub key: KeySel,
    /// `&VAR`: yield the number of members instead.
    pub count: bool,
    /// For `TX:name`: the name's slot, set when the engine is built (see [`crate::txvars`]).
    pub tx_slot: Option<u32>,
    /// For other `TX` targets (`TX`, `TX:/regex/`): the slots of the interned names the key
    /// selects, in slot order, set when the engine is built (see [`crate::txvars::resolve_tx_keys`]).
    pub tx_slots: Vec<u32>,
}

/// An exclusion (`!VAR:key`).
#[derive(Debug, Clone)]
pub struct Exclusion {
    /// Variable.
    pub var: Var,
    /// Member selector.
    pub key: KeySel,
}

/// A compiled target list.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// Targets in order.
    pub targets: Vec<Target>,
    /// Exclusions.
    pub exclusions: Vec<Exclusion>,
}

/// Compiles a key selector.
pub fn compile_key(key: Option<&str>, loc: &Loc) -> Result<KeySel, LoadError> {
    Ok(match key {
        None => KeySel::All,
        Some(k) if k.len() >= 2 && k.starts_with('/') && k.ends_with('/') => {
            let pat = &k[1..k.len() - 1];
            let re = Regex::new(&format!("(?is-u){pat}")).map_err(|e| loc.regex(e.to_string()))?;
            match anchored_literal(pat) {
                (prefix, true) => KeySel::Prefix(prefix),
                (prefix, false) => KeySel::Regex { re, prefix },
            }
        }
        Some(k) => KeySel::Exact(k.to_ascii_lowercase().into_bytes()),
    })
}

/// Compiles a raw target list, adding to `into`.
pub fn compile_targets(raw: &[RawTarget], loc: &Loc, into: &mut Targets) -> Result<(), LoadError> {
    for t in raw {
        let var = Var::from_name(&t.name).ok_or_else(|| loc.unsupported("variable", t.name.clone()))?;
        let key = compile_key(t.key.as_deref(), loc)?;
        if t.exclude {
            into.exclusions.push(Exclusion { var, key });
        } else {
            into.targets.push(Target { var, key, count: t.count, tx_slot: None, tx_slots: Vec::new() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn key(k: &str) -> KeySel {
        compile_key(Some(k), &Loc { file: Arc::from("t"), line: 1 }).unwrap()
    }

    #[test]
    fn literal_prefix_keys_need_no_regex_and_match_like_one() {
        let k = key("/^_pk_ref/");
        assert!(matches!(&k, KeySel::Prefix(p) if p.as_slice() == b"_pk_ref"), "{k:?}");
        assert!(k.matches(b"_pk_ref.1.abcd") && k.matches(b"_PK_REF") && !k.matches(b"x_pk_ref") && !k.matches(b"_pk_re"));
        // Regexes keep running behind their literal prefix, case-insensitively.
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("/^pbjs-\\w+$/", &["pbjs-abc", "PBJS-x1"], &["pbjs-", "xpbjs-a", "_ga"]),
            ("/^_ga(?:_\\w+)?$/", &["_ga", "_GA_X1"], &["_gat", "ga"]),
            // The letter a quantifier makes optional is not part of the prefix.
            ("/^abc?d/", &["abd", "abcd"], &["acd"]),
            ("/^ab*c/", &["ac", "abbc"], &["bc"]),
            // An alternation gives no prefix at all.
            ("/^ab|cd/", &["abx", "xcd"], &["xab"]),
            ("/header_/", &["x_header_y"], &["header"]),
        ];
        for (pat, yes, no) in cases {
            let k = key(pat);
            let re = regex::bytes::Regex::new(&format!("(?is-u){}", &pat[1..pat.len() - 1])).unwrap();
            for y in *yes {
                assert!(k.matches(y.as_bytes()) && re.is_match(y.as_bytes()), "{pat} should accept {y}");
            }
            for n in *no {
                assert!(!k.matches(n.as_bytes()) && !re.is_match(n.as_bytes()), "{pat} should refuse {n}");
            }
        }
    }
}
