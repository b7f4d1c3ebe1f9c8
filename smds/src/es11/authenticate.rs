//! ES11.AuthenticateClient (SGP.22 5.8.2): authenticates the eUICC (its certificate chain and its
//! signature over the exact euiccSigned1 bytes, then the stateless transaction it signed), uses the
//! transaction up, and returns the events of the EID in its certificate.

use super::{Es11, Es11Error, TrustedCi};
use crate::asn1::{self, AuthenticateServerResponseView, TransactionId};
use crate::auth::{SessionError, SessionKeys};
use crate::pki::{ChainShape, CiKeyId};
use crate::sgp22::is_own_address;
use crate::sgp22::requests::AuthenticateClientRequest;
use crate::sgp22::responses::{AuthenticateClientResponse, EventEntry, SignedEventList};
use crate::store::{Backend, EventStore, StoredEvent};
use crate::types::PushToken;
use pki_tool::validate::{Options, check_constraints_above, verify_chain};
use pki_tool::{Certificate, Curve, Eid};
use sha2::Digest;
use std::sync::Arc;

const EUM_CACHE_MAX: usize = 4096;

/// How long an ecId (SGP.22 v3 Event Checking) stands for its EID: a device polls with it between
/// full discoveries, each of which hands out a new one. The notes give no figure; 30 days.
pub const EC_ID_LIFETIME_SECS: i64 = 30 * 86_400;

/// The eUICC's intermediates (nextCertInChain, then otherCertsInChain) validated under a CI
/// before, if these DERs are such and all are still within their validity: the CI and the path
/// as parsed then.
fn cached_path(es11: &Es11, key: &[u8; 32], now: i64) -> Option<(CiKeyId, Arc<Vec<Certificate>>)> {
    let m = es11.eum_cache.lock().ok()?;
    let (ci, path) = m.get(key)?;
    path.iter()
        .all(|c| now >= c.not_before && now <= c.not_after)
        .then(|| (ci.clone(), path.clone()))
}

/// The CI above the eUICC's intermediates: the first trusted one named by the authority key
/// identifier of any of them (the order an eUICC sends them in is not relied on).
fn issuing_ci<'e>(es11: &'e Es11, intermediates: &[Certificate]) -> Option<&'e TrustedCi> {
    intermediates
        .iter()
        .filter_map(Certificate::aki)
        .find_map(|id| es11.ci(&id))
}

/// Validates the eUICC chain under `ci`: the eUICC alone under its issuer when the path above
/// was validated before (`cached`), else the whole path through the intermediates sent (an EUM,
/// or in SGP.26 v3 an EUM SubCA, the EUM, a CI SubCA), which is then remembered. The CRLs are
/// checked along the path every time.
fn validate_euicc(
    es11: &Es11,
    ci: &TrustedCi,
    euicc: &Certificate,
    intermediates: Intermediates,
    path_key: [u8; 32],
    now: i64,
) -> Result<Eid, Es11Error> {
    let (verified, path) = match intermediates {
        Intermediates::Cached(path) => {
            // The path was validated under this CI before: its first certificate, the eUICC's
            // issuer, is the anchor for the eUICC certificate, and the constraints of the CAs
            // above it (a v3 EUM's permittedEins above an EUM SubCA) still bound the EID.
            let (issuer, above) = path.split_first().ok_or(Es11Error::EumCiUnknown)?;
            let v = verify_chain(
                euicc,
                &[],
                std::slice::from_ref(issuer),
                Some(pki_tool::Role::Euicc),
                Options::at(now),
            )
            .and_then(|v| check_constraints_above(euicc, pki_tool::Role::Euicc, above).map(|()| v));
            (v, path)
        }
        Intermediates::Sent(sent) => {
            let v = verify_chain(
                euicc,
                &sent,
                std::slice::from_ref(&ci.cert),
                Some(pki_tool::Role::Euicc),
                Options::at(now),
            );
            let path: Vec<Certificate> = match &v {
                Ok(v) => v
                    .intermediates_used
                    .iter()
                    .filter_map(|&i| sent.get(i).cloned())
                    .collect(),
                Err(_) => Vec::new(),
            };
            let path = Arc::new(path);
            // Only a list with nothing but the path is remembered: certificates appended to a
            // public chain would otherwise make endless keys and flush the cache.
            if v.is_ok()
                && path.len() == sent.len()
                && let Ok(mut m) = es11.eum_cache.lock()
            {
                if m.len() >= EUM_CACHE_MAX {
                    m.clear();
                }
                m.insert(path_key, (ci.key_id.clone(), path.clone()));
            }
            (v, path)
        }
    };
    let eid = verified
        .map_err(Es11Error::Chain)?
        .eid
        .ok_or(Es11Error::NoEid)?;
    let chain: Vec<&Certificate> = std::iter::once(euicc).chain(path.iter()).collect();
    es11.revocation
        .check(&chain, &ci.cert, now, "ES11")
        .map_err(Es11Error::Revoked)?;
    Ok(eid)
}

