//! Delivery of queued ES15 deletes to the Root, with backoff, and the recovery of forwards a
//! crash interrupted. One task per server; it also keeps the queue's metrics current.

use super::{Answer, Cascade};
use crate::sgp22::paths::path;
use crate::sgp22::requests;
use crate::store::QueuedDelete;
use crate::types::LoggedEid;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::time::Duration;
use tokio::sync::watch;

/// Most queued deletes looked at per round.
const BATCH: usize = 64;
/// Longest sleep between two rounds when nothing wakes the task.
const POLL: Duration = Duration::from_secs(5);

/// The cascade as operators see it (`/metrics`, registered by [`QueueMetrics::register`], and
/// the admin view).
#[derive(Debug, Default)]
pub struct QueueMetrics {
    depth: Gauge,
    oldest_age_secs: Gauge,
    delivery_failures: Counter,
    refused: Counter,
    unreachable: Counter,
    undone: Counter,
}

/// A snapshot of [`QueueMetrics`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFigures {
    /// ES15 deletes waiting (of the last round's look, at most [`BATCH`] counted exactly).
    pub depth: i64,
    /// Seconds since the oldest of them was queued.
    pub oldest_age_secs: i64,
    /// Failed delivery attempts of queued deletes.
    pub delivery_failures: u64,
    /// Forwarded registrations the Root refused.
    pub refused: u64,
    /// Forwarded registrations the Root did not answer.
    pub unreachable: u64,
    /// Forwards a restart found unconfirmed and undid.
    pub undone: u64,
}

impl QueueMetrics {
    pub(super) fn refused(&self) {
        self.refused.inc();
    }

    pub(super) fn unreachable(&self) {
        self.unreachable.inc();
    }

    pub fn figures(&self) -> QueueFigures {
        QueueFigures {
            depth: self.depth.get(),
            oldest_age_secs: self.oldest_age_secs.get(),
            delivery_failures: self.delivery_failures.get(),
            refused: self.refused.get(),
            unreachable: self.unreachable.get(),
            undone: self.undone.get(),
        }
    }

    /// Adds these to the exposition.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "smds_cascade_queue_depth",
            "ES15 deletes queued for the Root SM-DS (up to 64 counted per look)",
            self.depth.clone(),
        );
        registry.register(
            "smds_cascade_queue_oldest_seconds",
            "Seconds since the oldest queued ES15 delete was queued (0: none)",
            self.oldest_age_secs.clone(),
        );
        registry.register(
            "smds_cascade_delete_failures",
            "Failed attempts to deliver a queued ES15 delete to the Root SM-DS",
            self.delivery_failures.clone(),
        );
        registry.register(
            "smds_cascade_forwards_refused",
            "Forwarded registrations the Root SM-DS refused (ES12 answered 8.9/4.2)",
            self.refused.clone(),
        );
        registry.register(
            "smds_cascade_forwards_unreachable",
            "Forwarded registrations the Root SM-DS did not answer (ES12 answered 8.9/5.1)",
            self.unreachable.clone(),
        );
        registry.register(
            "smds_cascade_forwards_undone",
            "Forwards found unacknowledged after a restart and undone",
            self.undone.clone(),
        );
    }
}

