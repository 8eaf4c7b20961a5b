//! Chinese and English UI strings and locale negotiation (`ui_locales`, an explicit switch, then
//! `Accept-Language`; Simplified Chinese by default).

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    Zh,
    En,
}

impl Locale {
    pub fn tag(self) -> &'static str {
        match self {
            Locale::Zh => "zh-CN",
            Locale::En => "en",
        }
    }
    fn from_tag(t: &str) -> Option<Self> {
        let t = t.trim().to_ascii_lowercase();
        if t == "zh" || t.starts_with("zh-") {
            Some(Locale::Zh)
        } else if t == "en" || t.starts_with("en-") {
            Some(Locale::En)
        } else {
            None
        }
    }
}

/// Pick the locale: an explicit `lang` switch first, then the space-separated `ui_locales`, then
/// `Accept-Language` by descending q, else Chinese.
pub fn negotiate(explicit: Option<&str>, ui_locales: Option<&str>, accept_language: Option<&str>) -> Locale {
    if let Some(l) = explicit.and_then(Locale::from_tag) {
        return l;
    }
    if let Some(l) = ui_locales.and_then(|u| u.split(' ').find_map(Locale::from_tag)) {
        return l;
    }
    if let Some(al) = accept_language {
        let mut langs: Vec<(f32, &str)> = al
            .split(',')
            .map(|part| {
                let mut it = part.split(';');
                let tag = it.next().unwrap_or("").trim();
                let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
                (q, tag)
            })
            .collect();
        langs.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
        if let Some(l) = langs.iter().filter(|(q, _)| *q > 0.0).find_map(|(_, t)| Locale::from_tag(t)) {
            return l;
        }
    }
    Locale::Zh
}

