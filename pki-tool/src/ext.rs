//! X.509 extensions: DER encoding from an [`ExtensionSpec`] and decoding back into one, so that
//! minting, linting and validation share one model. SAN registeredIDs such as `2.999.10` are
//! handled here because the `der`/`const-oid` crates reject them.

use crate::name::{Attribute, Name};
use crate::oid::{Oid, known};
use crate::profile::{AttributeSpec, ExtensionSpec, KeyUsageBit, Vars};
use crate::tlv::{self, DerError, Tlv, tag};

/// Inputs that extension values depend on besides the template.
pub struct ExtContext<'a> {
    pub subject_ski: &'a [u8],
    /// The issuer's subject key identifier (the subject's own for a self-signed certificate).
    pub issuer_ski: &'a [u8],
}

fn oid_der(dotted: &str) -> Result<Vec<u8>, String> {
    Ok(Oid::parse(dotted).map_err(|e| e.to_string())?.to_der())
}

fn purpose_oid(p: &str) -> Result<Vec<u8>, String> {
    match p {
        "serverAuth" => Ok(tlv::tlv(tag::OID, known::KP_SERVER_AUTH)),
        "clientAuth" => Ok(tlv::tlv(tag::OID, known::KP_CLIENT_AUTH)),
        other => oid_der(other),
    }
}

fn purpose_name(content: &[u8]) -> Result<String, String> {
    Ok(match content {
        known::KP_SERVER_AUTH => "serverAuth".into(),
        known::KP_CLIENT_AUTH => "clientAuth".into(),
        other => Oid::from_der_content(other)
            .map_err(|e| e.to_string())?
            .to_string(),
    })
}

fn directory_name(attrs: &[AttributeSpec]) -> Result<Vec<u8>, String> {
    let empty = Vars::default();
    let attrs = attrs
        .iter()
        .map(|a| a.to_attribute(&empty))
        .collect::<Result<Vec<_>, _>>()?;
    Name::from_attributes(attrs).to_der()
}

fn general_name(s: &str) -> Result<Vec<u8>, String> {
    let (kind, value) = s
        .split_once(':')
        .ok_or_else(|| format!("subject alt name {s:?} must be dns:, rid:, uri: or email:"))?;
    match kind {
        "dns" => Ok(tlv::tlv(0x82, value.as_bytes())),
        "email" => Ok(tlv::tlv(0x81, value.as_bytes())),
        "uri" => Ok(tlv::tlv(0x86, value.as_bytes())),
        "rid" => Ok(tlv::tlv(
            0x88,
            Oid::parse(value).map_err(|e| e.to_string())?.as_bytes(),
        )),
        _ => Err(format!(
            "subject alt name {s:?} must be dns:, rid:, uri: or email:"
        )),
    }
}

fn ia5(s: &str, what: &str) -> Result<(), String> {
    if s.is_ascii() {
        Ok(())
    } else {
        Err(format!("{what} {s:?} must be ASCII (IA5String)"))
    }
}

