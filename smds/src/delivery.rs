//! What the two delivery queues share (an Alternative SM-DS's ES15 deletes in `cascade::queue`,
//! push notifications in `push`): the backoff between attempts and the task's round loop.

use std::time::Duration;
use tokio::sync::{Notify, watch};

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
pub(crate) struct Rounds<'a> {
    pub wake: &'a Notify,
    pub poll: Duration,
    pub stop: watch::Receiver<bool>,
}

impl Rounds<'_> {
    /// Waits for the next round; false when the task is to stop.
    pub async fn next(&mut self) -> bool {
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
