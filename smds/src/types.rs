//! Validated request values: parsed at the edge, carried as plain data inside. Each serializes
//! as the string it was parsed from, and deserializing validates again, so stored records and
//! JSON bodies can only ever hold valid values.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an `rspServerAddress` is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("rspServerAddress is empty")]
    Empty,
    #[error("rspServerAddress is longer than 260 characters")]
    TooLong,
    #[error("rspServerAddress {0:?} must not contain a scheme")]
    Scheme(String),
    #[error("rspServerAddress {0:?} must be a host name and optional port, found {1:?}")]
    Character(String, char),
    #[error("rspServerAddress {0:?} has an invalid port")]
    Port(String),
    #[error("rspServerAddress {0:?} has an invalid host name length")]
    HostLength(String),
    #[error("rspServerAddress {0:?} is not a valid host name (label {1:?})")]
    Label(String, String),
}

/// An `rspServerAddress`: a bare FQDN with an optional `:port`, never a scheme or a path, since
/// LPAs build `https://<rspServerAddress>` from it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RspServerAddress(String);

impl RspServerAddress {
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if s.is_empty() {
            return Err(AddressError::Empty);
        }
        if s.len() > 260 {
            return Err(AddressError::TooLong);
        }
        if s.contains("://") {
            return Err(AddressError::Scheme(s.into()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '@' | ' ') || c.is_control())
        {
            return Err(AddressError::Character(s.into(), c));
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if let Some(p) = port
            && (p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || p.parse::<u16>().map_or(true, |n| n == 0))
        {
            return Err(AddressError::Port(s.into()));
        }
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() || host.len() > 253 {
            return Err(AddressError::HostLength(s.into()));
        }
        for label in host.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(AddressError::Label(s.into(), label.into()));
            }
        }
        Ok(RspServerAddress(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RspServerAddress {
    type Error = AddressError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<RspServerAddress> for String {
    fn from(a: RspServerAddress) -> String {
        a.0
    }
}

impl fmt::Display for RspServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an EventID is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    #[error("eventId is empty")]
    Empty,
    #[error("eventId is {0} bytes, more than {MAX_EVENT_ID_BYTES}")]
    TooLong(usize),
    #[error("eventId contains control characters")]
    ControlCharacter,
}

/// An EventID: opaque to the SM-DS, stored verbatim; non-empty printable UTF-8 of bounded length.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

/// Longest EventID accepted, in bytes.
pub const MAX_EVENT_ID_BYTES: usize = 256;

impl EventId {
    pub fn parse(s: &str) -> Result<Self, EventIdError> {
        if s.is_empty() {
            return Err(EventIdError::Empty);
        }
        if s.len() > MAX_EVENT_ID_BYTES {
            return Err(EventIdError::TooLong(s.len()));
        }
        if s.chars().any(char::is_control) {
            return Err(EventIdError::ControlCharacter);
        }
        Ok(EventId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = EventIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(e: EventId) -> String {
        e.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an SGP.22 v3 event detail is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventDetailError {
    #[error("eventType must be an integer from 0 to {MAX_EVENT_TYPE}")]
    EventType,
    #[error("at most {MAX_HASHED_ICCIDS} hashed ICCIDs of 1 to {MAX_DETAIL_BYTES} bytes each")]
    HashedIccids,
    #[error("salt must be 1 to {MAX_DETAIL_BYTES} bytes")]
    Salt,
    #[error("serviceProviderName must be at most 32 characters, none of them control characters")]
    ServiceProviderName,
    #[error("operatorId: mccMnc must be 3 bytes, gid1 and gid2 1 to {MAX_DETAIL_BYTES} bytes")]
    OperatorId,
}

/// Largest `eventType` accepted: the INTEGER's named values are unknown, so any value a 32-bit
/// signed peer can hold.
pub const MAX_EVENT_TYPE: u32 = i32::MAX as u32;
/// Most hashed ICCIDs one event carries.
pub const MAX_HASHED_ICCIDS: usize = 16;
/// Longest hashed ICCID, salt, GID1 or GID2, in bytes.
pub const MAX_DETAIL_BYTES: usize = 64;

/// `OperatorID` (rsp.asn): MCC and MNC as 3 bytes (3GPP TS 24.008), and the operator's GID1/GID2
/// file contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorId {
    pub mcc_mnc: [u8; 3],
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid1: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid2: Option<Vec<u8>>,
}

/// The fields of an SGP.22 v3 `EventRecordV3` that only the registering SM-DP+ knows: given
/// (all optional) on ES12.RegisterEvent, forwarded on ES15, stored with the event, and shown
/// only in signed v3 answers. Absent ones stay absent there; an absent `eventType` is sent as 0,
/// since EventRecordV3 requires one and its named values are unknown (notes 1.3, 1.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedEventDetails")]
pub struct EventDetailsV3 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_type: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    hashed_iccids: Vec<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service_provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator_id: Option<OperatorId>,
}

/// [`EventDetailsV3`]'s fields before they are checked (what a stored record deserializes to).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UncheckedEventDetails {
    #[serde(default)]
    pub event_type: Option<u32>,
    #[serde(default)]
    pub hashed_iccids: Vec<Vec<u8>>,
    #[serde(default)]
    pub salt: Option<Vec<u8>>,
    #[serde(default)]
    pub service_provider_name: Option<String>,
    #[serde(default)]
    pub operator_id: Option<OperatorId>,
}

impl TryFrom<UncheckedEventDetails> for EventDetailsV3 {
    type Error = EventDetailError;
    fn try_from(u: UncheckedEventDetails) -> Result<Self, Self::Error> {
        let sized = |b: &[u8]| (1..=MAX_DETAIL_BYTES).contains(&b.len());
        if u.event_type.is_some_and(|t| t > MAX_EVENT_TYPE) {
            return Err(EventDetailError::EventType);
        }
        if u.hashed_iccids.len() > MAX_HASHED_ICCIDS || !u.hashed_iccids.iter().all(|h| sized(h)) {
            return Err(EventDetailError::HashedIccids);
        }
        if u.salt.as_deref().is_some_and(|s| !sized(s)) {
            return Err(EventDetailError::Salt);
        }
        if u.service_provider_name
            .as_deref()
            .is_some_and(|n| n.chars().count() > 32 || n.chars().any(char::is_control))
        {
            return Err(EventDetailError::ServiceProviderName);
        }
        if let Some(op) = &u.operator_id
            && [&op.gid1, &op.gid2]
                .into_iter()
                .flatten()
                .any(|g| !sized(g))
        {
            return Err(EventDetailError::OperatorId);
        }
        Ok(EventDetailsV3 {
            event_type: u.event_type,
            hashed_iccids: u.hashed_iccids,
            salt: u.salt,
            service_provider_name: u.service_provider_name,
            operator_id: u.operator_id,
        })
    }
}

impl EventDetailsV3 {
    pub fn is_empty(&self) -> bool {
        *self == EventDetailsV3::default()
    }
    /// The `eventType` EventRecordV3 carries: as registered, else 0.
    pub fn event_type(&self) -> u32 {
        self.event_type.unwrap_or(0)
    }
    pub fn given_event_type(&self) -> Option<u32> {
        self.event_type
    }
    pub fn hashed_iccids(&self) -> &[Vec<u8>] {
        &self.hashed_iccids
    }
    pub fn salt(&self) -> Option<&[u8]> {
        self.salt.as_deref()
    }
    pub fn service_provider_name(&self) -> Option<&str> {
        self.service_provider_name.as_deref()
    }
    pub fn operator_id(&self) -> Option<&OperatorId> {
        self.operator_id.as_ref()
    }
}

/// Why a push token is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushTokenError {
    #[error("pushToken is empty")]
    Empty,
    #[error("pushToken is longer than {MAX_PUSH_TOKEN_BYTES} bytes")]
    TooLong,
    #[error("pushToken contains control characters")]
    ControlCharacter,
}

/// Longest push token accepted, in bytes (FCM tokens are about 160, APNs tokens 64).
pub const MAX_PUSH_TOKEN_BYTES: usize = 1024;

/// A device's push token (SGP.22 v3 CtxParamsForPushServiceRegistration.pushToken): a secret
/// that lets anyone wake the device, so it is never logged: `Debug` and `Display` show only its
/// length. Stored and sent to the push gateway as given.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PushToken(String);

impl PushToken {
    pub fn parse(s: &str) -> Result<Self, PushTokenError> {
        if s.is_empty() {
            return Err(PushTokenError::Empty);
        }
        if s.len() > MAX_PUSH_TOKEN_BYTES {
            return Err(PushTokenError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(PushTokenError::ControlCharacter);
        }
        Ok(PushToken(s.to_string()))
    }

    /// The token itself: for the store and the gateway request only.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PushToken {
    type Error = PushTokenError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<PushToken> for String {
    fn from(t: PushToken) -> String {
        t.0
    }
}

impl fmt::Debug for PushToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PushToken(<{} bytes>)", self.0.len())
    }
}

impl fmt::Display for PushToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<push token, {} bytes>", self.0.len())
    }
}

/// An EID as the logs show it: its first 8 digits (the EIN: which manufacturer) and its last 6,
/// `89049032..901235`. Enough to find one device's lines (grep for that text), not enough to
/// rebuild the EID from a log: an EID identifies a device as an IMEI does, and logs travel
/// further and live longer than the event store.
pub struct LoggedEid<'a>(pub &'a pki_tool::Eid);

