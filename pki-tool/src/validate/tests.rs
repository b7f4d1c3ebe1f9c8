//! One test per SGP.22 rule of [`super::verify_chain`], each on certificates minted here with the
//! default profile and then altered in the one way the rule is about.

use super::*;
use crate::keys::{Curve, PrivateKey};
use crate::mint::{MintInput, Signer, mint};
use crate::profile::{Profile, Template, Vars};

const EID: &str = "89049032123451234512345678901235";

struct Pki {
    profile: Profile,
    ci: Certificate,
    ci_key: PrivateKey,
    eum: Certificate,
    eum_key: PrivateKey,
    euicc: Certificate,
    dptls: Certificate,
}

fn vars() -> Vars {
    let mut v = Vars::default();
    v.set("eid", EID);
    v.set("smdp_fqdn", "smdp.example.com");
    v.set("smds_fqdn", "smds.example.com");
    v
}

fn key(curve: Curve) -> PrivateKey {
    PrivateKey::generate(curve).expect("key")
}

fn mint_from(t: &Template, subject: &PrivateKey, signer: Signer<'_>) -> Certificate {
    mint(&MintInput {
        template: t,
        vars: &vars(),
        subject_key: subject.public_key(),
        signer,
        now: crate::time::now(),
    })
    .expect("mint")
}

fn pki() -> Pki {
    let profile = Profile::builtin("default").expect("profile");
    let ci_key = key(Curve::NistP256);
    let ci = mint_from(
        profile.template(Role::Ci),
        &ci_key,
        Signer::SelfSigned(&ci_key),
    );
    let eum_key = key(Curve::NistP256);
    let eum = mint_from(
        profile.template(Role::Eum),
        &eum_key,
        Signer::Issuer(&ci, &ci_key),
    );
    let euicc = mint_from(
        profile.template(Role::Euicc),
        &key(Curve::NistP256),
        Signer::Issuer(&eum, &eum_key),
    );
    let dptls = mint_from(
        profile.template(Role::Dptls),
        &key(Curve::NistP256),
        Signer::Issuer(&ci, &ci_key),
    );
    Pki {
        profile,
        ci,
        ci_key,
        eum,
        eum_key,
        euicc,
        dptls,
    }
}

impl Pki {
    /// A certificate of `role` minted from its template after `edit`.
    fn edited(
        &self,
        role: Role,
        signer: Signer<'_>,
        subject: &PrivateKey,
        edit: impl FnOnce(&mut Template),
    ) -> Certificate {
        let mut t = self.profile.template(role).clone();
        edit(&mut t);
        mint_from(&t, subject, signer)
    }

    fn verify_euicc(&self, euicc: &Certificate) -> Result<VerifiedChain, ChainError> {
        verify_chain(
            euicc,
            std::slice::from_ref(&self.eum),
            std::slice::from_ref(&self.ci),
            Some(Role::Euicc),
            Options::at(crate::time::now()),
        )
    }
}

fn set_key_usage(cert: &mut Certificate, bits: Vec<KeyUsageBit>) {
    for e in &mut cert.extensions {
        if let Some(ExtensionSpec::KeyUsage { usages, .. }) = e.spec.as_mut() {
            *usages = bits.clone();
        }
    }
}

fn set_ca(cert: &mut Certificate, is_ca: bool, len: Option<u32>) {
    for e in &mut cert.extensions {
        if let Some(ExtensionSpec::BasicConstraints { ca, path_len, .. }) = e.spec.as_mut() {
            *ca = is_ca;
            *path_len = len;
        }
    }
}

#[test]
fn the_minted_chain_passes_every_rule() {
    let p = pki();
    let v = p.verify_euicc(&p.euicc).expect("valid");
    assert_eq!(v.eid.map(|e| e.to_string()).as_deref(), Some(EID));
    assert_eq!(v.path_roles, [Role::Euicc, Role::Eum]);
}

