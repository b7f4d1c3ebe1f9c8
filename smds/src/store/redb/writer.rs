//! The one writer thread: it batches whatever requests are queued into a single transaction
//! committed with `Durability::Immediate` (group commit) and answers each request only after
//! that commit. When a commit fails (disk full, I/O error) redb refuses further writes on that
//! handle; the writer then answers writes with the error until a probe file shows that space is
//! back, and reopens the database (swapping the handle readers use) before the next write.
//! Nothing acknowledged is lost: a failed batch was never acknowledged.

use super::Bounds;
use super::schema::{
    self, BY_EVENT_ID, COUNTS, DELETE_QUEUE, EC_ID_OF_EID, EC_IDS, EVENTS, EidCounts, META,
    NEXT_OWNER, NEXT_PUSH, NEXT_QUEUED, NEXT_SEQ, OWNERS, PUSH_QUEUE, PUSH_TOKENS, UNCONFIRMED,
    USED_TRANSACTIONS, error, unreadable,
};
use crate::asn1::TransactionId;
use crate::identity::OwnerId;
use crate::store::{
    DeleteOutcome, EventRecord, QueuedDelete, QueuedPush, RegisterOutcome, StoreError, StoredEvent,
};
use crate::types::{EventId, PushToken};
use pki_tool::Eid;
use redb::{Database, ReadableTable, ReadableTableMetadata};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(super) enum Op {
    Register(Box<EventRecord>),
    UseTransaction {
        tid: TransactionId,
        expires: i64,
    },
    /// Transactions already known used in memory (see [`super::used`]), written as a batch;
    /// `durable` at shutdown.
    RecordUsed {
        entries: Vec<(TransactionId, i64)>,
        durable: bool,
    },
    SweepTransactions {
        now: i64,
    },
    IssueEcId {
        eid: Eid,
        ec_id: [u8; 16],
        expires: i64,
    },
    Delete {
        eid: Eid,
        event_id: EventId,
        owner: OwnerId,
        /// Queue the ES15 delete of a forwarded record (false: the Root refused it).
        queue_forward: bool,
    },
    ConfirmForward {
        eid: Eid,
        event_id: EventId,
        owner: OwnerId,
    },
    QueuedDone {
        id: u64,
    },
    QueuedFailed {
        id: u64,
        error: String,
    },
    RegisterPushToken {
        eid: Eid,
        service: String,
        token: PushToken,
        expires: i64,
    },
    PushDone {
        id: u64,
    },
    PushFailed {
        id: u64,
    },
}

pub(super) enum Outcome {
    Register(RegisterOutcome),
    Delete(DeleteOutcome),
    /// Whether the transaction was recorded now (false: it was used already).
    FirstUse(bool),
    Recorded,
    Swept(u64),
    /// Whether the forwarded record was there to confirm.
    Confirmed(bool),
    Done,
}

pub(super) type Reply = oneshot::Sender<Result<Outcome, StoreError>>;

pub(super) enum Msg {
    Op(Op, Reply),
    /// Commit what is queued before this message, then stop.
    Stop,
}

/// The current database handle; replaced after a write failure once the disk has room again.
pub(super) struct DbSlot {
    handle: std::sync::RwLock<Arc<Database>>,
    path: PathBuf,
    cache_bytes: usize,
}

impl DbSlot {
    pub(super) fn new(db: Database, path: PathBuf, cache_bytes: usize) -> Self {
        DbSlot {
            handle: std::sync::RwLock::new(Arc::new(db)),
            path,
            cache_bytes,
        }
    }

    pub(super) fn get(&self) -> Arc<Database> {
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
                .map_err(error)?,
        );
        let old = std::mem::replace(&mut *guard, placeholder);
        drop(old);
        *guard = Arc::new(schema::open_database(&self.path, self.cache_bytes, false)?);
        Ok(())
    }
}

/// Runs until a [`Msg::Stop`] or until every sender is gone.
pub(super) fn run(db: &DbSlot, mut rx: mpsc::Receiver<Msg>, max_batch: usize, bounds: Bounds) {
    let mut stopping = false;
    // The error of the last failed commit, while writes are being refused.
    let mut failed: Option<StoreError> = None;
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
                    let _ = reply.send(Err(why.clone()));
                }
                continue;
            }
        }
        match apply_batch(&db.get(), &batch, bounds) {
            Ok(outcomes) => {
                for ((_, reply), outcome) in batch.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, requests = batch.len(), "event batch not committed");
                for (_, reply) in batch {
                    let _ = reply.send(Err(e.clone()));
                }
                failed = Some(e);
            }
        }
    }
    // Whatever is still queued is answered with Closed when `rx` drops here.
}

