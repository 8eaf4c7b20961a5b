//! Per-request state and rule evaluation: collects variables, runs the rules
//! of each phase (chains, `skipAfter`, `setvar`, `ctl`, `capture`,
//! `multiMatch`), records [`MatchEvent`]s and decides the [`Intervention`].
//! Nothing here does I/O, and nothing panics on request data.

use crate::actions::{BodyProcessor, Ctl, Disruptive, IdRange, Mode, SetVar, TxKey};
use crate::body::{self, Pairs};
use crate::engine::{BodyLimitAction, Engine, Scratch};
use crate::macros::{Expansion, Macro, MacroRef, Part};
use crate::operators::atoi;
use crate::prefilter::Prefilter;
use crate::rule::{Gate, Rule};
use crate::tcache::{bit_set, TCache};
use crate::txcheck::TxCheck;
use crate::txvars::{TxStore, TxValue};
use crate::variables::{Exclusion, KeySel, Target, Var};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// A decision to interrupt the request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    /// HTTP status to answer with (e.g. 403).
    pub status: u16,
    /// Rule that decided it.
    pub rule_id: u64,
    /// Phase it happened in.
    pub phase: u8,
    /// `deny`, `drop`, `redirect` or `reject` (body limit).
    pub action: &'static str,
    /// Redirect target for `redirect`.
    pub url: Option<String>,
}

/// One logged rule match.
#[derive(Debug, Clone)]
pub struct MatchEvent {
    /// Rule id.
    pub rule_id: u64,
    /// Phase.
    pub phase: u8,
    /// Expanded `msg`.
    pub message: String,
    /// Expanded `logdata`.
    pub logdata: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Severity 0..7, if set.
    pub severity: Option<u8>,
    /// Name of the variable that matched (e.g. `ARGS:id`).
    pub matched_var: String,
    /// Excerpt of the matched value (at most 200 bytes, lossy UTF-8).
    pub data: String,
    /// Whether the rule's disruptive action is `deny`/`drop`/`redirect`.
    pub disruptive: bool,
}

fn severity_name(s: u8) -> &'static str {
    ["EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"].get(usize::from(s)).copied().unwrap_or("UNKNOWN")
}

impl MatchEvent {
    /// A ModSecurity-style one-line log entry.
    pub fn log_line(&self) -> String {
        let mut s = format!(
            "Matched Data: {} found within {}: [id \"{}\"] [phase \"{}\"] [msg \"{}\"]",
            escape_log(&self.data),
            self.matched_var,
            self.rule_id,
            self.phase,
            escape_log(&self.message)
        );
        if !self.logdata.is_empty() {
            s.push_str(&format!(" [data \"{}\"]", escape_log(&self.logdata)));
        }
        if let Some(sev) = self.severity {
            s.push_str(&format!(" [severity \"{}\"]", severity_name(sev)));
        }
        for t in &self.tags {
            s.push_str(&format!(" [tag \"{t}\"]"));
        }
        s
    }
}

/// Escapes control characters as `\\xHH` so a log entry stays on one line.
fn escape_log(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

fn excerpt(v: &[u8]) -> String {
    let cut = &v[..v.len().min(200)];
    String::from_utf8_lossy(cut).into_owned()
}

/// A value selected for inspection.
struct Val<'a> {
    var: Var,
    key: &'a [u8],
    value: Cow<'a, [u8]>,
}

/// Writes `VAR:key` (or `VAR` for scalars and keyless members) into `out`.
fn write_var_name(out: &mut Vec<u8>, var: Var, key: &[u8]) {
    out.clear();
    out.extend_from_slice(var.name().as_bytes());
    if var.is_collection() && !key.is_empty() {
        out.push(b':');
        out.extend_from_slice(key);
    }
}

/// Writes a match (`VAR:key` and value) into entry `n` of `MATCHED_VARS`, reusing its buffers.
fn record_match(vars: &mut Pairs, n: usize, var: Var, key: &[u8], value: &[u8]) {
    if vars.len() <= n {
        vars.resize_with(n + 1, Default::default);
    }
    if let Some((k, v)) = vars.get_mut(n) {
        write_var_name(k, var, key);
        v.clear();
        v.extend_from_slice(value);
    }
}

/// One value a link matched. The buffers are reused from link to link (see
/// `Transaction::found_scratch`), so a match costs no allocation once warm.
#[derive(Debug)]
struct LinkMatch {
    var: Var,
    key: Vec<u8>,
    /// The (transformed) value that matched.
    value: Vec<u8>,
    /// TX:0..9 from `capture` (only meaningful when `has_caps`).
    caps: Vec<Vec<u8>>,
    has_caps: bool,
}

impl Default for LinkMatch {
    fn default() -> Self {
        LinkMatch { var: Var::Args, key: Vec::new(), value: Vec::new(), caps: Vec::new(), has_caps: false }
    }
}

/// The buffers a transaction reuses from link to link; when it ends they are kept, emptied,
/// for a later transaction (see `engine::ScratchPool`), so that warm transactions do not
/// allocate them again.
#[derive(Debug, Default)]
pub(crate) struct MatchBuffers {
    matched_vars: Pairs,
    found: Vec<LinkMatch>,
    caps: Vec<Vec<u8>>,
}

impl MatchBuffers {
    /// Empties the buffers (keeping their capacity). The entries of `matched_vars` and
    /// `found` are kept with their (emptied) buffers: a transaction only reads those it wrote
    /// (`Transaction::n_matched`, `n_found` in `Transaction::eval_link`). No request data
    /// stays behind.
    pub fn clear(&mut self) {
        for (k, v) in &mut self.matched_vars {
            k.clear();
            v.clear();
        }
        for m in &mut self.found {
            m.key.clear();
            m.value.clear();
            m.caps.clear();
        }
        self.caps.clear();
    }

