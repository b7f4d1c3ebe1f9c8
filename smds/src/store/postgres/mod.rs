//! The shared event store on PostgreSQL: what several SM-DS nodes use together.
//!
//! Every operation is one short transaction at READ COMMITTED on a pooled connection, its
//! statements pipelined (BEGIN to COMMIT in one round trip), bounded by the store timeout: a
//! database that is down, restarting or unreachable costs a request an execution error after at
//! most that long, never a hang, and the pool reconnects by itself. A registration is answered
//! only after its COMMIT returned (PostgreSQL's own group commit batches the WAL flushes of
//! concurrent commits).
//!
//! Atomic bounds across nodes: a writer of an EID first upserts that EID's row in `smds_eids`,
//! which holds the row lock until commit; the duplicate check, the per-owner bound, the EID-wide
//! backstop and the insert then run as one statement that sees everything committed before the
//! lock was granted (at READ COMMITTED each statement takes a new snapshot). The unique
//! constraint on (EID, owner, EventID) stands behind the check. The sequence number is drawn
//! under the lock, so it orders each EID's events in commit order. This module touches only the
//! database named by the URL ([`connect`], [`schema`]).

mod connect;
mod schema;

pub use connect::{PgOptions, StoreUrl};

use super::{
    CascadeStore, DeleteOutcome, EventAdmin, EventRecord, EventStore, Forwarded, PushStore,
    QueuedDelete, QueuedPush, RegisterOutcome, StoreError, StoredEvent,
};
use crate::asn1::TransactionId;
use crate::identity::OwnerId;
use crate::types::{EventDetailsV3, EventId, PushToken, RspServerAddress};
use connect::{error, is_retryable, pool_error};
use deadpool_postgres::{Client, Pool};
use pki_tool::Eid;
use std::future::Future;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

/// Handle to the PostgreSQL store; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    url: StoreUrl,
    timeout: Duration,
    per_owner: i64,
    all_owners: i64,
}

/// `SELECT` of every column of `smds_events`, in the order [`decode`] reads them, then `$rest`.
macro_rules! select_events {
    ($rest:literal) => {
        concat!(
            "SELECT eid, seq, owner, owner_names, event_id, rsp_server_address, ",
            "forwarding_indicator, registered_at, root_event_id, forward_confirmed, details ",
            "FROM smds_events ",
            $rest
        )
    };
}

const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// Takes (creating if need be) the EID's lock row, held until COMMIT.
const LOCK_EID: &str = "INSERT INTO smds_eids (eid, touched_at) VALUES ($1, $2)
     ON CONFLICT (eid) DO UPDATE SET touched_at = EXCLUDED.touched_at";

/// Inserts the event unless this owner has it already, this owner is at its bound ($8) or the
/// EID is at the backstop ($9); returns its sequence number, or no row when refused. $10 and $11
/// are the forwarding columns, $12 the v3 details. A registered event queues a push notification
/// for each unexpired push token of the EID in the same statement (see `crate::push`).
const INSERT_IF_ROOM: &str = "WITH registered AS (
     INSERT INTO smds_events (eid, seq, owner, owner_names, event_id,
         rsp_server_address, forwarding_indicator, registered_at, root_event_id, forward_confirmed,
         details)
     SELECT $1, nextval('smds_event_seq'), $2, $3, $4, $5, $6, $7, $10, $11, $12
     WHERE NOT EXISTS (SELECT 1 FROM smds_events WHERE eid = $1 AND owner = $2 AND event_id = $4)
       AND (SELECT count(*) FROM smds_events WHERE eid = $1 AND owner = $2) < $8
       AND (SELECT count(*) FROM smds_events WHERE eid = $1) < $9
     RETURNING seq
   ), notified AS (
     INSERT INTO smds_push_queue (service, token, queued_at)
     SELECT t.service, t.token, $7 FROM smds_push_tokens t, registered
     WHERE t.eid = $1 AND t.expires >= $7
   )
   SELECT seq FROM registered";

const EVENTS_FOR: &str = select_events!("WHERE eid = $1 ORDER BY seq");

const USE_TRANSACTION: &str = "INSERT INTO smds_used_transactions (tid, expires) VALUES ($1, $2)
     ON CONFLICT (tid) DO NOTHING";