/// The DER `Extension` for a resolved spec.
pub fn encode(spec: &ExtensionSpec, ctx: &ExtContext<'_>) -> Result<Vec<u8>, String> {
    let (oid, value): (&[u8], Vec<u8>) = match spec {
        ExtensionSpec::SubjectKeyIdentifier { .. } => (
            known::EXT_SUBJECT_KEY_ID,
            tlv::octet_string(ctx.subject_ski),
        ),
        ExtensionSpec::AuthorityKeyIdentifier { .. } => (
            known::EXT_AUTHORITY_KEY_ID,
            tlv::sequence(&[&tlv::tlv(0x80, ctx.issuer_ski)]),
        ),
        ExtensionSpec::BasicConstraints { ca, path_len, .. } => {
            let mut parts = Vec::new();
            if *ca {
                parts.push(tlv::boolean(true));
            }
            if let Some(n) = path_len {
                parts.push(tlv::unsigned_integer(&n.to_be_bytes()));
            }
            (
                known::EXT_BASIC_CONSTRAINTS,
                tlv::tlv(tag::SEQUENCE, &parts.concat()),
            )
        }
        ExtensionSpec::KeyUsage { usages, .. } => (known::EXT_KEY_USAGE, key_usage_bits(usages)?),
        ExtensionSpec::ExtendedKeyUsage { purposes, .. } => {
            let oids = purposes
                .iter()
                .map(|p| purpose_oid(p))
                .collect::<Result<Vec<_>, _>>()?;
            (
                known::EXT_EXTENDED_KEY_USAGE,
                tlv::tlv(tag::SEQUENCE, &oids.concat()),
            )
        }
        ExtensionSpec::CertificatePolicies { policies, .. } => {
            let infos = policies
                .iter()
                .map(|p| Ok(tlv::sequence(&[&oid_der(p)?])))
                .collect::<Result<Vec<_>, String>>()?;
            (
                known::EXT_CERTIFICATE_POLICIES,
                tlv::tlv(tag::SEQUENCE, &infos.concat()),
            )
        }
        ExtensionSpec::SubjectAltName { names, .. } => {
            let names = names
                .iter()
                .map(|n| general_name(n))
                .collect::<Result<Vec<_>, _>>()?;
            (
                known::EXT_SUBJECT_ALT_NAME,
                tlv::tlv(tag::SEQUENCE, &names.concat()),
            )
        }
        ExtensionSpec::CrlDistributionPoints { uris, .. } => {
            let dps = uris
                .iter()
                .map(|u| {
                    ia5(u, "CRL distribution point")?;
                    let full_name = tlv::tlv(0xA0, &tlv::tlv(0x86, u.as_bytes()));
                    Ok(tlv::sequence(&[&tlv::tlv(0xA0, &full_name)]))
                })
                .collect::<Result<Vec<_>, String>>()?;
            (
                known::EXT_CRL_DISTRIBUTION_POINTS,
                tlv::tlv(tag::SEQUENCE, &dps.concat()),
            )
        }
        ExtensionSpec::NameConstraints {
            permitted,
            excluded,
            ..
        } => {
            let subtrees = |dns: &Vec<Vec<AttributeSpec>>| -> Result<Vec<u8>, String> {
                let trees = dns
                    .iter()
                    .map(|dn| Ok(tlv::sequence(&[&tlv::tlv(0xA4, &directory_name(dn)?)])))
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(trees.concat())
            };
            let mut parts = Vec::new();
            if !permitted.is_empty() {
                parts.push(tlv::tlv(0xA0, &subtrees(permitted)?));
            }
            if !excluded.is_empty() {
                parts.push(tlv::tlv(0xA1, &subtrees(excluded)?));
            }
            (
                known::EXT_NAME_CONSTRAINTS,
                tlv::tlv(tag::SEQUENCE, &parts.concat()),
            )
        }
        ExtensionSpec::PermittedEins { eins, .. } => {
            let items = eins
                .iter()
                .map(|e| {
                    if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(format!("permitted EIN {e:?} must be decimal digits"));
                    }
                    Ok(tlv::tlv(tag::PRINTABLE_STRING, e.as_bytes()))
                })
                .collect::<Result<Vec<_>, String>>()?;
            (
                known::EXT_PERMITTED_EINS,
                tlv::tlv(tag::SEQUENCE, &items.concat()),
            )
        }
    };
    let mut parts = vec![tlv::tlv(tag::OID, oid)];
    if spec.critical() {
        parts.push(tlv::boolean(true));
    }
    parts.push(tlv::octet_string(&value));
    Ok(tlv::tlv(tag::SEQUENCE, &parts.concat()))
}

fn key_usage_bits(usages: &[KeyUsageBit]) -> Result<Vec<u8>, String> {
    if usages.is_empty() {
        return Err("key_usage needs at least one usage".into());
    }
    let mut bits: u16 = 0;
    for u in usages {
        bits |= 1 << (15 - *u as u16);
    }
    let bytes = bits.to_be_bytes();
    let len = if bytes[1] == 0 { 1 } else { 2 };
    let last = bytes[len - 1];
    let unused = last.trailing_zeros() as u8;
    let mut content = vec![unused];
    content.extend_from_slice(&bytes[..len]);
    Ok(tlv::tlv(tag::BIT_STRING, &content))
}

