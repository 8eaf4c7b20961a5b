//! Harness for the end-to-end tests: starts the real `govgate` binary on free loopback ports
//! with a policy written for the test, and real upstream HTTP servers that record exactly
//! what reached them (parsed requests and the raw bytes).

pub mod browser;
pub mod web;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// The `govgate` binary under test: `$GOVGATE_BIN`, or the workspace's target directory for
/// the profile these tests were built with.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("GOVGATE_BIN") {
        return PathBuf::from(p);
    }
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target").join(profile).join("govgate");
    assert!(p.is_file(), "{} is missing: build it first (`cargo build -p govgate-gateway --bin govgate`, or `make test`)", p.display());
    p
}

/// The OWASP Core Rule Set: `$GOVGATE_CRS_DIR`, or `shared/crs` beside the repository.
pub fn crs_dir() -> PathBuf {
    let dir = std::env::var("GOVGATE_CRS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/crs"));
    assert!(dir.join("rules").is_dir(), "the OWASP CRS is missing at {} (set GOVGATE_CRS_DIR)", dir.display());
    dir.canonicalize().unwrap_or(dir)
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// Ports handed out by [`free_ports`] or taken by [`claim_listener`] in this process.
static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// `N` distinct free loopback ports, none of them handed out before in this process. Every
/// listener stays open until all are chosen, so one call cannot get a port twice; the record of
/// handed-out ports keeps two tests running in parallel from getting the same port after the
/// first one closed its probe listener and before its server bound the port.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let listeners: Vec<TcpListener> = (0..N).map(|_| claim(&mut handed_out)).collect();
    std::array::from_fn(|i| listeners[i].local_addr().map(|a| a.port()).expect("ephemeral port"))
}

/// A listener (for tokio, so call it inside a runtime) on a free loopback port that
/// [`free_ports`] has not handed out: a server of the tests binding port 0 itself could get the
/// port of a gateway that has not bound it yet (the gateway then fails to start, and the test
/// talks to the wrong server).
pub fn claim_listener() -> tokio::net::TcpListener {
    let l = claim(&mut HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner()));
    l.set_nonblocking(true).expect("non-blocking listener");
    tokio::net::TcpListener::from_std(l).expect("tokio listener")
}

/// Binds an ephemeral loopback port not in `handed_out` and records it there.
fn claim(handed_out: &mut Vec<u16>) -> TcpListener {
    // Refused listeners stay open until the end, so that the next bind gets another port.
    let mut refused = Vec::new();
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = l.local_addr().map(|a| a.port()).expect("ephemeral port");
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return l;
        }
        refused.push(l);
    }
}

/// One request as an upstream received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A real HTTP/1.1 upstream server. Answers `200` with `upstream=NAME path=PATH`.
pub struct Upstream {
    pub addr: SocketAddr,
    pub name: String,
    received: Arc<Mutex<Vec<Received>>>,
    raw: Arc<Mutex<Vec<u8>>>,
    stop: watch::Sender<bool>,
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        Self::start_on(name, 0).await
    }

    pub async fn start_on(name: &str, port: u16) -> Upstream {
        let listener =
            if port == 0 { claim_listener() } else { tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind upstream") };
        let addr = listener.local_addr().expect("upstream address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = watch::channel(false);
        let (r, w, n) = (received.clone(), raw.clone(), name.to_string());
        tokio::spawn(async move {
            let mut stopped_accept = stopped.clone();
            loop {
                tokio::select! {
                    _ = stopped_accept.changed() => return,
                    conn = listener.accept() => {
                        let Ok((sock, _)) = conn else { continue };
                        let (r, w, n, mut stopped) = (r.clone(), w.clone(), n.clone(), stopped.clone());
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = stopped.changed() => {}
                                _ = serve_connection(sock, n, r, w) => {}
                            }
                        });
                    }
                }
            }
        });
        Upstream { addr, name: name.to_string(), received, raw, stop }
    }

    /// Closes the listener and every open connection.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Every byte that reached this upstream, on all connections.
    pub fn raw(&self) -> Vec<u8> {
        self.raw.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve_connection(mut sock: tokio::net::TcpStream, name: String, received: Arc<Mutex<Vec<Received>>>, raw: Arc<Mutex<Vec<u8>>>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        // Read until a full request is buffered.
        let (req, consumed) = loop {
            if let Some(parsed) = parse_request(&buf) {
                break parsed;
            }
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if let Ok(mut g) = raw.lock() {
                        g.extend_from_slice(&chunk[..n]);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        };
        buf.drain(..consumed);
        let mut body = format!("upstream={} path={}", name, req.path);
        // Who single sign-on says the visitor is (the demo apps greet them by name the same way).
        if let Some(user) = req.header("x-govgate-user") {
            body.push_str(&format!(" user={user}"));
            if let Some(n) = req.header("x-govgate-claim-name") {
                body.push_str(&format!(" name={}", percent_encoding::percent_decode_str(n).decode_utf8_lossy()));
            }
        }
        let slow = req.path.contains("slow");
        if let Ok(mut g) = received.lock() {
            g.push(req);
        }
        if slow {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nServer: test-upstream/1.0\r\nX-Powered-By: PHP/5.4\r\n\r\n{}",
            body.len(),
            body
        );
        if sock.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Parses one complete request (head and body) from `buf`.
fn parse_request(buf: &[u8]) -> Option<(Received, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    let headers: Vec<(String, String)> =
        req.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).to_string())).collect();
    let get = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let rest = &buf[head_len..];
    let (body, body_len) = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        decode_chunked(rest)?
    } else {
        let n: usize = get("content-length").and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        if rest.len() < n {
            return None;
        }
        (rest[..n].to_vec(), n)
    };
    let r = Received { method: req.method?.to_string(), path: req.path?.to_string(), headers, body };
    Some((r, head_len + body_len))
}

