//! The LPA side of ES11 for labs: a discovery as lpac runs it (InitiateAuthentication,
//! ES10b.AuthenticateServer on the software eUICC, AuthenticateClient) over one new TLS
//! connection, with the SGP.22 paths and envelope of [`crate::sgp22`].

use super::LabError;
use super::https::{Connection, Endpoint};
use super::soft_euicc::SoftEuicc;
use crate::sgp22::asn1_binding;
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
        /// The SM-DS answered with a signed list (v3), which the eUICC verified.
        signed: bool,
        /// The Event Checking identifier in that list, for CheckEvent.
        ec_id: Option<Vec<u8>>,
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
    verified(euicc, &server, AuthenticateClientResponse::from_result(&r)?)
}

/// The events of an AuthenticateClient answer; a v3 answer's list only once the eUICC has
/// verified it (ES10b.VerifySmdsResponse).
fn verified(
    euicc: &SoftEuicc,
    server: &InitiateAuthenticationResponse,
    answer: AuthenticateClientResponse,
) -> Result<Discovery, LabError> {
    if let Some(signed) = &answer.signed {
        euicc.verify_smds_response(signed, server)?;
    }
    Ok(Discovery::Events {
        transaction_id: answer.transaction_id.to_hex(),
        signed: answer.signed.is_some(),
        ec_id: answer.ec_id(),
        entries: answer.event_entries,
    })
}

/// A failure on the ASN.1 binding, in the form the JSON binding's failures take: no subject or
/// reason code (the binding has none), the INTEGER alternative or the HTTP refusal in the message.
fn asn1_failure(step: &'static str, http_status: u16, message: String) -> Discovery {
    Discovery::Failed {
        step,
        result: FunctionResult {
            http_status,
            status: "Failed".into(),
            subject_code: None,
            reason_code: None,
            message: Some(message),
            body: Value::Null,
        },
    }
}

/// POSTs one ASN.1-binding request: the DER answer, or the failure an HTTP refusal is.
async fn post_asn1(
    conn: &mut Connection,
    step: &'static str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Result<bytes::Bytes, Discovery>, LabError> {
    let raw = tokio::time::timeout(
        timeout,
        conn.post_raw(
            crate::sgp22::paths::path::ASN1,
            asn1_binding::CONTENT_TYPE,
            body,
        ),
    )
    .await
    .map_err(|_| LabError::Timeout(format!("{step}: waiting {timeout:?} for an answer")))??;
    if raw.status != 200 {
        let text = String::from_utf8_lossy(&raw.body).trim().to_string();
        return Ok(Err(asn1_failure(
            step,
            raw.status,
            format!("HTTP {}: {text}", raw.status),
        )));
    }
    Ok(Ok(raw.body))
}

/// [`discover`] on the ASN.1 binding (`POST /gsma/rsp2/asn1`): the same two functions and the
/// same eUICC, DER instead of JSON.
pub async fn discover_asn1(
    euicc: &SoftEuicc,
    opts: &DiscoveryOptions,
) -> Result<Discovery, LabError> {
    let bad = |e: asn1_binding::BindingError| LabError::Asn1(e.to_string());
    let mut conn = Connection::open(&opts.endpoint, opts.tls.clone(), opts.timeout).await?;
    let challenge = SoftEuicc::challenge().map_err(|e| LabError::Asn1(e.to_string()))?;
    let info1 = euicc
        .euicc_info1()
        .map_err(|e| LabError::Asn1(e.to_string()))?;
    let step = "InitiateAuthentication";
    let body = asn1_binding::initiate_authentication_request(&challenge, &opts.address, &info1);
    let der = match post_asn1(&mut conn, step, body, opts.timeout).await? {
        Ok(der) => der,
        Err(failed) => return Ok(failed),
    };
    let server = match asn1_binding::parse_initiate_authentication_response(&der).map_err(bad)? {
        Ok(server) => server,
        Err(v) => {
            let name = asn1_binding::initiate_authentication_error_name(v);
            return Ok(asn1_failure(
                step,
                200,
                format!("initiateAuthenticationError {v} ({name})"),
            ));
        }
    };
    let response = euicc.authenticate_server(
        &challenge,
        &server,
        &opts.address,
        opts.matching_id.as_deref(),
        opts.now,
    )?;
    let step = "AuthenticateClient";
    let body = asn1_binding::authenticate_client_request(&server.transaction_id, &response);
    let der = match post_asn1(&mut conn, step, body, opts.timeout).await? {
        Ok(der) => der,
        Err(failed) => return Ok(failed),
    };
    match asn1_binding::parse_authenticate_client_response(&der).map_err(bad)? {
        Ok(answer) => verified(euicc, &server, answer),
        Err(v) => {
            let name = asn1_binding::authenticate_client_error_name(v);
            Ok(asn1_failure(
                step,
                200,
                format!("authenticateClientError {v} ({name})"),
            ))
        }
    }
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
