use super::*;
use pki_tool::Curve;
use pki_tool::Role;
use pki_tool::hierarchy::{self, Hierarchy, InitOptions};

const DAY: i64 = 86_400;

/// A lab hierarchy on both curves (the NIST and brainpool CAs have the same names, different keys).
fn lab(dir: &Path) -> Hierarchy {
    let opts = InitOptions::lab(dir, &Curve::ALL, "localhost").expect("options");
    hierarchy::init(&opts).expect("init");
    Hierarchy::open(dir).expect("open")
}

fn cert(h: &Hierarchy, role: Role, curve: Curve) -> Certificate {
    h.cert(&h.slot(role, curve, None)).expect("cert")
}

fn cis(h: &Hierarchy) -> Vec<Certificate> {
    Curve::ALL.iter().map(|c| cert(h, Role::Ci, *c)).collect()
}

/// Checks the eUICC chain of `curve` the way ES11 does.
fn check_euicc(
    r: &Revocation,
    h: &Hierarchy,
    curve: Curve,
    now: i64,
) -> Result<(), RevocationError> {
    let (euicc, eum, ci) = (
        cert(h, Role::Euicc, curve),
        cert(h, Role::Eum, curve),
        cert(h, Role::Ci, curve),
    );
    r.check(&[&euicc, &eum], &ci, now, "ES11")
}

fn copy(from: &Path, to_dir: &Path, name: &str) -> PathBuf {
    std::fs::create_dir_all(to_dir).expect("mkdir");
    let to = to_dir.join(name);
    std::fs::copy(from, &to).expect("copy");
    to
}

#[test]
fn a_revoked_eum_is_refused_and_the_other_curves_eum_is_not() {
    let tmp = tempfile::tempdir().expect("tmp");
    let h = lab(&tmp.path().join("pki"));
    let now = time::now();
    h.revoke(&cert(&h, Role::Eum, Curve::NistP256), None, 30, now)
        .expect("revoke");
    let (r, report) =
        Revocation::load(Some(h.root.join("crl")), true, false, cis(&h)).expect("load");
    assert!(report.problems.is_empty(), "{report:?}");
    // One CRL per CA per curve; the .pem and distribution-point copies count once.
    assert_eq!(report.crls, 2, "{report:?}");
    let err = check_euicc(&r, &h, Curve::NistP256, now).expect_err("revoked");
    assert_eq!(err.depth(), 1, "{err}");
    assert!(err.to_string().contains("is revoked"), "{err}");
    // Same EUM name under the brainpool CI, another key: its CRL lists nothing.
    check_euicc(&r, &h, Curve::BrainpoolP256r1, now).expect("brainpool EUM not revoked");
    let dp = cert(&h, Role::Dptls, Curve::NistP256);
    let ci = cert(&h, Role::Ci, Curve::NistP256);
    r.check(&[&dp], &ci, now, "ES12")
        .expect("DP TLS not revoked");
    r.update_gauges(now);
    assert_eq!(r.metrics.loaded.get(), 2);
}

#[test]
fn an_eum_issued_crl_revokes_one_euicc() {
    let tmp = tempfile::tempdir().expect("tmp");
    let h = lab(&tmp.path().join("pki"));
    let now = time::now();
    h.revoke(&cert(&h, Role::Euicc, Curve::NistP256), None, 30, now)
        .expect("revoke");
    let (r, _) = Revocation::load(Some(h.root.join("crl")), true, true, cis(&h)).expect("load");
    let err = check_euicc(&r, &h, Curve::NistP256, now).expect_err("revoked");
    assert_eq!(err.depth(), 0, "{err}");
}

#[test]
fn a_tampered_crl_is_reported_and_is_a_refusal_only_when_strict() {
    let tmp = tempfile::tempdir().expect("tmp");
    let h = lab(&tmp.path().join("pki"));
    let now = time::now();
    h.revoke(&cert(&h, Role::Eum, Curve::NistP256), None, 30, now)
        .expect("revoke");
    let dir = tmp.path().join("crls");
    let path = copy(&h.root.join("crl/NIST/ci.crl"), &dir, "ci.crl");
    // Flip one bit of the last byte (inside the signature): it still parses.
    let mut der = std::fs::read(&path).expect("read");
    let last = der.len() - 1;
    der[last] ^= 1;
    std::fs::write(&path, der).expect("write");
    for strict in [false, true] {
        let (r, report) = Revocation::load(Some(dir.clone()), true, strict, cis(&h)).expect("load");
        assert_eq!(report.problems.len(), 1, "{report:?}");
        assert!(report.problems[0].contains("does not verify"), "{report:?}");
        let got = check_euicc(&r, &h, Curve::NistP256, now);
        if strict {
            let err = got.expect_err("strict refuses");
            assert!(
                matches!(err, RevocationError::Unverifiable { depth: 1, .. }),
                "{err}"
            );
        } else {
            got.expect("lab mode: the tampered CRL is not used, the EUM passes");
        }
    }
}

