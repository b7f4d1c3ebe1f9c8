//! The embedded event store on redb: the default backend, one database file per server.
//!
//! Events are kept per EID in registration (FIFO) order under a global sequence number, with an
//! index by (EID, EventID) and a per-EID counter ([`schema`]). All writes go through one writer
//! thread with group commit ([`writer`]); reads use their own read transactions and never wait
//! for the writer ([`queries`]). Used ES11 transactions are answered from memory and saved in
//! batches ([`used`]). This module touches only the database file (and a probe file next to it).

mod queries;
mod schema;
mod used;
mod writer;

use super::{
    CascadeStore, DeleteOutcome, EventAdmin, EventRecord, EventStore, PushStore, QueuedDelete,
    QueuedPush, RegisterOutcome, StoreError, StoredEvent,
};
use crate::asn1::TransactionId;
use crate::identity::OwnerId;
use crate::types::{EventId, PushToken};
use pki_tool::Eid;
use redb::Database;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use used::{Use, UsedTransactions};
use writer::{DbSlot, Msg, Op, Outcome};

/// Limits of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most requests committed in one transaction.
    pub max_batch: usize,
    /// Requests that may wait for the writer before new ones wait (back-pressure).
    pub queue: usize,
    /// redb page cache, bytes (bounds the store's memory).
    pub cache_bytes: usize,
    /// Most events one SM-DP+ may have pending for one EID; registering more is refused.
    pub max_events_per_eid: usize,
    /// Most events one EID may have from all SM-DP+s together: a backstop far above honest use.
    pub max_events_per_eid_all_owners: usize,
}

/// The per-EID bounds the writer enforces.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    pub(super) per_owner: usize,
    pub(super) all_owners: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: 1024,
            queue: 8192,
            cache_bytes: 32 * 1024 * 1024,
            max_events_per_eid: 100,
            max_events_per_eid_all_owners: 1000,
        }
    }
}

/// Handle to the redb store; cheap to clone.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<DbSlot>,
    tx: mpsc::Sender<Msg>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    path: PathBuf,
    /// Used ES11 transactions of this node (see [`used`]).
    used: Arc<std::sync::Mutex<UsedTransactions>>,
}

impl RedbStore {
    /// Opens (or creates) the database at `path` and starts the writer thread. Errors name the
    /// file; an empty, truncated or foreign file is refused, never replaced.
    pub fn open(path: &Path, cfg: WriterConfig) -> Result<Self, StoreError> {
        let wrap = |source: StoreError| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let db = schema::open(path, cfg.cache_bytes).map_err(wrap)?;
        let used = queries::used_transactions(&db, pki_tool::time::now()).map_err(wrap)?;
        let db = Arc::new(DbSlot::new(db, path.to_path_buf(), cfg.cache_bytes));
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                writer::run(
                    &writer_db,
                    rx,
                    cfg.max_batch.max(1),
                    Bounds {
                        per_owner: cfg.max_events_per_eid.max(1),
                        all_owners: cfg.max_events_per_eid_all_owners.max(1),
                    },
                )
            })
            .map_err(|e| wrap(StoreError::Io(e.kind())))?;
        Ok(RedbStore {
            db,
            tx,
            writer: Arc::new(std::sync::Mutex::new(Some(writer))),
            path: path.to_path_buf(),
            used: Arc::new(std::sync::Mutex::new(UsedTransactions::loaded(used))),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn submit(&self, op: Op) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Op(op, reply))
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    fn used(&self) -> std::sync::MutexGuard<'_, UsedTransactions> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands used transactions to the writer. When the database refuses them (a full disk) they
    /// stay in memory only, which is all this node needs to refuse them again until they
    /// expire: discovery, which only reads, goes on through the outage.
    async fn save_used(&self, entries: Vec<(TransactionId, i64)>, durable: bool) {
        if entries.is_empty() && !durable {
            return;
        }
        let n = entries.len();
        if let Err(e) = self.submit(Op::RecordUsed { entries, durable }).await {
            tracing::warn!(error = %e, transactions = n, "used transactionIds kept in memory only: the database refused them");
        }
    }

    /// Runs a read with the current database handle on the blocking pool, in place when the
    /// caller is already there.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.get();
        if crate::blocking::on_blocking_pool() {
            return f(&db);
        }
        crate::blocking::offload(move || f(&db))
            .await
            .map_err(|_| StoreError::Closed)?
    }
}

const MISMATCHED: &str = "internal: the writer answered another kind of request";

#[async_trait::async_trait]
impl EventStore for RedbStore {
    async fn register_event(&self, event: EventRecord) -> Result<RegisterOutcome, StoreError> {
        match self.submit(Op::Register(Box::new(event))).await? {
            Outcome::Register(r) => Ok(r),
            _ => Err(StoreError::Backend(MISMATCHED.into())),
        }
    }

    async fn delete_event(
        &self,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
    ) -> Result<DeleteOutcome, StoreError> {
        let op = Op::Delete {
            eid: *eid,
            event_id: event_id.clone(),
            owner: owner.clone(),
            queue_forward: true,
        };
        match self.submit(op).await? {
            Outcome::Delete(d) => Ok(d),
            _ => Err(StoreError::Backend(MISMATCHED.into())),
        }
    }

