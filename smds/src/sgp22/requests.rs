//! The request bodies of the functions served, as typed values parsed at the edge (the JSON
//! binding, SGP.22 6.5): the server parses them once and handlers see only valid values. Field
//! names are the JSON binding's; [`Field::json_name`] is the one place they are written, and the
//! lab clients build their bodies with the same names.
//!
//! A parse failure names the field and whether it was missing or invalid; each function family
//! maps that to its SGP.22 code (`Es11Error::status`, `Es12Error::status`). The fields are read
//! one by one rather than through a serde derive because SGP.22 gives each field its own codes
//! (an invalid EID is 8.1.1/2.1, a missing eventId 8.9.5/2.2) and serde's errors do not say
//! which field failed; the values themselves (`Eid`, `EventId`, `RspServerAddress`,
//! `TransactionId`) validate again whenever serde deserializes them.

use crate::asn1::{self, EuiccInfo1View, TransactionId};
use crate::types::{
    EventDetailError, EventDetailsV3, EventId, MAX_DETAIL_BYTES, MAX_HASHED_ICCIDS, OperatorId,
    RspServerAddress, UncheckedEventDetails,
};
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use pki_tool::Eid;
use serde_json::{Map, Value};

/// A fresh functionCallIdentifier: 16 hex digits.
pub fn call_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// An ES12/ES15 request body: the header (`requester`, a fresh call id), then `fields`.
fn event_body(requester: &str, fields: &[(Field, Value)]) -> Value {
    let mut h = Map::new();
    h.insert(
        Field::FunctionRequesterIdentifier.json_name().into(),
        requester.into(),
    );
    h.insert(
        Field::FunctionCallIdentifier.json_name().into(),
        call_id().into(),
    );
    let mut m = Map::new();
    m.insert(Field::Header.json_name().into(), Value::Object(h));
    for (f, v) in fields {
        m.insert(f.json_name().into(), v.clone());
    }
    Value::Object(m)
}

/// The ES12/ES15.RegisterEvent body, as an SM-DP+ (or an Alternative SM-DS) sends it; the
/// values as given (unchecked), so that a test can send what a broken peer would.
pub fn register_event_body(
    requester: &str,
    eid: &str,
    event_id: &str,
    rsp_server_address: &str,
    forwarding: Option<bool>,
) -> Value {
    let mut fields = vec![
        (Field::Eid, Value::from(eid)),
        (Field::EventId, Value::from(event_id)),
        (Field::RspServerAddress, Value::from(rsp_server_address)),
    ];
    if let Some(f) = forwarding {
        fields.push((Field::ForwardingIndicator, Value::Bool(f)));
    }
    event_body(requester, &fields)
}

/// Adds `details` to a RegisterEvent body (from [`register_event_body`]), as the fields
/// [`RegisterEventRequest::parse`] reads.
pub fn with_event_details(body: &mut Value, details: &EventDetailsV3) {
    let Some(m) = body.as_object_mut() else {
        return;
    };
    let b64 = |b: &[u8]| Value::from(b64_encode(b));
    if let Some(t) = details.given_event_type() {
        m.insert(Field::EventType.json_name().into(), t.into());
    }
    if !details.hashed_iccids().is_empty() {
        let list = details.hashed_iccids().iter().map(|h| b64(h)).collect();
        m.insert(Field::HashedIccids.json_name().into(), Value::Array(list));
    }
    if let Some(s) = details.salt() {
        m.insert(Field::Salt.json_name().into(), b64(s));
    }
    if let Some(n) = details.service_provider_name() {
        m.insert(Field::ServiceProviderName.json_name().into(), n.into());
    }
    if let Some(op) = details.operator_id() {
        let [mcc_mnc, gid1, gid2] = OPERATOR_ID_KEYS;
        let mut o = Map::new();
        o.insert(mcc_mnc.into(), b64(&op.mcc_mnc));
        for (k, g) in [(gid1, &op.gid1), (gid2, &op.gid2)] {
            if let Some(g) = g {
                o.insert(k.into(), b64(g));
            }
        }
        m.insert(Field::OperatorId.json_name().into(), Value::Object(o));
    }
}

/// The ES12/ES15.DeleteEvent body.
pub fn delete_event_body(requester: &str, eid: &str, event_id: &str) -> Value {
    event_body(
        requester,
        &[
            (Field::Eid, Value::from(eid)),
            (Field::EventId, Value::from(event_id)),
        ],
    )
}

