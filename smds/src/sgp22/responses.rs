//! The outputs of the ES11 functions in the JSON binding (SGP.22 6.5.2.x): built by the server,
//! read by the lab LPA, with the field names written once here.

use super::envelope::FunctionResult;
use super::requests::{b64_decode, b64_encode};
use crate::asn1::TransactionId;
use crate::types::EventDetailsV3;
use pki_tool::tlv::{self, tag};
use serde_json::{Map, Value, json};

/// Why an answer lacks what the function returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{function} answer: {what}")]
pub struct ResponseError {
    pub function: &'static str,
    pub what: String,
}

fn error(function: &'static str, what: impl Into<String>) -> ResponseError {
    ResponseError {
        function,
        what: what.into(),
    }
}

/// ES11.InitiateAuthentication's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitiateAuthenticationResponse {
    pub transaction_id: TransactionId,
    /// DER of `ServerSigned1`.
    pub server_signed1: Vec<u8>,
    /// `serverSignature1`: the 5F37 TLV with raw r||s.
    pub server_signature1: Vec<u8>,
    /// The chosen CI's key identifier (on the wire: an OCTET STRING TLV).
    pub euicc_ci_pkid_to_be_used: Vec<u8>,
    /// DER of CERT.DSauth.
    pub server_certificate: Vec<u8>,
    /// SGP.22 v3 `otherCertsInChain`: DER of the SubCAs between CERT.DSauth and the CI, nearest
    /// first; empty (and absent from the answer) for a CERT.DSauth directly under the CI.
    pub other_certs_in_chain: Vec<Vec<u8>>,
}

const INITIATE: &str = "InitiateAuthentication";
const AUTHENTICATE: &str = "AuthenticateClient";

impl InitiateAuthenticationResponse {
    pub fn to_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("transactionId".into(), self.transaction_id.to_hex().into());
        m.insert(
            "serverSigned1".into(),
            b64_encode(&self.server_signed1).into(),
        );
        m.insert(
            "serverSignature1".into(),
            b64_encode(&self.server_signature1).into(),
        );
        m.insert(
            "euiccCiPKIdToBeUsed".into(),
            b64_encode(&tlv::octet_string(&self.euicc_ci_pkid_to_be_used)).into(),
        );
        m.insert(
            "serverCertificate".into(),
            b64_encode(&self.server_certificate).into(),
        );
        if !self.other_certs_in_chain.is_empty() {
            m.insert(
                OTHER_CERTS_IN_CHAIN.into(),
                self.other_certs_in_chain
                    .iter()
                    .map(|c| Value::from(b64_encode(c)))
                    .collect(),
            );
        }
        m
    }

    /// Reads a successful answer.
    pub fn from_result(r: &FunctionResult) -> Result<Self, ResponseError> {
        let s = |k: &str| {
            r.body[k]
                .as_str()
                .ok_or_else(|| error(INITIATE, format!("no {k}")))
        };
        let d = |k: &str| {
            b64_decode(s(k)?).ok_or_else(|| error(INITIATE, format!("{k} is not base64")))
        };
        let ski = d("euiccCiPKIdToBeUsed")?;
        let ski = tlv::parse_single(&ski, "euiccCiPKIdToBeUsed")
            .map_err(|e| error(INITIATE, e.to_string()))?;
        if ski.tag != tag::OCTET_STRING {
            return Err(error(
                INITIATE,
                "euiccCiPKIdToBeUsed is not an OCTET STRING TLV",
            ));
        }
        Ok(InitiateAuthenticationResponse {
            transaction_id: TransactionId::from_hex(s("transactionId")?)
                .ok_or_else(|| error(INITIATE, "transactionId is not 1 to 16 bytes of hex"))?,
            server_signed1: d("serverSigned1")?,
            server_signature1: d("serverSignature1")?,
            euicc_ci_pkid_to_be_used: ski.value.to_vec(),
            server_certificate: d("serverCertificate")?,
            other_certs_in_chain: match &r.body[OTHER_CERTS_IN_CHAIN] {
                Value::Null => Vec::new(),
                Value::Array(certs) => certs
                    .iter()
                    .map(|c| c.as_str().and_then(b64_decode))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        error(
                            INITIATE,
                            format!("{OTHER_CERTS_IN_CHAIN} is not an array of base64"),
                        )
                    })?,
                _ => {
                    return Err(error(
                        INITIATE,
                        format!("{OTHER_CERTS_IN_CHAIN} is not an array"),
                    ));
                }
            },
        })
    }
}

/// One entry of `eventEntries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventEntry {
    pub event_id: String,
    pub rsp_server_address: String,
    /// The SGP.22 v3 EventRecordV3 fields: only in a signed v3 answer (none in v2 JSON).
    pub details: EventDetailsV3,
}

