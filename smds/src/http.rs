//! HTTP plumbing: the TLS listener (HTTP/1.1 and HTTP/2 by ALPN), routing of the SGP.22 paths,
//! transport-level refusals (404, 405, 415, 413, 400, 403), the JSON envelope headers, request ids,
//! metrics, connection limits, and graceful shutdown. Also the loopback admin listener
//! (/metrics, /admin/events). Function logic lives in `es12` (and `es11`).

use crate::config::Limits;
use crate::envelope::{self, StatusCode, codes};
use crate::es12::{self, Answer};
use crate::identity::PeerIdentity;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::tls::Sgp22ClientVerifier;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::Instrument;

pub type Body = Full<Bytes>;

/// Everything a request handler may use.
pub struct AppState {
    pub store: Store,
    pub es11: crate::es11::Es11,
    pub metrics: Metrics,
    pub verifier: Arc<Sgp22ClientVerifier>,
    pub limits: Limits,
    /// Replaces the system time for certificate validity, when set (tests).
    pub clock: Option<crate::tls::Clock>,
    next_request_id: AtomicU64,
}

impl AppState {
    pub fn new(
        store: Store,
        es11: crate::es11::Es11,
        verifier: Arc<Sgp22ClientVerifier>,
        limits: Limits,
        clock: Option<crate::tls::Clock>,
    ) -> Self {
        AppState {
            store,
            es11,
            metrics: Metrics::default(),
            verifier,
            limits,
            clock,
            next_request_id: AtomicU64::new(1),
        }
    }

    /// Now, by the injected clock or the system's.
    pub fn now(&self) -> i64 {
        self.clock
            .as_ref()
            .map_or_else(pki_tool::time::now, |c| c())
    }
}

/// The SGP.22 functions served on the TLS port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Es11InitiateAuthentication,
    Es11AuthenticateClient,
    Es12RegisterEvent,
    Es12DeleteEvent,
}

impl Function {
    pub fn route(path: &str) -> Option<Function> {
        match path {
            // lpac, euicc-go and euicc-rs use the ES9+ paths against an SM-DS; others the ES11 ones.
            "/gsma/rsp2/es9plus/initiateAuthentication"
            | "/gsma/rsp2/es11/initiateAuthentication" => {
                Some(Function::Es11InitiateAuthentication)
            }
            "/gsma/rsp2/es9plus/authenticateClient" | "/gsma/rsp2/es11/authenticateClient" => {
                Some(Function::Es11AuthenticateClient)
            }
            "/gsma/rsp2/es12/registerEvent" => Some(Function::Es12RegisterEvent),
            "/gsma/rsp2/es12/deleteEvent" => Some(Function::Es12DeleteEvent),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::Es11InitiateAuthentication => "ES11.InitiateAuthentication",
            Function::Es11AuthenticateClient => "ES11.AuthenticateClient",
            Function::Es12RegisterEvent => "ES12.RegisterEvent",
            Function::Es12DeleteEvent => "ES12.DeleteEvent",
        }
    }

    fn needs_client_certificate(self) -> bool {
        matches!(
            self,
            Function::Es12RegisterEvent | Function::Es12DeleteEvent
        )
    }
}

fn json_response(status: hyper::StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn refusal(status: hyper::StatusCode, code: StatusCode, message: &str) -> (Response<Body>, String) {
    (
        json_response(status, &envelope::failed(code, message)),
        format!("HTTP {}", status.as_u16()),
    )
}

fn is_json(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads a body of at most `limit` bytes within `timeout`.
async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, (Response<Body>, String)> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
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

/// Parses a JSON object body, saying what is wrong when it is not one.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("the request body must be a JSON object".into()),
        Err(e) => Err(format!("malformed JSON: {e}")),
    }
}

async fn dispatch(
    req: Request<Incoming>,
    state: &AppState,
    peer: Option<&PeerIdentity>,
    function: Option<Function>,
) -> (Response<Body>, String) {
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
    let peer = match (function.needs_client_certificate(), peer) {
        (true, None) => {
            return refusal(
                hyper::StatusCode::FORBIDDEN,
                codes::REQUESTER_NOT_ALLOWED,
                "ES12 requires a TLS client certificate (CERT.DP.TLS) chaining to a trusted CI",
            );
        }
        (_, p) => p,
    };
    if !is_json(&req) {
        return refusal(
            hyper::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            codes::REQUEST_INVALID,
            "Content-Type must be application/json",
        );
    }
    let body = match read_body(
        req,
        state.limits.max_body_bytes,
        state.limits.body_read_timeout(),
    )
    .await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    let object = match parse_object(&body) {
        Ok(o) => o,
        Err(msg) => return refusal(hyper::StatusCode::BAD_REQUEST, codes::REQUEST_INVALID, &msg),
    };
    let answer: Answer = match (function, peer) {
        (Function::Es11InitiateAuthentication, _) => {
            crate::es11::initiate_authentication(&state.es11, &object)
        }
        (Function::Es11AuthenticateClient, _) => {
            crate::es11::authenticate_client(&state.es11, &state.store, &object, state.now())
        }
        (Function::Es12RegisterEvent, Some(p)) => {
            es12::register_event(&state.store, p, &object, state.now()).await
        }
        (Function::Es12DeleteEvent, Some(p)) => es12::delete_event(&state.store, p, &object).await,
        (_, None) => Answer::failed(codes::REQUESTER_NOT_ALLOWED, "client certificate required"),
    };
    (
        json_response(hyper::StatusCode::OK, &answer.body),
        answer.outcome,
    )
}

