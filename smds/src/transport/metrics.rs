//! Prometheus/OpenMetrics metrics on `prometheus-client`: requests by function and outcome,
//! request latency histograms by function, TLS failures, refused connections and (set at scrape
//! time) the number of stored events. Recording takes no global lock and allocates nothing once
//! a label set has been seen.

use crate::sgp22::{Function, StatusCode};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How a request ended, as a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// `Executed-Success`.
    Success,
    /// `Failed <subject>/<reason>`: the function answered with a status code.
    Failed(StatusCode),
    /// `HTTP <status>`: refused by the transport before reaching a function.
    Http(u16),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Success => f.write_str("Executed-Success"),
            Outcome::Failed(c) => write!(f, "Failed {c}"),
            Outcome::Http(s) => write!(f, "HTTP {s}"),
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, e: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::fmt::Write;
        write!(e, "{self}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    function: &'static str,
    outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct FunctionLabel {
    function: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CertificateLabels {
    certificate: &'static str,
    subject: String,
    file: String,
}

type Latency = Family<FunctionLabel, Histogram, fn() -> Histogram>;

/// Metrics shared by all connections.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Latency,
    tls_failures: Counter,
    refused_connections: Counter,
    refusals: Family<ReasonLabel, Counter>,
    connections_closed: Family<ReasonLabel, Counter>,
    events_stored: Gauge,
    uptime: Gauge,
    resident_memory: Gauge,
    open_fds: Gauge,
    certificate_days_left: Family<CertificateLabels, Gauge>,
    certificate_not_after: Family<CertificateLabels, Gauge>,
    /// The last minutes of ES11/ES12 answers, for the status page.
    pub history: super::history::History,
}

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "smds_requests",
            "Requests by SGP.22 function and outcome",
            requests.clone(),
        );
        let latency: Latency = Family::new_with_constructor(latency_histogram);
        registry.register(
            "smds_request_duration_seconds",
            "Request latency by function",
            latency.clone(),
        );
        let tls_failures = Counter::default();
        registry.register(
            "smds_tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            tls_failures.clone(),
        );
        let refused_connections = Counter::default();
        registry.register(
            "smds_refused_connections",
            "Connections refused at the connection limit",
            refused_connections.clone(),
        );
        let refusals = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "smds_refusals",
            "Refusals operators tell apart though the wire answer is the same (eid_backstop: an EID reached the all-SM-DP+ event backstop; per_address: a connection refused because its source address holds its share)",
            refusals.clone(),
        );
        let connections_closed = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "smds_connections_closed",
            "Connections the server closed (no_request: no request before the first-request deadline; idle; max_age; evicted: the longest-idle one, to make room)",
            connections_closed.clone(),
        );
        let events_stored = Gauge::default();
        registry.register(
            "smds_events_stored",
            "Event records currently stored (as of the last scrape that could count them)",
            events_stored.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("smds_build_info", "This build of smds (always 1)", build);
        let uptime = Gauge::default();
        registry.register(
            "smds_uptime_seconds",
            "Seconds since the server started",
            uptime.clone(),
        );
        let resident_memory = Gauge::default();
        registry.register(
            "smds_process_resident_memory_bytes",
            "Resident memory of the process (VmRSS)",
            resident_memory.clone(),
        );
        let open_fds = Gauge::default();
        registry.register(
            "smds_process_open_fds",
            "Open file descriptors of the process (sockets, database files)",
            open_fds.clone(),
        );
        let certificate_days_left = Family::<CertificateLabels, Gauge>::default();
        registry.register(
            "smds_certificate_days_left",
            "Whole days until each configured certificate expires (CI, CERT.DS.TLS, CERT.DSauth, SubCAs); negative once expired",
            certificate_days_left.clone(),
        );
        let certificate_not_after = Family::<CertificateLabels, Gauge>::default();
        registry.register(
            "smds_certificate_not_after_seconds",
            "notAfter of each configured certificate, Unix time",
            certificate_not_after.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            tls_failures,
            refused_connections,
            refusals,
            connections_closed,
            events_stored,
            uptime,
            resident_memory,
            open_fds,
            certificate_days_left,
            certificate_not_after,
            history: super::history::History::default(),
        }
    }
}

/// The label of requests that matched no function.
pub const UNKNOWN_FUNCTION: &str = "unknown";

impl Metrics {
    /// Adds the revocation metrics (CRLs loaded, their age, refusals) to the exposition.
    pub fn register_revocation(&mut self, m: &crate::revocation::RevocationMetrics) {
        self.registry.register(
            "smds_crls_loaded",
            "CRLs loaded from crl_dir (distinct CRLs, as of the last load)",
            m.loaded.clone(),
        );
        self.registry.register(
            "smds_crl_age_seconds",
            "Seconds since the thisUpdate of the CRL in use, by issuer",
            m.age.clone(),
        );
        self.registry.register(
            "smds_revocation_refusals",
            "Certificates refused by revocation checking, by interface and reason (revoked; stale_crl and unverifiable_crl with strict_crl)",
            m.refusals.clone(),
        );
        self.registry.register(
            "smds_crl_load_problems",
            "CRL files that could not be used when loaded (unreadable, not a CRL, bad CI signature, past nextUpdate)",
            m.load_problems.clone(),
        );
    }

