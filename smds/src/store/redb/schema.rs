//! The redb tables and how a database file is opened, created and brought up to date, plus the
//! one mapping from redb's errors to [`StoreError`].

use crate::store::{StoreError, StoredEvent};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;

/// (EID, sequence) -> JSON of [`crate::store::StoredEvent`].
pub(super) const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("events_v1");
/// (EID, owner, EventID) -> sequence: an EventID is unique per EID and owning SM-DP+, so that
/// no SM-DP+ can learn about, or collide with, another's events.
pub(super) const BY_EVENT_ID: TableDefinition<(&str, &str, &str), u64> =
    TableDefinition::new("event_ids_v2");
/// The index before it was scoped to the owner: (EID, EventID) -> sequence. Replaced at open.
const LEGACY_BY_EVENT_ID: TableDefinition<(&str, &str), u64> = TableDefinition::new("event_ids_v1");
/// Counters: `next_seq`.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v1");
/// EID -> number of its events, all owners (for the EID-wide backstop without a scan).
pub(super) const COUNTS: TableDefinition<&str, u64> = TableDefinition::new("event_counts_v1");
/// (EID, owner) -> number of that owner's events for the EID (for the per-owner bound).
pub(super) const OWNER_COUNTS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("owner_event_counts_v1");

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
/// readers never see one missing. Derived tables that are empty while events exist (a database
/// written before they existed) are rebuilt from the events once, in the same transaction that
/// drops the index they replace.
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
    {
        txn.open_table(META).map_err(error)?;
        let events = txn.open_table(EVENTS).map_err(error)?;
        let mut index = txn.open_table(BY_EVENT_ID).map_err(error)?;
        let mut counts = txn.open_table(COUNTS).map_err(error)?;
        let mut owner_counts = txn.open_table(OWNER_COUNTS).map_err(error)?;
        if !events.is_empty().map_err(error)? {
            let rebuild_index = index.is_empty().map_err(error)?;
            let rebuild_counts = counts.is_empty().map_err(error)?;
            let rebuild_owner_counts = owner_counts.is_empty().map_err(error)?;
            if rebuild_index || rebuild_counts || rebuild_owner_counts {
                let mut per_eid: BTreeMap<String, u64> = BTreeMap::new();
                let mut per_owner: BTreeMap<(String, String), u64> = BTreeMap::new();
                for item in events.iter().map_err(error)? {
                    let (k, v) = item.map_err(error)?;
                    let (eid, seq) = k.value();
                    let e: StoredEvent = serde_json::from_slice(v.value())
                        .map_err(|e| unreadable(format!("event {eid}/{seq}: {e}")))?;
                    let owner = e.record.owner.as_str();
                    if rebuild_index {
                        index
                            .insert((eid, owner, e.record.event_id.as_str()), seq)
                            .map_err(error)?;
                    }
                    *per_eid.entry(eid.to_string()).or_default() += 1;
                    *per_owner
                        .entry((eid.to_string(), owner.to_string()))
                        .or_default() += 1;
                }
                if rebuild_counts {
                    for (eid, n) in per_eid {
                        counts.insert(eid.as_str(), n).map_err(error)?;
                    }
                }
                if rebuild_owner_counts {
                    for ((eid, owner), n) in per_owner {
                        owner_counts
                            .insert((eid.as_str(), owner.as_str()), n)
                            .map_err(error)?;
                    }
                }
            }
        }
    }
    txn.delete_table(LEGACY_BY_EVENT_ID).map_err(error)?;
    txn.commit().map_err(error)?;
    Ok(db)
}