    /// Whether the buffers are no larger than an ordinary request needs.
    pub fn is_ordinary_size(&self) -> bool {
        const MAX: usize = 1 << 16;
        let bytes = |v: &Vec<u8>| v.capacity();
        let pairs: usize = self.matched_vars.iter().map(|(k, v)| bytes(k) + bytes(v)).sum();
        let found: usize = self.found.iter().map(|m| bytes(&m.key) + bytes(&m.value) + m.caps.iter().map(bytes).sum::<usize>()).sum();
        pairs + found + self.caps.iter().map(bytes).sum::<usize>() <= MAX
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// Number of TX keys set by `capture` (`0`..`9`).
const CAPTURE_KEYS: usize = 10;

/// TX names interned first, in this order, by every engine: the capture keys
/// (so that capture key `i` has slot `i`) and the anomaly scores read by the API.
pub(crate) const TX_PRESET_NAMES: [&str; 13] = [
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
    "6",
    "7",
    "8",
    "9",
    "blocking_inbound_anomaly_score",
    "anomaly_score",
    "blocking_outbound_anomaly_score",
];
/// Slots of the anomaly scores in [`TX_PRESET_NAMES`].
const SLOT_BLOCKING_INBOUND: u32 = 10;
const SLOT_ANOMALY: u32 = 11;
const SLOT_BLOCKING_OUTBOUND: u32 = 12;

/// The rules a `ctl:ruleRemoveTarget…` applies to.
#[derive(Debug)]
enum RuleSel {
    Ids(IdRange),
    Tag(u32),
}

impl RuleSel {
    fn selects(&self, rule: &Rule) -> bool {
        match self {
            RuleSel::Ids(r) => r.0 <= rule.id && rule.id <= r.1,
            RuleSel::Tag(t) => rule.has_tag_id(*t),
        }
    }
}

/// A TX variable named by a `setvar`.
enum TxRef {
    Slot(u32),
    /// A name with no slot (built by a macro at run time).
    Name(String),
}

/// The slot when a macro is exactly one `%{tx.name}` reference.
fn single_tx_ref(m: &Macro) -> Option<u32> {
    match m.parts.as_slice() {
        [Part::Ref(MacroRef::TxSlot(s))] => Some(*s),
        _ => None,
    }
}

/// Per-request state. Create with [`Engine::transaction`]; call the phase
/// methods in order. Not shared between threads (it is `Send`).
#[derive(Debug)]
pub struct Transaction {
    engine: Engine,
    mode: Mode,
    next_phase: u8,
    method: Vec<u8>,
    uri: Vec<u8>,
    uri_raw: Vec<u8>,
    filename: Vec<u8>,
    basename: Vec<u8>,
    query: Vec<u8>,
    protocol: Vec<u8>,
    request_line: Vec<u8>,
    remote_addr: Vec<u8>,
    /// Creation time (ns) and sequence number; `UNIQUE_ID` is formatted from them on use.
    unique_id: (u128, u64),
    req_headers: Pairs,
    cookies: Pairs,
    args_get: Pairs,
    args_post: Pairs,
    files: Pairs,
    file_sizes: Pairs,
    files_combined: usize,
    part_headers: Pairs,
    multipart_strict_error: bool,
    multipart_unmatched_boundary: bool,
    xml_text: Option<Vec<u8>>,
    xml_attrs: Vec<Vec<u8>>,
    req_body: Vec<u8>,
    req_body_len: usize,
    processor: Option<BodyProcessor>,
    force_body_var: bool,
    request_body_access: bool,
    response_body_access: bool,
    reqbody_error: bool,
    /// The body given to phase 2 is only the first part of the request's body.
    body_truncated: bool,
    reqbody_error_msg: Vec<u8>,
    tx: TxStore,
    /// `MATCHED_VARS` of the current rule: the first `n_matched` entries (the
    /// buffers behind them are reused from rule to rule).
    matched_vars: Pairs,
    n_matched: usize,
    /// The entry of `matched_vars` written last: `MATCHED_VAR_NAME` and `MATCHED_VAR`, which
    /// outlive the rule that set them. A later rule's first match overwrites entry 0 and
    /// becomes the last one itself, so the entry is never overwritten while it is read.
    last_matched: Option<usize>,
    /// Reused list of a link's matches (buffers kept between links).
    found_scratch: Vec<LinkMatch>,
    /// Reused capture buffer handed to operators.
    caps_scratch: Vec<Vec<u8>>,
    /// The entry of `matched_vars` that holds the head link's last match (`VAR:key` and
    /// value), for the log entry: later links of the chain add entries after it.
    head_match: Option<usize>,
    resp_status: Vec<u8>,
    resp_protocol: Vec<u8>,
    resp_headers: Pairs,
    resp_body: Vec<u8>,
    resp_content_type: Vec<u8>,
    removed_ids: Vec<IdRange>,
    /// Tag ids (see [`crate::actions::TagRef`]) removed by `ctl:ruleRemoveByTag`.
    removed_tags: Vec<u32>,
    /// Targets removed by `ctl:ruleRemoveTargetBy{Id,Tag}`: the rules (id range or tag id) and the target.
    removed_targets: Vec<(RuleSel, Var, KeySel)>,
    allow_request: bool,
    events: Vec<MatchEvent>,
    intervention: Option<Intervention>,
    detected: Option<Intervention>,
    /// Transformation results for request/response data, keyed by (value address, length, chain id).
    /// Cleared at each phase start, when the underlying data may change.
    tcache: RefCell<TCache>,
}

impl Drop for Transaction {
    /// Hands the memo tables and the TX store back to the engine for the next transaction.
    fn drop(&mut self) {
        use std::mem::take;
        let tcache = take(self.tcache.get_mut());
        let tx = take(&mut self.tx);
        let bufs = MatchBuffers {
            matched_vars: take(&mut self.matched_vars),
            found: take(&mut self.found_scratch),
            caps: take(&mut self.caps_scratch),
        };
        self.engine.inner.scratch_pool.give(Scratch { tcache, tx, bufs });
    }
}

fn split_uri(uri: &[u8]) -> (&[u8], &[u8], &[u8]) {
    // Strip scheme://authority for absolute-form URIs.
    let mut rel = uri;
    if let Some(p) = memchr::memmem::find(uri, b"://") {
        if uri[..p].iter().all(|c| c.is_ascii_alphabetic()) {
            let rest = &uri[p + 3..];
            rel = match rest.iter().position(|c| *c == b'/') {
                Some(i) => &rest[i..],
                None => b"/",
            };
        }
    }
    let (path, query) = match rel.iter().position(|c| *c == b'?') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (rel, &b""[..]),
    };
    (rel, path, query)
}

/// `%XX` decoding without `+` handling (paths).
fn percent_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' && i + 2 < v.len() {
            let h = |c: u8| (c as char).to_digit(16);
            if let (Some(a), Some(b)) = (h(v[i + 1]), h(v[i + 2])) {
                out.push((a * 16 + b) as u8);
                i += 3;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

fn parse_cookies(v: &[u8], out: &mut Pairs) {
    for part in v.split(|c| *c == b';') {
        let part = part.trim_ascii();
        if part.is_empty() {
            continue;
        }
        match part.iter().position(|c| *c == b'=') {
            Some(i) => out.push((part[..i].to_vec(), part[i + 1..].to_vec())),
            None => out.push((part.to_vec(), Vec::new())),
        }
    }
}

fn header<'a>(h: &'a Pairs, name: &str) -> Option<&'a [u8]> {
    h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v.as_slice())
}

fn id_in(ranges: &[IdRange], id: u64) -> bool {
    ranges.iter().any(|(a, b)| *a <= id && id <= *b)
}

/// A formatted integer on the stack (no allocation).
struct ItoaBuf {
    buf: [u8; 24],
    start: usize,
}

