//! Who is calling: the identity taken from a verified TLS client certificate.

/// An authenticated peer (an SM-DP+ on ES12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The key events are owned by: the issuing CI's key identifier and the certificate's SAN
    /// registeredID (the SM-DP+ OID), so a renewed TLS certificate keeps ownership; the subject
    /// DN stands in when there is no registeredID.
    pub owner: String,
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
            owner: format!("ci:{ci}/{who}"),
            names,
            subject: cert.subject.to_string(),
        }
    }
}