/// How often a transaction the database gave up on (serialization failure, deadlock) is tried.
const ATTEMPTS: usize = 3;

impl PgStore {
    /// Connects, then creates or migrates the schema. Fails (naming the URL, without its
    /// password) when the database cannot be reached within the timeout.
    pub async fn connect(
        opts: &PgOptions,
        max_events_per_eid: usize,
        max_events_per_eid_all_owners: usize,
    ) -> Result<Self, StoreError> {
        let wrap = |e: StoreError| StoreError::Backend(format!("{}: {e}", opts.url));
        let pool = connect::pool(opts).map_err(wrap)?;
        let store = PgStore {
            pool,
            url: opts.url.clone(),
            timeout: opts.timeout,
            per_owner: i64::try_from(max_events_per_eid.max(1)).unwrap_or(i64::MAX),
            all_owners: i64::try_from(max_events_per_eid_all_owners.max(1)).unwrap_or(i64::MAX),
        };
        let mut client = store.client().await.map_err(wrap)?;
        // Migrations may wait on another node's; give them longer than one request.
        tokio::time::timeout(opts.timeout * 6, schema::migrate(&mut client))
            .await
            .map_err(|_| wrap(StoreError::Unavailable("schema migration timed out".into())))?
            .map_err(wrap)?;
        let sync: String = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| wrap(error(e)))?;
        if sync == "off" {
            tracing::warn!(
                database = %store.url,
                "synchronous_commit is off on this database: an acknowledged event can be lost if the database crashes"
            );
        }
        Ok(store)
    }

    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    async fn client(&self) -> Result<Client, StoreError> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs `op` within the store timeout.
    async fn bounded<T>(
        &self,
        op: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, op)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(
                    "the database did not answer within the store timeout".into(),
                ))
            })
    }

    /// One registration: BEGIN, the EID's lock, the insert-if-room and COMMIT, sent together
    /// (one round trip). The insert is a new statement, so it sees every event committed
    /// before the lock was granted; COMMIT is checked before anything is acknowledged.
    async fn register_once(
        &self,
        client: &Client,
        e: &EventRecord,
    ) -> Result<RegisterOutcome, tokio_postgres::Error> {
        let lock = client.prepare_cached(LOCK_EID).await?;
        let insert = client.prepare_cached(INSERT_IF_ROOM).await?;
        let (eid, owner, event_id) = (e.eid.as_str(), e.owner.as_str(), e.event_id.as_str());
        let address = e.rsp_server_address.as_str();
        let root_event_id = e.forwarded.as_ref().map(|f| f.root_event_id.as_str());
        let confirmed = e.forwarded.as_ref().map(|f| f.confirmed);
        // JSON text, NULL for a v2 registration (no details); serializing plain data cannot fail.
        let details = (!e.details.is_empty())
            .then(|| serde_json::to_string(&e.details).ok())
            .flatten();
        let lock_params: [&(dyn ToSql + Sync); 2] = [&eid, &e.registered_at];
        let insert_params: [&(dyn ToSql + Sync); 12] = [
            &eid,
            &owner,
            &e.owner_names,
            &event_id,
            &address,
            &e.forwarding_indicator,
            &e.registered_at,
            &self.per_owner,
            &self.all_owners,
            &root_event_id,
            &confirmed,
            &details,
        ];
        let (begin, locked, inserted, commit) = tokio::join!(
            biased;
            client.batch_execute(BEGIN),
            client.execute(&lock, &lock_params),
            client.query_opt(&insert, &insert_params),
            client.batch_execute("COMMIT"),
        );
        begin?;
        locked?;
        let row = match inserted {
            Ok(row) => row,
            // The constraint behind the check (the lock makes this unreachable on PostgreSQL).
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Ok(RegisterOutcome::Duplicate);
            }
            Err(e) => return Err(e),
        };
        commit?;
        match row {
            Some(row) => Ok(RegisterOutcome::Registered {
                seq: u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
            }),
            None => self.why_refused(client, e).await,
        }
    }

    /// Which check refused a registration (the rare path, after the fact: only the answer's
    /// wording depends on it).
    async fn why_refused(
        &self,
        client: &Client,
        e: &EventRecord,
    ) -> Result<RegisterOutcome, tokio_postgres::Error> {
        let census = client
            .prepare_cached(
                "SELECT coalesce(sum(CASE WHEN owner = $2 AND event_id = $3 THEN 1 ELSE 0 END), 0)::BIGINT,
                        coalesce(sum(CASE WHEN owner = $2 THEN 1 ELSE 0 END), 0)::BIGINT
                 FROM smds_events WHERE eid = $1",
            )
            .await?;
        let row = client
            .query_one(
                &census,
                &[&e.eid.as_str(), &e.owner.as_str(), &e.event_id.as_str()],
            )
            .await?;
        let (same, mine): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok(if same > 0 {
            RegisterOutcome::Duplicate
        } else if mine >= self.per_owner {
            RegisterOutcome::TooMany
        } else {
            RegisterOutcome::EidFull
        })
    }

    /// One deletion, keyed by the owner too (someone else's event is the same miss, with the
    /// same work); the EID's lock row goes with its last event. One round trip.
    async fn delete_once(
        &self,
        client: &Client,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
        queue_forward: bool,
    ) -> Result<DeleteOutcome, tokio_postgres::Error> {
        // A forwarded record's ES15 delete is queued by the same statement (unless the Root
        // refused it: $5 false).
        let delete = client
            .prepare_cached(
                "WITH gone AS (
                     DELETE FROM smds_events WHERE eid = $1 AND owner = $2 AND event_id = $3
                     RETURNING eid, root_event_id),
                 queued AS (
                     INSERT INTO smds_es15_delete_queue (eid, root_event_id, queued_at)
                     SELECT eid, root_event_id, $4 FROM gone
                     WHERE root_event_id IS NOT NULL AND $5)
                 SELECT count(*) FROM gone",
            )
            .await?;
        // Should a registration slip in around this, its next writer simply creates the row again.
        let unlock = client
            .prepare_cached(
                "DELETE FROM smds_eids WHERE eid = $1
                 AND NOT EXISTS (SELECT 1 FROM smds_events WHERE eid = $1)",
            )
            .await?;
        let (eid, owner, event_id) = (eid.as_str(), owner.as_str(), event_id.as_str());
        let now = pki_tool::time::now();
        let delete_params: [&(dyn ToSql + Sync); 5] =
            [&eid, &owner, &event_id, &now, &queue_forward];
        let unlock_params: [&(dyn ToSql + Sync); 1] = [&eid];
        let (begin, deleted, unlocked, commit) = tokio::join!(
            biased;
            client.batch_execute(BEGIN),
            client.query_one(&delete, &delete_params),
            client.execute(&unlock, &unlock_params),
            client.batch_execute("COMMIT"),
        );
        begin?;
        let n: i64 = deleted?.try_get(0)?;
        unlocked?;
        commit?;
        Ok(if n > 0 {
            DeleteOutcome::Deleted
        } else {
            DeleteOutcome::NotFound
        })
    }

    /// Runs a read-only query on a pooled connection within the store timeout.
    async fn read_rows(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(error)?;
            client.query(&stmt, params).await.map_err(error)
        })
        .await
    }
}