/// A request field of the JSON binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The ES12/ES15 request header object.
    Header,
    FunctionRequesterIdentifier,
    FunctionCallIdentifier,
    Eid,
    EventId,
    RspServerAddress,
    ForwardingIndicator,
    /// ES11 InitiateAuthentication's address (`smdpAddress`, or `smdsAddress` as some LPAs send).
    SmdsAddress,
    EuiccChallenge,
    EuiccInfo1,
    TransactionId,
    AuthenticateServerResponse,
    /// SGP.22 v3 CheckEvent's Event Checking identifier. The JSON name is inferred (the ASN.1
    /// field's name, as v2 names every key; `sgp22-v3-es15-notes.md` 1.1).
    EcId,
    /// ES12/ES15.RegisterEvent's optional SGP.22 v3 inputs for EventRecordV3 (notes 2: "must
    /// gain matching optional inputs", names unknown). The names are inferred the same way, from
    /// the EventRecordV3 fields; binary values are base64 as everywhere in the JSON binding.
    EventType,
    HashedIccids,
    Salt,
    ServiceProviderName,
    /// An object `{mccMnc, gid1?, gid2?}` ([`OPERATOR_ID_KEYS`]), as rsp.asn's OperatorID.
    OperatorId,
}

/// The keys inside [`Field::OperatorId`]: rsp.asn's OperatorID field names (inferred as above).
pub const OPERATOR_ID_KEYS: [&str; 3] = ["mccMnc", "gid1", "gid2"];

impl Field {
    pub fn json_name(self) -> &'static str {
        match self {
            Field::Header => "header",
            Field::FunctionRequesterIdentifier => "functionRequesterIdentifier",
            Field::FunctionCallIdentifier => "functionCallIdentifier",
            Field::Eid => "eid",
            Field::EventId => "eventId",
            Field::RspServerAddress => "rspServerAddress",
            Field::ForwardingIndicator => "forwardingIndicator",
            Field::SmdsAddress => "smdpAddress",
            Field::EuiccChallenge => "euiccChallenge",
            Field::EuiccInfo1 => "euiccInfo1",
            Field::TransactionId => "transactionId",
            Field::EcId => "ecId",
            Field::AuthenticateServerResponse => "authenticateServerResponse",
            Field::EventType => "eventType",
            Field::HashedIccids => "hashedIccids",
            Field::Salt => "salt",
            Field::ServiceProviderName => "serviceProviderName",
            Field::OperatorId => "operatorId",
        }
    }
}

/// ES11 InitiateAuthentication's alternative name for [`Field::SmdsAddress`] (Eastcompeace).
pub const SMDS_ADDRESS_ALIAS: &str = "smdsAddress";

/// Why a request body does not carry a valid function call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{} is missing", .0.json_name())]
    Missing(Field),
    /// The field has the wrong JSON type.
    #[error("{} must be {expected}", .field.json_name())]
    WrongType {
        field: Field,
        expected: &'static str,
    },
    /// The field's value is malformed.
    #[error("{}: {why}", .field.json_name())]
    Invalid { field: Field, why: String },
}

impl RequestError {
    pub fn field(&self) -> Field {
        match self {
            RequestError::Missing(f) => *f,
            RequestError::WrongType { field, .. } | RequestError::Invalid { field, .. } => *field,
        }
    }
}

fn invalid(field: Field, why: impl std::fmt::Display) -> RequestError {
    RequestError::Invalid {
        field,
        why: why.to_string(),
    }
}

fn string(body: &Map<String, Value>, field: Field) -> Result<&str, RequestError> {
    string_named(body, field.json_name(), field)
}

fn string_named<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    field: Field,
) -> Result<&'a str, RequestError> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(RequestError::WrongType {
            field,
            expected: "a string",
        }),
        None => Err(RequestError::Missing(field)),
    }
}

/// Base64 as clients send it: standard alphabet, padding optional, whitespace ignored.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    engine.decode(compact.as_bytes()).ok()
}

/// Base64 as the server writes it (standard, padded).
pub fn b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Longest header field accepted, in bytes.
const MAX_HEADER_FIELD_BYTES: usize = 256;

/// The ES12/ES15 request header (SGP.22 6.5.1.2): both fields required, possibly empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub function_requester_identifier: String,
    pub function_call_identifier: String,
}

