//! CRLs from cRLDistributionPoints over HTTP, for `govgate-certs` (which does no I/O itself).
//!
//! The library asks a [`CrlSource`] synchronously during validation; fetching must not block
//! the proxy's threads, so [`CrlFetcher::validate`] runs the validation with a source that
//! answers from memory and notes every URL it lacked, fetches those asynchronously (timeout,
//! size limit, `http://` only), and runs the validation again with them. Fetched CRLs are kept
//! until their nextUpdate (at most a day); failures are remembered for [`FAILURE_TTL`] so a
//! distribution point that is down does not cost every login a timeout. What an unavailable
//! CRL means (soft or hard fail) is the validation's revocation policy, not this module's.

use govgate_certs::{crls_from_pem, CrlFetchError, CrlSource};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a failed fetch is remembered (and answered from memory).
pub const FAILURE_TTL: i64 = 30;
/// Longest a fetched CRL is kept, whatever its nextUpdate says.
const MAX_TTL: i64 = 86_400;
/// CRLs kept at once (one per distribution point URL).
const MAX_ENTRIES: usize = 1024;
/// Validation rounds: the first finds the URLs, the next ones use what was fetched.
const ROUNDS: usize = 3;

#[derive(Clone)]
enum Entry {
    Crl { bytes: Arc<Vec<u8>>, until: i64 },
    Failed { error: String, until: i64 },
}

impl Entry {
    fn until(&self) -> i64 {
        match self {
            Entry::Crl { until, .. } | Entry::Failed { until, .. } => *until,
        }
    }
    fn result(&self) -> Result<Vec<u8>, CrlFetchError> {
        match self {
            Entry::Crl { bytes, .. } => Ok(bytes.as_ref().clone()),
            Entry::Failed { error, .. } => Err(CrlFetchError::Unavailable(error.clone())),
        }
    }
}

/// Fetches and caches CRLs; one per process (it outlives policy reloads).
pub struct CrlFetcher {
    http: reqwest::Client,
    max_bytes: u64,
    cache: Mutex<HashMap<String, Entry>>,
}

impl CrlFetcher {
    pub fn new(timeout: Duration, max_bytes: u64) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        CrlFetcher { http, max_bytes, cache: Mutex::new(HashMap::new()) }
    }

    fn cached(&self, uri: &str, now: i64) -> Option<Entry> {
        let cache = self.cache.lock().ok()?;
        cache.get(uri).filter(|e| e.until() > now).cloned()
    }

    fn remember(&self, uri: &str, entry: Entry) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_ENTRIES && !cache.contains_key(uri) {
                cache.clear();
            }
            cache.insert(uri.to_string(), entry);
        }
    }

    /// The CRL published at `uri` (from memory while current), DER or PEM as served.
    pub async fn fetch(&self, uri: &str, now: i64) -> Result<Vec<u8>, CrlFetchError> {
        if let Some(e) = self.cached(uri, now) {
            return e.result();
        }
        let entry = match self.download(uri).await {
            Ok(bytes) => {
                // Kept until the CRL's nextUpdate; a CRL that cannot be decoded is a failure.
                match crls_from_pem(&bytes) {
                    Ok(crls) if !crls.is_empty() => {
                        let next = crls.iter().filter_map(|c| c.next_update).min().unwrap_or(now + MAX_TTL);
                        let until = next.clamp(now + 1, now + MAX_TTL);
                        Entry::Crl { bytes: Arc::new(bytes), until }
                    }
                    Ok(_) => Entry::Failed { error: format!("{uri}: no CRL in the answer"), until: now + FAILURE_TTL },
                    Err(e) => Entry::Failed { error: format!("{uri}: {e}"), until: now + FAILURE_TTL },
                }
            }
            Err(error) => Entry::Failed { error, until: now + FAILURE_TTL },
        };
        if let Entry::Failed { error, .. } = &entry {
            tracing::warn!(crl = uri, "CRL not available: {error}");
        }
        self.remember(uri, entry.clone());
        entry.result()
    }

    async fn download(&self, uri: &str) -> Result<Vec<u8>, String> {
        if !uri.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")) {
            return Err(format!("{uri}: only http:// distribution points are fetched"));
        }
        let mut resp = self.http.get(uri).send().await.map_err(|e| format!("{uri}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("{uri}: HTTP status {}", resp.status().as_u16()));
        }
        if resp.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(format!("{uri}: larger than {} bytes", self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{uri}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() as u64 > self.max_bytes {
                return Err(format!("{uri}: larger than {} bytes", self.max_bytes));
            }
        }
        Ok(body)
    }

    /// Runs `validation` (a call into `govgate-certs` with the given source) until it needs no
    /// CRL that has not been fetched, fetching the missing ones in between.
    pub async fn validate<T>(&self, now: i64, mut validation: impl FnMut(&dyn CrlSource) -> T) -> T {
        let mut fetched: HashMap<String, Result<Vec<u8>, CrlFetchError>> = HashMap::new();
        for _ in 0..ROUNDS {
            let source = Prefetched { fetcher: self, now, fetched: &fetched, missing: Mutex::new(Vec::new()) };
            let out = validation(&source);
            let missing = source.missing.into_inner().unwrap_or_default();
            if missing.is_empty() {
                return out;
            }
            for uri in missing {
                let r = self.fetch(&uri, now).await;
                fetched.insert(uri, r);
            }
        }
        validation(&Prefetched { fetcher: self, now, fetched: &fetched, missing: Mutex::new(Vec::new()) })
    }
}

