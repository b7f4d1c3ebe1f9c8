//! The `pki-tool` binary end to end: what it writes is read back by openssl and by the
//! independent `x509-cert` parser, checked against the SGP.26 files, and bad input gets a one-line
//! error naming the file, a non-zero exit, and no partial output.

use der::{Decode, Encode};
use pki_tool::hierarchy::{Hierarchy, read_cert};
use pki_tool::layout::Slot;
use pki_tool::profile::Vars;
use pki_tool::validate::{Options, verify_chain};
use pki_tool::{Certificate, Curve, Eid, Role};
use std::path::{Path, PathBuf};
use workspace_tests::common::{TempDir, osmo, read, sgp26};

mod support;
use support::*;

/// Checks a hierarchy directory with openssl, x509-cert, our validator and our linter: every
/// certificate of its variant, on every curve it was minted on.
fn check_hierarchy(root: &Path) {
    let h = Hierarchy::open(root).expect("hierarchy");
    let variant = h.profile.variant;
    for &curve in &h.manifest.curves {
        for role in variant.roles() {
            check_slot(&h, &h.slot(role, curve, None));
        }
        check_chains(&h, curve);
    }
}

fn check_slot(h: &Hierarchy, slot: &Slot) {
    let root = &h.root;
    let path = slot.cert_der(root);
    let der = read(&path);
    // openssl reads it.
    let (good, text) = openssl(&["x509", "-inform", "der", "-noout", "-text", "-in", s(&path)]);
    assert!(good, "openssl cannot read {}: {text}", path.display());
    // x509-cert reads it, and its re-encoding is byte-identical (our DER is canonical).
    let parsed = x509_cert::Certificate::from_der(&der)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        parsed.to_der().expect("re-encode"),
        der,
        "{}",
        path.display()
    );
    // The key file matches the certificate, as openssl sees it.
    let (good, pk) = openssl(&["pkey", "-in", s(&slot.private_key(root)), "-pubout"]);
    assert!(good, "{pk}");
    assert_eq!(pk, String::from_utf8_lossy(&read(&slot.public_key(root))));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(slot.private_key(root))
            .expect("key exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", slot.private_key(root).display());
    }
    // Our linter finds no deviation from the role template.
    let cert = Certificate::from_der(&der).expect("parses");
    let issuer_role = h.profile.variant.issuer(slot.role);
    let issuer = read_cert(&h.slot(issuer_role, slot.curve, None).cert_der(root)).expect("issuer");
    let devs = pki_tool::lint::lint(
        &cert,
        h.profile.get(slot.role).expect("template"),
        &Vars::default(),
        Some(&issuer),
    );
    assert!(devs.is_empty(), "{}: {devs:?}", path.display());
}

fn check_chains(h: &Hierarchy, curve: Curve) {
    let root = &h.root;
    let variant = h.profile.variant;
    let ci = h.slot(Role::Ci, curve, None);
    let ci_cert = read_cert(&ci.cert_der(root)).expect("ci");
    let pem = TempDir::new("pem");
    let ci_pem = pem.0.join("ci.pem");
    std::fs::write(&ci_pem, ci_cert.to_pem()).expect("write");
    for role in variant.roles().into_iter().filter(|r| *r != Role::Ci) {
        let leaf = h.slot(role, curve, None);
        let above = h.intermediates(role, curve).expect("intermediates");
        // Our validator accepts every chain, and so does `pki-tool verify`.
        let v = verify_chain(
            &read_cert(&leaf.cert_der(root)).expect("leaf"),
            &above,
            std::slice::from_ref(&ci_cert),
            Some(role),
            Options::at(pki_tool::time::now()),
        )
        .unwrap_or_else(|e| panic!("{role} {curve}: {e}"));
        assert_eq!(v.path_roles[0], role);
        let mut args = vec!["verify".to_string(), s(&leaf.cert_der(root)).to_string()];
        for r in variant.intermediates(role) {
            args.push(s(&h.slot(r, curve, None).cert_der(root)).to_string());
        }
        args.extend(["--ci".to_string(), s(&ci.cert_der(root)).to_string()]);
        let out = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.starts_with("OK:"), "{out}");
        // Every chain without the EUM's name constraint in it also passes openssl's RFC 5280
        // validation, -x509_strict included (below the EUM, RFC 5280 cannot read the SGP.22
        // constraint: see ../shared/spec/sgp26-profiles.md).
        if variant.intermediates(role).contains(&Role::Eum) {
            continue;
        }
        let leaf_pem = pem.0.join("leaf.pem");
        let chain_pem = pem.0.join("chain.pem");
        std::fs::write(
            &leaf_pem,
            read_cert(&leaf.cert_der(root)).expect("cert").to_pem(),
        )
        .expect("write");
        let chain: String = above.iter().map(Certificate::to_pem).collect();
        std::fs::write(&chain_pem, chain).expect("write");
        let mut args = vec!["verify", "-x509_strict", "-CAfile", s(&ci_pem)];
        if !above.is_empty() {
            args.extend(["-untrusted", s(&chain_pem)]);
        }
        args.push(s(&leaf_pem));
        let (good, text) = openssl(&args);
        assert!(good, "openssl verify {role} {curve}: {text}");
    }
}