impl RequestHeader {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, RequestError> {
        let h = match body.get(Field::Header.json_name()) {
            None => return Err(RequestError::Missing(Field::Header)),
            Some(Value::Object(h)) => h,
            Some(_) => {
                return Err(RequestError::WrongType {
                    field: Field::Header,
                    expected: "a JSON object",
                });
            }
        };
        let field = |f: Field| -> Result<String, RequestError> {
            let s = string(h, f)?;
            if s.len() > MAX_HEADER_FIELD_BYTES {
                return Err(invalid(
                    f,
                    format!("longer than {MAX_HEADER_FIELD_BYTES} bytes"),
                ));
            }
            Ok(s.to_string())
        };
        Ok(RequestHeader {
            function_requester_identifier: field(Field::FunctionRequesterIdentifier)?,
            function_call_identifier: field(Field::FunctionCallIdentifier)?,
        })
    }
}

fn eid(body: &Map<String, Value>) -> Result<Eid, RequestError> {
    Eid::parse(string(body, Field::Eid)?).map_err(|e| invalid(Field::Eid, e))
}

fn event_id(body: &Map<String, Value>) -> Result<EventId, RequestError> {
    EventId::parse(string(body, Field::EventId)?).map_err(|e| invalid(Field::EventId, e))
}

/// ES12.RegisterEvent (SGP.22 5.7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterEventRequest {
    pub header: RequestHeader,
    pub eid: Eid,
    pub rsp_server_address: RspServerAddress,
    pub event_id: EventId,
    /// Asks an Alternative SM-DS to cascade the event to the Root SM-DS.
    pub forwarding_indicator: bool,
    /// The optional SGP.22 v3 EventRecordV3 inputs.
    pub details: EventDetailsV3,
}

impl RegisterEventRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, RequestError> {
        let header = RequestHeader::parse(body)?;
        let eid = eid(body)?;
        let rsp_server_address = RspServerAddress::parse(string(body, Field::RspServerAddress)?)
            .map_err(|e| invalid(Field::RspServerAddress, e))?;
        let event_id = event_id(body)?;
        let forwarding_indicator = match body.get(Field::ForwardingIndicator.json_name()) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(RequestError::WrongType {
                    field: Field::ForwardingIndicator,
                    expected: "a boolean",
                });
            }
        };
        Ok(RegisterEventRequest {
            header,
            eid,
            rsp_server_address,
            event_id,
            forwarding_indicator,
            details: event_details(body)?,
        })
    }
}

/// Base64 of 1..=`max` bytes at `field` (or in it, for lists and objects).
fn b64_value(v: &Value, field: Field, max: usize) -> Result<Vec<u8>, RequestError> {
    let s = v.as_str().ok_or(RequestError::WrongType {
        field,
        expected: "base64 text",
    })?;
    b64_decode(s)
        .filter(|b| (1..=max).contains(&b.len()))
        .ok_or_else(|| invalid(field, format!("must be base64 of 1 to {max} bytes")))
}

