//! The event store: SGP.22 event records in an embedded redb database.
//!
//! Events are kept per EID in registration (FIFO) order under a global sequence number, with an
//! index by (EID, EventID); looking up one EID is a range scan, O(log n). All writes go through one
//! writer thread that batches whatever requests are queued into a single transaction committed with
//! `Durability::Immediate` (group commit), and answers each request only after that commit. Reads
//! use their own read transactions and never wait for the writer.
//!
//! When a commit fails (disk full, I/O error) redb refuses further writes on that handle, while
//! reads keep working. The writer then answers writes with the error until a probe file shows
//! that space is back, and reopens the database (swapping the handle readers use) before the next
//! write. Nothing acknowledged is lost: a failed batch was never acknowledged.
//!
//! This module touches only the database file (and the probe file next to it); callers have
//! already validated their input.

use pki_tool::Eid;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// (EID, sequence) -> JSON of [`StoredEvent`].
const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events_v1");
/// (EID, EventID) -> sequence.
const BY_EVENT_ID: TableDefinition<(&str, &str), u64> = TableDefinition::new("event_ids_v1");
/// Counters: `next_seq`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");
/// EID -> number of its events (for the per-EID bound without a scan).
const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("event_counts_v1");

/// An event record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub eid: String,
    pub event_id: String,
    pub rsp_server_address: String,
    /// Who registered it: the SM-DP+'s TLS identity (see `tls::PeerIdentity::owner_key`).
    pub owner: String,
    /// The SM-DP+'s certificate SAN (registeredID and DNS names), for operators.
    pub owner_names: Vec<String>,
    pub forwarding_indicator: bool,
    /// Unix seconds.
    pub registered_at: i64,
    pub seq: u64,
}

/// What a register request asks for.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub eid: Eid,
    pub event_id: String,
    pub rsp_server_address: String,
    pub owner: String,
    pub owner_names: Vec<String>,
    pub forwarding_indicator: bool,
    pub registered_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    Registered {
        seq: u64,
    },
    /// An event with this EventID exists for this EID.
    Duplicate,
    /// The EID already has the maximum number of events.
    TooMany,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// No such event, or an event registered by someone else (deliberately the same answer).
    NotFound,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the event database {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("event database error: {0}")]
    Storage(String),
    #[error("the event store is shutting down")]
    Closed,
}

fn storage(e: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(e.to_string())
}

enum Op {
    Register(NewEvent),
    Delete {
        eid: Eid,
        event_id: String,
        owner: String,
    },
}

enum Outcome {
    Register(RegisterOutcome),
    Delete(DeleteOutcome),
}

type Reply = oneshot::Sender<Result<Outcome, StoreError>>;

enum Msg {
    Op(Op, Reply),
    /// Commit what is queued before this message, then stop.
    Stop,
}

/// The current database handle; replaced after a write failure once the disk has room again.
pub struct DbSlot {
    handle: std::sync::RwLock<Arc<Database>>,
    path: PathBuf,
    cache_bytes: usize,
}

impl DbSlot {
    fn get(&self) -> Arc<Database> {
        self.handle
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Writes and syncs a probe file next to the database: is there room to write again?
    fn has_room(&self) -> bool {
        let probe = self.path.with_extension("space-probe");
        let ok = (|| -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&probe)?;
            f.write_all(&vec![0u8; 1 << 20])?;
            f.sync_all()
        })()
        .is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    }

    /// Drops the failed handle and opens the database again.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self.handle.write().unwrap_or_else(|e| e.into_inner());
        // Readers that cloned the old handle finish quickly; redb allows one open handle per file.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while Arc::strong_count(&guard) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let placeholder = Arc::new(
            redb::Builder::new()
                .create_with_backend(redb::backends::InMemoryBackend::new())
                .map_err(storage)?,
        );
        let old = std::mem::replace(&mut *guard, placeholder);
        drop(old);
        match open_database(&self.path, self.cache_bytes, false) {
            Ok(db) => {
                *guard = Arc::new(db);
                Ok(())
            }
            Err(e) => Err(StoreError::Storage(format!(
                "cannot reopen the database: {e}"
            ))),
        }
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DbSlot>,
    tx: mpsc::Sender<Msg>,
    writer: Arc<std::sync::Mutex<Option<std::thread::JoinHandle<()>>>>,
    path: PathBuf,
}

