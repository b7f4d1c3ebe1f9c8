//! SGP.22 v3 push service (`sgp22-v3-es15-notes.md` 1.4): the delivery side. A device registers
//! a push token in an ES11 AuthenticateClient (see `crate::es11`); each event registered later
//! for its EID queues a notification in the event's own transaction (see
//! [`crate::store::PushStore`]), and this module's one task per server delivers the queue to the
//! configured push gateway of each service, with timeouts, backoff and a bounded number of
//! attempts. Nothing is lost across a restart: a notification leaves the queue only once the
//! gateway answered 2xx, or after [`MAX_ATTEMPTS`] failures (counted).
//!
//! SGP.22 leaves the push server out of scope (FCM, APNs...). The gateway contract here is this
//! project's own: `POST <gateway URL>` with `Content-Type: application/json` and the body
//! `{"pushService": "<OID>", "pushToken": "<token>", "smdsAddress": "<this SM-DS>"}`; any 2xx
//! means delivered. A real deployment puts a small adapter to FCM or APNs behind that URL.
//!
//! Tokens are secrets: they go to the store and to the gateway, never to a log or an error
//! message ([`PushToken`] shows only its length). Touches the store through its trait, and the
//! network only towards the configured gateways.

use crate::asn1;
use crate::config::PushServiceConfig;
use crate::store::{Backend, QueuedPush};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rasn::types::ObjectIdentifier;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long a registered push token stands (and so the refresh time the device is given): the
/// notes give no figure; 30 days, as an ecId.
pub const PUSH_TOKEN_LIFETIME_SECS: i64 = 30 * 86_400;
/// Delivery attempts per notification before it is given up (about 14 minutes of backoff).
pub const MAX_ATTEMPTS: u32 = 10;
/// Longest wait for a gateway, connection and answer together.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Most queued notifications looked at per round.
const BATCH: usize = 64;
/// Longest sleep between two rounds when nothing wakes the task.
const POLL: Duration = Duration::from_secs(5);
/// Most bytes of a gateway's answer read (the status is all that matters).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why the push configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PushConfigError {
    #[error("push_services: {0:?} is not a dotted OBJECT IDENTIFIER")]
    Oid(String),
    #[error("push_services: {0} is configured twice")]
    Duplicate(String),
    #[error("push_services: gateway {url:?}: {why}")]
    Gateway { url: String, why: String },
}

/// A push gateway: where one service's notifications are POSTed.
struct Gateway {
    url: String,
    host: String,
    port: u16,
    /// Path and query.
    path: String,
    /// Set for `https://`.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Gateway {
    fn parse(url: &str, ca_file: Option<&Path>) -> Result<Self, PushConfigError> {
        let bad = |why: &str| PushConfigError::Gateway {
            url: url.to_string(),
            why: why.to_string(),
        };
        let (rest, https) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
            (Some(r), _) => (r, true),
            (None, Some(r)) => (r, false),
            _ => return Err(bad("must start with http:// or https://")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let default_port = if https { 443 } else { 80 };
        let port = |p: &str| p.parse::<u16>().map_err(|_| bad("has an invalid port"));
        let (host, port) = match authority.strip_prefix('[') {
            // An IPv6 literal: [addr] or [addr]:port.
            Some(v6) => match v6.split_once(']') {
                Some((h, "")) => (h, default_port),
                Some((h, after)) => match after.strip_prefix(':') {
                    Some(p) => (h, port(p)?),
                    None => return Err(bad("has text after the IPv6 address")),
                },
                None => return Err(bad("has an unclosed [")),
            },
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, port(p)?),
                None => (authority, default_port),
            },
        };
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        let tls = if https {
            let cfg = crate::transport::tls::web_client_config(ca_file)
                .map_err(|e| bad(&e.to_string()))?;
            Some(Arc::new(cfg))
        } else {
            None
        };
        Ok(Gateway {
            url: url.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
            tls,
        })
    }

    /// POSTs `body`; the answer's HTTP status.
    async fn post(&self, body: Vec<u8>) -> Result<u16, String> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => self.exchange(tcp, body).await,
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| format!("invalid server name: {e}"))?;
                let stream = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                self.exchange(stream, body).await
            }
        }
    }

    async fn exchange<S>(&self, io: S, body: Vec<u8>) -> Result<u16, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let driver = tokio::spawn(conn);
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        let authority = if self.port == default_port {
            host
        } else {
            format!("{host}:{}", self.port)
        };
        let req = hyper::Request::post(self.path.as_str())
            .header(hyper::header::HOST, authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::USER_AGENT, "smds-push")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let answer = sender.send_request(req).await;
        let result = match answer {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let _ = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                    .collect()
                    .await;
                Ok(status)
            }
            Err(e) => Err(format!("HTTP: {e}")),
        };
        driver.abort();
        result
    }
}