#[test]
fn init_default_profile_both_curves() {
    let t = TempDir::new("init-default");
    let out = t.0.join("lab");
    ok(&["init", "--out", s(&out)]);
    check_hierarchy(&out);
}

#[test]
fn init_sgp26_with_published_keys_reproduces_gsma_tbs() {
    let t = TempDir::new("init-sgp26");
    let out = t.0.join("gsma");
    let keys = osmo();
    let text = ok(&[
        "init",
        "--out",
        s(&out),
        "--profile",
        "sgp26-v1.5",
        "--keys",
        s(&keys),
    ]);
    assert!(text.contains("key from"), "{text}");
    check_hierarchy(&out);
    for curve in Curve::ALL {
        let c = curve.file_suffix();
        for (role, gsma) in [
            (Role::Ci, format!("CI/CERT_CI_ECDSA_{c}.der")),
            (Role::Eum, format!("EUM/CERT_EUM_ECDSA_{c}.der")),
            (Role::Euicc, format!("eUICC/CERT_EUICC_ECDSA_{c}.der")),
            (
                Role::Dpauth,
                format!("DPauth/CERT_S_SM_DPauth_ECDSA_{c}.der"),
            ),
            (Role::Dppb, format!("DPpb/CERT_S_SM_DPpb_ECDSA_{c}.der")),
        ] {
            let ours = read_cert(&Slot::new(role, curve).cert_der(&out)).expect("ours");
            let theirs = read_cert(&keys.join(gsma)).expect("theirs");
            assert_eq!(ours.tbs_der(), theirs.tbs_der(), "{role} {c}");
        }
        // The set's second SM-DP+ (DP2), which init mints from the templates' instances.
        for file in [
            format!("DPauth/CERT_S_SM_DP2auth_ECDSA_{c}.der"),
            format!("DPpb/CERT_S_SM_DP2pb_ECDSA_{c}.der"),
        ] {
            let ours = read_cert(&out.join(&file)).expect("DP2 written by init");
            let theirs = read_cert(&keys.join(&file)).expect("theirs");
            assert_eq!(ours.tbs_der(), theirs.tbs_der(), "{file}");
        }
    }
}

#[test]
fn init_refuses_unknown_placeholders_and_bad_host_names() {
    let t = TempDir::new("init-refusals");
    let out = t.0.join("lab");
    let err = fails(&["init", "--out", s(&out), "--set", "unknown_placeholder=1"]);
    assert!(
        err.contains("--set unknown_placeholder") && err.contains("smdp_rid"),
        "{err}"
    );
    for bad in ["bad host!", "-x.example", "a..b", ""] {
        let err = fails(&["init", "--out", s(&out), &format!("--smds-fqdn={bad}")]);
        assert!(err.contains("--smds-fqdn"), "{bad}: {err}");
    }
    let err = fails(&["init", "--out", s(&out), "--smdp-fqdn", "smdp_1.example"]);
    assert!(err.contains("--smdp-fqdn"), "{err}");
    assert!(!out.exists(), "nothing written");
    ok(&[
        "init",
        "--out",
        s(&out),
        "--curve",
        "nist",
        "--smds-fqdn",
        "smds.lab.example",
    ]);
    let err = fails(&[
        "issue",
        "dpauth",
        "--hierarchy",
        s(&out),
        "--instance",
        "2",
        "--set",
        "smdp_fqdn=dp2.example",
    ]);
    assert!(err.contains("no dpauth template"), "{err}");
}

/// The exact command issue 11 gives: with the published v3 Variant O keys (as the YggdraSIM copy
/// names them), the CI, EUM and eUICC TBSCertificates are the GSMA originals' byte for byte.
#[test]
fn init_sgp26_v3_variant_o_with_published_keys_reproduces_gsma_tbs() {
    let t = TempDir::new("init-v3o");
    let out = t.0.join("v3o");
    let text = ok(&[
        "init",
        "--out",
        s(&out),
        "--curve",
        "nist",
        "--profile",
        "sgp26-v3",
        "--variant",
        "O",
        "--keys",
        s(&sgp26().join("yggdrasim_v3_variantO")),
    ]);
    for loaded in ["SK_CI_SIG_NIST", "SK_EUM_SIG_NIST", "SK_EUICC_SIG_NIST"] {
        assert!(text.contains(loaded), "{loaded} not loaded: {text}");
    }
    check_hierarchy(&out);
    for file in [
        "CI/CERT_CI_SIG_NIST.der",
        "EUM/CERT_EUM_SIG_NIST.der",
        "eUICC/CERT_EUICC_SIG_NIST.der",
    ] {
        let ours = read_cert(&out.join(file)).expect("ours");
        let theirs = read_cert(&sgp26().join("openiotrsp_v3_variantO").join(file)).expect("GSMA");
        assert_eq!(ours.tbs_der(), theirs.tbs_der(), "{file}");
        assert_ne!(
            ours.signature, theirs.signature,
            "{file}: a fresh signature"
        );
    }
    // The GSMA originals validate as a chain with our validator, and so does ours mixed with them.
    let gsma = |f: &str| read_cert(&sgp26().join("openiotrsp_v3_variantO").join(f)).expect("GSMA");
    verify_chain(
        &gsma("eUICC/CERT_EUICC_SIG_NIST.der"),
        &[read_cert(&out.join("EUM/CERT_EUM_SIG_NIST.der")).expect("ours")],
        &[gsma("CI/CERT_CI_SIG_NIST.der")],
        Some(Role::Euicc),
        Options::at(pki_tool::time::now()),
    )
    .expect("GSMA eUICC under our EUM");
}

