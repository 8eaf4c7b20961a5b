//! Accounts: citizens (resident identity number, mobile, e-mail, real-name level 1–4), legal
//! persons (unified social credit code) and staff (roles). Creation validates every field and
//! reports errors per field (for the registration form).

use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::error::IdpError;
use crate::ids;
use crate::password::{hash_password, Argon2Params};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Citizen,
    LegalPerson,
    Staff,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Citizen => "citizen",
            AccountKind::LegalPerson => "legal_person",
            AccountKind::Staff => "staff",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "citizen" => Some(AccountKind::Citizen),
            "legal_person" => Some(AccountKind::LegalPerson),
            "staff" => Some(AccountKind::Staff),
            _ => None,
        }
    }
}

/// A stored account (password hash included; never serialised to clients).
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub kind: AccountKind,
    pub display_name: String,
    pub id_number: Option<String>,
    pub uscc: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub real_name_level: i64,
    pub roles: Vec<String>,
    /// Postal address, one formatted text (the `address` claim).
    pub address: Option<String>,
    pub password_hash: String,
    pub totp_secret: Option<String>,
    pub locked: bool,
    pub updated_at: i64,
}

/// Input for a new account.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewUser {
    pub username: String,
    pub kind: Option<AccountKind>,
    pub display_name: String,
    pub password: String,
    pub id_number: Option<String>,
    pub uscc: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub real_name_level: Option<i64>,
    pub roles: Vec<String>,
    #[serde(default)]
    pub address: Option<String>,
}

/// Field-level validation errors: (field name, message key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<(&'static str, &'static str)>);

impl FieldErrors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&'static str> {
        self.0.iter().find(|(f, _)| *f == field).map(|(_, m)| *m)
    }
}

fn opt(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|x| x.trim().to_string()).filter(|x| !x.is_empty())
}

