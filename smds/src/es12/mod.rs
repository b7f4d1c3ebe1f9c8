//! ES12 (SM-DP+ to SM-DS): RegisterEvent and DeleteEvent (SGP.22 5.7).
//!
//! Input is the parsed request and the caller's identity (its TLS client certificate already
//! validated by the transport); output is the function's result. Uses the event store through
//! its trait only. Deleting someone else's event and deleting an unknown event give identical
//! answers, so nobody can probe which EIDs have events.

mod error;

pub use error::Es12Error;

use crate::identity::PeerIdentity;
use crate::sgp22::requests::{DeleteEventRequest, RegisterEventRequest};
use crate::store::{DeleteOutcome, EventRecord, EventStore, RegisterOutcome};
use crate::types::LoggedEid;

/// ES12.RegisterEvent: answers only after the event is durably committed.
pub async fn register_event(
    store: &dyn EventStore,
    peer: &PeerIdentity,
    req: RegisterEventRequest,
    now: i64,
) -> Result<(), Es12Error> {
    tracing::info!(
        eid = %LoggedEid(&req.eid),
        event_id = %req.event_id,
        owner = %peer.owner,
        requester = %req.header.function_requester_identifier,
        call = %req.header.function_call_identifier,
        "registerEvent"
    );
    let req_eid = req.eid;
    let event = EventRecord {
        eid: req.eid,
        event_id: req.event_id,
        rsp_server_address: req.rsp_server_address,
        owner: peer.owner.clone(),
        owner_names: peer.names.clone(),
        forwarding_indicator: req.forwarding_indicator,
        registered_at: now,
        forwarded: None,
    };
    match store.register_event(event).await {
        Ok(RegisterOutcome::Registered { .. }) => Ok(()),
        Ok(RegisterOutcome::TooMany) => Err(Es12Error::EventsFull),
        Ok(RegisterOutcome::EidFull) => {
            tracing::warn!(eid = %LoggedEid(&req_eid), owner = %peer.owner, "the EID-wide event backstop is reached");
            Err(Es12Error::EidBackstop)
        }
        Ok(RegisterOutcome::Duplicate) => Err(Es12Error::Duplicate),
        Err(e) => {
            tracing::error!(error = %e, "event store failure");
            Err(Es12Error::Store(e))
        }
    }
}

/// ES12.DeleteEvent: only the SM-DP+ that registered the event may delete it.
pub async fn delete_event(
    store: &dyn EventStore,
    peer: &PeerIdentity,
    req: DeleteEventRequest,
) -> Result<(), Es12Error> {
    tracing::info!(
        eid = %LoggedEid(&req.eid),
        event_id = %req.event_id,
        owner = %peer.owner,
        "deleteEvent"
    );
    match store
        .delete_event(&req.eid, &req.event_id, &peer.owner)
        .await
    {
        Ok(DeleteOutcome::Deleted) => Ok(()),
        Ok(DeleteOutcome::NotFound) => Err(Es12Error::UnknownEvent),
        Err(e) => {
            tracing::error!(error = %e, "event store failure");
            Err(Es12Error::Store(e))
        }
    }
}