/// Variants A, B and C on both curves: every certificate reads in openssl and x509-cert, matches
/// its template, and validates through its SubCAs (openssl agrees wherever RFC 5280 can).
#[test]
fn init_sgp26_v3_variants_a_b_c_with_subcas() {
    let t = TempDir::new("init-v3abc");
    for (variant, files) in [("A", 22), ("B", 18), ("C", 24)] {
        let out = t.0.join(variant);
        let text = ok(&[
            "init",
            "--out",
            s(&out),
            "--profile",
            "sgp26-v3",
            "--variant",
            variant,
        ]);
        assert!(
            text.contains(&format!("{files} certificates written")),
            "{variant}: {text}"
        );
        check_hierarchy(&out);
    }
    // The GSMA v3 names, SubCAs included.
    for file in [
        "A/EUM_SUB_CA/CERT_EUMSubCA_VARA_SIG_BRP.pem",
        "A/SM-DP+/SM_DPSubCA/SK_SM_DPSubCA_SIG_NIST.pem",
        "A/SM-DP+/SM_DPSubCA/PK_DPSubCA_SIG_NIST.pem",
        "B/CI_subCA/CERT_CISubCA_SIG_NIST.der",
        "B/EUICC/CERT_EUICC_VARB_SIG_NIST.der",
        "C/SM-DS/SM_DSSubCA/CERT_SM_DSSubCA_VARC_SIG_NIST.der",
        "C/SM-DS/SM_DStls/CERT_S_SM_DS_VARC_TLS_NIST.der",
    ] {
        assert!(t.0.join(file).is_file(), "{file}");
    }
    assert!(!t.0.join("B/EUM_SUB_CA").exists());
    // A second SM-DS TLS certificate and an extra eUICC go under the right SubCAs.
    ok(&[
        "issue",
        "dstls",
        "--hierarchy",
        s(&t.0.join("C")),
        "--instance",
        "2",
        "--set",
        "ds_rid=2.999.252",
    ]);
    assert!(
        t.0.join("C/SM-DS/SM_DStls/CERT_S_SM_DS2_VARC_TLS_NIST.der")
            .is_file()
    );
    ok(&[
        "issue",
        "euicc",
        "--hierarchy",
        s(&t.0.join("A")),
        "--eid",
        "89049032000000000000000000100073",
    ]);
    let err = fails(&["issue", "eumsubca", "--hierarchy", s(&t.0.join("B"))]);
    assert!(err.contains("has no eumsubca"), "{err}");
}

