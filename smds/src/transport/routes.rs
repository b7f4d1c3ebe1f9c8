//! Routing of the SGP.22 paths on the TLS port: transport-level refusals (404, 405, 415, 413,
//! 400, 403), reading and parsing the body into the function's typed request, calling the
//! function handler, and writing the JSON envelope with `X-Admin-Protocol` and a request id.
//! Every request is logged and counted here, once.

use super::AppState;
use super::metrics::Outcome;
use crate::es11;
use crate::es12;
use crate::es15;
use crate::identity::{PeerIdentity, PeerRole};
use crate::sgp22::asn1_binding::{self, Asn1Call};
use crate::sgp22::envelope;
use crate::sgp22::paths::path;
use crate::sgp22::requests::{
    self, AuthenticateClientRequest, CheckEventRequest, DeleteEventRequest,
    InitiateAuthenticationRequest, RegisterEventRequest,
};
use crate::sgp22::{Function, FunctionError, StatusCode, codes};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response};
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

pub type Body = Full<Bytes>;

pub(super) fn json_response(status: hyper::StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A refusal before any function ran: an HTTP status with an SGP.22 envelope.
fn refusal(
    status: hyper::StatusCode,
    code: StatusCode,
    message: &str,
) -> (Response<Body>, Outcome) {
    (
        json_response(status, &envelope::failed(code, message)),
        Outcome::Http(status.as_u16()),
    )
}

/// A function's result in the envelope (always HTTP 200).
fn answer<E: FunctionError>(
    state: &AppState,
    result: Result<Map<String, Value>, E>,
) -> (Response<Body>, Outcome) {
    if let Err(reason) = result.as_ref().map_err(E::refusal_reason)
        && let Some(reason) = reason
    {
        state.metrics.refusal(reason);
    }
    match result {
        Ok(fields) => (
            json_response(hyper::StatusCode::OK, &envelope::success(fields)),
            Outcome::Success,
        ),
        Err(e) => {
            let code = e.status();
            (
                json_response(
                    hyper::StatusCode::OK,
                    &envelope::failed(code, &e.to_string()),
                ),
                Outcome::Failed(code),
            )
        }
    }
}

fn is_json(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// The request's Content-Length, when it has a valid one.
fn declared_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Reads a body (of `declared` length, if the client said) of at most `limit` bytes within
/// `timeout`.
async fn read_body(
    req: Request<Incoming>,
    declared: Option<u64>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, (Response<Body>, Outcome)> {
    let too_large = || {
        refusal(
            hyper::StatusCode::PAYLOAD_TOO_LARGE,
            codes::REQUEST_INVALID,
            &format!("request body larger than {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, Limited::new(req.into_body(), limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(e)) => Err(refusal(
            hyper::StatusCode::BAD_REQUEST,
            codes::REQUEST_INVALID,
            &format!("cannot read the request body: {e}"),
        )),
        Err(_) => Err(refusal(
            hyper::StatusCode::REQUEST_TIMEOUT,
            codes::REQUEST_INVALID,
            "the request body was not received in time",
        )),
    }
}

/// Calls the function with its typed request.
async fn call(
    function: Function,
    body: &Map<String, Value>,
    state: &Arc<AppState>,
    peer: Option<&PeerIdentity>,
) -> (Response<Body>, Outcome) {
    let store = state.store.as_ref();
    if let (Some(wanted), Some(p)) = (function.caller(), peer)
        && p.role != wanted
    {
        return refusal(
            hyper::StatusCode::FORBIDDEN,
            codes::REQUESTER_NOT_ALLOWED,
            &match wanted {
                PeerRole::SmDp => format!(
                    "{} is for SM-DP+ certificates (CERT.DP.TLS); this one is an SM-DS's (CERT.DS.TLS): an SM-DS calls ES15",
                    function.name()
                ),
                PeerRole::SmDs => format!(
                    "{} is for SM-DS certificates (CERT.DS.TLS); this one is an SM-DP+'s (CERT.DP.TLS): an SM-DP+ calls ES12",
                    function.name()
                ),
            },
        );
    }
    match (function, peer) {
        (Function::Es11InitiateAuthentication, _) => answer(
            state,
            async {
                let req = InitiateAuthenticationRequest::parse(body)?;
                es11::initiate_authentication(state.es11(), req, state.now())
                    .await
                    .map(|r| r.to_fields())
            }
            .await,
        ),
        (Function::Es11AuthenticateClient, _) => answer(
            state,
            async {
                let req = AuthenticateClientRequest::parse(body)?;
                es11::authenticate_client(state.es11(), state.store.clone(), req, state.now())
                    .await
                    .map(|r| r.to_fields())
            }
            .await,
        ),
        (Function::Es11CheckEvent, _) => answer(
            state,
            async {
                let req = CheckEventRequest::parse(body)?;
                es11::check_event(&state.es11(), store, req, state.now())
                    .await
                    .map(crate::sgp22::responses::check_event_fields)
            }
            .await,
        ),
        (Function::Es12RegisterEvent, Some(p)) => answer(
            state,
            async {
                let req = RegisterEventRequest::parse(body)?;
                es12::register_event(store, state.cascade.as_deref(), p, req, state.now())
                    .await
                    .map(|()| state.event_registered())
            }
            .await,
        ),
        (Function::Es12DeleteEvent, Some(p)) => answer(
            state,
            async {
                let req = DeleteEventRequest::parse(body)?;
                es12::delete_event(store, state.cascade.as_deref(), p, req)
                    .await
                    .map(|()| Map::new())
            }
            .await,
        ),
        (Function::Es15RegisterEvent, Some(p)) => answer(
            state,
            async {
                let req = RegisterEventRequest::parse(body)?;
                es15::register_event(store, p, req, state.now())
                    .await
                    .map(|()| state.event_registered())
            }
            .await,
        ),
        (Function::Es15DeleteEvent, Some(p)) => answer(
            state,
            async {
                let req = DeleteEventRequest::parse(body)?;
                es15::delete_event(store, p, req).await.map(|()| Map::new())
            }
            .await,
        ),
        (
            Function::Es12RegisterEvent
            | Function::Es12DeleteEvent
            | Function::Es15RegisterEvent
            | Function::Es15DeleteEvent,
            None,
        ) => refusal(
            hyper::StatusCode::FORBIDDEN,
            codes::REQUESTER_NOT_ALLOWED,
            "client certificate required",
        ),
    }
}

/// Reads a body of at most `limit` bytes, its share of the server-wide budget taken before a byte
/// of it is read and held (the permit returned) until the answer is built.
async fn read_budgeted(
    req: Request<Incoming>,
    state: &AppState,
    limit: usize,
) -> Result<(Bytes, tokio::sync::OwnedSemaphorePermit), (Response<Body>, Outcome)> {
    let declared = declared_length(&req);
    let share = declared
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(limit)
        .clamp(1, limit.max(1));
    let Ok(budget) = state
        .body_budget
        .clone()
        .try_acquire_many_owned(u32::try_from(share).unwrap_or(u32::MAX))
    else {
        state.metrics.refusal("body_budget");
        return Err(refusal(
            hyper::StatusCode::SERVICE_UNAVAILABLE,
            codes::EXECUTION_ERROR,
            "the server is busy reading other requests; try again shortly",
        ));
    };
    let body = read_body(req, declared, limit, state.limits.body_read_timeout()).await?;
    Ok((body, budget))
}

fn plain(status: hyper::StatusCode, message: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn der_response(body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(asn1_binding::CONTENT_TYPE),
    );
    r
}

/// A function's failure on the ASN.1 binding: its INTEGER alternative when the response type
/// names one (HTTP 200), else an HTTP error with the message.
fn asn1_failure<E: FunctionError>(
    state: &AppState,
    e: &E,
    der: Option<Vec<u8>>,
) -> (Response<Body>, Outcome) {
    if let Some(reason) = e.refusal_reason() {
        state.metrics.refusal(reason);
    }
    let code = e.status();
    let resp = match der {
        Some(body) => der_response(body),
        None if code == codes::EXECUTION_ERROR => {
            plain(hyper::StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
        None => plain(hyper::StatusCode::BAD_REQUEST, &e.to_string()),
    };
    (resp, Outcome::Failed(code))
}

/// The per-address limit on ES11.CheckEvent (either binding): `None` when this call may go on,
/// else the 429 answer, its body made by `body` (the binding's form of a refusal).
fn check_event_limited(
    state: &AppState,
    client: std::net::IpAddr,
    body: impl FnOnce(hyper::StatusCode, &str) -> Response<Body>,
) -> Option<(Response<Body>, Outcome)> {
    if state.check_event_rate.allow(client) {
        return None;
    }
    state.metrics.refusal("check_event_rate");
    let status = hyper::StatusCode::TOO_MANY_REQUESTS;
    let mut r = body(
        status,
        "too many CheckEvent calls from this address; try again later",
    );
    r.headers_mut()
        .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    Some((r, Outcome::Http(status.as_u16())))
}

/// `POST /gsma/rsp2/asn1`: ES11 on the ASN.1 binding (see [`asn1_binding`]). Returns the function
/// the body called, once known, for the log and the metrics.
async fn dispatch_asn1(
    req: Request<Incoming>,
    state: &Arc<AppState>,
    client: std::net::IpAddr,
) -> (Response<Body>, Outcome, Option<Function>) {
    let http = |status: hyper::StatusCode, message: &str| {
        (plain(status, message), Outcome::Http(status.as_u16()), None)
    };
    if req.method() != Method::POST {
        let (mut r, o, f) = http(
            hyper::StatusCode::METHOD_NOT_ALLOWED,
            "SGP.22 functions are called with POST",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return (r, o, f);
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !content_type.is_some_and(|c| c.eq_ignore_ascii_case(asn1_binding::CONTENT_TYPE)) {
        return http(
            hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/x-gsma-rsp-asn1",
        );
    }
    let limit = Function::Es11AuthenticateClient
        .max_body_bytes()
        .min(state.limits.max_body_bytes);
    let (body, _budget) = match read_budgeted(req, state, limit).await {
        Ok(b) => b,
        Err((r, o)) => return (r, o, None),
    };
    match asn1_binding::parse_request(&body) {
        Err(e) => http(hyper::StatusCode::BAD_REQUEST, &e.to_string()),
        Ok(Asn1Call::InitiateAuthentication(req)) => {
            let function = Some(Function::Es11InitiateAuthentication);
            match es11::initiate_authentication(state.es11(), req, state.now()).await {
                Ok(r) => (
                    der_response(asn1_binding::initiate_authentication_ok(&r)),
                    Outcome::Success,
                    function,
                ),
                Err(e) => {
                    let der = asn1_binding::initiate_authentication_error(e.status());
                    let (r, o) = asn1_failure(state, &e, der);
                    (r, o, function)
                }
            }
        }
        Ok(Asn1Call::AuthenticateClient(req)) => {
            let function = Some(Function::Es11AuthenticateClient);
            match es11::authenticate_client(state.es11(), state.store.clone(), req, state.now())
                .await
            {
                Ok(r) => (
                    der_response(asn1_binding::authenticate_client_ok(&r)),
                    Outcome::Success,
                    function,
                ),
                Err(e) => {
                    let der = Some(asn1_binding::authenticate_client_error(e.status()));
                    let (r, o) = asn1_failure(state, &e, der);
                    (r, o, function)
                }
            }
        }
        Ok(Asn1Call::CheckEvent(req)) => {
            let function = Some(Function::Es11CheckEvent);
            if let Some((r, o)) = check_event_limited(state, client, plain) {
                return (r, o, function);
            }
            match es11::check_event(&state.es11(), state.store.as_ref(), req, state.now()).await {
                Ok(pending) => (
                    der_response(asn1_binding::check_event_ok(pending)),
                    Outcome::Success,
                    function,
                ),
                Err(e) => {
                    let (r, o) = asn1_failure(state, &e, Some(asn1_binding::check_event_error()));
                    (r, o, function)
                }
            }
        }
    }
}

async fn dispatch(
    req: Request<Incoming>,
    state: &Arc<AppState>,
    peer: Option<&PeerIdentity>,
    function: Option<Function>,
) -> (Response<Body>, Outcome) {
    let Some(function) = function else {
        return refusal(
            hyper::StatusCode::NOT_FOUND,
            codes::REQUEST_INVALID,
            "unknown path",
        );
    };
    if req.method() != Method::POST {
        let (mut r, o) = refusal(
            hyper::StatusCode::METHOD_NOT_ALLOWED,
            codes::REQUEST_INVALID,
            "SGP.22 functions are called with POST",
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return (r, o);
    }
    if function.needs_client_certificate() && peer.is_none() {
        return refusal(
            hyper::StatusCode::FORBIDDEN,
            codes::REQUESTER_NOT_ALLOWED,
            "ES12 requires a TLS client certificate (CERT.DP.TLS) chaining to a trusted CI",
        );
    }
    if !is_json(&req) {
        return refusal(
            hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::REQUEST_INVALID,
            "Content-Type must be application/json",
        );
    }
    let limit = function.max_body_bytes().min(state.limits.max_body_bytes);
    let (body, _budget) = match read_budgeted(req, state, limit).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match requests::parse_object(&body) {
        Ok(object) => call(function, &object, state, peer).await,
        Err(e) => refusal(
            hyper::StatusCode::BAD_REQUEST,
            codes::REQUEST_INVALID,
            &e.to_string(),
        ),
    }
}

/// Serves one request on the TLS port.
pub async fn handle(
    req: Request<Incoming>,
    state: Arc<AppState>,
    peer: Option<Arc<PeerIdentity>>,
    client: std::net::SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let id = state.request_id();
    let started = Instant::now();
    let asn1 = req.uri().path() == path::ASN1;
    let function = Function::route(req.uri().path());
    let protocol = envelope::admin_protocol_for(
        req.headers()
            .get("x-admin-protocol")
            .and_then(|v| v.to_str().ok()),
    );
    let span = tracing::info_span!(
        "request",
        id,
        %client,
        method = %req.method(),
        path = %req.uri().path(),
        peer = peer.as_ref().map_or("-", |p| p.owner.as_str())
    );
    let limited = match function {
        Some(Function::Es11CheckEvent) => {
            check_event_limited(&state, client.ip(), |status, message| {
                refusal(status, codes::EXECUTION_ERROR, message).0
            })
        }
        _ => None,
    };
    let (mut resp, outcome, function) = if let Some((r, o)) = limited {
        (r, o, function)
    } else if asn1 {
        dispatch_asn1(req, &state, client.ip())
            .instrument(span.clone())
            .await
    } else {
        let (resp, outcome) = dispatch(req, &state, peer.as_deref(), function)
            .instrument(span.clone())
            .await;
        (resp, outcome, function)
    };
    let elapsed = started.elapsed();
    state.metrics.record(function, outcome, elapsed);
    let name = function.map_or(super::metrics::UNKNOWN_FUNCTION, Function::name);
    span.in_scope(|| tracing::info!(function = name, %outcome, status = resp.status().as_u16(), micros = elapsed.as_micros() as u64, "done"));
    if let Ok(v) = HeaderValue::from_str(&protocol) {
        resp.headers_mut().insert("x-admin-protocol", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{id:016x}")) {
        resp.headers_mut().insert("x-request-id", v);
    }
    Ok(resp)
}
