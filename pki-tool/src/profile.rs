//! Certificate templates: one TOML file per role in `certs-templates/<profile>/`, built into the
//! binary and overridable from a directory. A template says everything that shapes a certificate
//! (subject attributes with string types, extensions in order with criticality and values, serial
//! policy, validity); `{name}` placeholders are filled from variables at mint time.

use crate::name::{self, Attribute, StringType};
use crate::role::Role;
use crate::variant::Variant;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A subject (or name-constraint) attribute in a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// `CN`, `O`, `OU`, `C`, `L`, `ST`, `serialNumber` or a dotted OID.
    #[serde(rename = "type")]
    pub attr: String,
    /// The ASN.1 string type; when absent, the SGP.26 convention for the attribute type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string: Option<StringType>,
    pub value: String,
}

impl AttributeSpec {
    pub fn to_attribute(&self, vars: &Vars) -> Result<Attribute, String> {
        let oid = name::attribute_oid(&self.attr)?;
        let string = self
            .string
            .unwrap_or_else(|| name::default_string_type(&oid));
        Ok(Attribute {
            oid,
            string,
            value: vars.resolve(&self.value)?,
        })
    }

    pub fn from_attribute(a: &Attribute) -> Self {
        AttributeSpec {
            attr: name::attribute_name(&a.oid),
            string: Some(a.string),
            value: a.value.clone(),
        }
    }
}

/// KeyUsage bits (RFC 5280 4.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KeyUsageBit {
    #[serde(rename = "digitalSignature")]
    DigitalSignature = 0,
    #[serde(rename = "nonRepudiation")]
    NonRepudiation = 1,
    #[serde(rename = "keyEncipherment")]
    KeyEncipherment = 2,
    #[serde(rename = "dataEncipherment")]
    DataEncipherment = 3,
    #[serde(rename = "keyAgreement")]
    KeyAgreement = 4,
    #[serde(rename = "keyCertSign")]
    KeyCertSign = 5,
    #[serde(rename = "cRLSign")]
    CrlSign = 6,
    #[serde(rename = "encipherOnly")]
    EncipherOnly = 7,
    #[serde(rename = "decipherOnly")]
    DecipherOnly = 8,
}

impl KeyUsageBit {
    pub const ALL: [KeyUsageBit; 9] = [
        KeyUsageBit::DigitalSignature,
        KeyUsageBit::NonRepudiation,
        KeyUsageBit::KeyEncipherment,
        KeyUsageBit::DataEncipherment,
        KeyUsageBit::KeyAgreement,
        KeyUsageBit::KeyCertSign,
        KeyUsageBit::CrlSign,
        KeyUsageBit::EncipherOnly,
        KeyUsageBit::DecipherOnly,
    ];
}

/// One extension, as templates state it and as lint reads it back from a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExtensionSpec {
    /// SHA-1 of the subject public point (RFC 5280 method 1).
    SubjectKeyIdentifier {
        #[serde(default)]
        critical: bool,
    },
    /// keyIdentifier only: the issuer's subject key identifier.
    AuthorityKeyIdentifier {
        #[serde(default)]
        critical: bool,
    },
    BasicConstraints {
        #[serde(default)]
        critical: bool,
        ca: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path_len: Option<u32>,
    },
    KeyUsage {
        #[serde(default)]
        critical: bool,
        usages: Vec<KeyUsageBit>,
    },
    /// Purposes: `serverAuth`, `clientAuth` or dotted OIDs.
    ExtendedKeyUsage {
        #[serde(default)]
        critical: bool,
        purposes: Vec<String>,
    },
    CertificatePolicies {
        #[serde(default)]
        critical: bool,
        policies: Vec<String>,
    },
    /// Names as `dns:HOST`, `rid:OID`, `uri:URI` or `email:ADDR`, in order.
    SubjectAltName {
        #[serde(default)]
        critical: bool,
        names: Vec<String>,
    },
    CrlDistributionPoints {
        #[serde(default)]
        critical: bool,
        uris: Vec<String>,
    },
    /// Permitted (and excluded) directoryName subtrees; SGP.22 reads a serialNumber in a permitted
    /// subtree as an EID prefix.
    NameConstraints {
        #[serde(default)]
        critical: bool,
        permitted: Vec<Vec<AttributeSpec>>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        excluded: Vec<Vec<AttributeSpec>>,
    },
    /// GSMA `permittedEins` (2.23.146.1.2.2.0): EID prefixes an EUM may issue.
    PermittedEins {
        #[serde(default)]
        critical: bool,
        eins: Vec<String>,
    },
}

