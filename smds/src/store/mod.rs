//! The event store: what ES12 registers and ES11 reads, behind two small traits so handlers do
//! not know the backend. [`EventStore`] is what the SGP.22 functions need (register, delete,
//! events for one EID); [`EventAdmin`] is what operators need (list, count, integrity).
//! [`redb::RedbStore`] is the embedded implementation (one node); [`postgres::PgStore`] is the
//! shared one (several nodes on one PostgreSQL).
//!
//! Guarantees every implementation gives: events of one EID come back in registration (FIFO)
//! order; an EventID is unique per EID and owning SM-DP+ (two SM-DP+s may use the same one, and
//! neither can tell); a registration or deletion is acknowledged only once it is durable; the
//! per-owner bound and the EID-wide backstop are enforced atomically; deleting someone else's
//! event is the same miss, with the same work, as deleting an unknown one. Callers pass
//! validated values only.
//!
//! [`CascadeStore`] is the durable state of an Alternative SM-DS's forwarding to its Root
//! (`crate::cascade`): which records the Root has acknowledged, and the ES15 deletes it has yet
//! to receive. Deleting a forwarded record queues its ES15 delete in the same transaction, so no
//! deletion (by ES12, by retention, by crash recovery) can leave the Root's copy behind.

#[cfg(test)]
mod contract;
pub mod postgres;
pub mod redb;
pub mod retention;

use crate::asn1::TransactionId;
use crate::identity::OwnerId;
use crate::types::{EventDetailsV3, EventId, PushToken, RspServerAddress};
use pki_tool::Eid;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use self::postgres::{PgOptions, PgStore, StoreUrl};
pub use self::redb::{RedbStore, WriterConfig};

/// An SGP.22 Event Record as registered: what ES12 (or ES15) brings, plus who brought it and
/// when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub eid: Eid,
    pub event_id: EventId,
    pub rsp_server_address: RspServerAddress,
    /// Who registered it: the SM-DP+'s (or, on ES15, the SM-DS's) TLS identity (see
    /// [`crate::identity::PeerIdentity`]).
    pub owner: OwnerId,
    /// The SM-DP+'s certificate SAN (registeredID and DNS names), for operators.
    pub owner_names: Vec<String>,
    pub forwarding_indicator: bool,
    /// Unix seconds.
    pub registered_at: i64,
    /// Set at an Alternative SM-DS when the record was forwarded to the Root over ES15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<Forwarded>,
    /// The SGP.22 v3 EventRecordV3 fields the SM-DP+ gave (none from v2 callers).
    #[serde(default, skip_serializing_if = "EventDetailsV3::is_empty")]
    pub details: EventDetailsV3,
}

impl EventRecord {
    /// Whether ES11 may show it: a forward the Root has not acknowledged is not an event yet
    /// (see `crate::cascade`).
    pub fn is_discoverable(&self) -> bool {
        self.forwarded.as_ref().is_none_or(|f| f.confirmed)
    }
}

/// How a record an Alternative SM-DS forwarded is known at the Root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    /// The EventID the Root holds it under (by default a fresh one, see `crate::cascade`).
    pub root_event_id: EventId,
    /// The Root acknowledged the ES15.RegisterEvent. Until then ES11 does not show the record,
    /// and a restart undoes it (the SM-DP+ was never told it succeeded).
    pub confirmed: bool,
}

/// An ES15.DeleteEvent the Root has yet to receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedDelete {
    /// Queue order; the key for [`CascadeStore::queued_delete_done`].
    pub id: u64,
    pub eid: Eid,
    pub root_event_id: EventId,
    /// Unix seconds.
    pub queued_at: i64,
    /// Delivery attempts that failed so far.
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// An event record as stored, with its position in the global registration order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    #[serde(flatten)]
    pub record: EventRecord,
    pub seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    Registered {
        seq: u64,
    },
    /// This SM-DP+ already has an event with this EventID for this EID.
    Duplicate,
    /// This SM-DP+ already has the maximum number of events for this EID.
    TooMany,
    /// The EID has the maximum number of events from all SM-DP+s together (the backstop).
    EidFull,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// No such event, or an event registered by someone else (deliberately the same answer).
    NotFound,
}

