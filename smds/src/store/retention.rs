//! Removing events on the operator's behalf: an admin purge (by EID, EventID and/or age) and the
//! optional retention period (`event_ttl_days`). SGP.22 leaves deletion to the SM-DP+ that
//! registered an event; a lab that keeps registering fills up, so an operator may remove events
//! whatever their owner. Built on the two store traits only (list, then the ES12 delete with the
//! event's own owner), so every backend keeps its bounds and counters consistent; every removed
//! event is written to the log as an audit line.

use super::{Backend, DeleteOutcome, StoreError, StoredEvent};
use crate::types::{EventId, LoggedEid};
use pki_tool::Eid;

/// Which events to remove; at least one condition must be set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeFilter {
    pub eid: Option<Eid>,
    /// Only with `eid`: EventIDs are unique per EID and owner.
    pub event_id: Option<EventId>,
    /// Events registered before this time (Unix seconds).
    pub registered_before: Option<i64>,
}

/// Why a purge was refused before it started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurgeError {
    #[error("say which events: eid, event_id (with eid) and/or before")]
    NoCondition,
    #[error("event_id needs eid: EventIDs are unique per EID")]
    EventIdWithoutEid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Events read per page while looking for matches.
const PAGE: usize = 1000;

impl PurgeFilter {
    fn check(&self) -> Result<(), PurgeError> {
        if self.eid.is_none() && self.event_id.is_none() && self.registered_before.is_none() {
            return Err(PurgeError::NoCondition);
        }
        if self.event_id.is_some() && self.eid.is_none() {
            return Err(PurgeError::EventIdWithoutEid);
        }
        Ok(())
    }

    fn matches(&self, e: &StoredEvent) -> bool {
        self.event_id
            .as_ref()
            .is_none_or(|id| *id == e.record.event_id)
            && self
                .registered_before
                .is_none_or(|t| e.record.registered_at < t)
    }
}

/// Removes the events `filter` selects, at most `limit`, and returns them. `why` names who asked
/// (the admin client, or the retention period) in each audit line.
pub async fn purge(
    store: &dyn Backend,
    filter: &PurgeFilter,
    limit: usize,
    why: &str,
) -> Result<Vec<StoredEvent>, PurgeError> {
    filter.check()?;
    let mut removed = Vec::new();
    let mut after = None;
    while removed.len() < limit {
        let page = store.list_page(filter.eid.as_ref(), after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.record.eid, last.seq));
        for e in page.into_iter().filter(|e| filter.matches(e)) {
            if removed.len() >= limit {
                break;
            }
            let r = &e.record;
            // The event's own owner: the same path, bounds and counters as an ES12 DeleteEvent.
            if store.delete_event(&r.eid, &r.event_id, &r.owner).await? == DeleteOutcome::Deleted {
                tracing::warn!(
                    audit = true,
                    by = why,
                    eid = %LoggedEid(&r.eid),
                    event_id = %r.event_id,
                    owner = %r.owner,
                    registered_at = %pki_tool::time::format(r.registered_at),
                    "event removed by the operator"
                );
                removed.push(e);
            }
        }
    }
    Ok(removed)
}
