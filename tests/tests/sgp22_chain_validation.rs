//! SGP.22 chain validation against the genuine SGP.26 chains (all must pass) and tampered or
//! out-of-profile ones (each must fail for the stated reason). openssl is the negative control:
//! it rejects every genuine eUICC chain because it reads the EUM name constraint the RFC 5280 way.

use pki_tool::hierarchy::{read_cert, read_key};
use pki_tool::mint::{MintInput, Signer, mint};
use pki_tool::profile::{Profile, SerialSpec, Template, Vars};
use pki_tool::validate::{ChainError, ChainErrorKind, Options, VerifiedChain, verify_chain};
use pki_tool::{Certificate, Curve, Eid, PrivateKey, Role};
use std::path::Path;
use workspace_tests::common::{TempDir, osmo, sgp26};

fn cert(rel: &str) -> Certificate {
    read_cert(&sgp26().join(rel)).expect("reference certificate parses")
}

fn now() -> i64 {
    pki_tool::time::now()
}

fn c(curve: Curve) -> &'static str {
    curve.file_suffix()
}

#[test]
fn genuine_euicc_chains_validate() {
    for curve in Curve::ALL {
        let ci = cert(&format!(
            "osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_{}.der",
            c(curve)
        ));
        let eum = cert(&format!(
            "osmo-ttcn3-hacks_v1.5/EUM/CERT_EUM_ECDSA_{}.der",
            c(curve)
        ));
        let euicc = cert(&format!(
            "osmo-ttcn3-hacks_v1.5/eUICC/CERT_EUICC_ECDSA_{}.der",
            c(curve)
        ));
        let v = verify_chain(&euicc, &[eum], &[ci], Some(Role::Euicc), Options::at(now()))
            .expect("valid chain");
        assert_eq!(
            v.eid.map(|e| e.to_string()).as_deref(),
            Some("89049032123451234512345678901235")
        );
        assert_eq!(v.path_roles, vec![Role::Euicc, Role::Eum]);
    }
    // SGP.26 v3 Variant O, whose EUM is signed by the same CI key.
    let ci = cert("openiotrsp_v3_variantO/CI/CERT_CI_SIG_NIST.der");
    let eum = cert("openiotrsp_v3_variantO/EUM/CERT_EUM_SIG_NIST.der");
    let euicc = cert("openiotrsp_v3_variantO/eUICC/CERT_EUICC_SIG_NIST.der");
    verify_chain(&euicc, &[eum], &[ci], None, Options::at(now())).expect("v3 chain valid");
}

#[test]
fn genuine_server_and_eum_certificates_validate() {
    let cases: &[(&str, &str, Role, Option<&str>)] = &[
        (
            "osmo-ttcn3-hacks_v1.5/DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der",
            "osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_NIST.der",
            Role::Dpauth,
            None,
        ),
        (
            "osmo-ttcn3-hacks_v1.5/DPauth/CERT_S_SM_DP2auth_ECDSA_BRP.der",
            "osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_BRP.der",
            Role::Dpauth,
            None,
        ),
        (
            "osmo-ttcn3-hacks_v1.5/DPpb/CERT_S_SM_DPpb_ECDSA_BRP.der",
            "osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_BRP.der",
            Role::Dppb,
            None,
        ),
        (
            "osmo-ttcn3-hacks_v1.5/DPpb/CERT_S_SM_DP2pb_ECDSA_NIST.der",
            "osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_NIST.der",
            Role::Dppb,
            None,
        ),
        (
            "osmo-ttcn3-hacks_v1.5/DPtls/CERT_S_SM_DP_VARO_TLS_NIST.der",
            "osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_NIST.der",
            Role::Dptls,
            None,
        ),
        (
            "osmo-ttcn3-hacks_v1.5/DPtls/CERT_S_SM_DP_VARO_TLS_BRP.der",
            "osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_BRP.der",
            Role::Dptls,
            None,
        ),
        (
            "osmo-ttcn3-hacks_v1.5/DPtls/CERT_S_SM_DP8_TLS.der",
            "osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_NIST.der",
            Role::Dptls,
            Some("2025-01-01"),
        ),
        (
            "pysim_v1.5/DPtls/CERT_S_SM_DP_TLS_BRP.der",
            "pysim_v1.5/CI/CERT_CI_ECDSA_BRP.der",
            Role::Dptls,
            Some("2026-01-01"),
        ),
        (
            "osmo-ttcn3-hacks_v1.5/EUM/CERT_EUM_ECDSA_BRP.der",
            "osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_BRP.der",
            Role::Eum,
            None,
        ),
        (
            "euicc-rsp_v1.0/EUM/CERT_EUM_v1.0_NIST.der",
            "euicc-rsp_v1.0/CI/CERT_CI_v1.0_GSMA_Test_CI_NIST.der",
            Role::Eum,
            None,
        ),
        (
            "yggdrasim_v3_variantO/DPauth/CERT_S_SM_DPauth_VARO_SIG_NIST.der",
            "yggdrasim_v3_variantO/CI/CERT_CI_SIG_NIST.der",
            Role::Dpauth,
            None,
        ),
        (
            "yggdrasim_v3_variantO/DPpb/CERT_S_SM_DPpb_VARO_SIG_NIST.der",
            "yggdrasim_v3_variantO/CI/CERT_CI_SIG_NIST.der",
            Role::Dppb,
            None,
        ),
    ];
    for (leaf, ci, role, at) in cases {
        let at = at
            .map(|t| pki_tool::time::parse_rfc3339(t).expect("time"))
            .unwrap_or_else(now);
        let v = verify_chain(&cert(leaf), &[], &[cert(ci)], None, Options::at(at))
            .unwrap_or_else(|e| panic!("{leaf}: {e}"));
        assert_eq!(v.leaf_role, *role, "{leaf}");
    }
    // The CI itself, as its own trust anchor.
    let ci = cert("osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_NIST.der");
    verify_chain(
        &ci,
        &[],
        std::slice::from_ref(&ci),
        None,
        Options::at(now()),
    )
    .expect("CI valid");
}

