//! Library functions behind the future CLI (`govgate user add|list|lock|unlock|set-password`,
//! `govgate client add|list`). Every change is audited with the acting staff member.

use std::path::Path;

use crate::audit::{self, AuditEvent};
use crate::clients::{self, Client, ClientRegistry};
use crate::error::IdpError;
use crate::password::{hash_password, Argon2Params};
use crate::store::Store;
use crate::throttle;
use crate::users::{self, CreateUserError, NewUser, User};

/// `govgate user add`.
pub async fn add_user(store: &Store, actor: &str, u: &NewUser, argon: Argon2Params) -> Result<String, CreateUserError> {
    let id = users::create_user(store, u, argon).await?;
    audit::record(
        store,
        AuditEvent { event: "admin_user_add", outcome: "success", actor: Some(actor), subject: Some(&id), ..Default::default() },
    )
    .await;
    Ok(id)
}

/// `govgate user list` (identity numbers and mobiles must be masked by the caller for display:
/// see [`crate::ids::mask_id`]).
pub async fn list_users(store: &Store) -> Result<Vec<User>, IdpError> {
    users::list_users(store).await
}

async fn user_by_name(store: &Store, username: &str) -> Result<User, IdpError> {
    users::find_by_username(store, username).await?.ok_or_else(|| IdpError::NotFound(format!("user {username}")))
}

/// `govgate user lock`.
pub async fn lock_user(store: &Store, actor: &str, username: &str) -> Result<(), IdpError> {
    let u = user_by_name(store, username).await?;
    users::set_locked(store, &u.id, true).await?;
    audit::record_strict(
        store,
        AuditEvent { event: "admin_user_lock", outcome: "success", actor: Some(actor), subject: Some(&u.id), ..Default::default() },
    )
    .await
}

/// `govgate user unlock`: clears the lock and the brute-force counter of the account.
pub async fn unlock_user(store: &Store, actor: &str, username: &str) -> Result<(), IdpError> {
    let u = user_by_name(store, username).await?;
    users::set_locked(store, &u.id, false).await?;
    throttle::clear(store, &format!("user:{}", u.username.to_lowercase())).await?;
    audit::record_strict(
        store,
        AuditEvent { event: "admin_user_unlock", outcome: "success", actor: Some(actor), subject: Some(&u.id), ..Default::default() },
    )
    .await
}

/// `govgate user set-password` (policy-checked, argon2id).
pub async fn set_password(store: &Store, actor: &str, username: &str, password: &str, argon: Argon2Params) -> Result<(), IdpError> {
    crate::password::check_policy(password).map_err(|e| IdpError::Invalid(e.into()))?;
    let u = user_by_name(store, username).await?;
    users::set_password_hash(store, &u.id, &hash_password(password, argon)?).await?;
    audit::record_strict(
        store,
        AuditEvent { event: "admin_set_password", outcome: "success", actor: Some(actor), subject: Some(&u.id), ..Default::default() },
    )
    .await
}

/// Enrol TOTP for a user; returns the base32 secret (show once, e.g. as `otpauth://` QR).
pub async fn enrol_totp(store: &Store, actor: &str, username: &str) -> Result<String, IdpError> {
    let u = user_by_name(store, username).await?;
    let secret = crate::totp::generate_secret();
    users::set_totp_secret(store, &u.id, Some(&secret)).await?;
    audit::record_strict(
        store,
        AuditEvent { event: "admin_totp_enrol", outcome: "success", actor: Some(actor), subject: Some(&u.id), ..Default::default() },
    )
    .await?;
    Ok(secret)
}

/// Bind a client certificate (SHA-256 fingerprint of the DER) to a user, for certificate login.
pub async fn bind_certificate(store: &Store, actor: &str, username: &str, fingerprint_sha256: &str) -> Result<(), IdpError> {
    let fp = fingerprint_sha256.trim().to_ascii_lowercase().replace(':', "");
    if fp.len() != 64 || !fp.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(IdpError::Invalid("fingerprint must be 64 hex digits".into()));
    }
    let u = user_by_name(store, username).await?;
    users::set_cert_fingerprint(store, &u.id, Some(&fp)).await?;
    audit::record_strict(
        store,
        AuditEvent { event: "admin_cert_bind", outcome: "success", actor: Some(actor), subject: Some(&u.id), ..Default::default() },
    )
    .await
}

/// `govgate client add`: append to the registry file; for secret-based clients a new secret
/// is generated and returned (shown once; only its hash is written).
pub async fn add_client(store: &Store, actor: &str, file: &Path, mut c: Client) -> Result<Option<String>, IdpError> {
    let secret = match c.auth_method {
        clients::AuthMethod::ClientSecretBasic | clients::AuthMethod::ClientSecretPost => {
            let (s, h) = clients::generate_client_secret();
            c.secret_hash = Some(h);
            Some(s)
        }
        _ => None,
    };
    let id = c.id.clone();
    clients::add_client_to_file(file, c)?;
    audit::record_strict(
        store,
        AuditEvent { event: "admin_client_add", outcome: "success", actor: Some(actor), client_id: Some(&id), ..Default::default() },
    )
    .await?;
    Ok(secret)
}

/// `govgate client list`.
pub fn list_clients(file: &Path) -> Result<Vec<Client>, IdpError> {
    Ok(ClientRegistry::load(file)?.list().into_iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admin_changes_are_audited() {
        let s = Store::memory().await.unwrap();
        let nu = NewUser {
            username: "admin1".into(),
            kind: Some(users::AccountKind::Staff),
            display_name: "管理员".into(),
            password: "Adm1n-pass".into(),
            roles: vec!["admin".into()],
            ..Default::default()
        };
        add_user(&s, "root", &nu, Argon2Params::TEST).await.unwrap();
        lock_user(&s, "root", "admin1").await.unwrap();
        unlock_user(&s, "root", "admin1").await.unwrap();
        set_password(&s, "root", "admin1", "New-pass-123", Argon2Params::TEST).await.unwrap();
        assert!(set_password(&s, "root", "admin1", "weak", Argon2Params::TEST).await.is_err());
        let events: Vec<String> = audit::recent(&s, 10).await.unwrap().into_iter().map(|r| r.event).collect();
        assert_eq!(events, vec!["admin_set_password", "admin_user_unlock", "admin_user_lock", "admin_user_add"]);
        let u = users::find_by_username(&s, "admin1").await.unwrap().unwrap();
        assert!(crate::password::verify_password("New-pass-123", &u.password_hash));
        assert!(!u.locked);
    }
}