impl Cascade {
    /// Undoes forwards left unconfirmed for longer than any forward in flight can take: deleted
    /// here, their ES15 delete queued (see the module docs).
    async fn recover(&self, now: i64) {
        let unconfirmed = match self.store.unconfirmed_forwards().await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "unconfirmed forwards could not be read");
                return;
            }
        };
        for e in unconfirmed {
            let r = &e.record;
            if now - r.registered_at <= self.in_flight_limit() {
                continue;
            }
            tracing::warn!(eid = %LoggedEid(&r.eid), event_id = %r.event_id, "undoing a forward the Root never acknowledged (interrupted by a restart); the SM-DP+ was not told it succeeded");
            match self.store.delete_event(&r.eid, &r.event_id, &r.owner).await {
                Ok(_) => {
                    self.metrics.undone.inc();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an interrupted forward could not be undone yet")
                }
            }
        }
    }

    /// Delivers one queued delete; true when it is off the queue.
    async fn deliver(&self, q: &QueuedDelete) -> bool {
        let body = requests::delete_event_body(
            &self.our_address,
            q.eid.as_str(),
            q.root_event_id.as_str(),
        );
        let failure = match self.call(path::ES15_DELETE_EVENT, &body).await {
            // 8.9.5/3.9: the Root has no such record (never got it, or deleted already): done.
            Answer::Done(r) if r.is_success() || r.code().as_deref() == Some("8.9.5/3.9") => None,
            Answer::Done(r) => Some(format!(
                "the Root answered {} {}",
                r.code()
                    .unwrap_or_else(|| format!("HTTP {}", r.http_status)),
                r.message.unwrap_or_default()
            )),
            Answer::Unknown(why) => Some(why),
        };
        match failure {
            None => match self.store.queued_delete_done(q.id).await {
                Ok(()) => {
                    tracing::info!(eid = %LoggedEid(&q.eid), root_event_id = %q.root_event_id, root = %self.root(), "deleted at the Root");
                    true
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a delivered ES15 delete could not be taken off the queue; it will be sent again");
                    false
                }
            },
            Some(why) => {
                self.metrics.delivery_failures.inc();
                tracing::warn!(eid = %LoggedEid(&q.eid), root_event_id = %q.root_event_id, root = %self.root(), attempts = q.attempts + 1, error = %why, "ES15 delete not delivered; will retry");
                if let Err(e) = self.store.queued_delete_failed(q.id, &why).await {
                    tracing::warn!(error = %e, "a failed ES15 delete could not be recorded");
                }
                false
            }
        }
    }

    /// The admin view (`GET /admin/cascade`): the Root, the figures, the queued deletes (the
    /// oldest 1000) and the forwards awaiting the Root's answer.
    pub async fn view(&self) -> Result<serde_json::Value, crate::store::StoreError> {
        let queued = self.store.queued_deletes(1000).await?;
        let unconfirmed = self.store.unconfirmed_forwards().await?;
        let f = self.metrics.figures();
        Ok(serde_json::json!({
            "root": self.root(),
            "address": self.our_address,
            "event_ids": match self.event_ids {
                crate::config::EventIdMode::Fresh => "fresh",
                crate::config::EventIdMode::Same => "same",
            },
            "queue_depth": queued.len(),
            "delete_failures": f.delivery_failures,
            "forwards_refused": f.refused,
            "forwards_unreachable": f.unreachable,
            "forwards_undone": f.undone,
            "queued_deletes": queued,
            "awaiting_root": unconfirmed.iter().map(|e| serde_json::json!({
                "eid": e.record.eid.as_str(),
                "event_id": e.record.event_id.as_str(),
                "root_event_id": e.record.forwarded.as_ref().map(|f| f.root_event_id.as_str()),
                "registered_at": e.record.registered_at,
            })).collect::<Vec<_>>(),
        }))
    }

    /// Runs until `stop` turns true: a round now, then after each wake-up (a delete was queued)
    /// or [`POLL`], whichever comes first (see [`crate::delivery::run`]).
    pub async fn run_queue(self: std::sync::Arc<Self>, stop: watch::Receiver<bool>) {
        crate::delivery::run(&*self, &self.wake, POLL, stop).await;
    }
}

/// Each round first recovers forwards left unconfirmed, then delivers the queued deletes.
impl crate::delivery::Queue for Cascade {
    type Item = QueuedDelete;

    fn id(q: &QueuedDelete) -> u64 {
        q.id
    }

    fn attempts(q: &QueuedDelete) -> u32 {
        q.attempts
    }

    async fn before_round(&self) {
        self.recover(pki_tool::time::now()).await;
    }

    async fn read(&self) -> Option<Vec<QueuedDelete>> {
        self.store
            .queued_deletes(BATCH)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "the ES15 delete queue could not be read"))
            .ok()
    }

    async fn deliver(&self, q: &QueuedDelete) -> bool {
        Cascade::deliver(self, q).await
    }

    fn after_round(&self, left: &[&QueuedDelete]) {
        self.metrics
            .depth
            .set(i64::try_from(left.len()).unwrap_or(i64::MAX));
        let oldest = left.iter().map(|q| q.queued_at).min();
        self.metrics
            .oldest_age_secs
            .set(oldest.map_or(0, |t| (pki_tool::time::now() - t).max(0)));
    }
}
