//! Typed errors: [`IdpError`] for internal failures and [`OAuthError`] for protocol errors that
//! are answered to clients exactly as RFC 6749 §4.1.2.1 / §5.2 (and OIDC Core §3.1.2.6) define.

use serde::Serialize;

/// Internal error of the provider (storage, keys, configuration).
#[derive(Debug, thiserror::Error)]
pub enum IdpError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("jwt: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("key: {0}")]
    Key(String),
    #[error("config: {0}")]
    Config(String),
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
    #[error("password hash: {0}")]
    Password(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// OAuth 2.0 error codes (RFC 6749 §4.1.2.1, §5.2; OIDC Core §3.1.2.6; RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    InvalidToken,
    UnsupportedTokenType,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidRequestObject,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
        }
    }
}

/// A protocol error with its RFC 6749 code and a human-readable, ASCII-only description.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// Set for `invalid_client` when the client tried HTTP Basic: the 401 carries `WWW-Authenticate`.
    pub basic_auth_attempted: bool,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError { code, description: description.into(), basic_auth_attempted: false }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "internal error")
    }

    /// HTTP status for a token-endpoint error (RFC 6749 §5.2): 401 for `invalid_client`, 500/503
    /// for server problems, 400 otherwise.
    pub fn token_status(&self) -> u16 {
        match self.code {
            ErrorCode::InvalidClient => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }

    /// JSON body `{"error": "...", "error_description": "..."}`.
    pub fn to_json(&self) -> serde_json::Value {
        // error_description is limited to %x20-21 / %x23-5B / %x5D-7E (RFC 6749 §5.2).
        let desc: String = self.description.chars().filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)).collect();
        serde_json::json!({ "error": self.code.as_str(), "error_description": desc })
    }
}

impl From<IdpError> for OAuthError {
    fn from(e: IdpError) -> Self {
        tracing::error!(error = %e, "idp internal error");
        OAuthError::server_error()
    }
}
