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
    #[error("TLS handshake with {authority} failed: {}", explain(source))]
    Tls {
        authority: String,
        source: std::io::Error,
    },
    #[error("{}", explain_http(.0))]
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

/// One line for a failed exchange: the TLS reason when there is one (a rustls error somewhere in
/// the chain), not the nested debug text of the error types.
fn explain(err: &(dyn std::error::Error + 'static)) -> String {
    find_rustls(err).map_or_else(|| err.to_string(), explain_rustls)
}

fn find_rustls<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|i| i as &(dyn std::error::Error + 'static));
        let tls = inner
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .or_else(|| e.downcast_ref::<rustls::Error>());
        if tls.is_some() {
            return tls;
        }
        next = inner.or_else(|| e.source());
    }
    None
}

fn explain_http(err: &hyper::Error) -> String {
    if let Some(tls) = find_rustls(err) {
        return explain_rustls(tls);
    }
    if err.is_closed() || err.is_incomplete_message() || err.is_canceled() {
        format!(
            "HTTP: {err}: the server closed the connection without an answer (its log says why)"
        )
    } else {
        format!("HTTP: {err}")
    }
}

fn explain_rustls(e: &rustls::Error) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as E};
    match e {
        E::AlertReceived(alert) => {
            let name = alert_name(*alert);
            match alert {
                A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::CertificateRequired => format!(
                    "the server refused our certificate (TLS alert {name}): it must chain to a \
                     CI the server trusts, be within its validity, unrevoked, and of the right \
                     role (CERT.DP.TLS for ES12)"
                ),
                A::HandshakeFailure | A::ProtocolVersion | A::InsufficientSecurity => format!(
                    "the server refused the handshake (TLS alert {name}): no common TLS \
                     version, cipher suite, curve or signature scheme"
                ),
                _ => format!("the server ended the connection with TLS alert {name}"),
            }
        }
        E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the server's certificate is not valid for the host name in --server; use the \
             name it was issued for there, and --connect-to HOST:PORT to reach it at another \
             address"
                .to_string()
        }
        E::InvalidCertificate(C::Other(other)) => {
            format!("the server's certificate was refused: {}", other.0)
        }
        E::InvalidCertificate(c) => format!("the server's certificate was refused: {c}"),
        other => crate::transport::tls::rustls_reason(other),
    }
}

/// `BadCertificate` -> `bad_certificate`, as RFC 8446 names alerts.
fn alert_name(alert: rustls::AlertDescription) -> String {
    let mut out = String::new();
    let mut after_lower = false;
    for ch in format!("{alert:?}").chars() {
        if ch.is_ascii_uppercase() && after_lower {
            out.push('_');
        }
        after_lower = ch.is_ascii_lowercase();
        out.push(ch.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_are_one_readable_line() {
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let refused = LabError::Tls {
            authority: "smds.lab.example:443".into(),
            source: io(rustls::Error::AlertReceived(
                rustls::AlertDescription::UnknownCA,
            )),
        }
        .to_string();
        assert!(
            refused.contains("refused our certificate (TLS alert unknown_ca)"),
            "{refused}"
        );
        let name = LabError::Tls {
            authority: "localhost:8443".into(),
            source: io(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            )),
        }
        .to_string();
        assert!(name.contains("--connect-to"), "{name}");
        let other = LabError::Tls {
            authority: "localhost:8443".into(),
            source: io(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(std::sync::Arc::new(
                    std::io::Error::other("EUM chain does not reach the CI"),
                ))),
            )),
        }
        .to_string();
        assert!(
            other
                .ends_with("the server's certificate was refused: EUM chain does not reach the CI"),
            "{other}"
        );
        assert!(!other.contains("OtherError"), "{other}");
    }
}
