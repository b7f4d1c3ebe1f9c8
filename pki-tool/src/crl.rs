//! X.509 v2 CRLs (RFC 5280 section 5) shaped as SGP.26 describes its test CRLs: issued by a CA of
//! the hierarchy, ecdsa-with-SHA256 on the issuer's curve, AKI keyIdentifier only, a cRLNumber,
//! thisUpdate/nextUpdate, and per entry the serial, the revocation date and a reasonCode when one
//! is known. The issuingDistributionPoint extension is not written: SGP.26 v3's flags for it are
//! second-hand ([2nd] in `../shared/spec/sgp26-v3-variants.md` section 6) and no GSMA CRL DER is
//! public. Parsing keeps the exact TBS bytes so the signature is checked over what was received.

use crate::cert::Certificate;
use crate::keys::PrivateKey;
use crate::oid::known;
use crate::tlv::{self, DerError, tag};
use std::fmt;
use std::str::FromStr;

/// cRLNumber (RFC 5280 5.2.3).
const EXT_CRL_NUMBER: &[u8] = &[0x55, 0x1D, 0x14];
/// reasonCode (RFC 5280 5.3.1).
const EXT_REASON_CODE: &[u8] = &[0x55, 0x1D, 0x15];

/// Why a certificate was revoked (RFC 5280 CRLReason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    Unspecified = 0,
    KeyCompromise = 1,
    CaCompromise = 2,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
    CertificateHold = 6,
    PrivilegeWithdrawn = 9,
}

impl Reason {
    pub const ALL: [Reason; 8] = [
        Reason::Unspecified,
        Reason::KeyCompromise,
        Reason::CaCompromise,
        Reason::AffiliationChanged,
        Reason::Superseded,
        Reason::CessationOfOperation,
        Reason::CertificateHold,
        Reason::PrivilegeWithdrawn,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "keyCompromise",
            Reason::CaCompromise => "cACompromise",
            Reason::AffiliationChanged => "affiliationChanged",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessationOfOperation",
            Reason::CertificateHold => "certificateHold",
            Reason::PrivilegeWithdrawn => "privilegeWithdrawn",
        }
    }

    fn from_code(code: u64) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| *r as u64 == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Reason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reason::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
                format!("unknown reason {s:?}; reasons are {}", names.join(", "))
            })
    }
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// The serial number's magnitude, as in [`Certificate::serial`].
    pub serial: Vec<u8>,
    pub date: i64,
    pub reason: Option<Reason>,
}

/// What a CRL says, parsed; the TBS bytes are kept for the signature check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    der: Vec<u8>,
    tbs: std::ops::Range<usize>,
    issuer: std::ops::Range<usize>,
    pub signature_algorithm: Vec<u8>,
    pub signature: Vec<u8>,
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub number: Option<u64>,
    pub aki: Option<Vec<u8>>,
    pub revoked: Vec<RevokedEntry>,
}

/// What goes into a CRL.
#[derive(Debug, Clone)]
pub struct CrlInput<'a> {
    pub issuer: &'a Certificate,
    pub key: &'a PrivateKey,
    pub number: u64,
    pub this_update: i64,
    pub next_update: i64,
    pub revoked: &'a [RevokedEntry],
}

fn extension(oid: &[u8], value: &[u8]) -> Vec<u8> {
    tlv::sequence(&[&tlv::tlv(tag::OID, oid), &tlv::octet_string(value)])
}

/// Issues a CRL signed with the issuer's key.
pub fn issue(input: &CrlInput<'_>) -> Result<Crl, String> {
    if input.key.public_key() != &input.issuer.public_key {
        return Err(format!(
            "the key does not belong to the CRL issuer {}",
            input.issuer.subject
        ));
    }
    let algorithm = tlv::sequence(&[&tlv::tlv(tag::OID, known::ECDSA_WITH_SHA256)]);
    let mut entries = Vec::new();
    for r in input.revoked {
        let mut entry = vec![
            tlv::unsigned_integer(&r.serial),
            crate::time::encode(r.date)?,
        ];
        if let Some(reason) = r.reason {
            let code = extension(EXT_REASON_CODE, &tlv::tlv(0x0A, &[reason as u8]));
            entry.push(tlv::sequence(&[&code]));
        }
        entries.push(tlv::tlv(tag::SEQUENCE, &entry.concat()));
    }
    let aki = extension(
        known::EXT_AUTHORITY_KEY_ID,
        &tlv::sequence(&[&tlv::tlv(0x80, &input.issuer.key_id())]),
    );
    let number = extension(
        EXT_CRL_NUMBER,
        &tlv::unsigned_integer(&input.number.to_be_bytes()),
    );
    let mut parts = vec![
        tlv::tlv(tag::INTEGER, &[1]),
        algorithm.clone(),
        input.issuer.subject_der().to_vec(),
        crate::time::encode(input.this_update)?,
        crate::time::encode(input.next_update)?,
    ];
    if !entries.is_empty() {
        parts.push(tlv::tlv(tag::SEQUENCE, &entries.concat()));
    }
    parts.push(tlv::tlv(0xA0, &tlv::sequence(&[&aki, &number])));
    let tbs = tlv::tlv(tag::SEQUENCE, &parts.concat());
    let signature = input.key.sign_der(&tbs);
    let der = tlv::sequence(&[&tbs, &algorithm, &tlv::bit_string(&signature)]);
    Crl::from_der(&der).map_err(|e| format!("internal error: issued CRL does not parse: {e}"))
}

