//! ES11 (LPA to SM-DS): InitiateAuthentication and AuthenticateClient, the SGP.22 common mutual
//! authentication followed by event retrieval for the authenticated eUICC's EID only.
//!
//! Input is the parsed JSON body; output is the SGP.22 response body. The EID always comes from
//! the validated eUICC certificate, never from the request.

use crate::asn1::{self, AuthenticateServerResponseView, ServerSigned1, TransactionId};
use crate::auth::{Session, Sessions};
use crate::envelope::{StatusCode, codes};
use crate::es12::Answer;
use crate::pki::Credential;
use crate::store::Store;
use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use pki_tool::Certificate;
use pki_tool::validate::{ChainError, ChainErrorKind, Options, verify_chain};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Status codes of ES11 (SGP.22 section 5.8 tables, as collected in es11-es12-notes.md).
pub mod es11_codes {
    use crate::envelope::StatusCode;
    const fn code(subject: &'static str, reason: &'static str) -> StatusCode {
        StatusCode { subject, reason }
    }
    /// 8.1 eUICC / 2.1 Invalid: euiccChallenge, euiccInfo1 or the eUICC's response is malformed.
    pub const EUICC_DATA_INVALID: StatusCode = code("8.1", "2.1");
    /// 8.1 / 6.1: eUICC signature invalid, or challenge mismatch.
    pub const EUICC_VERIFICATION_FAILED: StatusCode = code("8.1", "6.1");
    pub const EUM_CERT_INVALID: StatusCode = code("8.1.2", "6.1");
    pub const EUM_CERT_EXPIRED: StatusCode = code("8.1.2", "6.3");
    pub const EUICC_CERT_INVALID: StatusCode = code("8.1.3", "6.1");
    pub const EUICC_CERT_EXPIRED: StatusCode = code("8.1.3", "6.3");
    pub const SMDS_ADDRESS_REFUSED: StatusCode = code("8.9.1", "3.8");
    pub const CI_NOT_SUPPORTED: StatusCode = code("8.9.2", "3.1");
    pub const SVN_NOT_SUPPORTED: StatusCode = code("8.9.3", "3.1");
    pub const NO_DSAUTH_FOR_CI: StatusCode = code("8.9.4", "3.7");
    pub const TRANSACTION_UNKNOWN: StatusCode = code("8.10.1", "3.9");
    pub const CI_PUBLIC_KEY_UNKNOWN: StatusCode = code("8.11.1", "3.9");
    /// Too many authentications in progress.
    pub const BUSY: StatusCode = code("1.2", "4.2");
}

use es11_codes as c;

/// Base64 as clients send it: standard alphabet, padding optional, whitespace ignored.
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    engine.decode(compact.as_bytes()).ok()
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// An address as compared: lower case, no trailing dot, no `:port`.
pub fn normalize_address(s: &str) -> String {
    let host = match s.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => s,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// What ES11 needs besides the store.
pub struct Es11 {
    /// This SM-DS's address (as configured), for serverSigned1 and the address checks.
    pub hostname: String,
    /// Trusted CIs.
    pub cis: Vec<Certificate>,
    /// CERT.DSauth per CI (same index as `cis`), where configured.
    pub ds_auth: Vec<Option<Credential>>,
    pub sessions: Sessions,
    /// EUM certificates already validated: SHA-256 of the DER -> (CI index, notAfter).
    eum_cache: Mutex<HashMap<[u8; 32], (usize, i64)>>,
}

const EUM_CACHE_MAX: usize = 4096;

impl Es11 {
    pub fn new(
        hostname: String,
        cis: Vec<Certificate>,
        ds_auth: &[Credential],
        sessions: Sessions,
    ) -> Self {
        let by_ci = cis
            .iter()
            .map(|ci| {
                ds_auth
                    .iter()
                    .find(|d| d.cert.aki().as_deref() == Some(ci.key_id().as_slice()))
                    .cloned()
            })
            .collect();
        Es11 {
            hostname,
            cis,
            ds_auth: by_ci,
            sessions,
            eum_cache: Mutex::new(HashMap::new()),
        }
    }
}

fn field<'a>(body: &'a Map<String, Value>, name: &str) -> Result<&'a str, Answer> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Answer::failed(
            codes::REQUEST_INVALID,
            &format!("{name} must be a string"),
        )),
        None => Err(Answer::failed(
            StatusCode {
                subject: "1.1",
                reason: "2.2",
            },
            &format!("{name} is missing"),
        )),
    }
}

