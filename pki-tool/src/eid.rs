//! The eUICC identifier (EID, GSMA SGP.29): 32 decimal digits whose last two are check digits
//! chosen, as for an IBAN (ISO 7064 MOD 97-10), so that the whole number modulo 97 equals 1.

use std::fmt;
use std::str::FromStr;

/// A valid EID: always 32 ASCII digits with correct check digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Eid([u8; 32]);

/// Why a string is not a valid EID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EidError {
    #[error("an EID has 32 digits, this one has {0}")]
    Length(usize),
    #[error("an EID has only decimal digits, found {found:?} at position {position}")]
    NotDigit { position: usize, found: char },
    #[error(
        "check digits are wrong: the first 30 digits give check digits {expected}, not {found}"
    )]
    CheckDigits { expected: String, found: String },
    #[error("the EID body overflowed its {0}-digit prefix")]
    Overflow(usize),
}

fn mod97(digits: &[u8]) -> u32 {
    digits
        .iter()
        .fold(0u32, |acc, d| (acc * 10 + u32::from(d - b'0')) % 97)
}

/// The two check digits for a 30-digit body.
fn check_digits(body: &[u8; 30]) -> [u8; 2] {
    let mut with_zeros = [b'0'; 32];
    with_zeros[..30].copy_from_slice(body);
    let check = 98 - mod97(&with_zeros);
    [b'0' + (check / 10) as u8, b'0' + (check % 10) as u8]
}

impl Eid {
    /// Parses and validates a 32-digit EID.
    pub fn parse(s: &str) -> Result<Self, EidError> {
        let count = s.chars().count();
        if count != 32 {
            return Err(EidError::Length(count));
        }
        if let Some((position, found)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(EidError::NotDigit { position, found });
        }
        let mut digits = [0u8; 32];
        digits.copy_from_slice(s.as_bytes());
        let mut body = [0u8; 30];
        body.copy_from_slice(&digits[..30]);
        let expected = check_digits(&body);
        if expected != digits[30..] {
            return Err(EidError::CheckDigits {
                expected: String::from_utf8_lossy(&expected).into_owned(),
                found: s[30..].to_string(),
            });
        }
        Ok(Eid(digits))
    }

    /// Completes a 30-digit body with its check digits.
    pub fn from_body(body: &str) -> Result<Self, EidError> {
        let count = body.chars().count();
        if count != 30 {
            return Err(EidError::Length(count + 2));
        }
        if let Some((position, found)) = body.chars().enumerate().find(|(_, c)| !c.is_ascii_digit())
        {
            return Err(EidError::NotDigit { position, found });
        }
        let mut b = [0u8; 30];
        b.copy_from_slice(body.as_bytes());
        let mut digits = [0u8; 32];
        digits[..30].copy_from_slice(&b);
        digits[30..].copy_from_slice(&check_digits(&b));
        Ok(Eid(digits))
    }

    /// A random EID starting with `prefix` (at most 30 digits), e.g. an EUM's EIN `89049032`.
    pub fn random_with_prefix(prefix: &str) -> Result<Self, crate::Error> {
        if prefix.len() > 30 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(crate::Error::Usage(format!(
                "EID prefix {prefix:?} must be at most 30 decimal digits"
            )));
        }
        let mut random = [0u8; 30];
        getrandom::fill(&mut random).map_err(|e| crate::Error::Random(e.to_string()))?;
        let mut body = prefix.to_string();
        body.extend(
            random[prefix.len()..]
                .iter()
                .map(|b| char::from(b'0' + b % 10)),
        );
        Ok(Self::from_body(&body)?)
    }

    /// The next EID in sequence: the 30-digit body plus one, keeping the first `keep` digits.
    pub fn successor(&self, keep: usize) -> Result<Self, EidError> {
        let mut body = [0u8; 30];
        body.copy_from_slice(&self.0[..30]);
        let mut i = 30;
        loop {
            if i <= keep {
                return Err(EidError::Overflow(keep));
            }
            i -= 1;
            if body[i] == b'9' {
                body[i] = b'0';
            } else {
                body[i] += 1;
                break;
            }
        }
        let mut digits = [0u8; 32];
        digits[..30].copy_from_slice(&body);
        digits[30..].copy_from_slice(&check_digits(&body));
        Ok(Eid(digits))
    }

    pub fn as_str(&self) -> &str {
        // The constructor guarantees ASCII digits.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The EID digits read as a hexadecimal number (the SGP.26 v3 eUICC serial number form).
    pub fn to_bcd(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, pair) in self.0.chunks(2).enumerate() {
            out[i] = ((pair[0] - b'0') << 4) | (pair[1] - b'0');
        }
        out
    }
}

impl FromStr for Eid {
    type Err = EidError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Eid::parse(s)
    }
}

/// Serialized as its 32 digits; deserializing validates them.
impl serde::Serialize for Eid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Eid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Eid::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Eid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Eid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Eid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgp26_eid_is_valid() {
        let e = Eid::parse("89049032123451234512345678901235").expect("valid");
        assert_eq!(e.to_string(), "89049032123451234512345678901235");
        assert_eq!(
            Eid::parse("89049032123451234512345678901234"),
            Err(EidError::CheckDigits {
                expected: "35".into(),
                found: "34".into()
            })
        );
    }

    #[test]
    fn reports_what_is_wrong() {
        assert_eq!(Eid::parse("8904"), Err(EidError::Length(4)));
        assert_eq!(
            Eid::parse("8904903212345123451234567890123X"),
            Err(EidError::NotDigit {
                position: 31,
                found: 'X'
            })
        );
    }

    #[test]
    fn successors_stay_valid_and_in_prefix() {
        let mut e = Eid::parse("89049032123451234512345678901235").expect("valid");
        for _ in 0..1000 {
            let n = e.successor(8).expect("room");
            assert!(n > e);
            assert!(Eid::parse(n.as_str()).is_ok());
            assert!(n.as_str().starts_with("89049032"));
            e = n;
        }
        let last = Eid::from_body("890490329999999999999999999999").expect("valid");
        assert_eq!(last.successor(8), Err(EidError::Overflow(8)));
    }

    #[test]
    fn random_eids_are_valid() {
        for _ in 0..100 {
            let e = Eid::random_with_prefix("89049032").expect("random");
            assert!(e.as_str().starts_with("89049032"));
            assert!(Eid::parse(e.as_str()).is_ok());
        }
    }

    #[test]
    fn bcd_form() {
        let e = Eid::parse("89049032123451234512345678901235").expect("valid");
        assert_eq!(e.to_bcd()[0], 0x89);
        assert_eq!(e.to_bcd()[15], 0x35);
    }
}