fn derr(what: impl Into<String>, offset: usize) -> DerError {
    DerError {
        what: what.into(),
        offset,
    }
}

fn seq_items<'a>(value: &'a [u8], base: usize, what: &str) -> Result<Vec<Tlv<'a>>, DerError> {
    let t = tlv::parse_single(value, what).map_err(|e| derr(e.what, base + e.offset))?;
    if t.tag != tag::SEQUENCE {
        return Err(derr(format!("{what} must be a SEQUENCE"), base));
    }
    let mut r = t.reader();
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.read()?);
    }
    Ok(out)
}

fn text(t: &Tlv<'_>, what: &str) -> Result<String, DerError> {
    std::str::from_utf8(t.value)
        .map(str::to_string)
        .map_err(|_| derr(format!("{what} is not valid text"), t.offset))
}

fn oid_text(t: &Tlv<'_>) -> Result<String, DerError> {
    if t.tag != tag::OID {
        return Err(derr("expected an OBJECT IDENTIFIER", t.offset));
    }
    Oid::from_der_content(t.value)
        .map(|o| o.to_string())
        .map_err(|e| derr(e.to_string(), t.offset))
}

fn decode_general_name(t: &Tlv<'_>) -> Result<String, DerError> {
    Ok(match t.tag {
        0x81 => format!("email:{}", text(t, "rfc822Name")?),
        0x82 => format!("dns:{}", text(t, "dNSName")?),
        0x86 => format!("uri:{}", text(t, "URI")?),
        0x88 => format!(
            "rid:{}",
            Oid::from_der_content(t.value).map_err(|e| derr(e.to_string(), t.offset))?
        ),
        0xA4 => {
            let n = Name::parse(&tlv::parse_single(t.value, "directoryName")?)?;
            format!("dirname:{n}")
        }
        other => format!("other:[{other:02X}]"),
    })
}

fn decode_directory_subtrees(t: &Tlv<'_>) -> Result<Vec<Vec<AttributeSpec>>, DerError> {
    let mut out = Vec::new();
    let mut r = t.reader();
    while !r.is_empty() {
        let subtree = r.expect(tag::SEQUENCE, "GeneralSubtree")?;
        let mut sr = subtree.reader();
        let base = sr.read()?;
        if base.tag != 0xA4 {
            return Err(derr(
                format!(
                    "name constraint on general name [{:02X}] is not supported",
                    base.tag
                ),
                base.offset,
            ));
        }
        if !sr.is_empty() {
            return Err(derr(
                "GeneralSubtree minimum/maximum are not supported",
                subtree.offset,
            ));
        }
        let name = Name::parse(&tlv::parse_single(base.value, "directoryName")?)?;
        out.push(
            name.attributes()
                .map(AttributeSpec::from_attribute)
                .collect(),
        );
    }
    Ok(out)
}

