//! Which app serves a request: host first (exact, then the longest wildcard), then the
//! longest matching path prefix.

use govgate_policies::App;
use std::collections::HashMap;

/// A compiled routing table. App indices refer to `Policy::apps`.
#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<String, Vec<(String, usize)>>,
    /// (suffix such as ".gov.cn", routes), longest suffix first.
    wildcard: Vec<(String, Vec<(String, usize)>)>,
}

impl Router {
    pub fn new(apps: &[App]) -> Self {
        let mut exact: HashMap<String, Vec<(String, usize)>> = HashMap::new();
        let mut wildcard: HashMap<String, Vec<(String, usize)>> = HashMap::new();
        for (i, app) in apps.iter().enumerate() {
            for host in &app.hosts {
                let routes = match host.wildcard_suffix() {
                    Some(suffix) => wildcard.entry(suffix.to_string()).or_default(),
                    None => exact.entry(host.as_str().to_string()).or_default(),
                };
                for p in &app.paths {
                    routes.push((p.as_str().trim_end_matches('/').to_string(), i));
                }
            }
        }
        let by_longest = |v: &mut Vec<(String, usize)>| v.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        exact.values_mut().for_each(by_longest);
        let mut wildcard: Vec<_> = wildcard.into_iter().collect();
        wildcard.iter_mut().for_each(|(_, v)| by_longest(v));
        wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        Router { exact, wildcard }
    }

    /// The app for `host` (as sent, any case, maybe with a port) and a normalised `path`.
    pub fn route(&self, host: &str, path: &str) -> Option<usize> {
        let host = host_without_port(host);
        let mut lowered = String::new();
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered.push_str(host);
            lowered.make_ascii_lowercase();
            lowered.as_str()
        } else {
            host
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if let Some(found) = self.exact.get(host).and_then(|r| best(r, path)) {
            return Some(found);
        }
        self.wildcard
            .iter()
            .filter(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
            .find_map(|(_, routes)| best(routes, path))
    }
}

fn best(routes: &[(String, usize)], path: &str) -> Option<usize> {
    routes
        .iter()
        .find(|(prefix, _)| prefix.is_empty() || path.strip_prefix(prefix.as_str()).is_some_and(|r| r.is_empty() || r.starts_with('/')))
        .map(|(_, i)| *i)
}

/// `"example.gov.cn:8443"` → `"example.gov.cn"`; `"[::1]:80"` → `"[::1]"`.
pub fn host_without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &host[..h.len() + 1]).unwrap_or(host);
    }
    host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apps() -> Vec<App> {
        let text = r#"
[[listeners]]
name = "http"
address = "127.0.0.1:1"
[[apps]]
name = "portal"
hosts = ["*.gov.cn"]
upstreams = ["127.0.0.1:2"]
[[apps]]
name = "shebao"
hosts = ["shebao.gov.cn"]
upstreams = ["127.0.0.1:3"]
[[apps]]
name = "shebao-api"
hosts = ["shebao.gov.cn"]
paths = ["/api/"]
upstreams = ["127.0.0.1:4"]
[[apps]]
name = "deep"
hosts = ["*.x.gov.cn"]
upstreams = ["127.0.0.1:5"]
"#;
        govgate_policies::parse(text, std::path::Path::new("t.toml")).unwrap().apps
    }

    #[test]
    fn routes_by_host_and_longest_prefix() {
        let r = Router::new(&apps());
        assert_eq!(r.route("shebao.gov.cn", "/"), Some(1));
        assert_eq!(r.route("SheBao.gov.cn:8443", "/api"), Some(2));
        assert_eq!(r.route("shebao.gov.cn", "/api/v1/x"), Some(2));
        assert_eq!(r.route("shebao.gov.cn", "/apix"), Some(1));
        assert_eq!(r.route("tax.gov.cn", "/"), Some(0));
        assert_eq!(r.route("a.x.gov.cn", "/"), Some(3));
        assert_eq!(r.route("gov.cn", "/"), None);
        assert_eq!(r.route("evil.com", "/"), None);
        assert_eq!(r.route("shebao.gov.cn.", "/"), Some(1));
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(host_without_port("a.cn:80"), "a.cn");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("a.cn"), "a.cn");
    }
}
