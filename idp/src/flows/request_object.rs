//! Request objects passed by value (`request`, OIDC Core §6.1): the authorization request's
//! parameters as the claims of a JWT. Only unsigned objects (`alg: none`) are accepted, as
//! discovery says (`request_object_signing_alg_values_supported: ["none"]`): they carry no more
//! authority than the same parameters in the query, and get exactly the same checks. Values in
//! the object replace those of the query (§6.3.3); `client_id` and `response_type` must agree
//! where both are given. `request_uri` is not supported (the provider fetches no URLs on behalf
//! of a request) and is refused with `request_uri_not_supported`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::Params;

/// Longest request object accepted.
const MAX_LEN: usize = 16 * 1024;

/// Claims of the JWT that describe the object itself rather than the request.
const ENVELOPE: &[&str] = &["iss", "aud", "exp", "iat", "nbf", "jti"];

/// The request's parameters with those of the request object in `p`'s `request` merged in.
/// The error is an `invalid_request_object` description.
pub fn merge(p: &Params, issuer: &str, now: i64) -> Result<Params, String> {
    let jwt = p.get("request").unwrap_or("");
    if jwt.len() > MAX_LEN {
        return Err("request object too long".into());
    }
    let mut parts = jwt.split('.');
    let (Some(h), Some(b), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("request object is not a JWT".into());
    };
    let json = |s: &str| URL_SAFE_NO_PAD.decode(s).ok().and_then(|v| serde_json::from_slice::<serde_json::Value>(&v).ok());
    let header = json(h).ok_or("request object header is not JSON")?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("none") || !sig.is_empty() {
        return Err("only unsigned request objects (alg none) are supported".into());
    }
    let claims = json(b).and_then(|v| v.as_object().cloned()).ok_or("request object payload is not a JSON object")?;
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str());
    for k in ["client_id", "response_type"] {
        if let (Some(inner), Some(outer)) = (text(k), p.get(k)) {
            if inner != outer {
                return Err(format!("{k} differs between the request object and the query"));
            }
        }
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err("a request object cannot contain request or request_uri".into());
    }
    let client_id = text("client_id").or(p.get("client_id"));
    if claims.contains_key("iss") && text("iss") != client_id {
        return Err("iss of the request object must be the client_id".into());
    }
    let aud_ok = match claims.get("aud") {
        None => true,
        Some(serde_json::Value::String(a)) => a == issuer,
        Some(serde_json::Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(issuer)),
        Some(_) => false,
    };
    if !aud_ok {
        return Err("aud of the request object must be the issuer".into());
    }
    if claims.get("exp").and_then(|e| e.as_i64()).is_some_and(|e| e <= now) {
        return Err("request object expired".into());
    }
    let mut pairs: Vec<(String, String)> =
        p.pairs().iter().filter(|(k, _)| k != "request" && !claims.contains_key(k.as_str())).cloned().collect();
    for (k, v) in claims.iter().filter(|(k, _)| !ENVELOPE.contains(&k.as_str())) {
        let value = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => continue,
            serde_json::Value::Array(a) if a.iter().all(|x| x.is_string()) => {
                a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" ")
            }
            other => other.to_string(),
        };
        pairs.push((k.clone(), value));
    }
    Ok(Params::from_pairs(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(header: &str, claims: &serde_json::Value) -> String {
        format!("{}.{}.", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims.to_string()))
    }

    fn query(request: &str) -> Params {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", "c")
            .append_pair("response_type", "code")
            .append_pair("state", "outer")
            .append_pair("request", request)
            .finish();
        Params::parse(q.as_bytes())
    }

    #[test]
    fn object_values_replace_the_query_and_envelopes_are_checked() {
        let claims = serde_json::json!({"iss": "c", "aud": "https://id", "client_id": "c", "state": "inner", "max_age": 10,
            "claims": {"userinfo": {"name": {"essential": true}}}});
        let p = merge(&query(&object(r#"{"alg":"none"}"#, &claims)), "https://id", 0).unwrap();
        assert_eq!((p.get("state"), p.get("max_age"), p.get("response_type")), (Some("inner"), Some("10"), Some("code")));
        assert!(p.get("claims").unwrap().contains("essential"));
        assert!(p.get("request").is_none() && p.duplicated(&["state"]).is_none());
        for bad in [
            object(r#"{"alg":"RS256"}"#, &claims),
            object(r#"{"alg":"none"}"#, &serde_json::json!({"client_id": "other"})),
            object(r#"{"alg":"none"}"#, &serde_json::json!({"iss": "other"})),
            object(r#"{"alg":"none"}"#, &serde_json::json!({"aud": "https://elsewhere"})),
            object(r#"{"alg":"none"}"#, &serde_json::json!({"exp": 1})),
            object(r#"{"alg":"none"}"#, &serde_json::json!({"request_uri": "https://x"})),
            format!("{}sig", object(r#"{"alg":"none"}"#, &claims)),
            "not-a-jwt".into(),
        ] {
            assert!(merge(&query(&bad), "https://id", 100).is_err(), "{bad}");
        }
    }
}
