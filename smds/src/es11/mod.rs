//! ES11 (LPA to SM-DS): InitiateAuthentication and AuthenticateClient (SGP.22 5.8), the common
//! mutual authentication followed by event retrieval for the authenticated eUICC's EID only.
//!
//! Input is the parsed request; output is the function's result. The EID always comes from the
//! validated eUICC certificate, never from the request. Uses the session table ([`crate::auth`]),
//! the server's credentials ([`crate::pki`]), SGP.22 chain validation (pki-tool) and the event
//! store through its trait. The signature and chain checks are CPU work: they run on the
//! blocking pool, never on the async workers.

mod error;

pub use error::Es11Error;

use crate::asn1::{self, AuthenticateServerResponseView, ServerSigned1, TransactionId};
use crate::auth::{Session, Sessions};
use crate::pki::{CiKeyId, Credential};
use crate::sgp22::normalize_address;
use crate::sgp22::requests::{AuthenticateClientRequest, InitiateAuthenticationRequest};
use crate::sgp22::responses::{
    AuthenticateClientResponse, EventEntry, InitiateAuthenticationResponse,
};
use crate::store::EventStore;
use pki_tool::validate::{Options, verify_chain};
use pki_tool::{Certificate, Eid};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A CI this SM-DS trusts, with the CERT.DSauth it signs with for eUICCs of that CI.
pub struct TrustedCi {
    pub cert: Certificate,
    pub key_id: CiKeyId,
    pub ds_auth: Option<Credential>,
}

/// What ES11 needs besides the store.
pub struct Es11 {
    /// This SM-DS's address (as configured), for serverSigned1 and the address checks.
    pub hostname: String,
    pub cis: Vec<TrustedCi>,
    pub sessions: Sessions,
    /// EUM certificates already validated: SHA-256 of the DER -> (CI, notAfter).
    eum_cache: Mutex<HashMap<[u8; 32], (CiKeyId, i64)>>,
}

const EUM_CACHE_MAX: usize = 4096;

impl Es11 {
    /// `ds_auth` are matched to their CI by authority key identifier.
    pub fn new(
        hostname: String,
        cis: Vec<Certificate>,
        ds_auth: &[Credential],
        sessions: Sessions,
    ) -> Self {
        let cis = cis
            .into_iter()
            .map(|cert| {
                let key_id = CiKeyId::of(&cert);
                let ds_auth = ds_auth
                    .iter()
                    .find(|d| d.cert.aki().as_deref() == Some(key_id.as_bytes()))
                    .cloned();
                TrustedCi {
                    cert,
                    key_id,
                    ds_auth,
                }
            })
            .collect();
        Es11 {
            hostname,
            cis,
            sessions,
            eum_cache: Mutex::new(HashMap::new()),
        }
    }

    fn ci(&self, key_id: &[u8]) -> Option<&TrustedCi> {
        self.cis.iter().find(|c| c.key_id.as_bytes() == key_id)
    }
}

/// ES11.InitiateAuthentication: chooses a CI, signs serverSigned1 with its CERT.DSauth and
/// opens a session.
pub fn initiate_authentication(
    es11: &Es11,
    req: &InitiateAuthenticationRequest,
) -> Result<InitiateAuthenticationResponse, Es11Error> {
    if normalize_address(&req.smds_address) != normalize_address(&es11.hostname) {
        return Err(Es11Error::AddressRefused);
    }
    let info1 = &req.euicc_info1;
    if !(2..=3).contains(&info1.svn[0]) {
        return Err(Es11Error::SvnNotSupported(info1.svn));
    }
    // A CI the eUICC can verify our CERT.DSauth with...
    let verifiable: Vec<&TrustedCi> = info1
        .ci_pkids_for_verification
        .iter()
        .filter_map(|id| es11.ci(id))
        .filter(|ci| ci.ds_auth.is_some())
        .collect();
    if verifiable.is_empty() {
        return Err(Es11Error::NoDsAuthForCi);
    }
    // ... that also signed the eUICC's own chain.
    let Some(ci) = verifiable.into_iter().find(|ci| {
        info1
            .ci_pkids_for_signing
            .iter()
            .any(|id| id == ci.key_id.as_bytes())
    }) else {
        return Err(Es11Error::CiNotSupported);
    };
    let Some(ds_auth) = ci.ds_auth.as_ref() else {
        return Err(Es11Error::NoDsAuthForCi);
    };
    let transaction_id = TransactionId::random().map_err(|e| Es11Error::Internal(e.to_string()))?;
    let mut server_challenge = [0u8; 16];
    getrandom::fill(&mut server_challenge).map_err(|e| Es11Error::Internal(e.to_string()))?;
    let signed = ServerSigned1 {
        transaction_id: transaction_id.as_bytes().to_vec().into(),
        euicc_challenge: req.euicc_challenge.to_vec().into(),
        server_address: es11.hostname.clone(),
        server_challenge: server_challenge.to_vec().into(),
    };
    let signed_der = asn1::der(&signed).map_err(|e| Es11Error::Internal(e.to_string()))?;
    let signature = asn1::signature_tlv(&ds_auth.key.sign_raw(&signed_der));
    es11.sessions.insert(Session {
        transaction_id,
        server_challenge,
        euicc_challenge: req.euicc_challenge,
        ci: ci.key_id.clone(),
        created: Instant::now(),
    })?;
    Ok(InitiateAuthenticationResponse {
        transaction_id,
        server_signed1: signed_der,
        server_signature1: signature,
        euicc_ci_pkid_to_be_used: ci.key_id.as_bytes().to_vec(),
        server_certificate: ds_auth.cert.der().to_vec(),
    })
}

