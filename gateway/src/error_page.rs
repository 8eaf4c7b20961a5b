//! The pages govgate answers with when it refuses or cannot serve a request: Chinese or
//! English by `Accept-Language`, JSON when the client prefers `application/json`, and always
//! with the incident id that support staff can look up in the logs.

use http::HeaderMap;

/// A rendered error response body.
pub struct ErrorPage {
    pub content_type: &'static str,
    pub body: String,
}

struct Text {
    code: &'static str,
    zh_title: &'static str,
    zh_detail: &'static str,
    en_title: &'static str,
    en_detail: &'static str,
}

fn text(status: u16) -> Text {
    let t = |code, zh_title, zh_detail, en_title, en_detail| Text { code, zh_title, zh_detail, en_title, en_detail };
    match status {
        400 => t(
            "bad_request",
            "请求无效",
            "您的浏览器发送了网关无法处理的请求。",
            "Bad request",
            "Your browser sent a request the gateway cannot process.",
        ),
        401 => t("unauthorized", "需要登录", "访问此地址需要有效的登录凭证。", "Unauthorized", "This address needs valid credentials."),
        403 => t(
            "forbidden",
            "禁止访问",
            "您无权访问此页面，或请求被安全策略拦截。",
            "Forbidden",
            "You may not access this page, or the request was blocked by the security policy.",
        ),
        404 => t(
            "not_found",
            "页面不存在",
            "您访问的地址不存在，请检查网址是否正确。",
            "Not found",
            "There is nothing at this address. Please check the URL.",
        ),
        408 => t(
            "request_timeout",
            "请求超时",
            "请求发送过慢，连接已关闭。请重试。",
            "Request timeout",
            "The request arrived too slowly and was closed. Please try again.",
        ),
        413 => t(
            "payload_too_large",
            "上传内容过大",
            "您提交的内容超过了允许的大小。",
            "Payload too large",
            "What you sent is larger than this service accepts.",
        ),
        414 => {
            t("uri_too_long", "网址过长", "请求的网址超过了允许的长度。", "URI too long", "The requested address is longer than allowed.")
        }
        429 => t(
            "rate_limited",
            "请求过于频繁",
            "您的请求过于频繁，请稍后再试。",
            "Too many requests",
            "You sent too many requests. Please wait a moment and try again.",
        ),
        431 => t(
            "headers_too_large",
            "请求头过大",
            "请求头超过了允许的大小，请清除本站 Cookie 后重试。",
            "Request headers too large",
            "The request headers are too large. Clear this site's cookies and try again.",
        ),
        502 => t(
            "bad_gateway",
            "服务暂时无法访问",
            "业务系统暂时没有响应，请稍后再试。",
            "Bad gateway",
            "The service behind the gateway did not answer. Please try again later.",
        ),
        503 => t(
            "service_unavailable",
            "服务暂不可用",
            "服务正在维护或繁忙，请稍后再试。",
            "Service unavailable",
            "The service is under maintenance or busy. Please try again later.",
        ),
        504 => t(
            "gateway_timeout",
            "服务响应超时",
            "业务系统响应超时，请稍后再试。",
            "Gateway timeout",
            "The service took too long to answer. Please try again later.",
        ),
        _ => t("internal_error", "系统错误", "网关处理请求时出错。", "Internal error", "The gateway failed while handling the request."),
    }
}

/// Language preference from `Accept-Language`: English only when it is preferred over Chinese.
pub fn prefers_english(headers: &HeaderMap) -> bool {
    let is = |lang: &'static str| move |tag: &str| tag == lang || tag.strip_prefix(lang).is_some_and(|r| r.starts_with('-'));
    prefers(headers, http::header::ACCEPT_LANGUAGE, is("en"), is("zh"))
}

/// JSON when `Accept` ranks `application/json` above `text/html`.
pub fn prefers_json(headers: &HeaderMap) -> bool {
    prefers(headers, http::header::ACCEPT, |m| m == "application/json" || m == "application/problem+json", |m| m == "text/html")
}

/// Whether the best quality (`q=`) given to an item matching `a` beats the best given to `b`,
/// in a header such as `Accept` or `Accept-Language`.
fn prefers(headers: &HeaderMap, name: http::HeaderName, a: impl Fn(&str) -> bool, b: impl Fn(&str) -> bool) -> bool {
    let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (mut qa, mut qb) = (0.0f32, 0.0f32);
    for part in v.split(',') {
        let mut it = part.split(';');
        let item = it.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = it.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0).clamp(0.0, 1.0);
        if a(&item) {
            qa = qa.max(q);
        } else if b(&item) {
            qb = qb.max(q);
        }
    }
    qa > qb
}