impl ExtensionSpec {
    pub fn critical(&self) -> bool {
        match self {
            ExtensionSpec::SubjectKeyIdentifier { critical }
            | ExtensionSpec::AuthorityKeyIdentifier { critical }
            | ExtensionSpec::BasicConstraints { critical, .. }
            | ExtensionSpec::KeyUsage { critical, .. }
            | ExtensionSpec::ExtendedKeyUsage { critical, .. }
            | ExtensionSpec::CertificatePolicies { critical, .. }
            | ExtensionSpec::SubjectAltName { critical, .. }
            | ExtensionSpec::CrlDistributionPoints { critical, .. }
            | ExtensionSpec::NameConstraints { critical, .. }
            | ExtensionSpec::PermittedEins { critical, .. } => *critical,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ExtensionSpec::SubjectKeyIdentifier { .. } => "subject_key_identifier",
            ExtensionSpec::AuthorityKeyIdentifier { .. } => "authority_key_identifier",
            ExtensionSpec::BasicConstraints { .. } => "basic_constraints",
            ExtensionSpec::KeyUsage { .. } => "key_usage",
            ExtensionSpec::ExtendedKeyUsage { .. } => "extended_key_usage",
            ExtensionSpec::CertificatePolicies { .. } => "certificate_policies",
            ExtensionSpec::SubjectAltName { .. } => "subject_alt_name",
            ExtensionSpec::CrlDistributionPoints { .. } => "crl_distribution_points",
            ExtensionSpec::NameConstraints { .. } => "name_constraints",
            ExtensionSpec::PermittedEins { .. } => "permitted_eins",
        }
    }

    /// The same extension with every `{placeholder}` filled in.
    pub fn resolve(&self, vars: &Vars) -> Result<ExtensionSpec, String> {
        let all = |v: &Vec<String>| {
            v.iter()
                .map(|s| vars.resolve(s))
                .collect::<Result<Vec<_>, _>>()
        };
        let names = |v: &Vec<Vec<AttributeSpec>>| {
            v.iter()
                .map(|dn| {
                    dn.iter()
                        .map(|a| {
                            Ok(AttributeSpec {
                                value: vars.resolve(&a.value)?,
                                ..a.clone()
                            })
                        })
                        .collect::<Result<Vec<_>, String>>()
                })
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(match self {
            ExtensionSpec::ExtendedKeyUsage { critical, purposes } => {
                ExtensionSpec::ExtendedKeyUsage {
                    critical: *critical,
                    purposes: all(purposes)?,
                }
            }
            ExtensionSpec::CertificatePolicies { critical, policies } => {
                ExtensionSpec::CertificatePolicies {
                    critical: *critical,
                    policies: all(policies)?,
                }
            }
            ExtensionSpec::SubjectAltName { critical, names } => ExtensionSpec::SubjectAltName {
                critical: *critical,
                names: all(names)?,
            },
            ExtensionSpec::CrlDistributionPoints { critical, uris } => {
                ExtensionSpec::CrlDistributionPoints {
                    critical: *critical,
                    uris: all(uris)?,
                }
            }
            ExtensionSpec::PermittedEins { critical, eins } => ExtensionSpec::PermittedEins {
                critical: *critical,
                eins: all(eins)?,
            },
            ExtensionSpec::NameConstraints {
                critical,
                permitted,
                excluded,
            } => ExtensionSpec::NameConstraints {
                critical: *critical,
                permitted: names(permitted)?,
                excluded: names(excluded)?,
            },
            other => other.clone(),
        })
    }
}

/// How the serial number is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum SerialSpec {
    /// A fixed value, hexadecimal magnitude (the GSMA set's serials, e.g. `0100`).
    Fixed { value: String },
    /// `bytes` random bytes, made positive (RFC 5280 allows up to 20 octets).
    Random { bytes: usize },
    /// The EID digits read as a hexadecimal number (the SGP.26 v3 eUICC form).
    Eid,
}

/// The validity period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValiditySpec {
    /// Fixed notBefore (`YYYY-MM-DDTHH:MM:SSZ`); when absent, the time of minting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// A different fixed notBefore for brainpool certificates (the GSMA set has one such case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_brainpool: Option<String>,
    /// Length of the validity period in days (notAfter = notBefore + days).
    pub days: u32,
}

/// A role template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub role: Role,
    #[serde(default)]
    pub description: String,
    /// Default values for placeholders; command-line `--set` values win.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub serial: SerialSpec,
    pub validity: ValiditySpec,
    pub subject: Vec<AttributeSpec>,
    pub extensions: Vec<ExtensionSpec>,
    /// Further instances `init` mints from this template (SGP.26 v1.5's second SM-DP+, DP2),
    /// each with its own placeholder values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceSpec>,
}