impl ItoaBuf {
    fn digits(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(n: i64) -> ItoaBuf {
    let mut b = ItoaBuf { buf: [0; 24], start: 24 };
    let mut m = n.unsigned_abs();
    loop {
        b.start -= 1;
        b.buf[b.start] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        b.start -= 1;
        b.buf[b.start] = b'-';
    }
    b
}

impl Transaction {
    pub(crate) fn new(engine: Engine) -> Transaction {
        let mode = engine.inner.mode;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let request_body_access = engine.inner.request_body_access;
        let response_body_access = engine.inner.response_body_access;
        let scratch = engine.inner.scratch_pool.take(engine.inner.tx_names.len());
        let bufs = scratch.bufs;
        Transaction {
            engine,
            mode,
            next_phase: 1,
            method: Vec::new(),
            uri: Vec::new(),
            uri_raw: Vec::new(),
            filename: Vec::new(),
            basename: Vec::new(),
            query: Vec::new(),
            protocol: Vec::new(),
            request_line: Vec::new(),
            remote_addr: Vec::new(),
            unique_id: (t, n),
            req_headers: Vec::new(),
            cookies: Vec::new(),
            args_get: Vec::new(),
            args_post: Vec::new(),
            files: Vec::new(),
            file_sizes: Vec::new(),
            files_combined: 0,
            part_headers: Vec::new(),
            multipart_strict_error: false,
            multipart_unmatched_boundary: false,
            xml_text: None,
            xml_attrs: Vec::new(),
            req_body: Vec::new(),
            req_body_len: 0,
            processor: None,
            force_body_var: false,
            request_body_access,
            response_body_access,
            reqbody_error: false,
            body_truncated: false,
            reqbody_error_msg: Vec::new(),
            tx: scratch.tx,
            matched_vars: bufs.matched_vars,
            n_matched: 0,
            last_matched: None,
            found_scratch: bufs.found,
            caps_scratch: bufs.caps,
            head_match: None,
            resp_status: Vec::new(),
            resp_protocol: Vec::new(),
            resp_headers: Vec::new(),
            resp_body: Vec::new(),
            resp_content_type: Vec::new(),
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_targets: Vec::new(),
            allow_request: false,
            events: Vec::new(),
            intervention: None,
            detected: None,
            tcache: RefCell::new(scratch.tcache),
        }
    }

    // ----- public API -------------------------------------------------------

    /// Phase 1: request line and headers. `uri` is the request target as
    /// received (origin-form `/a?b=c` or absolute-form), `protocol` e.g. `HTTP/1.1`.
    pub fn request_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        method: &str,
        uri: &[u8],
        protocol: &str,
        headers: &[(K, V)],
        client_ip: &str,
    ) -> Option<Intervention> {
        if self.next_phase > 1 {
            return self.intervention.clone();
        }
        self.method = method.as_bytes().to_vec();
        self.uri_raw = uri.to_vec();
        let (rel, path, query) = split_uri(uri);
        self.uri = rel.to_vec();
        // Like ModSecurity/Coraza, REQUEST_FILENAME is the percent-decoded path.
        self.filename = percent_decode(path);
        self.basename = self.filename.rsplit(|c| *c == b'/').next().unwrap_or(b"").to_vec();
        self.query = query.to_vec();
        self.protocol = protocol.as_bytes().to_vec();
        let mut line = self.method.clone();
        line.push(b' ');
        line.extend_from_slice(uri);
        line.push(b' ');
        line.extend_from_slice(protocol.as_bytes());
        self.request_line = line;
        self.remote_addr = client_ip.as_bytes().to_vec();
        self.args_get = body::urlencoded::parse(query);
        self.req_headers.reserve_exact(headers.len());
        for (k, v) in headers {
            let (k, v) = (k.as_ref(), v.as_ref());
            if k.eq_ignore_ascii_case(b"cookie") {
                parse_cookies(v, &mut self.cookies);
            }
            self.req_headers.push((k.to_vec(), v.to_vec()));
        }
        if let Some(ct) = header(&self.req_headers, "content-type") {
            self.processor = Engine::body_processor_for(&String::from_utf8_lossy(ct));
        }
        self.run_phase(1)
    }

    /// Says that the body about to be given to [`Self::request_body`] is only the first part of
    /// the request's body (the caller read ahead up to its limit). A cut JSON document is then
    /// repaired and inspected up to the cut instead of failing to parse (`REQBODY_ERROR`), which
    /// would leave all of it uninspected; urlencoded and multipart prefixes parse as they are.
    pub fn request_body_is_partial(&mut self) {
        self.body_truncated = true;
    }

    /// Phase 2: the request body (pass an empty slice when there is none).
    /// At most the engine's request body limit is inspected.
    pub fn request_body(&mut self, body: &[u8]) -> Option<Intervention> {
        if self.next_phase == 1 {
            let none: [(&str, &str); 0] = [];
            self.request_headers("GET", b"/", "HTTP/1.1", &none, "");
        }
        if self.next_phase > 2 || self.intervention.is_some() {
            return self.intervention.clone();
        }
        let cfg = &self.engine.inner.cfg;
        let limit = cfg.request_body_limit;
        if body.len() > limit && cfg.request_body_limit_action == BodyLimitAction::Reject && self.mode == Mode::On {
            self.intervention = Some(Intervention { status: 413, rule_id: 0, phase: 2, action: "reject", url: None });
            self.next_phase = 3;
            return self.intervention.clone();
        }
        if self.request_body_access {
            self.body_truncated |= body.len() > limit;
            let body = &body[..body.len().min(limit)];
            self.process_request_body(body);
        }
        self.run_phase(2)
    }

    /// Phase 3: response status and headers.
    pub fn response_headers<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &mut self,
        status: u16,
        protocol: &str,
        headers: &[(K, V)],
    ) -> Option<Intervention> {
        if self.next_phase <= 2 {
            self.request_body(&[]);
        }
        if self.next_phase > 3 || self.intervention.is_some() {
            return self.intervention.clone();
        }
        self.resp_status = status.to_string().into_bytes();
        self.resp_protocol = protocol.as_bytes().to_vec();
        for (k, v) in headers {
            self.resp_headers.push((k.as_ref().to_vec(), v.as_ref().to_vec()));
        }
        self.resp_content_type = header(&self.resp_headers, "content-type").unwrap_or(b"").to_vec();
        self.run_phase(3)
    }

    /// Whether the response body should be passed to [`Self::response_body`]
    /// (body access on and the content type is one of the inspected types).
    pub fn wants_response_body(&self) -> bool {
        if !self.response_body_access {
            return false;
        }
        let ct = String::from_utf8_lossy(&self.resp_content_type).split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        self.engine.inner.cfg.response_body_mime_types.iter().any(|m| m.eq_ignore_ascii_case(&ct))
    }

    /// Phase 4: the response body (at most the response body limit is inspected).
    pub fn response_body(&mut self, body: &[u8]) -> Option<Intervention> {
        if self.next_phase <= 3 {
            let none: [(&str, &str); 0] = [];
            self.response_headers(200, "HTTP/1.1", &none);
        }
        if self.next_phase > 4 || self.intervention.is_some() {
            return self.intervention.clone();
        }
        let cfg = &self.engine.inner.cfg;
        if body.len() > cfg.response_body_limit && cfg.response_body_limit_action == BodyLimitAction::Reject && self.mode == Mode::On {
            self.intervention = Some(Intervention { status: 500, rule_id: 0, phase: 4, action: "reject", url: None });
            self.next_phase = 5;
            return self.intervention.clone();
        }
        if self.wants_response_body() {
            self.resp_body = body[..body.len().min(cfg.response_body_limit)].to_vec();
        }
        self.run_phase(4)
    }

    /// Phase 5 (logging): runs the remaining phases' rules (e.g. CRS correlation).
    pub fn finish(&mut self) {
        if self.next_phase <= 4 && self.intervention.is_none() {
            self.response_body(&[]);
        }
        if self.next_phase <= 5 {
            self.next_phase = 5;
            let _ = self.run_phase(5);
        }
    }

    /// The interruption decided so far (only in `On` mode).
    pub fn intervention(&self) -> Option<&Intervention> {
        self.intervention.as_ref()
    }

    /// What would have interrupted in `DetectionOnly` mode (or the real one in `On`).
    pub fn detected_intervention(&self) -> Option<&Intervention> {
        self.intervention.as_ref().or(self.detected.as_ref())
    }

    /// Logged rule matches, in order.
    pub fn matches(&self) -> &[MatchEvent] {
        &self.events
    }

    /// Ids of logged matches.
    pub fn matched_rule_ids(&self) -> Vec<u64> {
        self.events.iter().map(|e| e.rule_id).collect()
    }

