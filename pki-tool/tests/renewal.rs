//! `pki-tool status` and `pki-tool renew` end to end: the expiry report and its exit code, what a
//! renewal changes and keeps (checked by openssl and the SGP.22 validator), `.old` files and
//! `--prune`, re-keying, and renewals inside SGP.26 v3 SubCA chains.

use pki_tool::hierarchy::{Hierarchy, read_cert, read_key};
use pki_tool::inventory::Inventory;
use pki_tool::{Certificate, Curve, Role};
use std::path::Path;
use workspace_tests::common::TempDir;

mod support;
use support::*;

/// The TBS elements other than serial and validity (what a renewal keeps without --rekey).
fn kept_parts(c: &Certificate) -> Vec<Vec<u8>> {
    let tbs = pki_tool::tlv::parse_single(c.tbs_der(), "tbs").expect("tbs");
    let mut r = tbs.reader();
    let mut out = Vec::new();
    let mut i = 0;
    while !r.is_empty() {
        let el = r.read().expect("element");
        if i != 1 && i != 4 {
            out.push(el.raw.to_vec());
        }
        i += 1;
    }
    out
}

fn lab(dir: &Path) {
    ok(&["init", "--out", s(dir), "--curve", "nist"]);
}

fn status_json(dir: &Path, within: &str) -> (Option<i32>, serde_json::Value) {
    let out = pki_tool(&["status", s(dir), "--within", within, "--json"]);
    let doc = serde_json::from_slice(&out.stdout).expect("JSON");
    (out.status.code(), doc)
}

#[test]
fn status_lists_the_tree_and_exits_1_when_something_expires() {
    let t = TempDir::new("status");
    let h = t.0.join("lab");
    lab(&h);
    // The TLS certificates last 398 days, the rest years.
    let (code, doc) = status_json(&h, "30");
    assert_eq!(code, Some(0), "{doc:#}");
    let certs = doc["certificates"].as_array().expect("array");
    assert_eq!(certs.len(), 8, "{doc:#}");
    assert_eq!(certs[0]["role"], "ci");
    assert_eq!(certs[0]["depth"], 0);
    let euicc = certs
        .iter()
        .find(|c| c["role"] == "euicc")
        .expect("eUICC listed");
    assert_eq!(euicc["depth"], 2);
    assert_eq!(euicc["issuer"], "EUM/CERT_EUM_ECDSA_NIST.der");
    let (code, doc) = status_json(&h, "400");
    assert_eq!(code, Some(1), "{doc:#}");
    assert_eq!(doc["expiring"], 2, "DP TLS and DS TLS: {doc:#}");
    let text = ok(&["status", s(&h)]);
    assert!(
        text.contains("8 certificate(s); 0 expired, 0 expiring within 30 days"),
        "{text}"
    );
    // Not a hierarchy: an error, exit 2.
    fails(&["status", s(&t.0.join("nope"))]);
}

