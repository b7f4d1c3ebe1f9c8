//! ES11 (LPA to SM-DS): InitiateAuthentication and AuthenticateClient (SGP.22 5.8), the common
//! mutual authentication followed by event retrieval for the authenticated eUICC's EID only.
//!
//! Input is the parsed request; output is the function's result. The EID always comes from the
//! validated eUICC certificate, never from the request. Uses the session table ([`crate::auth`]),
//! the server's credentials ([`crate::pki`]), SGP.22 chain validation (pki-tool) and the event
//! store through its trait.
//!
//! Work that costs about what a TLS handshake does (which rustls runs on the async workers) runs
//! in place: a P-256 serverSignature1 (~16 us), and AuthenticateClient for a P-256 eUICC under an
//! EUM validated before (two P-256 verifications, the used-transaction check in memory, the event
//! read). A hand-off to the blocking pool costs about 45 us of server CPU on a 2-core VM
//! (measured), so only heavier work goes there: AuthenticateClient with a first EUM (its chain and
//! CRLs) or a brainpool chain, and InitiateAuthentication's signature when CERT.DSauth is
//! brainpool.

mod authenticate;
mod check_event;
mod error;
mod initiate;

pub use authenticate::authenticate_client;
pub use check_event::check_event;
pub use error::Es11Error;
pub use initiate::initiate_authentication;

use crate::auth::SessionKeys;
use crate::pki::{ChainShape, CiKeyId, Credential};
use crate::revocation::Revocation;
use pki_tool::Certificate;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A CI this SM-DS trusts, with the CERT.DSauth it signs with for eUICCs of that CI.
pub struct TrustedCi {
    pub cert: Certificate,
    pub key_id: CiKeyId,
    /// CERT.DSauth directly under the CI (SGP.26 Variant O): every eUICC verifies it.
    pub ds_auth: Option<Credential>,
    /// CERT.DSauth under SubCAs (v3 Variants A, B, C), sent with them in `otherCertsInChain`.
    pub ds_auth_sub_cas: Option<Credential>,
}

impl TrustedCi {
    pub fn ds_auth(&self, shape: ChainShape) -> Option<&Credential> {
        match shape {
            ChainShape::Direct => self.ds_auth.as_ref(),
            ChainShape::SubCas => self.ds_auth_sub_cas.as_ref(),
        }
    }

    /// The CERT.DSauth for an eUICC whose EUICCInfo1 states certChainV3VerificationSupport
    /// (`Some(true)`), states capabilities without it (`Some(false)`: a SubCA chain is useless
    /// to it), or states none (`None`: the direct one, else try the SubCA one, which a v3 eUICC
    /// that did not list its capabilities may verify).
    pub fn ds_auth_for(&self, cert_chain_v3: Option<bool>) -> Option<&Credential> {
        match cert_chain_v3 {
            Some(true) => self.ds_auth_sub_cas.as_ref().or(self.ds_auth.as_ref()),
            Some(false) => self.ds_auth.as_ref(),
            None => self.ds_auth.as_ref().or(self.ds_auth_sub_cas.as_ref()),
        }
    }
}

/// SHA-256 over the eUICC's intermediate certificates as sent (nextCertInChain and
/// otherCertsInChain) -> the CI they were validated under, and the path as parsed, the eUICC's
/// issuer first.
pub(crate) type EumCache = HashMap<[u8; 32], (CiKeyId, Arc<Vec<Certificate>>)>;

/// What ES11 needs besides the store.
pub struct Es11 {
    /// This SM-DS's address (as configured), for serverSigned1 and the address checks.
    pub hostname: String,
    pub cis: Vec<TrustedCi>,
    /// Issues and checks transactions without storing them (see [`crate::auth`]).
    pub sessions: Arc<SessionKeys>,
    /// eUICC paths already validated (the EUM, or an EUM SubCA with what is above it): see
    /// [`EumCache`]; a known path is neither parsed nor validated again, though the constraints
    /// of its CAs still apply to each eUICC. Revocation is checked on every request, cached or
    /// not.
    pub(crate) eum_cache: Mutex<EumCache>,
    /// The CRLs the eUICC chain is checked against.
    pub revocation: Arc<Revocation>,
    /// The SGP.22 v3 push services configured (see [`crate::push`]): advertised to eUICCs that
    /// support push registration, and the only ones a registration may select.
    pub push_services: Arc<Vec<rasn::types::ObjectIdentifier>>,
}

impl Es11 {
    /// `ds_auth` are matched to their CI by the authority key identifier at the top of their
    /// chain, one of each [`ChainShape`] per CI (the first listed). A CI listed twice (the same
    /// key in both hierarchies) is trusted once.
    pub fn new(
        hostname: String,
        cis: Vec<Certificate>,
        ds_auth: &[Credential],
        sessions: Arc<SessionKeys>,
        revocation: Arc<Revocation>,
    ) -> Self {
        let mut trusted: Vec<TrustedCi> = Vec::new();
        for cert in cis {
            let key_id = CiKeyId::of(&cert);
            if trusted.iter().any(|t| t.key_id == key_id) {
                continue;
            }
            let of_shape = |shape| {
                ds_auth
                    .iter()
                    .find(|d| {
                        d.shape() == shape && d.ci_key_id().as_deref() == Some(key_id.as_bytes())
                    })
                    .cloned()
            };
            trusted.push(TrustedCi {
                ds_auth: of_shape(ChainShape::Direct),
                ds_auth_sub_cas: of_shape(ChainShape::SubCas),
                cert,
                key_id,
            });
        }
        Es11 {
            hostname,
            cis: trusted,
            sessions,
            eum_cache: Mutex::new(HashMap::new()),
            revocation,
            push_services: Arc::new(Vec::new()),
        }
    }

    /// The same, advertising and accepting `services`.
    pub fn with_push_services(self, services: Arc<Vec<rasn::types::ObjectIdentifier>>) -> Self {
        Es11 {
            push_services: services,
            ..self
        }
    }

    pub(crate) fn ci(&self, key_id: &[u8]) -> Option<&TrustedCi> {
        self.cis.iter().find(|c| c.key_id.as_bytes() == key_id)
    }
}