    /// CRS inbound anomaly score (`tx.blocking_inbound_anomaly_score`, or `tx.anomaly_score`).
    pub fn anomaly_score(&self) -> i64 {
        self.tx.get_slot(SLOT_BLOCKING_INBOUND).or_else(|| self.tx.get_slot(SLOT_ANOMALY)).map(atoi).unwrap_or(0)
    }

    /// CRS outbound anomaly score.
    pub fn outbound_anomaly_score(&self) -> i64 {
        self.tx.get_slot(SLOT_BLOCKING_OUTBOUND).map(atoi).unwrap_or(0)
    }

    /// A TX variable (key is case-insensitive).
    pub fn tx_var(&self, key: &str) -> Option<&[u8]> {
        self.tx.get(&self.engine.inner.tx_names, &key.to_ascii_lowercase())
    }

    /// The effective rule engine mode (after `ctl:ruleEngine`).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    // ----- body processing --------------------------------------------------

    fn process_request_body(&mut self, body: &[u8]) {
        // Runs once, before phase 2, on fields that are still empty (see `run_phase`).
        // Should that ever change, forget memoized values rather than risk stale keys.
        if !(self.req_body.is_empty() && self.args_post.is_empty() && self.files.is_empty() && self.xml_text.is_none()) {
            self.tcache.get_mut().clear();
        }
        self.req_body_len = body.len();
        let proc = self.processor;
        // REQUEST_BODY holds the raw body except for the XML and multipart
        // processors (unless forced); CRS rules such as 934210 rely on it for JSON.
        if !matches!(proc, Some(BodyProcessor::Xml) | Some(BodyProcessor::Multipart)) || self.force_body_var {
            self.req_body = body.to_vec();
        }
        if body.is_empty() {
            return;
        }
        match proc {
            Some(BodyProcessor::UrlEncoded) => self.args_post = body::urlencoded::parse(body),
            Some(BodyProcessor::Json) => match if self.body_truncated { body::json::parse_prefix(body) } else { body::json::parse(body) } {
                Ok(p) => self.args_post = p,
                Err(e) => self.body_error(&format!("JSON parsing error: {e}")),
            },
            Some(BodyProcessor::Xml) => {
                let (t, a) = body::xml::parse(body);
                self.xml_text = Some(t);
                self.xml_attrs = a;
            }
            Some(BodyProcessor::Multipart) => {
                let ct = header(&self.req_headers, "content-type").map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default();
                match body::multipart::boundary(&ct)
                    .ok_or_else(|| "multipart: no boundary".to_string())
                    .and_then(|b| body::multipart::parse(body, &b))
                {
                    Ok(mp) => {
                        self.args_post = mp.args;
                        self.files = mp.files;
                        self.files_combined = mp.file_sizes.iter().map(|(_, s)| *s).sum();
                        self.file_sizes = mp.file_sizes.into_iter().map(|(k, s)| (k, s.to_string().into_bytes())).collect();
                        self.part_headers = mp.part_headers;
                        self.multipart_strict_error = mp.strict_error;
                        self.multipart_unmatched_boundary = mp.unmatched_boundary;
                    }
                    Err(e) => {
                        self.multipart_strict_error = true;
                        self.body_error(&e);
                    }
                }
            }
            None => {}
        }
    }

    fn body_error(&mut self, msg: &str) {
        self.reqbody_error = true;
        self.reqbody_error_msg = msg.as_bytes().to_vec();
    }

    // ----- phase execution --------------------------------------------------

    fn run_phase(&mut self, phase: u8) -> Option<Intervention> {
        self.next_phase = phase + 1;
        // Memoized transformations stay valid from phase 1 to phase 2: request data
        // is only added then (the body fields were empty), never replaced or freed,
        // so a (address, length) key cannot be reused by different content. Group
        // unions cover the phase's values and are always recomputed.
        if phase == 2 {
            self.tcache.get_mut().clear_groups();
        } else {
            self.tcache.get_mut().clear();
        }
        if self.mode == Mode::Off || self.intervention.is_some() || (self.allow_request && phase <= 2) {
            return self.intervention.clone();
        }
        let engine = self.engine.clone();
        let list = &engine.inner.phases[usize::from(phase)];
        let mut i = 0;
        while let Some(step) = list.get(i) {
            let Some(rule) = engine.inner.rules.get(step.rule as usize) else { break };
            // A rule whose gate is closed is passed over on its step alone.
            if self.is_removed(step.id, rule) || step.gate.is_some_and(|g| !self.gate_open(g, rule)) {
                i += 1;
                continue;
            }
            if self.eval_head(rule) {
                match &rule.disruptive {
                    Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect(_) => {
                        let (status, action, url) = match &rule.disruptive {
                            Disruptive::Redirect(u) => (rule.actions.status.unwrap_or(302), "redirect", Some(u.clone())),
                            Disruptive::Drop => (rule.actions.status.unwrap_or(403), "drop", None),
                            _ => (rule.actions.status.unwrap_or(403), "deny", None),
                        };
                        let iv = Intervention { status, rule_id: rule.id, phase, action, url };
                        if self.mode == Mode::On {
                            self.intervention = Some(iv);
                            return self.intervention.clone();
                        }
                        if self.detected.is_none() {
                            self.detected = Some(iv);
                        }
                    }
                    Disruptive::Allow => {
                        if phase <= 2 {
                            self.allow_request = true;
                        }
                        return None;
                    }
                    Disruptive::Pass | Disruptive::Block => {}
                }
                if self.mode == Mode::Off {
                    return None;
                }
                if let Some(j) = step.jump {
                    i = j as usize;
                    continue;
                }
            }
            i += 1;
        }
        self.intervention.clone()
    }

    fn is_removed(&self, id: u64, rule: &Rule) -> bool {
        id_in(&self.removed_ids, id) || self.removed_tags.iter().any(|t| rule.has_tag_id(*t))
    }

    /// Evaluates a whole chain; on success runs the head's actions and logs.
    fn eval_head(&mut self, rule: &Rule) -> bool {
        self.n_matched = 0;
        self.head_match = None;
        if !self.eval_link(rule, rule) {
            return false;
        }
        let mut link = rule;
        while let Some(next) = &link.chained {
            if !self.eval_link(next, rule) {
                return false;
            }
            link = next;
        }
        if rule.log {
            let (var, value) = self.head_match.and_then(|i| self.matched_vars.get(i)).map_or((&[][..], &[][..]), |(k, v)| (k, v));
            let matched_var = String::from_utf8_lossy(var).into_owned();
            let data = excerpt(value);
            let message = rule.actions.msg.as_ref().map(|m| self.expand(m, rule)).unwrap_or_default();
            let logdata = rule.actions.logdata.as_ref().map(|m| self.expand(m, rule)).unwrap_or_default();
            self.events.push(MatchEvent {
                rule_id: rule.id,
                phase: rule.phase,
                message: String::from_utf8_lossy(&message).into_owned(),
                logdata: String::from_utf8_lossy(&logdata).into_owned(),
                tags: rule.actions.tags.clone(),
                severity: rule.actions.severity,
                matched_var,
                data,
                disruptive: matches!(rule.disruptive, Disruptive::Deny | Disruptive::Drop | Disruptive::Redirect(_)),
            });
        }
        true
    }

