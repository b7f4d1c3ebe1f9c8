//! The redb tables and how a database file is opened, created and brought up to date, plus the
//! one mapping from redb's errors to [`StoreError`].

use crate::store::{StoreError, StoredEvent};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;

/// (EID, sequence) -> JSON of [`crate::store::StoredEvent`].
pub(super) const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events_v1");
/// Owner key -> a small number standing for it in the index and the counters (keys stay short,
/// so a registration dirties few pages).
pub(super) const OWNERS: TableDefinition<&str, u64> = TableDefinition::new("owners_v1");
/// (EID, owner number, EventID) -> sequence: an EventID is unique per EID and owning SM-DP+, so
/// that no SM-DP+ can learn about, or collide with, another's events.
pub(super) const BY_EVENT_ID: TableDefinition<(&str, u64, &str), u64> =
    TableDefinition::new("event_ids_v2");
/// Counters: `next_seq`, `next_owner`.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");
/// EID -> its events per owner ([`EidCounts`]): the per-owner bound and the EID-wide backstop
/// without a scan, in one record per EID.
pub(super) const COUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("eid_counts_v2");
/// transactionId -> when it expires (Unix seconds): ES11 transactions already used.
pub(super) const USED_TRANSACTIONS: TableDefinition<&[u8], i64> =
    TableDefinition::new("used_transactions_v1");
/// (EID, sequence) of forwarded records the Root has not acknowledged yet (see
/// [`crate::store::Forwarded`]): what a restart undoes, without scanning the events.
pub(super) const UNCONFIRMED: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("unconfirmed_forwards_v1");
/// Queue id -> JSON of [`crate::store::QueuedDelete`]: ES15 deletes the Root has yet to receive.
pub(super) const DELETE_QUEUE: TableDefinition<u64, &[u8]> =
    TableDefinition::new("es15_delete_queue_v1");
/// ecId -> (EID, expires): SGP.22 v3 Event Checking identifiers.
pub(super) const EC_IDS: TableDefinition<&[u8], (&str, i64)> = TableDefinition::new("ec_ids_v1");
/// EID -> its current ecId (so a new one replaces it).
pub(super) const EC_ID_OF_EID: TableDefinition<&str, &[u8]> =
    TableDefinition::new("ec_id_of_eid_v1");
/// (EID, push service OID) -> (push token, expires): SGP.22 v3 push-service registrations.
pub(super) const PUSH_TOKENS: TableDefinition<(&str, &str), (&str, i64)> =
    TableDefinition::new("push_tokens_v1");
/// Queue id -> JSON of [`crate::store::QueuedPush`]: notifications the push gateway has yet to
/// receive.
pub(super) const PUSH_QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("push_queue_v1");
/// Tables of earlier versions, replaced at open.
const LEGACY: [&str; 3] = ["event_ids_v1", "event_counts_v1", "owner_event_counts_v1"];

pub(super) const NEXT_OWNER: &str = "next_owner";
pub(super) const NEXT_QUEUED: &str = "next_queued_delete";
pub(super) const NEXT_PUSH: &str = "next_queued_push";

/// How many events each owner holds for one EID (owners are few per EID).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct EidCounts(Vec<(u64, u64)>);

impl EidCounts {
    pub(super) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() % 16 != 0 {
            return Err(unreadable("an EID counter record has a partial entry"));
        }
        Ok(EidCounts(
            bytes
                .chunks_exact(16)
                .map(|c| {
                    let (o, n) = c.split_at(8);
                    let num = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    (num(o), num(n))
                })
                .collect(),
        ))
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        self.0
            .iter()
            .flat_map(|(o, n)| o.to_le_bytes().into_iter().chain(n.to_le_bytes()))
            .collect()
    }

    pub(super) fn of(&self, owner: u64) -> u64 {
        self.0.iter().find(|(o, _)| *o == owner).map_or(0, |e| e.1)
    }

    pub(super) fn total(&self) -> u64 {
        self.0.iter().map(|e| e.1).sum()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn entries(&self) -> &[(u64, u64)] {
        &self.0
    }

    /// One more (`up`) or one fewer event of `owner`; an owner at zero is dropped.
    pub(super) fn bump(&mut self, owner: u64, up: bool) {
        match self.0.iter_mut().position(|(o, _)| *o == owner) {
            Some(i) => {
                let n = &mut self.0[i].1;
                *n = if up { *n + 1 } else { n.saturating_sub(1) };
                if self.0[i].1 == 0 {
                    self.0.remove(i);
                }
            }
            None if up => self.0.push((owner, 1)),
            None => {}
        }
    }
}

pub(super) const NEXT_SEQ: &str = "next_seq";