/// ES11.InitiateAuthentication.
pub fn initiate_authentication(es11: &Es11, body: &Map<String, Value>) -> Answer {
    match initiate(es11, body) {
        Ok(a) | Err(a) => a,
    }
}

fn initiate(es11: &Es11, body: &Map<String, Value>) -> Result<Answer, Answer> {
    let challenge = b64_decode(field(body, "euiccChallenge")?)
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| {
            Answer::failed(
                c::EUICC_DATA_INVALID,
                "euiccChallenge must be base64 of 16 bytes",
            )
        })?;
    let info1_der = b64_decode(field(body, "euiccInfo1")?)
        .ok_or_else(|| Answer::failed(c::EUICC_DATA_INVALID, "euiccInfo1 is not valid base64"))?;
    let info1 = asn1::parse_euicc_info1(&info1_der)
        .map_err(|e| Answer::failed(c::EUICC_DATA_INVALID, &format!("euiccInfo1: {e}")))?;
    // Eastcompeace sends smdsAddress, everyone else smdpAddress; prefer the former.
    let address = match (body.get("smdsAddress"), body.get("smdpAddress")) {
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => s.as_str(),
        (Some(_), _) | (None, Some(_)) => {
            return Err(Answer::failed(
                codes::REQUEST_INVALID,
                "the address must be a string",
            ));
        }
        (None, None) => {
            return Err(Answer::failed(
                StatusCode {
                    subject: "1.1",
                    reason: "2.2",
                },
                "smdpAddress (or smdsAddress) is missing",
            ));
        }
    };
    if normalize_address(address) != normalize_address(&es11.hostname) {
        return Err(Answer::failed(
            c::SMDS_ADDRESS_REFUSED,
            "this is not the SM-DS at that address",
        ));
    }
    if !(2..=3).contains(&info1.svn[0]) {
        return Err(Answer::failed(
            c::SVN_NOT_SUPPORTED,
            &format!(
                "SGP.22 version {}.{}.{} is not supported",
                info1.svn[0], info1.svn[1], info1.svn[2]
            ),
        ));
    }
    // A CI the eUICC can verify our CERT.DSauth with...
    let verifiable: Vec<usize> = info1
        .ci_pkids_for_verification
        .iter()
        .filter_map(|id| es11.cis.iter().position(|ci| ci.key_id() == *id))
        .filter(|i| es11.ds_auth[*i].is_some())
        .collect();
    if verifiable.is_empty() {
        return Err(Answer::failed(
            c::NO_DSAUTH_FOR_CI,
            "no CERT.DSauth under a CI the eUICC can verify",
        ));
    }
    // ... that also signed the eUICC's own chain.
    let signing: Vec<usize> = info1
        .ci_pkids_for_signing
        .iter()
        .filter_map(|id| es11.cis.iter().position(|ci| ci.key_id() == *id))
        .collect();
    let Some(&ci) = verifiable.iter().find(|i| signing.contains(i)) else {
        return Err(Answer::failed(
            c::CI_NOT_SUPPORTED,
            "none of the eUICC's CI key identifiers is usable by this SM-DS",
        ));
    };
    let Some(ds_auth) = es11.ds_auth[ci].as_ref() else {
        return Err(Answer::failed(
            c::NO_DSAUTH_FOR_CI,
            "no CERT.DSauth for the chosen CI",
        ));
    };

    let transaction_id =
        TransactionId::random().map_err(|e| Answer::failed(codes::EXECUTION_ERROR, &e))?;
    let mut server_challenge = [0u8; 16];
    getrandom::fill(&mut server_challenge)
        .map_err(|e| Answer::failed(codes::EXECUTION_ERROR, &e.to_string()))?;
    let signed = ServerSigned1 {
        transaction_id: transaction_id.as_bytes().to_vec().into(),
        euicc_challenge: challenge.to_vec().into(),
        server_address: es11.hostname.clone(),
        server_challenge: server_challenge.to_vec().into(),
    };
    let signed_der = asn1::der(&signed).map_err(|e| Answer::failed(codes::EXECUTION_ERROR, &e))?;
    let signature = asn1::signature_tlv(&ds_auth.key.sign_raw(&signed_der));
    es11.sessions
        .insert(Session {
            transaction_id,
            server_challenge,
            euicc_challenge: challenge,
            ci,
            created: Instant::now(),
        })
        .map_err(|e| Answer::failed(c::BUSY, &e.to_string()))?;
    let mut fields = Map::new();
    fields.insert(
        "transactionId".into(),
        Value::String(transaction_id.to_hex()),
    );
    fields.insert("serverSigned1".into(), b64(&signed_der));
    fields.insert("serverSignature1".into(), b64(&signature));
    fields.insert(
        "euiccCiPKIdToBeUsed".into(),
        b64(&pki_tool::tlv::octet_string(&es11.cis[ci].key_id())),
    );
    fields.insert("serverCertificate".into(), b64(ds_auth.cert.der()));
    Ok(Answer::success(fields))
}

