//! The loopback admin listener (plain HTTP): `GET /metrics`, `/admin/events[?eid=&limit=]` and
//! `/admin/events/count`. Reads the store through [`crate::store::EventAdmin`] only.

use super::AppState;
use super::metrics;
use super::routes::{Body, json_response};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

fn text(status: hyper::StatusCode, body: String, ctype: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

fn server_error(e: impl std::fmt::Display) -> Response<Body> {
    text(
        hyper::StatusCode::INTERNAL_SERVER_ERROR,
        format!("{e}\n"),
        "text/plain",
    )
}

async fn admin(req: Request<Incoming>, state: Arc<AppState>) -> Result<Response<Body>, Infallible> {
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
            state.metrics.render(state.store.count().await.ok()),
            metrics::CONTENT_TYPE,
        ),
        "/admin/events/count" => match state.store.count().await {
            Ok(n) => json_response(hyper::StatusCode::OK, &serde_json::json!({ "count": n })),
            Err(e) => server_error(e),
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
            match state.store.list(eid.as_ref(), limit).await {
                Ok(events) => json_response(
                    hyper::StatusCode::OK,
                    &serde_json::json!({ "events": events }),
                ),
                Err(e) => server_error(e),
            }
        }
        _ => text(
            hyper::StatusCode::NOT_FOUND,
            "not found\n".into(),
            "text/plain",
        ),
    })
}

/// Serves the admin endpoints until `shutdown` resolves.
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
