//! Checks that span several fields (unique names, routes claimed twice, references between
//! sections, files that must exist). Each problem names the key path it is about; the loader
//! turns that path into a line and column.

use crate::model::{Policy, WafMode};
use std::collections::{HashMap, HashSet};

/// One step of a key path inside the policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Name(&'static str),
    Index(usize),
}

/// A problem found by validation, before it is located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: Vec<Key>,
    pub message: String,
}

fn problem(path: Vec<Key>, message: impl Into<String>) -> Problem {
    Problem { path, message: message.into() }
}

use Key::{Index as I, Name as N};

/// Runs every cross-field check and returns all problems found (empty when the policy is sound).
pub fn validate(policy: &Policy) -> Vec<Problem> {
    let mut out = Vec::new();
    check_server(policy, &mut out);
    check_listeners(policy, &mut out);
    check_tls(policy, &mut out);
    check_headers(&policy.security_headers, vec![N("security_headers")], &mut out);
    check_apps(policy, &mut out);
    check_waf(policy, &mut out);
    crate::sso::check(policy, &mut out);
    check_attack_log(policy, &mut out);
    for (i, k) in policy.certs.api_keys_sha256.iter().enumerate() {
        if k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
            out.push(problem(
                vec![N("certs"), N("api_keys_sha256"), I(i)],
                "expected 64 hex digits (the SHA-256 that `govgate api-key` prints)",
            ));
        }
    }
    out
}

fn check_attack_log(policy: &Policy, out: &mut Vec<Problem>) {
    let a = &policy.attack_log;
    if !(1..=10_000_000).contains(&a.queue) {
        out.push(problem(vec![N("attack_log"), N("queue")], "queue must be between 1 and 10000000 events"));
    }
    if a.retention.0 < std::time::Duration::from_secs(3600) {
        out.push(problem(vec![N("attack_log"), N("retention")], "retention must be at least 1h"));
    }
    if let Some(h) = &policy.admin.password_argon2 {
        if !h.starts_with("$argon2id$") {
            out.push(problem(
                vec![N("admin"), N("password_argon2")],
                "expected an argon2id hash (`$argon2id$…`, printed by `govgate admin-password`), never the password itself",
            ));
        }
    }
}

fn check_waf(policy: &Policy, out: &mut Vec<Problem>) {
    let global = &policy.waf;
    let check = |w: &crate::model::Waf, at: Vec<Key>, out: &mut Vec<Problem>| {
        if !(1..=4).contains(&w.paranoia) {
            out.push(problem([at.clone(), vec![N("paranoia")]].concat(), "paranoia must be 1, 2, 3 or 4"));
        }
        if w.request_body_limit.0 > 64 * 1024 {
            out.push(problem([at.clone(), vec![N("request_body_limit")]].concat(), "request_body_limit is at most 64KiB"));
        }
        for (i, e) in w.exclusions.iter().enumerate() {
            let t = &e.target;
            let valid = t.is_empty()
                || t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_:-.[]/".contains(&b))
                    && t.chars().next().is_some_and(|c| c.is_ascii_uppercase());
            if !valid {
                out.push(problem(
                    [at.clone(), vec![N("exclusions"), I(i), N("target")]].concat(),
                    format!("invalid WAF target {t:?}: write e.g. \"ARGS:q\""),
                ));
            }
        }
    };
    check(global, vec![N("waf")], out);
    let needs_rules = global.mode != WafMode::Off || policy.apps.iter().any(|a| a.waf.mode.is_some_and(|m| m != WafMode::Off));
    match &global.rules {
        None if needs_rules => {
            out.push(problem(vec![N("waf")], "the WAF is switched on but [waf] rules (the OWASP CRS directory) is not set"))
        }
        Some(dir) if needs_rules && !policy.resolve(dir).join("rules").is_dir() => out.push(problem(
            vec![N("waf"), N("rules")],
            format!("{} is not a CRS directory (it has no rules/ folder)", policy.resolve(dir).display()),
        )),
        _ => {}
    }
    for (i, app) in policy.apps.iter().enumerate() {
        if app.waf != Default::default() {
            check(&global.for_app(&app.waf), vec![N("apps"), I(i), N("waf")], out);
        }
    }
}

