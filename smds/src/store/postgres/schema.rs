//! The PostgreSQL schema and its versioned migrations, applied by the server itself at start.
//!
//! Several nodes may start at once against one database. Each migration runs in one transaction
//! that first claims its version in `smds_schema_migrations` with an insert-if-absent: a node
//! that loses the race waits on the winner's uncommitted row and then sees it applied, so every
//! migration runs exactly once and a node never serves on a half-built schema. No advisory locks
//! (CockroachDB and YugabyteDB lack them) and no PL/pgSQL: plain tables, one sequence, indexes.

use super::connect::error;
use crate::store::StoreError;

/// One schema version: applied in order, never edited once released (add a new one instead).
pub(super) struct Migration {
    pub(super) version: i32,
    pub(super) description: &'static str,
    pub(super) sql: &'static str,
}

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "events, per-EID lock rows, used ES11 transactions",
        sql: "
        -- Registration order across the store; taken while the EID's lock row is held, so it
        -- is also commit order within each EID (FIFO).
        CREATE SEQUENCE smds_event_seq;
        CREATE TABLE smds_events (
            eid TEXT NOT NULL,
            seq BIGINT NOT NULL,
            owner TEXT NOT NULL,
            owner_names TEXT[] NOT NULL,
            event_id TEXT NOT NULL,
            rsp_server_address TEXT NOT NULL,
            forwarding_indicator BOOLEAN NOT NULL,
            registered_at BIGINT NOT NULL,
            PRIMARY KEY (eid, seq),
            -- An EventID is unique per EID and owning SM-DP+ (another SM-DP+ may use it too).
            CONSTRAINT smds_events_owner_event_id UNIQUE (eid, owner, event_id)
        );
        -- One row per EID with events: writers of an EID take its lock first, so the per-owner
        -- bound and the EID-wide backstop are checked and kept atomically, on every node.
        CREATE TABLE smds_eids (
            eid TEXT PRIMARY KEY,
            touched_at BIGINT NOT NULL
        );
        -- ES11 transactionIds already used, until they expire.
        CREATE TABLE smds_used_transactions (
            tid BYTEA PRIMARY KEY,
            expires BIGINT NOT NULL
        );
        CREATE INDEX smds_used_transactions_expires ON smds_used_transactions (expires);
    ",
    },
    Migration {
        version: 2,
        description: "ES15 cascade: forwarded records and the queue of ES15 deletes",
        sql: "
        -- Set at an Alternative SM-DS on records forwarded to the Root: the EventID the Root
        -- holds, and whether the Root acknowledged it (NULL: not forwarded).
        ALTER TABLE smds_events ADD COLUMN root_event_id TEXT;
        ALTER TABLE smds_events ADD COLUMN forward_confirmed BOOLEAN;
        CREATE INDEX smds_events_unconfirmed ON smds_events (seq) WHERE forward_confirmed = false;
        -- ES15 deletes the Root has yet to receive, queued with the local delete.
        CREATE TABLE smds_es15_delete_queue (
            id BIGSERIAL PRIMARY KEY,
            eid TEXT NOT NULL,
            root_event_id TEXT NOT NULL,
            queued_at BIGINT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT
        );
    ",
    },
    Migration {
        version: 3,
        description: "SGP.22 v3 Event Checking identifiers",
        sql: "
        -- One ecId per EID, replaced at every full v3 discovery, until it expires.
        CREATE TABLE smds_ec_ids (
            eid TEXT PRIMARY KEY,
            ec_id BYTEA NOT NULL UNIQUE,
            expires BIGINT NOT NULL
        );
        CREATE INDEX smds_ec_ids_expires ON smds_ec_ids (expires);
    ",
    },
    Migration {
        version: 4,
        description: "SGP.22 v3 EventRecordV3 details of events",
        sql: "
        -- The optional v3 RegisterEvent inputs (eventType, hashed ICCIDs, salt, service provider
        -- name, operator), as JSON text; NULL for v2 registrations.
        ALTER TABLE smds_events ADD COLUMN details TEXT;
    ",
    },
    Migration {
        version: 5,
        description: "SGP.22 v3 push-service tokens and the push notification queue",
        sql: "
        -- One token per EID and push service, replaced at each registration, until it expires.
        CREATE TABLE smds_push_tokens (
            eid TEXT NOT NULL,
            service TEXT NOT NULL,
            token TEXT NOT NULL,
            expires BIGINT NOT NULL,
            PRIMARY KEY (eid, service)
        );
        CREATE INDEX smds_push_tokens_expires ON smds_push_tokens (expires);
        -- Notifications the push gateway has yet to receive, queued with the event.
        CREATE TABLE smds_push_queue (
            id BIGSERIAL PRIMARY KEY,
            service TEXT NOT NULL,
            token TEXT NOT NULL,
            queued_at BIGINT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        );
    ",
    },
];

/// The newest schema version this build knows.
pub(super) fn current_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const BOOTSTRAP: &str = "CREATE TABLE IF NOT EXISTS smds_schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Brings the schema up to [`current_version`]; refuses a database migrated by a newer smds.
pub(super) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), StoreError> {
    // Two nodes creating the bookkeeping table at the same instant: PostgreSQL may report a
    // unique violation on its catalog to the loser even with IF NOT EXISTS; the table exists then.
    for attempt in 0.. {
        match client.batch_execute(BOOTSTRAP).await {
            Ok(()) => break,
            Err(e) if attempt < 5 && e.code().is_some() => {
                tracing::debug!(error = %e, "creating smds_schema_migrations raced; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => return Err(error(e)),
        }
    }
    let newest: Option<i32> = client
        .query_one("SELECT max(version) FROM smds_schema_migrations", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(error)?;
    if let Some(v) = newest
        && v > current_version()
    {
        return Err(StoreError::Corrupt(format!(
            "the database schema is at version {v}, newer than this smds knows ({}); upgrade smds",
            current_version()
        )));
    }
    for m in MIGRATIONS {
        let tx = client.transaction().await.map_err(error)?;
        let claimed = tx
            .execute(
                "INSERT INTO smds_schema_migrations (version, description, applied_at)
                 VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING",
                &[&m.version, &m.description, &pki_tool::time::now()],
            )
            .await
            .map_err(error)?;
        if claimed == 0 {
            tx.rollback().await.map_err(error)?;
            continue;
        }
        tx.batch_execute(m.sql).await.map_err(error)?;
        tx.commit().await.map_err(error)?;
        tracing::info!(
            version = m.version,
            what = m.description,
            "database schema migrated"
        );
    }
    Ok(())
}
