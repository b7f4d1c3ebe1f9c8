//! The embedded event store on redb: the default backend, one database file per server.
//!
//! Events are kept per EID in registration (FIFO) order under a global sequence number, with an
//! index by (EID, EventID) and a per-EID counter ([`schema`]). All writes go through one writer
//! thread with group commit ([`writer`]); reads use their own read transactions on the blocking
//! pool and never wait for the writer ([`queries`]). This module touches only the database file
//! (and a probe file next to it).

mod queries;
mod schema;
mod writer;

use super::{
    DeleteOutcome, EventAdmin, EventRecord, EventStore, RegisterOutcome, StoreError, StoredEvent,
};
use crate::asn1::TransactionId;
use crate::identity::OwnerId;
use crate::types::EventId;
use pki_tool::Eid;
use redb::Database;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
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
    /// Used transactions the database could not record (see [`RedbStore::use_transaction`]).
    used_fallback: Arc<std::sync::Mutex<HashMap<TransactionId, i64>>>,
}

/// Most used transactions kept in memory while the database refuses writes.
const USED_FALLBACK_MAX: usize = 100_000;

impl RedbStore {
    /// Opens (or creates) the database at `path` and starts the writer thread. Errors name the
    /// file; an empty, truncated or foreign file is refused, never replaced.
    pub fn open(path: &Path, cfg: WriterConfig) -> Result<Self, StoreError> {
        let wrap = |source: StoreError| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(source),
        };
        let db = schema::open(path, cfg.cache_bytes).map_err(wrap)?;
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
            used_fallback: Arc::default(),
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
        match self.submit(Op::Register(event)).await? {
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
        };
        match self.submit(op).await? {
            Outcome::Delete(d) => Ok(d),
            _ => Err(StoreError::Backend(MISMATCHED.into())),
        }
    }

    async fn events_for(&self, eid: &Eid) -> Result<Vec<StoredEvent>, StoreError> {
        let eid = *eid;
        self.read(move |db| queries::events_for(db, &eid)).await
    }

    /// While the database refuses writes (a full disk), a used transaction is kept in this
    /// process's memory instead, so that discovery (which only reads) goes on through the
    /// outage: this store serves one node, so nothing else needs to see it. Only authenticated
    /// eUICCs get here and each entry lives for its transaction's lifetime; bounded all the same.
    async fn use_transaction(&self, tid: &TransactionId, expires: i64) -> Result<bool, StoreError> {
        let fallback = || self.used_fallback.lock().unwrap_or_else(|e| e.into_inner());
        if fallback().contains_key(tid) {
            return Ok(false);
        }
        let mut key = [0u8; 16];
        let bytes = tid.as_bytes();
        key[..bytes.len()].copy_from_slice(bytes);
        let recorded = self
            .submit(Op::UseTransaction {
                tid: key,
                len: bytes.len(),
                expires,
            })
            .await;
        let e = match recorded {
            Ok(Outcome::FirstUse(first)) => return Ok(first),
            Ok(_) => return Err(StoreError::Backend(MISMATCHED.into())),
            Err(e) => e,
        };
        tracing::warn!(error = %e, "used transactionId kept in memory: the database refused it");
        let mut used = fallback();
        if used.len() >= USED_FALLBACK_MAX {
            let now = pki_tool::time::now();
            used.retain(|_, exp| *exp >= now);
            if used.len() >= USED_FALLBACK_MAX {
                return Err(e);
            }
        }
        Ok(used.insert(*tid, expires).is_none())
    }

    async fn sweep_transactions(&self, now: i64) -> Result<u64, StoreError> {
        self.used_fallback
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, exp| *exp >= now);
        match self.submit(Op::SweepTransactions { now }).await? {
            Outcome::Swept(n) => Ok(n),
            _ => Err(StoreError::Backend(MISMATCHED.into())),
        }
    }

    async fn shutdown(&self) {
        let _ = self.tx.send(Msg::Stop).await;
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
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
