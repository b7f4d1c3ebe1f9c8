//! Why an ES12 call failed, and the one mapping from those reasons to SGP.22 status codes.

use crate::sgp22::FunctionError;
use crate::sgp22::codes::{self, StatusCode};
use crate::sgp22::requests::{Field, RequestError};
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Es12Error {
    /// The body does not carry a valid call.
    #[error("{0}")]
    Request(#[from] RequestError),
    /// The EID has as many events as the server keeps.
    #[error("this EID has the maximum number of pending events; delete some first")]
    EventsFull,
    /// The EID holds as many events from all SM-DP+s together as the server keeps. The caller is
    /// told exactly what an SM-DP+ at its own bound is told, so it learns nothing about others.
    #[error("this EID has the maximum number of pending events; delete some first")]
    EidBackstop,
    #[error("an event with this eventId already exists for this EID")]
    Duplicate,
    /// No such event, or one registered by another SM-DP+ (deliberately the same).
    #[error("no event identified by this eventId exists for this EID")]
    UnknownEvent,
    /// An Alternative SM-DS's Root refused the forwarded registration (its code and message);
    /// nothing was kept.
    #[error("the Root SM-DS refused the cascaded registration: {0}")]
    CascadeRefused(String),
    /// The Root could not be reached or did not answer in time; nothing was kept here, and any
    /// copy the Root may have made is being deleted.
    #[error("the Root SM-DS could not be reached: {0}")]
    CascadeUnreachable(String),
    /// The store failed; the message says no more than the caller can act on.
    #[error("{}", store_message(.0))]
    Store(StoreError),
}

fn store_message(e: &StoreError) -> &'static str {
    match e.root() {
        StoreError::DiskFull => "the event could not be stored: the SM-DS is out of disk space",
        _ => "the event could not be stored; try again later",
    }
}

impl FunctionError for Es12Error {
    fn refusal_reason(&self) -> Option<&'static str> {
        matches!(self, Es12Error::EidBackstop).then_some("eid_backstop")
    }

    fn status(&self) -> StatusCode {
        match self {
            Es12Error::Request(e) => request_status(e),
            Es12Error::EventsFull | Es12Error::EidBackstop => codes::EID_EVENTS_FULL,
            Es12Error::Duplicate => codes::EVENT_DUPLICATED,
            Es12Error::UnknownEvent => codes::EVENT_UNKNOWN,
            Es12Error::CascadeRefused(_) => codes::CASCADE_REFUSED,
            Es12Error::CascadeUnreachable(_) => codes::CASCADE_UNREACHABLE,
            Es12Error::Store(e) => match e.root() {
                StoreError::DiskFull => codes::INSUFFICIENT_MEMORY,
                _ => codes::EXECUTION_ERROR,
            },
        }
    }
}

fn request_status(e: &RequestError) -> StatusCode {
    let missing = matches!(e, RequestError::Missing(_));
    match (e.field(), missing) {
        (Field::Eid, true) => codes::EID_MISSING,
        (Field::Eid, false) => codes::EID_INVALID,
        (Field::RspServerAddress, true) => codes::RSP_SERVER_ADDRESS_MISSING,
        (Field::RspServerAddress, false) => codes::RSP_SERVER_ADDRESS_INVALID,
        (Field::EventId, true) => codes::EVENT_ID_MISSING,
        (Field::EventId, false) => codes::EVENT_ID_INVALID,
        (_, true) => codes::REQUEST_ELEMENT_MISSING,
        (_, false) => codes::REQUEST_INVALID,
    }
}
