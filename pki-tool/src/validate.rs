//! SGP.22 certificate path validation: the single authority for GSMA chains in this project.
//!
//! Stock RFC 5280 validators reject every genuine eUICC chain, because the EUM's critical name
//! constraint (`O=RSP Test EUM, serialNumber=89049032`) is an SGP.22 rule, not an RDN-prefix rule:
//! the eUICC's O must match and its EID must *start with* the serialNumber. This module implements
//! that rule (and the v3 `permittedEins` extension) together with signatures, validity, role
//! policies, key usage, basic constraints and path length. Paths are built by key identifier
//! (AKI -> SKI, as SGP.22 identifies CIs), and issuer names must chain as well.

use crate::cert::Certificate;
use crate::eid::Eid;
use crate::oid::known;
use crate::profile::{AttributeSpec, ExtensionSpec, KeyUsageBit};
use crate::role::Role;
use crate::tlv::{self, tag};
use std::fmt;

/// What is wrong with a certificate in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainErrorKind {
    UnknownIssuer,
    IssuerNameMismatch {
        expected: String,
        found: String,
    },
    BadSignature,
    UnsupportedSignatureAlgorithm,
    CurveMismatch {
        issuer: crate::keys::Curve,
        subject: crate::keys::Curve,
    },
    Expired {
        not_after: i64,
    },
    NotYetValid {
        not_before: i64,
    },
    MissingRolePolicy {
        role: Role,
        found: Vec<String>,
    },
    UnknownRole {
        found: Vec<String>,
    },
    KeyUsage(String),
    NotCa,
    PathLength {
        allowed: u32,
        found: usize,
    },
    NameConstraint(String),
    UnknownCriticalExtension(String),
    Eid(String),
    ChainTooLong(usize),
    Version(u64),
}

impl fmt::Display for ChainErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::time::format as t;
        match self {
            Self::UnknownIssuer => write!(
                f,
                "issuer not found among the given certificates and trusted CIs (no certificate with a matching key identifier)"
            ),
            Self::IssuerNameMismatch { expected, found } => {
                write!(
                    f,
                    "issuer name {found:?} does not match the issuing certificate's subject {expected:?}"
                )
            }
            Self::BadSignature => {
                write!(f, "signature does not verify with the issuer's public key")
            }
            Self::UnsupportedSignatureAlgorithm => {
                write!(f, "signature algorithm is not ecdsa-with-SHA256")
            }
            Self::CurveMismatch { issuer, subject } => {
                write!(
                    f,
                    "curve mismatch: the key is {subject} but the issuer's key is {issuer}"
                )
            }
            Self::Expired { not_after } => write!(f, "expired (notAfter {})", t(*not_after)),
            Self::NotYetValid { not_before } => {
                write!(f, "not yet valid (notBefore {})", t(*not_before))
            }
            Self::MissingRolePolicy { role, found } => write!(
                f,
                "lacks the {role} certificate policy {} (has: {})",
                role.policy_oids().join(" or "),
                if found.is_empty() {
                    "none".to_string()
                } else {
                    found.join(", ")
                }
            ),
            Self::UnknownRole { found } => write!(
                f,
                "carries no RSP role policy (has: {})",
                if found.is_empty() {
                    "none".to_string()
                } else {
                    found.join(", ")
                }
            ),
            Self::KeyUsage(s) => write!(f, "key usage: {s}"),
            Self::NotCa => write!(
                f,
                "is used as an issuer but is not a CA (basicConstraints cA is not TRUE)"
            ),
            Self::PathLength { allowed, found } => {
                write!(
                    f,
                    "path length constraint {allowed} exceeded by {found} CA certificates below it"
                )
            }
            Self::NameConstraint(s) => write!(f, "name constraint: {s}"),
            Self::UnknownCriticalExtension(oid) => write!(f, "unknown critical extension {oid}"),
            Self::Eid(s) => write!(f, "EID: {s}"),
            Self::ChainTooLong(n) => write!(f, "chain longer than {n} certificates"),
            Self::Version(v) => write!(f, "X.509 version {v}, expected 3"),
        }
    }
}

