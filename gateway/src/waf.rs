//! The WAF at the gateway: compiles the OWASP Core Rule Set once per distinct configuration
//! (shared by the apps that use it, kept across reloads when unchanged), inspects a request's
//! head and body, and turns the matches into an [`AttackEvent`]. The rule engine itself is the
//! `govgate-waf` crate; this module only maps policy and requests onto it.

use crate::attack_log::{now_rfc3339, Action, AttackEvent, Kind, RuleMatch, SCHEMA_VERSION};
use govgate_identity_numbers::mask_for_log as mask;
use govgate_policies::{OversizedBody, Policy, Waf, WafMode};
use govgate_waf::{BodyLimitAction, Engine, EngineConfig, Mode};
use pingora_http::RequestHeader;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("loading the WAF rules from {dir}: {source}")]
pub struct WafError {
    dir: String,
    source: govgate_waf::LoadError,
}

/// The WAF of one app.
pub struct AppWaf {
    pub engine: Engine,
    pub mode: WafMode,
    /// Request-body bytes read ahead and inspected.
    pub body_limit: usize,
    pub oversized: OversizedBody,
}

/// Ids for the rules the gateway generates from the policy (outside CRS's 900000–999999).
const GENERATED_ID_BASE: u64 = 1_900_000;

/// SecLang for the policy's removals and exclusions, loaded before the CRS rules.
pub fn exclusions_seclang(w: &Waf) -> String {
    let mut out = String::new();
    let mut id = GENERATED_ID_BASE;
    let mut ctl = |cond: Option<&str>, ctl: String| {
        id += 1;
        match cond {
            Some(path) => out.push_str(&format!("SecRule REQUEST_FILENAME \"@beginsWith {path}\" \"id:{id},phase:1,pass,nolog,{ctl}\"\n")),
            None => out.push_str(&format!("SecAction \"id:{id},phase:1,pass,nolog,{ctl}\"\n")),
        }
    };
    for r in &w.remove_rules {
        ctl(None, format!("ctl:ruleRemoveById={r}"));
    }
    for t in &w.remove_tags {
        ctl(None, format!("ctl:ruleRemoveByTag={t}"));
    }
    for e in &w.exclusions {
        let c = if e.target.is_empty() {
            format!("ctl:ruleRemoveById={}", e.rule)
        } else {
            format!("ctl:ruleRemoveTargetById={};{}", e.rule, e.target)
        };
        ctl(Some(e.path.as_str()), c);
    }
    out
}

fn engine_config(w: &Waf) -> EngineConfig {
    EngineConfig {
        paranoia: w.paranoia,
        mode: match w.mode {
            WafMode::Block => Mode::On,
            WafMode::Detect => Mode::DetectionOnly,
            WafMode::Off => Mode::Off,
        },
        inbound_threshold: w.inbound_threshold,
        outbound_threshold: w.outbound_threshold,
        request_body_limit: w.request_body_limit.0 as usize,
        request_body_limit_action: match w.oversized_body {
            OversizedBody::Partial => BodyLimitAction::ProcessPartial,
            OversizedBody::Reject => BodyLimitAction::Reject,
        },
        extra_setup: exclusions_seclang(w),
        ..EngineConfig::default()
    }
}

/// Compiled engines by their configuration, kept for the next reload.
pub type Engines = HashMap<String, Engine>;

/// The WAF of every app (`None` where it is off), with the engines by configuration.
pub struct Built {
    pub apps: Vec<Option<Arc<AppWaf>>>,
    pub engines: Engines,
}

/// Builds the WAF of every app, reusing engines of `previous` whose configuration is unchanged.
pub fn build(policy: &Policy, previous: &Engines) -> Result<Built, WafError> {
    let mut engines: HashMap<String, Engine> = HashMap::new();
    let mut out = Vec::with_capacity(policy.apps.len());
    for app in &policy.apps {
        let w = policy.waf.for_app(&app.waf);
        let Some(rules) = w.rules.as_ref().filter(|_| w.mode != WafMode::Off) else {
            out.push(None);
            continue;
        };
        let dir = policy.resolve(rules);
        let cfg = engine_config(&w);
        let key = format!(
            "{}|{:?}|{:?}|{:?}|{}|{:?}|{}",
            dir.display(),
            cfg.mode,
            cfg.paranoia,
            (cfg.inbound_threshold, cfg.outbound_threshold),
            cfg.request_body_limit,
            cfg.request_body_limit_action,
            cfg.extra_setup
        );
        let engine = match engines.get(&key).or_else(|| previous.get(&key)) {
            Some(e) => e.clone(),
            None => {
                let started = std::time::Instant::now();
                let e = Engine::from_crs_dir(&dir, &cfg).map_err(|source| WafError { dir: dir.display().to_string(), source })?;
                tracing::info!(
                    app = app.name,
                    rules = e.rule_count(),
                    paranoia = w.paranoia,
                    "WAF rules compiled in {:?}",
                    started.elapsed()
                );
                e
            }
        };
        engines.insert(key, engine.clone());
        out.push(Some(Arc::new(AppWaf { engine, mode: w.mode, body_limit: w.request_body_limit.0 as usize, oversized: w.oversized_body })));
    }
    Ok(Built { apps: out, engines })
}

