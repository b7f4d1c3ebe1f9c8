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
use crate::role::{PolicyGeneration, Role};
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
    /// A certificate of role `issuer` signed one of role `subject`, which SGP.22 does not allow
    /// (a SubCA used for another role, a server certificate as an issuer, ...).
    IssuerRole {
        issuer: Role,
        subject: Role,
    },
    /// A v2 role policy and a v3 one in the same chain below the CI.
    MixedPolicyGenerations {
        found: PolicyGeneration,
        chain: PolicyGeneration,
    },
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
            Self::IssuerRole { issuer, subject } => write!(
                f,
                "a {issuer} certificate may not issue a {subject} certificate ({subject} is issued by {})",
                Role::ALL
                    .into_iter()
                    .filter(|r| subject.may_be_issued_by(*r))
                    .map(Role::name)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            Self::MixedPolicyGenerations { found, chain } => write!(
                f,
                "carries an SGP.22 {} role policy in a chain whose certificates below the CI carry {} ones",
                generation(*found),
                generation(*chain)
            ),
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

fn generation(g: PolicyGeneration) -> &'static str {
    match g {
        PolicyGeneration::V2 => "v2 (2.23.146.1.2.1.x)",
        PolicyGeneration::V3 => "v3 (2.23.146.1.2.1.0.0...)",
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
    /// The intermediates the path went through, as indices into the slice given to
    /// [`verify_chain`], from the leaf's issuer up (revocation checks walk the same path).
    pub intermediates_used: Vec<usize>,
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

/// Why a subject falls outside one directoryName subtree of a name constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SubtreeMismatch {
    EidOutside {
        eid: String,
        prefix: String,
    },
    NoSerialNumber {
        prefix: String,
    },
    Attribute {
        attr: String,
        found: String,
        permitted: String,
    },
    MissingAttribute {
        attr: String,
        permitted: String,
    },
    /// The constraint names an attribute type this validator does not know.
    UnknownAttribute(String),
}

impl fmt::Display for SubtreeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EidOutside { eid, prefix } => {
                write!(f, "EID {eid} is outside the permitted prefix {prefix}")
            }
            Self::NoSerialNumber { prefix } => {
                write!(
                    f,
                    "subject has no serialNumber, permitted prefix is {prefix}"
                )
            }
            Self::Attribute {
                attr,
                found,
                permitted,
            } => write!(f, "{attr}={found:?} is not the permitted {permitted:?}"),
            Self::MissingAttribute { attr, permitted } => {
                write!(f, "subject has no {attr} (permitted: {permitted:?})")
            }
            Self::UnknownAttribute(why) => write!(f, "{why}"),
        }
    }
}