/// Renders the page for `status` for the client that sent `request_headers`.
pub fn render(status: u16, incident_id: &str, request_headers: &HeaderMap) -> ErrorPage {
    let t = text(status);
    let english = prefers_english(request_headers);
    if prefers_json(request_headers) {
        let body = serde_json::json!({
            "status": status,
            "error": t.code,
            "message": if english { t.en_detail } else { t.zh_detail },
            "incident_id": incident_id,
        });
        return ErrorPage { content_type: "application/json; charset=utf-8", body: body.to_string() };
    }
    let (lang, title, detail, other_title, other_detail, label) = if english {
        ("en", t.en_title, t.en_detail, t.zh_title, t.zh_detail, "Incident ID")
    } else {
        ("zh-CN", t.zh_title, t.zh_detail, t.en_title, t.en_detail, "事件编号")
    };
    let id = html_escape(incident_id);
    let body = format!(
        r#"<!DOCTYPE html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{status} {title}</title>
<style>body{{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}}
h1{{color:#b00}}code{{background:#f3f3f3;padding:.2em .4em;border-radius:4px}}.other{{color:#666;margin-top:2rem;border-top:1px solid #ddd;padding-top:1rem}}</style>
</head>
<body>
<main>
<h1>{status} {title}</h1>
<p>{detail}</p>
<p>{label}: <code id="incident-id">{id}</code></p>
<p class="other" lang="{other_lang}">{other_title}: {other_detail}</p>
</main>
</body>
</html>
"#,
        other_lang = if english { "zh-CN" } else { "en" },
    );
    ErrorPage { content_type: "text/html; charset=utf-8", body }
}

/// The page for `status` with one sentence saying why (e.g. which role is missing), in the
/// language the page is in; JSON answers carry it as `reason`.
pub fn render_with_reason(status: u16, incident_id: &str, request_headers: &HeaderMap, en: &str, zh: &str) -> ErrorPage {
    let mut page = render(status, incident_id, request_headers);
    let reason = if prefers_english(request_headers) { en } else { zh };
    if prefers_json(request_headers) {
        if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&page.body) {
            v["reason"] = reason.into();
            page.body = v.to_string();
        }
    } else {
        page.body = page.body.replacen("</h1>\n", &format!("</h1>\n<p id=\"reason\">{}</p>\n", html_escape(reason)), 1);
    }
    page
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_shown_in_the_page_language() {
        let mut h = HeaderMap::new();
        let p = render_with_reason(403, "id1", &h, "Needs role <staff>.", "需要角色 staff。");
        assert!(p.body.contains("<p id=\"reason\">需要角色 staff。</p>") && p.body.contains("id1"), "{}", p.body);
        h.insert("accept-language", "en".parse().unwrap());
        let p = render_with_reason(403, "id1", &h, "Needs role <staff>.", "需要角色 staff。");
        assert!(p.body.contains("Needs role &lt;staff&gt;."), "{}", p.body);
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn chinese_by_default_english_when_preferred() {
        let zh = render(429, "abc", &headers(&[]));
        assert!(zh.body.contains("请求过于频繁") && zh.body.contains("lang=\"zh-CN\""));
        let en = render(429, "abc", &headers(&[("accept-language", "en-US,en;q=0.9,zh;q=0.5")]));
        assert!(en.body.contains("<h1>429 Too many requests</h1>"));
        let zh2 = render(429, "abc", &headers(&[("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")]));
        assert!(zh2.body.contains("<h1>429 请求过于频繁</h1>"));
    }

    #[test]
    fn json_when_asked_and_incident_id_always_present() {
        let j = render(413, "id-1", &headers(&[("accept", "application/json")]));
        assert_eq!(j.content_type, "application/json; charset=utf-8");
        let v: serde_json::Value = serde_json::from_str(&j.body).unwrap();
        assert_eq!(v["incident_id"], "id-1");
        assert_eq!(v["status"], 413);
        let browser = render(413, "id-2", &headers(&[("accept", "text/html,application/xhtml+xml,application/json;q=0.9")]));
        assert!(browser.body.contains("<code id=\"incident-id\">id-2</code>"));
    }

    #[test]
    fn incident_id_is_escaped() {
        let p = render(404, "<script>", &headers(&[]));
        assert!(!p.body.contains("<script>") && p.body.contains("&lt;script&gt;"));
    }
}
