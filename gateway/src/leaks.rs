//! Personal data leaving in responses: resident identity numbers (valid check digit), mobile
//! numbers and bank-card numbers (Luhn) are found in text responses as they stream through,
//! and, per the app's policy, recorded, masked in place, or stopped. A native govgate rule
//! beyond CRS; its events carry rule ids 1910001–1910003.

use crate::attack_log::{Action, AttackEvent, Kind, PersonalDataCounts, RuleMatch};
use bytes::Bytes;
use govgate_identity_numbers::{Counts, Scanner};
use govgate_policies::PersonalData;
use pingora_http::ResponseHeader;
use std::net::IpAddr;

pub const RULE_RESIDENT_ID: u64 = 1_910_001;
pub const RULE_MOBILE: u64 = 1_910_002;
pub const RULE_BANK_CARD: u64 = 1_910_003;

/// Whether a response can be scanned: text-like and not compressed.
pub fn scannable(resp: &ResponseHeader) -> bool {
    let encoded = resp.headers.get(http::header::CONTENT_ENCODING).is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    let Some(ct) = resp.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let media = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let textual = media.starts_with("text/")
        || media.ends_with("+json")
        || media.ends_with("+xml")
        || matches!(
            media.as_str(),
            "application/json" | "application/xml" | "application/javascript" | "application/x-www-form-urlencoded"
        );
    textual && !encoded
}

/// The response was stopped: it was about to carry personal data.
#[derive(Debug)]
pub struct Stopped;

/// Scans one response.
pub struct LeakGuard {
    scanner: Scanner,
    action: PersonalData,
    stopped: bool,
}

impl LeakGuard {
    pub fn new(action: PersonalData) -> Self {
        LeakGuard { scanner: Scanner::default(), action, stopped: false }
    }

    /// Passes one body chunk through; with `block`, fails at the first finding (the chunk that
    /// holds it is not sent).
    pub fn filter(&mut self, body: &mut Option<Bytes>, end: bool) -> Result<(), Stopped> {
        let chunk = body.take().unwrap_or_default();
        let (out, findings) = self.scanner.push(&chunk, end, self.action == PersonalData::Mask);
        if self.action == PersonalData::Block && !findings.is_empty() {
            self.stopped = true;
            return Err(Stopped);
        }
        *body = (!out.is_empty() || end).then(|| Bytes::from(out));
        Ok(())
    }

    pub fn counts(&self) -> Counts {
        self.scanner.counts
    }

    /// The event for this response, when it carried personal data.
    pub fn event(&self, incident_id: &str, app: &str, client_ip: Option<IpAddr>, method: &str, uri: &str) -> Option<AttackEvent> {
        let c = self.scanner.counts;
        if c.total() == 0 {
            return None;
        }
        let rule = |id, n: u32, what: &str| RuleMatch {
            id,
            message: format!("Response carries {n} {what}"),
            tags: vec!["govgate".into(), "data-leakage".into(), "personal-data".into()],
            severity: Some(2),
            variable: "RESPONSE_BODY".into(),
            data: String::new(),
        };
        let mut rules = Vec::new();
        if c.resident_ids > 0 {
            rules.push(rule(RULE_RESIDENT_ID, c.resident_ids, "resident identity number(s)"));
        }
        if c.mobiles > 0 {
            rules.push(rule(RULE_MOBILE, c.mobiles, "mobile number(s)"));
        }
        if c.bank_cards > 0 {
            rules.push(rule(RULE_BANK_CARD, c.bank_cards, "bank card number(s)"));
        }
        Some(AttackEvent {
            rules,
            action: match (self.action, self.stopped) {
                (_, true) => Action::Blocked,
                (PersonalData::Mask, _) => Action::Masked,
                _ => Action::Detected,
            },
            status: None,
            personal_data: Some(PersonalDataCounts { resident_ids: c.resident_ids, mobiles: c.mobiles, bank_cards: c.bank_cards }),
            ..AttackEvent::refusal(Kind::PersonalData, incident_id, client_ip, app, method, uri, 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(ct: &str, encoding: Option<&str>) -> ResponseHeader {
        let mut r = ResponseHeader::build(200, None).unwrap();
        r.insert_header("content-type", ct).unwrap();
        if let Some(e) = encoding {
            r.insert_header("content-encoding", e).unwrap();
        }
        r
    }

    #[test]
    fn only_uncompressed_text_is_scanned() {
        assert!(scannable(&resp("text/html; charset=utf-8", None)));
        assert!(scannable(&resp("application/json", None)));
        assert!(scannable(&resp("application/problem+json", Some("identity"))));
        assert!(!scannable(&resp("text/html", Some("gzip"))));
        assert!(!scannable(&resp("image/png", None)));
    }

    #[test]
    fn mask_detect_and_block() {
        let body = "<td>11010519491231002X</td><td>13812345678</td>";
        let run = |action| {
            let mut g = LeakGuard::new(action);
            let mut b = Some(Bytes::from(body));
            let r = g.filter(&mut b, true);
            (r.is_ok(), b.map(|b| String::from_utf8_lossy(&b).to_string()), g.event("i", "a", None, "GET", "/"))
        };
        let (ok, out, ev) = run(PersonalData::Mask);
        assert!(ok);
        assert_eq!(out.unwrap(), "<td>110105********002X</td><td>138****5678</td>");
        let ev = ev.unwrap();
        assert_eq!(ev.action, Action::Masked);
        assert_eq!(ev.personal_data.unwrap().resident_ids, 1);
        assert_eq!(ev.rules.iter().map(|r| r.id).collect::<Vec<_>>(), vec![RULE_RESIDENT_ID, RULE_MOBILE]);
        let (ok, out, ev) = run(PersonalData::Detect);
        assert!(ok && out.unwrap() == body && ev.unwrap().action == Action::Detected);
        let (ok, _, ev) = run(PersonalData::Block);
        assert!(!ok);
        assert_eq!(ev.unwrap().action, Action::Blocked);
    }
}
