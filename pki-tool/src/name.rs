//! X.501 distinguished names with explicit string types per attribute. SGP.26 uses UTF8String for
//! CN, O and OU and PrintableString for C and serialNumber; getting one wrong changes the TBS bytes.

use crate::oid::{Oid, known};
use crate::tlv::{self, DerError, Tlv, tag};
use std::fmt;

/// The ASN.1 string type an attribute value is encoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StringType {
    Utf8,
    Printable,
    Ia5,
}

impl StringType {
    pub fn tag(self) -> u32 {
        match self {
            StringType::Utf8 => tag::UTF8_STRING,
            StringType::Printable => tag::PRINTABLE_STRING,
            StringType::Ia5 => tag::IA5_STRING,
        }
    }

    pub fn from_tag(t: u32) -> Option<Self> {
        match t {
            tag::UTF8_STRING => Some(StringType::Utf8),
            tag::PRINTABLE_STRING => Some(StringType::Printable),
            tag::IA5_STRING => Some(StringType::Ia5),
            _ => None,
        }
    }

    /// Whether `s` can be encoded with this type.
    pub fn accepts(self, s: &str) -> bool {
        match self {
            StringType::Utf8 => true,
            StringType::Ia5 => s.is_ascii(),
            StringType::Printable => s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)),
        }
    }
}

/// Short names for the attribute types SGP.26 uses, and their usual string types.
const ATTRIBUTE_NAMES: &[(&str, &[u8], StringType)] = &[
    ("CN", known::AT_COMMON_NAME, StringType::Utf8),
    (
        "serialNumber",
        known::AT_SERIAL_NUMBER,
        StringType::Printable,
    ),
    ("C", known::AT_COUNTRY, StringType::Printable),
    ("L", known::AT_LOCALITY, StringType::Utf8),
    ("ST", known::AT_STATE, StringType::Utf8),
    ("O", known::AT_ORGANIZATION, StringType::Utf8),
    ("OU", known::AT_ORGANIZATIONAL_UNIT, StringType::Utf8),
];

/// Resolves `CN`, `O`, ... or a dotted OID to the attribute type OID.
pub fn attribute_oid(name: &str) -> Result<Oid, String> {
    if let Some((_, oid, _)) = ATTRIBUTE_NAMES.iter().find(|(n, _, _)| *n == name) {
        return Oid::from_der_content(oid).map_err(|e| e.to_string());
    }
    Oid::parse(name).map_err(|_| {
        format!("unknown attribute type {name:?} (use CN, O, OU, C, L, ST, serialNumber or an OID)")
    })
}

/// The short name of an attribute type, or its dotted OID.
pub fn attribute_name(oid: &Oid) -> String {
    ATTRIBUTE_NAMES
        .iter()
        .find(|(_, o, _)| *o == oid.as_bytes())
        .map(|(n, _, _)| (*n).to_string())
        .unwrap_or_else(|| oid.to_string())
}

/// The string type SGP.26 uses for an attribute type.
pub fn default_string_type(oid: &Oid) -> StringType {
    ATTRIBUTE_NAMES
        .iter()
        .find(|(_, o, _)| *o == oid.as_bytes())
        .map(|(_, _, t)| *t)
        .unwrap_or(StringType::Utf8)
}

/// One attribute of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub oid: Oid,
    pub string: StringType,
    pub value: String,
}

impl Attribute {
    pub fn to_der(&self) -> Result<Vec<u8>, String> {
        if !self.string.accepts(&self.value) {
            return Err(format!(
                "{}={:?} cannot be encoded as {:?}String",
                attribute_name(&self.oid),
                self.value,
                self.string
            ));
        }
        Ok(tlv::sequence(&[
            &self.oid.to_der(),
            &tlv::tlv(self.string.tag(), self.value.as_bytes()),
        ]))
    }
}

/// A distinguished name as a sequence of RDNs (SGP.26 uses one attribute per RDN).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name {
    pub rdns: Vec<Vec<Attribute>>,
}

impl Name {
    /// A name with one attribute per RDN, in the given order.
    pub fn from_attributes(attrs: Vec<Attribute>) -> Self {
        Name {
            rdns: attrs.into_iter().map(|a| vec![a]).collect(),
        }
    }

    pub fn to_der(&self) -> Result<Vec<u8>, String> {
        let mut rdns = Vec::new();
        for rdn in &self.rdns {
            let mut attrs = rdn
                .iter()
                .map(Attribute::to_der)
                .collect::<Result<Vec<_>, _>>()?;
            attrs.sort(); // DER SET OF ordering
            rdns.extend(tlv::constructed(
                tag::SET,
                &attrs.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            ));
        }
        Ok(tlv::tlv(tag::SEQUENCE, &rdns))
    }

    /// Parses a DER `Name`.
    pub fn parse(t: &Tlv<'_>) -> Result<Self, DerError> {
        if t.tag != tag::SEQUENCE {
            return Err(DerError {
                what: "Name must be a SEQUENCE".into(),
                offset: t.offset,
            });
        }
        let mut rdns = Vec::new();
        let mut r = t.reader();
        while !r.is_empty() {
            let set = r.expect(tag::SET, "RelativeDistinguishedName")?;
            let mut attrs = Vec::new();
            let mut sr = set.reader();
            while !sr.is_empty() {
                let atv = sr.expect(tag::SEQUENCE, "AttributeTypeAndValue")?;
                let mut ar = atv.reader();
                let oid_tlv = ar.expect(tag::OID, "attribute type")?;
                let oid = Oid::from_der_content(oid_tlv.value).map_err(|e| DerError {
                    what: e.to_string(),
                    offset: oid_tlv.offset,
                })?;
                let v = ar.read()?;
                ar.finish("AttributeTypeAndValue")?;
                let string = StringType::from_tag(v.tag).ok_or_else(|| DerError {
                    what: format!("unsupported attribute value type {:02X}", v.tag),
                    offset: v.offset,
                })?;
                let value = std::str::from_utf8(v.value)
                    .map_err(|_| DerError {
                        what: "attribute value is not valid UTF-8".into(),
                        offset: v.offset,
                    })?
                    .to_string();
                if !string.accepts(&value) {
                    return Err(DerError {
                        what: format!(
                            "attribute value {value:?} has characters its string type forbids"
                        ),
                        offset: v.offset,
                    });
                }
                attrs.push(Attribute { oid, string, value });
            }
            if attrs.is_empty() {
                return Err(DerError {
                    what: "empty RDN".into(),
                    offset: set.offset,
                });
            }
            rdns.push(attrs);
        }
        Ok(Name { rdns })
    }

    /// All attributes, in order.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.rdns.iter().flatten()
    }

    /// The value of the first attribute of the given type.
    pub fn get(&self, oid: &[u8]) -> Option<&str> {
        self.attributes()
            .find(|a| a.oid.as_bytes() == oid)
            .map(|a| a.value.as_str())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .attributes()
            .map(|a| format!("{}={}", attribute_name(&a.oid), a.value))
            .collect();
        f.write_str(&parts.join(", "))
    }
}