#[test]
fn rule_build_path_by_key_identifier_name_and_depth() {
    let p = pki();
    // No issuer at all.
    let err = verify_chain(
        &p.euicc,
        &[],
        std::slice::from_ref(&p.ci),
        None,
        Options::at(crate::time::now()),
    )
    .expect_err("EUM missing");
    assert_eq!(err.kind, ChainErrorKind::UnknownIssuer);
    // Too deep for the limit.
    let err = verify_chain(
        &p.euicc,
        std::slice::from_ref(&p.eum),
        std::slice::from_ref(&p.ci),
        None,
        Options {
            at: crate::time::now(),
            max_depth: 2,
        },
    )
    .expect_err("too deep");
    assert_eq!(err.kind, ChainErrorKind::ChainTooLong(2));
    // An issuer found by key identifier whose subject is not the issuer name.
    let renamed = p.edited(
        Role::Eum,
        Signer::Issuer(&p.ci, &p.ci_key),
        &p.eum_key,
        |t| {
            for a in &mut t.subject {
                if a.attr == "CN" {
                    a.value = "Another EUM".into();
                }
            }
        },
    );
    assert!(matches!(
        check_issuer_name(&p.euicc, &renamed),
        Err(ChainErrorKind::IssuerNameMismatch { .. })
    ));
    assert_eq!(check_issuer_name(&p.euicc, &p.eum), Ok(()));
}

#[test]
fn rule_path_roles_only_ca_roles_between_leaf_and_ci() {
    let p = pki();
    let err = path_roles(&[&p.euicc, &p.dptls], None).expect_err("DP TLS as an intermediate");
    assert_eq!(err.depth, 1);
    assert_eq!(
        err.kind,
        ChainErrorKind::IssuerRole {
            issuer: Role::Dptls,
            subject: Role::Euicc
        }
    );
    assert_eq!(
        path_roles(&[&p.euicc, &p.eum], None).expect("roles"),
        [Role::Euicc, Role::Eum]
    );
}

#[test]
fn rule_version_3() {
    let p = pki();
    let mut v1 = p.euicc.clone();
    v1.version = 1;
    assert_eq!(check_version(&v1), Err(ChainErrorKind::Version(1)));
    assert_eq!(check_version(&p.euicc), Ok(()));
}

#[test]
fn rule_issuer_is_a_ca_with_key_cert_sign() {
    let p = pki();
    assert_eq!(check_issuer_is_ca(&p.dptls), Err(ChainErrorKind::NotCa));
    assert_eq!(check_issuer_is_ca(&p.eum), Ok(()));
    let mut no_sign = p.eum.clone();
    set_key_usage(&mut no_sign, vec![KeyUsageBit::DigitalSignature]);
    assert!(matches!(
        check_issuer_can_sign(&no_sign),
        Err(ChainErrorKind::KeyUsage(_))
    ));
    assert_eq!(check_issuer_can_sign(&p.eum), Ok(()));
}

#[test]
fn rule_path_length() {
    let p = pki();
    // The default EUM has pathLen 0: it may sign the eUICC (depth 0) but no sub-CA (depth 1).
    assert_eq!(check_path_length(&p.eum, 0), Ok(()));
    assert_eq!(
        check_path_length(&p.eum, 1),
        Err(ChainErrorKind::PathLength {
            allowed: 0,
            found: 1
        })
    );
    let mut unbounded = p.eum.clone();
    set_ca(&mut unbounded, true, None);
    assert_eq!(check_path_length(&unbounded, 4), Ok(()));
}

#[test]
fn rule_signature_algorithm_curve_and_signature() {
    let p = pki();
    let mut other_alg = p.euicc.clone();
    other_alg.signature_algorithm =
        other_alg.signature_algorithm[..other_alg.signature_algorithm.len() - 1].to_vec();
    assert_eq!(
        check_signature_algorithm(&other_alg),
        Err(ChainErrorKind::UnsupportedSignatureAlgorithm)
    );
    assert_eq!(check_signature_algorithm(&p.euicc), Ok(()));

    // (pki-tool will not mint across curves, so the key is swapped in after minting.)
    let mut brainpool = p.euicc.clone();
    brainpool.public_key = key(Curve::BrainpoolP256r1).public_key().clone();
    assert!(matches!(
        check_curve(&p.eum, &brainpool),
        Err(ChainErrorKind::CurveMismatch { .. })
    ));
    assert_eq!(check_curve(&p.eum, &p.euicc), Ok(()));

    let mut tampered = p.euicc.clone();
    let last = tampered.signature.len() - 1;
    tampered.signature[last] ^= 1;
    assert_eq!(
        check_signature(&p.eum, &tampered),
        Err(ChainErrorKind::BadSignature)
    );
    assert_eq!(
        check_signature(&p.ci, &p.euicc),
        Err(ChainErrorKind::BadSignature),
        "signed by the EUM, not the CI"
    );
    assert_eq!(check_signature(&p.eum, &p.euicc), Ok(()));
}