/// Decodes a known extension; `Ok(None)` for an extension this crate does not know.
pub fn decode(
    oid: &[u8],
    critical: bool,
    value: &[u8],
    offset: usize,
) -> Result<Option<ExtensionSpec>, DerError> {
    let spec = match oid {
        known::EXT_SUBJECT_KEY_ID => {
            let t = tlv::parse_single(value, "SubjectKeyIdentifier")?;
            if t.tag != tag::OCTET_STRING {
                return Err(derr("SubjectKeyIdentifier must be an OCTET STRING", offset));
            }
            ExtensionSpec::SubjectKeyIdentifier { critical }
        }
        known::EXT_AUTHORITY_KEY_ID => {
            let items = seq_items(value, offset, "AuthorityKeyIdentifier")?;
            if items.first().map(|t| t.tag) != Some(0x80) {
                return Err(derr("AuthorityKeyIdentifier has no keyIdentifier", offset));
            }
            ExtensionSpec::AuthorityKeyIdentifier { critical }
        }
        known::EXT_BASIC_CONSTRAINTS => {
            let items = seq_items(value, offset, "BasicConstraints")?;
            let mut ca = false;
            let mut path_len = None;
            let mut it = items.iter().peekable();
            if let Some(t) = it.next_if(|t| t.tag == tag::BOOLEAN) {
                if t.value != [0xFF] {
                    return Err(derr(
                        "BasicConstraints cA must be DER TRUE when present",
                        t.offset,
                    ));
                }
                ca = true;
            }
            if let Some(t) = it.next_if(|t| t.tag == tag::INTEGER) {
                let n = tlv::read_small_uint(t.value, t.offset)?;
                path_len = Some(
                    u32::try_from(n).map_err(|_| derr("pathLenConstraint too large", t.offset))?,
                );
            }
            if it.next().is_some() {
                return Err(derr("unexpected data in BasicConstraints", offset));
            }
            ExtensionSpec::BasicConstraints {
                critical,
                ca,
                path_len,
            }
        }
        known::EXT_KEY_USAGE => {
            let t = tlv::parse_single(value, "KeyUsage")?;
            if t.tag != tag::BIT_STRING {
                return Err(derr("KeyUsage must be a BIT STRING", offset));
            }
            let (_, bytes) = tlv::read_bit_string(&t)?;
            let usages = KeyUsageBit::ALL
                .into_iter()
                .filter(|b| {
                    let i = *b as usize;
                    bytes
                        .get(i / 8)
                        .is_some_and(|byte| byte & (0x80 >> (i % 8)) != 0)
                })
                .collect();
            ExtensionSpec::KeyUsage { critical, usages }
        }
        known::EXT_EXTENDED_KEY_USAGE => {
            let purposes = seq_items(value, offset, "ExtendedKeyUsage")?
                .iter()
                .map(|t| {
                    if t.tag != tag::OID {
                        return Err(derr("ExtendedKeyUsage entries must be OIDs", t.offset));
                    }
                    purpose_name(t.value).map_err(|e| derr(e, t.offset))
                })
                .collect::<Result<_, _>>()?;
            ExtensionSpec::ExtendedKeyUsage { critical, purposes }
        }
        known::EXT_CERTIFICATE_POLICIES => {
            let policies = seq_items(value, offset, "CertificatePolicies")?
                .iter()
                .map(|info| {
                    let mut r = info.reader();
                    oid_text(&r.read()?)
                })
                .collect::<Result<_, _>>()?;
            ExtensionSpec::CertificatePolicies { critical, policies }
        }
        known::EXT_SUBJECT_ALT_NAME => {
            let names = seq_items(value, offset, "SubjectAltName")?
                .iter()
                .map(decode_general_name)
                .collect::<Result<_, _>>()?;
            ExtensionSpec::SubjectAltName { critical, names }
        }
        known::EXT_CRL_DISTRIBUTION_POINTS => {
            let mut uris = Vec::new();
            for dp in seq_items(value, offset, "CRLDistributionPoints")? {
                let mut r = dp.reader();
                let Some(name) = r.optional(0xA0)? else {
                    return Err(derr(
                        "distribution point without a name is not supported",
                        dp.offset,
                    ));
                };
                let full = tlv::parse_single(name.value, "DistributionPointName")?;
                if full.tag != 0xA0 {
                    return Err(derr(
                        "only fullName distribution points are supported",
                        full.offset,
                    ));
                }
                let mut fr = full.reader();
                while !fr.is_empty() {
                    let gn = fr.read()?;
                    let s = decode_general_name(&gn)?;
                    uris.push(s.strip_prefix("uri:").map(str::to_string).unwrap_or(s));
                }
            }
            ExtensionSpec::CrlDistributionPoints { critical, uris }
        }
        known::EXT_NAME_CONSTRAINTS => {
            let mut permitted = Vec::new();
            let mut excluded = Vec::new();
            for part in seq_items(value, offset, "NameConstraints")? {
                match part.tag {
                    0xA0 => permitted = decode_directory_subtrees(&part)?,
                    0xA1 => excluded = decode_directory_subtrees(&part)?,
                    _ => return Err(derr("unexpected element in NameConstraints", part.offset)),
                }
            }
            ExtensionSpec::NameConstraints {
                critical,
                permitted,
                excluded,
            }
        }
        known::EXT_PERMITTED_EINS => {
            let eins = seq_items(value, offset, "permittedEins")?
                .iter()
                .map(|t| {
                    if t.tag != tag::PRINTABLE_STRING {
                        return Err(derr(
                            "permittedEins entries must be PrintableString",
                            t.offset,
                        ));
                    }
                    text(t, "EIN")
                })
                .collect::<Result<_, _>>()?;
            ExtensionSpec::PermittedEins { critical, eins }
        }
        _ => return Ok(None),
    };
    Ok(Some(spec))
}

