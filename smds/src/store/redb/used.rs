//! ES11 transactions already used, as this node knows them. The redb store serves one node, so
//! its memory is where "used?" is answered: AuthenticateClient then neither waits for nor wakes
//! the writer thread (that hand-off cost about 56 us of server CPU per discovery, measured).
//!
//! The database still keeps them, so a restart within their lifetime does not reopen them: newly
//! used transactions are handed to the writer in batches ([`FLUSH_AT`] at a time, at every
//! periodic sweep, and at shutdown) and loaded back at open. A crash forgets at most those used
//! since the last batch, as the non-fsynced commits this replaces did: only the eUICC's own
//! signed response could replay one of them, until it expires.
//!
//! Memory is bounded: past [`MAX_IN_MEMORY`] entries (only authenticated eUICCs add any), new
//! transactions are recorded through the writer as before, and until the last of those expires
//! every transaction not found in memory is checked in the database too.

use crate::asn1::TransactionId;
use std::collections::HashMap;

/// Unsaved entries that make a batch for the writer.
pub(super) const FLUSH_AT: usize = 4096;
/// Most entries kept in memory (about 40 bytes each).
pub(super) const MAX_IN_MEMORY: usize = 262_144;

/// What [`UsedTransactions::use_transaction`] decided.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Use {
    /// Used before (in memory): refuse.
    Used,
    /// First use, recorded in memory; `flush` carries a batch for the writer when one is due.
    First {
        flush: Option<Vec<(TransactionId, i64)>>,
    },
    /// Memory is full, or the database holds transactions memory does not: ask the database.
    AskDatabase,
}

#[derive(Default)]
pub(super) struct UsedTransactions {
    /// Every transaction known used, with when it expires.
    seen: HashMap<TransactionId, i64>,
    /// Recorded in `seen` but not yet handed to the writer.
    unsaved: Vec<(TransactionId, i64)>,
    /// Until this time (Unix seconds), the database may hold used transactions that `seen`
    /// does not: those recorded through the writer while memory was full, or loaded beyond it.
    database_until: Option<i64>,
}

impl UsedTransactions {
    /// State after an open: the unexpired transactions the database holds.
    pub(super) fn loaded(entries: impl IntoIterator<Item = (TransactionId, i64)>) -> Self {
        let mut used = UsedTransactions::default();
        for (tid, expires) in entries {
            if used.seen.len() < MAX_IN_MEMORY {
                used.seen.insert(tid, expires);
            } else {
                used.recorded_in_database(expires);
            }
        }
        used
    }

    pub(super) fn use_transaction(&mut self, tid: &TransactionId, expires: i64, now: i64) -> Use {
        if self.seen.contains_key(tid) {
            return Use::Used;
        }
        if self.database_until.is_some_and(|until| now <= until) {
            return Use::AskDatabase;
        }
        if self.seen.len() >= MAX_IN_MEMORY {
            self.forget_expired(now);
            if self.seen.len() >= MAX_IN_MEMORY {
                return Use::AskDatabase;
            }
        }
        self.seen.insert(*tid, expires);
        self.unsaved.push((*tid, expires));
        let flush = (self.unsaved.len() >= FLUSH_AT).then(|| self.take_unsaved());
        Use::First { flush }
    }

    /// A transaction the database recorded (memory full): memory must consult it until then.
    pub(super) fn recorded_in_database(&mut self, expires: i64) {
        self.database_until = Some(self.database_until.map_or(expires, |u| u.max(expires)));
    }

    pub(super) fn take_unsaved(&mut self) -> Vec<(TransactionId, i64)> {
        std::mem::take(&mut self.unsaved)
    }

    /// Forgets what expired before `now`; returns how many.
    pub(super) fn forget_expired(&mut self, now: i64) -> usize {
        let before = self.seen.len();
        self.seen.retain(|_, exp| *exp >= now);
        before - self.seen.len()
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(n: u32) -> TransactionId {
        TransactionId::new(&n.to_be_bytes()).expect("4 bytes")
    }

    #[test]
    fn second_use_is_refused_and_batches_reach_the_writer() {
        let mut u = UsedTransactions::default();
        assert_eq!(
            u.use_transaction(&tid(1), 100, 0),
            Use::First { flush: None }
        );
        assert_eq!(u.use_transaction(&tid(1), 100, 0), Use::Used);
        for n in 2..FLUSH_AT as u32 {
            assert_eq!(
                u.use_transaction(&tid(n), 100, 0),
                Use::First { flush: None }
            );
        }
        let Use::First { flush: Some(batch) } = u.use_transaction(&tid(0), 100, 0) else {
            panic!("the FLUSH_AT-th transaction hands a batch over");
        };
        assert_eq!(batch.len(), FLUSH_AT);
        assert!(u.take_unsaved().is_empty());
        // Still refused once handed over, until it expires.
        assert_eq!(u.use_transaction(&tid(1), 100, 50), Use::Used);
        assert_eq!(u.forget_expired(101), FLUSH_AT);
    }

    #[test]
    fn loaded_transactions_stay_used_and_overflow_goes_to_the_database() {
        let mut u = UsedTransactions::loaded([(tid(7), 100)]);
        assert_eq!(u.use_transaction(&tid(7), 100, 0), Use::Used);
        assert_eq!(u.len(), 1);
        let mut full =
            UsedTransactions::loaded((0..MAX_IN_MEMORY as u32 + 1).map(|n| (tid(n), 100)));
        assert_eq!(full.len(), MAX_IN_MEMORY);
        // One loaded entry did not fit: the database answers until it has expired.
        assert_eq!(
            full.use_transaction(&tid(u32::MAX), 200, 100),
            Use::AskDatabase
        );
        full.forget_expired(101);
        assert_eq!(
            full.use_transaction(&tid(u32::MAX), 200, 101),
            Use::First { flush: None }
        );
        full.recorded_in_database(300);
        assert_eq!(full.use_transaction(&tid(5), 200, 101), Use::AskDatabase);
        assert_eq!(full.use_transaction(&tid(u32::MAX), 200, 101), Use::Used);
    }
}
