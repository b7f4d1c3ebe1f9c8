//! The admin listener (plain HTTP, loopback unless explicitly exposed with a token): `GET
//! /status` (the HTML status page, also at `/`), `/healthz`, `/readyz`, `/metrics`, `/admin/events[?eid=&limit=]` and `/admin/events/count`,
//! and `DELETE /admin/events?eid=&event_id=&before=` (audited removal). Reads the store through
//! [`crate::store::EventAdmin`] only. Listings are streamed page by page and capped, so a large
//! store is never held in memory for one answer.

use super::AppState;
use super::metrics;
use super::routes::json_response;
use crate::store::retention::{self, PurgeError, PurgeFilter};
use crate::types::EventId;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use pki_tool::Eid;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type AdminBody = BoxBody<Bytes, Infallible>;

/// Most events one listing returns.
pub const MAX_LIST_LIMIT: usize = 100_000;
/// Events read from the store per page of a listing.
const PAGE: usize = 1000;

/// The bearer token admin requests must present, when configured.
#[derive(Clone)]
pub struct Token(Arc<str>);

/// Why a token is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the admin token must be at least 16 characters")]
    TooShort,
    #[error("the admin token must be printable ASCII without spaces")]
    Characters,
}

impl Token {
    pub fn new(text: &str) -> Result<Self, TokenError> {
        if text.len() < 16 {
            return Err(TokenError::TooShort);
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::Characters);
        }
        Ok(Token(text.into()))
    }

    /// Compares in time independent of where the first difference is.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut diff = expected.len() ^ presented.len();
        for (i, b) in expected.iter().enumerate() {
            diff |= usize::from(b ^ presented.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

fn full(body: Response<super::routes::Body>) -> Response<AdminBody> {
    body.map(|b| b.boxed())
}

fn text(status: hyper::StatusCode, body: String, ctype: &'static str) -> Response<AdminBody> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

fn bad_request(why: String) -> Response<AdminBody> {
    text(hyper::StatusCode::BAD_REQUEST, why, "text/plain")
}

fn server_error(e: impl std::fmt::Display) -> Response<AdminBody> {
    text(
        hyper::StatusCode::INTERNAL_SERVER_ERROR,
        format!("{e}\n"),
        "text/plain",
    )
}

/// A body fed by a task through a channel.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// `{"events":[...]}`, written page by page as the client reads it.
fn stream_events(state: Arc<AppState>, eid: Option<Eid>, limit: usize) -> Response<AdminBody> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        if tx.send(Bytes::from_static(b"{\"events\":[")).await.is_err() {
            return;
        }
        let (mut sent, mut after) = (0usize, None);
        while sent < limit {
            let page = match state
                .store
                .list_page(eid.as_ref(), after, PAGE.min(limit - sent))
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    // The status is sent already: end the body early, which no JSON reader accepts.
                    tracing::error!(error = %e, "admin listing failed part way");
                    return;
                }
            };
            let Some(last) = page.last() else { break };
            after = Some((last.record.eid, last.seq));
            let mut chunk = Vec::new();
            for e in &page {
                if sent > 0 {
                    chunk.push(b',');
                }
                if serde_json::to_writer(&mut chunk, e).is_err() {
                    return;
                }
                sent += 1;
            }
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Bytes::from_static(b"]}")).await;
    });
    let mut r = Response::new(ChannelBody(rx).boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `DELETE /admin/events?eid=&event_id=&before=`: removes the selected events whatever their
/// owner (at least one condition; `before` is Unix seconds or an RFC 3339 time), each with an
/// audit line naming the admin client, and answers with the removed events.
async fn delete_events(state: &AppState, query: &str, client: &str) -> Response<AdminBody> {
    let decoded = |name: &str| {
        query_param(query, name).map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| format!("{name}: not UTF-8 once decoded\n"))
        })
    };
    let filter = (|| {
        let eid = decoded("eid")
            .transpose()?
            .map(|e| Eid::parse(&e).map_err(|err| format!("eid: {err}\n")))
            .transpose()?;
        let event_id = decoded("event_id")
            .transpose()?
            .map(|e| EventId::parse(&e).map_err(|err| format!("event_id: {err}\n")))
            .transpose()?;
        let registered_before = decoded("before")
            .transpose()?
            .map(|t| {
                t.parse::<i64>()
                    .or_else(|_| pki_tool::time::parse_rfc3339(&t))
                    .map_err(|_| {
                        format!("before: Unix seconds or YYYY-MM-DDTHH:MM:SSZ, not {t:?}\n")
                    })
            })
            .transpose()?;
        Ok::<_, String>(PurgeFilter {
            eid,
            event_id,
            registered_before,
        })
    })();
    let filter = match filter {
        Ok(f) => f,
        Err(why) => return bad_request(why),
    };
    let who = format!("admin {client}");
    match retention::purge(state.store.as_ref(), &filter, MAX_LIST_LIMIT, &who).await {
        Ok(removed) => full(json_response(
            hyper::StatusCode::OK,
            &serde_json::json!({ "deleted": removed.len(), "events": removed }),
        )),
        Err(PurgeError::Store(e)) => server_error(e),
        Err(e) => bad_request(format!("{e}\n")),
    }
}