impl From<crate::asn1::EventRecordV3View> for EventEntry {
    fn from(v: crate::asn1::EventRecordV3View) -> Self {
        EventEntry {
            event_id: v.event_id,
            rsp_server_address: v.rsp_server_address,
            details: v.details,
        }
    }
}

impl EventEntry {
    pub fn to_json(&self) -> Value {
        json!({"eventId": self.event_id, "rspServerAddress": self.rsp_server_address})
    }
}

/// ES11.CheckEvent's output: `isPendingEvent` (the JSON name is inferred, as the request's).
pub fn check_event_fields(is_pending_event: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("isPendingEvent".into(), Value::Bool(is_pending_event));
    m
}

/// A v3 answer's signed event list (`authenticateClientOkV3`): `SmdsSigned2` and its signature
/// by the session's CERT.DSauth key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEventList {
    /// DER of `SmdsSigned2`, exactly as signed.
    pub smds_signed2: Vec<u8>,
    /// `smdsSignature2`: the 5F37 TLV with raw r||s.
    pub smds_signature2: Vec<u8>,
}

/// The JSON names of a v3 answer. Inferred, not read in SGP.22 (`sgp22-v3-es15-notes.md` 1.1:
/// every ASN.1 field becomes a base64 key of the same name, as in v2): this is the one place
/// they are written.
const SMDS_SIGNED2: &str = "smdsSigned2";
const SMDS_SIGNATURE2: &str = "smdsSignature2";
/// InitiateAuthentication's v3 `otherCertsInChain`, an array of base64 DER (notes 5: "probably").
const OTHER_CERTS_IN_CHAIN: &str = "otherCertsInChain";

/// ES11.AuthenticateClient's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticateClientResponse {
    pub transaction_id: TransactionId,
    /// In registration order; empty when nothing is pending. In a v3 answer, the list inside
    /// `signed` (which a client trusts only once its eUICC has verified it).
    pub event_entries: Vec<EventEntry>,
    /// Set for a device whose eUICC and LPA both support signedSmdsResponseV3.
    pub signed: Option<SignedEventList>,
}

impl AuthenticateClientResponse {
    pub fn to_fields(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("transactionId".into(), self.transaction_id.to_hex().into());
        match &self.signed {
            Some(s) => {
                m.insert(SMDS_SIGNED2.into(), b64_encode(&s.smds_signed2).into());
                m.insert(
                    SMDS_SIGNATURE2.into(),
                    b64_encode(&s.smds_signature2).into(),
                );
            }
            None => {
                m.insert(
                    "eventEntries".into(),
                    Value::Array(self.event_entries.iter().map(EventEntry::to_json).collect()),
                );
            }
        }
        m
    }

    /// Reads a successful answer (v2 `eventEntries`, or a v3 signed list, whose entries are
    /// read from `SmdsSigned2` but not yet verified).
    pub fn from_result(r: &FunctionResult) -> Result<Self, ResponseError> {
        let transaction_id = r.body["transactionId"]
            .as_str()
            .and_then(TransactionId::from_hex)
            .ok_or_else(|| error(AUTHENTICATE, "no valid transactionId"))?;
        if let Some(signed) = r.body[SMDS_SIGNED2].as_str() {
            let b64 = |v: Option<&str>, what: &str| {
                v.and_then(b64_decode)
                    .ok_or_else(|| error(AUTHENTICATE, format!("{what} is not valid base64")))
            };
            let signed = SignedEventList {
                smds_signed2: b64(Some(signed), SMDS_SIGNED2)?,
                smds_signature2: b64(r.body[SMDS_SIGNATURE2].as_str(), SMDS_SIGNATURE2)?,
            };
            let view = crate::asn1::parse_smds_signed2(&signed.smds_signed2)
                .map_err(|e| error(AUTHENTICATE, e.to_string()))?;
            return Ok(AuthenticateClientResponse {
                transaction_id,
                event_entries: view.events.into_iter().map(EventEntry::from).collect(),
                signed: Some(signed),
            });
        }
        let entries = r.body["eventEntries"]
            .as_array()
            .ok_or_else(|| error(AUTHENTICATE, "no eventEntries array"))?
            .iter()
            .map(|e| {
                let s = |k: &str| {
                    e[k].as_str().map(str::to_string).ok_or_else(|| {
                        error(AUTHENTICATE, format!("eventEntries item without {k}"))
                    })
                };
                Ok(EventEntry {
                    event_id: s("eventId")?,
                    rsp_server_address: s("rspServerAddress")?,
                    details: EventDetailsV3::default(),
                })
            })
            .collect::<Result<Vec<_>, ResponseError>>()?;
        Ok(AuthenticateClientResponse {
            transaction_id,
            event_entries: entries,
            signed: None,
        })
    }
}
