//! `pki-tool`: mint and validate GSMA SGP.26-shaped test PKIs for eSIM (SGP.22) labs.
//!
//! The library is shared with the SM-DS: it parses certificates keeping their exact bytes
//! ([`cert`]), validates chains the SGP.22 way ([`validate`]), signs and verifies with the two SGP.22
//! curves ([`keys`]), and mints certificates from role templates ([`profile`], [`mint`]) into the
//! SGP.26 / osmo-smdpp directory layout ([`layout`], [`hierarchy`]).

pub mod cert;
pub mod cli_docs;
pub mod crl;
pub mod eid;
pub mod ext;
pub mod hierarchy;
pub mod inventory;
pub mod keys;
pub mod layout;
pub mod lint;
pub mod mint;
pub mod name;
pub mod oid;
pub mod profile;
pub mod renewal;
pub mod revocation;
pub mod role;
pub mod time;
pub mod tlv;
pub mod validate;
pub mod variant;

pub use cert::Certificate;
pub use eid::Eid;
pub use keys::{Curve, PrivateKey, PublicKey};
pub use role::Role;
pub use variant::Variant;

/// Errors of the library's file-level operations, each naming what it concerns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    File {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error("invalid EID: {0}")]
    Eid(#[from] eid::EidError),
    #[error("random number generator failed: {0}")]
    Random(String),
    #[error("{0}")]
    Template(String),
    #[error("{0}")]
    Chain(#[from] validate::ChainError),
}

impl Error {
    pub fn file(path: impl Into<std::path::PathBuf>, message: impl std::fmt::Display) -> Self {
        Error::File {
            path: path.into(),
            message: message.to_string(),
        }
    }
}
