//! The ASN.1 binding of ES11 (SGP.22 6.6; `../shared/spec/sgp22-v3-es15-notes.md` section 3):
//! `POST /gsma/rsp2/asn1` with `Content-Type: application/x-gsma-rsp-asn1`, the body a DER
//! `RemoteProfileProvisioningRequest` (`A2` around BF39 InitiateAuthenticationRequest or BF3B
//! AuthenticateClientRequest), the answer a `RemoteProfileProvisioningResponse` (`A2` around BF39
//! InitiateAuthenticationResponse or BF40 AuthenticateClientResponseEs11). The structures are
//! rsp.asn's (exact); what the requests carry becomes the same typed requests the JSON binding
//! builds, so both bindings call the same handlers. A function's failure is the INTEGER
//! alternative of its response, mapped here from the status code the JSON binding would send.
//!
//! Tags, as rsp.asn's AUTOMATIC TAGS give them: the [2] CHOICE wrapper is explicit (`A2`); the
//! response CHOICEs' alternatives are [0] (the Ok SEQUENCE, `A0`) and [1] (the INTEGER, `81`);
//! `AuthenticateClientOkEs11` is `{80 transactionId, A1 eventEntries}` and each `EventEntries`
//! `30 {80 eventId, 81 rspServerAddress}` (the notes' correction of the older notes).

use super::codes::{self, StatusCode};
use super::requests::{
    AuthenticateClientRequest, CheckEventRequest, InitiateAuthenticationRequest,
};
use super::responses::{AuthenticateClientResponse, InitiateAuthenticationResponse};
use crate::asn1::{self, TransactionId};
use pki_tool::tlv;

/// The binding's media type.
pub const CONTENT_TYPE: &str = "application/x-gsma-rsp-asn1";

/// `RemoteProfileProvisioningRequest`/`Response`: the explicit [2] wrapper.
const WRAPPER: u32 = 0xA2;
const INITIATE_AUTHENTICATION: u32 = 0xBF39;
const AUTHENTICATE_CLIENT_REQUEST: u32 = 0xBF3B;
const AUTHENTICATE_CLIENT_RESPONSE_ES11: u32 = 0xBF40;
/// SGP.22 v3 `CheckEventRequest`/`Response` [70] (notes 1.4, 3.2).
const CHECK_EVENT: u32 = 0xBF46;

/// An ES11 call read from the binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asn1Call {
    InitiateAuthentication(InitiateAuthenticationRequest),
    AuthenticateClient(AuthenticateClientRequest),
    CheckEvent(CheckEventRequest),
}

/// Why a body is no ES11 call of this binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("not a DER RemoteProfileProvisioningRequest: {0}")]
    Der(String),
    /// A function of the CHOICE an SM-DS does not serve (ES9+'s), by its tag.
    #[error(
        "RemoteProfileProvisioningRequest alternative {0:X} is an SM-DP+ function (ES9+); an SM-DS serves InitiateAuthentication (BF39) and AuthenticateClient (BF3B)"
    )]
    NotServed(u32),
    #[error("{0}")]
    Invalid(String),
}

fn der(e: impl std::fmt::Display) -> BindingError {
    BindingError::Der(e.to_string())
}

/// Skips what follows the components this server reads: rsp.asn's EXTENSIBILITY IMPLIED lets a
/// newer sender add components (a v3 LPA's `lpaRspCapability [5]` after `euiccInfo1`), each a
/// well-formed TLV.
fn skip_extensions(r: &mut tlv::Reader<'_>) -> Result<(), BindingError> {
    while !r.is_empty() {
        r.read().map_err(der)?;
    }
    Ok(())
}

