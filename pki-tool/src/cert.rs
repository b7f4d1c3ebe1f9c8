//! A parsed X.509 certificate that keeps its exact bytes: the TBS slice that was signed, the raw
//! subject and issuer names, and every extension in order (decoded where we know it).

use crate::ext;
use crate::keys::{KeyError, PublicKey};
use crate::name::Name;
use crate::oid::{Oid, known};
use crate::profile::ExtensionSpec;
use crate::tlv::{self, DerError, tag};
use std::ops::Range;

/// An extension as it appears in the certificate.
#[derive(Debug, Clone)]
pub struct Extension {
    pub oid: Oid,
    pub critical: bool,
    pub value: Vec<u8>,
    /// The decoded form, for extensions this crate knows.
    pub spec: Option<ExtensionSpec>,
}

/// Why a certificate could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("{0}")]
    Der(#[from] DerError),
    #[error("public key: {0}")]
    Key(#[from] KeyError),
    #[error("not a certificate: {0}")]
    Structure(String),
    #[error("no CERTIFICATE PEM block and not DER")]
    NotCertificate,
}

/// A parsed certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    subject_raw: Range<usize>,
    issuer_raw: Range<usize>,
    pub version: u64,
    /// INTEGER content octets of the serial number.
    pub serial: Vec<u8>,
    pub tbs_signature_algorithm: Vec<u8>,
    pub signature_algorithm: Vec<u8>,
    pub issuer: Name,
    pub subject: Name,
    pub not_before: i64,
    pub not_after: i64,
    /// Tags of the notBefore/notAfter encodings (UTCTime 0x17 or GeneralizedTime 0x18).
    pub time_tags: (u32, u32),
    pub public_key: PublicKey,
    pub extensions: Vec<Extension>,
    /// DER ECDSA signature from the signatureValue BIT STRING.
    pub signature: Vec<u8>,
}

fn structure(what: &str) -> CertError {
    CertError::Structure(what.to_string())
}

impl Certificate {
    /// Parses DER, or PEM with a `CERTIFICATE` block.
    pub fn from_der_or_pem(data: &[u8]) -> Result<Self, CertError> {
        if data.first() == Some(&0x30) {
            return Self::from_der(data);
        }
        let text = std::str::from_utf8(data).map_err(|_| CertError::NotCertificate)?;
        let blocks = crate::keys::pem_blocks(text).map_err(|_| CertError::NotCertificate)?;
        let (_, der) = blocks
            .into_iter()
            .find(|(l, _)| l == "CERTIFICATE")
            .ok_or(CertError::NotCertificate)?;
        Self::from_der(&der)
    }