#[test]
fn rule_validity() {
    let p = pki();
    let c = &p.euicc;
    assert_eq!(check_validity(c, c.not_before), Ok(()));
    assert_eq!(check_validity(c, c.not_after), Ok(()));
    assert!(matches!(
        check_validity(c, c.not_before - 1),
        Err(ChainErrorKind::NotYetValid { .. })
    ));
    assert!(matches!(
        check_validity(c, c.not_after + 1),
        Err(ChainErrorKind::Expired { .. })
    ));
}

#[test]
fn rule_no_unknown_critical_extension() {
    let p = pki();
    assert_eq!(check_critical(&p.eum), Ok(()));
    let mut unknown = p.eum.clone();
    unknown.extensions.push(crate::cert::Extension {
        oid: crate::oid::Oid::parse("2.999.1").expect("oid"),
        critical: true,
        value: vec![0x05, 0x00],
        spec: None,
    });
    assert_eq!(
        check_critical(&unknown),
        Err(ChainErrorKind::UnknownCriticalExtension("2.999.1".into()))
    );
}

#[test]
fn rule_role_policy() {
    let p = pki();
    assert_eq!(check_role_policy(&p.euicc, Role::Euicc), Ok(()));
    assert!(matches!(
        check_role_policy(&p.dptls, Role::Euicc),
        Err(ChainErrorKind::MissingRolePolicy {
            role: Role::Euicc,
            ..
        })
    ));
}

#[test]
fn rule_leaf_key_usage_and_ca_flag() {
    let p = pki();
    assert_eq!(check_leaf_usage(&p.euicc, Role::Euicc), Ok(()));
    assert_eq!(check_leaf_usage(&p.eum, Role::Eum), Ok(()));
    let mut no_sig = p.euicc.clone();
    set_key_usage(&mut no_sig, vec![KeyUsageBit::KeyCertSign]);
    assert!(matches!(
        check_leaf_usage(&no_sig, Role::Euicc),
        Err(ChainErrorKind::KeyUsage(_))
    ));
    let mut not_ca = p.eum.clone();
    set_ca(&mut not_ca, false, None);
    assert_eq!(
        check_leaf_usage(&not_ca, Role::Eum),
        Err(ChainErrorKind::NotCa)
    );
}

#[test]
fn rule_name_constraints_and_permitted_eins() {
    let p = pki();
    assert_eq!(check_name_constraints(&p.eum, &p.euicc, true), Ok(()));
    let outside = p.edited(
        Role::Euicc,
        Signer::Issuer(&p.eum, &p.eum_key),
        &key(Curve::NistP256),
        |t| {
            for a in &mut t.subject {
                if a.attr == "O" {
                    a.value = "Another Manufacturer".into();
                }
            }
        },
    );
    let err = check_name_constraints(&p.eum, &outside, true).expect_err("wrong O");
    assert!(
        matches!(&err, ChainErrorKind::NameConstraint(why) if why.contains("Another Manufacturer")),
        "{err}"
    );
    // The CI carries no constraints.
    assert_eq!(check_name_constraints(&p.ci, &outside, true), Ok(()));
}

#[test]
fn rule_euicc_leaf_has_a_valid_eid() {
    let p = pki();
    assert_eq!(
        leaf_eid(&p.euicc, Role::Euicc)
            .expect("eid")
            .map(|e| e.to_string())
            .as_deref(),
        Some(EID)
    );
    assert_eq!(leaf_eid(&p.dptls, Role::Dptls), Ok(None));
    assert!(matches!(
        leaf_eid(&p.dptls, Role::Euicc),
        Err(ChainErrorKind::Eid(_))
    ));
}

