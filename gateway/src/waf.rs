//! The WAF at the gateway: compiles the OWASP Core Rule Set once per distinct configuration
//! (shared by the apps that use it, kept across reloads when unchanged), inspects a request's
//! head and body and then the app's response ([`ResponseInspection`]), and turns the matches
//! into [`AttackEvent`]s. The rule engine itself is the
//! `govgate-waf` crate; this module only maps policy and requests onto it.

use crate::attack_log::{now_rfc3339, Action, AttackEvent, Kind, RuleMatch, SCHEMA_VERSION};
use bytes::{Bytes, BytesMut};
use govgate_identity_numbers::mask_for_log as mask;
use govgate_policies::{OversizedBody, Policy, Waf, WafMode};
use govgate_waf::{BodyLimitAction, Engine, EngineConfig, Intervention, Mode, Transaction};
use pingora_http::{RequestHeader, ResponseHeader};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

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

impl<'a> Context<'a> {
    /// The context of a request whose client address may be unknown (shown as `0.0.0.0`).
    pub fn new(incident_id: &'a str, app: &'a str, client_ip: Option<IpAddr>) -> Self {
        Context { incident_id, app, client_ip: client_ip.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)) }
    }
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
/// `body` is only the first part of the request's body (the rest was not read ahead). Unless the
/// request is refused, the transaction comes back for the response phases.
pub fn inspect(
    waf: &AppWaf,
    req: &RequestHeader,
    body: &[u8],
    complete: bool,
    cx: &Context<'_>,
) -> (Verdict, Option<Box<ResponseInspection>>) {
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
    let verdict = verdict(waf, &tx, 0, intervention, false, req, cx);
    let rest = verdict.block.is_none().then(|| Box::new(ResponseInspection::new(tx)));
    (verdict, rest)
}

/// Turns the matches from `from` on, and the engine's interruption, into a verdict.
fn verdict(
    waf: &AppWaf,
    tx: &Transaction,
    from: usize,
    intervention: Option<Intervention>,
    outbound: bool,
    req: &RequestHeader,
    cx: &Context<'_>,
) -> Verdict {
    let block = match waf.mode {
        WafMode::Block => intervention.map(|i| if (400..600).contains(&i.status) { i.status } else { 403 }),
        _ => None,
    };
    let matches = tx.matches().get(from..).unwrap_or_default();
    let uri = req.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
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
        anomaly_score: if outbound { tx.outbound_anomaly_score() } else { tx.anomaly_score() },
        action: if block.is_some() { Action::Blocked } else { Action::Detected },
        status: block,
        personal_data: None,
    });
    Verdict { block, event }
}

/// A request's transaction kept for the response phases: CRS's RESPONSE-95x rules (data
/// leakage: SQL and application error messages, source code, directory listings) and the
/// outbound anomaly score (`outbound_threshold`).
///
/// Phase 3 sees the status and headers: a refusal there replaces the response with the error
/// page. Phase 4 sees the body of the content types the engine inspects (text, HTML, XML,
/// JSON; not compressed ones): the body is held back until it ends or reaches the engine's
/// response-body limit (512 KiB), so that a refused response sends none of it; the
/// connection is then cut, since its status line has gone out already. A longer body passes
/// after its first 512 KiB were inspected.
pub struct ResponseInspection {
    /// Behind a mutex because the request context must be `Sync`; only one phase uses it at a time.
    tx: Mutex<Transaction>,
    /// Matches already reported (those of the request phases and of phase 3).
    reported: usize,
    /// The body held back for phase 4 while it is being collected.
    body: Option<BytesMut>,
}

impl ResponseInspection {
    fn new(tx: Transaction) -> Self {
        let reported = tx.matches().len();
        ResponseInspection { tx: Mutex::new(tx), reported, body: None }
    }

    /// Phase 3 on the upstream's response head; decides whether phase 4 will see the body.
    pub fn headers(&mut self, waf: &AppWaf, resp: &ResponseHeader, req: &RequestHeader, cx: &Context<'_>) -> Verdict {
        let Ok(tx) = self.tx.get_mut() else { return Verdict { block: None, event: None } };
        let headers: Vec<(&[u8], &[u8])> = resp.headers.iter().map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())).collect();
        let intervention = tx.response_headers(resp.status.as_u16(), protocol(resp.version), &headers);
        let v = verdict(waf, tx, self.reported, intervention, true, req, cx);
        self.reported = tx.matches().len();
        let encoded = resp.headers.get(http::header::CONTENT_ENCODING).is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        if v.block.is_none() && tx.wants_response_body() && !encoded {
            self.body = Some(BytesMut::new());
        }
        v
    }

    /// Whether phase 4 is still collecting the body.
    pub fn collecting(&self) -> bool {
        self.body.is_some()
    }

    /// Phase 4: collects `chunk` (taken out of the stream meanwhile); when the body ends or
    /// reaches the limit, inspects it and puts everything collected back into `chunk`.
    pub fn body(&mut self, waf: &AppWaf, chunk: &mut Option<Bytes>, end: bool, req: &RequestHeader, cx: &Context<'_>) -> Option<Verdict> {
        let held = self.body.as_mut()?;
        if let Some(c) = chunk.take() {
            held.extend_from_slice(&c);
        }
        let limit = waf.engine.response_body_limit();
        if !end && held.len() < limit {
            return None;
        }
        let collected = self.body.take().unwrap_or_default().freeze();
        let Ok(tx) = self.tx.get_mut() else {
            // Never lose the app's answer: without a usable transaction it passes uninspected.
            *chunk = Some(collected);
            return None;
        };
        let intervention = tx.response_body(&collected[..collected.len().min(limit)]);
        let v = verdict(waf, tx, self.reported, intervention, true, req, cx);
        self.reported = tx.matches().len();
        if v.block.is_none() {
            *chunk = Some(collected);
        }
        Some(v)
    }
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
