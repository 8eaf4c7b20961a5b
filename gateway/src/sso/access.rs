//! The pure access decision: does this login (or none) satisfy what the policy requires for
//! this app and path? No I/O: the caller brings the identity it found.

use govgate_policies::{Access, App};

/// What the gateway knows about the person behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub subject: String,
    /// How strongly they logged in (`pwd`, `otp`, `cert`, or a provider's own value).
    pub acr: String,
    pub roles: Vec<String>,
    pub real_name_level: Option<u8>,
    /// The account's user name (`preferred_username`), when the provider gave it.
    pub username: Option<String>,
}

impl Identity {
    /// How logs and the console name this person: the user name, else the subject.
    pub fn label(&self) -> &str {
        self.username.as_deref().unwrap_or(&self.subject)
    }
}

/// Why a logged-in person is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forbidden {
    MissingRoles(Vec<String>),
    RealNameLevel { required: u8, have: Option<u8> },
}

impl Forbidden {
    /// A sentence for the 403 page (English, Chinese).
    pub fn explain(&self) -> (String, String) {
        match self {
            Forbidden::MissingRoles(r) => (
                format!("This page needs the role(s) {}, which your account does not have.", r.join(", ")),
                format!("此页面需要角色 {}，您的账号没有该角色。", r.join("、")),
            ),
            Forbidden::RealNameLevel { required, have } => {
                let have = have.map(|h| h.to_string()).unwrap_or_else(|| "-".into());
                (
                    format!("This page needs real-name verification level {required}; your account has level {have}."),
                    format!("此页面需要实名认证等级 {required}，您的账号等级为 {have}。"),
                )
            }
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Forbidden::MissingRoles(_) => "missing_role",
            Forbidden::RealNameLevel { .. } => "real_name_level",
        }
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward (with identity headers when someone is logged in).
    Allow,
    /// Nobody is logged in: send the browser to the provider (or 401 on an API path).
    Login,
    /// Logged in, but too weakly: log in again asking for this `acr`.
    StepUp(String),
    /// Logged in, strongly enough, but not allowed.
    Forbidden(Forbidden),
}

/// The requirement for `path`: the longest matching `access_paths` prefix, else the app's.
pub fn requirement<'a>(app: &'a App, path: &str) -> &'a Access {
    app.access_paths
        .iter()
        .filter(|p| p.path.matches(path))
        .max_by_key(|p| p.path.as_str().trim_end_matches('/').len())
        .map(|p| &p.access)
        .unwrap_or(&app.access)
}

/// Whether `path` takes bearer tokens rather than the login cookie.
pub fn is_api(app: &App, path: &str) -> bool {
    app.api_paths.iter().any(|p| p.matches(path))
}

/// Rank of the acr values the built-in provider issues (`pwd` < `otp` < `cert`); unknown values
/// rank 0. The provider's own ordering, so that both sides agree on what a step-up is.
pub use govgate_idp::flows::authorize::acr_rank;

fn acr_satisfies(have: &str, want: &str) -> bool {
    match (acr_rank(have), acr_rank(want)) {
        (_, 0) | (0, _) => have == want,
        (h, w) => h >= w,
    }
}

/// The decision for a requirement and the identity found (if any).
pub fn decide(access: &Access, who: Option<&Identity>) -> Decision {
    let req = match access {
        Access::Public => return Decision::Allow,
        Access::Login => return if who.is_some() { Decision::Allow } else { Decision::Login },
        Access::Require(r) => r,
    };
    let Some(who) = who else { return Decision::Login };
    if let Some(acr) = &req.acr {
        if !acr_satisfies(&who.acr, acr) {
            return Decision::StepUp(acr.clone());
        }
    }
    let missing: Vec<String> = req.roles.iter().filter(|r| !who.roles.contains(r)).cloned().collect();
    if !missing.is_empty() {
        return Decision::Forbidden(Forbidden::MissingRoles(missing));
    }
    if let Some(level) = req.real_name_level {
        if who.real_name_level.is_none_or(|l| l < level) {
            return Decision::Forbidden(Forbidden::RealNameLevel { required: level, have: who.real_name_level });
        }
    }
    Decision::Allow
}