/// Validate and normalise a new account; returns per-field errors.
pub fn validate_new_user(u: &NewUser) -> Result<NewUser, FieldErrors> {
    let mut errs = FieldErrors::default();
    let mut out = u.clone();
    out.username = u.username.trim().to_string();
    if out.username.is_empty() || out.username.chars().count() > 64 || out.username.chars().any(|c| c.is_whitespace() || c.is_control()) {
        errs.0.push(("username", "err_username"));
    }
    out.display_name = u.display_name.trim().to_string();
    if out.display_name.is_empty() || out.display_name.chars().count() > 100 || out.display_name.chars().any(char::is_control) {
        errs.0.push(("display_name", "err_display_name"));
    }
    if let Err(e) = crate::password::check_policy(&u.password) {
        errs.0.push(("password", e));
    }
    let kind = u.kind.unwrap_or(AccountKind::Citizen);
    out.kind = Some(kind);
    out.id_number = opt(&u.id_number);
    out.uscc = opt(&u.uscc);
    out.mobile = opt(&u.mobile);
    out.email = opt(&u.email);
    match kind {
        AccountKind::Citizen => match out.id_number.as_deref().map(ids::validate_resident_id) {
            Some(Ok(n)) => out.id_number = Some(n),
            Some(Err(ids::IdNumberError::Checksum)) => errs.0.push(("id_number", "err_id_checksum")),
            Some(Err(_)) => errs.0.push(("id_number", "err_id_format")),
            None => errs.0.push(("id_number", "err_required")),
        },
        AccountKind::LegalPerson => match out.uscc.as_deref().map(ids::validate_uscc) {
            Some(Ok(n)) => out.uscc = Some(n),
            Some(Err(ids::IdNumberError::Checksum)) => errs.0.push(("uscc", "err_uscc_checksum")),
            Some(Err(_)) => errs.0.push(("uscc", "err_uscc_format")),
            None => errs.0.push(("uscc", "err_required")),
        },
        AccountKind::Staff => {}
    }
    if let Some(m) = &out.mobile {
        if !ids::validate_mobile(m) {
            errs.0.push(("mobile", "err_mobile"));
        }
    }
    out.address = opt(&u.address);
    if out.address.as_ref().is_some_and(|a| a.chars().count() > 200 || a.chars().any(|c| c.is_control() && c != '\n')) {
        errs.0.push(("address", "err_address"));
    }
    if let Some(e) = &out.email {
        if !ids::validate_email(e) {
            errs.0.push(("email", "err_email"));
        }
    }
    let level = u.real_name_level.unwrap_or(1);
    if !(1..=4).contains(&level) {
        errs.0.push(("real_name_level", "err_level"));
    }
    out.real_name_level = Some(level);
    if kind != AccountKind::Staff && !u.roles.is_empty() {
        errs.0.push(("roles", "err_roles"));
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// Error of [`create_user`].
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("invalid fields: {0:?}")]
    Fields(FieldErrors),
    #[error("username taken")]
    Taken,
    #[error(transparent)]
    Internal(#[from] IdpError),
}

const USER_COLS: &str = "id, username, kind, display_name, id_number, uscc, mobile, email, real_name_level, roles, password_hash, totp_secret, locked, updated_at, address";

fn row_to_user(r: &sqlx::sqlite::SqliteRow) -> User {
    User {
        id: r.get(0),
        username: r.get(1),
        kind: AccountKind::parse(&r.get::<String, _>(2)).unwrap_or(AccountKind::Citizen),
        display_name: r.get(3),
        id_number: r.get(4),
        uscc: r.get(5),
        mobile: r.get(6),
        email: r.get(7),
        real_name_level: r.get(8),
        roles: serde_json::from_str(&r.get::<String, _>(9)).unwrap_or_default(),
        password_hash: r.get(10),
        totp_secret: r.get(11),
        locked: r.get::<i64, _>(12) != 0,
        updated_at: r.get(13),
        address: r.get(14),
    }
}

/// Validate, hash the password (argon2id) and insert. Returns the new user id.
pub async fn create_user(store: &Store, u: &NewUser, argon: Argon2Params) -> Result<String, CreateUserError> {
    let u = validate_new_user(u).map_err(CreateUserError::Fields)?;
    if find_by_username(store, &u.username).await?.is_some() {
        return Err(CreateUserError::Taken);
    }
    let id = uuid::Uuid::new_v4().to_string();
    let hash = hash_password(&u.password, argon)?;
    let now = crate::now();
    let r = sqlx::query(
        "INSERT INTO users (id, username, kind, display_name, id_number, uscc, mobile, email, real_name_level, roles, password_hash, created_at, updated_at, address) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&id)
    .bind(&u.username)
    .bind(u.kind.unwrap_or(AccountKind::Citizen).as_str())
    .bind(&u.display_name)
    .bind(&u.id_number)
    .bind(&u.uscc)
    .bind(&u.mobile)
    .bind(&u.email)
    .bind(u.real_name_level.unwrap_or(1))
    .bind(serde_json::to_string(&u.roles).map_err(IdpError::from)?)
    .bind(hash)
    .bind(now)
    .bind(now)
    .bind(&u.address)
    .execute(&store.pool)
    .await;
    match r {
        Ok(_) => Ok(id),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(CreateUserError::Taken),
        Err(e) => Err(CreateUserError::Internal(e.into())),
    }
}

pub async fn find_by_username(store: &Store, username: &str) -> Result<Option<User>, IdpError> {
    let q = format!("SELECT {USER_COLS} FROM users WHERE username = $1");
    Ok(sqlx::query(&q).bind(username.trim()).fetch_optional(&store.pool).await?.as_ref().map(row_to_user))
}

pub async fn find_by_id(store: &Store, id: &str) -> Result<Option<User>, IdpError> {
    let q = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
    Ok(sqlx::query(&q).bind(id).fetch_optional(&store.pool).await?.as_ref().map(row_to_user))
}

pub async fn list_users(store: &Store) -> Result<Vec<User>, IdpError> {
    let q = format!("SELECT {USER_COLS} FROM users ORDER BY username");
    Ok(sqlx::query(&q).fetch_all(&store.pool).await?.iter().map(row_to_user).collect())
}

pub async fn set_locked(store: &Store, id: &str, locked: bool) -> Result<bool, IdpError> {
    let r = sqlx::query("UPDATE users SET locked = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(locked))
        .bind(crate::now())
        .bind(id)
        .execute(&store.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_password_hash(store: &Store, id: &str, hash: &str) -> Result<bool, IdpError> {
    let r = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(crate::now())
        .bind(id)
        .execute(&store.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The (unlocked or locked) user bound to a certificate fingerprint.
pub async fn find_by_cert(store: &Store, fingerprint: &str) -> Result<Option<User>, IdpError> {
    let q = format!("SELECT {USER_COLS} FROM users WHERE cert_fingerprint = $1");
    Ok(sqlx::query(&q).bind(fingerprint.to_ascii_lowercase()).fetch_optional(&store.pool).await?.as_ref().map(row_to_user))
}

/// The one account whose resident identity number (citizens) or unified social credit code
/// (legal persons) is `number`; `None` when there is none or more than one.
pub async fn find_by_identity_number(store: &Store, number: &str) -> Result<Option<User>, IdpError> {
    let q = format!("SELECT {USER_COLS} FROM users WHERE (kind = 'citizen' AND id_number = $1) OR (kind = 'legal_person' AND uscc = $2)");
    let n = number.trim().to_ascii_uppercase();
    let rows = sqlx::query(&q).bind(&n).bind(&n).fetch_all(&store.pool).await?;
    Ok(match rows.as_slice() {
        [one] => Some(row_to_user(one)),
        _ => None,
    })
}

pub async fn set_cert_fingerprint(store: &Store, id: &str, fingerprint: Option<&str>) -> Result<bool, IdpError> {
    let r = sqlx::query("UPDATE users SET cert_fingerprint = $1, updated_at = $2 WHERE id = $3")
        .bind(fingerprint.map(|f| f.to_ascii_lowercase()))
        .bind(crate::now())
        .bind(id)
        .execute(&store.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Accept a TOTP time step only if it is later than the last accepted one (replay protection);
/// atomic, so two concurrent uses of one code cannot both succeed.
pub async fn use_totp_step(store: &Store, id: &str, step: i64) -> Result<bool, IdpError> {
    let r = sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $3")
        .bind(step)
        .bind(id)
        .bind(step)
        .execute(&store.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_totp_secret(store: &Store, id: &str, secret: Option<&str>) -> Result<bool, IdpError> {
    let r = sqlx::query("UPDATE users SET totp_secret = $1, updated_at = $2 WHERE id = $3")
        .bind(secret)
        .bind(crate::now())
        .bind(id)
        .execute(&store.pool)
        .await?;
    Ok(r.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn citizen() -> NewUser {
        NewUser {
            username: "zhangsan".into(),
            kind: Some(AccountKind::Citizen),
            display_name: "张三".into(),
            password: "s3cret-pass".into(),
            id_number: Some("11010519491231002x".into()),
            mobile: Some("13812345678".into()),
            email: Some("zs@example.cn".into()),
            real_name_level: Some(2),
            ..Default::default()
        }
    }

    #[test]
    fn validation_per_field() {
        let ok = validate_new_user(&citizen()).unwrap();
        assert_eq!(ok.id_number.as_deref(), Some("11010519491231002X"));
        let mut bad = citizen();
        bad.id_number = Some("110105194912310021".into());
        bad.mobile = Some("123".into());
        bad.password = "short".into();
        let e = validate_new_user(&bad).unwrap_err();
        assert_eq!(e.get("id_number"), Some("err_id_checksum"));
        assert_eq!(e.get("mobile"), Some("err_mobile"));
        assert_eq!(e.get("password"), Some("password_length"));
        let lp = NewUser { kind: Some(AccountKind::LegalPerson), uscc: Some("91350100M000100Y44".into()), id_number: None, ..citizen() };
        assert_eq!(validate_new_user(&lp).unwrap_err().get("uscc"), Some("err_uscc_checksum"));
        let lp = NewUser { kind: Some(AccountKind::LegalPerson), uscc: Some("91350100M000100Y43".into()), id_number: None, ..citizen() };
        assert!(validate_new_user(&lp).is_ok());
        let citizen_with_roles = NewUser { roles: vec!["admin".into()], ..citizen() };
        assert_eq!(validate_new_user(&citizen_with_roles).unwrap_err().get("roles"), Some("err_roles"));
    }

    #[tokio::test]
    async fn create_find_lock() {
        let s = Store::memory().await.unwrap();
        let id = create_user(&s, &citizen(), Argon2Params::TEST).await.unwrap();
        assert!(matches!(create_user(&s, &citizen(), Argon2Params::TEST).await, Err(CreateUserError::Taken)));
        let u = find_by_username(&s, "zhangsan").await.unwrap().unwrap();
        assert_eq!(u.id, id);
        assert!(u.password_hash.starts_with("$argon2id$"));
        assert!(crate::password::verify_password("s3cret-pass", &u.password_hash));
        assert!(set_locked(&s, &id, true).await.unwrap());
        assert!(find_by_id(&s, &id).await.unwrap().unwrap().locked);
        assert_eq!(list_users(&s).await.unwrap().len(), 1);
    }
}
