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

/// Where a server is: from `https://host[:port][/]`, and optionally where to connect instead
/// (curl's `--connect-to`: the TLS name and the Host header stay those of the URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// The TCP address actually dialled, when not `host:port`.
    pub connect_to: Option<(String, u16)>,
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
            connect_to: None,
        })
    }

    /// `https://localhost:port`.
    pub fn localhost(port: u16) -> Self {
        Endpoint {
            host: "localhost".into(),
            port,
            connect_to: None,
        }
    }

    /// Dials `HOST:PORT` (or `[v6]:PORT`, or `:PORT` for the URL's host on another port) while
    /// TLS still checks the URL's name.
    pub fn with_connect_to(mut self, spec: &str) -> Result<Self, LabError> {
        let bad = |why: &str| LabError::Url(format!("--connect-to {spec:?} {why}"));
        let (host, port) = spec
            .rsplit_once(':')
            .ok_or_else(|| bad("must be HOST:PORT"))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("has an invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.is_empty() { &self.host } else { host };
        self.connect_to = Some((host.to_string(), port));
        Ok(self)
    }

    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// What is dialled, for messages: `host:port`, or `host:port via addr:port`.
    pub fn describe(&self) -> String {
        match &self.connect_to {
            Some((h, p)) => format!("{} via {h}:{p}", self.authority()),
            None => self.authority(),
        }
    }
}

/// The request half of a connection: HTTP/1.1, or HTTP/2 when the server chose `h2` by ALPN
/// (offered only when the TLS configuration lists it).
enum Sender {
    Http1(SendRequest<Full<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    async fn ready(&mut self) -> Result<(), hyper::Error> {
        match self {
            Sender::Http1(s) => s.ready().await,
            Sender::Http2(s) => s.ready().await,
        }
    }

    async fn send(
        &mut self,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper::Error> {
        match self {
            Sender::Http1(s) => s.send_request(req).await,
            Sender::Http2(s) => s.send_request(req).await,
        }
    }
}

/// An HTTP/1.1 or HTTP/2 connection over TLS, reusable for several requests (keep-alive).
pub struct Connection {
    sender: Sender,
    endpoint: Endpoint,
    /// The connection's driver: when a request fails because the connection ended, its error
    /// (a TLS alert, say) is the reason, not the request's "channel closed".
    driver: Option<tokio::task::JoinHandle<Result<(), hyper::Error>>>,
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
        let authority = endpoint.describe();
        let (dial_host, dial_port) = match &endpoint.connect_to {
            Some((h, p)) => (h.as_str(), *p),
            None => (endpoint.host.as_str(), endpoint.port),
        };
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((dial_host, dial_port))
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
            if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                let (sender, conn) = hyper::client::conn::http2::handshake(
                    hyper_util::rt::TokioExecutor::new(),
                    TokioIo::new(stream),
                )
                .await
                .map_err(LabError::Http)?;
                return Ok::<_, LabError>((Sender::Http2(sender), tokio::spawn(conn)));
            }
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(LabError::Http)?;
            Ok::<_, LabError>((Sender::Http1(sender), tokio::spawn(conn)))
        };
        let (sender, driver) = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| LabError::Timeout(format!("connecting to {authority}")))??;
        Ok(Connection {
            sender,
            endpoint: endpoint.clone(),
            driver: Some(driver),
        })
    }

    /// The reason a request failed: the connection's own error when it ended with one.
    async fn failure(&mut self, request_error: hyper::Error) -> LabError {
        if let Some(driver) = self.driver.take()
            && let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(1), driver).await
        {
            return LabError::Http(e);
        }
        LabError::Http(request_error)
    }

    /// POSTs `body` with the given content type (tests use odd ones) and returns the raw answer.
    pub async fn post_raw(
        &mut self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<RawResponse, LabError> {
        if let Err(e) = self.sender.ready().await {
            return Err(self.failure(e).await);
        }
        let header = |v: &str| {
            HeaderValue::from_str(v)
                .map_err(|_| LabError::Url(format!("invalid header value {v:?}")))
        };
        let mut req = hyper::Request::post(path)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| LabError::Url(format!("invalid request to {path:?}: {e}")))?;
        if let Sender::Http2(_) = self.sender {
            // HTTP/2 carries the authority in the request URI, not a Host header.
            *req.uri_mut() = format!("https://{}{path}", self.endpoint.authority())
                .parse()
                .map_err(|e| LabError::Url(format!("invalid request to {path:?}: {e}")))?;
        } else {
            req.headers_mut()
                .insert(HOST, header(&self.endpoint.authority())?);
        }
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, header(content_type)?);
        h.insert("x-admin-protocol", HeaderValue::from_static(ADMIN_PROTOCOL));
        h.insert("user-agent", HeaderValue::from_static("smds-lab-client"));
        let resp = match self.sender.send(req).await {
            Ok(r) => r,
            Err(e) => return Err(self.failure(e).await),
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_keeps_the_name_and_dials_elsewhere() {
        let e = Endpoint::parse("https://smds.lab.example")
            .and_then(|e| e.with_connect_to("127.0.0.1:9443"))
            .expect("valid");
        assert_eq!(e.authority(), "smds.lab.example:443");
        assert_eq!(e.connect_to, Some(("127.0.0.1".into(), 9443)));
        assert_eq!(e.describe(), "smds.lab.example:443 via 127.0.0.1:9443");
        let v6 = Endpoint::localhost(8443)
            .with_connect_to("[::1]:9443")
            .expect("valid");
        assert_eq!(v6.connect_to, Some(("::1".into(), 9443)));
        let same_host = Endpoint::localhost(8443)
            .with_connect_to(":9443")
            .expect("valid");
        assert_eq!(same_host.connect_to, Some(("localhost".into(), 9443)));
        for bad in ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:http", "h:99999"] {
            assert!(
                Endpoint::localhost(1).with_connect_to(bad).is_err(),
                "{bad}"
            );
        }
    }
}
