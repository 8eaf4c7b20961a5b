//! The built-in OpenID Connect provider (the `govgate-idp` crate) served in-process: requests
//! to an app with `builtin = "idp"` pass the gateway's limits, rate limits and WAF like any
//! other, then go to [`govgate_idp::Idp::handle`] instead of an upstream. The provider is
//! opened on first use, on the proxy's own runtime (its SQLite pool lives there).

use govgate_idp::{Idp, IdpConfig, IdpRequest, IdpResponse};
use govgate_policies::Policy;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often expired codes, sessions and retired keys are purged.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(600);

pub struct IdpService {
    config: IdpConfig,
    idp: tokio::sync::OnceCell<Idp>,
    last_maintenance: Mutex<Instant>,
}

impl IdpService {
    /// The service for the policy's `[idp]`, when an app serves it.
    pub fn from_policy(policy: &Policy) -> Option<Self> {
        let serves = policy.apps.iter().any(|a| a.builtin == Some(govgate_policies::Builtin::Idp));
        let issuer = policy.idp.issuer.as_ref().filter(|_| serves)?;
        let mut config = IdpConfig::new(issuer.clone(), policy.data_dir().join("idp"));
        config.clients_file = policy.resolve(&policy.idp.clients);
        Some(IdpService { config, idp: tokio::sync::OnceCell::new(), last_maintenance: Mutex::new(Instant::now()) })
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    pub fn config(&self) -> &IdpConfig {
        &self.config
    }

    /// The provider, opened on first use.
    pub async fn get(&self) -> Result<&Idp, govgate_idp::IdpError> {
        self.idp.get_or_try_init(|| Idp::open(self.config.clone())).await
    }

    /// Answers one request; a provider that cannot be opened answers 503.
    pub async fn handle(&self, req: IdpRequest) -> IdpResponse {
        let idp = match self.get().await {
            Ok(idp) => idp,
            Err(e) => {
                tracing::error!("the identity provider cannot be opened: {e}");
                return IdpResponse::json(503, &serde_json::json!({ "error": "temporarily_unavailable" }));
            }
        };
        self.maintain(idp);
        idp.handle(req).await
    }

    /// Starts the periodic purge when it is due (on the proxy's runtime, off the request).
    fn maintain(&self, idp: &Idp) {
        let due = match self.last_maintenance.lock() {
            Ok(mut last) if last.elapsed() >= MAINTENANCE_EVERY => {
                *last = Instant::now();
                true
            }
            _ => false,
        };
        if due {
            let idp = idp.clone();
            tokio::spawn(async move {
                if let Err(e) = idp.maintenance().await {
                    tracing::warn!("identity provider maintenance failed: {e}");
                }
            });
        }
    }

    /// Re-reads the client registry (on SIGHUP), when the provider is open.
    pub fn reload_clients(&self) {
        if let Some(idp) = self.idp.get() {
            match idp.reload_clients() {
                Ok(()) => tracing::info!("identity provider clients reloaded"),
                Err(e) => tracing::error!("identity provider clients not reloaded, the old list stays: {e}"),
            }
        }
    }
}
