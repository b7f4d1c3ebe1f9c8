//! TLS/HTTP plumbing: the TLS listener with its connection limits ([`listener`]), routing of the
//! SGP.22 paths to the function handlers ([`routes`]), the loopback admin listener ([`admin`]),
//! rustls configuration with SGP.22 certificate validation ([`tls`]) and metrics ([`metrics`]).
//! This is the top of the server: it may use everything below it (handlers, domain, store
//! traits, types); nothing below imports it.

pub mod admin;
pub mod connections;
pub mod health;
pub mod history;
pub(crate) mod listener;
pub mod metrics;
pub mod rate;
pub(crate) mod routes;
pub mod status_page;
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
    /// Replaced whole when the server's credentials are reloaded (see [`AppState::es11`]).
    es11: std::sync::RwLock<Arc<Es11>>,
    pub(crate) revocation: Arc<crate::revocation::Revocation>,
    pub metrics: Metrics,
    pub(crate) verifier: Arc<Sgp22ClientVerifier>,
    pub(crate) limits: Limits,
    /// Replaces the system time for certificate validity, when set (tests).
    pub(crate) clock: Option<Clock>,
    /// The server-wide budget of request-body bytes in flight (`max_inflight_body_bytes`).
    pub(crate) body_budget: Arc<tokio::sync::Semaphore>,
    next_request_id: AtomicU64,
    /// When the server started (uptime).
    pub(crate) started: std::time::Instant,
    /// The certificates configured now (replaced on reload), for metrics and readiness.
    certificates: std::sync::RwLock<Arc<Vec<crate::pki::CertificateSummary>>>,
    /// The link to the Root SM-DS, at an Alternative SM-DS.
    pub cascade: Option<Arc<crate::cascade::Cascade>>,
    /// ES11.CheckEvent calls per client address (see [`rate`]).
    pub(crate) check_event_rate: rate::RateLimiter,
    /// The SGP.22 v3 push services' delivery (see [`crate::push`]).
    pub push: Arc<crate::push::Push>,
}

impl AppState {
    pub(crate) fn new(
        store: Arc<dyn Backend>,
        es11: Es11,
        verifier: Arc<Sgp22ClientVerifier>,
        limits: Limits,
        clock: Option<Clock>,
        cascade: Option<Arc<crate::cascade::Cascade>>,
        push: Arc<crate::push::Push>,
    ) -> Self {
        let budget = limits
            .max_inflight_body_bytes
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS);
        let mut metrics = Metrics::default();
        metrics.register_revocation(&es11.revocation.metrics);
        if let Some(c) = &cascade {
            metrics.register_cascade(&c.metrics);
        }
        push.metrics.register(metrics.registry_mut());
        AppState {
            store,
            revocation: es11.revocation.clone(),
            es11: std::sync::RwLock::new(Arc::new(es11)),
            metrics,
            verifier,
            body_budget: Arc::new(tokio::sync::Semaphore::new(budget)),
            limits,
            clock,
            next_request_id: AtomicU64::new(1),
            started: std::time::Instant::now(),
            certificates: std::sync::RwLock::new(Arc::new(Vec::new())),
            cascade,
            // A device checks every few minutes at most; 1 a second with a burst of 10 leaves
            // room for many devices behind one carrier NAT address.
            check_event_rate: rate::RateLimiter::new(1.0, 10.0),
            push,
        }
    }

    /// An ES12/ES15 registration was committed: its push notifications (queued with it) are
    /// due. The ES12 answer carries no data.
    pub(crate) fn event_registered(&self) -> serde_json::Map<String, serde_json::Value> {
        self.push.event_registered();
        serde_json::Map::new()
    }

    /// The configured certificates, as of the start or the last reload.
    pub fn certificates(&self) -> Arc<Vec<crate::pki::CertificateSummary>> {
        match self.certificates.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set_certificates(&self, certs: Vec<crate::pki::CertificateSummary>) {
        let next = Arc::new(certs);
        match self.certificates.write() {
            Ok(mut c) => *c = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// The ES11 context of the credentials in use; a request keeps the one it started with.
    pub(crate) fn es11(&self) -> Arc<Es11> {
        match self.es11.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves ES11 with reloaded credentials from the next request on.
    pub(crate) fn replace_es11(&self, es11: Es11) {
        let next = Arc::new(es11);
        match self.es11.write() {
            Ok(mut e) => *e = next,
            Err(poisoned) => *poisoned.into_inner() = next,
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