fn decode_chunked(mut data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let start = data.len();
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            let end = data.windows(2).position(|w| w == b"\r\n")?;
            data = &data[end + 2..];
            return Some((body, start - data.len()));
        }
        if data.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A running gateway.
pub struct Gateway {
    child: Child,
    pub http_port: u16,
    pub https_port: u16,
    pub admin_port: u16,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    listeners: Listeners,
}

/// How the test listeners are set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listeners {
    /// The plain-HTTP listener redirects to the TLS one.
    pub redirect: bool,
    /// The TLS listener asks for client certificates (`client_certs = "optional"`).
    pub client_certs: bool,
}

/// The server, listener and admin sections every test policy gets, followed by the test's own
/// sections; `{HTTP}`, `{HTTPS}` and `{ADMIN}` in them are replaced by the ports chosen.
fn frame(body: &str, http: u16, https: u16, admin: u16, listeners: Listeners) -> String {
    let redirect = if listeners.redirect { "redirect_to = \"https\"" } else { "" };
    let client_certs = if listeners.client_certs { "client_certs = \"optional\"" } else { "" };
    let head = format!(
        r#"[server]
threads = 2
data_dir = "data"
shutdown_timeout = "5s"

[[listeners]]
name = "http"
address = "127.0.0.1:{http}"
{redirect}

[[listeners]]
name = "https"
address = "127.0.0.1:{https}"
tls = true
{client_certs}

[admin]
address = "127.0.0.1:{admin}"
"#
    );
    let body = body.replace("{HTTP}", &http.to_string()).replace("{HTTPS}", &https.to_string()).replace("{ADMIN}", &admin.to_string());
    format!("{head}\n{body}")
}

impl Gateway {
    /// Writes `policy` (apps and any other sections) and starts `govgate serve` on it.
    pub fn start(policy: &str) -> Gateway {
        Self::launch(policy, Listeners::default())
    }

    /// Like [`Gateway::start`], with the plain-HTTP listener redirecting to the TLS one.
    pub fn start_redirecting(policy: &str) -> Gateway {
        Self::launch(policy, Listeners { redirect: true, ..Default::default() })
    }

    /// Like [`Gateway::start`], with the TLS listener asking for client certificates.
    pub fn start_with_client_certs(policy: &str) -> Gateway {
        Self::launch(policy, Listeners { client_certs: true, ..Default::default() })
    }

    fn launch(policy: &str, listeners: Listeners) -> Gateway {
        Self::launch_with(policy, listeners, None)
    }

    /// Like [`Gateway::start`], sharing `data` (another gateway's data directory): a second
    /// instance of one deployment.
    pub fn start_sharing_data(policy: &str, data: &Path) -> Gateway {
        Self::launch_with(policy, Listeners::default(), Some(data))
    }

    fn launch_with(policy: &str, listeners: Listeners, data: Option<&Path>) -> Gateway {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(data) = data {
            std::os::unix::fs::symlink(data, dir.path().join("data")).expect("link the shared data directory");
        }
        let [http_port, https_port, admin_port] = free_ports::<3>();
        let config = dir.path().join("gateway.toml");
        std::fs::write(&config, frame(policy, http_port, https_port, admin_port, listeners)).expect("write policy");
        let child = Self::spawn(dir.path(), &config);
        let mut gw = Gateway { child, http_port, https_port, admin_port, dir, config, listeners };
        gw.wait_ready();
        gw
    }

