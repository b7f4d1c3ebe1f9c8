//! Why an ES11 call failed, and the one mapping from those reasons to SGP.22 status codes.

use crate::asn1::Asn1Error;
use crate::revocation::RevocationError;
use crate::sgp22::FunctionError;
use crate::sgp22::codes::{self, StatusCode};
use crate::sgp22::requests::{Field, RequestError};
use crate::store::StoreError;
use pki_tool::validate::{ChainError, ChainErrorKind};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Es11Error {
    /// The body does not carry a valid call.
    #[error("{0}")]
    Request(#[from] RequestError),
    /// The address the LPA used is not this SM-DS's.
    #[error("this is not the SM-DS at that address")]
    AddressRefused,
    #[error("SGP.22 version {}.{}.{} is not supported", .0[0], .0[1], .0[2])]
    SvnNotSupported([u8; 3]),
    #[error("no CERT.DSauth under a CI the eUICC can verify")]
    NoDsAuthForCi,
    #[error("none of the eUICC's CI key identifiers is usable by this SM-DS")]
    CiNotSupported,
    /// Building the answer failed (random numbers, encoding).
    #[error("{0}")]
    Internal(String),
    #[error("unknown, expired or already used transactionId")]
    TransactionUnknown,
    #[error("authenticateServerResponse: {0}")]
    EuiccResponse(Asn1Error),
    /// The eUICC's AuthenticateServerResponse is its error alternative.
    #[error("the eUICC refused to authenticate the SM-DS: {name} ({code})")]
    EuiccRefused { code: i64, name: &'static str },
    #[error("the EUM certificate was not issued by a CI this SM-DS trusts")]
    EumCiUnknown,
    #[error("EUM certificate: {0}")]
    EumCertificate(String),
    #[error("eUICC certificate: {0}")]
    EuiccCertificate(String),
    #[error("{0}")]
    Chain(ChainError),
    /// The eUICC or EUM certificate is revoked, or (`strict_crl`) its issuer's CRL is unusable.
    #[error("{0}")]
    Revoked(RevocationError),
    #[error("the eUICC certificate carries no EID")]
    NoEid,
    #[error("euiccSignature1 does not verify over euiccSigned1")]
    EuiccSignature,
    #[error("euiccSigned1 names another transactionId")]
    OtherTransaction,
    #[error("serverChallenge does not match")]
    ServerChallenge,
    #[error("euiccSigned1 names another server address")]
    ServerAddress,
    #[error("events could not be read: {0}")]
    Store(StoreError),
    #[error("no event identified by this EventID exists for this EID")]
    UnknownMatchingId,
    /// euiccSigned1 carries a CtxParams1 alternative other than common authentication.
    #[error(
        "euiccSigned1 carries {0}: an SM-DS serves common authentication only (device change and profile recovery are SM-DP+ functions)"
    )]
    UnsupportedContext(&'static str),
    /// A push-service registration selecting a service this SM-DS does not offer.
    #[error("push-service registration for {0}, which this SM-DS does not offer")]
    PushServiceNotOffered(String),
    #[error("{0}")]
    PushToken(#[from] crate::types::PushTokenError),
}

impl FunctionError for Es11Error {
    fn status(&self) -> StatusCode {
        use Es11Error as E;
        match self {
            E::Request(e) => request_status(e),
            E::AddressRefused | E::ServerAddress => codes::SMDS_ADDRESS_REFUSED,
            E::SvnNotSupported(_) => codes::SVN_NOT_SUPPORTED,
            E::NoDsAuthForCi => codes::NO_DSAUTH_FOR_CI,
            E::CiNotSupported => codes::CI_NOT_SUPPORTED,
            E::Internal(_) | E::Store(_) => codes::EXECUTION_ERROR,
            E::TransactionUnknown | E::OtherTransaction => codes::TRANSACTION_UNKNOWN,
            E::EuiccResponse(_) => codes::EUICC_DATA_INVALID,
            E::EuiccRefused { .. } | E::EuiccSignature | E::ServerChallenge => {
                codes::EUICC_VERIFICATION_FAILED
            }
            E::EumCiUnknown => codes::CI_PUBLIC_KEY_UNKNOWN,
            E::EumCertificate(_) => codes::EUM_CERT_INVALID,
            E::EuiccCertificate(_) | E::NoEid => codes::EUICC_CERT_INVALID,
            E::Chain(e) => chain_status(e),
            E::Revoked(e) => match e.depth() {
                0 => codes::EUICC_CERT_INVALID,
                _ => codes::EUM_CERT_INVALID,
            },
            E::UnknownMatchingId => codes::EVENT_UNKNOWN,
            E::UnsupportedContext(_) | E::PushServiceNotOffered(_) => {
                codes::EUICC_CONTEXT_UNSUPPORTED
            }
            E::PushToken(_) => codes::EUICC_DATA_INVALID,
        }
    }
}

fn request_status(e: &RequestError) -> StatusCode {
    match e {
        RequestError::Missing(_) => codes::REQUEST_ELEMENT_MISSING,
        RequestError::WrongType { .. } => codes::REQUEST_INVALID,
        RequestError::Invalid { field, .. } => match field {
            Field::TransactionId => codes::TRANSACTION_UNKNOWN,
            Field::EuiccChallenge | Field::EuiccInfo1 | Field::AuthenticateServerResponse => {
                codes::EUICC_DATA_INVALID
            }
            _ => codes::REQUEST_INVALID,
        },
    }
}

/// A chain failure by the certificate it concerns: depth 0 is the eUICC, 1 the EUM, above that
/// the CI.
fn chain_status(e: &ChainError) -> StatusCode {
    let expired = matches!(
        e.kind,
        ChainErrorKind::Expired { .. } | ChainErrorKind::NotYetValid { .. }
    );
    match (e.depth, expired) {
        (0, true) => codes::EUICC_CERT_EXPIRED,
        (0, false) => codes::EUICC_CERT_INVALID,
        (1, true) => codes::EUM_CERT_EXPIRED,
        (1, false) => codes::EUM_CERT_INVALID,
        _ => codes::CI_PUBLIC_KEY_UNKNOWN,
    }
}
