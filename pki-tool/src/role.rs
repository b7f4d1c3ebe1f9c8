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
    /// CI SubCA (SGP.26 v3 Variants B and C): issues EUMs and servers in the CI's name.
    Cisubca,
    /// EUM SubCA (v3 Variants A and C): issues the eUICCs below its EUM.
    Eumsubca,
    /// SM-DP+ SubCA (v3 Variants A and C): issues DPauth, DPpb and DPtls.
    Dpsubca,
    /// SM-DS SubCA (v3 Variants A and C): issues DSauth and DStls.
    Dssubca,
}

/// Which generation of role policy OIDs a certificate carries: the flat SGP.22 v2 arc
/// (`2.23.146.1.2.1.x`) or the nested v3 arc (`2.23.146.1.2.1.0.0...`). The CI's OID is the same in
/// both. A chain below the CI uses one generation only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyGeneration {
    V2,
    V3,
}

pub const ID_RSP_ROLE: &str = "2.23.146.1.2.1";

impl Role {
    /// The roles every hierarchy has (SGP.26 Variant O and its v1.x predecessors).
    pub const BASE: [Role; 8] = [
        Role::Ci,
        Role::Eum,
        Role::Euicc,
        Role::Dpauth,
        Role::Dppb,
        Role::Dptls,
        Role::Dsauth,
        Role::Dstls,
    ];

    /// The SubCAs SGP.26 v3 Variants A, B and C add.
    pub const SUB_CAS: [Role; 4] = [Role::Cisubca, Role::Eumsubca, Role::Dpsubca, Role::Dssubca];

    /// Every role, each issuer before what it may issue (the order hierarchies are minted in).
    pub const ALL: [Role; 12] = [
        Role::Ci,
        Role::Cisubca,
        Role::Eum,
        Role::Eumsubca,
        Role::Euicc,
        Role::Dpsubca,
        Role::Dpauth,
        Role::Dppb,
        Role::Dptls,
        Role::Dssubca,
        Role::Dsauth,
        Role::Dstls,
    ];

    pub fn is_ca(self) -> bool {
        matches!(
            self,
            Role::Ci | Role::Eum | Role::Cisubca | Role::Eumsubca | Role::Dpsubca | Role::Dssubca
        )
    }

    /// Whether a certificate of role `issuer` may sign one of this role (SGP.22 v3 4.5.2 as the
    /// SGP.26 v3 variants draw it): eUICCs under an EUM or its SubCA, EUMs and role SubCAs under
    /// the CI or the CI SubCA, servers under the CI, the CI SubCA or their own role's SubCA.
    pub fn may_be_issued_by(self, issuer: Role) -> bool {
        use Role::*;
        match self {
            Ci => issuer == Ci,
            Cisubca => issuer == Ci,
            Eum | Dpsubca | Dssubca => matches!(issuer, Ci | Cisubca),
            Eumsubca => issuer == Eum,
            Euicc => matches!(issuer, Eum | Eumsubca),
            Dpauth | Dppb | Dptls => matches!(issuer, Ci | Cisubca | Dpsubca),
            Dsauth | Dstls => matches!(issuer, Ci | Cisubca | Dssubca),
        }
    }

    pub fn is_tls(self) -> bool {
        matches!(self, Role::Dptls | Role::Dstls)
    }

    /// The SGP.22 v2 `id-rspRole-*` policy OID (none for the v3-only SubCAs).
    pub fn policy_v2(self) -> Option<&'static str> {
        Some(match self {
            Role::Ci => "2.23.146.1.2.1.0",
            Role::Euicc => "2.23.146.1.2.1.1",
            Role::Eum => "2.23.146.1.2.1.2",
            Role::Dptls => "2.23.146.1.2.1.3",
            Role::Dpauth => "2.23.146.1.2.1.4",
            Role::Dppb => "2.23.146.1.2.1.5",
            Role::Dstls => "2.23.146.1.2.1.6",
            Role::Dsauth => "2.23.146.1.2.1.7",
            _ => return None,
        })
    }

    /// The SGP.22 v3 policy OID (SGP.26 v3 Ov3/A/B/C recipes; Annex H names): one arc deeper per
    /// level of the v3 hierarchy. The CI's is the v2 one.
    pub fn policy_v3(self) -> &'static str {
        match self {
            Role::Ci => "2.23.146.1.2.1.0",
            Role::Cisubca => "2.23.146.1.2.1.0.0",
            Role::Eum => "2.23.146.1.2.1.0.0.0",
            Role::Eumsubca => "2.23.146.1.2.1.0.0.0.0",
            Role::Euicc => "2.23.146.1.2.1.0.0.0.0.0",
            Role::Dpsubca => "2.23.146.1.2.1.0.0.1",
            Role::Dptls => "2.23.146.1.2.1.0.0.1.0",
            Role::Dpauth => "2.23.146.1.2.1.0.0.1.1",
            Role::Dppb => "2.23.146.1.2.1.0.0.1.2",
            Role::Dssubca => "2.23.146.1.2.1.0.0.2",
            Role::Dstls => "2.23.146.1.2.1.0.0.2.0",
            Role::Dsauth => "2.23.146.1.2.1.0.0.2.1",
        }
    }

    /// Certificate policy OIDs that mark this role: the v2 value first, then the v3 one.
    pub fn policy_oids(self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self.policy_v2().into_iter().collect();
        if !out.contains(&self.policy_v3()) {
            out.push(self.policy_v3());
        }
        out
    }

    /// The role a policy OID names, and in which generation (the CI's OID counts as v2).
    pub fn from_policy_with_generation(oid: &str) -> Option<(Role, PolicyGeneration)> {
        Role::ALL.into_iter().find_map(|r| {
            if r.policy_v2() == Some(oid) {
                Some((r, PolicyGeneration::V2))
            } else if r.policy_v3() == oid {
                Some((r, PolicyGeneration::V3))
            } else {
                None
            }
        })
    }

    /// The role a policy OID names, if any.
    pub fn from_policy(oid: &str) -> Option<Role> {
        Self::from_policy_with_generation(oid).map(|(r, _)| r)
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
            Role::Cisubca => "cisubca",
            Role::Eumsubca => "eumsubca",
            Role::Dpsubca => "dpsubca",
            Role::Dssubca => "dssubca",
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
            Role::Cisubca => "CI SubCA (v3 Variants B, C): issues EUMs and servers under the CI",
            Role::Eumsubca => "EUM SubCA (v3 Variants A, C): issues the eUICCs below its EUM",
            Role::Dpsubca => "SM-DP+ SubCA (v3 Variants A, C): issues DPauth, DPpb, DPtls",
            Role::Dssubca => "SM-DS SubCA (v3 Variants A, C): issues DSauth, DStls",
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