/// Reads a `RemoteProfileProvisioningRequest`.
pub fn parse_request(body: &[u8]) -> Result<Asn1Call, BindingError> {
    let top = tlv::parse_single(body, "RemoteProfileProvisioningRequest").map_err(der)?;
    if top.tag != WRAPPER {
        return Err(BindingError::Der(format!(
            "RemoteProfileProvisioningRequest must be tagged A2, not {:X}",
            top.tag
        )));
    }
    let mut r = top.reader();
    let call = r.read().map_err(der)?;
    r.finish("RemoteProfileProvisioningRequest").map_err(der)?;
    match call.tag {
        INITIATE_AUTHENTICATION => {
            let mut f = call.reader();
            let challenge = f.expect(0x81, "euiccChallenge").map_err(der)?;
            let address = f.expect(0x83, "smdpAddress").map_err(der)?;
            let info1 = f.expect(0xBF20, "euiccInfo1").map_err(der)?;
            skip_extensions(&mut f)?;
            let euicc_challenge = <[u8; 16]>::try_from(challenge.value)
                .map_err(|_| BindingError::Invalid("euiccChallenge must be 16 bytes".into()))?;
            let smds_address = std::str::from_utf8(address.value)
                .map_err(|_| BindingError::Invalid("smdpAddress is not UTF-8".into()))?;
            let euicc_info1 = asn1::parse_euicc_info1(info1.raw)
                .map_err(|e| BindingError::Invalid(e.to_string()))?;
            Ok(Asn1Call::InitiateAuthentication(
                InitiateAuthenticationRequest {
                    euicc_challenge,
                    euicc_info1,
                    smds_address: smds_address.to_string(),
                },
            ))
        }
        AUTHENTICATE_CLIENT_REQUEST => {
            let mut f = call.reader();
            let tid = f.expect(0x80, "transactionId").map_err(der)?;
            let response = f
                .expect(0xBF38, "authenticateServerResponse")
                .map_err(der)?;
            skip_extensions(&mut f)?;
            let transaction_id = transaction_id(tid.value)?;
            Ok(Asn1Call::AuthenticateClient(AuthenticateClientRequest {
                transaction_id,
                authenticate_server_response: response.raw.to_vec(),
            }))
        }
        CHECK_EVENT => {
            let mut f = call.reader();
            let ec_id = f.expect(0x80, "ecId").map_err(der)?;
            let address = f.expect(0x81, "smdsAddress").map_err(der)?;
            skip_extensions(&mut f)?;
            if !(1..=64).contains(&ec_id.value.len()) {
                return Err(BindingError::Invalid("ecId must be 1 to 64 bytes".into()));
            }
            let smds_address = std::str::from_utf8(address.value)
                .map_err(|_| BindingError::Invalid("smdsAddress is not UTF-8".into()))?;
            Ok(Asn1Call::CheckEvent(CheckEventRequest {
                ec_id: ec_id.value.to_vec(),
                smds_address: smds_address.to_string(),
            }))
        }
        other => Err(BindingError::NotServed(other)),
    }
}

fn transaction_id(value: &[u8]) -> Result<TransactionId, BindingError> {
    TransactionId::new(value)
        .ok_or_else(|| BindingError::Invalid("transactionId must be 1 to 16 bytes".into()))
}

/// A small INTEGER alternative [1] (`81 01 nn`).
fn error_alternative(value: u8) -> Vec<u8> {
    tlv::tlv(0x81, &[value])
}

fn respond(function_tag: u32, alternative: &[u8]) -> Vec<u8> {
    tlv::tlv(WRAPPER, &tlv::tlv(function_tag, alternative))
}

/// `InitiateAuthenticationResponse` with `initiateAuthenticationOk` (InitiateAuthenticationOkEs9),
/// with v3's `otherCertsInChain [1]` when CERT.DSauth is under SubCAs.
pub fn initiate_authentication_ok(r: &InitiateAuthenticationResponse) -> Vec<u8> {
    let others: Vec<&[u8]> = r.other_certs_in_chain.iter().map(Vec::as_slice).collect();
    let other_certs = (!others.is_empty()).then(|| tlv::constructed(0xA1, &others));
    let tid = tlv::tlv(0x80, r.transaction_id.as_bytes());
    let ci = tlv::octet_string(&r.euicc_ci_pkid_to_be_used);
    let mut fields: Vec<&[u8]> = vec![
        &tid,
        &r.server_signed1,
        &r.server_signature1,
        &ci,
        &r.server_certificate,
    ];
    fields.extend(other_certs.as_deref());
    let ok = tlv::constructed(0xA0, &fields);
    respond(INITIATE_AUTHENTICATION, &ok)
}

