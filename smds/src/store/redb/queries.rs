//! Reads, each in its own read transaction: they never wait for the writer. Synchronous (redb
//! does blocking file I/O); [`super::RedbStore`] runs the large ones (admin pages, integrity) off
//! the async workers and one EID's events in place.

use super::schema::{
    BY_EVENT_ID, COUNTS, DELETE_QUEUE, EC_IDS, EVENTS, EidCounts, META, NEXT_SEQ, OWNERS,
    PUSH_QUEUE, UNCONFIRMED, USED_TRANSACTIONS, error, unreadable,
};
use crate::asn1::TransactionId;
use crate::store::{QueuedDelete, QueuedPush};
use crate::store::{StoreError, StoredEvent};
use pki_tool::Eid;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

fn decode(bytes: &[u8]) -> Result<StoredEvent, StoreError> {
    serde_json::from_slice(bytes).map_err(unreadable)
}

/// The events of one EID in registration order: a range scan, O(log n + k).
pub(super) fn events_for(db: &Database, eid: &Eid) -> Result<Vec<StoredEvent>, StoreError> {
    let txn = db.begin_read().map_err(error)?;
    let table = txn.open_table(EVENTS).map_err(error)?;
    let key = eid.as_str();
    let mut out = Vec::new();
    for item in table.range((key, 0u64)..=(key, u64::MAX)).map_err(error)? {
        let (_, v) = item.map_err(error)?;
        out.push(decode(v.value())?);
    }
    Ok(out)
}

/// The used ES11 transactions that expire at `now` or later (read once, at open).
pub(super) fn used_transactions(
    db: &Database,
    now: i64,
) -> Result<Vec<(TransactionId, i64)>, StoreError> {
    let txn = db.begin_read().map_err(error)?;
    let table = txn.open_table(USED_TRANSACTIONS).map_err(error)?;
    let mut out = Vec::new();
    for item in table.iter().map_err(error)? {
        let (k, v) = item.map_err(error)?;
        let expires = v.value();
        // A key that is no transactionId cannot be presented again: nothing to remember.
        if let Some(tid) = TransactionId::new(k.value())
            && expires >= now
        {
            out.push((tid, expires));
        }
    }
    Ok(out)
}

/// The EID an unexpired ecId stands for.
pub(super) fn eid_for_ec_id(
    db: &Database,
    ec_id: &[u8],
    now: i64,
) -> Result<Option<Eid>, StoreError> {
    let txn = db.begin_read().map_err(error)?;
    let table = txn.open_table(EC_IDS).map_err(error)?;
    let Some(v) = table.get(ec_id).map_err(error)? else {
        return Ok(None);
    };
    let (eid, expires) = v.value();
    if expires < now {
        return Ok(None);
    }
    Eid::parse(eid)
        .map(Some)
        .map_err(|_| unreadable("an ecId names an invalid EID"))
}

/// Forwarded records the Root has not acknowledged.
pub(super) fn unconfirmed_forwards(db: &Database) -> Result<Vec<StoredEvent>, StoreError> {
    let txn = db.begin_read().map_err(error)?;
    let marks = txn.open_table(UNCONFIRMED).map_err(error)?;
    let events = txn.open_table(EVENTS).map_err(error)?;
    let mut out = Vec::new();
    for item in marks.iter().map_err(error)? {
        let (k, _) = item.map_err(error)?;
        if let Some(v) = events.get(k.value()).map_err(error)? {
            // One unreadable record must not stop the recovery of the others.
            match decode(v.value()) {
                Ok(e) => out.push(e),
                Err(e) => {
                    tracing::warn!(error = %e, "an unreadable unconfirmed forward is skipped")
                }
            }
        }
    }
    Ok(out)
}

/// The oldest `limit` entries of a delivery queue (`what` names it in the log).
fn queued<T: serde::de::DeserializeOwned>(
    db: &Database,
    table: redb::TableDefinition<u64, &[u8]>,
    limit: usize,
    what: &str,
) -> Result<Vec<T>, StoreError> {
    let txn = db.begin_read().map_err(error)?;
    let queue = txn.open_table(table).map_err(error)?;
    let mut out = Vec::new();
    for item in queue.iter().map_err(error)?.take(limit) {
        let (k, v) = item.map_err(error)?;
        // One unreadable entry must not stop the delivery of the others.
        match serde_json::from_slice(v.value()) {
            Ok(q) => out.push(q),
            Err(e) => {
                tracing::warn!(id = k.value(), error = %e, "an unreadable queued {what} is skipped")
            }
        }
    }
    Ok(out)
}

/// The oldest `limit` queued ES15 deletes.
pub(super) fn queued_deletes(db: &Database, limit: usize) -> Result<Vec<QueuedDelete>, StoreError> {
    queued(db, DELETE_QUEUE, limit, "ES15 delete")
}