/// Runs a transaction again when the database gave up on it to keep transactions serializable
/// (or to break a deadlock), up to [`ATTEMPTS`] times; nothing of a failed try was committed.
async fn retrying<T, F>(mut attempt: impl FnMut() -> F) -> Result<T, StoreError>
where
    F: Future<Output = Result<T, tokio_postgres::Error>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if is_retryable(&e) && tries < ATTEMPTS => tries += 1,
            r => return r.map_err(error),
        }
    }
}

fn decode(row: &tokio_postgres::Row) -> Result<StoredEvent, StoreError> {
    let bad = |what: &str| StoreError::Corrupt(format!("smds_events holds an invalid {what}"));
    let text = |i: usize| row.try_get::<_, String>(i).map_err(|_| bad("column"));
    let seq: i64 = row.try_get(1).map_err(|_| bad("seq"))?;
    Ok(StoredEvent {
        record: EventRecord {
            eid: Eid::parse(&text(0)?).map_err(|_| bad("EID"))?,
            owner: OwnerId::new(text(2)?),
            owner_names: row.try_get(3).map_err(|_| bad("owner_names"))?,
            event_id: EventId::parse(&text(4)?).map_err(|_| bad("eventId"))?,
            rsp_server_address: RspServerAddress::parse(&text(5)?)
                .map_err(|_| bad("rspServerAddress"))?,
            forwarding_indicator: row.try_get(6).map_err(|_| bad("forwarding_indicator"))?,
            registered_at: row.try_get(7).map_err(|_| bad("registered_at"))?,
            forwarded: match (
                row.try_get::<_, Option<String>>(8)
                    .map_err(|_| bad("root_event_id"))?,
                row.try_get::<_, Option<bool>>(9)
                    .map_err(|_| bad("forward_confirmed"))?,
            ) {
                (Some(id), confirmed) => Some(Forwarded {
                    root_event_id: EventId::parse(&id).map_err(|_| bad("root_event_id"))?,
                    confirmed: confirmed.unwrap_or(false),
                }),
                (None, _) => None,
            },
            details: match row
                .try_get::<_, Option<String>>(10)
                .map_err(|_| bad("details"))?
            {
                Some(json) => serde_json::from_str(&json).map_err(|_| bad("details"))?,
                None => EventDetailsV3::default(),
            },
        },
        seq: u64::try_from(seq).map_err(|_| bad("seq"))?,
    })
}