/// `InitiateAuthenticationResponse` with `initiateAuthenticationError`, for the failures the
/// INTEGER names; `None` for the others (a malformed request, a failure of the server's own),
/// which the binding answers at the HTTP level.
pub fn initiate_authentication_error(code: StatusCode) -> Option<Vec<u8>> {
    let value = if code == codes::SMDS_ADDRESS_REFUSED {
        1 // invalidDpAddress
    } else if code == codes::SVN_NOT_SUPPORTED {
        2 // euiccVersionNotSupportedByDp
    } else if code == codes::CI_NOT_SUPPORTED || code == codes::NO_DSAUTH_FOR_CI {
        3 // ciPKNotSupported
    } else {
        return None;
    };
    Some(respond(INITIATE_AUTHENTICATION, &error_alternative(value)))
}

/// `AuthenticateClientResponseEs11` with `authenticateClientOk`, or for a v3 device with
/// `authenticateClientOkV3` [2] `{transactionId [0], smdsSigned2, smdsSignature2}` (notes 1.3).
pub fn authenticate_client_ok(r: &AuthenticateClientResponse) -> Vec<u8> {
    if let Some(s) = &r.signed {
        let v3 = tlv::constructed(
            0xA2,
            &[
                &tlv::tlv(0x80, r.transaction_id.as_bytes()),
                &s.smds_signed2,
                &s.smds_signature2,
            ],
        );
        return respond(AUTHENTICATE_CLIENT_RESPONSE_ES11, &v3);
    }
    let entries: Vec<Vec<u8>> = r
        .event_entries
        .iter()
        .map(|e| {
            tlv::sequence(&[
                &tlv::tlv(0x80, e.event_id.as_bytes()),
                &tlv::tlv(0x81, e.rsp_server_address.as_bytes()),
            ])
        })
        .collect();
    let entries: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
    let ok = tlv::constructed(
        0xA0,
        &[
            &tlv::tlv(0x80, r.transaction_id.as_bytes()),
            &tlv::constructed(0xA1, &entries),
        ],
    );
    respond(AUTHENTICATE_CLIENT_RESPONSE_ES11, &ok)
}

/// `AuthenticateClientResponseEs11` with `authenticateClientError`: the INTEGER for the status
/// code the JSON binding would send, `undefinedError(127)` where rsp.asn names none.
pub fn authenticate_client_error(code: StatusCode) -> Vec<u8> {
    let value = match code {
        c if c == codes::EUM_CERT_INVALID => 1, // eumCertificateInvalid
        c if c == codes::EUM_CERT_EXPIRED => 2, // eumCertificateExpired
        c if c == codes::EUICC_CERT_INVALID => 3, // euiccCertificateInvalid
        c if c == codes::EUICC_CERT_EXPIRED => 4, // euiccCertificateExpired
        c if c == codes::EUICC_VERIFICATION_FAILED => 5, // euiccSignatureInvalid
        c if c == codes::EVENT_UNKNOWN => 6,    // eventIdUnknown
        c if c == codes::TRANSACTION_UNKNOWN => 7, // invalidTransactionId
        _ => 127,                               // undefinedError
    };
    respond(AUTHENTICATE_CLIENT_RESPONSE_ES11, &error_alternative(value))
}

