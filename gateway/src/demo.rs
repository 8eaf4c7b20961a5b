//! `govgate demo`: two small government apps of its own on loopback (a social-security site
//! served by two instances, and a tax site) that print the request headers they received, so
//! that a newcomer sees what the gateway forwards, strips and adds.

use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use pingora_core::services::listening::Service;

pub struct DemoApp {
    pub title: &'static str,
    pub instance: &'static str,
}

/// The demo upstreams and the addresses `policies/demo.toml` expects them on.
pub const DEMO_APPS: [(&str, &str, &str); 3] = [
    ("127.0.0.1:18081", "社会保障 Social security", "shebao-1"),
    ("127.0.0.1:18082", "社会保障 Social security", "shebao-2"),
    ("127.0.0.1:18083", "税务 Tax", "tax-1"),
];

pub fn services() -> Vec<Service<DemoApp>> {
    DEMO_APPS
        .iter()
        .map(|(addr, title, instance)| {
            let mut s = Service::new(format!("demo app {instance}"), DemoApp { title, instance });
            s.add_tcp(addr);
            s.threads = Some(1);
            s
        })
        .collect()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[async_trait]
impl ServeHttp for DemoApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let mut body_len = 0usize;
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body_len += chunk.len();
        }
        let req = session.req_header();
        let path = req.uri.path().to_string();
        if path == "/healthz" {
            return Response::builder().status(200).header("content-length", 3).body(b"ok\n".to_vec()).unwrap_or_default();
        }
        let rows: String = req
            .headers
            .iter()
            .map(|(k, v)| format!("<tr><th>{}</th><td>{}</td></tr>\n", escape(k.as_str()), escape(&String::from_utf8_lossy(v.as_bytes()))))
            .collect();
        let login = if path.starts_with("/login") {
            "<p>登录页 Login page: this path has its own rate limit (5 per minute per client in the demo policy).</p>"
        } else {
            ""
        };
        let who = match req.headers.get("x-govgate-user").and_then(|v| v.to_str().ok()) {
            Some(sub) => {
                let name = req.headers.get("x-govgate-claim-name").and_then(|v| v.to_str().ok()).map(percent_decode).unwrap_or_default();
                format!(
                    r#"<p id="who">已登录 Signed in: <b id="name">{}</b> (<code>{}</code>) · <a href="/.govgate/logout">退出 Log out</a></p>"#,
                    escape(&name),
                    escape(sub)
                )
            }
            None => String::new(),
        };
        let html = format!(
            r#"<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto}}th{{text-align:left;padding-right:1rem}}td{{font-family:monospace}}</style></head>
<body><h1>{title}</h1>{who}<p>Served by demo instance <b id="instance">{instance}</b> for <code>{method} {uri}</code> ({body_len} body bytes).</p>{login}
<h2>Headers this app received from the gateway</h2><table>{rows}</table>
<p>X-Govgate-* headers sent by a client never arrive here; X-Forwarded-* and X-Request-Id are set by the gateway.</p></body></html>"#,
            title = self.title,
            instance = self.instance,
            method = escape(req.method.as_str()),
            uri = escape(&req.uri.to_string()),
        );
        Response::builder()
            .status(200)
            .header("content-type", "text/html; charset=utf-8")
            .header("content-length", html.len())
            .header("server", "demo-app/1.0 (hidden by the gateway)")
            .body(html.into_bytes())
            .unwrap_or_default()
    }
}

/// Decodes the gateway's percent-encoded UTF-8 header values.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(x)) => {
                out.push(x);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The demo citizen's user name.
pub const DEMO_USER: &str = "zhangsan";
/// The demo security officer's user name (staff with the role `security`: the console).
pub const DEMO_SECURITY_USER: &str = "anquan";

/// The demo accounts' passwords, made at random on every start.
pub struct DemoAccounts {
    pub citizen: String,
    pub security: String,
}

/// Creates the demo citizen and the demo security officer in the identity provider (or gives
/// them new passwords). Runs before the server starts, on a runtime of its own; `None` when
/// the policy serves no identity provider.
pub fn ensure_demo_accounts(shared: &crate::state::Shared) -> Result<Option<DemoAccounts>, String> {
    use govgate_idp::users::{AccountKind, NewUser};
    let Some(idp) = &shared.idp else { return Ok(None) };
    let password = || format!("Demo-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let accounts = DemoAccounts { citizen: password(), security: password() };
    let users = [
        NewUser {
            username: DEMO_USER.into(),
            kind: Some(AccountKind::Citizen),
            display_name: "张三".into(),
            password: accounts.citizen.clone(),
            id_number: Some("11010519491231002X".into()),
            uscc: None,
            mobile: Some("13800138000".into()),
            email: Some("zhangsan@example.gov.cn".into()),
            real_name_level: Some(2),
            roles: Vec::new(),
            address: Some("北京市西城区示例路 1 号".into()),
        },
        NewUser {
            username: DEMO_SECURITY_USER.into(),
            kind: Some(AccountKind::Staff),
            display_name: "安全员 李四".into(),
            password: accounts.security.clone(),
            email: Some("anquan@example.gov.cn".into()),
            roles: vec![crate::console::auth::ROLE_SECURITY.to_string(), "staff".into()],
            ..Default::default()
        },
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let provider = govgate_idp::Idp::open(idp.config().clone()).await.map_err(|e| e.to_string())?;
        let store = provider.store();
        let argon = govgate_idp::password::Argon2Params::PRODUCTION;
        for user in &users {
            if govgate_idp::admin::add_user(store, "govgate demo", user, argon).await.is_err() {
                govgate_idp::admin::set_password(store, "govgate demo", &user.username, &user.password, argon)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok::<_, String>(())
    })?;
    Ok(Some(accounts))
}
