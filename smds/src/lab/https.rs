//! HTTPS for the lab clients: one HTTP/1.1 connection over TLS with SGP.22 certificate checks
//! (see [`crate::transport::tls`]), posting JSON and reading the SGP.22 envelope.

use super::LabError;
use crate::sgp22::FunctionResult;
use crate::sgp22::envelope::ADMIN_PROTOCOL;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use pki_tool::Certificate;
use pki_tool::hierarchy::read_cert;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Where a server is: from `https://host[:port][/]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, LabError> {
        let bad = |why: &str| LabError::Url(format!("server URL {url:?} {why}"));
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| bad("must start with https://"))?;
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') || authority.is_empty() {
            return Err(bad("must be https://host[:port] without a path"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("has an invalid port"))?),
            None => (authority, 443),
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }

    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// An HTTP/1.1 connection over TLS, reusable for several requests (keep-alive).
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
    endpoint: Endpoint,
}

/// A raw HTTP answer.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    /// The SGP.22 envelope of this answer.
    pub fn function_result(&self) -> Result<FunctionResult, LabError> {
        Ok(FunctionResult::parse(self.status, &self.body)?)
    }
}

impl Connection {
    /// Opens a TCP + TLS connection within `timeout`.
    pub async fn open(
        endpoint: &Endpoint,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Self, LabError> {
        let authority = endpoint.authority();
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
                .await
                .map_err(|source| LabError::Connect {
                    authority: authority.clone(),
                    source,
                })?;
            let _ = tcp.set_nodelay(true);
            let name =
                rustls::pki_types::ServerName::try_from(endpoint.host.clone()).map_err(|e| {
                    LabError::Url(format!("invalid server name {:?}: {e}", endpoint.host))
                })?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|source| LabError::Tls {
                    authority: authority.clone(),
                    source,
                })?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(LabError::Http)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, LabError>(sender)
        };
        let sender = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| LabError::Timeout(format!("connecting to {authority}")))??;
        Ok(Connection {
            sender,
            endpoint: endpoint.clone(),
        })
    }

    /// POSTs `body` with the given content type (tests use odd ones) and returns the raw answer.
    pub async fn post_raw(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<RawResponse, LabError> {
        self.sender.ready().await.map_err(LabError::Http)?;
        let header = |v: &str| {
            HeaderValue::from_str(v)
                .map_err(|_| LabError::Url(format!("invalid header value {v:?}")))
        };
        let mut req = hyper::Request::post(path)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| LabError::Url(format!("invalid request to {path:?}: {e}")))?;
        let h = req.headers_mut();
        h.insert(HOST, header(&self.endpoint.authority())?);
        h.insert(CONTENT_TYPE, header(content_type)?);
        h.insert("x-admin-protocol", HeaderValue::from_static(ADMIN_PROTOCOL));
        h.insert("user-agent", HeaderValue::from_static("smds-lab-client"));
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(LabError::Http)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(LabError::Http)?
            .to_bytes();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// POSTs a JSON body and parses the SGP.22 answer.
    pub async fn call(&mut self, path: &str, body: &Value) -> Result<FunctionResult, LabError> {
        let raw = self
            .post_raw(path, "application/json", body.to_string().into_bytes())
            .await?;
        raw.function_result()
    }
}

/// Reads the CI certificates to trust.
pub fn read_cas(paths: &[impl AsRef<Path>]) -> Result<Vec<Certificate>, LabError> {
    paths
        .iter()
        .map(|p| read_cert(p.as_ref()).map_err(|e| LabError::Credentials(e.to_string())))
        .collect()
}