/// One push service offered: its OID (and the dotted form the store keeps) and its gateway.
struct Service {
    oid: ObjectIdentifier,
    dotted: String,
    gateway: Gateway,
}

/// The push service as operators see it (`/metrics`).
#[derive(Debug, Default)]
pub struct PushMetrics {
    delivered: Counter,
    failures: Counter,
    dropped: Counter,
    depth: Gauge,
}

impl PushMetrics {
    /// Adds these to the exposition.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "smds_push_notifications_delivered",
            "Push notifications the push gateway accepted (2xx)",
            self.delivered.clone(),
        );
        registry.register(
            "smds_push_delivery_failures",
            "Failed attempts to deliver a push notification to its gateway",
            self.failures.clone(),
        );
        registry.register(
            "smds_push_notifications_dropped",
            "Push notifications given up after the last attempt, or for a service no longer configured",
            self.dropped.clone(),
        );
        registry.register(
            "smds_push_queue_depth",
            "Push notifications queued for delivery (up to 64 counted per look)",
            self.depth.clone(),
        );
    }

    /// (delivered, failed attempts, dropped, queued) as counted now.
    pub fn figures(&self) -> (u64, u64, u64, i64) {
        (
            self.delivered.get(),
            self.failures.get(),
            self.dropped.get(),
            self.depth.get(),
        )
    }
}

/// The configured push services and their delivery task. The task runs with no service
/// configured too: it then drops (and counts) what an earlier configuration's tokens queued, so
/// the queue never grows without a reader.
pub struct Push {
    services: Vec<Service>,
    store: Arc<dyn Backend>,
    /// This SM-DS's address, told to the gateway with each notification.
    smds_address: String,
    pub metrics: PushMetrics,
    wake: Notify,
}

impl Push {
    /// The push services of `cfg` (possibly none).
    pub fn new(
        cfg: &[PushServiceConfig],
        store: Arc<dyn Backend>,
        smds_address: String,
    ) -> Result<Self, PushConfigError> {
        let mut services: Vec<Service> = Vec::new();
        for s in cfg {
            let oid = asn1::parse_oid(&s.oid).ok_or_else(|| PushConfigError::Oid(s.oid.clone()))?;
            let dotted = asn1::dotted(&oid);
            if services.iter().any(|x| x.oid == oid) {
                return Err(PushConfigError::Duplicate(dotted));
            }
            services.push(Service {
                oid,
                dotted,
                gateway: Gateway::parse(&s.gateway, s.ca_file.as_deref())?,
            });
        }
        Ok(Push {
            services,
            store,
            smds_address,
            metrics: PushMetrics::default(),
            wake: Notify::new(),
        })
    }

    /// The OIDs to advertise in sessionContext.supportedPushServices, in configuration order.
    pub fn oids(&self) -> Vec<ObjectIdentifier> {
        self.services.iter().map(|s| s.oid.clone()).collect()
    }

    /// An event was registered: its notifications (if any) are queued; deliver them now. With
    /// no service configured there is nothing to deliver promptly (the task's poll drops what
    /// is left), so an ES12 load does not spin it.
    pub fn event_registered(&self) {
        if !self.services.is_empty() {
            self.wake.notify_one();
        }
    }