    /// The exposition's registry, for a component registering its own metrics.
    pub fn registry_mut(&mut self) -> &mut prometheus_client::registry::Registry {
        &mut self.registry
    }

    /// Adds an Alternative SM-DS's cascade metrics to the exposition.
    pub fn register_cascade(&mut self, m: &crate::cascade::queue::QueueMetrics) {
        m.register(&mut self.registry);
    }

    /// Records one request to `function` with its `outcome` and how long it took.
    pub fn record(&self, function: Option<Function>, outcome: Outcome, elapsed: Duration) {
        use super::history::Series;
        let ok = outcome == Outcome::Success;
        let series = match function {
            Some(
                Function::Es11InitiateAuthentication
                | Function::Es11AuthenticateClient
                | Function::Es11CheckEvent,
            ) => Some(if ok {
                Series::Es11Success
            } else {
                Series::Es11Failure
            }),
            // Event writes, from SM-DP+s (ES12) or Alternative SM-DSs (ES15), share a series.
            Some(
                Function::Es12RegisterEvent
                | Function::Es12DeleteEvent
                | Function::Es15RegisterEvent
                | Function::Es15DeleteEvent,
            ) => Some(if ok {
                Series::Es12Success
            } else {
                Series::Es12Failure
            }),
            None => None,
        };
        if let Some(s) = series {
            self.history.record(pki_tool::time::now(), s);
        }
        let function = function.map_or(UNKNOWN_FUNCTION, Function::name);
        self.requests
            .get_or_create(&RequestLabels { function, outcome })
            .inc();
        self.latency
            .get_or_create(&FunctionLabel { function })
            .observe(elapsed.as_secs_f64());
    }

    pub fn tls_failure(&self) {
        self.tls_failures.inc();
    }

    pub fn refusal(&self, reason: &'static str) {
        self.refusals.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn connection_closed(&self, reason: &'static str) {
        self.connections_closed
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn refused_connection(&self) {
        self.refused_connections.inc();
    }

    /// Sets the operational gauges before a scrape: uptime, process figures, and the configured
    /// certificates (the families are cleared first, so a reloaded certificate replaces the old).
    pub fn set_operations(
        &self,
        uptime: Duration,
        process: Option<super::health::ProcessStats>,
        certificates: &[crate::pki::CertificateSummary],
        now: i64,
    ) {
        self.uptime
            .set(i64::try_from(uptime.as_secs()).unwrap_or(i64::MAX));
        if let Some(p) = process {
            self.resident_memory
                .set(i64::try_from(p.resident_bytes).unwrap_or(i64::MAX));
            self.open_fds
                .set(i64::try_from(p.open_fds).unwrap_or(i64::MAX));
        }
        self.certificate_days_left.clear();
        self.certificate_not_after.clear();
        for c in certificates {
            let labels = CertificateLabels {
                certificate: c.what,
                subject: c.subject.clone(),
                file: c.file.display().to_string(),
            };
            self.certificate_days_left
                .get_or_create(&labels)
                .set(c.days_left(now));
            self.certificate_not_after
                .get_or_create(&labels)
                .set(c.not_after);
        }
    }

    /// The exposition text; `events` is the current number of stored events, if known.
    pub fn render(&self, events: Option<u64>) -> String {
        if let Some(n) = events {
            self.events_stored.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sgp22::codes;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        let f = Some(Function::Es12RegisterEvent);
        m.record(f, Outcome::Success, Duration::from_millis(3));
        m.record(
            f,
            Outcome::Failed(codes::EVENT_DUPLICATED),
            Duration::from_millis(30),
        );
        let t = m.render(Some(7));
        assert!(
            t.contains(
                "smds_requests_total{function=\"ES12.RegisterEvent\",outcome=\"Executed-Success\"} 1"
            ),
            "{t}"
        );
        assert!(t.contains(
            "smds_requests_total{function=\"ES12.RegisterEvent\",outcome=\"Failed 8.9.5/3.3\"} 1"
        ));
        assert!(
            t.contains("smds_request_duration_seconds_bucket{le=\"0.005\",function=\"ES12.RegisterEvent\"} 1")
                || t.contains("smds_request_duration_seconds_bucket{function=\"ES12.RegisterEvent\",le=\"0.005\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("smds_request_duration_seconds_count{function=\"ES12.RegisterEvent\"} 2"),
            "{t}"
        );
        assert!(t.contains("smds_events_stored 7"), "{t}");
    }
}