/// The certificates between the eUICC and its CI.
enum Intermediates {
    /// As validated before, the eUICC's issuer first.
    Cached(Arc<Vec<Certificate>>),
    /// As sent, parsed, not validated yet.
    Sent(Vec<Certificate>),
}

/// An eUICC that has proven itself in AuthenticateClient.
struct AuthenticatedEuicc {
    pub transaction_id: TransactionId,
    /// When the transaction expires: until then it is recorded as used.
    pub expires: i64,
    pub eid: Eid,
    /// `ctxParamsForCommonAuthentication.matchingId`, when present and not empty.
    pub matching_id: Option<String>,
    /// The CI the eUICC chain was validated under (its CERT.DSauth signed this session).
    pub ci: CiKeyId,
    /// Which of that CI's CERT.DSauth signed serverSigned1 (carried in the transactionId).
    pub ds_auth: ChainShape,
    /// Both the eUICC (EuiccRspCapability bit 17) and the LPA (LpaRspCapability bit 5, in the
    /// DeviceInfo the eUICC signed) support signedSmdsResponseV3: answer with a signed list.
    pub signed_response: bool,
    /// A push-service registration (ctxParams1 [3]) for a service offered here: the service
    /// and the token, to be stored instead of reading events.
    pub push: Option<(rasn::types::ObjectIdentifier, PushToken)>,
}

/// The cheap first part of AuthenticateClient: the transaction's age, the eUICC's response
/// read, and its intermediates looked up among those validated before.
struct Prepared<'a> {
    signed: asn1::EuiccSigned1View<'a>,
    signature: &'a [u8],
    euicc_der: &'a [u8],
    /// nextCertInChain, then otherCertsInChain.
    intermediates_der: Vec<&'a [u8]>,
    path_key: [u8; 32],
    /// The path as validated before, with its CI.
    cached: Option<(CiKeyId, Arc<Vec<Certificate>>)>,
}

impl Prepared<'_> {
    /// Whether the rest costs about what a TLS handshake does (which rustls runs on the async
    /// workers): a P-256 chain under an EUM validated before, so two P-256 verifications. Then it
    /// runs in place; a first EUM (its chain and CRLs) or a brainpool chain goes to the blocking
    /// pool. The hand-off cost about 45 us of server CPU per discovery (measured), half of the
    /// work it moved.
    fn runs_in_place(&self) -> bool {
        self.cached.as_ref().is_some_and(|(_, path)| {
            path.first()
                .is_some_and(|issuer| issuer.public_key.curve() == Curve::NistP256)
        })
    }
}

