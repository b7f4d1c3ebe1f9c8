//! Prometheus text-format metrics: requests by function and outcome, request latency histograms
//! by function, and (at scrape time) the number of stored events.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String), u64>,
    latency: BTreeMap<String, Histogram>,
    tls_failures: u64,
    refused_connections: u64,
}

/// Counters shared by all connections.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Records one request to `function` with its `outcome` and how long it took.
    pub fn record(&self, function: &str, outcome: &str, elapsed: Duration) {
        let Ok(mut m) = self.inner.lock() else { return };
        *m.requests
            .entry((function.to_string(), outcome.to_string()))
            .or_default() += 1;
        let h = m.latency.entry(function.to_string()).or_default();
        let secs = elapsed.as_secs_f64();
        h.count += 1;
        h.sum += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
    }

    pub fn tls_failure(&self) {
        if let Ok(mut m) = self.inner.lock() {
            m.tls_failures += 1;
        }
    }

    pub fn refused_connection(&self) {
        if let Ok(mut m) = self.inner.lock() {
            m.refused_connections += 1;
        }
    }

    /// The exposition text; `events` is the current number of stored events, if known.
    pub fn render(&self, events: Option<u64>) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else { return out };
        let _ = writeln!(
            out,
            "# HELP smds_requests_total Requests by SGP.22 function and outcome."
        );
        let _ = writeln!(out, "# TYPE smds_requests_total counter");
        for ((f, o), n) in &m.requests {
            let _ = writeln!(
                out,
                "smds_requests_total{{function=\"{}\",outcome=\"{}\"}} {n}",
                escape(f),
                escape(o)
            );
        }
        let _ = writeln!(
            out,
            "# HELP smds_request_duration_seconds Request latency by function."
        );
        let _ = writeln!(out, "# TYPE smds_request_duration_seconds histogram");
        for (f, h) in &m.latency {
            let f = escape(f);
            for (b, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "smds_request_duration_seconds_bucket{{function=\"{f}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "smds_request_duration_seconds_bucket{{function=\"{f}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "smds_request_duration_seconds_sum{{function=\"{f}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "smds_request_duration_seconds_count{{function=\"{f}\"}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP smds_tls_handshake_failures_total TLS handshakes that failed or timed out."
        );
        let _ = writeln!(out, "# TYPE smds_tls_handshake_failures_total counter");
        let _ = writeln!(out, "smds_tls_handshake_failures_total {}", m.tls_failures);
        let _ = writeln!(
            out,
            "# HELP smds_refused_connections_total Connections refused at the connection limit."
        );
        let _ = writeln!(out, "# TYPE smds_refused_connections_total counter");
        let _ = writeln!(
            out,
            "smds_refused_connections_total {}",
            m.refused_connections
        );
        if let Some(n) = events {
            let _ = writeln!(
                out,
                "# HELP smds_events_stored Event records currently stored."
            );
            let _ = writeln!(out, "# TYPE smds_events_stored gauge");
            let _ = writeln!(out, "smds_events_stored {n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.record(
            "ES12.RegisterEvent",
            "Executed-Success",
            Duration::from_millis(3),
        );
        m.record(
            "ES12.RegisterEvent",
            "Failed 8.9.5/3.3",
            Duration::from_millis(30),
        );
        let t = m.render(Some(7));
        assert!(t.contains(
            "smds_requests_total{function=\"ES12.RegisterEvent\",outcome=\"Executed-Success\"} 1"
        ));
        assert!(t.contains(
            "smds_request_duration_seconds_bucket{function=\"ES12.RegisterEvent\",le=\"0.005\"} 1"
        ));
        assert!(
            t.contains("smds_request_duration_seconds_count{function=\"ES12.RegisterEvent\"} 2")
        );
        assert!(t.contains("smds_events_stored 7"));
    }
}