/// Limits of the writer.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most requests committed in one transaction.
    pub max_batch: usize,
    /// Requests that may wait for the writer before new ones are refused back-pressure style.
    pub queue: usize,
    /// redb page cache, bytes (bounds the store's memory).
    pub cache_bytes: usize,
    /// Most events one EID may have; registering more is refused.
    pub max_events_per_eid: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: 1024,
            queue: 8192,
            cache_bytes: 32 * 1024 * 1024,
            max_events_per_eid: 100,
        }
    }
}

fn open_database(
    path: &Path,
    cache_bytes: usize,
    create: bool,
) -> Result<Database, redb::DatabaseError> {
    let mut b = redb::Builder::new();
    b.set_cache_size(cache_bytes);
    if create { b.create(path) } else { b.open(path) }
}

impl Store {
    /// Opens (or creates) the database at `path` and starts the writer thread.
    pub fn open(path: &Path, cfg: WriterConfig) -> Result<Self, StoreError> {
        let open_err = |message: String| StoreError::Open {
            path: path.to_path_buf(),
            message,
        };
        let db = if path.exists() {
            let meta = std::fs::metadata(path).map_err(|e| open_err(e.to_string()))?;
            if meta.len() == 0 {
                return Err(open_err(
                    "the file is empty (truncated?); refusing to start with an empty store in its place".into(),
                ));
            }
            open_database(path, cfg.cache_bytes, false)
                .map_err(|e| open_err(format!("{e} (corrupt or not a redb database?)")))?
        } else {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
            }
            open_database(path, cfg.cache_bytes, true).map_err(|e| open_err(e.to_string()))?
        };
        // Create the tables so that readers never see them missing.
        let txn = db.begin_write().map_err(|e| open_err(e.to_string()))?;
        {
            txn.open_table(EVENTS)
                .map_err(|e| open_err(e.to_string()))?;
            txn.open_table(BY_EVENT_ID)
                .map_err(|e| open_err(e.to_string()))?;
            txn.open_table(META).map_err(|e| open_err(e.to_string()))?;
            let events = txn
                .open_table(EVENTS)
                .map_err(|e| open_err(e.to_string()))?;
            let mut counts = txn
                .open_table(COUNTS)
                .map_err(|e| open_err(e.to_string()))?;
            // A database written before the counters existed: count once.
            if counts.is_empty().map_err(|e| open_err(e.to_string()))?
                && !events.is_empty().map_err(|e| open_err(e.to_string()))?
            {
                let mut per_eid: std::collections::BTreeMap<String, u64> =
                    std::collections::BTreeMap::new();
                for item in events.iter().map_err(|e| open_err(e.to_string()))? {
                    let (k, _) = item.map_err(|e| open_err(e.to_string()))?;
                    *per_eid.entry(k.value().0.to_string()).or_default() += 1;
                }
                for (eid, n) in per_eid {
                    counts
                        .insert(eid.as_str(), n)
                        .map_err(|e| open_err(e.to_string()))?;
                }
            }
        }
        txn.commit().map_err(|e| open_err(e.to_string()))?;