fn chain_failure(e: &ChainError) -> Answer {
    let expired = matches!(
        e.kind,
        ChainErrorKind::Expired { .. } | ChainErrorKind::NotYetValid { .. }
    );
    let code = match (e.depth, expired) {
        (0, true) => c::EUICC_CERT_EXPIRED,
        (0, false) => c::EUICC_CERT_INVALID,
        (1, true) => c::EUM_CERT_EXPIRED,
        (1, false) => c::EUM_CERT_INVALID,
        _ => c::CI_PUBLIC_KEY_UNKNOWN,
    };
    Answer::failed(code, &e.to_string())
}

/// Validates the eUICC chain under the session's CI, using a cached EUM validation when there is one.
fn validate_euicc(
    es11: &Es11,
    ci: usize,
    euicc: &Certificate,
    eum: &Certificate,
    eum_der: &[u8],
    now: i64,
) -> Result<pki_tool::Eid, Answer> {
    use sha2::Digest;
    let key: [u8; 32] = sha2::Sha256::digest(eum_der).into();
    let cached = es11
        .eum_cache
        .lock()
        .ok()
        .and_then(|m| m.get(&key).copied())
        .is_some_and(|(cached_ci, not_after)| {
            cached_ci == ci && now <= not_after && now >= eum.not_before
        });
    let verified = if cached {
        // The EUM was validated under this CI before: it is the anchor for the eUICC certificate.
        verify_chain(
            euicc,
            &[],
            std::slice::from_ref(eum),
            Some(pki_tool::Role::Euicc),
            Options::at(now),
        )
    } else {
        let v = verify_chain(
            euicc,
            std::slice::from_ref(eum),
            std::slice::from_ref(&es11.cis[ci]),
            Some(pki_tool::Role::Euicc),
            Options::at(now),
        );
        if v.is_ok()
            && let Ok(mut m) = es11.eum_cache.lock()
        {
            if m.len() >= EUM_CACHE_MAX {
                m.clear();
            }
            m.insert(key, (ci, eum.not_after));
        }
        v
    };
    let v = verified.map_err(|e| chain_failure(&e))?;
    v.eid.ok_or_else(|| {
        Answer::failed(
            c::EUICC_CERT_INVALID,
            "the eUICC certificate carries no EID",
        )
    })
}

/// ES11.AuthenticateClient: authenticates the eUICC and returns its events.
pub fn authenticate_client(
    es11: &Es11,
    store: &Store,
    body: &Map<String, Value>,
    now: i64,
) -> Answer {
    match authenticate(es11, store, body, now) {
        Ok(a) | Err(a) => a,
    }
}

