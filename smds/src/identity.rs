//! Who is calling: the identity taken from a TLS client certificate that passed SGP.22
//! validation, and the owner key that events are filed under.

use std::fmt;

/// The key events are owned by: the issuing CI's key identifier and the certificate's SAN
/// registeredID (the SM-DP+ OID), so a renewed TLS certificate keeps ownership; the subject DN
/// stands in when there is no registeredID. Opaque to everything but equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct OwnerId(String);

impl OwnerId {
    /// An owner key as written (tests, tools); servers derive it with
    /// [`PeerIdentity::from_certificate`].
    pub fn new(s: impl Into<String>) -> Self {
        OwnerId(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An authenticated peer (an SM-DP+ on ES12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub owner: OwnerId,
    /// SAN entries (`rid:...`, `dns:...`), recorded with each event.
    pub names: Vec<String>,
    /// The certificate subject, for logs.
    pub subject: String,
}

impl PeerIdentity {
    /// The identity of a certificate that has passed SGP.22 validation under the CI with `ci_key_id`.
    pub fn from_certificate(cert: &pki_tool::Certificate, ci_key_id: &[u8]) -> Self {
        let names = cert.subject_alt_names();
        let ci: String = ci_key_id.iter().map(|b| format!("{b:02X}")).collect();
        let who = names
            .iter()
            .find(|n| n.starts_with("rid:"))
            .cloned()
            .unwrap_or_else(|| format!("dn:{}", cert.subject));
        PeerIdentity {
            owner: OwnerId(format!("ci:{ci}/{who}")),
            names,
            subject: cert.subject.to_string(),
        }
    }
}
