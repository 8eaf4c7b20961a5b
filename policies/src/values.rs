//! Value types that validate themselves while the policy is parsed, so that a bad value is
//! reported by the TOML parser with its exact line and column.

use serde::Deserialize;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A rate such as `"100/s"`, `"5/min"` or `"1000/h"`: `count` events per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Rate {
    pub count: u32,
    pub period: Duration,
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid rate {s:?}: expected COUNT/UNIT such as \"100/s\", \"5/min\" or \"1000/h\"");
        let (count, unit) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!("invalid rate {s:?}: the count must be at least 1"));
        }
        let period = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86400),
            _ => return Err(bad()),
        };
        Ok(Rate { count, period })
    }
}

impl TryFrom<String> for Rate {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            _ => "d",
        };
        write!(f, "{}/{}", self.count, unit)
    }
}

/// A size in bytes, written as an integer or with a unit: `"10MiB"`, `"512KiB"`, `"16kB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SizeRepr")]
pub struct ByteSize(pub u64);

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeRepr {
    Int(u64),
    Text(String),
}

impl TryFrom<SizeRepr> for ByteSize {
    type Error = String;
    fn try_from(r: SizeRepr) -> Result<Self, String> {
        match r {
            SizeRepr::Int(n) => Ok(ByteSize(n)),
            SizeRepr::Text(s) => s.parse(),
        }
    }
}

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 =
            num.parse().map_err(|_| format!("invalid size {s:?}: expected a number with an optional unit (B, KiB, MiB, GiB, kB, MB)"))?;
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "KiB" | "K" => 1 << 10,
            "MiB" | "M" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            "kB" | "KB" => 1000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            other => return Err(format!("invalid size {s:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, kB, MB or GB)")),
        };
        n.checked_mul(mult).map(ByteSize).ok_or_else(|| format!("invalid size {s:?}: too large"))
    }
}

/// A duration written the human way: `"500ms"`, `"10s"`, `"5m"`, `"1h 30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Dur(pub Duration);

impl TryFrom<String> for Dur {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        humantime::parse_duration(&s).map(Dur).map_err(|e| format!("invalid duration {s:?}: {e} (write e.g. \"500ms\", \"10s\", \"5m\")"))
    }
}

impl Dur {
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
}

/// A host name an app answers to: an exact name (`"shebao.gov.cn"`) or a wildcard for every
/// subdomain (`"*.gov.cn"`). Stored lower-case without a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct HostPattern(String);

impl HostPattern {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The suffix (with its leading dot) when this is a wildcard such as `*.gov.cn`.
    pub fn wildcard_suffix(&self) -> Option<&str> {
        self.0.strip_prefix('*')
    }
}

impl TryFrom<String> for HostPattern {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        let name = lower.strip_prefix("*.").unwrap_or(&lower);
        let valid_label =
            |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') && !l.starts_with('-');
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return Err(format!(
                "invalid host {s:?}: expected a DNS name such as \"shebao.gov.cn\" or a wildcard such as \"*.gov.cn\" (no port, no scheme)"
            ));
        }
        Ok(HostPattern(lower))
    }
}

/// A path prefix an app or route is mounted at; always starts with `/`. A prefix matches whole
/// segments: `/api` matches `/api` and `/api/x`, never `/apix`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct PathPrefix(String);

impl PathPrefix {
    pub fn root() -> Self {
        PathPrefix("/".into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Does `path` (already normalised) fall under this prefix?
    pub fn matches(&self, path: &str) -> bool {
        let p = self.0.trim_end_matches('/');
        if p.is_empty() {
            return true;
        }
        path.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl TryFrom<String> for PathPrefix {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if !s.starts_with('/') || s.contains(['?', '#', ' ']) || s.split('/').any(|seg| seg == ".." || seg == ".") {
            return Err(format!("invalid path prefix {s:?}: it must start with '/' and hold no '?', '#', spaces or dot segments"));
        }
        Ok(PathPrefix(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_reject() {
        assert_eq!("100/s".parse::<Rate>().unwrap(), Rate { count: 100, period: Duration::from_secs(1) });
        assert_eq!("5/min".parse::<Rate>().unwrap().period, Duration::from_secs(60));
        assert!("0/s".parse::<Rate>().is_err());
        assert!("10/fortnight".parse::<Rate>().is_err());
        assert!("ten/s".parse::<Rate>().is_err());
        assert_eq!("5/min".parse::<Rate>().unwrap().to_string(), "5/min");
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!("10MiB".parse::<ByteSize>().unwrap().0, 10 << 20);
        assert_eq!("16kB".parse::<ByteSize>().unwrap().0, 16_000);
        assert_eq!("42".parse::<ByteSize>().unwrap().0, 42);
        assert!("10 parsecs".parse::<ByteSize>().is_err());
        assert!("99999999999GiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn hosts_are_lowercased_and_checked() {
        let h = HostPattern::try_from("SheBao.Gov.CN".to_string()).unwrap();
        assert_eq!(h.as_str(), "shebao.gov.cn");
        assert_eq!(HostPattern::try_from("*.gov.cn".to_string()).unwrap().wildcard_suffix(), Some(".gov.cn"));
        for bad in ["", "http://x.cn", "x.cn:8080", "a..b", "-a.cn", "a b"] {
            assert!(HostPattern::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let p = PathPrefix::try_from("/api".to_string()).unwrap();
        assert!(p.matches("/api"));
        assert!(p.matches("/api/v1"));
        assert!(!p.matches("/apix"));
        assert!(!p.matches("/"));
        let slash = PathPrefix::try_from("/api/".to_string()).unwrap();
        assert!(slash.matches("/api/v1"));
        assert!(PathPrefix::root().matches("/anything"));
        assert!(PathPrefix::try_from("api".to_string()).is_err());
        assert!(PathPrefix::try_from("/a/../b".to_string()).is_err());
    }
}