fn authenticate(
    es11: &Es11,
    store: &Store,
    body: &Map<String, Value>,
    now: i64,
) -> Result<Answer, Answer> {
    let unknown = || {
        Answer::failed(
            c::TRANSACTION_UNKNOWN,
            "unknown, expired or already used transactionId",
        )
    };
    let tid = TransactionId::from_hex(field(body, "transactionId")?).ok_or_else(unknown)?;
    let response_b64 = field(body, "authenticateServerResponse")?;
    // The session is used up by this call whatever its outcome.
    let session = es11.sessions.take(&tid).ok_or_else(unknown)?;
    let der = b64_decode(response_b64).ok_or_else(|| {
        Answer::failed(
            c::EUICC_DATA_INVALID,
            "authenticateServerResponse is not valid base64",
        )
    })?;
    let parsed = asn1::parse_authenticate_server_response(&der).map_err(|e| {
        Answer::failed(
            c::EUICC_DATA_INVALID,
            &format!("authenticateServerResponse: {e}"),
        )
    })?;
    let (signed, signature, euicc_der, eum_der) = match parsed {
        AuthenticateServerResponseView::Ok {
            euicc_signed1,
            euicc_signature1,
            euicc_certificate,
            eum_certificate,
        } => (
            euicc_signed1,
            euicc_signature1,
            euicc_certificate,
            eum_certificate,
        ),
        AuthenticateServerResponseView::Error {
            authenticate_error_code,
            ..
        } => {
            return Err(Answer::failed(
                c::EUICC_VERIFICATION_FAILED,
                &format!(
                    "the eUICC refused to authenticate the SM-DS: {} ({authenticate_error_code})",
                    asn1::authenticate_error_name(authenticate_error_code)
                ),
            ));
        }
    };
    let eum = Certificate::from_der(eum_der)
        .map_err(|e| Answer::failed(c::EUM_CERT_INVALID, &format!("EUM certificate: {e}")))?;
    if eum.aki().as_deref() != Some(es11.cis[session.ci].key_id().as_slice()) {
        return Err(Answer::failed(
            c::CI_PUBLIC_KEY_UNKNOWN,
            "the EUM certificate was not issued by the CI chosen for this session",
        ));
    }
    let euicc = Certificate::from_der(euicc_der)
        .map_err(|e| Answer::failed(c::EUICC_CERT_INVALID, &format!("eUICC certificate: {e}")))?;
    let eid = validate_euicc(es11, session.ci, &euicc, &eum, eum_der, now)?;
    if signature.len() != 64 || !euicc.public_key.verify_raw(signed.raw, signature) {
        return Err(Answer::failed(
            c::EUICC_VERIFICATION_FAILED,
            "euiccSignature1 does not verify over euiccSigned1",
        ));
    }
    if signed.transaction_id != session.transaction_id.as_bytes() {
        return Err(Answer::failed(
            c::TRANSACTION_UNKNOWN,
            "euiccSigned1 names another transactionId",
        ));
    }
    if signed.server_challenge != session.server_challenge {
        return Err(Answer::failed(
            c::EUICC_VERIFICATION_FAILED,
            "serverChallenge does not match",
        ));
    }
    if normalize_address(signed.server_address) != normalize_address(&es11.hostname) {
        return Err(Answer::failed(
            c::SMDS_ADDRESS_REFUSED,
            "euiccSigned1 names another server address",
        ));
    }
    let events = store.events_for(&eid).map_err(|e| {
        Answer::failed(
            codes::EXECUTION_ERROR,
            &format!("events could not be read: {e}"),
        )
    })?;
    let selected: Vec<_> = match signed.matching_id.filter(|m| !m.is_empty()) {
        None => events,
        Some(event_id) => {
            let one: Vec<_> = events
                .into_iter()
                .filter(|e| e.event_id == event_id)
                .collect();
            if one.is_empty() {
                return Err(Answer::failed(
                    codes::EVENT_UNKNOWN,
                    "no event identified by this EventID exists for this EID",
                ));
            }
            one
        }
    };
    tracing::info!(%eid, events = selected.len(), "authenticateClient");
    let entries: Vec<Value> = selected
        .iter()
        .map(|e| json!({"eventId": e.event_id, "rspServerAddress": e.rsp_server_address}))
        .collect();
    let mut fields = Map::new();
    fields.insert(
        "transactionId".into(),
        Value::String(session.transaction_id.to_hex()),
    );
    fields.insert("eventEntries".into(), Value::Array(entries));
    Ok(Answer::success(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_like_clients_send_them() {
        assert_eq!(
            normalize_address("SMDS.Example.com.:8443"),
            "smds.example.com"
        );
        assert_eq!(
            normalize_address("smds.example.com:443"),
            "smds.example.com"
        );
        assert_eq!(normalize_address("smds.example.com"), "smds.example.com");
    }

    #[test]
    fn base64_padding_is_optional() {
        assert_eq!(b64_decode("AAE=").as_deref(), Some(&[0u8, 1][..]));
        assert_eq!(b64_decode("AAE").as_deref(), Some(&[0u8, 1][..]));
        assert_eq!(b64_decode("AA\nE=").as_deref(), Some(&[0u8, 1][..]));
        assert!(b64_decode("A-E=").is_none());
    }
}