fn decode_all(rows: &[tokio_postgres::Row]) -> Result<Vec<StoredEvent>, StoreError> {
    rows.iter().map(decode).collect()
}

#[async_trait::async_trait]
impl EventStore for PgStore {
    async fn register_event(&self, event: EventRecord) -> Result<RegisterOutcome, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            retrying(|| self.register_once(&client, &event)).await
        })
        .await
    }

    async fn delete_event(
        &self,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
    ) -> Result<DeleteOutcome, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            retrying(|| self.delete_once(&client, eid, event_id, owner, true)).await
        })
        .await
    }

    async fn events_for(&self, eid: &Eid) -> Result<Vec<StoredEvent>, StoreError> {
        decode_all(&self.read_rows(EVENTS_FOR, &[&eid.as_str()]).await?)
    }

    async fn use_transaction(&self, tid: &TransactionId, expires: i64) -> Result<bool, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(USE_TRANSACTION)
                .await
                .map_err(error)?;
            let n = client
                .execute(&stmt, &[&tid.as_bytes(), &expires])
                .await
                .map_err(error)?;
            Ok(n == 1)
        })
        .await
    }

    /// The insert-if-absent and the read sent together: one checkout, one round trip. The
    /// read's result is dropped when the transaction was used already.
    async fn use_transaction_and_read(
        &self,
        tid: &TransactionId,
        expires: i64,
        eid: &Eid,
    ) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let used = client
                .prepare_cached(USE_TRANSACTION)
                .await
                .map_err(error)?;
            let read = client.prepare_cached(EVENTS_FOR).await.map_err(error)?;
            let (tid, eid) = (tid.as_bytes(), eid.as_str());
            let use_params: [&(dyn ToSql + Sync); 2] = [&tid, &expires];
            let read_params: [&(dyn ToSql + Sync); 1] = [&eid];
            let (first, rows) = tokio::join!(
                biased;
                client.execute(&used, &use_params),
                client.query(&read, &read_params),
            );
            if first.map_err(error)? == 0 {
                return Ok(None);
            }
            decode_all(&rows.map_err(error)?).map(Some)
        })
        .await
    }

    async fn sweep_transactions(&self, now: i64) -> Result<u64, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            client
                .execute("DELETE FROM smds_ec_ids WHERE expires < $1", &[&now])
                .await
                .map_err(error)?;
            client
                .execute("DELETE FROM smds_push_tokens WHERE expires < $1", &[&now])
                .await
                .map_err(error)?;
            client
                .execute(
                    "DELETE FROM smds_used_transactions WHERE expires < $1",
                    &[&now],
                )
                .await
                .map_err(error)
        })
        .await
    }

    async fn issue_ec_id(
        &self,
        eid: &Eid,
        ec_id: &[u8; 16],
        expires: i64,
    ) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO smds_ec_ids (eid, ec_id, expires) VALUES ($1, $2, $3)
             ON CONFLICT (eid) DO UPDATE SET ec_id = EXCLUDED.ec_id, expires = EXCLUDED.expires",
            &[&eid.as_str(), &&ec_id[..], &expires],
        )
        .await
        .map(|_| ())
    }

    async fn eid_for_ec_id(&self, ec_id: &[u8], now: i64) -> Result<Option<Eid>, StoreError> {
        let rows = self
            .read_rows(
                "SELECT eid FROM smds_ec_ids WHERE ec_id = $1 AND expires >= $2",
                &[&ec_id, &now],
            )
            .await?;
        let bad = || StoreError::Corrupt("smds_ec_ids holds an invalid eid".into());
        rows.first()
            .map(|r| {
                let eid: String = r.try_get(0).map_err(|_| bad())?;
                Eid::parse(&eid).map_err(|_| bad())
            })
            .transpose()
    }

    async fn shutdown(&self) {
        self.pool.close();
    }
}

