//! The SGP.22 function layer: function names and paths ([`paths`]), every status code
//! ([`codes`]), the JSON envelope ([`envelope`]) and the typed request bodies ([`requests`]).
//! Used alike by the server (routing, handlers) and by the lab clients, so that each name, path
//! and code is written once. Pure data and parsing; no I/O.

pub mod codes;
pub mod envelope;
pub mod paths;
pub mod requests;
pub mod responses;

pub use codes::StatusCode;
pub use envelope::FunctionResult;
pub use paths::{Es11PathFamily, Function};

/// A function's failure as the envelope carries it: a status code and a message. Each function
/// family's error enum implements it with one `status` function, its single code mapping.
pub trait FunctionError: std::fmt::Display {
    fn status(&self) -> StatusCode;
}
