//! Delivery of queued ES15 deletes to the Root, with backoff, and the recovery of forwards a
//! crash interrupted. One task per server; it also keeps the queue's metrics current.

use super::{Answer, Cascade};
use crate::sgp22::paths::path;
use crate::sgp22::requests;
use crate::store::QueuedDelete;
use crate::types::LoggedEid;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// Most queued deletes looked at per round.
const BATCH: usize = 64;
/// Longest wait between two attempts at one delete.
const MAX_BACKOFF_SECS: i64 = 300;
/// Longest sleep between two rounds when nothing wakes the task.
const POLL: Duration = Duration::from_secs(5);

/// The queue as operators see it (`/metrics`, the admin view).
#[derive(Debug, Default)]
pub struct QueueMetrics {
    depth: AtomicI64,
    oldest_age_secs: AtomicI64,
    delivery_failures: AtomicU64,
    refused: AtomicU64,
    unreachable: AtomicU64,
    undone: AtomicU64,
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
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn unreachable(&self) {
        self.unreachable.fetch_add(1, Ordering::Relaxed);
    }

    pub fn figures(&self) -> QueueFigures {
        QueueFigures {
            depth: self.depth.load(Ordering::Relaxed),
            oldest_age_secs: self.oldest_age_secs.load(Ordering::Relaxed),
            delivery_failures: self.delivery_failures.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            unreachable: self.unreachable.load(Ordering::Relaxed),
            undone: self.undone.load(Ordering::Relaxed),
        }
    }
}

/// Seconds to wait after `attempts` failures: 1, 2, 4, ... up to [`MAX_BACKOFF_SECS`].
fn backoff(attempts: u32) -> i64 {
    1i64.checked_shl(attempts.min(16))
        .unwrap_or(MAX_BACKOFF_SECS)
        .min(MAX_BACKOFF_SECS)
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
                    self.metrics.undone.fetch_add(1, Ordering::Relaxed);
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
                self.metrics
                    .delivery_failures
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(eid = %LoggedEid(&q.eid), root_event_id = %q.root_event_id, root = %self.root(), attempts = q.attempts + 1, error = %why, "ES15 delete not delivered; will retry");
                if let Err(e) = self.store.queued_delete_failed(q.id, &why).await {
                    tracing::warn!(error = %e, "a failed ES15 delete could not be recorded");
                }
                false
            }
        }
    }

    /// One round: recovery, then every queued delete that is due.
    async fn round(&self, due: &mut HashMap<u64, i64>) {
        let now = pki_tool::time::now();
        self.recover(now).await;
        let queued = match self.store.queued_deletes(BATCH).await {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(error = %e, "the ES15 delete queue could not be read");
                return;
            }
        };
        due.retain(|id, _| queued.iter().any(|q| q.id == *id));
        let mut left = Vec::new();
        for q in &queued {
            if due.get(&q.id).is_some_and(|at| *at > now) {
                left.push(q);
                continue;
            }
            if !self.deliver(q).await {
                due.insert(q.id, pki_tool::time::now() + backoff(q.attempts));
                left.push(q);
            }
        }
        self.metrics.depth.store(
            i64::try_from(left.len()).unwrap_or(i64::MAX),
            Ordering::Relaxed,
        );
        let oldest = left.iter().map(|q| q.queued_at).min();
        self.metrics.oldest_age_secs.store(
            oldest.map_or(0, |t| (pki_tool::time::now() - t).max(0)),
            Ordering::Relaxed,
        );
    }

    /// Runs until `stop` turns true: a round now, then after each wake-up (a delete was queued)
    /// or [`POLL`], whichever comes first.
    pub async fn run_queue(self: std::sync::Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut due = HashMap::new();
        loop {
            self.round(&mut due).await;
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(POLL) => {}
                r = stop.changed() => if r.is_err() || *stop.borrow() { break },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(
            [0, 1, 2, 8, 9, 40].map(super::backoff),
            [1, 2, 4, 256, 300, 300]
        );
    }
}
