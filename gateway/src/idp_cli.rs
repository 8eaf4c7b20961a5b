//! `govgate user …` and `govgate client …`: accounts of the built-in identity provider (in
//! `idp/idp.sqlite` under the policy's data directory) and its relying parties (the `[idp]
//! clients` registry file, `policies/clients.toml` by default).
//!
//! Passwords never appear on the command line: they are read from standard input with
//! `--password-stdin`, or asked for (without echo) on a terminal. A new client's secret is made
//! here, printed once, and only its SHA-256 is written to the registry.

use clap::{Args, Subcommand, ValueEnum};
use govgate_idp::clients::{AuthMethod, Client};
use govgate_idp::i18n::{strings, Locale};
use govgate_idp::ids::{mask_id, mask_mobile};
use govgate_idp::store::Store;
use govgate_idp::users::{AccountKind, CreateUserError, NewUser};
use govgate_idp::IdpConfig;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Who the audit log names as the actor of a change made here.
const ACTOR: &str = "govgate cli";

#[derive(Args, Debug, Clone)]
pub struct PolicyArg {
    /// The gateway policy whose `[idp]` provider is managed.
    #[arg(long, short, env = "GOVGATE_CONFIG", default_value = "policies/gateway.toml")]
    pub config: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct PasswordArg {
    /// Read the password from standard input (its first line) instead of asking on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Citizen,
    LegalPerson,
    Staff,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account: a citizen (identity number, GB 11643), a legal person (unified social
    /// credit code, GB 32100) or a staff member (roles).
    Add {
        username: String,
        #[arg(long, value_enum, default_value = "citizen")]
        kind: Kind,
        /// Display name (real name for citizens, company name for legal persons).
        #[arg(long)]
        name: String,
        /// Resident identity number (citizens; 18 characters with its check digit).
        #[arg(long)]
        id_number: Option<String>,
        /// Unified social credit code (legal persons).
        #[arg(long)]
        uscc: Option<String>,
        /// Mobile number (11 digits).
        #[arg(long)]
        mobile: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Postal address, one line (the `address` claim).
        #[arg(long)]
        address: Option<String>,
        /// Real-name assurance level, 1 to 4.
        #[arg(long, default_value_t = 1)]
        level: i64,
        /// A role of a staff member, e.g. security or admin (repeat for more).
        #[arg(long = "role")]
        roles: Vec<String>,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// List the accounts (identity numbers and mobiles masked).
    List {
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// Lock an account: it can no longer log in, and its sessions stop working.
    Lock {
        username: String,
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// Unlock an account (also clears its failed-login counter).
    Unlock {
        username: String,
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// Set a new password (checked against the password policy, stored as argon2id).
    SetPassword {
        username: String,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        policy: PolicyArg,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client (PKCE required), e.g. a single-page or mobile app.
    None,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a relying party in the registry file; prints its new secret once.
    Add {
        id: String,
        #[arg(long, default_value = "")]
        name: String,
        /// A redirect URI (exact match; https, or http on loopback). Repeat for more.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Where RP-initiated logout may return to. Repeat for more.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        #[arg(long, value_enum, default_value = "client-secret-basic")]
        auth_method: Method,
        /// A scope the client may ask for (repeat; default openid profile email phone).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A first-party app of the operator: no consent page.
        #[arg(long)]
        first_party: bool,
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// List the registered clients.
    List {
        #[command(flatten)]
        policy: PolicyArg,
    },
}

/// An error of these commands, printed as `govgate: …`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Policy(#[from] govgate_policies::LoadError),
    #[error("{0}: the identity provider is not enabled (set [idp] issuer and an app with builtin = \"idp\")")]
    NoProvider(String),
    #[error("{0}")]
    Idp(#[from] govgate_idp::IdpError),
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The provider's configuration as the gateway would open it for this policy.
fn provider(policy: &PolicyArg) -> Result<IdpConfig, CliError> {
    let p = govgate_policies::load(&policy.config)?;
    crate::idp_service::IdpService::from_policy(&p)
        .map(|s| s.config().clone())
        .ok_or_else(|| CliError::NoProvider(policy.config.display().to_string()))
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// The provider's account database (created on first use, like the gateway does).
async fn open_store(cfg: &IdpConfig) -> Result<Store, CliError> {
    govgate_idp::keys::ensure_private_dir(&cfg.data_dir)?;
    Ok(Store::open(&cfg.database_url()).await?)
}

/// One line from standard input, without its line ending.
fn read_line(input: &mut impl BufRead) -> Result<String, CliError> {
    let mut s = String::new();
    input.read_line(&mut s)?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}

/// Runs `stty` on the terminal (standard input); whether it worked.
fn stty(arg: &str) -> bool {
    std::process::Command::new("stty").arg(arg).stdin(std::process::Stdio::inherit()).status().is_ok_and(|s| s.success())
}

/// The password: from standard input with `--password-stdin`, else asked twice on the terminal
/// with echo off.
fn read_password(arg: &PasswordArg) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if arg.password_stdin {
        return read_line(&mut stdin.lock());
    }
    if !stdin.is_terminal() {
        return Err(CliError::Input("no terminal to ask for the password: give it on standard input with --password-stdin".into()));
    }
    let ask = |prompt: &str| -> Result<String, CliError> {
        eprint!("{prompt}");
        std::io::stderr().flush()?;
        let hidden = stty("-echo");
        let line = read_line(&mut stdin.lock());
        if hidden {
            stty("echo");
        }
        eprintln!();
        line
    };
    let first = ask("Password: ")?;
    if ask("Repeat the password: ")? != first {
        return Err(CliError::Input("the two passwords differ".into()));
    }
    Ok(first)
}

/// The English text of a validation message key of the provider.
fn message(key: &str) -> String {
    strings(Locale::En).get(key).map(|s| s.to_string()).unwrap_or_else(|| key.to_string())
}

fn flag_of(field: &str) -> &str {
    match field {
        "username" => "USERNAME",
        "display_name" => "--name",
        "password" => "password",
        "id_number" => "--id-number",
        "uscc" => "--uscc",
        "mobile" => "--mobile",
        "email" => "--email",
        "real_name_level" => "--level",
        "roles" => "--role",
        "address" => "--address",
        other => other,
    }
}

fn new_user(cmd: &UserCommand) -> Option<NewUser> {
    let UserCommand::Add { username, kind, name, id_number, uscc, mobile, email, address, level, roles, .. } = cmd else { return None };
    Some(NewUser {
        username: username.clone(),
        kind: Some(match kind {
            Kind::Citizen => AccountKind::Citizen,
            Kind::LegalPerson => AccountKind::LegalPerson,
            Kind::Staff => AccountKind::Staff,
        }),
        display_name: name.clone(),
        password: String::new(),
        id_number: id_number.clone(),
        uscc: uscc.clone(),
        mobile: mobile.clone(),
        email: email.clone(),
        real_name_level: Some(*level),
        roles: roles.clone(),
        address: address.clone(),
    })
}

fn user(cmd: UserCommand) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match &cmd {
        UserCommand::Add { password, policy, .. } => {
            let cfg = provider(policy)?;
            let Some(mut nu) = new_user(&cmd) else { return Ok(()) };
            // Every field but the password is checked before the password is asked for.
            let mut probe = nu.clone();
            probe.password = "Probe-passw0rd".into();
            govgate_idp::users::validate_new_user(&probe).map_err(|e| fields_error(&e))?;
            nu.password = read_password(password)?;
            let rt = runtime()?;
            let id = rt.block_on(async {
                let store = open_store(&cfg).await?;
                govgate_idp::admin::add_user(&store, ACTOR, &nu, cfg.argon2).await.map_err(|e| match e {
                    CreateUserError::Fields(f) => fields_error(&f),
                    CreateUserError::Taken => CliError::Input(format!("user {:?} exists already", nu.username.trim())),
                    CreateUserError::Internal(e) => e.into(),
                })
            })?;
            writeln!(out, "user {} added (subject {id})", nu.username.trim())?;
        }
        UserCommand::List { policy } => {
            let cfg = provider(policy)?;
            let users =
                runtime()?.block_on(async { Ok::<_, CliError>(govgate_idp::admin::list_users(&open_store(&cfg).await?).await?) })?;
            writeln!(
                out,
                "{:<20} {:<12} {:<16} {:<20} {:<13} {:<26} {:<5} {:<16} STATUS",
                "USERNAME", "KIND", "NAME", "IDENTITY", "MOBILE", "E-MAIL", "LEVEL", "ROLES"
            )?;
            for u in &users {
                let identity = u.id_number.as_deref().map(mask_id).or_else(|| u.uscc.clone()).unwrap_or_else(|| "-".into());
                writeln!(
                    out,
                    "{:<20} {:<12} {:<16} {:<20} {:<13} {:<26} {:<5} {:<16} {}",
                    u.username,
                    u.kind.as_str(),
                    u.display_name,
                    identity,
                    u.mobile.as_deref().map(mask_mobile).unwrap_or_else(|| "-".into()),
                    u.email.as_deref().unwrap_or("-"),
                    u.real_name_level,
                    if u.roles.is_empty() { "-".into() } else { u.roles.join(",") },
                    if u.locked { "locked" } else { "active" }
                )?;
            }
            writeln!(out, "{} accounts", users.len())?;
        }
        UserCommand::Lock { username, policy } | UserCommand::Unlock { username, policy } => {
            let cfg = provider(policy)?;
            let lock = matches!(cmd, UserCommand::Lock { .. });
            runtime()?.block_on(async {
                let store = open_store(&cfg).await?;
                let r = if lock {
                    govgate_idp::admin::lock_user(&store, ACTOR, username).await
                } else {
                    govgate_idp::admin::unlock_user(&store, ACTOR, username).await
                };
                r.map_err(not_found_is_input)
            })?;
            writeln!(out, "user {username} {}", if lock { "locked" } else { "unlocked" })?;
        }
        UserCommand::SetPassword { username, password, policy } => {
            let cfg = provider(policy)?;
            let pw = read_password(password)?;
            govgate_idp::password::check_policy(&pw).map_err(|k| CliError::Input(format!("password: {}", message(k))))?;
            runtime()?.block_on(async {
                let store = open_store(&cfg).await?;
                govgate_idp::admin::set_password(&store, ACTOR, username, &pw, cfg.argon2).await.map_err(not_found_is_input)
            })?;
            writeln!(out, "password of {username} set")?;
        }
    }
    Ok(())
}

fn not_found_is_input(e: govgate_idp::IdpError) -> CliError {
    match e {
        govgate_idp::IdpError::NotFound(what) => CliError::Input(format!("no such {what}")),
        e => e.into(),
    }
}

fn fields_error(e: &govgate_idp::users::FieldErrors) -> CliError {
    CliError::Input(e.0.iter().map(|(f, k)| format!("{}: {}", flag_of(f), message(k))).collect::<Vec<_>>().join("\n"))
}

/// The registry entry `client add` writes (lifetimes and algorithm at their defaults).
fn new_client(cmd: &ClientCommand) -> Result<Client, CliError> {
    let ClientCommand::Add {
        id,
        name,
        redirect_uris,
        post_logout_redirect_uris,
        backchannel_logout_uri,
        auth_method,
        scopes,
        first_party,
        ..
    } = cmd
    else {
        return Err(CliError::Input("not client add".into()));
    };
    let mut c: Client =
        serde_json::from_value(serde_json::json!({ "id": id })).map_err(|e| CliError::Input(format!("client {id:?}: {e}")))?;
    c.name = name.clone();
    c.redirect_uris = redirect_uris.clone();
    c.post_logout_redirect_uris = post_logout_redirect_uris.clone();
    c.backchannel_logout_uri = backchannel_logout_uri.clone();
    c.auth_method = match auth_method {
        Method::ClientSecretBasic => AuthMethod::ClientSecretBasic,
        Method::ClientSecretPost => AuthMethod::ClientSecretPost,
        Method::None => AuthMethod::None,
    };
    if !scopes.is_empty() {
        c.scopes = scopes.clone();
        if !c.scopes.iter().any(|s| s == "openid") {
            c.scopes.insert(0, "openid".into());
        }
    }
    c.first_party = *first_party;
    Ok(c)
}

fn client(cmd: ClientCommand) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match &cmd {
        ClientCommand::Add { policy, .. } => {
            let cfg = provider(policy)?;
            let c = new_client(&cmd)?;
            let id = c.id.clone();
            let file = cfg.clients_file.clone();
            let secret = runtime()?.block_on(async {
                let store = open_store(&cfg).await?;
                Ok::<_, CliError>(govgate_idp::admin::add_client(&store, ACTOR, &file, c).await?)
            })?;
            writeln!(out, "client {id} added to {}", file.display())?;
            if let Some(s) = secret {
                writeln!(out, "client_secret: {s}")?;
                writeln!(out, "(shown once: only its SHA-256 is stored; give it to the application now)")?;
            }
            writeln!(out, "a running gateway reads the registry again on SIGHUP")?;
        }
        ClientCommand::List { policy } => {
            let cfg = provider(policy)?;
            let clients = govgate_idp::admin::list_clients(&cfg.clients_file)?;
            writeln!(out, "{:<24} {:<20} {:<20} {:<11} {:<40} REDIRECT URIS", "ID", "NAME", "AUTH", "FIRST-PARTY", "SCOPES")?;
            for c in &clients {
                writeln!(
                    out,
                    "{:<24} {:<20} {:<20} {:<11} {:<40} {}",
                    c.id,
                    c.name,
                    c.auth_method.as_str(),
                    if c.first_party { "yes" } else { "no" },
                    c.scopes.join(" "),
                    c.redirect_uris.join(" ")
                )?;
            }
            writeln!(out, "{} clients in {}", clients.len(), cfg.clients_file.display())?;
        }
    }
    Ok(())
}

fn exit(r: Result<(), CliError>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("govgate: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs `govgate user …`.
pub fn run_user(cmd: UserCommand) -> ExitCode {
    exit(user(cmd))
}

/// Runs `govgate client …`.
pub fn run_client(cmd: ClientCommand) -> ExitCode {
    exit(client(cmd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_entry_has_the_registry_defaults() {
        let cmd = ClientCommand::Add {
            id: "app".into(),
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            auth_method: Method::ClientSecretPost,
            scopes: vec!["profile".into()],
            first_party: false,
            policy: PolicyArg { config: "x".into() },
        };
        let c = new_client(&cmd).unwrap();
        assert_eq!(c.scopes, vec!["openid", "profile"]);
        assert_eq!(c.auth_method, AuthMethod::ClientSecretPost);
        assert!(c.allows_grant("authorization_code") && c.allows_grant("refresh_token"));
        assert_eq!(c.access_token_ttl, 600);
    }
}
