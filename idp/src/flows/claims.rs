//! The `claims` request parameter (OIDC Core §5.5): claims asked for one by one, for the
//! UserInfo response and for the ID token, on top of what the scopes release.
//!
//! Each claim belongs to a scope (`name` to `profile`, `address` to `address`, …); a claim is
//! only released to a client that may have its scope, and its scope is part of what the user
//! consents to. `essential`, `value` and `values` are accepted: the provider releases what the
//! account has, and an essential claim that it lacks is simply absent (§5.5.1).

use serde::{Deserialize, Serialize};

use crate::clients::Client;

/// Longest `claims` parameter accepted.
const MAX_LEN: usize = 4096;

/// Claim names requested for UserInfo and for the ID token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token: Vec<String>,
}

/// The scope that releases a claim (`None`: not a claim this provider releases on request).
pub fn scope_of(claim: &str) -> Option<&'static str> {
    Some(match claim {
        "name" | "preferred_username" | "account_type" | "updated_at" => "profile",
        "email" | "email_verified" => "email",
        "phone_number" | "phone_number_verified" => "phone",
        "address" => "address",
        "id_number" | "uscc" | "real_name_level" | "gov_assurance" => "gov_identity",
        "roles" => "roles",
        _ => return None,
    })
}

impl ClaimsRequest {
    /// Parses the JSON `claims` parameter; claims this provider does not know are ignored.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        if text.len() > MAX_LEN {
            return Err("claims parameter too long");
        }
        let v: serde_json::Value = serde_json::from_str(text).map_err(|_| "claims is not JSON")?;
        let obj = v.as_object().ok_or("claims must be a JSON object")?;
        let names = |member: &str| -> Result<Vec<String>, &'static str> {
            match obj.get(member) {
                None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                Some(serde_json::Value::Object(m)) => {
                    if m.values().any(|x| !(x.is_null() || x.is_object())) {
                        return Err("each requested claim must be null or an object");
                    }
                    Ok(m.keys().filter(|k| scope_of(k).is_some()).cloned().collect())
                }
                Some(_) => Err("claims members must be JSON objects"),
            }
        };
        Ok(ClaimsRequest { userinfo: names("userinfo")?, id_token: names("id_token")? })
    }

    pub fn is_empty(&self) -> bool {
        self.userinfo.is_empty() && self.id_token.is_empty()
    }

    /// Only the claims whose scope the client may have.
    pub fn allowed_for(mut self, client: &Client) -> Self {
        let may = |c: &String| scope_of(c).is_some_and(|s| client.scopes.iter().any(|x| x == s));
        self.userinfo.retain(may);
        self.id_token.retain(may);
        self
    }

    /// The scopes of the requested claims (for consent).
    pub fn scopes(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for s in self.userinfo.iter().chain(&self.id_token).filter_map(|c| scope_of(c)) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// As stored with a code or token family (`None` when nothing was requested).
    pub fn to_db(&self) -> Option<String> {
        (!self.is_empty()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    pub fn from_db(text: Option<String>) -> Self {
        text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
    }
}

/// `scope` together with the scopes of `claims`, deduplicated: what the user consents to.
pub fn consent_scope(scope: &[String], claims: &ClaimsRequest) -> Vec<String> {
    let mut out = scope.to_vec();
    for s in claims.scopes() {
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_and_refuse_malformed() {
        let c =
            ClaimsRequest::parse(r#"{"userinfo":{"name":{"essential":true},"email":null,"x-unknown":null},"id_token":{"address":null}}"#)
                .unwrap();
        assert_eq!(c.userinfo, vec!["email", "name"]);
        assert_eq!(c.id_token, vec!["address"]);
        assert_eq!(c.scopes(), vec!["email", "profile", "address"]);
        assert!(ClaimsRequest::parse("[1]").is_err());
        assert!(ClaimsRequest::parse(r#"{"userinfo":{"name":true}}"#).is_err());
        assert!(ClaimsRequest::parse(r#"{"userinfo":[]}"#).is_err());
        assert!(ClaimsRequest::parse("{").is_err());
        assert_eq!(ClaimsRequest::from_db(c.to_db()), c);
        assert_eq!(ClaimsRequest::default().to_db(), None);
    }
}
