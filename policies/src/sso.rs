//! Single sign-on at the gateway: the `[sso]` section and each app's `access` requirement
//! (who may reach it), with the cross-field checks that belong to them.

use crate::model::{App, Builtin, Policy};
use crate::validate::{Key, Problem};
use crate::values::{Dur, PathPrefix};
use serde::Deserialize;
use std::collections::HashSet;

/// How the gateway logs citizens in for apps that cannot speak OpenID Connect.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sso {
    /// The OpenID Connect provider the gateway is a relying party of. Default: `[idp] issuer`
    /// (the built-in provider, reached in-process); any other issuer is reached over HTTPS.
    pub issuer: Option<String>,
    /// A login session ends after this long without a request.
    pub session_idle: Dur,
    /// A login session ends this long after the login, whatever happens.
    pub session_absolute: Dur,
    /// Lifetime of the `X-Govgate-Assertion` JWT given to apps.
    pub assertion_ttl: Dur,
    /// Scopes asked for; the provider keeps only those each app's client is registered for.
    pub scopes: Vec<String>,
}

impl Default for Sso {
    fn default() -> Self {
        Sso {
            issuer: None,
            session_idle: Dur::secs(30 * 60),
            session_absolute: Dur::secs(8 * 3600),
            assertion_ttl: Dur::secs(60),
            scopes: ["openid", "profile", "gov_identity", "roles"].iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl Sso {
    /// The issuer in force: `[sso] issuer`, else the built-in provider's.
    pub fn issuer<'a>(&'a self, policy: &'a Policy) -> Option<&'a str> {
        self.issuer.as_deref().or(policy.idp.issuer.as_deref())
    }
}

/// Who may reach an app or a path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "AccessRepr")]
pub enum Access {
    /// Anyone, no login.
    #[default]
    Public,
    /// Anyone logged in.
    Login,
    /// Logged in and meeting every condition given.
    Require(Requirement),
}

impl Access {
    pub fn is_public(&self) -> bool {
        *self == Access::Public
    }
}

/// Conditions on the login: its strength (`acr`), the account's roles and real-name level.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    /// Weakest acceptable login: `pwd` < `otp` < `cert` (other values must match exactly).
    #[serde(default)]
    pub acr: Option<String>,
    /// Every one of these roles.
    #[serde(default)]
    pub roles: Vec<String>,
    /// At least this real-name level (1-4).
    #[serde(default)]
    pub real_name_level: Option<u8>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AccessRepr {
    Word(String),
    Table(Requirement),
}

impl TryFrom<AccessRepr> for Access {
    type Error = String;
    fn try_from(r: AccessRepr) -> Result<Self, String> {
        match r {
            AccessRepr::Word(w) if w == "public" => Ok(Access::Public),
            AccessRepr::Word(w) if w == "login" => Ok(Access::Login),
            AccessRepr::Word(w) => Err(format!(
                "unknown access {w:?}: write \"public\", \"login\" or {{ acr = \"cert\", roles = [...], real_name_level = 3 }}"
            )),
            AccessRepr::Table(t) => Ok(Access::Require(t)),
        }
    }
}

/// An override of an app's access for one path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathAccess {
    pub path: PathPrefix,
    pub access: Access,
}

/// Checks of `[sso]` and the apps' access settings.
pub fn check(policy: &Policy, out: &mut Vec<Problem>) {
    use Key::{Index as I, Name as N};
    let sso = &policy.sso;
    let any_protected = policy.apps.iter().any(|a| !a.access.is_public() || a.access_paths.iter().any(|p| !p.access.is_public()));
    if let Some(issuer) = &sso.issuer {
        if !issuer.starts_with("https://") && !issuer.starts_with("http://127.0.0.1") {
            out.push(Problem { path: vec![N("sso"), N("issuer")], message: "the issuer must be an https:// URL".into() });
        }
    }
    if any_protected && sso.issuer(policy).is_none() {
        out.push(Problem {
            path: vec![N("sso")],
            message: "apps require a login but no identity provider is set: add [sso] issuer or [idp] issuer".into(),
        });
    }
    if sso.session_idle.0.is_zero() || sso.session_absolute.0 < sso.session_idle.0 {
        out.push(Problem {
            path: vec![N("sso"), N("session_absolute")],
            message: "session_idle must be above zero and session_absolute at least session_idle".into(),
        });
    }
    if !(1..=600).contains(&sso.assertion_ttl.0.as_secs()) {
        out.push(Problem { path: vec![N("sso"), N("assertion_ttl")], message: "assertion_ttl must be between 1s and 10min".into() });
    }
    if !sso.scopes.iter().any(|s| s == "openid") {
        out.push(Problem { path: vec![N("sso"), N("scopes")], message: "scopes must include \"openid\"".into() });
    }
    for (i, app) in policy.apps.iter().enumerate() {
        let at = |k: &'static str| vec![N("apps"), I(i), N(k)];
        let protected = !app.access.is_public() || app.access_paths.iter().any(|p| !p.access.is_public());
        if app.builtin == Some(Builtin::Console) {
            check_console(app, i, out);
        } else if protected && app.builtin == Some(Builtin::Idp) {
            // The certificate API may sit behind the login (its callers then use tokens or
            // sessions as well as API keys); the provider cannot: the login runs through it.
            out.push(Problem { path: at("access"), message: "the identity provider cannot be put behind the gateway's login".into() });
        }
        check_access(&app.access, at("access"), out);
        let mut seen = HashSet::new();
        for (j, p) in app.access_paths.iter().enumerate() {
            let path = vec![N("apps"), I(i), N("access_paths"), I(j)];
            if !seen.insert(p.path.as_str().trim_end_matches('/')) {
                out.push(Problem {
                    path: [path.clone(), vec![N("path")]].concat(),
                    message: format!("{} is listed twice", p.path.as_str()),
                });
            }
            check_access(&p.access, [path, vec![N("access")]].concat(), out);
        }
        for (j, c) in app.claims.iter().enumerate() {
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                out.push(Problem {
                    path: vec![N("apps"), I(i), N("claims"), I(j)],
                    message: format!("claim {c:?} must be a name of a-z, 0-9 and '_' (e.g. \"name\")"),
                });
            }
        }
        if let Some(c) = &app.sso_client {
            if c.is_empty() || c.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                out.push(Problem { path: at("sso_client"), message: "sso_client must be a client id without spaces".into() });
            }
        }
    }
}