/// `revoke` and `crl`: openssl reads our CRLs, and `openssl verify -crl_check_all` agrees with the
/// revocations on the non-eUICC chains, through SubCAs too.
#[test]
fn revoke_and_crl_agree_with_openssl() {
    let t = TempDir::new("crl");
    let h = t.0.join("A");
    init_v3_nist(&h, "A");
    let text = ok(&["crl", "--hierarchy", s(&h)]);
    for ca in ["ci", "eum", "eumsubca", "dpsubca", "dssubca"] {
        assert!(
            text.contains(&format!("{ca:<8} NIST CRL #2024 (0 revoked)")),
            "{text}"
        );
    }
    let crl_dir = h.join("crl/NIST");
    // The distribution points of the certificates map to files.
    for uri_file in [
        "ci.test.example.com/CRL-1.crl",
        "ci.test.example.com/CRL-2.crl",
        "eum.test.example.com/CRL.crl",
        "smdp.test.example.com/CRL-1.crl",
        "smds.test.example.com/CRL-2.crl",
    ] {
        assert!(crl_dir.join(uri_file).is_file(), "{uri_file}");
    }
    let (good, out) = openssl(&[
        "crl",
        "-inform",
        "der",
        "-noout",
        "-text",
        "-in",
        s(&crl_dir.join("ci.crl")),
    ]);
    assert!(
        good && out.contains("CRL Number") && out.contains("2024"),
        "{out}"
    );
    let pem_dir = TempDir::new("crl-pem");
    let ci_pem = pem_dir.0.join("ci.pem");
    std::fs::write(&ci_pem, read(&h.join("CI/CERT_CI_SIG_NIST.pem"))).expect("write");
    let sub = h.join("SM-DP+/SM_DPSubCA/CERT_SM_DPSubCA_VARA_SIG_NIST.pem");
    let leaf = pem_dir.0.join("dptls.pem");
    let dptls = h.join("SM-DP+/SM_DPtls/CERT_S_SM_DP_VARA_TLS_NIST.der");
    std::fs::write(&leaf, read_cert(&dptls).expect("cert").to_pem()).expect("write");
    let crls = pem_dir.0.join("crls.pem");
    let verify = |crls_from: &[&str]| {
        let all: Vec<u8> = crls_from
            .iter()
            .flat_map(|ca| read(&crl_dir.join(format!("{ca}.pem"))))
            .collect();
        std::fs::write(&crls, all).expect("write");
        openssl(&[
            "verify",
            "-x509_strict",
            "-crl_check_all",
            "-CAfile",
            s(&ci_pem),
            "-untrusted",
            s(&sub),
            "-CRLfile",
            s(&crls),
            s(&leaf),
        ])
    };
    let (good, out) = verify(&["ci", "dpsubca"]);
    assert!(good, "before revocation: {out}");
    // Revoke CERT.DP.TLS: its SubCA's CRL lists it, and openssl now refuses the chain.
    let text = ok(&[
        "revoke",
        s(&dptls),
        "--hierarchy",
        s(&h),
        "--reason",
        "keyCompromise",
    ]);
    assert!(
        text.contains("dpsubca  NIST CRL #2025 (1 revoked)"),
        "{text}"
    );
    let (good, out) = verify(&["ci", "dpsubca"]);
    assert!(
        !good && out.contains("revoked"),
        "after revoking the leaf: {out}"
    );
    let (good, out) = openssl(&[
        "crl",
        "-in",
        s(&crl_dir.join("dpsubca.pem")),
        "-noout",
        "-text",
    ]);
    assert!(good && out.contains("Key Compromise"), "{out}");
    // Our own reading of the same CRL agrees, and its signature checks under the SubCA.
    let crl = pki_tool::revocation::read_crl(&crl_dir.join("smdp.test.example.com/CRL-1.crl"))
        .expect("CRL");
    let dp_sub =
        read_cert(&h.join("SM-DP+/SM_DPSubCA/CERT_SM_DPSubCA_VARA_SIG_NIST.der")).expect("sub");
    assert!(crl.is_issued_by(&dp_sub));
    assert_eq!(crl.number, Some(2025));
    assert!(
        crl.entry(&read_cert(&dptls).expect("leaf").serial)
            .is_some()
    );
    // The EUM revokes its SubCA in the EUM's CRL (eum.test.example.com/CRL.crl).
    ok(&[
        "revoke",
        s(&h.join("EUM_SUB_CA/CERT_EUMSubCA_VARA_SIG_NIST.der")),
        "--hierarchy",
        s(&h),
    ]);
    let eum_crl =
        pki_tool::revocation::read_crl(&crl_dir.join("eum.test.example.com/CRL.crl")).expect("CRL");
    assert_eq!(eum_crl.revoked.len(), 1);
    // A certificate from elsewhere is refused with a clear message.
    let other = t.0.join("other");
    ok(&["init", "--out", s(&other), "--curve", "nist"]);
    let err = fails(&[
        "revoke",
        s(&other.join("DPtls/CERT_S_SM_DP_TLS_NIST.der")),
        "--hierarchy",
        s(&h),
    ]);
    assert!(err.contains("not issued by a CA of the hierarchy"), "{err}");
    let err = fails(&["crl", "--hierarchy", s(&h), "--issuer", "dptls"]);
    assert!(err.contains("issues no certificates"), "{err}");
}

#[test]
fn gsma_files_lint_clean_against_the_sgp26_profile() {
    let profile = "sgp26-v1.5";
    let cases: &[(&str, &str, &[&str])] = &[
        ("osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_NIST.der", "ci", &[]),
        ("osmo-ttcn3-hacks_v1.5/CI/CERT_CI_ECDSA_BRP.der", "ci", &[]),
        (
            "osmo-ttcn3-hacks_v1.5/EUM/CERT_EUM_ECDSA_BRP.der",
            "eum",
            &[],
        ),
        (
            "osmo-ttcn3-hacks_v1.5/eUICC/CERT_EUICC_ECDSA_NIST.der",
            "euicc",
            &[],
        ),
        (
            "osmo-ttcn3-hacks_v1.5/DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der",
            "dpauth",
            &[],
        ),
        (
            "osmo-ttcn3-hacks_v1.5/DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der",
            "dppb",
            &[],
        ),
        (
            "osmo-ttcn3-hacks_v1.5/DPauth/CERT_S_SM_DP2auth_ECDSA_NIST.der",
            "dpauth",
            &[
                "--set",
                "smdp_name=TEST SM-DP+2",
                "--set",
                "smdp_rid=2.999.12",
                "--set",
                "serial=0200",
            ],
        ),
        ("pysim_v1.5/DPtls/CERT_S_SM_DP_TLS_NIST.der", "dptls", &[]),
    ];
    // The GSMA v3 Variant O originals against the sgp26-v3 profile.
    for (file, role) in [
        ("CI/CERT_CI_SIG_NIST.der", "ci"),
        ("EUM/CERT_EUM_SIG_NIST.der", "eum"),
        ("eUICC/CERT_EUICC_SIG_NIST.der", "euicc"),
    ] {
        let path = sgp26().join("openiotrsp_v3_variantO").join(file);
        let out = ok(&[
            "lint",
            s(&path),
            "--role",
            role,
            "--profile",
            "sgp26-v3",
            "--variant",
            "O",
        ]);
        assert!(out.contains("matches the sgp26-v3 Variant O"), "{out}");
    }
    for (file, role, extra) in cases {
        let path = sgp26().join(file);
        let mut args = vec!["lint", s(&path), "--role", role, "--profile", profile];
        args.extend_from_slice(extra);
        let out = ok(&args);
        assert!(out.contains("matches"), "{out}");
    }
    // A real deviation is reported: the VARO TLS certificate uses CRL-1/CRL-2, not CRL-A/CRL-B.
    let varo = sgp26().join("osmo-ttcn3-hacks_v1.5/DPtls/CERT_S_SM_DP_VARO_TLS_NIST.der");
    let out = pki_tool(&["lint", s(&varo), "--role", "dptls", "--profile", profile]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("crl_distribution_points") && text.contains("CRL-1"),
        "{text}"
    );
    // And a role mismatch is all deviations.
    let dpauth = sgp26().join("osmo-ttcn3-hacks_v1.5/DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der");
    let out = pki_tool(&["lint", s(&dpauth), "--role", "euicc", "--profile", profile]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("subject attributes") && text.contains("certificate_policies"),
        "{text}"
    );
}

