//! Who may use the admin API and the security console. [`Sessions::authorize`] is the one
//! place that decides, for both ways in ([`Caller`]):
//!
//! * **single sign-on** (the console app, `builtin = "console"`, behind the proxy): the gateway's
//!   SSO session names the staff member and their roles; the console trusts that identity, which
//!   the proxy hands over, and never a client header. Its CSRF token is an HMAC (key made at
//!   start) of the SSO session cookie, so it is bound to that session and nothing is stored.
//! * **the admin listener's password** (`[admin] password_argon2`, argon2id; the break-glass
//!   login): it grants the role `security`. A login makes a random session token (256 bits),
//!   kept only as its SHA-256, sent back as an `HttpOnly; SameSite=Strict` cookie and in the
//!   body (for scripts: `Authorization: Bearer`). Failed logins are counted per client address:
//!   five within 15 minutes lock that address out for 15 minutes.
//!
//! Either way, a cookie-authenticated call that changes something must carry the session's
//! CSRF token in `X-CSRF-Token`, and the staff member must hold the role `security`.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "govgate_console";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The role the console and the admin API require.
pub use govgate_policies::sso::ROLE_SECURITY;

const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_SESSIONS: usize = 10_000;

/// Someone the gateway let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub name: String,
    pub roles: Vec<String>,
}

impl Staff {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// How the listener that received a request knows who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin listener: a password session in the request (cookie or bearer token), if any.
    AdminListener,
    /// The console app behind the proxy: single sign-on found this person; `session` is their
    /// SSO session cookie (what the CSRF token is bound to).
    SignedIn { staff: Staff, session: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("log in first (POST /api/login), or send Authorization: Bearer TOKEN")]
    Missing,
    #[error("the session has expired or was ended: log in again")]
    Expired,
    #[error("missing or wrong X-CSRF-Token for a cookie-authenticated change")]
    Csrf,
    #[error("the role `{0}` is required")]
    Role(&'static str),
}

impl AuthError {
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Expired => 401,
            AuthError::Csrf | AuthError::Role(_) => 403,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("no console password is set: put an argon2id hash in [admin] password_argon2 (govgate admin-password)")]
    NotConfigured,
    #[error("wrong password")]
    Wrong,
    #[error("too many failed logins from this address: try again in {0} s")]
    Locked(u64),
}

/// A new session: give `token` to the client once; it is not kept.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub csrf: String,
    pub ttl: Duration,
}

struct Session {
    staff: Staff,
    csrf: String,
    expires: Instant,
}

pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    /// Makes the CSRF tokens of single sign-on sessions (random at start; tokens are fetched
    /// again by the page after a restart).
    csrf_key: ring::hmac::Key,
}