/// A chain validation failure, naming the certificate it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    /// 0 for the leaf, 1 for its issuer, ...; the trust anchor has the largest depth.
    pub depth: usize,
    /// The role the certificate plays in this chain, where known.
    pub role: Option<Role>,
    pub subject: String,
    pub kind: ChainErrorKind,
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.role {
            Some(r) => write!(
                f,
                "{} certificate \"{}\": {}",
                r.name().to_uppercase(),
                self.subject,
                self.kind
            ),
            None => write!(f, "certificate \"{}\": {}", self.subject, self.kind),
        }
    }
}

impl std::error::Error for ChainError {}

/// A chain that passed validation.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    /// Index of the trust anchor used, in the slice given to [`verify_chain`].
    pub anchor: usize,
    pub leaf_role: Role,
    /// Roles from the leaf up to (excluding) the anchor.
    pub path_roles: Vec<Role>,
    /// The eUICC's EID when the leaf is an eUICC certificate.
    pub eid: Option<Eid>,
}

/// Limits and the time of validation.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Unix seconds at which validity periods are checked.
    pub at: i64,
    /// Maximum certificates from leaf to anchor, inclusive.
    pub max_depth: usize,
}

impl Options {
    pub fn at(at: i64) -> Self {
        Options { at, max_depth: 5 }
    }
}

const KNOWN_EXTENSIONS: &[&[u8]] = &[
    known::EXT_SUBJECT_KEY_ID,
    known::EXT_KEY_USAGE,
    known::EXT_SUBJECT_ALT_NAME,
    known::EXT_BASIC_CONSTRAINTS,
    known::EXT_NAME_CONSTRAINTS,
    known::EXT_CRL_DISTRIBUTION_POINTS,
    known::EXT_CERTIFICATE_POLICIES,
    known::EXT_AUTHORITY_KEY_ID,
    known::EXT_EXTENDED_KEY_USAGE,
    known::EXT_PERMITTED_EINS,
];

/// The role a certificate's policies name, if exactly one role is named.
pub fn detect_role(cert: &Certificate) -> Option<Role> {
    let mut roles: Vec<Role> = cert
        .policies()
        .iter()
        .filter_map(|p| Role::from_policy(p))
        .collect();
    roles.dedup();
    (roles.len() == 1).then(|| roles[0])
}

fn has_role_policy(cert: &Certificate, role: Role) -> bool {
    cert.policies()
        .iter()
        .any(|p| role.policy_oids().contains(&p.as_str()))
}

fn basic_constraints(cert: &Certificate) -> (bool, Option<u32>) {
    match cert
        .extension(known::EXT_BASIC_CONSTRAINTS)
        .and_then(|e| e.spec.as_ref())
    {
        Some(ExtensionSpec::BasicConstraints { ca, path_len, .. }) => (*ca, *path_len),
        _ => (false, None),
    }
}

fn key_usage(cert: &Certificate) -> Option<Vec<KeyUsageBit>> {
    match cert
        .extension(known::EXT_KEY_USAGE)
        .and_then(|e| e.spec.as_ref())
    {
        Some(ExtensionSpec::KeyUsage { usages, .. }) => Some(usages.clone()),
        _ => None,
    }
}

fn is_ecdsa_sha256(alg: &[u8]) -> bool {
    tlv::parse_single(alg, "AlgorithmIdentifier")
        .ok()
        .filter(|t| t.tag == tag::SEQUENCE)
        .and_then(|t| {
            let mut r = t.reader();
            let oid = r.read().ok()?;
            (oid.tag == tag::OID && oid.value == known::ECDSA_WITH_SHA256 && r.is_empty())
                .then_some(())
        })
        .is_some()
}

/// Finds the issuer of `cert` among `pool`: by key identifier when the certificate has an AKI,
/// else by name.
fn find_issuer<'c>(
    cert: &Certificate,
    pool: impl Iterator<Item = (usize, &'c Certificate)>,
) -> Option<(usize, &'c Certificate)> {
    let aki = cert.aki();
    let mut by_name = None;
    for (i, c) in pool {
        match &aki {
            Some(id) if c.key_id() == *id => return Some((i, c)),
            None if c.subject_der() == cert.issuer_der() && by_name.is_none() => {
                by_name = Some((i, c))
            }
            _ => {}
        }
    }
    by_name
}