    /// In place, on whichever thread asks: one EID's events are a point lookup in pages redb
    /// keeps cached, cheaper than the thread hand-off that [`RedbStore::read`] would add to
    /// every discovery.
    async fn events_for(&self, eid: &Eid) -> Result<Vec<StoredEvent>, StoreError> {
        queries::events_for(&self.db.get(), eid)
    }

    /// Answered from memory (see [`used`]); the database is asked only past the memory bound.
    async fn use_transaction(&self, tid: &TransactionId, expires: i64) -> Result<bool, StoreError> {
        let now = pki_tool::time::now();
        let decided = self.used().use_transaction(tid, expires, now);
        match decided {
            Use::Used => Ok(false),
            Use::First { flush } => {
                if let Some(entries) = flush {
                    self.save_used(entries, false).await;
                }
                Ok(true)
            }
            Use::AskDatabase => {
                let op = Op::UseTransaction { tid: *tid, expires };
                match self.submit(op).await? {
                    Outcome::FirstUse(first) => {
                        self.used().recorded_in_database(expires);
                        Ok(first)
                    }
                    _ => Err(StoreError::Backend(MISMATCHED.into())),
                }
            }
        }
    }

    /// Committed without fsync, as used transactions are (see [`EventStore::issue_ec_id`]).
    async fn issue_ec_id(
        &self,
        eid: &Eid,
        ec_id: &[u8; 16],
        expires: i64,
    ) -> Result<(), StoreError> {
        let op = Op::IssueEcId {
            eid: *eid,
            ec_id: *ec_id,
            expires,
        };
        self.submit(op).await.map(|_| ())
    }

    /// In place, as [`EventStore::events_for`] here: one point lookup.
    async fn eid_for_ec_id(&self, ec_id: &[u8], now: i64) -> Result<Option<Eid>, StoreError> {
        queries::eid_for_ec_id(&self.db.get(), ec_id, now)
    }

    /// Saves what memory holds unsaved, then sweeps both (the sweep's commit is durable).
    async fn sweep_transactions(&self, now: i64) -> Result<u64, StoreError> {
        let unsaved = {
            let mut used = self.used();
            used.forget_expired(now);
            used.take_unsaved()
        };
        self.save_used(unsaved, false).await;
        match self.submit(Op::SweepTransactions { now }).await? {
            Outcome::Swept(n) => Ok(n),
            _ => Err(StoreError::Backend(MISMATCHED.into())),
        }
    }

    async fn shutdown(&self) {
        let unsaved = self.used().take_unsaved();
        self.save_used(unsaved, true).await;
        let _ = self.tx.send(Msg::Stop).await;
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

#[async_trait::async_trait]
impl CascadeStore for RedbStore {
    async fn confirm_forward(
        &self,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
    ) -> Result<bool, StoreError> {
        let op = Op::ConfirmForward {
            eid: *eid,
            event_id: event_id.clone(),
            owner: owner.clone(),
        };
        match self.submit(op).await? {
            Outcome::Confirmed(found) => Ok(found),
            _ => Err(StoreError::Backend(MISMATCHED.into())),
        }
    }

    async fn discard_forward(
        &self,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
    ) -> Result<bool, StoreError> {
        let op = Op::Delete {
            eid: *eid,
            event_id: event_id.clone(),
            owner: owner.clone(),
            queue_forward: false,
        };
        match self.submit(op).await? {
            Outcome::Delete(d) => Ok(d == DeleteOutcome::Deleted),
            _ => Err(StoreError::Backend(MISMATCHED.into())),
        }
    }

    async fn unconfirmed_forwards(&self) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(queries::unconfirmed_forwards).await
    }

    async fn queued_deletes(&self, limit: usize) -> Result<Vec<QueuedDelete>, StoreError> {
        self.read(move |db| queries::queued_deletes(db, limit))
            .await
    }

    async fn queued_delete_failed(&self, id: u64, error: &str) -> Result<(), StoreError> {
        let op = Op::QueuedFailed {
            id,
            error: error.to_string(),
        };
        self.submit(op).await.map(|_| ())
    }

    async fn queued_delete_done(&self, id: u64) -> Result<(), StoreError> {
        self.submit(Op::QueuedDone { id }).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl PushStore for RedbStore {
    async fn register_push_token(
        &self,
        eid: &Eid,
        service: &str,
        token: &PushToken,
        expires: i64,
    ) -> Result<(), StoreError> {
        let op = Op::RegisterPushToken {
            eid: *eid,
            service: service.to_string(),
            token: token.clone(),
            expires,
        };
        self.submit(op).await.map(|_| ())
    }

    async fn queued_pushes(&self, limit: usize) -> Result<Vec<QueuedPush>, StoreError> {
        self.read(move |db| queries::queued_pushes(db, limit)).await
    }

    async fn queued_push_failed(&self, id: u64) -> Result<(), StoreError> {
        self.submit(Op::PushFailed { id }).await.map(|_| ())
    }

    async fn queued_push_done(&self, id: u64) -> Result<(), StoreError> {
        self.submit(Op::PushDone { id }).await.map(|_| ())
    }
}

#[async_trait::async_trait]
impl EventAdmin for RedbStore {
    async fn list_page(
        &self,
        eid: Option<&Eid>,
        after: Option<(Eid, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let eid = eid.copied();
        self.read(move |db| queries::list(db, eid.as_ref(), after, limit))
            .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.read(queries::count).await
    }

    async fn check_integrity(&self) -> Result<u64, StoreError> {
        self.read(queries::check_integrity).await
    }
}

#[cfg(test)]
mod tests;