fn prepare<'a>(
    es11: &Es11,
    req: &'a AuthenticateClientRequest,
    now: i64,
) -> Result<Prepared<'a>, Es11Error> {
    // Cheap first: a transactionId this server did not issue, or an expired one.
    es11.sessions
        .expiry(&req.transaction_id, now)
        .map_err(|_| Es11Error::TransactionUnknown)?;
    let parsed = asn1::parse_authenticate_server_response(&req.authenticate_server_response)
        .map_err(Es11Error::EuiccResponse)?;
    let (signed, signature, euicc_der, intermediates_der) = match parsed {
        AuthenticateServerResponseView::Ok {
            euicc_signed1,
            euicc_signature1,
            euicc_certificate,
            next_cert_in_chain,
            other_certs_in_chain,
        } => (
            euicc_signed1,
            euicc_signature1,
            euicc_certificate,
            std::iter::once(next_cert_in_chain)
                .chain(other_certs_in_chain)
                .collect::<Vec<_>>(),
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
    // Each DER with its length, so that no two different lists hash the same bytes.
    let mut hash = sha2::Sha256::new();
    for der in &intermediates_der {
        hash.update((der.len() as u64).to_be_bytes());
        hash.update(der);
    }
    let path_key: [u8; 32] = hash.finalize().into();
    Ok(Prepared {
        signed,
        signature,
        euicc_der,
        intermediates_der,
        path_key,
        cached: cached_path(es11, &path_key, now),
    })
}

/// The CPU part of AuthenticateClient after [`prepare`]: validates the eUICC's certificates
/// under the CI that issued the EUM, checks its signature over the exact euiccSigned1 bytes
/// received, and then that euiccSigned1 carries this transaction, the serverChallenge issued for
/// it and that CI (see [`crate::auth`]), and this server's address.
fn authenticate_euicc(
    es11: &Es11,
    tid: TransactionId,
    prepared: Prepared<'_>,
    now: i64,
) -> Result<AuthenticatedEuicc, Es11Error> {
    let Prepared {
        signed,
        signature,
        euicc_der,
        intermediates_der,
        path_key,
        cached,
    } = prepared;
    let (ci, intermediates) = match cached {
        Some((ci, path)) => (es11.ci(ci.as_bytes()), Intermediates::Cached(path)),
        None => {
            let sent = intermediates_der
                .iter()
                .map(|der| Certificate::from_der(der))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Es11Error::EumCertificate(e.to_string()))?;
            (issuing_ci(es11, &sent), Intermediates::Sent(sent))
        }
    };
    let ci: &TrustedCi = ci.ok_or(Es11Error::EumCiUnknown)?;
    let euicc =
        Certificate::from_der(euicc_der).map_err(|e| Es11Error::EuiccCertificate(e.to_string()))?;
    let eid = validate_euicc(es11, ci, &euicc, intermediates, path_key, now)?;
    if signature.len() != 64 || !euicc.public_key.verify_raw(signed.raw, signature) {
        return Err(Es11Error::EuiccSignature);
    }
    if signed.transaction_id != tid.as_bytes() {
        return Err(Es11Error::OtherTransaction);
    }
    let expires = es11
        .sessions
        .check(&tid, &ci.key_id, signed.server_challenge, now)
        .map_err(|e| match e {
            SessionError::Unknown => Es11Error::TransactionUnknown,
            SessionError::Challenge => Es11Error::ServerChallenge,
        })?;
    if !is_own_address(signed.server_address, &es11.hostname) {
        return Err(Es11Error::ServerAddress);
    }
    // Checked last, on an authenticated eUICC; an absent ctxParams1 stays what v2 servers
    // tolerated (common authentication without a matchingId).
    let push = match (signed.context, &signed.push_registration) {
        (asn1::CtxParams1Kind::CommonAuthentication | asn1::CtxParams1Kind::Absent, _) => None,
        (asn1::CtxParams1Kind::PushServiceRegistration, Some((service, token))) => {
            if !es11.push_services.contains(service) {
                return Err(Es11Error::PushServiceNotOffered(asn1::dotted(service)));
            }
            Some((service.clone(), PushToken::parse(token)?))
        }
        (asn1::CtxParams1Kind::PushServiceRegistration, None) if !es11.push_services.is_empty() => {
            return Err(Es11Error::EuiccResponse(asn1::Asn1Error(
                "ctxParamsForPushServiceRegistration is not {selectedPushService [0] OID, pushToken [1] UTF8String}".into(),
            )));
        }
        (other, _) => return Err(Es11Error::UnsupportedContext(other.name())),
    };
    Ok(AuthenticatedEuicc {
        transaction_id: tid,
        expires,
        eid,
        matching_id: signed
            .matching_id
            .filter(|m| !m.is_empty())
            .map(str::to_string),
        ci: ci.key_id.clone(),
        ds_auth: SessionKeys::shape(&tid).unwrap_or(ChainShape::Direct),
        signed_response: asn1::euicc_wants_signed_smds_response(signed.euicc_info2)
            && asn1::lpa_wants_signed_smds_response(signed.device_info),
        push,
    })
}

