//! One JSON line per request, through `tracing` (target `govgate::access`), written in batches
//! by [`BatchWriter`]. Personal data in the path is masked before it is written, and so are
//! credentials in OpenID Connect queries.

use govgate_identity_numbers::mask_for_log as mask;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What is logged about one request.
pub struct AccessRecord<'a> {
    pub request_id: &'a str,
    pub client_ip: Option<IpAddr>,
    pub listener: &'a str,
    pub app: &'a str,
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub upstream: Option<std::net::SocketAddr>,
    pub duration: Duration,
    pub bytes_sent: usize,
    pub bytes_received: usize,
    pub rate_limited: bool,
    pub refused: Option<&'a str>,
    pub error: Option<String>,
}

pub fn emit(r: &AccessRecord<'_>) {
    let redacted = crate::sso::redact_query(r.path);
    let path = mask(&redacted);
    // Addresses are written out here, on the stack, and logged as text: formatting them
    // through the JSON escaper piece by piece cost more than the rest of the line.
    let (mut client_buf, mut upstream_buf) = ([0u8; 64], [0u8; 64]);
    let client_ip = r.client_ip.map(|ip| display_in(&ip, &mut client_buf));
    let upstream = r.upstream.map(|a| display_in(&a, &mut upstream_buf));
    tracing::info!(
        target: "govgate::access",
        request_id = r.request_id,
        client_ip,
        listener = r.listener,
        app = r.app,
        method = r.method,
        host = r.host,
        path = &*path,
        status = r.status,
        upstream,
        duration_ms = (r.duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        bytes_sent = r.bytes_sent,
        bytes_received = r.bytes_received,
        rate_limited = r.rate_limited,
        refused = r.refused,
        error = r.error.as_deref(),
    );
}

/// `value` as text in `buf` (an address: at most 58 bytes, an IPv6 socket address with a scope
/// id; a longer text is cut off).
fn display_in<'b>(value: &impl std::fmt::Display, buf: &'b mut [u8; 64]) -> &'b str {
    let mut rest = &mut buf[..];
    let _ = write!(rest, "{value}");
    // `buf` is 64 bytes; `rest` is what writing left of it. Cut at a character boundary if the
    // text did not fit.
    let len = 64 - rest.len();
    match std::str::from_utf8(&buf[..len]) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// Access-log lines are collected in memory and written in batches: by the request whose line
/// fills the buffer, or by a background thread every few hundred milliseconds. That is one
/// `write` per batch instead of one per line, and no thread wake-up per request (which is what a
/// channel to a writer thread costs; on a two-core machine it was a tenth of a request's CPU).
/// Memory is bounded: a request that finds the buffer full writes it out itself, so a blocked
/// output slows requests down instead of growing the buffer.
#[derive(Clone)]
pub struct BatchWriter {
    inner: Arc<Batch>,
}

struct Batch {
    lines: Mutex<Vec<u8>>,
    out: Mutex<Box<dyn Write + Send>>,
    limit: usize,
}

impl BatchWriter {
    /// Writes to `out` whenever `limit` bytes are waiting (and on [`BatchWriter::flush`]).
    pub fn new(out: impl Write + Send + 'static, limit: usize) -> Self {
        let batch = Batch { lines: Mutex::new(Vec::with_capacity(limit)), out: Mutex::new(Box::new(out)), limit };
        BatchWriter { inner: Arc::new(batch) }
    }

    /// Writes out what is waiting. The output lock is taken first, so batches keep their order.
    pub fn flush(&self) -> io::Result<()> {
        let mut out = self.inner.out.lock().unwrap_or_else(|p| p.into_inner());
        let batch = {
            let mut lines = self.inner.lines.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::replace(&mut *lines, Vec::with_capacity(self.inner.limit))
        };
        if !batch.is_empty() {
            out.write_all(&batch)?;
        }
        out.flush()
    }

