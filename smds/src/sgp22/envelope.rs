//! The SGP.22 JSON envelope (section 6.5): the response `header.functionExecutionStatus` the
//! server writes and the lab clients read, and the `X-Admin-Protocol` header. Pure data; no I/O.

use super::codes::StatusCode;
use serde_json::{Map, Value, json};

/// `functionExecutionStatus.status` of a successful call.
pub const EXECUTED_SUCCESS: &str = "Executed-Success";

/// The protocol version this SM-DS speaks in `X-Admin-Protocol`.
pub const ADMIN_PROTOCOL: &str = "gsma/rsp/v2.5.0";

/// `{"header":{"functionExecutionStatus":{"status":"Executed-Success"}}}` plus `fields`.
pub fn success(fields: Map<String, Value>) -> Value {
    let mut body = Map::new();
    body.insert(
        "header".into(),
        json!({"functionExecutionStatus": {"status": EXECUTED_SUCCESS}}),
    );
    body.extend(fields);
    Value::Object(body)
}

/// A Failed status with its code and a message; failures carry no function outputs.
pub fn failed(code: StatusCode, message: &str) -> Value {
    json!({"header": {"functionExecutionStatus": {
        "status": "Failed",
        "statusCodeData": {
            "subjectCode": code.subject,
            "reasonCode": code.reason,
            "message": message,
        }
    }}})
}

/// `X-Admin-Protocol` for a response: a v2 client gets its own version echoed (we implement the
/// v2 behaviour it expects); anything else gets ours. pySim refuses a non-v2 answer.
pub fn admin_protocol_for(request: Option<&str>) -> String {
    match request {
        Some(v)
            if v.starts_with("gsma/rsp/v2.")
                && v.len() <= 32
                && v[10..].bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
        {
            v.to_string()
        }
        _ => ADMIN_PROTOCOL.to_string(),
    }
}

/// An SGP.22 function answer as a client reads it.
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

/// Why an answer is not an SGP.22 envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("HTTP {status}: the answer is not JSON ({why})")]
    NotJson { status: u16, why: String },
    #[error("HTTP {status}: no header.functionExecutionStatus.status in {body}")]
    NoStatus { status: u16, body: String },
}

impl FunctionResult {
    /// Reads the envelope of an answer with HTTP status `http_status`.
    pub fn parse(http_status: u16, body: &[u8]) -> Result<Self, EnvelopeError> {
        let body: Value = serde_json::from_slice(body).map_err(|e| EnvelopeError::NotJson {
            status: http_status,
            why: e.to_string(),
        })?;
        let fes = &body["header"]["functionExecutionStatus"];
        let status = fes["status"]
            .as_str()
            .ok_or_else(|| EnvelopeError::NoStatus {
                status: http_status,
                body: body.to_string(),
            })?
            .to_string();
        let scd = &fes["statusCodeData"];
        let s = |k: &str| scd[k].as_str().map(str::to_string);
        Ok(FunctionResult {
            http_status,
            status,
            subject_code: s("subjectCode"),
            reason_code: s("reasonCode"),
            message: s("message"),
            body,
        })
    }

    pub fn is_success(&self) -> bool {
        self.status == EXECUTED_SUCCESS
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sgp22::codes;

    #[test]
    fn success_has_no_status_code_data() {
        let v = success(Map::new());
        assert_eq!(
            v["header"]["functionExecutionStatus"]["status"],
            "Executed-Success"
        );
        assert!(
            v["header"]["functionExecutionStatus"]
                .get("statusCodeData")
                .is_none()
        );
        let f = failed(codes::EVENT_UNKNOWN, "no such event");
        assert_eq!(
            f["header"]["functionExecutionStatus"]["statusCodeData"]["subjectCode"],
            "8.9.5"
        );
        assert_eq!(
            f["header"]["functionExecutionStatus"]["statusCodeData"]["reasonCode"],
            "3.9"
        );
        let read = FunctionResult::parse(200, f.to_string().as_bytes()).expect("envelope");
        assert_eq!(read.code().as_deref(), Some("8.9.5/3.9"));
        assert!(!read.is_success());
    }

    #[test]
    fn admin_protocol() {
        assert_eq!(
            admin_protocol_for(Some("gsma/rsp/v2.2.2")),
            "gsma/rsp/v2.2.2"
        );
        assert_eq!(
            admin_protocol_for(Some("gsma/rsp/v3.0.0")),
            "gsma/rsp/v2.5.0"
        );
        assert_eq!(admin_protocol_for(Some("gsma/rsp/v2.x")), "gsma/rsp/v2.5.0");
        assert_eq!(admin_protocol_for(None), "gsma/rsp/v2.5.0");
    }
}
