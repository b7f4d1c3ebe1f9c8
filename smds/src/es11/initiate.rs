//! ES11.InitiateAuthentication (SGP.22 5.8.1): checks the address, the SVN and the eUICC's CI
//! lists, issues a transaction bound to the chosen CI (nothing is stored, see [`crate::auth`]) and
//! signs serverSigned1 with that CI's CERT.DSauth: the one directly under the CI, or for an eUICC
//! with certChainV3VerificationSupport the one under SubCAs, which then go in `otherCertsInChain`.

use super::{Es11, Es11Error, TrustedCi};
use crate::asn1::{self, ServerSigned1};
use crate::sgp22::requests::InitiateAuthenticationRequest;
use crate::sgp22::responses::InitiateAuthenticationResponse;
use crate::sgp22::{is_own_address, normalize_address, rsp3_name};
use pki_tool::Curve;
use std::sync::Arc;

/// The CI to use with this eUICC: one whose key the eUICC can verify our CERT.DSauth with and
/// that also signed the eUICC's own chain.
fn choose_ci<'e>(
    es11: &'e Es11,
    req: &InitiateAuthenticationRequest,
) -> Result<&'e TrustedCi, Es11Error> {
    if !is_own_address(&req.smds_address, &es11.hostname) {
        return Err(Es11Error::AddressRefused);
    }
    let info1 = &req.euicc_info1;
    if !(2..=3).contains(&info1.svn[0]) {
        return Err(Es11Error::SvnNotSupported(info1.svn));
    }
    let verifiable: Vec<&TrustedCi> = info1
        .ci_pkids_for_verification
        .iter()
        .filter_map(|id| es11.ci(id))
        .filter(|ci| ci.ds_auth_for(info1.cert_chain_v3()).is_some())
        .collect();
    if verifiable.is_empty() {
        return Err(Es11Error::NoDsAuthForCi);
    }
    verifiable
        .into_iter()
        .find(|ci| info1.can_sign_with(ci.key_id.as_bytes()))
        .ok_or(Es11Error::CiNotSupported)
}

/// `euiccCiPKIdToBeUsedV3`: the chosen CI, when the eUICC has a v3 chain under it and verifies
/// v3 chains (the notes infer that this field selects the eUICC's v3 chain).
fn ci_to_be_used_v3(ci: &TrustedCi, info1: &asn1::EuiccInfo1View) -> Option<Vec<u8>> {
    (info1.cert_chain_v3() == Some(true)
        && info1
            .ci_pkids_for_signing_v3
            .iter()
            .any(|id| id == ci.key_id.as_bytes()))
    .then(|| ci.key_id.as_bytes().to_vec())
}

/// SGP.22 v3 `sessionContext`, only to advertise push services to an eUICC that can register
/// with them or to name the CI of its v3 chain (every other eUICC gets v2's serverSigned1, byte
/// for byte).
fn session_context(
    es11: &Es11,
    ci: &TrustedCi,
    info1: &asn1::EuiccInfo1View,
) -> Option<asn1::SessionContext> {
    let push = (!es11.push_services.is_empty() && info1.supports_push_registration())
        .then(|| es11.push_services.to_vec());
    let ci_v3 = ci_to_be_used_v3(ci, info1);
    (push.is_some() || ci_v3.is_some()).then(|| asn1::SessionContext {
        server_svn: asn1::SERVER_SVN_V3.to_vec().into(),
        crl_stapling_v3_used: false,
        euicc_ci_pkid_to_be_used_v3: ci_v3.map(Into::into),
        supported_push_services: push,
    })
}

/// The name serverSigned1 carries: the `rsp3-` one when the LPA used it, else the hostname.
fn answered_address(es11: &Es11, req: &InitiateAuthenticationRequest) -> String {
    let rsp3 = rsp3_name(&es11.hostname);
    if normalize_address(&req.smds_address) == rsp3 {
        rsp3
    } else {
        es11.hostname.clone()
    }
}

/// Issues the transaction (nothing is stored) and signs serverSigned1.
fn sign_and_open(
    es11: &Es11,
    ci: &TrustedCi,
    req: &InitiateAuthenticationRequest,
    now: i64,
) -> Result<InitiateAuthenticationResponse, Es11Error> {
    let Some(ds_auth) = ci.ds_auth_for(req.euicc_info1.cert_chain_v3()) else {
        return Err(Es11Error::NoDsAuthForCi);
    };
    let (transaction_id, server_challenge) = es11
        .sessions
        .issue(&ci.key_id, ds_auth.shape(), now)
        .map_err(|e| Es11Error::Internal(e.to_string()))?;
    let signed = ServerSigned1 {
        transaction_id: transaction_id.as_bytes().to_vec().into(),
        euicc_challenge: req.euicc_challenge.to_vec().into(),
        // The name the LPA used: the eUICC compares serverAddress with the address it was given.
        server_address: answered_address(es11, req),
        server_challenge: server_challenge.to_vec().into(),
        session_context: session_context(es11, ci, &req.euicc_info1),
    };
    let signed_der = asn1::der(&signed).map_err(|e| Es11Error::Internal(e.to_string()))?;
    let signature = asn1::signature_tlv(&ds_auth.key.sign_raw(&signed_der));
    Ok(InitiateAuthenticationResponse {
        transaction_id,
        server_signed1: signed_der,
        server_signature1: signature,
        euicc_ci_pkid_to_be_used: ci.key_id.as_bytes().to_vec(),
        server_certificate: ds_auth.cert.der().to_vec(),
        other_certs_in_chain: ds_auth.chain.iter().map(|c| c.der().to_vec()).collect(),
    })
}

/// ES11.InitiateAuthentication.
pub async fn initiate_authentication(
    es11: Arc<Es11>,
    req: InitiateAuthenticationRequest,
    now: i64,
) -> Result<InitiateAuthenticationResponse, Es11Error> {
    let ci = choose_ci(&es11, &req)?;
    let cheap = ci
        .ds_auth_for(req.euicc_info1.cert_chain_v3())
        .is_some_and(|d| d.key.curve() == Curve::NistP256);
    if cheap {
        return sign_and_open(&es11, ci, &req, now);
    }
    let key_id = ci.key_id.clone();
    crate::blocking::offload(move || {
        let ci = es11.ci(key_id.as_bytes()).ok_or(Es11Error::NoDsAuthForCi)?;
        sign_and_open(&es11, ci, &req, now)
    })
    .await
    .map_err(|e| Es11Error::Internal(format!("signing task failed: {e}")))?
}