impl Default for Sessions {
    fn default() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        Sessions { by_hash: Mutex::default(), failures: Mutex::default(), csrf_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k) }
    }
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The argon2id hash (PHC string) of a password, for `[admin] password_argon2`.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Whether `password` matches the PHC hash (false for an unreadable hash).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// The value of one cookie in the `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Sessions {
    /// Seconds this address must wait before trying again, if it is locked out.
    pub fn locked_for(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let f = self.failures.lock().ok()?;
        let &(n, last) = f.get(&ip)?;
        let until = last + FAILURE_WINDOW;
        (n >= MAX_FAILURES && until > now).then(|| (until - now).as_secs().max(1))
    }

    /// Records a failed login; returns whether the address is now locked out.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        let Ok(mut f) = self.failures.lock() else { return false };
        if f.len() > MAX_SESSIONS {
            f.retain(|_, (_, last)| now.duration_since(*last) < FAILURE_WINDOW);
        }
        let e = f.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= FAILURE_WINDOW {
            *e = (0, now);
        }
        e.0 += 1;
        e.1 = now;
        e.0 >= MAX_FAILURES
    }

    /// Starts a session for `staff`.
    pub fn start(&self, staff: Staff, ttl: Duration, now: Instant) -> NewSession {
        let (token, csrf) = (random_token(), random_token());
        if let Ok(mut s) = self.by_hash.lock() {
            s.retain(|_, v| v.expires > now);
            if s.len() >= MAX_SESSIONS {
                if let Some(oldest) = s.iter().min_by_key(|(_, v)| v.expires).map(|(k, _)| *k) {
                    s.remove(&oldest);
                }
            }
            s.insert(token_hash(&token), Session { staff, csrf: csrf.clone(), expires: now + ttl });
        }
        NewSession { token, csrf, ttl }
    }

    /// Checks a password login; on success starts a session with the role `security`.
    /// `verify` is the (slow) password check, run by the caller off the async threads.
    pub fn login_result(&self, ip: IpAddr, ok: Result<bool, LoginError>, ttl: Duration, now: Instant) -> Result<NewSession, LoginError> {
        if let Some(wait) = self.locked_for(ip, now) {
            return Err(LoginError::Locked(wait));
        }
        match ok? {
            true => {
                if let Ok(mut f) = self.failures.lock() {
                    f.remove(&ip);
                }
                Ok(self.start(Staff { name: "admin".into(), roles: vec![ROLE_SECURITY.into()] }, ttl, now))
            }
            false => {
                self.failed(ip, now);
                Err(LoginError::Wrong)
            }
        }
    }

    /// Ends the session of this request, if any.
    pub fn end(&self, headers: &HeaderMap) {
        if let Some(token) = bearer(headers).or_else(|| cookie(headers, COOKIE)) {
            if let Ok(mut s) = self.by_hash.lock() {
                s.remove(&token_hash(token));
            }
        }
    }

    /// The CSRF token of a single sign-on session.
    fn sso_csrf(&self, session: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(ring::hmac::sign(&self.csrf_key, session.as_bytes()).as_ref())
    }

    /// The CSRF token of this request's session.
    pub fn csrf(&self, caller: &Caller, headers: &HeaderMap, now: Instant) -> Option<String> {
        if let Caller::SignedIn { session, .. } = caller {
            return session.as_deref().map(|s| self.sso_csrf(s));
        }
        let token = cookie(headers, COOKIE).or_else(|| bearer(headers))?;
        let s = self.by_hash.lock().ok()?;
        s.get(&token_hash(token)).filter(|s| s.expires > now).map(|s| s.csrf.clone())
    }

    /// Decides whether a request may go on: someone known (signed in through single sign-on, or
    /// a live password session: bearer token or cookie) who holds `role`, and for a
    /// cookie-authenticated change the session's CSRF token. The single decision point.
    pub fn authorize(
        &self,
        caller: &Caller,
        headers: &HeaderMap,
        changes_state: bool,
        role: &'static str,
        now: Instant,
    ) -> Result<Staff, AuthError> {
        let (staff, csrf) = match caller {
            // The SSO session is a cookie: every change needs the token bound to it.
            Caller::SignedIn { staff, session } => (staff.clone(), Some(session.as_deref().map(|s| self.sso_csrf(s)).unwrap_or_default())),
            Caller::AdminListener => {
                let (token, by_cookie) = match (bearer(headers), cookie(headers, COOKIE)) {
                    (Some(t), _) => (t, false),
                    (None, Some(t)) => (t, true),
                    (None, None) => return Err(AuthError::Missing),
                };
                let s = self.by_hash.lock().map_err(|_| AuthError::Expired)?;
                let session = s.get(&token_hash(token)).filter(|s| s.expires > now).ok_or(AuthError::Expired)?;
                (session.staff.clone(), by_cookie.then(|| session.csrf.clone()))
            }
        };
        if let (Some(expected), true) = (csrf, changes_state) {
            let sent = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
            if expected.is_empty() || !bool::from(sent.ct_eq(expected.as_bytes())) {
                return Err(AuthError::Csrf);
            }
        }
        if !staff.has_role(role) {
            return Err(AuthError::Role(role));
        }
        Ok(staff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn passwords_are_hashed_with_argon2id_and_verified() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("correct horse"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct hors"));
        assert!(!verify_password("not a hash", "x"));
    }

    #[test]
    fn sessions_need_a_token_csrf_for_cookie_changes_and_the_role() {
        let s = Sessions::default();
        let now = Instant::now();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(s.authorize(&Caller::AdminListener, &HeaderMap::new(), false, ROLE_SECURITY, now), Err(AuthError::Missing));
        let new = s.login_result(ip, Ok(true), Duration::from_secs(60), now).unwrap();
        let cookie = format!("other=1; {COOKIE}={}", new.token);
        assert!(s.authorize(&Caller::AdminListener, &headers(&[("cookie", &cookie)]), false, ROLE_SECURITY, now).is_ok());
        assert_eq!(s.authorize(&Caller::AdminListener, &headers(&[("cookie", &cookie)]), true, ROLE_SECURITY, now), Err(AuthError::Csrf));
        assert_eq!(
            s.authorize(&Caller::AdminListener, &headers(&[("cookie", &cookie), (CSRF_HEADER, "wrong")]), true, ROLE_SECURITY, now),
            Err(AuthError::Csrf)
        );
        assert!(s
            .authorize(&Caller::AdminListener, &headers(&[("cookie", &cookie), (CSRF_HEADER, &new.csrf)]), true, ROLE_SECURITY, now)
            .is_ok());
        let bearer = format!("Bearer {}", new.token);
        assert!(s.authorize(&Caller::AdminListener, &headers(&[("authorization", &bearer)]), true, ROLE_SECURITY, now).is_ok());
        assert_eq!(
            s.authorize(&Caller::AdminListener, &headers(&[("authorization", &bearer)]), false, "auditor", now),
            Err(AuthError::Role("auditor"))
        );
        assert_eq!(
            s.authorize(&Caller::AdminListener, &headers(&[("authorization", "Bearer forged")]), false, ROLE_SECURITY, now),
            Err(AuthError::Expired)
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(
            s.authorize(&Caller::AdminListener, &headers(&[("authorization", &bearer)]), false, ROLE_SECURITY, later),
            Err(AuthError::Expired)
        );
        s.end(&headers(&[("cookie", &cookie)]));
        assert_eq!(
            s.authorize(&Caller::AdminListener, &headers(&[("authorization", &bearer)]), false, ROLE_SECURITY, now),
            Err(AuthError::Expired)
        );
    }

    #[test]
    fn signed_in_staff_need_the_role_and_a_csrf_token_bound_to_their_session() {
        let s = Sessions::default();
        let now = Instant::now();
        let staff = |roles: &[&str]| Staff { name: "li".into(), roles: roles.iter().map(|r| r.to_string()).collect() };
        let caller = |roles: &[&str], session: &str| Caller::SignedIn { staff: staff(roles), session: Some(session.into()) };
        let security = caller(&[ROLE_SECURITY, "staff"], "session-a");
        assert_eq!(s.authorize(&security, &HeaderMap::new(), false, ROLE_SECURITY, now), Ok(staff(&[ROLE_SECURITY, "staff"])));
        let csrf = s.csrf(&security, &HeaderMap::new(), now).unwrap();
        assert!(csrf.len() >= 43, "{csrf}");
        assert!(!csrf.contains("session-a"));
        assert_eq!(s.authorize(&security, &HeaderMap::new(), true, ROLE_SECURITY, now), Err(AuthError::Csrf));
        assert!(s.authorize(&security, &headers(&[(CSRF_HEADER, &csrf)]), true, ROLE_SECURITY, now).is_ok());
        // Another session's token does not fit, nor does another gateway start's.
        let other = caller(&[ROLE_SECURITY], "session-b");
        assert_eq!(s.authorize(&other, &headers(&[(CSRF_HEADER, &csrf)]), true, ROLE_SECURITY, now), Err(AuthError::Csrf));
        assert_eq!(
            Sessions::default().authorize(&security, &headers(&[(CSRF_HEADER, &csrf)]), true, ROLE_SECURITY, now),
            Err(AuthError::Csrf)
        );
        let no_session = Caller::SignedIn { staff: staff(&[ROLE_SECURITY]), session: None };
        assert_eq!(s.authorize(&no_session, &headers(&[(CSRF_HEADER, "")]), true, ROLE_SECURITY, now), Err(AuthError::Csrf));
        // A bearer header does not excuse a signed-in caller from the token.
        assert_eq!(s.authorize(&security, &headers(&[("authorization", "Bearer x")]), true, ROLE_SECURITY, now), Err(AuthError::Csrf));
        // Without the role: refused, even with everything else right.
        let citizen = caller(&["staff"], "session-c");
        let csrf = s.csrf(&citizen, &HeaderMap::new(), now).unwrap();
        assert_eq!(s.authorize(&citizen, &HeaderMap::new(), false, ROLE_SECURITY, now), Err(AuthError::Role(ROLE_SECURITY)));
        assert_eq!(s.authorize(&citizen, &headers(&[(CSRF_HEADER, &csrf)]), true, ROLE_SECURITY, now), Err(AuthError::Role(ROLE_SECURITY)));
        // A password session's cookie means nothing on the SSO side, and the reverse.
        let new = s.login_result("127.0.0.1".parse().unwrap(), Ok(true), Duration::from_secs(60), now).unwrap();
        let cookie = format!("{COOKIE}={}", new.token);
        assert_eq!(
            s.authorize(&Caller::AdminListener, &headers(&[("cookie", "__Host-govgate-session=session-a")]), false, ROLE_SECURITY, now),
            Err(AuthError::Missing)
        );
        assert!(s.authorize(&Caller::AdminListener, &headers(&[("cookie", &cookie)]), false, ROLE_SECURITY, now).is_ok());
    }

    #[test]
    fn repeated_failures_lock_the_address_out() {
        let s = Sessions::default();
        let now = Instant::now();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(s.login_result(ip, Ok(false), Duration::from_secs(60), now).unwrap_err(), LoginError::Wrong);
        }
        assert!(matches!(s.login_result(ip, Ok(true), Duration::from_secs(60), now), Err(LoginError::Locked(_))));
        let other: IpAddr = "203.0.113.8".parse().unwrap();
        assert!(s.login_result(other, Ok(true), Duration::from_secs(60), now).is_ok());
        let later = now + FAILURE_WINDOW + Duration::from_secs(1);
        assert!(s.login_result(ip, Ok(true), Duration::from_secs(60), later).is_ok());
    }
}
