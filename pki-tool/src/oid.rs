//! Object identifiers with no limits on arc values, and the OIDs we use. Hand-written on purpose:
//! the `const-oid` crate rejects the `2.999.x` arcs SGP.26 puts in every SAN registeredID, and the
//! certificates we verify must be read as received.

use std::fmt;

/// An OBJECT IDENTIFIER kept as its DER content octets.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(Vec<u8>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid object identifier {input:?}: {why}")]
pub struct OidError {
    pub input: String,
    pub why: &'static str,
}

fn push_base128(out: &mut Vec<u8>, mut v: u128) {
    let mut tmp = [0u8; 19];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    let n = tmp.len();
    for (k, b) in tmp[i..].iter().enumerate() {
        out.push(if i + k + 1 < n { b | 0x80 } else { *b });
    }
}

impl Oid {
    /// Parses dotted-decimal notation such as `2.23.146.1.2.1.7`.
    pub fn parse(dotted: &str) -> Result<Self, OidError> {
        let bad = |why| OidError {
            input: dotted.to_string(),
            why,
        };
        let arcs: Vec<u128> = dotted
            .split('.')
            .map(|a| {
                if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) {
                    Err(bad("arcs must be decimal numbers separated by dots"))
                } else {
                    a.parse::<u128>().map_err(|_| bad("arc too large"))
                }
            })
            .collect::<Result<_, _>>()?;
        if arcs.len() < 2 {
            return Err(bad("needs at least two arcs"));
        }
        if arcs[0] > 2 || (arcs[0] < 2 && arcs[1] > 39) {
            return Err(bad(
                "first arc must be 0, 1 or 2 (second arc below 40 unless the first is 2)",
            ));
        }
        let first = arcs[0]
            .checked_mul(40)
            .and_then(|v| v.checked_add(arcs[1]))
            .ok_or_else(|| bad("arc too large"))?;
        let mut out = Vec::new();
        push_base128(&mut out, first);
        for a in &arcs[2..] {
            push_base128(&mut out, *a);
        }
        Ok(Oid(out))
    }

    /// Wraps DER content octets after checking them.
    pub fn from_der_content(content: &[u8]) -> Result<Self, OidError> {
        let bad = |why| OidError {
            input: hex(content),
            why,
        };
        if content.is_empty() {
            return Err(bad("empty"));
        }
        if content.last().is_some_and(|b| b & 0x80 != 0) {
            return Err(bad("truncated arc"));
        }
        let mut start = true;
        for b in content {
            if start && *b == 0x80 {
                return Err(bad("arc not minimally encoded"));
            }
            start = b & 0x80 == 0;
        }
        if arcs_of(content).is_none() {
            return Err(bad("arc too large"));
        }
        Ok(Oid(content.to_vec()))
    }

    /// The DER content octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The complete DER encoding (tag 06).
    pub fn to_der(&self) -> Vec<u8> {
        crate::tlv::tlv(crate::tlv::tag::OID, &self.0)
    }
}

fn arcs_of(content: &[u8]) -> Option<Vec<u128>> {
    let mut arcs = Vec::new();
    let mut v: u128 = 0;
    for b in content {
        v = v.checked_mul(128)?.checked_add(u128::from(b & 0x7F))?;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (a, b) = if v < 40 {
                    (0, v)
                } else if v < 80 {
                    (1, v - 40)
                } else {
                    (2, v - 80)
                };
                arcs.push(a);
                arcs.push(b);
            } else {
                arcs.push(v);
            }
            v = 0;
        }
    }
    Some(arcs)
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arcs = arcs_of(&self.0).unwrap_or_default();
        let parts: Vec<String> = arcs.iter().map(u128::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The bytes of an even-length string of hexadecimal digits (either case); `None` otherwise.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// DER content octets of the OIDs this crate uses.
pub mod known {
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    pub const PRIME256V1: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    pub const BRAINPOOL_P256R1: &[u8] = &[0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07];
    pub const ECDSA_WITH_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];

    pub const AT_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
    pub const AT_SERIAL_NUMBER: &[u8] = &[0x55, 0x04, 0x05];
    pub const AT_COUNTRY: &[u8] = &[0x55, 0x04, 0x06];
    pub const AT_LOCALITY: &[u8] = &[0x55, 0x04, 0x07];
    pub const AT_STATE: &[u8] = &[0x55, 0x04, 0x08];
    pub const AT_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0A];
    pub const AT_ORGANIZATIONAL_UNIT: &[u8] = &[0x55, 0x04, 0x0B];

    pub const EXT_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1D, 0x0E];
    pub const EXT_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x0F];
    pub const EXT_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1D, 0x11];
    pub const EXT_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x13];
    pub const EXT_NAME_CONSTRAINTS: &[u8] = &[0x55, 0x1D, 0x1E];
    pub const EXT_CRL_DISTRIBUTION_POINTS: &[u8] = &[0x55, 0x1D, 0x1F];
    pub const EXT_CERTIFICATE_POLICIES: &[u8] = &[0x55, 0x1D, 0x20];
    pub const EXT_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1D, 0x23];
    pub const EXT_EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1D, 0x25];
    /// GSMA `permittedEins`, 2.23.146.1.2.2.0 (SGP.22 v3 EUM certificates).
    pub const EXT_PERMITTED_EINS: &[u8] = &[0x67, 0x81, 0x12, 0x01, 0x02, 0x02, 0x00];

    pub const KP_SERVER_AUTH: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
    pub const KP_CLIENT_AUTH: &[u8] = &[0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_large_arcs() {
        for s in [
            "2.999.10",
            "2.999.15.2",
            "2.23.146.1.2.1.0.0.2.1",
            "1.2.840.10045.3.1.7",
            "2.5.29.14",
        ] {
            let o = Oid::parse(s).expect("valid");
            assert_eq!(o.to_string(), s);
            assert_eq!(Oid::from_der_content(o.as_bytes()).expect("valid"), o);
        }
        assert_eq!(
            Oid::parse("2.999.10").expect("valid").as_bytes(),
            &[0x88, 0x37, 0x0A]
        );
        assert_eq!(
            Oid::parse("2.23.146.1.2.2.0").expect("valid").as_bytes(),
            known::EXT_PERMITTED_EINS
        );
    }

    #[test]
    fn rejects_bad_input() {
        for s in ["", "1", "3.1", "1.40", "1..2", "1.a"] {
            assert!(Oid::parse(s).is_err(), "{s}");
        }
        assert!(Oid::from_der_content(&[0x2A, 0x86]).is_err());
        assert!(Oid::from_der_content(&[0x80, 0x01]).is_err());
    }
}