    /// Starts the thread that flushes every `every`; dropping the guard stops it and flushes.
    pub fn flush_every(&self, every: Duration) -> io::Result<FlushGuard> {
        let stop = Arc::new(AtomicBool::new(false));
        let (writer, stopped) = (self.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("access-log".into()).spawn(move || {
            while !stopped.load(Ordering::Acquire) {
                std::thread::park_timeout(every);
                if let Err(e) = writer.flush() {
                    eprintln!("access log not written: {e}");
                }
            }
        })?;
        Ok(FlushGuard { writer: self.clone(), stop, thread: Some(thread) })
    }

    fn append(&self, line: &[u8]) -> io::Result<()> {
        let full = {
            let mut lines = self.inner.lines.lock().unwrap_or_else(|p| p.into_inner());
            lines.extend_from_slice(line);
            lines.len() >= self.inner.limit
        };
        if full {
            self.flush()?;
        }
        Ok(())
    }
}

/// Stops the flushing thread and writes out the last lines (on exit).
pub struct FlushGuard {
    writer: BatchWriter,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        let _ = self.writer.flush();
    }
}

/// The `tracing` layer that turns `govgate::access` events into JSON lines for a
/// [`BatchWriter`]: `{"timestamp":…,"level":"INFO","target":…, one key per field}`, the shape
/// `tracing-subscriber`'s flattened JSON formatter gives, written straight into one buffer
/// (values are escaped as they are formatted; no intermediate map, no per-field `String`).
pub struct AccessLayer {
    out: BatchWriter,
}

impl AccessLayer {
    pub fn new(out: BatchWriter) -> Self {
        AccessLayer { out }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AccessLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        let line = json_line(event, std::time::SystemTime::now());
        if let Err(e) = self.out.append(line.as_bytes()) {
            eprintln!("access log not written: {e}");
        }
    }
}

/// One event as a JSON line (with its newline).
fn json_line(event: &tracing::Event<'_>, at: std::time::SystemTime) -> String {
    let meta = event.metadata();
    let mut line = JsonLine(String::with_capacity(512));
    let _ = write!(line.0, "{{\"timestamp\":\"{}\",\"level\":\"{}\",\"target\":", humantime::format_rfc3339_micros(at), meta.level());
    line.string(meta.target());
    event.record(&mut line);
    line.0.push_str("}\n");
    line.0
}

/// A JSON object being written; fields are appended as `,"name":value`.
struct JsonLine(String);

impl JsonLine {
    fn key(&mut self, field: &tracing::field::Field) {
        // Field names are Rust identifiers (`request_id`): nothing in them needs escaping.
        self.0.push_str(",\"");
        self.0.push_str(field.name());
        self.0.push_str("\":");
    }

    fn string(&mut self, s: &str) {
        self.0.push('"');
        let _ = JsonEscape(&mut self.0).write_str(s);
        self.0.push('"');
    }
}

impl tracing::field::Visit for JsonLine {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.key(field);
        self.string(value);
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.key(field);
        self.0.push_str(if value { "true" } else { "false" });
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.key(field);
        self.0.push_str(itoa::Buffer::new().format(value));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.key(field);
        self.0.push_str(itoa::Buffer::new().format(value));
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            self.0.push_str(ryu::Buffer::new().format_finite(value));
        } else {
            self.0.push_str("null");
        }
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.key(field);
        self.0.push('"');
        let _ = write!(JsonEscape(&mut self.0), "{value:?}");
        self.0.push('"');
    }
}

/// Escapes what is written through it as the inside of a JSON string (RFC 8259 section 7).
struct JsonEscape<'a>(&'a mut String);