#[test]
fn a_trusted_ci_as_leaf_is_accepted_only_as_a_ci() {
    let p = pki();
    let anchors = std::slice::from_ref(&p.ci);
    let now = Options::at(crate::time::now());
    assert_eq!(
        verify_chain(&p.ci, &[], anchors, Some(Role::Ci), now)
            .expect("CI")
            .leaf_role,
        Role::Ci
    );
    assert!(verify_chain(&p.ci, &[], anchors, Some(Role::Eum), now).is_err());
}

/// A whole SGP.26 v3 hierarchy of `variant`, minted from the built-in templates.
fn v3(
    variant: crate::variant::Variant,
) -> std::collections::BTreeMap<Role, (Certificate, PrivateKey)> {
    let profile = Profile::builtin_variant("sgp26-v3", variant).expect("profile");
    let mut out = std::collections::BTreeMap::new();
    for role in variant.roles() {
        let k = key(Curve::NistP256);
        let t = profile.get(role).expect("template");
        let cert = if role == Role::Ci {
            mint_from(t, &k, Signer::SelfSigned(&k))
        } else {
            let (ic, ik): &(Certificate, PrivateKey) = &out[&variant.issuer(role)];
            mint_from(t, &k, Signer::Issuer(ic, ik))
        };
        out.insert(role, (cert, k));
    }
    out
}

fn verify_v3(
    h: &std::collections::BTreeMap<Role, (Certificate, PrivateKey)>,
    leaf: &Certificate,
    intermediates: &[Role],
) -> Result<VerifiedChain, ChainError> {
    let chain: Vec<Certificate> = intermediates.iter().map(|r| h[r].0.clone()).collect();
    verify_chain(
        leaf,
        &chain,
        std::slice::from_ref(&h[&Role::Ci].0),
        None,
        Options::at(crate::time::now()),
    )
}

#[test]
fn v3_chains_with_subcas_pass_in_every_variant() {
    use crate::variant::Variant;
    for variant in Variant::ALL {
        let h = v3(variant);
        for role in variant.roles().into_iter().filter(|r| *r != Role::Ci) {
            let above = variant.intermediates(role);
            // Intermediates given in scrambled order: the path is built by key identifier.
            let mut given = above.clone();
            given.reverse();
            let v = verify_v3(&h, &h[&role].0, &given)
                .unwrap_or_else(|e| panic!("Variant {variant} {role}: {e}"));
            let mut expect = vec![role];
            expect.extend(above);
            assert_eq!(v.path_roles, expect, "Variant {variant} {role}");
        }
    }
}

#[test]
fn v3_a_subca_used_for_another_role_is_refused() {
    use crate::variant::Variant;
    let h = v3(Variant::A);
    let p = Profile::builtin_variant("sgp26-v3", Variant::A).expect("profile");
    // The SM-DP+ SubCA signs a DSauth certificate.
    let (dp_sub, dp_sub_key) = &h[&Role::Dpsubca];
    let ds = mint_from(
        p.get(Role::Dsauth).expect("t"),
        &key(Curve::NistP256),
        Signer::Issuer(dp_sub, dp_sub_key),
    );
    let err = verify_v3(&h, &ds, &[Role::Dpsubca]).expect_err("wrong SubCA");
    assert_eq!(err.depth, 1);
    assert_eq!(
        err.kind,
        ChainErrorKind::IssuerRole {
            issuer: Role::Dpsubca,
            subject: Role::Dsauth
        }
    );
    assert!(err.to_string().contains("dssubca"), "{err}");
    // The EUM SubCA signs an SM-DP+ TLS certificate.
    let (eum_sub, eum_sub_key) = &h[&Role::Eumsubca];
    let tls = mint_from(
        p.get(Role::Dptls).expect("t"),
        &key(Curve::NistP256),
        Signer::Issuer(eum_sub, eum_sub_key),
    );
    let err = verify_v3(&h, &tls, &[Role::Eumsubca, Role::Eum]).expect_err("EUM SubCA");
    assert!(
        matches!(err.kind, ChainErrorKind::IssuerRole { .. }),
        "{err}"
    );
}