    /// Delivers one queued notification; true when it is off the queue.
    async fn deliver(&self, q: &QueuedPush) -> bool {
        let Some(service) = self.services.iter().find(|s| s.dotted == q.service) else {
            tracing::warn!(service = %q.service, "a queued push notification for a service no longer configured is dropped");
            self.metrics.dropped.inc();
            return self.done(q.id).await;
        };
        let body = serde_json::json!({
            "pushService": q.service,
            "pushToken": q.token.secret(),
            "smdsAddress": self.smds_address,
        })
        .to_string()
        .into_bytes();
        let failure = match tokio::time::timeout(TIMEOUT, service.gateway.post(body)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => None,
            Ok(Ok(status)) => Some(format!("the gateway answered HTTP {status}")),
            Ok(Err(why)) => Some(why),
            Err(_) => Some(format!("no answer within {} s", TIMEOUT.as_secs())),
        };
        match failure {
            None => {
                self.metrics.delivered.inc();
                tracing::info!(service = %q.service, gateway = %service.gateway.url, "push notification delivered");
                self.done(q.id).await
            }
            Some(why) => {
                self.metrics.failures.inc();
                let attempts = q.attempts + 1;
                if attempts >= MAX_ATTEMPTS {
                    self.metrics.dropped.inc();
                    tracing::warn!(service = %q.service, gateway = %service.gateway.url, attempts, error = %why, "push notification given up");
                    return self.done(q.id).await;
                }
                tracing::warn!(service = %q.service, gateway = %service.gateway.url, attempts, error = %why, "push notification not delivered; will retry");
                if let Err(e) = self.store.queued_push_failed(q.id).await {
                    tracing::warn!(error = %e, "a failed push notification could not be recorded");
                }
                false
            }
        }
    }

    async fn done(&self, id: u64) -> bool {
        match self.store.queued_push_done(id).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "a push notification could not be taken off the queue; it will be sent again");
                false
            }
        }
    }

    /// Runs until `stop` turns true (see [`crate::delivery::run`]).
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        crate::delivery::run(&*self, &self.wake, POLL, stop).await;
    }
}

impl crate::delivery::Queue for Push {
    type Item = QueuedPush;

    fn id(q: &QueuedPush) -> u64 {
        q.id
    }

    fn attempts(q: &QueuedPush) -> u32 {
        q.attempts
    }

    async fn read(&self) -> Option<Vec<QueuedPush>> {
        self.store
            .queued_pushes(BATCH)
            .await
            .inspect_err(
                |e| tracing::warn!(error = %e, "the push notification queue could not be read"),
            )
            .ok()
    }

    async fn deliver(&self, q: &QueuedPush) -> bool {
        Push::deliver(self, q).await
    }

    fn after_round(&self, left: &[&QueuedPush]) {
        self.metrics
            .depth
            .set(i64::try_from(left.len()).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_parse_with_their_defaults() {
        let g = Gateway::parse("http://127.0.0.1:9000/notify?x=1", None).expect("valid");
        assert_eq!(
            (g.host.as_str(), g.port, g.path.as_str(), g.tls.is_none()),
            ("127.0.0.1", 9000, "/notify?x=1", true)
        );
        let g = Gateway::parse("http://push.example", None).expect("valid");
        assert_eq!((g.port, g.path.as_str()), (80, "/"));
        let g = Gateway::parse("http://[::1]:9000/n", None).expect("valid");
        assert_eq!((g.host.as_str(), g.port), ("::1", 9000));
        let g = Gateway::parse("http://[::1]/n", None).expect("valid");
        assert_eq!((g.host.as_str(), g.port), ("::1", 80));
        for bad in [
            "ftp://x",
            "http://",
            "http://h:port/",
            "http://[::1/",
            "http://[::1]x/",
            "push.example/notify",
        ] {
            assert!(Gateway::parse(bad, None).is_err(), "{bad}");
        }
    }
}
