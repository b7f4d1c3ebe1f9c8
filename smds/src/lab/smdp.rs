//! The SM-DP+ side of ES12 for labs: TLS with a CERT.DP.TLS client certificate, and the
//! RegisterEvent / DeleteEvent bodies. Bodies are built from plain strings on purpose, so that a
//! test can send what a broken SM-DP+ would.

use super::LabError;
use crate::sgp22::requests::Field;
use crate::transport::tls;
use pki_tool::Role;
use pki_tool::hierarchy::{read_cert_chain, read_key};
use serde_json::{Value, json};
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

fn header(call_id: &str) -> Value {
    let mut h = serde_json::Map::new();
    h.insert(
        Field::FunctionRequesterIdentifier.json_name().into(),
        "smds-lab-client".into(),
    );
    h.insert(
        Field::FunctionCallIdentifier.json_name().into(),
        call_id.into(),
    );
    Value::Object(h)
}

/// A fresh functionCallIdentifier.
pub fn call_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn body(fields: &[(Field, Value)]) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(Field::Header.json_name().into(), header(&call_id()));
    for (f, v) in fields {
        m.insert(f.json_name().into(), v.clone());
    }
    Value::Object(m)
}

/// The ES12.RegisterEvent body.
pub fn register_event_body(
    eid: &str,
    event_id: &str,
    rsp_server_address: &str,
    forwarding: Option<bool>,
) -> Value {
    let mut fields = vec![
        (Field::Eid, json!(eid)),
        (Field::EventId, json!(event_id)),
        (Field::RspServerAddress, json!(rsp_server_address)),
    ];
    if let Some(f) = forwarding {
        fields.push((Field::ForwardingIndicator, Value::Bool(f)));
    }
    body(&fields)
}

/// The ES12.DeleteEvent body.
pub fn delete_event_body(eid: &str, event_id: &str) -> Value {
    body(&[(Field::Eid, json!(eid)), (Field::EventId, json!(event_id))])
}