/// Serves one request on the TLS port.
pub async fn handle(
    req: Request<Incoming>,
    state: Arc<AppState>,
    peer: Option<Arc<PeerIdentity>>,
) -> Result<Response<Body>, Infallible> {
    let id = state.next_request_id.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let function = Function::route(req.uri().path());
    let protocol = envelope::admin_protocol_for(
        req.headers()
            .get("x-admin-protocol")
            .and_then(|v| v.to_str().ok()),
    );
    let span = tracing::info_span!(
        "request",
        id,
        method = %req.method(),
        path = %req.uri().path(),
        peer = peer.as_ref().map(|p| p.owner.as_str()).unwrap_or("-")
    );
    let (mut resp, outcome) = dispatch(req, &state, peer.as_deref(), function)
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    let name = function.map_or("unknown", Function::name);
    state.metrics.record(name, &outcome, elapsed);
    span.in_scope(|| tracing::info!(function = name, %outcome, status = resp.status().as_u16(), micros = elapsed.as_micros() as u64, "done"));
    if let Ok(v) = HeaderValue::from_str(&protocol) {
        resp.headers_mut().insert("x-admin-protocol", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{id:016x}")) {
        resp.headers_mut().insert("x-request-id", v);
    }
    Ok(resp)
}

/// Accepts TLS connections until `shutdown` resolves, then drains in-flight requests (up to
/// `drain` long).
pub async fn serve_tls(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(state.limits.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            state.metrics.refused_connection();
            tracing::warn!(%remote, "connection limit reached; connection closed");
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let limits = state.limits.clone();
            let stream =
                match tokio::time::timeout(limits.tls_handshake_timeout(), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        state.metrics.tls_failure();
                        tracing::info!(%remote, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        state.metrics.tls_failure();
                        tracing::info!(%remote, "TLS handshake timed out");
                        return;
                    }
                };
            let peer = stream.get_ref().1.peer_certificates().and_then(|certs| {
                let (leaf, rest) = certs.split_first()?;
                let inter: Vec<Vec<u8>> = rest.iter().map(|c| c.as_ref().to_vec()).collect();
                state
                    .verifier
                    .identify(leaf.as_ref(), &inter, state.now())
                    .ok()
                    .map(Arc::new)
            });
            let io = TokioIo::new(stream);
            let svc_state = state.clone();
            let service =
                hyper::service::service_fn(move |req| handle(req, svc_state.clone(), peer.clone()));
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout())
                .max_headers(limits.max_headers)
                .max_buf_size(limits.max_header_bytes.max(8192))
                .keep_alive(true);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(64)
                .keep_alive_interval(Some(Duration::from_secs(30)))
                .keep_alive_timeout(Duration::from_secs(10));
            let conn = builder.serve_connection(io, service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within the drain time");
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

async fn admin(req: Request<Incoming>, state: Arc<AppState>) -> Result<Response<Body>, Infallible> {
    let text = |status: hyper::StatusCode, body: String, ctype: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
        r
    };
    if req.method() != Method::GET {
        return Ok(text(
            hyper::StatusCode::METHOD_NOT_ALLOWED,
            "GET only\n".into(),
            "text/plain",
        ));
    }
    let query = req.uri().query().unwrap_or("");
    Ok(match req.uri().path() {
        "/metrics" => text(
            hyper::StatusCode::OK,
            state.metrics.render(state.store.count().ok()),
            "text/plain; version=0.0.4",
        ),
        "/admin/events/count" => match state.store.count() {
            Ok(n) => json_response(hyper::StatusCode::OK, &serde_json::json!({ "count": n })),
            Err(e) => text(
                hyper::StatusCode::INTERNAL_SERVER_ERROR,
                format!("{e}\n"),
                "text/plain",
            ),
        },
        "/admin/events" => {
            let eid = match query_param(query, "eid")
                .map(pki_tool::Eid::parse)
                .transpose()
            {
                Ok(e) => e,
                Err(e) => {
                    return Ok(text(
                        hyper::StatusCode::BAD_REQUEST,
                        format!("eid: {e}\n"),
                        "text/plain",
                    ));
                }
            };
            let limit = query_param(query, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(1000usize);
            match state.store.list(eid.as_ref(), limit) {
                Ok(events) => json_response(
                    hyper::StatusCode::OK,
                    &serde_json::json!({ "events": events }),
                ),
                Err(e) => text(
                    hyper::StatusCode::INTERNAL_SERVER_ERROR,
                    format!("{e}\n"),
                    "text/plain",
                ),
            }
        }
        _ => text(
            hyper::StatusCode::NOT_FOUND,
            "not found\n".into(),
            "text/plain",
        ),
    })
}

/// The loopback admin listener: GET /metrics, /admin/events[?eid=&limit=], /admin/events/count.
pub async fn serve_admin(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => match r { Ok((t, _)) => t, Err(_) => continue },
            () = &mut shutdown => break,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| admin(req, state.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}