/// Checks the SGP.22 reading of a directoryName subtree against a subordinate subject: every
/// attribute must be present with the same value, except serialNumber, which is an EID prefix.
fn subtree_matches(
    subtree: &[AttributeSpec],
    cert: &Certificate,
    is_leaf: bool,
) -> Result<(), String> {
    for a in subtree {
        let oid = crate::name::attribute_oid(&a.attr)?;
        let found = cert.subject.get(oid.as_bytes());
        if oid.as_bytes() == known::AT_SERIAL_NUMBER {
            match found {
                Some(eid) if eid.starts_with(&a.value) => {}
                Some(eid) => {
                    return Err(format!(
                        "EID {eid} is outside the permitted prefix {}",
                        a.value
                    ));
                }
                // A subordinate CA carries no EID; the prefix applies to the eUICCs below it.
                None if !is_leaf => {}
                None => {
                    return Err(format!(
                        "subject has no serialNumber, permitted prefix is {}",
                        a.value
                    ));
                }
            }
        } else {
            match found {
                Some(v) if v == a.value => {}
                Some(v) => {
                    return Err(format!(
                        "{}={v:?} is not the permitted {:?}",
                        a.attr, a.value
                    ));
                }
                None => {
                    return Err(format!(
                        "subject has no {} (permitted: {:?})",
                        a.attr, a.value
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_name_constraints(
    ca: &Certificate,
    cert: &Certificate,
    is_leaf: bool,
) -> Result<(), String> {
    if let Some(ExtensionSpec::NameConstraints {
        permitted,
        excluded,
        ..
    }) = ca
        .extension(known::EXT_NAME_CONSTRAINTS)
        .and_then(|e| e.spec.as_ref())
    {
        if !permitted.is_empty() {
            let results: Vec<Result<(), String>> = permitted
                .iter()
                .map(|s| subtree_matches(s, cert, is_leaf))
                .collect();
            if !results.iter().any(Result::is_ok) {
                let why: Vec<String> = results.into_iter().filter_map(Result::err).collect();
                return Err(format!(
                    "\"{}\" is not permitted by \"{}\": {}",
                    cert.subject,
                    ca.subject,
                    why.join("; ")
                ));
            }
        }
        for s in excluded {
            if subtree_matches(s, cert, is_leaf).is_ok() {
                return Err(format!(
                    "\"{}\" falls in a subtree excluded by \"{}\"",
                    cert.subject, ca.subject
                ));
            }
        }
    }
    if let Some(ExtensionSpec::PermittedEins { eins, .. }) = ca
        .extension(known::EXT_PERMITTED_EINS)
        .and_then(|e| e.spec.as_ref())
        && is_leaf
    {
        let eid = cert.subject.get(known::AT_SERIAL_NUMBER).unwrap_or("");
        if !eins.iter().any(|p| eid.starts_with(p.as_str())) {
            return Err(format!(
                "EID {eid:?} does not start with any permittedEins of \"{}\" ({})",
                ca.subject,
                eins.join(", ")
            ));
        }
    }
    Ok(())
}

/// Validates `leaf` up to one of `anchors` (trusted CI certificates) through `intermediates`.
/// `expected` is the leaf's role; when `None` it is read from the leaf's certificate policy.
pub fn verify_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
    expected: Option<Role>,
    opts: Options,
) -> Result<VerifiedChain, ChainError> {
    let fail =
        |depth: usize, role: Option<Role>, cert: &Certificate, kind: ChainErrorKind| ChainError {
            depth,
            role,
            subject: cert.subject.to_string(),
            kind,
        };

    // The CI itself, checked against the trust store.
    if let Some(i) = anchors.iter().position(|a| a.der() == leaf.der()) {
        check_validity(leaf, opts.at).map_err(|k| fail(0, Some(Role::Ci), leaf, k))?;
        if let Some(role) = expected.filter(|r| *r != Role::Ci) {
            return Err(fail(
                0,
                Some(role),
                leaf,
                ChainErrorKind::MissingRolePolicy {
                    role,
                    found: leaf.policies(),
                },
            ));
        }
        return Ok(VerifiedChain {
            anchor: i,
            leaf_role: Role::Ci,
            path_roles: vec![],
            eid: None,
        });
    }

    // Build the path: leaf, intermediates..., then the anchor.
    let mut path: Vec<&Certificate> = vec![leaf];
    let anchor_index = loop {
        let Some(current) = path.last().copied() else {
            unreachable!("path starts with the leaf")
        };
        if path.len() >= opts.max_depth {
            return Err(fail(
                path.len() - 1,
                None,
                current,
                ChainErrorKind::ChainTooLong(opts.max_depth),
            ));
        }
        if let Some((i, anchor)) = find_issuer(current, anchors.iter().enumerate()) {
            check_issuer_name(current, anchor)
                .map_err(|k| fail(path.len() - 1, None, current, k))?;
            break i;
        }
        let unused = intermediates
            .iter()
            .enumerate()
            .filter(|(_, c)| !path.iter().any(|p| p.der() == c.der()));
        match find_issuer(current, unused) {
            Some((_, issuer)) => {
                check_issuer_name(current, issuer)
                    .map_err(|k| fail(path.len() - 1, None, current, k))?;
                path.push(issuer);
            }
            None => {
                return Err(fail(
                    path.len() - 1,
                    None,
                    current,
                    ChainErrorKind::UnknownIssuer,
                ));
            }
        }
    };
    let anchor = &anchors[anchor_index];

    // Roles along the path.
    let leaf_role = match expected {
        Some(r) => r,
        None => detect_role(leaf).ok_or_else(|| {
            fail(
                0,
                None,
                leaf,
                ChainErrorKind::UnknownRole {
                    found: leaf.policies(),
                },
            )
        })?,
    };
    let mut roles = vec![leaf_role];
    for (depth, c) in path.iter().enumerate().skip(1) {
        let r = if has_role_policy(c, Role::Eum) {
            Role::Eum
        } else {
            detect_role(c).unwrap_or(Role::Eum)
        };
        if r != Role::Eum {
            return Err(fail(
                depth,
                Some(Role::Eum),
                c,
                ChainErrorKind::MissingRolePolicy {
                    role: Role::Eum,
                    found: c.policies(),
                },
            ));
        }
        roles.push(r);
    }

    let anchor_depth = path.len();

    for (depth, cert) in path.iter().enumerate() {
        let role = Some(roles[depth]);
        let issuer: &Certificate = path.get(depth + 1).copied().unwrap_or(anchor);
        let issuer_depth = depth + 1;
        let at = |k| fail(depth, role, cert, k);
        if cert.version != 3 {
            return Err(at(ChainErrorKind::Version(cert.version)));
        }
        // The issuer must be a CA allowed to sign certificates, with room in its path length.
        let (issuer_ca, issuer_path_len) = basic_constraints(issuer);
        let issuer_role = if issuer_depth == anchor_depth {
            Some(Role::Ci)
        } else {
            Some(roles[issuer_depth])
        };
        if !issuer_ca {
            return Err(fail(
                issuer_depth,
                issuer_role,
                issuer,
                ChainErrorKind::NotCa,
            ));
        }
        if !key_usage(issuer).is_some_and(|u| u.contains(&KeyUsageBit::KeyCertSign)) {
            return Err(fail(
                issuer_depth,
                issuer_role,
                issuer,
                ChainErrorKind::KeyUsage("an issuer must have keyCertSign".into()),
            ));
        }
        if let Some(allowed) = issuer_path_len {
            // Intermediate CA certificates below the issuer (the leaf does not count).
            if depth > allowed as usize {
                return Err(fail(
                    issuer_depth,
                    issuer_role,
                    issuer,
                    ChainErrorKind::PathLength {
                        allowed,
                        found: depth,
                    },
                ));
            }
        }
        if !is_ecdsa_sha256(&cert.signature_algorithm)
            || cert.signature_algorithm != cert.tbs_signature_algorithm
        {
            return Err(at(ChainErrorKind::UnsupportedSignatureAlgorithm));
        }
        if issuer.public_key.curve() != cert.public_key.curve() {
            return Err(at(ChainErrorKind::CurveMismatch {
                issuer: issuer.public_key.curve(),
                subject: cert.public_key.curve(),
            }));
        }
        if !issuer
            .public_key
            .verify_der(cert.tbs_der(), &cert.signature)
        {
            return Err(at(ChainErrorKind::BadSignature));
        }
        check_validity(cert, opts.at).map_err(at)?;
        check_critical(cert).map_err(at)?;
        let r = roles[depth];
        if !has_role_policy(cert, r) {
            return Err(at(ChainErrorKind::MissingRolePolicy {
                role: r,
                found: cert.policies(),
            }));
        }
        let usages = key_usage(cert).unwrap_or_default();
        if depth == 0 {
            let needed = if r.is_ca() {
                KeyUsageBit::KeyCertSign
            } else {
                KeyUsageBit::DigitalSignature
            };
            if !usages.contains(&needed) {
                return Err(at(ChainErrorKind::KeyUsage(format!(
                    "a {r} certificate needs {needed:?}"
                ))));
            }
            if r.is_ca() && !basic_constraints(cert).0 {
                return Err(at(ChainErrorKind::NotCa));
            }
        }
        // Constraints of every CA above this certificate, including the anchor.
        for ca in path[depth + 1..]
            .iter()
            .copied()
            .chain(std::iter::once(anchor))
        {
            check_name_constraints(ca, cert, depth == 0)
                .map_err(|s| at(ChainErrorKind::NameConstraint(s)))?;
        }
    }

    // The trust anchor last, so that a failure is reported on the lowest certificate it affects.
    check_validity(anchor, opts.at).map_err(|k| fail(anchor_depth, Some(Role::Ci), anchor, k))?;
    check_critical(anchor).map_err(|k| fail(anchor_depth, Some(Role::Ci), anchor, k))?;

    let eid = if leaf_role == Role::Euicc {
        let s = leaf.subject.get(known::AT_SERIAL_NUMBER).ok_or_else(|| {
            fail(
                0,
                Some(Role::Euicc),
                leaf,
                ChainErrorKind::Eid("subject has no serialNumber".into()),
            )
        })?;
        Some(Eid::parse(s).map_err(|e| {
            fail(
                0,
                Some(Role::Euicc),
                leaf,
                ChainErrorKind::Eid(format!("{s:?}: {e}")),
            )
        })?)
    } else {
        None
    };

    Ok(VerifiedChain {
        anchor: anchor_index,
        leaf_role,
        path_roles: roles,
        eid,
    })
}

fn check_issuer_name(cert: &Certificate, issuer: &Certificate) -> Result<(), ChainErrorKind> {
    if cert.issuer_der() == issuer.subject_der() {
        Ok(())
    } else {
        Err(ChainErrorKind::IssuerNameMismatch {
            expected: issuer.subject.to_string(),
            found: cert.issuer.to_string(),
        })
    }
}

fn check_validity(cert: &Certificate, at: i64) -> Result<(), ChainErrorKind> {
    if at < cert.not_before {
        return Err(ChainErrorKind::NotYetValid {
            not_before: cert.not_before,
        });
    }
    if at > cert.not_after {
        return Err(ChainErrorKind::Expired {
            not_after: cert.not_after,
        });
    }
    Ok(())
}

fn check_critical(cert: &Certificate) -> Result<(), ChainErrorKind> {
    match cert
        .extensions
        .iter()
        .find(|e| e.critical && !KNOWN_EXTENSIONS.contains(&e.oid.as_bytes()))
    {
        Some(e) => Err(ChainErrorKind::UnknownCriticalExtension(e.oid.to_string())),
        None => Ok(()),
    }
}