#[test]
fn openssl_rejects_the_genuine_euicc_chain_that_we_accept() {
    let dir = osmo();
    let out = std::process::Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(dir.join("CI/CERT_CI_ECDSA_NIST.pem"))
        .arg("-untrusted")
        .arg(
            pem_of(&dir.join("EUM/CERT_EUM_ECDSA_NIST.der"))
                .0
                .join("c.pem"),
        )
        .arg(
            pem_of(&dir.join("eUICC/CERT_EUICC_ECDSA_NIST.der"))
                .0
                .join("c.pem"),
        )
        .output()
        .expect("openssl runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("permitted subtree violation"), "{text}");
}

fn pem_of(der: &Path) -> TempDir {
    let t = TempDir::new("pem");
    let c = read_cert(der).expect("parses");
    std::fs::write(t.0.join("c.pem"), c.to_pem()).expect("write");
    t
}

/// The GSMA v1.5 NIST set with its keys, for minting variations of the real certificates.
struct Gsma {
    ci: Certificate,
    ci_key: PrivateKey,
    eum: Certificate,
    eum_key: PrivateKey,
    profile: Profile,
}

fn gsma() -> Gsma {
    let d = osmo();
    Gsma {
        ci: read_cert(&d.join("CI/CERT_CI_ECDSA_NIST.der")).expect("ci"),
        ci_key: read_key(&d.join("CI/SK_CI_ECDSA_NIST.pem")).expect("ci key"),
        eum: read_cert(&d.join("EUM/CERT_EUM_ECDSA_NIST.der")).expect("eum"),
        eum_key: read_key(&d.join("EUM/SK_EUM_ECDSA_NIST.pem")).expect("eum key"),
        profile: Profile::builtin("sgp26-v1.5").expect("profile"),
    }
}

fn euicc_with(g: &Gsma, eid: &str, edit: impl Fn(&mut pki_tool::profile::Template)) -> Certificate {
    let mut t = g.profile.template(Role::Euicc).clone();
    t.serial = SerialSpec::Random { bytes: 8 };
    edit(&mut t);
    let mut v = Vars::default();
    v.set("eid", eid);
    let k = PrivateKey::generate(Curve::NistP256).expect("key");
    mint_with(&t, &v, &k, Signer::Issuer(&g.eum, &g.eum_key))
}

fn mint_with(t: &Template, vars: &Vars, key: &PrivateKey, signer: Signer<'_>) -> Certificate {
    mint(&MintInput {
        template: t,
        vars,
        subject_key: key.public_key(),
        signer,
        now: now(),
    })
    .expect("mint")
}

fn verify_under_gsma(g: &Gsma, euicc: &Certificate) -> Result<VerifiedChain, ChainError> {
    verify_chain(
        euicc,
        std::slice::from_ref(&g.eum),
        std::slice::from_ref(&g.ci),
        None,
        Options::at(now()),
    )
}

fn expect_kind(
    r: Result<VerifiedChain, ChainError>,
    depth: usize,
    pred: impl Fn(&ChainErrorKind) -> bool,
) {
    match r {
        Ok(_) => panic!("chain unexpectedly valid"),
        Err(e) => {
            assert!(pred(&e.kind), "unexpected failure: {e}");
            assert_eq!(
                e.depth, depth,
                "failure attributed to the wrong certificate: {e}"
            );
        }
    }
}

#[test]
fn chain_depth_is_bounded() {
    let g = gsma();
    let euicc = cert("osmo-ttcn3-hacks_v1.5/eUICC/CERT_EUICC_ECDSA_NIST.der");
    let opts = Options {
        at: now(),
        max_depth: 2,
    };
    match verify_chain(
        &euicc,
        std::slice::from_ref(&g.eum),
        std::slice::from_ref(&g.ci),
        None,
        opts,
    ) {
        Err(e) => assert!(matches!(e.kind, ChainErrorKind::ChainTooLong(2)), "{e}"),
        Ok(_) => panic!("a three-certificate chain passed a depth limit of 2"),
    }
}

#[test]
fn eid_outside_the_eum_prefix_is_rejected() {
    let g = gsma();
    let good = Eid::random_with_prefix("89049032")
        .expect("eid")
        .to_string();
    let ok = euicc_with(&g, &good, |_| {});
    verify_under_gsma(&g, &ok).expect("in prefix");

    let outside = Eid::random_with_prefix("89049033")
        .expect("eid")
        .to_string();
    let bad = euicc_with(&g, &outside, |_| {});
    expect_kind(
        verify_under_gsma(&g, &bad),
        0,
        |k| matches!(k, ChainErrorKind::NameConstraint(s) if s.contains("outside the permitted prefix")),
    );
}

#[test]
fn wrong_organisation_is_rejected() {
    let g = gsma();
    let eid = Eid::random_with_prefix("89049032")
        .expect("eid")
        .to_string();
    let bad = euicc_with(&g, &eid, |t| t.subject[1].value = "Other EUM".into());
    expect_kind(verify_under_gsma(&g, &bad), 0, |k| {
        matches!(k, ChainErrorKind::NameConstraint(_))
    });
}

#[test]
fn invalid_eid_check_digits_are_rejected() {
    let g = gsma();
    let bad = euicc_with(&g, "89049032123451234512345678901234", |_| {});
    expect_kind(
        verify_under_gsma(&g, &bad),
        0,
        |k| matches!(k, ChainErrorKind::Eid(s) if s.contains("check digits")),
    );
}

#[test]
fn tampered_certificates_are_rejected() {
    let g = gsma();
    let euicc = cert("osmo-ttcn3-hacks_v1.5/eUICC/CERT_EUICC_ECDSA_NIST.der");

    // One bit of the eUICC's TBS (inside the CN value) flipped.
    let mut der = euicc.der().to_vec();
    let pos = der
        .windows(10)
        .position(|w| w == b"Test eUICC")
        .expect("CN present");
    der[pos] ^= 0x01;
    let tampered = Certificate::from_der(&der).expect("still parses");
    expect_kind(verify_under_gsma(&g, &tampered), 0, |k| {
        *k == ChainErrorKind::BadSignature
    });

    // The EUM's signature bytes altered: the failure is the EUM's.
    let mut der = g.eum.der().to_vec();
    let n = der.len();
    der[n - 5] ^= 0x40;
    if let Ok(bad_eum) = Certificate::from_der(&der) {
        expect_kind(
            verify_chain(
                &euicc,
                &[bad_eum],
                std::slice::from_ref(&g.ci),
                None,
                Options::at(now()),
            ),
            1,
            |k| *k == ChainErrorKind::BadSignature,
        );
    }

    // A different CI with the same key identifier... is not the same key: a self-made CI with the
    // GSMA CI's name cannot vouch for the GSMA EUM.
    let other = PrivateKey::generate(Curve::NistP256).expect("key");
    let mut t = g.profile.template(Role::Ci).clone();
    t.serial = SerialSpec::Random { bytes: 8 };
    let fake_ci = mint_with(&t, &Vars::default(), &other, Signer::SelfSigned(&other));
    expect_kind(
        verify_chain(
            &euicc,
            std::slice::from_ref(&g.eum),
            &[fake_ci],
            None,
            Options::at(now()),
        ),
        1,
        |k| *k == ChainErrorKind::UnknownIssuer,
    );
}

#[test]
fn validity_and_role_are_enforced() {
    let g = gsma();
    let euicc = cert("osmo-ttcn3-hacks_v1.5/eUICC/CERT_EUICC_ECDSA_NIST.der");
    let before = pki_tool::time::parse_rfc3339("2019-01-01").expect("time");
    expect_kind(
        verify_chain(
            &euicc,
            std::slice::from_ref(&g.eum),
            std::slice::from_ref(&g.ci),
            None,
            Options::at(before),
        ),
        0,
        |k| matches!(k, ChainErrorKind::NotYetValid { .. }),
    );
    let after_eum = pki_tool::time::parse_rfc3339("2054-06-01").expect("time");
    expect_kind(
        verify_chain(
            &euicc,
            std::slice::from_ref(&g.eum),
            std::slice::from_ref(&g.ci),
            None,
            Options::at(after_eum),
        ),
        1,
        |k| matches!(k, ChainErrorKind::Expired { .. }),
    );
    let expired_tls = cert("pysim_v1.5/DPtls/CERT_S_SM_DP_TLS_NIST.der");
    expect_kind(
        verify_chain(
            &expired_tls,
            &[],
            std::slice::from_ref(&g.ci),
            None,
            Options::at(now()),
        ),
        0,
        |k| matches!(k, ChainErrorKind::Expired { .. }),
    );
    // A DPauth certificate presented as an eUICC.
    let dpauth = cert("osmo-ttcn3-hacks_v1.5/DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der");
    expect_kind(
        verify_chain(
            &dpauth,
            &[],
            std::slice::from_ref(&g.ci),
            Some(Role::Euicc),
            Options::at(now()),
        ),
        0,
        |k| {
            matches!(
                k,
                ChainErrorKind::MissingRolePolicy {
                    role: Role::Euicc,
                    ..
                }
            )
        },
    );
    // An eUICC chain checked against the brainpool CI: no issuer.
    let brp_ci = cert("osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_BRP.der");
    expect_kind(
        verify_chain(
            &euicc,
            std::slice::from_ref(&g.eum),
            &[brp_ci],
            None,
            Options::at(now()),
        ),
        1,
        |k| *k == ChainErrorKind::UnknownIssuer,
    );
}

#[test]
fn eum_path_length_zero_forbids_a_sub_ca() {
    let g = gsma();
    // A CA below the EUM (pathLen 0), then an eUICC below it.
    let sub_key = PrivateKey::generate(Curve::NistP256).expect("key");
    let mut t = g.profile.template(Role::Eum).clone();
    t.serial = SerialSpec::Random { bytes: 8 };
    t.subject[2].value = "EUM Sub CA".into();
    let sub = mint_with(
        &t,
        &Vars::default(),
        &sub_key,
        Signer::Issuer(&g.eum, &g.eum_key),
    );
    let mut et = g.profile.template(Role::Euicc).clone();
    et.serial = SerialSpec::Random { bytes: 8 };
    let mut v = Vars::default();
    v.set("eid", "89049032123451234512345678901235");
    let k = PrivateKey::generate(Curve::NistP256).expect("key");
    let leaf = mint_with(&et, &v, &k, Signer::Issuer(&sub, &sub_key));
    expect_kind(
        verify_chain(
            &leaf,
            &[sub, g.eum.clone()],
            std::slice::from_ref(&g.ci),
            None,
            Options::at(now()),
        ),
        2,
        |k| {
            matches!(
                k,
                ChainErrorKind::PathLength {
                    allowed: 0,
                    found: 1
                }
            )
        },
    );
}

#[test]
fn permitted_eins_extension_is_enforced() {
    let g = gsma();
    // A v3-style EUM: policy .2, no serialNumber in its name constraint, permittedEins instead.
    let eum_key = PrivateKey::generate(Curve::NistP256).expect("key");
    let mut t = g.profile.template(Role::Eum).clone();
    t.serial = SerialSpec::Random { bytes: 8 };
    for e in &mut t.extensions {
        if let pki_tool::profile::ExtensionSpec::NameConstraints { permitted, .. } = e {
            permitted[0].retain(|a| a.attr == "O");
        }
    }
    t.extensions
        .push(pki_tool::profile::ExtensionSpec::PermittedEins {
            critical: false,
            eins: vec!["89049032".into()],
        });
    let eum = mint_with(
        &t,
        &Vars::default(),
        &eum_key,
        Signer::Issuer(&g.ci, &g.ci_key),
    );
    let g2 = Gsma {
        eum: eum.clone(),
        eum_key,
        ..gsma()
    };
    let inside = euicc_with(
        &g2,
        &Eid::random_with_prefix("89049032")
            .expect("eid")
            .to_string(),
        |_| {},
    );
    verify_chain(
        &inside,
        std::slice::from_ref(&eum),
        std::slice::from_ref(&g.ci),
        None,
        Options::at(now()),
    )
    .expect("inside permittedEins");
    let outside = euicc_with(
        &g2,
        &Eid::random_with_prefix("89044444")
            .expect("eid")
            .to_string(),
        |_| {},
    );
    expect_kind(
        verify_chain(
            &outside,
            std::slice::from_ref(&eum),
            std::slice::from_ref(&g.ci),
            None,
            Options::at(now()),
        ),
        0,
        |k| matches!(k, ChainErrorKind::NameConstraint(s) if s.contains("permittedEins")),
    );
}
