//! The SM-DP+ side of ES12 for labs: TLS with a CERT.DP.TLS client certificate, and the
//! RegisterEvent / DeleteEvent bodies. Bodies are built from plain strings on purpose, so that a
//! test can send what a broken SM-DP+ would.

use super::LabError;
use crate::sgp22::requests;
use crate::transport::tls;
use pki_tool::Role;
use pki_tool::hierarchy::{read_cert_chain, read_key};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// The TLS configuration of an SM-DP+ calling ES12: its CERT.DP.TLS (a PEM file may carry the
/// SubCA certificates above it after it, as in SGP.26 v3 Variants A/B/C) and key, trusting `cas`
/// for the SM-DS's CERT.DS.TLS.
pub fn smdp_tls_config(
    cert: &Path,
    key: &Path,
    cas: &[impl AsRef<Path>],
) -> Result<Arc<rustls::ClientConfig>, LabError> {
    let certs = read_cert_chain(cert).map_err(|e| LabError::Credentials(e.to_string()))?;
    if let Some(first) = certs.first()
        && first
            .extension(pki_tool::oid::known::EXT_EXTENDED_KEY_USAGE)
            .is_none()
    {
        return Err(LabError::Credentials(format!(
            "{}: not a TLS client certificate (a CERT.DP.TLS has EKU clientAuth and policy 2.23.146.1.2.1.3)",
            cert.display()
        )));
    }
    let key = read_key(key).map_err(|e| LabError::Credentials(e.to_string()))?;
    let cfg = tls::client_config(
        super::https::read_cas(cas)?,
        Role::Dstls,
        Some((&certs, &key)),
        None,
    )?;
    Ok(Arc::new(cfg))
}

/// The functionRequesterIdentifier the lab's SM-DP+ sends.
const REQUESTER: &str = "smds-lab-client";

/// A fresh functionCallIdentifier.
pub fn call_id() -> String {
    requests::call_id()
}

/// The ES12.RegisterEvent body.
pub fn register_event_body(
    eid: &str,
    event_id: &str,
    rsp_server_address: &str,
    forwarding: Option<bool>,
) -> Value {
    requests::register_event_body(REQUESTER, eid, event_id, rsp_server_address, forwarding)
}

/// The ES12.DeleteEvent body.
pub fn delete_event_body(eid: &str, event_id: &str) -> Value {
    requests::delete_event_body(REQUESTER, eid, event_id)
}
