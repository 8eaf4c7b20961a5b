//! Bearer access tokens on an app's `api_paths`: JWT access tokens (RFC 9068) verified at the
//! gateway — signature against the provider's JWKS (cached, fetched again when a token names
//! a key not yet seen: rotation), `iss`, `aud` (the app's client id), `exp`, `nbf`, the scopes
//! the app's policy names — then the same access decision as for browsers. Refusals are 401
//! with an RFC 6750 `WWW-Authenticate` (403 `insufficient_scope` / missing role).

use super::access::{self, Decision};
use super::{rp, Gate, Reply, Request, SsoError, SsoService};
use govgate_policies::{Access, App, Policy};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// Why a token was refused (the RFC 6750 error and a description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

fn refusal(status: u16, error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal { status, error, description: description.into() }
}

/// The token in `Authorization: Bearer …`, if any.
pub fn token(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, t) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(t.trim()).filter(|t| !t.is_empty())
}

/// Checks a token against a key set. Pure: the caller fetches keys and retries on
/// [`Checked::UnknownKey`].
pub enum Checked {
    Valid(serde_json::Value),
    UnknownKey,
    Invalid(Refusal),
}

pub fn check(token: &str, jwks: &jsonwebtoken::jwk::JwkSet, issuer: &str, audience: &str, scopes: &[String]) -> Checked {
    let header = match jsonwebtoken::decode_header(token) {
        Ok(h) => h,
        Err(_) => return Checked::Invalid(refusal(401, "invalid_token", "the token is not a JWT")),
    };
    if !matches!(header.alg, Algorithm::ES256 | Algorithm::EdDSA | Algorithm::RS256 | Algorithm::PS256) {
        return Checked::Invalid(refusal(401, "invalid_token", "algorithm not accepted"));
    }
    if !matches!(header.typ.as_deref(), Some("at+jwt" | "application/at+jwt")) {
        return Checked::Invalid(refusal(401, "invalid_token", "not an access token (typ at+jwt)"));
    }
    let Some(jwk) = header.kid.as_deref().and_then(|k| jwks.find(k)) else { return Checked::UnknownKey };
    let Ok(key) = DecodingKey::from_jwk(jwk) else { return Checked::Invalid(refusal(401, "invalid_token", "unusable key")) };
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.validate_nbf = true;
    v.leeway = 5;
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = match jsonwebtoken::decode::<serde_json::Value>(token, &key, &v) {
        Ok(d) => d.claims,
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind as K;
            let why = match e.kind() {
                K::ExpiredSignature => "the token has expired",
                K::ImmatureSignature => "the token is not valid yet",
                K::InvalidAudience => "the token is for another audience",
                K::InvalidIssuer => "the token is from another issuer",
                K::InvalidSignature => "bad signature",
                _ => "the token is invalid",
            };
            return Checked::Invalid(refusal(401, "invalid_token", why));
        }
    };
    let granted: Vec<&str> = claims.get("scope").and_then(|s| s.as_str()).unwrap_or("").split(' ').collect();
    let missing: Vec<&str> = scopes.iter().map(String::as_str).filter(|s| !granted.contains(s)).collect();
    if !missing.is_empty() {
        return Checked::Invalid(refusal(403, "insufficient_scope", format!("needs scope {}", missing.join(" "))));
    }
    Checked::Valid(claims)
}

fn challenge(r: &Refusal, scopes: &[String]) -> String {
    let mut h = format!("Bearer realm=\"govgate\", error=\"{}\", error_description=\"{}\"", r.error, r.description.replace('"', "'"));
    if r.error == "insufficient_scope" && !scopes.is_empty() {
        h.push_str(&format!(", scope=\"{}\"", scopes.join(" ")));
    }
    h
}

fn reply(req: &Request<'_>, r: Refusal, scopes: &[String]) -> Gate {
    let body = serde_json::json!({ "error": r.error, "error_description": r.description, "incident_id": req.request_id });
    Gate::Reply(Reply {
        status: r.status,
        headers: vec![("www-authenticate", challenge(&r, scopes)), ("cache-control", "no-store".into())],
        content_type: "application/json",
        body: body.to_string().into_bytes(),
        refused: Some(match (r.status, r.error) {
            (401, "invalid_request") => "bearer_missing",
            (401, _) => "bearer_invalid",
            _ => "bearer_forbidden",
        }),
        user: None,
    })
}