    /// Evaluates one link. For every matching value it sets TX:0..9 (with
    /// `capture`), MATCHED_VAR(S) and runs the link's non-disruptive actions,
    /// like ModSecurity. Returns whether anything matched; the head link's last
    /// match is marked by `head_match` for the log entry of a logged rule.
    fn eval_link(&mut self, rule: &Rule, head: &Rule) -> bool {
        let is_head = std::ptr::eq(rule, head);
        if rule.is_action {
            self.run_link_actions(rule, head);
            return true;
        }
        // A head's gate was checked on its step (`run_phase`). The group's union covers all
        // of the link's targets, so it may also rule out a link some of whose targets a `ctl`
        // removed (fewer values can only match less).
        if !is_head && rule.gate.is_some_and(|g| !self.gate_open(g, rule)) {
            return false;
        }
        if let Some(c) = self.tx_fast_path(rule) {
            return self.eval_tx_check(c, rule, head);
        }
        let mut found = std::mem::take(&mut self.found_scratch);
        let mut tmp_caps = std::mem::take(&mut self.caps_scratch);
        let n_found = self.link_matches(rule, head, &mut found, &mut tmp_caps);
        for m in &found[..n_found] {
            if m.has_caps {
                // TX:0..9 = the groups of this match; keys beyond them are removed.
                // TX_PRESET_NAMES puts capture key i in slot i.
                let n = m.caps.len().min(CAPTURE_KEYS);
                for (slot, c) in m.caps.iter().take(n).enumerate() {
                    self.tx.set_slot(slot as u32, c);
                }
                for slot in n..CAPTURE_KEYS {
                    self.tx.remove_slot(slot as u32);
                }
            }
            record_match(&mut self.matched_vars, self.n_matched, m.var, &m.key, &m.value);
            self.count_match(is_head);
            self.run_link_actions(rule, head);
        }
        self.found_scratch = found;
        self.caps_scratch = tmp_caps;
        n_found > 0
    }

