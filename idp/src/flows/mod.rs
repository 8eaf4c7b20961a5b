//! Protocol flows. Each submodule owns one endpoint family; this module holds the shared pieces:
//! form/query parameter parsing with duplicate detection, client authentication at the token,
//! introspection and revocation endpoints, and token issuance.

pub mod authorize;
pub mod claims;
pub mod client_auth;
pub mod discovery;
pub mod issue;
pub mod logout;
pub mod register;
pub mod request_object;
pub mod token;
pub mod userinfo;

use crate::error::OAuthError;

/// Decoded `application/x-www-form-urlencoded` parameters (query or body).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Params { pairs }
    }

    pub fn parse(raw: &[u8]) -> Self {
        Params { pairs: url::form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect() }
    }

    /// Value of `k`; empty values count as absent (RFC 6749 §3.1).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, v)| n == k && !v.is_empty()).map(|(_, v)| v.as_str())
    }

    /// The first of `keys` that occurs more than once (RFC 6749 §3.1: parameters MUST NOT repeat).
    pub fn duplicated(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find(|k| self.pairs.iter().filter(|(n, _)| n == *k).count() > 1).map(|k| k.to_string())
    }

    /// Reject repeated protocol parameters.
    pub fn check_no_dups(&self, keys: &[&str]) -> Result<(), OAuthError> {
        match self.duplicated(keys) {
            Some(k) => Err(OAuthError::invalid_request(format!("parameter {k} repeated"))),
            None => Ok(()),
        }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// Form body parameters of a POST (content type is not trusted for anything else).
pub fn body_params(req: &crate::http::IdpRequest) -> Params {
    Params::parse(&req.body)
}

/// Scope string → list (split on spaces, deduplicated, order kept).
pub fn split_scope(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in s.split(' ').filter(|x| !x.is_empty()) {
        if !out.iter().any(|y| y == x) {
            out.push(x.to_string());
        }
    }
    out
}
