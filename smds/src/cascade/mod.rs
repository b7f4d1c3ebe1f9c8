//! The ES15 cascade at an Alternative SM-DS (SGP.22 3.6.1.2, 5.10): an ES12 registration with
//! `forwardingIndicator: true` is stored here and registered at the Root SM-DS, under this
//! server's address, before the SM-DP+ is answered; deleting it here deletes it at the Root.
//!
//! What rests on reading, not on the SGP.22 text (`sgp22-v3-es15-notes.md` section 2,
//! `es11-es12-notes.md` 4.1-4.3): the Root gets a fresh EventID by default (`event_ids = "fresh"`,
//! mapped back here; `"same"` forwards the SM-DP+'s), ES15 has ES12's JSON and paths under
//! `/gsma/rsp2/es15/`, the forward carries `forwardingIndicator: false`, and the codes for a
//! failed forward are 8.9/4.2 (refused) and 8.9/5.1 (unreachable).
//!
//! Registration, in order: the record is committed here marked unconfirmed (ES11 does not show
//! it); ES15.RegisterEvent goes to the Root within the configured timeout; the Root's success
//! confirms the record and only then is the SM-DP+ told; a refusal discards the record (the Root
//! holds nothing); no answer deletes it and queues an ES15 delete, since the Root may hold a copy.
//! A crash in between leaves an unconfirmed record, which [`queue`] undoes the same way once it is
//! older than any forward still in flight could be: the SM-DP+ was never told it succeeded, so no
//! record may stay, and none is acknowledged twice. Deletions are queued durably with the local
//! delete (by the store) and delivered by [`queue`] with backoff, so a Root that is down never
//! blocks one.
//!
//! Uses the store through its traits, the server's CERT.DS.TLS as its client certificate (the
//! Root's must chain to a configured CI, have the DS TLS role, carry the Root's name and pass the
//! server's CRLs), and the lab HTTPS client (TLS with SGP.22 verification, HTTP/1.1 or HTTP/2).

pub mod queue;

use crate::config::{CascadeConfig, EventIdMode};
use crate::es12::Es12Error;
use crate::identity::PeerIdentity;
use crate::lab::https::{Connection, Endpoint};
use crate::pki::ServerPki;
use crate::sgp22::FunctionResult;
use crate::sgp22::paths::path;
use crate::sgp22::requests::{self, RegisterEventRequest};
use crate::store::{Backend, EventRecord, Forwarded, RegisterOutcome};
use crate::types::{EventId, LoggedEid};
use pki_tool::Role;
use std::sync::Arc;
use std::time::Duration;

/// An Alternative SM-DS's link to its Root.
pub struct Cascade {
    root: Endpoint,
    tls: Arc<rustls::ClientConfig>,
    event_ids: EventIdMode,
    timeout: Duration,
    /// This server's address: the `rspServerAddress` the Root hands to devices.
    our_address: String,
    store: Arc<dyn Backend>,
    /// Wakes the delete queue's worker when a delete was queued.
    wake: tokio::sync::Notify,
    pub metrics: queue::QueueMetrics,
}

/// What became of an ES15 call.
enum Answer {
    Done(FunctionResult),
    /// No SGP.22 answer: not connected, no answer in time, or not an SGP.22 envelope. The Root
    /// may or may not have acted.
    Unknown(String),
}

impl Cascade {
    /// `our_address` is this server's hostname, handed to the Root unless `cfg.address` says
    /// otherwise.
    pub fn new(
        cfg: &CascadeConfig,
        pki: &ServerPki,
        revocation: Arc<crate::revocation::Revocation>,
        our_address: String,
        store: Arc<dyn Backend>,
    ) -> Result<Self, String> {
        let bad = |e: String| format!("[cascade] root = {:?}: {e}", cfg.root);
        let mut root =
            Endpoint::parse(&format!("https://{}", cfg.root)).map_err(|e| bad(e.to_string()))?;
        if let Some(to) = &cfg.connect_to {
            root = root.with_connect_to(to).map_err(|e| bad(e.to_string()))?;
        }
        let our_address = cfg.address.clone().unwrap_or(our_address);
        crate::types::RspServerAddress::parse(&our_address).map_err(|e| {
            format!("[cascade] address {our_address:?} (what the Root hands to devices): {e}")
        })?;
        let mut chain = vec![pki.ds_tls.cert.clone()];
        chain.extend(pki.ds_tls.chain.iter().cloned());
        use crate::transport::tls;
        let verifier = tls::Sgp22ServerVerifier::new(pki.cis.clone(), Role::Dstls, None)
            .with_revocation(revocation, "ES15");
        let tls = tls::client_config_verifying(
            tls::provider(),
            verifier,
            Some((&chain, &pki.ds_tls.key)),
        )
        .map_err(|e| bad(e.to_string()))?;
        Ok(Cascade {
            root,
            tls: Arc::new(tls),
            event_ids: cfg.event_ids,
            timeout: cfg.timeout,
            our_address,
            store,
            wake: tokio::sync::Notify::new(),
            metrics: queue::QueueMetrics::default(),
        })
    }

    /// The Root, for logs and the admin view.
    pub fn root(&self) -> String {
        self.root.describe()
    }

