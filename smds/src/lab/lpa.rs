//! The LPA side of ES11 for labs: a discovery as lpac runs it (InitiateAuthentication,
//! ES10b.AuthenticateServer on the software eUICC, AuthenticateClient) over one new TLS
//! connection, with the SGP.22 paths and envelope of [`crate::sgp22`].

use super::LabError;
use super::https::{Connection, Endpoint};
use super::soft_euicc::SoftEuicc;
use crate::sgp22::requests::{Field, b64_encode};
use crate::sgp22::responses::{
    AuthenticateClientResponse, EventEntry, InitiateAuthenticationResponse,
};
use crate::sgp22::{Es11PathFamily, FunctionResult};
use crate::transport::tls;
use pki_tool::{Certificate, Role};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// How a discovery went.
#[derive(Debug, Clone)]
pub enum Discovery {
    Events {
        transaction_id: String,
        entries: Vec<EventEntry>,
    },
    /// The SM-DS answered Failed (at `step`).
    Failed {
        step: &'static str,
        result: FunctionResult,
    },
}

/// Options of one discovery.
pub struct DiscoveryOptions {
    pub endpoint: Endpoint,
    /// The address sent as `smdpAddress` (what an LPA was given, e.g. `host:port`).
    pub address: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub paths: Es11PathFamily,
    pub matching_id: Option<String>,
    pub timeout: Duration,
    pub now: i64,
}

/// The LPA's TLS configuration: no client certificate, CERT.DS.TLS checked against `cis`.
pub fn lpa_tls_config(cis: Vec<Certificate>) -> Result<Arc<rustls::ClientConfig>, LabError> {
    Ok(Arc::new(tls::client_config(cis, Role::Dstls, None, None)?))
}

fn object(fields: &[(Field, String)]) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(f, v)| (f.json_name().to_string(), Value::String(v.clone())))
            .collect(),
    )
}

/// How a discovery's two requests reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// Both over one new connection (euicc-go; any client that keeps its connection).
    Shared,
    /// A new TLS connection for each request, as lpac does (a curl handle per request, no
    /// shared session cache).
    OnePerRequest,
}

/// Runs InitiateAuthentication, AuthenticateServer on the software eUICC, and AuthenticateClient,
/// over one new TLS connection.
pub async fn discover(euicc: &SoftEuicc, opts: &DiscoveryOptions) -> Result<Discovery, LabError> {
    discover_over(euicc, opts, Connections::Shared).await
}

/// [`discover`], with the two requests on one connection or each on its own.
pub async fn discover_over(
    euicc: &SoftEuicc,
    opts: &DiscoveryOptions,
    connections: Connections,
) -> Result<Discovery, LabError> {
    let mut conn = Connection::open(&opts.endpoint, opts.tls.clone(), opts.timeout).await?;
    let challenge = SoftEuicc::challenge().map_err(|e| LabError::Asn1(e.to_string()))?;
    let info1 = euicc
        .euicc_info1()
        .map_err(|e| LabError::Asn1(e.to_string()))?;
    let initiate = object(&[
        (Field::SmdsAddress, opts.address.clone()),
        (Field::EuiccChallenge, b64_encode(&challenge)),
        (Field::EuiccInfo1, b64_encode(&info1)),
    ]);
    let path = opts.paths.initiate_authentication();
    let r = call(&mut conn, path, &initiate, opts.timeout).await?;
    if !r.is_success() {
        return Ok(Discovery::Failed {
            step: "InitiateAuthentication",
            result: r,
        });
    }
    let server = InitiateAuthenticationResponse::from_result(&r)?;
    let response = euicc.authenticate_server(
        &challenge,
        &server,
        &opts.address,
        opts.matching_id.as_deref(),
        opts.now,
    )?;
    let auth = object(&[
        (Field::TransactionId, server.transaction_id.to_hex()),
        (Field::AuthenticateServerResponse, b64_encode(&response)),
    ]);
    let path = opts.paths.authenticate_client();
    if connections == Connections::OnePerRequest {
        conn = Connection::open(&opts.endpoint, opts.tls.clone(), opts.timeout).await?;
    }
    let r = call(&mut conn, path, &auth, opts.timeout).await?;
    if !r.is_success() {
        return Ok(Discovery::Failed {
            step: "AuthenticateClient",
            result: r,
        });
    }
    let answer = AuthenticateClientResponse::from_result(&r)?;
    Ok(Discovery::Events {
        transaction_id: answer.transaction_id.to_hex(),
        entries: answer.event_entries,
    })
}

/// One ES11 call (no request header, as real LPAs send).
pub async fn call(
    conn: &mut Connection,
    path: &str,
    body: &Value,
    timeout: Duration,
) -> Result<FunctionResult, LabError> {
    tokio::time::timeout(timeout, conn.call(path, body))
        .await
        .map_err(|_| LabError::Timeout(format!("{path}: waiting {timeout:?} for an answer")))?
}