        let db = Arc::new(DbSlot {
            handle: std::sync::RwLock::new(Arc::new(db)),
            path: path.to_path_buf(),
            cache_bytes: cfg.cache_bytes,
        });
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                writer_loop(
                    &writer_db,
                    rx,
                    cfg.max_batch.max(1),
                    cfg.max_events_per_eid.max(1),
                )
            })
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            db,
            tx,
            writer: Arc::new(std::sync::Mutex::new(Some(writer))),
            path: path.to_path_buf(),
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

    /// Registers an event; returns once it is durably committed.
    pub async fn register(&self, event: NewEvent) -> Result<RegisterOutcome, StoreError> {
        match self.submit(Op::Register(event)).await? {
            Outcome::Register(r) => Ok(r),
            Outcome::Delete(_) => Err(StoreError::Storage("internal: mismatched reply".into())),
        }
    }

    /// Deletes an event if `owner` registered it; returns once the deletion is durable.
    pub async fn delete(
        &self,
        eid: Eid,
        event_id: String,
        owner: String,
    ) -> Result<DeleteOutcome, StoreError> {
        match self
            .submit(Op::Delete {
                eid,
                event_id,
                owner,
            })
            .await?
        {
            Outcome::Delete(d) => Ok(d),
            Outcome::Register(_) => Err(StoreError::Storage("internal: mismatched reply".into())),
        }
    }

    /// The events of one EID in registration order.
    pub fn events_for(&self, eid: &Eid) -> Result<Vec<StoredEvent>, StoreError> {
        let txn = self.db.get().begin_read().map_err(storage)?;
        let table = txn.open_table(EVENTS).map_err(storage)?;
        let key = eid.as_str();
        let mut out = Vec::new();
        for item in table
            .range((key, 0u64)..=(key, u64::MAX))
            .map_err(storage)?
        {
            let (_, v) = item.map_err(storage)?;
            out.push(serde_json::from_slice(v.value()).map_err(storage)?);
        }
        Ok(out)
    }

    /// All events (optionally of one EID), at most `limit`.
    pub fn list(&self, eid: Option<&Eid>, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        if let Some(eid) = eid {
            let mut v = self.events_for(eid)?;
            v.truncate(limit);
            return Ok(v);
        }
        let txn = self.db.get().begin_read().map_err(storage)?;
        let table = txn.open_table(EVENTS).map_err(storage)?;
        let mut out = Vec::new();
        for item in table.iter().map_err(storage)?.take(limit) {
            let (_, v) = item.map_err(storage)?;
            out.push(serde_json::from_slice(v.value()).map_err(storage)?);
        }
        Ok(out)
    }

    /// Number of stored events.
    pub fn count(&self) -> Result<u64, StoreError> {
        let txn = self.db.get().begin_read().map_err(storage)?;
        let table = txn.open_table(EVENTS).map_err(storage)?;
        table.len().map_err(storage)
    }

    /// Checks that the event table and the EventID index describe the same events and that the
    /// sequence counter is ahead of every event; returns the number of events.
    pub fn check_integrity(&self) -> Result<u64, StoreError> {
        let txn = self.db.get().begin_read().map_err(storage)?;
        let events = txn.open_table(EVENTS).map_err(storage)?;
        let index = txn.open_table(BY_EVENT_ID).map_err(storage)?;
        let meta = txn.open_table(META).map_err(storage)?;
        let next_seq = meta
            .get("next_seq")
            .map_err(storage)?
            .map(|v| v.value())
            .unwrap_or(1);
        let mut n = 0u64;
        for item in events.iter().map_err(storage)? {
            let (k, v) = item.map_err(storage)?;
            let (eid, seq) = k.value();
            let e: StoredEvent = serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Storage(format!("event {eid}/{seq} unreadable: {e}")))?;
            if e.eid != eid || e.seq != seq {
                return Err(StoreError::Storage(format!(
                    "event {eid}/{seq} is filed under the wrong key"
                )));
            }
            if index
                .get((eid, e.event_id.as_str()))
                .map_err(storage)?
                .map(|s| s.value())
                != Some(seq)
            {
                return Err(StoreError::Storage(format!(
                    "event {eid}/{} is missing from the index",
                    e.event_id
                )));
            }
            if seq >= next_seq {
                return Err(StoreError::Storage(format!(
                    "event {eid}/{seq} is ahead of the sequence counter"
                )));
            }
            n += 1;
        }
        let indexed = index.len().map_err(storage)?;
        if indexed != n {
            return Err(StoreError::Storage(format!(
                "{indexed} index entries for {n} events"
            )));
        }
        Ok(n)
    }

    /// Lets the writer commit what is queued, stops it and waits for it. Later writes fail with
    /// [`StoreError::Closed`].
    pub async fn shutdown(&self) {
        let _ = self.tx.send(Msg::Stop).await;
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

fn writer_loop(db: &DbSlot, mut rx: mpsc::Receiver<Msg>, max_batch: usize, max_per_eid: usize) {
    let mut stopping = false;
    // The error of the last failed commit, while writes are being refused.
    let mut failed: Option<String> = None;
    while !stopping {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Op(op, reply) => batch.push((op, reply)),
                Msg::Stop => {
                    stopping = true;
                    break;
                }
            }
            if batch.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if batch.is_empty() {
            continue;
        }
        if let Some(why) = failed.clone() {
            if db.has_room() {
                match db.reopen() {
                    Ok(()) => {
                        tracing::info!("event database reopened after a write failure");
                        failed = None;
                    }
                    Err(e) => tracing::error!(error = %e, "event database could not be reopened"),
                }
            }
            if failed.is_some() {
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError::Storage(format!(
                        "{why}; writes are refused until the disk accepts them again"
                    ))));
                }
                continue;
            }
        }
        match apply_batch(&db.get(), &batch, max_per_eid) {
            Ok(outcomes) => {
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                failed = Some(e.to_string());
                tracing::error!(error = %e, requests = batch.len(), "event batch not committed");
                for (_, reply) in batch {
                    let _ = reply.send(Err(StoreError::Storage(e.to_string())));
                }
            }
        }
    }
    // Whatever is still queued is answered with Closed when `rx` drops here.
}