    async fn call(&self, function: &str, body: &serde_json::Value) -> Answer {
        let attempt = async {
            let mut conn = Connection::open(&self.root, self.tls.clone(), self.timeout).await?;
            conn.call(function, body).await
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(r)) => Answer::Done(r),
            Ok(Err(e)) => Answer::Unknown(e.to_string()),
            Err(_) => Answer::Unknown(format!(
                "no answer from {} within {:?}",
                self.root.describe(),
                self.timeout
            )),
        }
    }

    /// ES12.RegisterEvent with `forwardingIndicator: true` (see the module docs).
    pub async fn register_forwarded(
        &self,
        peer: &PeerIdentity,
        req: RegisterEventRequest,
        now: i64,
    ) -> Result<(), Es12Error> {
        let root_event_id = match self.event_ids {
            EventIdMode::Same => req.event_id.clone(),
            // An execution error (1.2/4.2), as any other failure of this server's own.
            EventIdMode::Fresh => fresh_event_id()
                .map_err(|e| Es12Error::Store(crate::store::StoreError::Backend(e)))?,
        };
        let record = EventRecord {
            eid: req.eid,
            event_id: req.event_id.clone(),
            rsp_server_address: req.rsp_server_address,
            owner: peer.owner.clone(),
            owner_names: peer.names.clone(),
            forwarding_indicator: true,
            registered_at: now,
            forwarded: Some(Forwarded {
                root_event_id: root_event_id.clone(),
                confirmed: false,
            }),
            details: req.details.clone(),
        };
        match self.store.register_event(record).await {
            Ok(RegisterOutcome::Registered { .. }) => {}
            Ok(refused) => return Err(crate::es12::refusal(refused, &req.eid, &peer.owner)),
            Err(e) => return Err(Es12Error::Store(e)),
        }
        let mut body = requests::register_event_body(
            &self.our_address,
            req.eid.as_str(),
            root_event_id.as_str(),
            &self.our_address,
            Some(false),
        );
        // The Root's EventRecordV3 for this entry shows what the SM-DP+ gave.
        requests::with_event_details(&mut body, &req.details);
        let (eid, owner, event_id) = (&req.eid, &peer.owner, &req.event_id);
        match self.call(path::ES15_REGISTER_EVENT, &body).await {
            Answer::Done(r) if r.is_success() => {
                match self.store.confirm_forward(eid, event_id, owner).await {
                    Ok(true) => {
                        tracing::info!(eid = %LoggedEid(eid), event_id = %event_id, root_event_id = %root_event_id, root = %self.root(), "forwarded to the Root");
                        Ok(())
                    }
                    // Undone meanwhile (a restart's recovery on another node): its ES15 delete
                    // is queued; the SM-DP+ is told it failed, which is now the truth.
                    Ok(false) => Err(Es12Error::CascadeUnreachable(
                        "the forward was undone before the Root's answer arrived".into(),
                    )),
                    Err(e) => {
                        self.undo(eid, event_id, owner).await;
                        Err(Es12Error::Store(e))
                    }
                }
            }
            Answer::Done(r) => {
                let why = format!(
                    "{} {}",
                    r.code()
                        .unwrap_or_else(|| format!("HTTP {}", r.http_status)),
                    r.message.unwrap_or_default()
                );
                tracing::warn!(eid = %LoggedEid(eid), event_id = %event_id, root = %self.root(), answer = %why, "the Root refused a forwarded registration");
                self.metrics.refused();
                // The Root holds nothing: discard without queueing a delete (in `same` mode a
                // delete could remove another SM-DP+'s record that holds the same EventID).
                if let Err(e) = self.store.discard_forward(eid, event_id, owner).await {
                    tracing::error!(error = %e, "a refused forward could not be discarded; the restart recovery will");
                }
                Err(Es12Error::CascadeRefused(why))
            }
            Answer::Unknown(why) => {
                tracing::warn!(eid = %LoggedEid(eid), event_id = %event_id, root = %self.root(), error = %why, "the Root did not answer a forwarded registration");
                self.metrics.unreachable();
                self.undo(eid, event_id, owner).await;
                Err(Es12Error::CascadeUnreachable(why))
            }
        }
    }

    /// Deletes a record whose forward may have reached the Root: its ES15 delete is queued by
    /// the store with the local delete, and the queue's worker is woken.
    async fn undo(
        &self,
        eid: &pki_tool::Eid,
        event_id: &EventId,
        owner: &crate::identity::OwnerId,
    ) {
        if let Err(e) = self.store.delete_event(eid, event_id, owner).await {
            tracing::error!(error = %e, "a failed forward could not be undone yet; the restart recovery will");
        }
        self.deleted();
    }

    /// A forwarded record was deleted here (its ES15 delete is queued): deliver it now.
    pub fn deleted(&self) {
        self.wake.notify_one();
    }

    /// How long an unconfirmed record may belong to a forward still in flight (on any node of a
    /// shared store): the ES15 call's timeout plus 10 s for the store operations around it. Undoing
    /// one earlier would still be safe, only needlessly: its confirmation then finds the record
    /// gone and the SM-DP+ is told the registration failed, while the queued delete removes the
    /// Root's copy.
    fn in_flight_limit(&self) -> i64 {
        i64::try_from(self.timeout.as_secs()).unwrap_or(300) + 10
    }
}

/// A fresh EventID for the Root: 128 random bits, hex, prefixed so that operators can tell it.
fn fresh_event_id() -> Result<EventId, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("random number generator failed: {e}"))?;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    EventId::parse(&format!("fwd-{hex}")).map_err(|e| e.to_string())
}
