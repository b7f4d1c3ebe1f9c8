//! ES12 (SM-DP+ to SM-DS): RegisterEvent and DeleteEvent (SGP.22 5.7).
//!
//! Input is the parsed request and the caller's identity (its TLS client certificate already
//! validated by the transport); output is the function's result. Uses the event store through
//! its trait only. Deleting someone else's event and deleting an unknown event give identical
//! answers, so nobody can probe which EIDs have events. At an Alternative SM-DS, a registration
//! with `forwardingIndicator: true` goes through [`crate::cascade`].

mod error;

pub use error::Es12Error;

use crate::cascade::Cascade;
use crate::identity::{OwnerId, PeerIdentity};
use crate::sgp22::requests::{DeleteEventRequest, RegisterEventRequest};
use crate::store::{DeleteOutcome, EventRecord, EventStore, RegisterOutcome};
use crate::types::LoggedEid;

/// The error for a registration the store refused.
pub(crate) fn refusal(outcome: RegisterOutcome, eid: &pki_tool::Eid, owner: &OwnerId) -> Es12Error {
    match outcome {
        RegisterOutcome::TooMany => Es12Error::EventsFull,
        RegisterOutcome::EidFull => {
            tracing::warn!(eid = %LoggedEid(eid), owner = %owner, "the EID-wide event backstop is reached");
            Es12Error::EidBackstop
        }
        RegisterOutcome::Duplicate => Es12Error::Duplicate,
        // Not a refusal; callers match it first.
        RegisterOutcome::Registered { .. } => Es12Error::Duplicate,
    }
}

/// ES12.RegisterEvent: answers only after the event is durably committed (and, when it asks to
/// be forwarded and `cascade` is set, after the Root has it).
pub async fn register_event(
    store: &dyn EventStore,
    cascade: Option<&Cascade>,
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
    if let Some(cascade) = cascade.filter(|_| req.forwarding_indicator) {
        return cascade.register_forwarded(peer, req, now).await;
    }
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
        details: req.details,
    };
    match store.register_event(event).await {
        Ok(RegisterOutcome::Registered { .. }) => Ok(()),
        Ok(refused) => Err(refusal(refused, &req_eid, &peer.owner)),
        Err(e) => {
            tracing::error!(error = %e, "event store failure");
            Err(Es12Error::Store(e))
        }
    }
}

/// ES12.DeleteEvent: only the SM-DP+ that registered the event may delete it. A forwarded
/// record's ES15 delete is queued with it and delivered by `cascade`'s queue, without waiting.
pub async fn delete_event(
    store: &dyn EventStore,
    cascade: Option<&Cascade>,
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
        Ok(DeleteOutcome::Deleted) => {
            if let Some(c) = cascade {
                c.deleted();
            }
            Ok(())
        }
        Ok(DeleteOutcome::NotFound) => Err(Es12Error::UnknownEvent),
        Err(e) => {
            tracing::error!(error = %e, "event store failure");
            Err(Es12Error::Store(e))
        }
    }
}