    fn spawn(dir: &Path, config: &Path) -> Child {
        let append = |name: &str| std::fs::OpenOptions::new().create(true).append(true).open(dir.join(name)).expect("log file");
        Command::new(binary())
            .args(["serve", "--config"])
            .arg(config)
            .env("GOVGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(append("access.log"))
            .stderr(append("gateway.log"))
            .spawn()
            .expect("start govgate")
    }

    /// Stops the gateway with SIGTERM (drain, clean exit) and starts it again on the same
    /// policy, ports and data directory.
    pub fn restart(&mut self) {
        self.restart_after("TERM");
    }

    /// Stops the gateway with the signal `name` (`TERM`, or `INT` for an exit without draining),
    /// expects a clean exit, and starts it again as [`Gateway::restart`] does.
    pub fn restart_after(&mut self, name: &str) {
        self.signal(name);
        assert!(self.wait_exit(Duration::from_secs(30)).is_some_and(|s| s.success()), "no clean exit:\n{}", self.log());
        self.child = Self::spawn(self.dir.path(), &self.config);
        self.wait_ready();
    }

    /// The path of the gateway's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Waits until the three listeners accept connections, and fails at once, with the
    /// gateway's log, if the process exits meanwhile: when another server holds one of its
    /// ports, that server answers the probe while the gateway exits on the failed bind.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let up = |port| TcpStream::connect(("127.0.0.1", port)).is_ok();
        while Instant::now() < deadline {
            let all_up = up(self.http_port) && up(self.https_port) && up(self.admin_port);
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("govgate exited while starting ({status}):\n{}", self.log());
            }
            if all_up {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("govgate did not start within 30 s:\n{}", self.log());
    }

    /// What the gateway wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// The JSON access-log lines written so far. The gateway writes them in batches at least
    /// every 200 ms, so this first waits for one more batch.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        std::thread::sleep(Duration::from_millis(400));
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.http_port, path)
    }

    /// Replaces the policy file and sends SIGHUP.
    pub fn reload(&self, policy: &str) {
        std::fs::write(&self.config, frame(policy, self.http_port, self.https_port, self.admin_port, self.listeners))
            .expect("write policy");
        self.signal("HUP");
    }

    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} failed");
    }

    /// Waits for the process to exit and returns whether it exited successfully.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The attack events the gateway wrote (JSON lines in its data directory).
    pub fn attack_events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("data/attack-events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The Prometheus text from the admin listener.
    pub fn metrics(&self) -> String {
        let (status, _, body) = raw_request(self.admin_port, b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        assert_eq!(status, 200);
        body
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- govgate log ---\n{}", self.log());
        }
    }
}

/// A client that sends every name to the gateway's loopback address.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// [`raw_request`] off the async runtime.
pub async fn raw(port: u16, bytes: &[u8]) -> (u16, String, String) {
    let bytes = bytes.to_vec();
    tokio::task::spawn_blocking(move || raw_request(port, &bytes)).await.expect("raw request task")
}

/// Sends raw bytes and reads the whole answer until the server closes or 5 s pass.
/// Returns (status, head, body); status 0 when nothing came back.
pub fn raw_request(port: u16, bytes: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(bytes).expect("send");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    split_response(&out)
}

pub fn split_response(out: &[u8]) -> (u16, String, String) {
    let text = String::from_utf8_lossy(out).to_string();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").map(|(h, b)| (h.to_string(), b.to_string())).unwrap_or((text.clone(), String::new()));
    (status, head, body)
}

/// Reads one response head from a stream (for tests that keep the connection).
pub fn read_status_line(s: &TcpStream) -> Option<String> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    (!line.is_empty()).then_some(line)
}

#[cfg(test)]
mod tests {
    /// 3 000 of the ~28 000 ephemeral ports handed out: a listener bound to port 0 without the
    /// check would land on one of them about once in ten tries.
    #[tokio::test]
    async fn claimed_listeners_never_take_a_handed_out_port() {
        let handed_out: std::collections::HashSet<u16> = (0..3000).map(|_| super::free_port()).collect();
        for _ in 0..1000 {
            let port = super::claim_listener().local_addr().unwrap().port();
            assert!(!handed_out.contains(&port), "port {port} was handed out to a gateway");
        }
    }

    /// Six hundred ports from many calls: without the record of handed-out ports, the kernel
    /// gives a released port out again long before that (the birthday bound over its ~28 000
    /// ephemeral ports).
    #[test]
    fn free_ports_never_hands_out_a_port_twice() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            for port in super::free_ports::<3>() {
                assert!(seen.insert(port), "port {port} handed out twice");
            }
        }
    }
}
