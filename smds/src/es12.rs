//! ES12 (SM-DP+ to SM-DS): RegisterEvent and DeleteEvent.
//!
//! Input is the parsed JSON body and the caller's TLS identity (already verified by the TLS
//! layer); output is the SGP.22 response body. Deleting someone else's event and deleting an
//! unknown event give byte-identical answers, so nobody can probe which EIDs have events.

use crate::envelope::{self, StatusCode, codes};
use crate::identity::PeerIdentity;
use crate::store::{DeleteOutcome, NewEvent, RegisterOutcome, Store, StoreError};
use crate::types::{EventId, RspServerAddress};
use pki_tool::Eid;
use serde_json::{Map, Value};

/// A handler's answer: the body and a short outcome label for logs and metrics.
pub struct Answer {
    pub body: Value,
    pub outcome: String,
}

impl Answer {
    pub fn success(fields: Map<String, Value>) -> Self {
        Answer {
            body: envelope::success(fields),
            outcome: "Executed-Success".into(),
        }
    }

    pub fn failed(code: StatusCode, message: &str) -> Self {
        Answer {
            body: envelope::failed(code, message),
            outcome: format!("Failed {}/{}", code.subject, code.reason),
        }
    }
}

fn string_field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    missing: StatusCode,
    invalid: StatusCode,
) -> Result<&'a str, Answer> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Answer::failed(invalid, &format!("{name} must be a string"))),
        None => Err(Answer::failed(missing, &format!("{name} is missing"))),
    }
}

fn eid_field(body: &Map<String, Value>) -> Result<Eid, Answer> {
    let s = string_field(body, "eid", codes::EID_MISSING, codes::EID_INVALID)?;
    Eid::parse(s).map_err(|e| Answer::failed(codes::EID_INVALID, &format!("eid: {e}")))
}

fn event_id_field(body: &Map<String, Value>) -> Result<EventId, Answer> {
    let s = string_field(
        body,
        "eventId",
        codes::EVENT_ID_MISSING,
        codes::EVENT_ID_INVALID,
    )?;
    EventId::parse(s).map_err(|e| Answer::failed(codes::EVENT_ID_INVALID, &e))
}

fn store_failure(e: &StoreError) -> Answer {
    tracing::error!(error = %e, "event store failure");
    let text = e.to_string();
    if text.contains("No space left") || text.contains("ENOSPC") || text.contains("os error 28") {
        Answer::failed(
            codes::INSUFFICIENT_MEMORY,
            "the event could not be stored: the SM-DS is out of disk space",
        )
    } else {
        Answer::failed(
            codes::EXECUTION_ERROR,
            "the event could not be stored; try again later",
        )
    }
}

/// ES12.RegisterEvent: `eid`, `rspServerAddress`, `eventId`, optional `forwardingIndicator`.
/// Answers only after the event is durably committed.
pub async fn register_event(
    store: &Store,
    peer: &PeerIdentity,
    body: &Map<String, Value>,
    now: i64,
) -> Answer {
    let header = match envelope::request_header(body) {
        Ok(h) => h,
        Err((code, msg)) => return Answer::failed(code, &msg),
    };
    let parsed = (|| {
        let eid = eid_field(body)?;
        let address = string_field(
            body,
            "rspServerAddress",
            codes::RSP_SERVER_ADDRESS_MISSING,
            codes::RSP_SERVER_ADDRESS_INVALID,
        )?;
        let address = RspServerAddress::parse(address)
            .map_err(|e| Answer::failed(codes::RSP_SERVER_ADDRESS_INVALID, &e))?;
        let event_id = event_id_field(body)?;
        let forwarding = match body.get("forwardingIndicator") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Answer::failed(
                    codes::REQUEST_INVALID,
                    "forwardingIndicator must be a boolean",
                ));
            }
        };
        Ok((eid, address, event_id, forwarding))
    })();
    let (eid, address, event_id, forwarding) = match parsed {
        Ok(p) => p,
        Err(a) => return a,
    };
    tracing::info!(
        requester = %header.function_requester_identifier,
        call = %header.function_call_identifier,
        owner = %peer.owner,
        "registerEvent"
    );
    let event = NewEvent {
        eid,
        event_id: event_id.into_string(),
        rsp_server_address: address.as_str().to_string(),
        owner: peer.owner.clone(),
        owner_names: peer.names.clone(),
        forwarding_indicator: forwarding,
        registered_at: now,
    };
    match store.register(event).await {
        Ok(RegisterOutcome::Registered { .. }) => Answer::success(Map::new()),
        Ok(RegisterOutcome::TooMany) => Answer::failed(
            codes::EID_EVENTS_FULL,
            "this EID has the maximum number of pending events; delete some first",
        ),
        Ok(RegisterOutcome::Duplicate) => Answer::failed(
            codes::EVENT_DUPLICATED,
            "an event with this eventId already exists for this EID",
        ),
        Err(e) => store_failure(&e),
    }
}

/// ES12.DeleteEvent: `eid`, `eventId`; only the SM-DP+ that registered the event may delete it.
pub async fn delete_event(store: &Store, peer: &PeerIdentity, body: &Map<String, Value>) -> Answer {
    if let Err((code, msg)) = envelope::request_header(body) {
        return Answer::failed(code, &msg);
    }
    let (eid, event_id) = match eid_field(body).and_then(|e| Ok((e, event_id_field(body)?))) {
        Ok(p) => p,
        Err(a) => return a,
    };
    match store
        .delete(eid, event_id.into_string(), peer.owner.clone())
        .await
    {
        Ok(DeleteOutcome::Deleted) => Answer::success(Map::new()),
        Ok(DeleteOutcome::NotFound) => Answer::failed(
            codes::EVENT_UNKNOWN,
            "no event identified by this eventId exists for this EID",
        ),
        Err(e) => store_failure(&e),
    }
}
