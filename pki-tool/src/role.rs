//! The certificate roles of the GSMA RSP PKI (SGP.22 section 4.5.2, SGP.26) and what identifies them.

use std::fmt;
use std::str::FromStr;

/// A role in the RSP PKI.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Certificate Issuer: the self-signed root every party trusts.
    Ci,
    /// eUICC Manufacturer: intermediate CA that signs eUICC certificates within its EID range.
    Eum,
    /// The eUICC itself; its subject serialNumber is the EID.
    Euicc,
    /// SM-DP+ authentication (signs serverSigned1 in ES9+).
    Dpauth,
    /// SM-DP+ profile binding (signs the bound profile package).
    Dppb,
    /// SM-DP+ TLS server/client certificate (ES9+, and client side of ES12).
    Dptls,
    /// SM-DS authentication (signs serverSigned1 in ES11).
    Dsauth,
    /// SM-DS TLS server certificate (ES11, ES12 and ES15).
    Dstls,
}

pub const ID_RSP_ROLE: &str = "2.23.146.1.2.1";

impl Role {
    pub const ALL: [Role; 8] = [
        Role::Ci,
        Role::Eum,
        Role::Euicc,
        Role::Dpauth,
        Role::Dppb,
        Role::Dptls,
        Role::Dsauth,
        Role::Dstls,
    ];

    /// The role that issues certificates of this role (the CI issues its own).
    pub fn issuer(self) -> Role {
        match self {
            Role::Euicc => Role::Eum,
            _ => Role::Ci,
        }
    }

    pub fn is_ca(self) -> bool {
        matches!(self, Role::Ci | Role::Eum)
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Role::Dptls | Role::Dstls)
    }

    /// Certificate policy OIDs that mark this role: the SGP.22 v2 `id-rspRole-*` value first, then
    /// the deeper v3 arcs (SGP.26 v3 variants Ov3/A/B/C) where one is defined.
    pub fn policy_oids(self) -> &'static [&'static str] {
        match self {
            Role::Ci => &["2.23.146.1.2.1.0"],
            Role::Euicc => &["2.23.146.1.2.1.1", "2.23.146.1.2.1.0.0.0.0.0"],
            Role::Eum => &["2.23.146.1.2.1.2", "2.23.146.1.2.1.0.0.0"],
            Role::Dptls => &["2.23.146.1.2.1.3"],
            Role::Dpauth => &["2.23.146.1.2.1.4", "2.23.146.1.2.1.0.0.1.1"],
            Role::Dppb => &["2.23.146.1.2.1.5"],
            Role::Dstls => &["2.23.146.1.2.1.6", "2.23.146.1.2.1.0.0.2.0"],
            Role::Dsauth => &["2.23.146.1.2.1.7", "2.23.146.1.2.1.0.0.2.1"],
        }
    }

    /// The role a policy OID names, if any.
    pub fn from_policy(oid: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.policy_oids().contains(&oid))
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Ci => "ci",
            Role::Eum => "eum",
            Role::Euicc => "euicc",
            Role::Dpauth => "dpauth",
            Role::Dppb => "dppb",
            Role::Dptls => "dptls",
            Role::Dsauth => "dsauth",
            Role::Dstls => "dstls",
        }
    }

    /// One line for `--help` and messages.
    pub fn describe(self) -> &'static str {
        match self {
            Role::Ci => "CI: the self-signed root (Certificate Issuer) every party trusts",
            Role::Eum => {
                "EUM: eUICC manufacturer CA, limited to its EID prefix by name constraints"
            }
            Role::Euicc => "eUICC: the chip; subject serialNumber is its 32-digit EID",
            Role::Dpauth => "SM-DP+ auth: signs serverSigned1 towards the eUICC (ES9+)",
            Role::Dppb => "SM-DP+ profile binding: signs bound profile packages",
            Role::Dptls => "SM-DP+ TLS: server certificate for ES9+, client certificate for ES12",
            Role::Dsauth => "SM-DS auth: signs serverSigned1 towards the eUICC (ES11)",
            Role::Dstls => "SM-DS TLS: server certificate for ES11/ES12/ES15",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.to_ascii_lowercase().replace(['-', '_', '+'], "");
        Role::ALL
            .into_iter()
            .find(|r| r.name() == l)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
                format!("unknown role {s:?}; roles are {}", names.join(", "))
            })
    }
}