#[cfg(test)]
mod tests {
    use super::*;
    use govgate_policies::Requirement;

    fn who(acr: &str, roles: &[&str], level: Option<u8>) -> Identity {
        Identity {
            subject: "u1".into(),
            acr: acr.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            real_name_level: level,
            username: None,
        }
    }

    fn app(toml_tail: &str) -> App {
        let text = format!(
            "[[listeners]]\nname = \"h\"\naddress = \"127.0.0.1:1\"\n[sso]\nissuer = \"https://id.test\"\n[[apps]]\nname = \"a\"\nhosts = [\"a.test\"]\nupstreams = [\"127.0.0.1:2\"]\n{toml_tail}"
        );
        govgate_policies::parse(&text, std::path::Path::new("t.toml")).unwrap().apps.remove(0)
    }

    #[test]
    fn public_and_login() {
        assert_eq!(decide(&Access::Public, None), Decision::Allow);
        assert_eq!(decide(&Access::Login, None), Decision::Login);
        assert_eq!(decide(&Access::Login, Some(&who("pwd", &[], None))), Decision::Allow);
    }

    #[test]
    fn weaker_login_steps_up_before_roles_are_judged() {
        let r = Access::Require(Requirement { acr: Some("cert".into()), roles: vec!["staff".into()], real_name_level: None });
        assert_eq!(decide(&r, None), Decision::Login);
        assert_eq!(decide(&r, Some(&who("pwd", &[], None))), Decision::StepUp("cert".into()));
        assert_eq!(decide(&r, Some(&who("otp", &["staff"], None))), Decision::StepUp("cert".into()));
        assert_eq!(decide(&r, Some(&who("cert", &[], None))), Decision::Forbidden(Forbidden::MissingRoles(vec!["staff".into()])));
        assert_eq!(decide(&r, Some(&who("cert", &["staff", "x"], None))), Decision::Allow);
        let otp = Access::Require(Requirement { acr: Some("otp".into()), ..Default::default() });
        assert_eq!(decide(&otp, Some(&who("cert", &[], None))), Decision::Allow, "a stronger login satisfies a weaker requirement");
        let custom = Access::Require(Requirement { acr: Some("urn:x:loa:high".into()), ..Default::default() });
        assert_eq!(decide(&custom, Some(&who("cert", &[], None))), Decision::StepUp("urn:x:loa:high".into()));
        assert_eq!(decide(&custom, Some(&who("urn:x:loa:high", &[], None))), Decision::Allow);
    }

    #[test]
    fn real_name_level_is_a_floor() {
        let r = Access::Require(Requirement { real_name_level: Some(3), ..Default::default() });
        assert_eq!(decide(&r, Some(&who("pwd", &[], Some(3)))), Decision::Allow);
        let refused = decide(&r, Some(&who("pwd", &[], Some(2))));
        assert_eq!(refused, Decision::Forbidden(Forbidden::RealNameLevel { required: 3, have: Some(2) }));
        assert!(matches!(decide(&r, Some(&who("pwd", &[], None))), Decision::Forbidden(_)));
        let Decision::Forbidden(f) = refused else { unreachable!() };
        assert!(f.explain().0.contains("level 3"));
    }

    #[test]
    fn longest_path_override_wins() {
        let a = app(
            "access = \"public\"\naccess_paths = [{ path = \"/apply\", access = \"login\" }, { path = \"/apply/staff\", access = { roles = [\"staff\"] } }]\napi_paths = [\"/api\"]\n",
        );
        assert_eq!(requirement(&a, "/"), &Access::Public);
        assert_eq!(requirement(&a, "/applyx"), &Access::Public, "prefixes match whole segments");
        assert_eq!(requirement(&a, "/apply"), &Access::Login);
        assert_eq!(requirement(&a, "/apply/form"), &Access::Login);
        assert!(matches!(requirement(&a, "/apply/staff/list"), Access::Require(_)));
        assert!(is_api(&a, "/api/v1/x") && !is_api(&a, "/apix"));
    }
}