/// The role the security console requires (`builtin = "console"`).
pub const ROLE_SECURITY: &str = "security";

/// The console app is reached only through single sign-on by staff with the role `security`:
/// its `access` says so (the policy reads as it works), and nothing opens a path of it wider.
fn check_console(app: &App, i: usize, out: &mut Vec<Problem>) {
    use Key::{Index as I, Name as N};
    let requires_security = matches!(&app.access, Access::Require(r) if r.roles.iter().any(|r| r == ROLE_SECURITY));
    if !requires_security {
        out.push(Problem {
            path: vec![N("apps"), I(i), N("access")],
            message: format!("the console needs staff with the role `{ROLE_SECURITY}`: write access = {{ roles = [\"{ROLE_SECURITY}\"] }}"),
        });
    }
    if !app.access_paths.is_empty() || !app.api_paths.is_empty() {
        let key = if app.access_paths.is_empty() { "api_paths" } else { "access_paths" };
        out.push(Problem {
            path: vec![N("apps"), I(i), N(key)],
            message:
                "the console takes no access_paths or api_paths: every path needs the console's login (scripts use the admin listener)"
                    .into(),
        });
    }
}

fn check_access(access: &Access, at: Vec<Key>, out: &mut Vec<Problem>) {
    let Access::Require(r) = access else { return };
    if r.real_name_level.is_some_and(|l| !(1..=4).contains(&l)) {
        out.push(Problem { path: [at.clone(), vec![Key::Name("real_name_level")]].concat(), message: "real_name_level is 1 to 4".into() });
    }
    if r.acr.as_deref().is_some_and(|a| a.is_empty() || a.contains(' ')) {
        out.push(Problem { path: [at.clone(), vec![Key::Name("acr")]].concat(), message: "acr is one value such as \"cert\"".into() });
    }
    if r.roles.iter().any(|x| x.is_empty()) {
        out.push(Problem { path: [at, vec![Key::Name("roles")]].concat(), message: "a role name cannot be empty".into() });
    }
}

#[cfg(test)]
mod tests {
    use crate::{parse, LoadError};
    use std::path::Path;

