//! ES15 at a Root SM-DS (SGP.22 5.10): RegisterEvent and DeleteEvent called by an Alternative
//! SM-DS over mutual TLS with its CERT.DS.TLS.
//!
//! The functions are ES12's, with the calling SM-DS in the SM-DP+'s place: the record's
//! `rspServerAddress` is the Alternative SM-DS, its EventID the one the Alternative chose, and
//! its owner the Alternative's identity (CI key id and SAN registeredID), so only that SM-DS may
//! delete it and another one's delete looks like an unknown event. The same status codes
//! apply (`es11-es12-notes.md` section 5 lists them for ES12/ES15 alike). Uses the event store
//! through its trait only, through [`crate::es12`].

use crate::es12::{self, Es12Error};
use crate::identity::PeerIdentity;
use crate::sgp22::requests::{DeleteEventRequest, RegisterEventRequest};
use crate::store::EventStore;

/// ES15.RegisterEvent: stored as the Alternative SM-DS's record, answered once durable. A Root
/// does not cascade further, so `forwardingIndicator` is recorded as false whatever was sent
/// (the notes read it as meaningful only at an Alternative).
pub async fn register_event(
    store: &dyn EventStore,
    peer: &PeerIdentity,
    req: RegisterEventRequest,
    now: i64,
) -> Result<(), Es12Error> {
    let req = RegisterEventRequest {
        forwarding_indicator: false,
        ..req
    };
    es12::register_event(store, None, peer, req, now).await
}

/// ES15.DeleteEvent: only the SM-DS that registered the record may delete it.
pub async fn delete_event(
    store: &dyn EventStore,
    peer: &PeerIdentity,
    req: DeleteEventRequest,
) -> Result<(), Es12Error> {
    es12::delete_event(store, None, peer, req).await
}