/// Why the store could not do what was asked. Callers decide on the variant, never on the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The disk (or the quota) is full; writes resume when space returns.
    #[error("the disk is full")]
    DiskFull,
    /// Another process holds the database.
    #[error("the database is held by another process (is another smds running on it?)")]
    Locked,
    #[error("I/O error: {0}")]
    Io(std::io::ErrorKind),
    /// The database file is damaged or is not an event database.
    #[error("the database is corrupt or not an event database: {0}")]
    Corrupt(String),
    /// A database file that is empty (truncated?): never replaced by an empty store.
    #[error("the file is empty (truncated?); refusing to start with an empty store in its place")]
    Empty,
    /// Any other failure of the backend.
    #[error("event database error: {0}")]
    Backend(String),
    /// Opening the database at `path` failed.
    #[error("cannot open the event database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: Box<StoreError>,
    },
    #[error("the event store is shutting down")]
    Closed,
    /// The database server cannot be reached, or did not answer in time (PostgreSQL).
    #[error("the event database is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// The underlying error, past any `Open` wrapper.
    pub fn root(&self) -> &StoreError {
        match self {
            StoreError::Open { source, .. } => source.root(),
            e => e,
        }
    }
}

/// What the SGP.22 functions need from the store.
#[async_trait::async_trait]
pub trait EventStore: Send + Sync {
    /// ES12.RegisterEvent: returns once the event is durably committed (or refused).
    async fn register_event(&self, event: EventRecord) -> Result<RegisterOutcome, StoreError>;
    /// ES12.DeleteEvent: deletes the event if `owner` registered it; returns once durable. A
    /// forwarded record's ES15 delete is queued in the same transaction.
    async fn delete_event(
        &self,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
    ) -> Result<DeleteOutcome, StoreError>;
    /// ES11: the events of one EID in registration order.
    async fn events_for(&self, eid: &Eid) -> Result<Vec<StoredEvent>, StoreError>;
    /// ES11: records an AuthenticateClient transaction as used until `expires` (Unix seconds);
    /// false when it was used already (insert-if-absent, atomic). A store shared by several
    /// nodes must fail rather than remember it anywhere the other nodes cannot see.
    async fn use_transaction(&self, tid: &TransactionId, expires: i64) -> Result<bool, StoreError>;
    /// ES11 AuthenticateClient's two calls: [`EventStore::use_transaction`], then, when it was
    /// the first use, [`EventStore::events_for`]; `None` when the transaction was used already.
    /// Stores that can do both in one round trip override it.
    async fn use_transaction_and_read(
        &self,
        tid: &TransactionId,
        expires: i64,
        eid: &Eid,
    ) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        if !self.use_transaction(tid, expires).await? {
            return Ok(None);
        }
        self.events_for(eid).await.map(Some)
    }
    /// SGP.22 v3 Event Checking: `ec_id` now stands for `eid` until `expires` (Unix seconds),
    /// replacing the EID's earlier one (rotated at every full v3 discovery). Like a used
    /// transaction, it need not survive a crash: an unknown ecId only costs the device a full
    /// discovery.
    async fn issue_ec_id(
        &self,
        eid: &Eid,
        ec_id: &[u8; 16],
        expires: i64,
    ) -> Result<(), StoreError>;
    /// The EID an unexpired `ec_id` stands for.
    async fn eid_for_ec_id(&self, ec_id: &[u8], now: i64) -> Result<Option<Eid>, StoreError>;
    /// Forgets used transactions (and ecIds and push tokens) that expired before `now`; returns how many
    /// transactions.
    async fn sweep_transactions(&self, now: i64) -> Result<u64, StoreError>;
    /// Commits what is queued and stops; later writes fail with [`StoreError::Closed`].
    async fn shutdown(&self);
}

