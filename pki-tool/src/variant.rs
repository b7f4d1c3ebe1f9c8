//! The chain shapes of SGP.26 v3: Variant O (the v2 shape every earlier profile has) and Variants
//! A, B and C, which add SubCAs. Which roles a hierarchy holds and who issues whom, in one place.
//!
//! | Variant | eUICC chain                          | SM-DP+ / SM-DS chain             |
//! |---------|--------------------------------------|----------------------------------|
//! | O       | CI > EUM > eUICC                     | CI > server                      |
//! | A       | CI > EUM > EUM SubCA > eUICC         | CI > DP/DS SubCA > server        |
//! | B       | CI > CI SubCA > EUM > eUICC          | CI > CI SubCA > server           |
//! | C       | CI > CI SubCA > EUM > EUM SubCA > eUICC | CI > CI SubCA > DP/DS SubCA > server |
//!
//! The A/B/C shapes are read from the GSMA file tree and recipes (`../shared/spec/sgp26-v3-variants.md`
//! section 1): which variant holds which SubCA is [tree], B = CI SubCA only is [inferred], and the
//! issuer of the A/C TLS certificates (the role SubCA here) is [open].

use crate::role::Role;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Variant {
    #[default]
    O,
    A,
    B,
    C,
}

impl Variant {
    pub const ALL: [Variant; 4] = [Variant::O, Variant::A, Variant::B, Variant::C];

    pub fn letter(self) -> char {
        match self {
            Variant::O => 'O',
            Variant::A => 'A',
            Variant::B => 'B',
            Variant::C => 'C',
        }
    }

    fn has_ci_subca(self) -> bool {
        matches!(self, Variant::B | Variant::C)
    }

    fn has_role_subcas(self) -> bool {
        matches!(self, Variant::A | Variant::C)
    }

    /// Whether a hierarchy of this variant has a certificate of `role`.
    pub fn has(self, role: Role) -> bool {
        match role {
            Role::Cisubca => self.has_ci_subca(),
            Role::Eumsubca | Role::Dpsubca | Role::Dssubca => self.has_role_subcas(),
            _ => true,
        }
    }

    /// The roles of a hierarchy, every issuer before what it issues.
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.has(*r)).collect()
    }

    /// The role that issues `role` in this variant (the CI issues itself).
    pub fn issuer(self, role: Role) -> Role {
        let top = if self.has_ci_subca() {
            Role::Cisubca
        } else {
            Role::Ci
        };
        match role {
            Role::Ci | Role::Cisubca => Role::Ci,
            Role::Eum => top,
            Role::Eumsubca => Role::Eum,
            Role::Euicc if self.has_role_subcas() => Role::Eumsubca,
            Role::Euicc => Role::Eum,
            Role::Dpsubca | Role::Dssubca => top,
            Role::Dpauth | Role::Dppb | Role::Dptls if self.has_role_subcas() => Role::Dpsubca,
            Role::Dsauth | Role::Dstls if self.has_role_subcas() => Role::Dssubca,
            Role::Dpauth | Role::Dppb | Role::Dptls | Role::Dsauth | Role::Dstls => top,
        }
    }

    /// The CA roles between `role` and the CI, nearest first (empty for the CI and its direct
    /// subordinates).
    pub fn intermediates(self, role: Role) -> Vec<Role> {
        let mut out = Vec::new();
        let mut r = role;
        while r != Role::Ci {
            r = self.issuer(r);
            if r != Role::Ci {
                out.push(r);
            }
        }
        out
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

impl FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::ALL
            .into_iter()
            .find(|v| s.eq_ignore_ascii_case(&v.letter().to_string()))
            .ok_or_else(|| format!("unknown variant {s:?}; SGP.26 v3 variants are O, A, B and C"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_issuer_is_minted_first_and_allowed_to_issue() {
        for v in Variant::ALL {
            let roles = v.roles();
            for (i, r) in roles.iter().enumerate() {
                let issuer = v.issuer(*r);
                assert!(
                    r.may_be_issued_by(issuer),
                    "{v}: {issuer} may not issue {r}"
                );
                if *r != Role::Ci {
                    let at = roles.iter().position(|x| *x == issuer);
                    assert!(at.is_some_and(|at| at < i), "{v}: {issuer} before {r}");
                }
            }
        }
    }

    #[test]
    fn chain_shapes() {
        assert_eq!(
            Variant::C.intermediates(Role::Euicc),
            [Role::Eumsubca, Role::Eum, Role::Cisubca]
        );
        assert_eq!(Variant::A.intermediates(Role::Dstls), [Role::Dssubca]);
        assert_eq!(Variant::B.intermediates(Role::Dpauth), [Role::Cisubca]);
        assert_eq!(Variant::O.intermediates(Role::Euicc), [Role::Eum]);
        assert!(Variant::O.intermediates(Role::Dsauth).is_empty());
        assert_eq!(Variant::O.roles(), Role::BASE.to_vec());
        assert_eq!(Variant::C.roles().len(), 12);
        assert_eq!("b".parse::<Variant>(), Ok(Variant::B));
    }
}