fn check_server(policy: &Policy, out: &mut Vec<Problem>) {
    if policy.server.threads > 1024 {
        out.push(problem(vec![N("server"), N("threads")], "threads must be between 0 (one per core) and 1024"));
    }
    if policy.rate_limit.max_tracked_clients == 0 {
        out.push(problem(vec![N("rate_limit"), N("max_tracked_clients")], "max_tracked_clients must be at least 1"));
    }
    let l = &policy.limits;
    if l.max_header_count == 0 || l.max_header_bytes.0 < 256 || l.max_uri_bytes.0 < 16 {
        out.push(problem(
            vec![N("limits")],
            "limits are too small to carry any request (max_header_count ≥ 1, max_header_bytes ≥ 256, max_uri_bytes ≥ 16)",
        ));
    }
}

fn check_listeners(policy: &Policy, out: &mut Vec<Problem>) {
    if policy.listeners.is_empty() {
        out.push(problem(vec![], "the policy needs at least one [[listeners]] entry"));
    }
    let mut names = HashSet::new();
    let mut addrs = HashSet::new();
    for (i, l) in policy.listeners.iter().enumerate() {
        if !names.insert(l.name.as_str()) {
            out.push(problem(vec![N("listeners"), I(i), N("name")], format!("listener name {:?} is used twice", l.name)));
        }
        if !addrs.insert(l.address) {
            out.push(problem(vec![N("listeners"), I(i), N("address")], format!("address {} is used by two listeners", l.address)));
        }
        if Some(l.address) == policy.admin.address {
            out.push(problem(vec![N("listeners"), I(i), N("address")], format!("address {} is also the admin address", l.address)));
        }
        if let Some(target) = &l.redirect_to {
            let ok = policy.listeners.iter().any(|o| &o.name == target && o.tls);
            if !ok {
                out.push(problem(
                    vec![N("listeners"), I(i), N("redirect_to")],
                    format!("redirect_to names {target:?}, but there is no TLS listener of that name"),
                ));
            }
            if l.tls {
                out.push(problem(vec![N("listeners"), I(i), N("redirect_to")], "a TLS listener cannot redirect to HTTPS"));
            }
        }
        // A missing trust directory is not an error here (the demo makes its PKI on first start);
        // the gateway warns at start when certificate login has no trust anchor.
        if l.client_certs != crate::model::ClientCerts::Off && !l.tls {
            out.push(problem(vec![N("listeners"), I(i), N("client_certs")], "client certificates need a TLS listener (tls = true)"));
        }
    }
}

fn check_tls(policy: &Policy, out: &mut Vec<Problem>) {
    let tls = &policy.tls;
    if tls.is_auto() {
        return;
    }
    if tls.certificate == "auto" || tls.key == "auto" {
        out.push(problem(vec![N("tls")], "certificate and key must both be \"auto\" or both be file paths"));
        return;
    }
    for (field, value) in [("certificate", &tls.certificate), ("key", &tls.key)] {
        let path = policy.resolve(value.as_ref());
        if !path.is_file() {
            out.push(problem(vec![N("tls"), N(field)], format!("{} does not exist or is not a file", path.display())));
        }
    }
}

fn check_headers(headers: &std::collections::BTreeMap<String, String>, at: Vec<Key>, out: &mut Vec<Problem>) {
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    for (name, value) in headers {
        if !token(name) || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            out.push(problem(at.clone(), format!("invalid header {name:?}: names are tokens, values hold no line breaks")));
        }
    }
}

