//! TLS/HTTP plumbing: the TLS listener with its connection limits ([`listener`]), routing of the
//! SGP.22 paths to the function handlers ([`routes`]), the loopback admin listener ([`admin`]),
//! rustls configuration with SGP.22 certificate validation ([`tls`]) and metrics ([`metrics`]).
//! This is the top of the server: it may use everything below it (handlers, domain, store
//! traits, types); nothing below imports it.

pub mod admin;
pub mod connections;
pub(crate) mod listener;
pub mod metrics;
pub(crate) mod routes;
pub mod tls;

use crate::config::Limits;
use crate::es11::Es11;
use crate::store::Backend;
use metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tls::{Clock, Sgp22ClientVerifier};

/// Everything a connection or request handler may use.
pub struct AppState {
    pub store: Arc<dyn Backend>,
    pub(crate) es11: Arc<Es11>,
    pub metrics: Metrics,
    pub(crate) verifier: Arc<Sgp22ClientVerifier>,
    pub(crate) limits: Limits,
    /// Replaces the system time for certificate validity, when set (tests).
    pub(crate) clock: Option<Clock>,
    /// The server-wide budget of request-body bytes in flight (`max_inflight_body_bytes`).
    pub(crate) body_budget: Arc<tokio::sync::Semaphore>,
    next_request_id: AtomicU64,
}

impl AppState {
    pub(crate) fn new(
        store: Arc<dyn Backend>,
        es11: Es11,
        verifier: Arc<Sgp22ClientVerifier>,
        limits: Limits,
        clock: Option<Clock>,
    ) -> Self {
        let budget = limits
            .max_inflight_body_bytes
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        let mut metrics = Metrics::default();
        metrics.register_revocation(&es11.revocation.metrics);
        AppState {
            store,
            es11: Arc::new(es11),
            metrics,
            verifier,
            body_budget: Arc::new(tokio::sync::Semaphore::new(budget)),
            limits,
            clock,
            next_request_id: AtomicU64::new(1),
        }
    }

    /// Now, by the injected clock or the system's.
    pub fn now(&self) -> i64 {
        self.clock
            .as_ref()
            .map_or_else(pki_tool::time::now, |c| c())
    }

    fn request_id(&self) -> u64 {
        self.next_request_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}
