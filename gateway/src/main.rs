//! The `govgate` command: run the gateway, check a policy, or start the demo.

use clap::{Parser, Subcommand};
use govgate_gateway::{access_log, certs_cli};
use sha2::Digest;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::prelude::*;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ACCESS: &str = "govgate::access";

#[derive(Parser)]
#[command(name = "govgate", version, about = "Security and unified-identity gateway for government web applications")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (SIGHUP reloads the policy, SIGTERM drains and exits).
    Serve {
        #[arg(long, short, env = "GOVGATE_CONFIG", default_value = "policies/gateway.toml")]
        config: PathBuf,
    },
    /// Validate a policy file; prints each error with file, line and column.
    Check {
        #[arg(long, short, env = "GOVGATE_CONFIG", default_value = "policies/gateway.toml")]
        config: PathBuf,
    },
    /// Start the gateway with the demo policy and two demo government apps on loopback.
    Demo {
        #[arg(long, short, default_value = "policies/demo.toml")]
        config: PathBuf,
    },
    /// Certificates: validate a certificate and its chain (RFC 5280, SM2 included).
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
    /// Make an API key for the certificate API: prints the key (give it to the caller) and its
    /// SHA-256 (put it in [certs] api_keys_sha256).
    ApiKey,
    /// Read the console password from standard input and print its argon2id hash (put it in
    /// [admin] password_argon2).
    AdminPassword,
    /// Attack events in the store of the policy's data directory.
    Logs {
        #[command(subcommand)]
        command: govgate_gateway::logs_cli::LogsCommand,
    },
    /// Accounts of the built-in identity provider: add, list, lock, unlock, set-password.
    User {
        #[command(subcommand)]
        command: govgate_gateway::idp_cli::UserCommand,
    },
    /// Relying parties of the built-in identity provider: add (prints a new secret once), list.
    Client {
        #[command(subcommand)]
        command: govgate_gateway::idp_cli::ClientCommand,
    },
    /// Electronic signatures: verify a CMS signature.
    Esign {
        #[command(subcommand)]
        command: EsignCommand,
    },
    /// A demo PKI for certificate login and e-signatures.
    Pki {
        #[command(subcommand)]
        command: PkiCommand,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Make a root CA, an issuing CA with its CRL, a server, a citizen (with a PKCS#12 file for
    /// a browser) and a document-signing certificate, SM2 counterparts, and a trust directory.
    Init {
        /// Where (default: the policy's data directory, `pki/`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The policy whose data directory and app hosts are used.
        #[arg(long, short, env = "GOVGATE_CONFIG", default_value = "policies/gateway.toml")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum CertCommand {
    /// Validate CERT (PEM; certificates after the first are offered as intermediates).
    Verify {
        cert: PathBuf,
        /// More intermediate certificates (PEM), in any order.
        #[arg(long)]
        chain: Vec<PathBuf>,
        /// Trust anchors: a PEM file, or a directory with anchors/, intermediates/ and crl/.
        #[arg(long, default_value = "policies/trust")]
        trust: PathBuf,
        /// What the certificate is for: tls-client, document-signing, time-stamping or any.
        #[arg(long, default_value = "any")]
        purpose: String,
        /// Validate at this time (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum EsignCommand {
    /// Verify the detached CMS signature SIG over the file DATA.
    Verify {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        sig: PathBuf,
        #[arg(long, default_value = "policies/trust")]
        trust: PathBuf,
        #[arg(long)]
        at: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Runs `cert verify` / `esign verify`: prints the report, exit 0 only for TOTAL_PASSED.
fn certificates(command: Command) -> Result<bool, certs_cli::CliError> {
    use govgate_certs::ValidationOptions;
    // Written with errors ignored: `govgate cert verify … | head` must not panic.
    let print = |json: bool, value: serde_json::Value, text: String| {
        use std::io::Write;
        let out = if json { serde_json::to_string_pretty(&value).unwrap_or_default() + "\n" } else { text };
        let _ = std::io::stdout().write_all(out.as_bytes());
    };
    match command {
        Command::Cert { command: CertCommand::Verify { cert, chain, trust, purpose, at, json } } => {
            let store = certs_cli::load_trust(&trust)?;
            let opts = ValidationOptions::at(certs_cli::validation_time(at.as_deref())?).purpose(certs_cli::parse_purpose(&purpose)?);
            let report = certs_cli::cert_verify(&cert, &chain, &store, &opts)?;
            print(json, serde_json::to_value(&report).unwrap_or_default(), certs_cli::certificate_text(&report));
            Ok(report.passed())
        }
        Command::Esign { command: EsignCommand::Verify { data, sig, trust, at, json } } => {
            let store = certs_cli::load_trust(&trust)?;
            let opts = ValidationOptions::at(certs_cli::validation_time(at.as_deref())?);
            let reports = certs_cli::esign_verify(&data, &sig, &store, &opts)?;
            print(json, serde_json::to_value(&reports).unwrap_or_default(), certs_cli::signature_text(&reports));
            Ok(!reports.is_empty() && reports.iter().all(|r| r.passed()))
        }
        _ => Ok(false),
    }
}

/// Access-log lines go to stdout in batches (at most 64 KiB waiting, or 200 ms); the returned
/// guard writes out the last ones when the process exits.
fn init_logging() -> Option<access_log::FlushGuard> {
    let stdout = access_log::BatchWriter::new(std::io::stdout(), 64 * 1024);
    let guard = stdout.flush_every(std::time::Duration::from_millis(200)).ok();
    let access = access_log::AccessLayer::new(stdout).with_filter(Targets::new().with_target(ACCESS, Level::INFO));
    // Filters that state their most verbose level let `log` records below it (pingora's debug
    // and trace lines) be dropped at the call site instead of reaching the subscriber.
    let filter = EnvFilter::try_from_env("GOVGATE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let filter = match format!("{ACCESS}=off").parse() {
        Ok(no_access) => filter.add_directive(no_access),
        Err(_) => filter,
    };
    let diagnostics =
        tracing_subscriber::fmt::layer().with_ansi(std::io::stderr().is_terminal()).with_writer(std::io::stderr).with_filter(filter);
    tracing_subscriber::registry().with(access).with(diagnostics).init();
    guard
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::ApiKey => {
            let key = format!("gk_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
            let digest = sha2::Sha256::digest(key.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            println!("key:    {key}\nsha256: {hex}");
            ExitCode::SUCCESS
        }
        Command::AdminPassword => match govgate_gateway::logs_cli::admin_password(std::io::stdin().lock()) {
            Ok(hash) => {
                println!("{hash}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("govgate: {e}");
                ExitCode::from(2)
            }
        },
        Command::Logs { command } => govgate_gateway::logs_cli::run(command),
        Command::User { command } => govgate_gateway::idp_cli::run_user(command),
        Command::Client { command } => govgate_gateway::idp_cli::run_client(command),
        Command::Pki { command: PkiCommand::Init { dir, config } } => {
            let (dir, hosts) = match dir {
                Some(d) => (d, Vec::new()),
                None => match govgate_policies::load(&config) {
                    Ok(p) => (p.data_dir().join("pki"), govgate_gateway::state::GatewayState::tls_names(&p)),
                    Err(e) => {
                        eprintln!("{e}\n(or name the directory: govgate pki init --dir DIR)");
                        return ExitCode::FAILURE;
                    }
                },
            };
            match govgate_gateway::pki::init(&dir, &hosts) {
                Ok(pki) => {
                    println!("{}", pki_summary(&pki));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("govgate: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        command @ (Command::Cert { .. } | Command::Esign { .. }) => match certificates(command) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("govgate: {e}");
                ExitCode::from(2)
            }
        },
        Command::Check { config } => match govgate_policies::load(&config) {
            Ok(p) => {
                println!("{}: ok ({} listeners, {} apps)", config.display(), p.listeners.len(), p.apps.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { config } => {
            let _log = init_logging();
            match govgate_gateway::server::build(&config) {
                Ok((server, shared)) => {
                    govgate_gateway::server::run(server, shared);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("govgate: not starting: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo { config } => {
            let _log = init_logging();
            // The demo PKI first: the demo policy's [certs] trust is its trust directory.
            let pki = match govgate_gateway::pki::data_dir_of(&config).map(|d| d.join("pki")) {
                Some(dir) if !dir.join("root.pem").exists() => match govgate_gateway::pki::init(&dir, &[]) {
                    Ok(p) => Some(p.dir),
                    Err(e) => {
                        eprintln!("govgate: the demo PKI could not be made: {e}");
                        return ExitCode::FAILURE;
                    }
                },
                other => other,
            };
            let (mut server, shared) = match govgate_gateway::server::build(&config) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("govgate: not starting the demo: {e:#}\n(run it from the repository root: make demo)");
                    return ExitCode::FAILURE;
                }
            };
            for s in govgate_gateway::demo::services() {
                server.add_service(s);
            }
            let accounts = match govgate_gateway::demo::ensure_demo_accounts(&shared) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("govgate: the demo accounts could not be created: {e}");
                    return ExitCode::FAILURE;
                }
            };
            print_demo_help(&shared.state.load().policy, accounts.as_ref(), pki.as_deref());
            govgate_gateway::server::run(server, shared);
            ExitCode::SUCCESS
        }
    }
}

/// What `pki init` made and how to use it.
fn pki_summary(pki: &govgate_gateway::pki::DemoPki) -> String {
    let d = |f: &str| pki.dir.join(f).display().to_string();
    let mut out = format!(
        "demo PKI in {} (keys *-key.pem are readable by you only):\n  root CA        {}\n  issuing CA     {}  (CRL in trust/crl/)\n  server         {}  {}\n  citizen 张三    {}  {}  (identity number {} in the subject)\n  document signing {}  {}\n  trust anchors  {}   ([certs] trust = this directory)\n",
        pki.dir.display(),
        d("root.pem"),
        d("int.pem"),
        d("server.pem"),
        d("server-key.pem"),
        d("citizen.pem"),
        d("citizen-key.pem"),
        govgate_gateway::pki::CITIZEN_ID,
        d("docsign.pem"),
        d("docsign-key.pem"),
        pki.trust.display(),
    );
    match &pki.citizen_p12 {
        Some((p12, password)) => out.push_str(&format!(
            "  browser        {}  (password in {}): import it in the browser's certificate settings (Firefox: Settings > Privacy & Security > View Certificates > Your Certificates > Import; Chrome: Settings > Privacy and security > Security > Manage certificates > Import), then open the login page and choose it\n",
            p12.display(),
            password.display()
        )),
        None => out.push_str("  browser        no citizen.p12: the openssl command is needed to write PKCS#12\n"),
    }
    match &pki.sm2 {
        Some(dir) => out.push_str(&format!(
            "  SM2            {}/ (root.pem, int.pem, citizen.pem; made with the openssl command, SM3, user id 1234567812345678)\n",
            dir.display()
        )),
        None => out.push_str("  SM2            not made: the openssl command (3.0 or later) is needed\n"),
    }
    out.push_str(&format!(
        "Check:  govgate cert verify --trust {} --purpose tls-client {}\n        govgate cert verify --trust {} --purpose document-signing {}",
        pki.trust.display(),
        d("citizen.pem"),
        pki.trust.display(),
        d("docsign.pem")
    ));
    out
}

fn print_demo_help(
    policy: &govgate_policies::Policy,
    accounts: Option<&govgate_gateway::demo::DemoAccounts>,
    pki: Option<&std::path::Path>,
) {
    let port = |tls: bool| policy.listeners.iter().find(|l| l.tls == tls).map(|l| l.address.port());
    let (http, https) = (port(false).unwrap_or(8080), port(true).unwrap_or(8443));
    let ca = policy.data_dir().join("tls/ca.pem");
    let admin = policy.admin.address.map(|a| a.to_string()).unwrap_or_default();
    eprintln!(
        r#"
govgate demo is running. Open:
  http://shebao.localhost:{http}/        social security (two instances, round robin: reload to see both)
  http://tax.localhost:{http}/           tax (request body limit 64 KiB)
  https://shebao.localhost:{https}/      the same over TLS (development CA: {ca})
  http://{admin}/metrics     Prometheus metrics (also /healthz, /readyz)

Try:
  curl -s http://shebao.localhost:{http}/ -H 'X-Govgate-User: admin' | grep -i govgate   # stripped
  for i in $(seq 100); do curl -s -o /dev/null -w '%{{http_code}} ' http://tax.localhost:{http}/; done  # 429 after the burst
  curl -si http://shebao.localhost:{http}/nothing/../login -H 'Accept: application/json'   # normalised path, then 5/min
  curl -si http://nowhere.localhost:{http}/ -H 'Accept-Language: en'                     # 404 page with incident id
  curl -si "http://shebao.localhost:{http}/apply?id=1'%20OR%20'1'='1" | head -1          # 403 from the WAF (CRS)
  curl -s "http://tax.localhost:{http}/?q=<script>alert(1)</script>" >/dev/null          # passes: tax is detect-only
  tail -n 2 {events}                                                                         # the attack events
  govgate logs query --config CONFIG --kind waf                                              # … from the event store
{console}
  curl --cacert {ca} https://shebao.localhost:{https}/

Single sign-on at the gateway (in a browser, over HTTPS):
  https://shebao.localhost:{https}/apply          protected: log in as the demo citizen below
  https://tax.localhost:{https}/                  protected too: signed in without a login page
  https://tax.localhost:{https}/.govgate/logout   log out of every app at once

{idp}{pki}
Access log lines (JSON) go to stdout; press Ctrl-C to stop.
"#,
        pki = match pki {
            Some(dir) => {
                let d = |f: &str| dir.join(f).display().to_string();
                format!(
                    r#"
Certificate login and e-signatures with the demo PKI in {dir}:
  import {p12} in the browser (its password is in {p12}.password; Firefox: Settings > Privacy & Security >
  View Certificates > Your Certificates > Import; Chrome: Settings > Privacy and security > Security >
  Manage certificates > Import), restart the browser, open https://shebao.localhost:{https}/apply,
  choose the certificate 张三 and press "使用数字证书登录 / Sign in with your certificate" (acr=cert).
  curl --cacert {ca} --cert {citizen} --key {citizen_key} https://id.localhost:{https}/.well-known/openid-configuration
  sign and verify a document:
    echo 'application form' > /tmp/form.txt
    openssl cms -sign -binary -in /tmp/form.txt -signer {docsign} -inkey {docsign_key} -certfile {int} -outform DER -out /tmp/form.p7s
    govgate esign verify --trust {trust} --data /tmp/form.txt --sig /tmp/form.p7s
"#,
                    dir = dir.display(),
                    p12 = d("citizen.p12"),
                    citizen = d("citizen.pem"),
                    citizen_key = d("citizen-key.pem"),
                    docsign = d("docsign.pem"),
                    docsign_key = d("docsign-key.pem"),
                    int = d("int.pem"),
                    trust = d("trust"),
                    ca = ca.display(),
                )
            }
            None => String::new(),
        },
        idp = match (policy.idp.issuer.as_deref(), accounts) {
            (Some(issuer), Some(a)) => format!(
                "Identity provider (OpenID Connect): {issuer}/.well-known/openid-configuration   (clients: policies/demo-clients.toml)\n  demo citizen 张三: user name {} password {}\n  demo security officer (staff, role security): user name {} password {}\n",
                govgate_gateway::demo::DEMO_USER,
                a.citizen,
                govgate_gateway::demo::DEMO_SECURITY_USER,
                a.security
            ),
            _ => String::new(),
        },
        console = {
            let hosts = policy.apps.iter().filter(|a| a.builtin == Some(govgate_policies::Builtin::Console)).flat_map(|a| &a.hosts);
            let sso: Vec<String> = hosts
                .map(|h| format!("  https://{}:{https}/console   security console: log in as the demo security officer below", h.as_str()))
                .collect();
            let fallback = format!("  http://{admin}/console   security console on the admin listener (password login: set [admin] password_argon2)");
            sso.into_iter().chain([fallback]).collect::<Vec<_>>().join("\n")
        },
        ca = ca.display(),
        events = policy.data_dir().join("attack-events.jsonl").display(),
    );
}