#[test]
fn a_crl_of_another_hierarchy_with_the_same_names_is_not_applied() {
    let tmp = tempfile::tempdir().expect("tmp");
    let h = lab(&tmp.path().join("pki"));
    let other = lab(&tmp.path().join("other"));
    let now = time::now();
    other
        .revoke(&cert(&other, Role::Eum, Curve::NistP256), None, 30, now)
        .expect("revoke");
    let dir = tmp.path().join("crls");
    copy(&other.root.join("crl/NIST/ci.crl"), &dir, "ci.crl");
    for strict in [false, true] {
        let (r, report) = Revocation::load(Some(dir.clone()), true, strict, cis(&h)).expect("load");
        assert!(report.problems.is_empty(), "{report:?}");
        check_euicc(&r, &h, Curve::NistP256, now).expect("another CI's CRL does not apply");
    }
    // The hierarchy it belongs to does honour it.
    let (r, _) = Revocation::load(Some(dir), true, true, cis(&other)).expect("load");
    check_euicc(&r, &other, Curve::NistP256, now).expect_err("revoked in its own hierarchy");
}

#[test]
fn a_stale_crl_warns_in_lab_mode_and_refuses_when_strict() {
    let tmp = tempfile::tempdir().expect("tmp");
    let h = lab(&tmp.path().join("pki"));
    let now = time::now();
    // Issued ten days ago, valid for one.
    h.issue_crls(Some(Role::Ci), 1, now - 10 * DAY)
        .expect("crl");
    let dir = h.root.join("crl");
    let (lab_mode, report) =
        Revocation::load(Some(dir.clone()), true, false, cis(&h)).expect("load");
    assert!(
        report.problems.iter().any(|p| p.contains("nextUpdate")),
        "{report:?}"
    );
    check_euicc(&lab_mode, &h, Curve::NistP256, now).expect("lab mode: a warning");
    let (strict, _) = Revocation::load(Some(dir), true, true, cis(&h)).expect("load");
    let err = check_euicc(&strict, &h, Curve::NistP256, now).expect_err("strict");
    assert!(
        matches!(err, RevocationError::Stale { depth: 1, .. }),
        "{err}"
    );
    // The eUICC's issuer (the EUM) has no CRL file here: not checked.
    assert_eq!(
        strict
            .metrics
            .refusals
            .get_or_create(&RefusalLabels {
                interface: "ES11",
                reason: "stale_crl"
            })
            .get(),
        1
    );
}

#[test]
fn the_newest_crl_wins_and_changes_are_picked_up() {
    let tmp = tempfile::tempdir().expect("tmp");
    let h = lab(&tmp.path().join("pki"));
    let now = time::now();
    h.issue_crls(Some(Role::Ci), 30, now).expect("crl");
    let dir = tmp.path().join("crls");
    copy(&h.root.join("crl/NIST/ci.crl"), &dir, "old.crl");
    let (r, _) = Revocation::load(Some(dir.clone()), true, false, cis(&h)).expect("load");
    check_euicc(&r, &h, Curve::NistP256, now).expect("nothing revoked yet");
    assert!(r.reload_if_changed().is_none(), "nothing changed");
    h.revoke(&cert(&h, Role::Eum, Curve::NistP256), None, 30, now)
        .expect("revoke");
    // PEM this time, in a subdirectory; the old CRL stays next to it.
    copy(&h.root.join("crl/NIST/ci.pem"), &dir.join("sub"), "ci.pem");
    let report = r.reload_if_changed().expect("a new file is a change");
    assert_eq!(report.crls, 2, "{report:?}");
    check_euicc(&r, &h, Curve::NistP256, now).expect_err("the higher cRLNumber applies");
    std::fs::remove_dir_all(dir.join("sub")).expect("rm");
    assert!(r.reload_if_changed().is_some());
    check_euicc(&r, &h, Curve::NistP256, now).expect("back to the old CRL");
}

#[test]
fn a_configured_directory_must_exist_the_default_may_not() {
    let tmp = tempfile::tempdir().expect("tmp");
    let missing = tmp.path().join("nope");
    let err = Revocation::load(Some(missing.clone()), true, false, vec![]).expect_err("missing");
    assert!(err.to_string().contains("nope"), "{err}");
    let (r, report) = Revocation::load(Some(missing.clone()), false, false, vec![]).expect("ok");
    assert_eq!(report, LoadReport::default());
    // Files that are not CRLs: a .pem without a CRL is skipped, a .crl that is not one reported.
    std::fs::create_dir_all(&missing).expect("mkdir");
    std::fs::write(missing.join("cert.pem"), "-----BEGIN CERTIFICATE-----\n").expect("w");
    std::fs::write(missing.join("junk.crl"), "junk").expect("w");
    let report = r.reload_if_changed().expect("changed");
    assert_eq!(report.crls, 0);
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(report.problems[0].contains("junk.crl"), "{report:?}");
}
