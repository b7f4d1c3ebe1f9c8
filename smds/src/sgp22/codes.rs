//! Every SGP.22 status code this SM-DS sends (subject code / reason code, SGP.22 section 5.x tables
//! as collected in `../shared/spec/es11-es12-notes.md` section 5). Pure data: the function
//! families map their own error enums onto these in one function each (`Es11Error::status`,
//! `Es12Error::status`).

/// An SGP.22 subject code / reason code pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode {
    pub subject: &'static str,
    pub reason: &'static str,
}

const fn code(subject: &'static str, reason: &'static str) -> StatusCode {
    StatusCode { subject, reason }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.subject, self.reason)
    }
}

// Function requester and provider (any function).

/// 1.1 Function requester / 2.1 Invalid: a malformed request (body, header or field type).
pub const REQUEST_INVALID: StatusCode = code("1.1", "2.1");
/// 1.1 Function requester / 2.2 Mandatory element missing (a field, or the ES12/ES15 header).
pub const REQUEST_ELEMENT_MISSING: StatusCode = code("1.1", "2.2");
/// 1.1 Function requester / 1.2 Not allowed: no acceptable client certificate.
pub const REQUESTER_NOT_ALLOWED: StatusCode = code("1.1", "1.2");
/// 1.2 Function provider / 4.2 Execution error (the database refused, or the server is busy).
pub const EXECUTION_ERROR: StatusCode = code("1.2", "4.2");
/// 1.2 Function provider / 4.8 Insufficient memory (the disk is full).
pub const INSUFFICIENT_MEMORY: StatusCode = code("1.2", "4.8");

// ES12 (and ES15) event registration.

/// 8.1.1 EID / 2.1 Invalid.
pub const EID_INVALID: StatusCode = code("8.1.1", "2.1");
/// 8.1.1 EID / 2.2 Mandatory element missing.
pub const EID_MISSING: StatusCode = code("8.1.1", "2.2");
/// 8.1.1 EID / 4.8 Insufficient memory: the EID has as many events as the server keeps.
pub const EID_EVENTS_FULL: StatusCode = code("8.1.1", "4.8");
/// 8.8.1 SM-DP+ address / 2.1 Invalid (ES12 `rspServerAddress`).
pub const RSP_SERVER_ADDRESS_INVALID: StatusCode = code("8.8.1", "2.1");
/// 8.8.1 SM-DP+ address / 2.2 Mandatory element missing.
pub const RSP_SERVER_ADDRESS_MISSING: StatusCode = code("8.8.1", "2.2");
/// 8.9.5 Event record / 2.1 Invalid (malformed EventID).
pub const EVENT_ID_INVALID: StatusCode = code("8.9.5", "2.1");
/// 8.9.5 Event record / 2.2 Mandatory element missing.
pub const EVENT_ID_MISSING: StatusCode = code("8.9.5", "2.2");
/// 8.9.5 / 3.3: an event with this EventID already exists for this EID.
pub const EVENT_DUPLICATED: StatusCode = code("8.9.5", "3.3");
/// 8.9.5 / 3.9: no event identified by this EventID exists for this EID (also ES11 matchingId).
pub const EVENT_UNKNOWN: StatusCode = code("8.9.5", "3.9");
/// 8.9 SM-DS / 4.2 Execution error: the Root SM-DS refused the cascaded registration (ES12 at
/// an Alternative SM-DS; euicc-go's wording "cascade SM-DS registration has failed").
pub const CASCADE_REFUSED: StatusCode = code("8.9", "4.2");
/// 8.9 SM-DS / 5.1 Inaccessible: the Root SM-DS could not be reached or did not answer in time.
pub const CASCADE_UNREACHABLE: StatusCode = code("8.9", "5.1");

// ES11 common mutual authentication and event retrieval.

/// 8.1 eUICC / 2.1 Invalid: euiccChallenge, euiccInfo1 or the eUICC's response is malformed.
pub const EUICC_DATA_INVALID: StatusCode = code("8.1", "2.1");
/// 8.1 eUICC / 3.1 Unsupported: euiccSigned1 carries a CtxParams1 alternative an SM-DS does not
/// serve (v3 device change or profile recovery, SM-DP+ matters; push-service registration for a
/// service this SM-DS does not offer). The code is our reading: no published table names this case.
pub const EUICC_CONTEXT_UNSUPPORTED: StatusCode = code("8.1", "3.1");
/// 8.1 eUICC / 6.1 Verification failed: eUICC signature invalid, or challenge mismatch.
pub const EUICC_VERIFICATION_FAILED: StatusCode = code("8.1", "6.1");
/// 8.1.2 EUM certificate / 6.1 Verification failed.
pub const EUM_CERT_INVALID: StatusCode = code("8.1.2", "6.1");
/// 8.1.2 EUM certificate / 6.3 Expired.
pub const EUM_CERT_EXPIRED: StatusCode = code("8.1.2", "6.3");
/// 8.1.3 eUICC certificate / 6.1 Verification failed.
pub const EUICC_CERT_INVALID: StatusCode = code("8.1.3", "6.1");
/// 8.1.3 eUICC certificate / 6.3 Expired.
pub const EUICC_CERT_EXPIRED: StatusCode = code("8.1.3", "6.3");
/// 8.9.1 SM-DS address / 3.8 Refused.
pub const SMDS_ADDRESS_REFUSED: StatusCode = code("8.9.1", "3.8");
/// 8.9.2 CI public key / 3.1 Unsupported.
pub const CI_NOT_SUPPORTED: StatusCode = code("8.9.2", "3.1");
/// 8.9.3 Specification version number / 3.1 Unsupported.
pub const SVN_NOT_SUPPORTED: StatusCode = code("8.9.3", "3.1");
/// 8.9.4 SM-DS certificate / 3.7 Unavailable: no CERT.DSauth under a CI the eUICC can verify.
pub const NO_DSAUTH_FOR_CI: StatusCode = code("8.9.4", "3.7");
/// 8.10.1 TransactionId / 3.9 Unknown.
pub const TRANSACTION_UNKNOWN: StatusCode = code("8.10.1", "3.9");
/// 8.11.1 CI public key / 3.9 Unknown.
pub const CI_PUBLIC_KEY_UNKNOWN: StatusCode = code("8.11.1", "3.9");
