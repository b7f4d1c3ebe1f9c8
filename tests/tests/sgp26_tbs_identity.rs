//! With the published SGP.26 v1.5 keys, the `sgp26-v1.5` profile reproduces the GSMA
//! certificates' TBSCertificate bytes exactly; only the (randomised) ECDSA signatures differ.

use pki_tool::hierarchy::read_key;
use pki_tool::layout::Slot;
use pki_tool::mint::{MintInput, Signer, mint};
use pki_tool::profile::{Profile, Vars};
use pki_tool::{Certificate, Curve, Eid, Role};
use workspace_tests::common::{osmo, read};

fn gsma(role_dir: &str, file: &str) -> Certificate {
    Certificate::from_der(&read(&osmo().join(role_dir).join(file))).expect("GSMA file parses")
}

fn key(role_dir: &str, stem: &str) -> pki_tool::PrivateKey {
    read_key(&osmo().join(role_dir).join(format!("SK_{stem}.pem"))).expect("GSMA key loads")
}

fn vars() -> Vars {
    pki_tool::hierarchy::base_vars(
        &Eid::parse("89049032123451234512345678901235").expect("valid EID"),
        "testsmdpplus1.example.com",
        "testrootsmds.example.com",
        &Default::default(),
    )
}

fn assert_same_tbs(ours: &Certificate, theirs: &Certificate, what: &str) {
    if ours.tbs_der() != theirs.tbs_der() {
        let a = ours.tbs_der();
        let b = theirs.tbs_der();
        let at = a
            .iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        panic!(
            "{what}: TBS differs at byte {at} (ours {} bytes, GSMA {} bytes)\nours: {}\ngsma: {}",
            a.len(),
            b.len(),
            hex(&a[at.saturating_sub(8)..(at + 24).min(a.len())]),
            hex(&b[at.saturating_sub(8)..(at + 24).min(b.len())])
        );
    }
    assert_ne!(
        ours.signature, theirs.signature,
        "{what}: signatures are randomised"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

#[test]
fn ci_eum_euicc_dpauth_dppb_are_byte_identical() {
    let profile = Profile::builtin("sgp26-v1.5").expect("profile");
    for curve in Curve::ALL {
        let c = curve.file_suffix();
        let ci_key = key("CI", &format!("CI_ECDSA_{c}"));
        let ci = mint(&MintInput {
            template: profile.template(Role::Ci),
            vars: &vars(),
            subject_key: ci_key.public_key(),
            signer: Signer::SelfSigned(&ci_key),
            now: 0,
        })
        .expect("mint CI");
        let gsma_ci = gsma("CI", &format!("CERT_CI_ECDSA_{c}.der"));
        assert_same_tbs(&ci, &gsma_ci, &format!("CI {c}"));

        let eum_key = key("EUM", &format!("EUM_ECDSA_{c}"));
        let eum = mint(&MintInput {
            template: profile.template(Role::Eum),
            vars: &vars(),
            subject_key: eum_key.public_key(),
            signer: Signer::Issuer(&gsma_ci, &ci_key),
            now: 0,
        })
        .expect("mint EUM");
        let gsma_eum = gsma("EUM", &format!("CERT_EUM_ECDSA_{c}.der"));
        assert_same_tbs(&eum, &gsma_eum, &format!("EUM {c}"));

        let euicc_key = key("eUICC", &format!("EUICC_ECDSA_{c}"));
        let euicc = mint(&MintInput {
            template: profile.template(Role::Euicc),
            vars: &vars(),
            subject_key: euicc_key.public_key(),
            signer: Signer::Issuer(&gsma_eum, &eum_key),
            now: 0,
        })
        .expect("mint eUICC");
        assert_same_tbs(
            &euicc,
            &gsma("eUICC", &format!("CERT_EUICC_ECDSA_{c}.der")),
            &format!("eUICC {c}"),
        );

        for (role, dir) in [(Role::Dpauth, "DPauth"), (Role::Dppb, "DPpb")] {
            for instance in [None, Some("2")] {
                let slot = Slot::with_instance(role, curve, instance.map(str::to_string));
                let k = key(dir, &slot.stem());
                let mut v = vars();
                if instance.is_some() {
                    v.set("smdp_name", "TEST SM-DP+2");
                    v.set("smdp_rid", "2.999.12");
                    v.set("serial", if role == Role::Dpauth { "0200" } else { "0201" });
                    v.set("not_before", "2020-04-01T08:34:46Z");
                }
                let cert = mint(&MintInput {
                    template: profile.template(role),
                    vars: &v,
                    subject_key: k.public_key(),
                    signer: Signer::Issuer(&gsma_ci, &ci_key),
                    now: 0,
                })
                .expect("mint DP");
                let theirs = gsma(dir, &format!("CERT_{}.der", slot.stem()));
                assert_same_tbs(&cert, &theirs, &slot.stem());
            }
        }
    }
}