/// A further instance of a role (`2` gives `S_SM_DP2auth_...`) and the values that make it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    pub instance: String,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

impl Template {
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| format!("{origin}: {e}"))
    }

    /// The names of every `{placeholder}` this template uses, and of its defaults.
    pub fn placeholders(&self) -> std::collections::BTreeSet<String> {
        let mut names: std::collections::BTreeSet<String> = self.vars.keys().cloned().collect();
        let text = toml::to_string(self).unwrap_or_default();
        let mut rest = text.as_str();
        while let Some(start) = rest.find('{') {
            let after = &rest[start + 1..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if end > 0 && after[end..].starts_with('}') {
                names.insert(after[..end].to_string());
            }
            rest = &after[end..];
        }
        names
    }
}

/// Placeholder values: `{eid}`, `{ein}`, `{smdp_fqdn}`, `{smds_fqdn}`, template defaults, `--set`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars(pub BTreeMap<String, String>);

impl Vars {
    pub fn set(&mut self, k: &str, v: impl Into<String>) {
        self.0.insert(k.to_string(), v.into());
    }

    /// These variables layered over a template's defaults.
    pub fn over(&self, template: &Template) -> Vars {
        let mut merged = template.vars.clone();
        merged.extend(self.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        Vars(merged)
    }

    /// Replaces every `{name}` in `s`.
    pub fn resolve(&self, s: &str) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed placeholder in {s:?}"))?;
            let key = &after[..end];
            let value = self.0.get(key).ok_or_else(|| {
                format!(
                    "placeholder {{{key}}} in {s:?} has no value (set it with --set {key}=VALUE)"
                )
            })?;
            out.push_str(value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// Names of the built-in profiles.
pub const PROFILES: [&str; 3] = ["default", "sgp26-v1.5", "sgp26-v3"];

/// The built-in profile whose variants A, B and C add SubCAs, and whose files carry SGP.26 v3 names.
pub const SGP26_V3: &str = "sgp26-v3";

macro_rules! templates {
    ($dir:literal; $($role:ident $file:literal),*) => {
        &[$((
            Role::$role,
            include_str!(concat!("../../certs-templates/", $dir, "/", $file, ".toml")),
        )),*]
    };
    ($dir:literal) => {
        templates!($dir; Ci "ci", Eum "eum", Euicc "euicc", Dpauth "dpauth", Dppb "dppb",
                   Dptls "dptls", Dsauth "dsauth", Dstls "dstls")
    };
}

type Sources = &'static [(Role, &'static str)];

/// The built-in template files of a profile and variant, later entries replacing earlier ones.
fn builtin_sources(name: &str, variant: Variant) -> Result<Vec<(Sources, &'static str)>, String> {
    const V3_ABC: Sources = templates!("sgp26-v3/ABC"; Ci "ci", Cisubca "cisubca", Eum "eum",
        Eumsubca "eumsubca", Euicc "euicc", Dpsubca "dpsubca", Dpauth "dpauth", Dppb "dppb",
        Dptls "dptls", Dssubca "dssubca", Dsauth "dsauth", Dstls "dstls");
    const V3_B: Sources = templates!("sgp26-v3/B"; Eum "eum", Dpauth "dpauth", Dppb "dppb",
        Dsauth "dsauth");
    Ok(match (name, variant) {
        ("default", Variant::O) => vec![(templates!("default"), "default")],
        ("sgp26-v1.5", Variant::O) => vec![(templates!("sgp26-v1.5"), "sgp26-v1.5")],
        (SGP26_V3, Variant::O) => vec![(templates!("sgp26-v3/O"), "sgp26-v3/O")],
        (SGP26_V3, Variant::A | Variant::C) => vec![(V3_ABC, "sgp26-v3/ABC")],
        (SGP26_V3, Variant::B) => vec![(V3_ABC, "sgp26-v3/ABC"), (V3_B, "sgp26-v3/B")],
        (other, v) if PROFILES.contains(&other) => {
            return Err(format!(
                "profile {other} has no variant {v}; variants A, B and C need --profile {SGP26_V3}"
            ));
        }
        (other, _) => {
            return Err(format!(
                "unknown profile {other:?}; profiles are {}",
                PROFILES.join(", ")
            ));
        }
    })
}

/// A complete set of role templates for one chain shape.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub variant: Variant,
    templates: BTreeMap<Role, Template>,
}