const STRINGS: &[(&str, &str, &str)] = &[
    ("title_login", "登录", "Sign in"),
    ("title_consent", "授权确认", "Allow access"),
    ("title_error", "出错了", "Something went wrong"),
    ("title_otp", "动态口令验证", "One-time code"),
    ("title_logout", "退出登录", "Sign out"),
    ("title_logged_out", "已退出登录", "Signed out"),
    ("title_register", "注册个人账号", "Create a personal account"),
    ("site_name", "统一身份认证", "Unified identity service"),
    ("username", "用户名", "Username"),
    ("password", "密码", "Password"),
    ("otp_code", "6 位动态口令", "6-digit code"),
    ("submit_login", "登录", "Sign in"),
    ("submit_continue", "继续", "Continue"),
    ("allow", "同意", "Allow"),
    ("deny", "拒绝", "Deny"),
    ("consent_intro", "以下应用请求访问您的信息：", "This application asks to access your information:"),
    ("scope_openid", "您的账号标识", "Your account identifier"),
    ("scope_profile", "姓名和账号类型", "Your name and account type"),
    ("scope_email", "电子邮箱", "Your e-mail address"),
    ("scope_phone", "手机号码", "Your mobile number"),
    ("scope_gov_identity", "身份证件号码和实名等级", "Your identity number and real-name level"),
    ("scope_address", "通讯地址", "Your postal address"),
    ("scope_roles", "工作人员角色", "Your staff roles"),
    ("scope_offline_access", "在您离线时保持访问", "Access while you are away"),
    ("switch_lang", "English", "中文"),
    ("login_failed", "用户名或密码错误，或账号已被锁定。", "Wrong username or password, or the account is locked."),
    ("otp_failed", "动态口令不正确。", "The code is not correct."),
    ("throttled", "尝试次数过多，请稍后再试。", "Too many attempts. Please wait and try again."),
    ("csrf_failed", "页面已过期，请重新提交。", "The page expired. Please submit again."),
    ("request_expired", "登录请求已过期，请返回应用重新登录。", "The sign-in request expired. Go back to the application and start again."),
    ("bad_request", "请求无效。", "The request is not valid."),
    ("logout_confirm", "确定要退出统一身份认证吗？", "Do you want to sign out of the unified identity service?"),
    ("logged_out", "您已安全退出。", "You have been signed out."),
    ("register_link", "注册个人账号", "Create a personal account"),
    ("display_name", "姓名", "Full name"),
    ("id_number", "居民身份证号码", "Resident identity number"),
    ("mobile", "手机号码", "Mobile number"),
    ("email", "电子邮箱（可选）", "E-mail (optional)"),
    ("submit_register", "注册", "Register"),
    ("registered", "注册成功，请登录。", "Your account was created. Please sign in."),
    ("err_username", "用户名须为 1–64 个字符，不含空格。", "Username: 1–64 characters, no spaces."),
    ("err_display_name", "请填写姓名。", "Please enter your name."),
    ("password_length", "密码长度须为 8–128 个字符。", "Password: 8–128 characters."),
    ("password_classes", "密码须包含字母、数字、符号中的至少两类。", "Password: use at least two of letters, digits and symbols."),
    ("err_id_checksum", "身份证号码校验位不正确。", "The check digit of the identity number is wrong."),
    ("err_id_format", "身份证号码应为 18 位，出生日期须有效。", "The identity number must have 18 characters and a valid birth date."),
    ("err_uscc_checksum", "统一社会信用代码校验位不正确。", "The check character of the credit code is wrong."),
    ("err_uscc_format", "统一社会信用代码应为 18 位。", "The unified social credit code must have 18 characters."),
    ("err_required", "此项必填。", "This field is required."),
    ("err_mobile", "请输入 11 位手机号码。", "Enter an 11-digit mobile number."),
    ("err_email", "电子邮箱格式不正确。", "The e-mail address is not valid."),
    ("err_level", "实名等级须为 1–4。", "Real-name level must be 1–4."),
    ("err_address", "地址不超过 200 个字符。", "Address: at most 200 characters."),
    ("err_roles", "只有工作人员可以拥有角色。", "Only staff accounts have roles."),
    ("err_taken", "该用户名已被使用。", "This username is taken."),
    ("form_post_note", "如果页面没有自动跳转，请点击“继续”。", "If nothing happens, press Continue."),
    ("error_prefix", "错误：", "Error: "),
    ("cert_login", "使用数字证书登录", "Sign in with your certificate"),
    ("cert_failed", "证书未绑定账号或账号已被锁定。", "This certificate is not bound to an account, or the account is locked."),
    ("cert_refused", "您的数字证书未被接受：", "Your certificate was not accepted: "),
    ("cert_refused_expired", "证书已过期。", "it has expired."),
    ("cert_refused_not_yet_valid", "证书尚未生效。", "it is not valid yet."),
    ("cert_refused_revoked", "证书已被吊销。", "it has been revoked."),
    ("cert_refused_untrusted", "证书不是由受信任的机构签发的。", "it was not issued by a trusted authority."),
    (
        "cert_refused_revocation_unknown",
        "暂时无法确认证书是否已被吊销，请稍后再试。",
        "whether it is revoked cannot be checked right now; please try again later.",
    ),
    ("cert_refused_unusable", "证书不能用于登录。", "it cannot be used to log in."),
    ("cert_password_instead", "您仍可使用用户名和密码登录。", "You can still sign in with your user name and password."),
    ("or", "或", "or"),
];

/// All strings for a locale, for templates (`t.username`).
pub fn strings(l: Locale) -> BTreeMap<&'static str, &'static str> {
    STRINGS.iter().map(|(k, zh, en)| (*k, if l == Locale::Zh { *zh } else { *en })).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate(None, None, None), Locale::Zh);
        assert_eq!(negotiate(None, Some("fr en"), Some("zh-CN")), Locale::En);
        assert_eq!(negotiate(None, None, Some("fr;q=0.9, en-GB;q=0.8, zh;q=0.1")), Locale::En);
        assert_eq!(negotiate(Some("zh"), Some("en"), None), Locale::Zh);
        assert_eq!(negotiate(None, None, Some("en;q=0, zh")), Locale::Zh);
    }

    #[test]
    fn every_key_translated() {
        for (k, zh, en) in STRINGS {
            assert!(!zh.is_empty() && !en.is_empty(), "{k}");
        }
    }
}
