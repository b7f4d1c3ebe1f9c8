//! The SGP.22 function layer: function names and paths ([`paths`]), every status code
//! ([`codes`]), the JSON envelope ([`envelope`]), the typed request bodies ([`requests`]), and
//! the ASN.1 binding of ES11 ([`asn1_binding`]).
//! Used alike by the server (routing, handlers) and by the lab clients, so that each name, path
//! and code is written once. Pure data and parsing; no I/O.

pub mod asn1_binding;
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

    /// For refusals operators must be able to tell apart although the wire answer is the same
    /// (counted in metrics, never sent): a short label.
    fn refusal_reason(&self) -> Option<&'static str> {
        None
    }
}

/// A server address as SGP.22 compares it (InitiateAuthentication's address, serverSigned1's and
/// euiccSigned1's serverAddress): lower case, no trailing dot, no `:port`.
pub fn normalize_address(s: &str) -> String {
    let host = match s.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => s,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The prefix a v3 device puts before an RSP server's FQDN to reach its v3 name first
/// (SGP.22 v3 2.6.6.2, quoted in `sgp22-v3-es15-notes.md` 1.5): `rsp3-smds.example.com`.
pub const RSP3_PREFIX: &str = "rsp3-";

/// This server's v3 name: `rsp3-<hostname>` (lower case, no port).
pub fn rsp3_name(hostname: &str) -> String {
    format!("{RSP3_PREFIX}{}", normalize_address(hostname))
}

/// Whether `sent` names this SM-DS: its hostname or its `rsp3-` name, compared as
/// [`normalize_address`] does.
pub fn is_own_address(sent: &str, hostname: &str) -> bool {
    let sent = normalize_address(sent);
    sent == normalize_address(hostname) || sent == rsp3_name(hostname)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_compare_like_clients_send_them() {
        assert_eq!(
            normalize_address("SMDS.Example.com.:8443"),
            "smds.example.com"
        );
        assert_eq!(
            normalize_address("smds.example.com:443"),
            "smds.example.com"
        );
        assert_eq!(normalize_address("smds.example.com"), "smds.example.com");
    }

    #[test]
    fn the_rsp3_name_is_this_server_too() {
        assert!(is_own_address("smds.example.com", "SMDS.example.com"));
        assert!(is_own_address(
            "RSP3-smds.example.com:443",
            "smds.example.com"
        ));
        assert!(!is_own_address(
            "rsp3-other.example.com",
            "smds.example.com"
        ));
        assert!(!is_own_address(
            "rsp3-rsp3-smds.example.com",
            "smds.example.com"
        ));
        assert!(!is_own_address(
            "xrsp3-smds.example.com",
            "smds.example.com"
        ));
    }
}