#[test]
fn issue_adds_a_second_smdp_and_an_euicc() {
    let t = TempDir::new("issue");
    let out = t.0.join("lab");
    ok(&["init", "--out", s(&out), "--curve", "nist"]);
    ok(&[
        "issue",
        "dpauth",
        "--hierarchy",
        s(&out),
        "--instance",
        "2",
        "--set",
        "smdp_name=TEST SM-DP+2",
        "--set",
        "smdp_rid=2.999.12",
    ]);
    let dp2 = out.join("DPauth/CERT_S_SM_DP2auth_ECDSA_NIST.der");
    let cert = read_cert(&dp2).expect("DP2auth written");
    assert_eq!(cert.subject_alt_names(), vec!["rid:2.999.12".to_string()]);
    let ci = read_cert(&out.join("CertificateIssuer/CERT_CI_ECDSA_NIST.der")).expect("ci");
    verify_chain(
        &cert,
        &[],
        &[ci],
        Some(Role::Dpauth),
        Options::at(pki_tool::time::now()),
    )
    .expect("valid");

    // A renewed TLS certificate replaces the old one only with --force.
    let before = read(&out.join("DPtls/CERT_S_SM_DP_TLS_NIST.der"));
    let err = fails(&["issue", "dptls", "--hierarchy", s(&out)]);
    assert!(
        err.contains("already exists") && err.contains("CERT_S_SM_DP_TLS_NIST.der"),
        "{err}"
    );
    assert_eq!(read(&out.join("DPtls/CERT_S_SM_DP_TLS_NIST.der")), before);
    ok(&[
        "issue",
        "dptls",
        "--hierarchy",
        s(&out),
        "--force",
        "--key",
        s(&out.join("DPtls/SK_S_SM_DP_TLS_NIST.pem")),
    ]);
    let renewed = read_cert(&out.join("DPtls/CERT_S_SM_DP_TLS_NIST.der")).expect("renewed");
    assert_ne!(renewed.der(), &before[..]);
    assert_eq!(
        renewed.public_key,
        Certificate::from_der(&before).expect("old").public_key,
        "--key keeps the key"
    );

    let eid = "89049032000000000000000000100073";
    assert!(Eid::parse(eid).is_ok());
    ok(&["issue", "euicc", "--hierarchy", s(&out), "--eid", eid]);
    let e = read_cert(
        &out.join("eUICC")
            .join(eid)
            .join("CERT_EUICC_ECDSA_NIST.der"),
    )
    .expect("eUICC written");
    assert_eq!(
        e.subject.get(pki_tool::oid::known::AT_SERIAL_NUMBER),
        Some(eid)
    );
}