/// `ENOSPC`: redb reports a full disk as a plain I/O error.
const ENOSPC: i32 = 28;

/// Maps any redb error to a [`StoreError`].
pub(super) fn error(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(io) => io_error(&io),
        redb::Error::DatabaseAlreadyOpen => StoreError::Locked,
        redb::Error::Corrupted(s) => StoreError::Corrupt(s),
        redb::Error::UpgradeRequired(v) => {
            StoreError::Corrupt(format!("written by a newer redb (file format {v})"))
        }
        other => StoreError::Backend(other.to_string()),
    }
}

pub(super) fn io_error(e: &std::io::Error) -> StoreError {
    if e.raw_os_error() == Some(ENOSPC) || e.kind() == std::io::ErrorKind::StorageFull {
        StoreError::DiskFull
    } else {
        StoreError::Io(e.kind())
    }
}

/// A stored record that does not decode.
pub(super) fn unreadable(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(super) fn open_database(
    path: &Path,
    cache_bytes: usize,
    create: bool,
) -> Result<Database, StoreError> {
    let mut b = redb::Builder::new();
    b.set_cache_size(cache_bytes);
    if create { b.create(path) } else { b.open(path) }.map_err(|e| match error(e) {
        // redb reads a file that is not a database as a broken one.
        StoreError::Backend(s) | StoreError::Corrupt(s) => StoreError::Corrupt(s),
        other => other,
    })
}

/// Opens (or creates) the database at `path` and makes sure every table exists, so that
/// readers never see one missing. A database from an earlier version (events without the
/// owner-scoped index) gets the index, owner numbers and counters derived from its events once,
/// in the same transaction that drops the tables they replace.
pub(super) fn open(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let db = if path.exists() {
        let meta = std::fs::metadata(path).map_err(|e| io_error(&e))?;
        if meta.len() == 0 {
            return Err(StoreError::Empty);
        }
        open_database(path, cache_bytes, false)?
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(&e))?;
        }
        open_database(path, cache_bytes, true)?
    };
    let txn = db.begin_write().map_err(error)?;
    for name in LEGACY {
        let legacy: TableDefinition<&str, u64> = TableDefinition::new(name);
        txn.delete_table(legacy).map_err(error)?;
    }
    {
        let mut meta = txn.open_table(META).map_err(error)?;
        let events = txn.open_table(EVENTS).map_err(error)?;
        let mut owners = txn.open_table(OWNERS).map_err(error)?;
        let mut index = txn.open_table(BY_EVENT_ID).map_err(error)?;
        let mut counts = txn.open_table(COUNTS).map_err(error)?;
        txn.open_table(USED_TRANSACTIONS).map_err(error)?;
        txn.open_table(UNCONFIRMED).map_err(error)?;
        txn.open_table(DELETE_QUEUE).map_err(error)?;
        txn.open_table(EC_IDS).map_err(error)?;
        txn.open_table(EC_ID_OF_EID).map_err(error)?;
        txn.open_table(PUSH_TOKENS).map_err(error)?;
        txn.open_table(PUSH_QUEUE).map_err(error)?;
        if !events.is_empty().map_err(error)?
            && (index.is_empty().map_err(error)? || counts.is_empty().map_err(error)?)
        {
            // A database from before the owner-scoped index: derive it (and the owner numbers
            // and counters) from the events, in this one transaction.
            let mut next_owner = meta
                .get(NEXT_OWNER)
                .map_err(error)?
                .map_or(1, |v| v.value());
            let mut per_eid: BTreeMap<String, EidCounts> = BTreeMap::new();
            for item in events.iter().map_err(error)? {
                let (k, v) = item.map_err(error)?;
                let (eid, seq) = k.value();
                let e: StoredEvent = serde_json::from_slice(v.value())
                    .map_err(|e| unreadable(format!("event {eid}/{seq}: {e}")))?;
                let owner = e.record.owner.as_str();
                let known = owners.get(owner).map_err(error)?.map(|n| n.value());
                let number = match known {
                    Some(n) => n,
                    None => {
                        let n = next_owner;
                        next_owner += 1;
                        owners.insert(owner, n).map_err(error)?;
                        n
                    }
                };
                index
                    .insert((eid, number, e.record.event_id.as_str()), seq)
                    .map_err(error)?;
                per_eid
                    .entry(eid.to_string())
                    .or_default()
                    .bump(number, true);
            }
            for (eid, c) in per_eid {
                counts
                    .insert(eid.as_str(), c.encode().as_slice())
                    .map_err(error)?;
            }
            meta.insert(NEXT_OWNER, next_owner).map_err(error)?;
        }
    }
    txn.commit().map_err(error)?;
    Ok(db)
}
