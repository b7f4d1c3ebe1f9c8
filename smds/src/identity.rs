//! Who is calling: the identity taken from a TLS client certificate that passed SGP.22
//! validation (an SM-DP+'s CERT.DP.TLS on ES12, an SM-DS's CERT.DS.TLS on ES15), and the owner
//! key that events are filed under.

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

/// Which kind of server a validated TLS client certificate belongs to, by its role policy: the
/// functions it may call follow (ES12 for an SM-DP+, ES15 for an SM-DS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRole {
    /// CERT.DP.TLS (policy 2.23.146.1.2.1.3): an SM-DP+ calling ES12.
    SmDp,
    /// CERT.DS.TLS (policy 2.23.146.1.2.1.6): an Alternative SM-DS calling ES15.
    SmDs,
}

impl PeerRole {
    /// The certificate role a client of this kind presents.
    pub fn certificate_role(self) -> pki_tool::Role {
        match self {
            PeerRole::SmDp => pki_tool::Role::Dptls,
            PeerRole::SmDs => pki_tool::Role::Dstls,
        }
    }

    /// The role a client certificate's policies name, if it is one a client may present.
    pub fn of(cert: &pki_tool::Certificate) -> Option<PeerRole> {
        cert.policies()
            .iter()
            .find_map(|p| match pki_tool::Role::from_policy(p) {
                Some(pki_tool::Role::Dptls) => Some(PeerRole::SmDp),
                Some(pki_tool::Role::Dstls) => Some(PeerRole::SmDs),
                _ => None,
            })
    }

    /// The interface its calls arrive on, for logs and revocation metrics.
    pub fn interface(self) -> &'static str {
        match self {
            PeerRole::SmDp => "ES12",
            PeerRole::SmDs => "ES15",
        }
    }
}

/// An authenticated peer: an SM-DP+ on ES12 or an SM-DS on ES15.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub role: PeerRole,
    /// Records are filed under it. The SAN registeredIDs of SM-DP+s (2.999.10, ...) and SM-DSs
    /// (2.999.15, ...) are distinct arcs, and the role is part of the key as well, so an SM-DS
    /// can never own (or delete) an SM-DP+'s record, nor the reverse.
    pub owner: OwnerId,
    /// SAN entries (`rid:...`, `dns:...`), recorded with each event.
    pub names: Vec<String>,
    /// The certificate subject, for logs.
    pub subject: String,
}

impl PeerIdentity {
    /// The identity of a certificate that has passed SGP.22 validation under the CI with `ci_key_id`.
    pub fn from_certificate(
        cert: &pki_tool::Certificate,
        ci_key_id: &[u8],
        role: PeerRole,
    ) -> Self {
        let names = cert.subject_alt_names();
        let ci: String = ci_key_id.iter().map(|b| format!("{b:02X}")).collect();
        let who = names
            .iter()
            .find(|n| n.starts_with("rid:"))
            .cloned()
            .unwrap_or_else(|| format!("dn:{}", cert.subject));
        // SM-DP+ owners keep the form stored before ES15 existed, so their records stay theirs.
        let owner = match role {
            PeerRole::SmDp => format!("ci:{ci}/{who}"),
            PeerRole::SmDs => format!("ds/ci:{ci}/{who}"),
        };
        PeerIdentity {
            role,
            owner: OwnerId(owner),
            names,
            subject: cert.subject.to_string(),
        }
    }
}