/// Checks the SGP.22 reading of a directoryName subtree against a subordinate subject: every
/// attribute must be present with the same value, except serialNumber, which is an EID prefix.
fn subtree_matches(
    subtree: &[AttributeSpec],
    cert: &Certificate,
    is_leaf: bool,
) -> Result<(), SubtreeMismatch> {
    for a in subtree {
        let oid = crate::name::attribute_oid(&a.attr).map_err(SubtreeMismatch::UnknownAttribute)?;
        let found = cert.subject.get(oid.as_bytes());
        if oid.as_bytes() == known::AT_SERIAL_NUMBER {
            match found {
                Some(eid) if eid.starts_with(&a.value) => {}
                Some(eid) => {
                    return Err(SubtreeMismatch::EidOutside {
                        eid: eid.to_string(),
                        prefix: a.value.clone(),
                    });
                }
                // A subordinate CA carries no EID; the prefix applies to the eUICCs below it.
                None if !is_leaf => {}
                None => {
                    return Err(SubtreeMismatch::NoSerialNumber {
                        prefix: a.value.clone(),
                    });
                }
            }
        } else {
            match found {
                Some(v) if v == a.value => {}
                Some(v) => {
                    return Err(SubtreeMismatch::Attribute {
                        attr: a.attr.clone(),
                        found: v.to_string(),
                        permitted: a.value.clone(),
                    });
                }
                None => {
                    return Err(SubtreeMismatch::MissingAttribute {
                        attr: a.attr.clone(),
                        permitted: a.value.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The name constraints and `permittedEins` of the CA `ca` admit `cert`.
fn check_name_constraints(
    ca: &Certificate,
    cert: &Certificate,
    is_leaf: bool,
) -> Result<(), ChainErrorKind> {
    let violated = |why: String| Err(ChainErrorKind::NameConstraint(why));
    if let Some(ExtensionSpec::NameConstraints {
        permitted,
        excluded,
        ..
    }) = ca
        .extension(known::EXT_NAME_CONSTRAINTS)
        .and_then(|e| e.spec.as_ref())
    {
        if !permitted.is_empty() {
            let results: Vec<Result<(), SubtreeMismatch>> = permitted
                .iter()
                .map(|s| subtree_matches(s, cert, is_leaf))
                .collect();
            if !results.iter().any(Result::is_ok) {
                let why: Vec<String> = results
                    .into_iter()
                    .filter_map(Result::err)
                    .map(|m| m.to_string())
                    .collect();
                return violated(format!(
                    "\"{}\" is not permitted by \"{}\": {}",
                    cert.subject,
                    ca.subject,
                    why.join("; ")
                ));
            }
        }
        for s in excluded {
            if subtree_matches(s, cert, is_leaf).is_ok() {
                return violated(format!(
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
            return violated(format!(
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
///
/// The SGP.22 rules, in the order they are applied (each is one `check_*` function below):
/// 1. the path is built by key identifier, each issuer's name matching, within `max_depth`
///    ([`build_path`]);
/// 2. every certificate between the leaf and the anchor names a CA role in its policy
///    ([`path_roles`]);
/// 3. for each certificate, from the leaf up: X.509 v3 ([`check_version`]); its issuer is a CA
///    ([`check_issuer_is_ca`]) with keyCertSign ([`check_issuer_can_sign`]) and room in its path
///    length ([`check_path_length`]); signed with ecdsa-with-SHA256
///    ([`check_signature_algorithm`]) on the issuer's curve ([`check_curve`]) by the issuer's key
///    ([`check_signature`]); valid now ([`check_validity`]); no unknown critical extension
///    ([`check_critical`]); the role's certificate policy ([`check_role_policy`]), in the policy
///    generation of the rest of the chain ([`check_generation`]), issued by a role that may issue
///    it ([`check_issuer_role`]: eUICC under EUM or EUM SubCA, servers under the CI, CI SubCA or
///    their SubCA, ...); for the leaf,
///    the key usage and CA flag its role needs ([`check_leaf_usage`]); and the name constraints
///    and permittedEins of every CA above it ([`check_name_constraints`]);
/// 4. the anchor is valid now and has no unknown critical extension;
/// 5. an eUICC leaf carries a valid EID ([`leaf_eid`]).
pub fn verify_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &[Certificate],
    expected: Option<Role>,
    opts: Options,
) -> Result<VerifiedChain, ChainError> {
    if let Some(i) = anchors.iter().position(|a| a.der() == leaf.der()) {
        return verify_anchor_itself(leaf, i, expected, opts);
    }
    let (path, anchor_index) = build_path(leaf, intermediates, anchors, opts)?;
    let anchor = &anchors[anchor_index];
    // Normally a CI; a caller that validated an EUM (or SubCA) before may trust it directly.
    let anchor_role = detect_role(anchor)
        .filter(|r| r.is_ca())
        .unwrap_or(Role::Ci);
    let roles = path_roles(&path, expected)?;
    let anchor_depth = path.len();
    let chain_generation = policy_generation(leaf, roles[0]);

    for (depth, cert) in path.iter().enumerate() {
        let role = roles[depth];
        let issuer_depth = depth + 1;
        let (issuer, issuer_role) = match path.get(issuer_depth) {
            Some(c) => (*c, roles[issuer_depth]),
            None => (anchor, anchor_role),
        };
        let here = |k| fail(depth, Some(role), cert, k);
        let at_issuer = |k| fail(issuer_depth, Some(issuer_role), issuer, k);
        check_version(cert).map_err(here)?;
        check_issuer_is_ca(issuer).map_err(at_issuer)?;
        check_issuer_can_sign(issuer).map_err(at_issuer)?;
        check_path_length(issuer, depth).map_err(at_issuer)?;
        check_signature_algorithm(cert).map_err(here)?;
        check_curve(issuer, cert).map_err(here)?;
        check_signature(issuer, cert).map_err(here)?;
        check_validity(cert, opts.at).map_err(here)?;
        check_critical(cert).map_err(here)?;
        check_role_policy(cert, role).map_err(here)?;
        check_generation(cert, role, chain_generation).map_err(here)?;
        check_issuer_role(issuer_role, role).map_err(at_issuer)?;
        if depth == 0 {
            check_leaf_usage(cert, role).map_err(here)?;
        }
        // Constraints of every CA above this certificate, including the anchor.
        for ca in path[depth + 1..]
            .iter()
            .copied()
            .chain(std::iter::once(anchor))
        {
            // Only an end-entity leaf carries an EID; a CA leaf (an EUM SubCA checked on its own)
            // is constrained like an intermediate.
            check_name_constraints(ca, cert, depth == 0 && !role.is_ca()).map_err(here)?;
        }
    }

    // The trust anchor last, so that a failure is reported on the lowest certificate it affects.
    let at_anchor = |k| fail(anchor_depth, Some(anchor_role), anchor, k);
    check_validity(anchor, opts.at).map_err(at_anchor)?;
    check_critical(anchor).map_err(at_anchor)?;

    let leaf_role = roles[0];
    let eid = leaf_eid(leaf, leaf_role).map_err(|k| fail(0, Some(leaf_role), leaf, k))?;
    let intermediates_used = path[1..]
        .iter()
        .filter_map(|p| intermediates.iter().position(|c| std::ptr::eq(*p, c)))
        .collect();
    Ok(VerifiedChain {
        anchor: anchor_index,
        leaf_role,
        path_roles: roles,
        eid,
        intermediates_used,
    })
}

fn fail(depth: usize, role: Option<Role>, cert: &Certificate, kind: ChainErrorKind) -> ChainError {
    ChainError {
        depth,
        role,
        subject: cert.subject.to_string(),
        kind,
    }
}

/// For a leaf validated by [`verify_chain`] under an anchor that was itself validated before (an
/// EUM or EUM SubCA a verifier caches): the name constraints and `permittedEins` of the CAs above
/// that anchor, which [`verify_chain`] does not see, admit the leaf too. `above` runs from the
/// anchor's issuer up (a v3 EUM SubCA carries no permittedEins; the EUM above it does).
pub fn check_constraints_above(
    leaf: &Certificate,
    leaf_role: Role,
    above: &[Certificate],
) -> Result<(), ChainError> {
    for ca in above {
        check_name_constraints(ca, leaf, !leaf_role.is_ca())
            .map_err(|k| fail(0, Some(leaf_role), leaf, k))?;
    }
    Ok(())
}

/// A trusted CI presented as the leaf: valid now, and only acceptable where a CI is expected.
fn verify_anchor_itself(
    ci: &Certificate,
    index: usize,
    expected: Option<Role>,
    opts: Options,
) -> Result<VerifiedChain, ChainError> {
    check_validity(ci, opts.at).map_err(|k| fail(0, Some(Role::Ci), ci, k))?;
    if let Some(role) = expected.filter(|r| *r != Role::Ci) {
        return Err(fail(
            0,
            Some(role),
            ci,
            ChainErrorKind::MissingRolePolicy {
                role,
                found: ci.policies(),
            },
        ));
    }
    Ok(VerifiedChain {
        anchor: index,
        leaf_role: Role::Ci,
        path_roles: vec![],
        eid: None,
        intermediates_used: vec![],
    })
}

/// Rule 1: the path from the leaf through `intermediates` to one of `anchors`, by key
/// identifier (AKI -> SKI, as SGP.22 identifies CIs), each issuer's subject equal to the issuer
/// name, at most `opts.max_depth` certificates. Returns the path (leaf first, anchor excluded)
/// and the anchor's index.
fn build_path<'c>(
    leaf: &'c Certificate,
    intermediates: &'c [Certificate],
    anchors: &[Certificate],
    opts: Options,
) -> Result<(Vec<&'c Certificate>, usize), ChainError> {
    let mut path: Vec<&Certificate> = vec![leaf];
    let mut current = leaf;
    loop {
        let depth = path.len() - 1;
        if path.len() >= opts.max_depth {
            return Err(fail(
                depth,
                None,
                current,
                ChainErrorKind::ChainTooLong(opts.max_depth),
            ));
        }
        if let Some((i, anchor)) = find_issuer(current, anchors.iter().enumerate()) {
            check_issuer_name(current, anchor).map_err(|k| fail(depth, None, current, k))?;
            return Ok((path, i));
        }
        let unused = intermediates
            .iter()
            .enumerate()
            .filter(|(_, c)| !path.iter().any(|p| p.der() == c.der()));
        let Some((_, issuer)) = find_issuer(current, unused) else {
            return Err(fail(depth, None, current, ChainErrorKind::UnknownIssuer));
        };
        check_issuer_name(current, issuer).map_err(|k| fail(depth, None, current, k))?;
        path.push(issuer);
        current = issuer;
    }
}

/// Rule 2: the roles along the path. The leaf's is `expected`, or the one its policy names; every
/// certificate above it (below the CI) must name a CA role in its policy: EUM, EUM SubCA, CI SubCA,
/// SM-DP+ SubCA or SM-DS SubCA. Whether each may issue the one below is checked per certificate.
fn path_roles(path: &[&Certificate], expected: Option<Role>) -> Result<Vec<Role>, ChainError> {
    let leaf = path[0];
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
        let below = roles[depth - 1];
        match detect_role(c) {
            Some(r) if r.is_ca() && r != Role::Ci => roles.push(r),
            Some(r) => {
                return Err(fail(
                    depth,
                    Some(r),
                    c,
                    ChainErrorKind::IssuerRole {
                        issuer: r,
                        subject: below,
                    },
                ));
            }
            None => {
                return Err(fail(
                    depth,
                    None,
                    c,
                    ChainErrorKind::UnknownRole {
                        found: c.policies(),
                    },
                ));
            }
        }
    }
    Ok(roles)
}

/// Which generation of role policy a certificate carries for `role` (v2 when it has the v2 OID,
/// the CI's among them).
fn policy_generation(cert: &Certificate, role: Role) -> PolicyGeneration {
    let policies = cert.policies();
    if role
        .policy_v2()
        .is_some_and(|oid| policies.iter().any(|p| p == oid))
    {
        PolicyGeneration::V2
    } else {
        PolicyGeneration::V3
    }
}

/// A chain below the CI carries v2 role policies or v3 ones, never both: a v3 SubCA does not issue
/// v2 certificates and a v2 EUM does not issue v3 eUICCs.
fn check_generation(
    cert: &Certificate,
    role: Role,
    chain: PolicyGeneration,
) -> Result<(), ChainErrorKind> {
    let found = policy_generation(cert, role);
    if found == chain {
        Ok(())
    } else {
        Err(ChainErrorKind::MixedPolicyGenerations { found, chain })
    }
}

/// The issuer's role may issue this certificate's role ([`Role::may_be_issued_by`]).
fn check_issuer_role(issuer: Role, subject: Role) -> Result<(), ChainErrorKind> {
    if subject.may_be_issued_by(issuer) {
        Ok(())
    } else {
        Err(ChainErrorKind::IssuerRole { issuer, subject })
    }
}

/// X.509 version 3 (extensions carry every SGP.22 rule).
fn check_version(cert: &Certificate) -> Result<(), ChainErrorKind> {
    if cert.version == 3 {
        Ok(())
    } else {
        Err(ChainErrorKind::Version(cert.version))
    }
}

/// The issuer's basicConstraints say cA TRUE.
fn check_issuer_is_ca(issuer: &Certificate) -> Result<(), ChainErrorKind> {
    if basic_constraints(issuer).0 {
        Ok(())
    } else {
        Err(ChainErrorKind::NotCa)
    }
}

/// The issuer's key usage allows signing certificates.
fn check_issuer_can_sign(issuer: &Certificate) -> Result<(), ChainErrorKind> {
    if key_usage(issuer).is_some_and(|u| u.contains(&KeyUsageBit::KeyCertSign)) {
        Ok(())
    } else {
        Err(ChainErrorKind::KeyUsage(
            "an issuer must have keyCertSign".into(),
        ))
    }
}

/// The issuer's pathLenConstraint admits the `below` CA certificates under it in this path: the
/// depth of the certificate it signed (the leaf does not count).
fn check_path_length(issuer: &Certificate, below: usize) -> Result<(), ChainErrorKind> {
    match basic_constraints(issuer).1 {
        Some(allowed) if below > allowed as usize => Err(ChainErrorKind::PathLength {
            allowed,
            found: below,
        }),
        _ => Ok(()),
    }
}

/// Signed with ecdsa-with-SHA256, named the same inside and outside the TBS.
fn check_signature_algorithm(cert: &Certificate) -> Result<(), ChainErrorKind> {
    if is_ecdsa_sha256(&cert.signature_algorithm)
        && cert.signature_algorithm == cert.tbs_signature_algorithm
    {
        Ok(())
    } else {
        Err(ChainErrorKind::UnsupportedSignatureAlgorithm)
    }
}

/// SGP.22 chains stay on one curve.
fn check_curve(issuer: &Certificate, cert: &Certificate) -> Result<(), ChainErrorKind> {
    if issuer.public_key.curve() == cert.public_key.curve() {
        Ok(())
    } else {
        Err(ChainErrorKind::CurveMismatch {
            issuer: issuer.public_key.curve(),
            subject: cert.public_key.curve(),
        })
    }
}

/// The issuer's key verifies the signature over the exact TBS bytes.
fn check_signature(issuer: &Certificate, cert: &Certificate) -> Result<(), ChainErrorKind> {
    if issuer
        .public_key
        .verify_der(cert.tbs_der(), &cert.signature)
    {
        Ok(())
    } else {
        Err(ChainErrorKind::BadSignature)
    }
}

/// The certificate carries a certificate policy of its role.
fn check_role_policy(cert: &Certificate, role: Role) -> Result<(), ChainErrorKind> {
    if has_role_policy(cert, role) {
        Ok(())
    } else {
        Err(ChainErrorKind::MissingRolePolicy {
            role,
            found: cert.policies(),
        })
    }
}

/// The leaf's key usage fits its role (keyCertSign for a CA role, digitalSignature otherwise),
/// and a CA role's leaf is a CA.
fn check_leaf_usage(cert: &Certificate, role: Role) -> Result<(), ChainErrorKind> {
    let needed = if role.is_ca() {
        KeyUsageBit::KeyCertSign
    } else {
        KeyUsageBit::DigitalSignature
    };
    if !key_usage(cert).unwrap_or_default().contains(&needed) {
        return Err(ChainErrorKind::KeyUsage(format!(
            "a {role} certificate needs {needed:?}"
        )));
    }
    if role.is_ca() && !basic_constraints(cert).0 {
        return Err(ChainErrorKind::NotCa);
    }
    Ok(())
}

/// Rule 5: an eUICC certificate's subject serialNumber is a valid EID.
fn leaf_eid(leaf: &Certificate, role: Role) -> Result<Option<Eid>, ChainErrorKind> {
    if role != Role::Euicc {
        return Ok(None);
    }
    let s = leaf
        .subject
        .get(known::AT_SERIAL_NUMBER)
        .ok_or_else(|| ChainErrorKind::Eid("subject has no serialNumber".into()))?;
    Eid::parse(s)
        .map(Some)
        .map_err(|e| ChainErrorKind::Eid(format!("{s:?}: {e}")))
}

/// The issuer's subject is the certificate's issuer name.
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

/// Within notBefore..=notAfter at `at`.
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

/// Every critical extension is one this validator enforces.
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

#[cfg(test)]
mod tests;
