//! Citizen self-registration: a form with a validation message beside each field (GB 11643
//! check digit, mobile, password policy), CSRF-protected; new accounts get real-name level 1.

use super::{body_params, Params};
use crate::audit::{self, AuditEvent};
use crate::error::IdpError;
use crate::http::{Ctx, IdpRequest, IdpResponse};
use crate::i18n::{negotiate, strings, Locale};
use crate::session::{set_cookie, Csrf, CSRF_COOKIE};
use crate::users::{self, AccountKind, CreateUserError, FieldErrors, NewUser};

const FIELDS: &[(&str, &str, &str, &str)] = &[
    ("username", "username", "text", "username"),
    ("display_name", "display_name", "text", "name"),
    ("id_number", "id_number", "text", "off"),
    ("mobile", "mobile", "tel", "tel"),
    ("email", "email", "email", "email"),
    ("password", "password", "password", "new-password"),
];

fn render(ctx: &Ctx, req: &IdpRequest, locale: Locale, p: &Params, errors: &FieldErrors, status: u16) -> IdpResponse {
    let t = strings(locale);
    let (cookie, new) = Csrf::cookie_or_new(req.cookie(CSRF_COOKIE));
    let fields: Vec<minijinja::Value> = FIELDS
        .iter()
        .map(|(name, label, ty, ac)| {
            let value = if *name == "password" { "" } else { p.get(name).unwrap_or("") };
            minijinja::context! {
                name => name, label => t.get(label).copied().unwrap_or(label), type => ty, autocomplete => ac, value => value,
                error => errors.get(name).and_then(|k| t.get(k).copied()),
            }
        })
        .collect();
    let other = if locale == Locale::Zh { "en" } else { "zh" };
    let req_id = p.get("req").unwrap_or("");
    let mut r = ctx.page(
        status,
        "register.html",
        locale,
        "title_register",
        minijinja::context! {
            action => ctx.path("/register"), csrf => ctx.csrf().token(&cookie), req => req_id, fields => fields, errors => !errors.is_empty(),
            lang_switch_url => format!("{}?req={}&lang={}", ctx.path("/register"), req_id, other),
        },
    );
    if new {
        r.headers.push(("Set-Cookie".into(), set_cookie(CSRF_COOKIE, &cookie, None)));
    }
    r
}

pub async fn register(ctx: &Ctx, req: &IdpRequest) -> Result<IdpResponse, IdpError> {
    let post = req.method.eq_ignore_ascii_case("POST");
    let p = if post { body_params(req) } else { Params::parse(req.query.as_bytes()) };
    let locale = negotiate(p.get("lang"), None, req.header("accept-language"));
    if !post {
        return Ok(render(ctx, req, locale, &p, &FieldErrors::default(), 200));
    }
    if !ctx.csrf().check(req.cookie(CSRF_COOKIE), p.get("csrf")) {
        return Ok(render(ctx, req, locale, &p, &FieldErrors(vec![("username", "csrf_failed")]), 400));
    }
    let nu = NewUser {
        username: p.get("username").unwrap_or("").into(),
        kind: Some(AccountKind::Citizen),
        display_name: p.get("display_name").unwrap_or("").into(),
        password: p.get("password").unwrap_or("").into(),
        id_number: p.get("id_number").map(String::from),
        mobile: Some(p.get("mobile").unwrap_or("").into()),
        email: p.get("email").map(String::from),
        real_name_level: Some(1),
        ..Default::default()
    };
    let mut errs = users::validate_new_user(&nu).err().unwrap_or_default();
    if nu.mobile.as_deref() == Some("") {
        errs.0.push(("mobile", "err_required"));
    }
    if !errs.is_empty() {
        return Ok(render(ctx, req, locale, &p, &errs, 400));
    }
    match users::create_user(&ctx.store, &nu, ctx.cfg.argon2).await {
        Ok(id) => {
            audit::record(
                &ctx.store,
                AuditEvent {
                    event: "register",
                    outcome: "success",
                    subject: Some(&id),
                    ip: Some(&req.client_ip.to_string()),
                    ..Default::default()
                },
            )
            .await;
            let lang = if locale == Locale::Zh { "zh" } else { "en" };
            match p.get("req") {
                Some(r) => Ok(IdpResponse::redirect(&format!("{}?resume={}&lang={}&notice=registered", ctx.path("/authorize"), r, lang))),
                None => Ok(ctx.page(
                    201,
                    "error.html",
                    locale,
                    "title_register",
                    minijinja::context! { message => strings(locale).get("registered").copied() },
                )),
            }
        }
        Err(CreateUserError::Taken) => Ok(render(ctx, req, locale, &p, &FieldErrors(vec![("username", "err_taken")]), 400)),
        Err(CreateUserError::Fields(e)) => Ok(render(ctx, req, locale, &p, &e, 400)),
        Err(CreateUserError::Internal(e)) => Err(e),
    }
}