pub(super) async fn gate(
    sso: &SsoService,
    t: &rp::Transport<'_>,
    issuer: &str,
    policy: &Policy,
    app: &App,
    required: &Access,
    req: &Request<'_>,
) -> Result<Gate, SsoError> {
    let Some(token) = token(req.headers) else {
        if required.is_public() {
            return Ok(Gate::Continue { headers: Vec::new(), who: None });
        }
        let mut g = reply(req, refusal(401, "invalid_request", "an access token is required"), &app.api_scopes);
        if let Gate::Reply(r) = &mut g {
            r.headers[0].1 = "Bearer realm=\"govgate\"".into();
        }
        return Ok(g);
    };
    let audience = app.sso_client.as_deref().unwrap_or(&app.name);
    let mut provider = sso.provider.get(t, issuer).await?;
    let mut checked = check(token, &provider.jwks, issuer, audience, &app.api_scopes);
    if matches!(checked, Checked::UnknownKey) {
        provider = sso.provider.refresh(t, issuer).await?;
        checked = check(token, &provider.jwks, issuer, audience, &app.api_scopes);
    }
    let claims = match checked {
        Checked::Valid(c) => c,
        Checked::UnknownKey => return Ok(reply(req, refusal(401, "invalid_token", "signed with an unknown key"), &app.api_scopes)),
        Checked::Invalid(r) => return Ok(reply(req, r, &app.api_scopes)),
    };
    let sub = claims.get("sub").and_then(|s| s.as_str()).unwrap_or_default().to_string();
    let acr = claims.get("acr").and_then(|s| s.as_str()).unwrap_or_default().to_string();
    let who = super::identity(&sub, &acr, &claims);
    match access::decide(required, Some(&who)) {
        Decision::Allow | Decision::Login => {
            let headers = sso.identity_headers(policy, app, &sub, &acr, &claims, None).await?;
            Ok(Gate::Continue { headers, who: Some(who) })
        }
        Decision::StepUp(acr) => {
            let r = refusal(401, "insufficient_user_authentication", format!("needs a login with acr {acr}"));
            let mut g = reply(req, r, &app.api_scopes);
            if let Gate::Reply(rep) = &mut g {
                rep.headers[0].1.push_str(&format!(", acr_values=\"{acr}\""));
            }
            Ok(g)
        }
        Decision::Forbidden(why) => Ok(reply(req, refusal(403, "insufficient_scope", why.explain().0), &app.api_scopes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    struct Key {
        pair: EcdsaKeyPair,
        kid: String,
    }

    fn key(kid: &str) -> Key {
        let rng = ring::rand::SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Key { pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref(), &rng).unwrap(), kid: kid.into() }
    }

    fn jwks(keys: &[&Key]) -> jsonwebtoken::jwk::JwkSet {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let keys: Vec<_> = keys
            .iter()
            .map(|k| {
                let p = k.pair.public_key().as_ref();
                serde_json::json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": k.kid, "x": b.encode(&p[1..33]), "y": b.encode(&p[33..65])})
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "keys": keys })).unwrap()
    }

    fn sign(k: &Key, typ: &str, claims: serde_json::Value) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let head = b.encode(serde_json::json!({"alg": "ES256", "typ": typ, "kid": k.kid}).to_string());
        let input = format!("{head}.{}", b.encode(claims.to_string()));
        let sig = k.pair.sign(&ring::rand::SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b.encode(sig.as_ref()))
    }

    fn claims(aud: &str, exp_in: i64, scope: &str) -> serde_json::Value {
        let now = super::super::now();
        serde_json::json!({"iss": "https://id.test", "sub": "u1", "aud": aud, "iat": now, "nbf": now - 1, "exp": now + exp_in, "scope": scope, "acr": "pwd"})
    }

    fn outcome(c: Checked) -> Result<serde_json::Value, Option<Refusal>> {
        match c {
            Checked::Valid(v) => Ok(v),
            Checked::UnknownKey => Err(None),
            Checked::Invalid(r) => Err(Some(r)),
        }
    }

    #[test]
    fn tokens_are_checked_for_signature_issuer_audience_time_and_scope() {
        let (k1, k2) = (key("k1"), key("k2"));
        let set = jwks(&[&k1]);
        let scopes = vec!["tax.read".to_string()];
        let ok = sign(&k1, "at+jwt", claims("tax", 300, "openid tax.read"));
        assert_eq!(outcome(check(&ok, &set, "https://id.test", "tax", &scopes)).unwrap()["sub"], "u1");
        let err = |t: &str| outcome(check(t, &set, "https://id.test", "tax", &scopes)).unwrap_err();
        assert_eq!(err(&sign(&k1, "at+jwt", claims("tax", -60, "tax.read"))).unwrap().description, "the token has expired");
        assert_eq!(err(&sign(&k1, "at+jwt", claims("shebao", 300, "tax.read"))).unwrap().description, "the token is for another audience");
        let r = err(&sign(&k1, "at+jwt", claims("tax", 300, "openid"))).unwrap();
        assert_eq!((r.status, r.error), (403, "insufficient_scope"));
        assert_eq!(
            err(&sign(&k1, "JWT", claims("tax", 300, "tax.read"))).unwrap().error,
            "invalid_token",
            "an ID token is not an access token"
        );
        assert!(err(&sign(&k2, "at+jwt", claims("tax", 300, "tax.read"))).is_none(), "an unknown key asks for a JWKS refetch");
        // A key that claims k1's id but is another key: bad signature.
        let impostor = Key { pair: key("x").pair, kid: "k1".into() };
        assert_eq!(err(&sign(&impostor, "at+jwt", claims("tax", 300, "tax.read"))).unwrap().description, "bad signature");
        let mut nbf = claims("tax", 300, "tax.read");
        nbf["nbf"] = (super::super::now() + 120).into();
        assert_eq!(err(&sign(&k1, "at+jwt", nbf)).unwrap().description, "the token is not valid yet");
        assert_eq!(err("garbage").unwrap().error, "invalid_token");
    }

    #[test]
    fn bearer_header_is_parsed() {
        let mut h = http::HeaderMap::new();
        assert_eq!(token(&h), None);
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(token(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(token(&h), None);
    }
}