/// The response's function alternative inside the `A2` wrapper, which must be `function_tag`,
/// and the one alternative inside that.
fn unwrap_response<'a>(body: &'a [u8], function_tag: u32) -> Result<tlv::Tlv<'a>, BindingError> {
    let top = tlv::parse_single(body, "RemoteProfileProvisioningResponse").map_err(der)?;
    if top.tag != WRAPPER {
        return Err(BindingError::Der(format!(
            "RemoteProfileProvisioningResponse must be tagged A2, not {:X}",
            top.tag
        )));
    }
    let mut r = top.reader();
    let function = r.expect(function_tag, "the response").map_err(der)?;
    r.finish("RemoteProfileProvisioningResponse").map_err(der)?;
    let mut f = function.reader();
    let alternative = f.read().map_err(der)?;
    f.finish("the response").map_err(der)?;
    Ok(alternative)
}

/// The INTEGER error alternative [1].
fn error_value(t: &tlv::Tlv<'_>) -> Result<i64, BindingError> {
    asn1::integer_value(t.value)
        .ok_or_else(|| BindingError::Invalid("the error INTEGER has a bad length".into()))
}

/// Reads an InitiateAuthenticationResponse (the lab LPA): the Ok alternative, or the error
/// INTEGER.
pub fn parse_initiate_authentication_response(
    body: &[u8],
) -> Result<Result<InitiateAuthenticationResponse, i64>, BindingError> {
    let alternative = unwrap_response(body, INITIATE_AUTHENTICATION)?;
    match alternative.tag {
        0x81 => Ok(Err(error_value(&alternative)?)),
        0xA0 => {
            let mut f = alternative.reader();
            let tid = f.expect(0x80, "transactionId").map_err(der)?;
            let signed = f.expect(0x30, "serverSigned1").map_err(der)?;
            let signature = f.expect(0x5F37, "serverSignature1").map_err(der)?;
            let ci = f.expect(0x04, "euiccCiPKIdToBeUsed").map_err(der)?;
            let cert = f.expect(0x30, "serverCertificate").map_err(der)?;
            let mut other_certs_in_chain = Vec::new();
            if !f.is_empty() {
                let others = f.expect(0xA1, "otherCertsInChain").map_err(der)?;
                let mut o = others.reader();
                while !o.is_empty() {
                    let c = o.expect(0x30, "otherCertsInChain").map_err(der)?;
                    other_certs_in_chain.push(c.raw.to_vec());
                }
            }
            f.finish("InitiateAuthenticationOkEs9").map_err(der)?;
            Ok(Ok(InitiateAuthenticationResponse {
                transaction_id: transaction_id(tid.value)?,
                server_signed1: signed.raw.to_vec(),
                server_signature1: signature.raw.to_vec(),
                euicc_ci_pkid_to_be_used: ci.value.to_vec(),
                server_certificate: cert.raw.to_vec(),
                other_certs_in_chain,
            }))
        }
        other => Err(BindingError::Der(format!(
            "InitiateAuthenticationResponse alternative {other:X} is neither A0 nor 81"
        ))),
    }
}