/// The EID's counter record.
fn read_counts(counts: &redb::Table<'_, &str, &[u8]>, eid: &str) -> Result<EidCounts, StoreError> {
    match counts.get(eid).map_err(error)? {
        Some(v) => EidCounts::decode(v.value()),
        None => Ok(EidCounts::default()),
    }
}

fn write_counts(
    counts: &mut redb::Table<'_, &str, &[u8]>,
    eid: &str,
    c: &EidCounts,
) -> Result<(), StoreError> {
    if c.is_empty() {
        counts.remove(eid).map_err(error)?;
    } else {
        counts.insert(eid, c.encode().as_slice()).map_err(error)?;
    }
    Ok(())
}

/// Applies a batch in one transaction; nothing of it is visible unless the commit succeeds.
fn apply_batch(
    db: &Database,
    batch: &[(Op, Reply)],
    bounds: Bounds,
) -> Result<Vec<Outcome>, StoreError> {
    let mut txn = db.begin_write().map_err(error)?;
    // Events are acknowledged only once fsynced. A batch that only records used ES11
    // transactions is committed without fsync: it becomes durable with the next durable commit
    // (any event write, the periodic sweep, shutdown), so a crash forgets at most the transactions
    // used since then, which only their own eUICC's signed response could replay until they expire.
    let only_transactions = batch.iter().all(|(op, _)| {
        matches!(
            op,
            Op::UseTransaction { .. }
                | Op::RecordUsed { durable: false, .. }
                | Op::IssueEcId { .. }
        )
    });
    let durability = if only_transactions {
        redb::Durability::None
    } else {
        redb::Durability::Immediate
    };
    txn.set_durability(durability)
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut events = txn.open_table(EVENTS).map_err(error)?;
        let mut index = txn.open_table(BY_EVENT_ID).map_err(error)?;
        let mut meta = txn.open_table(META).map_err(error)?;
        let mut counts = txn.open_table(COUNTS).map_err(error)?;
        let mut owners = txn.open_table(OWNERS).map_err(error)?;
        let mut used = txn.open_table(USED_TRANSACTIONS).map_err(error)?;
        let mut unconfirmed = txn.open_table(UNCONFIRMED).map_err(error)?;
        let mut queue = txn.open_table(DELETE_QUEUE).map_err(error)?;
        let mut ec_ids = txn.open_table(EC_IDS).map_err(error)?;
        let mut ec_id_of_eid = txn.open_table(EC_ID_OF_EID).map_err(error)?;
        let mut push_tokens = txn.open_table(PUSH_TOKENS).map_err(error)?;
        let mut push_queue = txn.open_table(PUSH_QUEUE).map_err(error)?;
        let mut next_push = meta.get(NEXT_PUSH).map_err(error)?.map_or(1, |v| v.value());
        let first_push = next_push;
        let mut next_queued = meta
            .get(NEXT_QUEUED)
            .map_err(error)?
            .map_or(1, |v| v.value());
        let first_queued = next_queued;
        let mut next_seq = meta.get(NEXT_SEQ).map_err(error)?.map_or(1, |v| v.value());
        let first_owner = meta
            .get(NEXT_OWNER)
            .map_err(error)?
            .map_or(1, |v| v.value());
        let mut next_owner = first_owner;
        for (op, _) in batch {
            match op {
                Op::UseTransaction { tid, expires } => {
                    let key = tid.as_bytes();
                    let seen = used.get(key).map_err(error)?.is_some();
                    if !seen {
                        used.insert(key, *expires).map_err(error)?;
                    }
                    outcomes.push(Outcome::FirstUse(!seen));
                }
                Op::RecordUsed { entries, .. } => {
                    for (tid, expires) in entries {
                        used.insert(tid.as_bytes(), *expires).map_err(error)?;
                    }
                    outcomes.push(Outcome::Recorded);
                }
                Op::SweepTransactions { now } => {
                    let before = used.len().map_err(error)?;
                    used.retain(|_, expires| expires >= *now).map_err(error)?;
                    let after = used.len().map_err(error)?;
                    let mut expired = Vec::new();
                    for item in ec_ids.iter().map_err(error)? {
                        let (_, v) = item.map_err(error)?;
                        let (eid, expires) = v.value();
                        if expires < *now {
                            expired.push(eid.to_string());
                        }
                    }
                    ec_ids
                        .retain(|_, (_, expires)| expires >= *now)
                        .map_err(error)?;
                    for eid in expired {
                        ec_id_of_eid.remove(eid.as_str()).map_err(error)?;
                    }
                    push_tokens
                        .retain(|_, (_, expires)| expires >= *now)
                        .map_err(error)?;
                    outcomes.push(Outcome::Swept(before.saturating_sub(after)));
                }
                Op::IssueEcId {
                    eid,
                    ec_id,
                    expires,
                } => {
                    let old = ec_id_of_eid
                        .insert(eid.as_str(), &ec_id[..])
                        .map_err(error)?
                        .map(|v| v.value().to_vec());
                    if let Some(old) = old {
                        ec_ids.remove(old.as_slice()).map_err(error)?;
                    }
                    ec_ids
                        .insert(&ec_id[..], (eid.as_str(), *expires))
                        .map_err(error)?;
                    outcomes.push(Outcome::Done);
                }
                Op::ConfirmForward {
                    eid,
                    event_id,
                    owner,
                } => {
                    let eid = eid.as_str();
                    let number = owners
                        .get(owner.as_str())
                        .map_err(error)?
                        .map_or(0, |n| n.value());
                    let seq = index
                        .get((eid, number, event_id.as_str()))
                        .map_err(error)?
                        .map(|v| v.value());
                    // An unreadable record cannot be confirmed (nor fail the shared batch).
                    let stored = match seq {
                        Some(seq) => events
                            .get((eid, seq))
                            .map_err(error)?
                            .and_then(|v| serde_json::from_slice::<StoredEvent>(v.value()).ok()),
                        None => None,
                    };
                    let Some(mut stored) = stored.filter(|s| s.record.forwarded.is_some()) else {
                        outcomes.push(Outcome::Confirmed(false));
                        continue;
                    };
                    if let Some(f) = stored.record.forwarded.as_mut() {
                        f.confirmed = true;
                    }
                    let bytes = serde_json::to_vec(&stored).map_err(unreadable)?;
                    events
                        .insert((eid, stored.seq), bytes.as_slice())
                        .map_err(error)?;
                    unconfirmed.remove((eid, stored.seq)).map_err(error)?;
                    outcomes.push(Outcome::Confirmed(true));
                }
                Op::QueuedDone { id } => {
                    queue.remove(*id).map_err(error)?;
                    outcomes.push(Outcome::Done);
                }
                Op::QueuedFailed { id, error: why } => {
                    let entry = queue
                        .get(*id)
                        .map_err(error)?
                        .and_then(|v| serde_json::from_slice::<QueuedDelete>(v.value()).ok());
                    if let Some(mut q) = entry {
                        q.attempts = q.attempts.saturating_add(1);
                        q.last_error = Some(why.clone());
                        let bytes = serde_json::to_vec(&q).map_err(unreadable)?;
                        queue.insert(*id, bytes.as_slice()).map_err(error)?;
                    }
                    outcomes.push(Outcome::Done);
                }
                Op::RegisterPushToken {
                    eid,
                    service,
                    token,
                    expires,
                } => {
                    push_tokens
                        .insert((eid.as_str(), service.as_str()), (token.secret(), *expires))
                        .map_err(error)?;
                    outcomes.push(Outcome::Done);
                }
                Op::PushDone { id } => {
                    push_queue.remove(*id).map_err(error)?;
                    outcomes.push(Outcome::Done);
                }
                Op::PushFailed { id } => {
                    let entry = push_queue
                        .get(*id)
                        .map_err(error)?
                        .and_then(|v| serde_json::from_slice::<QueuedPush>(v.value()).ok());
                    if let Some(mut q) = entry {
                        q.attempts = q.attempts.saturating_add(1);
                        let bytes = serde_json::to_vec(&q).map_err(unreadable)?;
                        push_queue.insert(*id, bytes.as_slice()).map_err(error)?;
                    }
                    outcomes.push(Outcome::Done);
                }
                Op::Register(e) => {
                    let eid = e.eid.as_str();
                    let known = owners
                        .get(e.owner.as_str())
                        .map_err(error)?
                        .map(|n| n.value());
                    let owner = match known {
                        Some(n) => n,
                        None => {
                            let n = next_owner;
                            next_owner += 1;
                            owners.insert(e.owner.as_str(), n).map_err(error)?;
                            n
                        }
                    };
                    let key = (eid, owner, e.event_id.as_str());
                    if index.get(key).map_err(error)?.is_some() {
                        outcomes.push(Outcome::Register(RegisterOutcome::Duplicate));
                        continue;
                    }
                    let mut c = read_counts(&counts, eid)?;
                    if c.of(owner) >= bounds.per_owner as u64 {
                        outcomes.push(Outcome::Register(RegisterOutcome::TooMany));
                        continue;
                    }
                    if c.total() >= bounds.all_owners as u64 {
                        outcomes.push(Outcome::Register(RegisterOutcome::EidFull));
                        continue;
                    }
                    c.bump(owner, true);
                    write_counts(&mut counts, eid, &c)?;
                    let seq = next_seq;
                    next_seq += 1;
                    let stored = StoredEvent {
                        record: (**e).clone(),
                        seq,
                    };
                    let bytes = serde_json::to_vec(&stored).map_err(unreadable)?;
                    events.insert((eid, seq), bytes.as_slice()).map_err(error)?;
                    index.insert(key, seq).map_err(error)?;
                    if e.forwarded.as_ref().is_some_and(|f| !f.confirmed) {
                        unconfirmed.insert((eid, seq), ()).map_err(error)?;
                    }
                    // The EID's devices are told, with this commit or not at all.
                    let mut owed = Vec::new();
                    for item in push_tokens.range((eid, "")..).map_err(error)? {
                        let (k, v) = item.map_err(error)?;
                        let (token_eid, service) = k.value();
                        if token_eid != eid {
                            break;
                        }
                        let (token, expires) = v.value();
                        if expires >= e.registered_at
                            && let Ok(token) = PushToken::parse(token)
                        {
                            owed.push((service.to_string(), token));
                        }
                    }
                    for (service, token) in owed {
                        let queued = QueuedPush {
                            id: next_push,
                            service,
                            token,
                            queued_at: e.registered_at,
                            attempts: 0,
                        };
                        let bytes = serde_json::to_vec(&queued).map_err(unreadable)?;
                        push_queue
                            .insert(next_push, bytes.as_slice())
                            .map_err(error)?;
                        next_push += 1;
                    }
                    outcomes.push(Outcome::Register(RegisterOutcome::Registered { seq }));
                }
                Op::Delete {
                    eid,
                    event_id,
                    owner,
                    queue_forward,
                } => {
                    // The key includes the caller: another SM-DP+'s event and an unknown one
                    // are the same miss, with the same work.
                    let eid_value = eid;
                    let eid = eid.as_str();
                    let number = owners
                        .get(owner.as_str())
                        .map_err(error)?
                        .map_or(0, |n| n.value());
                    let removed = index
                        .remove((eid, number, event_id.as_str()))
                        .map_err(error)?
                        .map(|v| v.value());
                    let Some(seq) = removed else {
                        outcomes.push(Outcome::Delete(DeleteOutcome::NotFound));
                        continue;
                    };
                    // An unreadable record is removed all the same (it cannot be served), and
                    // cannot fail the batch the other requests share; it is logged.
                    let gone = events.remove((eid, seq)).map_err(error)?.and_then(|v| {
                        serde_json::from_slice::<StoredEvent>(v.value())
                            .inspect_err(|e| {
                                tracing::warn!(eid, seq, error = %e, "an unreadable event record was deleted; if it was forwarded, its Root copy is not deleted");
                            })
                            .ok()
                    });
                    unconfirmed.remove((eid, seq)).map_err(error)?;
                    if let Some(f) = gone
                        .and_then(|g| g.record.forwarded)
                        .filter(|_| *queue_forward)
                    {
                        let queued = QueuedDelete {
                            id: next_queued,
                            eid: *eid_value,
                            root_event_id: f.root_event_id,
                            queued_at: pki_tool::time::now(),
                            attempts: 0,
                            last_error: None,
                        };
                        let bytes = serde_json::to_vec(&queued).map_err(unreadable)?;
                        queue.insert(next_queued, bytes.as_slice()).map_err(error)?;
                        next_queued += 1;
                    }
                    let mut c = read_counts(&counts, eid)?;
                    c.bump(number, false);
                    write_counts(&mut counts, eid, &c)?;
                    outcomes.push(Outcome::Delete(DeleteOutcome::Deleted));
                }
            }
        }
        meta.insert(NEXT_SEQ, next_seq).map_err(error)?;
        if next_queued != first_queued {
            meta.insert(NEXT_QUEUED, next_queued).map_err(error)?;
        }
        if next_owner != first_owner {
            meta.insert(NEXT_OWNER, next_owner).map_err(error)?;
        }
        if next_push != first_push {
            meta.insert(NEXT_PUSH, next_push).map_err(error)?;
        }
    }
    txn.commit().map_err(error)?;
    Ok(outcomes)
}