/// What operators need from the store.
#[async_trait::async_trait]
pub trait EventAdmin: Send + Sync {
    /// Events (optionally of one EID) in store order (by EID, then registration), the first
    /// `limit` after `after` (an EID and sequence number already seen), for paging.
    async fn list_page(
        &self,
        eid: Option<&Eid>,
        after: Option<(Eid, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// All events (optionally of one EID), at most `limit`, in store order.
    async fn list(&self, eid: Option<&Eid>, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.list_page(eid, None, limit).await
    }
    /// Number of stored events.
    async fn count(&self) -> Result<u64, StoreError>;
    /// Checks the store's internal consistency; returns the number of events.
    async fn check_integrity(&self) -> Result<u64, StoreError>;
}

/// The durable state of an Alternative SM-DS's cascade (see the module docs).
#[async_trait::async_trait]
pub trait CascadeStore: Send + Sync {
    /// Marks the record as acknowledged by the Root; false when there is no such forwarded
    /// record of `owner`'s (any more).
    async fn confirm_forward(
        &self,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
    ) -> Result<bool, StoreError>;
    /// Deletes a forwarded record the Root refused (so holds nothing) without queueing an ES15
    /// delete; false when there is no such record of `owner`'s.
    async fn discard_forward(
        &self,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
    ) -> Result<bool, StoreError>;
    /// Forwarded records the Root never acknowledged (a crash while the ES15 call was out).
    async fn unconfirmed_forwards(&self) -> Result<Vec<StoredEvent>, StoreError>;
    /// Queued ES15 deletes, oldest first, at most `limit`.
    async fn queued_deletes(&self, limit: usize) -> Result<Vec<QueuedDelete>, StoreError>;
    /// A delivery attempt of queued delete `id` failed with `error`.
    async fn queued_delete_failed(&self, id: u64, error: &str) -> Result<(), StoreError>;
    /// Queued delete `id` reached the Root (or the Root no longer had the record).
    async fn queued_delete_done(&self, id: u64) -> Result<(), StoreError>;
}

/// A push notification owed to a device (SGP.22 v3 push service): queued in the transaction that
/// registered the event, for each unexpired push token of the EID; kept until delivered to the
/// push gateway or given up on (see `crate::push`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedPush {
    /// Queue order; the key for [`PushStore::queued_push_done`].
    pub id: u64,
    /// The push service's OID (dotted).
    pub service: String,
    pub token: PushToken,
    /// Unix seconds.
    pub queued_at: i64,
    /// Delivery attempts that failed so far.
    pub attempts: u32,
}

/// The durable state of SGP.22 v3 push-service registration (see `crate::push`).
#[async_trait::async_trait]
pub trait PushStore: Send + Sync {
    /// Keeps `token` for (`eid`, `service`) until `expires`, replacing an older one; returns once
    /// durable.
    async fn register_push_token(
        &self,
        eid: &Eid,
        service: &str,
        token: &PushToken,
        expires: i64,
    ) -> Result<(), StoreError>;
    /// Queued notifications, oldest first, at most `limit`.
    async fn queued_pushes(&self, limit: usize) -> Result<Vec<QueuedPush>, StoreError>;
    /// A delivery attempt of queued notification `id` failed.
    async fn queued_push_failed(&self, id: u64) -> Result<(), StoreError>;
    /// Queued notification `id` was delivered (or given up on).
    async fn queued_push_done(&self, id: u64) -> Result<(), StoreError>;
}

/// A complete backend: what the server holds.
pub trait Backend: EventStore + EventAdmin + CascadeStore + PushStore {}

impl<T: EventStore + EventAdmin + CascadeStore + PushStore> Backend for T {}