/// Validates the eUICC chain under the session's CI, using a cached EUM validation when there is one.
fn validate_euicc(
    es11: &Es11,
    ci: &TrustedCi,
    euicc: &Certificate,
    eum: &Certificate,
    eum_der: &[u8],
    now: i64,
) -> Result<Eid, Es11Error> {
    use sha2::Digest;
    let key: [u8; 32] = sha2::Sha256::digest(eum_der).into();
    let cached = es11
        .eum_cache
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned())
        .is_some_and(|(cached_ci, not_after)| {
            cached_ci == ci.key_id && now <= not_after && now >= eum.not_before
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
            std::slice::from_ref(&ci.cert),
            Some(pki_tool::Role::Euicc),
            Options::at(now),
        );
        if v.is_ok()
            && let Ok(mut m) = es11.eum_cache.lock()
        {
            if m.len() >= EUM_CACHE_MAX {
                m.clear();
            }
            m.insert(key, (ci.key_id.clone(), eum.not_after));
        }
        v
    };
    verified
        .map_err(Es11Error::Chain)?
        .eid
        .ok_or(Es11Error::NoEid)
}

/// An eUICC that has proven itself in AuthenticateClient.
pub struct AuthenticatedEuicc {
    pub transaction_id: TransactionId,
    pub eid: Eid,
    /// `ctxParamsForCommonAuthentication.matchingId`, when present and not empty.
    pub matching_id: Option<String>,
}

/// The CPU part of AuthenticateClient: ends the session, reads the eUICC's response, validates
/// its certificates and checks its signature over the exact euiccSigned1 bytes received.
pub fn authenticate_euicc(
    es11: &Es11,
    req: &AuthenticateClientRequest,
    now: i64,
) -> Result<AuthenticatedEuicc, Es11Error> {
    // The session is used up by this call whatever its outcome.
    let session = es11
        .sessions
        .take(&req.transaction_id)
        .ok_or(Es11Error::TransactionUnknown)?;
    let parsed = asn1::parse_authenticate_server_response(&req.authenticate_server_response)
        .map_err(Es11Error::EuiccResponse)?;
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
            return Err(Es11Error::EuiccRefused {
                code: authenticate_error_code,
                name: asn1::authenticate_error_name(authenticate_error_code),
            });
        }
    };
    let ci = es11
        .ci(session.ci.as_bytes())
        .ok_or(Es11Error::TransactionUnknown)?;
    let eum =
        Certificate::from_der(eum_der).map_err(|e| Es11Error::EumCertificate(e.to_string()))?;
    if eum.aki().as_deref() != Some(ci.key_id.as_bytes()) {
        return Err(Es11Error::EumNotUnderSessionCi);
    }
    let euicc =
        Certificate::from_der(euicc_der).map_err(|e| Es11Error::EuiccCertificate(e.to_string()))?;
    let eid = validate_euicc(es11, ci, &euicc, &eum, eum_der, now)?;
    if signature.len() != 64 || !euicc.public_key.verify_raw(signed.raw, signature) {
        return Err(Es11Error::EuiccSignature);
    }
    if signed.transaction_id != session.transaction_id.as_bytes() {
        return Err(Es11Error::OtherTransaction);
    }
    if signed.server_challenge != session.server_challenge {
        return Err(Es11Error::ServerChallenge);
    }
    if normalize_address(signed.server_address) != normalize_address(&es11.hostname) {
        return Err(Es11Error::ServerAddress);
    }
    Ok(AuthenticatedEuicc {
        transaction_id: session.transaction_id,
        eid,
        matching_id: signed
            .matching_id
            .filter(|m| !m.is_empty())
            .map(str::to_string),
    })
}

/// ES11.AuthenticateClient: authenticates the eUICC (on the blocking pool) and returns its
/// events, or the one its matchingId names.
pub async fn authenticate_client(
    es11: Arc<Es11>,
    store: &dyn EventStore,
    req: AuthenticateClientRequest,
    now: i64,
) -> Result<AuthenticateClientResponse, Es11Error> {
    let euicc = tokio::task::spawn_blocking(move || authenticate_euicc(&es11, &req, now))
        .await
        .map_err(|e| Es11Error::Internal(format!("authentication task failed: {e}")))??;
    let events = store
        .events_for(&euicc.eid)
        .await
        .map_err(Es11Error::Store)?;
    let selected: Vec<_> = match &euicc.matching_id {
        None => events,
        Some(event_id) => {
            let one: Vec<_> = events
                .into_iter()
                .filter(|e| e.record.event_id.as_str() == event_id)
                .collect();
            if one.is_empty() {
                return Err(Es11Error::UnknownMatchingId);
            }
            one
        }
    };
    tracing::info!(eid = %euicc.eid, events = selected.len(), "authenticateClient");
    Ok(AuthenticateClientResponse {
        transaction_id: euicc.transaction_id,
        event_entries: selected
            .into_iter()
            .map(|e| EventEntry {
                event_id: e.record.event_id.into(),
                rsp_server_address: e.record.rsp_server_address.into(),
            })
            .collect(),
    })
}