/// Answers from what has been fetched; notes what has not.
struct Prefetched<'a> {
    fetcher: &'a CrlFetcher,
    now: i64,
    fetched: &'a HashMap<String, Result<Vec<u8>, CrlFetchError>>,
    missing: Mutex<Vec<String>>,
}

impl CrlSource for Prefetched<'_> {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, CrlFetchError> {
        if let Some(r) = self.fetched.get(uri) {
            return r.clone();
        }
        if let Some(e) = self.fetcher.cached(uri, self.now) {
            return e.result();
        }
        if let Ok(mut m) = self.missing.lock() {
            if !m.iter().any(|u| u == uri) {
                m.push(uri.to_string());
            }
        }
        Err(CrlFetchError::Unavailable(format!("{uri}: not fetched yet")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use govgate_certs::{Certificate, Indication, Purpose, RevocationPolicy, SubIndication, TrustStore, ValidationOptions};
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, DnType, ExtendedKeyUsagePurpose, IsCa,
        Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A CA and a leaf whose cRLDistributionPoint is `url`, and the CA's CRL revoking the leaf.
    fn pki(url: &str) -> (TrustStore, Certificate, Vec<u8>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "CRL test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "citizen");
        leaf.serial_number = Some(SerialNumber::from(4242u64));
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        leaf.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![url.to_string()] }];
        let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let crl = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2025, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(4242u64),
                revocation_time: rcgen::date_time_ymd(2025, 6, 1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap();
        let mut store = TrustStore::new();
        store.add_anchor(Certificate::from_der(ca_cert.der()).unwrap());
        (store, Certificate::from_der(leaf.der()).unwrap(), crl.der().to_vec())
    }

    /// A real HTTP server on `listener` answering every request with `body`; counts requests.
    fn serve(listener: tokio::net::TcpListener, body: Vec<u8>) -> Arc<AtomicUsize> {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                h.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                });
            }
        });
        hits
    }

    fn opts(now: i64, revocation: RevocationPolicy) -> ValidationOptions {
        ValidationOptions::at(now).purpose(Purpose::TlsClient).revocation(revocation)
    }

    #[tokio::test]
    async fn a_crl_is_fetched_once_kept_until_its_next_update_and_limited_in_size() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ca.crl", listener.local_addr().unwrap());
        let (store, leaf, crl) = pki(&url);
        let hits = serve(listener, crl);
        let fetcher = CrlFetcher::new(Duration::from_secs(2), 1 << 20);
        let now = crate::trust::now();
        let o = opts(now, RevocationPolicy::HardFail);
        let r = fetcher.validate(now, |src| govgate_certs::validate(&store, &leaf, &[], &o, Some(src))).await;
        assert_eq!((r.indication, r.sub_indication), (Indication::TotalFailed, Some(SubIndication::Revoked)), "{r:?}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        // A new trust store (as after a reload) gets the CRL from the fetcher's memory.
        let mut fresh = TrustStore::new();
        fresh.add_anchor(store.anchors()[0].as_ref().clone());
        let r = fetcher.validate(now, |src| govgate_certs::validate(&fresh, &leaf, &[], &o, Some(src))).await;
        assert_eq!(r.sub_indication, Some(SubIndication::Revoked));
        assert_eq!(hits.load(Ordering::SeqCst), 1, "not fetched again before nextUpdate");
        // Past the cached nextUpdate (2099) it would be fetched again.
        assert!(fetcher.cached(&url, 4_070_908_800 + 1).is_none());
        // A CRL larger than the limit is refused.
        let small = CrlFetcher::new(Duration::from_secs(2), 64);
        let e = small.fetch(&url, now).await.unwrap_err();
        assert!(e.to_string().contains("larger than 64 bytes"), "{e}");
    }

    #[tokio::test]
    async fn a_distribution_point_that_is_down_soft_or_hard_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ca.crl", listener.local_addr().unwrap());
        drop(listener); // nothing listens there any more
        let (store, leaf, _) = pki(&url);
        let fetcher = CrlFetcher::new(Duration::from_secs(2), 1 << 20);
        let now = crate::trust::now();
        let soft = opts(now, RevocationPolicy::SoftFail);
        let r = fetcher.validate(now, |src| govgate_certs::validate(&store, &leaf, &[], &soft, Some(src))).await;
        assert!(r.passed(), "soft fail accepts: {r:?}");
        assert!(r.findings.iter().any(|f| format!("{f:?}").contains("RevocationSkipped")), "{r:?}");
        let hard = opts(now, RevocationPolicy::HardFail);
        let r = fetcher.validate(now, |src| govgate_certs::validate(&store, &leaf, &[], &hard, Some(src))).await;
        assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some(SubIndication::TryLater)), "{r:?}");
        // The failure is remembered for a while (no timeout per login), then tried again.
        assert!(matches!(fetcher.cached(&url, now), Some(Entry::Failed { .. })));
        assert!(fetcher.cached(&url, now + FAILURE_TTL + 1).is_none());
        // Only http:// is fetched.
        let e = fetcher.fetch("ldap://dir.example/cn=CA?certificateRevocationList", now).await.unwrap_err();
        assert!(e.to_string().contains("only http://"), "{e}");
    }
}
