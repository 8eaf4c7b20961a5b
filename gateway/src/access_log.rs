//! One JSON line per request, through `tracing` (target `govgate::access`), written in batches
//! by [`BatchWriter`]. Personal data in the path is masked before it is written, and so are
//! credentials in OpenID Connect queries.

use govgate_identity_numbers::mask_for_log as mask;
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
    tracing::info!(
        target: "govgate::access",
        request_id = r.request_id,
        client_ip = r.client_ip.map(|ip| ip.to_string()),
        listener = r.listener,
        app = r.app,
        method = r.method,
        host = r.host,
        path = %mask(&crate::sso::redact_query(r.path)),
        status = r.status,
        upstream = r.upstream.map(|u| u.to_string()),
        duration_ms = (r.duration.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        bytes_sent = r.bytes_sent,
        bytes_received = r.bytes_received,
        rate_limited = r.rate_limited,
        refused = r.refused,
        error = r.error.as_deref(),
    );
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

/// The writer `tracing` gets for one event (it writes the formatted line in one call).
pub struct BatchLine<'a>(&'a BatchWriter);

impl Write for BatchLine<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchWriter {
    type Writer = BatchLine<'a>;
    fn make_writer(&'a self) -> BatchLine<'a> {
        BatchLine(self)
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