/// Applies a batch in one transaction; nothing of it is visible unless the commit succeeds.
fn apply_batch(
    db: &Database,
    batch: &[(Op, Reply)],
    max_per_eid: usize,
) -> Result<Vec<Outcome>, StoreError> {
    let mut txn = db.begin_write().map_err(storage)?;
    txn.set_durability(redb::Durability::Immediate)
        .map_err(storage)?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut events = txn.open_table(EVENTS).map_err(storage)?;
        let mut index = txn.open_table(BY_EVENT_ID).map_err(storage)?;
        let mut meta = txn.open_table(META).map_err(storage)?;
        let mut counts = txn.open_table(COUNTS).map_err(storage)?;
        let mut next_seq = meta
            .get("next_seq")
            .map_err(storage)?
            .map(|v| v.value())
            .unwrap_or(1);
        for (op, _) in batch {
            match op {
                Op::Register(e) => {
                    let key = (e.eid.as_str(), e.event_id.as_str());
                    if index.get(key).map_err(storage)?.is_some() {
                        outcomes.push(Outcome::Register(RegisterOutcome::Duplicate));
                        continue;
                    }
                    let eid = e.eid.as_str();
                    let existing = counts
                        .get(eid)
                        .map_err(storage)?
                        .map(|v| v.value())
                        .unwrap_or(0);
                    if existing >= max_per_eid as u64 {
                        outcomes.push(Outcome::Register(RegisterOutcome::TooMany));
                        continue;
                    }
                    counts.insert(eid, existing + 1).map_err(storage)?;
                    let seq = next_seq;
                    next_seq += 1;
                    let stored = StoredEvent {
                        eid: e.eid.to_string(),
                        event_id: e.event_id.clone(),
                        rsp_server_address: e.rsp_server_address.clone(),
                        owner: e.owner.clone(),
                        owner_names: e.owner_names.clone(),
                        forwarding_indicator: e.forwarding_indicator,
                        registered_at: e.registered_at,
                        seq,
                    };
                    let bytes = serde_json::to_vec(&stored).map_err(storage)?;
                    events
                        .insert((e.eid.as_str(), seq), bytes.as_slice())
                        .map_err(storage)?;
                    index.insert(key, seq).map_err(storage)?;
                    outcomes.push(Outcome::Register(RegisterOutcome::Registered { seq }));
                }
                Op::Delete {
                    eid,
                    event_id,
                    owner,
                } => {
                    let key = (eid.as_str(), event_id.as_str());
                    let Some(seq) = index.get(key).map_err(storage)?.map(|v| v.value()) else {
                        outcomes.push(Outcome::Delete(DeleteOutcome::NotFound));
                        continue;
                    };
                    let owned = match events.get((eid.as_str(), seq)).map_err(storage)? {
                        Some(v) => {
                            serde_json::from_slice::<StoredEvent>(v.value())
                                .map_err(storage)?
                                .owner
                                == *owner
                        }
                        None => false,
                    };
                    if !owned {
                        outcomes.push(Outcome::Delete(DeleteOutcome::NotFound));
                        continue;
                    }
                    events.remove((eid.as_str(), seq)).map_err(storage)?;
                    index.remove(key).map_err(storage)?;
                    let left = counts
                        .get(eid.as_str())
                        .map_err(storage)?
                        .map(|v| v.value())
                        .unwrap_or(1)
                        .saturating_sub(1);
                    if left == 0 {
                        counts.remove(eid.as_str()).map_err(storage)?;
                    } else {
                        counts.insert(eid.as_str(), left).map_err(storage)?;
                    }
                    outcomes.push(Outcome::Delete(DeleteOutcome::Deleted));
                }
            }
        }
        meta.insert("next_seq", next_seq).map_err(storage)?;
    }
    txn.commit().map_err(storage)?;
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(eid: &str, id: &str, owner: &str) -> NewEvent {
        NewEvent {
            eid: Eid::parse(eid).expect("valid"),
            event_id: id.into(),
            rsp_server_address: "smdp.example.com".into(),
            owner: owner.into(),
            owner_names: vec![],
            forwarding_indicator: false,
            registered_at: 0,
        }
    }

    const EID1: &str = "89049032123451234512345678901235";
    const EID2: &str = "89049032000000000000000000100073";

    #[tokio::test]
    async fn fifo_duplicates_ownership_and_reopen() {
        let dir =
            std::env::temp_dir().join(format!("smds-store-{}-{}", std::process::id(), line!()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("events.redb");
        {
            let s = Store::open(&path, WriterConfig::default()).expect("open");
            for id in ["c", "a", "b"] {
                assert!(matches!(
                    s.register(event(EID1, id, "dp1")).await.expect("ok"),
                    RegisterOutcome::Registered { .. }
                ));
            }
            assert_eq!(
                s.register(event(EID1, "a", "dp2")).await.expect("ok"),
                RegisterOutcome::Duplicate
            );
            s.register(event(EID2, "a", "dp2"))
                .await
                .expect("other EID may reuse the id");
            let ids: Vec<String> = s
                .events_for(&Eid::parse(EID1).expect("valid"))
                .expect("read")
                .into_iter()
                .map(|e| e.event_id)
                .collect();
            assert_eq!(ids, ["c", "a", "b"]);
            let eid1 = Eid::parse(EID1).expect("valid");
            assert_eq!(
                s.delete(eid1, "a".into(), "dp2".into()).await.expect("ok"),
                DeleteOutcome::NotFound
            );
            assert_eq!(
                s.delete(eid1, "zz".into(), "dp1".into()).await.expect("ok"),
                DeleteOutcome::NotFound
            );
            assert_eq!(
                s.delete(eid1, "a".into(), "dp1".into()).await.expect("ok"),
                DeleteOutcome::Deleted
            );
            assert_eq!(s.count().expect("count"), 3);
            assert_eq!(s.check_integrity().expect("consistent"), 3);
            s.shutdown().await;
        }
        let s = Store::open(&path, WriterConfig::default()).expect("reopen");
        let ids: Vec<String> = s
            .events_for(&Eid::parse(EID1).expect("valid"))
            .expect("read")
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(ids, ["c", "b"]);
        s.register(event(EID1, "a", "dp1"))
            .await
            .expect("re-register after delete");
        let last = s
            .events_for(&Eid::parse(EID1).expect("valid"))
            .expect("read");
        assert_eq!(
            last.last().map(|e| e.event_id.as_str()),
            Some("a"),
            "FIFO continues after reopen"
        );
        s.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn truncated_database_is_refused_not_emptied() {
        let dir = std::env::temp_dir().join(format!("smds-store-trunc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("events.redb");
        let s = Store::open(&path, WriterConfig::default()).expect("open");
        for i in 0..2000 {
            s.register(event(EID1, &format!("e{i}"), "dp"))
                .await
                .expect("ok");
        }
        s.shutdown().await;
        drop(s);
        let len = std::fs::metadata(&path).expect("meta").len();
        for cut in [len / 2, len / 4, 4096, 100] {
            let copy = dir.join(format!("cut-{cut}.redb"));
            let data = std::fs::read(&path).expect("read");
            std::fs::write(&copy, &data[..cut as usize]).expect("write");
            match Store::open(&copy, WriterConfig::default()) {
                Err(e) => assert!(e.to_string().contains(&format!("cut-{cut}.redb")), "{e}"),
                Ok(s) => {
                    // If redb could repair it, no event may have silently vanished.
                    let n = s.count().expect("count");
                    assert_eq!(
                        n, 2000,
                        "a truncated database ({cut} of {len} bytes) opened with {n} events"
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn truncated_or_garbage_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("smds-store-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let empty = dir.join("empty.redb");
        std::fs::write(&empty, b"").expect("write");
        let err = Store::open(&empty, WriterConfig::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("empty.redb") && err.contains("empty"), "{err}");
        let junk = dir.join("junk.redb");
        std::fs::write(&junk, vec![0x42; 4096]).expect("write");
        let err = Store::open(&junk, WriterConfig::default())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("junk.redb"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