/// The optional v3 EventRecordV3 inputs of a RegisterEvent body (all absent for v2 callers).
fn event_details(body: &Map<String, Value>) -> Result<EventDetailsV3, RequestError> {
    let get = |f: Field| body.get(f.json_name()).filter(|v| !v.is_null());
    let mut d = UncheckedEventDetails::default();
    if let Some(v) = get(Field::EventType) {
        let t = v.as_u64().and_then(|t| u32::try_from(t).ok());
        d.event_type =
            Some(t.ok_or_else(|| invalid(Field::EventType, EventDetailError::EventType))?);
    }
    if let Some(v) = get(Field::HashedIccids) {
        let list = v.as_array().ok_or(RequestError::WrongType {
            field: Field::HashedIccids,
            expected: "an array of base64 text",
        })?;
        if list.len() > MAX_HASHED_ICCIDS {
            return Err(invalid(Field::HashedIccids, EventDetailError::HashedIccids));
        }
        d.hashed_iccids = list
            .iter()
            .map(|h| b64_value(h, Field::HashedIccids, MAX_DETAIL_BYTES))
            .collect::<Result<_, _>>()?;
    }
    if let Some(v) = get(Field::Salt) {
        d.salt = Some(b64_value(v, Field::Salt, MAX_DETAIL_BYTES)?);
    }
    if get(Field::ServiceProviderName).is_some() {
        d.service_provider_name = Some(string(body, Field::ServiceProviderName)?.to_string());
    }
    if let Some(v) = get(Field::OperatorId) {
        let o = v.as_object().ok_or(RequestError::WrongType {
            field: Field::OperatorId,
            expected: "an object {mccMnc, gid1, gid2}",
        })?;
        let [mcc_mnc, gid1, gid2] = OPERATOR_ID_KEYS;
        let mcc_mnc = o
            .get(mcc_mnc)
            .ok_or(RequestError::Missing(Field::OperatorId))
            .and_then(|m| b64_value(m, Field::OperatorId, 3))?;
        let gid = |k: &str| {
            o.get(k)
                .filter(|v| !v.is_null())
                .map(|g| b64_value(g, Field::OperatorId, MAX_DETAIL_BYTES))
                .transpose()
        };
        d.operator_id = Some(OperatorId {
            mcc_mnc: <[u8; 3]>::try_from(mcc_mnc.as_slice())
                .map_err(|_| invalid(Field::OperatorId, EventDetailError::OperatorId))?,
            gid1: gid(gid1)?,
            gid2: gid(gid2)?,
        });
    }
    EventDetailsV3::try_from(d).map_err(|e| {
        let field = match e {
            EventDetailError::EventType => Field::EventType,
            EventDetailError::HashedIccids => Field::HashedIccids,
            EventDetailError::Salt => Field::Salt,
            EventDetailError::ServiceProviderName => Field::ServiceProviderName,
            EventDetailError::OperatorId => Field::OperatorId,
        };
        invalid(field, e)
    })
}

/// ES12.DeleteEvent (SGP.22 5.7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteEventRequest {
    pub header: RequestHeader,
    pub eid: Eid,
    pub event_id: EventId,
}

impl DeleteEventRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, RequestError> {
        let header = RequestHeader::parse(body)?;
        Ok(DeleteEventRequest {
            header,
            eid: eid(body)?,
            event_id: event_id(body)?,
        })
    }
}

/// ES11.InitiateAuthentication (SGP.22 5.8.1). Real LPAs send no request header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateAuthenticationRequest {
    pub euicc_challenge: [u8; 16],
    pub euicc_info1: EuiccInfo1View,
    /// The address the LPA was given for this SM-DS, as sent.
    pub smds_address: String,
}

impl InitiateAuthenticationRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, RequestError> {
        let euicc_challenge = b64_decode(string(body, Field::EuiccChallenge)?)
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| invalid(Field::EuiccChallenge, "must be base64 of 16 bytes"))?;
        let info1_der = b64_decode(string(body, Field::EuiccInfo1)?)
            .ok_or_else(|| invalid(Field::EuiccInfo1, "not valid base64"))?;
        let euicc_info1 =
            asn1::parse_euicc_info1(&info1_der).map_err(|e| invalid(Field::EuiccInfo1, e))?;
        let smds_address = smds_address(body)?;
        Ok(InitiateAuthenticationRequest {
            euicc_challenge,
            euicc_info1,
            smds_address: smds_address.to_string(),
        })
    }
}

/// The SM-DS address an LPA sends: `smdsAddress` when present (Eastcompeace, v3 CheckEvent), else
/// `smdpAddress` (everyone else's InitiateAuthentication).
fn smds_address(body: &Map<String, Value>) -> Result<&str, RequestError> {
    if body.contains_key(SMDS_ADDRESS_ALIAS) {
        string_named(body, SMDS_ADDRESS_ALIAS, Field::SmdsAddress)
    } else {
        string(body, Field::SmdsAddress)
    }
}

/// ES11.CheckEvent (SGP.22 v3 Event Checking): `ecId` (base64) and the SM-DS's address
/// (`smdsAddress`, as the ASN.1 names it, or `smdpAddress`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEventRequest {
    pub ec_id: Vec<u8>,
    pub smds_address: String,
}

impl CheckEventRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, RequestError> {
        let ec_id = b64_decode(string(body, Field::EcId)?)
            .filter(|b| (1..=64).contains(&b.len()))
            .ok_or_else(|| invalid(Field::EcId, "must be base64 of 1 to 64 bytes"))?;
        let smds_address = smds_address(body)?;
        Ok(CheckEventRequest {
            ec_id,
            smds_address: smds_address.to_string(),
        })
    }
}

