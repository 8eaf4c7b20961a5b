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
    /// Key regex (`/.../`), case-insensitive.
    Regex(Regex),
}

impl KeySel {
    /// Does this selector accept `key`?
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            KeySel::All => true,
            KeySel::Exact(k) => k.eq_ignore_ascii_case(key),
            KeySel::Regex(r) => r.is_match(key),
        }
    }
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
            KeySel::Regex(Regex::new(&format!("(?is-u){pat}")).map_err(|e| loc.regex(e.to_string()))?)
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
            into.targets.push(Target { var, key, count: t.count, tx_slot: None });
        }
    }
    Ok(())
}
