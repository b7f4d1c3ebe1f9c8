//! The SGP.22 JSON envelope (section 6.5): the response `header.functionExecutionStatus`, the
//! dotted-string `statusCodeData` subject and reason codes this SM-DS emits, and the ES12/ES15
//! request header. Pure data; no I/O.

use serde_json::{Map, Value, json};

/// An SGP.22 subject code / reason code pair, with the text we send as `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCode {
    pub subject: &'static str,
    pub reason: &'static str,
}

const fn code(subject: &'static str, reason: &'static str) -> StatusCode {
    StatusCode { subject, reason }
}

/// The codes used by this SM-DS; subjects and reasons as in SGP.22 (see es11-es12-notes.md, 5).
pub mod codes {
    use super::{StatusCode, code};
    /// 8.1.1 EID / 2.1 Invalid.
    pub const EID_INVALID: StatusCode = code("8.1.1", "2.1");
    /// 8.1.1 EID / 2.2 Mandatory element missing.
    pub const EID_MISSING: StatusCode = code("8.1.1", "2.2");
    /// 8.1.1 EID / 4.8 Insufficient memory: the EID has as many events as the server keeps.
    pub const EID_EVENTS_FULL: StatusCode = code("8.1.1", "4.8");
    /// 8.8.1 SM-DP+ address / 2.1 Invalid (ES12 `rspServerAddress`).
    pub const RSP_SERVER_ADDRESS_INVALID: StatusCode = code("8.8.1", "2.1");
    pub const RSP_SERVER_ADDRESS_MISSING: StatusCode = code("8.8.1", "2.2");
    /// 8.9.5 Event record / 2.1 Invalid (malformed EventID).
    pub const EVENT_ID_INVALID: StatusCode = code("8.9.5", "2.1");
    pub const EVENT_ID_MISSING: StatusCode = code("8.9.5", "2.2");
    /// 8.9.5 / 3.3: an event with this EventID already exists for this EID.
    pub const EVENT_DUPLICATED: StatusCode = code("8.9.5", "3.3");
    /// 8.9.5 / 3.9: no event identified by this EventID exists for this EID.
    pub const EVENT_UNKNOWN: StatusCode = code("8.9.5", "3.9");
    /// 1.1 Function requester / 2.1 Invalid: a malformed request (body, header or field type).
    pub const REQUEST_INVALID: StatusCode = code("1.1", "2.1");
    /// 1.1 Function requester / 2.2: the ES12/ES15 request header is missing.
    pub const REQUEST_HEADER_MISSING: StatusCode = code("1.1", "2.2");
    /// 1.1 Function requester / 1.2 Not allowed: no acceptable client certificate.
    pub const REQUESTER_NOT_ALLOWED: StatusCode = code("1.1", "1.2");
    /// 1.2 Function provider / 4.2 Execution error (e.g. the database refused a write).
    pub const EXECUTION_ERROR: StatusCode = code("1.2", "4.2");
    /// 1.2 Function provider / 4.8 Insufficient memory (the disk is full).
    pub const INSUFFICIENT_MEMORY: StatusCode = code("1.2", "4.8");
}

/// `{"header":{"functionExecutionStatus":{"status":"Executed-Success"}}}` plus `fields`.
pub fn success(fields: Map<String, Value>) -> Value {
    let mut body = Map::new();
    body.insert(
        "header".into(),
        json!({"functionExecutionStatus": {"status": "Executed-Success"}}),
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

/// The ES12/ES15 request header (SGP.22 6.5.1.2): both fields required, possibly empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub function_requester_identifier: String,
    pub function_call_identifier: String,
}

/// Reads the request header of an ES12/ES15 body.
pub fn request_header(body: &Map<String, Value>) -> Result<RequestHeader, (StatusCode, String)> {
    let Some(h) = body.get("header") else {
        return Err((
            codes::REQUEST_HEADER_MISSING,
            "the request header is missing".into(),
        ));
    };
    let Some(h) = h.as_object() else {
        return Err((
            codes::REQUEST_INVALID,
            "header must be a JSON object".into(),
        ));
    };
    let field = |name: &str| -> Result<String, (StatusCode, String)> {
        match h.get(name) {
            Some(Value::String(s)) if s.len() <= 256 => Ok(s.clone()),
            Some(Value::String(_)) => Err((
                codes::REQUEST_INVALID,
                format!("header.{name} is longer than 256 bytes"),
            )),
            Some(_) => Err((
                codes::REQUEST_INVALID,
                format!("header.{name} must be a string"),
            )),
            None => Err((
                codes::REQUEST_HEADER_MISSING,
                format!("header.{name} is missing"),
            )),
        }
    };
    Ok(RequestHeader {
        function_requester_identifier: field("functionRequesterIdentifier")?,
        function_call_identifier: field("functionCallIdentifier")?,
    })
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
        _ => "gsma/rsp/v2.5.0".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
