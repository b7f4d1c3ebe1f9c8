//! Workspace-level tests (in `tests/tests/`) that check our output against outside references:
//! the published SGP.26 files, openssl, and the `x509-cert` parser.

pub mod common;
pub mod postgres;