    /// The operator's macro argument, expanded once for all of a link's values (TX does not
    /// change until the link's actions run, after the last value).
    fn link_arg(&self, rule: &Rule, head: &Rule) -> Option<Cow<'_, [u8]>> {
        rule.operator.macro_arg().map(|m| match single_tx_ref(m) {
            Some(slot) => Cow::Borrowed(self.tx.get_slot(slot).unwrap_or_default()),
            None => Cow::Owned(self.expand(m, head).into_vec()),
        })
    }

    /// The generic path of [`Self::eval_link`]: visits the link's values and writes those that
    /// match (with their captures) into `found`; returns how many matched.
    fn link_matches(&self, rule: &Rule, head: &Rule, found: &mut Vec<LinkMatch>, tmp_caps: &mut Vec<Vec<u8>>) -> usize {
        let mut n_found = 0usize;
        let mut extra: SmallVec<[(Var, &KeySel); 4]> = SmallVec::new();
        for (sel, var, key) in &self.removed_targets {
            if sel.selects(head) {
                extra.push((*var, key));
            }
        }
        let arg = self.link_arg(rule, head);
        let arg = arg.as_deref();
        let want_caps = rule.actions.capture && !rule.operator.negated;
        for t in &rule.targets.targets {
            self.visit(t, &rule.targets.exclusions, &extra, &mut |v: Val<'_>| {
                if found.len() == n_found {
                    found.push(LinkMatch::default());
                }
                let f = &mut found[n_found];
                if self.match_value(rule, &v, arg, want_caps, tmp_caps, &mut f.value) {
                    f.var = v.var;
                    f.key.clear();
                    f.key.extend_from_slice(v.key);
                    f.has_caps = want_caps && !tmp_caps.is_empty();
                    if f.has_caps {
                        std::mem::swap(&mut f.caps, tmp_caps);
                    }
                    n_found += 1;
                }
            });
        }
        n_found
    }

    /// Marks the `matched_vars` entry just written (see [`record_match`]) as `MATCHED_VAR`, and
    /// as the head link's last match when the link is the head.
    fn count_match(&mut self, is_head: bool) {
        self.last_matched = Some(self.n_matched);
        if is_head {
            self.head_match = Some(self.n_matched);
        }
        self.n_matched += 1;
    }

    /// The fast path of [`Self::eval_link`] for a link that compares one TX variable (see
    /// [`crate::txcheck`]): the value [`TxCheck::select`] gives is recorded straight into
    /// `MATCHED_VARS` when it matches.
    fn eval_tx_check(&mut self, c: TxCheck, rule: &Rule, head: &Rule) -> bool {
        if !self.tx_check_hit(c, rule, head) {
            return false;
        }
        // Selected again: the operator's argument (borrowing the transaction) is gone now.
        let Some((key, value)) = c.select(&self.tx, &self.engine.inner.tx_names) else { return false };
        record_match(&mut self.matched_vars, self.n_matched, Var::Tx, key, value);
        self.count_match(std::ptr::eq(rule, head));
        self.run_link_actions(rule, head);
        true
    }

    /// The link's TX fast path (see [`crate::txcheck`]), unless a `ctl:ruleRemoveTarget…` of
    /// a TX variable is active: a removed target of another variable (CRS 941010 removes
    /// `REQUEST_FILENAME` on most clean requests) cannot exclude the link's only value.
    fn tx_fast_path(&self, rule: &Rule) -> Option<TxCheck> {
        rule.tx_check.filter(|_| self.removed_targets.iter().all(|(_, var, _)| *var != Var::Tx))
    }

    /// Whether the TX variable of link `rule` matches its operator: on the same TX contents the
    /// same answer as [`Self::link_matches`] finding one match.
    fn tx_check_hit(&self, c: TxCheck, rule: &Rule, head: &Rule) -> bool {
        let Some((_, value)) = c.select(&self.tx, &self.engine.inner.tx_names) else { return false };
        let arg = self.link_arg(rule, head);
        rule.operator.matches(value, arg.as_deref(), None) != rule.operator.negated
    }

    /// False when the prefilter group of link `rule` (its gate `g`) proves that none of its
    /// values can match: the union of the group's value scans lacks all of the link's literals.
    /// The union is computed once per phase for all links of the group; `rule` is read only to
    /// compute a union that no link of the phase needed before.
    fn gate_open(&self, g: Gate, rule: &Rule) -> bool {
        let inner = &self.engine.inner;
        let Some(pf) = inner.prefilter.as_ref() else { return true };
        // A `multiMatch` link is never decided by its group's union (see `Gate::every_step`).
        if !g.every_step {
            if let Some(u) = self.tcache.borrow().group(g.group, pf) {
                return bit_set(u, g.bit);
            }
        }
        // Usually the chain leaves every value as it is, as far as the scan can tell: then the
        // union of the raw values' scans decides, shared by every chain over the same targets
        // (and for `multiMatch`, every prefix of the chain leaves them as they are too).
        let t = inner.unions.set_union(g.targets);
        if self.tcache.borrow().group(t, pf).is_none() {
            self.fill_set_union(g.targets, pf);
        }
        {
            let cache = self.tcache.borrow();
            if cache.union_changes(t) & inner.chains.scan_steps(g.chain_id) == 0 {
                return cache.group(t, pf).is_none_or(|u| bit_set(u, g.bit));
            }
        }
        if g.every_step {
            return true;
        }
        self.fill_union(&rule.targets.targets, &rule.targets.exclusions, g.group, pf, |cache: &mut TCache, raw: &[u8]| {
            let slot = cache.scan_slot(&inner.chains, raw, g.chain_id);
            cache.or_scan_into_group(slot, raw, pf, g.group);
        });
        self.tcache.borrow().group(g.group, pf).is_none_or(|u| bit_set(u, g.bit))
    }

    /// Computes the union of the raw values of target set `ts`: the OR of its atoms' unions
    /// (see [`crate::unions`]), computed once per phase, and of its other targets' values.
    fn fill_set_union(&self, ts: u32, pf: &Prefilter) {
        let plan = &self.engine.inner.unions;
        let Some(set) = plan.set(ts) else { return };
        let t = plan.set_union(ts);
        let add = |cache: &mut TCache, raw: &[u8]| cache.raw_scan_into_group(raw, pf, t);
        self.fill_union(&set.direct.targets, &set.direct.exclusions, t, pf, add);
        for &u in &set.atoms {
            let Some(atom) = plan.atom(u) else {
                self.tcache.borrow_mut().fill_group(t, pf);
                continue;
            };
            // An atom over an empty collection adds nothing: it needs no union of its own.
            if self.is_empty_collection(atom.target.var) {
                continue;
            }
            if self.tcache.borrow().group(u, pf).is_none() {
                let add = |cache: &mut TCache, raw: &[u8]| cache.raw_scan_into_group(raw, pf, u);
                self.fill_union(std::slice::from_ref(&atom.target), &atom.exclusions, u, pf, add);
            }
            self.tcache.borrow_mut().or_group_into(u, t, pf);
        }
    }

    /// Whether `var` is a collection of request or response data that has no members.
    fn is_empty_collection(&self, var: Var) -> bool {
        match var {
            Var::Args | Var::ArgsNames => self.args_get.is_empty() && self.args_post.is_empty(),
            Var::ArgsGet | Var::ArgsGetNames => self.args_get.is_empty(),
            Var::ArgsPost | Var::ArgsPostNames => self.args_post.is_empty(),
            Var::RequestHeaders | Var::RequestHeadersNames => self.req_headers.is_empty(),
            Var::RequestCookies | Var::RequestCookiesNames => self.cookies.is_empty(),
            Var::Files | Var::FilesNames => self.files.is_empty(),
            Var::FilesSizes => self.file_sizes.is_empty(),
            Var::MultipartPartHeaders => self.part_headers.is_empty(),
            Var::ResponseHeaders | Var::ResponseHeadersNames => self.resp_headers.is_empty(),
            Var::Xml => self.xml_text.is_none() && self.xml_attrs.is_empty(),
            _ => false,
        }
    }

    /// Computes union `g` over the values of `targets`: `add` ORs in one value's scan.
    /// Computed values are not memoized; never skip on their account (the union is filled).
    fn fill_union(&self, targets: &[Target], exclusions: &[Exclusion], g: u32, pf: &Prefilter, add: impl Fn(&mut TCache, &[u8])) {
        self.tcache.borrow_mut().begin_group(g, pf);
        for t in targets {
            self.visit(t, exclusions, &[], &mut |v: Val<'_>| {
                let mut cache = self.tcache.borrow_mut();
                match &v.value {
                    Cow::Borrowed(raw) => add(&mut cache, raw),
                    Cow::Owned(_) => cache.fill_group(g, pf),
                }
            });
        }
    }

    /// Runs the rule's transformations and operator on one value; on a match,
    /// writes the (transformed) value that matched into `out` and returns true.
    fn match_value(
        &self,
        rule: &Rule,
        v: &Val<'_>,
        arg: Option<&[u8]>,
        want_caps: bool,
        tmp_caps: &mut Vec<Vec<u8>>,
        out: &mut Vec<u8>,
    ) -> bool {
        let mut matched = |value: &[u8]| {
            out.clear();
            out.extend_from_slice(value);
            true
        };
        let negated = rule.operator.negated;
        let raw: &[u8] = v.value.as_ref();
        // Request/response data is stable within a phase and memoized; TX and
        // MATCHED_* values change while the phase runs.
        let cacheable = matches!(v.value, Cow::Borrowed(_))
            && !matches!(v.var, Var::Tx | Var::MatchedVar | Var::MatchedVars | Var::MatchedVarName | Var::MatchedVarsNames);
        if rule.actions.multi_match {
            // The operator sees the value before the transformations and after every
            // one that changed it: the chain's prefixes, memoized like whole chains.
            if cacheable {
                return self.multi_match_cached(rule, raw, arg, want_caps, tmp_caps, &mut matched);
            }
            let mut cur: Cow<[u8]> = Cow::Borrowed(raw);
            let mut steps = vec![cur.to_vec()];
            for tr in &rule.transforms {
                let next = tr.apply(&cur);
                if next != cur.as_ref() {
                    steps.push(next.clone());
                }
                cur = Cow::Owned(next);
            }
            for s in steps {
                tmp_caps.clear();
                let m = rule.operator.matches(&s, arg, want_caps.then_some(&mut *tmp_caps));
                if m != negated {
                    return matched(&s);
                }
            }
            return false;
        }
        if !cacheable || (rule.chain_id == 0 && rule.pf_bit.is_none()) {
            let mut cur: Cow<[u8]> = Cow::Borrowed(raw);
            for tr in &rule.transforms {
                if let Some(next) = tr.apply_changed(&cur) {
                    cur = Cow::Owned(next);
                }
            }
            tmp_caps.clear();
            let m = rule.operator.matches(&cur, arg, want_caps.then_some(tmp_caps));
            return m != negated && matched(&cur);
        }
        let inner = &self.engine.inner;
        let slot = {
            let mut cache = self.tcache.borrow_mut();
            if let (Some(bit), Some(pf)) = (rule.pf_bit, inner.prefilter.as_ref()) {
                let scan = cache.scan_slot(&inner.chains, raw, rule.chain_id);
                if !cache.has_literal(scan, raw, pf, bit) {
                    return false;
                }
            }
            cache.slot(&inner.chains, raw, rule.chain_id)
        };
        let cache = self.tcache.borrow();
        let input = cache.value(slot, raw);
        tmp_caps.clear();
        let m = rule.operator.matches(input, arg, want_caps.then_some(tmp_caps));
        m != negated && matched(input)
    }

    /// `multiMatch` on a memoized value: the operator runs on the raw value and on
    /// each distinct result along the rule's transformation chain (the chain's
    /// prefix nodes in the [`crate::tcache::ChainTable`]), stopping at the first match.
    fn multi_match_cached(
        &self,
        rule: &Rule,
        raw: &[u8],
        arg: Option<&[u8]>,
        want_caps: bool,
        tmp_caps: &mut Vec<Vec<u8>>,
        matched: &mut dyn FnMut(&[u8]) -> bool,
    ) -> bool {
        let chains = &self.engine.inner.chains;
        let mut path: SmallVec<[u32; 16]> = SmallVec::new();
        let mut node = rule.chain_id;
        path.push(node);
        while let Some(parent) = chains.parent(node) {
            path.push(parent);
            node = parent;
        }
        let mut prev: Option<u32> = None;
        for &node in path.iter().rev() {
            let slot = self.tcache.borrow_mut().slot(chains, raw, node);
            let cache = self.tcache.borrow();
            let input = cache.value(slot, raw);
            // A step that left the value as it was is not evaluated again.
            if prev.is_some_and(|p| p == slot || cache.value(p, raw) == input) {
                prev = Some(slot);
                continue;
            }
            prev = Some(slot);
            tmp_caps.clear();
            if rule.operator.matches(input, arg, want_caps.then_some(&mut *tmp_caps)) != rule.operator.negated {
                return matched(input);
            }
        }
        false
    }

    fn run_link_actions(&mut self, link: &Rule, head: &Rule) {
        for sv in &link.actions.setvars {
            match sv {
                SetVar::Set(k, v) => {
                    let key = self.tx_ref(k, head);
                    match v.literal_ref() {
                        Some(lit) => self.tx_put(&key, lit),
                        None => match single_tx_ref(v) {
                            // `%{tx.x}` alone: copy the value without expanding into a new buffer.
                            Some(src) => {
                                let val = TxValue::from_slice(self.tx.get_slot(src).unwrap_or(b""));
                                self.tx_put(&key, &val);
                            }
                            None => {
                                let val = self.expand(v, head);
                                self.tx_put(&key, &val);
                            }
                        },
                    }
                }
                SetVar::Add(k, v) | SetVar::Sub(k, v) => {
                    let key = self.tx_ref(k, head);
                    let delta = match (v.literal_ref(), single_tx_ref(v)) {
                        (Some(lit), _) => atoi(lit),
                        (None, Some(src)) => self.tx.get_slot(src).map(atoi).unwrap_or(0),
                        (None, None) => atoi(&self.expand(v, head)),
                    };
                    let cur = self.tx_get(&key).map(atoi).unwrap_or(0);
                    let n = if matches!(sv, SetVar::Add(..)) { cur.saturating_add(delta) } else { cur.saturating_sub(delta) };
                    let buf = itoa_buf(n);
                    self.tx_put(&key, buf.digits());
                }
                SetVar::Delete(k) => {
                    let key = self.tx_ref(k, head);
                    match &key {
                        TxRef::Slot(s) => self.tx.remove_slot(*s),
                        TxRef::Name(n) => self.tx.remove(&self.engine.inner.tx_names, n),
                    }
                }
            }
        }
        for c in &link.actions.ctls {
            match c {
                Ctl::RemoveById(r) => self.removed_ids.push(*r),
                Ctl::RemoveByTag(t) => self.removed_tags.push(t.id),
                Ctl::RemoveTargetById(r, v, k) => self.removed_targets.push((RuleSel::Ids(*r), *v, k.clone())),
                Ctl::RemoveTargetByTag(t, v, k) => self.removed_targets.push((RuleSel::Tag(t.id), *v, k.clone())),
                Ctl::RuleEngine(m) => self.mode = *m,
                Ctl::RequestBodyProcessor(p) => self.processor = Some(*p),
                Ctl::ForceRequestBodyVariable(b) => self.force_body_var = *b,
                Ctl::RequestBodyAccess(b) => self.request_body_access = *b,
                Ctl::ResponseBodyAccess(b) => self.response_body_access = *b,
                Ctl::Noop => {}
            }
        }
    }

    /// The TX variable a `setvar` names: its slot, resolved at load time for
    /// literal names, or the (lower-case) expansion of a macro name.
    fn tx_ref(&self, k: &TxKey, head: &Rule) -> TxRef {
        if let Some(s) = k.slot {
            return TxRef::Slot(s);
        }
        let mut name = self.expand(&k.name, head);
        // Lower-cased in place: ASCII case changes cannot make or break UTF-8.
        name.make_ascii_lowercase();
        let name = String::from_utf8(name.into_vec()).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        match self.engine.inner.tx_names.slot(&name) {
            Some(s) => TxRef::Slot(s),
            None => TxRef::Name(name),
        }
    }

    fn tx_get(&self, key: &TxRef) -> Option<&[u8]> {
        match key {
            TxRef::Slot(s) => self.tx.get_slot(*s),
            TxRef::Name(n) => self.tx.get(&self.engine.inner.tx_names, n),
        }
    }

    /// Sets a TX variable, reusing its buffer when present.
    fn tx_put(&mut self, key: &TxRef, val: &[u8]) {
        match key {
            TxRef::Slot(s) => self.tx.set_slot(*s, val),
            TxRef::Name(n) => self.tx.set(&self.engine.inner.tx_names, n, val),
        }
    }

    // ----- variables --------------------------------------------------------

    fn scalar(&self, var: Var) -> Cow<'_, [u8]> {
        let b = |v: &[u8]| -> Cow<'_, [u8]> { Cow::Owned(v.to_vec()) };
        match var {
            Var::RequestMethod => Cow::Borrowed(&self.method),
            Var::RequestUri => Cow::Borrowed(&self.uri),
            Var::RequestUriRaw => Cow::Borrowed(&self.uri_raw),
            Var::RequestFilename => Cow::Borrowed(&self.filename),
            Var::RequestBasename => Cow::Borrowed(&self.basename),
            Var::RequestLine => Cow::Borrowed(&self.request_line),
            Var::RequestProtocol => Cow::Borrowed(&self.protocol),
            Var::RequestBody => Cow::Borrowed(&self.req_body),
            Var::RequestBodyLength => b(self.req_body_len.to_string().as_bytes()),
            Var::QueryString => Cow::Borrowed(&self.query),
            Var::RemoteAddr => Cow::Borrowed(&self.remote_addr),
            Var::UniqueId => Cow::Owned(format!("{:x}{:08x}", self.unique_id.0, self.unique_id.1).into_bytes()),
            Var::ReqbodyProcessor => Cow::Borrowed(self.processor.map(|p| p.name()).unwrap_or("").as_bytes()),
            Var::ReqbodyError => Cow::Borrowed(if self.reqbody_error { b"1" } else { b"0" }),
            Var::ReqbodyErrorMsg => Cow::Borrowed(&self.reqbody_error_msg),
            Var::FilesCombinedSize => b(self.files_combined.to_string().as_bytes()),
            Var::ArgsCombinedSize => {
                let n: usize = self.args_get.iter().chain(self.args_post.iter()).map(|(k, v)| k.len() + v.len()).sum();
                b(n.to_string().as_bytes())
            }
            Var::MultipartStrictError => Cow::Borrowed(if self.multipart_strict_error { b"1" } else { b"0" }),
            Var::MultipartUnmatchedBoundary => Cow::Borrowed(if self.multipart_unmatched_boundary { b"1" } else { b"0" }),
            Var::MultipartFilename => Cow::Borrowed(self.files.last().map(|f| f.1.as_slice()).unwrap_or(b"")),
            Var::MultipartName => Cow::Borrowed(self.files.last().map(|f| f.0.as_slice()).unwrap_or(b"")),
            Var::MatchedVar => Cow::Borrowed(self.last_match().map_or(b"", |(_, v)| v)),
            Var::MatchedVarName => Cow::Borrowed(self.last_match().map_or(b"", |(k, _)| k)),
            Var::ResponseBody => Cow::Borrowed(&self.resp_body),
            Var::ResponseStatus => Cow::Borrowed(&self.resp_status),
            Var::ResponseProtocol => Cow::Borrowed(&self.resp_protocol),
            Var::ResponseContentType => Cow::Borrowed(&self.resp_content_type),
            Var::ResponseContentLength => b(header(&self.resp_headers, "content-length").unwrap_or(b"")),
            Var::Duration => Cow::Borrowed(b"0"),
            _ => Cow::Borrowed(b""),
        }
    }

    /// `MATCHED_VAR_NAME` and `MATCHED_VAR`: the last match of this or an earlier rule.
    fn last_match(&self) -> Option<(&[u8], &[u8])> {
        let (k, v) = self.matched_vars.get(self.last_matched?)?;
        Some((k, v))
    }

    /// Scalars that only exist once set (so `&VAR` counts 0 before).
    fn scalar_present(&self, var: Var) -> bool {
        match var {
            Var::ResponseStatus | Var::ResponseProtocol => !self.resp_status.is_empty(),
            Var::ResponseContentType => !self.resp_content_type.is_empty(),
            Var::ResponseBody => !self.resp_body.is_empty(),
            Var::RequestBody => !self.req_body.is_empty(),
            Var::ReqbodyProcessor => self.processor.is_some(),
            _ => true,
        }
    }

    /// Calls `out` for every value target `t` selects (or once with the count for `&VAR`).
    fn visit<'a>(&'a self, t: &Target, exclusions: &[Exclusion], extra: &[(Var, &KeySel)], out: &mut dyn FnMut(Val<'a>)) {
        if t.count {
            let mut n = 0usize;
            self.visit_values(t, exclusions, extra, &mut |_| n += 1);
            const DIGITS: &[u8; 10] = b"0123456789";
            let value = match DIGITS.get(n..n + 1) {
                Some(d) if n < 10 => Cow::Borrowed(d),
                _ => Cow::Owned(n.to_string().into_bytes()),
            };
            out(Val { var: t.var, key: b"", value });
        } else {
            self.visit_values(t, exclusions, extra, out);
        }
    }

    fn visit_values<'a>(&'a self, t: &Target, exclusions: &[Exclusion], extra: &[(Var, &KeySel)], out: &mut dyn FnMut(Val<'a>)) {
        let excluded = |var: Var, key: &[u8]| -> bool {
            exclusions.iter().any(|e| e.var == var && e.key.matches(key)) || extra.iter().any(|(v, k)| *v == var && k.matches(key))
        };
        let pairs = |var: Var, list: &'a [(Vec<u8>, Vec<u8>)], names: bool, out: &mut dyn FnMut(Val<'a>)| {
            for (k, v) in list {
                if t.key.matches(k) && !excluded(var, k) {
                    out(Val { var, key: k, value: Cow::Borrowed(if names { k } else { v }) });
                }
            }
        };
        match t.var {
            Var::Args => {
                pairs(Var::Args, &self.args_get, false, out);
                pairs(Var::Args, &self.args_post, false, out);
            }
            Var::ArgsNames => {
                pairs(Var::ArgsNames, &self.args_get, true, out);
                pairs(Var::ArgsNames, &self.args_post, true, out);
            }
            Var::ArgsGet => pairs(Var::ArgsGet, &self.args_get, false, out),
            Var::ArgsGetNames => pairs(Var::ArgsGetNames, &self.args_get, true, out),
            Var::ArgsPost => pairs(Var::ArgsPost, &self.args_post, false, out),
            Var::ArgsPostNames => pairs(Var::ArgsPostNames, &self.args_post, true, out),
            Var::RequestHeaders => pairs(Var::RequestHeaders, &self.req_headers, false, out),
            Var::RequestHeadersNames => pairs(Var::RequestHeadersNames, &self.req_headers, true, out),
            Var::RequestCookies => pairs(Var::RequestCookies, &self.cookies, false, out),
            Var::RequestCookiesNames => pairs(Var::RequestCookiesNames, &self.cookies, true, out),
            Var::Files => pairs(Var::Files, &self.files, false, out),
            Var::FilesNames => pairs(Var::FilesNames, &self.files, true, out),
            Var::FilesSizes => pairs(Var::FilesSizes, &self.file_sizes, false, out),
            Var::MultipartPartHeaders => pairs(Var::MultipartPartHeaders, &self.part_headers, false, out),
            Var::ResponseHeaders => pairs(Var::ResponseHeaders, &self.resp_headers, false, out),
            Var::ResponseHeadersNames => pairs(Var::ResponseHeadersNames, &self.resp_headers, true, out),
            Var::MatchedVars => pairs(Var::MatchedVars, &self.matched_vars[..self.n_matched.min(self.matched_vars.len())], false, out),
            Var::MatchedVarsNames => {
                pairs(Var::MatchedVarsNames, &self.matched_vars[..self.n_matched.min(self.matched_vars.len())], true, out)
            }
            Var::Tx => {
                let names = &self.engine.inner.tx_names;
                match (&t.key, t.tx_slot) {
                    (KeySel::Exact(_), Some(s)) => {
                        let key = names.name(s).as_bytes();
                        if let Some(v) = self.tx.get_slot(s) {
                            if !excluded(Var::Tx, key) {
                                out(Val { var: Var::Tx, key, value: Cow::Borrowed(v) });
                            }
                        }
                    }
                    _ => {
                        // The interned names the key selects were found when the engine was built.
                        for &s in &t.tx_slots {
                            if let Some(v) = self.tx.get_slot(s) {
                                let key = names.name(s).as_bytes();
                                if !excluded(Var::Tx, key) {
                                    out(Val { var: Var::Tx, key, value: Cow::Borrowed(v) });
                                }
                            }
                        }
                        for (k, v) in self.tx.iter_unnamed() {
                            if t.key.matches(k.as_bytes()) && !excluded(Var::Tx, k.as_bytes()) {
                                out(Val { var: Var::Tx, key: k.as_bytes(), value: Cow::Borrowed(v) });
                            }
                        }
                    }
                }
            }
            Var::Xml => {
                let attrs = matches!(&t.key, KeySel::Exact(k) if k.as_slice() == b"//@*");
                if attrs {
                    for a in &self.xml_attrs {
                        out(Val { var: Var::Xml, key: b"//@*", value: Cow::Borrowed(a) });
                    }
                } else if let Some(x) = &self.xml_text {
                    out(Val { var: Var::Xml, key: b"/*", value: Cow::Borrowed(x) });
                }
            }
            v => {
                if !excluded(v, b"") && (!t.count || self.scalar_present(v)) {
                    out(Val { var: v, key: b"", value: self.scalar(v) });
                }
            }
        }
    }

    /// First value of `var[:key]`, for macros.
    fn lookup(&self, var: Var, key: Option<&str>, out: &mut Expansion) {
        if !var.is_collection() {
            out.extend_from_slice(&self.scalar(var));
            return;
        }
        let key = key.unwrap_or("");
        if var == Var::Tx {
            if let Some(v) = self.tx.get(&self.engine.inner.tx_names, key) {
                out.extend_from_slice(v);
            }
            return;
        }
        let t = Target { var, key: KeySel::Exact(key.as_bytes().to_vec()), count: false, tx_slot: None, tx_slots: Vec::new() };
        let mut first = true;
        self.visit(&t, &[], &[], &mut |v| {
            if first {
                out.extend_from_slice(&v.value);
                first = false;
            }
        });
    }

    fn expand(&self, m: &Macro, rule: &Rule) -> Expansion {
        m.expand(|r, out| match r {
            MacroRef::Var(v, k) => self.lookup(*v, k.as_deref(), out),
            MacroRef::TxSlot(s) => out.extend_from_slice(self.tx.get_slot(*s).unwrap_or(b"")),
            MacroRef::Rule(f) => match f.as_str() {
                "id" => out.extend_from_slice(rule.id.to_string().as_bytes()),
                "msg" => {
                    if let Some(mm) = &rule.actions.msg {
                        if let Some(l) = mm.as_literal() {
                            out.extend_from_slice(&l);
                        } else {
                            out.extend_from_slice(&self.expand(mm, &Rule { actions: Default::default(), ..rule.clone() }));
                        }
                    }
                }
                "severity" => out.extend_from_slice(rule.actions.severity.map(severity_name).unwrap_or("").as_bytes()),
                "ver" => out.extend_from_slice(rule.actions.ver.as_deref().unwrap_or("").as_bytes()),
                "logdata" => {}
                _ => {}
            },
        })
    }
}

#[cfg(test)]
mod txcheck_tests;