/// The oldest `limit` queued push notifications.
pub(super) fn queued_pushes(db: &Database, limit: usize) -> Result<Vec<QueuedPush>, StoreError> {
    queued(db, PUSH_QUEUE, limit, "push notification")
}

/// Events (optionally of one EID) after the key `after`, at most `limit`, in key order.
pub(super) fn list(
    db: &Database,
    eid: Option<&Eid>,
    after: Option<(Eid, u64)>,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let txn = db.begin_read().map_err(error)?;
    let table = txn.open_table(EVENTS).map_err(error)?;
    let start = after.map(|(e, seq)| (e, seq.saturating_add(1)));
    match (eid, start.as_ref()) {
        (Some(eid), after) => {
            let from = after.filter(|(e, _)| e == eid).map_or(0, |(_, s)| *s);
            decode_all(
                table
                    .range((eid.as_str(), from)..=(eid.as_str(), u64::MAX))
                    .map_err(error)?,
                limit,
            )
        }
        (None, Some((e, seq))) => {
            decode_all(table.range((e.as_str(), *seq)..).map_err(error)?, limit)
        }
        (None, None) => decode_all(table.iter().map_err(error)?, limit),
    }
}

/// One row of the events table as redb yields it.
type EventRow<'a> = Result<
    (
        redb::AccessGuard<'a, (&'static str, u64)>,
        redb::AccessGuard<'a, &'static [u8]>,
    ),
    redb::StorageError,
>;

fn decode_all<'a>(
    rows: impl Iterator<Item = EventRow<'a>>,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    rows.take(limit)
        .map(|row| {
            let (_, v) = row.map_err(error)?;
            decode(v.value())
        })
        .collect()
}

pub(super) fn count(db: &Database) -> Result<u64, StoreError> {
    let txn = db.begin_read().map_err(error)?;
    let table = txn.open_table(EVENTS).map_err(error)?;
    table.len().map_err(error)
}

/// Checks that the event table, the owner numbers, the EventID index and the per-EID counters
/// describe the same events and that the sequence counter is ahead of every event; returns the
/// number of events.
pub(super) fn check_integrity(db: &Database) -> Result<u64, StoreError> {
    use std::collections::BTreeMap;
    let txn = db.begin_read().map_err(error)?;
    let events = txn.open_table(EVENTS).map_err(error)?;
    let index = txn.open_table(BY_EVENT_ID).map_err(error)?;
    let meta = txn.open_table(META).map_err(error)?;
    let counts = txn.open_table(COUNTS).map_err(error)?;
    let owners = txn.open_table(OWNERS).map_err(error)?;
    let next_seq = meta.get(NEXT_SEQ).map_err(error)?.map_or(1, |v| v.value());
    let mut per_eid: BTreeMap<String, EidCounts> = BTreeMap::new();
    let mut n = 0u64;
    for item in events.iter().map_err(error)? {
        let (k, v) = item.map_err(error)?;
        let (eid, seq) = k.value();
        let e = decode(v.value())
            .map_err(|e| StoreError::Corrupt(format!("event {eid}/{seq} unreadable: {e}")))?;
        if e.record.eid.as_str() != eid || e.seq != seq {
            return Err(StoreError::Corrupt(format!(
                "event {eid}/{seq} is filed under the wrong key"
            )));
        }
        let owner = owners
            .get(e.record.owner.as_str())
            .map_err(error)?
            .map(|v| v.value())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("event {eid}/{seq} has an owner with no number"))
            })?;
        if index
            .get((eid, owner, e.record.event_id.as_str()))
            .map_err(error)?
            .map(|s| s.value())
            != Some(seq)
        {
            return Err(StoreError::Corrupt(format!(
                "event {eid}/{} is missing from the index",
                e.record.event_id
            )));
        }
        if seq >= next_seq {
            return Err(StoreError::Corrupt(format!(
                "event {eid}/{seq} is ahead of the sequence counter"
            )));
        }
        per_eid
            .entry(eid.to_string())
            .or_default()
            .bump(owner, true);
        n += 1;
    }
    let indexed = index.len().map_err(error)?;
    if indexed != n {
        return Err(StoreError::Corrupt(format!(
            "{indexed} index entries for {n} events"
        )));
    }
    let mut counted = 0usize;
    for item in counts.iter().map_err(error)? {
        let (eid, c) = item.map_err(error)?;
        counted += 1;
        let mut stored = EidCounts::decode(c.value())?.entries().to_vec();
        let mut held = per_eid
            .get(eid.value())
            .map(|h| h.entries().to_vec())
            .unwrap_or_default();
        stored.sort_unstable();
        held.sort_unstable();
        if stored != held {
            return Err(StoreError::Corrupt(format!(
                "the counters of EID {} say {stored:?} (owner number, events) but it holds {held:?}",
                eid.value()
            )));
        }
    }
    if counted != per_eid.len() {
        return Err(StoreError::Corrupt(format!(
            "{} EIDs hold events but {counted} have counters",
            per_eid.len()
        )));
    }
    Ok(n)
}