#[test]
fn v3_a_chain_mixing_v2_and_v3_policies_is_refused() {
    use crate::variant::Variant;
    let h = v3(Variant::A);
    let v2 = Profile::builtin("default").expect("profile");
    // A v2 DPauth (policy .4) under the v3 SM-DP+ SubCA.
    let (sub, sub_key) = &h[&Role::Dpsubca];
    let old = mint_from(
        v2.template(Role::Dpauth),
        &key(Curve::NistP256),
        Signer::Issuer(sub, sub_key),
    );
    let err = verify_v3(&h, &old, &[Role::Dpsubca]).expect_err("mixed");
    assert_eq!(err.depth, 1);
    assert_eq!(
        err.kind,
        ChainErrorKind::MixedPolicyGenerations {
            found: PolicyGeneration::V3,
            chain: PolicyGeneration::V2
        }
    );
    // A v3 eUICC under a v2 EUM, directly under the CI.
    let (ci, ci_key) = &h[&Role::Ci];
    let eum_key = key(Curve::NistP256);
    let eum = mint_from(v2.template(Role::Eum), &eum_key, Signer::Issuer(ci, ci_key));
    let v3_euicc = mint_from(
        Profile::builtin_variant("sgp26-v3", Variant::A)
            .expect("A")
            .get(Role::Euicc)
            .expect("t"),
        &key(Curve::NistP256),
        Signer::Issuer(&eum, &eum_key),
    );
    let err = verify_chain(
        &v3_euicc,
        &[eum],
        std::slice::from_ref(ci),
        None,
        Options::at(crate::time::now()),
    )
    .expect_err("mixed");
    assert!(
        matches!(err.kind, ChainErrorKind::MixedPolicyGenerations { .. }),
        "{err}"
    );
}

#[test]
fn v3_path_length_and_permitted_eins_are_enforced_through_the_eum_subca() {
    use crate::variant::Variant;
    let h = v3(Variant::A);
    let p = Profile::builtin_variant("sgp26-v3", Variant::A).expect("profile");
    // A second EUM SubCA below the first: the EUM's pathLen 1 admits one CA below it, and the
    // first SubCA's pathLen 0 none.
    let (sub, sub_key) = &h[&Role::Eumsubca];
    let sub2_key = key(Curve::NistP256);
    let sub2 = mint_from(
        p.get(Role::Eumsubca).expect("t"),
        &sub2_key,
        Signer::Issuer(sub, sub_key),
    );
    let euicc = mint_from(
        p.get(Role::Euicc).expect("t"),
        &key(Curve::NistP256),
        Signer::Issuer(&sub2, &sub2_key),
    );
    let err = verify_v3(&h, &euicc, &[]).expect_err("no issuer given");
    assert_eq!(err.kind, ChainErrorKind::UnknownIssuer);
    let chain = [sub2, h[&Role::Eumsubca].0.clone(), h[&Role::Eum].0.clone()];
    let err = verify_chain(
        &euicc,
        &chain,
        std::slice::from_ref(&h[&Role::Ci].0),
        None,
        Options::at(crate::time::now()),
    )
    .expect_err("too long for pathLen");
    assert_eq!(
        err.kind,
        ChainErrorKind::PathLength {
            allowed: 0,
            found: 1
        }
    );
    assert_eq!(err.depth, 2);
    // An EID outside the EUM's permittedEins, issued through the EUM SubCA.
    let mut t = p.get(Role::Euicc).expect("t").clone();
    t.subject
        .iter_mut()
        .filter(|a| a.attr == "serialNumber")
        .for_each(|a| a.value = "89001012012341234012345678901224".into());
    let outside = mint_from(&t, &key(Curve::NistP256), Signer::Issuer(sub, sub_key));
    let err = verify_v3(&h, &outside, &[Role::Eumsubca, Role::Eum]).expect_err("EIN");
    assert!(
        matches!(&err.kind, ChainErrorKind::NameConstraint(why) if why.contains("permittedEins")),
        "{err}"
    );
}
