//! `govgate logs query` and `govgate logs tail`: attack events from the store of the policy's
//! data directory, as a readable table or JSON; and `govgate admin-password`.

use crate::attack_log::{Action, Kind};
use crate::events::service::database_path;
use crate::events::sqlite::SqliteStore;
use crate::events::{format_ms, now_ms, parse_network, parse_time, time_ms, EventQuery, EventStore, StoredEvent};
use clap::{Args, Subcommand};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand)]
pub enum LogsCommand {
    /// Search stored events (newest first).
    Query {
        #[command(flatten)]
        filters: Filters,
        /// Print JSON ({"total", "events"}) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print events as they arrive (Ctrl-C stops).
    Tail {
        #[command(flatten)]
        filters: Filters,
        /// One JSON event per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug, Clone)]
pub struct Filters {
    #[arg(long, short, env = "GOVGATE_CONFIG", default_value = "policies/gateway.toml")]
    pub config: PathBuf,
    /// From this time: RFC 3339, a date, or an age such as 24h.
    #[arg(long)]
    pub from: Option<String>,
    #[arg(long)]
    pub to: Option<String>,
    /// Client address or CIDR network.
    #[arg(long)]
    pub ip: Option<String>,
    #[arg(long)]
    pub app: Option<String>,
    #[arg(long)]
    pub rule: Option<u64>,
    #[arg(long)]
    pub tag: Option<String>,
    /// blocked, detected or masked.
    #[arg(long)]
    pub action: Option<String>,
    /// waf, rate_limit, ban, forbidden, auth_failure or personal_data.
    #[arg(long)]
    pub kind: Option<String>,
    /// Free text (URI, app, address, incident id, user, rule messages).
    #[arg(long, short)]
    pub text: Option<String>,
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Policy(#[from] govgate_policies::LoadError),
    #[error("--{0}: {1}")]
    Flag(&'static str, String),
    #[error(transparent)]
    Store(#[from] crate::events::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Password(String),
}

impl Filters {
    pub fn to_query(&self, now: i64) -> Result<EventQuery, CliError> {
        let time = |flag, v: &Option<String>| {
            v.as_deref()
                .map(|s| {
                    parse_time(s, now).ok_or_else(|| CliError::Flag(flag, format!("{s:?} is not RFC 3339, a date or an age like 24h")))
                })
                .transpose()
        };
        Ok(EventQuery {
            from_ms: time("from", &self.from)?,
            to_ms: time("to", &self.to)?,
            ip: self
                .ip
                .as_deref()
                .map(|s| parse_network(s).ok_or_else(|| CliError::Flag("ip", format!("{s:?} is not an address or CIDR network"))))
                .transpose()?,
            app: self.app.clone(),
            rule: self.rule,
            tag: self.tag.clone(),
            action: self
                .action
                .as_deref()
                .map(|s| Action::parse(s).ok_or_else(|| CliError::Flag("action", format!("{s:?}: expected blocked, detected or masked"))))
                .transpose()?,
            kind: self
                .kind
                .as_deref()
                .map(|s| {
                    Kind::parse(s)
                        .ok_or_else(|| CliError::Flag("kind", format!("{s:?}: expected one of {}", Kind::ALL.map(Kind::as_str).join(", "))))
                })
                .transpose()?,
            text: self.text.clone(),
            limit: self.limit,
            offset: self.offset,
        })
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// Table header and rows for events.
pub fn table_header() -> String {
    format!(
        "{:<20} {:<32} {:<13} {:<8} {:<39} {:<10} {:<42} {}\n",
        "TIME (UTC)", "INCIDENT", "KIND", "ACTION", "CLIENT", "APP", "REQUEST", "RULES"
    )
}

pub fn table_row(e: &StoredEvent) -> String {
    let ev = &e.event;
    let rules = ev.rules.iter().filter(|r| !r.tags.iter().any(|t| t == "anomaly-evaluation")).map(|r| r.id.to_string()).collect::<Vec<_>>();
    let mut time = format_ms(time_ms(&ev.time)).replace('T', " ");
    time.truncate(19);
    format!(
        "{:<20} {:<32} {:<13} {:<8} {:<39} {:<10} {:<42} {}{}\n",
        time,
        cut(&ev.incident_id, 32),
        ev.kind.as_str(),
        ev.action.as_str(),
        ev.client_ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
        cut(&ev.app, 10),
        cut(&format!("{} {}", ev.method, ev.uri), 42),
        cut(&rules.join(","), 40),
        if e.false_positive { " (false positive)" } else { "" }
    )
}

fn open(filters: &Filters) -> Result<(tokio::runtime::Runtime, SqliteStore), CliError> {
    let policy = govgate_policies::load(&filters.config)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store = rt.block_on(SqliteStore::open(&database_path(&policy)))?;
    Ok((rt, store))
}

fn query(filters: &Filters, json: bool) -> Result<(), CliError> {
    let q = filters.to_query(now_ms())?;
    let (rt, store) = open(filters)?;
    let page = rt.block_on(store.query(&q))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&page).unwrap_or_default())?;
    } else {
        out.write_all(table_header().as_bytes())?;
        for e in &page.events {
            out.write_all(table_row(e).as_bytes())?;
        }
        writeln!(out, "{} of {} events (from {})", page.events.len(), page.total, q.offset)?;
    }
    Ok(())
}

fn tail(filters: &Filters, json: bool) -> Result<(), CliError> {
    let mut q = filters.to_query(now_ms())?;
    let (rt, store) = open(filters)?;
    q.limit = q.limit.clamp(1, 500);
    q.offset = 0;
    let mut out = std::io::stdout().lock();
    if !json {
        out.write_all(table_header().as_bytes())?;
        out.flush()?;
    }
    // The newest few first, then everything after the newest time seen.
    let mut seen: HashSet<(String, String, &'static str)> = HashSet::new();
    let mut last = q.from_ms.unwrap_or(i64::MIN);
    loop {
        let mut page = rt.block_on(store.query(&q))?;
        page.events.reverse();
        for e in &page.events {
            let key = (e.event.incident_id.clone(), e.event.time.clone(), e.event.kind.as_str());
            if seen.contains(&key) {
                continue;
            }
            let line = if json { serde_json::to_string(&e.event).unwrap_or_default() + "\n" } else { table_row(e) };
            out.write_all(line.as_bytes())?;
            last = last.max(time_ms(&e.event.time));
            seen.insert(key);
        }
        out.flush()?;
        seen.retain(|(_, t, _)| time_ms(t) >= last);
        q.from_ms = Some(last.max(q.from_ms.unwrap_or(i64::MIN)));
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `govgate logs …`.
pub fn run(command: LogsCommand) -> ExitCode {
    let result = match &command {
        LogsCommand::Query { filters, json } => query(filters, *json),
        LogsCommand::Tail { filters, json } => tail(filters, *json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("govgate: {e}");
            ExitCode::from(2)
        }
    }
}

/// Reads a password (one line; the newline is not part of it) and returns its argon2id hash.
pub fn admin_password(mut input: impl Read) -> Result<String, CliError> {
    let mut s = String::new();
    input.read_to_string(&mut s)?;
    let password = s.strip_suffix('\n').map(|p| p.strip_suffix('\r').unwrap_or(p)).unwrap_or(&s);
    if password.chars().count() < 12 {
        return Err(CliError::Password("the password must have at least 12 characters (give it on standard input)".into()));
    }
    crate::console::auth::hash_password(password).map_err(|e| CliError::Password(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        f: Filters,
    }

    #[test]
    fn flags_become_a_query_and_bad_ones_are_named() {
        let t = T::parse_from(["t", "--ip", "10.0.0.0/8", "--kind", "waf", "--rule", "942100", "--from", "1h", "--limit", "5"]);
        let q = t.f.to_query(10_000_000).unwrap();
        assert_eq!(
            (q.ip.unwrap().to_string(), q.kind, q.rule, q.from_ms, q.limit),
            ("10.0.0.0/8".into(), Some(Kind::Waf), Some(942100), Some(6_400_000), 5)
        );
        let bad = T::parse_from(["t", "--kind", "worm"]).f.to_query(0).unwrap_err().to_string();
        assert!(bad.starts_with("--kind: \"worm\""), "{bad}");
        assert!(T::parse_from(["t", "--ip", "x"]).f.to_query(0).unwrap_err().to_string().starts_with("--ip"));
    }

    #[test]
    fn admin_password_hashes_stdin_without_its_newline() {
        let hash = admin_password("a long passphrase\n".as_bytes()).unwrap();
        assert!(crate::console::auth::verify_password(&hash, "a long passphrase"));
        assert!(admin_password("short\n".as_bytes()).is_err());
    }
}