impl PgStore {
    /// Runs one write statement within the store timeout; returns the rows it touched.
    async fn write(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.bounded(async {
            let client = self.client().await?;
            let stmt = client.prepare_cached(sql).await.map_err(error)?;
            client.execute(&stmt, params).await.map_err(error)
        })
        .await
    }
}

#[async_trait::async_trait]
impl CascadeStore for PgStore {
    async fn confirm_forward(
        &self,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
    ) -> Result<bool, StoreError> {
        let n = self
            .write(
                "UPDATE smds_events SET forward_confirmed = true
                 WHERE eid = $1 AND owner = $2 AND event_id = $3 AND root_event_id IS NOT NULL",
                &[&eid.as_str(), &owner.as_str(), &event_id.as_str()],
            )
            .await?;
        Ok(n > 0)
    }

    async fn discard_forward(
        &self,
        eid: &Eid,
        event_id: &EventId,
        owner: &OwnerId,
    ) -> Result<bool, StoreError> {
        let outcome = self
            .bounded(async {
                let client = self.client().await?;
                retrying(|| self.delete_once(&client, eid, event_id, owner, false)).await
            })
            .await?;
        Ok(outcome == DeleteOutcome::Deleted)
    }

    async fn unconfirmed_forwards(&self) -> Result<Vec<StoredEvent>, StoreError> {
        const SQL: &str = select_events!("WHERE forward_confirmed = false ORDER BY seq");
        decode_all(&self.read_rows(SQL, &[]).await?)
    }

    async fn queued_deletes(&self, limit: usize) -> Result<Vec<QueuedDelete>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .read_rows(
                "SELECT id, eid, root_event_id, queued_at, attempts, last_error
                 FROM smds_es15_delete_queue ORDER BY id LIMIT $1",
                &[&limit],
            )
            .await?;
        let bad = |what: &str| {
            StoreError::Corrupt(format!("smds_es15_delete_queue holds an invalid {what}"))
        };
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get(0).map_err(|_| bad("id"))?;
                let eid: String = r.try_get(1).map_err(|_| bad("eid"))?;
                let root: String = r.try_get(2).map_err(|_| bad("root_event_id"))?;
                let attempts: i32 = r.try_get(4).map_err(|_| bad("attempts"))?;
                Ok(QueuedDelete {
                    id: u64::try_from(id).map_err(|_| bad("id"))?,
                    eid: Eid::parse(&eid).map_err(|_| bad("eid"))?,
                    root_event_id: EventId::parse(&root).map_err(|_| bad("root_event_id"))?,
                    queued_at: r.try_get(3).map_err(|_| bad("queued_at"))?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                    last_error: r.try_get(5).map_err(|_| bad("last_error"))?,
                })
            })
            .collect()
    }

    async fn queued_delete_failed(&self, id: u64, why: &str) -> Result<(), StoreError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.write(
            "UPDATE smds_es15_delete_queue SET attempts = attempts + 1, last_error = $2
             WHERE id = $1",
            &[&id, &why],
        )
        .await
        .map(|_| ())
    }

    async fn queued_delete_done(&self, id: u64) -> Result<(), StoreError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.write("DELETE FROM smds_es15_delete_queue WHERE id = $1", &[&id])
            .await
            .map(|_| ())
    }
}

