//! Prometheus metrics, served on the admin listener at `/metrics`.

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

/// The gateway's metrics, in their own registry (no global state).
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub upstream_failures: IntCounterVec,
    pub rate_limited: IntCounterVec,
    pub refused: IntCounterVec,
    pub slow_clients: IntCounterVec,
    pub reloads: IntCounterVec,
    pub waf_events: IntCounterVec,
    pub tracked_clients: IntGauge,
    pub attack_events_dropped: IntCounter,
    pub attack_events_failed: IntCounter,
    pub attack_events_stored: IntCounter,
    pub attack_events_queued: IntGauge,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("govgate".into()), None).unwrap_or_default();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
            registry.register(Box::new(c.clone())).expect("metric registered once");
            c
        };
        let requests = counter("requests_total", "Requests answered, by app and status", &["app", "status"]);
        let upstream_failures = counter("upstream_failures_total", "Failed attempts to reach an upstream", &["app", "upstream"]);
        let rate_limited = counter("rate_limited_total", "Requests refused by a rate limit", &["app", "scope"]);
        let refused = counter("refused_total", "Requests refused before routing, by reason", &["reason"]);
        let slow_clients = counter("slow_clients_total", "Connections closed for sending too slowly", &["phase"]);
        let reloads = counter("policy_reloads_total", "Policy reloads by SIGHUP, by result", &["result"]);
        let waf_events = counter("waf_events_total", "Requests the WAF flagged, by app and action", &["app", "action"]);
        let duration = HistogramVec::new(
            HistogramOpts::new("request_duration_seconds", "Time from request head to the end of the response")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["app"],
        )
        .expect("static metric definition");
        registry.register(Box::new(duration.clone())).expect("metric registered once");
        let tracked_clients =
            IntGauge::new("rate_limit_tracked_clients", "Client addresses held by rate limiters").expect("static metric definition");
        registry.register(Box::new(tracked_clients.clone())).expect("metric registered once");
        let plain = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("static metric definition");
            registry.register(Box::new(c.clone())).expect("metric registered once");
            c
        };
        let attack_events_dropped = plain("attack_events_dropped_total", "Attack events dropped because the store's queue was full");
        let attack_events_failed = plain("attack_events_failed_total", "Attack events lost because the store failed");
        let attack_events_stored = plain("attack_events_stored_total", "Attack events written to the store");
        let attack_events_queued =
            IntGauge::new("attack_events_queued", "Attack events waiting to be stored").expect("static metric definition");
        registry.register(Box::new(attack_events_queued.clone())).expect("metric registered once");
        Metrics {
            attack_events_dropped,
            attack_events_failed,
            attack_events_stored,
            attack_events_queued,
            registry,
            requests,
            duration,
            upstream_failures,
            rate_limited,
            refused,
            slow_clients,
            reloads,
            waf_events,
            tracked_clients,
        }
    }

    /// Copies the event queue's counters into the metrics (before rendering).
    pub fn observe_event_queue(&self, queue: &crate::events::queue::EventQueue) {
        use std::sync::atomic::Ordering::Relaxed;
        let catch_up = |c: &IntCounter, v: u64| c.inc_by(v.saturating_sub(c.get()));
        catch_up(&self.attack_events_dropped, queue.stats.dropped.load(Relaxed));
        catch_up(&self.attack_events_failed, queue.stats.failed.load(Relaxed));
        catch_up(&self.attack_events_stored, queue.stats.written.load(Relaxed));
        self.attack_events_queued.set(queue.depth() as i64);
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prefixed_counters() {
        let m = Metrics::new();
        m.requests.with_label_values(&["shebao", "200"]).inc();
        m.duration.with_label_values(&["shebao"]).observe(0.002);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains("govgate_requests_total{app=\"shebao\",status=\"200\"} 1"), "{text}");
        assert!(text.contains("govgate_request_duration_seconds_bucket"));
    }
}
