//! ES11 (LPA to SM-DS): InitiateAuthentication and AuthenticateClient (SGP.22 5.8), the common
//! mutual authentication followed by event retrieval for the authenticated eUICC's EID only.
//!
//! Input is the parsed request; output is the function's result. The EID always comes from the
//! validated eUICC certificate, never from the request. Uses the session table ([`crate::auth`]),
//! the server's credentials ([`crate::pki`]), SGP.22 chain validation (pki-tool) and the event
//! store through its trait.
//!
//! Signature work that costs more than a hand-off to the blocking pool (about 50 us of server CPU
//! on a 2-core VM, measured) runs there, not on the async workers: AuthenticateClient's chain and
//! signature checks with its event read (one hand-off), and InitiateAuthentication's signature
//! when CERT.DSauth is brainpool. A P-256 serverSignature1 (~16 us, less than the
//! CertificateVerify rustls signs on the workers for every handshake) is made in place.

mod authenticate;
mod error;
mod initiate;

pub use authenticate::authenticate_client;
pub use error::Es11Error;
pub use initiate::initiate_authentication;

use crate::auth::SessionKeys;
use crate::pki::{CiKeyId, Credential};
use pki_tool::Certificate;
use std::collections::HashMap;
use std::sync::Mutex;

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
    /// Issues and checks transactions without storing them (see [`crate::auth`]).
    pub sessions: SessionKeys,
    /// EUM certificates already validated: SHA-256 of the DER -> (CI, notAfter).
    pub(crate) eum_cache: Mutex<HashMap<[u8; 32], (CiKeyId, i64)>>,
    /// Used transactions the store could not record (see [`Es11::use_transaction`]).
    used_fallback: Mutex<HashMap<crate::asn1::TransactionId, i64>>,
}

/// Most used transactions kept in memory while the store refuses writes.
const USED_FALLBACK_MAX: usize = 100_000;

impl Es11 {
    /// `ds_auth` are matched to their CI by authority key identifier.
    pub fn new(
        hostname: String,
        cis: Vec<Certificate>,
        ds_auth: &[Credential],
        sessions: SessionKeys,
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
            used_fallback: Mutex::new(HashMap::new()),
        }
    }

    /// Records a transaction as used and reads the EID's events: both in the event store
    /// (shared by every node, in one round trip where the store can), and while the embedded
    /// store cannot take writes (a full disk), the used transaction in this node's memory, so
    /// that discovery keeps working through the outage; a shared store (PostgreSQL) has no such
    /// fallback, since other nodes could not see it. Only authenticated eUICCs get here, and
    /// each entry lives only for the transaction's lifetime; the memory fallback is bounded all
    /// the same. A transaction used already is [`Es11Error::TransactionUnknown`].
    pub(crate) fn use_transaction_and_read(
        &self,
        handle: &tokio::runtime::Handle,
        store: &dyn crate::store::EventStore,
        tid: &crate::asn1::TransactionId,
        expires: i64,
        eid: &pki_tool::Eid,
        now: i64,
    ) -> Result<Vec<crate::store::StoredEvent>, Es11Error> {
        let fallback = || self.used_fallback.lock().unwrap_or_else(|e| e.into_inner());
        if fallback().contains_key(tid) {
            return Err(Es11Error::TransactionUnknown);
        }
        let e = match handle.block_on(store.use_transaction_and_read(tid, expires, eid)) {
            Ok(Some(events)) => return Ok(events),
            Ok(None) => return Err(Es11Error::TransactionUnknown),
            // A shared store fails closed: another node would not see this node's memory.
            Err(e) if store.is_shared() => return Err(Es11Error::Store(e)),
            Err(e) => e,
        };
        tracing::warn!(error = %e, "used transactionId kept in memory: the store refused it");
        {
            let mut used = fallback();
            if used.len() >= USED_FALLBACK_MAX {
                used.retain(|_, exp| *exp >= now);
                if used.len() >= USED_FALLBACK_MAX {
                    return Err(Es11Error::Store(e));
                }
            }
            if used.insert(*tid, expires).is_some() {
                return Err(Es11Error::TransactionUnknown);
            }
        }
        handle
            .block_on(store.events_for(eid))
            .map_err(Es11Error::Store)
    }

    pub(crate) fn ci(&self, key_id: &[u8]) -> Option<&TrustedCi> {
        self.cis.iter().find(|c| c.key_id.as_bytes() == key_id)
    }
}