impl Profile {
    /// A built-in profile: `default`, `sgp26-v1.5` (both Variant O) or `sgp26-v3` (O, A, B, C).
    pub fn builtin(name: &str) -> Result<Self, String> {
        Self::builtin_variant(name, Variant::O)
    }

    pub fn builtin_variant(name: &str, variant: Variant) -> Result<Self, String> {
        let mut templates = BTreeMap::new();
        for (sources, dir) in builtin_sources(name, variant)? {
            for (role, text) in sources {
                let origin = format!("built-in template {dir}/{role}.toml");
                let t = Template::parse(text, &origin)?;
                check_role(&t, *role, &origin)?;
                templates.insert(*role, t);
            }
        }
        templates.retain(|role, _| variant.has(*role));
        Ok(Profile {
            name: name.to_string(),
            variant,
            templates,
        })
    }

    /// Whether this profile writes SGP.26 v3 file names (otherwise the osmo-smdpp layout).
    pub fn is_v3(&self) -> bool {
        self.name.split('+').next() == Some(SGP26_V3)
    }

    /// A built-in profile with any `<role>.toml` found in `dir` replacing the built-in one.
    pub fn with_overrides(mut self, dir: &Path) -> Result<Self, String> {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
        for role in self.variant.roles() {
            let path = dir.join(format!("{role}.toml"));
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let origin = path.display().to_string();
                    let t = Template::parse(&text, &origin)?;
                    check_role(&t, role, &origin)?;
                    self.templates.insert(role, t);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        self.name = format!("{}+{}", self.name, dir.display());
        Ok(self)
    }

    /// The template of a role this profile's variant has.
    pub fn get(&self, role: Role) -> Result<&Template, String> {
        self.templates.get(&role).ok_or_else(|| {
            format!(
                "profile {} (Variant {}) has no {role} certificate",
                self.name, self.variant
            )
        })
    }

    /// Refuses `--set` names that no template of the profile (or of `role` only) uses: a typo
    /// would otherwise be minted silently as the default.
    pub fn check_sets<'a>(
        &self,
        sets: impl IntoIterator<Item = &'a String>,
        role: Option<Role>,
    ) -> Result<(), String> {
        let known: std::collections::BTreeSet<String> = self
            .templates
            .iter()
            .filter(|(r, _)| role.is_none_or(|want| **r == want))
            .flat_map(|(_, t)| t.placeholders())
            .collect();
        let which = role.map_or(String::new(), |r| format!("{r} "));
        for name in sets {
            if !known.contains(name) {
                return Err(format!(
                    "--set {name}: no {which}template of profile {} has a {{{name}}} placeholder; its placeholders are {}",
                    self.name,
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The template of one of the roles every variant has ([`Role::BASE`]).
    ///
    /// # Panics
    /// For a SubCA role; use [`Profile::get`] for those.
    pub fn template(&self, role: Role) -> &Template {
        assert!(Role::BASE.contains(&role), "{role} is not a base role");
        // Construction inserts every base role.
        &self.templates[&role]
    }
}

fn check_role(t: &Template, role: Role, origin: &str) -> Result<(), String> {
    if t.role != role {
        return Err(format!(
            "{origin}: declares role {} but is the template for {role}",
            t.role
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for p in PROFILES {
            for v in Variant::ALL {
                let Ok(prof) = Profile::builtin_variant(p, v) else {
                    assert!(p != SGP26_V3 && v != Variant::O, "{p} {v}");
                    continue;
                };
                for role in v.roles() {
                    assert_eq!(prof.get(role).expect("every role").role, role);
                }
                assert_eq!(prof.templates.len(), v.roles().len());
            }
        }
        let b = Profile::builtin_variant(SGP26_V3, Variant::B).expect("B");
        assert!(
            b.get(Role::Eum)
                .expect("eum")
                .description
                .contains("Variant B")
        );
        assert!(b.get(Role::Eumsubca).is_err());
    }

    #[test]
    fn placeholders() {
        let mut v = Vars::default();
        v.set("eid", "123");
        assert_eq!(v.resolve("a{eid}b{eid}").expect("ok"), "a123b123");
        assert!(
            v.resolve("{nope}")
                .expect_err("missing")
                .contains("--set nope=")
        );
        assert!(v.resolve("{eid").is_err());
    }

    #[test]
    fn typos_are_rejected() {
        let bad = r#"
            role = "ci"
            serial = { policy = "random", bytes = 8 }
            validity = { days = 1 }
            subject = []
            extensions = [ { kind = "key_usage", crtical = true, usages = [] } ]
        "#;
        assert!(
            Template::parse(bad, "t")
                .expect_err("typo")
                .contains("crtical")
        );
    }
}