fn check_apps(policy: &Policy, out: &mut Vec<Problem>) {
    let mut names = HashSet::new();
    let mut routes: HashMap<(String, String), String> = HashMap::new();
    for (i, app) in policy.apps.iter().enumerate() {
        let at = |k: &'static str| vec![N("apps"), I(i), N(k)];
        let valid_name = !app.name.is_empty()
            && app.name.len() <= 64
            && app.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            out.push(problem(at("name"), format!("app name {:?} must be 1-64 characters of a-z, 0-9, '-' and '_'", app.name)));
        }
        if !names.insert(app.name.as_str()) {
            out.push(problem(at("name"), format!("app name {:?} is used twice", app.name)));
        }
        if app.hosts.is_empty() {
            out.push(problem(at("hosts"), "an app needs at least one host"));
        }
        if app.paths.is_empty() {
            out.push(problem(at("paths"), "an app needs at least one path prefix"));
        }
        match (&app.builtin, app.upstreams.is_empty()) {
            (None, true) => out.push(problem(at("upstreams"), "an app needs at least one upstream server (or a builtin service)")),
            (Some(_), false) => out.push(problem(at("upstreams"), "a builtin service has no upstream servers")),
            _ => {}
        }
        if app.builtin == Some(crate::model::Builtin::Idp) {
            match policy.idp.issuer.as_deref() {
                None => out.push(problem(at("builtin"), "the identity provider needs [idp] issuer")),
                Some(issuer) => {
                    let host = issuer
                        .strip_prefix("https://")
                        .or_else(|| issuer.strip_prefix("http://"))
                        .map(|r| r.split(['/', ':']).next().unwrap_or(""));
                    match host {
                        None => out.push(problem(vec![N("idp"), N("issuer")], "the issuer must be an https:// URL")),
                        Some(h) if !app.hosts.iter().any(|x| x.as_str() == h.to_ascii_lowercase()) => {
                            out.push(problem(at("hosts"), format!("the issuer's host {h:?} must be one of this app's hosts")))
                        }
                        _ => {}
                    }
                }
            }
        }
        if app.builtin == Some(crate::model::Builtin::CertsApi) {
            if !policy.resolve(&policy.certs.trust).is_dir() {
                out.push(problem(
                    vec![N("certs"), N("trust")],
                    format!("{} is not a directory of trust anchors", policy.resolve(&policy.certs.trust).display()),
                ));
            }
            if policy.certs.api_keys_sha256.is_empty() {
                out.push(problem(at("builtin"), "the certificate API needs at least one key in [certs] api_keys_sha256"));
            }
        }
        let mut seen_up = HashSet::new();
        for (j, u) in app.upstreams.iter().enumerate() {
            if !seen_up.insert(u) {
                out.push(problem(vec![N("apps"), I(i), N("upstreams"), I(j)], format!("upstream {u} is listed twice")));
            }
        }
        for (h, host) in app.hosts.iter().enumerate() {
            for (p, prefix) in app.paths.iter().enumerate() {
                let key = (host.as_str().to_string(), prefix.as_str().trim_end_matches('/').to_string());
                if let Some(other) = routes.insert(key, app.name.clone()) {
                    let _ = h;
                    out.push(problem(
                        vec![N("apps"), I(i), N("paths"), I(p)],
                        format!("{}{} is already served by app {other:?}", host.as_str(), prefix.as_str()),
                    ));
                }
            }
        }
        if let Some(hc) = &app.health_check {
            if !hc.path.starts_with('/') {
                out.push(problem(vec![N("apps"), I(i), N("health_check"), N("path")], "the health-check path must start with '/'"));
            }
            if hc.interval.0.as_millis() < 100 {
                out.push(problem(
                    vec![N("apps"), I(i), N("health_check"), N("interval")],
                    "the health-check interval must be at least 100ms",
                ));
            }
        }
        check_headers(&app.security_headers, at("security_headers"), out);
    }
}
