//! The last minutes of ES11 and ES12 traffic, for the status page's charts: counts of answered
//! requests per 10-second bucket over 15 minutes, successes and failures apart. Recording is a
//! few atomic operations (no lock); a bucket is reused once its 15 minutes have passed. Two
//! threads that start a new bucket at the same instant may lose a count: a chart, not a meter
//! (the Prometheus counters are exact).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Seconds per bucket.
pub const BUCKET_SECS: i64 = 10;
/// Buckets kept: 15 minutes.
pub const BUCKETS: usize = 90;

/// What a count is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Series {
    Es11Success = 0,
    Es11Failure = 1,
    Es12Success = 2,
    Es12Failure = 3,
}

#[derive(Default)]
struct Bucket {
    /// Which 10-second interval (Unix seconds / BUCKET_SECS) the counts are of.
    interval: AtomicI64,
    counts: [AtomicU64; 4],
}

/// A ring of buckets, indexed by interval.
pub struct History {
    buckets: Vec<Bucket>,
}

impl Default for History {
    fn default() -> Self {
        History {
            buckets: (0..BUCKETS).map(|_| Bucket::default()).collect(),
        }
    }
}

fn slot(interval: i64) -> usize {
    usize::try_from(interval.rem_euclid(BUCKETS as i64)).unwrap_or(0)
}

impl History {
    /// Counts one answer of `series` at `now` (Unix seconds).
    pub fn record(&self, now: i64, series: Series) {
        let interval = now.div_euclid(BUCKET_SECS);
        let b = &self.buckets[slot(interval)];
        let seen = b.interval.load(Ordering::Acquire);
        if seen != interval
            && b.interval
                .compare_exchange(seen, interval, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            for c in &b.counts {
                c.store(0, Ordering::Relaxed);
            }
        }
        b.counts[series as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts of the last [`BUCKETS`] intervals up to `now`, oldest first; zero for an
    /// interval nothing was recorded in.
    pub fn snapshot(&self, now: i64) -> Vec<[u64; 4]> {
        let last = now.div_euclid(BUCKET_SECS);
        (0..BUCKETS as i64)
            .map(|back| last - (BUCKETS as i64 - 1) + back)
            .map(|interval| {
                let b = &self.buckets[slot(interval)];
                if b.interval.load(Ordering::Acquire) == interval {
                    b.counts.each_ref().map(|c| c.load(Ordering::Relaxed))
                } else {
                    [0; 4]
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_time_and_old_ones_are_reused() {
        let h = History::default();
        let t0 = 1_800_000_000;
        h.record(t0, Series::Es11Success);
        h.record(t0 + 1, Series::Es11Success);
        h.record(t0 + 1, Series::Es12Failure);
        h.record(t0 + BUCKET_SECS, Series::Es12Success);
        let s = h.snapshot(t0 + BUCKET_SECS);
        assert_eq!(s.len(), BUCKETS);
        assert_eq!(s[BUCKETS - 2], [2, 0, 0, 1]);
        assert_eq!(s[BUCKETS - 1], [0, 0, 1, 0]);
        // Fifteen minutes on, the first bucket's slot holds a new interval and the old counts
        // are gone from the snapshot.
        let later = t0 + BUCKET_SECS * BUCKETS as i64;
        h.record(later, Series::Es11Failure);
        let s = h.snapshot(later);
        assert_eq!(s[BUCKETS - 1], [0, 1, 0, 0]);
        assert_eq!(s.iter().map(|c| c.iter().sum::<u64>()).sum::<u64>(), 2);
    }
}
