//! ES11.CheckEvent (SGP.22 v3 Event Checking, `sgp22-v3-es15-notes.md` 1.4): an LPA asks, without
//! mutual authentication, whether anything is pending for the eUICC an `ecId` stands for (handed
//! out, signed, in the last full v3 discovery). It must reveal nothing else: an unknown or expired
//! ecId and a known one without events get the same answer, after the same work (the events of
//! some EID are read either way), and the address is checked as in InitiateAuthentication.

use super::{Es11, Es11Error};
use crate::sgp22::is_own_address;
use crate::sgp22::requests::CheckEventRequest;
use crate::store::EventStore;
use pki_tool::Eid;

/// Read for an ecId that stands for no EID, so that a miss costs what a hit does. A valid EID
/// (check digits correct) that no eUICC has: the SGP.29 test prefix with zeros.
const NO_EID: &str = "89049032000000000000000000000066";

/// ES11.CheckEvent: whether the ecId's EID has an event (a forward the Root has not
/// acknowledged is none yet).
pub async fn check_event(
    es11: &Es11,
    store: &dyn EventStore,
    req: CheckEventRequest,
    now: i64,
) -> Result<bool, Es11Error> {
    if !is_own_address(&req.smds_address, &es11.hostname) {
        return Err(Es11Error::AddressRefused);
    }
    let known = store
        .eid_for_ec_id(&req.ec_id, now)
        .await
        .map_err(Es11Error::Store)?;
    let eid = match known {
        Some(eid) => eid,
        None => Eid::parse(NO_EID).map_err(|e| Es11Error::Internal(e.to_string()))?,
    };
    let events = store.events_for(&eid).await.map_err(Es11Error::Store)?;
    let pending = events.iter().any(|e| e.record.is_discoverable());
    Ok(known.is_some() && pending)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stand_in_eid_is_valid() {
        assert!(pki_tool::Eid::parse(super::NO_EID).is_ok());
    }
}
