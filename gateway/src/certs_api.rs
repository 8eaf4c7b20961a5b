//! The certificate and e-signature verification API that the gateway serves itself (an app
//! with `builtin = "certs_api"`): `POST …/certs/verify` and `POST …/esign/verify`, JSON or
//! `multipart/form-data` (the files as they are) in, JSON out (docs/api/certs.openapi.yaml).
//! Callers authenticate with an API key whose SHA-256 is in the policy. The verification is the
//! `govgate-certs` library (CRLs missing from the trust directory are fetched over HTTP); this
//! module maps the requests onto it.

use crate::crl_fetch::CrlFetcher;
use base64::Engine as _;
use govgate_certs::{certificates_from_pem, verify_cms, Certificate, Purpose, RevocationPolicy, TrustStore, ValidationOptions};
use govgate_policies::Policy;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub struct CertsApi {
    store: Arc<TrustStore>,
    keys: Vec<[u8; 32]>,
    revocation: RevocationPolicy,
}

/// An answer: status and JSON body.
#[derive(Debug)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

fn error(status: u16, code: &str, message: impl Into<String>) -> ApiResponse {
    ApiResponse { status, body: json!({ "error": code, "message": message.into() }) }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertRequest {
    /// PEM text, or base64 of the DER.
    certificate: String,
    #[serde(default)]
    chain: Vec<String>,
    #[serde(default)]
    purpose: Option<String>,
    /// RFC 3339; default now.
    #[serde(default)]
    at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EsignRequest {
    /// Base64 of the signed document.
    data: String,
    /// The CMS signature: PEM text or base64 of the DER.
    signature: String,
    #[serde(default)]
    at: Option<String>,
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, ApiResponse> {
    base64::engine::general_purpose::STANDARD
        .decode(s.split_whitespace().collect::<String>())
        .map_err(|_| error(400, "invalid_request", format!("{field}: not valid base64")))
}

fn certificates(field: &str, s: &str) -> Result<Vec<Certificate>, ApiResponse> {
    let parsed = if s.contains("-----BEGIN") {
        certificates_from_pem(s.as_bytes())
    } else {
        Certificate::from_der(&b64(field, s)?).map(|c| vec![c])
    };
    parsed.map_err(|e| error(400, "invalid_request", format!("{field}: {e}")))
}

fn time(at: Option<&str>, now: i64) -> Result<i64, ApiResponse> {
    match at {
        None => Ok(now),
        Some(s) => humantime::parse_rfc3339_weak(s)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .ok_or_else(|| error(400, "invalid_request", "at: expected an RFC 3339 time")),
    }
}

impl CertsApi {
    /// The API for `policy`, verifying against `store` (its `[certs] trust`).
    pub fn new(policy: &Policy, store: Arc<TrustStore>) -> Self {
        let keys = policy
            .certs
            .api_keys_sha256
            .iter()
            .filter_map(|h| (0..32).map(|i| u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()).collect::<Option<Vec<u8>>>())
            .filter_map(|v| v.try_into().ok())
            .collect();
        CertsApi { store, keys, revocation: crate::trust::revocation(policy) }
    }

    /// Whether `Authorization: Bearer KEY` or `X-Api-Key: KEY` carries a known key.
    pub fn authorized(&self, headers: &http::HeaderMap) -> bool {
        let key = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
        let Some(key) = key else { return false };
        let digest: [u8; 32] = Sha256::digest(key.trim().as_bytes()).into();
        self.keys.iter().fold(false, |found, k| found | bool::from(k.ct_eq(&digest)))
    }

    /// Answers one request (already authorized): JSON, or `multipart/form-data` with the files
    /// as they are (`content_type` tells). `now` is Unix seconds; CRLs missing from the trust
    /// directory are fetched through `crls`.
    pub async fn handle(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
        now: i64,
        crls: &CrlFetcher,
    ) -> ApiResponse {
        let endpoint = if path.ends_with("/certs/verify") {
            Endpoint::Cert
        } else if path.ends_with("/esign/verify") {
            Endpoint::Esign
        } else {
            return error(404, "not_found", "the endpoints are POST …/certs/verify and POST …/esign/verify");
        };
        if method != "POST" {
            return error(405, "method_not_allowed", "use POST with a JSON or multipart/form-data body");
        }
        let json;
        let body = match content_type.filter(|t| t.trim_start().to_ascii_lowercase().starts_with("multipart/form-data")) {
            None => body,
            Some(t) => match multipart_as_json(&endpoint, t, body).await {
                Ok(v) => {
                    json = v.to_string().into_bytes();
                    &json
                }
                Err(e) => return e,
            },
        };
        match endpoint {
            Endpoint::Cert => self.verify_certificate(body, now, crls).await.unwrap_or_else(|e| e),
            Endpoint::Esign => self.verify_signature(body, now, crls).await.unwrap_or_else(|e| e),
        }
    }

    async fn verify_certificate(&self, body: &[u8], now: i64, crls: &CrlFetcher) -> Result<ApiResponse, ApiResponse> {
        let req: CertRequest = serde_json::from_slice(body).map_err(|e| error(400, "invalid_request", e.to_string()))?;
        let mut certs = certificates("certificate", &req.certificate)?;
        if certs.is_empty() {
            return Err(error(400, "invalid_request", "certificate: no certificate found"));
        }
        let leaf = certs.remove(0);
        for (i, c) in req.chain.iter().enumerate() {
            certs.extend(certificates(&format!("chain[{i}]"), c)?);
        }
        let purpose = match req.purpose.as_deref() {
            None => Purpose::Any,
            Some(p) => Purpose::parse(p)
                .ok_or_else(|| error(400, "invalid_request", "purpose: tls-client, document-signing, time-stamping or any"))?,
        };
        let opts = ValidationOptions::at(time(req.at.as_deref(), now)?).purpose(purpose).revocation(self.revocation);
        let report = crls.validate(now, |src| govgate_certs::validate(&self.store, &leaf, &certs, &opts, Some(src))).await;
        Ok(ApiResponse { status: 200, body: serde_json::to_value(&report).unwrap_or_default() })
    }

    async fn verify_signature(&self, body: &[u8], now: i64, crls: &CrlFetcher) -> Result<ApiResponse, ApiResponse> {
        let req: EsignRequest = serde_json::from_slice(body).map_err(|e| error(400, "invalid_request", e.to_string()))?;
        let data = b64("data", &req.data)?;
        let sig = if req.signature.contains("-----BEGIN") { req.signature.clone().into_bytes() } else { b64("signature", &req.signature)? };
        let opts = ValidationOptions::at(time(req.at.as_deref(), now)?).revocation(self.revocation);
        let reports = crls
            .validate(now, |src| verify_cms(&self.store, &sig, Some(&data), &opts, Some(src)))
            .await
            .map_err(|e| error(400, "invalid_request", format!("signature: {e}")))?;
        let passed = !reports.is_empty() && reports.iter().all(|r| r.passed());
        let indication = reports.iter().find(|r| !r.passed()).map(|r| r.indication).or(reports.first().map(|r| r.indication));
        Ok(ApiResponse { status: 200, body: json!({ "passed": passed, "indication": indication, "signatures": reports }) })
    }
}

enum Endpoint {
    Cert,
    Esign,
}

/// A `multipart/form-data` request as the JSON request it stands for: file parts are taken
/// as they are (PEM stays text, anything else is base64-encoded as the JSON form expects);
/// `chain` may repeat; `purpose` and `at` are text. Unknown or repeated fields are refused.
async fn multipart_as_json(endpoint: &Endpoint, content_type: &str, body: &[u8]) -> Result<Value, ApiResponse> {
    let bad = |m: String| error(400, "invalid_request", m);
    let boundary = multer::parse_boundary(content_type).map_err(|e| bad(format!("Content-Type: {e}")))?;
    let data = bytes::Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut out = serde_json::Map::new();
    let mut chain = Vec::new();
    while let Some(field) = parts.next_field().await.map_err(|e| bad(format!("multipart body: {e}")))? {
        let name = field.name().unwrap_or("").to_string();
        let bytes = field.bytes().await.map_err(|e| bad(format!("{name}: {e}")))?;
        let file = || match std::str::from_utf8(&bytes) {
            Ok(text) if text.contains("-----BEGIN") => text.to_string(),
            _ => base64::engine::general_purpose::STANDARD.encode(&bytes),
        };
        let text = || String::from_utf8(bytes.to_vec()).map_err(|_| bad(format!("{name}: expected text")));
        let value = match (endpoint, name.as_str()) {
            (Endpoint::Cert, "chain") => {
                chain.push(Value::String(file()));
                continue;
            }
            (Endpoint::Cert, "certificate") | (Endpoint::Esign, "signature") => file(),
            (Endpoint::Esign, "data") => base64::engine::general_purpose::STANDARD.encode(&bytes),
            (Endpoint::Cert, "purpose") | (_, "at") => text()?.trim().to_string(),
            _ => return Err(bad(format!("unknown field {name:?}"))),
        };
        if out.insert(name.clone(), Value::String(value)).is_some() {
            return Err(bad(format!("field {name:?} given twice")));
        }
    }
    if !chain.is_empty() {
        out.insert("chain".into(), Value::Array(chain));
    }
    Ok(Value::Object(out))
}