/// ES11.AuthenticateClient (SGP.22 5.8.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateClientRequest {
    pub transaction_id: TransactionId,
    /// The eUICC's `AuthenticateServerResponse` (BF38), DER as received: its euiccSigned1 is
    /// verified over these exact bytes.
    pub authenticate_server_response: Vec<u8>,
}

impl AuthenticateClientRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, RequestError> {
        let transaction_id = TransactionId::from_hex(string(body, Field::TransactionId)?)
            .ok_or_else(|| invalid(Field::TransactionId, "not 1 to 16 bytes of hex"))?;
        let authenticate_server_response =
            b64_decode(string(body, Field::AuthenticateServerResponse)?)
                .ok_or_else(|| invalid(Field::AuthenticateServerResponse, "not valid base64"))?;
        Ok(AuthenticateClientRequest {
            transaction_id,
            authenticate_server_response,
        })
    }
}

/// Parses a JSON object body, saying what is wrong when it is not one.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(BodyError::NotAnObject),
        Err(e) => Err(BodyError::Malformed(e.to_string())),
    }
}

/// Why a body is not a JSON object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("malformed JSON: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn base64_padding_is_optional() {
        assert_eq!(b64_decode("AAE=").as_deref(), Some(&[0u8, 1][..]));
        assert_eq!(b64_decode("AAE").as_deref(), Some(&[0u8, 1][..]));
        assert_eq!(b64_decode("AA\nE=").as_deref(), Some(&[0u8, 1][..]));
        assert!(b64_decode("A-E=").is_none());
    }

    #[test]
    fn register_event_fields_are_checked_in_order() {
        let header = json!({"functionRequesterIdentifier": "", "functionCallIdentifier": "1"});
        let ok = obj(
            json!({"header": header, "eid": "89049032123451234512345678901235",
            "rspServerAddress": "smdp.example.com", "eventId": "e1"}),
        );
        let r = RegisterEventRequest::parse(&ok).expect("valid");
        assert!(!r.forwarding_indicator);
        let mut no_header = ok.clone();
        no_header.remove("header");
        assert_eq!(
            RegisterEventRequest::parse(&no_header),
            Err(RequestError::Missing(Field::Header))
        );
        let mut bad_eid = ok.clone();
        bad_eid.insert("eid".into(), json!("89049032123451234512345678901234"));
        assert_eq!(
            RegisterEventRequest::parse(&bad_eid).map_err(|e| e.field()),
            Err(Field::Eid)
        );
        let mut fwd = ok;
        fwd.insert("forwardingIndicator".into(), json!("yes"));
        assert!(matches!(
            RegisterEventRequest::parse(&fwd),
            Err(RequestError::WrongType {
                field: Field::ForwardingIndicator,
                ..
            })
        ));
    }

    #[test]
    fn address_alias_is_preferred() {
        let m = obj(json!({"smdsAddress": "a.example", "smdpAddress": "b.example"}));
        assert_eq!(
            string_named(&m, SMDS_ADDRESS_ALIAS, Field::SmdsAddress),
            Ok("a.example")
        );
    }

    #[test]
    fn event_details_round_trip_through_the_body_builder() {
        let mut body = register_event_body(
            "dp",
            "89049032123451234512345678901235",
            "ev",
            "a.example",
            None,
        );
        let details = EventDetailsV3::try_from(UncheckedEventDetails {
            event_type: Some(7),
            hashed_iccids: vec![vec![1; 32]],
            salt: Some(vec![2; 8]),
            service_provider_name: Some("Op".into()),
            operator_id: Some(OperatorId {
                mcc_mnc: [0x02, 0xF8, 0x01],
                gid1: None,
                gid2: Some(vec![9]),
            }),
        })
        .expect("valid");
        with_event_details(&mut body, &details);
        let r = RegisterEventRequest::parse(&obj(body)).expect("valid");
        assert_eq!(r.details, details);
        // A v2 body has none, and stored records without them read back as none.
        let v2 = register_event_body(
            "dp",
            "89049032123451234512345678901235",
            "ev",
            "a.example",
            None,
        );
        assert!(
            RegisterEventRequest::parse(&obj(v2))
                .expect("valid")
                .details
                .is_empty()
        );
        let stored: EventDetailsV3 = serde_json::from_str("{}").expect("json");
        assert!(stored.is_empty());
        assert!(serde_json::from_str::<EventDetailsV3>(r#"{"salt":[]}"#).is_err());
    }
}