/// Records the authenticated eUICC's transaction as used (only now, after its signature has
/// verified: single use) and reads its events.
async fn use_and_read(
    store: &dyn EventStore,
    euicc: AuthenticatedEuicc,
) -> Result<(AuthenticatedEuicc, Vec<StoredEvent>), Es11Error> {
    let (tid, expires) = (&euicc.transaction_id, euicc.expires);
    // A push registration reads no events: it only uses the transaction up.
    let used = match euicc.push {
        Some(_) => store
            .use_transaction(tid, expires)
            .await
            .map(|first| first.then(Vec::new)),
        None => {
            store
                .use_transaction_and_read(tid, expires, &euicc.eid)
                .await
        }
    };
    match used {
        Ok(Some(events)) => Ok((euicc, events)),
        Ok(None) => Err(Es11Error::TransactionUnknown),
        Err(e) => Err(Es11Error::Store(e)),
    }
}

/// ES11.AuthenticateClient: authenticates the eUICC, records the transaction as used and reads
/// its events, in place or in one task on the blocking pool ([`Prepared::runs_in_place`]);
/// returns the events, or the one its matchingId names.
pub async fn authenticate_client(
    es11: Arc<Es11>,
    store: Arc<dyn Backend>,
    req: AuthenticateClientRequest,
    now: i64,
) -> Result<AuthenticateClientResponse, Es11Error> {
    let ec_store = store.clone();
    let tid = req.transaction_id;
    // The request is read once; only the work that goes to the pool reads it again there.
    let in_place = {
        let prepared = prepare(&es11, &req, now)?;
        prepared
            .runs_in_place()
            .then(|| authenticate_euicc(&es11, tid, prepared, now))
    };
    let (euicc, events) = match in_place {
        Some(euicc) => use_and_read(&*store, euicc?).await?,
        None => {
            let handle = tokio::runtime::Handle::current();
            let on_pool = es11.clone();
            crate::blocking::offload(move || {
                let euicc = authenticate_euicc(&on_pool, tid, prepare(&on_pool, &req, now)?, now)?;
                handle.block_on(use_and_read(&*store, euicc))
            })
            .await
            .map_err(|e| Es11Error::Internal(format!("authentication task failed: {e}")))??
        }
    };
    if let Some((service, token)) = &euicc.push {
        return register_push_token(es11, &*ec_store, &euicc, service, token, now).await;
    }
    let events = events.into_iter().filter(|e| e.record.is_discoverable());
    let selected: Vec<_> = match &euicc.matching_id {
        None => events.collect(),
        Some(event_id) => {
            // At an Alternative SM-DS the LPA comes from the Root with the EventID the Root
            // holds; the answer carries the SM-DP+'s own.
            let one: Vec<_> = events
                .filter(|e| {
                    e.record.event_id.as_str() == event_id
                        || e.record
                            .forwarded
                            .as_ref()
                            .is_some_and(|f| f.root_event_id.as_str() == event_id)
                })
                .collect();
            if one.is_empty() {
                return Err(Es11Error::UnknownMatchingId);
            }
            one
        }
    };
    tracing::info!(eid = %crate::types::LoggedEid(&euicc.eid), events = selected.len(), signed = euicc.signed_response, "authenticateClient");
    let event_entries: Vec<EventEntry> = selected
        .into_iter()
        .map(|e| EventEntry {
            event_id: e.record.event_id.into(),
            rsp_server_address: e.record.rsp_server_address.into(),
            details: e.record.details,
        })
        .collect();
    let signed = if euicc.signed_response {
        // A fresh ecId at every full v3 discovery, replacing the EID's earlier one.
        let mut ec_id = [0u8; 16];
        getrandom::fill(&mut ec_id)
            .map_err(|e| Es11Error::Internal(format!("random number generator failed: {e}")))?;
        ec_store
            .issue_ec_id(&euicc.eid, &ec_id, now + EC_ID_LIFETIME_SECS)
            .await
            .map_err(Es11Error::Store)?;
        let records: Vec<asn1::EventRecordV3<'_>> = event_entries
            .iter()
            .map(|e| asn1::EventRecordV3 {
                event_id: &e.event_id,
                rsp_server_address: &e.rsp_server_address,
                details: &e.details,
            })
            .collect();
        let data = asn1::SmdsSignedData::EventList {
            events: &records,
            ec_id: Some(&ec_id),
            push_service_refresh_time: None,
        };
        Some(sign_smds_signed2(es11, &euicc, &data).await?)
    } else {
        None
    };
    Ok(AuthenticateClientResponse {
        transaction_id: euicc.transaction_id,
        event_entries,
        signed,
    })
}