    const BASE: &str = r#"
[[listeners]]
name = "https"
address = "127.0.0.1:8443"
tls = true

[sso]
issuer = "https://id.example.gov.cn"

[[apps]]
name = "shebao"
hosts = ["shebao.gov.cn"]
upstreams = ["127.0.0.1:9001"]
"#;

    fn errors(text: &str) -> Vec<String> {
        match parse(text, Path::new("policies/gateway.toml")) {
            Err(LoadError::Invalid(e)) => e.iter().map(|e| e.to_string()).collect(),
            Ok(_) => Vec::new(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn access_forms_parse() {
        let text = format!(
            "{BASE}access = \"login\"\nclaims = [\"name\"]\napi_paths = [\"/api\"]\naccess_paths = [{{ path = \"/\", access = \"public\" }}, {{ path = \"/staff\", access = {{ acr = \"cert\", roles = [\"staff\"], real_name_level = 3 }} }}]\n"
        );
        let p = parse(&text, Path::new("policies/gateway.toml")).unwrap();
        let app = &p.apps[0];
        assert_eq!(app.access, super::Access::Login);
        assert_eq!(app.access_paths[0].access, super::Access::Public);
        let super::Access::Require(r) = &app.access_paths[1].access else { panic!("a requirement") };
        assert_eq!((r.acr.as_deref(), r.roles.as_slice(), r.real_name_level), (Some("cert"), &["staff".to_string()][..], Some(3)));
        assert_eq!(p.sso.session_idle.0.as_secs(), 1800);
    }

    #[test]
    fn apps_without_access_stay_public() {
        let p = parse(BASE, Path::new("policies/gateway.toml")).unwrap();
        assert!(p.apps[0].access.is_public());
    }

    #[test]
    fn bad_access_is_reported_at_its_line() {
        let e = errors(&format!("{BASE}access = \"everyone\"\n"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("gateway.toml:14") && e[0].contains("unknown access"), "{e:?}");
        let e = errors(&format!("{BASE}access = {{ real_name_level = 7 }}\n"));
        assert!(e.len() == 1 && e[0].contains(":14:") && e[0].contains("real_name_level is 1 to 4"), "{e:?}");
        let e = errors(&format!("{BASE}claims = [\"Name; x\"]\n"));
        assert!(e.len() == 1 && e[0].contains(":14:"), "{e:?}");
    }

    #[test]
    fn the_console_requires_the_security_role() {
        let console = |access: &str| {
            let text = BASE.to_string()
                + &format!("\n[[apps]]\nname = \"console\"\nhosts = [\"console.gov.cn\"]\nbuiltin = \"console\"\n{access}\n");
            errors(&text)
        };
        assert_eq!(console("access = { roles = [\"security\"], acr = \"otp\" }"), Vec::<String>::new());
        for bad in ["", "access = \"login\"", "access = { roles = [\"staff\"] }"] {
            let e = console(bad);
            assert!(e.len() == 1 && e[0].contains("role `security`"), "{bad}: {e:?}");
        }
        let e = console("access = { roles = [\"security\"] }\naccess_paths = [{ path = \"/api\", access = \"public\" }]");
        assert!(e.len() == 1 && e[0].contains("no access_paths"), "{e:?}");
        let e = console("access = { roles = [\"security\"] }\napi_paths = [\"/api\"]");
        assert!(e.len() == 1 && e[0].contains("api_paths"), "{e:?}");
        let e = errors(
            &format!("{BASE}access = {{ roles = [\"security\"] }}\n").replace("upstreams = [\"127.0.0.1:9001\"]", "builtin = \"idp\""),
        );
        assert!(e.iter().any(|e| e.contains("cannot be put behind")), "the provider stays unprotected: {e:?}");
        let e = errors(
            &format!("{BASE}access = \"login\"\napi_paths = [\"/api\"]\n")
                .replace("upstreams = [\"127.0.0.1:9001\"]", "builtin = \"certs_api\""),
        );
        assert!(!e.iter().any(|e| e.contains("cannot be put behind")), "the certificate API may ask for a login: {e:?}");
    }

    #[test]
    fn login_needs_an_issuer() {
        let text = BASE.replace("[sso]\nissuer = \"https://id.example.gov.cn\"\n", "") + "access = \"login\"\n";
        let e = errors(&text);
        assert!(e.len() == 1 && e[0].contains("no identity provider"), "{e:?}");
    }
}