impl Crl {
    /// A CRL in DER, or the first `X509 CRL` block of a PEM file.
    pub fn from_der_or_pem(data: &[u8]) -> Result<Self, DerError> {
        if data.first() == Some(&0x30) {
            return Self::from_der(data);
        }
        let not_crl = || DerError {
            offset: 0,
            what: "neither a DER CRL nor a PEM file with an X509 CRL block".into(),
        };
        let text = std::str::from_utf8(data).map_err(|_| not_crl())?;
        let blocks = crate::keys::pem_blocks(text).map_err(|_| not_crl())?;
        let (_, der) = blocks
            .into_iter()
            .find(|(l, _)| l == "X509 CRL")
            .ok_or_else(not_crl)?;
        Self::from_der(&der)
    }

    pub fn from_der(der: &[u8]) -> Result<Self, DerError> {
        let top = tlv::parse_single(der, "CertificateList")?;
        let mut r = top.reader();
        let tbs = r.expect(tag::SEQUENCE, "TBSCertList")?;
        let sig_alg = r.expect(tag::SEQUENCE, "signatureAlgorithm")?;
        let sig_bits = r.expect(tag::BIT_STRING, "signatureValue")?;
        r.finish("CertificateList")?;
        let (_, signature) = tlv::read_bit_string(&sig_bits)?;
        let tbs_start = tbs.offset;
        let tbs_range = tbs_start..tbs_start + tbs.raw.len();
        let mut t = tbs.reader();
        let version = t.expect(tag::INTEGER, "version")?;
        if version.value != [1] {
            return Err(DerError {
                offset: version.offset,
                what: "CRL version must be v2".into(),
            });
        }
        let inner_alg = t.expect(tag::SEQUENCE, "signature")?;
        if inner_alg.raw != sig_alg.raw {
            return Err(DerError {
                offset: inner_alg.offset,
                what: "signature algorithms inside and outside the TBS differ".into(),
            });
        }
        let issuer = t.expect(tag::SEQUENCE, "issuer")?;
        let issuer_range = issuer.offset..issuer.offset + issuer.raw.len();
        let this_update = crate::time::parse(&t.read()?)?;
        let mut next_update = None;
        if matches!(t.peek_tag(), Some(tag::UTC_TIME | tag::GENERALIZED_TIME)) {
            next_update = Some(crate::time::parse(&t.read()?)?);
        }
        let mut revoked = Vec::new();
        if t.peek_tag() == Some(tag::SEQUENCE) {
            let list = t.read()?;
            let mut entries = list.reader();
            while !entries.is_empty() {
                let e = entries.expect(tag::SEQUENCE, "revokedCertificate")?;
                let mut er = e.reader();
                let serial = er.expect(tag::INTEGER, "userCertificate")?;
                let date = crate::time::parse(&er.read()?)?;
                let mut reason = None;
                if let Some(exts) = er.optional(tag::SEQUENCE)? {
                    for (oid, value) in extensions(&exts)? {
                        if oid == EXT_REASON_CODE {
                            let code = tlv::parse_single(&value, "CRLReason")?;
                            reason = code
                                .value
                                .first()
                                .and_then(|c| Reason::from_code(*c as u64));
                        }
                    }
                }
                revoked.push(RevokedEntry {
                    serial: strip_sign(serial.value),
                    date,
                    reason,
                });
            }
        }
        let (mut number, mut aki) = (None, None);
        if let Some(wrapper) = t.optional(0xA0)? {
            let exts = tlv::parse_single(wrapper.value, "crlExtensions")?;
            for (oid, value) in extensions(&exts)? {
                if oid == EXT_CRL_NUMBER {
                    let n = tlv::parse_single(&value, "CRLNumber")?;
                    number = Some(tlv::read_small_uint(n.value, n.offset)?);
                } else if oid == known::EXT_AUTHORITY_KEY_ID {
                    aki = Some(crate::ext::aki_key_id(&value)?);
                }
            }
        }
        t.finish("TBSCertList")?;
        Ok(Crl {
            der: der.to_vec(),
            tbs: tbs_range,
            issuer: issuer_range,
            signature_algorithm: sig_alg.raw.to_vec(),
            signature,
            this_update,
            next_update,
            number,
            aki,
            revoked,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    pub fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer.clone()]
    }

    /// The issuer's name as text (`CN=..., O=...`), or its hex when it does not parse.
    pub fn issuer_name(&self) -> String {
        tlv::parse_single(self.issuer_der(), "issuer")
            .and_then(|t| crate::name::Name::parse(&t))
            .map_or_else(
                |_| {
                    self.issuer_der()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect()
                },
                |n| n.to_string(),
            )
    }

    pub fn to_pem(&self) -> String {
        crate::keys::pem_block("X509 CRL", &self.der)
    }

    /// Whether `issuer` issued this CRL: its subject is the CRL's issuer name, its key identifier
    /// the CRL's AKI (when present), and its key verifies the signature over the exact TBS bytes.
    pub fn is_issued_by(&self, issuer: &Certificate) -> bool {
        issuer.subject_der() == self.issuer_der()
            && self.aki.as_ref().is_none_or(|a| *a == issuer.key_id())
            && self.signature_algorithm
                == tlv::sequence(&[&tlv::tlv(tag::OID, known::ECDSA_WITH_SHA256)])
            && issuer
                .public_key
                .verify_der(self.tbs_der(), &self.signature)
    }

    /// The entry for a certificate serial (magnitude bytes), if it is revoked here.
    pub fn entry(&self, serial: &[u8]) -> Option<&RevokedEntry> {
        let want = strip_sign(serial);
        self.revoked.iter().find(|e| e.serial == want)
    }
}

/// INTEGER content without the leading zero a positive number may carry.
fn strip_sign(v: &[u8]) -> Vec<u8> {
    let mut s = v;
    while s.len() > 1 && s[0] == 0 {
        s = &s[1..];
    }
    s.to_vec()
}

/// An extension's OID and extnValue.
type RawExtension = (Vec<u8>, Vec<u8>);

/// (OID, extnValue) of each extension in an Extensions SEQUENCE.
fn extensions(seq: &tlv::Tlv<'_>) -> Result<Vec<RawExtension>, DerError> {
    let mut out = Vec::new();
    let mut r = seq.reader();
    while !r.is_empty() {
        let e = r.expect(tag::SEQUENCE, "Extension")?;
        let mut er = e.reader();
        let oid = er.expect(tag::OID, "extnID")?;
        let _critical = er.optional(tag::BOOLEAN)?;
        let value = er.expect(tag::OCTET_STRING, "extnValue")?;
        er.finish("Extension")?;
        out.push((oid.value.to_vec(), value.value.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Curve;
    use crate::mint::{MintInput, Signer, mint};
    use crate::profile::{Profile, Vars};
    use crate::role::Role;

    #[test]
    fn issue_parse_verify_on_both_curves() {
        for curve in Curve::ALL {
            let key = PrivateKey::generate(curve).expect("key");
            let profile = Profile::builtin("default").expect("profile");
            let ci = mint(&MintInput {
                template: profile.template(Role::Ci),
                vars: &Vars::default(),
                subject_key: key.public_key(),
                signer: Signer::SelfSigned(&key),
                now: 1_700_000_000,
            })
            .expect("CI");
            let revoked = [
                RevokedEntry {
                    serial: vec![0x00, 0x80, 0x01],
                    date: 1_700_000_100,
                    reason: Some(Reason::KeyCompromise),
                },
                RevokedEntry {
                    serial: vec![0x09],
                    date: 1_700_000_200,
                    reason: None,
                },
            ];
            let crl = issue(&CrlInput {
                issuer: &ci,
                key: &key,
                number: 2024,
                this_update: 1_700_000_300,
                next_update: 1_700_000_300 + 1095 * 86_400,
                revoked: &revoked,
            })
            .expect("CRL");
            assert!(crl.is_issued_by(&ci));
            assert_eq!(crl.number, Some(2024));
            assert_eq!(crl.aki, Some(ci.key_id()));
            assert_eq!(crl.revoked.len(), 2);
            assert_eq!(
                crl.entry(&[0x80, 0x01]).and_then(|e| e.reason),
                Some(Reason::KeyCompromise)
            );
            assert!(crl.entry(&[0x00, 0x09]).is_some());
            assert!(crl.entry(&[0x0A]).is_none());
            let again = Crl::from_der_or_pem(crl.to_pem().as_bytes()).expect("PEM");
            assert_eq!(again, crl);
            // One flipped bit in the TBS breaks the signature.
            let mut bad = crl.der().to_vec();
            let at = bad.len() / 3;
            bad[at] ^= 1;
            if let Ok(t) = Crl::from_der(&bad) {
                assert!(!t.is_issued_by(&ci));
            }
        }
    }
}
