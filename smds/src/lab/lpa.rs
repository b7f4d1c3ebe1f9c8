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
    /// A push-token registration (see [`SoftEuicc::push_registration`]) the SM-DS confirmed in
    /// a signed `pushServiceRegistrationResult`, which the eUICC verified.
    PushRegistered {
        transaction_id: String,
        /// When to register again (Unix seconds), as the SM-DS said.
        refresh_time: Option<i64>,
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
    discover_with(euicc, opts, connections, Binding::Json).await
}

/// [`discover`] on the ASN.1 binding (`POST /gsma/rsp2/asn1`): the same two functions and the
/// same eUICC, DER instead of JSON.
pub async fn discover_asn1(
    euicc: &SoftEuicc,
    opts: &DiscoveryOptions,
) -> Result<Discovery, LabError> {
    discover_with(euicc, opts, Connections::Shared, Binding::Asn1).await
}

/// The binding a discovery speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binding {
    /// JSON on `opts.paths`.
    Json,
    /// DER on `/gsma/rsp2/asn1`.
    Asn1,
}

/// One discovery: InitiateAuthentication, the eUICC's AuthenticateServer, AuthenticateClient,
/// and for a v3 answer the eUICC's VerifySmdsResponse.
async fn discover_with(
    euicc: &SoftEuicc,
    opts: &DiscoveryOptions,
    connections: Connections,
    binding: Binding,
) -> Result<Discovery, LabError> {
    let mut conn = Connection::open(&opts.endpoint, opts.tls.clone(), opts.timeout).await?;
    let challenge = SoftEuicc::challenge().map_err(|e| LabError::Asn1(e.to_string()))?;
    let info1 = euicc
        .euicc_info1()
        .map_err(|e| LabError::Asn1(e.to_string()))?;
    let server = match initiate(&mut conn, binding, opts, &challenge, &info1).await? {
        Ok(server) => server,
        Err(failed) => return Ok(failed),
    };
    let response = euicc.authenticate_server(
        &challenge,
        &server,
        &opts.address,
        opts.matching_id.as_deref(),
        opts.now,
    )?;
    if connections == Connections::OnePerRequest {
        conn = Connection::open(&opts.endpoint, opts.tls.clone(), opts.timeout).await?;
    }
    match authenticate(&mut conn, binding, opts, &server.transaction_id, &response).await? {
        Ok(answer) => verified(euicc, &server, answer),
        Err(failed) => Ok(failed),
    }
}

/// InitiateAuthentication on `binding`: the server's answer, or the failure to report.
async fn initiate(
    conn: &mut Connection,
    binding: Binding,
    opts: &DiscoveryOptions,
    challenge: &[u8; 16],
    info1: &[u8],
) -> Result<Result<InitiateAuthenticationResponse, Discovery>, LabError> {
    const STEP: &str = "InitiateAuthentication";
    match binding {
        Binding::Json => {
            let body = object(&[
                (Field::SmdsAddress, opts.address.clone()),
                (Field::EuiccChallenge, b64_encode(challenge)),
                (Field::EuiccInfo1, b64_encode(info1)),
            ]);
            let path = opts.paths.initiate_authentication();
            let r = call(conn, path, &body, opts.timeout).await?;
            if !r.is_success() {
                return Ok(Err(Discovery::Failed {
                    step: STEP,
                    result: r,
                }));
            }
            Ok(Ok(InitiateAuthenticationResponse::from_result(&r)?))
        }
        Binding::Asn1 => {
            let body =
                asn1_binding::initiate_authentication_request(challenge, &opts.address, info1);
            let der = match post_asn1(conn, STEP, body, opts.timeout).await? {
                Ok(der) => der,
                Err(failed) => return Ok(Err(failed)),
            };
            Ok(
                match asn1_binding::parse_initiate_authentication_response(&der)
                    .map_err(binding_error)?
                {
                    Ok(server) => Ok(server),
                    Err(v) => Err(asn1_failure(
                        STEP,
                        200,
                        format!(
                            "initiateAuthenticationError {v} ({})",
                            asn1_binding::initiate_authentication_error_name(v)
                        ),
                    )),
                },
            )
        }
    }
}

/// AuthenticateClient on `binding`: the server's answer, or the failure to report.
async fn authenticate(
    conn: &mut Connection,
    binding: Binding,
    opts: &DiscoveryOptions,
    transaction_id: &crate::asn1::TransactionId,
    response: &[u8],
) -> Result<Result<AuthenticateClientResponse, Discovery>, LabError> {
    const STEP: &str = "AuthenticateClient";
    match binding {
        Binding::Json => {
            let body = object(&[
                (Field::TransactionId, transaction_id.to_hex()),
                (Field::AuthenticateServerResponse, b64_encode(response)),
            ]);
            let path = opts.paths.authenticate_client();
            let r = call(conn, path, &body, opts.timeout).await?;
            if !r.is_success() {
                return Ok(Err(Discovery::Failed {
                    step: STEP,
                    result: r,
                }));
            }
            Ok(Ok(AuthenticateClientResponse::from_result(&r)?))
        }
        Binding::Asn1 => {
            let body = asn1_binding::authenticate_client_request(transaction_id, response);
            let der = match post_asn1(conn, STEP, body, opts.timeout).await? {
                Ok(der) => der,
                Err(failed) => return Ok(Err(failed)),
            };
            Ok(
                match asn1_binding::parse_authenticate_client_response(&der)
                    .map_err(binding_error)?
                {
                    Ok(answer) => Ok(answer),
                    Err(v) => Err(asn1_failure(
                        STEP,
                        200,
                        format!(
                            "authenticateClientError {v} ({})",
                            asn1_binding::authenticate_client_error_name(v)
                        ),
                    )),
                },
            )
        }
    }
}

fn binding_error(e: asn1_binding::BindingError) -> LabError {
    LabError::Asn1(e.to_string())
}

/// The events of an AuthenticateClient answer; a v3 answer's list only once the eUICC has
/// verified it (ES10b.VerifySmdsResponse).
fn verified(
    euicc: &SoftEuicc,
    server: &InitiateAuthenticationResponse,
    answer: AuthenticateClientResponse,
) -> Result<Discovery, LabError> {
    let mut ec_id = None;
    if let Some(signed) = &answer.signed {
        euicc.verify_smds_response(signed, server)?;
        let view = crate::asn1::parse_smds_signed2(&signed.smds_signed2)
            .map_err(|e| LabError::Asn1(e.to_string()))?;
        if view.push_registration_result {
            return Ok(Discovery::PushRegistered {
                transaction_id: answer.transaction_id.to_hex(),
                refresh_time: view.push_service_refresh_time,
            });
        }
        ec_id = view.ec_id;
    }
    Ok(Discovery::Events {
        transaction_id: answer.transaction_id.to_hex(),
        signed: answer.signed.is_some(),
        ec_id,
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