impl std::fmt::Display for LoggedEid<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.0.as_str();
        let (head, tail) = (&digits[..8], &digits[digits.len() - 6..]);
        write!(f, "{head}..{tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for ok in [
            "smdp.example.com",
            "smdp.example.com:8443",
            "localhost",
            "a-b.c1.example.",
            "127.0.0.1:443",
        ] {
            assert!(RspServerAddress::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "https://smdp.example.com",
            "smdp.example.com/path",
            "smdp example",
            "smdp.example.com:",
            "smdp.example.com:0",
            "smdp.example.com:99999",
            "-a.example",
            "a..b",
            "user@host",
            "smdp.example.com:80:80",
        ] {
            assert!(RspServerAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_ids() {
        assert!(EventId::parse("ev-1").is_ok());
        assert!(EventId::parse("événement").is_ok());
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse("a\nb").is_err());
        assert!(EventId::parse(&"x".repeat(257)).is_err());
    }

    #[test]
    fn serde_validates() {
        let e: EventId = serde_json::from_str("\"ev-1\"").expect("valid");
        assert_eq!(serde_json::to_string(&e).expect("json"), "\"ev-1\"");
        assert!(serde_json::from_str::<EventId>("\"\"").is_err());
        assert!(serde_json::from_str::<RspServerAddress>("\"https://x\"").is_err());
    }

    #[test]
    fn push_tokens_never_show_themselves() {
        let t = PushToken::parse("fcm:secret-token").expect("valid");
        assert!(!format!("{t:?} {t}").contains("secret"));
        assert_eq!(t.secret(), "fcm:secret-token");
        assert!(PushToken::parse("").is_err());
        assert!(PushToken::parse("a\nb").is_err());
        assert!(PushToken::parse(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn logged_eids_show_the_ein_and_the_last_six_digits() {
        let eid = pki_tool::Eid::parse("89049032123451234512345678901235").expect("valid");
        assert_eq!(LoggedEid(&eid).to_string(), "89049032..901235");
    }
}