/// Reads an AuthenticateClientResponseEs11 (the lab LPA): the Ok alternative, or the error
/// INTEGER.
pub fn parse_authenticate_client_response(
    body: &[u8],
) -> Result<Result<AuthenticateClientResponse, i64>, BindingError> {
    let alternative = unwrap_response(body, AUTHENTICATE_CLIENT_RESPONSE_ES11)?;
    match alternative.tag {
        0x81 => Ok(Err(error_value(&alternative)?)),
        0xA0 => {
            let mut f = alternative.reader();
            let tid = f.expect(0x80, "transactionId").map_err(der)?;
            let list = f.expect(0xA1, "eventEntries").map_err(der)?;
            f.finish("AuthenticateClientOkEs11").map_err(der)?;
            let text = |t: &tlv::Tlv<'_>| {
                std::str::from_utf8(t.value)
                    .map(str::to_string)
                    .map_err(|_| {
                        BindingError::Invalid("an EventEntries string is not UTF-8".into())
                    })
            };
            let mut entries = Vec::new();
            let mut r = list.reader();
            while !r.is_empty() {
                let e = r.expect(0x30, "EventEntries").map_err(der)?;
                let mut g = e.reader();
                let id = g.expect(0x80, "eventId").map_err(der)?;
                let address = g.expect(0x81, "rspServerAddress").map_err(der)?;
                g.finish("EventEntries").map_err(der)?;
                entries.push(super::responses::EventEntry {
                    event_id: text(&id)?,
                    rsp_server_address: text(&address)?,
                    details: Default::default(),
                });
            }
            Ok(Ok(AuthenticateClientResponse {
                transaction_id: transaction_id(tid.value)?,
                event_entries: entries,
                signed: None,
            }))
        }
        0xA2 => {
            let mut f = alternative.reader();
            let tid = f.expect(0x80, "transactionId").map_err(der)?;
            let signed = f.expect(0x30, "smdsSigned2").map_err(der)?;
            let signature = f.expect(0x5F37, "smdsSignature2").map_err(der)?;
            f.finish("AuthenticateClientOkEs11V3").map_err(der)?;
            let view = asn1::parse_smds_signed2(signed.raw)
                .map_err(|e| BindingError::Invalid(e.to_string()))?;
            Ok(Ok(AuthenticateClientResponse {
                transaction_id: transaction_id(tid.value)?,
                event_entries: view
                    .events
                    .into_iter()
                    .map(super::responses::EventEntry::from)
                    .collect(),
                signed: Some(super::responses::SignedEventList {
                    smds_signed2: signed.raw.to_vec(),
                    smds_signature2: signature.raw.to_vec(),
                }),
            }))
        }
        other => Err(BindingError::Der(format!(
            "AuthenticateClientResponseEs11 alternative {other:X} is none of A0, 81, A2"
        ))),
    }
}

/// `CheckEventResponse` with `checkEventOk` [0] `{isPendingEvent [0] BOOLEAN}`.
pub fn check_event_ok(is_pending_event: bool) -> Vec<u8> {
    let ok = tlv::constructed(
        0xA0,
        &[&tlv::tlv(0x80, &[if is_pending_event { 0xFF } else { 0 }])],
    );
    respond(CHECK_EVENT, &ok)
}

/// `CheckEventResponse` with `checkEventError` [1]: its named values are unknown (notes 1.3,
/// 7), so every failure is 127, the value rsp.asn gives `undefinedError` elsewhere.
pub fn check_event_error() -> Vec<u8> {
    respond(CHECK_EVENT, &error_alternative(127))
}

/// rsp.asn's name for an `initiateAuthenticationError` value.
pub fn initiate_authentication_error_name(value: i64) -> &'static str {
    match value {
        1 => "invalidDpAddress",
        2 => "euiccVersionNotSupportedByDp",
        3 => "ciPKNotSupported",
        _ => "unknown value",
    }
}

/// rsp.asn's name for an ES11 `authenticateClientError` value.
pub fn authenticate_client_error_name(value: i64) -> &'static str {
    match value {
        1 => "eumCertificateInvalid",
        2 => "eumCertificateExpired",
        3 => "euiccCertificateInvalid",
        4 => "euiccCertificateExpired",
        5 => "euiccSignatureInvalid",
        6 => "eventIdUnknown",
        7 => "invalidTransactionId",
        127 => "undefinedError",
        _ => "unknown value",
    }
}

/// The request bodies, for the lab LPA.
pub fn initiate_authentication_request(
    challenge: &[u8; 16],
    address: &str,
    euicc_info1: &[u8],
) -> Vec<u8> {
    let call = tlv::constructed(
        INITIATE_AUTHENTICATION,
        &[
            &tlv::tlv(0x81, challenge),
            &tlv::tlv(0x83, address.as_bytes()),
            euicc_info1,
        ],
    );
    tlv::tlv(WRAPPER, &call)
}

/// See [`initiate_authentication_request`].
pub fn authenticate_client_request(
    tid: &TransactionId,
    authenticate_server_response: &[u8],
) -> Vec<u8> {
    let call = tlv::constructed(
        AUTHENTICATE_CLIENT_REQUEST,
        &[
            &tlv::tlv(0x80, tid.as_bytes()),
            authenticate_server_response,
        ],
    );
    tlv::tlv(WRAPPER, &call)
}
