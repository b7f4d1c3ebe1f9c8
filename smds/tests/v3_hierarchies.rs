//! The SM-DS on SGP.26 v3 hierarchies minted by pki-tool: Variant O in the GSMA v3 file layout
//! (from the published v3 keys) serves ES12 and ES11 end to end; Variant C's SubCA chains go out
//! in the TLS handshake and come in from an SM-DP+ presenting its chain.

mod support;

use pki_tool::hierarchy::{self, Hierarchy, InitOptions};
use pki_tool::{Curve, Role, Variant};
use smds::config::Limits;
use smds::lab::soft_euicc::SoftEuicc;
use smds::pki::ServerPki;
use smds::sgp22::Es11PathFamily;
use support::*;

fn lpa_options(
    server: &smds::server::Server,
    h: &Hierarchy,
    matching_id: Option<&str>,
) -> smds::lab::lpa::DiscoveryOptions {
    let ci = ci_of(h);
    smds::lab::lpa::DiscoveryOptions {
        endpoint: endpoint(server),
        address: format!("localhost:{}", server.addr.port()),
        tls: smds::lab::lpa::lpa_tls_config(smds::lab::https::read_cas(&[ci]).expect("ci"))
            .expect("tls"),
        paths: Es11PathFamily::Es9Plus,
        matching_id: matching_id.map(str::to_string),
        timeout: std::time::Duration::from_secs(10),
        now: pki_tool::time::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variant_o_in_the_v3_layout_serves_es12_and_es11() {
    let tmp = TempDir::new("v3-o");
    let keys = shared().join("yggdrasim_v3_variantO");
    let h = mint_v3(&tmp.0.join("pki"), Variant::O, Some(&keys));
    let cfg = loopback_config(&h.root, &tmp.0.join("data"), Limits::default());
    let server = start(&h.root, &cfg, None).await;
    let mut dp = connect(&server, smdp_v3(&h, 0, &tmp.0)).await;
    assert!(register(&mut dp, EID, "v3-o-event").await.is_success());
    // The eUICC whose certificate is the GSMA v3 Variant O one, re-signed: its published key.
    let e = SoftEuicc::load(&h.root, Curve::NistP256, None).expect("eUICC");
    let got = smds::lab::lpa::discover(&e, &lpa_options(&server, &h, None))
        .await
        .expect("discovery");
    match got {
        smds::lab::lpa::Discovery::Events { entries, .. } => {
            assert_eq!(
                entries
                    .iter()
                    .map(|e| e.event_id.as_str())
                    .collect::<Vec<_>>(),
                ["v3-o-event"]
            );
        }
        smds::lab::lpa::Discovery::PushRegistered { .. } => panic!("a push registration answer"),
        smds::lab::lpa::Discovery::Failed { step, result } => {
            panic!("{step}: {:?}", result.body)
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variant_c_subca_chains_go_out_and_come_in_over_tls() {
    let tmp = TempDir::new("v3-c");
    let h = mint_v3(&tmp.0.join("pki"), Variant::C, None);
    let pki = ServerPki::load(&h.root, pki_tool::time::now()).expect("v3 C loads");
    // CERT.DS.TLS and CERT.DSauth come with their SubCAs, nearest first.
    let names = |chain: &[pki_tool::Certificate]| {
        chain
            .iter()
            .map(|c| c.subject.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(&pki.ds_tls.chain),
        [
            "CN=Test CI SM_DSSubCA, OU=TESTCERT, O=RSPTEST, C=ES",
            "CN=Test CI SubCA, OU=TESTCERT, O=RSPTEST, C=ES"
        ]
    );
    assert_eq!(pki.ds_auth.len(), 1);
    assert_eq!(pki.ds_auth[0].chain.len(), 2);
    let cfg = loopback_config(&h.root, &tmp.0.join("data"), Limits::default());
    let server = start(&h.root, &cfg, None).await;
    // An SM-DP+ presenting CERT.DP.TLS with both SubCAs above it: the client verifier builds the
    // path CI > CI SubCA > DP SubCA > DP.TLS. An LPA trusting only the CI validates the server's
    // chain the same way (the handshake of `connect`).
    let mut dp = connect(&server, smdp_v3(&h, 2, &tmp.0)).await;
    assert!(register(&mut dp, EID, "v3-c-event").await.is_success());
    // Without the SubCAs the server cannot build the path: the handshake fails.
    let bare = smds::lab::https::Connection::open(
        &endpoint(&server),
        smdp_v3(&h, 0, &tmp.0),
        std::time::Duration::from_secs(5),
    )
    .await;
    // (With TLS 1.3 the client learns of the refusal at its first request.)
    if let Ok(mut c) = bare {
        let r = c
            .call(
                smds::sgp22::paths::path::ES12_REGISTER_EVENT,
                &smds::lab::smdp::register_event_body(
                    EID,
                    "never",
                    "testsmdpplus1.example.com",
                    None,
                ),
            )
            .await;
        assert!(r.is_err(), "registered without the SubCAs: {r:?}");
    }
    server.stop().await;
    // A v3 hierarchy missing its SM-DS SubCA does not start, and says which file.
    let sub = h
        .slot(Role::Dssubca, Curve::NistP256, None)
        .cert_der(&h.root);
    std::fs::remove_file(&sub).expect("remove");
    let err = ServerPki::load(&h.root, pki_tool::time::now()).expect_err("incomplete chain");
    assert!(
        err.to_string()
            .contains("CERT_SM_DSSubCA_VARC_SIG_NIST.der"),
        "{err}"
    );
}

/// The certificates a TLS server sends for `sni` (`None`: no SNI), as openssl s_client sees them,
/// DER, leaf first.
fn presented(port: u16, sni: Option<&str>) -> Vec<Vec<u8>> {
    let mut args = vec![
        "s_client".to_string(),
        "-connect".into(),
        format!("127.0.0.1:{port}"),
        "-showcerts".into(),
    ];
    match sni {
        Some(name) => args.extend(["-servername".into(), name.into()]),
        None => args.push("-noservername".into()),
    }
    let out = std::process::Command::new("openssl")
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("-----BEGIN CERTIFICATE-----")
        .skip(1)
        .filter_map(|rest| rest.split("-----END CERTIFICATE-----").next())
        .map(|b64| {
            use base64::Engine;
            let compact: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64")
        })
        .collect()
}

/// SGP.22 v3 2.6.6.2: a v3 device asks for `rsp3-<fqdn>` first. With `rsp3_pki` set, that SNI
/// gets the v3 (Variant C) CERT.DS.TLS with its SubCAs, every other client the Variant O chain;
/// ES11 at the rsp3- name works end to end, and serverSigned1 names the rsp3- host it was asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rsp3_name_gets_the_v3_chain_by_sni() {
    let lab = Lab::new("rsp3");
    let v3_dir = lab.tmp.0.join("pki-v3");
    let opts = InitOptions {
        profile: "sgp26-v3".into(),
        variant: Variant::C,
        ..InitOptions::lab(&v3_dir, &[Curve::NistP256], "rsp3-localhost").expect("options")
    };
    hierarchy::init(&opts).expect("pki-tool init");
    let v3 = ServerPki::load(&v3_dir, pki_tool::time::now()).expect("v3 loads");
    let base = ServerPki::load(&lab.pki, pki_tool::time::now()).expect("base loads");
    let cfg = smds::config::Config {
        hostname: Some("localhost".into()),
        rsp3_pki: Some(v3_dir.clone()),
        ..lab.config(Limits::default())
    };
    let server = start(&lab.pki, &cfg, None).await;
    let port = server.addr.port();

    let v3_chain: Vec<Vec<u8>> = std::iter::once(&v3.ds_tls.cert)
        .chain(&v3.ds_tls.chain)
        .map(|c| c.der().to_vec())
        .collect();
    assert_eq!(presented(port, Some("rsp3-localhost")), v3_chain);
    assert_eq!(presented(port, Some("RSP3-LOCALHOST")), v3_chain);
    for other in [Some("localhost"), Some("rsp3-other.example"), None] {
        assert_eq!(
            presented(port, other),
            [base.ds_tls.cert.der().to_vec()],
            "{other:?}"
        );
    }

    // A v3 LPA at the rsp3- name: TLS under the v3 CI (through both SubCAs), ES11 as ever.
    let mut e = SoftEuicc::load(&lab.pki, Curve::NistP256, None).expect("eUICC");
    e.euicc_signed_smds_response = true;
    e.lpa_signed_smds_response = true;
    let mut dp = connect(&server, smdp(&lab.pki, "", &lab.pki)).await;
    assert!(register(&mut dp, EID, "ev-rsp3").await.is_success());
    let cas = [ci(&lab.pki), v3_dir.join("CI").join("CERT_CI_SIG_NIST.der")];
    let opts = smds::lab::lpa::DiscoveryOptions {
        endpoint: smds::lab::https::Endpoint::parse(&format!("https://rsp3-localhost:{port}"))
            .and_then(|e| e.with_connect_to(&format!("127.0.0.1:{port}")))
            .expect("endpoint"),
        address: "rsp3-localhost".into(),
        tls: smds::lab::lpa::lpa_tls_config(smds::lab::https::read_cas(&cas).expect("cis"))
            .expect("tls"),
        paths: Es11PathFamily::Es9Plus,
        matching_id: None,
        timeout: std::time::Duration::from_secs(10),
        now: pki_tool::time::now(),
    };
    // The Variant O eUICC, and the v3 hierarchy's Variant C one: ES11 trusts the rsp3_pki CI too
    // and signs for its eUICCs with its CERT.DSauth, sent with the SubCAs above it.
    let mut v3e = SoftEuicc::load(&v3_dir, Curve::NistP256, None).expect("v3 eUICC");
    assert!(v3e.cert_chain_v3);
    v3e.euicc_signed_smds_response = true;
    v3e.lpa_signed_smds_response = true;
    for e in [&e, &v3e] {
        match smds::lab::lpa::discover(e, &opts).await.expect("answer") {
            smds::lab::lpa::Discovery::Events {
                entries, signed, ..
            } => {
                assert!(signed);
                assert_eq!(entries.len(), 1);
            }
            d => panic!("{d:?}"),
        }
    }
    server.stop().await;
}

/// What a discovery by `e` at `server` ended with: the events' IDs, or the failure's code.
async fn discovery_outcome(
    server: &smds::server::Server,
    h: &Hierarchy,
    e: &SoftEuicc,
) -> Result<Vec<String>, String> {
    match smds::lab::lpa::discover(e, &lpa_options(server, h, None)).await {
        Ok(smds::lab::lpa::Discovery::Events { entries, .. }) => {
            Ok(entries.into_iter().map(|e| e.event_id).collect())
        }
        Ok(smds::lab::lpa::Discovery::Failed { step, result }) => {
            Err(format!("{step}: {}", result.code().unwrap_or_default()))
        }
        Ok(d) => panic!("{d:?}"),
        Err(e) => Err(format!("eUICC: {e}")),
    }
}

/// SGP.22 v3 chains on ES11, in Variants A, B and C: CERT.DSauth goes out with its SubCAs in
/// `otherCertsInChain` to an eUICC with certChainV3VerificationSupport, which validates it
/// through them to its CI, and the eUICC's chain comes in as nextCertInChain (its EUM SubCA or
/// EUM) plus `otherCertsInChain [0]` (the EUM, a CI SubCA), validated to the CI with the
/// permittedEins of the v3 EUM. A v2 eUICC cannot verify a SubCA chain, and one that says so is
/// told ciPKNotSupported; an eUICC that leaves out otherCertsInChain is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_euiccs_and_the_sm_ds_authenticate_through_sub_cas() {
    for (variant, eum_side) in [
        (Variant::A, ["C=ES, O=RSP Test EUM, CN=EUM Test"].as_slice()),
        (
            Variant::B,
            ["CN=Test CI SubCA, OU=TESTCERT, O=RSPTEST, C=ES"].as_slice(),
        ),
        (
            Variant::C,
            [
                "C=ES, O=RSP Test EUM, CN=EUM Test",
                "CN=Test CI SubCA, OU=TESTCERT, O=RSPTEST, C=ES",
            ]
            .as_slice(),
        ),
    ] {
        let tmp = TempDir::new(&format!("v3-chains-{variant}"));
        let h = mint_v3(&tmp.0.join("pki"), variant, None);
        let cfg = loopback_config(&h.root, &tmp.0.join("data"), Limits::default());
        let server = start(&h.root, &cfg, None).await;
        let mut dp = connect(&server, smdp_v3(&h, usize::MAX, &tmp.0)).await;
        assert!(register(&mut dp, EID, "v3-chain-event").await.is_success());

        let e = SoftEuicc::load(&h.root, Curve::NistP256, None).expect("eUICC");
        assert!(e.cert_chain_v3, "{variant}");
        let above: Vec<String> = e
            .other_certs
            .iter()
            .map(|c| c.subject.to_string())
            .collect();
        assert_eq!(above, eum_side, "{variant}");
        assert_eq!(
            discovery_outcome(&server, &h, &e).await,
            Ok(vec!["v3-chain-event".to_string()]),
            "{variant}"
        );
        // Again: the path above the eUICC is now known (validated once, then cached).
        assert_eq!(
            discovery_outcome(&server, &h, &e).await,
            Ok(vec!["v3-chain-event".to_string()]),
            "{variant} (cached path)"
        );
        // The order otherCertsInChain comes in is not relied on.
        let mut reversed = e.clone();
        reversed.other_certs.reverse();
        assert!(
            discovery_outcome(&server, &h, &reversed).await.is_ok(),
            "{variant}"
        );

        // An eUICC its issuer (the EUM SubCA in A and C) signed for an EID outside the
        // permittedEins of the EUM above: refused, as under a Variant O EUM's name constraint.
        let issuer = h.slot(variant.issuer(Role::Euicc), Curve::NistP256, None);
        let (issuer_cert, issuer_key) = (
            h.cert(&issuer).expect("issuer"),
            h.key(&issuer).expect("key"),
        );
        let mut t = h.profile.template(Role::Euicc).clone();
        t.serial = pki_tool::profile::SerialSpec::Random { bytes: 8 };
        let mut vars = pki_tool::profile::Vars::default();
        let outside = pki_tool::Eid::random_with_prefix("89049033").expect("eid");
        vars.set("eid", outside.to_string());
        let key = pki_tool::PrivateKey::generate(Curve::NistP256).expect("key");
        let rogue = SoftEuicc {
            euicc_cert: pki_tool::mint::mint(&pki_tool::mint::MintInput {
                template: &t,
                vars: &vars,
                subject_key: key.public_key(),
                signer: pki_tool::mint::Signer::Issuer(&issuer_cert, &issuer_key),
                now: pki_tool::time::now(),
            })
            .expect("mint"),
            key,
            eid: outside,
            ..e.clone()
        };
        // Both under the path validated before (cached) and, with the issuer sent once more
        // (another list, so validated in full), under a path not seen yet.
        let mut uncached = rogue.clone();
        uncached.other_certs.push(uncached.eum_cert.clone());
        for r in [&rogue, &uncached] {
            assert_eq!(
                discovery_outcome(&server, &h, r).await,
                Err(format!(
                    "AuthenticateClient: {}",
                    smds::sgp22::codes::EUICC_CERT_INVALID
                )),
                "{variant}"
            );
        }

        // Without otherCertsInChain the chain does not reach the CI.
        let mut bare = e.clone();
        bare.other_certs.clear();
        // (The eUICC's issuer is not under a CI this SM-DS knows.)
        assert_eq!(
            discovery_outcome(&server, &h, &bare).await,
            Err(format!(
                "AuthenticateClient: {}",
                smds::sgp22::codes::CI_PUBLIC_KEY_UNKNOWN
            )),
            "{variant}"
        );
        // A v2 eUICC (no capabilities stated) is offered the only CERT.DSauth there is and
        // cannot verify it without the SubCAs, as a real v2 eUICC could not.
        let mut v2 = e.clone();
        v2.cert_chain_v3 = false;
        let refused = discovery_outcome(&server, &h, &v2).await;
        assert!(
            matches!(&refused, Err(c) if c.starts_with("eUICC: ") && c.contains("server certificate refused")),
            "{variant}: {refused:?}"
        );
        // A v3 eUICC that states its capabilities without certChainV3VerificationSupport: no
        // CERT.DSauth it can verify, said at InitiateAuthentication.
        let mut no_bit16 = v2.clone();
        no_bit16.push_registration = Some((None, "token".into()));
        assert_eq!(
            discovery_outcome(&server, &h, &no_bit16).await,
            Err(format!(
                "InitiateAuthentication: {}",
                smds::sgp22::codes::NO_DSAUTH_FOR_CI
            )),
            "{variant}"
        );
        server.stop().await;
    }
}
