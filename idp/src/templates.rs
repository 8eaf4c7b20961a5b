//! Server-rendered HTML pages (minijinja, templates embedded from `idp/templates/`, HTML
//! auto-escaping on). Pages work without JavaScript (form_post has a submit button), label every
//! field, announce errors with `role="alert"` and link errors to fields with `aria-describedby`.

use minijinja::{Environment, Value};

use crate::error::IdpError;
use crate::i18n::{strings, Locale};

/// The compiled template set.
pub struct Templates {
    env: Environment<'static>,
}

const FILES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("otp.html", include_str!("../templates/otp.html")),
    ("consent.html", include_str!("../templates/consent.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("form_post.html", include_str!("../templates/form_post.html")),
    ("logout_confirm.html", include_str!("../templates/logout_confirm.html")),
    ("logged_out.html", include_str!("../templates/logged_out.html")),
    ("register.html", include_str!("../templates/register.html")),
];

impl Templates {
    pub fn new() -> Result<Self, IdpError> {
        let mut env = Environment::new();
        for (name, src) in FILES {
            env.add_template(name, src)?;
        }
        Ok(Templates { env })
    }

    /// Render `name` with `ctx` plus `t` (strings), `lang` and `title` (from the `title_key` string).
    pub fn render(&self, name: &str, locale: Locale, title_key: &str, ctx: Value) -> Result<String, IdpError> {
        let t = strings(locale);
        let title = t.get(title_key).copied().unwrap_or("");
        let base = minijinja::context! { t => t, lang => locale.tag(), title => title };
        let merged = minijinja::context! { ..ctx, ..base };
        Ok(self.env.get_template(name)?.render(merged)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_escapes_and_labels() {
        let t = Templates::new().unwrap();
        let html = t
            .render(
                "login.html",
                Locale::En,
                "title_login",
                minijinja::context! { action => "/login", req => "r1", csrf => "c1", username => "<script>x</script>", lang_switch_url => "?lang=zh", error => "bad" },
            )
            .unwrap();
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>x"));
        assert!(html.contains(r#"<label for="username">Username</label>"#));
        assert!(html.contains(r#"name="csrf" value="c1""#));
        assert!(html.contains(r#"role="alert""#));
        assert!(html.contains(r#"<html lang="en">"#));
        let zh = t.render("login.html", Locale::Zh, "title_login", minijinja::context! { action => "/login" }).unwrap();
        assert!(zh.contains("密码"));
    }
}