    /// Every certificate in a file: one DER certificate, or each `CERTIFICATE` block of a PEM
    /// file in order (a leaf followed by its intermediates, as TLS servers are usually given).
    pub fn all_from_der_or_pem(data: &[u8]) -> Result<Vec<Self>, CertError> {
        if data.first() == Some(&0x30) {
            return Ok(vec![Self::from_der(data)?]);
        }
        let text = std::str::from_utf8(data).map_err(|_| CertError::NotCertificate)?;
        let blocks = crate::keys::pem_blocks(text).map_err(|_| CertError::NotCertificate)?;
        let certs = blocks
            .into_iter()
            .filter(|(l, _)| l == "CERTIFICATE")
            .map(|(_, der)| Self::from_der(&der))
            .collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(CertError::NotCertificate);
        }
        Ok(certs)
    }

    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let top = tlv::parse_single(der, "Certificate")?;
        if top.tag != tag::SEQUENCE {
            return Err(structure("Certificate must be a SEQUENCE"));
        }
        let mut r = top.reader();
        let tbs = r.expect(tag::SEQUENCE, "TBSCertificate")?;
        let sig_alg = r.expect(tag::SEQUENCE, "signatureAlgorithm")?;
        let sig_bits = r.expect(tag::BIT_STRING, "signatureValue")?;
        r.finish("Certificate")?;
        let (unused, signature) = tlv::read_bit_string(&sig_bits)?;
        if unused != 0 {
            return Err(structure("signatureValue has unused bits"));
        }

        let mut t = tbs.reader();
        let version = match t.optional(0xA0)? {
            Some(v) => {
                let i = tlv::parse_single(v.value, "version")?;
                if i.tag != tag::INTEGER {
                    return Err(structure("version must be an INTEGER"));
                }
                tlv::read_small_uint(i.value, i.offset)? + 1
            }
            None => 1,
        };
        let serial_t = t.expect(tag::INTEGER, "serialNumber")?;
        if serial_t.value.is_empty() || serial_t.value.len() > 21 {
            return Err(structure("serialNumber must be 1 to 20 octets"));
        }
        let tbs_sig_alg = t.expect(tag::SEQUENCE, "signature")?;
        let issuer_t = t.read()?;
        let issuer = Name::parse(&issuer_t)?;
        let validity = t.expect(tag::SEQUENCE, "validity")?;
        let mut vr = validity.reader();
        let nb = vr.read()?;
        let na = vr.read()?;
        vr.finish("Validity")?;
        let subject_t = t.read()?;
        let subject = Name::parse(&subject_t)?;
        let spki = t.expect(tag::SEQUENCE, "subjectPublicKeyInfo")?;
        let public_key = PublicKey::from_spki_der(spki.raw)?;
        let mut extensions = Vec::new();
        // Unique identifiers are obsolete; skip them if present.
        t.optional(0x81)?;
        t.optional(0x82)?;
        if let Some(exts) = t.optional(0xA3)? {
            if version != 3 {
                return Err(structure("extensions require version 3"));
            }
            let seq = tlv::parse_single(exts.value, "Extensions")?;
            let mut er = seq.reader();
            while !er.is_empty() {
                let e = er.expect(tag::SEQUENCE, "Extension")?;
                let mut xr = e.reader();
                let oid_t = xr.expect(tag::OID, "extnID")?;
                let oid =
                    Oid::from_der_content(oid_t.value).map_err(|e| structure(&e.to_string()))?;
                let mut critical = false;
                if let Some(b) = xr.optional(tag::BOOLEAN)? {
                    // DER forbids encoding the default FALSE.
                    if b.value != [0xFF] {
                        return Err(structure(
                            "extension critical flag must be DER TRUE when present",
                        ));
                    }
                    critical = true;
                }
                let value_t = xr.expect(tag::OCTET_STRING, "extnValue")?;
                xr.finish("Extension")?;
                if extensions.iter().any(|x: &Extension| x.oid == oid) {
                    return Err(CertError::Structure(format!(
                        "extension {oid} appears twice"
                    )));
                }
                let spec = ext::decode(
                    oid.as_bytes(),
                    critical,
                    value_t.value,
                    value_t.value_offset(),
                )?;
                extensions.push(Extension {
                    oid,
                    critical,
                    value: value_t.value.to_vec(),
                    spec,
                });
            }
        }
        t.finish("TBSCertificate")?;

        Ok(Certificate {
            der: der.to_vec(),
            tbs: tbs.offset..tbs.offset + tbs.raw.len(),
            subject_raw: subject_t.offset..subject_t.offset + subject_t.raw.len(),
            issuer_raw: issuer_t.offset..issuer_t.offset + issuer_t.raw.len(),
            version,
            serial: serial_t.value.to_vec(),
            tbs_signature_algorithm: tbs_sig_alg.raw.to_vec(),
            signature_algorithm: sig_alg.raw.to_vec(),
            issuer,
            subject,
            not_before: crate::time::parse(&nb)?,
            not_after: crate::time::parse(&na)?,
            time_tags: (nb.tag, na.tag),
            public_key,
            extensions,
            signature,
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The exact TBSCertificate bytes that were signed.
    pub fn tbs_der(&self) -> &[u8] {
        &self.der[self.tbs.clone()]
    }

    pub fn subject_der(&self) -> &[u8] {
        &self.der[self.subject_raw.clone()]
    }

    pub fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer_raw.clone()]
    }

    pub fn to_pem(&self) -> String {
        crate::keys::pem_block("CERTIFICATE", &self.der)
    }

    pub fn extension(&self, oid: &[u8]) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.oid.as_bytes() == oid)
    }

    /// The subject key identifier value, if the extension is present.
    pub fn ski(&self) -> Option<Vec<u8>> {
        self.extension(known::EXT_SUBJECT_KEY_ID)
            .and_then(|e| ext::ski_value(&e.value).ok())
    }

    /// The key identifier certificates issued by this one carry: the SKI, or SHA-1 of the point.
    pub fn key_id(&self) -> Vec<u8> {
        self.ski().unwrap_or_else(|| self.public_key.ski().to_vec())
    }

    /// The authority key identifier's keyIdentifier, if present.
    pub fn aki(&self) -> Option<Vec<u8>> {
        self.extension(known::EXT_AUTHORITY_KEY_ID)
            .and_then(|e| ext::aki_key_id(&e.value).ok())
    }

    /// Certificate policy OIDs, dotted.
    pub fn policies(&self) -> Vec<String> {
        match self
            .extension(known::EXT_CERTIFICATE_POLICIES)
            .and_then(|e| e.spec.as_ref())
        {
            Some(ExtensionSpec::CertificatePolicies { policies, .. }) => policies.clone(),
            _ => Vec::new(),
        }
    }

    /// The SAN entries as `dns:`/`rid:`/... strings.
    pub fn subject_alt_names(&self) -> Vec<String> {
        match self
            .extension(known::EXT_SUBJECT_ALT_NAME)
            .and_then(|e| e.spec.as_ref())
        {
            Some(ExtensionSpec::SubjectAltName { names, .. }) => names.clone(),
            _ => Vec::new(),
        }
    }

    /// Whether the subject and issuer are the same name and the certificate verifies under its own key.
    pub fn is_self_signed(&self) -> bool {
        self.subject_der() == self.issuer_der()
            && self.public_key.verify_der(self.tbs_der(), &self.signature)
    }

    /// Hex of the serial number content octets.
    pub fn serial_hex(&self) -> String {
        crate::oid::hex(&self.serial)
    }
}
