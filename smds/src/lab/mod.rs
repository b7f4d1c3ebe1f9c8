//! The lab's client side, apart from the server: what a lab uses to drive an SM-DS without real
//! SM-DP+ software or devices. [`https`]: TLS + HTTP/1.1 to an SGP.22 server; [`smdp`]: the
//! ES12 calls an SM-DP+ makes; [`soft_euicc`]: an eUICC in software (the ES10b side of mutual
//! authentication); [`lpa`]: the LPA's ES11 discovery over them. Uses the SGP.22 function layer
//! and the TLS verifiers; never the server's handlers or store.

pub mod https;
pub mod lpa;
pub mod smdp;
pub mod soft_euicc;

use crate::sgp22::envelope::EnvelopeError;
use crate::sgp22::responses::ResponseError;
use crate::transport::tls::TlsConfigError;

/// Why a lab client call failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    Url(String),
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("TLS handshake with {authority} failed: {source}")]
    Tls {
        authority: String,
        source: std::io::Error,
    },
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("{0} timed out")]
    Timeout(String),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Response(#[from] ResponseError),
    /// A certificate or key file could not be used.
    #[error("{0}")]
    Credentials(String),
    #[error(transparent)]
    TlsConfig(#[from] TlsConfigError),
    /// The software eUICC refused the server (as a real eUICC's AuthenticateServer would).
    #[error("the SM-DS failed authentication: {0}")]
    ServerRefused(String),
    #[error("{0}")]
    Asn1(String),
}
