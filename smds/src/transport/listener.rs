//! The TLS listener: accepts connections under the connection limit, runs the TLS handshake
//! under its timeout, takes the client identity the handshake established, and serves HTTP/1.1
//! or HTTP/2 (by ALPN) with the request limits, until shutdown; then drains.

use super::AppState;
use super::routes;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

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
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| state.verifier.take_identity(certs, state.now()))
                .map(Arc::new);
            let io = TokioIo::new(stream);
            let svc_state = state.clone();
            let service = hyper::service::service_fn(move |req| {
                routes::handle(req, svc_state.clone(), peer.clone())
            });
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