#[test]
fn euicc_batch_issues_consecutive_eids_within_the_prefix() {
    let t = TempDir::new("batch");
    let out = t.0.join("lab");
    ok(&["init", "--out", s(&out), "--curve", "brainpool"]);
    let text = ok(&[
        "euicc-batch",
        "--hierarchy",
        s(&out),
        "--count",
        "40",
        "--curve",
        "brainpool",
        "--threads",
        "3",
    ]);
    assert!(text.contains("40 eUICC certificates"), "{text}");
    let ci = read_cert(&out.join("CertificateIssuer/CERT_CI_ECDSA_BRP.der")).expect("ci");
    let eum = read_cert(&out.join("EUM/CERT_EUM_ECDSA_BRP.der")).expect("eum");
    let mut eid = Eid::parse("89049032123451234512345678901235").expect("valid");
    for _ in 0..40 {
        eid = eid.successor(8).expect("room");
        let c = read_cert(
            &out.join("eUICC")
                .join(eid.as_str())
                .join("CERT_EUICC_ECDSA_BRP.der"),
        )
        .expect("written");
        let v = verify_chain(
            &c,
            std::slice::from_ref(&eum),
            std::slice::from_ref(&ci),
            None,
            Options::at(pki_tool::time::now()),
        )
        .expect("valid");
        assert_eq!(v.eid, Some(eid));
        assert!(
            out.join("eUICC")
                .join(eid.as_str())
                .join("SK_EUICC_ECDSA_BRP.pem")
                .exists()
        );
    }
    let err = fails(&[
        "euicc-batch",
        "--hierarchy",
        s(&out),
        "--count",
        "2",
        "--curve",
        "brainpool",
        "--first-eid",
        "89049033000000000000000000000088",
    ]);
    assert!(
        err.contains("outside the EUM's permitted prefix 89049032"),
        "{err}"
    );
    let err = fails(&[
        "euicc-batch",
        "--hierarchy",
        s(&out),
        "--count",
        "1",
        "--curve",
        "brainpool",
    ]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn eid_commands() {
    let out = pki_tool(&[
        "eid",
        "check",
        "89049032123451234512345678901235",
        "89049032123451234512345678901234",
        "123",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("901235: valid"), "{text}");
    assert!(text.contains("901234: INVALID: check digits are wrong: the first 30 digits give check digits 35, not 34"), "{text}");
    assert!(
        text.contains("123: INVALID: an EID has 32 digits, this one has 3"),
        "{text}"
    );
    let new = ok(&["eid", "new", "--count", "5", "--prefix", "89001012"]);
    for line in new.lines() {
        assert!(line.starts_with("89001012"), "{line}");
        Eid::parse(line).expect("valid");
    }
}

#[test]
fn bad_input_gets_one_line_errors_and_leaves_nothing_behind() {
    let t = TempDir::new("errors");
    // Invalid EID.
    let err = fails(&[
        "init",
        "--out",
        s(&t.0.join("a")),
        "--eid",
        "89049032123451234512345678901234",
    ]);
    assert!(err.contains("check digits"), "{err}");
    assert!(!t.0.join("a").exists());
    // Unknown role and profile.
    let cert = osmo().join("CI/CERT_CI_ECDSA_NIST.der");
    assert!(fails(&["lint", s(&cert), "--role", "smdx"]).contains("unknown role \"smdx\""));
    assert!(
        fails(&["lint", s(&cert), "--role", "ci", "--profile", "nope"]).contains("unknown profile")
    );
    // A brainpool key where the NIST CI key should be.
    let keys = t.0.join("keys");
    std::fs::create_dir_all(keys.join("CI")).expect("mkdir");
    std::fs::copy(
        osmo().join("CI/SK_CI_ECDSA_BRP.pem"),
        keys.join("CI/SK_CI_ECDSA_NIST.pem"),
    )
    .expect("copy");
    let err = fails(&[
        "init",
        "--out",
        s(&t.0.join("b")),
        "--curve",
        "nist",
        "--keys",
        s(&keys),
    ]);
    assert!(
        err.contains("SK_CI_ECDSA_NIST.pem") && err.contains("curve mismatch"),
        "{err}"
    );
    assert!(!t.0.join("b").exists());
    // A malformed key file.
    std::fs::write(
        keys.join("CI/SK_CI_ECDSA_NIST.pem"),
        "-----BEGIN EC PRIVATE KEY-----\nnot base64!\n-----END EC PRIVATE KEY-----\n",
    )
    .expect("write");
    let err = fails(&[
        "init",
        "--out",
        s(&t.0.join("c")),
        "--curve",
        "nist",
        "--keys",
        s(&keys),
    ]);
    assert!(
        err.contains("SK_CI_ECDSA_NIST.pem") && err.contains("base64"),
        "{err}"
    );
    // A malformed certificate.
    let junk = t.0.join("junk.der");
    std::fs::write(&junk, [0x30, 0x82, 0x01]).expect("write");
    let err = fails(&["verify", s(&junk), "--ci", s(&cert)]);
    assert!(
        err.contains("junk.der") && err.contains("not a valid certificate"),
        "{err}"
    );
    // A --keys directory that does not exist is refused, not silently replaced by fresh keys.
    let err = fails(&[
        "init",
        "--out",
        s(&t.0.join("nokeys")),
        "--keys",
        s(&t.0.join("nonexistent")),
    ]);
    assert!(
        err.contains("nonexistent") && err.contains("--keys"),
        "{err}"
    );
    assert!(!t.0.join("nokeys").exists());
    // An unwritable output directory (its parent is a file).
    let err = fails(&["init", "--out", s(&junk.join("sub")), "--curve", "nist"]);
    assert!(err.contains("junk.der/sub"), "{err}");
    // Existing files are not overwritten without --force, and nothing changes.
    let lab = t.0.join("lab");
    ok(&["init", "--out", s(&lab), "--curve", "nist"]);
    let snapshot: Vec<(PathBuf, Vec<u8>)> = Role::BASE
        .iter()
        .map(|r| Slot::new(*r, Curve::NistP256).cert_der(&lab))
        .map(|p| (p.clone(), read(&p)))
        .collect();
    let err = fails(&["init", "--out", s(&lab), "--curve", "nist"]);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    for (p, bytes) in &snapshot {
        assert_eq!(&read(p), bytes, "{} changed", p.display());
    }
    // No temporary files are left anywhere.
    let leftovers: Vec<_> = walk(&t.0)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn exposed_key_files_are_detected() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("perm");
    let out = t.0.join("lab");
    ok(&["init", "--out", s(&out), "--curve", "nist"]);
    let key = out.join("DStls/SK_S_SM_DS_TLS_NIST.pem");
    assert!(
        !pki_tool::hierarchy::key_file_is_exposed(&key),
        "written 0600"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(pki_tool::hierarchy::key_file_is_exposed(&key));
}

#[test]
fn verify_reports_tampering() {
    let t = TempDir::new("tamper");
    let eum = osmo().join("EUM/CERT_EUM_ECDSA_NIST.der");
    let mut der = read(&osmo().join("eUICC/CERT_EUICC_ECDSA_NIST.der"));
    let pos = der
        .windows(8)
        .position(|w| w == b"89049032")
        .expect("EID present");
    der[pos + 20] = b'7';
    let bad = t.0.join("bad.der");
    std::fs::write(&bad, &der).expect("write");
    let out = pki_tool(&[
        "verify",
        s(&bad),
        s(&eum),
        "--ci",
        s(&osmo().join("CI/CERT_CI_ECDSA_NIST.der")),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("FAILED:")
            && text.contains("EUICC certificate")
            && text.contains("signature does not verify"),
        "{text}"
    );
}

/// Every file below `dir`, recursively (as osmo-smdpp walks its CI folder with `os.walk`).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// osmo-smdpp's loading rules, replayed on `init` output with openssl as the parser: every
/// `.der`/`.pem` below `CertificateIssuer/` is a certificate (DER, or PEM with a CERTIFICATE
/// block) carrying the CI policy, and the DPauth/DPpb certificates and keys are at the paths it
/// opens, on both curves, each key belonging to its certificate. (Before the CI's keys moved to
/// `CI/`, osmo-smdpp stopped at start on `SK_CI_ECDSA_*.pem`.)
#[test]
fn init_output_loads_the_way_osmo_smdpp_loads_it() {
    let t = TempDir::new("osmo-smdpp");
    let lab = t.0.join("lab");
    ok(&["init", "--out", s(&lab)]);
    let gsma = t.0.join("gsma");
    let keys = osmo();
    ok(&[
        "init",
        "--out",
        s(&gsma),
        "--profile",
        "sgp26-v1.5",
        "--keys",
        s(&keys),
    ]);
    for root in [&lab, &gsma] {
        let mut certs = 0;
        for file in walk(&root.join("CertificateIssuer")) {
            let inform = match file.extension().and_then(|e| e.to_str()) {
                Some("der") => "DER",
                Some("pem") => "PEM",
                _ => continue,
            };
            let (parsed, text) = openssl(&[
                "x509",
                "-inform",
                inform,
                "-in",
                s(&file),
                "-noout",
                "-text",
            ]);
            assert!(parsed, "{} is not a certificate: {text}", file.display());
            assert!(
                text.contains("2.23.146.1.2.1.0"),
                "{} lacks the CI policy: {text}",
                file.display()
            );
            certs += 1;
        }
        assert_eq!(
            certs,
            4,
            "CERT_CI_ECDSA_{{NIST,BRP}}.{{der,pem}} under {}",
            root.display()
        );
        for c in ["NIST", "BRP"] {
            for (dir, stem) in [("DPauth", "S_SM_DPauth"), ("DPpb", "S_SM_DPpb")] {
                let cert = root.join(format!("{dir}/CERT_{stem}_ECDSA_{c}.der"));
                let key = root.join(format!("{dir}/SK_{stem}_ECDSA_{c}.pem"));
                let (ok_cert, cert_pub) = openssl(&[
                    "x509",
                    "-inform",
                    "DER",
                    "-in",
                    s(&cert),
                    "-noout",
                    "-pubkey",
                ]);
                assert!(ok_cert, "{}: {cert_pub}", cert.display());
                let (ok_key, key_pub) = openssl(&["pkey", "-in", s(&key), "-pubout"]);
                assert!(ok_key, "{}: {key_pub}", key.display());
                assert_eq!(
                    cert_pub,
                    key_pub,
                    "{} belongs to {}",
                    key.display(),
                    cert.display()
                );
            }
        }
        // The CI keys are kept, out of the certificates' folder.
        for c in ["NIST", "BRP"] {
            assert!(root.join(format!("CI/SK_CI_ECDSA_{c}.pem")).is_file());
            assert!(root.join(format!("CI/PK_CI_ECDSA_{c}.pem")).is_file());
        }
    }
    // The hierarchy still issues with its CI key from its new place.
    ok(&["issue", "dptls", "--hierarchy", s(&lab), "--instance", "3"]);
}

#[test]
fn hierarchies_with_the_ci_key_in_the_old_place_still_issue() {
    let t = TempDir::new("old-ci-key-place");
    let dir = t.0.join("h");
    ok(&["init", "--out", s(&dir), "--curve", "nist"]);
    for kind in ["SK", "PK"] {
        let name = format!("{kind}_CI_ECDSA_NIST.pem");
        std::fs::rename(
            dir.join("CI").join(&name),
            dir.join("CertificateIssuer").join(&name),
        )
        .expect("move back");
    }
    ok(&["issue", "dptls", "--hierarchy", s(&dir), "--instance", "3"]);
}

#[test]
fn verify_and_lint_speak_json_and_lint_reads_the_role_from_the_certificate() {
    let v = osmo();
    let varo = v.join("DPtls/CERT_S_SM_DP_VARO_TLS_NIST.der");
    // No --role: the certificate policy says dptls.
    let out = pki_tool(&["lint", s(&varo), "--profile", "sgp26-v1.5", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["role"], "dptls");
    assert_eq!(doc["matches"], false);
    let crl = doc["deviations"]
        .as_array()
        .expect("deviations")
        .iter()
        .find(|d| d["field"] == "extension crl_distribution_points")
        .expect("the CRL deviation");
    assert!(
        crl["found"].as_str().expect("text").contains("CRL-1.crl"),
        "{crl}"
    );
    let text =
        String::from_utf8_lossy(&pki_tool(&["lint", s(&varo), "--profile", "sgp26-v1.5"]).stdout)
            .into_owned();
    assert!(
        !text.contains("CrlDistributionPoints {"),
        "no debug text: {text}"
    );

    let euicc = v.join("eUICC/CERT_EUICC_ECDSA_NIST.der");
    let eum = v.join("EUM/CERT_EUM_ECDSA_NIST.der");
    let ci = v.join("CI/CERT_CI_ECDSA_NIST.der");
    let out = ok(&["verify", s(&euicc), s(&eum), "--ci", s(&ci), "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["eid"], "89049032123451234512345678901235");
    let out = pki_tool(&["verify", s(&euicc), "--ci", s(&ci), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["valid"], false);
    assert!(
        doc["error"]
            .as_str()
            .expect("error")
            .contains("issuer not found"),
        "{doc}"
    );
}

#[test]
fn completions_and_man_pages_come_from_the_command_definitions() {
    let script = ok(&["completions", "bash"]);
    assert!(script.contains("euicc-batch"), "{script}");
    let t = TempDir::new("man");
    ok(&["man", "--out", s(&t.0)]);
    for page in ["pki-tool.1", "pki-tool-init.1", "pki-tool-eid-new.1"] {
        assert!(t.0.join(page).exists(), "{page}");
    }
}

#[test]
fn an_interrupted_euicc_batch_says_how_far_it_got_and_resumes() {
    let t = TempDir::new("batch-interrupt");
    let h = t.0.join("lab");
    ok(&["init", "--out", s(&h), "--curve", "brainpool"]);
    let out = t.0.join("batch");
    let zero = pki_tool(&["euicc-batch", "--hierarchy", s(&h), "--count", "0"]);
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&zero.stderr)
            .contains("'0' for '--count <COUNT>': at least 1 eUICC"),
        "{}",
        String::from_utf8_lossy(&zero.stderr)
    );
    let err = fails(&[
        "euicc-batch",
        "--hierarchy",
        s(&h),
        "--count",
        "5",
        "--out",
        s(&h.join("pki-tool.toml")),
    ]);
    assert!(err.contains("is not a directory"), "{err}");

    // Far more than can be minted before the interrupt (brainpool, one thread).
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_pki-tool"))
        .args(["euicc-batch", "--hierarchy", s(&h), "--curve", "brainpool"])
        .args(["--count", "1000000", "--threads", "1", "--out", s(&out)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("batch starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&out).map_or(0, |d| d.count()) < 3 {
        assert!(std::time::Instant::now() < deadline, "no eUICC written");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    workspace_tests::common::send_signal(child.id(), "INT");
    let done = child.wait_with_output().expect("batch ends");
    assert_eq!(done.status.code(), Some(130));
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        err.contains("interrupted: ")
            && err.contains("of 1000000 eUICCs written")
            && err.contains("--resume"),
        "{err}"
    );
    // Every directory there is whole, and no staging directory is left.
    let dirs: Vec<PathBuf> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").path())
        .collect();
    assert!(
        dirs.iter().all(|d| !d.to_string_lossy().ends_with(".tmp")),
        "{dirs:?}"
    );
    let written = dirs.len();
    for d in &dirs {
        assert!(
            d.join("CERT_EUICC_ECDSA_BRP.der").exists()
                && d.join("SK_EUICC_ECDSA_BRP.pem").exists()
        );
    }

    // A re-run refuses; --resume keeps the complete ones and redoes a damaged one and the rest,
    // clearing what a killed run left half-written.
    let count = (written + 3).to_string();
    let args = [
        "euicc-batch",
        "--hierarchy",
        s(&h),
        "--curve",
        "brainpool",
        "--count",
        &count,
        "--out",
        s(&out),
    ];
    assert!(fails(&args).contains("--resume"));
    let damaged = &dirs[0];
    std::fs::remove_file(damaged.join("SK_EUICC_ECDSA_BRP.pem")).expect("damage one");
    let eid = damaged
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    std::fs::create_dir(out.join(format!(".{eid}.4242.tmp"))).expect("stale staging dir");
    let mut resume = args.to_vec();
    resume.push("--resume");
    let text = ok(&resume);
    assert!(
        text.contains(&format!("({} complete ones kept)", written - 1)),
        "{text}"
    );
    let entries: Vec<String> = std::fs::read_dir(&out)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), written + 3, "{entries:?}");
    assert!(damaged.join("SK_EUICC_ECDSA_BRP.pem").exists(), "redone");
    let cert = read_cert(&damaged.join("CERT_EUICC_ECDSA_BRP.der")).expect("cert");
    let key = pki_tool::hierarchy::read_key(&damaged.join("SK_EUICC_ECDSA_BRP.pem")).expect("key");
    assert_eq!(key.public_key(), &cert.public_key);
}