/// The raw keyIdentifier of an AuthorityKeyIdentifier value.
pub fn aki_key_id(value: &[u8]) -> Result<Vec<u8>, DerError> {
    let items = seq_items(value, 0, "AuthorityKeyIdentifier")?;
    items
        .iter()
        .find(|t| t.tag == 0x80)
        .map(|t| t.value.to_vec())
        .ok_or_else(|| derr("AuthorityKeyIdentifier has no keyIdentifier", 0))
}

/// The raw value of a SubjectKeyIdentifier.
pub fn ski_value(value: &[u8]) -> Result<Vec<u8>, DerError> {
    Ok(tlv::parse_single(value, "SubjectKeyIdentifier")?
        .value
        .to_vec())
}

/// Attribute specs as attributes (name constraints carry explicit string types once decoded).
pub fn attributes(specs: &[AttributeSpec]) -> Result<Vec<Attribute>, String> {
    let empty = Vars::default();
    specs.iter().map(|a| a.to_attribute(&empty)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usage_encodings_match_openssl() {
        use KeyUsageBit::*;
        assert_eq!(
            key_usage_bits(&[KeyCertSign, CrlSign]).expect("ok"),
            vec![3, 2, 1, 6]
        );
        assert_eq!(
            key_usage_bits(&[DigitalSignature]).expect("ok"),
            vec![3, 2, 7, 0x80]
        );
        assert_eq!(
            key_usage_bits(&[KeyCertSign]).expect("ok"),
            vec![3, 2, 2, 4]
        );
        assert_eq!(
            key_usage_bits(&[DecipherOnly]).expect("ok"),
            vec![3, 3, 7, 0, 0x80]
        );
    }

    #[test]
    fn decode_inverts_encode() {
        let ctx = ExtContext {
            subject_ski: &[1; 20],
            issuer_ski: &[2; 20],
        };
        let specs = [
            ExtensionSpec::BasicConstraints {
                critical: true,
                ca: true,
                path_len: Some(0),
            },
            ExtensionSpec::SubjectAltName {
                critical: false,
                names: vec!["dns:a.example".into(), "rid:2.999.10".into()],
            },
            ExtensionSpec::ExtendedKeyUsage {
                critical: true,
                purposes: vec!["serverAuth".into(), "clientAuth".into()],
            },
            ExtensionSpec::PermittedEins {
                critical: false,
                eins: vec!["89049032".into()],
            },
            ExtensionSpec::CrlDistributionPoints {
                critical: false,
                uris: vec!["http://x/a.crl".into(), "http://x/b.crl".into()],
            },
        ];
        for s in specs {
            let der = encode(&s, &ctx).expect("encodes");
            let t = tlv::parse_single(&der, "ext").expect("der");
            let mut r = t.reader();
            let oid = r.read().expect("oid");
            let mut crit = false;
            if r.peek_tag() == Some(tag::BOOLEAN) {
                crit = r.read().expect("bool").value == [0xFF];
            }
            let v = r.read().expect("value");
            assert_eq!(
                decode(oid.value, crit, v.value, 0).expect("decodes"),
                Some(s)
            );
        }
    }
}
