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
use std::path::Path;
use support::*;

fn mint_v3(dir: &Path, variant: Variant, keys: Option<&Path>) -> Hierarchy {
    let opts = InitOptions {
        profile: "sgp26-v3".into(),
        variant,
        keys: keys.map(Path::to_path_buf),
        ..InitOptions::lab(dir, &[Curve::NistP256], "localhost").expect("options")
    };
    hierarchy::init(&opts).expect("pki-tool init");
    Hierarchy::open(dir).expect("open")
}

/// The SM-DP+ TLS client configuration of a hierarchy: its CERT.DP.TLS followed by `with` SubCAs
/// (nearest first) in one PEM file, trusting the hierarchy's CI.
fn smdp_v3(h: &Hierarchy, with: usize, tmp: &Path) -> std::sync::Arc<rustls::ClientConfig> {
    let leaf = h.slot(Role::Dptls, Curve::NistP256, None);
    let mut pem = h.cert(&leaf).expect("DP TLS").to_pem();
    for c in h
        .intermediates(Role::Dptls, Curve::NistP256)
        .expect("chain")
        .iter()
        .take(with)
    {
        pem.push_str(&c.to_pem());
    }
    let bundle = tmp.join(format!("dptls-chain-{with}.pem"));
    std::fs::write(&bundle, pem).expect("write");
    let ci = h.slot(Role::Ci, Curve::NistP256, None).cert_der(&h.root);
    smds::lab::smdp::smdp_tls_config(&bundle, &leaf.private_key(&h.root), &[ci])
        .expect("client TLS config")
}

fn lpa_options(
    server: &smds::server::Server,
    h: &Hierarchy,
    matching_id: Option<&str>,
) -> smds::lab::lpa::DiscoveryOptions {
    let ci = h.slot(Role::Ci, Curve::NistP256, None).cert_der(&h.root);
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
    match smds::lab::lpa::discover(&e, &opts).await.expect("answer") {
        smds::lab::lpa::Discovery::Events {
            entries, signed, ..
        } => {
            assert!(signed);
            assert_eq!(entries.len(), 1);
        }
        d => panic!("{d:?}"),
    }
    server.stop().await;
}