impl std::fmt::Write for JsonEscape<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        // Every byte that needs escaping is ASCII, so slicing at it keeps UTF-8 intact.
        let mut clean = 0;
        for (i, b) in s.bytes().enumerate() {
            let escaped = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f => "",
                _ => continue,
            };
            self.0.push_str(&s[clean..i]);
            if escaped.is_empty() {
                let _ = write!(self.0, "\\u{b:04x}");
            } else {
                self.0.push_str(escaped);
            }
            clean = i + 1;
        }
        self.0.push_str(&s[clean..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that records each `write` call separately.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// What [`emit`] writes through [`AccessLayer`], parsed back.
    fn logged(r: &AccessRecord<'_>) -> serde_json::Value {
        use tracing_subscriber::layer::SubscriberExt as _;
        let out = Recorder::default();
        let w = BatchWriter::new(out.clone(), 1 << 20);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(AccessLayer::new(w.clone())), || emit(r));
        w.flush().unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().concat()).unwrap();
        assert_eq!(text.matches('\n').count(), 1, "one line: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    fn record<'a>(path: &'a str, error: Option<String>) -> AccessRecord<'a> {
        AccessRecord {
            request_id: "r-1",
            client_ip: Some("2001:db8::7".parse().unwrap()),
            listener: "http",
            app: "portal",
            method: "GET",
            host: "portal.localhost",
            path,
            status: 200,
            upstream: None,
            duration: Duration::from_micros(1_234_567),
            bytes_sent: 42,
            bytes_received: 0,
            rate_limited: false,
            refused: None,
            error,
        }
    }

    #[test]
    fn addresses_fit_the_stack_buffer() {
        let longest: std::net::SocketAddr =
            std::net::SocketAddrV6::new("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap(), 65535, 0, u32::MAX).into();
        let mut buf = [0u8; 64];
        assert_eq!(display_in(&longest, &mut buf), longest.to_string());
        let mut buf = [0u8; 64];
        assert_eq!(display_in(&"x".repeat(70), &mut buf), "x".repeat(64), "cut off, not lost entirely");
    }

    #[test]
    fn an_access_line_is_one_json_object_with_every_field() {
        let v = logged(&record("/a?q=1", None));
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["target"], "govgate::access");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
        assert_eq!(v["client_ip"], "2001:db8::7");
        assert_eq!(v["status"], 200);
        assert_eq!(v["duration_ms"], 1234.567);
        assert_eq!(v["rate_limited"], false);
        assert_eq!(v["path"], "/a?q=1");
        assert!(v.get("upstream").is_none() && v.get("refused").is_none(), "absent values are left out: {v}");
    }

    #[test]
    fn quotes_controls_and_non_ascii_are_escaped_not_lost() {
        let error = "bad \"peer\"\\ \n\t\u{1} 中文".to_string();
        let v = logged(&record("/搜索?x=\"", Some(error.clone())));
        assert_eq!(v["error"], error.as_str());
        assert_eq!(v["path"], "/搜索?x=\"");
    }

    #[test]
    fn lines_are_written_in_batches_in_order() {
        let out = Recorder::default();
        let w = BatchWriter::new(out.clone(), 16);
        w.append(b"one\n").unwrap();
        w.append(b"two\n").unwrap();
        assert!(out.0.lock().unwrap().is_empty(), "nothing written before the buffer fills");
        w.append(b"three....\n").unwrap();
        assert_eq!(*out.0.lock().unwrap(), vec![b"one\ntwo\nthree....\n".to_vec()], "one write for the full batch");
        w.append(b"four\n").unwrap();
        w.flush().unwrap();
        assert_eq!(out.0.lock().unwrap().last().unwrap(), b"four\n");
    }

    #[test]
    fn the_guard_flushes_what_is_left() {
        let out = Recorder::default();
        let w = BatchWriter::new(out.clone(), 1 << 20);
        let guard = w.flush_every(Duration::from_secs(3600)).unwrap();
        w.append(b"last\n").unwrap();
        drop(guard);
        assert_eq!(out.0.lock().unwrap().concat(), b"last\n");
    }

    #[test]
    fn the_thread_flushes_periodically() {
        let out = Recorder::default();
        let w = BatchWriter::new(out.clone(), 1 << 20);
        let _guard = w.flush_every(Duration::from_millis(10)).unwrap();
        w.append(b"soon\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while out.0.lock().unwrap().concat() != b"soon\n" {
            assert!(std::time::Instant::now() < deadline, "not flushed within 5 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
