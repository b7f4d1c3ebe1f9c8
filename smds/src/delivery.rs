//! What the two delivery queues share (an Alternative SM-DS's ES15 deletes in `cascade::queue`,
//! push notifications in `push`): the task that reads a durable queue in rounds, tries each entry
//! that is due and backs off after a failure. A queue says how to read, deliver and report.

use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// A durable queue a delivery task works through (the attempts are counted in the store; when
/// the next one is due is kept in the task's memory).
pub(crate) trait Queue {
    type Item;
    /// The entry's key in the store.
    fn id(item: &Self::Item) -> u64;
    /// Delivery attempts that failed so far.
    fn attempts(item: &Self::Item) -> u32;
    /// Work done before each round (the cascade's recovery of unconfirmed forwards).
    async fn before_round(&self) {}
    /// The entries queued, oldest first; `None` when the store could not be read (logged).
    async fn read(&self) -> Option<Vec<Self::Item>>;
    /// Tries one entry: true when it is done (and taken off the queue).
    async fn deliver(&self, item: &Self::Item) -> bool;
    /// After a round: the entries still queued (the metrics).
    fn after_round(&self, left: &[&Self::Item]);
}

/// One round: every queued entry that is due, retried after [`backoff`] when it fails.
async fn round<Q: Queue>(queue: &Q, due: &mut HashMap<u64, i64>) {
    queue.before_round().await;
    let Some(queued) = queue.read().await else {
        return;
    };
    due.retain(|id, _| queued.iter().any(|q| Q::id(q) == *id));
    let mut left = Vec::new();
    for q in &queued {
        let now = pki_tool::time::now();
        if due.get(&Q::id(q)).is_some_and(|at| *at > now) {
            left.push(q);
            continue;
        }
        if !queue.deliver(q).await {
            due.insert(Q::id(q), pki_tool::time::now() + backoff(Q::attempts(q)));
            left.push(q);
        }
    }
    queue.after_round(&left);
}

/// Runs `queue`'s delivery task until `stop` turns true: a round now, then after each wake-up of
/// `wake` (something was queued) or `poll`, whichever comes first.
pub(crate) async fn run<Q: Queue>(
    queue: &Q,
    wake: &Notify,
    poll: Duration,
    stop: watch::Receiver<bool>,
) {
    let mut due = HashMap::new();
    let mut rounds = Rounds { wake, poll, stop };
    loop {
        round(queue, &mut due).await;
        if !rounds.next().await {
            break;
        }
    }
}

/// Longest wait between two attempts at one delivery.
const MAX_BACKOFF_SECS: i64 = 300;

/// Seconds to wait after `attempts` failures: 1, 2, 4, ... up to [`MAX_BACKOFF_SECS`].
pub(crate) fn backoff(attempts: u32) -> i64 {
    1i64.checked_shl(attempts.min(16))
        .unwrap_or(MAX_BACKOFF_SECS)
        .min(MAX_BACKOFF_SECS)
}

/// When a delivery task's next round is due: at a wake-up of `wake` (something was queued) or
/// after `poll`, whichever comes first; never once `stop` turns true.
struct Rounds<'a> {
    wake: &'a Notify,
    poll: Duration,
    stop: watch::Receiver<bool>,
}

impl Rounds<'_> {
    /// Waits for the next round; false when the task is to stop.
    async fn next(&mut self) -> bool {
        tokio::select! {
            () = self.wake.notified() => true,
            () = tokio::time::sleep(self.poll) => true,
            r = self.stop.changed() => r.is_ok() && !*self.stop.borrow(),
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