#[test]
fn renew_reissues_what_expires_and_keeps_the_rest() {
    let t = TempDir::new("renew");
    let h = t.0.join("lab");
    lab(&h);
    let tls = h.join("DPtls/CERT_S_SM_DP_TLS_NIST.der");
    let eum = h.join("EUM/CERT_EUM_ECDSA_NIST.der");
    let ci = h.join("CertificateIssuer/CERT_CI_ECDSA_NIST.der");
    let (old_tls, old_eum) = (read_cert(&tls).expect("tls"), read_cert(&eum).expect("eum"));
    let dry = ok(&["renew", s(&h), "--within", "400", "--dry-run"]);
    assert_eq!(dry.matches("would renew").count(), 2, "{dry}");
    assert_eq!(
        read_cert(&tls).expect("tls").der(),
        old_tls.der(),
        "a dry run writes nothing"
    );

    let out = ok(&["renew", s(&h), "--within", "400"]);
    assert_eq!(out.matches("renewed").count(), 2, "{out}");
    let new_tls = read_cert(&tls).expect("tls");
    assert_ne!(new_tls.serial, old_tls.serial);
    assert_eq!(
        kept_parts(&new_tls),
        kept_parts(&old_tls),
        "subject, issuer, key, extensions kept"
    );
    assert!(new_tls.not_before > old_tls.not_before - 5);
    assert_eq!(
        read_cert(&eum).expect("eum").der(),
        old_eum.der(),
        "not due: untouched"
    );
    // The PEM copy is the same certificate; the previous files are kept as .old.
    let pem = read_cert(&h.join("DPtls/CERT_S_SM_DP_TLS_NIST.pem")).expect("pem");
    assert_eq!(pem.der(), new_tls.der());
    assert_eq!(
        read_cert(&h.join("DPtls/CERT_S_SM_DP_TLS_NIST.der.old"))
            .expect("old")
            .der(),
        old_tls.der()
    );
    // openssl: the renewed certificate verifies under the CI, with its (unchanged) key.
    let (good, text) = openssl(&[
        "verify",
        "-partial_chain",
        "-CAfile",
        s(&h.join("CertificateIssuer/CERT_CI_ECDSA_NIST.pem")),
        s(&h.join("DPtls/CERT_S_SM_DP_TLS_NIST.pem")),
    ]);
    assert!(good, "{text}");
    let key = read_key(&h.join("DPtls/SK_S_SM_DP_TLS_NIST.pem")).expect("key");
    assert_eq!(key.public_key(), &new_tls.public_key);
    ok(&["verify", "--ci", s(&ci), s(&tls)]);

    // --rekey: a new key in every key file, the certificate follows (SKI included).
    ok(&[
        "renew",
        s(&h),
        "--within",
        "400",
        "--role",
        "dptls",
        "--rekey",
    ]);
    let rekeyed = read_cert(&tls).expect("tls");
    let key = read_key(&h.join("DPtls/SK_S_SM_DP_TLS_NIST.pem")).expect("key");
    assert_eq!(key.public_key(), &rekeyed.public_key);
    assert_ne!(rekeyed.public_key, new_tls.public_key);
    assert_eq!(rekeyed.ski(), Some(rekeyed.public_key.ski().to_vec()));
    ok(&["verify", "--ci", s(&ci), s(&tls)]);
    // A CA that issued certificates is not re-keyed.
    let err = fails(&[
        "renew",
        s(&h),
        "--within",
        "100000",
        "--role",
        "eum",
        "--rekey",
    ]);
    assert!(
        err.contains("re-keying it would leave them without an issuer"),
        "{err}"
    );

    let pruned = ok(&["renew", s(&h), "--prune"]);
    assert!(pruned.contains("old file(s) removed"), "{pruned}");
    assert!(!h.join("DPtls/CERT_S_SM_DP_TLS_NIST.der.old").exists());
}

#[test]
fn renewing_a_v3_variant_c_hierarchy_keeps_every_chain_valid() {
    let t = TempDir::new("renew-v3");
    let h = t.0.join("C");
    init_v3_nist(&h, "C");
    // Everything, CI and SubCAs included, keeping keys.
    let out = ok(&["renew", s(&h), "--within", "3000000"]);
    let hierarchy = Hierarchy::open(&h).expect("open");
    let inv = Inventory::scan(&h).expect("scan");
    assert_eq!(out.matches("renewed").count(), inv.entries.len(), "{out}");
    let ci = hierarchy
        .cert(&hierarchy.slot(Role::Ci, Curve::NistP256, None))
        .expect("CI");
    for role in hierarchy.profile.variant.roles() {
        let slot = hierarchy.slot(role, Curve::NistP256, None);
        let cert = hierarchy.cert(&slot).expect("cert");
        let chain = hierarchy
            .intermediates(role, Curve::NistP256)
            .expect("chain");
        pki_tool::validate::verify_chain(
            &cert,
            &chain,
            std::slice::from_ref(&ci),
            Some(role),
            pki_tool::validate::Options::at(pki_tool::time::now()),
        )
        .unwrap_or_else(|e| panic!("{role}: {e}"));
    }
    // Leaves re-keyed under renewed SubCAs still validate.
    ok(&[
        "renew",
        s(&h),
        "--within",
        "1000000",
        "--role",
        "dstls",
        "--rekey",
    ]);
    let dstls = hierarchy.slot(Role::Dstls, Curve::NistP256, None);
    let mut args = vec![
        "verify".to_string(),
        "--ci".into(),
        ci_path(&hierarchy),
        dstls.cert_der(&h).display().to_string(),
    ];
    for r in hierarchy.profile.variant.intermediates(Role::Dstls) {
        args.push(
            hierarchy
                .slot(r, Curve::NistP256, None)
                .cert_der(&h)
                .display()
                .to_string(),
        );
    }
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

fn ci_path(h: &Hierarchy) -> String {
    h.slot(Role::Ci, Curve::NistP256, None)
        .cert_der(&h.root)
        .display()
        .to_string()
}
