//! The lab's client side: HTTPS with SGP.22 certificate checks (see `tls`), the SGP.22 JSON
//! envelope, and the ES12 calls an SM-DP+ makes (RegisterEvent, DeleteEvent).

use crate::tls;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderValue};
use hyper_util::rt::TokioIo;
use pki_tool::hierarchy::{read_cert, read_key};
use pki_tool::{Certificate, Role};
use serde_json::{Value, json};
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
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("server URL {url:?} must start with https://"))?;
        let authority = rest.trim_end_matches('/');
        if authority.contains('/') || authority.is_empty() {
            return Err(format!(
                "server URL {url:?} must be https://host[:port] without a path"
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("server URL {url:?} has an invalid port"))?,
            ),
            None => (authority, 443),
        };
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }

    fn authority(&self) -> String {
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

impl Connection {
    /// Opens a TCP + TLS connection within `timeout`.
    pub async fn open(
        endpoint: &Endpoint,
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", endpoint.authority()))?;
            let _ = tcp.set_nodelay(true);
            let name = rustls::pki_types::ServerName::try_from(endpoint.host.clone())
                .map_err(|e| format!("invalid server name {:?}: {e}", endpoint.host))?;
            let stream = tokio_rustls::TlsConnector::from(tls)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {} failed: {e}", endpoint.authority()))?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake failed: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok::<_, String>(sender)
        };
        let sender = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| format!("connecting to {} timed out", endpoint.authority()))??;
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
    ) -> Result<RawResponse, String> {
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection closed: {e}"))?;
        let mut req = hyper::Request::post(path)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let h = req.headers_mut();
        h.insert(
            HOST,
            HeaderValue::from_str(&self.endpoint.authority()).map_err(|e| e.to_string())?,
        );
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(content_type).map_err(|e| e.to_string())?,
        );
        h.insert(
            "x-admin-protocol",
            HeaderValue::from_static("gsma/rsp/v2.5.0"),
        );
        h.insert("user-agent", HeaderValue::from_static("smds-lab-client"));
        let resp = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the response failed: {e}"))?
            .to_bytes();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// POSTs a JSON body and parses the SGP.22 answer.
    pub async fn call(&mut self, path: &str, body: &Value) -> Result<FunctionResult, String> {
        let raw = self
            .post_raw(path, "application/json", body.to_string().into_bytes())
            .await?;
        FunctionResult::from_raw(&raw)
    }
}

/// An SGP.22 function answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionResult {
    pub http_status: u16,
    /// `Executed-Success`, `Failed`, ...
    pub status: String,
    pub subject_code: Option<String>,
    pub reason_code: Option<String>,
    pub message: Option<String>,
    pub body: Value,
}

impl FunctionResult {
    pub fn from_raw(raw: &RawResponse) -> Result<Self, String> {
        let body: Value = serde_json::from_slice(&raw.body)
            .map_err(|e| format!("HTTP {}: the answer is not JSON ({e})", raw.status))?;
        let fes = &body["header"]["functionExecutionStatus"];
        let status = fes["status"]
            .as_str()
            .ok_or_else(|| {
                format!(
                    "HTTP {}: no header.functionExecutionStatus.status in {body}",
                    raw.status
                )
            })?
            .to_string();
        let scd = &fes["statusCodeData"];
        let s = |k: &str| scd[k].as_str().map(str::to_string);
        Ok(FunctionResult {
            http_status: raw.status,
            status,
            subject_code: s("subjectCode"),
            reason_code: s("reasonCode"),
            message: s("message"),
            body,
        })
    }

    pub fn is_success(&self) -> bool {
        self.status == "Executed-Success"
    }

    /// `subject/reason` when failed, e.g. `8.9.5/3.3`.
    pub fn code(&self) -> Option<String> {
        Some(format!(
            "{}/{}",
            self.subject_code.as_ref()?,
            self.reason_code.as_ref()?
        ))
    }
}

/// Reads the CI certificates to trust.
pub fn read_cas(paths: &[impl AsRef<Path>]) -> Result<Vec<Certificate>, String> {
    paths
        .iter()
        .map(|p| read_cert(p.as_ref()).map_err(|e| e.to_string()))
        .collect()
}

/// The TLS configuration of an SM-DP+ calling ES12: its CERT.DP.TLS and key, trusting `cas` for the
/// SM-DS's CERT.DS.TLS.
pub fn smdp_tls_config(
    cert: &Path,
    key: &Path,
    cas: &[impl AsRef<Path>],
) -> Result<Arc<rustls::ClientConfig>, String> {
    let cert = read_cert(cert).map_err(|e| e.to_string())?;
    let key = read_key(key).map_err(|e| e.to_string())?;
    let cfg = tls::client_config(read_cas(cas)?, Role::Dstls, Some((&cert, &key)), None)?;
    Ok(Arc::new(cfg))
}

pub const REGISTER_EVENT_PATH: &str = "/gsma/rsp2/es12/registerEvent";
pub const DELETE_EVENT_PATH: &str = "/gsma/rsp2/es12/deleteEvent";

fn header(call_id: &str) -> Value {
    json!({"functionRequesterIdentifier": "smds-lab-client", "functionCallIdentifier": call_id})
}

/// A fresh functionCallIdentifier.
pub fn call_id() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The ES12.RegisterEvent body.
pub fn register_event_body(
    eid: &str,
    event_id: &str,
    rsp_server_address: &str,
    forwarding: Option<bool>,
) -> Value {
    let mut v = json!({
        "header": header(&call_id()),
        "eid": eid,
        "eventId": event_id,
        "rspServerAddress": rsp_server_address,
    });
    if let Some(f) = forwarding {
        v["forwardingIndicator"] = Value::Bool(f);
    }
    v
}

/// The ES12.DeleteEvent body.
pub fn delete_event_body(eid: &str, event_id: &str) -> Value {
    json!({"header": header(&call_id()), "eid": eid, "eventId": event_id})
}