async fn admin(
    req: Request<Incoming>,
    state: Arc<AppState>,
    token: Option<Token>,
    client: String,
) -> Result<Response<AdminBody>, Infallible> {
    if let Some(token) = &token {
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        if !presented.is_some_and(|p| token.matches(p)) {
            let mut r = text(
                hyper::StatusCode::UNAUTHORIZED,
                "a bearer token is required\n".into(),
                "text/plain",
            );
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return Ok(r);
        }
    }
    let query = req.uri().query().unwrap_or("");
    if req.method() == Method::DELETE && req.uri().path() == "/admin/events" {
        return Ok(delete_events(&state, query, &client).await);
    }
    if req.method() != Method::GET {
        return Ok(text(
            hyper::StatusCode::METHOD_NOT_ALLOWED,
            "GET only (and DELETE /admin/events)\n".into(),
            "text/plain",
        ));
    }
    Ok(match req.uri().path() {
        "/healthz" => text(hyper::StatusCode::OK, "ok\n".into(), "text/plain"),
        "/" | "/status" => {
            let mut r = text(
                hyper::StatusCode::OK,
                super::status_page::render(&state).await,
                "text/html; charset=utf-8",
            );
            // No script, no external asset: the page may load nothing but itself.
            r.headers_mut().insert(
                hyper::header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
            );
            r
        }
        "/readyz" => match super::health::readiness(&state).await {
            Ok(doc) => full(json_response(hyper::StatusCode::OK, &doc)),
            Err(problems) => full(json_response(
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({ "ready": false, "problems": problems }),
            )),
        },
        "/metrics" => {
            let now = state.now();
            state.revocation.update_gauges(now);
            state.metrics.set_operations(
                state.started.elapsed(),
                super::health::ProcessStats::read(),
                &state.certificates(),
                now,
            );
            text(
                hyper::StatusCode::OK,
                state.metrics.render(state.store.count().await.ok()),
                metrics::CONTENT_TYPE,
            )
        }
        "/admin/events/count" => match state.store.count().await {
            Ok(n) => full(json_response(
                hyper::StatusCode::OK,
                &serde_json::json!({ "count": n }),
            )),
            Err(e) => server_error(e),
        },
        "/admin/events" => {
            let eid = match query_param(query, "eid").map(Eid::parse).transpose() {
                Ok(e) => e,
                Err(e) => return Ok(bad_request(format!("eid: {e}\n"))),
            };
            let limit = match query_param(query, "limit").map(str::parse::<usize>) {
                None => 1000,
                Some(Ok(n)) => n.min(MAX_LIST_LIMIT),
                Some(Err(_)) => {
                    return Ok(bad_request(format!(
                        "limit: a whole number up to {MAX_LIST_LIMIT}\n"
                    )));
                }
            };
            stream_events(state, eid, limit)
        }
        "/admin/cascade" => match &state.cascade {
            None => text(
                hyper::StatusCode::NOT_FOUND,
                "this server forwards to no Root SM-DS (no [cascade] in its configuration)\n"
                    .into(),
                "text/plain",
            ),
            Some(c) => match c.view().await {
                Ok(doc) => full(json_response(hyper::StatusCode::OK, &doc)),
                Err(e) => server_error(e),
            },
        },
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
    token: Option<Token>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            r = listener.accept() => match r { Ok(t) => t, Err(_) => continue },
            () = &mut shutdown => break,
        };
        let (tcp, client) = tcp;
        let client = client.to_string();
        let state = state.clone();
        let token = token.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                admin(req, state.clone(), token.clone(), client.clone())
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(Token::new("short").err(), Some(TokenError::TooShort));
        assert_eq!(
            Token::new("has a space in it!").err(),
            Some(TokenError::Characters)
        );
        let t = Token::new("0123456789abcdef").expect("token");
        assert!(t.matches(b"0123456789abcdef"));
        assert!(!t.matches(b"0123456789abcdeX"));
        assert!(!t.matches(b"0123456789abcdef0"));
        assert!(!t.matches(b""));
    }
}
