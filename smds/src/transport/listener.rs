//! The TLS listener: admits connections through the connection table ([`super::connections`]:
//! per-address limit, eviction of the longest-idle connection when nearly full), runs the TLS
//! handshake under its timeout, takes the client identity the handshake established, and serves
//! HTTP/1.1 or HTTP/2 (by ALPN) while enforcing the first-request deadline, the idle timeout and
//! the maximum age; at shutdown it drains. Refusals are counted and logged as one summary line
//! per interval, never one line per connection.

use super::AppState;
use super::connections::{CloseReason, ConnState, ConnectionLimits, Connections, Refusal, Verdict};
use super::routes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How long a connection told to close may take to finish what is in flight.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// HTTP/2 flow-control windows for request data: 16 KiB per stream (an ES11 body is a few KiB),
/// 64 KiB per connection (the protocol's initial value).
const H2_STREAM_WINDOW: u32 = 16 * 1024;
const H2_CONNECTION_WINDOW: u32 = 65_535;
/// One summary log line per this interval while connections are being refused.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Counts refusals and logs them: the first at once, then one summary line per interval.
struct RefusalLog {
    last: Option<Instant>,
    full: u64,
    per_address: u64,
}

impl RefusalLog {
    fn new() -> Self {
        RefusalLog {
            last: None,
            full: 0,
            per_address: 0,
        }
    }

    fn note(&mut self, r: Refusal) {
        match r {
            Refusal::Full => self.full += 1,
            Refusal::PerAddress => self.per_address += 1,
        }
        if self
            .last
            .is_none_or(|t| t.elapsed() >= REFUSAL_LOG_INTERVAL)
        {
            tracing::warn!(
                full = self.full,
                per_address = self.per_address,
                "connections refused since the last report (every slot busy, or an address holding its share)"
            );
            self.last = Some(Instant::now());
            self.full = 0;
            self.per_address = 0;
        }
    }
}

/// Marks a request as in flight on its connection for as long as it lives.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn new(state: Arc<ConnState>) -> Self {
        state.request_started();
        InFlight(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
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
    let connections = Connections::new(ConnectionLimits::from(&state.limits));
    let mut refusals = RefusalLog::new();
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
        let slot = match connections.admit(remote.ip()) {
            Ok((slot, evicted)) => {
                if evicted {
                    state.metrics.connection_closed("evicted");
                }
                slot
            }
            Err(r) => {
                state.metrics.refused_connection();
                if r == Refusal::PerAddress {
                    state.metrics.refusal("per_address");
                }
                refusals.note(r);
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let limits = *connections.limits();
        tokio::spawn(async move {
            let conn_state = slot.state.clone();
            let handshake =
                tokio::time::timeout(state.limits.tls_handshake_timeout(), acceptor.accept(tcp));
            let stream = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        state.metrics.tls_failure();
                        tracing::debug!(%remote, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        state.metrics.tls_failure();
                        tracing::debug!(%remote, "TLS handshake timed out");
                        return;
                    }
                },
                () = conn_state.close.notified() => return,
            };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| state.verifier.take_identity(certs, state.now()))
                .map(Arc::new);
            serve_http(stream, state, peer, conn_state, limits, remote).await;
            drop(slot);
        });
    }
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    let left = connections.drain(drain).await;
    if left > 0 {
        tracing::warn!(
            connections = left,
            "some connections did not finish within the drain time"
        );
    }
}

/// Serves HTTP on one TLS connection until it ends or a deadline closes it.
async fn serve_http(
    stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    state: Arc<AppState>,
    peer: Option<Arc<crate::identity::PeerIdentity>>,
    conn_state: Arc<ConnState>,
    limits: ConnectionLimits,
    remote: std::net::SocketAddr,
) {
    let io = TokioIo::new(stream);
    let svc_state = state.clone();
    let svc_conn = conn_state.clone();
    let service = hyper::service::service_fn(move |req| {
        let in_flight = InFlight::new(svc_conn.clone());
        let answer = routes::handle(req, svc_state.clone(), peer.clone(), remote);
        async move {
            let r = answer.await;
            drop(in_flight);
            r
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.limits.header_read_timeout())
        .max_headers(state.limits.max_headers)
        .max_buf_size(state.limits.max_header_bytes.max(8192))
        .keep_alive(true);
    // Flow-control windows sized to SGP.22 bodies: a connection can make the server buffer at
    // most one connection window of unread request data, however many streams it opens.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(state.limits.h2_max_concurrent_streams.max(1))
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .max_header_list_size(u32::try_from(state.limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            () = conn_state.close.notified(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            () = tokio::time::sleep(conn_state.next_check(&limits)) => {
                if let Some(since) = closing {
                    if since.elapsed() >= CLOSE_GRACE {
                        return;
                    }
                    continue;
                }
                if let Verdict::Close(reason) = conn_state.verdict(&limits, Instant::now()) {
                    if reason != CloseReason::Evicted {
                        // (Evictions are counted where they are decided.)
                        state.metrics.connection_closed(reason.label());
                    }
                    tracing::debug!(%remote, reason = reason.label(), "closing connection");
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now());
                }
            }
        }
    }
}