#[async_trait::async_trait]
impl PushStore for PgStore {
    async fn register_push_token(
        &self,
        eid: &Eid,
        service: &str,
        token: &PushToken,
        expires: i64,
    ) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO smds_push_tokens (eid, service, token, expires) VALUES ($1, $2, $3, $4)
             ON CONFLICT (eid, service) DO UPDATE SET token = EXCLUDED.token,
                 expires = EXCLUDED.expires",
            &[&eid.as_str(), &service, &token.secret(), &expires],
        )
        .await
        .map(|_| ())
    }

    async fn queued_pushes(&self, limit: usize) -> Result<Vec<QueuedPush>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .read_rows(
                "SELECT id, service, token, queued_at, attempts FROM smds_push_queue
                 ORDER BY id LIMIT $1",
                &[&limit],
            )
            .await?;
        let bad =
            |what: &str| StoreError::Corrupt(format!("smds_push_queue holds an invalid {what}"));
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get(0).map_err(|_| bad("id"))?;
                let token: String = r.try_get(2).map_err(|_| bad("token"))?;
                let attempts: i32 = r.try_get(4).map_err(|_| bad("attempts"))?;
                Ok(QueuedPush {
                    id: u64::try_from(id).map_err(|_| bad("id"))?,
                    service: r.try_get(1).map_err(|_| bad("service"))?,
                    token: PushToken::parse(&token).map_err(|_| bad("token"))?,
                    queued_at: r.try_get(3).map_err(|_| bad("queued_at"))?,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn queued_push_failed(&self, id: u64) -> Result<(), StoreError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.write(
            "UPDATE smds_push_queue SET attempts = attempts + 1 WHERE id = $1",
            &[&id],
        )
        .await
        .map(|_| ())
    }

    async fn queued_push_done(&self, id: u64) -> Result<(), StoreError> {
        let id = i64::try_from(id).unwrap_or(i64::MAX);
        self.write("DELETE FROM smds_push_queue WHERE id = $1", &[&id])
            .await
            .map(|_| ())
    }
}

#[async_trait::async_trait]
impl EventAdmin for PgStore {
    async fn list_page(
        &self,
        eid: Option<&Eid>,
        after: Option<(Eid, u64)>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = match (eid, after) {
            (Some(eid), after) => {
                let from = after
                    .filter(|(e, _)| e == eid)
                    .map_or(-1, |(_, s)| i64::try_from(s).unwrap_or(i64::MAX));
                self.read_rows(
                    select_events!("WHERE eid = $1 AND seq > $2 ORDER BY seq LIMIT $3"),
                    &[&eid.as_str(), &from, &limit],
                )
                .await?
            }
            (None, Some((e, seq))) => {
                let seq = i64::try_from(seq).unwrap_or(i64::MAX);
                self.read_rows(
                    select_events!("WHERE (eid, seq) > ($1, $2) ORDER BY eid, seq LIMIT $3"),
                    &[&e.as_str(), &seq, &limit],
                )
                .await?
            }
            (None, None) => {
                self.read_rows(select_events!("ORDER BY eid, seq LIMIT $1"), &[&limit])
                    .await?
            }
        };
        decode_all(&rows)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let rows = self
            .read_rows("SELECT count(*) FROM smds_events", &[])
            .await?;
        let n: i64 = match rows.first() {
            Some(r) => r.try_get(0).map_err(error)?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The constraints keep uniqueness and order; this checks the schema version and that every
    /// stored row decodes.
    async fn check_integrity(&self) -> Result<u64, StoreError> {
        let v = self
            .read_rows("SELECT max(version) FROM smds_schema_migrations", &[])
            .await?;
        let version: Option<i32> = match v.first() {
            Some(r) => r.try_get(0).map_err(error)?,
            None => None,
        };
        if version != Some(schema::current_version()) {
            return Err(StoreError::Corrupt(format!(
                "schema version {version:?}, expected {}",
                schema::current_version()
            )));
        }
        let mut n = 0u64;
        let mut after = None;
        loop {
            let page = self.list_page(None, after, 10_000).await?;
            n += page.len() as u64;
            match page.last() {
                Some(e) => after = Some((e.record.eid, e.seq)),
                None => return Ok(n),
            }
        }
    }
}

#[cfg(test)]
mod tests;
