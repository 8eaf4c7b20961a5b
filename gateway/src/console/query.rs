//! Query-string parameters of the admin API into an [`EventQuery`], with an error naming the
//! parameter that is wrong.

use crate::attack_log::{Action, Kind};
use crate::events::{parse_network, parse_time, EventQuery};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{param}`: {message}")]
pub struct ParamError {
    pub param: String,
    pub message: String,
}

fn err(param: &str, message: impl Into<String>) -> ParamError {
    ParamError { param: param.to_string(), message: message.into() }
}

/// The parameters of a query string, decoded.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Reads `from to ip app rule tag action kind q limit offset`; unknown parameters are refused
/// (a typo must not silently widen a search).
pub fn event_query(query: &str, now_ms: i64, extra: &[&str]) -> Result<EventQuery, ParamError> {
    let mut q = EventQuery::default();
    for (k, v) in pairs(query) {
        if v.trim().is_empty() {
            continue;
        }
        let v = v.trim().to_string();
        match k.as_str() {
            "from" => q.from_ms = Some(parse_time(&v, now_ms).ok_or_else(|| err(&k, "expected RFC 3339, a date or an age like 24h"))?),
            "to" => q.to_ms = Some(parse_time(&v, now_ms).ok_or_else(|| err(&k, "expected RFC 3339, a date or an age like 24h"))?),
            "ip" => q.ip = Some(parse_network(&v).ok_or_else(|| err(&k, "expected an IP address or CIDR network"))?),
            "app" => q.app = Some(v),
            "rule" => q.rule = Some(v.parse().map_err(|_| err(&k, "expected a rule id (a number)"))?),
            "tag" => q.tag = Some(v),
            "action" => q.action = Some(Action::parse(&v).ok_or_else(|| err(&k, "expected blocked, detected or masked"))?),
            "kind" => {
                let names = Kind::ALL.map(Kind::as_str).join(", ");
                q.kind = Some(Kind::parse(&v).ok_or_else(|| err(&k, format!("expected one of {names}")))?)
            }
            "q" => q.text = Some(v),
            "limit" => q.limit = v.parse().map_err(|_| err(&k, "expected a number"))?,
            "offset" => q.offset = v.parse().map_err(|_| err(&k, "expected a number"))?,
            other if extra.contains(&other) => {}
            _ => return Err(err(&k, "unknown parameter")),
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_filter_is_read() {
        let q = event_query("from=2h&ip=203.0.113.9%2F24&app=shebao&rule=942100&tag=attack-sqli&action=blocked&kind=waf&q=%E5%BC%A0&limit=10&offset=20&top=5", 10_000_000, &["top"]).unwrap();
        assert_eq!(q.from_ms, Some(10_000_000 - 7_200_000));
        assert_eq!(q.ip.unwrap().to_string(), "203.0.113.0/24");
        assert_eq!((q.app.as_deref(), q.rule, q.tag.as_deref()), (Some("shebao"), Some(942100), Some("attack-sqli")));
        assert_eq!((q.action, q.kind), (Some(Action::Blocked), Some(Kind::Waf)));
        assert_eq!((q.text.as_deref(), q.limit, q.offset), (Some("张"), 10, 20));
        assert_eq!(event_query("ip=&app=", 0, &[]).unwrap(), EventQuery::default());
    }

    #[test]
    fn bad_parameters_are_named() {
        assert_eq!(event_query("ip=not-an-ip", 0, &[]).unwrap_err().param, "ip");
        assert_eq!(event_query("rule=x", 0, &[]).unwrap_err().param, "rule");
        assert_eq!(event_query("kind=worm", 0, &[]).unwrap_err().param, "kind");
        assert_eq!(event_query("limt=5", 0, &[]).unwrap_err().message, "unknown parameter");
    }
}