/// The outcome of inspecting one request.
pub struct Verdict {
    /// Status to refuse the request with (block mode only).
    pub block: Option<u16>,
    /// The event to record, when any rule matched.
    pub event: Option<AttackEvent>,
}

/// Who sent the request and to which app, for the event.
pub struct Context<'a> {
    pub incident_id: &'a str,
    pub app: &'a str,
    pub client_ip: IpAddr,
}

fn protocol(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Runs phases 1 and 2 on the request head and the body read ahead; `complete` is false when
/// `body` is only the first part of the request's body (the rest was not read ahead).
pub fn inspect(waf: &AppWaf, req: &RequestHeader, body: &[u8], complete: bool, cx: &Context<'_>) -> Verdict {
    let mut tx = waf.engine.transaction();
    let mut headers: Vec<(&[u8], &[u8])> = req.headers.iter().map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())).collect();
    // HTTP/2 carries the host as `:authority`: show it to the rules as the Host header it
    // stands for (CRS 920280 refuses requests without one).
    if let (None, Some(authority)) = (req.headers.get(http::header::HOST), req.uri.authority()) {
        headers.push((b"host", authority.as_str().as_bytes()));
    }
    let uri = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let ip = cx.client_ip.to_string();
    let mut intervention = tx.request_headers(req.method.as_str(), uri.as_bytes(), protocol(req.version), &headers, &ip);
    if intervention.is_none() {
        if !complete {
            tx.request_body_is_partial();
        }
        intervention = tx.request_body(body);
    }
    let block = match waf.mode {
        WafMode::Block => intervention.map(|i| if (400..600).contains(&i.status) { i.status } else { 403 }),
        _ => None,
    };
    let matches = tx.matches();
    let event = (!matches.is_empty()).then(|| AttackEvent {
        schema: SCHEMA_VERSION,
        kind: Kind::Waf,
        incident_id: cx.incident_id.to_string(),
        time: now_rfc3339(),
        client_ip: Some(cx.client_ip),
        user: None,
        app: cx.app.to_string(),
        method: req.method.as_str().to_string(),
        uri: mask(uri).into_owned(),
        rules: matches
            .iter()
            .map(|m| RuleMatch {
                id: m.rule_id,
                message: m.message.clone(),
                tags: m.tags.clone(),
                severity: m.severity,
                variable: m.matched_var.clone(),
                data: mask(&m.data).into_owned(),
            })
            .collect(),
        anomaly_score: tx.anomaly_score(),
        action: if block.is_some() { Action::Blocked } else { Action::Detected },
        status: block,
        personal_data: None,
    });
    Verdict { block, event }
}

#[cfg(test)]
mod tests {
    use super::*;
    use govgate_policies::{ByteSize, PathPrefix, WafExclusion};

    #[test]
    fn removals_and_exclusions_become_runtime_ctl_rules() {
        let w = Waf {
            remove_rules: vec![920350],
            remove_tags: vec!["attack-protocol".into()],
            exclusions: vec![
                WafExclusion { path: PathPrefix::try_from("/search".to_string()).unwrap(), rule: 942100, target: "ARGS:q".into() },
                WafExclusion { path: PathPrefix::try_from("/upload".to_string()).unwrap(), rule: 920420, target: String::new() },
            ],
            request_body_limit: ByteSize(1024),
            ..Waf::default()
        };
        let s = exclusions_seclang(&w);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "SecAction \"id:1900001,phase:1,pass,nolog,ctl:ruleRemoveById=920350\"");
        assert_eq!(lines[1], "SecAction \"id:1900002,phase:1,pass,nolog,ctl:ruleRemoveByTag=attack-protocol\"");
        assert_eq!(
            lines[2],
            "SecRule REQUEST_FILENAME \"@beginsWith /search\" \"id:1900003,phase:1,pass,nolog,ctl:ruleRemoveTargetById=942100;ARGS:q\""
        );
        assert_eq!(
            lines[3],
            "SecRule REQUEST_FILENAME \"@beginsWith /upload\" \"id:1900004,phase:1,pass,nolog,ctl:ruleRemoveById=920420\""
        );
        // The generated text parses as SecLang.
        Engine::parse_str("exclusions", &s, &EngineConfig::default()).expect("valid SecLang");
    }
}