/// SGP.22 v3 push-service registration (notes 1.4): keeps the token for the authenticated EID
/// and the selected service, replacing an older one, and answers `pushServiceRegistrationResult`
/// with the time by which the LPA should register again (when the token expires here).
async fn register_push_token(
    es11: Arc<Es11>,
    store: &dyn Backend,
    euicc: &AuthenticatedEuicc,
    service: &rasn::types::ObjectIdentifier,
    token: &PushToken,
    now: i64,
) -> Result<AuthenticateClientResponse, Es11Error> {
    let refresh = now + crate::push::PUSH_TOKEN_LIFETIME_SECS;
    let service = asn1::dotted(service);
    store
        .register_push_token(&euicc.eid, &service, token, refresh)
        .await
        .map_err(Es11Error::Store)?;
    tracing::info!(eid = %crate::types::LoggedEid(&euicc.eid), service = %service, "push token registered");
    let data = asn1::SmdsSignedData::PushServiceRegistrationResult {
        push_service_refresh_time: Some(refresh),
    };
    Ok(AuthenticateClientResponse {
        transaction_id: euicc.transaction_id,
        event_entries: Vec::new(),
        signed: Some(sign_smds_signed2(es11, euicc, &data).await?),
    })
}

/// `SmdsSigned2` carrying `data`, and `smdsSignature2` by the CERT.DSauth key of the session's CI
/// (the certificate the eUICC validated in AuthenticateServer, so the only one it can verify
/// with).
async fn sign_smds_signed2(
    es11: Arc<Es11>,
    euicc: &AuthenticatedEuicc,
    data: &asn1::SmdsSignedData<'_>,
) -> Result<SignedEventList, Es11Error> {
    let smds_signed2 = asn1::smds_signed2(&euicc.transaction_id, data)
        .map_err(|e| Es11Error::Internal(e.to_string()))?;
    let (key_id, shape) = (euicc.ci.clone(), euicc.ds_auth);
    let no_key = || Es11Error::Internal("no CERT.DSauth for the session's CI".into());
    let cheap = es11
        .ci(key_id.as_bytes())
        .and_then(|c| c.ds_auth(shape))
        .ok_or_else(no_key)?
        .key
        .curve()
        == Curve::NistP256;
    let sign = move |es11: &Es11, data: &[u8]| {
        es11.ci(key_id.as_bytes())
            .and_then(|c| c.ds_auth(shape))
            .map(|d| d.key.sign_raw(data))
            .ok_or_else(no_key)
    };
    // A brainpool signature (~280 us) goes to the blocking pool, as in InitiateAuthentication.
    let signature = if cheap {
        sign(&es11, &smds_signed2)?
    } else {
        let data = smds_signed2.clone();
        crate::blocking::offload(move || sign(&es11, &data))
            .await
            .map_err(|e| Es11Error::Internal(format!("signing task failed: {e}")))??
    };
    Ok(SignedEventList {
        smds_signature2: pki_tool::tlv::tlv(0x5F37, &signature),
        smds_signed2,
    })
}
